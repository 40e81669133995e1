"""A full disk: every command that writes stops with one line, leaves no temporary, lock or half output, and the
same command completes once there is space (byte-identical where the output is deterministic)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.reliability.chain import TRAIN_ARGS, build_chain, cli, error_line, full_tmpfs, leftovers

pytestmark = pytest.mark.slow


def _digest(path: Path) -> dict[str, str]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("chain")
    shards, spec = build_chain(tmp)
    assert cli("mix", spec, "--shards", shards, "--out", tmp / "m").returncode == 0
    return {"tmp": tmp, "shards": shards, "spec": spec, "manifest": tmp / "m"}


def _check_full(res, disk: Path) -> None:  # noqa: ANN001
    line = error_line(res)
    assert "no space left on the device" in line, line
    assert not leftovers(disk), leftovers(disk)


@pytest.mark.parametrize("free", [4096, 8192])  # entries.parquet, or manifest.json, does not fit
def test_mix(chain: dict[str, Path], tmp_path: Path, free: int) -> None:
    with full_tmpfs(tmp_path / "disk", free) as disk:
        args = ("mix", chain["spec"], "--shards", chain["shards"], "--out", disk / "m")
        _check_full(cli(*args), disk)
        assert not (disk / "m").exists()
        (disk / "filler").unlink()
        assert cli(*args).returncode == 0
        assert _digest(disk / "m") == _digest(chain["manifest"])


def test_mix_spill_on_a_full_tmpdir(chain: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The entries spill under TMPDIR: a full one stops the build with one line and leaves no spill behind."""
    import gc
    import tempfile

    from typer.testing import CliRunner

    from foresight.cli import app
    from foresight.mixtures import spill

    monkeypatch.setattr(spill, "HELD_BYTES", 0)  # spill every entry (a small manifest is otherwise held)
    with full_tmpfs(tmp_path / "tmpdir", 4096) as disk:
        monkeypatch.setattr(tempfile, "tempdir", str(disk))
        res = CliRunner().invoke(app, ["mix", str(chain["spec"]), "--shards", str(chain["shards"]),
                                       "--out", str(tmp_path / "m"), "--total-tokens", "max"])
        monkeypatch.undo()
        lines, code = [ln for ln in res.output.splitlines() if ln.strip()], res.exit_code
        del res  # its traceback holds the DuckDB connection whose temp directory is deleted with it
        gc.collect()
        assert code != 0 and len(lines) == 1 and "no space left on the device" in lines[0], lines
        assert [p.name for p in disk.iterdir()] == ["filler"]  # the spill directory went with the error
        assert not (tmp_path / "m").exists()


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fmt,name", [("nanogpt", "x"), ("megatron", "x.bin"), ("jsonl", "x.jsonl")])
def test_export(chain: dict[str, Path], tmp_path: Path, fmt: str, name: str) -> None:
    ref = tmp_path / "ref"
    assert cli("manifest", "export", chain["manifest"], "--format", fmt, "--out", ref / name).returncode == 0
    with full_tmpfs(tmp_path / "disk", 4096) as disk:
        args = ("manifest", "export", chain["manifest"], "--format", fmt, "--out", disk / name)
        _check_full(cli(*args), disk)
        assert [p.name for p in disk.rglob("*") if p.is_file()] == ["filler"]
        (disk / "filler").unlink()
        assert cli(*args).returncode == 0
        assert _files(disk) == _files(ref)


@pytest.mark.parametrize("free", [4096, 300 << 10])  # the token file, or the checkpoint, does not fit
def test_train(chain: dict[str, Path], tmp_path: Path, free: int) -> None:
    with full_tmpfs(tmp_path / "disk", free) as disk:
        args = ("train", chain["manifest"], "--out", disk / "r", *TRAIN_ARGS)
        _check_full(cli(*args), disk)
        assert not (disk / "r" / "run.json").exists()
        (disk / "filler").unlink()
        res = cli(*args, "--overwrite")
        assert res.returncode == 0, res.stderr
        assert (disk / "r" / "run.json").is_file()


@pytest.mark.parametrize("free", [4096, 100 << 10])
def test_audit(chain: dict[str, Path], tmp_path: Path, free: int) -> None:
    with full_tmpfs(tmp_path / "disk", free) as disk:
        _check_full(cli("audit", "report", chain["shards"], "-m", chain["manifest"], "--out", disk / "rep"), disk)
        _check_full(cli("audit", chain["shards"], "SELECT * FROM segments", "--format", "csv", "--out",
                        disk / "q.csv"), disk)
        assert not (disk / "q.csv").exists()
        (disk / "filler").unlink()
        assert cli("audit", "report", chain["shards"], "-m", chain["manifest"], "--out", disk / "rep").returncode \
            in (0, 2)  # 2: a check failed, the report is written
        assert (disk / "rep" / "report.md").is_file()
