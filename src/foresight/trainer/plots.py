"""Sweep plots (each probe score against the swept share, like LSBS Fig. 3 / Fig. 10) and a markdown table.

With several seeds per mixture a point is the mean over seeds, its error bar the seed range (min–max), and the
single runs are drawn faintly behind it; the title carries Spearman's ρ over the points (trainer.summary).
"""

from __future__ import annotations

import math
from pathlib import Path

from foresight.formats.errors import InputError
from foresight.formats.schema import RESULTS_FILE
from foresight.trainer.summary import EFFECT_COLUMNS, effect, summary_markdown

NON_SCORES = {"mixture", "seed", "swept_share", "reasoning_share", "visual_share", "tokens", "manifest_sha256",
              "checkpoint_sha256"}
# Counts and bookkeeping that are not scores to plot.
SKIP_SUFFIXES = ("_n", "_k", "_layer", "_segments", "_bytes", "_pairs", "_chance", "_lm_layer", "_p")
TABLE_COLUMNS = ("mixture", "seed", "swept_share", "reasoning_share", "visual_share", "tokens", "final_loss",
                 "bpb_overall", "color_spearman", "color_mutual_knn", "visual_knowledge_acc", "vision_mutual_knn")


def score_columns(columns: list[str]) -> list[str]:
    return [c for c in columns if c not in NON_SCORES and not c.endswith(SKIP_SUFFIXES)]


CHANCE = {"color_mutual_knn": "color_knn_chance", "vision_mutual_knn": "vision_knn_chance"}


def _chance_column(col: str, columns: list[str]) -> str | None:
    chance = "visual_knowledge_chance" if col.startswith("visual_knowledge_acc") else CHANCE.get(col)
    return chance if chance in columns else None


def _fmt(v: object) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _read(path: Path):
    import polars as pl
    df = pl.read_parquet(path)
    return df.sort(["swept_share", "seed"] if "seed" in df.columns else "swept_share", nulls_last=True)


def markdown_table(sweep_dir: Path) -> str:
    df = _read(sweep_dir / RESULTS_FILE)
    cols = [c for c in TABLE_COLUMNS if c in df.columns]
    cols += [c for c in EFFECT_COLUMNS if c in df.columns and c not in cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.select(cols).iter_rows():
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def plot_sweep(sweep_dir: str | Path) -> list[Path]:
    """One PNG per probe score vs the swept share, an overview grid, and ``results.md``; returns the files."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sweep_dir = Path(sweep_dir)
    path = sweep_dir / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run `foresight sweep SWEEP.toml --shards DIR --out {sweep_dir}` "
                                "first")
    df = _read(path)
    if df["swept_share"].null_count() == df.height:
        raise InputError(f"{path}: swept_share is empty for every mixture; nothing to plot against")
    cols = score_columns(df.columns)
    out_dir = sweep_dir / "plots"
    out_dir.mkdir(exist_ok=True)
    rows = df.to_dicts()
    written: list[Path] = []

    def draw(ax, col: str) -> None:
        e = effect(rows, col)
        xs = [100 * p.share for p in e.points]
        means = [p.mean for p in e.points]
        if any(p.n > 1 for p in e.points):
            runs = [(100 * r["swept_share"], r[col]) for r in rows if r["swept_share"] is not None]
            ax.scatter(*zip(*runs, strict=True), s=8, c="gray", alpha=0.5, label="single seeds")
            yerr = [[p.mean - p.lo for p in e.points], [p.hi - p.mean for p in e.points]]
            ax.errorbar(xs, means, yerr=yerr, marker="o", capsize=3, label="mean, seed range")
            ax.legend(fontsize=7)
        else:
            ax.plot(xs, means, marker="o")
        chance = _chance_column(col, df.columns)
        if chance:
            ax.axhline(float(df[chance].mean()), ls="--", c="gray", lw=1, label="chance")
            ax.legend(fontsize=7)
        ax.set_xlabel("swept share (% of tokens)")
        ax.set_title(col if math.isnan(e.rho) else f"{col} (Spearman ρ {e.rho:+.2f})", fontsize=9)
        ax.grid(alpha=0.3)

    for col in cols:
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        draw(ax, col)
        fig.tight_layout()
        written.append(out_dir / f"{col}.png")
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)
    n = len(cols)
    ncols = min(4, n) or 1
    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3 * nrows), squeeze=False)
    for ax, col in zip(axes.flat, cols, strict=False):
        draw(ax, col)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    written.append(out_dir / "overview.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    md = sweep_dir / "results.md"
    summary = summary_markdown(rows)
    md.write_text(markdown_table(sweep_dir) + ("\n" + summary if summary else ""), encoding="utf-8")
    written.append(md)
    return written
