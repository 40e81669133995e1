"""Entries on disk, partitioned by training-order key, so a manifest of any size is put in order a part at a time.

The training order sorts every entry by a pseudo-random 64-bit key (:func:`select.salted`). Entries are written,
as the scan produces them, to spill files: one per flush, holding one row group per key range (the top bits of
the key), so the ranges are nearly equal in size. Read back one range at a time from every file and sorted,
the ranges in turn give the whole order with at most one range in memory.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from foresight.formats.arrowpool import release_freed_memory
from foresight.formats.sql import quote_literal
from foresight.mixtures.select import argsort_keys

HELD_BYTES = 256 << 20  # spilled entries held in memory before they go to a file (~2 M entries)
# entries per key range: about 130 bytes each (ids, doc ids and a sha256 included), so a range sorts in ~400 MB
RANGE_ENTRIES = 1 << 20

SPILL_SCHEMA = pa.schema([
    ("okey", pa.uint64()),  # training-order key
    ("pool", pa.int16()),
    ("epoch", pa.int32()),
    ("score", pa.float64()),  # the pool's order score (0 in a random pool): ties in okey are broken by it
    ("pos", pa.int64()),  # file << ROW_BITS | row
    ("end", pa.int32()),
    ("id", pa.string()),
    ("doc_id", pa.string()),
    ("text_sha256", pa.binary(32)),
    ("dochash", pa.uint64()),  # to count a pool's distinct documents
])
TIE_BREAK = ("pool", "epoch", "score", "pos")  # after okey: the order a stable sort of the pools' takes gives


def range_bits(expected_entries: int) -> int:
    """Bits of the key that pick a range: enough ranges for ~RANGE_ENTRIES entries each."""
    ranges = max(1, -(-expected_entries // RANGE_ENTRIES))
    return min(16, (ranges - 1).bit_length())


class Spill:
    """Spill files in a private temporary directory (under ``TMPDIR``), deleted by :meth:`close`."""

    def __init__(self, bits: int, temp_dir: str | Path | None = None) -> None:
        self.bits = bits
        self.dir = Path(tempfile.mkdtemp(prefix="foresight-mix-", dir=temp_dir))
        # deleted by close(), or when the plan is garbage-collected or the interpreter exits, whichever is first
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.dir, True)
        self.files: list[tuple[Path, dict[int, int]]] = []  # path, key range -> row group
        self.held: list[pa.Table] = []  # entries not yet written: a small manifest never touches the disk
        self.held_bytes = 0
        self.entries = 0

    def _range(self, okey: np.ndarray) -> np.ndarray:
        if self.bits == 0:
            return np.zeros(len(okey), dtype=np.uint16)
        return (okey >> np.uint64(64 - self.bits)).astype(np.uint16)

    def write(self, table: pa.Table) -> None:
        """Add ``table`` (SPILL_SCHEMA): held while the held entries stay under :data:`HELD_BYTES`, then all
        written to one spill file."""
        if table.num_rows == 0:
            return
        self.entries += table.num_rows
        self.held.append(table)
        self.held_bytes += table.nbytes
        if self.held_bytes > HELD_BYTES:
            self._flush_held()
            release_freed_memory()  # the held tables and the file's copies

    def _flush_held(self) -> None:
        self._write_file(pa.concat_tables(self.held))
        self.held, self.held_bytes = [], 0

    def _range_order(self, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of ``table`` ordered by key range (stable), and where each range starts in them
        (``bounds[r]:bounds[r + 1]``)."""
        rng = self._range(table.column("okey").to_numpy())
        perm = np.argsort(rng, kind="stable")
        return perm, np.searchsorted(rng[perm], np.arange((1 << self.bits) + 1))

    def _write_file(self, table: pa.Table) -> None:
        """One spill file of ``table``, a row group per key range it touches."""
        perm, bounds = self._range_order(table)
        table = table.take(pa.array(perm))
        path = self.dir / f"{len(self.files):06d}.parquet"
        groups: dict[int, int] = {}
        with pq.ParquetWriter(path, SPILL_SCHEMA, compression="none", use_dictionary=False,
                              write_statistics=False) as w:
            for r in np.flatnonzero(np.diff(bounds)):
                part = table.slice(int(bounds[r]), int(bounds[r + 1] - bounds[r]))
                w.write_table(part, row_group_size=max(1, part.num_rows))
                groups[int(r)] = len(groups)
        self.files.append((path, groups))

    def ranges(self) -> Iterator[pa.Table]:
        """Every entry in training order, a key range at a time."""
        handles = [(pq.ParquetFile(p), g) for p, g in self.files]
        held = pa.concat_tables(self.held).combine_chunks() if self.held else None
        if held is not None:  # each range's held rows, as indices: one take per range, after its sort
            perm, bounds = self._range_order(held)
        for r in range(1 << self.bits):
            parts = [f.read_row_group(g[r]) for f, g in handles if r in g]
            mine = perm[bounds[r]:bounds[r + 1]] if held is not None else np.zeros(0, np.int64)
            if parts and len(mine):
                parts.append(held.take(pa.array(mine)))
            if parts:
                yield sort_range(pa.concat_tables(parts).combine_chunks())
            elif len(mine):
                yield sort_range(held, mine)
            del parts
            release_freed_memory()

    def distinct_documents(self, n_pools: int, memory_limit: str | None) -> list[int]:
        """Distinct documents per pool, by DuckDB (spilling to disk under ``memory_limit``): over the held entries
        when nothing was spilled, else over the spill files, the held ones written out first."""
        if self.files and self.held:
            self._flush_held()
        out = [0] * n_pools
        if not self.files and not self.held:
            return out
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"SET temp_directory = {quote_literal(str(self.dir / 'duckdb'))}")
            if memory_limit:
                con.execute("SET memory_limit = $m", {"m": memory_limit})
            if self.files:
                source = f"read_parquet([{', '.join(quote_literal(str(p)) for p, _ in self.files)}])"
            else:
                con.register("held", pa.concat_tables(self.held).select(["pool", "dochash"]))
                source = "held"
            rows = con.execute(f"SELECT pool, count(DISTINCT dochash) FROM {source} GROUP BY pool").fetchall()
        finally:
            con.close()
        for pool, n in rows:
            out[int(pool)] = int(n)
        return out

    def close(self) -> None:
        self._cleanup()


def sort_range(table: pa.Table, rows: np.ndarray | None = None) -> pa.Table:
    """``table`` (or its ``rows``) sorted by okey, equal keys by :data:`TIE_BREAK` (only duplicate ids share a
    key in practice): one take, of the sorted rows."""
    rows = np.arange(table.num_rows) if rows is None else rows
    okey = table.column("okey").to_numpy()[rows]
    order = argsort_keys(okey)
    same = okey[order][1:] == okey[order][:-1]
    if same.any():
        at = np.flatnonzero(np.r_[same, False] | np.r_[False, same])  # every member of a run of equal keys
        sub = order[at]
        cols = [table.column(c).to_numpy()[rows[sub]] for c in reversed(TIE_BREAK)]
        order[at] = sub[np.lexsort((*cols, okey[sub]))]  # runs stay in place: okey is the primary key
    return table.take(pa.array(rows[order]))
