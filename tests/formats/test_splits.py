import duckdb

from foresight.formats.segments import create_segments_view
from foresight.formats.splits import heldout_bucket, heldout_sql, is_heldout
from tests.helpers import make_shards


def test_sql_and_python_agree_row_for_row():
    ids = [f"doc-{i}" for i in range(3000)]
    con = duckdb.connect()
    rows = con.execute(f"SELECT doc_id, {heldout_sql(0.1)} FROM (SELECT unnest(?) AS doc_id)", [ids]).fetchall()
    assert {d: h for d, h in rows} == {d: is_heldout(d, 0.1) for d in ids}
    share = sum(h for _, h in rows) / len(ids)
    assert 0.07 < share < 0.13


def test_bucket_is_stable():
    assert heldout_bucket("abc") == int("ba7816bf", 16) % 10_000


def _segments(con: duckdb.DuckDBPyConnection, files: list, fraction: float) -> dict[str, bool]:
    create_segments_view(con, files, heldout_fraction=fraction)
    return dict(con.execute("SELECT doc_id, heldout FROM segments").fetchall())


def test_written_shards_store_each_rows_bucket(tmp_path):
    docs = [{"text": f"the red ball {i}", "source": "web" if i % 2 else "code", "doc_id": f"d-{i}"} for i in range(300)]
    root = make_shards(tmp_path, docs)
    con = duckdb.connect()
    files = sorted(str(p) for p in root.rglob("*.parquet"))
    stored = con.execute(f"SELECT doc_id, heldout_bucket FROM read_parquet({files})").fetchall()
    assert {d: b for d, b in stored} == {d["doc_id"]: heldout_bucket(d["doc_id"]) for d in docs}
    assert _segments(con, files, 0.2) == {d["doc_id"]: is_heldout(d["doc_id"], 0.2) for d in docs}


def test_view_reads_the_stored_bucket_and_hashes_older_shards(tmp_path):
    """A shard without the column (written before it existed) is hashed; a shard with it is not re-hashed."""
    con = duckdb.connect()
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    ids = [f"doc-{i}" for i in range(200)]
    con.execute(f"COPY (SELECT unnest(?) AS doc_id) TO '{old}' (FORMAT parquet)", [ids[:100]])
    # the stored buckets of `new` are all 0 (held out at any fraction): the view must follow them
    con.execute(f"COPY (SELECT unnest(?) AS doc_id, 0::USMALLINT AS heldout_bucket) TO '{new}' (FORMAT parquet)",
                [ids[100:]])
    got = _segments(con, [old, new], 0.1)
    assert got == {**{d: is_heldout(d, 0.1) for d in ids[:100]}, **dict.fromkeys(ids[100:], True)}
