"""Helpers for the pipeline tests: tiny inputs and in-process curate runs."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from foresight.pipeline.curate import execute, plan_curation
from tests.helpers import make_tokenizer

# Everything off except what a test turns on: keeps runs to the read → segment → write path (~1 s).
MINIMAL: dict[str, Any] = {
    "filters": {n: {"enabled": False} for n in ("gopher_repetition", "gopher_quality", "fineweb_quality", "c4")},
    "language": {"enabled": False},
    "dedup": {"exact": {"enabled": False}, "minhash": {"enabled": False}},
    "classify": {"enabled": False},
}

PROSE = ("The red ball sits on the wooden table beside a blue cup, and the children watch it roll slowly "
         "towards the edge while their mother reads a book about the history of the old city by the river.")


VOCAB = sorted(set(PROSE.lower().replace(",", "").split()) | set(
    "we they she he saw made found kept gave green small large quiet garden window morning evening bread "
    "water stone house street friend teacher school letter music song winter summer light".split()))


def prose(i: int, words: int = 80) -> str:
    """Distinct, non-repetitive English-like prose of about ``words`` words (seeded by ``i``)."""
    rng = random.Random(i)
    sentences, n = [], 0
    while n < words:
        k = rng.randint(8, 16)
        sentences.append(" ".join(rng.choice(VOCAB) for _ in range(k)).capitalize() + ".")
        n += k
    return f"Story number {i}. " + " ".join(sentences) + f" It was a fine day number {i * 7 + 3}."


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(base))
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def curate(tmp_path: Path, inputs: list[Path | str], out: str = "shards", tasks: int = 1, workers: int = 1,
           overrides: dict[str, Any] | None = None, **kw: Any) -> Path:
    """Run the pipeline in-process with the tiny test tokenizer; returns the shard directory."""
    tok = make_tokenizer(tmp_path)
    p = plan_curation([str(i) for i in inputs], tmp_path / out, tok, tasks=tasks,
             overrides=merge(MINIMAL, overrides or {}), **kw)
    execute(p, workers=workers)
    return tmp_path / out


def index(root: Path) -> dict[str, Any]:
    return json.loads((root / "index.json").read_text())


def accounting(root: Path) -> dict[str, Any]:
    acc = index(root)["accounting"]
    assert acc["read"] == acc["kept"] + sum(acc["dropped"].values()) + sum(acc["errored"].values())
    return acc


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every output file (shards, stats, index), for byte-identity checks."""
    files = [p for d in ("data", "stats") for p in (root / d).rglob("*") if p.is_file()] + [root / "index.json"]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(files)}


def write_config(tmp_path: Path, extra: str = "") -> Path:
    """A pipeline.toml for CLI tests: classify, language ID and MinHash off, plus ``extra``."""
    cfg = tmp_path / "pipeline.toml"
    cfg.write_text("[classify]\nenabled = false\n[language]\nenabled = false\n[dedup.minhash]\nenabled = false\n"
                   + extra)
    return cfg
