"""The audit sandbox: DuckDB settings that confine a connection, and a check that admits one read-only statement.

Two layers, because neither is enough alone (verified on DuckDB 2.0): with external access off and the
configuration locked, DuckDB still lets ``COPY … TO`` write inside an allowed directory, runs
``EXPLAIN ANALYZE COPY …`` (which writes the file) and creates tables in the in-memory catalog. The statement
check, done with DuckDB's own parser, refuses those; the settings refuse any file outside the given directories
even from inside an admitted SELECT (``read_csv('/etc/passwd')``, ``glob('/etc/*')``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import duckdb

from foresight.formats import sql
from foresight.formats.errors import InputError

ADMITTED = "SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE, PIVOT, UNPIVOT or EXPLAIN"

# Statement types a user may run. DESCRIBE/SHOW/SUMMARIZE/VALUES parse as SELECT; a PIVOT whose columns are
# discovered at run time parses as MULTI (an in-memory CREATE TYPE, then the SELECT): admitted only when the
# text really is a PIVOT.
_PIVOT = re.compile(r"^(PIVOT|PIVOT_WIDER)\b", re.IGNORECASE)
_EXPLAIN = re.compile(r"^EXPLAIN\s+(?:ANALYZE\s+|\([^)]*\)\s*)?", re.IGNORECASE)
_LEADING_COMMENTS = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)

# Why a refused statement is refused, by the statement's first keyword: DuckDB's statement type is no guide
# (CHECKPOINT parses as a CALL, IMPORT DATABASE as a PRAGMA, ANALYZE as a VACUUM, UPDATE EXTENSIONS has a type
# the Python API cannot name).
_REFUSED_WHAT = {
    "COPY": "COPY reads or writes files", "ATTACH": "ATTACH opens other databases",
    "DETACH": "DETACH changes the catalog", "LOAD": "INSTALL/LOAD adds extensions",
    "INSTALL": "INSTALL/LOAD adds extensions", "SET": "SET/RESET/USE change the configuration",
    "RESET": "SET/RESET/USE change the configuration", "USE": "SET/RESET/USE change the configuration",
    "PRAGMA": "PRAGMA changes or inspects the configuration",
    "CREATE": "CREATE changes the catalog", "DROP": "DROP changes the catalog", "ALTER": "ALTER changes the catalog",
    "COMMENT": "COMMENT ON changes the catalog", "INSERT": "INSERT writes data", "DELETE": "DELETE writes data",
    "TRUNCATE": "TRUNCATE writes data", "MERGE": "MERGE writes data", "UPDATE": "UPDATE writes data",
    "EXPORT": "EXPORT DATABASE writes files", "IMPORT": "IMPORT DATABASE reads files into the catalog",
    "CALL": "CALL runs table functions outside a SELECT", "CHECKPOINT": "CHECKPOINT writes the database to disk",
    "FORCE": "CHECKPOINT writes the database to disk", "VACUUM": "VACUUM/ANALYZE rewrite database statistics",
    "ANALYZE": "VACUUM/ANALYZE rewrite database statistics", "BEGIN": "transactions are for writing",
    "START": "transactions are for writing", "COMMIT": "transactions are for writing",
    "END": "transactions are for writing", "ROLLBACK": "transactions are for writing",
    "ABORT": "transactions are for writing", "PREPARE": "PREPARE/EXECUTE/DEALLOCATE manage prepared statements",
    "EXECUTE": "PREPARE/EXECUTE/DEALLOCATE manage prepared statements",
    "DEALLOCATE": "PREPARE/EXECUTE/DEALLOCATE manage prepared statements",
}


class AuditError(InputError):
    """Bad audit input or a failed query; the message names the file/statement and the fix."""


class SandboxError(AuditError):
    """A statement the audit sandbox refuses (a user error: exit 1 with this message)."""


def _strip_comments(sql: str) -> str:
    return _LEADING_COMMENTS.sub("", sql, count=1)


def _statement_kind(stmt: duckdb.Statement) -> str:
    try:
        return str(stmt.type).rsplit(".", 1)[-1]
    except ValueError:  # a statement type this DuckDB's Python API has no name for (UPDATE EXTENSIONS)
        return "UNKNOWN"


def check_statement(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.Statement:
    """Parse ``sql`` with DuckDB and return its single statement if it is read-only; raise SandboxError if not.

    Syntax errors propagate as DuckDB's ParserException (its message carries the position).
    """
    statements = con.extract_statements(sql)
    if not statements:
        raise SandboxError("empty SQL: give one SELECT statement, e.g. \"SELECT count(*) FROM segments\"")
    if len(statements) > 1:
        raise SandboxError(f"refused: {len(statements)} statements given; the audit runs exactly one "
                           f"read-only statement ({ADMITTED}) per call")
    stmt = statements[0]
    _check_kind(con, stmt, depth=0)
    return stmt


def _check_kind(con: duckdb.DuckDBPyConnection, stmt: duckdb.Statement, depth: int) -> None:
    kind = _statement_kind(stmt)
    text = _strip_comments(stmt.query)
    if kind == "SELECT":
        return
    if kind == "MULTI" and _PIVOT.match(text):
        return
    if kind == "EXPLAIN" and depth == 0:
        # EXPLAIN ANALYZE executes its statement (EXPLAIN ANALYZE COPY … writes the file): check what it wraps.
        match = _EXPLAIN.match(text)
        inner = con.extract_statements(text[match.end():]) if match else []
        if len(inner) == 1:
            _check_kind(con, inner[0], depth + 1)
            return
    first = re.split(r"[\s(;]+", text, maxsplit=1)[0].upper() if text.strip() else kind
    if first == "UPDATE" and re.match(r"UPDATE\s+EXTENSIONS\b", text, re.IGNORECASE):
        why = "UPDATE EXTENSIONS installs extensions"
    else:
        why = _REFUSED_WHAT.get(first, f"{first} is not a read-only query")
    raise SandboxError(f"refused: {first} is not allowed in the audit sandbox ({why}); "
                       f"only one {ADMITTED} statement is admitted")


def lock_down(con: duckdb.DuckDBPyConnection, allowed: Iterable[str | Path], memory_limit: str | None = None) -> None:
    """Confine ``con`` to reading the ``allowed`` directories (:func:`formats.sql.lock_down`); a memory limit
    DuckDB does not understand is the user's ``--memory-limit``."""
    try:
        sql.lock_down(con, dirs=allowed, memory_limit=memory_limit)
    except ValueError as e:
        raise AuditError(f"--memory-limit {e}") from None
