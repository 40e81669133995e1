"""Pool expressions are compiled into a sandboxed, read-only DuckDB query: anything but one boolean expression
over the segment columns is refused, with the pool named."""

from __future__ import annotations

from pathlib import Path

import pytest

from foresight.mixtures import ExpressionError, plan
from tests.mixtures.corpus import write_spec

SPEC = ('total_tokens = 100\n[pools.evil]\nwhere = """{expr}"""\nweight = 0.5\n'
        '[pools.rest]\nwhere = "true"\nweight = 0.5\n')


@pytest.mark.parametrize("expr,match", [
    ("true; DROP TABLE segments", "';' would start another statement"),
    ("reasoning); COPY (SELECT 1) TO '/tmp/x.csv'; --", "';'"),
    ("COPY segments TO '/tmp/out.csv'", "not a valid SQL expression"),
    ("id IN (SELECT id FROM segments)", "subqueries are not allowed"),
    ("EXISTS (FROM '/etc/passwd')", "subqueries are not allowed"),
    ("length(read_text('/etc/passwd')::VARCHAR) > 0", r"function read_text\(\) is not allowed"),
    ("getenv('HOME') = 'x'", r"function getenv\(\) is not allowed"),
    ("true -- comment", "comments are not allowed"),
    ("ATTACH 'x.db'", "CAST to ATTACH is not allowed"),
    # quoting, case and schema prefixes must not hide a forbidden function (issue 12, failure 1)
    ("source = 'code' AND \"current_setting\"('allowed_directories')::VARCHAR LIKE '%/%'",
     r"function current_setting\(\) is not allowed"),
    ("\"CURRENT_SETTING\"('threads') = '1'", r"function current_setting\(\) is not allowed"),
    ("main.current_setting('threads') = '1'", r"function main.current_setting\(\) is not allowed"),
    ("\"main\".\"getenv\"('HOME') = 'x'", r"function main.getenv\(\) is not allowed"),
    ("\"read_text\"('/etc/passwd') IS NOT NULL", r"function read_text\(\) is not allowed"),
    ("other_db.main.lower(source) = 'x'", r"function other_db.main.lower\(\) is not allowed"),
])
def test_non_expressions_are_refused(shards: Path, tmp_path: Path, expr: str, match: str) -> None:
    spec = write_spec(tmp_path / "s.toml", SPEC.format(expr=expr))
    with pytest.raises(ExpressionError, match=match) as err:
        plan(spec, shards)
    assert "pool 'evil'" in str(err.value)


@pytest.mark.parametrize("expr,match", [
    ("no_such_column > 1", "no_such_column"),
    ("n_tokens", "has type INTEGER, not BOOLEAN"),
    ("source = ", "not a valid SQL expression"),
    ("1) AS p, (2", "expressions|not a valid|BOOLEAN"),
])
def test_invalid_expressions_name_the_pool(shards: Path, tmp_path: Path, expr: str, match: str) -> None:
    spec = write_spec(tmp_path / "s.toml", SPEC.format(expr=expr))
    with pytest.raises(ExpressionError, match=match) as err:
        plan(spec, shards)
    assert "pool 'evil'" in str(err.value)


def test_file_outside_the_shards_is_unreachable(shards: Path, tmp_path: Path) -> None:
    """Even a function our token check does not know about cannot read outside the indexed shard files."""
    from foresight.mixtures import sandbox
    from foresight.mixtures.shards import open_shards

    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    con = sandbox.connect(open_shards(shards).files, 0.02)
    with pytest.raises(Exception, match="disabled by configuration|Permission"):
        con.execute(f"SELECT * FROM read_csv('{secret}')").fetchall()
    with pytest.raises(Exception, match="locked"):
        con.execute("SET enable_external_access = true")
    assert con.execute("SELECT count(*) FROM segments").fetchone()[0] > 0


def test_bad_exclude_is_named(shards: Path, tmp_path: Path) -> None:
    body = SPEC.format(expr="true").replace("total_tokens = 100", 'total_tokens = 100\nexclude = ["nope = 1"]')
    with pytest.raises(ExpressionError, match=r"exclude\[0\].*nope"):
        plan(write_spec(tmp_path / "s.toml", body), shards)


def test_order_column_must_be_numeric(shards: Path, tmp_path: Path) -> None:
    body = SPEC.format(expr="reasoning").replace('weight = 0.5\n[pools.rest]',
                                                 'weight = 0.5\norder = "source desc"\n[pools.rest]')
    with pytest.raises(ExpressionError, match="order column 'source' is not a numeric"):
        plan(write_spec(tmp_path / "s.toml", body), shards)


@pytest.mark.parametrize("expr", [
    "list_contains(labels, 'code_reasoning')",
    "source IN ('code', 'math') AND n_tokens BETWEEN 1 AND 4096",
    "CASE WHEN visual THEN score_visual_concept > 0.5 ELSE false END",
    "text LIKE '%red%' OR id = 'd0001#0'",
    "NOT heldout AND regexp_matches(doc_id, '^d0')",
])
def test_ordinary_expressions_are_admitted(shards: Path, tmp_path: Path, expr: str) -> None:
    body = (f'total_tokens = "max"\nprecedence = ["evil", "rest"]\n[pools.evil]\nwhere = """{expr}"""\n'
            'weight = 0.5\n[pools.rest]\nwhere = "true"\nweight = 0.5\n')
    p = plan(write_spec(tmp_path / "s.toml", body), shards)
    assert p.pools[0].available_segments > 0 and p.pools[0].achieved_tokens == p.pools[0].target_tokens
