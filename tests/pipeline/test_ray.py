"""``foresight curate --executor ray`` on a real local Ray cluster: shards byte-identical to the local executor."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import make_tokenizer
from tests.pipeline.util import prose, tree_digest, write_jsonl

pytest.importorskip("ray")


def _curate(args: list[str]) -> subprocess.CompletedProcess:
    """The CLI in its own process, as a user runs it (Ray and datatrove's loggers keep process-wide state)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # start (and stop) a local cluster
    return subprocess.run([sys.executable, "-c", "from foresight.cli import main; main()", "curate", *args],
                          capture_output=True, text=True, env=env, timeout=280)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ray_run_is_byte_identical_to_local(tmp_path: Path) -> None:
    src = tmp_path / "in"
    for k, source in enumerate(("web", "books", "code")):
        write_jsonl(src / source / f"{k}.jsonl", [{"text": prose(100 * k + i)} for i in range(20)])
    cfg = tmp_path / "pipeline.toml"
    cfg.write_text("[language]\nenabled = false\n[dedup.minhash]\nenabled = false\n")  # fewer Ray tasks
    base = [str(src), "--tokenizer", str(make_tokenizer(tmp_path)), "--config", str(cfg), "--tasks", "3",
            "--workers", "2", "--classifier", "rules"]
    res = _curate([*base, "--out", str(tmp_path / "local")])
    assert res.returncode == 0, res.stdout + res.stderr
    res = _curate([*base, "--out", str(tmp_path / "ray"), "--executor", "ray"])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    local, ray_run = tree_digest(tmp_path / "local"), tree_digest(tmp_path / "ray")
    assert local == ray_run, [k for k in local if local[k] != ray_run.get(k)]


def test_ray_stages_take_retries_from_the_config_and_report_where_tasks_ran(tmp_path: Path) -> None:
    """Fast: the executor built for --executor ray, and the per-node summary curate prints from task records."""
    from foresight.pipeline.config import load_config
    from foresight.pipeline.executors import Stage, build_executors
    from foresight.pipeline.rayexec import RayExecutor, node_summary, task_nodes

    cfg = tmp_path / "c.toml"
    cfg.write_text("[executor.ray]\nretries = 5\n")
    stages = [Stage(name, [], 2, str(tmp_path / name), True) for name in ("filter", "segment")]
    ex = build_executors(stages, "ray", 2, load_config(cfg).executor)
    assert [type(e) for e in ex] == [RayExecutor] * 2 and [e.retries for e in ex] == [5, 5]
    assert ex[1].depends is ex[0] and ex[0].name == "filter"
    cfg.write_text("[executor.ray]\nretries = -1\n")  # -1 would be Ray's "retry for ever"
    with pytest.raises(Exception, match=r"\[executor.ray\] retries: expected an integer ≥ 0, got -1"):
        load_config(cfg)
    for stage, rank, node in (("filter", 0, "a" * 40), ("filter", 1, "b" * 40), ("segment", 0, "a" * 40)):
        write_jsonl(tmp_path / stage / "nodes" / f"{rank:05d}.json",
                    [{"rank": rank, "node_id": node, "node_ip": "10.0.0.1", "hostname": f"h{node[0]}", "pid": 7}])
    assert set(task_nodes(tmp_path / "filter")) == {0, 1} and task_nodes(tmp_path / "none") == {}
    assert node_summary([s.logging_dir for s in stages]) == \
        f"ray: 3 task(s) on 2 node(s): {'a' * 12} (ha) 2, {'b' * 12} (hb) 1"
