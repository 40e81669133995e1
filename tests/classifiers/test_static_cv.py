"""The static-embedding classifier (embedder, heads, save/load) and grouped cross-validation."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from foresight.classifiers.base import PACKAGED, check_model, load_classifier
from foresight.classifiers.cv import breakdown, cross_fit, cross_fitted_labels, cv_report, group_folds
from foresight.classifiers.fit import static_fit_predict, train_static
from foresight.classifiers.labelsio import write_labels
from foresight.classifiers.static import Features, LogisticHeads, StaticClassifier, StaticEmbedder
from foresight.cli import app
from foresight.formats.taxonomy import LABEL_NAMES
from tests.classifiers.conftest import EXAMPLES, NONE_TEXT, tiny_labelled

runner = CliRunner()


@pytest.fixture(scope="module")
def embedder() -> StaticEmbedder:
    """The packaged model's token vectors (distilled from MiniLM, label-free)."""
    return StaticEmbedder.load(PACKAGED["static"])


def test_encode_is_the_normalised_mean_of_token_vectors(embedder):
    texts = ["The red barn stands by the river.", "", "   ", "def f(x):\n    return x + 1"]
    x = embedder.encode(texts)
    assert x.shape == (4, embedder.dim) and x.dtype == np.float32
    ids = embedder.tokenizer.encode(texts[0], add_special_tokens=False).ids
    want = embedder.vectors[ids].sum(0)
    np.testing.assert_allclose(x[0], want / np.linalg.norm(want), rtol=1e-5, atol=1e-6)
    assert not x[1].any() and not x[2].any()  # no tokens → zeros, not NaN
    np.testing.assert_allclose(np.linalg.norm(x[[0, 3]], axis=1), 1.0, rtol=1e-5)
    assert embedder.encode([]).shape == (0, embedder.dim)


def test_heads_learn_separable_labels_and_survive_save_load(embedder, tmp_path):
    texts, y = tiny_labelled(copies=4)
    x = embedder.encode(texts)
    heads = LogisticHeads.fit(x, y, c=100.0)
    pred = heads.predict(x) >= 0.5
    assert (pred == y.astype(bool)).all()
    clf = StaticClassifier(Features(embedder), heads, {n: 0.5 for n in LABEL_NAMES})
    clf.save(tmp_path / "m", "test", {"note": "x"})
    assert check_model(tmp_path / "m") == "static"
    loaded = load_classifier(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_scores(texts), clf.predict_scores(texts), atol=2e-3)  # fp16 vectors
    assert loaded.info()["kind"] == "static" and len(loaded.info()["sha256"]) == 64
    blank = loaded.predict_scores(["", "  \n"])
    assert not blank.any() and loaded.stats["empty"] == 2


def test_missing_file_is_refused_before_loading(embedder, tmp_path):
    texts, y = tiny_labelled()
    StaticClassifier(Features(embedder), LogisticHeads.fit(embedder.encode(texts), y),
                     {n: 0.5 for n in LABEL_NAMES}).save(
        tmp_path / "m", "test", {})
    (tmp_path / "m" / "heads.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="heads.safetensors"):
        check_model(tmp_path / "m")


def test_group_folds_never_split_a_group_and_balance_rows():
    groups = [f"g{i % 7}" for i in range(70)] + ["big"] * 30
    folds = group_folds(groups, 3, seed=1)
    for g in set(groups):
        assert len(set(folds[np.array(groups) == g])) == 1
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 10
    assert (group_folds(groups, 3, seed=1) == folds).all()
    with pytest.raises(ValueError, match="at least 9 groups"):
        group_folds(groups, 9)


def test_cross_fitted_thresholds_do_not_use_the_fold_itself():
    """A fold whose scores sit on the other side of every other fold's threshold is scored with their threshold."""
    y = np.zeros((40, len(LABEL_NAMES)), np.int8)
    y[:20, 0] = 1
    oof = np.zeros_like(y, dtype=np.float32)
    oof[:20, 0] = 0.9
    folds = np.repeat(np.arange(4), 10)
    oof[30:40, 0] = 0.95  # fold 3: negatives scored high; the other folds put the threshold below 0.9
    pred, th = cross_fitted_labels(oof, y, folds)
    assert pred[30:40, 0].all()  # false positives stay false positives: fold 3 did not pick its own threshold
    assert th["visual_concept"] <= 0.9


def test_cv_with_the_static_model_separates_clean_labels(embedder):
    texts, y = [], []
    for g in range(6):
        t, labels = tiny_labelled(copies=2)
        texts += [f"{s} ({g})" for s in t]
        y.append(labels)
    y = np.concatenate(y)
    groups = [f"g{i // 14}" for i in range(len(texts))]
    folds = group_folds(groups, 3)
    oof = cross_fit(folds, static_fit_predict(embedder.encode(texts), y, c=100.0))
    rep = cv_report(oof, y, folds, groups, {"genre": ["a" if i % 2 else "b" for i in range(len(texts))]})
    assert rep["macro_f1"] > 0.9 and rep["folds"] == 3 and rep["groups"] == 6
    assert [r["key"] for r in rep["by_group"]] == [f"g{i}" for i in range(6)]
    assert {r["key"] for r in rep["by_genre"]} == {"a", "b"}


def test_breakdown_marks_absent_labels():
    y = np.zeros((4, len(LABEL_NAMES)), np.int8)
    y[:2, 3] = 1
    pred = y.copy()
    rows = breakdown(pred, y, ["a", "a", "b", "b"])
    assert rows[0]["f1"]["code_reasoning"] == 1.0 and rows[0]["f1"]["math_reasoning"] is None
    assert rows[1]["macro_f1"] is None and rows[1]["exact"] == 1.0


def _labelled_file(tmp_path):
    texts, y = tiny_labelled(copies=4)
    origins = [f"origin{i % 5}" for i in range(len(texts))]
    path = tmp_path / "labelled.parquet"
    write_labels(path, [str(i) for i in range(len(texts))], origins, ["other"] * len(texts), texts, y,
                 {"origin": origins, "genre": ["news" if i % 2 else "code" for i in range(len(texts))]})
    return path


def test_train_static_records_its_grouped_cv_choice(embedder, tmp_path):
    texts, y = tiny_labelled(copies=4)
    groups = [f"o{i % 4}" for i in range(len(texts))]
    clf, rep = train_static(texts, y, groups, embedder, tmp_path / "m", "test", folds=2, grid=(1.0, 100.0))
    meta = json.loads((tmp_path / "m" / "foresight_classifier.json").read_text())
    assert meta["selection"]["c"] in (1.0, 100.0) and meta["selection"]["folds"] == 2
    assert meta["thresholds"] == rep["thresholds"] == clf.thresholds


def test_cli_cv_and_eval_by(tmp_path):
    path = _labelled_file(tmp_path)
    res = runner.invoke(app, ["classify", "cv", str(path), "--group", "origin", "--folds", "3", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output[res.output.index("{"):])
    assert rep["groups"] == 5 and len(rep["by_group"]) == 5 and rep["model"] == "static"
    res = runner.invoke(app, ["classify", "cv", str(path), "--model", "rules", "--folds", "2", "--by", "genre"])
    assert res.exit_code == 0 and "per held-out origin" in res.output and "by genre" in res.output
    res = runner.invoke(app, ["classify", "eval", "default", "--gold", str(path), "--by", "genre"])
    assert res.exit_code == 0 and "by genre" in res.output
    res = runner.invoke(app, ["classify", "cv", str(path), "--group", "nope"])
    assert res.exit_code == 1 and "no column 'nope'" in res.output


def test_cli_train_static(tmp_path):
    path = _labelled_file(tmp_path)
    out = tmp_path / "static"
    res = runner.invoke(app, ["classify", "train", str(path), "--kind", "static", "--embedder",
                              str(PACKAGED["static"]), "--folds", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    clf = load_classifier(out)
    assert clf.kind == "static"
    scores = clf.predict_scores([EXAMPLES["code_reasoning"], NONE_TEXT])
    assert scores.shape == (2, len(LABEL_NAMES))


def test_eval_gold_without_group_column_names_it(tmp_path):
    p = tmp_path / "g.parquet"
    pq.write_table(pa.table({"text": ["a"], **{n: [0] for n in LABEL_NAMES}}), p)
    res = runner.invoke(app, ["classify", "eval", "rules", "--gold", str(p), "--by", "origin"])
    assert res.exit_code == 1 and "no column 'origin'" in res.output


def test_layout_features_travel_with_the_model(embedder, tmp_path):
    texts, y = tiny_labelled(copies=4)
    groups = [f"o{i % 4}" for i in range(len(texts))]
    clf, _ = train_static(texts, y, groups, embedder, tmp_path / "m", "test", folds=2, grid=(1.0,), layout_scale=0.3)
    loaded = load_classifier(tmp_path / "m")
    assert loaded.features.layout is not None and loaded.features.layout[2] == 0.3
    assert loaded.heads.weight.shape[1] == embedder.dim + 12
    np.testing.assert_allclose(loaded.predict_scores(texts), clf.predict_scores(texts), atol=2e-3)


def test_layout_matrix_counts_what_it_names():
    from foresight.classifiers.layout import NAMES, layout_matrix

    f = layout_matrix(["int f(int x) {\n    return x + 1;\n}", "The cat sat on the mat.", ""])
    assert f.shape == (3, len(NAMES)) and np.isfinite(f).all()
    col = dict(zip(NAMES, f.T, strict=True))
    assert col["bracket"][0] > col["bracket"][1] and col["code_ending"][0] > 0.5
    assert col["function_words"][1] > col["function_words"][0] and col["alpha"][2] == 0


def test_model2vec_loads_the_shipped_embedder_and_encodes_as_we_do(embedder):
    """The static model is a model2vec directory: model2vec's own loader and encoder give our vectors."""
    model2vec = pytest.importorskip("model2vec")
    texts = ["The red barn stands by the river.", "def f(x):\n    return x + 1", "Tämä on testi ünïcode"]
    theirs = model2vec.StaticModel.from_pretrained(str(PACKAGED["static"])).encode(texts)
    np.testing.assert_allclose(theirs, embedder.encode(texts), atol=1e-3)
