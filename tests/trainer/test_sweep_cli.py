import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from foresight.cli import app
from foresight.trainer.probes.knowledge import load_items
from tests.helpers import TINY_SWEEP_SETTINGS, WORDS, make_shards

runner = CliRunner()
TRAIN_ARGS = ["--model", "tiny", "--seq-len", "32", "--batch-tokens", "128", "--quiet"]


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    kinds = [("code", ["code_reasoning"]), ("math", ["math_reasoning"]), ("web-crawl", ["visual_attribute"]),
             ("web-crawl", [])]
    docs = []
    for i in range(120):
        source, labels = kinds[i % 4]
        docs.append({"text": " ".join(rng.choice(WORDS, size=10)), "source": source, "labels": labels,
                     "doc_id": f"doc{i}"})
    return make_shards(tmp_path, docs)  # the tokenizer sits next to it: tmp_path/tokenizer.json


def _spec(tmp_path: Path, total: int = 300) -> Path:
    p = tmp_path / "all.toml"
    p.write_text(f'name = "all"\ntotal_tokens = {total}\nseed = 0\nexclude = ["heldout"]\nheldout_fraction = 0.2\n'
                 '[pools.all]\nwhere = "true"\nweight = 1.0\n')
    return p


def _items(tmp_path: Path) -> Path:
    p = tmp_path / "few.jsonl"
    p.write_text("\n".join(json.dumps(it) for it in load_items()[::40]))
    return p


def test_train_cli_trains_exactly_the_manifest(tmp_path: Path, shards: Path) -> None:
    from foresight import manifests
    mdir = manifests.build(_spec(tmp_path), shards, tmp_path / "m")
    res = runner.invoke(app, ["train", str(mdir), "--out", str(tmp_path / "run"), *TRAIN_ARGS])
    assert res.exit_code == 0, res.output
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["tokens_consumed"] == info["manifest"]["total_tokens"] == 300 and info["complete"]
    assert (tmp_path / "run" / "model.safetensors").is_file()

    res = runner.invoke(app, ["probe", str(tmp_path / "run"), "--shards", str(shards), "--out",
                              str(tmp_path / "p.parquet"), "--probes", "bpb", "--probes", "knowledge",
                              "--questions", str(_items(tmp_path)), "--heldout-fraction", "0.2",
                              "--manifest", str(mdir)])
    assert res.exit_code == 0, res.output
    row = pl.read_parquet(tmp_path / "p.parquet").row(0, named=True)
    assert row["bpb_overall"] > 0 and "bpb_pool_all" in row and 0 <= row["visual_knowledge_acc"] <= 1


def test_train_cli_refuses_bad_manifest_and_tokenizer(tmp_path: Path, shards: Path) -> None:
    from foresight import manifests
    from foresight.formats.tokenizer import train_tokenizer
    mdir = manifests.build(_spec(tmp_path), shards, tmp_path / "m")
    other = tmp_path / "other.json"
    train_tokenizer(["completely different text here"] * 5, vocab_size=300, min_frequency=1).save(str(other))
    res = runner.invoke(app, ["train", str(mdir), "--out", str(tmp_path / "r1"), "--tokenizer", str(other),
                              *TRAIN_ARGS])
    assert res.exit_code == 1 and "tokenizer mismatch" in res.output
    entries = mdir / "entries.parquet"
    entries.write_bytes(entries.read_bytes()[:-20] + b"x" * 20)
    res = runner.invoke(app, ["train", str(mdir), "--out", str(tmp_path / "r2"), *TRAIN_ARGS])
    assert res.exit_code == 1 and "error" in res.output
    assert not (tmp_path / "r2" / "run.json").exists()


def test_reasoning_share_sweep_three_points(tmp_path: Path, shards: Path) -> None:
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(f"""
name = "reasoning"
model = "tiny"
total_tokens = 240
swept = "reasoning"
[grid]
where = "reasoning"
shares = [0, 50, 100]
[train]
seq_len = 32
batch_tokens = 128
checkpoint_every = 0
[probe]
probes = ["bpb", "knowledge", "color"]
heldout_fraction = 0.2
color_table = "css4"
color_limit = 15
knowledge_items = "{_items(tmp_path)}"
""")
    out = tmp_path / "sw"
    res = runner.invoke(app, ["sweep", str(sweep), "--shards", str(shards), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    df = pl.read_parquet(out / "results.parquet").sort("swept_share")
    assert df["mixture"].to_list() == ["reasoning_0", "reasoning_50", "reasoning_100"]
    assert df["swept_share"].to_list() == pytest.approx([0.0, 0.5, 1.0])
    assert df["reasoning_share"].to_list() == pytest.approx([0.0, 0.5, 1.0])
    assert df["tokens"].to_list() == [240, 240, 240]
    for col in ("visual_share", "final_loss", "bpb_overall", "color_spearman", "visual_knowledge_acc",
                "manifest_sha256", "checkpoint_sha256"):
        assert col in df.columns and df[col].null_count() == 0
    assert df["manifest_sha256"].n_unique() == 3

    before = (out / "reasoning_50" / "result.json").stat().st_mtime_ns
    res = runner.invoke(app, ["sweep", "run", str(sweep), "--shards", str(shards), "--out", str(out), "--quiet"])
    assert res.exit_code == 0 and res.output.count("skipped") == 3
    assert (out / "reasoning_50" / "result.json").stat().st_mtime_ns == before

    res = runner.invoke(app, ["sweep", "plot", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "plots" / "bpb_overall.png").stat().st_size > 1000
    # the run table was printed by `sweep` already: plot prints the plot paths and the summary only
    assert "| mixture |" not in res.output and str(out / "plots" / "bpb_overall.png") in res.output
    assert (out / "plots" / "overview.png").is_file()
    md = (out / "results.md").read_text()
    assert md.split("\n\n")[0].count("\n") == 4 and "reasoning_100" in md and "Spearman ρ" in md


def test_sweep_file_errors_name_the_key(tmp_path: Path, shards: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('mixtures = ["lsbs_mix0"]\n[train]\nlearning_rate = 1\n')
    res = runner.invoke(app, ["sweep", str(bad), "--shards", str(shards), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "learning_rate" in res.output
    res = runner.invoke(app, ["sweep", "plot", str(tmp_path / "nothing")])
    assert res.exit_code == 1 and "results.parquet" in res.output


def test_bundled_sweeps_parse() -> None:
    from foresight.trainer.sweep import bundled_sweeps, load_sweep
    assert {"lsbs_mix0_vs_mix6", "lsbs_reasoning_share"} <= set(bundled_sweeps())
    s = load_sweep("lsbs_mix0_vs_mix6")
    assert [m.name for m in s.mixtures] == ["lsbs_mix0", "lsbs_mix6"] and s.total_tokens == "500K"
    assert len(load_sweep("lsbs_reasoning_share").mixtures) == 5
    for name, swept in [("visual_share", "visual"), ("reasoning_share", "reasoning"),
                        ("visual_share_quick", "visual")]:
        s = load_sweep(name)  # the effect sweeps: >= 4 points from 0 to 40 %, >= 2 seeds, bpb on all held-out text
        assert s.swept == s.grid_where == swept and len(s.seeds or []) >= 2 and len(s.mixtures) >= 4
        assert [m.nominal_share for m in s.mixtures][::len(s.mixtures) - 1] == [0, 0.4]
    with pytest.raises(FileNotFoundError, match="bundled sweep"):
        load_sweep("no_such_sweep")


def test_resume_refuses_a_run_of_another_manifest(tmp_path: Path, shards: Path) -> None:
    from foresight import manifests
    from foresight.trainer.run import train_manifest
    from foresight.trainer.train import TrainConfig
    cfg = TrainConfig(seq_len=32, batch_tokens=128, progress=False, checkpoint_every=0, stop_after=1)
    a = manifests.build(_spec(tmp_path, 300), shards, tmp_path / "a")
    b = manifests.build(_spec(tmp_path, 320), shards, tmp_path / "b")
    assert train_manifest(a, tmp_path / "run", cfg=cfg)["status"] == "paused"
    with pytest.raises(ValueError, match="different run.*manifest_sha256"):
        train_manifest(b, tmp_path / "run", cfg=cfg, resume=True)


def _seeds_sweep(tmp_path: Path, seeds: str) -> Path:
    sweep = tmp_path / "seeds.toml"
    sweep.write_text(f"""
name = "visual"
total_tokens = 240
swept = "visual"
{seeds}
[grid]
where = "visual"
shares = [0, 50]
{TINY_SWEEP_SETTINGS}""")
    return sweep


def test_seeds_train_each_mixture_once_per_seed(tmp_path: Path, shards: Path) -> None:
    sweep, out = _seeds_sweep(tmp_path, "seeds = [0, 3]"), tmp_path / "sw"
    res = runner.invoke(app, ["sweep", str(sweep), "--shards", str(shards), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    df = pl.read_parquet(out / "results.parquet").sort("mixture", "seed")
    assert df.select("mixture", "seed").rows() == [("visual_0", 0), ("visual_0", 3), ("visual_50", 0),
                                                   ("visual_50", 3)]
    assert df["visual_share"].to_list() == pytest.approx([0, 0, 0.5, 0.5])
    for m, s in df.select("mixture", "seed").rows():
        run = json.loads((out / m / f"seed-{s}" / "run" / "run.json").read_text())
        head = json.loads((out / m / f"seed-{s}" / "manifest" / "manifest.json").read_text())
        assert run["train_config"]["seed"] == s and head["seed"] == s  # model init and data selection/order
    # another seed: other weights and another manifest order for the same mixture
    assert df["checkpoint_sha256"].n_unique() == 4 and df["manifest_sha256"].n_unique() == 4
    for col in ("bpb_visual", "bpb_reasoning", "bpb_overall"):
        assert df[col].null_count() == 0
    assert df["bpb_visual_segments"].n_unique() == 1  # every run is probed on the same held-out texts

    # rerun: every (mixture, seed) skipped; one seed's result removed: only that run is redone
    (out / "visual_50" / "seed-3" / "result.json").unlink()
    res = runner.invoke(app, ["sweep", str(sweep), "--shards", str(shards), "--out", str(out), "--quiet"])
    assert res.exit_code == 0 and res.output.count("skipped") == 3 and "visual_50 seed 3: manifest" in res.output
    again = pl.read_parquet(out / "results.parquet").sort("mixture", "seed")
    assert again.select(sorted(again.columns)).equals(df.select(sorted(df.columns)))  # a deterministic redo

    res = runner.invoke(app, ["sweep", "plot", str(out)])
    assert res.exit_code == 0, res.output
    assert "Dose-response over 2 points, 2 seed(s) [0, 3]" in res.output and "Spearman ρ" in res.output
    assert (out / "plots" / "bpb_visual.png").stat().st_size > 1000
    res = runner.invoke(app, ["sweep", "summary", str(out), "--column", "bpb_visual"])
    assert res.exit_code == 0 and res.output.count(" ± ") == 3 and "bpb_overall" not in res.output, res.output


@pytest.mark.parametrize("line, message", [
    ("seeds = []", "non-empty list"),
    ("seeds = [0, 0]", "repeat"),
    ("seeds = [1.5]", "non-negative integers"),
    ("seeds = [0, 1]\nseed = 2", "not both"),
])
def test_bad_seeds_are_refused(tmp_path: Path, line: str, message: str) -> None:
    from foresight.trainer.sweep import load_sweep
    with pytest.raises(ValueError, match=message):
        load_sweep(_seeds_sweep(tmp_path, line))


@pytest.mark.parametrize("table, message", [
    ("[train]\nlr = \"fast\"", r"s.toml: \[train\] lr: expected a number, got \"fast\"$"),
    ("[train]\nlearning_rate = 0.1", r"s.toml: \[train\] learning_rate: unknown key"),
    ("[train]\nbetas = [0.9]", r"s.toml: \[train\] betas: expected a list of 2 numbers, got \[0.9\]$"),
    ("[probe]\nbpb_limit = \"all\"", r"s.toml: \[probe\] bpb_limit: expected an integer, got \"all\"$"),
    ("[probe]\nprobes = \"bpb\"", r"s.toml: \[probe\] probes: expected a list of strings, got \"bpb\"$"),
    ("[grid]\nwhere = \"reasoning\"\nshares = [0, 120]", r"s.toml: \[grid\] shares: expected numbers from 0 to 100"),
    ("[grid]\nshares = [0, 50]", r"s.toml: \[grid\] where: missing \(a SQL predicate"),
    ("total_tokens = \"lots\"", r"s.toml: total_tokens: expected a token count"),
    ("modle = \"tiny\"", r"s.toml: modle: unknown key; did you mean model\?"),
])
def test_settings_tables_are_typed(tmp_path: Path, table: str, message: str) -> None:
    """[train] and [probe] load into TrainConfig / ProbeSettings when the file is read, before any run."""
    from foresight.trainer.sweep import load_sweep
    path = tmp_path / "s.toml"
    mixtures = "" if "[grid]" in table else 'mixtures = ["lsbs_mix0"]\n'
    path.write_text(f'{mixtures}{table}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_sweep(path)


def test_summary_means_spread_and_rho() -> None:
    from foresight.trainer.summary import effect, summary_markdown
    rows = [{"swept_share": sh, "seed": sd, "bpb_visual": v}
            for sh, sd, v in [(0.0, 0, 3.0), (0.0, 1, 3.2), (0.2, 0, 2.9), (0.2, 1, 2.9), (0.4, 0, 2.5),
                              (0.4, 1, 2.9)]]
    e = effect(rows, "bpb_visual")
    assert [p.mean for p in e.points] == pytest.approx([3.1, 2.9, 2.7])
    assert [(p.lo, p.hi, p.n) for p in e.points] == [(3.0, 3.2, 2), (2.9, 2.9, 2), (2.5, 2.9, 2)]
    assert e.points[0].std == pytest.approx(0.1414, abs=1e-4) and e.rho == pytest.approx(-1.0)
    assert e.trend == "falls"
    rows[3]["bpb_visual"] = 3.5  # the 20 % point now above 0 %: no longer monotone, ρ = -0.5
    e = effect(rows, "bpb_visual")
    assert e.trend == "not monotone" and e.rho == pytest.approx(-0.5)
    assert "| 20 | 3.2000 ± 0.4243 [2.9000, 3.5000] |" in summary_markdown(rows)
    # a preset mixture's measured share differs a little by seed: still one point per mixture, at the mean share
    preset = [{"mixture": m, "seed": sd, "swept_share": sh, "bpb_visual": v}
              for m, sd, sh, v in [("a", 0, 0.10, 3.0), ("a", 1, 0.12, 3.1), ("b", 0, 0.30, 2.0), ("b", 1, 0.31, 2.2),
                                   ("c", 0, 0.50, 1.0), ("c", 1, 0.49, 1.4)]]
    e = effect(preset, "bpb_visual")
    assert [(p.share, p.n) for p in e.points] == [(pytest.approx(0.11), 2), (pytest.approx(0.305), 2),
                                                   (pytest.approx(0.495), 2)]
    assert e.rho == pytest.approx(-1.0) and e.trend == "falls"
