"""The typed formats (ShardIndex, ManifestHeader, Accounting): real files round-trip to the same bytes, and a
missing, mistyped or unknown key is refused in one line naming the file and the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from foresight import manifests
from foresight.formats.accounting import Accounting
from foresight.formats.errors import InputError
from foresight.formats.index import ShardIndex, ShardIndexError
from foresight.formats.manifest import ManifestError, ManifestHeader, header_digest
from tests.audit.fixtures import corpus, mix_pair
from tests.mixtures.corpus import CATEGORY_SPEC, build_corpus, write_spec
from tests.pipeline.util import curate, prose, write_jsonl


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("typed")
    shards = build_corpus(tmp, ranks=2)
    spec = write_spec(tmp / "s.toml", CATEGORY_SPEC.format(total=700, seed=4))
    return shards, manifests.build(spec, shards, tmp / "m")


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real curate run: an index with accounting, drop and error reasons, and stats/."""
    tmp = tmp_path_factory.mktemp("curated")
    for f in range(2):
        write_jsonl(tmp / "in" / f"s{f}" / "a.jsonl", [{"text": prose(f * 10 + i)} for i in range(3)] + ["{", ""])
    return curate(tmp, [tmp / "in"], tasks=2)


def _same_bytes(path: Path, write: Any, tmp_path: Path) -> None:
    out = tmp_path / path.name
    write(out)
    assert out.read_bytes() == path.read_bytes()


def test_index_round_trips_to_the_same_bytes(built: tuple[Path, Path], curated: Path, tmp_path: Path) -> None:
    for i, root in enumerate((built[0], curated)):
        index = ShardIndex.load(root)
        assert index.totals.rows == sum(f.rows for f in index.files) and index.files[0].path.startswith("data/")
        out = tmp_path / str(i)
        out.mkdir()
        assert index.write(out).read_bytes() == (root / "index.json").read_bytes()
        # and a rebuild from the files measures them into the same index
        rebuilt = ShardIndex.build(root, [f.path for f in index.files], tokenizer=index.tokenizer,
                                   classifier=index.classifier, config=index.config, accounting=index.accounting)
        assert rebuilt == index


def test_manifest_header_round_trips_to_the_same_bytes(built: tuple[Path, Path], tmp_path: Path) -> None:
    _, mdir = built
    head = ManifestHeader.load(mdir)
    assert head.pool_names == ("reasoning", "visual", "other") and head.pools["visual"].where
    assert head.verify(mdir) and head.sealed() == head
    assert head.write(tmp_path).read_bytes() == (mdir / "manifest.json").read_bytes()


def test_header_without_the_optional_keys_loads_and_writes_them_absent(tmp_path: Path) -> None:
    """A header written without spec_text, tokenizer, pool_names, entries, selection and the pools' optional
    keys (as tests/audit/fixtures does) loads, and writes back without inventing them."""
    mix_a, _ = mix_pair(tmp_path, corpus(tmp_path))
    raw = json.loads((mix_a / "manifest.json").read_text())
    head = ManifestHeader.load(mix_a)
    assert head.spec_text is None and head.pools["reason"].entries is None
    assert head.to_dict() == raw


def test_accounting_round_trips_to_the_same_bytes(curated: Path, tmp_path: Path) -> None:
    stats = sorted((curated / "stats").glob("*.json"))
    assert [p.name for p in stats] == ["00000.json", "00001.json", "accounting.json"]
    for path in stats:
        _same_bytes(path, Accounting.load(path).write, tmp_path)
    total = Accounting.load(curated / "stats" / "accounting.json")
    assert total.errored == {"bad_json": 2} and total.balance() == 0
    assert total == ShardIndex.load(curated).accounting
    assert Accounting.load(stats[0]) + Accounting.load(stats[1]) == total


def _edit_json(path: Path, edit: Any) -> None:
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw, indent=2, sort_keys=True))


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(written_at="2026-01-01"), r"key 'written_at' is not a key this version"),
    (lambda d: d["files"][1].update(mtime=0), r"key 'files\[1\]\.mtime' is not a key this version"),
    (lambda d: d["totals"]["by_source"]["code"].update(bytes=1), r"'totals\.by_source\.code\.bytes' is not a key"),
    (lambda d: d["accounting"].update(skipped=1), r"key 'accounting\.skipped' is not a key this version"),
    (lambda d: d["files"][0].pop("sha256"), r"key 'files\[0\]\.sha256' is missing"),
    (lambda d: d["files"][0].update(rows="3"), r"key 'files\[0\]\.rows' is a string, expected an integer"),
    (lambda d: d["totals"].update(tokens=True), r"key 'totals\.tokens' is a boolean, expected an integer"),
    (lambda d: d.update(files={}), r"key 'files' is an object, expected a list"),
])
def test_index_refuses_unknown_missing_and_mistyped_keys(built: tuple[Path, Path], tmp_path: Path, edit: Any,
                                                         message: str) -> None:
    """Like the format name, a key this reader does not know is refused (a newer writer's index is not
    half-read); every message is one line naming index.json and the key."""
    root = _copy(built[0], tmp_path / "shards")
    _edit_json(root / "index.json", edit)
    with pytest.raises(ShardIndexError, match=message) as e:
        ShardIndex.load(root)
    assert str(root / "index.json") in str(e.value) and "\n" not in str(e.value)
    assert "foresight curate" in str(e.value)
    assert isinstance(e.value, InputError)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(written_at="x"), r"key 'written_at' is not a key this version"),
    (lambda d: d["pools"]["visual"].update(priority=1), r"key 'pools\.visual\.priority' is not a key"),
    (lambda d: d["shards"].update(host="h"), r"key 'shards\.host' is not a key"),
    (lambda d: d.pop("entries_sha256"), r"key 'entries_sha256' is missing"),
    (lambda d: d["pools"]["other"].update(cut="no"), r"key 'pools\.other\.cut' is a string, expected a boolean"),
    (lambda d: d.update(total_tokens=7.5), r"key 'total_tokens' is a number, expected an integer"),
])
def test_header_refuses_unknown_missing_and_mistyped_keys(built: tuple[Path, Path], tmp_path: Path, edit: Any,
                                                          message: str) -> None:
    """Checked before the header's own hash, so even a coherent edit (hash recomputed) is named by its key."""
    mdir = _copy(built[1], tmp_path / "m")

    def edit_and_reseal(d: dict[str, Any]) -> None:
        edit(d)
        d["header_sha256"] = header_digest(d)

    _edit_json(mdir / "manifest.json", edit_and_reseal)
    with pytest.raises(ManifestError, match=message) as e:
        ManifestHeader.load(mdir)
    assert str(mdir / "manifest.json") in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ManifestError, match=message):
        manifests.verify(mdir)  # every reader goes through ManifestHeader.load


def test_accounting_refuses_unknown_and_mistyped_keys(curated: Path, tmp_path: Path) -> None:
    path = tmp_path / "accounting.json"
    path.write_bytes((curated / "stats" / "accounting.json").read_bytes())
    _edit_json(path, lambda d: d["dropped"].update(late=1.5))
    with pytest.raises(InputError, match=rf"{path}: key 'dropped\.late' is a number, expected an integer"):
        Accounting.load(path)
    _edit_json(path, lambda d: (d["dropped"].pop("late"), d.update(skipped=0)))
    with pytest.raises(InputError, match=r"key 'skipped' is not a key this version"):
        Accounting.load(path)


def test_unknown_format_is_still_named_before_the_keys(built: tuple[Path, Path], tmp_path: Path) -> None:
    root = _copy(built[0], tmp_path / "shards")
    _edit_json(root / "index.json", lambda d: d.update(format="foresight-shards/2", extra=1))
    with pytest.raises(ShardIndexError, match="unknown format 'foresight-shards/2'"):
        ShardIndex.load(root)
