"""The datatrove exclusion writer that saves each dropped or unreadable document with its reason."""

from __future__ import annotations

from datatrove.data import Document
from datatrove.pipeline.writers.jsonl import JsonlWriter


class ExclusionWriter(JsonlWriter):
    """datatrove's JsonlWriter (``<folder>/<rank>.jsonl.gz``) that stamps ``filter_reason`` on documents that
    datatrove's own filters (the dedup filters) pass to it without one."""

    def __init__(self, folder: str, reason: str) -> None:
        super().__init__(folder, output_filename="${rank}.jsonl.gz", compression="gzip")
        self.reason = reason

    def write(self, document: Document, rank: int = 0, **kwargs) -> None:
        document.metadata.setdefault("filter_reason", self.reason)
        super().write(document, rank, **kwargs)
