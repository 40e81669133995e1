"""The audit views over shards, manifests and sweep results, read straight from their files.

Manifest directories and sweep results are read from their files (``manifest.json`` + ``entries.parquet``;
``SWEEP_DIR/results.parquet``; formats in docs/architecture.md).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from foresight.audit.sandbox import AuditError
from foresight.formats.index import ShardIndex
from foresight.formats.manifest import POOL_SCHEMA, ManifestHeader
from foresight.formats.schema import EXCLUDED_DIR, RESULTS_FILE, segment_schema
from foresight.formats.segments import create_segments_view
from foresight.formats.splits import BUCKET_COLUMN, DEFAULT_HELDOUT_FRACTION, heldout_sql
from foresight.formats.sql import duckdb_type, quote_ident, quote_literal
from foresight.formats.taxonomy import GROUPS, LABEL_NAMES, score_column
from foresight.manifests.schema import ENTRIES_FILE, ENTRIES_SCHEMA, MANIFEST_FILE, ManifestError
from foresight.trainer.results import RESULTS_SCHEMA

VIEWS = ("segments", "documents", "entries", "manifests", "pools", "results", "excluded")

# Column types derived from the schemas of the layers that own the files, never a second hand-kept list:
# entries.parquet (manifests; cast so every manifest unions cleanly) and results.parquet's fixed columns (trainer).
ENTRY_COLUMNS: tuple[tuple[str, str], ...] = tuple((f.name, duckdb_type(f.type)) for f in ENTRIES_SCHEMA)
RESULT_COLUMNS: tuple[tuple[str, str], ...] = tuple((f.name, duckdb_type(f.type)) for f in RESULTS_SCHEMA)


@dataclass(frozen=True)
class Manifest:
    name: str
    dir: Path
    header: ManifestHeader

    @property
    def entries_path(self) -> Path:
        return self.dir / ENTRIES_FILE


def read_manifest(mdir: str | Path, expected_index_sha: str, problems: list[str]) -> Manifest:
    """A manifest's header, checked by ``ManifestHeader.load`` (format, keys, spec and header hashes:
    refused); an entries file or shard index that no longer matches is appended to ``problems`` (warned, or
    refused with --strict)."""
    mdir = Path(mdir).resolve()
    try:
        header = ManifestHeader.load(mdir)
        entries_match = header.verify(mdir)
    except ManifestError as e:
        raise AuditError(str(e)) from None
    if not entries_match:
        problems.append(f"{mdir / ENTRIES_FILE}: sha256 differs from entries_sha256 in {mdir / MANIFEST_FILE} "
                        "(edited after it was built?)")
    built_from = header.shards.index_sha256
    if built_from != expected_index_sha:
        problems.append(f"{mdir / MANIFEST_FILE}: built from a shard index with sha256 {built_from[:12]}…, "
                        f"not this shard directory's index.json ({expected_index_sha[:12]}…)")
    return Manifest(header.name or mdir.name, mdir, header)


def unique_names(manifests: list[Manifest]) -> list[Manifest]:
    """Two manifests with the same header name are told apart by their directory name."""
    seen: dict[str, int] = {}
    for m in manifests:
        seen[m.name] = seen.get(m.name, 0) + 1
    return [Manifest(f"{m.name}@{m.dir.name}", m.dir, m.header) if seen[m.name] > 1 else m for m in manifests]


def create_segments(con: duckdb.DuckDBPyConnection, root: Path, index: ShardIndex) -> None:
    """``segments``: every indexed shard file, Hive-partitioned, plus ``file`` (relative path) and ``row``."""
    # A missing file was already reported by the hash check; leave it out so the rest stays queryable.
    base = str(root)
    files = [path for f in index.files if f.rows
             and os.path.isfile(path := os.path.join(base, f.path))]  # strings: 10 k pathlib joins cost ~1 s
    if not files:
        # No rows at all: an empty table with the shard schema, so queries still bind.
        empty = segment_schema(index.classifier is not None).empty_table()
        empty = empty.append_column("file", pa.array([], pa.string())).append_column("row", pa.array([], pa.int64()))
        _table(con, "segments", empty)
        return
    create_segments_view(con, files, root=root, name="_shards")
    have = {name for name, _ in columns_of(con, "_shards")}
    # Shards written before the per-label boolean columns: derive them from ``labels`` so queries (and the
    # report's composition) bind the same way on old and new shards; new shards read the stored columns.
    derived = [f"list_contains(labels, {quote_literal(n)}) AS {quote_ident(n)}"
               for n in LABEL_NAMES if "labels" in have and n not in have]
    con.execute(f"CREATE VIEW segments AS SELECT *{''.join(', ' + d for d in derived)} FROM _shards")


def columns_of(con: duckdb.DuckDBPyConnection, view: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {quote_ident(view)}").fetchall()]


def create_documents(con: duckdb.DuckDBPyConnection, heldout_fraction: float) -> None:
    """``documents``: one row per doc_id; label aggregates only when the shards were classified."""
    cols = {name for name, _ in columns_of(con, "segments")}
    parts = ["doc_id", "min(source) AS source", "count(*) AS segments", "sum(n_tokens) AS tokens"]
    if "labels" in cols:
        parts.append("list_sort(list_distinct(flatten(list(labels)))) AS labels")
    parts += [f"bool_or({quote_ident(flag)}) AS {quote_ident(flag)}" for flag in (*GROUPS, *LABEL_NAMES)
              if flag in cols]
    parts += [f"max({score_column(n)}) AS {score_column(n)}" for n in LABEL_NAMES if score_column(n) in cols]
    stored = f"min({BUCKET_COLUMN})" if BUCKET_COLUMN in cols else None  # one bucket per doc_id
    parts.append(f"{heldout_sql(heldout_fraction, stored=stored)} AS heldout")
    con.execute(f"CREATE VIEW documents AS SELECT {', '.join(parts)} FROM segments GROUP BY doc_id")


def create_entries(con: duckdb.DuckDBPyConnection, manifests: list[Manifest]) -> None:
    """``entries``: every manifest's entries (with a ``manifest`` column) joined with their segments by id."""
    select = ", ".join(f"CAST({quote_ident(c)} AS {t}) AS {quote_ident(c)}" for c, t in ENTRY_COLUMNS)
    parts = []
    for m in manifests:
        entries = quote_literal(str(m.entries_path))
        have = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({entries})").fetchall()}
        missing = [c for c, _ in ENTRY_COLUMNS if c not in have]
        if missing:
            raise AuditError(f"{m.entries_path}: missing columns {missing}; rebuild the manifest with `foresight mix`")
        parts.append(f"SELECT {quote_literal(m.name)} AS manifest, {select} FROM read_parquet({entries})")
    if not parts:
        parts.append("SELECT CAST(NULL AS VARCHAR) AS manifest, "
                     + ", ".join(f"CAST(NULL AS {t}) AS {quote_ident(c)}" for c, t in ENTRY_COLUMNS) + " WHERE false")
    con.execute(f"CREATE VIEW _entries AS {' UNION ALL '.join(parts)}")
    seg_cols = [c for c, _ in columns_of(con, "segments")]
    own = {c for c, _ in ENTRY_COLUMNS}
    extra = [f"s.{quote_ident(c)}" for c in seg_cols if c not in own]

    def seg(col: str, sql_type: str) -> str:  # a segment column, or a typed NULL for shards written without it
        return f"s.{quote_ident(col)}" if col in seg_cols else f"CAST(NULL AS {sql_type})"

    con.execute(
        "CREATE VIEW entries AS SELECT e.manifest, "
        + ", ".join(f"e.{quote_ident(c)}" for c, _ in ENTRY_COLUMNS)
        + (", " + ", ".join(extra) if extra else "")
        + f", {seg('n_tokens', 'BIGINT')} AS segment_tokens, {seg('text_sha256', 'BLOB')} AS segment_sha256, "
        "s.file AS segment_file, s.\"row\" AS segment_row "
        "FROM _entries e LEFT JOIN segments s ON s.id = e.id"
    )


def _share_targets(spec: dict[str, Any]) -> tuple[float | None, float | None]:
    """Reasoning/visual share targets a spec states explicitly (``[targets]`` or ``*_share`` keys), if any."""
    for key in ("targets", "shares", "target_shares"):
        block = spec.get(key)
        if isinstance(block, dict) and ("reasoning" in block or "visual" in block):
            return _num(block.get("reasoning")), _num(block.get("visual"))
    if "reasoning_share" in spec or "visual_share" in spec:
        return _num(spec.get("reasoning_share")), _num(spec.get("visual_share"))
    return None, None


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value / 100.0 if value > 1.0 else value  # presets may give percent


def create_manifest_tables(con: duckdb.DuckDBPyConnection, manifests: list[Manifest]) -> None:
    """``manifests`` (one row per header) and ``pools`` (one row per manifest pool) from the JSON headers."""
    rows: list[dict[str, Any]] = []
    pool_rows: list[dict[str, Any]] = []
    for m in manifests:
        h = m.header
        target_r, target_v = _share_targets(h.spec)
        rows.append({
            "manifest": m.name, "dir": str(m.dir), "format": h.format, "spec_sha256": h.spec_sha256,
            "shards_root": h.shards.root, "index_sha256": h.shards.index_sha256,
            "tokenizer_sha256": h.tokenizer_sha256, "seed": h.seed,
            "total_tokens": h.total_tokens, "reasoning_share": _float(h.shares.get("reasoning")),
            "visual_share": _float(h.shares.get("visual")), "target_reasoning_share": target_r,
            "target_visual_share": target_v, "pool_count": len(h.pools),
            "entries_sha256": h.entries_sha256, "created_by": h.created_by,
            "spec": json.dumps(h.spec, sort_keys=True),
        })
        for pool, p in sorted(h.pools.items()):
            pool_rows.append({"manifest": m.name, "pool": pool,
                              **{name: getattr(p, name) for name in POOL_SCHEMA.names[1:]}})
    schema = pa.schema([
        ("manifest", pa.string()), ("dir", pa.string()), ("format", pa.string()), ("spec_sha256", pa.string()),
        ("shards_root", pa.string()), ("index_sha256", pa.string()), ("tokenizer_sha256", pa.string()),
        ("seed", pa.int64()), ("total_tokens", pa.int64()), ("reasoning_share", pa.float64()),
        ("visual_share", pa.float64()), ("target_reasoning_share", pa.float64()),
        ("target_visual_share", pa.float64()), ("pool_count", pa.int64()), ("entries_sha256", pa.string()),
        ("created_by", pa.string()), ("spec", pa.string()),
    ])
    _table(con, "manifests", pa.Table.from_pylist(rows, schema=schema))
    pool_schema = pa.schema([("manifest", pa.string()), *POOL_SCHEMA])
    _table(con, "pools", pa.Table.from_pylist(pool_rows, schema=pool_schema))


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


def create_results(con: duckdb.DuckDBPyConnection, sweep_dir: Path | None) -> None:
    """``results``: the sweep's results.parquet, or an empty view with the contract's fixed columns."""
    if sweep_dir is None:
        cols = ", ".join(f"CAST(NULL AS {t}) AS {quote_ident(c)}" for c, t in RESULT_COLUMNS)
        con.execute(f"CREATE VIEW results AS SELECT {cols} WHERE false")
        return
    path = sweep_dir / RESULTS_FILE
    if not path.is_file():
        raise AuditError(f"{path} not found: {sweep_dir} is not a sweep directory "
                         f"(run a sweep with `foresight sweep SWEEP.toml --out {sweep_dir}`)")
    con.execute(f"CREATE VIEW results AS SELECT * FROM read_parquet({quote_literal(str(path))})")


def _table(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    con.register("_audit_arrow", table)
    try:
        con.execute(f"CREATE TABLE {quote_ident(name)} AS SELECT * FROM _audit_arrow")
    finally:
        con.unregister("_audit_arrow")


def create_excluded(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """``excluded``: the documents ``curate --exclusions`` wrote, one row each: ``step`` (its folder), ``id``,
    ``reason`` (``metadata.filter_reason``), ``source``, ``text`` (empty for unreadable records), ``error``."""
    files = sorted(str(f) for f in (root / EXCLUDED_DIR).glob("*/*.jsonl.gz"))
    if not files:
        con.execute("CREATE TABLE excluded (step VARCHAR, id VARCHAR, reason VARCHAR, source VARCHAR, text VARCHAR, "
                    "error VARCHAR)")
        return
    listing = "[" + ", ".join(quote_literal(f) for f in files) + "]"
    con.execute(
        "CREATE VIEW excluded AS SELECT regexp_extract(filename, '/([^/]+)/[^/]+$', 1) AS step, id::VARCHAR AS id, "
        "json_extract_string(metadata, '$.filter_reason') AS reason, json_extract_string(metadata, '$.source') "
        "AS source, coalesce(text, '') AS text, json_extract_string(metadata, '$.error') AS error "
        f"FROM read_json({listing}, format = 'newline_delimited', filename = true, "
        "columns = {id: 'VARCHAR', text: 'VARCHAR', metadata: 'JSON'})"
    )


def create_views(con: duckdb.DuckDBPyConnection, root: Path, index: ShardIndex, manifests: list[Manifest],
                 sweep_dir: Path | None, heldout_fraction: float = DEFAULT_HELDOUT_FRACTION) -> None:
    create_segments(con, root, index)
    create_documents(con, heldout_fraction)
    create_entries(con, manifests)
    create_manifest_tables(con, manifests)
    create_results(con, sweep_dir)
    create_excluded(con, root)
