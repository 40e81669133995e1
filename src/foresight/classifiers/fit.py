"""Model selection by grouped CV: the fit/score functions each classifier kind offers to ``cv.cross_fit``, and
the training of the static-embedding classifier whose regularisation and thresholds come from grouped CV."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from foresight.classifiers.cv import FitPredict, cross_fit, cv_report, group_folds
from foresight.classifiers.evaluate import data_sha256
from foresight.classifiers.static import Features, LogisticHeads, StaticClassifier, StaticEmbedder
from foresight.formats.taxonomy import LABEL_NAMES

C_GRID = (0.25, 1.0, 4.0, 16.0)  # inverse L2 strength of the logistic heads, chosen by grouped CV
KINDS = ("static", "fasttext", "rules", "transformer")


def static_fit_predict(x: np.ndarray, y: np.ndarray, c: float) -> FitPredict:
    def fp(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        return LogisticHeads.fit(x[train], y[train], c=c).predict(x[test])
    return fp


def fasttext_fit_predict(texts: list[str], y: np.ndarray, **kw: Any) -> FitPredict:
    """fastText trained on the training folds' own labels (no teacher): what an n-gram model learns from them."""
    from foresight.classifiers.fasttext_model import train_fasttext

    def fp(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        with tempfile.TemporaryDirectory() as tmp:
            clf = train_fasttext([texts[i] for i in train], y[train], Path(tmp) / "cv.bin", **kw)
            return clf.predict_scores([texts[i] for i in test])
    return fp


def rules_fit_predict(texts: list[str]) -> FitPredict:
    """The rules teacher learns nothing; its scores are the same in every fold."""
    from foresight.classifiers.teacher.rules import RulesTeacher

    teacher = RulesTeacher()
    return lambda train, test: teacher.predict_scores([texts[i] for i in test])


def transformer_fit_predict(texts: list[str], y: np.ndarray, cfg: Any) -> FitPredict:
    """The transformer fine-tuned per fold (slow on CPU: one fine-tune per fold)."""
    from foresight.classifiers.train import train_transformer

    def fp(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        with tempfile.TemporaryDirectory() as tmp:
            clf, _ = train_transformer([texts[i] for i in train], y[train], Path(tmp), cfg)
            return clf.predict_scores([texts[i] for i in test])
    return fp


def choose_c(x: np.ndarray, y: np.ndarray, folds: np.ndarray, groups: Sequence[str],
             grid: Sequence[float] = C_GRID, log: Callable[[str], None] | None = None
             ) -> tuple[float, dict[str, Any], np.ndarray]:
    """The C with the best cross-fitted grouped-CV macro-F1: ``(c, its report, its out-of-fold scores)``."""
    best: tuple[float, dict[str, Any], np.ndarray] | None = None
    for c in grid:
        oof = cross_fit(folds, static_fit_predict(x, y, c))
        rep = cv_report(oof, y, folds, groups)
        if log:
            log(f"C={c:g}: grouped-CV macro-F1 {rep['macro_f1']:.3f}")
        if best is None or rep["macro_f1"] > best[1]["macro_f1"]:
            best = (c, rep, oof)
    assert best is not None
    return best


def train_static(texts: list[str], y: np.ndarray, groups: Sequence[str], embedder: StaticEmbedder, out: Path,
                 source: str, folds: int = 5, seed: int = 0, grid: Sequence[float] = C_GRID, layout_scale: float = 0.0,
                 log: Callable[[str], None] | None = None) -> tuple[StaticClassifier, dict[str, Any]]:
    """Heads on the embedder's vectors (plus the layout features when ``layout_scale``): C and per-label thresholds
    from grouped CV over ``groups``, then the heads refitted on all rows and saved with the CV report.

    The layout features' mean and spread are taken from all rows (label-free, so no fold learns a label from
    them)."""
    if len(texts) != len(y) or y.shape[1] != len(LABEL_NAMES):
        raise ValueError(f"need one {len(LABEL_NAMES)}-label row per text; got {len(texts)} texts, y {y.shape}")
    features = Features.fit(embedder, texts, layout_scale)
    x = features(texts)
    fold = group_folds(groups, folds, seed)
    c, report, _ = choose_c(x, y, fold, groups, grid, log)
    clf = StaticClassifier(features, LogisticHeads.fit(x, y, c=c), report["thresholds"])
    summary = {"c": c, "grid": list(grid), "folds": folds, "groups": len(set(groups)), "segments": len(texts),
               "layout_scale": layout_scale,
               "grouped_cv_macro_f1": report["macro_f1"],
               "grouped_cv_f1": {n: report["per_label"][n]["f1"] for n in LABEL_NAMES}}
    clf.save(out, source, {"train_data_sha256": data_sha256(texts, y), "selection": summary})
    return clf, report
