"""Out-of-core selection (mixtures.take, mixtures.spill): however the scan is cut into batches, flushes and
spill files, however many key ranges the entries are sorted in, and whether a random pool's band holds its cut
or the scan must run again, the manifest is the one the whole pool sorted in memory gives (byte-identical)."""

from __future__ import annotations

from pathlib import Path

import pytest

from foresight.manifests.build import build
from foresight.mixtures import planner, spill, take
from tests.mixtures.corpus import build_corpus, write_spec

# random and score-ordered pools, a pool that repeats (whole passes, then a cut), precedence between
# overlapping pools, ties in the score order (score_math_reasoning takes ten values) and held-out exclusion
SPEC = """name = "stream"
total_tokens = {total}
seed = {seed}
exclude = ["heldout"]
heldout_fraction = 0.2
precedence = ["lit", "scored", "code", "rest"]
[pools.code]
source = "code"
weight = 0.15
[pools.scored]
where = "score_math_reasoning > 0.15 AND source IN ('math', 'academic', 'encyclopedia')"
weight = 0.15
order = "score_math_reasoning desc"
[pools.lit]
source = "literature"
weight = 0.55
max_repetition = 6
[pools.rest]
where = "true"
weight = 0.15
"""
CASES = [(900, 0), (3900, 7), (40, 3)]


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_corpus(tmp_path_factory.mktemp("stream"), ranks=3, n=240)


def _build(shards: Path, tmp: Path, name: str, total: int, seed: int) -> bytes:
    spec = write_spec(tmp / f"{name}.toml", SPEC.format(total=total, seed=seed))
    out = build(spec, shards, tmp / name)
    return (out / "entries.parquet").read_bytes() + (out / "manifest.json").read_bytes()


def _whole_pool_band(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference: every random pool's band is the whole key space, so its remainder pass is sorted whole."""
    monkeypatch.setattr(take, "BAND_MARGIN", 2.0)


@pytest.mark.parametrize(("total", "seed"), CASES)
def test_tiny_batches_flushes_spill_files_and_key_ranges_keep_the_manifest(
        shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, total: int, seed: int) -> None:
    _whole_pool_band(monkeypatch)
    whole = _build(shards, tmp_path, "whole", total, seed)
    monkeypatch.undo()
    assert _build(shards, tmp_path, "default", total, seed) == whole
    for name, value in (("BATCH_ROWS", 7), ("FLUSH_ROWS", 5)):
        monkeypatch.setattr(take, name, value)
    monkeypatch.setattr(spill, "RANGE_ENTRIES", 4)  # several key ranges, some empty
    monkeypatch.setattr(spill, "HELD_BYTES", 0)  # every emitted part to a spill file of its own
    bits: list[int] = []
    monkeypatch.setattr(planner, "range_bits", lambda n: bits.append(spill.range_bits(n)) or bits[-1])
    assert _build(shards, tmp_path, "small", total, seed) == whole
    assert bits[-1] >= (2 if total > 100 else 0)


@pytest.mark.parametrize("where", ["above", "below"])
@pytest.mark.parametrize(("total", "seed"), CASES[:2])
def test_a_band_that_misses_its_cut_rescans_to_the_same_manifest(
        shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, total: int, seed: int) -> None:
    _whole_pool_band(monkeypatch)
    whole = _build(shards, tmp_path, "whole", total, seed)
    monkeypatch.undo()
    real_rules, real_rebracket = take.make_rules, take.rebracket
    missed: list[str] = []

    def wrong_band(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        rules = real_rules(*args, **kwargs)
        for r in rules:
            if r.rem and r.order is None:  # a one-key band at the top (cut below it) or bottom (above it)
                r.lo = r.hi = 2**64 - 1 if where == "below" else 0
        return rules

    monkeypatch.setattr(planner, "make_rules", wrong_band)
    monkeypatch.setattr(take, "rebracket", lambda r: missed.append(r.name) or real_rebracket(r))
    monkeypatch.setattr(spill, "HELD_BYTES", 1 << 10)  # some entries held, the rest in files
    assert _build(shards, tmp_path, "missed", total, seed) == whole
    assert missed  # the bands did miss, and the rescan put every cut back
