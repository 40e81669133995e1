"""Document accounting: read = kept + Σ dropped + Σ errored, per rank and merged (docs/architecture.md).

Counts come from datatrove's own per-step stats, which it saves per task in ``<logging_dir>/stats/<rank>.json``
when the task completes, so a resumed run counts exactly the tasks that finished, once:

- documents read: the reader step's datatrove ``documents`` count (what ``read_files_shard`` yielded) plus
  its ``errored_<reason>`` counts (records it could not turn into documents);
- drops by datatrove filters (quality, language, empty): their ``dropped_<reason>`` keys;
- drops by datatrove's dedup filters: the plain ``dropped`` count of the steps named ``… exact_duplicate`` and
  ``… near_duplicate``;
- kept documents, segments and tokens: the shard writer step's ``documents``, ``segments`` and ``tokens``.

Steps are told apart by their datatrove ``name``. This module sums them over every stage of a run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from foresight.formats.errors import ForesightError

DATATROVE_DROPPED = "dropped_"  # datatrove filters count each drop with its reason under this prefix
ERRORED = "errored_"  # the reader counts each unreadable record with its reason under this prefix
DOCUMENTS = "documents"  # datatrove's per-step document count (readers, writers)
# Steps whose plain datatrove ``dropped`` count is a drop reason of its own (named by pipeline/stages/dedup.py).
EXACT_DUPLICATE, NEAR_DUPLICATE = "exact_duplicate", "near_duplicate"
DROPPING_STEPS = (EXACT_DUPLICATE, NEAR_DUPLICATE)
READ, KEPT, SEGMENTS, TOKENS = "read", "kept", "segments", "tokens"
READER_STEP = "📖 foresight reader"  # pipeline/stages/read.py
WRITER_STEP = "💽 shard writer"  # pipeline/stages/write.py


class AccountingError(ForesightError, RuntimeError):
    """The invariant read = kept + Σ dropped + Σ errored does not hold: documents went missing."""


def empty() -> dict[str, Any]:
    return {READ: 0, KEPT: 0, "dropped": {}, "errored": {}, SEGMENTS: 0, TOKENS: 0}


def _value(v: Any) -> int:
    """datatrove stores a metric as a bare number or as ``{"total": …, …}``."""
    if isinstance(v, dict):
        return int(v.get("total", 0))
    return int(v or 0)


def _bump(counts: dict[str, int], reason: str, n: int) -> None:
    counts[reason] = counts.get(reason, 0) + n


def _step(acc: dict[str, Any], name: str, stats: dict[str, Any]) -> None:
    dedup_reason = next((r for r in DROPPING_STEPS if name.endswith(f" {r}")), None)
    reader, writer = name.endswith(READER_STEP), name.endswith(WRITER_STEP)  # datatrove saves "<type>: <name>"
    for stat, v in stats.items():
        n = _value(v)
        if stat.startswith(DATATROVE_DROPPED):  # datatrove's BaseFilter: dropped_<reason>
            _bump(acc["dropped"], stat[len(DATATROVE_DROPPED):], n)
        elif dedup_reason and stat == "dropped":  # datatrove's dedup filters: one reason per step
            _bump(acc["dropped"], dedup_reason, n)
        elif reader and stat.startswith(ERRORED):
            _bump(acc["errored"], stat[len(ERRORED):], n)
            acc[READ] += n
        elif reader and stat == DOCUMENTS:
            acc[READ] += n
        elif writer and stat in (DOCUMENTS, SEGMENTS, TOKENS):
            acc[KEPT if stat == DOCUMENTS else stat] += n


def from_datatrove_stats(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Our counts from one task's datatrove stats file (a list of per-step stats)."""
    acc = empty()
    for step in steps:
        _step(acc, str(step.get("name", "")), step.get("stats", {}))
    return acc


def add(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = empty()
    for k in (READ, KEPT, SEGMENTS, TOKENS):
        out[k] = a.get(k, 0) + b.get(k, 0)
    for k in ("dropped", "errored"):
        merged = dict(a.get(k, {}))
        for reason, n in b.get(k, {}).items():
            merged[reason] = merged.get(reason, 0) + n
        out[k] = dict(sorted(merged.items()))
    return out


def rank_accounting(logging_dirs: list[Path], rank: int) -> dict[str, Any]:
    """Counts of one rank summed over the per-rank stages (whose logging dirs are given)."""
    acc = empty()
    for d in logging_dirs:
        path = Path(d) / "stats" / f"{rank:05d}.json"
        if not path.is_file():
            raise AccountingError(f"{path} missing: stage {Path(d).name} did not complete rank {rank}; rerun curate")
        acc = add(acc, from_datatrove_stats(json.loads(path.read_text(encoding="utf-8"))))
    return acc


def balance(acc: dict[str, Any]) -> int:
    """read − (kept + Σ dropped + Σ errored); zero when nothing was lost or double counted."""
    return acc[READ] - acc[KEPT] - sum(acc["dropped"].values()) - sum(acc["errored"].values())


def check(acc: dict[str, Any], what: str = "run") -> None:
    """Fail loudly if documents were lost or double counted."""
    diff = balance(acc)
    if diff != 0:
        raise AccountingError(
            f"accounting invariant violated for {what}: read={acc[READ]} but kept={acc[KEPT]} + "
            f"dropped={sum(acc['dropped'].values())} + errored={sum(acc['errored'].values())} "
            f"differs by {diff}; this is a pipeline bug — please report it with the stats/ directory"
        )


def summary_rows(acc: dict[str, Any]) -> list[tuple[str, int]]:
    """(label, count) rows for a summary table."""
    rows = [("read", acc[READ]), ("kept", acc[KEPT])]
    rows += [(f"dropped: {r}", n) for r, n in sorted(acc["dropped"].items())]
    rows += [(f"errored: {r}", n) for r, n in sorted(acc["errored"].items())]
    rows += [("segments", acc[SEGMENTS]), ("tokens", acc[TOKENS])]
    return rows
