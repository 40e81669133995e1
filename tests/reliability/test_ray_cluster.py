"""``curate --executor ray`` against a running two-node Ray cluster (both nodes on this machine, started with
``ray start``): tasks run on both nodes, each task's node is recorded, a node lost mid-run (``kill -9`` of its
raylet) is retried on the other or fails in one line, and the shards are byte-identical to the local executor's."""

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
from tests.reliability.rayutil import alive, ray_corpus, ray_env, two_node_cluster

pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]

PER_RANK = ("filter", "segment")  # the stages with one task per rank (4 here)


def _nodes(out: Path, stage: str) -> dict[int, dict]:
    d = out / "_work" / "logs" / stage / "nodes"
    return {int(p.stem): json.loads(p.read_text()) for p in sorted(d.glob("*.json"))}


@pytest.mark.timeout(600)
def test_curate_on_two_ray_nodes_spreads_tasks_survives_a_lost_node_and_matches_local(tmp_path: Path) -> None:
    c = ray_corpus(tmp_path)
    with two_node_cluster(cpus=1) as (address, head, second):
        env = ray_env(address)  # the user's way: RAY_ADDRESS of the running cluster
        head_id, second_id = head.raylet()[1], second.raylet()[1]

        # 1. One CPU per node and 2 workers: tasks run on both nodes, and each task says where it ran.
        out = tmp_path / "ray"
        res = subprocess.run(cli_cmd(*c.args, "--out", out, "--executor", "ray"), env=env, capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        for stage in PER_RANK:
            ran_on = {r["node_id"] for r in _nodes(out, stage).values()}
            assert len(_nodes(out, stage)) == 4 and ran_on <= {head_id, second_id}, (stage, _nodes(out, stage))
        assert {r["node_id"] for st in PER_RANK for r in _nodes(out, st).values()} == {head_id, second_id}
        assert "on 2 node(s)" in res.stdout and head_id[:12] in res.stdout and second_id[:12] in res.stdout
        assert tree_digest(out) == tree_digest(c.local)

        # 2. The second node's raylet is killed while it runs a filter task.
        out = tmp_path / "ray-lost-node"
        raylet, _ = second.raylet()
        proc = subprocess.Popen(cli_cmd(*c.args, "--out", out, "--executor", "ray"), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 240
            victim = None
            while victim is None and time.time() < deadline and proc.poll() is None:
                victim = next((r for r in _nodes(out, "filter").values()
                               if r["node_id"] == second_id and alive(r["pid"])), None)
                time.sleep(0.1)
            assert victim is not None, "no filter task was seen running on the second node"
            os.kill(raylet, signal.SIGKILL)
            _, err = proc.communicate(timeout=300)  # bounded: a hang fails here
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode == 0:  # retried on the head node
            assert _nodes(out, "filter")[victim["rank"]]["node_id"] == head_id
        else:  # or one line, and the rerun (on the head node alone) completes
            lines = [ln for ln in err.splitlines() if ln.strip()]
            assert len(lines) == 1 and lines[0].startswith("error: "), err
            res = subprocess.run(cli_cmd(*c.args, "--out", out, "--executor", "ray"), env=env,
                                 capture_output=True, text=True, timeout=300)
            assert res.returncode == 0, res.stderr[-3000:]
        assert tree_digest(out) == tree_digest(c.local)
