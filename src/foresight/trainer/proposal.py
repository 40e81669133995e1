"""Predicted against achieved for proposed mixtures (``foresight mix propose``) in a sweep directory.

A proposal's spec carries a ``[provenance]`` table (target, predicted value, regressor, CV scores); the sweep
copies the spec to ``SWEEP_DIR/<mixture>/spec.toml``, and its ``results.parquet`` holds what was achieved
(averaged over seeds when a ``seed`` column exists).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from foresight.formats.schema import RESULTS_FILE
from foresight.formats.settings import Settings

PLOT_FILE = "predicted_vs_achieved.png"


def proposals(sweep_dir: Path) -> list[dict[str, Any]]:
    """One dict per proposed mixture in the sweep: mixture, target, predicted, achieved, regressor, CV scores."""
    import polars as pl

    df = pl.read_parquet(sweep_dir / RESULTS_FILE)
    out = []
    for name in df["mixture"].unique(maintain_order=True).to_list():
        prov = _provenance(sweep_dir / name / "spec.toml")
        target = prov.get("target")
        if not prov or target not in df.columns:
            continue
        achieved = df.filter(pl.col("mixture") == name)[target].mean()
        out.append({"mixture": name, "target": target, "direction": prov.get("direction"),
                    "predicted": float(prov["predicted"]), "achieved": float(achieved),
                    "best_observed": prov.get("best_observed"),
                    "regressor": prov.get("regressor"), "cv_spearman": prov.get("cv_spearman"),
                    "cv_r2": prov.get("cv_r2")})
    return out


def _provenance(spec: Path) -> dict[str, Any]:
    """A proposal's ``[provenance]`` table, or {} for a spec that is not a proposal."""
    prov = Settings.read(spec).table("provenance") if spec.is_file() else {}
    return prov if isinstance(prov, dict) and prov.get("kind") == "foresight-proposal" else {}


def _num(v: Any, digits: int = 4) -> str:
    return "–" if v is None else f"{float(v):.{digits}f}"


def proposal_markdown(rows: list[dict[str, Any]]) -> str:
    """Predicted and achieved beside the best mixture the proposal's sweep measured (from its provenance)."""
    lines = ["| mixture | target | direction | predicted | achieved | best observed in the sweep | regressor | "
             "CV Spearman | CV R² |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mixture']} | {r['target']} | {r['direction']} | {_num(r['predicted'])} | "
                     f"{_num(r['achieved'])} | {_num(r['best_observed'])} | {r['regressor']} | "
                     f"{_num(r['cv_spearman'], 3)} | {_num(r['cv_r2'], 3)} |")
    return "\n".join(lines) + "\n"


def plot_proposals(sweep_dir: Path) -> list[Path]:
    """``plots/predicted_vs_achieved.png`` and ``proposals.md`` when the sweep ran proposals; else nothing."""
    rows = proposals(sweep_dir)
    if not rows:
        return []
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (sweep_dir / "plots").mkdir(exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    xs, ys = [r["predicted"] for r in rows], [r["achieved"] for r in rows]
    ax.scatter(xs, ys)
    for r in rows:
        ax.annotate(r["mixture"], (r["predicted"], r["achieved"]), fontsize=7)
    lo, hi = min(xs + ys), max(xs + ys)
    pad = 0.05 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], ls="--", c="gray", lw=1)  # predicted = achieved
    targets = sorted({r["target"] for r in rows})
    ax.set_xlabel(f"predicted {', '.join(targets)}")
    ax.set_ylabel("achieved")
    ax.set_title("proposals: predicted vs achieved", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png = sweep_dir / "plots" / PLOT_FILE
    fig.savefig(png, dpi=100)
    plt.close(fig)
    md = sweep_dir / "proposals.md"
    md.write_text(proposal_markdown(rows), encoding="utf-8")
    return [png, md]

