"""Normalise stage: Unicode NFC, control characters stripped, line endings unified; empty → dropped."""

from __future__ import annotations

import re
import unicodedata

from datatrove.data import DocumentsPipeline

from pipeline.stages.base import CountingStep

# C0/C1 control characters except tab (\x09) and newline (\x0a); \r is handled as a line ending first.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff]")
_LINE_ENDINGS = re.compile("\r\n?|[\u2028\u2029\x85]")


def normalise_text(text: str) -> str:
    text = _LINE_ENDINGS.sub("\n", text)
    text = _CONTROL.sub("", text)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return text


class Normalise(CountingStep):
    name = "🧽 normalise"
    type = "✂️ - FORMAT"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.excluding(rank):
            for doc in data:
                with self.track_time():
                    doc.text = normalise_text(doc.text)
                if not doc.text.strip():
                    self.drop("empty", doc=doc)
                    continue
                yield doc
