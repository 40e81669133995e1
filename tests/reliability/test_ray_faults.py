"""``curate --executor ray`` killed with SIGKILL leaves no Ray process behind, and the rerun is byte-identical."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import make_tokenizer
from tests.pipeline.util import prose, tree_digest, write_jsonl
from tests.reliability.chain import cli, env

pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]


def _session(sid: int) -> list[tuple[int, str]]:
    """(pid, name) of the live processes of session ``sid``."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                raw = (d / "stat").read_text()
            except OSError:
                continue
            fields = raw[raw.rindex(")") + 2:].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                out.append((int(d.name), raw[raw.index("(") + 1:raw.rindex(")")]))
    return out


@pytest.mark.timeout(600)
def test_kill_9_of_the_driver_leaves_no_ray_process_and_the_rerun_is_identical(tmp_path: Path) -> None:
    src = tmp_path / "in"
    for k in range(4):
        write_jsonl(src / "web" / f"{k}.jsonl", [{"text": prose(100 * k + i, 300)} for i in range(150)])
    cfg = tmp_path / "c.toml"
    cfg.write_text("[language]\nenabled = false\n[dedup.minhash]\nenabled = false\n[classify]\nenabled = false\n")
    args = ["curate", src, "--tokenizer", make_tokenizer(tmp_path), "--config", cfg, "--tasks", "4", "--workers", "2"]
    ref = cli(*args, "--out", tmp_path / "local")
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "ray"
    run_env = {k: v for k, v in env().items() if k != "RAY_ADDRESS"}  # a local cluster, started by curate
    proc = subprocess.Popen([sys.executable, "-m", "foresight", *map(str, args), "--out", str(out), "--executor",
                             "ray"], env=run_env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            names = [n for _, n in _session(proc.pid)]
            if any("RankWorker" in n for n in names) and any("raylet" in n for n in names):
                break
            time.sleep(0.2)
        assert proc.poll() is None, "curate finished before its Ray workers were seen"
        time.sleep(1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 60
        while time.time() < deadline and _session(proc.pid):
            time.sleep(0.5)
        assert not _session(proc.pid), f"Ray processes outlived kill -9 of curate: {_session(proc.pid)}"
    finally:
        for pid, _ in _session(proc.pid):  # whatever survived, so the test leaves nothing either
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    res = subprocess.run([sys.executable, "-m", "foresight", *map(str, args), "--out", str(out), "--executor",
                          "ray"], env=run_env, capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stderr[-3000:]
    assert tree_digest(out) == tree_digest(tmp_path / "local")
