"""Dose-response summary of a sweep: each score per swept share, averaged over seeds, with the seed spread and
Spearman's ρ between the share and the mean score (docs/trainer.md, "Effect sweeps").

The points are the mixtures (x: their swept share, averaged over seeds); a point's runs are its seeds. ρ is
taken over the per-point means (not over single runs), so a seed's noise cannot add points; the spread says
how far one seed is from another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# The scores an effect sweep is about, in the order they are reported; the others stay in results.md's table.
EFFECT_COLUMNS = ("bpb_visual", "bpb_reasoning", "bpb_label_code_reasoning", "bpb_overall", "final_loss")


@dataclass
class Point:
    share: float
    mean: float
    std: float  # sample standard deviation over seeds (0 for a single seed)
    lo: float
    hi: float
    n: int


@dataclass
class Effect:
    column: str
    points: list[Point]
    rho: float  # Spearman ρ of share vs mean score; NaN with < 3 points or a constant score
    trend: str  # "falls" / "rises" (every step strictly), else "not monotone"


def _trend(means: list[float]) -> str:
    steps = [b - a for a, b in zip(means, means[1:], strict=False)]
    if steps and all(s < 0 for s in steps):
        return "falls"
    if steps and all(s > 0 for s in steps):
        return "rises"
    return "not monotone"


def points(rows: list[dict[str, Any]], column: str) -> list[Point]:
    """Per mixture (its seeds' runs): the mean swept share, and the score's mean, std and min–max.

    Grouped by mixture, not by share value: the measured share of a preset mixture can differ a little from
    one seed's selection to another's, and those runs are still one point."""
    groups: dict[Any, list[tuple[float, float]]] = {}
    for r in rows:
        share, v = r.get("swept_share"), r.get(column)
        if share is None or v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        groups.setdefault(r.get("mixture", share), []).append((float(share), float(v)))
    out = []
    for runs in groups.values():
        vals = [v for _, v in runs]
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
        out.append(Point(sum(s for s, _ in runs) / len(runs), mean, std, min(vals), max(vals), len(vals)))
    return sorted(out, key=lambda p: p.share)


def effect(rows: list[dict[str, Any]], column: str) -> Effect:
    from foresight.mixtures.propose import spearman

    pts = points(rows, column)
    means = [p.mean for p in pts]
    return Effect(column, pts, spearman([p.share for p in pts], means), _trend(means))


def effects(rows: list[dict[str, Any]], columns: list[str] | None = None) -> list[Effect]:
    """The effect of every column in ``columns`` (default: the EFFECT_COLUMNS present) that has any points."""
    present = {k for r in rows for k, v in r.items() if v is not None}
    chosen = columns if columns is not None else [c for c in EFFECT_COLUMNS if c in present]
    return [e for e in (effect(rows, c) for c in chosen) if e.points]


def _cell(p: Point) -> str:
    return f"{p.mean:.4f}" if p.n == 1 else f"{p.mean:.4f} ± {p.std:.4f} [{p.lo:.4f}, {p.hi:.4f}]"


def summary_markdown(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A table: one line per swept share (mean ± std [min, max] over seeds), then ρ and the trend per column."""
    found = effects(rows, columns)
    if not found:
        return ""
    seeds = sorted({r["seed"] for r in rows if r.get("seed") is not None})
    shares = sorted({p.share for e in found for p in e.points})
    head = f"Dose-response over {len(shares)} points, {len(seeds) or 1} seed(s) {seeds}: mean ± std [min, max]"
    lines = [head, "", "| swept share % | " + " | ".join(e.column for e in found) + " |",
             "|---|" + "---|" * len(found)]
    for share in shares:
        cells = [next((_cell(p) for p in e.points if p.share == share), "–") for e in found]
        lines.append(f"| {100 * share:g} | " + " | ".join(cells) + " |")
    lines.append("| Spearman ρ | " + " | ".join("–" if math.isnan(e.rho) else f"{e.rho:+.3f}" for e in found) + " |")
    lines.append("| trend of the means | " + " | ".join(e.trend for e in found) + " |")
    return "\n".join(lines) + "\n"
