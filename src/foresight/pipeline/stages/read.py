"""Read stage: every input record becomes a Document or a counted ``errored_<reason>`` (never lost).

:class:`InputReader` is a datatrove ``BaseDiskReader``: datatrove's ``read_files_shard`` walks the files and
counts ``input_files`` and ``documents`` (the documents each file yielded), and ``update_doc_stats`` the
lengths. What we add is in ``read_file``: our tolerant per-format readers (``pipeline/readers.py``) turn each
record they cannot read into an ``errored_<reason>`` count, an exclusion row and a warning naming the
file and line, and go on reading.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.readers.base import BaseDiskReader
from datatrove.pipeline.writers.disk_base import DiskWriter
from datatrove.utils.logging import logger

from foresight.pipeline.accounting import ERRORED, READER_STEP
from foresight.pipeline.readers import InputFile, Problem, iter_file


def _root(files: list[InputFile]) -> str:
    """The folder the inputs share (datatrove's ``data_folder``; our file list, not a listing of it, is read)."""
    local = [os.path.dirname(f.path) for f in files if "://" not in f.path]
    if len(local) == len(files) and local:
        return os.path.commonpath(local)
    return os.path.dirname(files[0].path) if files else "."


class InputReader(BaseDiskReader):
    """Reads this rank's share of the input files (``files[rank::world_size]``, in sorted order).

    Sharding by a sorted file list makes each rank's documents — and so its shards — depend only on the
    number of tasks, never on how many workers run them. datatrove shards one folder's listing the same way;
    ours are files, directories, globs and URLs of several roots, discovered once by ``discover_inputs``.
    """

    name = READER_STEP

    def __init__(self, files: list[dict[str, str]], text_key: str = "text", max_doc_chars: int = 5_000_000,
                 default_source: str | None = None) -> None:
        self.files = [InputFile(**f) for f in files]
        super().__init__(_root(self.files), text_key=text_key, add_file_path=False)
        self._by_path = {f.path: f for f in self.files}
        self.max_doc_chars = max_doc_chars
        self.default_source = default_source

    exclusion_writer: DiskWriter | None = None  # unreadable records go here, as datatrove's filters do drops

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        shard = [f.path for f in self.files[rank::world_size]]
        with self.exclusion_writer or contextlib.nullcontext() as excluded:
            self._excluded, self._rank = excluded, rank
            for doc in self.read_files_shard(shard):
                self.update_doc_stats(doc)
                yield doc

    def read_file(self, filepath: str) -> DocumentsPipeline:
        f = self._by_path[filepath]
        n = 0
        for item in iter_file(f, self.text_key, self.max_doc_chars, self.default_source):
            if isinstance(item, Problem):
                self._problem(item)
                continue
            n += 1
            meta: dict[str, Any] = {"source": item.source, "url": item.url, "path": item.path}
            yield Document(text=item.text, id=item.doc_id, metadata=meta)
        if n == 0:
            logger.warning(f"{f.path}: no documents read (empty file?)")

    def _problem(self, p: Problem) -> None:
        self.stat_update(ERRORED + p.reason, value=p.count)
        if self._excluded is not None:
            self._excluded.write(_problem_doc(p), self._rank)
        logger.warning(f"{p.where}: skipped ({p.reason}: {p.detail[:200]})")


def _problem_doc(p: Problem) -> Document:
    """An unreadable record as an exclusion entry: no text, its place and what was wrong."""
    return Document(text="", id=p.where, metadata={"error": p.detail[:1000], "records": p.count,
                                                   "filter_reason": p.reason})
