"""Segment stage: split each document into segments of at most ``max_tokens`` tokens (EOS included),
at paragraph breaks, then line breaks, then token boundaries. Segments concatenate back to the document.

Each segment is a Document with id ``<doc_id>#<i>`` and metadata ``doc_id``/``segment``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from datatrove.data import Document, DocumentsPipeline
from datatrove.utils.batching import batched

from pipeline.stages.base import CountingStep
from pipeline.stages.tokenize import encode_plain, special_literals

Counter = Callable[[list[str]], list[int]]
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_LINE = re.compile(r"\n+")


def _split_after(text: str, pattern: re.Pattern[str]) -> list[str]:
    """Split ``text`` after each match, keeping the separators (so ``"".join(parts) == text``)."""
    parts, start = [], 0
    for m in pattern.finditer(text):
        if m.end() < len(text):
            parts.append(text[start:m.end()])
            start = m.end()
    parts.append(text[start:])
    return parts


def _token_chunks(text: str, limit: int, tokenizer, count: Counter) -> list[str]:
    """Cut ``text`` at token boundaries into chunks of at most ``limit`` tokens each (re-checked)."""
    enc = tokenizer.encode(text, add_special_tokens=False)
    offsets = [o[0] for o in enc.offsets]
    chunks, start_tok = [], 0
    while start_tok < len(offsets):
        n = limit
        while True:
            end_tok = min(start_tok + n, len(offsets))
            a = offsets[start_tok] if start_tok else 0
            b = offsets[end_tok] if end_tok < len(offsets) else len(text)
            piece = text[a:b]
            if b <= a:  # several tokens share one character (a multi-byte char split by BPE): take more
                n += 1
                continue
            if count([piece])[0] <= limit or n == 1:
                break
            n -= max(1, count([piece])[0] - limit)
        chunks.append(piece)
        start_tok = end_tok
    return chunks


def split_text(text: str, limit: int, tokenizer, count: Counter, n_tokens: int | None = None) -> list[str]:
    """Pieces of ``text`` with at most ``limit`` tokens each, packed greedily from the coarsest boundaries."""
    if n_tokens is None:
        n_tokens = count([text])[0]
    if n_tokens <= limit:
        return [text]
    units, sizes = _units(_split_after(text, _PARAGRAPH), limit, tokenizer, count, level=0)
    return _pack(units, sizes, limit, count)


def _units(parts: list[str], limit: int, tokenizer, count: Counter, level: int) -> tuple[list[str], list[int]]:
    """Parts that fit as they are; the others split into lines (level 0 → 1), then token chunks."""
    units: list[str] = []
    sizes: list[int] = []
    for part, n in zip(parts, count(parts), strict=True):
        if n <= limit:
            units.append(part)
            sizes.append(n)
        elif level == 0:
            u, s = _units(_split_after(part, _LINE), limit, tokenizer, count, level=1)
            units += u
            sizes += s
        else:
            chunks = _token_chunks(part, limit, tokenizer, count)
            units += chunks
            sizes += count(chunks)
    return units, sizes


def _greedy(sizes: list[int], limit: int) -> list[tuple[int, int]]:
    spans, i = [], 0
    while i < len(sizes):
        j, total = i + 1, sizes[i]
        while j < len(sizes) and total + sizes[j] <= limit:
            total += sizes[j]
            j += 1
        spans.append((i, j))
        i = j
    return spans


def _pack(units: list[str], sizes: list[int], limit: int, count: Counter) -> list[str]:
    """Greedy packing, then an exact re-count of every segment in one batch (BPE counts are not additive
    across a join); in the rare case a joined segment tokenises longer, pack one segment at a time."""
    spans = _greedy(sizes, limit)
    segments = ["".join(units[i:j]) for i, j in spans]
    if all(n <= limit for n in count(segments)):
        return segments
    segments, i = [], 0
    while i < len(units):
        j = _greedy(sizes[i:], limit)[0][1] + i
        while j - i > 1 and count(["".join(units[i:j])])[0] > limit:
            j -= 1  # give back the last unit to the next segment
        segments.append("".join(units[i:j]))
        i = j
    return segments


class Segmenter(CountingStep):
    """Turns documents into segment documents; short documents (by a byte bound) skip tokenisation."""

    name = "✂️ segment"
    type = "✂️ - SEGMENT"

    def __init__(self, tokenizer_path: str, max_tokens: int = 1024, batch_size: int = 256) -> None:
        super().__init__()
        self.tokenizer_path = tokenizer_path
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self._tok = None
        self._specials: tuple[str, ...] = ()

    @property
    def tokenizer(self):
        if self._tok is None:
            from pipeline.tokenizer import load_tokenizer

            self._tok, _ = load_tokenizer(self.tokenizer_path)
            self._specials = special_literals(self._tok)
        return self._tok

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Exactly what the tokenize stage will produce (special-token literals encoded as text)."""
        return [len(ids) for ids in encode_plain(self.tokenizer, texts, self._specials)]

    def segments(self, docs: list[Document]) -> list[list[str]]:
        limit = self.max_tokens - 1  # room for the EOS
        # Every byte-level BPE token covers at least one byte: a text of ≤ limit bytes always fits.
        long_idx = [i for i, d in enumerate(docs) if len(d.text) > limit // 4 and len(d.text.encode()) > limit]
        counts = dict(zip(long_idx, self.count_tokens([docs[i].text for i in long_idx]), strict=True))
        return [split_text(d.text, limit, self.tokenizer, self.count_tokens, counts[i]) if i in counts else [d.text]
                for i, d in enumerate(docs)]

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for batch in batched(data, self.batch_size):
            with self.track_time("batch"):
                pieces = self.segments(batch)
            for doc, texts in zip(batch, pieces, strict=True):
                for i, text in enumerate(texts):
                    meta = dict(doc.metadata, doc_id=doc.id, segment=i)
                    yield Document(text=text, id=f"{doc.id}#{i}", metadata=meta)
