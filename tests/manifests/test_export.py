"""Exports: nanoGPT .bin, Megatron MMIDIDX .bin/.idx, JSONL with provenance — all the exact token stream."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from foresight import manifests
from tests.mixtures.corpus import CATEGORY_SPEC, write_spec


@pytest.fixture(scope="module")
def mdir(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("export")
    return manifests.build(write_spec(tmp / "s.toml", CATEGORY_SPEC.format(total=640, seed=1)), shards, tmp / "m")


def _stream(mdir: Path) -> np.ndarray:
    return np.concatenate(list(manifests.iter_token_arrays(mdir)))


def test_nanogpt(mdir: Path, shards: Path, tmp_path: Path) -> None:
    """The dataset directory nanoGPT's train.py reads: train.bin, val.bin (uint16 memmaps) and meta.pkl."""
    import pickle

    import duckdb

    from foresight.formats.splits import heldout_sql

    out = tmp_path / "mix"
    summary = manifests.export(mdir, "nanogpt", out)
    data = np.memmap(out / "train.bin", dtype=np.uint16, mode="r")  # vocab < 65536: what train.py memmaps
    assert summary["dtype"] == "uint16" and len(data) == 640 == summary["tokens"]
    assert np.array_equal(data, _stream(mdir))
    head, df = manifests.read(mdir)
    eos = head.tokenizer["eos_id"]
    # every whole segment ends with the shards' EOS; at most one segment per pool is cut before it
    assert len(df) - len(head.pools) <= int((data == eos).sum()) <= len(df)

    # val.bin: whole held-out segments (fraction 0.2 from the spec), never any segment of the training stream
    glob = str(shards / "data" / "**" / "*.parquet")
    rows = duckdb.sql(f"SELECT id, tokens FROM read_parquet('{glob}', hive_partitioning = false) "
                      f"WHERE {heldout_sql(0.2)} AND n_tokens > 0").fetchall()
    val = np.memmap(out / "val.bin", dtype=np.uint16, mode="r")
    assert len(val) == sum(len(t) for _, t in rows) == summary["val_tokens"] > 0
    assert sorted(val.tolist()) == sorted(t for _, toks in rows for t in toks)
    assert not {i for i, _ in rows} & set(df["id"].to_list())
    assert int((val == eos).sum()) == len(rows)

    meta = pickle.loads((out / "meta.pkl").read_bytes())
    assert meta["vocab_size"] == head.tokenizer["vocab_size"] and meta["eos_id"] == eos
    assert meta["train_tokens"] == 640 and meta["val_tokens"] == len(val) and meta["dtype"] == "uint16"

    with pytest.raises(ValueError, match="dataset directory"):
        manifests.export(mdir, "nanogpt", tmp_path / "train.bin")


def test_nanogpt_val_never_repeats_training_segments(shards: Path, tmp_path: Path) -> None:
    """A spec that does not exclude the held-out split trains on some held-out segments: val.bin leaves them out."""
    import duckdb

    from foresight.formats.splits import heldout_sql

    body = CATEGORY_SPEC.format(total=2000, seed=1).replace('exclude = ["heldout"]', "exclude = []")
    mdir = manifests.build(write_spec(tmp_path / "s.toml", body), shards, tmp_path / "m")
    trained = set(manifests.read(mdir)[1]["id"].to_list())
    glob = str(shards / "data" / "**" / "*.parquet")
    rows = duckdb.sql(f"SELECT id, n_tokens FROM read_parquet('{glob}', hive_partitioning = false) "
                      f"WHERE {heldout_sql(0.2)} AND n_tokens > 0").fetchall()
    assert {i for i, _ in rows} & trained  # the case under test: some held-out segments were trained on
    summary = manifests.export(mdir, "nanogpt", tmp_path / "out")
    assert summary["val_tokens"] == sum(n for i, n in rows if i not in trained)


def test_id_set_is_exact_even_when_keys_collide(monkeypatch: pytest.MonkeyPatch) -> None:
    """The validation split's trained-id lookup matches ids, not their 64-bit keys: forced collisions included."""
    import importlib

    import pyarrow as pa

    export_mod = importlib.import_module("foresight.manifests.export")  # the package exports a function `export`
    monkeypatch.setattr(export_mod, "stable_keys", lambda ids, seed: np.array(  # 3 keys for 9 ids
        [len(s) % 3 for s in pa.chunked_array([ids]).to_pylist()], dtype=np.uint64))
    trained = pa.array(["a", "bb", "ccc", "dddd", "x"])
    seen = export_mod.IdSet(trained)
    batch = pa.array(["a", "b", "bb", "ccc", "cc", "dddd", "eeeee", "x", "yy"], pa.large_string())
    assert seen.contains(batch).tolist() == [True, False, True, True, False, True, False, True, False]
    assert not export_mod.IdSet(pa.array([], pa.string())).contains(batch).any()


def _read_mmidx(prefix: Path) -> tuple[np.dtype, np.ndarray, np.ndarray, np.ndarray]:
    raw = (prefix.parent / (prefix.name + ".idx")).read_bytes()
    assert raw[:9] == b"MMIDIDX\x00\x00" and struct.unpack("<Q", raw[9:17])[0] == 1
    dtype = {8: np.uint16, 4: np.int32}[raw[17]]
    n_seq, n_doc = struct.unpack("<QQ", raw[18:34])
    off = 34
    lengths = np.frombuffer(raw, np.int32, n_seq, off)
    off += 4 * n_seq
    pointers = np.frombuffer(raw, np.int64, n_seq, off)
    off += 8 * n_seq
    docs = np.frombuffer(raw, np.int64, n_doc, off)
    assert off + 8 * n_doc == len(raw)
    return np.dtype(dtype), lengths, pointers, docs


def test_megatron(mdir: Path, tmp_path: Path) -> None:
    manifests.export(mdir, "megatron", tmp_path / "mix.bin")
    dtype, lengths, pointers, docs = _read_mmidx(tmp_path / "mix")
    _, df = manifests.read(mdir)
    assert dtype == np.uint16 and lengths.tolist() == df["n_tokens"].to_list()
    assert docs.tolist() == list(range(len(df) + 1))
    data = np.fromfile(tmp_path / "mix.bin", dtype=dtype)
    arrays = list(manifests.iter_token_arrays(mdir))
    for i in (0, 7, len(df) - 1):
        start = pointers[i] // dtype.itemsize
        assert np.array_equal(data[start:start + lengths[i]], arrays[i])


def test_jsonl(mdir: Path, tmp_path: Path) -> None:
    manifests.export(mdir, "jsonl", tmp_path / "mix.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "mix.jsonl").read_text().splitlines()]
    _, df = manifests.read(mdir)
    assert len(lines) == len(df) and [x["id"] for x in lines] == df["id"].to_list()
    first = lines[0]
    assert {"pool", "doc_id", "file", "row", "start", "end", "epoch", "text", "source", "partial"} <= set(first)
    import hashlib
    assert hashlib.sha256(first["text"].encode()).hexdigest() == first["text_sha256"]
    assert sum(x["partial"] for x in lines) <= len({x["pool"] for x in lines})


def test_unknown_format(mdir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown export format 'hdf5'"):
        manifests.export(mdir, "hdf5", tmp_path / "x")
