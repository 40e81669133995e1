"""Intermediate documents between the filter stage and the dedup/segment stages (one file per rank).

Dedup is multi-stage: signatures are computed over a rank's documents, duplicates found globally, and
then the same rank's documents are filtered by their position in that rank's stream. Writing the
filtered documents once (gzip JSONL, ``<rank>.jsonl.gz``) and reading them back in the same order keeps
those positions aligned without re-running the filters.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from foresight.formats.atomic import replacing


def rank_file(folder: str | Path, rank: int) -> Path:
    return Path(folder) / f"{rank:05d}.jsonl.gz"


class IntermediateWriter(PipelineStep):
    """Writes every document of the rank (always creating the file, even when empty) and passes nothing on."""

    name = "💾 intermediate writer"
    type = "💽 - WRITER"

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        path = rank_file(self.folder, rank)
        path.parent.mkdir(parents=True, exist_ok=True)
        # mtime=0 keeps the gzip header, and so the file, byte-identical across reruns.
        with replacing(path) as tmp, open(tmp, "wb") as raw, \
                gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as out:
            for doc in data:
                out.write(orjson.dumps({"id": doc.id, "text": doc.text, "metadata": doc.metadata}) + b"\n")
                self.stat_update("written")
        return
        yield  # a generator that yields nothing: this step ends its stage


class IntermediateReader(PipelineStep):
    """Reads back exactly this rank's intermediate file, in the order it was written."""

    name = "📖 intermediate reader"
    type = "📖 - READER"

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        path = rank_file(self.folder, rank)
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing: the filter stage did not finish rank {rank}; rerun curate")
        with gzip.open(path, "rb") as f:
            for line in f:
                obj = orjson.loads(line)
                yield Document(text=obj["text"], id=obj["id"], metadata=obj["metadata"])
