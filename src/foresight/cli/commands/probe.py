"""``foresight probe MODEL_OR_RUN_DIR --out probes.parquet``: bpb, colour, visual-knowledge, vision probes."""

from __future__ import annotations

from pathlib import Path

import typer

from foresight.cli.commands.common import console, user_errors


def register(app: typer.Typer) -> None:
    @app.command("probe")
    @user_errors
    def probe(
        model: Path = typer.Argument(..., help="Run dir from `foresight train` or a local HF causal LM / encoder."),
        out: Path = typer.Option(..., "--out", help="Parquet file for the row of scores."),
        shards: Path = typer.Option(None, "--shards", help="Shard directory (for bits-per-byte on its held-out "
                                                           "split)."),
        probes: list[str] = typer.Option(None, "--probes", help="bpb, color, knowledge, vision (repeatable); "
                                                                "default: all that apply."),
        manifest: Path = typer.Option(None, "--manifest", help="Report bpb per pool of this manifest too."),
        heldout_fraction: float = typer.Option(None, "--heldout-fraction", help="Held-out split fraction "
                                                                                 "(default 0.02)."),
        bpb_limit: int = typer.Option(500, "--bpb-segments", help="Held-out segments to evaluate at most."),
        colors: str = typer.Option("xkcd", "--colors", help="Colour table: xkcd, css4 or both."),
        color_limit: int = typer.Option(None, "--color-limit", help="Evenly subsample this many colours."),
        items: Path = typer.Option(None, "--questions", help="Visual-knowledge JSONL (default: the bundled set)."),
        vision_model: Path = typer.Option(None, "--vision-model", help="Local HF vision encoder directory."),
        pairs: Path = typer.Option(None, "--pairs", help="Parquet of image (path/bytes) + caption pairs."),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
        random_init: bool = typer.Option(False, "--random-init", help="Same architecture and tokenizer, fresh "
                                                                      "random weights (the untrained baseline)."),
        threads: int = typer.Option(None, "--threads", help="torch CPU threads (default: torch's choice; 1 is "
                                                            "often fastest on a busy machine)."),
    ) -> None:
        """Probe a model and write one row of scores (also plots the colour MDS next to --out).

        Example: foresight probe demo/runs/lsbs_mix6 --shards demo/shards --out demo/runs/lsbs_mix6/probes.parquet
        """
        from foresight.formats.atomic import check_output_file
        from foresight.trainer.probe import pools_from_manifest, run_probes, write_row
        from foresight.trainer.train import set_threads

        out = check_output_file(out)
        set_threads(threads)
        pools = pools_from_manifest(manifest, shards) if manifest else None
        row = run_probes(model, shards=shards, probes=list(probes) if probes else None, device=device,
                         vision_model=vision_model, pairs=pairs, pools=pools, heldout_fraction=heldout_fraction,
                         bpb_limit=bpb_limit, color_table=colors, color_limit=color_limit, knowledge_items=items,
                         color_plot=out.with_name(f"{out.stem}_color_mds.png"), random_init=random_init)
        write_row(row, out)
        for k, v in row.items():
            if k != "model":
                console.print(f"{k:32s} {v:.4f}" if isinstance(v, float) else f"{k:32s} {v}")
        console.print(f"wrote {out}")
