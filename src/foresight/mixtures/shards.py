"""The shard directory as mixtures and manifests see it: its index, and shard paths that stay inside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foresight.formats.index import ShardIndexError, index_sha256, read_index, verified_index


@dataclass(frozen=True)
class ShardSet:
    root: Path  # absolute
    index: dict[str, Any]
    index_sha256: str
    relpaths: tuple[str, ...]  # index order (sorted by path)

    @property
    def files(self) -> list[Path]:
        return [self.root / r for r in self.relpaths]

    def sources(self) -> list[str]:
        """Sources that have at least one row."""
        by = self.index.get("totals", {}).get("by_source", {})
        return sorted(s for s, agg in by.items() if s and agg.get("rows", 0) > 0)

    @property
    def tokenizer(self) -> dict[str, Any]:
        return self.index.get("tokenizer") or {}


def open_shards(root: str | Path, verify: bool = True, paths: set[str] | None = None) -> ShardSet:
    """Read ``index.json``, check every file path is safe and (``verify``) that every file's sha256 matches."""
    root = Path(root).absolute()
    index = read_index(root)
    rels = tuple(f["path"] for f in index.get("files", []) if f.get("rows", 0) > 0)
    if not rels:
        raise ShardIndexError(f"{root / 'index.json'} lists no shard file with rows; nothing to mix")
    if verify:  # read_index has confined every path to the root
        verified_index(root, set(rels) if paths is None else paths, index)
    return ShardSet(root, index, index_sha256(root), rels)
