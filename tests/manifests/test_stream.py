"""The token stream written one shard file at a time is byte for byte the spans in manifest order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from foresight import manifests
from foresight.manifests import stream
from foresight.manifests.stream import iter_token_arrays, write_token_stream
from tests.mixtures.corpus import CATEGORY_SPEC, build_corpus, write_spec


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("stream")
    shards = build_corpus(tmp, ranks=3)  # several files per source, so entries interleave files
    # more tokens than the reasoning pool holds: its rows repeat over epochs, and pools end on cut spans
    body = CATEGORY_SPEC.format(total=3001, seed=7).replace("seed = 7", "seed = 7\nmax_repetition = 4")
    spec = write_spec(tmp / "s.toml", body)
    return shards, manifests.build(spec, shards, tmp / "m")


def _in_order(shards: Path, mdir: Path) -> list[np.ndarray]:
    """The spans entry by entry in manifest order, each read from its file (the pre-streaming algorithm)."""
    _, df = manifests.read(mdir)
    tables: dict[str, list[list[int]]] = {}
    out = []
    for file, row, start, end in df.select("file", "row", "start", "end").iter_rows():
        if file not in tables:
            tables[file] = pq.read_table(shards / file, columns=["tokens"]).column("tokens").to_pylist()
        out.append(np.asarray(tables[file][row][start:end], dtype=np.uint32))
    return out


@pytest.mark.parametrize("batch_rows", [4096, 3])
def test_stream_matches_the_spans_in_manifest_order(built: tuple[Path, Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch, batch_rows: int) -> None:
    monkeypatch.setattr(stream, "STREAM_ROWS", batch_rows)  # 3: several batches per shard file
    shards, mdir = built
    _, df = manifests.read(mdir)
    assert df["file"].n_unique() > 3 and df["epoch"].max() > 0 and df["file"].to_list() != sorted(df["file"])
    want = _in_order(shards, mdir)
    lengths = write_token_stream(mdir, tmp_path / "t.u32")
    assert lengths.tolist() == [len(a) for a in want]
    assert (tmp_path / "t.u32").read_bytes() == np.concatenate(want).astype("<u4").tobytes()
    write_token_stream(mdir, tmp_path / "t.u16", np.uint16)
    assert (tmp_path / "t.u16").read_bytes() == np.concatenate(want).astype("<u2").tobytes()
    got = list(iter_token_arrays(mdir, tmp_dir=tmp_path))
    assert all(np.array_equal(a, b) and a.dtype == np.uint32 for a, b in zip(got, want, strict=True))
    assert len(got) == len(want) and [p.name for p in tmp_path.iterdir()] == ["t.u32", "t.u16"]  # temp file gone


def test_a_failed_stream_leaves_no_partial_file(built: tuple[Path, Path], tmp_path: Path) -> None:
    shards, mdir = built
    target = tmp_path / "t.u32"
    target.write_bytes(b"old")
    victim = shards / manifests.read(mdir)[1]["file"][0]
    saved = victim.read_bytes()
    victim.write_bytes(b"not parquet")  # after read() checked the index: fails mid-stream
    try:
        with pytest.raises(Exception, match="Parquet|parquet|magic"):
            write_token_stream(mdir, target)
    finally:
        victim.write_bytes(saved)
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["t.u32"]


def test_no_entries_write_an_empty_stream(tmp_path: Path) -> None:
    from types import SimpleNamespace

    empty = SimpleNamespace(lengths=np.zeros(0, np.int64), files={}, part=None)  # a scan of no entries
    lengths = stream.scatter_tokens(tmp_path, empty, tmp_path / "t.u32", np.dtype("<u4"))
    assert len(lengths) == 0 and (tmp_path / "t.u32").read_bytes() == b""

