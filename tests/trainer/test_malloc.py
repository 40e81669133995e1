"""trainer.malloc: glibc is told to keep freed memory, unless the user tuned malloc through the environment."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CALL = "from foresight.trainer.malloc import retain_heap; print(retain_heap(), retain_heap())"


def _run(extra_env: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env.update(extra_env, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", CALL], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_retain_heap_applies_once_on_glibc() -> None:
    assert _run({}) == "True True"


def test_retain_heap_leaves_a_user_tuned_malloc_alone() -> None:
    assert _run({"MALLOC_TRIM_THRESHOLD_": "131072"}) == "False False"
