"""Mixture specs (docs/mixtures.md): a TOML file naming pools (SQL predicates or LSBS sources), weights, a token
budget and a seed. Parsing only checks the file itself; expressions are checked against the shards by
:mod:`mixtures.sandbox` when the spec is planned."""

from __future__ import annotations

import decimal
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

from foresight.formats.settings import Invalid, Settings, SettingsError, setting, show
from foresight.formats.splits import DEFAULT_HELDOUT_FRACTION

WEIGHT_TOLERANCE = 1e-6
MAX_POOLS = 63  # pool membership is a bitmask of at most 64 bits in the selection query
_POOL_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_ORDER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s+(desc|asc)\s*$", re.IGNORECASE)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGbBtT]?)\s*$")
_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9, "t": 10**12}


# One error type for every settings file (formats.settings); the name stays for library callers.
SpecError = SettingsError


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


def parse_tokens(value: Any) -> int | None:
    """A token count: an integer, or a string like "20M", "1.5B"; "max" (None) means the largest feasible total.
    Raises :class:`Invalid` (the settings loader names the file and key)."""
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, str) and value.strip().lower() == "max":
        return None
    elif isinstance(value, str) and (m := _SIZE.match(value)):
        n = int(Fraction(m.group(1)) * _SUFFIX[m.group(2).lower()])
    else:
        raise Invalid(f"expected a token count like 20000000, \"20M\" or \"max\", got {show(value)}")
    if n <= 0:
        raise Invalid(f"expected a positive token count, got {show(value)}")
    return n


def _expressions(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise Invalid(f"expected a SQL expression or a list of them, got {show(value)}")
    return tuple(v.strip() for v in value)


def _order(value: Any) -> str:
    if not isinstance(value, str) or not (value.strip().lower() == "random" or _ORDER.match(value)):
        raise Invalid(f"expected \"random\" or \"<score column> desc\" (e.g. \"score_math_reasoning desc\"), "
                      f"got {show(value)}")
    return "random" if value.strip().lower() == "random" else " ".join(value.split()).lower()


def _text(what: str) -> Any:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise Invalid(f"expected {what}, got {show(value)}")
        return value.strip()
    return parse


def _pool_name(name: str) -> None:
    if not _POOL_NAME.match(name):
        raise Invalid("a pool name may only use letters, digits, '_', '-' and '.'")


@dataclass(frozen=True)
class PoolTable:
    """A ``[pools.<name>]`` table as written; unset max_repetition/order take the spec's top-level values."""

    weight: Fraction = setting(ge=0, note="a fraction of total_tokens, e.g. weight = 0.25")
    where: str | None = setting(None, parse=_text("a non-empty SQL boolean expression"))
    source: str | None = setting(None, parse=_text("a source name such as \"web-crawl\""))
    max_repetition: Fraction | None = setting(None, ge=1, note="1 = never repeat a segment")
    order: str | None = setting(None, parse=_order)

    def settings_check(self) -> None:
        if self.where is None and self.source is None:
            raise Invalid("give where = \"<SQL boolean expression>\" or source = \"<LSBS source>\"")


@dataclass(frozen=True)
class SpecTable:
    """A spec file as written (docs/mixtures.md)."""

    total_tokens: int | None = setting(parse=parse_tokens, note="e.g. total_tokens = \"20M\", or \"max\"")
    name: str | None = setting(None, parse=_text("a non-empty string"))
    description: str = ""
    seed: int = setting(0, ge=0)
    max_repetition: Fraction = setting(Fraction(1), ge=1, note="1 = never repeat a segment")
    order: str = setting("random", parse=_order)
    exclude: tuple[str, ...] = setting((), parse=_expressions)
    precedence: tuple[str, ...] | None = setting(None, parse=_expressions)
    heldout_fraction: float = setting(DEFAULT_HELDOUT_FRACTION, ge=0, lt=1)
    pools: dict[str, PoolTable] = setting(default_factory=dict, key_check=_pool_name)
    provenance: dict[str, Any] = setting(default_factory=dict)


def parse_spec(doc: Settings, normalize: bool = False) -> MixtureSpec:
    """Validate a spec document (from :meth:`Settings.read`/``parse``, overrides applied)."""
    t = doc.load(SpecTable)
    if not t.pools:
        raise doc.error((), "pools", "no pools; add [pools.<name>] tables with where/source and weight")
    if len(t.pools) > MAX_POOLS:
        raise doc.error((), "pools", f"{len(t.pools)} pools; at most {MAX_POOLS} are supported")
    pools = tuple(PoolSpec(name, p.weight, p.where, p.source,
                           t.max_repetition if p.max_repetition is None else p.max_repetition,
                           t.order if p.order is None else p.order) for name, p in t.pools.items())
    _check_weights(pools, doc, normalize)
    if t.precedence is not None and sorted(t.precedence) != sorted(p.name for p in pools):
        raise doc.error((), "precedence", f"{list(t.precedence)} must list every pool exactly once "
                                          f"({[p.name for p in pools]})")
    return MixtureSpec(name=t.name if t.name is not None else Path(doc.file).stem, total_tokens=t.total_tokens,
                       seed=t.seed, pools=pools, exclude=t.exclude, precedence=t.precedence,
                       heldout_fraction=t.heldout_fraction, description=t.description, normalized=normalize)


def _check_weights(pools: tuple[PoolSpec, ...], doc: Settings, normalize: bool) -> None:
    total = sum((p.weight for p in pools), Fraction(0))
    if total == 0:
        raise doc.error("pools", "", "all pool weights are 0")
    if not normalize and abs(total - 1) > Fraction(WEIGHT_TOLERANCE):
        listing = ", ".join(f"{p.name}={decimal_text(p.weight)}" for p in pools)
        raise doc.error("pools", "", f"pool weights sum to {decimal_text(total)}, not 1 ({listing}); "
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
    raise SpecError(str(spec), problem=f"neither a file nor a preset name (presets: {hint}, "
                                       f"lsbs_vision_r<R>_v<V>; `foresight mix presets` lists them)")


def load_spec(spec: str | Path, normalize: bool = False, total_tokens: int | str | None = None,
              seed: int | None = None, overrides: Mapping[str, Any] | Sequence[str] | None = None) -> MixtureSpec:
    """Read and validate a spec file or preset; ``total_tokens``/``seed`` (``--total-tokens``/``--seed``) and
    ``overrides`` (``--set KEY=VALUE`` strings or a nested mapping) override the file's values."""
    path = resolve_spec_path(spec)
    doc = Settings.read(path).override(overrides)
    if total_tokens is not None:
        doc.override({"total_tokens": total_tokens}, "--total-tokens")
    if seed is not None:
        doc.override({"seed": seed}, "--seed")
    parsed = parse_spec(doc, normalize)
    return replace(parsed, path=str(path), text=doc.text, sha256=hashlib.sha256(doc.text.encode()).hexdigest())


__all__ = ["MixtureSpec", "PoolSpec", "SpecError", "load_spec", "parse_spec", "parse_tokens", "preset_names",
           "resolve_spec_path", "round_weights", "weight_text"]
