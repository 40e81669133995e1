"""The shard directory as mixtures and manifests see it: its index, and shard paths that stay inside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foresight.formats.index import ShardIndex, ShardIndexError, index_sha256


@dataclass(frozen=True)
class ShardSet:
    root: Path  # absolute
    index: ShardIndex
    index_sha256: str
    relpaths: tuple[str, ...]  # index order (sorted by path)

    @property
    def files(self) -> list[Path]:
        return [self.root / r for r in self.relpaths]

    def sources(self) -> list[str]:
        """Sources that have at least one row."""
        return sorted(s for s, agg in self.index.totals.by_source.items() if s and agg.rows > 0)

    @property
    def tokenizer(self) -> dict[str, Any]:
        return self.index.tokenizer


def open_shards(root: str | Path, verify: bool = True, paths: set[str] | None = None) -> ShardSet:
    """Read ``index.json``, check every file path is safe and (``verify``) that every file's sha256 matches."""
    root = Path(root).absolute()
    index = ShardIndex.load(root)
    rels = tuple(f.path for f in index.files if f.rows > 0)
    if not rels:
        raise ShardIndexError(f"{root / 'index.json'} lists no shard file with rows; nothing to mix")
    if verify:  # read_index has confined every path to the root
        index.verified(root, set(rels) if paths is None else paths)
    return ShardSet(root, index, index_sha256(root), rels)
