"""Stale input: a rerun never reuses output made from different inputs, tokenizer or config; the output
directory is never read back as input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from foresight.cli import app
from tests.helpers import make_tokenizer
from tests.pipeline.util import accounting, prose, write_config, write_jsonl

runner = CliRunner()


def test_an_input_edited_in_place_is_detected(tmp_path: Path) -> None:
    """Same command after an input changed: refused naming the file (no stale shards), --overwrite rebuilds."""
    src = write_jsonl(tmp_path / "in" / "web" / "a.jsonl", [{"text": prose(i)} for i in range(3)])
    base = ["curate", str(src), "--out", str(tmp_path / "s"), "--tokenizer", str(make_tokenizer(tmp_path)),
            "--config", str(write_config(tmp_path))]
    assert runner.invoke(app, base).exit_code == 0
    assert accounting(tmp_path / "s")["read"] == 3
    with open(src, "a", encoding="utf-8") as f:
        f.write('{"text": "' + prose(9) + '"}\n')
    res = runner.invoke(app, base)
    assert res.exit_code == 1 and f"input {src.resolve()} changed since" in res.output
    assert "--overwrite" in res.output and len(res.output.strip().splitlines()) <= 3
    res = runner.invoke(app, [*base, "--overwrite"])
    assert res.exit_code == 0 and accounting(tmp_path / "s")["read"] == 4


def test_out_inside_the_input_directory_is_not_read_back(tmp_path: Path) -> None:
    corpus = tmp_path / "corpusD"
    write_jsonl(corpus / "web" / "a.jsonl", [{"text": prose(i)} for i in range(3)])
    base = ["curate", str(corpus), "--out", str(corpus / "shards"), "--tokenizer", str(make_tokenizer(tmp_path)),
            "--config", str(write_config(tmp_path))]
    assert runner.invoke(app, base).exit_code == 0
    first = (corpus / "shards" / "index.json").read_bytes()
    res = runner.invoke(app, base)  # the run's own shards are not inputs: the identical rerun resumes
    assert res.exit_code == 0 and "resumed" in res.output, res.output
    assert (corpus / "shards" / "index.json").read_bytes() == first
    res = runner.invoke(app, [*base, "--overwrite"])
    acc = accounting(corpus / "shards")
    assert res.exit_code == 0 and acc["read"] == 3 and not acc["errored"]  # never its own deleted outputs


def _run(tmp_path: Path, tok: Path) -> tuple[Path, list[str]]:
    src = write_jsonl(tmp_path / "in" / "web" / "a.jsonl", [{"text": prose(i)} for i in range(3)])
    write_jsonl(tmp_path / "in" / "web" / "b.jsonl", [{"text": prose(10 + i)} for i in range(2)])
    base = ["curate", str(tmp_path / "in"), "--out", str(tmp_path / "s"), "--tokenizer", str(tok),
            "--config", str(write_config(tmp_path))]
    assert runner.invoke(app, base).exit_code == 0
    return src, base


def test_a_replaced_tokenizer_is_a_different_run(tmp_path: Path) -> None:
    tok = make_tokenizer(tmp_path)
    _, base = _run(tmp_path, tok)
    spec = json.loads(tok.read_text(encoding="utf-8"))
    spec["model"]["vocab"]["zzzz"] = max(spec["model"]["vocab"].values()) + 1
    tok.write_text(json.dumps(spec), encoding="utf-8")
    res = runner.invoke(app, base)
    assert res.exit_code == 1 and "a different run" in res.output and "tokenizer" in res.output


def test_a_deleted_or_added_input_is_a_different_run(tmp_path: Path) -> None:
    _, base = _run(tmp_path, make_tokenizer(tmp_path))
    (tmp_path / "in" / "web" / "b.jsonl").unlink()
    res = runner.invoke(app, base)
    assert res.exit_code == 1 and "a different run" in res.output
    write_jsonl(tmp_path / "in" / "web" / "b.jsonl", [{"text": prose(10 + i)} for i in range(2)])
    write_jsonl(tmp_path / "in" / "web" / "c.jsonl", [{"text": prose(20)}])
    res = runner.invoke(app, base)
    assert res.exit_code == 1 and "a different run" in res.output


def test_a_changed_config_is_a_different_run(tmp_path: Path) -> None:
    _, base = _run(tmp_path, make_tokenizer(tmp_path))
    write_config(tmp_path, "[segment]\nmax_tokens = 64\n")
    res = runner.invoke(app, base)
    assert res.exit_code == 1 and "a different run" in res.output
    assert runner.invoke(app, [*base, "--overwrite"]).exit_code == 0
    assert accounting(tmp_path / "s")["read"] == 5
