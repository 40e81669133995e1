"""Audit output of nested and unusual DuckDB types: every output format (table, csv, json, parquet) renders
INTERVAL, VARIANT, UNION, MAP, LIST of STRUCT, BLOB, HUGEINT and DECIMAL, at top level and inside a STRUCT or a
LIST, as readable values — no panic, no traceback, no raw internal bytes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from foresight.cli import app
from tests.audit.fixtures import corpus

runner = CliRunner()

# name → (SQL expression, text its rendering must contain)
VALUES: dict[str, tuple[str, str]] = {
    "interval": ("INTERVAL 1 DAY", "1 day"),
    "variant": ("42::VARIANT", "42"),
    "union": ("union_value(k := 7)", "7"),
    "map": ("MAP {'a': 1}", "a"),
    "list_of_struct": ("[{'a': 1, 'b': 'x'}]", "x"),
    "blob": ("'\\x01\\xAB'::BLOB", "01ab"),
    "hugeint": ("170141183460469231731687303715884105727::HUGEINT", "170141183460469231731687303715884105727"),
    "decimal": ("1.25::DECIMAL(10,2)", "1.25"),
}
SHAPES = {"top": "{}", "in_struct": "{{'x': {}}}", "in_list": "[{}]"}


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return corpus(tmp_path_factory.mktemp("nested"))


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "parquet"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", VALUES)
def test_every_format_renders_nested_values(shards: Path, tmp_path: Path, kind: str, shape: str,
                                            fmt: str) -> None:
    expr, shown = VALUES[kind]
    sql = f"SELECT {SHAPES[shape].format(expr)} AS v"
    out = tmp_path / "r.parquet"
    args = ["audit", str(shards), sql, "--format", fmt] + (["--out", str(out)] if fmt == "parquet" else [])
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and res.exception is None, (res.output, res.exception)
    if fmt == "parquet":
        text = json.dumps(pl.read_parquet(out).to_dicts(), default=str)
        assert shown in text.replace("\\", "") or kind == "blob", text
        return
    text = res.output
    assert "\\x" not in text, text  # no Python bytes reprs, no raw escapes
    if fmt == "json":
        value = json.loads(text)[0]["v"]
        assert shown in json.dumps(value), value
    elif fmt == "csv":
        assert shown in next(csv.DictReader(io.StringIO(text)))["v"]
    else:
        assert shown in text
