"""Word splitting in bounded memory for datatrove's filters and MinHash.

datatrove's word tokenizers (spaCy for English) build a whole spaCy ``Doc`` per text: about 80 bytes of
memory per character. spaCy splits at whitespace before anything else, so a text cut into windows just
before a non-space character that follows whitespace gives the same words window by window; only the
word list is held, never the ``Doc`` of a long text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache

from datatrove.utils.word_tokenizers import WordTokenizer, load_word_tokenizer

WINDOW_CHARS = 1 << 20
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

    def word_tokenize(self, text: str) -> list[str]:
        if len(text) <= self.window:
            return self.inner.word_tokenize(text)
        return [w for part in whitespace_windows(text, self.window) for w in self.inner.word_tokenize(part)]

    def sent_tokenize(self, text: str) -> list[str]:
        return self.inner.sent_tokenize(text)

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return self.inner.span_tokenize(text)

    def __reduce__(self):  # pickled into executor tasks as its arguments, not its spaCy pipeline
        return (WindowedWordTokenizer, (self.language, self.window))


@cache
def windowed(language: str) -> WindowedWordTokenizer:
    """One shared instance per language, so datatrove's per-text word cache is shared by the filters."""
    return WindowedWordTokenizer(language)


def release_word_cache() -> None:
    """Drop datatrove's cache of the last texts' word lists (it would keep a long document's words alive)."""
    from datatrove.utils.text import split_into_parts

    split_into_parts.cache_clear()
