"""Shared plumbing for our stages: accounting counters on top of datatrove's per-step stats, and an optional
datatrove exclusion writer that saves each dropped or errored document with its reason."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.disk_base import DiskWriter
from datatrove.pipeline.writers.jsonl import JsonlWriter

from pipeline.accounting import key


class CountingStep(PipelineStep):
    """A PipelineStep that records read/kept/errored counts where accounting.py finds them.

    With an ``exclusion_writer`` (a datatrove DiskWriter, as datatrove's own filters take), every document
    passed to ``error`` is written there with ``metadata["filter_reason"]``, inside ``excluding``. (Steps that
    drop documents are datatrove filters, which count and write their drops themselves.)
    """

    exclusion_writer: DiskWriter | None = None
    _excluded = None

    def count(self, kind: str, reason: str | None = None, n: int = 1) -> None:
        if n:
            self.stat_update(key(kind, reason), value=n)

    def error(self, reason: str, n: int = 1, doc: Document | None = None) -> None:
        self.count("errored", reason, n)
        self._exclude(doc, reason)

    def _exclude(self, doc: Document | None, reason: str) -> None:
        if doc is not None and self._excluded is not None:
            doc.metadata["filter_reason"] = reason
            self._excluded(doc)

    @contextmanager
    def excluding(self, rank: int) -> Iterator[None]:
        """Open the exclusion writer (if any) for this rank's run."""
        if self.exclusion_writer is None:
            yield
            return
        with self.exclusion_writer as writer:
            self._excluded = lambda doc: writer.write(doc, rank)
            try:
                yield
            finally:
                self._excluded = None


class ExclusionWriter(JsonlWriter):
    """datatrove's JsonlWriter (``<folder>/<rank>.jsonl.gz``) that stamps ``filter_reason`` on documents that
    datatrove's own filters (the dedup filters) pass to it without one."""

    def __init__(self, folder: str, reason: str) -> None:
        super().__init__(folder, output_filename="${rank}.jsonl.gz", compression="gzip")
        self.reason = reason

    def write(self, document: Document, rank: int = 0, **kwargs) -> None:
        document.metadata.setdefault("filter_reason", self.reason)
        super().write(document, rank, **kwargs)
