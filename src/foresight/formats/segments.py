"""The one ``segments`` view: every shard file of an index, in index order, on a DuckDB connection. Pools
(mixtures), the bits-per-byte probe (trainer) and the audit all read segments through it, each asking for the
extra columns it needs. The connection's sandbox (allowed paths, locked configuration) is its owner's."""

from __future__ import annotations

from pathlib import Path

import duckdb

from foresight.formats.splits import BUCKET_COLUMN, heldout_sql
from foresight.formats.sql import quote_ident, quote_literal

FILE_POS_COL, ROW_POS_COL = "_file", "_row"  # position of the file in the list, row inside it


def create_segments_view(con: duckdb.DuckDBPyConnection, files: list[Path] | list[str], *, name: str = "segments",
                         root: Path | None = None, positions: bool = False,
                         heldout_fraction: float | None = None) -> None:
    """``CREATE VIEW name`` over ``files`` (all shard columns, union by name) plus, on request:

    - ``root``: ``file`` (the path relative to ``root``) and ``row`` (row number in the file);
    - ``positions``: ``_file`` (index of the file in ``files``) and ``_row``;
    - ``heldout_fraction``: ``heldout``, the probe split of :mod:`formats.splits`.
    """
    paths = [str(f) for f in files]
    extra, options = [], ["hive_partitioning = false", "union_by_name = true"]
    if root is not None:
        extra += [f"substr(filename, {len(str(root)) + 2}) AS file", 'file_row_number AS "row"']
        options += ["filename = true", "file_row_number = true"]
    if positions:  # DuckDB's virtual columns: read only when named
        extra += [f"file_index AS {FILE_POS_COL}", f"file_row_number AS {ROW_POS_COL}"]
    listing = "[" + ", ".join(quote_literal(p) for p in paths) + "]"
    source = f"read_parquet({listing}, {', '.join(options)})"
    if heldout_fraction is not None:
        # the stored bucket where the shards have it (a union with older shards gives NULL on their rows)
        have = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        extra.append(f"{heldout_sql(heldout_fraction, stored=BUCKET_COLUMN if BUCKET_COLUMN in have else None)} "
                     "AS heldout")
    select = "* EXCLUDE (filename, file_row_number)" if root is not None else "*"
    con.execute(f"CREATE VIEW {quote_ident(name)} AS SELECT {select}{''.join(', ' + e for e in extra)} FROM {source}")
