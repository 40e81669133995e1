"""``curate --executor ray`` killed with SIGKILL (the driver, or one Ray worker running a task): no hang, no Ray
process left behind, and the run (or its rerun) is byte-identical to the local executor's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pipeline.util import tree_digest
from tests.reliability.chain import cli_cmd
from tests.reliability.rayutil import Corpus, alive, kill_session, ray_corpus, ray_env, session

pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return ray_corpus(tmp_path_factory.mktemp("ray"))


def _launch(args: list[object], out: Path) -> subprocess.Popen:
    """``curate --executor ray`` in its own session (so every process it starts can be found), stderr to a file."""
    with open(out.parent / f"{out.name}.stderr", "w") as err:
        return subprocess.Popen(cli_cmd(*args, "--out", out, "--executor", "ray"), env=ray_env(),
                                start_new_session=True, stdout=subprocess.DEVNULL, stderr=err)


def _assert_nothing_left(sid: int) -> None:
    deadline = time.time() + 60
    while time.time() < deadline and session(sid):
        time.sleep(0.5)
    left = kill_session(sid, wait=5) if session(sid) else []  # whatever survived, so the test leaves nothing
    assert not left and not session(sid), f"Ray processes outlived curate: {session(sid) or left}"


def _rerun(c: Corpus, out: Path) -> None:
    res = subprocess.run(cli_cmd(*c.args, "--out", out, "--executor", "ray"), env=ray_env(), capture_output=True,
                         text=True, timeout=400)
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.mark.timeout(600)
def test_kill_9_of_the_driver_leaves_no_ray_process_and_the_rerun_is_identical(corpus: Corpus) -> None:
    out = corpus.root / "ray-driver"
    proc = _launch(corpus.args, out)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            names = [n for _, n in session(proc.pid)]
            if any("run_rank" in n for n in names) and any("raylet" in n for n in names):
                break
            time.sleep(0.2)
        assert proc.poll() is None, "curate finished before its Ray workers were seen"
        time.sleep(1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        _assert_nothing_left(proc.pid)
    finally:
        kill_session(proc.pid, wait=5)
    _rerun(corpus, out)
    assert tree_digest(out) == tree_digest(corpus.local)


def _running_filter_task(out: Path, proc: subprocess.Popen, timeout: float = 240) -> tuple[int, int]:
    """(rank, pid) of a ``filter`` task that is running now: its node record (written as the task starts, by the
    worker process that runs it) names a live process. The first stage, so the kill always lands in ``filter``."""
    nodes = out / "_work" / "logs" / "filter" / "nodes"
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        for rec in nodes.glob("*.json") if nodes.is_dir() else ():
            try:
                r = json.loads(rec.read_text())
            except ValueError:  # being written
                continue
            if alive(r["pid"]) and not (nodes.parent / "completions" / f"{r['rank']:05d}").exists():
                return r["rank"], r["pid"]
        time.sleep(0.1)
    raise AssertionError(f"no running filter task seen (curate exit status {proc.poll()})")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("retries", [3, 0])
def test_kill_9_of_a_ray_worker_is_retried_or_one_line_never_a_hang(corpus: Corpus, retries: int) -> None:
    """Used to hang: datatrove ran each task in a pool inside a Ray actor, and the pool waited for ever for the
    result of a child killed with ``kill -9`` (then the next stage polled for it every 2 minutes)."""
    out = corpus.root / f"ray-worker-{retries}"
    # [executor.ray] is not part of the data: the rerun, with the default config, resumes this run
    proc = _launch(corpus.with_config(f"[executor.ray]\nretries = {retries}\n", f"retries-{retries}.toml"), out)
    try:
        rank, pid = _running_filter_task(out, proc)
        os.kill(pid, signal.SIGKILL)
        try:
            rc = proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            pytest.fail(f"curate --executor ray hung for 300 s after kill -9 of the worker running filter task {rank}")
        _assert_nothing_left(proc.pid)
    finally:
        kill_session(proc.pid, wait=5)
    err = (out.parent / f"{out.name}.stderr").read_text()
    if retries:
        assert rc == 0, err[-3000:]
        rec = json.loads((out / "_work/logs/filter/nodes" / f"{rank:05d}.json").read_text())
        assert rec["pid"] != pid  # Ray ran the task again, in another worker
    else:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc != 0 and len(lines) == 1, err
        assert f"filter task {rank} failed: WorkerCrashedError" in lines[0] and "rerun" in lines[0], lines[0]
        _rerun(corpus, out)
    assert tree_digest(out) == tree_digest(corpus.local)
