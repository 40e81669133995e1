"""Tiny manifest directories and sweep results in the cross-helper contract's format, written by the tests.

The audit must not import ``manifests``/``trainer``; these helpers write the files those packages write
(manifest.json + entries.parquet; results.parquet) so the audit is tested against the format, not the code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from foresight.formats.index import ShardIndex, index_sha256
from foresight.manifests.schema import header_digest
from tests.helpers import make_shards

# A small labelled corpus: sources × labels, with one document split into two segments.
DOCS: list[dict[str, Any]] = [
    {"doc_id": "web1", "source": "web-crawl", "text": "the red ball sits on the wooden table",
     "labels": ["visual_concept", "visual_attribute"]},
    {"doc_id": "web2", "source": "web-crawl", "text": "once upon a time a knight rode into the dark forest",
     "labels": []},
    {"doc_id": "web3", "source": "web-crawl", "text": "a blue cup beside the table", "labels": ["visual_relationship"]},
    {"doc_id": "code1", "source": "code", "text": "def f ( x ) : return x * 2", "labels": ["code_reasoning"]},
    {"doc_id": "code2", "source": "code", "text": "def f ( x ) : return x # code", "labels": ["code_reasoning"],
     "score_code_reasoning": 0.55},
    {"doc_id": "math1", "source": "math", "text": "we prove that x + y = 2 by induction", "labels": ["math_reasoning"]},
    {"doc_id": "math1", "segment": 1, "source": "math", "text": "by induction x + y = 2", "labels": ["math_reasoning"]},
    {"doc_id": "lit1", "source": "literature", "text": "the knight sang and the red ball rolled",
     "labels": ["visual_concept"]},
    {"doc_id": "sci1", "source": "academic", "text": "cells divide and the enzyme binds the protein substrate",
     "labels": ["science_reasoning"]},
]


def corpus(tmp_path: Path, name: str = "shards") -> Path:
    return make_shards(tmp_path, DOCS, name=name)


def segment_rows(shards: Path) -> dict[str, dict[str, Any]]:
    """id → {file, row, doc_id, n_tokens, text_sha256, reasoning, visual} read from the shard files."""
    out: dict[str, dict[str, Any]] = {}
    for f in ShardIndex.load(shards).files:
        table = pq.read_table(shards / f.path, columns=["id", "doc_id", "n_tokens", "text_sha256",
                                                           "reasoning", "visual"])
        for row, rec in enumerate(table.to_pylist()):
            out[rec["id"]] = {**rec, "file": f.path, "row": row}
    return out


def make_manifest(out: Path, shards: Path, name: str, pools: dict[str, dict[str, Any]],
                  picks: list[tuple[str, str, int]], spec_extra: dict[str, Any] | None = None) -> Path:
    """Write a manifest dir: ``pools`` {name: {"where", "weight"}}, ``picks`` [(pool, segment id, epoch)] in order.

    The last pick of a pool may be cut by giving ``(pool, id, epoch, end)`` — not needed by the tests so far.
    """
    segs = segment_rows(shards)
    rows = []
    for order, (pool, seg_id, epoch) in enumerate(picks):
        s = segs[seg_id]
        rows.append({"order": order, "pool": pool, "id": seg_id, "doc_id": s["doc_id"], "file": s["file"],
                     "row": s["row"], "start": 0, "end": s["n_tokens"], "n_tokens": s["n_tokens"],
                     "text_sha256": s["text_sha256"], "epoch": epoch})
    schema = pa.schema([("order", pa.int64()), ("pool", pa.string()), ("id", pa.string()), ("doc_id", pa.string()),
                        ("file", pa.string()), ("row", pa.int64()), ("start", pa.int32()), ("end", pa.int32()),
                        ("n_tokens", pa.int32()), ("text_sha256", pa.binary(32)), ("epoch", pa.int32())])
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), out / "entries.parquet")
    total = sum(r["n_tokens"] for r in rows)
    header_pools = {}
    for pool, p in pools.items():
        mine = [r for r in rows if r["pool"] == pool]
        achieved = sum(r["n_tokens"] for r in mine)
        header_pools[pool] = {"where": p["where"], "weight": p["weight"], "target_tokens": achieved,
                              "achieved_tokens": achieved, "segments": len(mine),
                              "documents": len({r["doc_id"] for r in mine}),
                              "epochs": max([r["epoch"] for r in mine], default=0) + 1, "cut": False}
    share = {flag: sum(r["n_tokens"] for r in rows if segs[r["id"]][flag]) / total if total else 0.0
             for flag in ("reasoning", "visual")}
    spec = {"name": name, "total_tokens": total, "seed": 0,
            "pools": {k: {"where": v["where"], "weight": v["weight"]} for k, v in pools.items()}, **(spec_extra or {})}
    header = {"format": "foresight-manifest/1", "name": name, "spec": spec,
              "spec_sha256": hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest(),
              "shards": {"root": str(shards.resolve()), "index_sha256": index_sha256(shards)},
              "tokenizer_sha256": ShardIndex.load(shards).tokenizer["sha256"], "seed": 0, "total_tokens": total,
              "pools": header_pools, "shares": share,
              "entries_sha256": hashlib.sha256((out / "entries.parquet").read_bytes()).hexdigest(),
              "created_by": "foresight test"}
    header["header_sha256"] = header_digest(header)
    (out / "manifest.json").write_text(json.dumps(header, indent=2, sort_keys=True), encoding="utf-8")
    return out


def mix_pair(tmp_path: Path, shards: Path) -> tuple[Path, Path]:
    """Two manifests: ``mixA`` (reasoning + visual pools) and ``mixB`` (repeats code over two epochs)."""
    a = make_manifest(tmp_path / "manifests" / "mixA", shards, "mixA",
                      {"reason": {"where": "reasoning", "weight": 0.6},
                       "vis": {"where": "visual AND NOT reasoning", "weight": 0.4}},
                      [("reason", "code1#0", 0), ("reason", "math1#0", 0), ("vis", "web1#0", 0),
                       ("vis", "lit1#0", 0)],
                      spec_extra={"targets": {"reasoning": 0.6, "visual": 0.4}})
    b = make_manifest(tmp_path / "manifests" / "mixB", shards, "mixB",
                      {"code": {"where": "source = 'code'", "weight": 1.0}},
                      [("code", "code1#0", 0), ("code", "code2#0", 0), ("code", "code1#0", 1),
                       ("code", "code2#0", 1)])
    return a, b


def make_results(sweep: Path, rows: list[dict[str, Any]] | None = None) -> Path:
    """A SWEEP_DIR/results.parquet with the contract's columns."""
    rows = rows or [
        {"mixture": "mixA", "reasoning_share": 0.6, "visual_share": 0.4, "swept_share": 0.6, "tokens": 40,
         "final_loss": 3.2, "bpb_overall": 1.4, "color_spearman": 0.21, "manifest_sha256": "a" * 64,
         "checkpoint_sha256": "b" * 64},
        {"mixture": "mixB", "reasoning_share": 1.0, "visual_share": 0.0, "swept_share": 1.0, "tokens": 40,
         "final_loss": 3.5, "bpb_overall": 1.6, "color_spearman": 0.05, "manifest_sha256": "c" * 64,
         "checkpoint_sha256": "d" * 64},
    ]
    sweep.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), sweep / "results.parquet")
    return sweep
