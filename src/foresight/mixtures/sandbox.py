"""A read-only, sandboxed DuckDB connection over the indexed shard files, and the check that admits a pool's
``where`` (or an ``exclude``) only when it is one boolean expression over the segment columns.

Two layers: the connection may read only the indexed shard files (``allowed_paths``, external access off,
configuration locked), and every expression is parsed by DuckDB and admitted only if each node of its parse tree
is on the allow-list of :mod:`foresight.mixtures.allowlist` (columns, literals, operators, CASE/CAST and named
deterministic scalar functions), then bound against the ``segments`` view so non-boolean results are reported
with the pool named.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import duckdb

from foresight.formats.errors import InputError
from foresight.formats.segments import FILE_POS_COL, ROW_POS_COL, create_segments_view
from foresight.formats.sql import lock_down
from foresight.mixtures.allowlist import Refused, check_tree

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
    for text, kind in _tokens(expr):  # clearer messages than the parse error these would cause
        if kind == "comment":
            raise ExpressionError(f"{what}: comments are not allowed in {_short(expr)}")
        if kind == "operator" and ";" in text:
            raise ExpressionError(f"{what}: refused {_short(expr)}: ';' would start another statement; "
                                  f"give one boolean expression such as \"reasoning AND NOT visual\"")
    _check_tree(con, expr, what)
    _bind(con, expr, what)


def _check_tree(con: duckdb.DuckDBPyConnection, expr: str, what: str) -> None:
    """The allow-list, on DuckDB's own parse tree of ``SELECT (expr) FROM segments``: quoting, case, schema
    prefixes or spelling cannot smuggle in anything that is not listed."""
    sql = f"SELECT ({expr}) FROM {VIEW}"
    try:
        tree = json.loads(con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()[0])
    except (duckdb.Error, RecursionError) as e:
        raise ExpressionError(f"{what}: {_short(expr)} could not be parsed ({_reason(e)})") from None
    if tree.get("error"):
        raise ExpressionError(f"{what}: {_short(expr)} is not a valid SQL expression "
                              f"({str(tree.get('error_message', '')).splitlines()[0]})")
    statements = tree.get("statements") or []
    node = statements[0].get("node", {}) if len(statements) == 1 else {}
    if not _is_plain_select(node):
        raise ExpressionError(f"{what}: refused {_short(expr)}: give one boolean expression, not statements or queries "
                              f"(UNION, WHERE, GROUP BY …)")
    if len(node["select_list"]) != 1:
        raise ExpressionError(f"{what}: {_short(expr)} is {len(node['select_list'])} expressions; give exactly one")
    try:
        check_tree(node["select_list"], lambda: columns(con))
    except Refused as e:
        if e.name and e.name.lower() in _unstable_functions():
            shown = e.name + ("()" if str(e).startswith("function") else "")
            raise ExpressionError(f"{what}: refused {_short(expr)}: {e}: {shown} gives a different value on each "
                                  "run; a pool must select the same segments every time (use a hash such as "
                                  "hash(id) % 10 = 0 for a random-looking subset)") from None
        raise ExpressionError(f"{what}: refused {_short(expr)}: {e} (allowed: segment columns, literals, "
                              f"operators, IN/BETWEEN/LIKE/CASE/CAST and the functions listed in "
                              f"docs/mixtures.md)") from None
    except RecursionError:
        raise ExpressionError(f"{what}: {_short(expr)} is nested too deeply to check") from None


def _is_plain_select(node: dict) -> bool:
    """``SELECT (…) FROM segments`` and nothing more: the expression did not close the parenthesis and add
    clauses, set operations or CTEs of its own."""
    table = node.get("from_table") or {}
    modifiers = node.get("modifiers") or []
    cte = (node.get("cte_map") or {}).get("map") or []
    return (node.get("type") == "SELECT_NODE" and table.get("type") == "BASE_TABLE"
            and table.get("table_name") == VIEW and not table.get("schema_name") and not table.get("catalog_name")
            and not node.get("where_clause") and not node.get("group_expressions") and not node.get("having")
            and not node.get("qualify") and not node.get("sample") and not modifiers and not cte
            and isinstance(node.get("select_list"), list))


@functools.lru_cache(maxsize=1)
def _unstable_functions() -> frozenset[str]:
    """Functions and macros whose value may change between calls or runs (random(), now(), ago() …), from a
    fresh connection: the sandbox loads no extensions, so its catalog is DuckDB's built-in one."""
    rows = duckdb.connect(":memory:").execute("SELECT DISTINCT lower(function_name) FROM duckdb_functions() "
                       "WHERE stability IN ('VOLATILE', 'CONSISTENT_WITHIN_QUERY') "
                       "OR function_type = 'macro' AND (macro_definition ILIKE '%now()%' "
                       "OR macro_definition ILIKE '%current_%')").fetchall()
    return frozenset(r[0] for r in rows) | {"current_date", "current_time", "current_timestamp", "localtime",
                                            "localtimestamp"}


def _bind(con: duckdb.DuckDBPyConnection, expr: str, what: str) -> None:
    try:
        con.execute(f"PREPARE _check AS SELECT count(*) FROM {VIEW} WHERE ({expr})")
        con.execute("DEALLOCATE _check")
        described = con.execute(f"DESCRIBE SELECT ({expr}) AS p FROM {VIEW}").fetchall()
    except duckdb.ParserException as e:
        raise ExpressionError(f"{what}: {_short(expr)} is not a valid SQL expression ({_first_line(e)})") from e
    except duckdb.BinderException as e:
        have = columns(con)
        cols = ", ".join(c for c in have if not c.startswith("_"))
        hint = ("; these shards have no labels: curate with [classify] enabled"
                if "reasoning" not in have and any(w in expr for w in ("reasoning", "visual", "score_", "labels"))
                else "")
        raise ExpressionError(f"{what}: {_short(expr)} does not bind to the segment columns ({_first_line(e)}); "
                              f"columns are: {cols}{hint}") from e
    except duckdb.PermissionException as e:
        raise ExpressionError(f"{what}: refused {_short(expr)}: {_first_line(e)}") from e
    except duckdb.Error as e:
        raise ExpressionError(f"{what}: {_short(expr)} is not usable ({_first_line(e)})") from e
    if len(described) != 1:
        raise ExpressionError(f"{what}: {_short(expr)} is {len(described)} expressions; give exactly one")
    if described[0][1] != "BOOLEAN":
        raise ExpressionError(f"{what}: {_short(expr)} has type {described[0][1]}, not BOOLEAN; write a condition "
                              f"such as \"n_tokens > 100\" or \"source = 'code'\"")


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0]


def _short(expr: str, limit: int = 200) -> str:
    """``expr`` quoted for a message, cut to ``limit`` characters (a deeply nested one can be megabytes)."""
    return repr(expr) if len(expr) <= limit else repr(expr[:limit]) + f"… ({len(expr):,} characters)"


def _reason(e: BaseException) -> str:
    return "nested too deeply" if isinstance(e, RecursionError) else _first_line(e)  # type: ignore[arg-type]
