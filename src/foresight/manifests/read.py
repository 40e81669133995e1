"""Reading manifests: header checks, entries hash, the referenced shard rows (token streams: manifests.stream)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from foresight.formats.manifest import ManifestHeader
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


def open_verified(manifest_dir: str | Path, shards_root: str | Path | None = None, *, rehash: bool = True):  # noqa: ANN201
    """(header, :class:`~foresight.manifests.scan.EntryScan`, shard root) after every check short of the
    shard rows themselves: hashes, the per-entry checks, totals, entry paths and (``rehash``; ``False`` for a
    caller that has just run :func:`~foresight.manifests.verify.verify` on the same root) the shard files'
    sha256s. A batch of entries at a time; close the scan (a ``with`` block) to delete its parts."""
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


def _checked_root(head: ManifestHeader, files: dict[str, int], describe_entry, shards_root: str | Path | None,  # noqa: ANN001
                  rehash: bool) -> Path:
    from foresight.manifests.verify import check_paths, verified_shards

    if rehash:
        return verified_shards(head, files, describe_entry, shards_root)
    root = head.shard_root(shards_root)
    check_paths(root, files, None, describe_entry)
    return root
