"""The streaming manifest readers (manifests.scan): however the entries are cut into batches, verify, the
token stream and the exports give what one batch gives, and the first bad entry named is the lowest-numbered
one across batches and shard files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from foresight import manifests
from foresight.manifests import ManifestError, scan
from tests.manifests.test_manifests import _rewrite_entries, built  # noqa: F401 - the fixture

BATCHES = [1, 7, 1 << 20]


@pytest.mark.parametrize("rows", BATCHES)
def test_token_stream_and_exports_do_not_depend_on_the_batch(built: tuple[Path, Path], tmp_path: Path,  # noqa: F811
                                                               monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    _, mdir = built
    _, df = manifests.read(mdir)
    whole = np.concatenate([a for a in manifests.iter_token_arrays(mdir)])
    monkeypatch.setattr(scan, "SCAN_ROWS", rows)
    lengths = manifests.write_token_stream(mdir, tmp_path / "t.u32")
    assert lengths.tolist() == df["n_tokens"].to_list()
    assert np.array_equal(np.fromfile(tmp_path / "t.u32", np.uint32), whole)
    manifests.verify(mdir, deep=True)
    out = manifests.export(mdir, "nanogpt", tmp_path / "nb")
    assert out["tokens"] == len(whole) == int(df["n_tokens"].sum())
    assert np.array_equal(np.fromfile(tmp_path / "nb" / "train.bin", np.uint16), whole)


@pytest.mark.parametrize("rows", BATCHES)
def test_the_first_bad_entry_is_the_lowest_across_batches(built: tuple[Path, Path],  # noqa: F811
                                                          monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    """An order problem late in the file is reported before a pool problem early on (checks go in a fixed
    order, each naming its lowest entry), with the count of entries that share it."""
    _, mdir = built
    _, df = manifests.read(mdir)
    late = len(df) - 2
    edited = df.with_columns(
        pl.when(pl.col("order") == 2).then(pl.lit("nope")).otherwise(pl.col("pool")).alias("pool"),
        pl.when(pl.col("order").is_in([late, late + 1])).then(pl.col("order") + 100).otherwise(pl.col("order"))
        .alias("order"))
    _rewrite_entries(mdir, edited, fix_hash=True)
    monkeypatch.setattr(scan, "SCAN_ROWS", rows)
    msg = rf"entry {late} \(order {late + 100}, .*order is not its position.*; 1 more entries have the same problem"
    with pytest.raises(ManifestError, match=msg):
        manifests.verify(mdir)
    with pytest.raises(ManifestError, match=msg):
        manifests.write_token_stream(mdir, mdir.parent / "t.u32")


@pytest.mark.parametrize("rows", BATCHES)
def test_shard_checks_name_the_lowest_entry_over_all_files(built: tuple[Path, Path],  # noqa: F811
                                                           monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    _, mdir = built
    _, df = manifests.read(mdir)
    ids = df["id"].to_list()
    last = len(ids) - 1
    ids[1], ids[last] = ids[last], ids[1]  # two entries, most likely in different shard files
    _rewrite_entries(mdir, df.with_columns(pl.Series("id", ids)), fix_hash=True)
    monkeypatch.setattr(scan, "SCAN_ROWS", rows)
    with pytest.raises(ManifestError, match=r"entry 1 .*id differs from the shard row.*; 1 more entries"):
        manifests.verify(mdir)


def test_the_scan_leaves_no_parts_behind(built: tuple[Path, Path], tmp_path: Path,  # noqa: F811
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    _, mdir = built
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    manifests.write_token_stream(mdir, tmp_path / "t.u32")
    manifests.verify(mdir)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("foresight-entries-")]
