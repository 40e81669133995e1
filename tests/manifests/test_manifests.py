"""Manifest read/verify: contract schema, hashes, totals, edited entries, unsafe paths, deep checks."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from foresight import manifests
from foresight.formats.hashing import sha256_file
from foresight.formats.index import ShardIndex
from foresight.manifests import ManifestError
from tests.mixtures.corpus import CATEGORY_SPEC, build_corpus, write_spec


@pytest.fixture()
def built(tmp_path: Path) -> tuple[Path, Path]:
    """A private shard copy (tests tamper with it) and a manifest over it."""
    shards = build_corpus(tmp_path)
    spec = write_spec(tmp_path / "s.toml", CATEGORY_SPEC.format(total=700, seed=4))
    return shards, manifests.build(spec, shards, tmp_path / "m")


def _rewrite_entries(mdir: Path, df: pl.DataFrame, fix_hash: bool = False) -> None:
    table = df.to_arrow().cast(manifests.ENTRIES_SCHEMA)
    pq.write_table(table, mdir / "entries.parquet")
    if fix_hash:
        head = json.loads((mdir / "manifest.json").read_text())
        head["entries_sha256"] = sha256_file(mdir / "entries.parquet")
        head["header_sha256"] = manifests.header_digest(head)  # a tamper that also recomputes the self-hash
        (mdir / "manifest.json").write_text(json.dumps(head))


def test_contract_schema_and_read(built: tuple[Path, Path]) -> None:
    shards, mdir = built
    head, df = manifests.read(mdir)
    assert head.format == "foresight-manifest/1" and head.total_tokens == 700
    assert head.shards.root == str(shards.absolute()) and head.tokenizer_sha256
    assert set(head.pools) == {"reasoning", "visual", "other"} and head.shares["reasoning"] is not None
    assert df.schema == pl.Schema({"order": pl.Int64, "pool": pl.String, "id": pl.String, "doc_id": pl.String,
                                   "file": pl.String, "row": pl.Int64, "start": pl.Int32, "end": pl.Int32,
                                   "n_tokens": pl.Int64, "text_sha256": pl.Binary, "epoch": pl.Int32})
    assert int(df["n_tokens"].sum()) == 700 and df["order"].to_list() == list(range(len(df)))
    manifests.verify(mdir)
    manifests.verify(mdir, deep=True)


def test_token_arrays_are_the_exact_spans(built: tuple[Path, Path]) -> None:
    shards, mdir = built
    _, df = manifests.read(mdir)
    arrays = list(manifests.iter_token_arrays(mdir))
    assert [len(a) for a in arrays] == df["n_tokens"].to_list() and all(a.dtype == np.uint32 for a in arrays)
    for i in (0, len(df) // 2, len(df) - 1):  # spot-check against the shard row itself
        row = pq.read_table(shards / df["file"][i]).slice(df["row"][i], 1).to_pylist()[0]
        assert row["id"] == df["id"][i]
        assert arrays[i].tolist() == row["tokens"][df["start"][i]:df["end"][i]]


def test_edited_entry_is_named(built: tuple[Path, Path]) -> None:
    _, mdir = built
    _, df = manifests.read(mdir)
    edited = df.with_columns(pl.when(pl.col("order") == 5).then(pl.col("end") - 1).otherwise(pl.col("end"))
                             .alias("end"))
    _rewrite_entries(mdir, edited)
    with pytest.raises(ManifestError, match=r"entries edited.*entry 5 \(order 5, .*n_tokens != end - start"):
        manifests.verify(mdir)
    with pytest.raises(ManifestError, match="entry 5"):
        manifests.read(mdir)


def test_consistently_edited_entry_fails_totals(built: tuple[Path, Path]) -> None:
    _, mdir = built
    _, df = manifests.read(mdir)
    first_whole = int(np.flatnonzero(df["n_tokens"].to_numpy() > 2)[0])
    edited = df.with_columns(
        pl.when(pl.col("order") == first_whole).then(pl.col("end") - 1).otherwise(pl.col("end")).alias("end"),
        pl.when(pl.col("order") == first_whole).then(pl.col("n_tokens") - 1).otherwise(pl.col("n_tokens"))
        .alias("n_tokens"))
    _rewrite_entries(mdir, edited, fix_hash=True)
    with pytest.raises(ManifestError, match="entries sum to"):
        manifests.verify(mdir)


def test_swapped_id_is_caught_against_the_shards(built: tuple[Path, Path]) -> None:
    _, mdir = built
    _, df = manifests.read(mdir)
    ids = df["id"].to_list()
    ids[3], ids[4] = ids[4], ids[3]
    _rewrite_entries(mdir, df.with_columns(pl.Series("id", ids)), fix_hash=True)
    with pytest.raises(ManifestError, match=r"entry 3 .*id differs from the shard row"):
        manifests.verify(mdir)


@pytest.mark.parametrize("path,match", [("/etc/passwd", "absolute"), ("data/../../x.parquet", r"'\.\.'"),
                                        ("link/part-00000.parquet", "outside the shard root")])
def test_unsafe_entry_paths_refused(built: tuple[Path, Path], tmp_path: Path, path: str, match: str) -> None:
    shards, mdir = built
    outside = tmp_path / "outside"
    shutil.copytree(shards / "data" / "source=code", outside)
    (shards / "link").symlink_to(outside, target_is_directory=True)
    _, df = manifests.read(mdir)
    _rewrite_entries(mdir, df.with_columns(pl.when(pl.col("order") == 2).then(pl.lit(path))
                                           .otherwise(pl.col("file")).alias("file")), fix_hash=True)
    with pytest.raises(ManifestError, match=f"entry 2 .*{match}"):
        manifests.verify(mdir)


def test_changed_shard_file_is_named(built: tuple[Path, Path]) -> None:
    shards, mdir = built
    _, df = manifests.read(mdir)
    victim = shards / df["file"][0]
    victim.write_bytes(victim.read_bytes() + b"\0")
    with pytest.raises(ManifestError, match=df["file"][0].replace("=", ".")):
        manifests.verify(mdir)


def test_rebuilt_index_is_refused(built: tuple[Path, Path]) -> None:
    shards, mdir = built
    replace(ShardIndex.load(shards), config={"changed": True}).write(shards)
    with pytest.raises(ManifestError, match="differs from the manifest's"):
        manifests.verify(mdir)


def _tamper_shard(shards: Path, mdir: Path, column: str, change) -> None:  # noqa: ANN001
    """Rewrite one referenced row's ``column`` in its shard, then re-index and re-hash everything a careful
    forger would (index.json, the manifest's index_sha256 and header_sha256)."""
    _, df = manifests.read(mdir)
    rel, row = df["file"][0], df["row"][0]
    table = pq.read_table(shards / rel)
    values = table.column(column).to_pylist()
    values[row] = change(values[row])
    field = table.schema.field(column)
    table = table.set_column(table.schema.get_field_index(column), field, pa.array(values, field.type))
    pq.write_table(table, shards / rel)
    old = ShardIndex.load(shards)
    ShardIndex.build(shards, [f.path for f in old.files], tokenizer=old.tokenizer, classifier=old.classifier,
                     config=old.config, accounting=old.accounting).write(shards)
    head = json.loads((mdir / "manifest.json").read_text())
    head["shards"]["index_sha256"] = sha256_file(shards / "index.json")
    head["header_sha256"] = manifests.header_digest(head)
    (mdir / "manifest.json").write_text(json.dumps(head))


def test_deep_catches_a_text_that_no_longer_matches(built: tuple[Path, Path]) -> None:
    """A shard rewritten with a different text but the old text_sha256 passes the shallow check only."""
    shards, mdir = built
    _tamper_shard(shards, mdir, "text", lambda t: t + " tampered")
    manifests.verify(mdir)  # ids, hashes and spans still agree with the shard columns
    with pytest.raises(ManifestError, match=r"entry \d+ .*sha256 of the shard row's text differs"):
        manifests.verify(mdir, deep=True)


def test_deep_catches_token_ids_that_are_not_the_text(built: tuple[Path, Path]) -> None:
    """Same count, other ids: only re-tokenizing the text (deep) can see it."""
    shards, mdir = built
    _tamper_shard(shards, mdir, "tokens", lambda ids: [ids[1], ids[0], *ids[2:]] if ids[0] != ids[1]
                  else [ids[0] + 1, *ids[1:]])
    manifests.verify(mdir)
    with pytest.raises(ManifestError, match=r"entry \d+ .*token ids differ from its text re-tokenized"):
        manifests.verify(mdir, deep=True)


@pytest.mark.parametrize("edit", [
    lambda h: h.update(seed=h["seed"] + 1),
    lambda h: h.update(name="other"),
    lambda h: h["shares"].update(reasoning=0.99),
    lambda h: h.pop("header_sha256"),
])
def test_a_coherent_header_edit_is_refused(built: tuple[Path, Path], edit) -> None:  # noqa: ANN001
    """Edits the entries would not contradict (seed, name, shares) are caught by the header's own hash."""
    _, mdir = built
    manifests.verify(mdir)
    head = json.loads((mdir / "manifest.json").read_text())
    edit(head)
    (mdir / "manifest.json").write_text(json.dumps(head))
    with pytest.raises(ManifestError, match="header_sha256"):
        manifests.verify(mdir)


def test_an_edited_spec_text_is_refused_even_with_the_header_re_hashed(built: tuple[Path, Path]) -> None:
    """The recorded spec text must hash to spec_sha256: an edit that re-seals header_sha256 is still caught."""
    _, mdir = built
    head = json.loads((mdir / "manifest.json").read_text())
    assert "seed = 4" in head["spec_text"]
    head["spec_text"] = head["spec_text"].replace("seed = 4", "seed = 5")
    head["header_sha256"] = manifests.header_digest(head)
    (mdir / "manifest.json").write_text(json.dumps(head))
    with pytest.raises(ManifestError, match="spec_sha256 does not match the recorded spec text"):
        manifests.verify(mdir)


def test_missing_or_foreign_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not a manifest directory"):
        manifests.verify(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "other"}')
    with pytest.raises(ManifestError, match="is not 'foresight-manifest/1'"):
        manifests.read(tmp_path)


def test_moved_shards_are_found_with_shards_root(built: tuple[Path, Path], tmp_path: Path) -> None:
    shards, mdir = built
    moved = tmp_path / "moved"
    shutil.move(str(shards), moved)
    with pytest.raises(ManifestError, match="not found"):
        manifests.verify(mdir)
    manifests.verify(mdir, deep=True, shards_root=moved)
    assert sum(len(a) for a in manifests.iter_token_arrays(mdir, shards_root=moved)) == 700


def test_a_plan_written_later_is_the_build_and_closing_it_deletes_its_spill(
        built: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``mix plan`` and a build share one plan: writing it gives the build's bytes; the spill goes with it."""
    from foresight.manifests.build import write_manifest
    from foresight.mixtures import plan

    shards, mdir = built
    from foresight.mixtures import spill

    monkeypatch.setattr(spill, "HELD_BYTES", 0)  # every entry to a spill file
    with plan(write_spec(tmp_path / "s2.toml", CATEGORY_SPEC.format(total=700, seed=4)), shards) as p:
        spill_dir = p.spill.dir
        assert any(spill_dir.iterdir())
        out = write_manifest(p, tmp_path / "m2")
    assert (out / "entries.parquet").read_bytes() == (mdir / "entries.parquet").read_bytes()
    assert not spill_dir.exists()


@pytest.mark.parametrize("group", [1, 7, 1 << 20])
def test_entries_written_a_row_group_at_a_time_are_the_bytes_of_one_write(
        built: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group: int) -> None:
    """write_entries never holds the whole entries table, yet writes exactly what one write_table of it would,
    with row groups of one entry, of seven (a last group cut short) or all in one."""
    import importlib

    from foresight.mixtures import plan

    build_mod = importlib.import_module("foresight.manifests.build")  # the package exports a function `build`
    shards, _ = built
    p = plan(write_spec(tmp_path / "s.toml", CATEGORY_SPEC.format(total=700, seed=4)), shards)
    opts = {**build_mod.PARQUET_OPTS, "row_group_size": group}
    monkeypatch.setattr(build_mod, "PARQUET_OPTS", opts)
    parts, first = [], 0
    for spilled in p.entries():
        parts.append(build_mod.entries_table(p, spilled, first))
        first += spilled.num_rows
    pq.write_table(pa.concat_tables(parts).combine_chunks(), tmp_path / "whole.parquet", **opts)
    n = build_mod.write_entries(p, tmp_path / "grouped.parquet")
    assert n == p.n_entries == first and n > 7 and n % 7
    assert (tmp_path / "grouped.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert pq.ParquetFile(tmp_path / "grouped.parquet").num_row_groups == -(-n // group)
