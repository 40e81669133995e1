"""What every classifier shares: a score matrix in taxonomy order, thresholds, an identity, and a loader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from foresight.formats.errors import InputError
from foresight.formats.taxonomy import LABEL_NAMES, check_labels, derive_flags, labels_from_scores


class Classifier(Protocol):
    kind: str
    thresholds: dict[str, float]
    stats: dict[str, int]

    def predict_scores(self, texts: list[str]) -> np.ndarray:
        """``[len(texts), len(LABEL_NAMES)]`` float32 probabilities in taxonomy order."""
        ...

    def info(self) -> dict[str, str | None]:
        """``{"kind", "id", "sha256"}`` recorded in the shard index."""
        ...


def check_label_meta(meta: dict, where: Path, fix: str) -> None:
    """Refuse a saved model whose label list or thresholds do not match the taxonomy, before any work."""
    try:
        check_labels(meta.get("labels", []))
    except ValueError as e:
        raise InputError(f"{where}: {e}; {fix}") from None
    if set(meta.get("thresholds", {})) != set(LABEL_NAMES):
        raise InputError(f"{where}: thresholds must name exactly the labels {list(LABEL_NAMES)}")


def check_model_dir(path: Path, required: tuple[str, ...], meta_file: str, fmt: str, what: str,
                    fix: str) -> dict[str, Any]:
    """A saved classifier directory, before any weight is loaded: every ``required`` file present, the metadata's
    format ``fmt`` and its label list the taxonomy's. Returns the metadata."""
    if not path.is_dir():
        raise FileNotFoundError(f"classifier directory {path} does not exist")
    missing = [f for f in required if not (path / f).exists()]
    if missing:
        raise FileNotFoundError(f"{what} {path} is missing {missing}; re-create it with {fix}")
    meta = json.loads((path / meta_file).read_text())
    if meta.get("format") != fmt:
        raise InputError(f"{path / meta_file}: format {meta.get('format')!r} is not {fmt!r}")
    check_label_meta(meta, path / meta_file, "retrain the classifier for this taxonomy")
    return meta


def label_rows(scores: np.ndarray, thresholds: dict[str, float]) -> list[list[str]]:
    """Label lists (taxonomy order) for each row of a score matrix."""
    return [labels_from_scores(dict(zip(LABEL_NAMES, row.tolist(), strict=True)), thresholds) for row in scores]


def label_matrix(scores: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    """0/1 int8 matrix of labels over threshold."""
    th = np.array([thresholds[n] for n in LABEL_NAMES], dtype=np.float32)
    return (scores >= th).astype(np.int8)


def annotate(scores_row: np.ndarray, thresholds: dict[str, float]) -> dict[str, object]:
    """The shard columns for one segment: labels, score_<label>, reasoning, visual."""
    labels = labels_from_scores(dict(zip(LABEL_NAMES, scores_row.tolist(), strict=True)), thresholds)
    out: dict[str, object] = {"labels": labels}
    out.update({f"score_{n}": float(s) for n, s in zip(LABEL_NAMES, scores_row.tolist(), strict=True)})
    out.update(derive_flags(labels))
    return out


# The classifiers that ship with the package, by name (rebuilt by `make classifier` from the team-labelled set,
# classifiers/data/labelled.parquet): the CPU default is the static-embedding model (token vectors distilled from
# MiniLM, logistic heads, C and thresholds by grouped CV); fastText is the fastest path.
MODELS_DIR = Path(__file__).resolve().parent / "models"
PACKAGED: dict[str, Path] = {"default": MODELS_DIR / "lsbs-static", "static": MODELS_DIR / "lsbs-static",
                             "fasttext": MODELS_DIR / "lsbs-fasttext.ftz"}
DEFAULT_MODEL = PACKAGED["default"]
FASTTEXT_SUFFIXES = (".bin", ".ftz")


def resolve_model(model: str | Path | None) -> str | Path:
    """``None``, "default", "static" or "fasttext" → that packaged model; anything else unchanged ("rules", a
    path). A name wins over a file of the same name in the working directory."""
    name = "default" if model is None or str(model) == "" else str(model)
    if name in PACKAGED:
        path = PACKAGED[name]
        if not path.exists():
            raise FileNotFoundError(f"the packaged classifier {path} is missing; reinstall foresight, "
                                    "rebuild it with `make classifier`, or pass --classifier rules")
        return path
    return model  # type: ignore[return-value]


def check_model(model: str | Path | None) -> str:
    """Validate a classifier path without loading weights; returns its kind (rules, transformer, fasttext).

    ``None`` means the packaged default. Lets a pipeline fail on a bad path (missing files, wrong label list)
    before it reads any document.
    """
    model = resolve_model(model)
    if str(model) == "rules":
        return "rules"
    path = Path(model)
    if path.is_dir():
        from foresight.classifiers.static import check_model_dir as check_static
        from foresight.classifiers.static import is_static_dir
        from foresight.classifiers.transformer import check_model_dir

        if is_static_dir(path):
            check_static(path)
            return "static"
        check_model_dir(path)
        return "transformer"
    if path.suffix in FASTTEXT_SUFFIXES:
        from foresight.classifiers.fasttext_model import check_model_file

        check_model_file(path)
        return "fasttext"
    if not path.exists():
        raise FileNotFoundError(f"classifier {path} does not exist; pass a transformer directory, a fastText "
                                ".bin/.ftz, 'default' or 'rules'")
    raise InputError(f"classifier {path} is neither a transformer directory nor a fastText .bin/.ftz file")


def load_classifier(model: str | Path | None, batch_size: int = 64, device: str = "auto") -> Classifier:
    """``None``/"default" → the packaged model; "rules" → the rules teacher; a directory → the static-embedding
    or the transformer classifier (by its metadata); a ``.bin``/``.ftz`` file → fastText."""
    model = resolve_model(model)
    kind = check_model(model)
    if kind == "rules":
        from foresight.classifiers.teacher.rules import RulesTeacher

        return RulesTeacher()
    if kind == "static":
        from foresight.classifiers.static import StaticClassifier

        return StaticClassifier.load(Path(str(model)))
    if kind == "transformer":
        from foresight.classifiers.transformer import TransformerClassifier

        return TransformerClassifier.load(Path(str(model)), batch_size=batch_size, device=device)
    from foresight.classifiers.fasttext_model import FastTextClassifier

    return FastTextClassifier.load(Path(str(model)))
