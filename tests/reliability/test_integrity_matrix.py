"""Integrity matrix: every command that reads shards or a manifest × every way a copy of the shards can be
tampered with. Each command is pointed at the tampered copy (``--shards OTHER`` or the copy itself) and must
refuse before it uses a byte of it, naming what changed.

Tamper kinds:
- ``flip``: one byte of a shard file flipped (index.json untouched);
- ``rewrite``: a shard file rewritten as valid Parquet with different tokens (index.json untouched);
- ``rehash``: the rewrite, with index.json re-hashed to match it. Only a manifest can catch this (it records the
  sha256 of the index.json it was built from); for commands given bare shards, index.json is the root of trust
  and the rewritten file is, by definition, the shards (docs/pipeline.md "Guarantees and limits");
- ``escape``: index.json's path for a file rewritten to ``../outside/…`` pointing at a byte-identical copy
  outside the shard root (hash and size still match).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from foresight import manifests
from foresight.cli import app
from foresight.formats.hashing import sha256_file
from foresight.formats.shardio import PARQUET_OPTS
from tests.helpers import WORDS, make_shards

runner = CliRunner()
SPEC = ('name = "all"\ntotal_tokens = 300\nseed = 0\nexclude = ["heldout"]\nheldout_fraction = 0.2\n'
        '[pools.all]\nwhere = "true"\nweight = 1.0\n')
SWEEP = ('name = "s"\nmodel = "tiny"\ntotal_tokens = 240\nswept = "reasoning"\n[grid]\nwhere = "reasoning"\n'
         'shares = [50]\n[train]\nseq_len = 32\nbatch_tokens = 128\ncheckpoint_every = 0\n[probe]\n'
         'probes = ["bpb"]\nheldout_fraction = 0.2\n')
TRAIN_ARGS = ["--model", "tiny", "--seq-len", "32", "--batch-tokens", "128", "--quiet", "--steps", "1"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Pristine shards (one file per source), a manifest over them and a one-step tiny run."""
    tmp = tmp_path_factory.mktemp("matrix")
    kinds = [("code", ["code_reasoning"]), ("web", ["visual_attribute"]), ("web", [])]
    docs = [{"text": " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(12)), "source": kinds[i % 3][0],
             "labels": kinds[i % 3][1], "doc_id": f"doc{i}"} for i in range(90)]
    shards = make_shards(tmp, docs)
    index = json.loads((shards / "index.json").read_text())  # the full accounting `shards info` prints
    index["accounting"].update(segments=index["totals"]["rows"], tokens=index["totals"]["tokens"])
    (shards / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
    (tmp / "spec.toml").write_text(SPEC)
    mdir = manifests.build(tmp / "spec.toml", shards, tmp / "m")
    res = runner.invoke(app, ["train", str(mdir), "--out", str(tmp / "run"), *TRAIN_ARGS])
    assert res.exit_code == 0, res.output
    (tmp / "sweep.toml").write_text(SWEEP)
    return {"shards": shards, "manifest": mdir, "run": tmp / "run", "spec": tmp / "spec.toml",
            "sweep": tmp / "sweep.toml"}


def _target(root: Path) -> Path:
    """The shard file every tamper hits: the one the manifest reads most of (all of it is referenced)."""
    return root / "data/source=web/part-00000.parquet"


def _flip(root: Path) -> None:
    p = _target(root)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))


def _rewrite(root: Path) -> None:
    """Valid Parquet, same schema and row count, the token ids reordered (texts and hashes left as they were)."""
    p = _target(root)
    table = pq.read_table(p)
    tokens = table.column("tokens").combine_chunks()
    values = tokens.values.to_numpy()[::-1].copy()  # the same ids (all in the vocabulary), in another order
    new = pa.ListArray.from_arrays(tokens.offsets, pa.array(values, tokens.values.type))
    table = table.set_column(table.schema.get_field_index("tokens"), table.schema.field("tokens"),
                             new.cast(table.schema.field("tokens").type))
    pq.write_table(table, p, **PARQUET_OPTS)


def _index_edit(root: Path, edit: Callable[[dict], None]) -> None:
    path = root / "index.json"
    index = json.loads(path.read_text())
    for f in index["files"]:
        if root / f["path"] == _target(root):
            edit(f)
    path.write_text(json.dumps(index, indent=2, sort_keys=True))


def _rehash(root: Path) -> None:
    _rewrite(root)
    p = _target(root)
    _index_edit(root, lambda f: f.update(sha256=sha256_file(p), bytes=p.stat().st_size))


def _escape(root: Path) -> None:
    outside = root.parent / "outside"
    outside.mkdir()
    shutil.copy(_target(root), outside / "x.parquet")
    _index_edit(root, lambda f: f.update(path="../outside/x.parquet"))


TAMPERS: dict[str, Callable[[Path], None]] = {"flip": _flip, "rewrite": _rewrite, "rehash": _rehash,
                                              "escape": _escape}


def _commands(b: dict[str, Path], other: Path, tmp: Path) -> dict[str, tuple[list[str], bool]]:
    """name → (arguments, whether it has a manifest to catch an index re-hashed to match a rewritten file)."""
    m, run = str(b["manifest"]), str(b["run"])
    s = str(other)
    return {
        "train": (["train", m, "--shards", s, "--out", str(tmp / "r"), *TRAIN_ARGS], True),
        "export nanogpt": (["manifest", "export", m, "--format", "nanogpt", "--shards", s, "--out",
                            str(tmp / "nb")], True),
        "export megatron": (["manifest", "export", m, "--format", "megatron", "--shards", s, "--out",
                             str(tmp / "mg.bin")], True),
        "export jsonl": (["manifest", "export", m, "--format", "jsonl", "--shards", s, "--out",
                          str(tmp / "x.jsonl")], True),
        "manifest verify": (["manifest", "verify", m, "--shards", s], True),
        "probe": (["probe", run, "--shards", s, "--probes", "bpb", "--heldout-fraction", "0.2", "--out",
                   str(tmp / "p.parquet")], False),
        "probe --manifest": (["probe", run, "--shards", s, "--probes", "bpb", "--heldout-fraction", "0.2",
                              "--manifest", m, "--out", str(tmp / "p.parquet")], True),
        "shards info": (["shards", "info", s], False),
        "classify rates": (["classify", "rates", s], False),
        "audit --strict": (["audit", s, "SELECT count(*) AS n FROM segments", "--strict", "--format", "csv"], False),
        "audit --manifest --strict": (["audit", s, "SELECT count(*) AS n FROM entries", "--manifest", m,
                                       "--strict", "--format", "csv"], True),
        "mix": (["mix", str(b["spec"]), "--shards", s, "--out", str(tmp / "m2")], False),
        "mix plan": (["mix", "plan", str(b["spec"]), "--shards", s], False),
        "sweep": (["sweep", "run", str(b["sweep"]), "--shards", s, "--out", str(tmp / "sw"), "--quiet"], False),
    }


COMMANDS = list(_commands({"manifest": Path(), "run": Path(), "spec": Path(), "sweep": Path()}, Path(), Path()))


@pytest.mark.slow
@pytest.mark.parametrize("tamper", TAMPERS)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_reader_refuses_every_tamper(built: dict[str, Path], tmp_path: Path, command: str,
                                          tamper: str) -> None:
    other = tmp_path / "copy" / "shards"
    shutil.copytree(built["shards"], other)
    shutil.copy(built["shards"].parent / "tokenizer.json", other.parent)  # where train/sweep look for it
    TAMPERS[tamper](other)
    args, has_manifest = _commands(built, other, tmp_path)[command]
    res = runner.invoke(app, args)
    if tamper == "rehash" and not has_manifest:
        # index.json is the root of trust for bare shards: the re-hashed index describes these files exactly
        assert res.exit_code == 0, res.output
        return
    assert res.exit_code == 1, f"{command} accepted {tamper}:\n{res.output}"
    if tamper in ("rehash", "escape") and has_manifest:
        named = "index.json"  # the index is not the one the manifest recorded: refused before it is read
    else:
        named = {"escape": "outside", "rehash": "index.json"}.get(tamper, "part-00000.parquet")
    assert named in res.output.replace("\n", ""), res.output
    for made in ("r/run.json", "nb/train.bin", "nb/val.bin", "mg.bin", "mg.idx", "x.jsonl", "p.parquet",
                 "m2/manifest.json", "sw/results.parquet"):
        assert not (tmp_path / made).exists(), f"{command} wrote {made} from tampered shards"


@pytest.mark.parametrize("path", ["../outside/x.parquet", "/etc/passwd", "data/../../x.parquet", "a\\b.parquet",
                                  "", None, "link/x.parquet"])
def test_index_load_refuses_paths_outside_the_root(tmp_path: Path, path: str | None) -> None:
    from foresight.formats.index import ShardIndex, ShardIndexError
    from foresight.formats.schema import SHARD_FORMAT

    root = tmp_path / "shards"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    entry = {"path": path, "source": None, "bytes": 0, "sha256": "0" * 64, "rows": 0, "tokens": 0}
    (root / "index.json").write_text(json.dumps({
        "format": SHARD_FORMAT, "foresight_version": "0", "tokenizer": {}, "classifier": None, "config": {},
        "files": [entry], "totals": {"files": 1, "rows": 0, "tokens": 0, "by_source": {}}, "accounting": None}))
    # a path that is not a string is refused by the key check, any other by the path guard; neither is opened
    with pytest.raises(ShardIndexError, match=r"index.json: (file|key 'files\[0\]\.path' is null)"):
        ShardIndex.load(root)
