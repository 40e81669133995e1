"""Streaming shard writer: one zstd Parquet file per (source, rank), Hive-partitioned (docs/architecture.md).

Rows are appended in stream order and flushed in fixed-size row groups, so memory stays bounded by
one row group per source and the bytes depend only on the rank's documents. Files are written as
``.tmp`` and renamed when the rank finishes, so a killed task never leaves a half-written shard.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from formats.schema import segment_schema, shard_relpath
from formats.shardio import PARQUET_OPTS, rows_to_table


class RankShardWriter:
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
