"""The datatrove classify stage (pipeline/stages/classify.py)."""

import pickle

import pytest
from datatrove.data import Document

from foresight.classifiers.fasttext_model import train_fasttext
from foresight.formats.taxonomy import LABEL_NAMES, score_column
from foresight.pipeline.stages.classify import GROUP_SIZE, ClassifyStep, build_classify_step, read_segments
from tests.classifiers.conftest import EXAMPLES, tiny_labelled
from tests.helpers import make_shards


def docs(texts):
    return [Document(text=t, id=f"d{i}#0", metadata={}) for i, t in enumerate(texts)]


def test_rules_step_fills_every_column_and_counts():
    step = build_classify_step("rules", batch_size=2, group_size=2)
    texts = [EXAMPLES["code_reasoning"], EXAMPLES["visual_relationship"], "", EXAMPLES["math_reasoning"]]
    out = list(step.run(iter(docs(texts))))
    assert [d.id for d in out] == ["d0#0", "d1#0", "d2#0", "d3#0"]  # order kept across groups
    for d in out:
        assert set(d.metadata) == {"labels", "reasoning", "visual", *map(score_column, LABEL_NAMES)}
    assert out[0].metadata["labels"] == ["code_reasoning"] and out[0].metadata["reasoning"] is True
    assert out[1].metadata["visual"] is True and out[1].metadata["reasoning"] is False
    assert out[2].metadata["labels"] == [] and out[2].metadata["score_code_reasoning"] == 0.0
    assert step.stats["classified"].total == 4 and step.stats["empty"].total == 1
    assert step.stats["label_none"].total == 1
    assert step.classifier_info()["kind"] == "rules"


def test_transformer_step_and_info_without_loading(tiny_model_dir):
    step = build_classify_step(str(tiny_model_dir), batch_size=3, device="cpu")
    info = step.classifier_info()
    assert step._clf is None and info["kind"] == "transformer" and len(info["sha256"]) == 64
    step2 = pickle.loads(pickle.dumps(step))  # datatrove ships steps to workers
    out = list(step2.run(iter(docs(["word " * 100, "a table"]))))
    assert all(len(d.metadata["labels"]) <= 6 for d in out) and step2.stats["truncated"].total == 1
    assert step2.classifier_info() == info
    assert pickle.loads(pickle.dumps(step2))._clf is None


def test_fasttext_step(tmp_path):
    texts, y = tiny_labelled(copies=6)
    model = tmp_path / "ft.bin"
    train_fasttext(texts, y, model, epoch=20, threads=1)
    step = build_classify_step(str(model))
    out = list(step.run(iter(docs([EXAMPLES["code_reasoning"]]))))
    assert step.classifier_info()["kind"] == "fasttext" and 0 <= out[0].metadata["score_code_reasoning"] <= 1


def test_bad_models_fail_at_build_time(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_classify_step(str(tmp_path / "missing"))
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(FileNotFoundError, match="missing"):
        build_classify_step(str(tmp_path / "empty_dir"))
    (tmp_path / "m.bin").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="m.bin.json"):
        build_classify_step(str(tmp_path / "m.bin"))
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(ValueError, match="neither"):
        build_classify_step(str(tmp_path / "m.txt"))
    with pytest.raises(ValueError, match="batch_size"):
        ClassifyStep(None, batch_size=0)


def test_read_segments_samples_and_checks_columns(tmp_path):
    root = make_shards(tmp_path, [{"text": f"text {i}", "source": "web-crawl"} for i in range(10)], with_labels=False)
    seg = read_segments(root, sample=4, seed=3)
    assert len(seg["text"]) == 4 and seg == read_segments(root, sample=4, seed=3)
    with pytest.raises(ValueError, match="no columns"):
        read_segments(root, columns=("source", "reasoning"))


def test_stratified_sample_reaches_small_sources(tmp_path):
    docs = [{"text": f"big {i}", "source": "code"} for i in range(40)] + [{"text": "small", "source": "math"}] * 3
    root = make_shards(tmp_path, docs, with_labels=False)
    seg = read_segments(root, columns=("text",), sample=10, seed=0, stratify=True)
    assert len(seg["text"]) == 10 and seg["text"].count("small") == 3 and "source" not in seg
    plain = read_segments(root, columns=("source",), sample=10, seed=0)
    assert len(plain["source"]) == 10


def test_group_size_is_at_least_the_model_batch():
    assert ClassifyStep("rules", batch_size=8).group_size == GROUP_SIZE
    assert ClassifyStep("rules", batch_size=4096).group_size == 4096
    assert ClassifyStep("rules", batch_size=8, group_size=16).group_size == 16
    with pytest.raises(ValueError, match="group_size"):
        ClassifyStep("rules", group_size=0)
