"""Tiny shard directories written by the tests themselves (no data files outside the repo)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from foresight.formats.accounting import Accounting
from foresight.formats.index import ShardIndex
from foresight.formats.tokenizer import load_tokenizer, train_tokenizer
from foresight.pipeline.stages.write import RankShardWriter

WORDS = ("the red ball sits on the wooden table beside a blue cup . we prove that x + y = 2 by induction . "
         "def f ( x ) : return x * 2 # code . cells divide and the enzyme binds the protein substrate . "
         "once upon a time a knight rode into the dark forest and sang .").split()


def make_tokenizer(tmp_path: Path, vocab_size: int = 400) -> Path:
    path = tmp_path / "tokenizer.json"
    if not path.exists():
        tok = train_tokenizer([" ".join(WORDS)] * 20, vocab_size=vocab_size, min_frequency=1)
        tok.save(str(path))
    return path


def make_shards(tmp_path: Path, docs: list[dict[str, Any]], name: str = "shards",
                with_labels: bool = True, ranks: int = 1) -> Path:
    """Write ``docs`` (dicts with ``text``, ``source``, optional ``labels``/``doc_id``/scores) as shards.

    Each doc becomes one segment ``<doc_id>#0``; rows are dealt round-robin over ``ranks`` files per source.
    """
    root = tmp_path / name
    tok_path = make_tokenizer(tmp_path)
    tok, info = load_tokenizer(tok_path)
    writers = {rank: RankShardWriter(root, rank, with_labels) for rank in range(ranks)}
    for i, d in enumerate(docs):
        doc_id = d.get("doc_id", f"doc{i:06d}")
        row = {k: v for k, v in d.items() if k not in ("doc_id",)}
        seg = int(d.get("segment", 0))
        row.update(id=f"{doc_id}#{seg}", doc_id=doc_id, segment=seg,
                   tokens=tok.encode(d["text"]).ids + [info.eos_id])
        writers[i % ranks].add(row)
    rels = sorted(rel for w in writers.values() for rel in w.close())
    classifier = {"kind": "test", "id": "given-labels", "sha256": None} if with_labels else None
    ShardIndex.build(root, rels, tokenizer=info.as_dict(), classifier=classifier, config={"test": True},
                     accounting=Accounting(read=len(docs), kept=len(docs))).write(root)
    return root


# [train] and [probe] tables of a sweep that trains in seconds (the tiny model on a few hundred tokens).
TINY_SWEEP_SETTINGS = """[train]
seq_len = 32
batch_tokens = 128
checkpoint_every = 0
[probe]
probes = ["bpb"]
heldout_fraction = 0.2
"""
