"""The views' contents, the Python API, and bad input (missing index, changed shards, bad SQL)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from foresight.audit import AuditError, AuditWarning, connect, parse_param
from foresight.audit.report import composition_sql
from foresight.formats.index import ShardIndex
from foresight.formats.splits import is_heldout
from foresight.formats.taxonomy import LABEL_NAMES
from tests.audit.fixtures import DOCS, corpus, make_manifest
from tests.helpers import make_shards


def test_views_hold_the_shards_manifests_and_results(env: dict[str, Path]) -> None:
    with connect(env["shards"], [env["mixA"], env["mixB"]], env["sweep"]) as au:
        assert au.views() == ["segments", "documents", "entries", "manifests", "pools", "results", "excluded"]
        seg = au.query("SELECT source, count(*) AS n, sum(n_tokens) AS t FROM segments GROUP BY source")
        assert dict(zip(seg["source"], seg["n"], strict=True)) == {"web-crawl": 3, "code": 2, "math": 2,
                                                                   "literature": 1, "academic": 1}
        assert seg["t"].dtype == pl.Int64  # sums come back as plain integers, not decimal(38,0)
        docs = au.query("SELECT doc_id, segments, labels, reasoning, heldout FROM documents WHERE doc_id = 'math1'")
        assert docs.row(0) == ("math1", 2, ["math_reasoning"], True, is_heldout("math1"))
        assert au.query("SELECT count(*) AS n FROM documents")["n"][0] == len({d["doc_id"] for d in DOCS})
        ent = au.query("SELECT manifest, count(*) AS n, sum(n_tokens) AS t FROM entries GROUP BY 1 ORDER BY 1")
        assert ent["manifest"].to_list() == ["mixA", "mixB"] and ent["n"].to_list() == [4, 4]
        # entries carry the segment's columns through the join
        vis = au.query("SELECT DISTINCT source FROM entries WHERE manifest = 'mixA' AND visual ORDER BY 1")
        assert vis["source"].to_list() == ["literature", "web-crawl"]
        man = au.query("SELECT manifest, total_tokens, target_reasoning_share, pool_count FROM manifests ORDER BY 1")
        assert man.row(0) == ("mixA", ent["t"][0], 0.6, 2)
        assert au.query("SELECT count(*) AS n FROM pools")["n"][0] == 3
        res = au.query("SELECT mixture, bpb_overall FROM results ORDER BY mixture")
        assert res["bpb_overall"].to_list() == [1.4, 1.6]
        # segments keep text and tokens queryable, and know their file and row
        row = au.query("SELECT text, tokens, file, \"row\" FROM segments WHERE id = 'lit1#0'").row(0)
        assert row[0].startswith("the knight") and row[1][-1] == 0 and row[2].startswith("data/source=literature/")


def test_entries_and_results_are_empty_with_columns_when_absent(env: dict[str, Path]) -> None:
    with connect(env["shards"]) as au:
        ent = au.query("SELECT * FROM entries")
        assert ent.height == 0
        assert {"manifest", "order", "pool", "id", "file", "row", "start", "end", "n_tokens", "epoch",
                "source", "reasoning", "visual"} <= set(ent.columns)
        res = au.query("SELECT * FROM results")
        assert res.height == 0 and {"mixture", "final_loss", "tokens"} <= set(res.columns)
        assert au.query("SELECT count(*) AS n FROM manifests")["n"][0] == 0


def test_unlabelled_shards_still_audit(tmp_path: Path) -> None:
    shards = make_shards(tmp_path, [{"text": "def f ( x )", "source": "code"}], with_labels=False)
    with connect(shards) as au:
        assert "labels" not in [c for c, _ in au.columns("documents")]
        assert au.query("SELECT tokens FROM documents")["tokens"][0] > 0


def _drop_label_flags(shards: Path) -> None:
    """Rewrite the shards as written before the per-label boolean columns existed, and re-index them."""
    index = ShardIndex.load(shards)
    for f in index.files:
        path = shards / f.path
        table = pq.read_table(path)
        pq.write_table(table.drop_columns(list(LABEL_NAMES)), path)
    ShardIndex.build(shards, [f.path for f in index.files], tokenizer=index.tokenizer, classifier=index.classifier,
                     config=index.config, accounting=index.accounting).write(shards)


def test_label_flag_columns_match_labels_and_old_shards_derive_them(tmp_path: Path) -> None:
    flags = ", ".join(LABEL_NAMES)
    new = corpus(tmp_path, "new")
    with connect(new) as au:
        stored = au.query(f"SELECT id, labels, {flags} FROM segments ORDER BY id")
        composition = au.query(composition_sql())
    for row in stored.iter_rows(named=True):
        assert [n for n in LABEL_NAMES if row[n]] == row["labels"]
    # the composition over the flags is the unnest of the label lists
    want: dict[tuple[str, str], int] = {}
    for d in DOCS:
        for label in d["labels"] or ["none"]:
            want[(d["source"], label)] = want.get((d["source"], label), 0) + 1
    cells = zip(composition["source"], composition["label"], composition["segments"], strict=True)
    assert {(source, label): n for source, label, n in cells} == want
    old = corpus(tmp_path, "old")
    _drop_label_flags(old)
    assert "math_reasoning" not in pq.read_schema(next((old / "data").rglob("*.parquet"))).names
    with connect(old, strict=True) as au:
        assert au.query(f"SELECT id, labels, {flags} FROM segments ORDER BY id").equals(stored)
        assert au.query(composition_sql()).equals(composition)
        docs = au.query("SELECT math_reasoning FROM documents WHERE doc_id = 'math1'")
        assert docs["math_reasoning"].to_list() == [True]


def test_missing_index_names_it_and_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match=r"index\.json not found.*foresight curate"):
        connect(tmp_path)


def test_changed_shard_warns_by_default_and_strict_refuses(tmp_path: Path) -> None:
    shards = corpus(tmp_path)
    victim = next((shards / "data").rglob("*.parquet"))
    shutil.copy(next(p for p in (shards / "data").rglob("*.parquet") if p != victim), victim)
    rel = str(victim.relative_to(shards))
    with pytest.warns(AuditWarning, match=rel.replace("=", ".")), connect(shards) as au:
        assert au.problems and rel in au.problems[0]
    with pytest.raises(AuditError, match=r"strict.*" + rel.replace("=", ".")):
        connect(shards, strict=True)


def test_missing_shard_warns_and_the_rest_stays_queryable(tmp_path: Path) -> None:
    shards = corpus(tmp_path)
    victim = shards / "data" / "source=code" / "part-00000.parquet"
    victim.unlink()
    with pytest.warns(AuditWarning, match="source=code/part-00000.parquet: missing"), connect(shards) as au:
        assert "code" not in au.query("SELECT DISTINCT source FROM segments")["source"].to_list()


def test_a_shard_that_is_not_parquet_is_named(tmp_path: Path) -> None:
    shards = corpus(tmp_path)
    (shards / "data" / "source=code" / "part-00000.parquet").write_text("not parquet")
    with pytest.warns(AuditWarning), pytest.raises(AuditError, match="cannot open the audit views.*part-00000"):
        connect(shards)


def test_edited_manifest_entries_warn_and_an_edited_header_is_refused(tmp_path: Path) -> None:
    shards = corpus(tmp_path)
    mdir = make_manifest(tmp_path / "m", shards, "m", {"all": {"where": "true", "weight": 1.0}}, [("all", "web1#0", 0)])
    entries = pq.read_table(mdir / "entries.parquet")
    pq.write_table(entries.set_column(entries.schema.get_field_index("epoch"), "epoch",
                                      pa.array([1], pa.int32())), mdir / "entries.parquet")
    with pytest.warns(AuditWarning, match="entries.parquet: sha256 differs"), connect(shards, [mdir]):
        pass
    with pytest.raises(AuditError, match="strict"):
        connect(shards, [mdir], strict=True)
    header = json.loads((mdir / "manifest.json").read_text())
    header["entries_sha256"] = "0" * 64  # a header edit is caught by its own hash (ManifestHeader.load)
    (mdir / "manifest.json").write_text(json.dumps(header))
    with pytest.raises(AuditError, match="header_sha256 does not match"):
        connect(shards, [mdir])


def test_bad_manifest_and_sweep_dirs_are_named(tmp_path: Path, env: dict[str, Path]) -> None:
    with pytest.raises(AuditError, match=r"manifest\.json not found.*foresight mix"):
        connect(env["shards"], [tmp_path])
    with pytest.raises(AuditError, match=r"results\.parquet not found.*foresight sweep"):
        connect(env["shards"], results=tmp_path)


def test_sql_errors_carry_duckdb_message_position_and_the_fix(env: dict[str, Path]) -> None:
    with connect(env["shards"]) as au:
        with pytest.raises(AuditError) as syntax:
            au.query("SELECT source FORM segments")
        assert "syntax error" in str(syntax.value) and "LINE 1" in str(syntax.value) and "^" in str(syntax.value)
        with pytest.raises(AuditError, match=r"(?s)segmnts.*views: segments, documents, entries, manifests"):
            au.query("SELECT * FROM segmnts")
        with pytest.raises(AuditError, match=r"(?s)scroe.*segments: id, doc_id, segment, source"):
            au.query("SELECT scroe FROM segments")
        with pytest.raises(AuditError, match="unknown view"):
            au.columns("nope")


def test_parse_param_types() -> None:
    assert parse_param("n=3") == ("n", 3)
    assert parse_param("$s=0.6") == ("s", 0.6)
    assert parse_param("flag=true") == ("flag", True)
    assert parse_param("src=web-crawl") == ("src", "web-crawl")
    assert parse_param("q=a=b") == ("q", "a=b")
    with pytest.raises(AuditError, match="name=value"):
        parse_param("novalue")


def test_entry_view_types_are_what_duckdb_reads_from_the_manifest_schema(tmp_path):
    """The entries view's casts come from ENTRIES_SCHEMA (formats.sql.duckdb_type), and match DuckDB's reading."""
    import duckdb
    import pyarrow.parquet as pq

    from foresight.audit.views import ENTRY_COLUMNS
    from foresight.manifests.schema import ENTRIES_SCHEMA

    path = tmp_path / "entries.parquet"
    pq.write_table(ENTRIES_SCHEMA.empty_table(), path)
    read = duckdb.connect().execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
    assert [(name, typ) for name, typ, *_ in read] == list(ENTRY_COLUMNS)


def test_results_and_pools_view_types_are_what_duckdb_reads_from_their_schemas(tmp_path, env):
    """The empty results view's types come from trainer.results.RESULTS_SCHEMA, and a results.parquet the
    sweep writes (write_results) reads back with exactly those types for its fixed columns; the pools table's
    types come from formats.manifest.POOL_SCHEMA, as DuckDB reads that schema from Parquet."""
    import duckdb
    import pyarrow.parquet as pq

    from foresight.audit.views import RESULT_COLUMNS
    from foresight.formats.manifest import POOL_SCHEMA
    from foresight.trainer.results import RESULTS_SCHEMA, write_results

    def described(path: Path) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in duckdb.connect().execute(
            f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()]

    assert [c for c, _ in RESULT_COLUMNS] == RESULTS_SCHEMA.names
    row = {"mixture": "m", "seed": 0, "swept_share": 0.5, "reasoning_share": None, "visual_share": None,
           "tokens": 10, "final_loss": 3.0, "bpb_overall": 1.5, "manifest_sha256": "a", "checkpoint_sha256": "b"}
    read = dict(described(write_results([row], tmp_path / "results.parquet")))
    assert [(c, read[c]) for c, _ in RESULT_COLUMNS] == list(RESULT_COLUMNS)  # a column of nulls too
    assert read["bpb_overall"] == "DOUBLE"
    with connect(env["shards"]) as au:
        assert au.columns("results") == list(RESULT_COLUMNS)

    pq.write_table(POOL_SCHEMA.empty_table(), tmp_path / "pools.parquet")
    with connect(env["shards"], [env["mixA"]]) as au:
        assert au.columns("pools") == [("manifest", "VARCHAR"), *described(tmp_path / "pools.parquet")]
