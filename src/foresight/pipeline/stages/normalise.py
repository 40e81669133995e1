"""Normalise stage: Unicode NFC, control characters stripped, line endings unified (a datatrove
``BaseFormatter``); then a document left empty is dropped as ``empty`` (a datatrove ``BaseFilter``)."""

from __future__ import annotations

import re
import unicodedata

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.formatters.base import BaseFormatter

# C0/C1 control characters except tab (\x09) and newline (\x0a); \r is handled as a line ending first.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff]")
_LINE_ENDINGS = re.compile("\r\n?|[\u2028\u2029\x85]")


def normalise_text(text: str) -> str:
    text = _LINE_ENDINGS.sub("\n", text)
    text = _CONTROL.sub("", text)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return text


class Normalise(BaseFormatter):
    name = "🧽 normalise"

    def format(self, text: str) -> str:
        return normalise_text(text)


class DropEmpty(BaseFilter):
    """Drops a document with no visible text (datatrove counts ``dropped_empty``)."""

    name = "🫙 drop empty"

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return True if doc.text.strip() else (False, "empty")
