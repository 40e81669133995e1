"""The manifest directory format (docs/architecture.md): ``manifest.json`` + ``entries.parquet``."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pyarrow as pa

from foresight.formats.errors import InputError

FORMAT = "foresight-manifest/1"
MANIFEST_FILE = "manifest.json"
ENTRIES_FILE = "entries.parquet"

ENTRIES_SCHEMA = pa.schema([
    pa.field("order", pa.int64(), nullable=False),
    pa.field("pool", pa.string(), nullable=False),
    pa.field("id", pa.string(), nullable=False),
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("file", pa.string(), nullable=False),
    pa.field("row", pa.int64(), nullable=False),
    pa.field("start", pa.int32(), nullable=False),
    pa.field("end", pa.int32(), nullable=False),
    pa.field("n_tokens", pa.int64(), nullable=False),  # int64 so sums over entries never wrap (was int32)
    pa.field("text_sha256", pa.binary(32), nullable=False),
    pa.field("epoch", pa.int32(), nullable=False),
])
ENTRY_COLUMNS: tuple[str, ...] = tuple(ENTRIES_SCHEMA.names)

# Fixed writer options: the same entries give the same bytes (entries_sha256 is reproducible).
# Dictionary encoding only where values repeat (ids and hashes are unique: trying it would only cost time).
PARQUET_OPTS = {"compression": "zstd", "compression_level": 3, "write_statistics": True,
                "use_dictionary": ["pool", "file", "epoch"], "row_group_size": 1 << 20}

HEADER_KEYS = ("format", "name", "spec", "spec_sha256", "shards", "tokenizer_sha256", "seed", "total_tokens",
               "pools", "shares", "entries_sha256", "created_by", "header_sha256")
HEADER_HASH_KEY = "header_sha256"


def header_digest(head: dict[str, Any]) -> str:
    """sha256 of the header's canonical JSON (sorted keys, no whitespace), ``header_sha256`` itself left out.

    It makes an edit of any header field detectable (a coherent rewrite of totals, shares, seed or name that
    the entries would not contradict); like every self-hash it stops mistakes and naive edits, not someone who
    recomputes it."""
    body = {k: v for k, v in head.items() if k != HEADER_HASH_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
POOL_KEYS = ("where", "weight", "target_tokens", "achieved_tokens", "segments", "documents", "epochs", "cut")


class ManifestError(InputError):
    """A manifest that is missing, malformed, edited or no longer matches its shards; names the entry/file."""
