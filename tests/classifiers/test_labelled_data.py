"""The project's own labelled data (team-labelled training set, gold set) and the learned default model."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from foresight.classifiers.base import DEFAULT_MODEL, PACKAGED, label_matrix, load_classifier
from foresight.classifiers.evaluate import evaluate
from foresight.classifiers.labelset import GENRES
from foresight.classifiers.labelsio import read_labels
from foresight.formats.taxonomy import LABEL_NAMES
from foresight.pipeline.stages.classify import build_classify_step

ROOT = Path(__file__).resolve().parents[2]
# in-distribution floors (issue 9); the shipped static default measures 0.851 macro-F1, lowest label 0.697
MACRO_TARGET, LABEL_FLOOR = 0.80, 0.65
LABELLED = ROOT / "src" / "foresight" / "classifiers" / "data" / "labelled.parquet"
GOLD = ROOT / "tests" / "data" / "gold.parquet"


def test_labelled_set_is_large_diverse_and_explained() -> None:
    table, texts, y = read_labels(LABELLED)
    assert len(texts) >= 12_000
    for col in ("id", "doc_id", "source", "origin", "genre", "text", "labels", "rationale", "labellers",
                "adjudicated", "registry", "package", "version", "licence"):
        assert col in table.column_names, col
    assert all(r and r.strip() and "\n" not in r for r in table.column("rationale").to_pylist())
    assert all(len(t) <= 1500 for t in texts)  # pieces a labeller reads whole (≈ ≤ 512 tokens)
    origins = Counter(table.column("origin").to_pylist())
    assert len(origins) >= 80 and max(origins.values()) <= 0.03 * len(texts) + 1, origins.most_common(3)
    assert set(GENRES) <= set(table.column("genre").to_pylist())
    assert y.sum(0).min() >= 700, dict(zip(LABEL_NAMES, y.sum(0).tolist(), strict=True))  # every label
    assert (y.sum(1) == 0).sum() >= 1000  # and plenty of segments with no label
    labels = table.column("labels").to_pylist()
    assert all(list(lab) == [n for j, n in enumerate(LABEL_NAMES) if row[j]]
               for lab, row in zip(labels, y, strict=True))
    assert sum(n >= 2 for n in table.column("labellers").to_pylist()) >= 0.1 * len(texts)  # the κ subset


def test_every_package_source_is_listed_with_version_and_licence() -> None:
    rows = pq.read_table(LABELLED, columns=["origin", "registry", "version", "licence"]).to_pylist()
    listed = (LABELLED.parent / "SOURCES.md").read_text(encoding="utf-8")
    packages = {r["origin"] for r in rows if r["registry"] != "sample-corpus"}
    assert len(packages) >= 100
    assert all(f"`{o}`" in listed for o in packages)
    assert all(r["version"] and r["licence"] for r in rows if r["registry"] != "sample-corpus")


def test_gold_never_overlaps_training_documents_or_texts() -> None:
    gold, gold_texts, gy = read_labels(GOLD)
    train = pq.read_table(LABELLED, columns=["doc_id", "text"])
    assert not set(gold.column("doc_id").to_pylist()) & set(train.column("doc_id").to_pylist())
    norm = lambda t: " ".join(t.split())  # noqa: E731
    assert not {norm(t) for t in gold_texts} & {norm(t) for t in train.column("text").to_pylist()}


def test_default_model_ships_small_and_is_used_when_none_is_named() -> None:
    size = sum(f.stat().st_size for f in DEFAULT_MODEL.iterdir())
    assert DEFAULT_MODEL.is_dir() and size <= 50 * 2**20  # package data: at most 50 MB
    step = build_classify_step(None)
    info = step.classifier_info()
    assert info["kind"] == "static" and info["id"] == DEFAULT_MODEL.name
    fast = build_classify_step("fasttext").classifier_info()
    assert fast["kind"] == "fasttext" and fast["id"] == PACKAGED["fasttext"].name
    assert PACKAGED["fasttext"].stat().st_size <= 20 * 2**20
    assert build_classify_step("rules").classifier_info()["kind"] == "rules"


@pytest.fixture(scope="module")
def gold_scores() -> dict:
    _, texts, y = read_labels(GOLD)
    clf = load_classifier("default")
    return evaluate(label_matrix(clf.predict_scores(texts), clf.thresholds), y)


def test_default_model_meets_the_gold_targets(gold_scores: dict) -> None:
    """The shipped model on the hand-labelled gold set, which it never trained on (issue 9 targets)."""
    per = {n: v["f1"] for n, v in gold_scores["per_label"].items()}
    assert gold_scores["macro_f1"] >= MACRO_TARGET, per
    assert min(per.values()) >= LABEL_FLOOR, per
    assert np.isclose(gold_scores["macro_f1"], np.mean(list(per.values())))


def test_inter_labeller_kappa_is_what_the_docs_report() -> None:
    """κ recomputed from both labellers' answers (classifiers/data/README.md); every disagreement adjudicated
    into the training set."""
    from foresight.classifiers.evaluate import agreement

    d = pq.read_table(LABELLED.parent / "double_labelled.parquet").to_pylist()
    a = np.array([[int(n in r["labels_a"]) for n in LABEL_NAMES] for r in d])
    b = np.array([[int(n in r["labels_b"]) for n in LABEL_NAMES] for r in d])
    kappa = agreement(a, b)
    assert len(d) >= 1500 and round(kappa["mean"], 3) == 0.844 and round(kappa["visual_relationship"], 3) == 0.758
    second = [i for i, r in enumerate(d) if r["round"] == 2]
    assert len(second) == 1301 and round(agreement(a[second], b[second])["mean"], 3) == 0.792
    disagree = [r for r in d if set(r["labels_a"]) != set(r["labels_b"])]
    assert len(disagree) == 211 and all(r["adjudicated"] for r in disagree)
    train = {t: labs for t, labs in zip(*pq.read_table(LABELLED, columns=["text", "labels"]).to_pydict().values(),
                                        strict=True)}
    assert all(list(train[r["text"]]) == list(r["labels_final"]) for r in d)
