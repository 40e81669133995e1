"""``pipeline.toml``: the curation pipeline's settings, validated, with defaults for every key.

Each section maps onto one stage (see docs/pipeline.md). Unknown sections or keys are errors that name
the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

import tomllib

from foresight.formats.errors import InputError

# Curated sources whose text is not web prose (names match the sample corpus / LSBS sources).
CURATED = ("code", "math", "academia", "encyclopedia")


@dataclass(frozen=True)
class ReadConfig:
    text_key: str = "text"
    # Documents longer than this (characters) are counted as errored/too_large instead of clogging the
    # word-level filters; raise it if your corpus has legitimately huge documents (docs/pipeline.md: memory).
    max_doc_chars: int = 5_000_000


@dataclass(frozen=True)
class NormaliseConfig:
    enabled: bool = True


@dataclass(frozen=True)
class FilterConfig:
    """One datatrove quality filter: ``kwargs`` are its constructor arguments (free-form, checked by it)."""

    enabled: bool = True
    exempt_sources: tuple[str, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


def _default_filters() -> dict[str, FilterConfig]:
    # Gopher/C4/FineWeb are web-text heuristics: on formulas, doctests, verse or one-line glosses they misfire
    # (e.g. >90 % of math/academia docstrings fail Gopher's alpha-word ratio); recipes (food) are ingredient
    # lists that fail the alpha-word and line-punctuation rules. Exempt sources skip the filter. C4 rewrites
    # documents (drops lines without terminal punctuation), so it is off by default.
    return {"gopher_repetition": FilterConfig(True, ("code", "math", "academia")),
            "gopher_quality": FilterConfig(True, (*CURATED, "literature", "food")),
            "fineweb_quality": FilterConfig(True, (*CURATED, "literature", "food")),
            "c4": FilterConfig(False, (*CURATED, "literature"))}


@dataclass(frozen=True)
class LanguageConfig:
    enabled: bool = True
    languages: tuple[str, ...] = ("en",)
    threshold: float = 0.65
    # lid.176 scores code and formula-heavy text low; these sources (and detected code) are exempt.
    exempt_sources: tuple[str, ...] = ("code", "math", "academia")
    detect_code: bool = True


@dataclass(frozen=True)
class ExactDedupConfig:
    enabled: bool = True


@dataclass(frozen=True)
class MinhashDedupConfig:
    enabled: bool = True
    n_grams: int = 5
    num_buckets: int = 14
    hashes_per_bucket: int = 8
    seed: int = 1


@dataclass(frozen=True)
class DedupConfig:
    exact: ExactDedupConfig = ExactDedupConfig()
    minhash: MinhashDedupConfig = MinhashDedupConfig()


@dataclass(frozen=True)
class SegmentConfig:
    max_tokens: int = 1024
    batch_size: int = 256


@dataclass(frozen=True)
class TokenizeConfig:
    batch_size: int = 256


@dataclass(frozen=True)
class ClassifyConfig:
    enabled: bool = True
    model: str = ""
    batch_size: int = 64
    device: str = "auto"


@dataclass(frozen=True)
class WriteConfig:
    rows_per_group: int = 2048
    # write every dropped/errored document, with its reason, to OUT/excluded/<step>/ (--exclusions)
    exclusions: bool = False


@dataclass(frozen=True)
class SlurmConfig:
    partition: str = ""
    time: str = "24:00:00"
    cpus_per_task: int = 1
    mem_per_cpu_gb: int = 2
    qos: str = "normal"
    venv_path: str = ""


@dataclass(frozen=True)
class RayConfig:
    cpus_per_task: int = 1
    mem_per_cpu_gb: float = 2.0


@dataclass(frozen=True)
class ExecutorConfig:
    """How --executor slurm|ray size their jobs (not part of the data: left out of index.json)."""

    slurm: SlurmConfig = SlurmConfig()
    ray: RayConfig = RayConfig()


@dataclass(frozen=True)
class PipelineConfig:
    """Every setting of a curation run; each section maps onto one stage (docs/pipeline.md)."""

    read: ReadConfig = ReadConfig()
    normalise: NormaliseConfig = NormaliseConfig()
    filters: Mapping[str, FilterConfig] = field(default_factory=_default_filters)
    language: LanguageConfig = LanguageConfig()
    dedup: DedupConfig = DedupConfig()
    segment: SegmentConfig = SegmentConfig()
    tokenize: TokenizeConfig = TokenizeConfig()
    classify: ClassifyConfig = ClassifyConfig()
    write: WriteConfig = WriteConfig()
    executor: ExecutorConfig = ExecutorConfig()

    def as_dict(self) -> dict[str, Any]:
        """The nested-table form, as in pipeline.toml (and index.json): filter kwargs sit in their section."""
        return _to_dict(self)


def _to_dict(obj: Any) -> Any:
    if isinstance(obj, FilterConfig):
        return {"enabled": obj.enabled, "exempt_sources": list(obj.exempt_sources), **dict(obj.kwargs)}
    if is_dataclass(obj):
        return {f.name: _to_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, Mapping):
        return {k: _to_dict(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return list(obj)
    return obj


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    """The dataclass ``cls`` from its (already validated) nested-table form."""
    if cls is FilterConfig:
        meta = {k: data[k] for k in FILTER_META_KEYS if k in data}
        return FilterConfig(meta.get("enabled", True), tuple(meta.get("exempt_sources", ())),
                            {k: v for k, v in data.items() if k not in FILTER_META_KEYS})
    hints = get_type_hints(cls)
    out = {}
    for f in fields(cls):
        value, hint = data[f.name], hints[f.name]
        if is_dataclass(hint):
            value = _from_dict(hint, value)
        elif f.name == "filters":
            value = {name: _from_dict(FilterConfig, section) for name, section in value.items()}
        elif isinstance(value, list):
            value = tuple(value)
        out[f.name] = value
    return cls(**out)


# Every setting with its default, in the nested-table form the TOML file is checked against.
DEFAULTS: dict[str, Any] = PipelineConfig().as_dict()

# Keys whose values are free-form keyword arguments for a datatrove filter (passed through unchecked).
FILTER_SECTIONS = ("gopher_repetition", "gopher_quality", "fineweb_quality", "c4")
FILTER_META_KEYS = ("enabled", "exempt_sources")


class ConfigError(InputError):
    """pipeline.toml is malformed or names an unknown key."""


def _merge(defaults: dict[str, Any], given: dict[str, Any], where: str, free_form: bool = False) -> dict[str, Any]:
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        path = f"{where}.{key}" if where else key
        if key not in defaults:
            if free_form:  # datatrove filter kwargs: validated when the filter is constructed
                out[key] = value
                continue
            known = ", ".join(sorted(defaults))
            raise ConfigError(f"unknown key [{path}] in pipeline.toml; known keys here: {known}")
        if isinstance(defaults[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"[{path}] must be a table, got {type(value).__name__}")
            out[key] = _merge(defaults[key], value, path, free_form=where == "filters")
        else:
            out[key] = _check_type(defaults[key], value, path)
    return out


def _check_type(default: Any, value: Any, path: str) -> Any:
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, list):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(f"[{path}] = {value!r}: expected {type(default).__name__} like {default!r}")
    return value


def validate(cfg: PipelineConfig) -> PipelineConfig:
    """Check value ranges that the type check cannot."""
    if cfg.segment.max_tokens < 16:
        raise ConfigError(f"[segment.max_tokens] = {cfg.segment.max_tokens}: must be ≥ 16")
    if not 0.0 <= cfg.language.threshold <= 1.0:
        raise ConfigError(f"[language.threshold] = {cfg.language.threshold}: must be between 0 and 1")
    if cfg.language.enabled and not cfg.language.languages:
        raise ConfigError("[language.languages] is empty: list the languages to keep, e.g. [\"en\"]")
    for section in ("segment", "tokenize", "classify"):
        if getattr(cfg, section).batch_size < 1:
            raise ConfigError(f"[{section}.batch_size] must be ≥ 1")
    if cfg.read.max_doc_chars < 1:
        raise ConfigError("[read.max_doc_chars] must be ≥ 1")
    return cfg


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Defaults, updated by the TOML file at ``path`` (if any) and then by ``overrides`` (same shape); every key
    is checked by name and type, and the result is a frozen :class:`PipelineConfig`."""
    given: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config {path} not found; see docs/pipeline.example.toml for a template")
        try:
            given = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, RecursionError) as e:  # RecursionError: nested too deeply
            raise ConfigError(f"{path} is not valid TOML: {e}") from None
    cfg = _merge(DEFAULTS, given, "")
    if overrides:
        cfg = _merge(cfg, overrides, "")
    return validate(_from_dict(PipelineConfig, cfg))
