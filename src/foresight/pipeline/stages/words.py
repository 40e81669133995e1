"""Word splitting in bounded memory, and faster, for datatrove's filters and MinHash (the same words).

datatrove's word tokenizers (spaCy for English) build a whole spaCy ``Doc`` per text: about 80 bytes of
memory per character. spaCy splits at whitespace before anything else, so a text cut into windows just
before a non-space character that follows whitespace gives the same words window by window; only the
word list is held, never the ``Doc`` of a long text.

Speed: datatrove's spaCy tokenizer runs the full pipeline (its sentencizer too) inside a ``memory_zone``,
which frees every lexeme and tokenizer-cache entry after each text, so every word of every document is
analysed from scratch (``Vocab._new_lexeme`` and the affix search were most of the filter stage's time).
For plain spaCy languages we call the pipeline's tokenizer alone (the sentencizer never changes tokens) and
keep its vocabulary and cache across texts, bounded by starting a fresh pipeline after ``MAX_LEXEMES``
lexemes. The cache only memoises a deterministic function, so the words are identical.

Memory: there is one tokenizer per language and process (``windowed``), unpickled as that same instance in
every task. datatrove's ``load_word_tokenizer`` is an unbounded ``lru_cache`` keyed by the tokenizer object
its filters are given; when each task unpickled a new tokenizer, a pool worker kept every task's tokenizer,
spaCy vocabulary included, until it exited (filter workers grew with every task, so with the corpus).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from datatrove.utils.word_tokenizers import SpaCyTokenizer, WordTokenizer, load_word_tokenizer, strip_strings

WINDOW_CHARS = 1 << 20
# a fresh spaCy pipeline after this many lexemes: ≈ 40 MB of vocabulary and cache (≈ 400 bytes a lexeme), held
# by each process that splits words; a corpus slice of a few MB already has that many
MAX_LEXEMES = 100_000
_WORD_START = re.compile(r"(?<=\s)\S")


def whitespace_windows(text: str, size: int = WINDOW_CHARS) -> Iterator[str]:
    """``text`` in pieces of at most ``size`` characters, each cut before a word that follows whitespace
    (a run with no whitespace in its second half is cut at ``size``)."""
    while len(text) > size:
        cut = max((m.start() for m in _WORD_START.finditer(text, size // 2, size)), default=size)
        yield text[:cut]
        text = text[cut:]
    yield text


class WindowedWordTokenizer(WordTokenizer):
    """datatrove's word tokenizer for ``language``, run window by window on long texts (same words)."""

    def __init__(self, language: str, window: int = WINDOW_CHARS) -> None:
        super().__init__(language)
        self.inner = load_word_tokenizer(language)
        self.window = window
        # only where datatrove uses a blank spaCy pipeline as is (not for ja/zh/vi, which have their own setup)
        self._fast = type(self.inner) is SpaCyTokenizer and self.inner.config is None and language != "ja"
        self._nlp: Any = None

    def word_tokenize(self, text: str) -> list[str]:
        if len(text) <= self.window:
            return self._words(text)
        return [w for part in whitespace_windows(text, self.window) for w in self._words(part)]

    def _words(self, text: str) -> list[str]:
        if not self._fast or "IS_ALPHA" in text:
            # spaCy sometimes fails on that string, and datatrove then drops it from the text; whether it fails
            # depends on the pipeline's history, so such (rare) texts go through datatrove's own tokenizer
            return self.inner.word_tokenize(text)
        if self._nlp is None or len(self._nlp.vocab) > MAX_LEXEMES:
            import spacy

            self._nlp = spacy.blank(self.inner.language)  # the spaCy code datatrove chose for this language
        return strip_strings([t.text for t in self._nlp.tokenizer(text)])

    def sent_tokenize(self, text: str) -> list[str]:
        return self.inner.sent_tokenize(text)

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return self.inner.span_tokenize(text)

    def __reduce__(self):  # pickled as its arguments, unpickled as the process's one instance (module docstring)
        return (windowed, (self.language, self.window))


def windowed(language: str, window: int = WINDOW_CHARS) -> WindowedWordTokenizer:
    """One shared instance per language and process, so datatrove's per-text word cache is shared by the
    filters and its unbounded tokenizer cache holds one tokenizer, not one per task."""
    return _shared(language, window)  # one cache key whether or not ``window`` is given


@cache
def _shared(language: str, window: int) -> WindowedWordTokenizer:
    return WindowedWordTokenizer(language, window)


def release_word_cache() -> None:
    """Drop datatrove's cache of the last texts' word lists (it would keep a long document's words alive)."""
    from datatrove.utils.text import split_into_parts

    split_into_parts.cache_clear()
