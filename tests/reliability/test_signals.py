"""The signal matrix: SIGINT, SIGTERM and SIGKILL × curate, mix, train, export, audit.

Each command is stopped while it is writing. SIGINT/SIGTERM: it exits promptly (128 + the signal; audit: 1) with
one line on stderr, after removing its temporaries and lock; SIGKILL: it simply dies. Either way no process of its
group survives, nothing partial is left where a rerun would trust it, and the rerun completes with the same bytes
as an uninterrupted run.

Commands are paused at a chosen point by a wrapper that patches one function in the child process (a test hook,
not product code): the signal then lands while a temporary directory or file is half written.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import make_tokenizer
from tests.pipeline.util import prose, tree_digest, write_jsonl
from tests.reliability.chain import TRAIN_ARGS, build_chain, cli, env, error_line, leftovers

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals")]

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]

# argv: module, attribute path (or "-"), marker file, n (pause at the n-th call; -n: only mark it), CLI args…
WRAPPER = """
import importlib, sys, time
mod, attr, marker, nth = sys.argv[1:5]
if attr != "-":
    owner = importlib.import_module(mod)
    *path, name = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    original, calls, n = getattr(owner, name), [0], int(nth)
    def hooked(*a, **k):
        calls[0] += 1
        if calls[0] == abs(n):
            open(marker, "w").close()
            if n > 0:
                time.sleep(600)
        return original(*a, **k)
    setattr(owner, name, hooked)
sys.argv = ["foresight", *sys.argv[5:]]
from foresight.cli import main
main()
"""


def _gone(pgid: int, timeout: float = 30) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _interrupt(sig: int, args: list[object], ready: Path, hook: tuple[str, str, int] = ("-", "-", 0),
               settle: float = 0.0, sigint_ignored: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the CLI with ``hook``, wait for ``ready`` to exist, send ``sig`` to its process group; returns it.
    ``sigint_ignored``: start it as a non-interactive shell starts a background job, with SIGINT ignored."""
    cmd = [sys.executable, "-c", WRAPPER, hook[0], hook[1], str(ready), str(hook[2]), *map(str, args)]
    proc = subprocess.Popen(cmd, env=env(), start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_ignore_sigint if sigint_ignored else None)
    try:
        deadline = time.time() + 240
        while not ready.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, f"finished before the signal: {proc.communicate()}"
        assert ready.exists(), "never reached the point to interrupt"
        time.sleep(settle)
        os.killpg(proc.pid, sig)
        out, err = proc.communicate(timeout=120)  # a hang fails here: "promptly" is a deadline, not a timing
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert _gone(proc.pid), "a process of the interrupted command outlived it"
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _check_stopped(res: subprocess.CompletedProcess[str], sig: int, audit: bool = False) -> None:
    if sig == signal.SIGKILL:
        assert res.returncode == -signal.SIGKILL
        return
    line = error_line(res)
    name = signal.Signals(sig).name
    if audit:
        assert res.returncode == 1 and ("query interrupted" if sig == signal.SIGINT else f"stopped by {name}") in line
    else:
        assert res.returncode == 128 + sig and f"interrupted by {name}" in line, line


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("chain")
    shards, spec = build_chain(tmp)
    for args in (("mix", spec, "--shards", shards, "--out", tmp / "m"),
                 ("mix", spec, "--shards", shards, "--out", tmp / "m_old", "--seed", "9"),
                 ("manifest", "export", tmp / "m", "--format", "nanogpt", "--out", tmp / "x"),
                 ("train", tmp / "m", "--out", tmp / "run", *TRAIN_ARGS, "--checkpoint-every", "1"),
                 ("audit", shards, "SELECT source, count(*) AS n FROM segments GROUP BY ALL ORDER BY 1", "--format",
                  "csv", "--out", tmp / "q.csv")):
        res = cli(*args)
        assert res.returncode == 0, res.stderr
    return {"tmp": tmp, "shards": shards, "spec": spec, "manifest": tmp / "m"}


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_mix(chain: dict[str, Path], tmp_path: Path, sig: int) -> None:
    out = tmp_path / "m"
    shutil.copytree(chain["tmp"] / "m_old", out)
    old = _files(out)
    args = ["mix", chain["spec"], "--shards", chain["shards"], "--out", out, "--overwrite"]
    res = _interrupt(sig, args, tmp_path / "ready", ("foresight.manifests.build", "header", 1))
    _check_stopped(res, sig)
    assert _files(out) == old  # the old manifest, whole; the new one was never swapped in
    if sig != signal.SIGKILL:
        assert not leftovers(tmp_path)
    assert cli(*args).returncode == 0
    assert _files(out) == _files(chain["manifest"]) and not leftovers(tmp_path)


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_export(chain: dict[str, Path], tmp_path: Path, sig: int) -> None:
    out = tmp_path / "x"  # a nanoGPT dataset directory: train.bin, val.bin, meta.pkl
    args = ["manifest", "export", chain["manifest"], "--format", "nanogpt", "--out", out]
    res = _interrupt(sig, args, tmp_path / "ready", ("foresight.manifests.export", "scatter_tokens", 1))
    _check_stopped(res, sig)
    assert not (out / "train.bin").exists() and not (out / "meta.pkl").exists()
    if sig != signal.SIGKILL:
        assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["ready"]
    assert cli(*args).returncode == 0
    assert _files(out) == _files(chain["tmp"] / "x")
    assert not leftovers(tmp_path)


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_train(chain: dict[str, Path], tmp_path: Path, sig: int) -> None:
    out = tmp_path / "run"
    args = ["train", chain["manifest"], "--out", out, *TRAIN_ARGS, "--checkpoint-every", "1"]
    # paused inside the second checkpoint's write: the first one is complete
    res = _interrupt(sig, args, tmp_path / "ready", ("foresight.trainer.checkpoint", "torch.save", 2))
    _check_stopped(res, sig)
    assert not (out / "run.json").exists() and (out / "checkpoint" / "trainer_state.pt").is_file()
    if sig != signal.SIGKILL:
        assert not leftovers(tmp_path)
    res = cli(*args, "--resume")
    assert res.returncode == 0, res.stderr
    done, ref = (json.loads((d / "run.json").read_text()) for d in (out, chain["tmp"] / "run"))
    assert (done["steps"], done["final_loss"], done["checkpoint_sha256"]) == \
        (ref["steps"], ref["final_loss"], ref["checkpoint_sha256"])
    assert not leftovers(tmp_path)


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_audit(chain: dict[str, Path], tmp_path: Path, sig: int) -> None:
    slow = ("SELECT count(*) FROM segments a, segments b, segments c, segments d, segments e "
            "WHERE hash(a.id || b.id || c.id || d.id || e.id) % 1000 = 7")
    out = tmp_path / "q.csv"
    res = _interrupt(sig, ["audit", chain["shards"], slow, "--format", "csv", "--out", out, "--timeout", "0"],
                     tmp_path / "ready", ("foresight.audit", "AuditConnection.query", -1), settle=1.0)
    _check_stopped(res, sig, audit=True)
    assert not out.exists()
    res = cli("audit", chain["shards"], "SELECT source, count(*) AS n FROM segments GROUP BY ALL ORDER BY 1",
              "--format", "csv", "--out", out)
    assert res.returncode == 0 and out.read_bytes() == (chain["tmp"] / "q.csv").read_bytes()
    assert not leftovers(tmp_path)


@pytest.fixture(scope="module")
def curate_ref(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("curate")
    for f in range(8):
        write_jsonl(tmp / "in" / "web" / f"part{f}.jsonl",
                    [{"id": f"f{f}d{i}", "text": "\n\n".join(prose(f * 1000 + i * 10 + k, 60) for k in range(4))}
                     for i in range(20)])
    cfg = tmp / "c.toml"
    cfg.write_text("[classify]\nenabled = false\n[language]\nenabled = false\n[segment]\nmax_tokens = 64\n"
                   "[dedup.minhash]\nenabled = false\n")
    args = ["curate", tmp / "in", "--tokenizer", make_tokenizer(tmp), "--tasks", "8", "--config", cfg]
    res = cli(*args, "--out", tmp / "ref")
    assert res.returncode == 0, res.stderr
    return {"args": args, "digest": tree_digest(tmp / "ref")}


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_curate(curate_ref: dict[str, object], tmp_path: Path, sig: int) -> None:
    out = tmp_path / "s"
    args = [*curate_ref["args"], "--out", out]  # type: ignore[misc]
    ready = out / "_work" / "logs" / "segment" / "completions" / "00000"  # mid-way through the last stage
    res = _interrupt(sig, args, ready)
    _check_stopped(res, sig)
    assert not (out / "index.json").exists()  # nothing a reader (or a resumed run) would take as finished
    if sig != signal.SIGKILL:
        assert not leftovers(tmp_path)
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    assert tree_digest(out) == curate_ref["digest"] and not leftovers(tmp_path)


def test_curate_started_with_sigint_ignored_still_stops_on_it(curate_ref: dict[str, object], tmp_path: Path) -> None:
    """`foresight curate … &` in a script inherits SIGINT ignored: it used to run to the end on Ctrl-C/kill -INT."""
    out = tmp_path / "s"
    args = [*curate_ref["args"], "--out", out]  # type: ignore[misc]
    ready = out / "_work" / "logs" / "filter" / "completions" / "00000"
    res = _interrupt(signal.SIGINT, args, ready, sigint_ignored=True)
    _check_stopped(res, signal.SIGINT)
    assert not (out / "index.json").exists() and not leftovers(tmp_path)
