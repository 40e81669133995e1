"""``foresight audit SHARDS --shell``: an interactive SQL prompt on the sandboxed audit connection.

Statements end with ``;`` and may span lines. Dot-commands: ``.tables``, ``.schema [VIEW]``, ``.param name=value``,
``.params``, ``.help``, ``.quit``. Readline gives line editing and a history file when it is available.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console
from rich.text import Text

from foresight.audit import AuditConnection, AuditError, parse_param
from foresight.audit.format import render_table

PROMPT = "audit> "
CONTINUE = "  ...> "
HELP = """\
Enter one SQL statement ending with ';' (it may span lines). Views: segments, documents, entries, manifests,
pools, results. Bind values with .param and use them as $name.
  .tables              list the views and their row counts
  .schema [VIEW]       columns and types of VIEW (or of every view)
  .param name=value    bind $name for the following statements   .params   list bound values
  .help                this text                                 .quit     leave (also .exit or Ctrl-D)"""


def history_path() -> Path:
    return Path(os.environ.get("FORESIGHT_AUDIT_HISTORY", Path.home() / ".foresight_audit_history"))


class _History:
    """Readline history of whole statements (not their lines), kept in a file between sessions."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        try:
            import readline
        except ImportError:  # e.g. Windows without pyreadline: the shell still works, without history
            self.readline: Any = None
            return
        self.readline = readline
        readline.set_auto_history(False)
        if path is not None and path.is_file():
            readline.read_history_file(str(path))

    def add(self, text: str) -> None:
        if self.readline is not None:
            self.readline.add_history(text)

    def save(self) -> None:
        if self.readline is not None and self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.readline.write_history_file(str(self.path))


class Shell:
    def __init__(self, audit: AuditConnection, console: Console, read: Callable[[str], str] = input,
                 history: Path | None = None) -> None:
        self.audit = audit
        self.console = console
        self.read = read
        self.params: dict[str, Any] = {}
        self.history = _History(history)

    def run(self) -> None:
        self.console.print(Text(f"foresight audit on {self.audit.root} — views: {', '.join(self.audit.views())}. "
                                "Type .help for help."), highlight=False)
        try:
            self._loop()
        finally:
            self.history.save()

    def _loop(self) -> None:
        buffer: list[str] = []
        while True:
            try:
                line = self.read(CONTINUE if buffer else PROMPT)
            except EOFError:
                self.console.print()
                return
            except KeyboardInterrupt:  # Ctrl-C drops the statement being typed, like sqlite3
                buffer.clear()
                self.console.print()
                continue
            if not buffer and line.strip().startswith("."):
                self.history.add(line.strip())
                if not self.dot(line.strip()):
                    return
                continue
            if not line.strip() and not buffer:
                continue
            buffer.append(line)
            if line.rstrip().endswith(";"):
                sql = "\n".join(buffer).strip()
                buffer.clear()
                self.history.add(sql)
                self.statement(sql)

    def statement(self, sql: str) -> None:
        try:
            df = self.audit.query(sql, self._params_for(sql))
        except AuditError as e:
            self.console.print(_error(str(e)), highlight=False)
            return
        render_table(df, self.console)

    def _params_for(self, sql: str) -> dict[str, Any]:
        # Bind only the .param values this statement uses, so unrelated ones are not "unused parameter" errors.
        try:
            used = {n for s in self.audit.con.extract_statements(sql) for n in s.named_parameters}
        except duckdb.Error:  # query() reports the syntax error with its position
            return {}
        return {k: v for k, v in self.params.items() if k in used}

    def dot(self, command: str) -> bool:
        """Run a dot-command; False means leave the shell."""
        name, _, arg = command.partition(" ")
        arg = arg.strip()
        if name in (".quit", ".exit", ".q"):
            return False
        try:
            if name == ".tables":
                self.tables()
            elif name == ".schema":
                self.schema(arg)
            elif name == ".param":
                key, value = parse_param(arg)
                self.params[key] = value
            elif name == ".params":
                for k, v in sorted(self.params.items()):
                    self.console.print(Text(f"${k} = {v!r}"), highlight=False)
            elif name == ".help":
                self.console.print(Text(HELP), highlight=False)
            else:
                self.console.print(_error(f"unknown command {name}; try .help"), highlight=False)
        except AuditError as e:
            self.console.print(_error(str(e)), highlight=False)
        return True

    def tables(self) -> None:
        for view in self.audit.views():
            rows = self.audit.con.execute(f'SELECT count(*) FROM "{view}"').fetchone()[0]
            self.console.print(f"{view:<10} {rows:>12,} rows  {len(self.audit.columns(view))} columns", highlight=False)

    def schema(self, view: str) -> None:
        for v in [view] if view else self.audit.views():
            cols = ", ".join(f"{c} {t}" for c, t in self.audit.columns(v))
            self.console.print(Text(f"{v}({cols})"), highlight=False)


def _error(message: str) -> Text:
    """An error line as Text: the console never reads the message (SQL, paths, [brackets]) as markup."""
    return Text.assemble(("error:", "bold red"), " ", message)


def run_shell(audit: AuditConnection, console: Console, history: Path | None = None,
              read: Callable[[str], str] = input) -> None:
    Shell(audit, console, read, history).run()
