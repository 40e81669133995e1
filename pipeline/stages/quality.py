"""Quality stage: datatrove's Gopher repetition/quality, FineWeb quality and C4 filters, each switchable.

The datatrove filters are used as they are (their ``filter`` method); this step only adds per-source
exemptions (prose heuristics mislabel source code) and counts each drop as ``dropped/<filter>:<reason>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.filters.base_filter import BaseFilter, get_filter_result

from pipeline.config import FILTER_SECTIONS, FilterConfig
from pipeline.stages.base import CountingStep
from pipeline.stages.words import release_word_cache, windowed

_LONG_TEXT = 1 << 20  # after a text this long, datatrove's word cache is cleared


def make_filter(name: str, kwargs: dict[str, Any]) -> BaseFilter:
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    classes = {"gopher_repetition": GopherRepetitionFilter, "gopher_quality": GopherQualityFilter,
               "fineweb_quality": FineWebQualityFilter, "c4": C4QualityFilter}
    kwargs = dict(kwargs)
    language = kwargs.pop("language", "en")
    if not isinstance(language, str):
        raise ValueError(f"[filters.{name}] in pipeline.toml: language must be a language code such as \"en\"")
    try:
        return classes[name](language=windowed(language), **kwargs)
    except TypeError as e:
        raise ValueError(f"[filters.{name}] in pipeline.toml: {e}") from e


class QualityFilters(CountingStep):
    """Runs the enabled filters in order; the first that rejects a document names the drop reason."""

    name = "🔻 quality filters"
    type = "🔻 - FILTER"

    def __init__(self, sections: Mapping[str, FilterConfig]) -> None:
        super().__init__()
        self.sections = {n: s for n, s in sections.items() if n in FILTER_SECTIONS and s.enabled}
        # Constructed eagerly so a bad keyword argument fails before any task starts.
        self.filters = [(n, make_filter(n, dict(s.kwargs)), frozenset(s.exempt_sources))
                        for n, s in self.sections.items()]

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.excluding(rank):
            yield from self._run(data)

    def _run(self, data: DocumentsPipeline) -> DocumentsPipeline:
        for doc in data:
            reason = None
            with self.track_time():
                source = doc.metadata.get("source")
                for name, flt, exempt in self.filters:
                    if source in exempt:
                        continue
                    ok, why = get_filter_result(flt.filter(doc))
                    if not ok:
                        reason = f"{name}:{why or 'rejected'}"
                        break
                if len(doc.text) > _LONG_TEXT:
                    release_word_cache()
            if reason:
                self.drop(reason, doc=doc)
                continue
            if not doc.text.strip():  # C4 removes lines and can leave nothing
                self.drop("empty", doc=doc)
                continue
            yield doc
