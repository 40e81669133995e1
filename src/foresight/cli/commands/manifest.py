"""``foresight manifest verify|export|show``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from foresight.cli.commands.common import console, out_path, user_errors


def _wide() -> Console:
    """A console at least 110 columns wide, so the mixture table's numbers are never truncated in a pipe."""
    return Console(width=max(console.width, 110), highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Verify, inspect and export token-exact manifests.", no_args_is_help=True)
    app.add_typer(group, name="manifest")

    @group.command("verify")
    @user_errors
    def verify(
        manifest: Path = typer.Argument(..., help="Manifest directory."),
        deep: bool = typer.Option(False, "--deep", help="Re-read every referenced row: text sha256, token count, "
                                  "and token ids (the text re-tokenized with the manifest's tokenizer)."),
        shards: Path = typer.Option(None, "--shards", help="Shard directory, if it moved since the build."),
        tokenizer: Path = typer.Option(None, "--tokenizer", help="--deep: tokenizer.json the shards were made "
                                       "with (default: found next to the shards; sha256 must match)."),
    ) -> None:
        """Check header and entries hashes, per-pool totals, and the sha256 of every referenced shard file.

        Example: foresight manifest verify demo/manifests/lsbs_mix6 --deep
        """
        from foresight.formats.manifest import ManifestHeader
        from foresight.manifests import verify as verify_manifest

        verify_manifest(manifest, deep=deep, shards_root=shards, tokenizer=tokenizer)
        head = ManifestHeader.load(manifest)
        entries = "?" if head.entries is None else head.entries
        console.print(f"ok: {manifest} ({head.name}, {head.total_tokens:,} tokens, {entries} "
                      f"entries{', deep' if deep else ''})")

    @group.command("export")
    @user_errors
    def export(
        manifest: Path = typer.Argument(..., help="Manifest directory."),
        fmt: str = typer.Option(..., "--format", help="nanogpt | megatron | jsonl"),
        out: Path = typer.Option(..., "--out", parser=out_path,
                                 help="nanogpt: dataset directory (train.bin, val.bin, meta.pkl); "
                                      "megatron: prefix for .bin/.idx; jsonl: output file."),
        shards: Path = typer.Option(None, "--shards", help="Shard directory, if it moved since the build."),
    ) -> None:
        """Write the manifest's exact token stream for another trainer (or its texts with provenance).

        Example: foresight manifest export demo/manifests/lsbs_mix6 --format nanogpt --out demo/export/lsbs_mix6
        """
        from foresight.manifests import export as export_manifest

        summary = export_manifest(manifest, fmt, out, shards_root=shards)
        console.print(" ".join(f"{k}={v}" for k, v in summary.items()), highlight=False)

    @group.command("show")
    @user_errors
    def show(manifest: Path = typer.Argument(..., help="Manifest directory.")) -> None:
        """Print a manifest's mixture table from its header.

        Example: foresight manifest show demo/manifests/lsbs_mix6
        """
        from foresight.formats.manifest import ManifestHeader
        from foresight.mixtures.report import mixture_table

        head = ManifestHeader.load(manifest)
        _wide().print(mixture_table(head.name, head.total_tokens, head.ordered_pools, head.shares))
