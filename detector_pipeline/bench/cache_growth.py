"""What adding a batch costs as the content-hash cache grows: 100 new images added to caches of
10^3 .. 10^6 entries of 768 float32 values (synthetic: only the sizes matter), each in a fresh process
so its peak memory is the addition's alone. The addition is what a retrain or a batch evaluation
does for new images: find which the cache lacks, add them, read their values back."""

import concurrent.futures
import hashlib
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from detector_pipeline.registry.hash_cache import HashCache

DIM = 768
BATCH = 100
ROUNDS = 5
BUILD_SHARD = 100_000  # entries per shard while filling the cache, as 1,000 retrains of 100 would leave
                       # 1,000 shards until compaction; compacted caches are the common, larger case


def _keys(start: int, stop: int) -> list[str]:
    """Content hashes as real ones are: SHA-256 digests, spread evenly over the key space."""
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(start, stop)]


def _in_lean_process(fn, *args) -> dict:
    """fn in a spawned process that imports only this module (numpy, pyarrow; no torch), so its peak
    memory is the cache's."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_with_peak_rss, fn, *args).result()


def _with_peak_rss(fn, *args) -> dict:
    return {**fn(*args), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def _fill(folder: str, size: int) -> dict:
    cache, rng = HashCache(Path(folder), np.float32), np.random.default_rng(0)
    for start in range(0, size, BUILD_SHARD):
        stop = min(size, start + BUILD_SHARD)
        cache.add(_keys(start, stop), rng.standard_normal((stop - start, DIM), dtype=np.float32))
    return {"shards": len(cache.shards()),
            "bytes": sum(p.stat().st_size for p in cache.shards())}


def _compact(folder: str) -> dict:
    return {"merged": HashCache(Path(folder), np.float32).compact()}


def _add_batch(folder: str, first: int) -> dict:
    cache = HashCache(Path(folder), np.float32)
    with tempfile.TemporaryDirectory() as warm:  # pyarrow loads its writer and reader on first use: not the cache's cost
        HashCache(Path(warm) / "a" / "b", np.float32).values(["warm-up"], lambda todo: np.ones((1, DIM), np.float32))
    shards_before, times = len(cache.shards()), []
    for round_ in range(ROUNDS):  # the median of several additions: one is a few milliseconds
        new = _keys(first + round_ * BATCH, first + (round_ + 1) * BATCH)
        started = time.perf_counter()
        values, computed = cache.values(new, lambda todo: np.ones((len(todo), DIM), np.float32))
        times.append(time.perf_counter() - started)
        assert computed == BATCH and values.shape == (BATCH, DIM)
    return {"add_seconds": round(float(np.median(times)), 4), "shards_before": shards_before}


def cache_growth(sizes: tuple[int, ...], log=print) -> dict:
    """Per cache size: seconds and peak memory of adding 100 new images to the cache as retrains leave
    it (a shard per 100,000 entries) and after compaction (one shard), and its size on disk."""
    rows = {}
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-hash-cache-") as tmp:
            folder = str(Path(tmp) / "cache" / "embeddings" / "synthetic")
            filled = _in_lean_process(_fill, folder, size)
            sharded = _in_lean_process(_add_batch, folder, size)
            _in_lean_process(_compact, folder)
            compacted = _in_lean_process(_add_batch, folder, size + ROUNDS * BATCH)
        rows[str(size)] = {"entries": size, "cache_mb": round(filled["bytes"] / 2**20, 1),
                           "shards": sharded["shards_before"], "add_100_seconds": sharded["add_seconds"],
                           "add_100_peak_rss_mb": sharded["peak_rss_mb"],
                           "compacted_add_100_seconds": compacted["add_seconds"],
                           "compacted_add_100_peak_rss_mb": compacted["peak_rss_mb"]}
        log(f"  cache of {size:,} entries ({rows[str(size)]['cache_mb']} MB): adding {BATCH} images took "
            f"{sharded['add_seconds']:.3f} s in {sharded['shards_before']} shard(s), {compacted['add_seconds']:.3f} s "
            f"compacted; peak memory {sharded['peak_rss_mb']} / {compacted['peak_rss_mb']} MB")
    smallest, largest = rows[str(min(sizes))], rows[str(max(sizes))]
    return {"batch": BATCH, "dim": DIM, "sizes": rows,
            "growth_smallest_to_largest": round(largest["add_100_seconds"] / smallest["add_100_seconds"], 2),
            "compacted_growth_smallest_to_largest": round(largest["compacted_add_100_seconds"]
                                                          / smallest["compacted_add_100_seconds"], 2)}
