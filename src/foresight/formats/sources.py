"""LSBS source names and the names corpora use for them: one alias table for Table 4 comparisons (classifiers)
and source pools (mixtures)."""

from __future__ import annotations

ALIASES: dict[str, tuple[str, ...]] = {
    "web-crawl": ("web-crawl", "web", "webcrawl", "web_crawl", "common-crawl", "commoncrawl", "cc"),
    "encyclopedia": ("encyclopedia", "wikipedia", "wiki"),
    "academia": ("academia", "academic", "arxiv", "papers"),
    "literature": ("literature", "books", "book", "fiction"),
    "math": ("math", "mathematics", "maths"),
    "code": ("code", "source-code", "github"),
    "computer science": ("computer science", "computer-science", "cs"),
    "q-a forum": ("q-a forum", "qa-forum", "q-a", "qa", "forum", "stackexchange"),
}


def canonical(name: str) -> str:
    """The ALIASES key a source name belongs to (itself when unknown)."""
    low = name.strip().lower()
    for key, names in ALIASES.items():
        if low == key or low in names:
            return key
    return low
