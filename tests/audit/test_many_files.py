"""The segments view over many shard files: one read_parquet over the file list, bound from one schema when the
files share it (union_by_name would open every footer at every bind), and still a union when they differ."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from foresight.audit import SandboxError, connect
from foresight.formats.index import ShardIndex
from foresight.formats.segments import same_schema, schema_key
from tests.helpers import make_shards

SOURCES = ("web-crawl", "code", "math", "literature")


def _many(tmp_path: Path, ranks: int = 12) -> Path:
    docs = [{"text": f"doc number {i} says {'x ' * (i % 5)}", "source": SOURCES[(i // ranks) % len(SOURCES)],
             "labels": ["math_reasoning"] if i % 3 == 0 else []} for i in range(4 * ranks * 2)]
    return make_shards(tmp_path, docs, ranks=ranks)


def _view_sql(au: object) -> str:
    return au.con.execute("SELECT sql FROM duckdb_views() WHERE view_name = '_shards'").fetchall()[0][0]  # type: ignore[attr-defined]


def _reindex(root: Path) -> None:
    old = ShardIndex.load(root)
    ShardIndex.build(root, [f.path for f in old.files], tokenizer=old.tokenizer, classifier=old.classifier,
                     config=old.config).write(root)


def test_many_files_with_one_schema_bind_from_the_first(tmp_path: Path) -> None:
    root = _many(tmp_path)
    index = ShardIndex.load(root)
    assert len(index.files) == 4 * 12
    with connect(root) as au:
        assert "union_by_name = false" in _view_sql(au)
        by_file = au.query("SELECT file, count(*) AS n, sum(n_tokens) AS t FROM segments GROUP BY file")
        assert dict(zip(by_file["file"], zip(by_file["n"], by_file["t"], strict=True), strict=True)) == {
            f.path: (f.rows, f.tokens) for f in index.files}
        docs = au.query("SELECT count(*) AS n, count(*) FILTER (WHERE math_reasoning) AS m FROM documents")
        assert docs.row(0) == (96, 32)
        # the file list is a session variable the views read; a user cannot point it elsewhere
        with pytest.raises(SandboxError, match="SET"):
            au.query("SET VARIABLE _shards_files = ['/etc/passwd']")
        assert au.query("SELECT count(*) AS n FROM segments")["n"][0] == index.totals.rows


def test_files_with_different_columns_still_union_by_name(tmp_path: Path) -> None:
    root = _many(tmp_path, ranks=3)
    files = sorted((root / "data").rglob("*.parquet"))
    # one file gains a filter signal column, another predates the per-label boolean columns
    wide = pq.read_table(files[1])
    pq.write_table(wide.append_column("lang_score", pa.array([0.5] * wide.num_rows, pa.float32())), files[1])
    narrow = pq.read_table(files[2])
    pq.write_table(narrow.drop_columns(["math_reasoning"]), files[2])
    _reindex(root)
    with connect(root) as au:
        assert "union_by_name = true" in _view_sql(au)
        got = au.query("SELECT file, count(lang_score) AS scored, count(*) AS n FROM segments GROUP BY file")
        scored = dict(zip(got["file"], got["scored"], strict=True))
        rel = str(files[1].relative_to(root))
        assert scored[rel] == wide.num_rows and sum(scored.values()) == wide.num_rows
        assert au.query("SELECT count(*) AS n FROM segments WHERE math_reasoning IS NULL")["n"][0] == narrow.num_rows


def test_schema_key_reads_the_footer_and_falls_back(tmp_path: Path) -> None:
    table = pa.table({"a": [1, 2], "b": ["x", "y"]})
    pq.write_table(table, tmp_path / "one.parquet")
    pq.write_table(table.slice(1), tmp_path / "two.parquet", compression="zstd")
    pq.write_table(table, tmp_path / "bare.parquet", store_schema=False)  # no ARROW:schema in the footer
    (tmp_path / "junk.parquet").write_text("not parquet at all")
    assert same_schema([tmp_path / "one.parquet", tmp_path / "two.parquet"])
    assert schema_key(tmp_path / "bare.parquet") is not None
    assert schema_key(tmp_path / "junk.parquet") is None and schema_key(tmp_path / "absent.parquet") is None
    assert not same_schema([tmp_path / "one.parquet", tmp_path / "junk.parquet"])
    assert not same_schema([tmp_path / "one.parquet", tmp_path / "bare.parquet"])  # told apart: union, still right
    assert not same_schema([])
