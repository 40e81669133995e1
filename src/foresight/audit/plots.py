"""The report's PNG plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def composition_heatmap(matrix: pl.DataFrame, path: Path) -> Path:
    """Sources × labels; colour = tokens, text = share of the source's tokens carrying the label."""
    sources = matrix["source"].to_list()
    labels = [c for c in matrix.columns if c not in ("source", "tokens")]
    values = matrix.select(labels).to_numpy().astype(float)
    totals = matrix["tokens"].to_numpy().astype(float)
    fig, ax = plt.subplots(figsize=(1.3 * len(labels) + 3, 0.45 * len(sources) + 2))
    image = ax.imshow(values, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right")
    ax.set_yticks(range(len(sources)), sources)
    for i in range(len(sources)):
        for j in range(len(labels)):
            share = values[i, j] / totals[i] if totals[i] else 0.0
            colour = "white" if values[i, j] < values.max() / 2 else "black"
            ax.text(j, i, f"{100 * share:.0f}%", ha="center", va="center", fontsize=8, color=colour)
    fig.colorbar(image, ax=ax, label="tokens")
    ax.set_title("Tokens by source × label (cell text: % of the source's tokens)")
    return _save(fig, path)


def share_bars(shares: pl.DataFrame, path: Path) -> Path:
    """Per manifest: achieved reasoning/visual token share next to the spec's target."""
    names = shares["manifest"].to_list()
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 2, figsize=(max(6, 1.6 * len(names) + 3), 4), sharey=True)
    for ax, flag in zip(axes, ("reasoning", "visual"), strict=True):
        achieved = shares[f"{flag}_share"].fill_null(0).to_numpy()
        target = shares[f"target_{flag}_share"].to_numpy()
        ax.bar(x - 0.2, achieved, width=0.4, label="achieved")
        have = ~np.isnan(target.astype(float))
        ax.bar(x[have] + 0.2, target[have], width=0.4, label="spec target", alpha=0.7)
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set_title(f"{flag} share of tokens")
        ax.set_ylim(0, 1)
        ax.legend()
    return _save(fig, path)


def _grid(n: int) -> tuple[plt.Figure, list[plt.Axes]]:
    cols = min(4, max(1, n))
    rows = math.ceil(n / cols) if n else 1
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.axis("off")
    return fig, flat


def length_histograms(hist: pl.DataFrame, path: Path) -> Path:
    """One histogram of segment lengths (tokens) per source, from pre-binned counts."""
    sources = sorted(hist["source"].unique().to_list())
    top = int(hist["bin_end"].max() or 1)
    fig, axes = _grid(len(sources))
    for ax, source in zip(axes, sources, strict=False):
        part = hist.filter(pl.col("source") == source).sort("bin_start")
        widths = (part["bin_end"] - part["bin_start"]).to_numpy()
        ax.bar(part["bin_start"].to_numpy(), part["segments"].to_numpy(), width=widths, align="edge",
               edgecolor="white", linewidth=0.5)
        ax.set_xlim(0, top)  # one x scale for every source, so lengths compare across panels
        ax.set_title(source, fontsize=9)
        ax.set_xlabel("tokens per segment", fontsize=8)
    fig.suptitle("Segment length (tokens) per source")
    return _save(fig, path)


def score_histograms(hist: pl.DataFrame, path: Path) -> Path:
    """One histogram (log counts) of classifier scores per label, from pre-binned counts."""
    labels = list(dict.fromkeys(hist["label"].to_list()))
    fig, axes = _grid(len(labels))
    for ax, label in zip(axes, labels, strict=False):
        part = hist.filter(pl.col("label") == label).sort("bin_start")
        ax.bar(part["bin_start"].to_numpy(), part["segments"].to_numpy(), width=part["bin_width"].to_numpy(),
               align="edge", log=True, edgecolor="white", linewidth=0.5)
        ax.set_xlim(0, 1)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("score", fontsize=8)
    fig.suptitle("Classifier score distributions per label")
    return _save(fig, path)


def drop_bars(drops: pl.DataFrame, path: Path) -> Path:
    """Documents dropped or errored, by reason."""
    drops = drops.sort("documents")
    fig, ax = plt.subplots(figsize=(7, 0.35 * max(drops.height, 1) + 1.5))
    labels = [f"{k}: {r}" for k, r in zip(drops["kind"], drops["reason"], strict=True)]
    ax.barh(labels, drops["documents"].to_numpy())
    ax.set_xlabel("documents")
    ax.set_title("Documents removed by reason (index accounting)")
    return _save(fig, path)
