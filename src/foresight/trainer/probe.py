"""Run the probes on one model (our run dir or any local HF causal LM / encoder) and collect one row of scores."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from foresight.formats.errors import InputError

PROBES = ("bpb", "color", "knowledge", "vision")


def default_probes(causal: bool, shards: Path | None, vision_model: Path | None) -> list[str]:
    """The probes that apply: text-likelihood probes need a causal LM; bpb needs shards; vision its inputs."""
    chosen = ["color"]
    if causal:
        chosen.append("knowledge")
        if shards is not None:
            chosen.append("bpb")
    if vision_model is not None:
        chosen.append("vision")
    return chosen


@dataclass(frozen=True)
class ProbeSettings:
    """The ``[probe]`` table of a sweep file: :func:`run_probes` options (paths relative to the sweep file)."""

    probes: list[str] | None = None
    color_table: str = "xkcd"
    color_limit: int | None = None
    bpb_limit: int = 500
    heldout_fraction: float | None = None
    knowledge_items: Path | None = None
    vision_model: Path | None = None
    pairs: Path | None = None

    def kwargs(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def run_probes(model_path: str | Path, *, shards: Path | None = None, probes: list[str] | None = None,
               device: str = "cpu", vision_model: Path | None = None, pairs: Path | None = None,
               pools: dict[str, str] | None = None, heldout_fraction: float | None = None, bpb_limit: int = 500,
               color_table: str = "xkcd", color_limit: int | None = None, knowledge_items: Path | None = None,
               color_plot: Path | None = None, random_init: bool = False) -> dict[str, Any]:
    """One dict of scores (flat floats/ints) plus ``model``; unknown or inapplicable probes are errors."""
    from foresight.trainer.probes.features import load_model

    lm = load_model(model_path, device, random_init=random_init)
    chosen = list(probes) if probes else default_probes(lm.causal, shards, vision_model)
    unknown = [p for p in chosen if p not in PROBES]
    if unknown:
        raise InputError(f"unknown probe(s) {unknown}; choose from {', '.join(PROBES)}")
    row: dict[str, Any] = {"model": str(Path(model_path).resolve()) + (" (random init)" if random_init else "")}
    if "bpb" in chosen:
        from foresight.formats.splits import DEFAULT_HELDOUT_FRACTION
        from foresight.trainer.probes.bpb import bpb_probe
        if shards is None:
            raise InputError("the bpb probe needs --shards SHARDS_DIR (its held-out split is evaluated)")
        row.update(bpb_probe(lm, shards, heldout_fraction or DEFAULT_HELDOUT_FRACTION, bpb_limit, pools))
    if "color" in chosen:
        from foresight.trainer.probes.color import color_probe
        row.update(color_probe(lm, table=color_table, limit=color_limit, plot=color_plot))
    if "knowledge" in chosen:
        from foresight.trainer.probes.knowledge import knowledge_probe
        row.update(knowledge_probe(lm, knowledge_items))
    if "vision" in chosen:
        from foresight.trainer.probes.vision import vision_probe
        if vision_model is None or pairs is None:
            raise InputError("the vision probe needs --vision-model PATH and --pairs PAIRS.parquet")
        row.update(vision_probe(lm, vision_model, pairs))
    return row


def pools_from_manifest(manifest_dir: Path, shards: Path | None = None) -> dict[str, str]:
    """Pool name → SQL predicate from a manifest header (for per-pool bpb), after checking the header's hashes
    and, with ``shards``, that their index.json is the one the manifest was built from."""
    from foresight.formats.manifest import ManifestHeader

    head = ManifestHeader.load(manifest_dir)
    if shards is not None:
        head.shard_root(shards)
    return {name: p.where for name, p in head.pools.items() if p.where}


def write_row(row: dict[str, Any], out: Path) -> Path:
    import polars as pl
    out.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame([row]).write_parquet(out)
    return out
