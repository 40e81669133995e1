"""Mixture specs (docs/mixtures.md): a TOML file naming pools (SQL predicates or LSBS sources), weights, a token
budget and a seed. Parsing only checks the file itself; expressions are checked against the shards by
:mod:`mixtures.sandbox` when the spec is planned."""

from __future__ import annotations

import decimal
import hashlib
import re
from dataclasses import dataclass, replace
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

import tomllib

from foresight.formats.errors import InputError
from foresight.formats.splits import DEFAULT_HELDOUT_FRACTION

WEIGHT_TOLERANCE = 1e-6
MAX_POOLS = 63  # pool membership is a bitmask of at most 64 bits in the selection query
_POOL_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_ORDER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s+(desc|asc)\s*$", re.IGNORECASE)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGbBtT]?)\s*$")
_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9, "t": 10**12}
TOP_KEYS = {"name", "description", "total_tokens", "seed", "max_repetition", "order", "exclude", "precedence",
            "heldout_fraction", "pools", "provenance"}
POOL_KEYS = {"where", "source", "weight", "max_repetition", "order"}


class SpecError(InputError):
    """A mixture spec that cannot be used; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class PoolSpec:
    name: str
    weight: Fraction  # exact decimal value of the TOML number, before normalisation
    where: str | None = None
    source: str | None = None  # an LSBS source name, resolved through formats.sources.ALIASES
    max_repetition: Fraction = Fraction(1)
    order: str = "random"  # "random" or "<numeric column> desc|asc"

    def order_column(self) -> tuple[str, bool] | None:
        """(column, descending) for a score order; None for random."""
        if self.order == "random":
            return None
        m = _ORDER.match(self.order)
        assert m is not None  # checked when the spec was parsed
        return m.group(1), m.group(2).lower() == "desc"


@dataclass(frozen=True)
class MixtureSpec:
    name: str
    total_tokens: int | None  # None means "max": the largest feasible total
    seed: int
    pools: tuple[PoolSpec, ...]
    exclude: tuple[str, ...] = ()
    precedence: tuple[str, ...] | None = None
    heldout_fraction: float = DEFAULT_HELDOUT_FRACTION
    description: str = ""
    path: str | None = None
    text: str = ""  # the spec file as read (its sha256 is recorded in manifests)
    sha256: str = ""
    normalized: bool = False

    def weights(self) -> list[Fraction]:
        """Exact weights summing to 1 (normalised by their sum, which parsing checked is 1 ± tolerance)."""
        total = sum((p.weight for p in self.pools), Fraction(0))
        return [p.weight / total for p in self.pools]

    def pool(self, name: str) -> PoolSpec:
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The parsed spec as plain JSON types (recorded in the manifest header)."""
        return {
            "name": self.name, "description": self.description, "total_tokens": self.total_tokens,
            "seed": self.seed, "exclude": list(self.exclude), "heldout_fraction": self.heldout_fraction,
            "precedence": list(self.precedence) if self.precedence else None, "normalized": self.normalized,
            "pools": {p.name: {"where": p.where, "source": p.source, "weight": float(p.weight),
                               "max_repetition": float(p.max_repetition), "order": p.order} for p in self.pools},
        }


def parse_tokens(value: Any, where: str) -> int | None:
    """A token count: an integer, or a string like "20M", "1.5B"; "max" means the largest feasible total."""
    if isinstance(value, bool):
        raise SpecError(f"{where}: expected a token count, got {value!r}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str) and value.strip().lower() == "max":
        return None
    elif isinstance(value, str) and (m := _SIZE.match(value)):
        n = int(Fraction(m.group(1)) * _SUFFIX[m.group(2).lower()])
    else:
        raise SpecError(f"{where}: expected a token count like 20000000, \"20M\" or \"max\", got {value!r}")
    if n <= 0:
        raise SpecError(f"{where}: token count must be positive, got {n}")
    return n


def _number(value: Any, where: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{where}: expected a number, got {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise SpecError(f"{where}: expected a finite number, got {value!r}")
    return Fraction(str(value))  # the decimal the user wrote, exactly (0.1 -> 1/10)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SpecError(f"{where}: expected a SQL expression or a list of them, got {value!r}")
    return tuple(v.strip() for v in value)


def _check_order(value: Any, where: str) -> str:
    if not isinstance(value, str) or not (value.strip().lower() == "random" or _ORDER.match(value)):
        raise SpecError(f"{where}: order must be \"random\" or \"<score column> desc\" "
                        f"(e.g. \"score_math_reasoning desc\"), got {value!r}")
    return "random" if value.strip().lower() == "random" else " ".join(value.split()).lower()


def _repetition(value: Any, where: str) -> Fraction:
    r = _number(value, where)
    if r < 1:
        raise SpecError(f"{where}: max_repetition must be >= 1 (1 = never repeat a segment), got {value!r}")
    return r


def _pool(name: str, raw: Any, where: str, default_rep: Fraction, default_order: str) -> PoolSpec:
    if not _POOL_NAME.match(name):
        raise SpecError(f"{where}: pool name {name!r} may only use letters, digits, '_', '-' and '.'")
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a table [pools.{name}] with where/source and weight")
    unknown = sorted(set(raw) - POOL_KEYS)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(POOL_KEYS)}")
    if "weight" not in raw:
        raise SpecError(f"{where}: missing weight (a fraction of total_tokens, e.g. weight = 0.25)")
    weight = _number(raw["weight"], f"{where}.weight")
    if weight < 0:
        raise SpecError(f"{where}.weight = {raw['weight']} is negative; weights are token fractions >= 0")
    cond = raw.get("where")
    source = raw.get("source")
    if cond is None and source is None:
        raise SpecError(f"{where}: give where = \"<SQL boolean expression>\" or source = \"<LSBS source>\"")
    if cond is not None and (not isinstance(cond, str) or not cond.strip()):
        raise SpecError(f"{where}.where: expected a non-empty SQL boolean expression, got {cond!r}")
    if source is not None and (not isinstance(source, str) or not source.strip()):
        raise SpecError(f"{where}.source: expected a source name such as \"web-crawl\", got {source!r}")
    rep = _repetition(raw["max_repetition"], f"{where}.max_repetition") if "max_repetition" in raw else default_rep
    order = _check_order(raw["order"], f"{where}.order") if "order" in raw else default_order
    return PoolSpec(name, weight, cond.strip() if cond else None, source.strip() if source else None, rep, order)


def parse_spec(data: dict[str, Any], label: str, normalize: bool = False) -> MixtureSpec:
    """Validate a spec dict (from TOML); ``label`` names the file in error messages."""
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise SpecError(f"spec {label}: unknown key(s) {unknown}; allowed: {sorted(TOP_KEYS)}")
    if "total_tokens" not in data:
        raise SpecError(f"spec {label}: missing total_tokens (e.g. total_tokens = \"20M\", or \"max\")")
    total = parse_tokens(data["total_tokens"], f"spec {label}: total_tokens")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecError(f"spec {label}: seed must be a non-negative integer, got {seed!r}")
    rep = _repetition(data.get("max_repetition", 1), f"spec {label}: max_repetition")
    order = _check_order(data.get("order", "random"), f"spec {label}: order")
    raw_pools = data.get("pools")
    if not isinstance(raw_pools, dict) or not raw_pools:
        raise SpecError(f"spec {label}: no pools; add [pools.<name>] tables with where/source and weight")
    if len(raw_pools) > MAX_POOLS:
        raise SpecError(f"spec {label}: {len(raw_pools)} pools; at most {MAX_POOLS} are supported")
    pools = tuple(_pool(n, p, f"spec {label}: pools.{n}", rep, order) for n, p in raw_pools.items())
    _check_weights(pools, label, normalize)
    precedence = None
    if "precedence" in data:
        precedence = _strings(data["precedence"], f"spec {label}: precedence")
        if sorted(precedence) != sorted(p.name for p in pools):
            raise SpecError(f"spec {label}: precedence {list(precedence)} must list every pool exactly once "
                            f"({[p.name for p in pools]})")
    frac = data.get("heldout_fraction", DEFAULT_HELDOUT_FRACTION)
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac < 1:
        raise SpecError(f"spec {label}: heldout_fraction must be in [0, 1), got {frac!r}")
    if not isinstance(data.get("provenance", {}), dict):
        raise SpecError(f"spec {label}: provenance must be a table ([provenance] key = value, ...)")
    exclude = _strings(data["exclude"], f"spec {label}: exclude") if "exclude" in data else ()
    name = data.get("name", Path(label).stem)
    if not isinstance(name, str) or not name:
        raise SpecError(f"spec {label}: name must be a non-empty string")
    return MixtureSpec(name=name, total_tokens=total, seed=seed, pools=pools, exclude=exclude,
                       precedence=precedence, heldout_fraction=float(frac),
                       description=str(data.get("description", "")), normalized=normalize)


def _check_weights(pools: tuple[PoolSpec, ...], label: str, normalize: bool) -> None:
    total = sum((p.weight for p in pools), Fraction(0))
    if total == 0:
        raise SpecError(f"spec {label}: all pool weights are 0")
    if not normalize and abs(total - 1) > Fraction(WEIGHT_TOLERANCE):
        listing = ", ".join(f"{p.name}={decimal_text(p.weight)}" for p in pools)
        raise SpecError(f"spec {label}: pool weights sum to {decimal_text(total)}, not 1 ({listing}); "
                        f"fix them or pass --normalize to scale them to 1")


def decimal_text(x: Fraction, digits: int = 30) -> str:
    """``x`` as a decimal with up to ``digits`` significant digits: a sum such as 1.000002 is never shown as "1",
    and a weight of 1e308 never overflows a float."""
    with decimal.localcontext() as ctx:
        ctx.prec = digits
        d = decimal.Decimal(x.numerator) / decimal.Decimal(x.denominator)
    text = format(d.normalize(), "f") if abs(d.adjusted()) < 16 else format(d.normalize(), "E")
    return text


def round_weights(weights: dict[str, Fraction], decimals: int = 6) -> dict[str, Fraction]:
    """Round to ``decimals`` places; the largest weight absorbs the rounding so the decimals sum to exactly 1."""
    out = {k: Fraction(round(v * 10**decimals), 10**decimals) for k, v in weights.items()}
    biggest = max(out, key=lambda k: (out[k], k))
    out[biggest] += 1 - sum(out.values())
    return out


def weight_text(v: Fraction, decimals: int = 6) -> str:
    """A rounded weight as the TOML decimal that parses back to exactly it."""
    s = f"{float(v):.{decimals}f}".rstrip("0")
    return s + "0" if s.endswith(".") else s


def _presets_dir() -> Any:
    return resources.files("foresight.mixtures") / "presets"


def preset_names() -> list[str]:
    """Names of the presets shipped in ``mixtures/presets/``."""
    names = [p.name[:-5] for p in _presets_dir().iterdir() if p.name.endswith(".toml")]
    return sorted(names, key=lambda n: [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", n)])


def resolve_spec_path(spec: str | Path) -> Path:
    """A spec file path, or a preset name such as ``lsbs_mix6``."""
    path = Path(spec)
    if path.is_file():
        return path
    preset = _presets_dir() / f"{spec}.toml"
    if isinstance(spec, str) and "/" not in spec and preset.is_file():
        return Path(str(preset))
    hint = ", ".join(n for n in preset_names() if not n.startswith("lsbs_vision_"))
    raise SpecError(f"spec {spec} is neither a file nor a preset name (presets: {hint}, lsbs_vision_r<R>_v<V>; "
                    f"`foresight mix presets` lists them)")


def load_spec(spec: str | Path, normalize: bool = False, total_tokens: int | str | None = None,
              seed: int | None = None) -> MixtureSpec:
    """Read and validate a spec file or preset; ``total_tokens``/``seed`` override the file's values."""
    path = resolve_spec_path(spec)
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as e:  # RecursionError: nested too deeply
        raise SpecError(f"spec {path}: not valid TOML ({e})") from None
    if total_tokens is not None:
        data["total_tokens"] = total_tokens
    if seed is not None:
        data["seed"] = seed
    parsed = parse_spec(data, str(path), normalize)
    return replace(parsed, path=str(path), text=raw.decode("utf-8"), sha256=hashlib.sha256(raw).hexdigest())


__all__ = ["MixtureSpec", "PoolSpec", "SpecError", "load_spec", "parse_spec", "parse_tokens", "preset_names",
           "resolve_spec_path", "round_weights", "weight_text"]
