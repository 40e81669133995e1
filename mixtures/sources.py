"""LSBS source names → the ``source`` values found in shards.

LSBS (docs/classifiers.md) names its sources academic, mathematics, web-crawl, …; corpora name theirs as they like.
A pool written ``source = "<LSBS name>"`` matches every shard source listed for that name here (only
those present in the shards). A name with no present alias is an error, never a silent zero-token pool.
"""

from __future__ import annotations

from formats.sql import quote_literal

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


def resolve_source(name: str, present: list[str] | set[str], pool: str) -> list[str]:
    """Shard sources matching LSBS source ``name``; raises naming the pool when none has data."""
    key = canonical(name)
    wanted = set(ALIASES.get(key, (key,))) | {key, name}
    found = sorted(s for s in present if s.lower() in wanted)
    if not found:
        raise ValueError(
            f"pool {pool!r}: source {name!r} has no data in the shards (looked for {sorted(wanted)}; "
            f"the shards have {sorted(present)}); add that source or edit the alias table in mixtures/sources.py"
        )
    return found


def source_predicate(sources: list[str]) -> str:
    """SQL predicate matching exactly the given source values."""
    quoted = ", ".join(quote_literal(s) for s in sources)
    return f"source IN ({quoted})"
