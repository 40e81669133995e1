"""The manifest header (``manifest.json``) as :class:`ManifestHeader` (format in docs/architecture.md).

``manifests`` builds, reads and verifies the manifest directory (``manifest.json`` + ``entries.parquet``); the
header lives here, at the bottom of the layers, so every reader (mixtures, trainer, audit, cli) checks it the
same way."""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from foresight.formats.atomic import write_json_atomic
from foresight.formats.errors import InputError
from foresight.formats.hashing import sha256_bytes, sha256_file
from foresight.formats.record import decode, encode, optional, read_json
from foresight.formats.schema import INDEX_FILE

FORMAT = "foresight-manifest/1"
MANIFEST_FILE = "manifest.json"
ENTRIES_FILE = "entries.parquet"
HEADER_HASH_KEY = "header_sha256"
REBUILD = "rebuild the manifest with `foresight mix`"


class ManifestError(InputError):
    """A manifest that is missing, malformed, edited or no longer matches its shards; names the entry/file."""


@dataclass(frozen=True)
class PoolHeader:
    """One pool of the mixture as built: its predicate, weight, token target and what the selection achieved."""

    where: str  # the compiled SQL predicate
    weight: float
    target_tokens: int
    achieved_tokens: int
    segments: int
    documents: int
    epochs: int
    cut: bool  # the pool's last segment was cut to hit the target exactly
    entries: int | None = optional()
    order: str | None = optional()
    max_repetition: float | None = optional()
    available_tokens: int | None = optional()
    available_segments: int | None = optional()


_ARROW = {"str": pa.string(), "float": pa.float64(), "int": pa.int64(), "bool": pa.bool_()}
# A table of pools (the audit's ``pools`` view): the pool's name, then PoolHeader's fields every header has.
POOL_SCHEMA = pa.schema([("pool", pa.string())] + [(f.name, _ARROW[str(f.type)]) for f in fields(PoolHeader)
                                                   if f.default is MISSING])


@dataclass(frozen=True)
class ShardsRef:
    """The shard directory a manifest was built from, pinned by the sha256 of its ``index.json``."""

    root: str
    index_sha256: str
    rows: int | None = optional()
    tokens: int | None = optional()


@dataclass(frozen=True)
class ManifestHeader:
    """``manifest.json``. ``spec`` (the parsed spec), ``tokenizer`` (the shard index's record) and ``selection``
    (the selection's arithmetic) are kept as written; ``pool_names`` keeps the spec order of ``pools``."""

    format: str
    name: str
    spec: dict[str, Any]
    spec_sha256: str
    shards: ShardsRef
    tokenizer_sha256: str | None
    seed: int
    total_tokens: int
    pools: dict[str, PoolHeader]
    shares: dict[str, float | None]
    entries_sha256: str
    created_by: str
    header_sha256: str
    spec_text: str | None = optional()
    tokenizer: dict[str, Any] | None = optional()
    pool_names: tuple[str, ...] | None = optional()
    entries: int | None = optional()
    selection: dict[str, Any] | None = optional()

    def sealed(self) -> ManifestHeader:
        """This header with ``header_sha256`` computed over the rest."""
        return replace(self, header_sha256=header_digest(self.to_dict()))

    def to_dict(self) -> dict[str, Any]:
        return encode(self)

    @property
    def ordered_pools(self) -> dict[str, PoolHeader]:
        """The pools in spec order (the JSON object's keys are sorted)."""
        return {n: self.pools[n] for n in (self.pool_names or self.pools)}

    @classmethod
    def load(cls, manifest_dir: str | Path) -> ManifestHeader:
        """``manifest_dir/manifest.json`` after checking its format and keys, that ``spec_sha256`` matches the
        spec text and ``header_sha256`` the header; ManifestError naming the file and key otherwise."""
        path = Path(manifest_dir) / MANIFEST_FILE
        if not path.is_file():
            raise ManifestError(f"{path} not found: {manifest_dir} is not a manifest directory "
                                f"(build one with `foresight mix SPEC --shards DIR --out {manifest_dir}`)")
        raw = read_json(path, ManifestError, REBUILD)
        got = raw.get("format") if isinstance(raw, dict) else None
        if got != FORMAT:
            raise ManifestError(f"{path}: format {got!r} is not {FORMAT!r}")
        head = decode(cls, raw, path, ManifestError, REBUILD)
        if head.spec_text and sha256_bytes(head.spec_text.encode("utf-8")) != head.spec_sha256:
            raise ManifestError(f"{path}: spec_sha256 does not match the recorded spec text (header edited)")
        if head.header_sha256 != header_digest(raw):
            raise ManifestError(f"{path}: header_sha256 does not match the header (edited after the build); "
                                f"{REBUILD}")
        return head

    def write(self, manifest_dir: str | Path) -> Path:
        """``manifest_dir/manifest.json``, atomically."""
        path = Path(manifest_dir) / MANIFEST_FILE
        write_json_atomic(path, self.to_dict())
        return path

    def verify(self, manifest_dir: str | Path) -> bool:
        """Whether ``entries.parquet`` beside it still has the recorded ``entries_sha256``."""
        path = Path(manifest_dir) / ENTRIES_FILE
        if not path.is_file():
            raise ManifestError(f"{path} not found; the manifest in {manifest_dir} is incomplete (rebuild it)")
        return sha256_file(path) == self.entries_sha256

    def shard_root(self, shards_root: str | Path | None = None) -> Path:
        """The shard directory (``shards_root``, else the recorded one), refusing one whose ``index.json`` is
        not the one the manifest was built from."""
        root = Path(shards_root or self.shards.root)
        index = root / INDEX_FILE
        if not index.is_file():
            raise ManifestError(f"shard index {index} not found (pass shards_root=/ --shards if the shards moved)")
        got = sha256_file(index)
        if got != self.shards.index_sha256:
            raise ManifestError(f"{index} sha256 {got[:12]}… differs from the manifest's "
                                f"{self.shards.index_sha256[:12]}…: the shards changed since the manifest was built")
        return root


def header_digest(head: dict[str, Any]) -> str:
    """sha256 of the header's canonical JSON (sorted keys, no whitespace), ``header_sha256`` itself left out.

    It makes an edit of any header field detectable (a coherent rewrite of totals, shares, seed or name that
    the entries would not contradict); like every self-hash it stops mistakes and naive edits, not someone who
    recomputes it."""
    body = {k: v for k, v in head.items() if k != HEADER_HASH_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
