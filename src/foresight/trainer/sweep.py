"""Pretrain-and-probe sweeps (docs/trainer.md, LSBS Fig. 3/10): for each mixture, manifest → train → probe → one row.

Sweep file (TOML)::

    name = "reasoning"
    model = "tiny"              # preset or LlamaConfig JSON
    total_tokens = "200K"       # same budget for every mixture; omitted: the smallest "max" of the mixtures
    swept = "reasoning"         # the x-axis: a manifest share (reasoning, visual) or the grid's nominal share
    seeds = [0, 1]              # optional: every mixture once per seed (model init, manifest selection and order)
    mixtures = ["lsbs_sweep_reasoning_0", "specs/my_mix.toml"]   # presets or spec files, or instead:
    [grid]                      # one pool `where` at each share, the rest `NOT (where)`
    where = "reasoning"
    shares = [0, 25, 50, 75, 100]   # percent
    [train]                     # TrainConfig fields (seq_len, batch_tokens, lr, epochs, max_steps, ...)
    [probe]                     # run_probes options (probes, color_table, color_limit, bpb_limit, ...)

``SWEEP_DIR/<mixture>/{spec.toml, manifest/, run/, result.json}`` (with ``seeds``: ``manifest/``, ``run/`` and
``result.json`` move to ``SWEEP_DIR/<mixture>/seed-<s>/``) and ``SWEEP_DIR/results.parquet``, one row per
(mixture, seed). A run whose ``result.json`` carries the same configuration key is skipped on rerun.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomllib

from foresight.formats.atomic import write_json_atomic
from foresight.formats.errors import InputError
from foresight.formats.index import index_sha256
from foresight.formats.schema import RESULTS_FILE
from foresight.formats.tables import from_table

SWEEP_KEYS = {"name", "model", "total_tokens", "seed", "seeds", "swept", "mixtures", "grid", "train", "probe"}
BUNDLED = Path(__file__).resolve().parent / "sweeps"
PATH_KEYS = ("knowledge_items", "vision_model", "pairs")  # [probe] paths, relative to the sweep file


@dataclass
class SweepMixture:
    name: str
    spec: str  # preset name or path
    nominal_share: float | None = None


@dataclass
class Sweep:
    name: str
    model: str
    total_tokens: str | int | None
    seed: int | None
    swept: str
    mixtures: list[SweepMixture]
    train: dict[str, Any] = field(default_factory=dict)
    probe: dict[str, Any] = field(default_factory=dict)
    grid_where: str | None = None
    seeds: list[int] | None = None  # None: one run per mixture (the `seed` key and [train] seed, as before)

    def runs(self) -> list[tuple[SweepMixture, int | None]]:
        """(mixture, seed) pairs in run order; the seed is None for a single-seed sweep."""
        return [(m, s) for m in self.mixtures for s in (self.seeds or [None])]


def run_dir(out: Path, m: SweepMixture, seed: int | None) -> Path:
    """Where one run's manifest/, run/ and result.json live: the mixture's folder, or its seed-<s>/ sub-folder."""
    return out / m.name if seed is None else out / m.name / f"seed-{seed}"


def _parse_seeds(data: dict[str, Any], train: dict[str, Any], path: Path) -> list[int] | None:
    """``seeds = [0, 1]``: distinct non-negative ints; it replaces both the `seed` key and [train] seed."""
    if "seeds" not in data:
        return None
    seeds = data["seeds"]
    if (not isinstance(seeds, list) or not seeds
            or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds)):
        raise InputError(f"sweep {path}: seeds must be a non-empty list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise InputError(f"sweep {path}: seeds repeat ({seeds})")
    # one seed drives the manifest and the model; a second, fixed one would make the spread mean something else
    if "seed" in data or "seed" in train:
        raise InputError(f"sweep {path}: give `seeds = [...]` or `seed` / [train] seed, not both")
    return seeds


def _slug(s: str) -> str:
    # no leading dot: a mixture named `...toml` must not become the directory `..` (outside --out)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_.") or "mixture"


def bundled_sweeps() -> list[str]:
    return sorted(p.stem for p in BUNDLED.glob("*.toml"))


def resolve_sweep_path(sweep: str | Path) -> Path:
    """A sweep file, or the name of one bundled in ``trainer/sweeps/`` (e.g. ``lsbs_mix0_vs_mix6``)."""
    path = Path(sweep)
    if path.is_file():
        return path
    if "/" not in str(sweep) and (BUNDLED / f"{sweep}.toml").is_file():
        return BUNDLED / f"{sweep}.toml"
    raise FileNotFoundError(f"sweep {sweep} is neither a file nor a bundled sweep ({', '.join(bundled_sweeps())})")


def load_sweep(path: str | Path) -> Sweep:
    """Parse and validate a sweep file (or bundled sweep name); errors name the file and key."""
    from foresight.trainer.probe import ProbeSettings
    from foresight.trainer.train import TrainConfig
    path = resolve_sweep_path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, RecursionError) as e:  # RecursionError: nested too deeply
        raise InputError(f"sweep {path}: cannot read TOML ({e})") from None
    unknown = set(data) - SWEEP_KEYS
    if unknown:
        raise InputError(f"sweep {path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(SWEEP_KEYS)}")
    if ("mixtures" in data) == ("grid" in data):
        raise InputError(f"sweep {path}: give exactly one of `mixtures = [...]` or a `[grid]` table")
    train = dict(data.get("train", {}))
    from_table(TrainConfig, train, f"sweep {path} [train]")  # names and types, before any run starts
    probe = dict(data.get("probe", {}))
    for key in PATH_KEYS:
        if isinstance(probe.get(key), str):
            probe[key] = str((path.parent / probe[key]).resolve())
    from_table(ProbeSettings, probe, f"sweep {path} [probe]")
    grid_where = None
    if "grid" in data:
        grid = data["grid"]
        grid_where = grid.get("where")
        shares = grid.get("shares")
        if not isinstance(grid_where, str) or not isinstance(shares, list) or not shares:
            raise InputError(f"sweep {path}: [grid] needs where = \"SQL predicate\" and shares = [percent, ...]")
        if any(not isinstance(s, (int, float)) or not 0 <= s <= 100 for s in shares):
            raise InputError(f"sweep {path}: [grid] shares must be percentages in [0, 100]")
        label = _slug(data.get("swept", grid_where))
        mixtures = [SweepMixture(f"{label}_{s:g}", "", s / 100) for s in shares]
    else:
        items = data["mixtures"]
        if not isinstance(items, list) or not all(isinstance(m, str) for m in items) or not items:
            raise InputError(f"sweep {path}: mixtures must be a non-empty list of presets or spec paths")
        mixtures = []
        for m in items:
            spec = str((path.parent / m).resolve()) if (path.parent / m).is_file() else m
            mixtures.append(SweepMixture(_slug(Path(m).stem if m.endswith(".toml") else m), spec))
    names = [m.name for m in mixtures]
    if len(set(names)) != len(names):
        raise InputError(f"sweep {path}: mixture names repeat ({names})")
    seeds = _parse_seeds(data, train, path)
    return Sweep(str(data.get("name", path.stem)), str(data.get("model", "tiny")), data.get("total_tokens"),
                 data.get("seed"), str(data.get("swept", "reasoning")), mixtures, train, probe, grid_where, seeds)


def grid_spec_text(name: str, where: str, share: float, seed: int, heldout_fraction: float | None = None) -> str:
    """A two-pool spec: ``where`` at ``share`` of the tokens, the rest from ``NOT (where)``."""
    pools = []
    if share > 0:
        pools.append(f'[pools.swept]\nwhere = {json.dumps(where)}\nweight = {share!r}\n')
    if share < 1:
        pools.append(f'[pools.rest]\nwhere = {json.dumps(f"NOT ({where})")}\nweight = {1 - share!r}\n')
    heldout = f"heldout_fraction = {heldout_fraction!r}\n" if heldout_fraction is not None else ""
    return (f'name = "{name}"\ndescription = "sweep grid point: {share:.0%} {where}"\ntotal_tokens = "max"\n'
            f'seed = {seed}\nexclude = ["heldout"]\n{heldout}\n' + "\n".join(pools))


def _spec_paths(sweep: Sweep, out: Path) -> dict[str, Path]:
    """Each mixture's spec file, copied/generated into SWEEP_DIR/<mixture>/spec.toml."""
    from foresight.mixtures.spec import resolve_spec_path
    paths = {}
    for m in sweep.mixtures:
        target = out / m.name / "spec.toml"
        target.parent.mkdir(parents=True, exist_ok=True)
        if sweep.grid_where is not None:
            text = grid_spec_text(m.name, sweep.grid_where, float(m.nominal_share or 0), sweep.seed or 0,
                                  sweep.probe.get("heldout_fraction"))
        else:
            text = resolve_spec_path(m.spec).read_text(encoding="utf-8")
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        paths[m.name] = target
    return paths


def common_total(sweep: Sweep, specs: dict[str, Path], shards: Path) -> int | str:
    """The sweep's token budget: the configured one, else the smallest feasible maximum over its mixtures."""
    if sweep.total_tokens is not None:
        return sweep.total_tokens
    from foresight.mixtures import load_spec, plan
    # the budget must be feasible for every seed's selection; the maximum does not depend on the seed
    seed = sweep.seeds[0] if sweep.seeds else sweep.seed
    return min(plan(load_spec(p, total_tokens="max", seed=seed), shards).total_tokens for p in specs.values())


def _key(sweep: Sweep, spec: Path, total: int | str, shards: Path, seed: int | None) -> str:
    # a single-seed sweep keeps its old key, so finished runs from before `seeds` existed are still skipped
    blob = json.dumps({"spec": spec.read_text(encoding="utf-8"), "total": total, "model": sweep.model,
                       "seed": sweep.seed if seed is None else seed, "train": sweep.train, "probe": sweep.probe,
                       "shards": index_sha256(shards)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _seeds_of(sweep: Sweep, seed: int | None) -> tuple[int | None, int]:
    """(manifest seed, model seed) of one run: both ``seed`` with `seeds`, else the sweep's and [train]'s."""
    if seed is not None:
        return seed, seed
    return sweep.seed, int(sweep.train.get("seed", 0))


def run_mixture(sweep: Sweep, m: SweepMixture, spec: Path, total: int | str, shards: Path, out: Path, *,
                tokenizer: Path | None, device: str, progress: bool, seed: int | None = None) -> dict[str, Any]:
    """manifest → train → probe for one mixture and seed; returns its results row."""
    from foresight import manifests
    from foresight.formats.hashing import sha256_file
    from foresight.formats.manifest import ManifestHeader
    from foresight.mixtures import load_spec
    from foresight.trainer.probe import ProbeSettings, pools_from_manifest, run_probes
    from foresight.trainer.run import train_manifest
    from foresight.trainer.train import TrainConfig

    base = run_dir(out, m, seed)
    mdir, rdir = base / "manifest", base / "run"
    shutil.rmtree(mdir, ignore_errors=True)
    shutil.rmtree(rdir, ignore_errors=True)
    manifest_seed, model_seed = _seeds_of(sweep, seed)
    manifests.build(load_spec(spec, total_tokens=total, seed=manifest_seed), shards, mdir, overwrite=True)
    cfg = replace(from_table(TrainConfig, sweep.train, f"sweep {sweep.name} [train]"),
                  seed=model_seed, device=device, progress=progress)
    model = Path(sweep.model) if sweep.model.endswith(".json") else sweep.model
    info = train_manifest(mdir, rdir, model=model, cfg=cfg, tokenizer=tokenizer, shards_root=shards)
    probe_opts = from_table(ProbeSettings, sweep.probe, f"sweep {sweep.name} [probe]").kwargs()
    scores = run_probes(rdir, shards=shards, device=device, pools=pools_from_manifest(mdir, shards),
                        color_plot=base / "color_mds.png", **probe_opts)
    head = ManifestHeader.load(mdir)  # the format and header checks every manifest reader applies
    shares = head.shares
    swept = shares.get(sweep.swept) if sweep.swept in shares and shares.get(sweep.swept) is not None \
        else m.nominal_share
    row: dict[str, Any] = {"mixture": m.name, "seed": model_seed, "swept_share": swept,
                           "reasoning_share": shares.get("reasoning"),
                           "visual_share": shares.get("visual"), "tokens": int(info["tokens_consumed"]),
                           "final_loss": float(info["final_loss"])}
    row.update({k: float(v) for k, v in scores.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    row["manifest_sha256"] = sha256_file(mdir / "manifest.json")
    row["checkpoint_sha256"] = info["checkpoint_sha256"]
    return row


def run_sweep(sweep_path: Path, shards: Path, out: Path, *, tokenizer: Path | None = None, device: str = "auto",
              progress: bool = True, log: Callable[[str], None] = print) -> Path:
    """Run (or finish) every mixture of the sweep and write ``results.parquet``; returns its path."""
    from foresight.trainer.results import write_results

    sweep = load_sweep(sweep_path)
    out.mkdir(parents=True, exist_ok=True)
    specs = _spec_paths(sweep, out)
    total = common_total(sweep, specs, shards)
    seeds = f", seeds {sweep.seeds}" if sweep.seeds else ""
    log(f"sweep {sweep.name}: {len(sweep.mixtures)} mixtures, {total} tokens each{seeds}")
    rows = []
    for m, seed in sweep.runs():
        key = _key(sweep, specs[m.name], total, shards, seed)
        done = run_dir(out, m, seed) / "result.json"
        label = m.name if seed is None else f"{m.name} seed {seed}"
        if done.is_file():
            saved = json.loads(done.read_text(encoding="utf-8"))
            if saved.get("key") == key:
                log(f"  {label}: done already (skipped)")
                # rows written before the seed column existed: their model seed is the [train] one
                saved["row"].setdefault("seed", _seeds_of(sweep, seed)[1])
                rows.append(saved["row"])
                continue
            log(f"  {label}: configuration changed since the last run; redoing it")
        log(f"  {label}: manifest → train → probe")
        row = run_mixture(sweep, m, specs[m.name], total, shards, out, tokenizer=tokenizer, device=device,
                          progress=progress, seed=seed)
        write_json_atomic(done, {"key": key, "row": row})
        rows.append(row)
    path = out / RESULTS_FILE
    return write_results(rows, path)
