"""LSBS source names → the ``source`` values found in shards.

LSBS (docs/classifiers.md) names its sources academic, mathematics, web-crawl, …; corpora name theirs as they like.
A pool written ``source = "<LSBS name>"`` matches every shard source listed for that name here (only
those present in the shards). A name with no present alias is an error, never a silent zero-token pool.
"""

from __future__ import annotations

from foresight.formats.errors import InputError
from foresight.formats.sources import ALIASES, canonical
from foresight.formats.sql import quote_literal


def resolve_source(name: str, present: list[str] | set[str], pool: str) -> list[str]:
    """Shard sources matching LSBS source ``name``; raises naming the pool when none has data."""
    key = canonical(name)
    wanted = set(ALIASES.get(key, (key,))) | {key, name}
    found = sorted(s for s in present if s.lower() in wanted)
    if not found:
        raise InputError(
            f"pool {pool!r}: source {name!r} has no data in the shards (looked for {sorted(wanted)}; "
            f"the shards have {sorted(present)}); add that source or edit the alias table in mixtures/sources.py"
        )
    return found


def source_predicate(sources: list[str]) -> str:
    """SQL predicate matching exactly the given source values."""
    quoted = ", ".join(quote_literal(s) for s in sources)
    return f"source IN ({quoted})"
