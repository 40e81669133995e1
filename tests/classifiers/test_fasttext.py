import json

import pytest

from foresight.classifiers.base import load_classifier
from foresight.classifiers.fasttext_model import FastTextClassifier, clean, distill, meta_path, train_fasttext
from foresight.formats.taxonomy import LABEL_NAMES
from tests.classifiers.conftest import EXAMPLES, NONE_TEXT, tiny_labelled


def test_train_reload_and_predict(tmp_path):
    texts, y = tiny_labelled(copies=8)
    out = tmp_path / "ft.bin"
    clf = train_fasttext(texts, y, out, epoch=30, threads=1)
    meta = json.loads(meta_path(out).read_text())
    assert meta["labels"] == list(LABEL_NAMES) and meta["word_ngrams"] >= 2
    again = load_classifier(out)
    assert isinstance(again, FastTextClassifier) and again.info()["sha256"] == clf.info()["sha256"]
    scores = again.predict_scores([EXAMPLES["code_reasoning"], EXAMPLES["visual_attribute"], "", NONE_TEXT])
    assert scores.shape == (4, 6) and (scores[2] == 0).all() and again.stats["empty"] == 1
    assert scores[0].argmax() == LABEL_NAMES.index("code_reasoning")
    assert scores[1].argmax() == LABEL_NAMES.index("visual_attribute")
    assert scores[3].max() < 0.5


def test_distill_tunes_thresholds_and_records_hash(tmp_path):
    texts, y = tiny_labelled(copies=10)
    clf, report = distill(texts, y, tmp_path / "d.bin", val_fraction=0.5, epoch=30, threads=1)
    meta = json.loads(meta_path(tmp_path / "d.bin").read_text())
    assert meta["thresholds"] == clf.thresholds and len(meta["train_data_sha256"]) == 64
    assert report["val_segments"] == len(texts) // 2 and "mean" in report["val_kappa_vs_teacher"]


def test_refuses_bad_training_and_bad_files(tmp_path):
    texts, y = tiny_labelled()
    with pytest.raises(ValueError, match="wordNgrams"):
        train_fasttext(texts, y, tmp_path / "a.bin", word_ngrams=1)
    y2 = y.copy()
    y2[:, 0] = 0
    with pytest.raises(ValueError, match="visual_concept"):
        train_fasttext(texts, y2, tmp_path / "b.bin")
    out = tmp_path / "c.bin"
    train_fasttext(texts, y, out, epoch=5, threads=1)
    meta = json.loads(meta_path(out).read_text())
    meta["labels"] = ["visual_concept"]
    meta_path(out).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="does not match the taxonomy"):
        load_classifier(out)
    meta_path(out).unlink()
    with pytest.raises(FileNotFoundError, match="c.bin.json"):
        load_classifier(out)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_classifier(tmp_path / "missing.bin")


def test_clean_makes_one_line():
    assert clean("a\n\n b\t c  ") == "a b c"


def test_batch_scores_match_model_predict_per_text(tmp_path):
    """The batched path (one binding call, labels mapped to columns) gives what ``model.predict`` gives per text."""
    texts, y = tiny_labelled(copies=6)
    clf = train_fasttext(texts, y, tmp_path / "m.bin", epoch=10, threads=1)
    batch = [texts[0], "", "two\nlines here", " \t\n", texts[-1], EXAMPLES["math_reasoning"]]
    scores = clf.predict_scores(batch)
    for row, text in zip(scores, batch, strict=True):
        if not text.strip():
            assert (row == 0).all()
            continue
        labels, probs = clf.model.predict(text.replace("\n", " "), k=-1)
        by_name = {lab.removeprefix("__label__"): float(p) for lab, p in zip(labels, probs, strict=True)}
        assert row.tolist() == pytest.approx([min(by_name[n], 1.0) for n in LABEL_NAMES], abs=1e-7)
    assert clf.predict_scores([]).shape == (0, 6) and clf.predict_scores(["", " "]).shape == (2, 6)
