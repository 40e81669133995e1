"""formats.shardio.read_rows: rows by (file, row), normalised to the declared shard types."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from foresight.formats.shardio import read_rows


def _write(path: Path, texts: list[str], sha_type: pa.DataType, cut: int = 32) -> None:
    shas = [hashlib.sha256(t.encode()).digest()[:cut] for t in texts]
    pq.write_table(pa.table({"doc_id": texts, "text_sha256": pa.array(shas, sha_type)}), path)


def test_rows_come_back_fixed_width_whatever_the_writer_stored(tmp_path: Path) -> None:
    _write(tmp_path / "a.parquet", [f"a{i}" for i in range(10)], pa.binary(32))
    _write(tmp_path / "b.parquet", [f"b{i}" for i in range(10)], pa.binary())  # e.g. DuckDB's BLOB
    t = read_rows(tmp_path, ["a.parquet", "b.parquet"], np.array([0, 0, 1, 1]), np.array([1, 7, 0, 9]),
                  ["doc_id", "text_sha256"])
    assert t.column("doc_id").to_pylist() == ["a1", "a7", "b0", "b9"]
    assert t.schema.field("text_sha256").type == pa.binary(32)
    assert t.column("text_sha256").to_pylist()[2] == hashlib.sha256(b"b0").digest()


def test_a_wrong_hash_width_names_the_file(tmp_path: Path) -> None:
    _write(tmp_path / "bad.parquet", ["x", "y"], pa.binary(), cut=20)
    with pytest.raises(ValueError, match=r"bad\.parquet: column text_sha256 should hold fixed_size_binary\[32\]"):
        read_rows(tmp_path, ["bad.parquet"], np.array([0]), np.array([1]), ["text_sha256"])
