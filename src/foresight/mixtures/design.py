"""Sweep designs (docs/mixtures.md): N mixtures over a base spec's pools, as a Dirichlet swarm or a grid.

Every mixture honours per-pool min/max weights and a repetition cap: at the sweep's budget, a pool's target
(largest-remainder, as the manifest will take it) must fit in its available tokens × its ``max_repetition``.
An infeasible swarm draw is drawn again; an infeasible grid point is dropped and reported. The design is
written as spec files, a sweep file (``trainer/sweep.py``'s format) and ``design.json`` (the constraints, read
back by :mod:`mixtures.propose` to search the same region).
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from foresight.formats.errors import InputError
from foresight.mixtures.solve import apportion, capacity
from foresight.mixtures.spec import MixtureSpec, round_weights, weight_text

DESIGN_FILE = "design.json"
SWEEP_FILE = "sweep.toml"
SPECS_DIR = "design"
FORMAT = "foresight-design/1"


class DesignError(InputError):
    """The constraints leave no (or too few) feasible mixtures; the message says which constraint binds."""


@dataclass(frozen=True)
class Constraints:
    """What every designed or proposed mixture must satisfy, over the base spec's pools (in spec order)."""

    names: tuple[str, ...]
    minimum: dict[str, float]
    maximum: dict[str, float]
    available: dict[str, int]  # tokens per pool on the shards (after exclude)
    max_repetition: dict[str, float]
    total_tokens: int
    seed: int = 0  # the spec seed: largest-remainder ties

    def violation(self, weights: dict[str, Fraction]) -> str | None:
        """Why these (exact, summing to 1) weights are infeasible, or None."""
        for n in self.names:
            w = float(weights[n])
            if w < self.minimum[n] - 1e-12 or w > self.maximum[n] + 1e-12:
                return (f"pool {n!r} outside its bounds: weight {w:.4f} not in "
                        f"[{self.minimum[n]:g}, {self.maximum[n]:g}]")
        targets = apportion([weights[n] for n in self.names], list(self.names), self.total_tokens, self.seed)
        for n, t in zip(self.names, targets, strict=True):
            if t > capacity(self.available[n], Fraction(str(self.max_repetition[n]))):
                epochs = t / self.available[n] if self.available[n] else float("inf")
                return (f"pool {n!r} over its repetition cap: {epochs:.2f} epochs of its {self.available[n]:,} tokens "
                        f"(max_repetition {self.max_repetition[n]:g})")
        return None

    def weight_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-pool lower and upper weight bounds, the repetition cap folded into the upper one."""
        lo = np.array([self.minimum[n] for n in self.names])
        cap = [self.available[n] * self.max_repetition[n] / self.total_tokens for n in self.names]
        hi = np.minimum([self.maximum[n] for n in self.names], cap)
        return lo, hi

    def to_dict(self) -> dict[str, Any]:
        return {"pools": list(self.names), "min": self.minimum, "max": self.maximum, "available": self.available,
                "max_repetition": self.max_repetition, "total_tokens": self.total_tokens, "seed": self.seed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Constraints:
        return cls(tuple(d["pools"]), d["min"], d["max"], d["available"], d["max_repetition"], d["total_tokens"],
                   d["seed"])


def make_constraints(spec: MixtureSpec, available: dict[str, int], total_tokens: int,
                     minimum: dict[str, float], maximum: dict[str, float]) -> Constraints:
    """Check the bounds name real pools and can be met together; ``minimum``/``maximum`` may name a subset."""
    names = tuple(p.name for p in spec.pools)
    for label, bounds in (("--min", minimum), ("--max", maximum)):
        for n, v in bounds.items():
            if n not in names:
                raise DesignError(f"{label} {n}={v:g}: no pool {n!r} in spec {spec.name} (pools: {', '.join(names)})")
            if not 0 <= v <= 1:
                raise DesignError(f"{label} {n}={v:g}: a weight bound must be in [0, 1]")
    lo = {n: float(minimum.get(n, 0.0)) for n in names}
    hi = {n: float(maximum.get(n, 1.0)) for n in names}
    bad = [n for n in names if lo[n] > hi[n]]
    if bad:
        raise DesignError(f"pool {bad[0]!r}: --min {lo[bad[0]]:g} is above --max {hi[bad[0]]:g}")
    if sum(lo.values()) > 1 or sum(hi.values()) < 1:
        raise DesignError(f"the bounds cannot sum to 1 (mins sum to {sum(lo.values()):g}, maxes to "
                          f"{sum(hi.values()):g}); loosen --min/--max")
    reps = {p.name: float(p.max_repetition) for p in spec.pools}
    return Constraints(names, lo, hi, dict(available), reps, int(total_tokens), spec.seed)


@dataclass
class Design:
    constraints: Constraints
    method: str
    params: dict[str, Any]
    mixtures: dict[str, dict[str, Fraction]] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)  # grid points left out: name -> why


def _exact(weights: np.ndarray, names: tuple[str, ...]) -> dict[str, Fraction]:
    return round_weights({n: Fraction(float(w)) for n, w in zip(names, weights, strict=True)})


def dirichlet_alpha(spec: MixtureSpec, concentration: float) -> np.ndarray:
    """Dirichlet parameters: ``concentration × K × w`` for the base spec's weights ``w`` (centred on the spec)."""
    if concentration <= 0:
        raise DesignError(f"--concentration must be positive, got {concentration:g}")
    w = np.array([float(x) for x in spec.weights()])
    if np.any(w <= 0):
        zero = [p.name for p, x in zip(spec.pools, w, strict=True) if x <= 0]
        raise DesignError(f"spec {spec.name}: pool(s) {zero} have weight 0; the swarm is centred on the spec's "
                          "weights, so give every pool a positive weight (or drop it)")
    return concentration * len(w) * w


def swarm(cons: Constraints, alpha: np.ndarray, n: int, seed: int, max_draws: int = 20_000) -> Design:
    """``n`` feasible Dirichlet draws, mapped into the minimums (``w = lo + (1 - Σlo)·d``); others redrawn."""
    if n < 1:
        raise DesignError(f"--mixtures must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    lo = np.array([cons.minimum[k] for k in cons.names])
    design = Design(cons, "dirichlet", {"seed": seed, "alpha": [float(a) for a in alpha], "n": n})
    why: Counter[str] = Counter()
    for _ in range(max_draws):
        w = _exact(lo + (1 - lo.sum()) * rng.dirichlet(alpha), cons.names)
        problem = cons.violation(w)
        if problem:
            why[problem.split(":")[0]] += 1
            continue
        design.mixtures[f"mix{len(design.mixtures):03d}"] = w
        if len(design.mixtures) == n:
            return design
    worst = ", ".join(f"{k} ({v} draws)" for k, v in why.most_common(3))
    raise DesignError(f"only {len(design.mixtures)} of {n} feasible mixtures in {max_draws} draws; rejected most "
                      f"often: {worst}; loosen --max/--min, raise max_repetition in the spec or lower --total-tokens")


def grid(cons: Constraints, base: MixtureSpec, points: dict[str, list[float]]) -> Design:
    """Every combination of the given pools' percentages; the other pools share the rest in the spec's ratios."""
    for n, values in points.items():
        if n not in cons.names:
            raise DesignError(f"--grid {n}: no pool {n!r} in spec {base.name} (pools: {', '.join(cons.names)})")
        if not values or any(not 0 <= v <= 100 for v in values):
            raise DesignError(f"--grid {n}: give percentages in [0, 100], e.g. {n}=50,60,70")
    rest = [p for p in base.pools if p.name not in points]
    if not rest:
        raise DesignError("--grid names every pool; leave at least one to take the rest of the tokens")
    rest_total = sum((p.weight for p in rest), Fraction(0))
    if rest_total == 0:
        raise DesignError(f"the pools outside the grid ({[p.name for p in rest]}) all have weight 0 in the spec; "
                          "their weights split the rest")
    design = Design(cons, "grid", {"grid": points})
    for combo in itertools.product(*points.values()):
        name = "_".join(f"{n}{v:g}" for n, v in zip(points, combo, strict=True))
        fixed = {n: Fraction(str(v)) / 100 for n, v in zip(points, combo, strict=True)}
        left = 1 - sum(fixed.values(), Fraction(0))
        if left < 0:
            design.dropped[name] = "the grid shares sum to more than 100 %"
            continue
        w = round_weights({**fixed, **{p.name: left * p.weight / rest_total for p in rest}})
        w = {n: w[n] for n in cons.names}
        problem = cons.violation(w)
        if problem:
            design.dropped[name] = problem
            continue
        design.mixtures[name] = w
    if not design.mixtures:
        raise DesignError("no grid point is feasible: " + "; ".join(f"{k}: {v}" for k, v in design.dropped.items()))
    return design


def toml_value(v: Any) -> str:
    """A TOML value for str/int/float/bool/list (JSON strings are valid TOML basic strings)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as a TOML value")


def spec_text(base: MixtureSpec, name: str, weights: dict[str, Fraction], total_tokens: int, header: str,
              description: str, provenance: dict[str, Any] | None = None) -> str:
    """A runnable spec: the base spec's pools (where/source, repetition, order), exclusions and seed, new weights."""
    lines = [header.rstrip(), "", f"name = {json.dumps(name)}", f"description = {json.dumps(description)}",
             f"total_tokens = {total_tokens}", f"seed = {base.seed}",
             f"heldout_fraction = {base.heldout_fraction!r}"]
    if base.exclude:
        lines.append(f"exclude = {toml_value(list(base.exclude))}")
    if base.precedence:
        lines.append(f"precedence = {toml_value(list(base.precedence))}")
    for p in base.pools:
        lines += ["", f"[pools.{p.name}]"]
        lines += [f"source = {json.dumps(p.source)}"] if p.source else []
        lines += [f"where = {json.dumps(p.where)}"] if p.where else []
        lines += [f"weight = {weight_text(weights[p.name])}", f"max_repetition = {float(p.max_repetition)!r}",
                  f"order = {json.dumps(p.order)}"]
    if provenance:
        lines += ["", "[provenance]"] + [f"{k} = {toml_value(v)}" for k, v in provenance.items()]
    return "\n".join(lines) + "\n"


def sweep_text(name: str, mixtures: list[str], total_tokens: int, settings: dict[str, Any],
               seeds: list[int] | None, header: str) -> str:
    """A sweep file for ``foresight sweep``: ``settings`` carries model/swept and the [train]/[probe] tables."""
    lines = [header.rstrip(), f"name = {json.dumps(name)}", f"total_tokens = {total_tokens}"]
    lines += [f"{k} = {toml_value(settings[k])}" for k in ("model", "swept") if k in settings]
    if seeds:
        lines.append(f"seeds = {toml_value(seeds)}")
    lines.append(f"mixtures = {toml_value(mixtures)}")
    for table in ("train", "probe"):
        if settings.get(table):
            lines += ["", f"[{table}]"] + [f"{k} = {toml_value(v)}" for k, v in settings[table].items()]
    return "\n".join(lines) + "\n"


def write_design(design: Design, base: MixtureSpec, out: Path, settings: dict[str, Any],
                 seeds: list[int] | None, shards_sha256: str) -> Path:
    """``out/design/<mixture>.toml``, ``out/sweep.toml`` and ``out/design.json``; returns the sweep file."""
    cons = design.constraints
    (out / SPECS_DIR).mkdir(parents=True, exist_ok=True)
    header = (f"# Generated by `foresight sweep design` ({design.method}) from spec {base.name} "
              f"(sha256 {base.sha256[:12]}); edit the design, not this file.")
    for old in (out / SPECS_DIR).glob("*.toml"):  # a redesign into the same directory leaves no stale specs
        if old.stem not in design.mixtures:
            old.unlink()
    files = []
    for name, w in design.mixtures.items():
        desc = ", ".join(f"{n} {100 * float(w[n]):.2f}%" for n in cons.names)
        path = out / SPECS_DIR / f"{name}.toml"
        path.write_text(spec_text(base, name, w, cons.total_tokens, header, desc), encoding="utf-8")
        files.append(f"{SPECS_DIR}/{name}.toml")
    sweep = out / SWEEP_FILE
    sweep.write_text(sweep_text(f"design_{base.name}", files, cons.total_tokens, settings, seeds, header),
                     encoding="utf-8")
    record = {"format": FORMAT, "method": design.method, "params": design.params, "base_spec": base.text,
              "base_spec_name": base.name, "constraints": cons.to_dict(), "shards_index_sha256": shards_sha256,
              "mixtures": {k: {n: float(v) for n, v in w.items()} for k, w in design.mixtures.items()},
              "dropped": design.dropped, "settings": settings, "seeds": seeds}
    (out / DESIGN_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return sweep


def read_design(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / DESIGN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: propose searches the region a `foresight sweep design` "
                                f"wrote; design the sweep into {sweep_dir} (--out) and run it there")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"{path} is not valid JSON ({e}); redesign the sweep") from e
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        got = record.get("format") if isinstance(record, dict) else None
        raise InputError(f"{path}: format {got!r}, expected {FORMAT!r}; redesign the sweep")
    return record
