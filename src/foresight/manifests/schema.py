"""The manifest directory format (docs/architecture.md): ``manifest.json`` (its header:
:class:`foresight.formats.manifest.ManifestHeader`) + ``entries.parquet`` (``ENTRIES_SCHEMA``)."""

from __future__ import annotations

import pyarrow as pa

from foresight.formats.manifest import ENTRIES_FILE, FORMAT, MANIFEST_FILE, ManifestError, header_digest

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

__all__ = ["ENTRIES_FILE", "ENTRIES_SCHEMA", "ENTRY_COLUMNS", "FORMAT", "MANIFEST_FILE", "PARQUET_OPTS",
           "ManifestError", "header_digest"]
