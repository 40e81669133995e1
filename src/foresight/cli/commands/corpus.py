"""``foresight corpus sample``: build the embedded sample corpus."""

from __future__ import annotations

from pathlib import Path

import typer

from foresight.cli.commands.common import console, user_errors


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Build the embedded sample corpus.", no_args_is_help=True)
    app.add_typer(group, name="corpus")

    @group.command("sample")
    @user_errors
    def sample(
        out_dir: Path = typer.Argument(..., help="Directory to write <source>/<origin>.jsonl, SOURCES.md and "
                                                 "metadata.json into (new, empty, or a previous sample corpus)."),
        max_docs_per_source: int = typer.Option(None, "--max-docs-per-source", min=1,
                                                help="Cap documents per source (quick looks and tests)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the totals line."),
    ) -> None:
        """Build the sample corpus offline from the Python installation and the `demo` extra's packages.

        Sources: code (CPython stdlib), math (sympy/numpy/scipy docstrings), academia (scipy/numpy docs and
        the Python language reference), literature (Shakespeare, King James Bible), encyclopedia (Wikipedia
        leads, with a French/Spanish set the language filter drops, and WordNet glosses), web-crawl (BBC News,
        package READMEs, torch and polars documentation prose) and food (Wikibooks recipes). Deterministic:
        the same installed packages give byte-identical files.

        Example: foresight corpus sample data/sample
        """
        from rich.table import Table

        from foresight.corpus import build_sample_corpus

        def progress(stats) -> None:
            if not quiet:
                console.print(f"  {stats.relpath}: {stats.documents} documents, {stats.bytes / 1e6:.1f} MB")

        summary = build_sample_corpus(out_dir, max_docs_per_source=max_docs_per_source, progress=progress)
        if not quiet:
            table = Table(title=f"sample corpus: {out_dir}")
            for col in ("source", "documents", "MB"):
                table.add_column(col, justify="left" if col == "source" else "right")
            for source, c in summary.by_source().items():
                table.add_row(source, str(c["documents"]), f"{c['bytes'] / 1e6:.2f}")
            console.print(table)
        console.print(f"sample corpus: {summary.documents} documents, {summary.bytes / 1e6:.1f} MB in {out_dir} "
                      f"(see {out_dir / 'SOURCES.md'})")
