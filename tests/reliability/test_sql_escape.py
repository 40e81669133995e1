"""SQL escape: a pool expression is one deterministic boolean expression over the segment columns, however it
is spelled. (The base cases, and the audit sandbox: tests/mixtures/test_sandbox.py, tests/audit/test_sandbox.py.)"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from foresight.mixtures import ExpressionError, plan
from tests.mixtures.corpus import build_corpus, write_spec

SPEC = ('total_tokens = 100\n[pools.evil]\nwhere = """{expr}"""\nweight = 0.5\n'
        '[pools.rest]\nwhere = "true"\nweight = 0.5\n')


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.mark.parametrize("expr,match", [
    # settings and files behind other spellings
    ("pg_catalog.current_setting('threads') = '1'", r"function pg_catalog.current_setting\(\) is not allowed"),
    ("system.main.current_setting('threads') = '1'", r"function system.main.current_setting\(\) is not allowed"),
    ("U&\"current_setting\"('threads') = '1'", "U is not a segment column"),  # DuckDB parses U & "…"(…)
    ("\"current_setting\" ('threads') = '1'", r"function current_setting\(\) is not allowed"),
    ("len(query('SELECT 1')) > 0", r"function query\(\) is not allowed"),
    ("len(glob('/etc/*')) > 0", r"function glob\(\) is not allowed"),
    ("len(duckdb_settings()) > 0", r"function duckdb_settings\(\) is not allowed"),
    ("read_blob('/etc/passwd') IS NOT NULL", r"function read_blob\(\) is not allowed"),
    ("pragma_version() IS NULL", r"function pragma_version\(\) is not allowed"),
    ("source = 'code' UNION SELECT 1", "not a valid SQL expression"),
    ("true) FROM segments UNION SELECT (true", "not statements or queries"),  # closes the wrapper's parenthesis
    ("current_setting/**/('threads') = '1'", "comments are not allowed"),
    # values that change from run to run would make a manifest unreproducible
    ("random() < 0.5", r"random\(\) gives a different value on each run"),
    ("setseed(0.5) IS NULL", r"setseed\(\) gives a different value"),
    ("uuid() IS NOT NULL", r"uuid\(\) gives a different value"),
    ("now() > '2020-01-01'", r"now\(\) gives a different value"),
    ("current_date > '2020-01-01'", "current_date gives a different value"),
    ("nextval('s') > 0", r"nextval\(\) gives a different value"),
    # not one row-wise boolean
    ("sum(n_tokens) > 0", r"function sum\(\) is not allowed"),
    ("row_number() OVER () > 0", "window functions"),
    ("COLUMNS('.*') IS NOT NULL", r"COLUMNS\(…\) are not allowed"),
])
def test_escapes_are_refused_with_the_pool_named(shards: Path, tmp_path: Path, expr: str, match: str) -> None:
    with pytest.raises(ExpressionError, match=match) as err:
        plan(write_spec(tmp_path / "s.toml", SPEC.format(expr=expr)), shards)
    assert "pool 'evil'" in str(err.value)


def test_a_hash_subset_is_the_deterministic_way(shards: Path, tmp_path: Path) -> None:
    spec = SPEC.format(expr="hash(id) % 2 = 0").replace('where = "true"', 'where = "hash(id) % 2 = 1"')
    a, b = (pa.concat_tables(list(plan(write_spec(tmp_path / f"{n}.toml", spec), shards).entries()))
            for n in ("a", "b"))
    assert a.num_rows > 0 and all(a.column(f).equals(b.column(f)) for f in ("pos", "pool", "end", "epoch"))
