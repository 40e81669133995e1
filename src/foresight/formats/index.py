"""``index.json`` as :class:`ShardIndex`: per-shard sha256, rows and tokens; written last and atomically
(docs/architecture.md)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from foresight.formats import __version__
from foresight.formats.accounting import Accounting
from foresight.formats.atomic import write_json_atomic
from foresight.formats.errors import InputError
from foresight.formats.hashing import sha256_file, sha256_stream
from foresight.formats.record import decode, encode, read_json
from foresight.formats.schema import INDEX_FILE, SHARD_FORMAT, WORK_DIR

REBUILD = "rebuild the shards with `foresight curate`"
HASH_THREADS = 4  # files hashed at once by ShardIndex.verify (at most the CPU count)


class ShardIndexError(InputError, RuntimeError):
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


@dataclass(frozen=True)
class IndexedFile:
    """One shard file as ``index.json`` records it."""

    path: str  # relative to the shard root
    source: str | None  # the Hive partition (``source=…``) it lives in
    bytes: int
    sha256: str
    rows: int
    tokens: int

    @classmethod
    def measure(cls, root: str | Path, relpath: str) -> IndexedFile:
        """The entry of the file ``root/relpath`` as it is now: bytes, sha256, rows, tokens, source."""
        path = Path(root) / relpath
        pf = pq.ParquetFile(path)
        rows = pf.metadata.num_rows
        tokens = int(pc.sum(pf.read(columns=["n_tokens"]).column("n_tokens")).as_py() or 0) if rows else 0
        source = relpath.split("source=", 1)[1].split("/", 1)[0] if "source=" in relpath else None
        return cls(relpath, source, path.stat().st_size, sha256_file(path), rows, tokens)

    def mismatch(self, root: str) -> ShardMismatch | None:
        """How the file under ``root`` differs from this entry (missing, size, sha256), or None."""
        try:
            stream = open(os.path.join(root, self.path), "rb", buffering=0)  # noqa: SIM115 (closed below)
        except (FileNotFoundError, IsADirectoryError):
            return ShardMismatch(self.path, "missing")
        with stream:
            size = os.fstat(stream.fileno()).st_size
            if size != self.bytes:
                return ShardMismatch(self.path, f"size {size} != indexed {self.bytes}")
            if sha256_stream(stream) != self.sha256:
                return ShardMismatch(self.path, "sha256 differs from index.json")
        return None


@dataclass(frozen=True)
class SourceTotals:
    rows: int
    tokens: int


@dataclass(frozen=True)
class IndexTotals:
    files: int
    rows: int
    tokens: int
    by_source: dict[str, SourceTotals]  # "" for files outside a ``source=`` partition


@dataclass(frozen=True)
class ShardIndex:
    """``index.json``: the shard files with their hashes, the totals, and what the shards were built with.

    ``tokenizer`` (``TokenizerInfo.as_dict``), ``classifier`` and ``config`` are provenance records kept as
    written."""

    format: str
    foresight_version: str
    tokenizer: dict[str, Any]
    classifier: dict[str, Any] | None
    config: dict[str, Any]
    files: tuple[IndexedFile, ...]
    totals: IndexTotals
    accounting: Accounting | None

    @classmethod
    def build(cls, root: str | Path, relpaths: list[str], *, tokenizer: dict[str, Any],
              classifier: dict[str, Any] | None, config: dict[str, Any],
              accounting: Accounting | None = None) -> ShardIndex:
        """Measure the files; sorted by path so the index is independent of listing order."""
        files = tuple(IndexedFile.measure(root, rel) for rel in sorted(relpaths))
        by_source: dict[str, SourceTotals] = {}
        for f in files:
            agg = by_source.get(f.source or "", SourceTotals(0, 0))
            by_source[f.source or ""] = SourceTotals(agg.rows + f.rows, agg.tokens + f.tokens)
        totals = IndexTotals(len(files), sum(f.rows for f in files), sum(f.tokens for f in files),
                             dict(sorted(by_source.items())))
        return cls(SHARD_FORMAT, __version__, tokenizer, classifier, config, files, totals, accounting)

    @classmethod
    def load(cls, root: str | Path) -> ShardIndex:
        """``root/index.json``, checked: a missing or malformed index, an unknown format or key, or a file path
        leaving the shard root is a ShardIndexError that says how to rebuild."""
        path = Path(root) / INDEX_FILE
        if not path.is_file():
            if (Path(root) / WORK_DIR).is_dir():
                raise ShardIndexError(f"{path} not found: the `foresight curate` run into {root} has not finished "
                                      f"(its {WORK_DIR}/ is there): wait for its jobs to end (--executor slurm: "
                                      "squeue), or rerun the same curate command to finish it")
            raise ShardIndexError(
                f"{path} not found: {root} is not a foresight shard directory "
                f"(build one with `foresight curate INPUT... --out {root}`)"
            )
        raw = read_json(path, ShardIndexError, REBUILD)
        got = raw.get("format") if isinstance(raw, dict) else None
        if got != SHARD_FORMAT:
            raise ShardIndexError(f"{path}: unknown format {got!r}, expected {SHARD_FORMAT!r}")
        index = decode(cls, raw, path, ShardIndexError, REBUILD)
        for f in index.files:  # every reader goes through here: no index entry may point outside the shard root
            try:
                safe_shard_path(Path(root), f.path, f"{path}: file")
            except UnsafePathError as e:
                raise ShardIndexError(f"{e}; refusing the whole index ({REBUILD})") from None
        return index

    def to_dict(self) -> dict[str, Any]:
        return encode(self)

    def write(self, root: str | Path) -> Path:
        """``root/index.json``, atomically."""
        path = Path(root) / INDEX_FILE
        write_json_atomic(path, self.to_dict())
        return path

    def verify(self, root: str | Path, paths: set[str] | None = None) -> list[ShardMismatch]:
        """Re-hash shard files (all, or only ``paths``) against the index; returns the mismatches (index order).
        Files are hashed on a few threads, each taking a contiguous slice (one task per file costs more than
        hashing a small file): the hash, not the disk, is the limit on a warm page cache."""
        files = [f for f in self.files if paths is None or f.path in paths]
        threads = max(1, min(HASH_THREADS, os.cpu_count() or 1, len(files)))
        step = -(-len(files) // threads) if files else 1
        base = str(root)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            found = pool.map(lambda lo: [f.mismatch(base) for f in files[lo:lo + step]], range(0, len(files), step))
            return [m for part in found for m in part if m is not None]

    def verified(self, root: str | Path, paths: set[str] | None = None) -> ShardIndex:
        """This index after re-hashing its files (all, or only ``paths``); ShardIndexError naming the first file
        that changed. The one check every command that reads shard data runs before it reads."""
        problems = self.verify(root, paths)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise ShardIndexError(f"shard file {problems[0]}{more} in {root}: the shards changed since index.json "
                                  "was written; rebuild them with `foresight curate` (or restore the file)")
        return self

    def shard_files(self, root: str | Path) -> list[Path]:
        """Absolute paths of the indexed shard files, in index order."""
        return [Path(root) / f.path for f in self.files]

    @property
    def tokenizer_sha256(self) -> str | None:
        return self.tokenizer.get("sha256")


def index_sha256(root: str | Path) -> str:
    return sha256_file(Path(root) / INDEX_FILE)


@dataclass(frozen=True)
class ShardMismatch:
    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"
