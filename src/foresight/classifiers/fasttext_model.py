"""fastText fast path: a one-vs-all supervised model distilled from the transformer's labels.

The ``.bin`` carries the model; ``<name>.bin.json`` next to it carries labels, thresholds and provenance.
"""

from __future__ import annotations

import json
import re
import tempfile
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from foresight.classifiers.base import check_label_meta
from foresight.formats.atomic import replacing
from foresight.formats.errors import InputError
from foresight.formats.hashing import sha256_path
from foresight.formats.taxonomy import LABEL_NAMES

PREFIX = "__label__"
NONE_LABEL = "none"  # segments with no label train every one-vs-all head as a negative
FORMAT = "foresight-fasttext/1"
_WS = re.compile(r"\s+")


def clean(text: str) -> str:
    """fastText reads one example per line: collapse all whitespace (newlines included) to single spaces."""
    return _WS.sub(" ", text).strip()


def meta_path(bin_path: Path) -> Path:
    return bin_path.with_name(bin_path.name + ".json")


def _load_fasttext(path: Path) -> Any:
    from fasttext.FastText import _FastText  # the class datatrove uses; avoids the deprecation print

    return _FastText(str(path))


def check_model_file(path: Path) -> dict[str, Any]:
    """Refuse a missing ``.bin``, a missing sidecar, or a label list that differs from the taxonomy."""
    if not path.is_file():
        raise FileNotFoundError(f"fastText model {path} does not exist")
    mp = meta_path(path)
    if not mp.exists():
        raise FileNotFoundError(f"{mp} is missing (labels and thresholds of {path.name}); "
                                "re-create the model with `foresight classify distill`")
    meta = json.loads(mp.read_text())
    check_label_meta(meta, mp, "distil the model again for this taxonomy")
    return meta


class FastTextClassifier:
    kind = "fasttext"

    def __init__(self, model: Any, thresholds: dict[str, float], path: Path | None = None) -> None:
        self.model = model
        self.thresholds = dict(thresholds)
        self.path = path
        self.stats: dict[str, int] = {"empty": 0, "truncated": 0}
        names = [lab.removeprefix(PREFIX) for lab in model.labels]
        missing = [n for n in LABEL_NAMES if n not in names]
        if missing:
            where = f"{path}: " if path else ""
            raise InputError(f"{where}fastText model has no labels {missing}; its labels are {names}. "
                             "Distil it again from data where every label occurs")
        # Each model label's column in the scores; labels outside the taxonomy (``none``) get a spare last column.
        self._column = {lab: LABEL_NAMES.index(name) if (name := lab.removeprefix(PREFIX)) in LABEL_NAMES
                        else len(LABEL_NAMES) for lab in model.labels}

    @classmethod
    def load(cls, path: str | Path) -> FastTextClassifier:
        path = Path(path)
        meta = check_model_file(path)
        return cls(_load_fasttext(path), meta["thresholds"], path)

    def info(self) -> dict[str, str | None]:
        return {"kind": self.kind, "id": self.path.name if self.path else "unsaved",
                "sha256": sha256_path(self.path) if self.path else None}

    def predict_scores(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), 6)`` float32 probabilities, taxonomy order; blank texts score 0 (counted in stats)."""
        n_out = len(LABEL_NAMES)
        blank = not all(texts) or any(map(str.isspace, texts))  # both in C; a blank text is rare
        keep = [i for i, t in enumerate(texts) if t and not t.isspace()] if blank else None
        todo = texts if keep is None else [texts[i] for i in keep]
        self.stats["empty"] += len(texts) - len(todo)
        scores = self._predict_lines(todo)
        if keep is not None:
            scores, part = np.zeros((len(texts), n_out), np.float32), scores
            scores[keep] = part
        np.clip(scores, 0.0, 1.0, out=scores)
        return scores

    def _predict_lines(self, texts: list[str]) -> np.ndarray:
        # One call into the binding for the whole group (what ``model.predict`` does with a list, minus its
        # per-text newline check: we replace newlines anyway). Per text it returns every label (k=-1, threshold
        # 0) sorted by probability; the label strings are mapped to columns in C (``map`` over a dict), and the
        # probabilities scattered in numpy. A call per text cost ≈ 3 k instructions more per text (callgrind).
        n, n_lab = len(texts), len(self._column)
        labels, probs = self.model.f.multilinePredict([t.replace("\n", " ") + "\n" for t in texts], -1, 0.0,
                                                      "strict")
        try:
            p = np.array(probs, dtype=np.float32).reshape(n * n_lab)
            cols = np.fromiter(map(self._column.__getitem__, chain.from_iterable(labels)), np.intp, count=n * n_lab)
        except ValueError as e:  # a row without every label: the binding broke its k=-1 contract
            raise RuntimeError(f"fastText returned fewer than its {n_lab} labels for a text") from e
        width = len(LABEL_NAMES) + 1
        cols += np.arange(0, n * width, width).repeat(n_lab)  # flat positions: one index array scatters faster
        full = np.zeros(n * width, np.float32)
        full[cols] = p
        return np.ascontiguousarray(full.reshape(n, width)[:, :-1])


def write_training_file(texts: list[str], y: np.ndarray, path: Path) -> int:
    """``__label__a __label__b text`` lines; rows without labels get ``__label__none``. Returns lines written."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for text, row in zip(texts, y.tolist(), strict=True):
            body = clean(text)
            if not body:
                continue
            labs = [PREFIX + name for name, v in zip(LABEL_NAMES, row, strict=True) if v] or [PREFIX + NONE_LABEL]
            f.write(" ".join(labs) + " " + body + "\n")
            n += 1
    return n


def train_fasttext(texts: list[str], y: np.ndarray, out: str | Path, thresholds: dict[str, float] | None = None,
                   epoch: int = 25, lr: float = 0.5, dim: int = 64, word_ngrams: int = 2, threads: int = 1,
                   extra_meta: dict[str, Any] | None = None) -> FastTextClassifier:
    """Train a one-vs-all (``loss='ova'``) multi-label model; ``wordNgrams ≥ 2`` (1 can give NaN, docs/pipeline.md).

    An ``out`` ending in ``.ftz`` is quantised (product quantisation of the input matrix, retrained on the
    same data; fastText's own ``-quantize``): a few MB instead of tens, small enough to ship in the package.
    """
    import fasttext

    if word_ngrams < 2:
        raise InputError("word_ngrams must be ≥ 2: fastText can produce NaN with wordNgrams=1 on small vocabularies")
    missing = [n for j, n in enumerate(LABEL_NAMES) if y[:, j].sum() == 0]
    if missing:
        raise InputError(f"labels {missing} never occur in the distillation sample; sample more segments")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        train_file = Path(tmp) / "train.txt"
        if write_training_file(texts, y, train_file) == 0:
            raise InputError("no non-empty texts to train fastText on")
        model = fasttext.train_supervised(input=str(train_file), loss="ova", wordNgrams=word_ngrams, epoch=epoch,
                                          lr=lr, dim=dim, minCount=1, bucket=200_000, thread=threads, verbose=0)
        if out.suffix == ".ftz":
            model.quantize(input=str(train_file), qnorm=True, retrain=True, cutoff=100_000, thread=threads,
                           verbose=0)
    with replacing(out) as tmp_out:
        model.save_model(str(tmp_out))
    meta = {"format": FORMAT, "labels": list(LABEL_NAMES), "thresholds": thresholds or {n: 0.5 for n in LABEL_NAMES},
            "word_ngrams": word_ngrams, "epoch": epoch, "dim": dim, "lr": lr, "quantized": out.suffix == ".ftz",
            **(extra_meta or {})}
    meta_path(out).write_text(json.dumps(meta, indent=2, sort_keys=True))
    return FastTextClassifier.load(out)


def distill(texts: list[str], y: np.ndarray, out: str | Path, val_fraction: float = 0.1, seed: int = 0,
            extra_meta: dict[str, Any] | None = None, **train_kw: Any) -> tuple[FastTextClassifier, dict[str, Any]]:
    """Train fastText on the teacher's labels, then tune per-label thresholds on a held-out split of them."""
    from foresight.classifiers.evaluate import agreement, data_sha256, split_indices, tune_thresholds

    train_idx, val_idx = split_indices(len(texts), val_fraction, seed)
    clf = train_fasttext([texts[i] for i in train_idx], y[train_idx], out, extra_meta=extra_meta, **train_kw)
    report: dict[str, Any] = {"train_segments": len(train_idx), "val_segments": len(val_idx)}
    if val_idx:
        scores = clf.predict_scores([texts[i] for i in val_idx])
        clf.thresholds = tune_thresholds(scores, y[val_idx])
        pred = (scores >= np.array([clf.thresholds[n] for n in LABEL_NAMES])).astype(np.int8)
        report["val_kappa_vs_teacher"] = agreement(pred, y[val_idx])
    mp = meta_path(Path(out))
    meta = json.loads(mp.read_text())
    meta.update(thresholds=clf.thresholds, train_data_sha256=data_sha256(texts, y), report=report)
    mp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    return clf, report
