"""Exclusive locks on every output path, atomic manifest replacement, and output paths that are refused."""

from __future__ import annotations

import importlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from foresight.cli import app
from tests.pipeline.util import prose, write_jsonl
from tests.reliability.chain import build_chain, env, leftovers

runner = CliRunner()

HOLD = "import sys, time\nfrom foresight.formats.lock import locked\nwith locked(sys.argv[1]):\n" \
       "    print('held', flush=True)\n    time.sleep(120)\n"


def _run(*args: object) -> tuple[int, str]:
    res = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    return res.exit_code, res.output


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("chain")
    shards, spec = build_chain(tmp)
    code, out = _run("mix", spec, "--shards", shards, "--out", tmp / "m")
    assert code == 0, out
    return {"tmp": tmp, "shards": shards, "spec": spec, "manifest": tmp / "m"}


@pytest.fixture
def holder(tmp_path: Path):  # noqa: ANN201
    """Start a process that holds the lock on a path; yields a function (path) -> that process."""
    procs: list[subprocess.Popen[str]] = []

    def hold(path: Path) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], env=env(), stdout=subprocess.PIPE,
                                text=True)
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def test_lock_names_the_holder_and_a_dead_holder_is_taken_over(tmp_path: Path, holder) -> None:  # noqa: ANN001
    from foresight.formats.lock import LockedError, lock_path, locked

    target = tmp_path / "out"
    proc = holder(target)
    with pytest.raises(LockedError, match=f"in use by PID {proc.pid} "):
        with locked(target):
            pass
    proc.kill()  # SIGKILL: no clean-up, the lock file stays with the dead PID in it
    proc.wait()
    assert lock_path(target).read_text().strip() == str(proc.pid)
    with locked(target) as path:
        assert path.read_text().strip() == str(os.getpid())
    assert not lock_path(target).exists()


def _curate_args(tmp: Path, out: Path | str) -> list[object]:
    from tests.helpers import make_tokenizer

    src = write_jsonl(tmp / "in" / "web" / "a.jsonl", [{"text": prose(i)} for i in range(3)])
    return ["curate", src, "--out", out, "--tokenizer", make_tokenizer(tmp)]


@pytest.mark.parametrize("command", ["curate", "mix", "train", "export", "sweep", "report"])
def test_every_writer_refuses_an_out_in_use(chain: dict[str, Path], tmp_path: Path, holder,  # noqa: ANN001
                                            command: str) -> None:
    out = tmp_path / "out"
    args: list[object] = {
        "curate": lambda: _curate_args(tmp_path, out),
        "mix": lambda: ["mix", chain["spec"], "--shards", chain["shards"], "--out", out],
        "train": lambda: ["train", chain["manifest"], "--out", out, "--quiet"],
        "export": lambda: ["manifest", "export", chain["manifest"], "--format", "nanogpt", "--out", out],
        "sweep": lambda: ["sweep", tmp_path / "sweep.toml", "--shards", chain["shards"], "--out", out],
        "report": lambda: ["audit", "report", chain["shards"], "--out", out],
    }[command]()
    proc = holder(out)
    code, output = _run(*args)
    assert code == 1 and f"in use by PID {proc.pid}" in output, output
    assert not out.exists()


def test_mix_never_replaces_a_manifest_silently_and_replaces_it_whole(chain: dict[str, Path], tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "m"
    args = ["mix", chain["spec"], "--shards", chain["shards"], "--out", out]
    assert _run(*args)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, output = _run(*args)
    assert code == 1 and "--overwrite" in output, output

    def broken(*a: object, **k: object) -> None:  # a crash after entries.parquet, before the header
        raise RuntimeError("simulated crash while writing the header")

    build_module = importlib.import_module("foresight.manifests.build")  # the package re-exports build()
    monkeypatch.setattr(build_module, "header", broken)
    code, output = _run(*args, "--overwrite", "--seed", "7")
    assert code != 0  # a bug keeps its traceback (CliRunner holds it)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the old manifest, untouched
    assert not leftovers(tmp_path)
    monkeypatch.undo()
    assert _run(*args, "--overwrite", "--seed", "7")[0] == 0
    assert (out / "entries.parquet").read_bytes() != before["entries.parquet"]
    assert _run(*args, "--overwrite")[0] == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # same inputs: same bytes


def test_replacing_dir_swaps_whole_or_not_at_all(tmp_path: Path) -> None:
    from foresight.formats.atomic import replacing_dir

    target = tmp_path / "d"
    target.mkdir()
    (target / "old").write_text("old")
    (tmp_path / ".d.killed.tmp").mkdir()  # what a killed build leaves
    with pytest.raises(OSError):
        with replacing_dir(target) as tmp:
            (tmp / "new").write_text("new")
            raise OSError(28, "No space left on device")
    assert [p.name for p in target.iterdir()] == ["old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
    with replacing_dir(target) as tmp:
        (tmp / "new").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new"] and sorted(p.name for p in tmp_path.iterdir()) == ["d"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~_umask()


def test_replacing_dir_without_an_atomic_swap_moves_the_old_one_aside(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Where renameat2(RENAME_EXCHANGE) is missing (another kernel or filesystem): two renames, same result."""
    from foresight.formats import atomic

    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    target = tmp_path / "d"
    target.mkdir()
    (target / "old").write_text("old")
    with pytest.raises(OSError):
        with atomic.replacing_dir(target) as tmp:
            (tmp / "new").write_text("new")
            raise OSError(28, "No space left on device")
    assert [p.name for p in target.iterdir()] == ["old"] and sorted(p.name for p in tmp_path.iterdir()) == ["d"]
    with atomic.replacing_dir(target) as tmp:
        (tmp / "new").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new"] and sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _device(tmp_path: Path) -> Path:
    node = tmp_path / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a copy of /dev/null
    except PermissionError:
        node = tmp_path / "fifo"
        os.mkfifo(node)
    return node


@pytest.mark.parametrize("fmt", ["nanogpt", "megatron", "jsonl"])
def test_export_refuses_devices_and_directories(chain: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    node = _device(tmp_path)
    kind = stat.S_IFMT(node.stat().st_mode)
    for out in (node, tmp_path) if fmt != "nanogpt" else (node, tmp_path / "d"):  # nanogpt: --out is a directory
        if out == tmp_path / "d":
            out.mkdir()
            os.mknod(out / "train.bin", 0o666 | stat.S_IFCHR, os.makedev(1, 3)) if node.name == "null" \
                else os.mkfifo(out / "train.bin")
        code, output = _run("manifest", "export", chain["manifest"], "--format", fmt, "--out", out)
        assert code == 1 and any(w in output for w in ("not a regular file", "is a directory", "not a directory")), \
            output
    assert stat.S_IFMT(node.stat().st_mode) == kind and node.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []  # nothing written, no .tmp


def test_empty_or_wrong_kind_of_out_is_refused(chain: dict[str, Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for args in (["audit", "report", chain["shards"], "--out", ""],
                 ["audit", chain["shards"], "SELECT 1 AS x", "--format", "csv", "--out", ""],
                 ["audit", chain["shards"], "SELECT 1 AS x", "--format", "csv", "--out", tmp_path],
                 ["mix", chain["spec"], "--shards", chain["shards"], "--out", ""],
                 ["manifest", "export", chain["manifest"], "--format", "jsonl", "--out", ""],
                 ["train", chain["manifest"], "--out", "", "--quiet"],
                 _curate_args(tmp_path, "")):
        code, output = _run(*args)  # 2: a usage error (--out is empty), 1: refused
        assert code in (1, 2) and any(w in output for w in ("--out is empty", "is a directory")), (args, output)
        assert not list(cwd.iterdir()), (args, list(cwd.iterdir()))
    assert not leftovers(tmp_path)


def test_sweep_mixture_names_stay_inside_out(tmp_path: Path) -> None:
    from foresight.trainer.sweep import load_sweep, run_dir

    out = tmp_path / "out"
    for name in ("...toml", "..toml", ".hidden.toml"):
        (tmp_path / name).write_text("total_tokens = 100\n[pools.a]\nwhere = \"true\"\nweight = 1.0\n")
        sweep = tmp_path / "sw.toml"
        sweep.write_text(f'mixtures = ["{name}"]\n')
        (m,) = load_sweep(sweep).mixtures
        d = run_dir(out, m, None)
        assert d.resolve().parent == out.resolve() and not d.name.startswith("."), d

