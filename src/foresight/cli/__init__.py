"""``foresight`` CLI: the composition root. A thin layer over library functions; each command module
imports later packages (mixtures, manifests, trainer) lazily inside its commands so ``--help`` is fast."""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from foresight.cli.commands import ORDER, command_modules, load_command_module
from foresight.cli.commands.common import escape_help, set_debug


class _DataPathOrder(TyperGroup):
    """``foresight --help`` lists commands in the order of the data path (commands.ORDER), not typer's
    commands-then-groups order."""

    def list_commands(self, ctx) -> list[str]:
        names = super().list_commands(ctx)
        rank = {n: i for i, n in enumerate(ORDER)}
        return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


app = typer.Typer(
    name="foresight",
    cls=_DataPathOrder,
    help="Curate pre-training corpora, classify them with the LSBS taxonomy, build token-exact "
         "mixtures, audit them with SQL, and train/probe small models on them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from foresight.formats import __version__

        typer.echo(f"foresight {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of user errors too "
                                                      "(bugs always show theirs)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the foresight version and exit."),
) -> None:
    """Top-level options (the app's help text is given above)."""
    set_debug(debug)


for _name in command_modules():
    load_command_module(_name).register(app)
escape_help(app)


def main() -> None:
    from foresight.cli.interrupt import install

    install()
    app()


if __name__ == "__main__":
    main()
