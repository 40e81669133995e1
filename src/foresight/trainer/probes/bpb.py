"""Bits-per-byte on the held-out split of the shards, overall and per source, label, category and pool.

The split is :func:`formats.splits.heldout_sql` (by hash of ``doc_id``), which mixtures exclude, so no
manifest trained on these segments. Each segment's text is tokenized with the probed model's own
tokenizer, so any causal LM can be compared; bpb = Σ NLL / ln 2 / UTF-8 bytes of the texts.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from foresight.formats.errors import InputError
from foresight.formats.index import ShardIndex
from foresight.formats.splits import DEFAULT_HELDOUT_FRACTION
from foresight.trainer.probes.features import LoadedModel, require_causal, token_nll

CATEGORIES = ("visual", "reasoning")


def column_name(kind: str, name: str) -> str:
    """``bpb_<kind>_<name>`` with the name reduced to [a-z0-9_]."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "x"
    return f"bpb_{kind}_{slug}"


def heldout_segments(shards: str | Path, fraction: float = DEFAULT_HELDOUT_FRACTION, limit: int = 500,
                     pools: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Held-out rows (text, source, labels, pool flags); a deterministic sample of at most ``limit``."""
    import duckdb

    from foresight.mixtures.sandbox import check_expression, columns, connect

    root = Path(shards)
    index = ShardIndex.load(root).verified(root)  # bits-per-byte of rewritten text would be about other data
    files = index.shard_files(root)
    if not files:
        raise InputError(f"{root}: the shard index lists no files")
    # the sandboxed, read-only view the mixtures use: a pool expression from manifest.json is checked like a
    # spec's (one boolean expression, no subqueries, files or settings) before it reaches SQL
    con = connect(files, fraction)
    cols = columns(con)
    select = ["id", "text", "source", "labels" if "labels" in cols else "[]::VARCHAR[] AS labels"]
    # the shards' category flags (any visual / any reasoning label): bpb_visual and bpb_reasoning
    select += [f"coalesce({c}, false) AS {c}" if c in cols else f"false AS {c}" for c in CATEGORIES]
    for i, (name, where) in enumerate((pools or {}).items()):
        check_expression(con, where, f"bpb probe: pool {name!r}")
        select.append(f"coalesce(({where}), false) AS pool_{i}")
    sql = f"SELECT {', '.join(select)} FROM segments WHERE heldout ORDER BY sha256(id) LIMIT {int(limit)}"
    try:
        rows = con.execute(sql).fetchall()
    except duckdb.Error as e:
        raise InputError(f"bpb probe: query over {root} failed ({str(e).splitlines()[0]}); check the pool "
                         "expressions against the shard columns") from e
    names = ["id", "text", "source", "labels", *CATEGORIES, *[f"pool_{i}" for i in range(len(pools or {}))]]
    return [dict(zip(names, r, strict=True)) for r in rows]


def bpb_probe(lm: LoadedModel, shards: str | Path, fraction: float = DEFAULT_HELDOUT_FRACTION, limit: int = 500,
              pools: dict[str, str] | None = None) -> dict[str, Any]:
    """bpb_overall plus bpb_source_*, bpb_label_*, bpb_visual, bpb_reasoning, bpb_pool_* columns, and counts.

    Every group is computed over the same deterministic held-out sample whatever model is probed, so the
    columns of different runs compare the same texts (``bpb_visual_segments`` says how many are visual)."""
    require_causal(lm, "bits-per-byte")
    rows = heldout_segments(shards, fraction, limit, pools)
    if not rows:
        raise InputError(f"{shards}: no held-out segments (fraction {fraction}); the corpus is too small for the "
                         "held-out split, raise --heldout-fraction")
    pool_names = list(pools or {})
    nats: dict[str, float] = defaultdict(float)
    nbytes: dict[str, int] = defaultdict(int)
    for row in rows:
        ids = lm.tokenizer(row["text"], add_special_tokens=False).input_ids
        nll, _ = token_nll(lm, ids) if ids else (0.0, 0)
        groups = ["bpb_overall", column_name("source", row["source"])]
        groups += [column_name("label", label) for label in row["labels"] or []]
        groups += [f"bpb_{c}" for c in CATEGORIES if row[c]]
        groups += [column_name("pool", p) for i, p in enumerate(pool_names) if row[f"pool_{i}"]]
        for g in groups:
            nats[g] += nll
            nbytes[g] += len(row["text"].encode("utf-8"))
    out: dict[str, Any] = {g: nats[g] / math.log(2) / nbytes[g] for g in sorted(nats) if nbytes[g] > 0}
    out["bpb_segments"] = len(rows)
    out.update({f"bpb_{c}_segments": sum(1 for r in rows if r[c]) for c in CATEGORIES})
    out["bpb_bytes"] = nbytes["bpb_overall"]
    return out
