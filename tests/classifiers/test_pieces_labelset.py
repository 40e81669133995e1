"""Cutting text into classifier-sized pieces; merging a team-labelling round (κ, adjudication)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from foresight.classifiers.labelset import Answer, kappa_report, read_answers, read_round, resolve
from foresight.classifiers.pieces import cut, pieces


def test_pieces_respect_the_limit_and_paragraphs() -> None:
    paras = [f"Paragraph {i} " + "word " * 40 for i in range(10)]  # ~250 chars each
    text = "\n\n".join(paras)
    out = pieces(text, max_chars=600)
    assert all(len(p) <= 600 for p in out)
    assert all(p.startswith("Paragraph") for p in out)  # cut at paragraph starts
    assert sum(p.count("Paragraph") for p in out) == 10  # nothing lost when paragraphs fit
    long = "First sentence here. " * 100
    assert cut(long, 500).endswith(".") and len(cut(long, 500)) <= 500
    assert pieces("short text") == ["short text"]  # a short text is its own piece


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_round_kappa_and_adjudication(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.jsonl", [
        {"key": "k1", "labels": ["code_reasoning"], "rationale": "code"},
        {"key": "k2", "labels": [], "rationale": "none"},
        {"key": "k3", "labels": ["visual_concept"], "rationale": "a barge"},
        {"key": "k4", "labels": ["math_reasoning"], "rationale": "x"},
        {"key": "k4", "labels": ["math_reasoning", "code_reasoning"], "rationale": "sympy doc"},  # last wins
    ])
    b = _write(tmp_path / "b.jsonl", [
        {"key": "k1", "labels": ["code_reasoning"], "rationale": "code"},
        {"key": "k2", "labels": [], "rationale": "none"},
        {"key": "k3", "labels": [], "rationale": "abstract"},
        {"key": "k4", "labels": ["code_reasoning", "math_reasoning"], "rationale": "api"},
    ])
    rnd = read_round({"A": a, "B": b})
    rep = kappa_report(rnd)
    assert rep["n"] == 4 and rep["disagreements"] == ["k3"]
    assert rep["kappa"]["code_reasoning"] == 1.0 and rep["kappa"]["visual_concept"] == 0.0
    assert rep["agreement"]["visual_concept"] == 0.75 and rep["exact_match"] == 0.75
    with pytest.raises(ValueError, match="k3: labellers disagree"):
        resolve(rnd, {})
    final = resolve(rnd, {"k3": Answer(("visual_concept",), "barge on a river", "adj")})
    assert final["k3"].labeller == "adj" and final["k4"].labels == ("code_reasoning", "math_reasoning")
    assert np.array_equal(final["k1"].labels, ("code_reasoning",))


def test_bad_answer_lines_name_file_and_line(tmp_path: Path) -> None:
    bad = _write(tmp_path / "x.jsonl", [{"key": "k1", "labels": ["visual"], "rationale": "?"}])
    with pytest.raises(ValueError, match=r"x.jsonl:1: unknown labels \['visual'\]"):
        read_answers(bad, "x")
    (tmp_path / "y.jsonl").write_text('{"key": "k1", "labels": [\n')
    with pytest.raises(ValueError, match="y.jsonl:1: not a"):
        read_answers(tmp_path / "y.jsonl", "y")
