"""Language stage: fastText lid.176 keeps documents in the configured languages; code is exempt."""

from __future__ import annotations

from datatrove.data import Document, DocumentsPipeline
from datatrove.utils.batching import batched

from pipeline.langid import LanguageIdentifier, looks_like_code
from pipeline.stages.base import CountingStep


class LanguageFilter(CountingStep):
    """Drops a document whose top language is not listed or scores under ``threshold``.

    Language ID scores source code low, so documents whose source is listed in ``exempt_sources`` or
    that the code detector recognises pass untouched. Every kept document gets ``lang`` and
    ``lang_score`` metadata (the score becomes the shards' ``lang_score`` signal column).
    """

    name = "🌍 language filter"
    type = "🔻 - FILTER"

    def __init__(self, languages: list[str], threshold: float = 0.65, exempt_sources: list[str] | None = None,
                 detect_code: bool = True, batch_size: int = 256, model_path: str | None = None) -> None:
        super().__init__()
        self.languages = frozenset(languages)
        self.threshold = threshold
        self.exempt_sources = frozenset(exempt_sources or [])
        self.detect_code = detect_code
        self.batch_size = batch_size
        self.lid = LanguageIdentifier(model_path)

    def _exempt(self, doc: Document) -> bool:
        return doc.metadata.get("source") in self.exempt_sources or (self.detect_code and looks_like_code(doc.text))

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.excluding(rank):
            yield from self._run(data)

    def _run(self, data: DocumentsPipeline) -> DocumentsPipeline:
        for batch in batched(data, self.batch_size):
            with self.track_time("batch"):
                preds = self.lid.predict([d.text[:4000] for d in batch])
            for doc, (lang, score) in zip(batch, preds, strict=True):
                doc.metadata["lang"], doc.metadata["lang_score"] = lang, score
                if self._exempt(doc):
                    self.stat_update("exempt_code")
                    yield doc
                elif lang not in self.languages:
                    self.drop(f"language:{lang or 'unknown'}", doc=doc)
                elif score < self.threshold:
                    self.drop("language:low_score", doc=doc)
                else:
                    yield doc
