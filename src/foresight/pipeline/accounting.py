"""Document accounting: read = kept + Σ dropped + Σ errored, per rank and merged (docs/architecture.md).

Counts come from datatrove's own per-step stats, which it saves per task in ``<logging_dir>/stats/<rank>.json``
when the task completes, so a resumed run counts exactly the tasks that finished, once:

- documents read: the reader step's datatrove ``documents`` count (what ``read_files_shard`` yielded) plus
  its ``errored_<reason>`` counts (records it could not turn into documents);
- drops by datatrove filters (quality, language, empty): their ``dropped_<reason>`` keys;
- drops by datatrove's dedup filters: the plain ``dropped`` count of the steps named ``… exact_duplicate`` and
  ``… near_duplicate``;
- kept documents, segments and tokens: the shard writer step's ``documents``, ``segments`` and ``tokens``.

Steps are told apart by their datatrove ``name``. This module sums them over every stage of a run into a
:class:`foresight.formats.accounting.Accounting` (the typed record that ``stats/`` and ``index.json`` hold).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from foresight.formats.accounting import Accounting, AccountingError

DATATROVE_DROPPED = "dropped_"  # datatrove filters count each drop with its reason under this prefix
ERRORED = "errored_"  # the reader counts each unreadable record with its reason under this prefix
DOCUMENTS = "documents"  # datatrove's per-step document count (readers, writers)
SEGMENTS, TOKENS = "segments", "tokens"  # the shard writer's own datatrove stats
# Steps whose plain datatrove ``dropped`` count is a drop reason of its own (named by pipeline/stages/dedup.py).
EXACT_DUPLICATE, NEAR_DUPLICATE = "exact_duplicate", "near_duplicate"
DROPPING_STEPS = (EXACT_DUPLICATE, NEAR_DUPLICATE)
READER_STEP = "📖 foresight reader"  # pipeline/stages/read.py
WRITER_STEP = "💽 shard writer"  # pipeline/stages/write.py

__all__ = ["Accounting", "AccountingError", "from_datatrove_stats", "rank_accounting"]


def _value(v: Any) -> int:
    """datatrove stores a metric as a bare number or as ``{"total": …, …}``."""
    if isinstance(v, dict):
        return int(v.get("total", 0))
    return int(v or 0)


def _step(acc: Accounting, name: str, stats: dict[str, Any]) -> Accounting:
    dedup_reason = next((r for r in DROPPING_STEPS if name.endswith(f" {r}")), None)
    reader, writer = name.endswith(READER_STEP), name.endswith(WRITER_STEP)  # datatrove saves "<type>: <name>"
    for stat, v in stats.items():
        n = _value(v)
        if stat.startswith(DATATROVE_DROPPED):  # datatrove's BaseFilter: dropped_<reason>
            acc += Accounting(dropped={stat[len(DATATROVE_DROPPED):]: n})
        elif dedup_reason and stat == "dropped":  # datatrove's dedup filters: one reason per step
            acc += Accounting(dropped={dedup_reason: n})
        elif reader and stat.startswith(ERRORED):
            acc += Accounting(read=n, errored={stat[len(ERRORED):]: n})
        elif reader and stat == DOCUMENTS:
            acc = acc.bump(read=n)
        elif writer and stat in (DOCUMENTS, SEGMENTS, TOKENS):
            acc = acc.bump(**{"kept" if stat == DOCUMENTS else stat: n})
    return acc


def from_datatrove_stats(steps: list[dict[str, Any]]) -> Accounting:
    """Our counts from one task's datatrove stats file (a list of per-step stats)."""
    acc = Accounting()
    for step in steps:
        acc = _step(acc, str(step.get("name", "")), step.get("stats", {}))
    return acc


def rank_accounting(logging_dirs: list[Path], rank: int) -> Accounting:
    """Counts of one rank summed over the per-rank stages (whose logging dirs are given)."""
    acc = Accounting()
    for d in logging_dirs:
        path = Path(d) / "stats" / f"{rank:05d}.json"
        if not path.is_file():
            raise AccountingError(f"{path} missing: stage {Path(d).name} did not complete rank {rank}; rerun curate")
        acc += from_datatrove_stats(json.loads(path.read_text(encoding="utf-8")))
    return acc
