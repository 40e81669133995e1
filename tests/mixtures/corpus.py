"""A tiny labelled corpus shared by the mixture and manifest tests (written under the test's tmp dir)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers import make_shards

SOURCES = ("code", "math", "academic", "literature", "encyclopedia", "web-crawl")
LABELS = {"code": ["code_reasoning"], "math": ["math_reasoning"], "academic": ["science_reasoning"],
          "literature": ["visual_attribute"], "encyclopedia": [], "web-crawl": ["visual_concept"]}
PHRASES = ("the red ball sits on the wooden table . ", "we prove that x + y = 2 by induction . ",
           "def f ( x ) : return x * 2 ", "once upon a time a knight rode into the dark forest . ")


def corpus_docs(n: int = 90) -> list[dict[str, Any]]:
    docs = []
    for i in range(n):
        src = SOURCES[i % len(SOURCES)]
        labels = list(LABELS[src]) if (src != "web-crawl" or i % 4) else []
        text = " ".join(PHRASES[(i + j) % len(PHRASES)] for j in range(1 + i % 6)) + f" n{i}"
        docs.append({"text": text, "source": src, "labels": labels, "doc_id": f"d{i:04d}",
                     "score_math_reasoning": (i % 10) / 10})
    return docs


def build_corpus(tmp: Path, name: str = "shards", ranks: int = 1, n: int = 90) -> Path:
    return make_shards(tmp, corpus_docs(n), name=name, ranks=ranks)


def write_spec(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


CATEGORY_SPEC = """
total_tokens = {total}
seed = {seed}
exclude = ["heldout"]
heldout_fraction = 0.2

[pools.reasoning]
where = "reasoning"
weight = 0.5

[pools.visual]
where = "visual AND NOT reasoning"
weight = 0.3

[pools.other]
where = "NOT reasoning AND NOT visual"
weight = 0.2
"""
