from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from foresight.cli import app
from tests.mixtures.corpus import CATEGORY_SPEC, write_spec

runner = CliRunner()


def _run(*args: str):  # noqa: ANN202
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, env={"COLUMNS": "200"})


def test_plan_build_verify_export(shards: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "s.toml", CATEGORY_SPEC.format(total=500, seed=0))
    res = _run("mix", "plan", spec, "--shards", shards)
    assert res.exit_code == 0, res.output
    assert "reasoning" in res.output and "feasible" in res.output and "reasoning share 50.0 %" in res.output
    assert not (tmp_path / "m").exists()
    res = _run("mix", spec, "--shards", shards, "--out", tmp_path / "m")  # default command: build
    assert res.exit_code == 0, res.output
    assert (tmp_path / "m" / "manifest.json").is_file() and (tmp_path / "m" / "entries.parquet").is_file()
    res = _run("mix", "build", spec, "--shards", shards, "--out", tmp_path / "m2", "--seed", "5")
    assert res.exit_code == 0, res.output
    res = _run("manifest", "verify", tmp_path / "m", "--deep")
    assert res.exit_code == 0 and "ok:" in res.output, res.output
    res = _run("manifest", "export", tmp_path / "m", "--format", "nanogpt", "--out", tmp_path / "x")
    assert res.exit_code == 0 and (tmp_path / "x" / "train.bin").stat().st_size == 1000, res.output
    assert (tmp_path / "x" / "val.bin").is_file() and (tmp_path / "x" / "meta.pkl").is_file()
    res = _run("manifest", "show", tmp_path / "m")
    assert res.exit_code == 0 and "500" in res.output


def test_preset_by_name_and_infeasible(shards: Path) -> None:
    res = _run("mix", "plan", "lsbs_mix6", "--shards", shards)
    assert res.exit_code == 0 and "web-crawl" in res.output, res.output
    # Table 2's printed shares beside the ones our labels give on these shards
    assert "LSBS Table 2 for lsbs_mix6: reasoning 52.0 %, visual 14.8 %; our labels on these shards: " \
           "reasoning" in " ".join(res.output.split()), res.output
    res = _run("mix", "plan", "lsbs_mix6", "--shards", shards, "--total-tokens", "1B")
    assert res.exit_code == 1
    assert "needs" in res.output and "tokens but only" in res.output


def test_bad_input_is_one_line(shards: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "s.toml", CATEGORY_SPEC.format(total=500, seed=0).replace("0.2", "0.4"))
    res = _run("mix", "plan", spec, "--shards", shards)
    assert res.exit_code == 1 and "--normalize" in res.output
    assert _run("mix", "plan", spec, "--shards", shards, "--normalize").exit_code == 0
    res = _run("manifest", "verify", tmp_path)
    assert res.exit_code == 1 and "not a manifest directory" in res.output


def test_memory_limit_bounds_the_scan_not_the_result(shards: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "s.toml", CATEGORY_SPEC.format(total=500, seed=0))
    assert _run("mix", spec, "--shards", shards, "--out", tmp_path / "a").exit_code == 0
    res = _run("mix", spec, "--shards", shards, "--out", tmp_path / "b", "--memory-limit", "64MB")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a" / "entries.parquet").read_bytes() == (tmp_path / "b" / "entries.parquet").read_bytes()
    res = _run("mix", "plan", spec, "--shards", shards, "--memory-limit", "lots")
    assert res.exit_code == 1 and "'lots' is not a size DuckDB understands" in res.output, res.output
