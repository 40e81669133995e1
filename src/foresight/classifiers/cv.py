"""Grouped (leave-source-out) cross-validation: no group (origin, package) is ever in both train and test.

Random K-fold over segments of a few origins measures how well a model recognises those origins; a user's crawl is
always other sources, so every model choice, threshold and hyper-parameter is made on grouped folds.

Thresholds are cross-fitted: fold f is labelled with thresholds tuned on the out-of-fold scores of the *other*
folds, so no fold's own labels choose its threshold. The thresholds a shipped model keeps are tuned on all
out-of-fold scores.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from foresight.classifiers.evaluate import evaluate, prf, tune_thresholds
from foresight.formats.errors import InputError
from foresight.formats.taxonomy import LABEL_NAMES

FitPredict = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (train rows, test rows) → test scores [n_test, 6]


def group_folds(groups: Sequence[str], k: int, seed: int = 0) -> np.ndarray:
    """Fold number per row. Whole groups go to folds, largest first, each to the fold with the fewest rows so far
    (ties broken by a seeded shuffle), so folds are balanced in rows and no group is split."""
    sizes = Counter(groups)
    if len(sizes) < k:
        raise InputError(f"grouped CV needs at least {k} groups; the data has {len(sizes)} ({sorted(sizes)}). "
                         "Lower --folds or label text from more sources")
    names = sorted(sizes)
    random.Random(seed).shuffle(names)
    names.sort(key=lambda g: -sizes[g])  # stable: equal sizes keep the shuffled order
    load = [0] * k
    fold_of: dict[str, int] = {}
    for g in names:
        f = min(range(k), key=lambda i: (load[i], i))
        fold_of[g] = f
        load[f] += sizes[g]
    return np.array([fold_of[g] for g in groups], dtype=np.int64)


def cross_fit(folds: np.ndarray, fit_predict: FitPredict, progress: Callable[[int, int], None] | None = None
              ) -> np.ndarray:
    """Out-of-fold scores: for each fold, a model fitted on the other folds scores it."""
    k = int(folds.max()) + 1
    oof = np.zeros((len(folds), len(LABEL_NAMES)), np.float32)
    for f in range(k):
        test = np.flatnonzero(folds == f)
        oof[test] = fit_predict(np.flatnonzero(folds != f), test)
        if progress:
            progress(f + 1, k)
    return oof


def cross_fitted_labels(oof: np.ndarray, y: np.ndarray, folds: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """0/1 predictions with each fold's thresholds tuned on the other folds; and the thresholds tuned on all."""
    pred = np.zeros_like(y, dtype=np.int8)
    for f in np.unique(folds):
        rest, mine = folds != f, folds == f
        th = tune_thresholds(oof[rest], y[rest])
        pred[mine] = oof[mine] >= np.array([th[n] for n in LABEL_NAMES], np.float32)
    return pred, tune_thresholds(oof, y)


def breakdown(pred: np.ndarray, y: np.ndarray, keys: Sequence[str]) -> list[dict[str, Any]]:
    """Per key (held-out group, genre): rows, per-label F1 where the label occurs in the key's gold or
    predictions (None where it does neither), and macro-F1 over the labels present in its gold."""
    keys_arr = np.asarray(keys)
    out = []
    for key in sorted(set(keys)):
        m = keys_arr == key
        per = {}
        for j, name in enumerate(LABEL_NAMES):
            r = prf(pred[m, j], y[m, j])
            per[name] = r["f1"] if r["support"] or r["predicted"] else None
        present = [per[n] for j, n in enumerate(LABEL_NAMES) if y[m, j].any()]
        out.append({"key": key, "n": int(m.sum()), "f1": per,
                    "macro_f1": float(np.mean(present)) if present else None,
                    "exact": float(np.mean((pred[m] == y[m]).all(1)))})
    return out


def cv_report(oof: np.ndarray, y: np.ndarray, folds: np.ndarray, groups: Sequence[str],
              by: dict[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """Overall per-label P/R/F1 and macro-F1 of the cross-fitted predictions, per held-out group, and per any
    other key given in ``by`` (e.g. genre)."""
    pred, thresholds = cross_fitted_labels(oof, y, folds)
    report = evaluate(pred, y)
    report.update(folds=int(folds.max()) + 1, groups=len(set(groups)), thresholds=thresholds,
                  by_group=breakdown(pred, y, groups))
    for name, keys in (by or {}).items():
        report[f"by_{name}"] = breakdown(pred, y, keys)
    return report
