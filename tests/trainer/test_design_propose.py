"""design → sweep → propose → run the proposal → plot, on a tiny budget; plus the design/propose checks."""

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import tomllib
from typer.testing import CliRunner

from foresight.cli import app
from foresight.mixtures.design import DesignError, make_constraints, swarm
from foresight.mixtures.propose import leave_one_out, r2, regressors, spearman
from tests.helpers import TINY_SWEEP_SETTINGS, WORDS, make_shards

runner = CliRunner()
BASE = """name = "cats"
total_tokens = 200
seed = 0
exclude = ["heldout"]
heldout_fraction = 0.2

[pools.reasoning]
where = "reasoning"
weight = 0.4

[pools.visual]
where = "visual AND NOT reasoning"
weight = 0.3

[pools.other]
where = "NOT reasoning AND NOT visual"
weight = 0.3
"""
LIKE = 'model = "tiny"\nmixtures = ["lsbs_mix0"]\n' + TINY_SWEEP_SETTINGS


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    kinds = [("code", ["code_reasoning"]), ("math", ["math_reasoning"]), ("web-crawl", ["visual_attribute"]),
             ("web-crawl", [])]
    docs = [{"text": " ".join(rng.choice(WORDS, size=10)), "source": kinds[i % 4][0], "labels": kinds[i % 4][1],
             "doc_id": f"doc{i}"} for i in range(120)]
    return make_shards(tmp_path, docs)


def _cli(*args: object):  # noqa: ANN202
    res = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    return res


def test_design_sweep_propose_run_plot(tmp_path: Path, shards: Path) -> None:
    from foresight import manifests
    (tmp_path / "base.toml").write_text(BASE)
    (tmp_path / "like.toml").write_text(LIKE)
    sw = tmp_path / "swarm"
    _cli("sweep", "design", tmp_path / "base.toml", "--shards", shards, "--out", sw, "-n", 4, "--seed", 3,
         "--max", "visual=0.5", "--like", tmp_path / "like.toml")
    sweep_file = tomllib.loads((sw / "sweep.toml").read_text())
    assert sweep_file["mixtures"] == [f"design/mix{i:03d}.toml" for i in range(4)]
    assert sweep_file["train"]["seq_len"] == 32 and sweep_file["probe"]["probes"] == ["bpb"]
    design = json.loads((sw / "design.json").read_text())
    assert all(w["visual"] <= 0.5 for w in design["mixtures"].values())

    _cli("sweep", sw / "sweep.toml", "--shards", shards, "--out", sw, "--quiet")
    df = pl.read_parquet(sw / "results.parquet")
    assert df.height == 4 and df["tokens"].to_list() == [200] * 4

    prop = tmp_path / "prop" / "best.toml"
    res = _cli("mix", "propose", sw, "--target", "bpb_overall", "--minimize", "--out", prop)
    assert "loglinear" in res.output and "lightgbm: not installed" in " ".join(res.output.split())
    spec_doc = tomllib.loads(prop.read_text())
    meta = spec_doc["provenance"]
    import hashlib
    assert meta["results_sha256"] == hashlib.sha256((sw / "results.parquet").read_bytes()).hexdigest()
    assert meta["regressor"] in ("linear", "loglinear") and meta["cv"] == "leave-one-out"
    assert spec_doc["pools"]["visual"]["weight"] <= 0.5  # the design's bound holds for the proposal
    # feasible and token-exact: the manifest takes exactly the budget, each pool its largest-remainder target
    header, entries = manifests.read(manifests.build(prop, shards, tmp_path / "pm"))
    assert header.total_tokens == 200 and int(entries["n_tokens"].sum()) == 200
    weights = {k: Fraction(str(v["weight"])) for k, v in spec_doc["pools"].items()}
    for name, pool in header.pools.items():
        assert pool.achieved_tokens == pool.target_tokens
        assert abs(pool.target_tokens - weights[name] * 200) < 1
        assert int(entries.filter(pl.col("pool") == name)["n_tokens"].sum()) == pool.target_tokens

    swarm_best = df["bpb_overall"].min()  # the bar the proposal has to beat, carried in its provenance
    assert meta["best_observed"] == swarm_best
    assert meta["best_observed_mixture"] == df.filter(pl.col("bpb_overall") == swarm_best)["mixture"][0]

    run = tmp_path / "prop_run"
    _cli("sweep", prop.with_name("best.sweep.toml"), "--shards", shards, "--out", run, "--quiet")
    res = _cli("sweep", "plot", run)
    achieved = pl.read_parquet(run / "results.parquet")["bpb_overall"][0]
    row = f"| best | bpb_overall | minimize | {meta['predicted']:.4f} | {achieved:.4f} | {swarm_best:.4f} |"
    assert row in res.output, res.output
    assert (run / "plots" / "predicted_vs_achieved.png").stat().st_size > 1000


def test_swarm_honours_bounds_and_repetition_cap(tmp_path: Path) -> None:
    from foresight import mixtures
    spec = mixtures.load_spec(_write(tmp_path, BASE))
    cons = make_constraints(spec, {"reasoning": 1000, "visual": 100, "other": 1000}, 200, {"other": 0.1}, {})
    d = swarm(cons, np.ones(3), 30, seed=1)
    for w in d.mixtures.values():
        assert sum(w.values()) == 1 and w["other"] >= Fraction(1, 10)
        assert w["visual"] * 200 <= 100 + 1  # at most one pass over the visual pool's 100 tokens
    tight = make_constraints(spec, {"reasoning": 10, "visual": 10, "other": 10}, 200, {}, {})
    with pytest.raises(DesignError, match="repetition cap"):
        swarm(tight, np.ones(3), 2, seed=0, max_draws=50)
    with pytest.raises(DesignError, match="no pool 'nope'"):
        make_constraints(spec, {"reasoning": 1, "visual": 1, "other": 1}, 200, {"nope": 0.1}, {})


def test_grid_drops_infeasible_points(tmp_path: Path, shards: Path) -> None:
    out = tmp_path / "grid"
    res = _cli("sweep", "design", _write(tmp_path, BASE), "--shards", shards, "--out", out,
               "--grid", "reasoning=40,60,90", "--grid", "visual=5,20", "--seeds", "0,1")
    assert "dropped reasoning90_visual20: the grid shares sum to more than 100 %" in res.output
    sweep_file = tomllib.loads((out / "sweep.toml").read_text())
    assert sweep_file["seeds"] == [0, 1] and "reasoning40_visual5" in (out / "sweep.toml").read_text()
    spec = tomllib.loads((out / "design" / "reasoning60_visual20.toml").read_text())
    assert spec["pools"]["reasoning"]["weight"] == 0.6 and spec["pools"]["other"]["weight"] == 0.2
    bad = runner.invoke(app, ["sweep", "design", str(_write(tmp_path, BASE)), "--shards", str(shards), "--out",
                              str(out), "--grid", "reasoning=40", "--max", "reasoning=x"])
    assert bad.exit_code == 1 and "--max 'reasoning=x'" in bad.output


def test_loo_scores_a_linear_law_exactly() -> None:
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(3), 12)
    y = 2.0 - 1.5 * w[:, 0] + 0.5 * w[:, 1]
    fits, notes = regressors()
    pred = leave_one_out(fits["linear"], w, y)
    assert r2(y, pred) > 0.999 and spearman(y, pred) > 0.99
    assert r2(y, np.full_like(y, y.mean())) == 0.0
    assert "lightgbm" in fits or any("lightgbm" in n for n in notes)


def test_propose_averages_seeds(tmp_path: Path) -> None:
    from foresight.mixtures.propose import load_observations
    for i, (a, b) in enumerate([(0.2, 0.8), (0.5, 0.5), (0.7, 0.3)]):
        _write(tmp_path / f"m{i}", f'total_tokens = 10\n[pools.a]\nwhere = "x"\nweight = {a}\n'
                                   f'[pools.b]\nwhere = "y"\nweight = {b}\n', "spec.toml")
    pl.DataFrame({"mixture": ["m0", "m0", "m1", "m1", "m2"], "seed": [0, 1, 0, 1, 0],
                  "bpb_overall": [1.0, 3.0, 2.0, 2.0, 5.0]}).write_parquet(tmp_path / "results.parquet")
    obs = load_observations(tmp_path, "bpb_overall")
    assert obs.mixtures == ["m0", "m1", "m2"] and obs.metric.tolist() == [2.0, 2.0, 5.0] and obs.runs == 5
    assert obs.weights[:, 0].tolist() == pytest.approx([0.2, 0.5, 0.7])
    with pytest.raises(ValueError, match="no column 'nope'"):
        load_observations(tmp_path, "nope")


def _write(d: Path, text: str, name: str = "base.toml") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(text)
    return d / name


def test_new_commands_have_examples() -> None:
    for cmd in (["sweep", "design", "--help"], ["mix", "propose", "--help"]):
        assert "Example: foresight" in runner.invoke(app, cmd, env={"COLUMNS": "200"}).output
