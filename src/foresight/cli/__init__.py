"""``foresight`` CLI: the composition root. A thin layer over library functions; each command module
imports later packages (mixtures, manifests, trainer) lazily inside its commands so ``--help`` is fast."""

from __future__ import annotations

import typer

from foresight.cli.commands import command_modules, load_command_module

app = typer.Typer(
    name="foresight",
    help="Curate pre-training corpora, classify them with the LSBS taxonomy, build token-exact "
         "mixtures, audit them with SQL, and train/probe small models on them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _name in command_modules():
    load_command_module(_name).register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
