"""Propose a mixture from a finished sweep (docs/mixtures.md): regress a probe metric on the pool weights,
score the regressors on held-out mixtures (leave-one-out), and search the design's feasible region.

Regressors (numpy, ridge-regularised least squares; RegMix / olmix style): ``linear`` (metric ~ weights) and
``loglinear`` (metric ~ log weights). ``lightgbm`` is used only where the package is installed (it is not a
dependency). Each sweep row is one trained mixture (and seed); a mixture's rows are averaged over seeds.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from foresight.formats.atomic import check_output_file
from foresight.formats.errors import InputError
from foresight.mixtures.design import Constraints, read_design
from foresight.mixtures.spec import load_spec, round_weights

LOG_FLOOR = 1e-3  # log weights are taken of max(w, LOG_FLOOR): a pool at 0 % stays finite
RIDGE = 1e-4
CANDIDATES = 20_000


@dataclass
class Observations:
    mixtures: list[str]
    pools: list[str]
    weights: np.ndarray  # mixtures × pools
    metric: np.ndarray  # mean over seeds
    runs: int  # results rows used


def load_observations(sweep_dir: Path, target: str) -> Observations:
    """Each mixture's weights (from ``SWEEP_DIR/<mixture>/spec.toml``) and its ``target`` averaged over seeds."""
    import polars as pl

    from foresight.formats.schema import RESULTS_FILE

    path = sweep_dir / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run the sweep first (`foresight sweep SWEEP.toml --out "
                                f"{sweep_dir}`)")
    df = pl.read_parquet(path)
    if target not in df.columns:
        numeric = [c for c, t in df.schema.items() if t.is_numeric() and c != "seed"]
        raise InputError(f"{path}: no column {target!r}; numeric columns: {', '.join(numeric)}")
    df = df.filter(pl.col(target).is_not_null() & pl.col(target).is_not_nan())
    means = df.group_by("mixture", maintain_order=True).agg(pl.col(target).mean())
    pools: list[str] | None = None
    rows = []
    for name in means["mixture"].to_list():
        spec_path = sweep_dir / name / "spec.toml"
        if not spec_path.is_file():
            raise FileNotFoundError(f"{spec_path} not found: results row {name!r} has no spec in the sweep directory")
        spec = load_spec(spec_path)
        names = [p.name for p in spec.pools]
        if pools is None:
            pools = names
        elif sorted(names) != sorted(pools):
            raise InputError(f"{spec_path}: pools {names} differ from the other mixtures' {pools}; propose needs "
                             "one set of pools (a designed sweep)")
        w = dict(zip(names, spec.weights(), strict=True))
        rows.append([float(w[p]) for p in pools])
    if len(rows) < 3:
        raise InputError(f"{path}: {len(rows)} mixture(s) with a {target} value; at least 3 are needed to fit and "
                         "cross-validate a regressor")
    return Observations(means["mixture"].to_list(), list(pools or []), np.array(rows),
                        means[target].to_numpy().astype(float), df.height)


def _features(w: np.ndarray, kind: str) -> np.ndarray:
    x = np.log(np.maximum(w, LOG_FLOOR)) if kind == "loglinear" else w
    return np.hstack([np.ones((len(w), 1)), x])


def _ridge(kind: str) -> Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    def fit(w: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        x = _features(w, kind)
        reg = RIDGE * np.eye(x.shape[1])
        reg[0, 0] = 0.0  # the intercept is not shrunk
        coef = np.linalg.solve(x.T @ x + reg, x.T @ y)
        return lambda q: _features(q, kind) @ coef
    return fit


def _lightgbm(w: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    import lightgbm  # optional; checked by regressors()
    model = lightgbm.LGBMRegressor(n_estimators=200, learning_rate=0.05, min_child_samples=2, verbose=-1)
    model.fit(w, y)
    return model.predict


def regressors() -> tuple[dict[str, Callable[..., Any]], list[str]]:
    """The available regressors by name, and notes on the ones skipped."""
    out: dict[str, Callable[..., Any]] = {"linear": _ridge("linear"), "loglinear": _ridge("loglinear")}
    notes = []
    if importlib.util.find_spec("lightgbm") is not None:
        out["lightgbm"] = _lightgbm
    else:
        notes.append("lightgbm: not installed, skipped (pip install lightgbm to add it)")
    return out, notes


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman's ρ (average ranks for ties); NaN when it is undefined (fewer than 3 pairs, a constant side).
    Also the dose-response ρ of ``trainer.summary``."""
    from scipy.stats import spearmanr
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    ss = float(np.sum((y - y.mean()) ** 2))
    return float("nan") if ss == 0 else 1.0 - float(np.sum((y - pred) ** 2)) / ss


def leave_one_out(fit: Callable[..., Any], w: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each mixture's prediction from a model fitted on all the others."""
    pred = np.empty_like(y)
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        pred[i] = fit(w[keep], y[keep])(w[i:i + 1])[0]
    return pred


@dataclass
class Proposal:
    weights: dict[str, Fraction]
    regressor: str
    predicted: float
    cv: dict[str, dict[str, float]]  # regressor -> {"spearman", "r2"}
    notes: list[str]
    observations: Observations


def _candidates(cons: Constraints, obs: Observations, rng: np.random.Generator) -> np.ndarray:
    """Uniform draws over the bounded simplex (minimums mapped in, maxima and repetition cap filtered), plus the
    observed mixtures; columns in ``cons.names`` order."""
    lo, hi = cons.weight_bounds()
    draws = lo + (1 - lo.sum()) * rng.dirichlet(np.ones(len(lo)), CANDIDATES)
    order = [obs.pools.index(n) for n in cons.names]
    draws = np.vstack([draws, obs.weights[:, order]])
    return draws[np.all((draws >= lo - 1e-12) & (draws <= hi + 1e-12), axis=1)]


def propose(sweep_dir: Path, target: str, maximize: bool, seed: int = 0) -> Proposal:
    """Fit, cross-validate, pick the best regressor (LOO R², then Spearman) and its best feasible mixture."""
    design = read_design(sweep_dir)
    cons = Constraints.from_dict(design["constraints"])
    obs = load_observations(sweep_dir, target)
    if sorted(obs.pools) != sorted(cons.names):
        raise InputError(f"{sweep_dir}: the results' pools {obs.pools} are not the design's {list(cons.names)}")
    fits, notes = regressors()
    cv: dict[str, dict[str, float]] = {}
    for name, fit in fits.items():
        pred = leave_one_out(fit, obs.weights, obs.metric)
        cv[name] = {"spearman": spearman(obs.metric, pred), "r2": r2(obs.metric, pred)}
    best = max(cv, key=lambda k: (np.nan_to_num(cv[k]["r2"], nan=-np.inf),
                                  np.nan_to_num(cv[k]["spearman"], nan=-np.inf)))
    order = [obs.pools.index(n) for n in cons.names]
    model = fits[best](obs.weights[:, order], obs.metric)
    cands = _candidates(cons, obs, np.random.default_rng(seed))
    pred = model(cands)
    for i in np.argsort(-pred if maximize else pred, kind="stable"):
        w = round_weights({n: Fraction(float(v)) for n, v in zip(cons.names, cands[i], strict=True)})
        if cons.violation(w) is None:
            exact = np.array([[float(w[n]) for n in cons.names]])
            if not cv[best]["r2"] > 0:  # NaN too
                notes.append(f"warning: the best leave-one-out R2 is {cv[best]['r2']:.3f}: the regressors predict "
                             "held-out mixtures no better than their mean, so this proposal is unreliable; "
                             "run more mixtures")
            return Proposal(w, best, float(model(exact)[0]), cv, notes, obs)
    raise InputError(f"{sweep_dir}: no feasible candidate among {len(cands)} draws; check design.json's bounds")


def _best_observed(obs: Observations, maximize: bool) -> dict[str, Any]:
    """The sweep's own best mixture: the bar the proposal has to beat."""
    i = int(np.argmax(obs.metric) if maximize else np.argmin(obs.metric))
    return {"best_observed": float(obs.metric[i]), "best_observed_mixture": obs.mixtures[i]}


def provenance(p: Proposal, results_sha256: str, target: str, maximize: bool) -> dict[str, Any]:
    """The [provenance] table of the proposed spec (read back by ``foresight sweep plot``)."""
    out: dict[str, Any] = {"kind": "foresight-proposal", "target": target,
                           "direction": "maximize" if maximize else "minimize", "predicted": p.predicted,
                           "regressor": p.regressor, "cv": "leave-one-out",
                           "cv_spearman": p.cv[p.regressor]["spearman"], "cv_r2": p.cv[p.regressor]["r2"],
                           "results_sha256": results_sha256, "mixtures": len(p.observations.mixtures),
                           "runs": p.observations.runs, **_best_observed(p.observations, maximize)}
    return {k: (str(v) if isinstance(v, float) and not np.isfinite(v) else v) for k, v in out.items()}


def write_proposal(p: Proposal, sweep_dir: Path, out: Path, target: str, maximize: bool) -> tuple[Path, Path]:
    """The proposed spec (its header and [provenance] carry the prediction) and a sweep file that runs it with the
    designed sweep's budget, model, seeds and probes: ``OUT`` and ``OUT``'s stem + ``.sweep.toml``."""
    from foresight.formats.hashing import sha256_file
    from foresight.formats.schema import RESULTS_FILE
    from foresight.formats.settings import Settings
    from foresight.mixtures.design import spec_text, sweep_text
    from foresight.mixtures.spec import parse_spec

    design = read_design(sweep_dir)
    base = parse_spec(Settings.parse(design["base_spec"], f"{sweep_dir}/design.json base_spec"))
    cons = Constraints.from_dict(design["constraints"])
    sha = sha256_file(sweep_dir / RESULTS_FILE)
    prov = provenance(p, sha, target, maximize)
    cv = "; ".join(f"{k}: Spearman {v['spearman']:.3f}, R2 {v['r2']:.3f}" for k, v in p.cv.items())
    header = "\n".join([
        f"# Proposed by `foresight mix propose {sweep_dir} --target {target} --{prov['direction']}`",
        f"# from {sweep_dir / RESULTS_FILE} (sha256 {sha}), {len(p.observations.mixtures)} mixtures "
        f"({p.observations.runs} runs, averaged over seeds).",
        f"# Leave-one-out on held-out mixtures: {cv}." + "".join(f" {n}." for n in p.notes),
        f"# Chosen regressor: {p.regressor}; predicted {target} = {p.predicted:.6g}."])
    desc = f"proposal ({prov['direction']} {target}): " + ", ".join(
        f"{n} {100 * float(p.weights[n]):.2f}%" for n in cons.names)
    out = check_output_file(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(spec_text(base, out.stem, p.weights, cons.total_tokens, header, desc, prov), encoding="utf-8")
    sweep = out.with_name(f"{out.stem}.sweep.toml")
    sweep.write_text(sweep_text(f"proposal_{out.stem}", [str(out.resolve())], cons.total_tokens,
                                design["settings"], design["seeds"], header), encoding="utf-8")
    return out, sweep
