"""Layout features of a text: how it is written, not what it says (symbol, digit and indentation shares, line
endings, prose function words, identifier shapes).

Why: a mean of token vectors forgets the text's shape; code and formulas look alike across sources and languages
(braces, operators, indented lines ending in ``;`` or ``:``), and grouped CV measures whether they help on sources
a model never saw (docs/classifiers.md). Each feature is a share in [0, 1] (mean word length / 10), computed with
``str`` methods in C, so a text costs a few microseconds.
"""

from __future__ import annotations

import numpy as np

NAMES = ("alpha", "digit", "bracket", "operator", "indented", "code_ending", "backslash", "upper", "word_length",
         "punctuation", "function_words", "underscore")
_FUNCTION_WORDS = (b" the ", b" of ", b" and ", b" to ", b" in ", b" is ", b" a ", b" that ", b" with ")
_INDENTS = (b"\n ", b"\n\t")
_CODE_ENDINGS = (b";\n", b"{\n", b"}\n", b")\n", b":\n")
# byte classes counted from one byte histogram per text: a column per class
_CLASS_BYTES = (bytes(range(65, 91)) + bytes(range(97, 123)), b"0123456789", b"{}()[];=<>", b"+-*/^=<>|", b"\\",
                bytes(range(65, 91)), b".,!?", b"_", b" \t\n\r", b"\n", b" ")
_CLASSES = np.zeros((256, len(_CLASS_BYTES)), np.float64)
for _j, _chars in enumerate(_CLASS_BYTES):
    _CLASSES[list(_chars), _j] = 1.0


def layout_matrix(texts: list[str]) -> np.ndarray:
    """``[len(texts), len(NAMES)]`` float32. One byte histogram for the whole batch (``bincount`` over
    text-offset + byte), then ``bytes.count`` for the few two-byte patterns: no Python loop over characters."""
    raws = [t.encode("utf-8", "replace") + b"\n" for t in texts]
    if not raws:
        return np.zeros((0, len(NAMES)), np.float32)
    lengths = np.fromiter(map(len, raws), np.int64, count=len(raws))
    flat = np.frombuffer(b"".join(raws), np.uint8).astype(np.int64)
    flat += np.repeat(np.arange(len(raws), dtype=np.int64) * 256, lengths)
    hist = np.bincount(flat, minlength=256 * len(raws)).reshape(len(raws), 256)
    c = hist @ _CLASSES
    alpha, digit, bracket, operator, backslash, upper, punct, underscore, space, newline, blank = c.T
    n = np.maximum(lengths - 1, 1).astype(np.float64)
    lines = np.maximum(newline, 1)
    words = np.maximum(blank + newline, 1)
    two = np.array([[sum(r.count(p) for p in _INDENTS), sum(r.count(p) for p in _CODE_ENDINGS),
                     sum(r.lower().count(w) for w in _FUNCTION_WORDS)] for r in raws], np.float64).reshape(-1, 3)
    out = np.stack([alpha / n, digit / n, bracket / n, operator / n, two[:, 0] / lines, two[:, 1] / lines,
                    backslash / n, upper / n, np.minimum((n - space + 1) / words / 10, 3.0), punct / n,
                    two[:, 2] / words, underscore / n], axis=1)
    return out.astype(np.float32)
