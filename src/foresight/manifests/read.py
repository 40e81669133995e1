"""Reading manifests: header checks, entries hash, the referenced shard rows (token streams: manifests.stream)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from foresight.formats.index import safe_shard_path
from foresight.formats.manifest import ManifestHeader
from foresight.formats.shardio import row_columns
from foresight.manifests.schema import ENTRIES_FILE, ENTRY_COLUMNS, ManifestError


def entries_path(manifest_dir: str | Path) -> Path:
    return Path(manifest_dir) / ENTRIES_FILE


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


def read(manifest_dir: str | Path) -> tuple[ManifestHeader, pl.DataFrame]:
    """(header, entries) after verifying the header, the entries hash and the totals (not the shards)."""
    from foresight.manifests.verify import check_entries, diagnose_edit

    head = ManifestHeader.load(manifest_dir)
    if not head.verify(manifest_dir):
        diagnose_edit(manifest_dir, head)  # raises, naming the first bad entry
    df = load_entries(manifest_dir)
    check_entries(manifest_dir, head, df)
    return head, df


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
                  ) -> tuple[ManifestHeader, pl.DataFrame, Path]:
    """(header, entries, shard root) after :func:`read` and the shard checks of
    :func:`~foresight.manifests.verify.verified_shards` (``rehash=False``: only the index hash and the entry
    paths, for a caller that has just run :func:`~foresight.manifests.verify.verify` on the same root). Holds
    the whole entries table: the token paths use :func:`open_verified`."""
    from foresight.manifests.verify import add_files

    head, df = read(manifest_dir)
    files: dict[str, int] = {}
    add_files(files, df, 0)
    return head, df, _checked_root(head, files, lambda i: _describe(df, i), shards_root, rehash)


def open_verified(manifest_dir: str | Path, shards_root: str | Path | None = None, *, rehash: bool = True):  # noqa: ANN201
    """(header, :class:`~foresight.manifests.scan.EntryScan`, shard root): :func:`read_verified`'s checks, a
    batch of entries at a time. Close the scan (a ``with`` block) to delete its parts."""
    from foresight.manifests.verify import diagnose_edit, scan_checked

    head = ManifestHeader.load(manifest_dir)
    if not head.verify(manifest_dir):
        diagnose_edit(manifest_dir, head)  # raises, naming the first bad entry
    scan = scan_checked(manifest_dir, head)
    try:
        return head, scan, _checked_root(head, scan.files, scan.describe, shards_root, rehash)
    except BaseException:
        scan.close()
        raise


def _describe(df: pl.DataFrame, i: int) -> str:
    from foresight.manifests.scan import describe

    return describe(df, i, i)


def _checked_root(head: ManifestHeader, files: dict[str, int], describe_entry, shards_root: str | Path | None,  # noqa: ANN001
                  rehash: bool) -> Path:
    from foresight.manifests.verify import check_paths, verified_shards

    if rehash:
        return verified_shards(head, files, describe_entry, shards_root)
    root = head.shard_root(shards_root)
    check_paths(root, files, None, describe_entry)
    return root
