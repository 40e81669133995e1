"""Reading manifests: header checks, entries hash, the referenced shard rows (token streams: manifests.stream)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from foresight.formats.hashing import sha256_bytes, sha256_file
from foresight.formats.index import index_sha256, safe_shard_path
from foresight.formats.shardio import row_columns
from foresight.manifests.schema import (
    ENTRIES_FILE,
    ENTRY_COLUMNS,
    FORMAT,
    HEADER_HASH_KEY,
    HEADER_KEYS,
    MANIFEST_FILE,
    ManifestError,
    header_digest,
)


def read_header(manifest_dir: str | Path) -> dict[str, Any]:
    """``manifest.json`` after checking its format and keys and that ``spec_sha256`` matches the spec text."""
    path = Path(manifest_dir) / MANIFEST_FILE
    if not path.is_file():
        raise ManifestError(f"{path} not found: {manifest_dir} is not a manifest directory "
                            f"(build one with `foresight mix SPEC --shards DIR --out {manifest_dir}`)")
    try:
        head = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, RecursionError) as e:  # RecursionError: nested too deeply
        raise ManifestError(f"{path} is not valid JSON ({e}); rebuild the manifest with `foresight mix`") from e
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise ManifestError(f"{path}: format {head.get('format') if isinstance(head, dict) else None!r} "
                            f"is not {FORMAT!r}")
    missing = [k for k in HEADER_KEYS if k not in head]
    if missing:
        raise ManifestError(f"{path}: missing header field(s) {missing}; rebuild the manifest")
    text = head.get("spec_text")
    if isinstance(text, str) and text and sha256_bytes(text.encode("utf-8")) != head["spec_sha256"]:
        raise ManifestError(f"{path}: spec_sha256 does not match the recorded spec text (header edited)")
    if head[HEADER_HASH_KEY] != header_digest(head):
        raise ManifestError(f"{path}: header_sha256 does not match the header (edited after the build); rebuild "
                            "the manifest with `foresight mix`")
    return head


def entries_path(manifest_dir: str | Path) -> Path:
    return Path(manifest_dir) / ENTRIES_FILE


def check_entries_hash(manifest_dir: str | Path, head: dict[str, Any]) -> bool:
    path = entries_path(manifest_dir)
    if not path.is_file():
        raise ManifestError(f"{path} not found; the manifest in {manifest_dir} is incomplete (rebuild it)")
    return sha256_file(path) == head["entries_sha256"]


def load_entries(manifest_dir: str | Path) -> pl.DataFrame:
    path = entries_path(manifest_dir)
    try:
        df = pl.read_parquet(path)
    except Exception as e:  # noqa: BLE001 - any decode failure is the same user-facing problem
        raise ManifestError(f"{path} is not a readable Parquet file ({e})") from e
    missing = [c for c in ENTRY_COLUMNS if c not in df.columns]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {missing}")
    # manifests written before n_tokens was int64 hold int32, which polars sums into a wrapping int32
    return df.with_columns(pl.col("n_tokens").cast(pl.Int64))


def read(manifest_dir: str | Path) -> tuple[dict[str, Any], pl.DataFrame]:
    """(header, entries) after verifying the header, the entries hash and the totals (not the shards)."""
    from foresight.manifests.verify import check_entries, diagnose_edit

    head = read_header(manifest_dir)
    if not check_entries_hash(manifest_dir, head):
        diagnose_edit(manifest_dir, head)  # raises, naming the first bad entry
    df = load_entries(manifest_dir)
    check_entries(manifest_dir, head, df)
    return head, df


def shard_root(head: dict[str, Any], shards_root: str | Path | None) -> Path:
    """The shard directory, refusing one whose ``index.json`` is not the one the manifest was built from."""
    root = Path(shards_root or head["shards"]["root"])
    try:
        got = index_sha256(root)
    except FileNotFoundError as e:
        raise ManifestError(f"shard index {root / 'index.json'} not found (pass shards_root=/ --shards if the "
                            f"shards moved)") from e
    if got != head["shards"]["index_sha256"]:
        raise ManifestError(f"{root / 'index.json'} sha256 {got[:12]}… differs from the manifest's "
                            f"{head['shards']['index_sha256'][:12]}…: the shards changed since the manifest was built")
    return root


def referenced_rows(root: Path, df: pl.DataFrame, columns: list[str]) -> tuple[pa.Table, np.ndarray]:
    """``columns`` of every distinct referenced row, read file by file, and each entry's position in it."""
    files = df["file"].to_list()
    rel = sorted(set(files))
    for r in rel:
        safe_shard_path(root, r, "entry file")
    lookup = {r: i for i, r in enumerate(rel)}
    fidx = np.fromiter((lookup[f] for f in files), dtype=np.int64, count=len(files))
    return row_columns(root, rel, fidx, df["row"].to_numpy(), columns)


def read_verified(manifest_dir: str | Path, shards_root: str | Path | None = None, *, rehash: bool = True
                  ) -> tuple[dict[str, Any], pl.DataFrame, Path]:
    """(header, entries, shard root) after :func:`read` and the shard checks of
    :func:`~foresight.manifests.verify.verified_shards` (``rehash=False``: only the index hash and the entry
    paths, for a caller that has just run :func:`~foresight.manifests.verify.verify` on the same root)."""
    from foresight.manifests.verify import check_paths, verified_shards

    head, df = read(manifest_dir)
    if rehash:
        return head, df, verified_shards(head, df, shards_root)
    root = shard_root(head, shards_root)
    check_paths(root, df, None)
    return head, df, root
