"""Tables for ``foresight classify cv`` and ``classify eval --by``: per-label scores and per-group breakdowns."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

from foresight.cli.commands.common import console
from foresight.formats.taxonomy import LABEL_NAMES

SHORT = {"visual_concept": "conc", "visual_attribute": "attr", "visual_relationship": "rel",
         "code_reasoning": "code", "math_reasoning": "math", "science_reasoning": "sci"}


def _f(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def print_scores(title: str, result: dict[str, Any]) -> None:
    table = Table(title=title)
    for col in ("label", "precision", "recall", "F1", "support", "predicted"):
        table.add_column(col, justify="left" if col == "label" else "right")
    for label, m in result["per_label"].items():
        table.add_row(label, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]),
                      str(m["predicted"]))
    console.print(table)


def print_breakdown(title: str, rows: list[dict[str, Any]]) -> None:
    """One row per key: segments, macro-F1 over the labels its gold has, exact-match share, per-label F1."""
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1),
                  caption="macro: mean F1 over the labels in this key's gold; exact: whole label set right")
    for col in ("held out", "n", "macro", "exact", *SHORT.values()):
        table.add_column(col, justify="left" if col == "held out" else "right", no_wrap=True)
    for r in rows:
        table.add_row(r["key"], str(r["n"]), _f(r["macro_f1"]), _f(r["exact"]),
                      *(_f(r["f1"][n]) for n in LABEL_NAMES))
    console.print(table)
