"""Shared plumbing for our stages: accounting counters on top of datatrove's per-step stats."""

from __future__ import annotations

from datatrove.pipeline.base import PipelineStep

from pipeline.accounting import key


class CountingStep(PipelineStep):
    """A PipelineStep that records read/kept/dropped/errored counts where accounting.py finds them."""

    def count(self, kind: str, reason: str | None = None, n: int = 1) -> None:
        if n:
            self.stat_update(key(kind, reason), value=n)

    def drop(self, reason: str, n: int = 1) -> None:
        self.count("dropped", reason, n)

    def error(self, reason: str, n: int = 1) -> None:
        self.count("errored", reason, n)
