"""Document accounting: read = kept + Σ dropped + Σ errored, per rank and merged (docs/architecture.md).

Counts come from datatrove's own per-step stats, which it saves per task in ``<logging_dir>/stats/<rank>.json``
when the task completes, so a resumed run counts exactly the tasks that finished, once:

- drops by datatrove filters (quality, language, empty): their ``dropped_<reason>`` keys;
- drops by datatrove's dedup filters: the plain ``dropped`` count of the steps named ``… exact_duplicate`` and
  ``… near_duplicate``;
- what datatrove has no key for, our steps record under ``acct:`` (``acct:read``, ``acct:kept``,
  ``acct:errored/<reason>``, ``acct:segments``, ``acct:tokens``).

This module sums them over every stage of a run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PREFIX = "acct:"
DATATROVE_DROPPED = "dropped_"  # datatrove filters count each drop with its reason under this prefix
# Steps whose plain datatrove ``dropped`` count is a drop reason of its own (named by pipeline/stages/dedup.py).
EXACT_DUPLICATE, NEAR_DUPLICATE = "exact_duplicate", "near_duplicate"
DROPPING_STEPS = (EXACT_DUPLICATE, NEAR_DUPLICATE)
READ, KEPT, SEGMENTS, TOKENS = "read", "kept", "segments", "tokens"


class AccountingError(RuntimeError):
    """The invariant read = kept + Σ dropped + Σ errored does not hold: documents went missing."""


def key(kind: str, reason: str | None = None) -> str:
    """The stats key for a count: ``acct:read`` or ``acct:dropped/<reason>``."""
    return f"{PREFIX}{kind}" if reason is None else f"{PREFIX}{kind}/{reason}"


def empty() -> dict[str, Any]:
    return {READ: 0, KEPT: 0, "dropped": {}, "errored": {}, SEGMENTS: 0, TOKENS: 0}


def _value(v: Any) -> int:
    """datatrove stores a metric as a bare number or as ``{"total": …, …}``."""
    if isinstance(v, dict):
        return int(v.get("total", 0))
    return int(v or 0)


def from_datatrove_stats(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Our counts from one task's datatrove stats file (a list of per-step stats)."""
    acc = empty()
    for step in steps:
        step_reason = next((r for r in DROPPING_STEPS if str(step.get("name", "")).endswith(f" {r}")), None)
        for name, v in step.get("stats", {}).items():
            if step_reason and name == "dropped":  # datatrove's dedup filters: one reason per step
                acc["dropped"][step_reason] = acc["dropped"].get(step_reason, 0) + _value(v)
                continue
            if name.startswith(DATATROVE_DROPPED):  # datatrove's BaseFilter: dropped_<reason>
                reason = name[len(DATATROVE_DROPPED):]
                acc["dropped"][reason] = acc["dropped"].get(reason, 0) + _value(v)
                continue
            if not name.startswith(PREFIX):
                continue
            kind, _, reason = name[len(PREFIX):].partition("/")
            if reason:
                acc[kind][reason] = acc[kind].get(reason, 0) + _value(v)
            else:
                acc[kind] = acc.get(kind, 0) + _value(v)
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
