"""Cutting segments into classifier-sized pieces at paragraph, line or sentence boundaries.

The transformer sees at most ``max_length`` tokens (256 ≈ 1,000-1,500 characters of English), so labelling,
hand-labelling and distillation work on pieces of that size: the label then describes the text the model read.
"""

from __future__ import annotations

import re

_PARAGRAPHS = re.compile(r"\n\s*\n+")


def cut(text: str, max_chars: int) -> str:
    """``text`` up to ``max_chars``, cut at the last paragraph, line, sentence or word break in its second half."""
    text = text.strip()
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    for sep in ("\n\n", "\n", ". ", " "):
        k = head.rfind(sep)
        if k > max_chars // 2:
            return head[: k + (1 if sep == ". " else 0)].strip()
    return head.strip()


def pieces(text: str, max_chars: int = 1500, min_chars: int = 120) -> list[str]:
    """Consecutive pieces of ≤ ``max_chars``: whole paragraphs joined while they fit; a paragraph longer than
    ``max_chars`` is cut (its rest is dropped, as a labeller reading the first screen would). Pieces shorter
    than ``min_chars`` are dropped unless the text has nothing longer."""
    out: list[str] = []
    cur = ""
    for block in _PARAGRAPHS.split(text.strip()):
        if cur and len(cur) + len(block) + 2 > max_chars:
            out.append(cut(cur, max_chars))
            cur = ""
        cur = f"{cur}\n\n{block}" if cur else block
    if cur:
        out.append(cut(cur, max_chars))
    long = [p for p in out if len(p) >= min_chars]
    return long or [p for p in out if p][:1]
