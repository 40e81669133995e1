"""The shard directory as mixtures and manifests see it: its index, and shard paths that stay inside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from foresight.formats.errors import InputError
from foresight.formats.index import ShardIndexError, index_sha256, read_index, verify_shards


class UnsafePathError(InputError):
    """A shard path that is absolute, climbs with '..', or leaves the shard root through a link."""


def safe_shard_path(root: Path, rel: str, what: str = "shard path") -> Path:
    """``root / rel`` after refusing absolute paths, '..', backslashes and links escaping ``root``."""
    if not isinstance(rel, str) or not rel:
        raise UnsafePathError(f"{what} {rel!r} is empty or not a string")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or rel.startswith(("/", "~")) or (len(rel) > 1 and rel[1] == ":"):
        raise UnsafePathError(f"{what} {rel!r} is absolute; entry paths must be relative to the shard root")
    if "\\" in rel or any(part == ".." for part in pure.parts):
        raise UnsafePathError(f"{what} {rel!r} contains '..' or a backslash; entry paths must stay in the shard root")
    real_root = root.resolve()
    target = (root / rel).resolve()
    if not target.is_relative_to(real_root):
        raise UnsafePathError(f"{what} {rel!r} resolves to {target}, outside the shard root {real_root} "
                              f"(a symbolic link escapes it)")
    return root / rel


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
    for rel in rels:
        safe_shard_path(root, rel, f"{root / 'index.json'}: file")
    if verify:
        problems = verify_shards(root, index, set(rels) if paths is None else paths)
        if problems:
            raise ShardIndexError(f"shard index {root / 'index.json'} no longer matches the files: {problems[0]}"
                                  f"{f' (and {len(problems) - 1} more)' if len(problems) > 1 else ''}; "
                                  f"rebuild the shards with `foresight curate` (or restore the file)")
    return ShardSet(root, index, index_sha256(root), rels)
