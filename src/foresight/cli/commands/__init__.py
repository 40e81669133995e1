"""One module per command group; each exposes ``register(app: typer.Typer)``.

Modules are discovered, so adding a command group is adding a file; ``ORDER`` fixes ``--help`` order.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

ORDER: tuple[str, ...] = (
    "corpus", "tokenizer", "curate", "shards", "classify", "mix", "manifest",
    "train", "probe", "sweep", "audit",
)
_NOT_COMMANDS = {"common", "classify_report", "classify_learn"}  # helpers of a group, not groups


def command_modules() -> list[str]:
    found = {m.name for m in pkgutil.iter_modules(__path__) if m.name not in _NOT_COMMANDS}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def load_command_module(name: str) -> ModuleType:
    return importlib.import_module(f"foresight.cli.commands.{name}")
