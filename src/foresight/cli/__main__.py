"""``python -m foresight.cli`` runs the CLI (as ``python -m foresight`` does)."""

from foresight.cli import main

main()
