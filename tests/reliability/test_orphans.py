"""kill -9 of ``foresight curate`` leaves no process behind (datatrove's Manager server and pool workers)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import make_tokenizer
from tests.pipeline.util import prose, write_jsonl

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a live process, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), fields[0]


def _descendants(root: int) -> set[int]:
    procs = {int(p.name): s for p in Path("/proc").iterdir() if p.name.isdigit() and (s := _stat(int(p.name)))}
    out, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, (ppid, _) in procs.items() if ppid in frontier} - out
        out |= frontier
    return out


def _alive(pid: int) -> bool:
    s = _stat(pid)
    return s is not None and s[1] != "Z"


@pytest.mark.slow
def test_children_die_with_a_killed_curate(tmp_path: Path) -> None:
    src = tmp_path / "in"
    for k in range(4):
        write_jsonl(src / "web" / f"{k}.jsonl", [{"text": prose(1000 * k + i, words=300)} for i in range(400)])
    cmd = [sys.executable, "-c", "from foresight.cli import main; main()", "curate", str(src), "--out",
           str(tmp_path / "s"), "--tokenizer", str(make_tokenizer(tmp_path)), "--workers", "2", "--classifier", "rules"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    children: set[int] = set()
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            children = _descendants(proc.pid)
            if len(children) >= 2:  # the Manager server and a worker (or the forkserver) are up
                break
            time.sleep(0.2)
        if proc.poll() is not None:
            pytest.skip("curate finished before its workers could be observed")
        assert children, "curate started no child process"
        time.sleep(0.5)
        children |= _descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.time() + 20
        while time.time() < deadline and any(_alive(c) for c in children):
            time.sleep(0.2)
        survivors = [c for c in children if _alive(c)]
        assert not survivors, f"processes outlived kill -9 of curate: {survivors}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in children | _descendants(proc.pid):  # survivors were re-parented: kill what we saw
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
