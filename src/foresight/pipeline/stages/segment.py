"""Segment stage: split each document into segments of at most ``max_tokens`` tokens (EOS included),
at paragraph breaks, then line breaks, then token boundaries. Segments concatenate back to the document.

Each segment is a Document with id ``<doc_id>#<i>`` and metadata ``doc_id``/``segment``.

Memory is bounded by the document, not by its token count: a long document is cut into units that are
counted in batches of at most ``_BATCH_CHARS`` characters, and no text longer than ``_WINDOW`` characters is
ever encoded with offsets, so a 50 MB document costs a small multiple of its own size (docs/pipeline.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.batching import batched

from foresight.formats.tokenizer import encode_plain, plain_token_starts, special_literals
from foresight.pipeline.stages.words import whitespace_windows

Counter = Callable[[list[str]], list[int]]
Starts = Callable[[str], list[int]]
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_LINE = re.compile(r"\n+")
_WINDOW = 1 << 16  # longest text encoded with offsets at once (a longer line is first cut at whitespace)
_BATCH_CHARS = 1 << 20  # most characters counted in one tokenizer call


def _split_after(text: str, pattern: re.Pattern[str]) -> Iterator[str]:
    """Split ``text`` after each match, keeping the separators (so ``"".join(parts) == text``)."""
    start = 0
    for m in pattern.finditer(text):
        if m.end() < len(text):
            yield text[start:m.end()]
            start = m.end()
    yield text[start:]


def fit_counts(texts: list[str], count: Counter, too_long: int | None, over: int) -> list[int]:
    """Token counts of ``texts``; a text longer than ``too_long`` characters provably does not fit and gets
    ``over`` instead of being encoded (memory stays bounded by the longest text that could fit)."""
    if too_long is None:
        return count(texts)
    fits = [len(t) <= too_long for t in texts]
    counted = iter(count([t for t, f in zip(texts, fits, strict=True) if f]))
    return [next(counted) if f else over for f in fits]


def _char_batches(parts: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for part in parts:
        batch.append(part)
        size += len(part)
        if size >= _BATCH_CHARS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _token_chunks(text: str, limit: int, starts: Starts, count: Counter) -> Iterator[str]:
    """Cut ``text`` at token starts into chunks of at most ``limit`` tokens each (each chunk re-counted)."""
    offsets = starts(text)
    start_tok = 0
    while start_tok < len(offsets):
        n = limit
        while True:
            end_tok = min(start_tok + n, len(offsets))
            a = offsets[start_tok] if start_tok else 0
            b = offsets[end_tok] if end_tok < len(offsets) else len(text)
            if b <= a:  # several tokens share one character (a multi-byte char split by BPE): take more
                n += 1
                continue
            piece = text[a:b]
            size = count([piece])[0]
            if size <= limit or n == 1:
                break
            n = max(1, n - (size - limit))
        yield piece
        start_tok = end_tok


class _Splitter:
    """One document's segments: units (paragraphs, else lines, else token chunks) packed greedily."""

    def __init__(self, limit: int, starts: Starts, count: Counter, max_chars: int | None = None) -> None:
        self.limit, self.starts, self.count = limit, starts, count
        self.too_long = None if max_chars is None else limit * max_chars  # more characters never fit
        self._group = 8

    def units(self, parts: Iterable[str], level: int = 0) -> Iterator[tuple[str, int]]:
        """(unit, tokens) for each part that fits; the others split into lines (level 0 → 1), then chunks."""
        for batch in _char_batches(parts):
            for part, n in zip(batch, fit_counts(batch, self.count, self.too_long, self.limit + 1), strict=True):
                if n <= self.limit or level == 2:  # a token chunk is as small as it can be cut
                    yield part, n
                elif level == 0:
                    yield from self.units(_split_after(part, _LINE), level=1)
                else:
                    chunks = (c for w in whitespace_windows(part, _WINDOW)
                              for c in _token_chunks(w, self.limit, self.starts, self.count))
                    yield from self.units(chunks, level=2)

    def pack(self, units: Iterator[tuple[str, int]]) -> Iterator[str]:
        """Greedy packing by unit counts, each segment re-counted exactly (BPE counts are not additive across a
        join); a segment that tokenises longer gives back its last units to the next one."""
        texts: list[str] = []
        sizes: list[int] = []
        total, done = 0, False
        while texts or not done:
            while not done and total < 64 * self.limit:  # buffer enough units to close many segments
                nxt = next(units, None)
                if nxt is None:
                    done = True
                else:
                    texts.append(nxt[0])
                    sizes.append(nxt[1])
                    total += nxt[1]
            spans = _greedy(sizes, self.limit)
            if not done:
                spans = spans[:-1] or spans  # the last span may still grow with units not yet read
            used = yield from self._emit(texts, spans)
            total -= sum(sizes[:used])
            del texts[:used], sizes[:used]

    def _emit(self, texts: list[str], spans: list[tuple[int, int]]) -> Iterator[str]:
        """Yield verified segments for ``spans`` until the first that overflows (fixed by giving back units);
        return how many units were consumed. Spans are counted in groups that grow while they fit and shrink
        after an overflow, since every span after an overflow is recomputed."""
        k = 0
        while k < len(spans):
            group = spans[k:k + self._group]
            joined = ["".join(texts[i:j]) for i, j in group]
            for (i, j), seg, n in zip(group, joined, self.count(joined), strict=True):
                if n > self.limit:
                    while j - i > 1 and self.count(["".join(texts[i:j])])[0] > self.limit:
                        j -= 1
                    self._group = 1
                    yield "".join(texts[i:j])
                    return j
                yield seg
            k += len(group)
            self._group = min(2 * self._group, 64)
        return spans[-1][1]


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


def iter_split(text: str, limit: int, starts: Starts, count: Counter, n_tokens: int | None = None,
               max_chars: int | None = None) -> Iterator[str]:
    """Pieces of ``text`` with at most ``limit`` tokens each, packed greedily from the coarsest boundaries.

    ``n_tokens`` is the count of the whole text when known (a text that fits is one piece; any count over
    ``limit`` when the text is known not to fit). ``max_chars`` (most characters one token covers) lets long
    parts skip counting.
    """
    if n_tokens is None:
        n_tokens = count([text])[0]
    if n_tokens <= limit:
        yield text
        return
    splitter = _Splitter(limit, starts, count, max_chars)
    yield from splitter.pack(splitter.units(_split_after(text, _PARAGRAPH)))


def split_text(text: str, limit: int, tokenizer, count: Counter, n_tokens: int | None = None) -> list[str]:
    """``iter_split`` as a list, with token starts from ``tokenizer`` (no special-token literals expected)."""
    starts = lambda t: [o[0] for o in tokenizer.encode(t, add_special_tokens=False).offsets]  # noqa: E731
    return list(iter_split(text, limit, starts, count, n_tokens))


def max_token_chars(tok) -> int | None:
    """Most characters one token can cover, when the tokenizer makes that provable (byte-level BPE without a
    normalizer: every token is at most its longest vocabulary entry in bytes); None otherwise."""
    import json

    spec = json.loads(tok.to_str())
    if spec.get("normalizer") is not None or (spec.get("pre_tokenizer") or {}).get("type") != "ByteLevel":
        return None
    return max(len(t) for t in tok.get_vocab())


class Segmenter(PipelineStep):
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
        self._max_chars: int | None = None

    @property
    def tokenizer(self):
        if self._tok is None:
            from foresight.formats.tokenizer import load_tokenizer

            self._tok, _ = load_tokenizer(self.tokenizer_path)
            self._specials = special_literals(self._tok)
            self._max_chars = max_token_chars(self._tok)
        return self._tok

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Exactly what the tokenize stage will produce (special-token literals encoded as text)."""
        return [len(ids) for ids in encode_plain(self.tokenizer, texts, self._specials)]

    def token_starts(self, text: str) -> list[int]:
        return plain_token_starts(self.tokenizer, text, self._specials)

    def segments(self, docs: list[Document]) -> list[Iterator[str]]:
        limit = self.max_tokens - 1  # room for the EOS
        # Every byte-level BPE token covers at least one byte: a text of ≤ limit bytes always fits.
        long_idx = [i for i, d in enumerate(docs) if len(d.text) > limit // 4 and len(d.text.encode()) > limit]
        self.tokenizer  # noqa: B018 (loads the tokenizer and its bound)
        too_long = None if self._max_chars is None else limit * self._max_chars
        texts = [docs[i].text for i in long_idx]
        counts = dict(zip(long_idx, fit_counts(texts, self.count_tokens, too_long, limit + 1), strict=True))
        return [iter_split(d.text, limit, self.token_starts, self.count_tokens, counts[i], self._max_chars)
                if i in counts
                else iter([d.text]) for i, d in enumerate(docs)]

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for batch in batched(data, self.batch_size):
            with self.track_time("batch"):
                pieces = [list(p) for p in self.segments(batch)]
            for doc, texts in zip(batch, pieces, strict=True):
                for i, text in enumerate(texts):
                    meta = dict(doc.metadata, doc_id=doc.id, segment=i)
                    yield Document(text=text, id=f"{doc.id}#{i}", metadata=meta)
