"""Segment rows → schema-conformant Arrow tables, and the Parquet options of every shard (docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from formats.hashing import sha256_text
from formats.schema import segment_schema
from formats.taxonomy import LABEL_NAMES, derive_flags, score_column

PARQUET_OPTS: dict[str, Any] = {"compression": "zstd", "compression_level": 3, "write_statistics": True}


def rows_to_table(rows: Iterable[dict[str, Any]], with_labels: bool,
                  signal_columns: tuple[str, ...] = ()) -> pa.Table:
    """Build a schema-conformant table from row dicts (fills hashes and n_tokens, derives flags)."""
    schema = segment_schema(with_labels, signal_columns)
    cols: dict[str, list] = {f.name: [] for f in schema}
    for r in rows:
        r = dict(r)
        r.setdefault("text_sha256", sha256_text(r["text"]))
        r.setdefault("n_tokens", len(r["tokens"]))
        r.setdefault("url", None)
        r.setdefault("path", None)
        if with_labels:
            r.setdefault("labels", [])
            for name in LABEL_NAMES:
                r.setdefault(score_column(name), 1.0 if name in r["labels"] else 0.0)
            for k, v in derive_flags(r["labels"]).items():
                r.setdefault(k, v)
        for name in cols:
            cols[name].append(r.get(name))
    return pa.table(cols, schema=schema)
