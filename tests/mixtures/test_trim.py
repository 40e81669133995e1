"""Out-of-core selection: trimming the candidates to what the targets can reach, while the scan streams, gives
the very manifest the whole candidate set gives (same spec, shards and seed: byte-identical entries.parquet)."""

from __future__ import annotations

from pathlib import Path

import pytest

from foresight.manifests.build import build
from foresight.mixtures import select
from tests.mixtures.corpus import build_corpus, write_spec

# random and score-ordered pools, a pool that repeats (whole passes, then a cut), precedence between
# overlapping pools, ties in the score order (score_math_reasoning takes ten values) and held-out exclusion
SPEC = """name = "trim"
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


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_corpus(tmp_path_factory.mktemp("trim"), ranks=3, n=240)


def _build(shards: Path, tmp: Path, name: str, total: int, seed: int) -> bytes:
    spec = write_spec(tmp / f"{name}.toml", SPEC.format(total=total, seed=seed))
    out = build(spec, shards, tmp / name)
    return (out / "entries.parquet").read_bytes() + (out / "manifest.json").read_bytes()


@pytest.mark.parametrize(("total", "seed"), [(900, 0), (3900, 7), (40, 3)])
def test_trimming_while_scanning_keeps_the_manifest(shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    total: int, seed: int) -> None:
    monkeypatch.setattr(select, "_trim", lambda cand, trim: (cand, {}))  # every candidate: the reference
    whole = _build(shards, tmp_path, "whole", total, seed)
    monkeypatch.undo()
    calls: list[int] = []
    dropped_on_arrival: list[int] = []
    real_trim, real_within = select._trim, select._within_cuts

    def counting(cand: select.Candidates, trim: select.Trim) -> tuple[select.Candidates, dict]:
        out, cuts = real_trim(cand, trim)
        calls.append(len(cand) - len(out))
        return out, cuts

    def within(cand: select.Candidates, cuts: dict, trim: select.Trim):  # noqa: ANN202
        keep = real_within(cand, cuts, trim)
        dropped_on_arrival.append(int((~keep).sum()))
        return keep

    monkeypatch.setattr(select, "_trim", counting)
    monkeypatch.setattr(select, "_within_cuts", within)
    monkeypatch.setattr(select, "BATCH_ROWS", 16)  # many batches: trims run while the scan streams
    monkeypatch.setattr(select, "TRIM_ROWS", 24)
    assert _build(shards, tmp_path, "trimmed", total, seed) == whole
    assert len(calls) > 2 and sum(calls) > 0  # it did trim, several times
    # and, past a pool's cut, rows were dropped as they arrived, never buffered
    assert sum(dropped_on_arrival) > 0
