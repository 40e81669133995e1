"""``foresight curate --executor ray`` on a real local Ray cluster: shards byte-identical to the local executor."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests.helpers import make_tokenizer
from tests.pipeline.util import prose, tree_digest, write_jsonl

pytest.importorskip("ray")
runner = CliRunner()


@pytest.mark.timeout(300)
def test_ray_run_is_byte_identical_to_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # start (and stop) a local cluster of 2 CPUs
    src = tmp_path / "in"
    for k, source in enumerate(("web", "books", "code")):
        write_jsonl(src / source / f"{k}.jsonl", [{"text": prose(100 * k + i)} for i in range(20)])
    cfg = tmp_path / "pipeline.toml"
    cfg.write_text("[language]\nenabled = false\n")
    base = ["curate", str(src), "--tokenizer", str(make_tokenizer(tmp_path)), "--config", str(cfg), "--tasks", "3",
            "--workers", "2", "--classifier", "rules"]
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "local")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "ray"), "--executor", "ray"])
    assert res.exit_code == 0, res.output
    local, ray_run = tree_digest(tmp_path / "local"), tree_digest(tmp_path / "ray")
    assert local == ray_run, [k for k in local if local[k] != ray_run.get(k)]
    import ray

    assert not ray.is_initialized()  # the cluster curate started is shut down again
