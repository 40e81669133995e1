"""``python -m foresight`` runs the CLI."""

from foresight.cli import main

main()
