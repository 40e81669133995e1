"""Write stage: segment documents → shard rows; counts kept documents, segments and tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datatrove.data import Document, DocumentsPipeline

from formats.atomic import write_json_atomic
from formats.hashing import sha256_file
from formats.taxonomy import LABEL_NAMES, score_column
from pipeline.stages.base import CountingStep
from pipeline.writers import RankShardWriter

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


class ShardWriter(CountingStep):
    """Writes this rank's segments to ``data/source=<s>/part-<rank>.parquet`` (one file per source)."""

    name = "💽 shard writer"
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
                self.count("kept")
            self.count("segments")
            self.count("tokens", n=int(doc.metadata["n_tokens"]))
        rels = writer.close()
        record = written_record(self.root, rank)
        record.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(record, {r: sha256_file(Path(self.root) / r) for r in rels})
        return
        yield  # a generator that yields nothing: the writer ends the stage
