"""Quality stage: datatrove's Gopher repetition/quality, FineWeb quality and C4 filters, each switchable and
each its own datatrove filter step; the only addition is per-source exemptions (prose heuristics mislabel
source code, formulas and recipes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter, get_filter_result

from foresight.formats.errors import InputError
from foresight.pipeline.config import FILTER_SECTIONS, FilterConfig, filter_class
from foresight.pipeline.stages.words import release_word_cache, windowed

_LONG_TEXT = 1 << 20  # after a text this long, datatrove's word cache is cleared


def make_filter(name: str, kwargs: dict[str, Any]) -> BaseFilter:
    kwargs = dict(kwargs)  # names checked when pipeline.toml was read (config.check_filter_kwargs)
    language = kwargs.pop("language", "en")
    try:
        return filter_class(name)(language=windowed(language), **kwargs)
    except TypeError as e:
        raise InputError(f"[filters.{name}] in pipeline.toml: {e}") from e


class ExemptFilter(BaseFilter):
    """One datatrove quality filter as its own pipeline step, skipped for exempt sources.

    datatrove's ``BaseFilter.run`` does the bookkeeping: ``dropped_<reason>`` per drop (read by the accounting
    as ``dropped/<reason>``), the step's timing, and the exclusion writer with ``metadata["filter_reason"]``.
    Reasons are ``<filter>:<datatrove reason>``, or ``empty`` when a rewriting filter (C4) leaves no text.
    """

    type = "🔻 - FILTER"

    def __init__(self, filter_name: str, inner: BaseFilter, exempt_sources: frozenset[str] = frozenset(),
                 release_words: bool = False, exclusion_writer: Any = None) -> None:
        self.name = f"🔻 {filter_name}"  # before datatrove's __init__, which names the step's stats after it
        super().__init__(exclusion_writer)
        self.filter_name, self.inner, self.exempt_sources = filter_name, inner, exempt_sources
        self.release_words = release_words  # the last filter of the chain clears datatrove's word cache

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        try:
            return self._verdict(doc)
        finally:  # also when this last filter exempts a long document the earlier ones split into words
            if self.release_words and len(doc.text) > _LONG_TEXT:
                release_word_cache()

    def _verdict(self, doc: Document) -> bool | tuple[bool, str]:
        if doc.metadata.get("source") in self.exempt_sources:
            return True
        ok, why = get_filter_result(self.inner.filter(doc))
        if not ok:
            return False, f"{self.filter_name}:{why or 'rejected'}"
        if not doc.text.strip():
            return False, "empty"
        return True


def quality_filters(sections: Mapping[str, FilterConfig]) -> list[ExemptFilter]:
    """The enabled filters in config order, each its own step. Constructed now, so a bad keyword argument fails
    before any task starts."""
    enabled = [(n, s) for n, s in sections.items() if n in FILTER_SECTIONS and s.enabled]
    return [ExemptFilter(n, make_filter(n, dict(s.kwargs)), frozenset(s.exempt_sources), i == len(enabled) - 1)
            for i, (n, s) in enumerate(enabled)]
