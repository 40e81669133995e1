"""SQL helpers shared by every DuckDB connection foresight opens (pools, audit, probes): literal and identifier
quoting for the names and paths we put into view definitions (user values are always bound as parameters),
and the default memory limit of a sandboxed connection."""

from __future__ import annotations

import os


def quote_literal(text: str) -> str:
    """A SQL string literal: ``it's`` → ``'it''s'``."""
    return "'" + text.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    """A SQL identifier, double-quoted with inner quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def default_memory_limit() -> str:
    """A quarter of physical memory, at most 8 GB (DuckDB's own default is 80 %)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "2GB"
    return f"{max(256, min(8 * 1024, total // 4 // 2**20))}MB"
