"""Shared pieces of the sample-corpus builder: the document record, provenance of an origin, and text helpers.

Every origin (a package or the Python installation) yields :class:`Doc` objects lazily and in a fixed order, so
the same installed packages always give the same documents.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from foresight.formats.errors import SetupError

# The LSBS sources a sample document may carry (docs/classifiers.md); mixtures select on these names.
# `food` is one of LSBS's 16 sources beyond the six of Table 4.
SOURCES: tuple[str, ...] = ("code", "math", "academia", "literature", "encyclopedia", "web-crawl", "food")

MIN_DOC_BYTES = 200
MAX_DOC_BYTES = 16_000

# Lines that mark license boilerplate rather than content (checked case-insensitively).
_LICENSE_MARKERS = (
    "permission is hereby granted, free of charge",
    "the software is provided \"as is\"",
    "redistribution and use in source and binary forms",
    "licensed under the apache license",
    "this program is free software; you can redistribute",
    "gnu general public license as published",
    "this library is free software; you can redistribute",
    "the above copyright notice and this permission notice",
)


@dataclass(frozen=True)
class Doc:
    id: str
    text: str
    source: str
    url: str

    def as_json(self) -> dict[str, str]:
        return {"id": self.id, "text": self.text, "source": self.source, "url": self.url}


@dataclass(frozen=True)
class Provenance:
    """Where an origin's text comes from: recorded in SOURCES.md and metadata.json."""

    package: str
    version: str
    license: str
    content: str  # what the text is, in words
    content_license: str = ""  # licence of the text when it differs from the package's (e.g. WordNet data)


@dataclass
class Origin:
    """One file group of the corpus: ``OUT_DIR/<source>/<name>.jsonl``."""

    name: str
    source: str
    provenance: Callable[[], Provenance]
    docs: Callable[[], Iterator[Doc]]
    max_bytes: int | None = None  # byte budget; above it a hash-ordered subset is kept
    extra: dict = field(default_factory=dict)


def stable_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def dist_version(name: str) -> str:
    try:
        return md.version(name)
    except md.PackageNotFoundError as e:
        raise SetupError(
            f"package {name!r} is not installed; install the demo extra: pip install 'foresight[demo]' "
            "(in a checkout: pip install -e '.[demo]')"
        ) from e


def dist_license(name: str) -> str:
    return license_of(md.metadata(name))


def license_of(meta: md.PackageMetadata) -> str:
    """The licence a distribution declares: License-Expression, a short License field, or its classifiers."""
    expr = (meta.get("License-Expression") or "").strip()
    if expr:
        return expr
    lic = (meta.get("License") or "").strip()
    if lic and "\n" not in lic and len(lic) <= 60 and lic.upper() != "UNKNOWN":
        return lic
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    if classifiers:
        return "; ".join(sorted(set(classifiers)))
    if lic:
        return lic.splitlines()[0][:60]
    return "unknown (not declared in package metadata)"


def dist_provenance(name: str, content: str, content_license: str = "") -> Provenance:
    return Provenance(md.metadata(name)["Name"], dist_version(name), dist_license(name), content, content_license)


def dist_root(name: str) -> Path:
    """Directory holding a distribution's files (site-packages), without importing it."""
    dist = md.distribution(name)
    return Path(str(dist.locate_file(""))).resolve()


def package_dir(dist_name: str, top_level: str) -> Path:
    path = dist_root(dist_name) / top_level
    if not path.is_dir():
        raise SetupError(f"package {dist_name!r} has no {top_level}/ directory at {path}; reinstall it")
    return path


def is_boilerplate(text: str) -> bool:
    low = text.lower()
    return any(marker in low for marker in _LICENSE_MARKERS)


def letter_fraction(text: str) -> float:
    """Share of non-space characters that are letters: low for tables of numbers or symbol soup."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 0.0
    return sum(c.isalpha() for c in chars) / len(chars)


def tidy(text: str) -> str:
    """Normalise line endings, strip trailing spaces, collapse 3+ blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


def split_blocks(text: str, max_bytes: int = MAX_DOC_BYTES, sep: str = "\n\n") -> list[str]:
    """Split ``text`` at ``sep`` boundaries into pieces of at most ~``max_bytes`` bytes.

    A single block larger than ``max_bytes`` is split at line breaks instead; one giant line stays whole.
    """
    if len(text.encode("utf-8")) <= max_bytes:
        return [text]
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for block in text.split(sep):
        bsize = len(block.encode("utf-8")) + len(sep)
        if bsize > max_bytes and sep != "\n":
            if current:
                pieces.append(sep.join(current))
                current, size = [], 0
            pieces.extend(split_blocks(block, max_bytes, "\n"))
            continue
        if current and size + bsize > max_bytes:
            pieces.append(sep.join(current))
            current, size = [], 0
        current.append(block)
        size += bsize
    if current:
        pieces.append(sep.join(current))
    return [p.strip("\n") for p in pieces if p.strip()]


_FENCE = re.compile(r"^\s*(```|~~~).*?^\s*(```|~~~)\s*$", re.M | re.S)
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_INLINE_MARKUP = re.compile(r"(`{1,2}|\*{1,2})([^`*\n]+)\1")
_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`]+)`")
_RST_LINK = re.compile(r"`([^`<]+?)(?:\s*<[^>]*>)?`_{1,2}")
_UNDERLINE = re.compile(r"^[=\-~^*#+`'\"]{3,}\s*$", re.M)
_LIST_ITEM = re.compile(r"^\s*([-*+]|\d+[.)])\s", re.M)
_CODEISH = set("()[]{}=<>_/\\")


def prose_paragraphs(text: str, min_words: int = 6, min_wordlike: float = 0.85) -> list[str]:
    """The running-prose paragraphs of Markdown/reST text, with link targets and inline markup removed.

    Code blocks, doctest lines, tables, indented blocks and symbol-heavy paragraphs are dropped: this is the
    main-content extraction a web crawl applies to documentation pages.
    """
    text = _ROLE.sub(r"\1", _MD_LINK.sub(r"\1", _FENCE.sub("", text)))
    text = _RST_LINK.sub(r"\1", text).replace("::\n", ":\n")
    text = _INLINE_MARKUP.sub(r"\2", re.sub(r"^#+\s*", "", text, flags=re.M))
    text = _UNDERLINE.sub("", text)
    out = []
    for block in text.split("\n\n"):
        stripped = block.strip("\n")
        # indented lines mean a code block or a field list (Args:/Parameters), not running prose
        if not stripped.strip() or any(line[:1].isspace() for line in stripped.split("\n")):
            continue
        if stripped.startswith((">>>", "$ ", "|", "..", "+-")):
            continue
        words = stripped.split()
        if len(words) < min_words:
            continue
        wordlike = sum(any(c.isalpha() for c in w) and not _CODEISH.intersection(w) for w in words)
        if wordlike / len(words) >= min_wordlike:
            out.append(stripped if _LIST_ITEM.search(stripped) else " ".join(words))  # unwrap hard-wrapped prose
    return out


def keep(text: str, min_letters: float = 0.5) -> bool:
    """Whether a document is worth keeping: long enough, mostly words, not licence text."""
    return (
        len(text.encode("utf-8")) >= MIN_DOC_BYTES
        and letter_fraction(text) >= min_letters
        and not is_boilerplate(text)
    )
