"""The mixture table printed by ``foresight mix`` / ``mix plan`` / ``manifest show``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from foresight.formats.manifest import PoolHeader


def _pct(x: float | None) -> str:
    return "n/a (unlabelled shards)" if x is None else f"{100 * x:.1f} %"


def mixture_table(name: str, total: int, pools: dict[str, PoolHeader], shares: dict[str, float | None],
                  feasible_note: bool = False) -> Table:
    """One row per pool (as the manifest header records it) plus a total row and the label shares."""
    table = Table(title=f"mixture {name}: {total:,} tokens", title_justify="left")
    for col in ("pool", "weight", "target", "achieved", "segments", "documents", "epochs", "cut"):
        table.add_column(col, justify="left" if col == "pool" else "right")
    if feasible_note:
        table.add_column("available", justify="right")
    for name_, p in pools.items():  # callers pass spec order
        row = [name_, f"{p.weight:.4g}", f"{p.target_tokens:,}", f"{p.achieved_tokens:,}",
               f"{p.segments:,}", f"{p.documents:,}", str(p.epochs), "yes" if p.cut else "no"]
        if feasible_note:
            rep = p.max_repetition
            row.append(f"{p.available_tokens:,}" + (f" x{rep:g}" if rep != 1 else ""))
        table.add_row(*row)
    achieved = sum(p.achieved_tokens for p in pools.values())
    tail = ["total", "1", f"{sum(p.target_tokens for p in pools.values()):,}", f"{achieved:,}",
            f"{sum(p.segments for p in pools.values()):,}", f"{sum(p.documents for p in pools.values()):,}",
            "", ""]
    if feasible_note:
        tail.append("")
    table.add_row(*tail, style="bold")
    table.caption = (f"reasoning share {_pct(shares.get('reasoning'))}, visual share {_pct(shares.get('visual'))} "
                     f"of mixture tokens")
    table.caption_justify = "left"
    return table


def lsbs_note(spec: Any, shares: dict[str, float | None]) -> str | None:
    """For a shipped LSBS mix preset: Table 2's reasoning/visual shares beside the ones our labels give."""
    from foresight.mixtures.presets_gen import PRESETS_DIR, lsbs_shares

    printed = lsbs_shares(spec.name)
    if printed is None or spec.path is None or Path(spec.path).resolve().parent != PRESETS_DIR.resolve():
        return None
    return (f"LSBS Table 2 for {spec.name}: reasoning {printed[0]:.1f} %, visual {printed[1]:.1f} %; "
            f"our labels on these shards: reasoning {_pct(shares.get('reasoning'))}, "
            f"visual {_pct(shares.get('visual'))}")


def plan_table(p: Any) -> Table:
    """Table of a :class:`mixtures.planner.Plan` (for an LSBS mix preset, with Table 2's shares beside ours)."""
    table = mixture_table(p.spec.name, p.total_tokens, {pp.name: pp.header() for pp in p.pools}, p.shares,
                          feasible_note=True)
    note = lsbs_note(p.spec, p.shares)
    if note:
        table.caption = f"{table.caption}\n{note}"
    return table
