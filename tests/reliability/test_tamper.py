"""Tamper: a shard changed, truncated, swapped, deleted or added after the run is named before anything uses
it. (Manifests — entries, header hash, deep re-tokenize — are tested in tests/manifests/test_manifests.py.)"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from foresight.cli import app
from tests.pipeline.util import curate, prose, write_jsonl

runner = CliRunner()


@pytest.fixture()
def shards(tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "in" / "web" / "a.jsonl", [{"id": f"w{i}", "text": prose(i)} for i in range(5)])
    write_jsonl(tmp_path / "in" / "code" / "b.jsonl", [{"id": f"c{i}", "text": prose(50 + i)} for i in range(5)])
    return curate(tmp_path, [tmp_path / "in"])


def _flip(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))


def _swap(root: Path) -> None:
    a, b = root / "data/source=web/part-00000.parquet", root / "data/source=code/part-00000.parquet"
    tmp = a.with_suffix(".swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


TAMPERS: dict[str, Callable[[Path], None]] = {
    "byte flipped": lambda r: _flip(r / "data/source=web/part-00000.parquet"),
    "truncated": lambda r: (r / "data/source=web/part-00000.parquet").write_bytes(b""),
    "deleted": lambda r: (r / "data/source=web/part-00000.parquet").unlink(),
    "swapped between sources": _swap,
}


@pytest.mark.parametrize("how", TAMPERS)
def test_shards_info_names_a_tampered_shard(shards: Path, how: str) -> None:
    assert runner.invoke(app, ["shards", "info", str(shards)]).exit_code == 0
    TAMPERS[how](shards)
    res = runner.invoke(app, ["shards", "info", str(shards)])
    assert res.exit_code == 1 and "source=web/part-00000.parquet" in res.output


def test_an_unindexed_file_is_never_read(shards: Path) -> None:
    extra = shards / "data/source=web/part-00099.parquet"
    shutil.copy(shards / "data/source=code/part-00000.parquet", extra)
    res = runner.invoke(app, ["audit", str(shards), "SELECT count(*) AS n FROM segments", "--format", "csv"])
    assert res.exit_code == 0 and res.output.strip().splitlines()[-1] == "10"
