"""``index.json``: per-shard sha256, rows and tokens; written last and atomically (docs/architecture.md)."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from foresight.formats import __version__
from foresight.formats.atomic import write_json_atomic
from foresight.formats.errors import ForesightError, InputError
from foresight.formats.hashing import sha256_file, sha256_stream
from foresight.formats.schema import INDEX_FILE, SHARD_FORMAT

HASH_THREADS = 4  # files hashed at once by verify_shards (at most the CPU count)


class ShardIndexError(ForesightError, RuntimeError):
    """The shard directory or its index is missing, malformed or no longer matches the files."""


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


def file_entry(root: str | Path, relpath: str) -> dict[str, Any]:
    """Index entry of one shard file: bytes, sha256, rows, tokens, source."""
    path = Path(root) / relpath
    pf = pq.ParquetFile(path)
    rows = pf.metadata.num_rows
    tokens = int(pc.sum(pf.read(columns=["n_tokens"]).column("n_tokens")).as_py() or 0) if rows else 0
    source = relpath.split("source=", 1)[1].split("/", 1)[0] if "source=" in relpath else None
    return {"path": relpath, "source": source, "bytes": path.stat().st_size,
            "sha256": sha256_file(path), "rows": rows, "tokens": tokens}


def build_index(root: str | Path, relpaths: list[str], *, tokenizer: dict[str, Any],
                classifier: dict[str, Any] | None, config: dict[str, Any],
                accounting: dict[str, Any] | None = None) -> dict[str, Any]:
    """Assemble the index dict; files sorted by path so the index is independent of listing order."""
    files = [file_entry(root, rel) for rel in sorted(relpaths)]
    by_source: dict[str, dict[str, int]] = {}
    for f in files:
        agg = by_source.setdefault(f["source"] or "", {"rows": 0, "tokens": 0})
        agg["rows"] += f["rows"]
        agg["tokens"] += f["tokens"]
    return {
        "format": SHARD_FORMAT,
        "foresight_version": __version__,
        "tokenizer": tokenizer,
        "classifier": classifier,
        "config": config,
        "files": files,
        "totals": {"files": len(files), "rows": sum(f["rows"] for f in files),
                   "tokens": sum(f["tokens"] for f in files), "by_source": dict(sorted(by_source.items()))},
        "accounting": accounting,
    }


def write_index(root: str | Path, index: dict[str, Any]) -> Path:
    path = Path(root) / INDEX_FILE
    write_json_atomic(path, index)
    return path


def read_index(root: str | Path) -> dict[str, Any]:
    """Load ``index.json``; a missing or malformed index is an error that says how to build one."""
    path = Path(root) / INDEX_FILE
    if not path.is_file():
        raise ShardIndexError(
            f"{path} not found: {root} is not a foresight shard directory "
            f"(build one with `foresight curate INPUT... --out {root}`)"
        )
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, RecursionError) as e:  # RecursionError: nested too deeply
        raise ShardIndexError(f"{path} is not valid JSON ({e}); rebuild the shards with `foresight curate`") from e
    if index.get("format") != SHARD_FORMAT:
        raise ShardIndexError(f"{path}: unknown format {index.get('format')!r}, expected {SHARD_FORMAT!r}")
    files = index.get("files")
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        raise ShardIndexError(f"{path}: 'files' is not a list of file entries; rebuild the shards with "
                              "`foresight curate`")
    for f in files:  # every reader goes through here: no index entry may point outside the shard root
        try:
            safe_shard_path(Path(root), f.get("path"), f"{path}: file")
        except UnsafePathError as e:
            raise ShardIndexError(f"{e}; refusing the whole index (rebuild it with `foresight curate`)") from None
    return index


def index_sha256(root: str | Path) -> str:
    return sha256_file(Path(root) / INDEX_FILE)


@dataclass(frozen=True)
class ShardMismatch:
    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def verify_shards(root: str | Path, index: dict[str, Any] | None = None,
                  paths: set[str] | None = None) -> list[ShardMismatch]:
    """Re-hash shard files (all, or only ``paths``) against the index; returns the mismatches (index order).
    Files are hashed on a few threads, each taking a contiguous slice (one task per file costs more than
    hashing a small file): the hash, not the disk, is the limit on a warm page cache."""
    root = Path(root)
    index = read_index(root) if index is None else index
    files = [f for f in index["files"] if paths is None or f["path"] in paths]
    threads = max(1, min(HASH_THREADS, os.cpu_count() or 1, len(files)))
    step = -(-len(files) // threads) if files else 1
    with ThreadPoolExecutor(max_workers=threads) as pool:
        found = pool.map(lambda lo: [_mismatch(str(root), f) for f in files[lo:lo + step]], range(0, len(files), step))
        return [m for part in found for m in part if m is not None]


def verified_index(root: str | Path, paths: set[str] | None = None,
                   index: dict[str, Any] | None = None) -> dict[str, Any]:
    """``index.json`` (or ``index``, read from it) after re-hashing its files (all, or only ``paths``);
    ShardIndexError naming the first file that changed. The one check every command that reads shard data runs
    before it reads."""
    index = read_index(root) if index is None else index
    problems = verify_shards(root, index, paths)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ShardIndexError(f"shard file {problems[0]}{more} in {root}: the shards changed since index.json "
                              "was written; rebuild them with `foresight curate` (or restore the file)")
    return index


def _mismatch(root: str, f: dict[str, Any]) -> ShardMismatch | None:
    try:
        stream = open(os.path.join(root, f["path"]), "rb", buffering=0)  # noqa: SIM115 (closed below)
    except (FileNotFoundError, IsADirectoryError):
        return ShardMismatch(f["path"], "missing")
    with stream:
        size = os.fstat(stream.fileno()).st_size
        if size != f["bytes"]:
            return ShardMismatch(f["path"], f"size {size} != indexed {f['bytes']}")
        if sha256_stream(stream) != f["sha256"]:
            return ShardMismatch(f["path"], "sha256 differs from index.json")
    return None


def shard_files(root: str | Path, index: dict[str, Any] | None = None) -> list[Path]:
    """Absolute paths of the indexed shard files, in index order."""
    index = read_index(root) if index is None else index
    return [Path(root) / f["path"] for f in index["files"]]
