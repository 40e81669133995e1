"""Helpers for the Ray fault tests: a small corpus with its local-executor reference, processes by session, and a
two-node Ray cluster started on this machine (``ray start``), each node in its own session and temp dir."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import make_tokenizer
from tests.pipeline.util import prose, write_jsonl
from tests.reliability.chain import cli, env

RAY = str(Path(sys.executable).with_name("ray"))


@dataclass
class Corpus:
    args: list[object]  # curate's arguments without --out/--executor
    local: Path  # the local executor's output for them
    root: Path
    config: Path  # the pipeline.toml in ``args``

    def with_config(self, extra: str, name: str) -> list[object]:
        """``args`` with a copy of the config plus ``extra`` (e.g. an ``[executor.ray]`` table)."""
        cfg = self.root / name
        cfg.write_text(self.config.read_text() + extra)
        return [cfg if a == self.config else a for a in self.args]


def ray_corpus(tmp: Path, files: int = 4, docs: int = 100) -> Corpus:
    """``files`` inputs of ``docs`` documents (a few seconds of work per task on 2 cores), 4 tasks, 2 workers,
    and the local executor's output for them."""
    src = tmp / "in"
    for k in range(files):
        write_jsonl(src / "web" / f"{k}.jsonl", [{"text": prose(1000 * k + i, 300)} for i in range(docs)])
    cfg = tmp / "c.toml"
    cfg.write_text("[language]\nenabled = false\n[dedup.exact]\nenabled = false\n[dedup.minhash]\nenabled = false\n"
                   "[classify]\nenabled = false\n")  # stages: filter, segment, finalize (fewer Ray tasks)
    args: list[object] = ["curate", src, "--tokenizer", make_tokenizer(tmp), "--config", cfg, "--tasks", "4",
                          "--workers", "2"]
    ref = cli(*args, "--out", tmp / "local")
    assert ref.returncode == 0, ref.stderr
    return Corpus(args, tmp / "local", tmp, cfg)


def ray_env(address: str = "") -> dict[str, str]:
    """The CLI's environment: a local cluster started by curate, or the cluster at ``address``.
    RAY_AUTH_MODE=disabled: the nodes this test starts use no token (a token in ~/.ray would make ``ray start
    --head`` require one that the second node is not given)."""
    out = {k: v for k, v in env().items() if k != "RAY_ADDRESS"}
    out["RAY_AUTH_MODE"] = "disabled"
    if address:
        out["RAY_ADDRESS"] = address
    return out


def session(sid: int) -> list[tuple[int, str]]:
    """(pid, name) of the live (not zombie) processes of session ``sid``."""
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


def kill_session(sid: int, wait: float = 30) -> list[tuple[int, str]]:
    """SIGKILL every process of session ``sid``; returns those still alive after ``wait`` seconds."""
    deadline = time.time() + wait
    while (left := session(sid)) and time.time() < deadline:
        for pid, _ in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)
    return session(sid)


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class Node:
    sid: int  # the session of its ``ray start`` (every daemon of the node stays in it)
    temp_dir: str

    def raylet(self) -> tuple[int, str]:
        """(pid, node id) of this node's raylet."""
        for pid, name in session(self.sid):
            if name == "raylet":
                args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                node_id = next(a.split(b"=", 1)[1] for a in args if a.startswith(b"--node_id="))
                return pid, node_id.decode()
        raise AssertionError(f"no raylet in session {self.sid}: {session(self.sid)}")


def _ray_start(nodes: list[Node], *args: str) -> str:
    """``ray start ARGS`` in a session and temp dir of its own (appended to ``nodes`` first, to be cleaned up)."""
    temp = tempfile.mkdtemp(prefix="frt-")  # short: Ray's socket paths live under it
    proc = subprocess.Popen([RAY, "start", *args, "--temp-dir", temp, "--disable-usage-stats",
                             "--object-store-memory", str(80 * 1024 * 1024)], env=ray_env(),
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    nodes.append(Node(proc.pid, temp))
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out[-3000:]
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def two_node_cluster(cpus: int = 1) -> Iterator[tuple[str, Node, Node]]:
    """(address, head, second) of a Ray cluster of two nodes on this machine, ``cpus`` CPUs each; the second
    has the custom resource ``node2``. Every process of both is killed at the end, and none may be left."""
    nodes: list[Node] = []
    try:
        out = _ray_start(nodes, "--head", "--port", str(_free_port()), "--num-cpus", str(cpus),
                         "--include-dashboard", "false")
        address = re.search(r"ray start --address='([^']+)'", out)
        assert address, out[-3000:]
        _ray_start(nodes, "--address", address[1], "--num-cpus", str(cpus), "--resources", '{"node2": 1}')
        yield address[1], nodes[0], nodes[1]
    finally:
        left = [p for n in reversed(nodes) for p in kill_session(n.sid)]
        for n in nodes:
            shutil.rmtree(n.temp_dir, ignore_errors=True)
        assert not left, f"Ray processes outlived the test cluster: {left}"
