"""Mixture specs over label/source pools, LSBS presets and their planning (docs/mixtures.md)."""

from foresight.formats.index import UnsafePathError
from foresight.mixtures.planner import OverlapError, Plan, PoolPlan, plan
from foresight.mixtures.sandbox import ExpressionError
from foresight.mixtures.solve import InfeasibleError
from foresight.mixtures.spec import MixtureSpec, PoolSpec, SpecError, load_spec, preset_names

__all__ = ["ExpressionError", "InfeasibleError", "MixtureSpec", "OverlapError", "Plan", "PoolPlan", "PoolSpec",
           "SpecError", "UnsafePathError", "load_spec", "plan", "preset_names"]
