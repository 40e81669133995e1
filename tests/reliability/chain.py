"""A tiny shards → manifest → run chain, and the ``foresight`` CLI run as a child process (its real stderr)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mixtures.corpus import CATEGORY_SPEC, build_corpus, write_spec

ROOT = Path(__file__).resolve().parents[2]
TRAIN_ARGS = ("--quiet", "--seq-len", "32", "--batch-tokens", "128", "--checkpoint-every", "2", "--threads", "1")


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}", COLUMNS="200")


def cli_cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "foresight", *map(str, args)]


def cli(*args: object, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli_cmd(*args), env=env(), cwd=cwd, capture_output=True, text=True, timeout=timeout)


def build_chain(tmp: Path, total: int = 500) -> tuple[Path, Path]:
    """(shards, spec) under ``tmp``."""
    shards = build_corpus(tmp)
    return shards, write_spec(tmp / "s.toml", CATEGORY_SPEC.format(total=total, seed=0))


def error_line(res: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command printed on stderr (asserting it is one line and not a traceback)."""
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode != 0, res.stdout + res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


def leftovers(root: Path) -> list[Path]:
    """Temporaries and locks that an ended command must not leave behind."""
    return sorted(p for p in root.rglob("*") if p.name.endswith((".tmp", ".lock", ".old")))


@contextlib.contextmanager
def full_tmpfs(where: Path, free: int, size_mb: int = 8) -> Iterator[Path]:
    """A tmpfs of ``size_mb`` MiB mounted at ``where`` with about ``free`` bytes left (a filler file holds the
    rest); skipped where mounting is not permitted. Unmounted at the end."""
    where.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(where)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): {res.stderr.strip()}")
    try:
        st = os.statvfs(where)
        with open(where / "filler", "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - free))
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
