"""Values computed from an image's content (backbone embeddings, a fixed model's scores), kept by the
content's SHA-256 so that no image is computed twice: the one cache that embeddings, the content
baseline and model scores share.

A cache is a folder of parquet shards, each written once and never changed:
- adding a batch writes one new shard (sorted by hash), so its cost follows the batch, not the cache;
  two runs that add at once write two shards and never wait for each other;
- a read takes only the hashes it asks for: the filter is pushed down to each shard's row groups,
  which the sort makes narrow, so memory follows the request, not the cache;
- every page carries a checksum. A shard that can't be read whole (a disk that filled, a copy cut
  off, flipped bytes, another schema) is moved to `damaged/` in the folder of all caches
  (`data/cache/damaged/`) with a warning naming it and why, and its entries count as missing: the
  caller computes them again and the run goes on;
- `compact` merges the shards into one, as an occasional step of its own.

A value is a vector of `dim` numbers (a score is a vector of one)."""

import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from detector_pipeline.errors import ArtifactError
from detector_pipeline.registry.artifacts import atomic_path

log = logging.getLogger(__name__)

HASH, VALUE = "sha256", "value"
ROW_GROUP = 4096  # rows per row group: what one hash lookup reads at most per shard
DAMAGED = "damaged"


class HashCache:
    """One cache: a folder of shards whose values share one dtype (float32 embeddings, float64 scores)."""

    def __init__(self, folder: Path, dtype: type = np.float32):
        self.folder = Path(folder)  # data/cache/<kind>/<cache>
        self.dtype = np.dtype(dtype)
        self.damaged = self.folder.parent.parent / DAMAGED

    def shards(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet")) if self.folder.is_dir() else []

    def missing(self, sha256: Sequence[str]) -> list[str]:
        """The distinct hashes of `sha256` the cache has no value for, in their first order."""
        wanted = list(dict.fromkeys(sha256))
        found = set()
        for shard in self.shards():
            table = self._read(shard, [HASH], wanted)
            if table is not None:
                found.update(table[HASH].to_pylist())
        return [h for h in wanted if h not in found]

    def get(self, sha256: Sequence[str]) -> np.ndarray:
        """The values of `sha256`, one row each, in their order; KeyError names a hash the cache lacks."""
        wanted = list(dict.fromkeys(sha256))
        rows: dict[str, np.ndarray] = {}
        for shard in self.shards():
            table = self._read(shard, [HASH, VALUE], [h for h in wanted if h not in rows])
            if table is not None and table.num_rows:
                for key, value in zip(table[HASH].to_pylist(), _matrix(table[VALUE], self.dtype)):
                    rows.setdefault(key, value)
            if len(rows) == len(wanted):
                break
        if lacking := [h for h in wanted if h not in rows]:
            raise KeyError(f"{len(lacking)} hashes not in the cache {self.folder}, e.g. {lacking[0]}")
        if not sha256:
            return np.zeros((0, 0), self.dtype)
        return np.stack([rows[h] for h in sha256]).astype(self.dtype, copy=False)

    def values(self, sha256: Sequence[str], compute: Callable[[list[str]], np.ndarray]) -> tuple[np.ndarray, int]:
        """The values of `sha256` in their order, and how many were computed: `compute` runs on the
        distinct hashes the cache lacks (those of a shard found damaged included) and its values are added."""
        computed = 0
        for _ in range(3):  # a shard can turn out damaged only when its values are read: those once more
            if todo := self.missing(sha256):
                self.add(todo, compute(todo))
                computed += len(todo)
            try:
                return self.get(sha256), computed
            except KeyError:
                continue
        raise ArtifactError(f"the cache {self.folder} loses what is added to it: check the disk it lies on")

    def add(self, sha256: Sequence[str], values: np.ndarray) -> Path | None:
        """One new shard with these values (rows of `values`, or one number each); None when empty."""
        if not len(sha256):
            return None
        matrix = np.asarray(values, dtype=self.dtype).reshape(len(sha256), -1)
        order = np.argsort(np.asarray(sha256, dtype=object).astype(str), kind="stable")
        table = pa.table({HASH: pa.array([sha256[i] for i in order], pa.string()),
                          VALUE: _column(matrix[order])})
        shard = self.folder / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        with atomic_path(shard) as tmp:
            pq.write_table(table, tmp, row_group_size=ROW_GROUP, write_page_checksum=True)
        return shard

    def compact(self) -> int:
        """Merges every shard into one (first value of a hash wins); returns the shards merged. Run it
        when no other run adds to this cache."""
        shards = self.shards()
        if len(shards) < 2:
            return len(shards)
        tables = [t for t in (self._read(s, [HASH, VALUE]) for s in shards) if t is not None]
        merged = pa.concat_tables(tables) if tables else None
        if merged is not None and merged.num_rows:
            keys = merged[HASH].to_pylist()
            first = sorted({k: i for i, k in reversed(list(enumerate(keys)))}.values())
            merged = merged.take(pa.array(first))
            self.add(merged[HASH].to_pylist(), _matrix(merged[VALUE], self.dtype))
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

    def _read(self, shard: Path, columns: list[str], sha256: list[str] | None = None) -> pa.Table | None:
        """The shard's rows for these hashes (all rows without them); None when it is damaged (moved aside)."""
        if sha256 is not None and not sha256:
            return None  # nothing asked for
        try:
            _check(pq.read_schema(shard), self.dtype)
            return pq.read_table(shard, columns=columns, page_checksum_verification=True,
                                 filters=None if sha256 is None else pc.field(HASH).isin(sha256))
        except FileNotFoundError:
            return None  # compacted away meanwhile
        except (OSError, pa.ArrowException, ValueError) as exc:
            _move_aside(shard, self.damaged, _reason(exc))
            return None


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
