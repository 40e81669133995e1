"""Read stage: every input record becomes a Document or a counted ``errored/<reason>`` (never lost)."""

from __future__ import annotations

import contextlib
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.writers.disk_base import DiskWriter
from datatrove.utils.logging import logger

from pipeline.readers import InputFile, Problem, iter_file
from pipeline.stages.base import CountingStep


class InputReader(CountingStep):
    """Reads this rank's share of the input files (``files[rank::world_size]``, in sorted order).

    Sharding by a sorted file list makes each rank's documents — and so its shards — depend only on the
    number of tasks, never on how many workers run them.
    """

    name = "📖 foresight reader"
    type = "📖 - READER"

    def __init__(self, files: list[dict[str, str]], text_key: str = "text", max_doc_chars: int = 5_000_000,
                 default_source: str | None = None) -> None:
        super().__init__()
        self.files = [InputFile(**f) for f in files]
        self.text_key = text_key
        self.max_doc_chars = max_doc_chars
        self.default_source = default_source

    exclusion_writer: DiskWriter | None = None  # unreadable records go here, as datatrove's filters do drops

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.exclusion_writer or contextlib.nullcontext() as excluded:
            yield from self._run(rank, world_size, excluded)

    def _run(self, rank: int, world_size: int, excluded: DiskWriter | None) -> DocumentsPipeline:
        for f in self.files[rank::world_size]:
            self.stat_update("input_files")
            n = 0
            for item in iter_file(f, self.text_key, self.max_doc_chars, self.default_source):
                self.count("read", n=item.count if isinstance(item, Problem) else 1)
                if isinstance(item, Problem):
                    self.count("errored", item.reason, item.count)
                    if excluded is not None:
                        excluded.write(_problem_doc(item), rank)
                    logger.warning(f"{item.where}: skipped ({item.reason}: {item.detail[:200]})")
                    continue
                n += 1
                meta: dict[str, Any] = {"source": item.source, "url": item.url, "path": item.path}
                yield Document(text=item.text, id=item.doc_id, metadata=meta)
            if n == 0:
                logger.warning(f"{f.path}: no documents read (empty file?)")


def _problem_doc(p: Problem) -> Document:
    """An unreadable record as an exclusion entry: no text, its place and what was wrong."""
    return Document(text="", id=p.where, metadata={"error": p.detail[:1000], "records": p.count,
                                                   "filter_reason": p.reason})
