"""Every test a doc names as the proof of a guarantee exists (docs/pipeline.md "Guarantees and limits")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["docs/pipeline.md", "docs/corpus.md", "docs/audit.md"]
DEFINED = {m for p in (ROOT / "tests").rglob("test_*.py")
           for m in re.findall(r"^\s*def (test_\w+)", p.read_text(encoding="utf-8"), re.M)}


@pytest.mark.parametrize("doc", DOCS)
def test_every_named_test_exists(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    for path in re.findall(r"`(tests/[\w/]+\.py)", text):
        assert (ROOT / path).is_file(), f"{doc} names {path}, which does not exist"
    for path, name in re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)", text):
        assert re.search(rf"^\s*def {name}\(", (ROOT / path).read_text(encoding="utf-8"), re.M), \
            f"{doc} names {path}::{name}, which is not defined there"
    for name in re.findall(r"\b(test_\w+)\b(?!\.py)", text):
        assert name in DEFINED, f"{doc} names {name}, which no test file defines"
