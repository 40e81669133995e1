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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from foresight.formats.atomic import write_json_atomic
from foresight.formats.index import index_sha256
from foresight.formats.schema import RESULTS_FILE
from foresight.formats.settings import Invalid, Settings, load_table, setting, show

T = TypeVar("T")
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
    file: str = ""  # the sweep file: [train] and [probe] errors name it

    def settings(self, cls: type[T], table: str) -> T:
        """[train] or [probe] as TrainConfig / ProbeSettings (checked when the file was loaded)."""
        return load_table(cls, getattr(self, table), self.file or f"sweep {self.name}", table)

    def runs(self) -> list[tuple[SweepMixture, int | None]]:
        """(mixture, seed) pairs in run order; the seed is None for a single-seed sweep."""
        return [(m, s) for m in self.mixtures for s in (self.seeds or [None])]


def run_dir(out: Path, m: SweepMixture, seed: int | None) -> Path:
    """Where one run's manifest/, run/ and result.json live: the mixture's folder, or its seed-<s>/ sub-folder."""
    return out / m.name if seed is None else out / m.name / f"seed-{seed}"


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


def _seeds(value: Any) -> list[int]:
    """``seeds = [0, 1]``: distinct non-negative ints; it replaces both the `seed` key and [train] seed."""
    if (not isinstance(value, list) or not value
            or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in value)):
        raise Invalid(f"expected a non-empty list of non-negative integers, got {show(value)}")
    if len(set(value)) != len(value):
        raise Invalid(f"seeds repeat ({show(value)})")
    return value


def _mixtures(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(m, str) for m in value):
        raise Invalid(f"expected a non-empty list of presets or spec paths, got {show(value)}")
    return value


def _budget(value: Any) -> int | str:
    """The raw total_tokens (it is part of each run's key), checked as a token count now, before any run."""
    from foresight.mixtures.spec import parse_tokens
    parse_tokens(value)  # raises Invalid
    return value


@dataclass(frozen=True)
class GridTable:
    """``[grid]``: one pool ``where`` at each share (percent), the rest ``NOT (where)``."""

    where: str = setting(note="a SQL predicate, e.g. where = \"reasoning\"")
    shares: list[int | float] = setting(ge=0, le=100, note="percentages, e.g. shares = [0, 25, 50]")


@dataclass(frozen=True)
class SweepTable:
    """A sweep file as written (the module docstring); [train] and [probe] are checked against TrainConfig and
    ProbeSettings, and kept as written (they are part of each run's key)."""

    name: str | None = None
    model: str = "tiny"
    total_tokens: int | str | None = setting(None, parse=_budget)
    seed: int | None = setting(None, ge=0)
    seeds: list[int] | None = setting(None, parse=_seeds)
    swept: str | None = None
    mixtures: list[str] | None = setting(None, parse=_mixtures)
    grid: GridTable | None = None
    train: dict[str, Any] = setting(default_factory=dict)
    probe: dict[str, Any] = setting(default_factory=dict)


def load_sweep(path: str | Path, overrides: Mapping[str, Any] | Sequence[str] | None = None) -> Sweep:
    """Parse and validate a sweep file (or bundled sweep name), with ``--set`` ``overrides`` applied; errors name
    the file, the table and the key (formats.settings)."""
    from foresight.trainer.probe import ProbeSettings
    from foresight.trainer.train import TrainConfig
    path = resolve_sweep_path(path)
    doc = Settings.read(path).override(overrides)
    t = doc.load(SweepTable)
    if (t.mixtures is None) == (t.grid is None):
        raise doc.error((), "mixtures", "give exactly one of `mixtures = [...]` or a [grid] table")
    doc.load(TrainConfig, "train")  # names and types, before any run starts
    probe = dict(t.probe)
    for key in PATH_KEYS:
        if isinstance(probe.get(key), str):
            probe[key] = str((path.parent / probe[key]).resolve())
    doc.load(ProbeSettings, "probe", raw=probe)
    if t.grid is not None:
        if not t.grid.shares:
            raise doc.error("grid", "shares", "empty; give the percentages to train, e.g. shares = [0, 25, 50]")
        label = _slug(t.swept if t.swept is not None else t.grid.where)
        mixtures = [SweepMixture(f"{label}_{s:g}", "", s / 100) for s in t.grid.shares]
    else:
        mixtures = []
        for m in t.mixtures or []:
            spec = str((path.parent / m).resolve()) if (path.parent / m).is_file() else m
            mixtures.append(SweepMixture(_slug(Path(m).stem if m.endswith(".toml") else m), spec))
    names = [m.name for m in mixtures]
    if len(set(names)) != len(names):
        raise doc.error((), "mixtures" if t.grid is None else "grid", f"mixture names repeat ({names})")
    # one seed drives the manifest and the model; a second, fixed one would make the spread mean something else
    if t.seeds is not None and (t.seed is not None or "seed" in t.train):
        raise doc.error((), "seeds", "give `seeds = [...]` or `seed` / [train] seed, not both")
    return Sweep(t.name if t.name is not None else path.stem, t.model, t.total_tokens, t.seed,
                 t.swept if t.swept is not None else "reasoning", mixtures, dict(t.train), probe,
                 t.grid.where if t.grid else None, t.seeds, str(path))


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
    from foresight.mixtures import load_spec
    from foresight.mixtures.planner import mixture_total
    # the budget must be feasible for every seed's selection; the maximum does not depend on the seed
    seed = sweep.seeds[0] if sweep.seeds else sweep.seed
    return min(mixture_total(load_spec(p, total_tokens="max", seed=seed), shards) for p in specs.values())


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
    cfg = replace(sweep.settings(TrainConfig, "train"),
                  seed=model_seed, device=device, progress=progress)
    model = Path(sweep.model) if sweep.model.endswith(".json") else sweep.model
    info = train_manifest(mdir, rdir, model=model, cfg=cfg, tokenizer=tokenizer, shards_root=shards)
    probe_opts = sweep.settings(ProbeSettings, "probe").kwargs()
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
              progress: bool = True, log: Callable[[str], None] = print,
              overrides: Mapping[str, Any] | Sequence[str] | None = None) -> Path:
    """Run (or finish) every mixture of the sweep, with ``--set`` ``overrides`` applied to the sweep file, and write
    ``results.parquet``; returns its path."""
    from foresight.trainer.results import write_results

    sweep = load_sweep(sweep_path, overrides)
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
