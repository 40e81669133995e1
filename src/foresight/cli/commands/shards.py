"""``foresight shards info``: index, accounting and sha256 verification of a shard directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from rich.text import Text

from foresight.cli.commands.common import console, user_errors
from foresight.formats.errors import SetupError

if TYPE_CHECKING:
    from foresight.formats.accounting import Accounting
    from foresight.formats.index import ShardIndex


def accounting_table(acc: Accounting) -> Table:
    table = Table(title="documents", show_header=True)
    table.add_column("count")
    table.add_column("n", justify="right")
    for label, n in acc.summary_rows():
        table.add_row(label, f"{n:,}")
    return table


def sources_table(index: ShardIndex) -> Table:
    table = Table(title="segments and tokens by source", show_header=True)
    for col, just in (("source", "left"), ("files", "right"), ("segments", "right"), ("tokens", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    files_per: dict[str | None, int] = {}
    for f in index.files:
        files_per[f.source] = files_per.get(f.source, 0) + 1
    for src, agg in index.totals.by_source.items():
        table.add_row(src, str(files_per.get(src, 0)), f"{agg.rows:,}", f"{agg.tokens:,}")
    t = index.totals
    table.add_row(Text("total", style="bold"), str(t.files), f"{t.rows:,}", f"{t.tokens:,}")
    return table


def print_summary(root: Path) -> ShardIndex:
    from foresight.formats.index import ShardIndex

    index = ShardIndex.load(root)
    if index.accounting is not None:
        console.print(accounting_table(index.accounting))
    console.print(sources_table(index))
    tok, cls = index.tokenizer, index.classifier
    console.print(f"tokenizer: {tok['name']} vocab={tok['vocab_size']} sha256={tok['sha256'][:16]}…")
    console.print(f"classifier: {cls['kind']} {cls['id']}" if cls else "classifier: none (no label columns)")
    return index


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Inspect and verify shard directories.", no_args_is_help=True)
    app.add_typer(group, name="shards")

    @group.command("info")
    @user_errors
    def info(
        shards_dir: Path = typer.Argument(..., help="Shard directory (holds index.json)."),
        verify: bool = typer.Option(True, "--verify/--no-verify", help="Re-hash every shard against index.json."),
    ) -> None:
        """Print the index (rows and tokens by source), the accounting, and verify every shard's sha256.

        Exits non-zero if a shard is missing or differs from index.json.

        Example: foresight shards info demo/shards
        """
        index = print_summary(shards_dir)
        acc = index.accounting
        if acc is not None and acc.balance() != 0:
            raise SetupError(f"{shards_dir}/index.json: accounting does not balance "
                             f"(read − kept − dropped − errored = {acc.balance()})")
        if verify:
            problems = index.verify(shards_dir)
            if problems:
                for p in problems:
                    console.print(Text.assemble(("✗", "red"), f" {p}"))
                raise SetupError(f"{len(problems)} of {len(index.files)} shard file(s) do not match "
                                   f"{shards_dir}/index.json; rebuild them with `foresight curate … --overwrite`")
            console.print(Text.assemble(("✓", "green"), f" {len(index.files)} shard file(s) match index.json "
                                                       "(sha256)"))
