"""One streaming pass over ``entries.parquet`` for the readers that must not hold the manifest (verify, the token
stream behind train and export): a batch of entries at a time, the per-row checks gathered, the entry files
listed, and each entry's place in the token stream written to a per-shard-file part under a temp directory.
Those parts are then read one shard file at a time, so memory is one batch of entries plus one shard file's
columns, whatever the manifest's size (8 bytes per entry are kept: the span lengths the callers return)."""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from foresight.formats.manifest import ManifestHeader
from foresight.manifests.read import entries_path
from foresight.manifests.schema import ENTRY_COLUMNS, ManifestError
from foresight.mixtures.select import stable_keys

SCAN_ROWS = 1 << 20  # entries per batch
# one record per entry, in the part of the shard file it names
PART = np.dtype([("row", "<i8"), ("start", "<i8"), ("end", "<i8"), ("place", "<i8"), ("entry", "<i8"),
                 ("idkey", "<u8"), ("pool", "<i4"), ("epoch", "<i4"), ("sha", "V32")])


def describe(df: pl.DataFrame, local: int, index: int) -> str:
    return f"entry {index} (order {df['order'][local]}, pool {df['pool'][local]!r}, id {df['id'][local]!r})"


def entry_row(path: Path, i: int) -> pl.DataFrame:
    """Entry ``i`` of ``path`` as a one-row frame (read back only on an error path)."""
    pf = pq.ParquetFile(path)
    lo = 0
    for g in range(pf.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        if i < lo + n:
            return pl.from_arrow(pf.read_row_group(g, columns=["order", "pool", "id"]).slice(i - lo, 1))
        lo += n
    raise IndexError(f"{path} has no entry {i}")


@dataclass
class Findings:
    """Per problem, the lowest entry index that has it and how many entries do, gathered a part at a time."""

    first: dict[str, int] = field(default_factory=dict)
    count: dict[str, int] = field(default_factory=dict)

    def add(self, problem: str, entries: np.ndarray) -> None:
        if len(entries):
            self.count[problem] = self.count.get(problem, 0) + len(entries)
            self.first[problem] = min(self.first.get(problem, int(entries.min())), int(entries.min()))

    def raise_first(self, problems: tuple[str, ...], describe_entry: Callable[[int], str]) -> None:
        """ManifestError for the first of ``problems`` (in that order) that any entry has."""
        for p in problems:
            if self.count.get(p):
                n = self.count[p]
                more = f"; {n - 1} more entries have the same problem" if n > 1 else ""
                raise ManifestError(f"{describe_entry(self.first[p])}: {p}{more}")


def open_entries(path: Path) -> pq.ParquetFile:
    try:
        # no pre-buffering: its read cache keeps every row group's bytes until the reader closes (2.3 GB for a
        # 29 M-entry file read a batch at a time)
        pf = pq.ParquetFile(path, pre_buffer=False)
    except Exception as e:  # noqa: BLE001 - any decode failure is the same user-facing problem
        raise ManifestError(f"{path} is not a readable Parquet file ({e})") from e
    missing = [c for c in ENTRY_COLUMNS if c not in pf.schema_arrow.names]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {missing}")
    return pf


def iter_entry_frames(path: Path) -> Iterator[tuple[int, pl.DataFrame]]:
    """(index of the first entry, entries) a batch at a time; n_tokens as int64 (older manifests hold int32)."""
    offset = 0
    try:
        pf = open_entries(path)
        for group in range(pf.num_row_groups):  # a reader per row group: one reader over the file grew with it
            for batch in pf.iter_batches(SCAN_ROWS, row_groups=[group], columns=list(ENTRY_COLUMNS)):
                df = pl.from_arrow(pa.Table.from_batches([batch])).with_columns(pl.col("n_tokens").cast(pl.Int64))
                yield offset, df
                offset += len(df)
    except ManifestError:
        raise
    except (OSError, pa.ArrowException) as e:
        raise ManifestError(f"{path} is not a readable Parquet file ({e})") from e


def sha_records(sha: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """32-byte hashes as ``V32`` records; values of another size or missing (refused by the row checks) as
    zeros."""
    sha = sha.combine_chunks() if isinstance(sha, pa.ChunkedArray) else sha
    if len(sha) == 0:
        return np.zeros(0, "V32")
    sha = sha.cast(pa.binary())
    ok = pc.fill_null(pc.equal(pc.binary_length(sha), 32), False)
    fixed = pc.if_else(ok, sha, pa.scalar(b"\0" * 32, pa.binary())).cast(pa.binary(32))
    data = np.frombuffer(fixed.buffers()[1], dtype=np.uint8)
    return data[fixed.offset * 32:(fixed.offset + len(fixed)) * 32].copy().view("V32")


class EntryScan:
    """The scan's result: entry files (first entry naming each), span lengths, and the per-file parts."""

    def __init__(self, manifest_dir: str | Path, head: ManifestHeader) -> None:
        from foresight.manifests.verify import ROW_PROBLEMS, add_files, row_findings

        self.path = entries_path(manifest_dir)
        self.pool_names = list(head.pools)
        self.files: dict[str, int] = {}  # rel -> first entry naming it, in first-appearance order
        self.codes: dict[str, int] = {}  # rel -> its part's number
        self.findings = Findings()
        self.dir = Path(tempfile.mkdtemp(prefix="foresight-entries-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.dir, True)
        self.lengths = np.zeros(open_entries(self.path).metadata.num_rows, np.int64)  # filled batch by batch
        place = 0
        for offset, df in iter_entry_frames(self.path):
            row_findings(df, head.pools, offset, self.findings)
            add_files(self.files, df, offset)
            span = np.maximum(df["end"].to_numpy().astype(np.int64) - df["start"].to_numpy().astype(np.int64), 0)
            self.lengths[offset:offset + len(df)] = span
            ends = place + np.cumsum(span)
            self._write_parts(df, offset, ends - span)
            place = int(ends[-1]) if len(ends) else place
        self.findings.raise_first(ROW_PROBLEMS, self.describe)

    def _write_parts(self, df: pl.DataFrame, offset: int, place: np.ndarray) -> None:
        """Append each entry's record to the part of the shard file it names (entry order within a part)."""
        rec = np.zeros(len(df), PART)
        for c in ("row", "start", "end", "epoch"):
            rec[c] = df[c].to_numpy()
        rec["place"], rec["entry"] = place, np.arange(offset, offset + len(df))
        rec["idkey"] = stable_keys(df["id"].to_arrow(), 0)
        lookup = {name: i for i, name in enumerate(self.pool_names)}
        rec["pool"] = np.fromiter((lookup.get(p, -1) for p in df["pool"].to_list()), np.int32, len(df))
        rec["sha"] = sha_records(df["text_sha256"].to_arrow())
        groups = df.select("file").with_row_index("_i").group_by("file", maintain_order=True).agg(pl.col("_i"))
        for rel, idx in groups.iter_rows():
            with open(self.part_path(rel), "ab") as f:
                rec[np.asarray(idx, dtype=np.int64)].tofile(f)

    def describe(self, i: int) -> str:
        return describe(entry_row(self.path, i), 0, i)

    def entry_id(self, i: int) -> str:
        return str(entry_row(self.path, i)["id"][0])

    def part_path(self, rel: str) -> Path:
        return self.dir / f"{self.codes.setdefault(rel, len(self.codes)):08d}.bin"

    def part(self, rel: str) -> np.ndarray:
        """The records of the entries naming ``rel``, in entry order."""
        path = self.part_path(rel)
        return np.fromfile(path, PART) if path.exists() else np.zeros(0, PART)

    def close(self) -> None:
        self._cleanup()

    def __enter__(self) -> EntryScan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
