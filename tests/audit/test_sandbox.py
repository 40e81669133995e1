"""The sandbox: what the audit connection refuses, what it admits, and that no statement changes a shard file."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from foresight.audit import AuditConnection, AuditError, SandboxError, connect


def tree_hashes(*dirs: Path) -> dict[str, str]:
    """sha256 of every file under ``dirs`` (so a new, changed or deleted file shows up)."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for d in dirs for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def audit(env: dict[str, Path]) -> Iterator[AuditConnection]:
    before = tree_hashes(env["shards"], env["mixA"], env["sweep"])
    with connect(env["shards"], [env["mixA"]], env["sweep"]) as au:
        yield au
    # Every test of this module has run against `au`: nothing in the given directories changed.
    assert tree_hashes(env["shards"], env["mixA"], env["sweep"]) == before


def test_settings_are_locked_down(audit: AuditConnection, env: dict[str, Path]) -> None:
    settings = dict(audit.con.execute(
        "SELECT name, value FROM duckdb_settings() WHERE name IN "
        "('enable_external_access', 'lock_configuration', 'allowed_directories', 'python_enable_replacements')"
    ).fetchall())
    assert settings["enable_external_access"] == "false"
    assert settings["lock_configuration"] == "true"
    assert settings["python_enable_replacements"] == "false"
    allowed = audit.con.execute("SELECT current_setting('allowed_directories')").fetchone()[0]
    for key in ("shards", "mixA", "sweep"):
        assert str(env[key].resolve()) + "/" in allowed


def _outside(env: dict[str, Path]) -> Path:
    path = env["tmp"] / "outside.csv"
    if not path.exists():
        path.write_text("a,b\n1,2\n")
    return path


REFUSED_STATEMENTS = {
    "copy_into_shards": "COPY (SELECT 1 AS a) TO '{shards}/data/evil.parquet' (FORMAT parquet)",
    "copy_view_out": "COPY segments TO '{tmp}/dump.csv'",
    "explain_analyze_copy": "EXPLAIN ANALYZE COPY (SELECT 1) TO '{shards}/evil.csv'",
    "attach": "ATTACH '{tmp}/other.duckdb' AS other",
    "attach_memory": "ATTACH ':memory:' AS scratch",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "set": "SET enable_external_access = true",
    "set_threads": "SET threads = 1",
    "reset": "RESET lock_configuration",
    "pragma_set": "PRAGMA threads = 1",
    "pragma_query": "PRAGMA database_list",
    "create_table": "CREATE TABLE t AS SELECT 1",
    "create_view": "CREATE VIEW segments2 AS SELECT * FROM segments",
    "create_macro": "CREATE MACRO evil() AS 1",
    "insert": "INSERT INTO manifests (manifest) VALUES ('x')",
    "update": "UPDATE manifests SET seed = 1",
    "delete": "DELETE FROM pools",
    "drop": "DROP VIEW segments",
    "export": "EXPORT DATABASE '{tmp}/exported'",
    "call": "CALL pragma_version()",
    "set_variable": "SET VARIABLE x = 1",
    "use": "USE memory",
    "detach": "DETACH memory",
    "checkpoint": "CHECKPOINT",
    "vacuum": "VACUUM",
    "begin": "BEGIN TRANSACTION",
    "prepare": "PREPARE p AS SELECT 1",
    "explain_create": "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1",
    "comment_then_copy": "/* harmless */ -- really\nCOPY (SELECT 1) TO '{shards}/c.csv'",
    "two_statements": "SELECT 1; SELECT 2",
    "select_then_drop": "SELECT 1; DROP VIEW segments",
}


@pytest.mark.parametrize("name", sorted(REFUSED_STATEMENTS))
def test_statement_check_refuses(audit: AuditConnection, env: dict[str, Path], name: str) -> None:
    sql = REFUSED_STATEMENTS[name].format(shards=env["shards"], tmp=env["tmp"])
    with pytest.raises(SandboxError, match="refused"):
        audit.query(sql)
    assert audit.views() == ["segments", "documents", "entries", "manifests", "pools", "results", "excluded"]


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_parquet('/etc/*.parquet')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_csv('{outside}')",
    "SELECT * FROM read_csv('{shards}/../outside.csv')",
    "SELECT * FROM read_csv('file://{outside}')",
    "SELECT * FROM read_csv(['{shards}/index.json', '/etc/passwd'])",
])
def test_reading_outside_the_given_directories_is_refused(audit: AuditConnection, env: dict[str, Path],
                                                          sql: str) -> None:
    sql = sql.format(outside=_outside(env), shards=env["shards"])
    with pytest.raises(SandboxError, match="refused.*(Permission|disabled)"):
        audit.query(sql)


def test_symlink_out_of_a_given_directory_is_refused(tmp_path: Path, env: dict[str, Path]) -> None:
    from tests.audit.fixtures import corpus

    shards = corpus(tmp_path)
    (shards / "passwd.csv").symlink_to("/etc/passwd")
    with connect(shards) as au, pytest.raises(SandboxError):
        au.query(f"SELECT * FROM read_csv('{shards}/passwd.csv')")


def test_raw_connection_is_confined_even_without_the_statement_check(audit: AuditConnection) -> None:
    """Defence in depth: the DuckDB settings alone refuse config changes, extensions and outside files."""
    for sql in ("SET enable_external_access = true", "SET allowed_directories = ['/']", "RESET lock_configuration",
                "SELECT * FROM read_csv('/etc/passwd')", "INSTALL httpfs", "LOAD httpfs",
                "ATTACH '/tmp/foresight-audit-attack.duckdb'"):
        with pytest.raises(duckdb.Error):
            audit.con.execute(sql)


@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM segments",
    "WITH t AS (SELECT source, n_tokens FROM segments) SELECT source, sum(n_tokens) FROM t GROUP BY source",
    "FROM documents LIMIT 1",
    "VALUES (1, 2)",
    "DESCRIBE segments",
    "SHOW TABLES",
    "SUMMARIZE SELECT n_tokens FROM segments",
    "EXPLAIN SELECT * FROM entries",
    "EXPLAIN ANALYZE SELECT count(*) FROM segments",
    "PIVOT (SELECT source, n_tokens FROM segments) ON source USING sum(n_tokens)",
    "UNPIVOT (SELECT 1 AS a, 2 AS b) ON a, b INTO NAME k VALUE v",
    "-- a comment first\nSELECT 1",
    "SELECT count(*) FROM read_parquet('{shards}/data/*/*.parquet')",
])
def test_read_only_statements_are_admitted(audit: AuditConnection, env: dict[str, Path], sql: str) -> None:
    assert audit.query(sql.format(shards=env["shards"])).height >= 1


def test_parameters_are_bound_not_pasted(audit: AuditConnection) -> None:
    hostile = "x'; DROP VIEW segments; --"
    assert audit.query("SELECT count(*) AS n FROM segments WHERE source = $src", {"src": hostile})["n"][0] == 0
    assert audit.query("SELECT count(*) AS n FROM segments WHERE source = $src", {"src": "code"})["n"][0] == 2
    assert "segments" in audit.views()


def test_missing_and_unused_parameters_are_named(audit: AuditConnection) -> None:
    with pytest.raises(AuditError, match=r"\$src.*--param src="):
        audit.query("SELECT * FROM segments WHERE source = $src")
    with pytest.raises(AuditError, match="extra"):
        audit.query("SELECT 1", {"extra": 1})
