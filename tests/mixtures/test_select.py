"""Exactness and determinism of the selection (docs/mixtures.md), each point a test."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from foresight import manifests
from foresight.formats.index import ShardIndexError
from foresight.formats.splits import heldout_sql
from foresight.mixtures import InfeasibleError, OverlapError, load_spec, plan
from tests.mixtures.corpus import CATEGORY_SPEC, build_corpus, write_spec


def _spec(tmp: Path, total: int | str = 900, seed: int = 0) -> Path:
    value = f'"{total}"' if isinstance(total, str) else total
    return write_spec(tmp / f"s{total}_{seed}.toml", CATEGORY_SPEC.format(total=value, seed=seed))


def _entries(p) -> pl.DataFrame:  # noqa: ANN001
    """The plan's entries in training order: pool index, position (``idx``), span, epoch and the segment's
    tokens (``seg``, from the shards), plus the segment's id and order score."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from foresight.formats.shardio import ROW_BITS, ROW_MASK

    spilled = pa.concat_tables(list(p.entries())) if p.n_entries else None
    if spilled is None:
        return pl.DataFrame(schema={"pool": pl.Int16, "idx": pl.Int64, "start": pl.Int32, "end": pl.Int32,
                                    "epoch": pl.Int32, "seg": pl.Int64, "id": pl.Utf8})
    pos = spilled.column("pos").to_numpy()
    n_tok = [pq.read_table(f, columns=["n_tokens"]).column(0).to_numpy() for f in p.shards.files]
    seg = np.array([n_tok[f][r] for f, r in zip(pos >> ROW_BITS, pos & ROW_MASK, strict=True)], dtype=np.int64)
    return pl.DataFrame({"pool": spilled.column("pool").to_numpy(), "idx": pos,
                         "start": np.zeros(len(pos), np.int32), "end": spilled.column("end").to_numpy(),
                         "epoch": spilled.column("epoch").to_numpy(), "seg": seg,
                         "id": spilled.column("id").to_pylist()})


@pytest.mark.parametrize("total,seed", [(900, 0), (901, 1), (333, 7), (1, 3)])
def test_pool_totals_are_exact(shards: Path, tmp_path: Path, total: int, seed: int) -> None:
    p = plan(_spec(tmp_path, total, seed), shards)
    df = _entries(p)
    assert sum(pp.target_tokens for pp in p.pools) == total
    for i, pp in enumerate(p.pools):
        mine = df.filter(pl.col("pool") == i)
        assert int((mine["end"] - mine["start"]).sum() or 0) == pp.target_tokens == pp.achieved_tokens
        assert int((mine["end"] - mine["start"] < mine["seg"]).sum()) <= 1  # at most one cut per pool
    assert (df["start"] >= 0).all() and (df["end"] > df["start"]).all() and (df["end"] <= df["seg"]).all()
    assert int((df["end"] - df["start"]).sum()) == total


def test_same_inputs_give_identical_bytes(shards: Path, tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    a = manifests.build(spec, shards, tmp_path / "a")
    b = manifests.build(spec, shards, tmp_path / "b", threads=1)
    c = manifests.build(spec, shards, tmp_path / "c", threads=2)
    for name in ("manifest.json", "entries.parquet"):
        assert (a / name).read_bytes() == (b / name).read_bytes() == (c / name).read_bytes()


def test_other_seed_changes_selection_not_totals(shards: Path, tmp_path: Path) -> None:
    p0, p1 = plan(_spec(tmp_path, seed=0), shards), plan(_spec(tmp_path, seed=1), shards)
    assert [pp.achieved_tokens for pp in p0.pools] == [pp.achieved_tokens for pp in p1.pools]
    assert _entries(p0)["idx"].to_list() != _entries(p1)["idx"].to_list()


def test_independent_of_file_layout_and_listing_order(tmp_path: Path) -> None:
    one = build_corpus(tmp_path, "one", ranks=1)
    three = build_corpus(tmp_path, "three", ranks=3)
    # same rows, listed in reverse in index.json
    idx = json.loads((three / "index.json").read_text())
    idx["files"] = idx["files"][::-1]
    (three / "index.json").write_text(json.dumps(idx))
    spec = _spec(tmp_path)
    cols = ["order", "pool", "id", "start", "end", "epoch", "text_sha256"]
    ea = pl.read_parquet(manifests.build(spec, one, tmp_path / "m1") / "entries.parquet").select(cols)
    eb = pl.read_parquet(manifests.build(spec, three, tmp_path / "m3") / "entries.parquet").select(cols)
    assert ea.equals(eb)


def test_repetition_whole_passes_then_seeded_remainder(shards: Path, tmp_path: Path) -> None:
    body = ('total_tokens = {t}\nseed = 2\n[pools.code]\nwhere = "source = \'code\'"\nweight = 1\n'
            'max_repetition = 3\n')
    avail = plan(write_spec(tmp_path / "probe.toml", body.format(t=10)), shards).pools[0].available_tokens
    target = 2 * avail + avail // 3
    p = plan(write_spec(tmp_path / "rep.toml", body.format(t=target)), shards)
    df = _entries(p)
    assert p.pools[0].achieved_tokens == target and p.pools[0].epochs == 3
    n_segs = p.pools[0].available_segments
    for epoch in (0, 1):  # whole passes: every segment exactly once, uncut
        ep = df.filter(pl.col("epoch") == epoch)
        assert ep["idx"].n_unique() == len(ep) == n_segs and (ep["end"] == ep["seg"]).all()
    rem = df.filter(pl.col("epoch") == 2)
    assert int((rem["end"] - rem["start"]).sum()) == avail // 3 and rem["idx"].n_unique() == len(rem)
    with pytest.raises(InfeasibleError, match=f"pool 'code' needs {3 * avail + 1} tokens but only {avail}"):
        plan(write_spec(tmp_path / "over.toml", body.format(t=3 * avail + 1)), shards)


def test_without_repetition_no_segment_repeats(shards: Path, tmp_path: Path) -> None:
    p = plan(_spec(tmp_path, total="max"), shards)
    df = _entries(p)
    assert df["idx"].n_unique() == len(df) and (df["epoch"] == 0).all()
    with pytest.raises(InfeasibleError, match=r"pool '\w+' needs \d+ tokens but only \d+ are available"):
        plan(_spec(tmp_path, total=p.total_tokens * 2), shards)


def test_overlapping_pools_refused_unless_precedence(shards: Path, tmp_path: Path) -> None:
    body = ('total_tokens = 300\n{prec}[pools.reason]\nwhere = "reasoning"\nweight = 0.5\n'
            '[pools.code]\nwhere = "source = \'code\'"\nweight = 0.5\n')
    with pytest.raises(OverlapError, match=r"pools \['reason', 'code'\] overlap: segment 'd\d+#0'"):
        plan(write_spec(tmp_path / "o.toml", body.format(prec="")), shards)
    p = plan(write_spec(tmp_path / "p.toml", body.format(prec='precedence = ["code", "reason"]\n')), shards)
    assert p.pools[1].available_segments > 0 and sum(pp.achieved_tokens for pp in p.pools) == 300
    # a code segment with the reasoning flag matches both pools and goes to the first in precedence: code
    from foresight.formats.shardio import ROW_BITS
    from foresight.mixtures import sandbox
    from foresight.mixtures.planner import _totals

    spec = load_spec(tmp_path / "p.toml")
    con = sandbox.connect(p.shards.files, spec.heldout_fraction)
    assert _totals(con, spec, p.shards)[1].overlaps > 0  # overlaps exist, so precedence decided something
    df = _entries(p)
    in_code = np.array(["source=code" in p.shards.relpaths[f] for f in df["idx"].to_numpy() >> ROW_BITS])
    assert (df["pool"].to_numpy()[in_code] == 1).all() and (df["pool"].to_numpy()[~in_code] == 0).all()
    assert in_code.any() and (~in_code).any()


def test_excluded_documents_never_appear(tmp_path: Path) -> None:
    shards = build_corpus(tmp_path, n=150)
    spec = _spec(tmp_path, total="max")
    spec.write_text(spec.read_text().replace('exclude = ["heldout"]', 'exclude = ["heldout", "source = \'math\'"]'))
    out = manifests.build(spec, shards, tmp_path / "m")
    entries, rows = str(out / "entries.parquet"), f"{shards}/data/*/*.parquet"
    con = duckdb.connect()
    held = con.execute(f"SELECT count(*) FROM read_parquet('{rows}') WHERE {heldout_sql(0.2)}").fetchone()[0]
    assert held > 0  # the split is not empty, so the check below can fail
    bad = con.execute(f"SELECT count(*) FROM read_parquet('{entries}') e JOIN read_parquet('{rows}') s "
                      f"ON e.id = s.id WHERE {heldout_sql(0.2, 'e.doc_id')} OR s.source = 'math'").fetchone()[0]
    assert bad == 0
    assert con.execute(f"SELECT count(*) FROM read_parquet('{entries}')").fetchone()[0] > 0


def test_score_order_takes_best_first(shards: Path, tmp_path: Path) -> None:
    body = ('total_tokens = 200\n[pools.m]\nwhere = "true"\nweight = 1\norder = "score_math_reasoning desc"\n')
    p = plan(write_spec(tmp_path / "s.toml", body), shards)
    ids = _entries(p)["id"]
    every = pl.read_parquet(shards / "data" / "*" / "*.parquet", hive_partitioning=False)
    taken, rest = every.filter(pl.col("id").is_in(ids.implode())), every.filter(~pl.col("id").is_in(ids.implode()))
    assert len(taken) == len(ids) > 0
    assert taken["score_math_reasoning"].min() >= rest["score_math_reasoning"].max()


def test_source_aliases_and_missing_source(shards: Path, tmp_path: Path) -> None:
    body = ('total_tokens = 100\n[pools.acad]\nsource = "academia"\nweight = 0.5\n'
            '[pools.x]\nsource = "{s}"\nweight = 0.5\n')
    p = plan(write_spec(tmp_path / "a.toml", body.format(s="mathematics")), shards)
    assert p.pools[0].where == "source IN ('academic')" and p.pools[1].where == "source IN ('math')"
    with pytest.raises(ValueError, match="pool 'x': source 'q-a forum' has no data"):
        plan(write_spec(tmp_path / "b.toml", body.format(s="q-a forum")), shards)


def test_changed_shard_refused_with_file_named(tmp_path: Path) -> None:
    shards = build_corpus(tmp_path)
    victim = sorted((shards / "data").rglob("*.parquet"))[0]
    victim.write_bytes(victim.read_bytes() + b"x")
    with pytest.raises(ShardIndexError, match=f"{victim.parent.name}/{victim.name}"):
        plan(_spec(tmp_path), shards)


def test_presets_plan_on_a_labelled_corpus(shards: Path) -> None:
    for name in ("lsbs_mix0", "lsbs_mix6", "lsbs_vision_r60_v15", "lsbs_sweep_visual_25"):
        p = plan(load_spec(name), shards)
        assert sum(pp.achieved_tokens for pp in p.pools) == p.total_tokens > 0
    p = plan(load_spec("lsbs_sweep_reasoning_75", total_tokens=400), shards)
    assert p.shares["reasoning"] == 0.75


def test_radix_argsort_equals_numpys_stable_argsort() -> None:
    """The selection's key sort must equal np.argsort(kind="stable"), ties and shared top bits included."""
    from foresight.mixtures.select import RADIX_MIN, argsort_keys

    rng = np.random.default_rng(1)
    n = RADIX_MIN * 3
    keys = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    keys[:500] = keys[500:1000]  # duplicate keys: stability decides their order
    top = np.uint64(0xDEADBEEF) << np.uint64(32)
    keys[1000:1100] = top | rng.integers(0, 2**32, 100, dtype=np.uint64)  # one run sharing the top 32 bits
    keys[1100:1200] = rng.integers(0, 2**16, 100, dtype=np.uint64)  # top bits all zero
    rng.shuffle(keys)
    assert np.array_equal(argsort_keys(keys), np.argsort(keys, kind="stable"))
    same = np.full(n, 7, dtype=np.uint64)
    assert np.array_equal(argsort_keys(same), np.arange(n))


def test_order_keys_do_not_depend_on_string_layout() -> None:
    """Keys of DuckDB's streamed chunks (32-bit offsets) equal those of one large_string array."""
    import pyarrow as pa

    from foresight.mixtures.select import KEY_CHUNK, stable_keys

    ids = [f"doc{i}#{i % 3}" for i in range(KEY_CHUNK * 2 + 17)] + ["", "ü-unicode#0"]
    whole = stable_keys(pa.array(ids, pa.large_string()), 5)
    cut = KEY_CHUNK + 3
    chunked = pa.chunked_array([pa.array(ids[:cut], pa.string()), pa.array(ids[cut:], pa.string())])
    assert np.array_equal(stable_keys(chunked, 5), whole)
    assert np.array_equal(stable_keys(pa.array(ids, pa.string()).slice(4), 5), whole[4:])


@pytest.mark.parametrize("n_pools", [9, 40])
def test_many_pools_use_a_wide_enough_mask(tmp_path: Path, n_pools: int) -> None:
    """The pool bitmask narrows with the pool count; the highest pool's bit and overlaps are still seen."""
    from foresight.mixtures import sandbox
    from foresight.mixtures.planner import _precedence, _totals
    from foresight.mixtures.select import candidate_query, mask_type
    from foresight.mixtures.shards import open_shards

    shards = open_shards(build_corpus(tmp_path, n=60), verify=False)
    body = "total_tokens = 100\n" + "".join(
        f'[pools.p{i}]\nwhere = "n_tokens % {n_pools - 1} = {i}"\nweight = 1\n' for i in range(n_pools - 1))
    body += '[pools.last]\nwhere = "n_tokens > 0"\nweight = 1\n'
    spec = load_spec(write_spec(tmp_path / "many.toml", body), normalize=True)
    con = sandbox.connect(shards.files, spec.heldout_fraction)
    with pytest.raises(OverlapError, match=r"pools \['p\d+', 'last'\] overlap"):
        _totals(con, spec, shards)
    names = [f"p{i}" for i in range(n_pools - 1)] + ["last"]
    prec = "precedence = [" + ", ".join(f'"{n}"' for n in names) + "]\n"
    spec = load_spec(write_spec(tmp_path / "prec.toml", prec + body), normalize=True)
    exprs, totals = _totals(con, spec, shards)
    scan = con.sql(candidate_query(exprs, [], [], [], _precedence(spec))).to_arrow_reader(1 << 20).read_all()
    mask, pool = scan.column("m").to_numpy(), scan.column("p").to_numpy()
    assert sum(totals.segments) == len(mask) and totals.overlaps == len(mask)  # all match "last" too
    assert mask.dtype == mask_type(n_pools)[1] and mask.dtype.itemsize * 8 >= n_pools
    assert len(mask) > 0 and (mask >> (n_pools - 1) & 1).all()  # every segment matches the last pool
    assert (pool < n_pools - 1).all()  # ... which comes last in precedence
