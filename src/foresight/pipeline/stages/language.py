"""Language stage: fastText lid.176 keeps documents in the configured languages; code is exempt."""

from __future__ import annotations

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from foresight.pipeline.langid import LanguageIdentifier, looks_like_code


class LanguageFilter(BaseFilter):
    """Drops a document whose top language is not listed (``language:<code>``) or scores under ``threshold``
    (``language:low_score``); a datatrove ``BaseFilter``, so datatrove counts each drop with its reason
    (``dropped_language:fr``) and hands it to the exclusion writer.

    Language ID scores source code low, so documents whose source is listed in ``exempt_sources`` or
    that the code detector recognises pass untouched. Every document gets ``lang`` and ``lang_score``
    metadata (the score becomes the shards' ``lang_score`` signal column).
    """

    name = "🌍 language filter"
    type = "🔻 - FILTER"

    def __init__(self, languages: list[str], threshold: float = 0.65, exempt_sources: list[str] | None = None,
                 detect_code: bool = True, batch_size: int = 256, model_path: str | None = None) -> None:
        super().__init__(batch_size=batch_size)
        self.languages = frozenset(languages)
        self.threshold = threshold
        self.exempt_sources = frozenset(exempt_sources or [])
        self.detect_code = detect_code
        self.lid = LanguageIdentifier(model_path)

    def _exempt(self, doc: Document) -> bool:
        return doc.metadata.get("source") in self.exempt_sources or (self.detect_code and looks_like_code(doc.text))

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        preds = self.lid.predict([d.text[:4000] for d in batch])
        out: list[bool | tuple[bool, str]] = []
        for doc, (lang, score) in zip(batch, preds, strict=True):
            doc.metadata["lang"], doc.metadata["lang_score"] = lang, score
            if self._exempt(doc):
                self.stat_update("exempt_code")
                out.append(True)
            elif lang not in self.languages:
                out.append((False, f"language:{lang or 'unknown'}"))
            elif score < self.threshold:
                out.append((False, "language:low_score"))
            else:
                out.append(True)
        return out
