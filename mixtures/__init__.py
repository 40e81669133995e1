"""Mixture specs over label/source pools, LSBS presets and their planning (docs/mixtures.md)."""

from mixtures.planner import OverlapError, Plan, PoolPlan, plan
from mixtures.sandbox import ExpressionError
from mixtures.shards import UnsafePathError
from mixtures.solve import InfeasibleError
from mixtures.spec import MixtureSpec, PoolSpec, SpecError, load_spec, preset_names

__all__ = ["ExpressionError", "InfeasibleError", "MixtureSpec", "OverlapError", "Plan", "PoolPlan", "PoolSpec",
           "SpecError", "UnsafePathError", "load_spec", "plan", "preset_names"]
