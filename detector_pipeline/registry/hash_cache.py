"""Values computed from an image's content (backbone embeddings, a fixed model's scores), kept by the
content's SHA-256 so that no image is computed twice: the one cache that embeddings, the content
baseline and model scores share.

A cache is a folder of parquet shards, each written once and never changed:
- adding a batch writes one new shard (sorted by hash), so its cost follows the batch, not the cache;
  two runs that add at once write two shards and never wait for each other;
- a read takes only the hashes it asks for: a Bloom filter in each shard's footer rules out the
  shards that can't hold a hash, and within a shard (sorted by hash) each row group's first and last
  hash say which row groups to read, so time and memory follow the request, not the cache;
- every page carries a checksum. A shard that can't be read whole (a disk that filled, a copy cut
  off, flipped bytes, another schema) is moved to `damaged/` in the folder of all caches
  (`data/cache/damaged/`) with a warning naming it and why, and its entries count as missing: the
  caller computes them again and the run goes on;
- `compact` merges the shards into one, as an occasional step of its own.

A value is a vector of `dim` numbers (a score is a vector of one)."""

import bisect
import contextlib
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from detector_pipeline.registry.durable import atomic_path

log = logging.getLogger(__name__)

HASH, VALUE = "sha256", "value"
ROW_GROUP = 8192  # rows per row group: a lookup reads the hash column of one per wanted hash (that passes the filter)
DAMAGED = "damaged"
BLOOM = b"hash_cache.bloom"  # footer metadata key: the shard's Bloom filter
BLOOM_BITS_PER_KEY, BLOOM_PROBES = 9.6, 7  # 1 % false positives
COMPACT_CHUNK = 65_536  # entries merged at a time


class HashCache:
    """One cache: a folder of shards whose values share one dtype (float32 embeddings, float64 scores)."""

    def __init__(self, folder: Path, dtype: type = np.float32):
        self.folder = Path(folder)  # data/cache/<kind>/<cache>
        self.dtype = np.dtype(dtype)
        self.damaged = self.folder.parent.parent / DAMAGED

    def shards(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet")) if self.folder.is_dir() else []

    def missing(self, sha256: Sequence[str]) -> list[str]:
        """The distinct hashes of `sha256` the cache has no value for, in their first order (only the
        hash column of the row groups that may hold them is read)."""
        wanted = list(dict.fromkeys(sha256))
        found = self._lookup(wanted, with_values=False)
        return [h for h in wanted if h not in found]

    def get(self, sha256: Sequence[str]) -> np.ndarray:
        """The values of `sha256`, one row each, in their order; KeyError names a hash the cache lacks."""
        wanted = list(dict.fromkeys(sha256))
        found = self._lookup(wanted, with_values=True)
        if lacking := [h for h in wanted if h not in found]:
            raise KeyError(f"{len(lacking)} hashes not in the cache {self.folder}, e.g. {lacking[0]}")
        return self._stack(sha256, found)

    def values(self, sha256: Sequence[str], compute: Callable[[list[str]], np.ndarray]) -> tuple[np.ndarray, int]:
        """The values of `sha256` in their order, and how many were computed: `compute` runs on the
        distinct hashes the cache lacks (those of a shard found damaged while reading included), and
        what it gives is added as a new shard."""
        wanted = list(dict.fromkeys(sha256))
        found = self._lookup(wanted, with_values=True)
        todo = [h for h in wanted if h not in found]
        if todo:
            new = np.asarray(compute(todo), dtype=self.dtype).reshape(len(todo), -1)
            self.add(todo, new)
            found.update(zip(todo, new))
        return self._stack(sha256, found), len(todo)

    def _stack(self, sha256: Sequence[str], found: dict[str, np.ndarray]) -> np.ndarray:
        if not len(sha256):
            return np.zeros((0, 0), self.dtype)
        return np.stack([found[h] for h in sha256]).astype(self.dtype, copy=False)

    def _lookup(self, wanted: list[str], with_values: bool) -> dict[str, np.ndarray | None]:
        """The wanted hashes the shards hold, with their values (first shard wins). A shard that can't
        be read whole is moved aside; its entries are then simply not found."""
        found: dict[str, np.ndarray | None] = {}
        ordered = sorted(wanted)  # once: what each shard is asked stays in this order
        for shard in self.shards():
            todo = [h for h in ordered if h not in found]
            if not todo:
                break
            try:
                found.update({k: v for k, v in _read_shard(shard, todo, with_values, self.dtype).items()
                              if k not in found})
            except FileNotFoundError:
                continue  # compacted away meanwhile
            except (OSError, pa.ArrowException, ValueError) as exc:
                _move_aside(shard, self.damaged, _reason(exc))
        return found

    def add(self, sha256: Sequence[str], values: np.ndarray) -> Path | None:
        """One new shard with these values (rows of `values`, or one number each); None when empty."""
        if not len(sha256):
            return None
        matrix = np.asarray(values, dtype=self.dtype).reshape(len(sha256), -1)
        order = np.argsort(np.asarray(sha256, dtype=object).astype(str), kind="stable")
        keys = [sha256[i] for i in order]
        table = pa.table({HASH: pa.array(keys, pa.string()), VALUE: _column(matrix[order])})
        shard = self._new_shard()
        with atomic_path(shard) as tmp, _writer(tmp, table.schema, keys) as writer:
            writer.write_table(table, row_group_size=ROW_GROUP)
        return shard

    def _new_shard(self) -> Path:
        return self.folder / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"

    def compact(self) -> int:
        """Merges every shard into one (first value of a hash wins), in chunks, so memory follows the
        chunk, not the cache; returns the shards merged. An occasional step of its own: run it when no
        other run adds to this cache."""
        shards = self.shards()
        if len(shards) < 2:
            return len(shards)
        keys: set[str] = set()
        dim = None
        for shard in shards:
            try:
                keys.update(pq.read_table(shard, columns=[HASH])[HASH].to_pylist())
                dim = dim or pq.read_schema(shard).field(VALUE).type.list_size
            except (OSError, pa.ArrowException, KeyError, AttributeError) as exc:
                _move_aside(shard, self.damaged, _reason(exc))
        ordered = sorted(keys)
        schema = pa.schema([(HASH, pa.string()), (VALUE, pa.list_(pa.from_numpy_dtype(self.dtype), dim or 1))])
        with atomic_path(self._new_shard()) as tmp, _writer(tmp, schema, ordered) as writer:
            for start in range(0, len(ordered), COMPACT_CHUNK):
                chunk = ordered[start:start + COMPACT_CHUNK]
                found = self._lookup(chunk, with_values=True)
                kept = [k for k in chunk if k in found]  # in hash order; a value lost to damage is computed later
                if kept:
                    writer.write_table(pa.table({HASH: pa.array(kept, pa.string()),
                                                 VALUE: _column(np.stack([found[k] for k in kept]))}, schema=schema),
                                       row_group_size=ROW_GROUP)
        for shard in shards:
            shard.unlink(missing_ok=True)
        return len(shards)

    def adopt(self, legacy: Path, value_column: str) -> None:
        """A cache of the older layout (one parquet file, rewritten whole on each addition) becomes a
        shard of this one; a legacy file that can't be read is moved aside like a damaged shard."""
        if not legacy.is_file():
            return
        try:
            table = pq.read_table(legacy, columns=[HASH, value_column])
        except (OSError, pa.ArrowException, KeyError, ValueError) as exc:
            _move_aside(legacy, self.damaged, _reason(exc))
            return
        self.add(table[HASH].to_pylist(), _matrix(table[value_column], self.dtype))
        legacy.unlink(missing_ok=True)


@contextlib.contextmanager
def _writer(path: Path, schema: pa.Schema, keys: list[str]) -> Iterator[pq.ParquetWriter]:
    """A shard's writer: checksummed pages, and the Bloom filter of its (sorted) keys in the footer's
    key-value metadata (not in the Arrow schema, which every reader parses)."""
    with pq.ParquetWriter(path, schema, write_page_checksum=True) as writer:
        yield writer
        writer.add_key_value_metadata({BLOOM: _bloom(keys).tobytes()})


def _read_shard(shard: Path, wanted: list[str], with_values: bool, dtype: np.dtype) -> dict[str, np.ndarray | None]:
    """The wanted hashes (sorted) one shard holds. The shard's row groups are sorted by hash and its
    footer records each one's first and last hash: only row groups whose range holds a wanted hash
    are read, their hash column first, their values only where a hash matched."""
    file = pq.ParquetFile(shard, page_checksum_verification=True)
    _check(file.schema_arrow, dtype)
    bloom = (file.metadata.metadata or {}).get(BLOOM)
    if bloom is not None:  # a hash the filter rules out is not in this shard: no row group is read for it
        wanted = _may_hold(np.frombuffer(bloom, np.uint8), wanted)
    found: dict[str, np.ndarray | None] = {}
    if not wanted:
        return found
    for group in _candidate_groups(file.metadata, wanted):
        keys = file.read_row_group(group, columns=[HASH])[HASH].to_pylist()
        rows = [i for i, key in enumerate(keys) if _holds(wanted, key)]
        if not rows:
            continue
        values = (_matrix(file.read_row_group(group, columns=[VALUE])[VALUE].take(rows), dtype) if with_values
                  else [None] * len(rows))
        found.update(zip((keys[i] for i in rows), values))
    return found


def _bit_positions(keys: list[str], bits: int) -> np.ndarray:
    """BLOOM_PROBES bit positions per key (one row each), by double hashing one BLAKE2b digest."""
    digests = b"".join(hashlib.blake2b(key.encode(), digest_size=16).digest() for key in keys)
    words = np.frombuffer(digests, dtype="<u8").reshape(-1, 2)
    first, second = words[:, :1], words[:, 1:] | np.uint64(1)
    return ((first + np.arange(BLOOM_PROBES, dtype=np.uint64) * second) % np.uint64(bits)).astype(np.int64)


def _bloom(keys: list[str]) -> np.ndarray:
    """A Bloom filter of a shard's hashes (1 % false positives), kept in its footer: a lookup of a new
    image's hash reads no row group of a shard that can't hold it."""
    bits = max(64, int(np.ceil(len(keys) * BLOOM_BITS_PER_KEY / 8)) * 8)
    filled = np.zeros(bits, dtype=bool)
    filled[_bit_positions(keys, bits).ravel()] = True
    return np.packbits(filled, bitorder="little")


def _may_hold(bloom: np.ndarray, keys: list[str]) -> list[str]:
    """The keys the filter does not rule out."""
    if not keys:
        return []
    positions = _bit_positions(keys, len(bloom) * 8)
    hits = (bloom[positions >> 3] >> (positions & 7).astype(np.uint8)) & 1
    return [key for key, held in zip(keys, hits.all(axis=1)) if held]


def _candidate_groups(metadata: pq.FileMetaData, wanted: list[str]) -> list[int]:
    groups = []
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(0).statistics
        if stats is None or not stats.has_min_max:
            groups.append(group)
            continue
        first = bisect.bisect_left(wanted, stats.min)
        if first < len(wanted) and wanted[first] <= stats.max:
            groups.append(group)
    return groups


def _holds(wanted: list[str], key: str) -> bool:
    at = bisect.bisect_left(wanted, key)
    return at < len(wanted) and wanted[at] == key


def _check(schema: pa.Schema, dtype: np.dtype) -> None:
    """What a shard must hold: string hashes; values as fixed-size lists of the cache's dtype."""
    if schema.names != [HASH, VALUE]:
        raise ValueError(f"columns {schema.names}, not {[HASH, VALUE]}")
    if schema.field(HASH).type != pa.string():
        raise ValueError(f"column {HASH} is {schema.field(HASH).type}, not string")
    kind = schema.field(VALUE).type
    if not pa.types.is_fixed_size_list(kind) or kind.value_type != pa.from_numpy_dtype(dtype):
        raise ValueError(f"column {VALUE} is {kind}, not fixed-size lists of {dtype}")


def _column(matrix: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(matrix).reshape(-1)), matrix.shape[1])


def _matrix(column: pa.ChunkedArray | pa.Array, dtype: np.dtype) -> np.ndarray:
    """Rows of a value column: fixed-size lists, or one number per row (an older score cache)."""
    combined = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_fixed_size_list(combined.type):
        dim = combined.type.list_size
        return combined.flatten().to_numpy(zero_copy_only=False).astype(dtype, copy=False).reshape(-1, dim)
    return combined.to_numpy(zero_copy_only=False).astype(dtype, copy=False).reshape(-1, 1)


def _reason(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def _move_aside(path: Path, damaged: Path, why: str) -> None:
    """Keeps the damaged file for a person to look at, out of every later read."""
    damaged.mkdir(parents=True, exist_ok=True)
    target = damaged / f"{path.parent.parent.name}__{path.parent.name}__{path.name}"
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return  # another run moved it first
    log.warning("damaged cache file %s moved to %s (%s); its entries are computed again", path, target, why)
