"""A read-only, sandboxed DuckDB connection over the indexed shard files, and the check that admits a pool's
``where`` (or an ``exclude``) only when it is one boolean expression over the segment columns.

Two layers: the connection may read only the indexed shard files (``allowed_paths``, external access off,
configuration locked), and every expression is tokenised with DuckDB's own tokenizer and refused if it holds
anything but an expression (``;``, comments, statements, subqueries, table/file functions), then bound
against the ``segments`` view so unknown columns and non-boolean results are reported with the pool named.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb

from foresight.formats.errors import InputError
from foresight.formats.segments import FILE_POS_COL, ROW_POS_COL, create_segments_view
from foresight.formats.sql import lock_down

# Keywords that start or belong to statements/subqueries, never to a plain expression.
FORBIDDEN_KEYWORDS = frozenset({
    "select", "from", "with", "copy", "attach", "detach", "install", "load", "pragma", "set", "reset", "create",
    "drop", "insert", "update", "delete", "alter", "call", "export", "import", "table", "values", "union",
    "into", "use", "checkpoint", "vacuum", "describe", "show", "summarize", "explain", "grant", "begin",
    "commit", "rollback", "returning", "execute", "prepare", "deallocate", "pivot", "unpivot", "except",
    "intersect", "recursive", "materialized", "secret",
})
# Functions that touch files, the catalog or the environment.
FORBIDDEN_FUNCTION_PREFIXES = ("read_", "parquet_", "sniff_", "glob", "query", "getenv", "duckdb_", "pragma_",
                               "iceberg_", "delta_", "sqlite_", "postgres_", "mysql_", "http", "current_setting",
                               "which_secret", "file", "load", "write")
VIEW = "segments"
# Virtual columns added by the view; names start with '_' so they never clash with shard columns.
FILE_COL, ROW_COL = FILE_POS_COL, ROW_POS_COL


class ExpressionError(InputError):
    """A pool/exclude expression that is not a single boolean SQL expression over the segment columns."""


def connect(files: list[Path], heldout_fraction: float, threads: int | None = None,
            memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """In-memory connection with a ``segments`` view over ``files`` (in index order) that can read nothing else.

    The view adds ``_file`` (position of the file in ``files``), ``_row`` (row number inside it) and ``heldout``
    (the probe split of :mod:`formats.splits`). DuckDB may use ``memory_limit`` (and spill as much again).
    """
    con = duckdb.connect(":memory:")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = true")
    paths = [str(p) for p in files]
    create_segments_view(con, paths, name=VIEW, positions=True, heldout_fraction=heldout_fraction)
    lock_down(con, paths=paths, memory_limit=memory_limit)
    return con




def columns(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Column name → DuckDB type of the ``segments`` view."""
    return {r[0]: r[1] for r in con.execute(f"DESCRIBE {VIEW}").fetchall()}


def _tokens(expr: str) -> list[tuple[str, str]]:
    """(text, kind) tokens of ``expr`` by DuckDB's tokenizer."""
    spans = duckdb.tokenize(expr)
    out = []
    for i, (start, kind) in enumerate(spans):
        end = spans[i + 1][0] if i + 1 < len(spans) else len(expr)
        out.append((expr[start:end].strip(), str(kind).rsplit(".", 1)[-1]))
    return out


def check_expression(con: duckdb.DuckDBPyConnection, expr: str, what: str) -> None:
    """Refuse anything but one boolean expression over the view's columns; ``what`` names the pool/exclude."""
    if not expr.strip():
        raise ExpressionError(f"{what}: empty expression")
    tokens = _tokens(expr)
    for i, (text, kind) in enumerate(tokens):
        low = text.lower()
        if kind == "comment":
            raise ExpressionError(f"{what}: comments are not allowed in {expr!r}")
        if kind == "operator" and ";" in text:
            raise ExpressionError(f"{what}: refused {expr!r}: ';' would start another statement; "
                                  f"give one boolean expression such as \"reasoning AND NOT visual\"")
        if kind == "keyword" and low in FORBIDDEN_KEYWORDS:
            raise ExpressionError(f"{what}: refused {expr!r}: {text.upper()} is not allowed in a pool expression "
                                  f"(no statements, subqueries or file access; use columns, operators, functions)")
        if kind == "identifier" and low.startswith(FORBIDDEN_FUNCTION_PREFIXES):
            nxt = tokens[i + 1][0] if i + 1 < len(tokens) else ""
            if nxt.startswith("("):
                raise ExpressionError(f"{what}: refused {expr!r}: function {text}() reads files or settings")
    _check_tree(con, expr, what)
    _bind(con, expr, what)


def _nodes(node: object) -> Iterator[dict]:
    """Every dict node of a ``json_serialize_sql`` tree, depth first."""
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _nodes(v)
    elif isinstance(node, list):
        for v in node:
            yield from _nodes(v)


def _check_tree(con: duckdb.DuckDBPyConnection, expr: str, what: str) -> None:
    """Second layer, on DuckDB's own parse tree: quoting ("current_setting"), case and schema prefixes
    (main.current_setting) cannot hide a forbidden function, and no subquery or table reference may appear
    inside the expression, however it is spelled."""
    sql = f"SELECT ({expr}) FROM {VIEW}"
    try:
        tree = json.loads(con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()[0])
    except duckdb.Error as e:
        raise ExpressionError(f"{what}: {expr!r} could not be parsed ({_first_line(e)})") from e
    if tree.get("error"):
        raise ExpressionError(f"{what}: {expr!r} is not a valid SQL expression "
                              f"({str(tree.get('error_message', '')).splitlines()[0]})")
    statements = tree.get("statements") or []
    if len(statements) != 1:
        raise ExpressionError(f"{what}: refused {expr!r}: give one boolean expression, not statements")
    select_list = statements[0]["node"].get("select_list", [])
    unstable = _unstable_functions(con)
    view_columns = set(columns(con))
    for node in _nodes(select_list):
        if node.get("class") == "SUBQUERY" or node.get("type") in ("SUBQUERY", "TABLE_FUNCTION", "BASE_TABLE"):
            raise ExpressionError(f"{what}: refused {expr!r}: subqueries are not allowed in a pool expression")
        name = node.get("function_name")
        if name is None and node.get("class") == "COLUMN_REF":
            name = ".".join(node.get("column_names") or [])  # current_date & co. parse as bare names
            if name.lower() in unstable and name not in view_columns:
                raise ExpressionError(f"{what}: refused {expr!r}: {name} gives a different value on each run; a "
                                      "pool must select the same segments every time")
            continue
        if name is None:
            continue
        low = str(name).lower()
        schema = str(node.get("schema") or "").lower()
        catalog = str(node.get("catalog") or "").lower()
        if low.startswith(FORBIDDEN_FUNCTION_PREFIXES) or schema not in ("", "main", "pg_catalog") or \
                catalog not in ("", "system", "temp", "memory"):
            shown = ".".join(x for x in (catalog, schema, str(name)) if x)
            raise ExpressionError(f"{what}: refused {expr!r}: function {shown}() reads files, settings or "
                                  "other catalogs")
        if low in unstable:
            raise ExpressionError(f"{what}: refused {expr!r}: {name}() gives a different value on each run; a pool "
                                  "must select the same segments every time (use a hash such as "
                                  "hash(id) % 10 = 0 for a random-looking subset)")


def _unstable_functions(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Functions whose value may change between calls or runs (random(), now(), nextval(), uuid() …)."""
    rows = con.execute("SELECT DISTINCT lower(function_name) FROM duckdb_functions() "
                       "WHERE stability IN ('VOLATILE', 'CONSISTENT_WITHIN_QUERY')").fetchall()
    return frozenset(r[0] for r in rows)


def _bind(con: duckdb.DuckDBPyConnection, expr: str, what: str) -> None:
    try:
        con.execute(f"PREPARE _check AS SELECT count(*) FROM {VIEW} WHERE ({expr})")
        con.execute("DEALLOCATE _check")
        described = con.execute(f"DESCRIBE SELECT ({expr}) AS p FROM {VIEW}").fetchall()
    except duckdb.ParserException as e:
        raise ExpressionError(f"{what}: {expr!r} is not a valid SQL expression ({_first_line(e)})") from e
    except duckdb.BinderException as e:
        have = columns(con)
        cols = ", ".join(c for c in have if not c.startswith("_"))
        hint = ("; these shards have no labels: curate with [classify] enabled"
                if "reasoning" not in have and any(w in expr for w in ("reasoning", "visual", "score_", "labels"))
                else "")
        raise ExpressionError(f"{what}: {expr!r} does not bind to the segment columns ({_first_line(e)}); "
                              f"columns are: {cols}{hint}") from e
    except duckdb.PermissionException as e:
        raise ExpressionError(f"{what}: refused {expr!r}: {_first_line(e)}") from e
    except duckdb.Error as e:
        raise ExpressionError(f"{what}: {expr!r} is not usable ({_first_line(e)})") from e
    if len(described) != 1:
        raise ExpressionError(f"{what}: {expr!r} is {len(described)} expressions; give exactly one")
    if described[0][1] != "BOOLEAN":
        raise ExpressionError(f"{what}: {expr!r} has type {described[0][1]}, not BOOLEAN; write a condition "
                              f"such as \"n_tokens > 100\" or \"source = 'code'\"")


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0]
