"""Write stage: segment documents → rows of ``data/source=<s>/part-<rank:05d>.parquet`` (zstd Parquet).

Rows are appended in stream order and flushed in fixed-size row groups, so memory stays bounded by one row
group per source and the bytes depend only on the rank's documents. Files are written as ``.tmp`` and renamed
when the rank finishes, so a killed task never leaves a half-written shard, and each published file's
sha256 is recorded for finalize to check.

Why not datatrove's ``ParquetWriter``: it writes straight into the final file name (a killed task leaves a
truncated shard under the name of a finished one), passes a codec but no level (our shards are zstd level 3),
and by default writes content-defined chunking and a page index — so its files differ from ours byte for byte.
Making it publish atomically with our options would mean replacing its ``_write`` and ``close``: all of it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from foresight.formats.atomic import write_json_atomic
from foresight.formats.hashing import sha256_file
from foresight.formats.schema import segment_schema, shard_relpath
from foresight.formats.shardio import PARQUET_OPTS, rows_to_table
from foresight.formats.taxonomy import LABEL_NAMES, score_column
from foresight.pipeline.accounting import DOCUMENTS, SEGMENTS, TOKENS, WRITER_STEP

WRITTEN_DIR = "_work/written"  # per-rank {shard path: sha256} as written, checked by finalize


def written_record(root: str | Path, rank: int) -> Path:
    return Path(root) / WRITTEN_DIR / f"{rank:05d}.json"


def segment_row(doc: Document, with_labels: bool, signal_columns: tuple[str, ...]) -> dict[str, Any]:
    m = doc.metadata
    row: dict[str, Any] = {"id": doc.id, "doc_id": m["doc_id"], "segment": m["segment"], "source": m["source"],
                           "url": m.get("url"), "path": m.get("path"), "text": doc.text,
                           "tokens": m["tokens"], "n_tokens": m["n_tokens"]}
    if with_labels:
        if "labels" not in m:
            raise RuntimeError(f"segment {doc.id} reached the writer without labels: the classify step did not run")
        row["labels"] = list(m["labels"])
        for name in LABEL_NAMES:
            row[score_column(name)] = float(m[score_column(name)])
        row["reasoning"], row["visual"] = bool(m["reasoning"]), bool(m["visual"])
    for col in signal_columns:
        v = m.get(col)
        row[col] = float(v) if v is not None else None
    return row


class RankShardWriter:
    """The open shard files of one rank, one per source, each fed in row groups of ``rows_per_group``."""

    def __init__(self, root: str | Path, rank: int, with_labels: bool, signal_columns: tuple[str, ...] = (),
                 rows_per_group: int = 2048) -> None:
        self.root = Path(root)
        self.rank = rank
        self.with_labels = with_labels
        self.signal_columns = tuple(signal_columns)
        self.schema = segment_schema(with_labels, self.signal_columns)
        self.rows_per_group = rows_per_group
        self._buffers: dict[str, list[dict[str, Any]]] = {}
        self._writers: dict[str, tuple[pq.ParquetWriter, Path, Path]] = {}

    def add(self, row: dict[str, Any]) -> None:
        buf = self._buffers.setdefault(row["source"], [])
        buf.append(row)
        if len(buf) >= self.rows_per_group:
            self._flush(row["source"])

    def _flush(self, source: str) -> None:
        rows = self._buffers.get(source)
        if not rows:
            return
        if source not in self._writers:
            final = self.root / shard_relpath(source, self.rank)
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_name(final.name + ".tmp")
            self._writers[source] = (pq.ParquetWriter(tmp, self.schema, **PARQUET_OPTS), tmp, final)
        self._writers[source][0].write_table(rows_to_table(rows, self.with_labels, self.signal_columns))
        self._buffers[source] = []

    def close(self) -> list[str]:
        """Flush, close and publish every file of this rank; returns their paths relative to the root."""
        for source in list(self._buffers):
            self._flush(source)
        rels = []
        for source, (writer, tmp, final) in sorted(self._writers.items()):
            writer.close()
            os.replace(tmp, final)
            rels.append(shard_relpath(source, self.rank))
        self._writers.clear()
        return rels


class ShardWriter(PipelineStep):
    """Writes this rank's segments; counts kept documents (``documents``), ``segments`` and ``tokens``."""

    name = WRITER_STEP
    type = "💽 - WRITER"

    def __init__(self, root: str, with_labels: bool, signal_columns: tuple[str, ...] = (),
                 rows_per_group: int = 2048) -> None:
        super().__init__()
        self.root = root
        self.with_labels = with_labels
        self.signal_columns = tuple(signal_columns)
        self.rows_per_group = rows_per_group

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        writer = RankShardWriter(self.root, rank, self.with_labels, self.signal_columns, self.rows_per_group)
        for doc in data:
            with self.track_time():
                writer.add(segment_row(doc, self.with_labels, self.signal_columns))
            if doc.metadata["segment"] == 0:
                self.stat_update(DOCUMENTS)
            self.stat_update(SEGMENTS)
            self.stat_update(TOKENS, value=int(doc.metadata["n_tokens"]))
        rels = writer.close()
        record = written_record(self.root, rank)
        record.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(record, {r: sha256_file(Path(self.root) / r) for r in rels})
        return
        yield  # a generator that yields nothing: the writer ends the stage
