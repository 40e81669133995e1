"""Evaluation: per-label precision/recall/F1, macro-F1, Cohen's κ, threshold tuning, per-source label rates."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import numpy as np

from foresight.formats.sources import canonical
from foresight.formats.taxonomy import LABEL_NAMES

THRESHOLD_GRID = np.round(np.arange(0.05, 0.96, 0.05), 2)

# LSBS Table 4 (docs/classifiers.md): percent of 1024-token segments per label, per comparable source, in the order
# code / math / science / reasoning (any) | concept / attribute / relationship / visual (any).
TABLE4_COLUMNS: tuple[str, ...] = ("code_reasoning", "math_reasoning", "science_reasoning", "reasoning",
                                   "visual_concept", "visual_attribute", "visual_relationship", "visual")
LSBS_TABLE4_FULL: dict[str, tuple[float, ...]] = {
    "web-crawl": (3.5, 3.6, 8.6, 10.0, 27.7, 14.1, 13.5, 26.9),
    "encyclopedia": (0.5, 2.3, 3.0, 3.4, 12.2, 2.9, 6.0, 12.4),
    "academia": (21.0, 68.2, 74.4, 83.3, 5.2, 0.7, 5.1, 5.3),
    "literature": (0.3, 1.3, 8.9, 9.1, 33.4, 8.4, 27.9, 33.5),
    "math": (31.1, 81.7, 83.2, 92.9, 7.8, 2.8, 6.6, 8.0),
    "code": (96.7, 13.3, 6.8, 97.3, 3.3, 2.0, 2.4, 3.7),
}
# The combined columns only (reasoning, visual).
LSBS_TABLE4: dict[str, tuple[float, float]] = {s: (v[3], v[7]) for s, v in LSBS_TABLE4_FULL.items()}


def lsbs_reference(source: str) -> tuple[float, float] | None:
    return LSBS_TABLE4.get(canonical(source))


def lsbs_reference_full(source: str) -> dict[str, float] | None:
    """All eight Table 4 columns of a comparable source, keyed by :data:`TABLE4_COLUMNS`."""
    ref = LSBS_TABLE4_FULL.get(canonical(source))
    return dict(zip(TABLE4_COLUMNS, ref, strict=True)) if ref else None


def prf(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Precision, recall, F1 and support of one binary label (0 when undefined)."""
    pred, truth = pred.astype(bool), truth.astype(bool)
    tp = float(np.sum(pred & truth))
    p = tp / float(pred.sum()) if pred.sum() else 0.0
    r = tp / float(truth.sum()) if truth.sum() else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f1, "support": int(truth.sum()), "predicted": int(pred.sum())}


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's κ of two binary raters; 1.0 when both are constant and equal (perfect, trivial agreement)."""
    a, b = a.astype(bool), b.astype(bool)
    n = len(a)
    if n == 0:
        return float("nan")
    po = float(np.mean(a == b))
    pa, pb = float(a.mean()), float(b.mean())
    pe = pa * pb + (1 - pa) * (1 - pb)
    if pe == 1.0:
        return 1.0 if po == 1.0 else 0.0
    return (po - pe) / (1 - pe)


def evaluate(pred: np.ndarray, gold: np.ndarray) -> dict[str, Any]:
    """Per-label P/R/F1 and macro-F1 of a 0/1 prediction matrix against a 0/1 gold matrix."""
    if pred.shape != gold.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from gold shape {gold.shape}")
    per = {name: prf(pred[:, j], gold[:, j]) for j, name in enumerate(LABEL_NAMES)}
    return {"per_label": per, "macro_f1": float(np.mean([v["f1"] for v in per.values()])), "n": int(len(gold))}


def agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Per-label Cohen's κ between two 0/1 label matrices, plus their mean."""
    kap = {name: cohen_kappa(a[:, j], b[:, j]) for j, name in enumerate(LABEL_NAMES)}
    kap["mean"] = float(np.mean(list(kap.values())))
    return kap


def f1_at(scores: np.ndarray, truth: np.ndarray, threshold: float) -> float:
    return prf(scores >= threshold, truth)["f1"]


def tune_thresholds(scores: np.ndarray, y: np.ndarray, default: float = 0.5,
                    min_positives: int = 3) -> dict[str, float]:
    """Per label, the grid threshold with the best validation F1 (ties → closest to 0.5); a label with fewer
    than ``min_positives`` positives in the validation split keeps ``default`` — tuning on one or two
    examples would only fit noise."""
    out = {}
    for j, name in enumerate(LABEL_NAMES):
        if y[:, j].sum() < min_positives:
            out[name] = default
            continue
        best = max(THRESHOLD_GRID, key=lambda t: (round(f1_at(scores[:, j], y[:, j], t), 6), -abs(t - 0.5)))
        out[name] = float(best)
    return out


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded train/validation split; the validation part is non-empty when n ≥ 2 and val_fraction > 0."""
    idx = list(range(n))
    random.Random(seed).shuffle(idx)
    n_val = min(max(1, round(n * val_fraction)), n - 1) if n >= 2 and val_fraction > 0 else 0
    return sorted(idx[n_val:]), sorted(idx[:n_val])


def data_sha256(texts: list[str], y: np.ndarray) -> str:
    """Hash of training data content (texts and label vectors, in order), independent of file encoding."""
    h = hashlib.sha256()
    for t, row in zip(texts, y.tolist(), strict=True):
        h.update(hashlib.sha256(t.encode()).digest() + bytes(int(v) for v in row))
    return h.hexdigest()


def table4_rates(sources: list[str], y: np.ndarray) -> list[dict[str, Any]]:
    """Per source: segments, and % of segments with each Table 4 column (six labels, reasoning, visual) beside
    LSBS's figure where the source is comparable (``lsbs`` None otherwise)."""
    from foresight.formats.taxonomy import labels_in

    cols = {n: y[:, j].astype(bool) for j, n in enumerate(LABEL_NAMES)}
    for g in ("reasoning", "visual"):
        cols[g] = np.stack([cols[n] for n in labels_in(g)], 1).any(1)
    src = np.asarray(sources)
    rows = []
    for name in sorted(set(sources)):
        m = src == name
        rows.append({"source": name, "segments": int(m.sum()),
                     "pct": {c: 100 * float(cols[c][m].mean()) for c in TABLE4_COLUMNS},
                     "lsbs": lsbs_reference_full(name)})
    return rows


def table4_gap(rows: list[dict[str, Any]], columns: tuple[str, ...] = ("reasoning", "visual")) -> float | None:
    """Mean absolute gap in points to Table 4 over the comparable sources and ``columns``."""
    gaps = [abs(r["pct"][c] - r["lsbs"][c]) for r in rows if r["lsbs"] for c in columns]
    return float(np.mean(gaps)) if gaps else None
