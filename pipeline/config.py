"""``pipeline.toml``: the curation pipeline's settings, validated, with defaults for every key.

Each section maps onto one stage (see docs/pipeline.md). Unknown sections or keys are errors that name
the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import tomllib

# Curated sources whose text is not web prose (names match the sample corpus / LSBS sources).
CURATED = ["code", "math", "academia", "encyclopedia"]

# Every setting with its default. Nested tables are sections; scalars/lists are values.
DEFAULTS: dict[str, Any] = {
    "read": {
        "text_key": "text",
        # Documents longer than this (characters) are counted as errored/too_large instead of clogging the
        # word-level filters; raise it if your corpus has legitimately huge documents.
        "max_doc_chars": 5_000_000,
    },
    "normalise": {"enabled": True},
    "filters": {
        # Gopher/C4/FineWeb are web-text heuristics: on formulas, doctests, verse or one-line glosses they
        # misfire (e.g. >90 % of math/academia docstrings fail Gopher's alpha-word ratio). Sources listed in
        # exempt_sources skip the filter; anything else (web-crawl, your own sources) is filtered.
        "gopher_repetition": {"enabled": True, "exempt_sources": ["code", "math", "academia"]},
        # recipes (food) are ingredient lists: numerals and fractions fail the alpha-word and line-punctuation rules
        "gopher_quality": {"enabled": True, "exempt_sources": CURATED + ["literature", "food"]},
        "fineweb_quality": {"enabled": True, "exempt_sources": CURATED + ["literature", "food"]},
        # C4 rewrites documents (drops lines without terminal punctuation), so it is off by default.
        "c4": {"enabled": False, "exempt_sources": CURATED + ["literature"]},
    },
    "language": {
        "enabled": True,
        "languages": ["en"],
        "threshold": 0.65,
        # lid.176 scores code and formula-heavy text low; these sources (and detected code) are exempt.
        "exempt_sources": ["code", "math", "academia"],
        "detect_code": True,
    },
    "dedup": {
        "exact": {"enabled": True},
        "minhash": {"enabled": True, "n_grams": 5, "num_buckets": 14, "hashes_per_bucket": 8, "seed": 1},
    },
    "segment": {"max_tokens": 1024, "batch_size": 256},
    "tokenize": {"batch_size": 256},
    "classify": {"enabled": True, "model": "", "batch_size": 64, "device": "auto"},
    # exclusions: write every dropped/errored document, with its reason, to OUT/excluded/<step>/ (--exclusions)
    "write": {"rows_per_group": 2048, "exclusions": False},
    # How --executor slurm|ray size their jobs (not part of the data: left out of index.json).
    "executor": {
        "slurm": {"partition": "", "time": "24:00:00", "cpus_per_task": 1, "mem_per_cpu_gb": 2, "qos": "normal",
                  "venv_path": ""},
        "ray": {"cpus_per_task": 1, "mem_per_cpu_gb": 2.0},
    },
}

# Keys whose values are free-form keyword arguments for a datatrove filter (passed through unchecked).
FILTER_SECTIONS = ("gopher_repetition", "gopher_quality", "fineweb_quality", "c4")
FILTER_META_KEYS = ("enabled", "exempt_sources")


class ConfigError(ValueError):
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


def validate(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check value ranges that the type check cannot."""
    seg = cfg["segment"]["max_tokens"]
    if seg < 16:
        raise ConfigError(f"[segment.max_tokens] = {seg}: must be ≥ 16")
    thr = cfg["language"]["threshold"]
    if not 0.0 <= thr <= 1.0:
        raise ConfigError(f"[language.threshold] = {thr}: must be between 0 and 1")
    if cfg["language"]["enabled"] and not cfg["language"]["languages"]:
        raise ConfigError("[language.languages] is empty: list the languages to keep, e.g. [\"en\"]")
    for key in ("batch_size",):
        for section in ("segment", "tokenize", "classify"):
            if cfg[section][key] < 1:
                raise ConfigError(f"[{section}.{key}] must be ≥ 1")
    if cfg["read"]["max_doc_chars"] < 1:
        raise ConfigError("[read.max_doc_chars] must be ≥ 1")
    return cfg


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, updated by the TOML file at ``path`` (if any) and then by ``overrides`` (same shape)."""
    given: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config {path} not found; see docs/pipeline.example.toml for a template")
        try:
            given = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path} is not valid TOML: {e}") from e
    cfg = _merge(DEFAULTS, given, "")
    if overrides:
        cfg = _merge(cfg, overrides, "")
    return validate(cfg)


def filter_kwargs(section: dict[str, Any]) -> dict[str, Any]:
    """The datatrove constructor arguments of a filter section (everything but our meta keys)."""
    return {k: v for k, v in section.items() if k not in FILTER_META_KEYS}
