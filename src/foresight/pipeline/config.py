"""``pipeline.toml``: the curation pipeline's settings, validated, with defaults for every key.

Each section maps onto one stage (see docs/pipeline.md). Unknown sections or keys are errors that name
the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

from foresight.formats.settings import Invalid, Settings, setting, show, unknown

# Curated sources whose text is not web prose (names match the sample corpus / LSBS sources).
CURATED = ("code", "math", "academia", "encyclopedia")


@dataclass(frozen=True)
class ReadConfig:
    text_key: str = "text"
    # Documents longer than this (characters) are counted as errored/too_large instead of clogging the
    # word-level filters; raise it if your corpus has legitimately huge documents (docs/pipeline.md: memory).
    max_doc_chars: int = setting(5_000_000, ge=1)


@dataclass(frozen=True)
class NormaliseConfig:
    enabled: bool = True


@dataclass(frozen=True)
class FilterConfig:
    """One datatrove quality filter: ``kwargs`` are its constructor arguments (the table's other keys, free-form,
    checked by the filter when it is built)."""

    enabled: bool = True
    exempt_sources: tuple[str, ...] = ()
    kwargs: Mapping[str, Any] = setting(default_factory=dict, rest=True)


def filter_class(name: str) -> Any:
    """The datatrove filter behind a [filters.<name>] table."""
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    return {"gopher_repetition": GopherRepetitionFilter, "gopher_quality": GopherQualityFilter,
            "fineweb_quality": FineWebQualityFilter, "c4": C4QualityFilter}[name]


def check_filter_kwargs(name: str, kwargs: Mapping[str, Any]) -> None:
    """A filter table's other keys must be keyword arguments of its datatrove filter (checked when the file is
    read, so a typo names the file, the table and the key instead of failing when the stage is built)."""
    if not kwargs:
        return
    known = [p for p in inspect.signature(filter_class(name).__init__).parameters
             if p not in ("self", "exclusion_writer")]
    for key in kwargs:
        if key not in known:
            raise Invalid(unknown(key, known), key)
    if not isinstance(kwargs.get("language", "en"), str):
        raise Invalid(f"expected a language code such as \"en\", got {show(kwargs['language'])}", "language")


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
    threshold: float = setting(0.65, ge=0.0, le=1.0)
    # lid.176 scores code and formula-heavy text low; these sources (and detected code) are exempt.
    exempt_sources: tuple[str, ...] = ("code", "math", "academia")
    detect_code: bool = True

    def settings_check(self) -> None:
        if self.enabled and not self.languages:
            raise Invalid("empty: list the languages to keep, e.g. [\"en\"], or set enabled = false",
                          "languages")


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
    max_tokens: int = setting(1024, ge=16)
    batch_size: int = setting(256, ge=1)


@dataclass(frozen=True)
class TokenizeConfig:
    batch_size: int = setting(256, ge=1)


@dataclass(frozen=True)
class ClassifyConfig:
    enabled: bool = True
    model: str = ""
    batch_size: int = setting(64, ge=1)
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
    retries: int = setting(3, ge=0)  # Ray reruns a task whose worker process or node died, up to this many times


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
    filters: Mapping[str, FilterConfig] = setting(default_factory=_default_filters,
                                                  entry_check=lambda name, f: check_filter_kwargs(name, f.kwargs))
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


# The datatrove filters a [filters.<name>] table may configure (the default filter set).
FILTER_SECTIONS = ("gopher_repetition", "gopher_quality", "fineweb_quality", "c4")


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | Sequence[str] | None = None,
                ) -> PipelineConfig:
    """Defaults, updated by the TOML file at ``path`` (if any) and then by ``overrides`` (the same nested shape,
    or ``--set`` strings such as ``segment.max_tokens=512``); every key is checked by name, type and range
    (formats.settings), and the result is a frozen :class:`PipelineConfig`."""
    if path is not None and not Path(path).is_file():
        raise FileNotFoundError(f"config {path} not found; see docs/pipeline.example.toml for a template")
    doc = Settings.read(path) if path is not None else Settings({}, "pipeline.toml")
    return doc.override(overrides).load(PipelineConfig)
