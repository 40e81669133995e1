import duckdb

from formats.splits import heldout_bucket, heldout_sql, is_heldout


def test_sql_and_python_agree_row_for_row():
    ids = [f"doc-{i}" for i in range(3000)]
    con = duckdb.connect()
    rows = con.execute(f"SELECT doc_id, {heldout_sql(0.1)} FROM (SELECT unnest(?) AS doc_id)", [ids]).fetchall()
    assert {d: h for d, h in rows} == {d: is_heldout(d, 0.1) for d in ids}
    share = sum(h for _, h in rows) / len(ids)
    assert 0.07 < share < 0.13


def test_bucket_is_stable():
    assert heldout_bucket("abc") == int("ba7816bf", 16) % 10_000
