"""Assemble the embedded sample corpus: run every origin, apply byte budgets and exact dedup, write
``OUT_DIR/<source>/<origin>.jsonl`` plus ``SOURCES.md`` and ``metadata.json``.

Deterministic: origins run in a fixed order, each yields documents in a fixed order, budgets keep a
hash-ordered subset, and no file carries a timestamp, so the same installed packages give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from foresight.corpus import prose, pysource, realtext
from foresight.corpus.base import SOURCES, Doc, Origin, Provenance, stable_key
from foresight.formats.errors import InputError

FORMAT = "foresight-sample-corpus/1"
MB = 1_000_000

# numpy/scipy modules whose docstrings are mathematics; the rest of those packages is scientific prose.
NUMPY_MATH = ("numpy.linalg", "numpy.polynomial", "numpy.fft", "numpy._core._add_newdocs", "numpy._core.umath",
              "numpy._core.fromnumeric")
SCIPY_MATH = ("scipy.special", "scipy.linalg", "scipy.integrate", "scipy.fft", "scipy.fftpack", "scipy.differentiate")


def default_origins() -> list[Origin]:
    """Every origin of the sample corpus, in build order, with its byte budget (None = all of it)."""
    ds = pysource.docstring_docs
    return [
        Origin("python-stdlib", "code", lambda: pysource.python_provenance("standard library source (.py files)"),
               pysource.stdlib_code_docs, 7 * MB),
        Origin("sympy", "math", lambda: pysource.docstring_provenance("sympy", "sympy"),
               lambda: ds("sympy", "sympy", "math"), 4_500_000),
        Origin("numpy-math", "math", lambda: pysource.docstring_provenance("numpy", ", ".join(NUMPY_MATH)),
               lambda: ds("numpy", "numpy", "math", include=NUMPY_MATH)),
        Origin("scipy-math", "math", lambda: pysource.docstring_provenance("scipy", ", ".join(SCIPY_MATH)),
               lambda: ds("scipy", "scipy", "math", include=SCIPY_MATH)),
        Origin("scipy", "academia", lambda: pysource.docstring_provenance("scipy", "the other scipy modules"),
               lambda: ds("scipy", "scipy", "academia", exclude=SCIPY_MATH), 4 * MB),
        Origin("numpy", "academia", lambda: pysource.docstring_provenance("numpy", "the other numpy modules"),
               lambda: ds("numpy", "numpy", "academia", exclude=NUMPY_MATH)),
        Origin("python-docs", "academia",
               lambda: pysource.python_provenance("Python language reference topics (pydoc_data.topics)"),
               pysource.pydoc_topic_docs),
        Origin("shakespeare", "literature", prose.shakespeare_provenance, prose.shakespeare_docs),
        Origin("kjv-bible", "literature", prose.bible_provenance, prose.bible_docs),
        Origin("wikipedia-en", "encyclopedia", realtext.wiki_provenance, realtext.wiki_docs),
        # non-English leads: the language filter must drop them (counted by reason), so keep the set small
        Origin("wikipedia-fr", "encyclopedia", lambda: realtext.wiki_provenance("fr-fr"),
               lambda: realtext.wiki_docs("fr-fr"), 500_000),
        Origin("wikipedia-es", "encyclopedia", lambda: realtext.wiki_provenance("es-es"),
               lambda: realtext.wiki_docs("es-es"), 500_000),
        Origin("wordnet", "encyclopedia", prose.wordnet_provenance, prose.wordnet_docs, 2_500_000),
        Origin("bbc-news", "web-crawl", realtext.bbc_provenance, realtext.bbc_docs),
        Origin("pypi-readmes", "web-crawl", prose.readme_provenance, prose.readme_docs),
        Origin("torch-docs", "web-crawl", lambda: pysource.docstring_provenance("torch", "torch (prose paragraphs)"),
               lambda: pysource.doc_prose_docs("torch", "torch")),
        Origin("polars-docs", "web-crawl", lambda: pysource.docstring_provenance("polars", "polars (prose paragraphs)"),
               lambda: pysource.doc_prose_docs("polars", "polars")),
        Origin("wikibooks-cookbook", "food", realtext.recipe_provenance, realtext.recipe_docs),
    ]


@dataclass
class OriginStats:
    origin: Origin
    provenance: Provenance
    documents: int = 0
    bytes: int = 0
    dropped_duplicates: int = 0
    urls: set[str] = field(default_factory=set)  # document urls, kept for the per-package web-crawl listing

    @property
    def relpath(self) -> str:
        return f"{self.origin.source}/{self.origin.name}.jsonl"

    def as_dict(self) -> dict:
        p = self.provenance
        return {"origin": self.origin.name, "source": self.origin.source, "file": self.relpath,
                "package": p.package, "version": p.version, "license": p.license,
                "content": p.content, "content_license": p.content_license or p.license,
                "documents": self.documents, "bytes": self.bytes, "max_bytes": self.origin.max_bytes,
                "dropped_duplicates": self.dropped_duplicates}


@dataclass
class CorpusSummary:
    out_dir: Path
    origins: list[OriginStats] = field(default_factory=list)

    def by_source(self) -> dict[str, dict[str, int]]:
        out = {s: {"documents": 0, "bytes": 0} for s in SOURCES}
        for o in self.origins:
            out[o.origin.source]["documents"] += o.documents
            out[o.origin.source]["bytes"] += o.bytes
        return out

    @property
    def documents(self) -> int:
        return sum(o.documents for o in self.origins)

    @property
    def bytes(self) -> int:
        return sum(o.bytes for o in self.origins)


def _within_budget(docs: list[Doc], max_bytes: int | None) -> list[Doc]:
    """All docs if they fit; else a subset chosen in sha256(id) order up to the budget, in original order."""
    sizes = [len(d.text.encode("utf-8")) for d in docs]
    if max_bytes is None or sum(sizes) <= max_bytes:
        return docs
    chosen: set[int] = set()
    total = 0
    for i in sorted(range(len(docs)), key=lambda i: stable_key(docs[i].id)):
        if total + sizes[i] > max_bytes:
            continue
        chosen.add(i)
        total += sizes[i]
    return [d for i, d in enumerate(docs) if i in chosen]


def _quotas(origins: list[Origin], max_docs_per_source: int | None) -> dict[str, int | None]:
    """Split a per-source document limit evenly over that source's origins."""
    if max_docs_per_source is None:
        return {o.name: None for o in origins}
    out: dict[str, int | None] = {}
    for source in SOURCES:
        group = [o for o in origins if o.source == source]
        for i, o in enumerate(group):
            share, extra = divmod(max_docs_per_source, len(group))
            out[o.name] = share + (1 if i < extra else 0)  # may be 0: the limit is per source
    return out


def _prepare_out_dir(out_dir: Path) -> None:
    """Create OUT_DIR, or clear a previous sample corpus in it; refuse to write into unrelated content."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} is a file; pass a directory for the sample corpus")
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = {p.name for p in out_dir.iterdir()}
    ours = set(SOURCES) | {"SOURCES.md", "metadata.json"}
    if entries and "metadata.json" not in entries:
        raise InputError(f"{out_dir} is not empty and holds no sample corpus; choose an empty or new directory")
    if entries - ours:
        raise InputError(f"{out_dir} holds files that are not part of a sample corpus ({sorted(entries - ours)[0]}); "
                         "choose an empty or new directory")
    for name in entries:
        path = out_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _write_jsonl(path: Path, docs: Iterable[Doc]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for d in docs:
            f.write(json.dumps(d.as_json(), ensure_ascii=False) + "\n")


def build_sample_corpus(out_dir: str | Path, max_docs_per_source: int | None = None,
                        origins: list[Origin] | None = None,
                        progress: Callable[[OriginStats], None] | None = None) -> CorpusSummary:
    """Build the sample corpus into ``out_dir`` and return per-origin counts.

    ``max_docs_per_source`` caps each source's document count (for tests and quick looks).
    """
    if max_docs_per_source is not None and max_docs_per_source < 1:
        raise InputError(f"--max-docs-per-source must be >= 1, got {max_docs_per_source}")
    out_dir = Path(out_dir)
    origins = default_origins() if origins is None else origins
    for o in origins:
        if o.source not in SOURCES:
            raise InputError(f"origin {o.name}: source {o.source!r} is not one of {', '.join(SOURCES)}")
    quotas = _quotas(origins, max_docs_per_source)
    provenances = [o.provenance() for o in origins]  # fail on a missing package before touching OUT_DIR
    _prepare_out_dir(out_dir)
    summary = CorpusSummary(out_dir)
    seen: set[bytes] = set()
    for origin, prov in zip(origins, provenances, strict=True):
        stats = OriginStats(origin, prov)
        kept: list[Doc] = []
        for doc in islice(origin.docs(), quotas[origin.name]):
            digest = hashlib.sha256(doc.text.encode("utf-8")).digest()
            if digest in seen:
                stats.dropped_duplicates += 1
                continue
            seen.add(digest)
            kept.append(doc)
        kept = _within_budget(kept, origin.max_bytes)
        _write_jsonl(out_dir / stats.relpath, kept)
        stats.urls = {d.url for d in kept}
        stats.documents = len(kept)
        stats.bytes = sum(len(d.text.encode("utf-8")) for d in kept)
        summary.origins.append(stats)
        if progress:
            progress(stats)
    _write_metadata(summary, max_docs_per_source)
    return summary


def _metadata(summary: CorpusSummary, max_docs_per_source: int | None) -> dict:
    return {
        "format": FORMAT,
        "python": ".".join(map(str, sys.version_info[:3])),
        "max_docs_per_source": max_docs_per_source,
        "fields": ["id", "text", "source", "url"],
        "totals": {"documents": summary.documents, "bytes": summary.bytes},
        "sources": summary.by_source(),
        "origins": [o.as_dict() for o in summary.origins],
        "web_crawl_packages": prose.readme_packages(
            {url for o in summary.origins if o.origin.name == "pypi-readmes" for url in o.urls}),
    }


def _sources_md(meta: dict) -> str:
    lines = [
        "# Sample corpus: sources",
        "",
        "Built by `foresight corpus sample` from the Python installation and the packages of the `demo` extra",
        f"(Python {meta['python']}). Text counts are UTF-8 bytes of the `text` field.",
        "",
        "| source | file | package | version | package licence | text licence | content | documents | bytes |",
        "|---|---|---|---|---|---|---|---:|---:|",
    ]
    for o in meta["origins"]:
        lines.append(f"| {o['source']} | {o['file']} | {o['package']} | {o['version']} | {o['license']} | "
                     f"{o['content_license']} | {o['content']} | {o['documents']} | {o['bytes']} |")
    lines += ["", "## Totals by source", "", "| source | documents | bytes |", "|---|---:|---:|"]
    for s, c in meta["sources"].items():
        lines.append(f"| {s} | {c['documents']} | {c['bytes']} |")
    t = meta["totals"]
    lines.append(f"| **total** | {t['documents']} | {t['bytes']} |")
    if meta["web_crawl_packages"]:
        lines += ["", "## web-crawl: packages whose descriptions are included", "",
                  "| package | version | licence |", "|---|---|---|"]
        lines += [f"| {p['package']} | {p['version']} | {p['license']} |" for p in meta["web_crawl_packages"]]
    return "\n".join(lines) + "\n"


def _write_metadata(summary: CorpusSummary, max_docs_per_source: int | None) -> None:
    meta = _metadata(summary, max_docs_per_source)
    # One line: tools that read every *.json line as a record (e.g. tokenizer training on the directory) see
    # a single object without a `text` field and skip it.
    (summary.out_dir / "metadata.json").write_text(json.dumps(meta, sort_keys=True) + "\n", encoding="utf-8")
    (summary.out_dir / "SOURCES.md").write_text(_sources_md(meta), encoding="utf-8")
