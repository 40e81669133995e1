"""Team-labelled sets: merge labellers' JSONL answers, measure inter-labeller agreement, apply adjudication.

A labelling round works on blind slices: each labeller sees only ``{"key", "text"}`` lines and answers one
``{"key", "labels", "rationale"}`` line per key (the last line for a key wins). Some keys are given to two
labellers independently; their agreement is Cohen's κ per label, and disagreements are settled by an
adjudicator whose answer replaces both. The result is written with :func:`classifiers.labelsio.write_labels`
plus a one-line ``rationale`` per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from foresight.classifiers.evaluate import agreement
from foresight.classifiers.labelsio import read_json_lines
from foresight.formats.errors import InputError
from foresight.formats.taxonomy import LABEL_NAMES, label_vector


@dataclass
class Answer:
    labels: tuple[str, ...]
    rationale: str
    labeller: str


@dataclass
class Round:
    """Every answer per key, in the order the labellers' files were read."""

    answers: dict[str, list[Answer]] = field(default_factory=dict)

    def add(self, key: str, answer: Answer) -> None:
        self.answers.setdefault(key, []).append(answer)


def vector(labels: tuple[str, ...] | list[str]) -> np.ndarray:
    return np.array(label_vector(labels), dtype=np.int8)


def read_answers(path: Path, labeller: str) -> dict[str, Answer]:
    """One labeller's answers; a malformed line or an unknown label stops with the file and line named."""
    out: dict[str, Answer] = {}
    fields = lambda rec: (str(rec["key"]), list(rec["labels"]), str(rec.get("rationale", "")).strip())  # noqa: E731
    for n, (key, labels, why) in read_json_lines(path, "a {key, labels, rationale} JSON line", fields):
        unknown = sorted(set(labels) - set(LABEL_NAMES))
        if unknown:
            raise InputError(f"{path}:{n}: unknown labels {unknown}; use {list(LABEL_NAMES)}")
        out[key] = Answer(tuple(name for name in LABEL_NAMES if name in labels), why, labeller)  # last wins
    return out


def read_round(files: dict[str, Path]) -> Round:
    """``{labeller: answers.jsonl}`` → every answer per key."""
    rnd = Round()
    for labeller, path in files.items():
        for key, ans in read_answers(path, labeller).items():
            rnd.add(key, ans)
    return rnd


def double_labelled(rnd: Round) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Keys with two or more answers, and the first two labellers' 0/1 matrices (for κ)."""
    keys = sorted(k for k, a in rnd.answers.items() if len(a) >= 2)
    def matrix(i: int) -> np.ndarray:
        rows = [label_vector(rnd.answers[k][i].labels) for k in keys]
        return np.array(rows, dtype=np.int8).reshape(len(keys), len(LABEL_NAMES))

    return keys, matrix(0), matrix(1)


def kappa_report(rnd: Round) -> dict:
    """Per-label Cohen's κ and raw agreement between the two labellers of every double-labelled key."""
    keys, a, b = double_labelled(rnd)
    if not keys:
        return {"n": 0}
    kap = agreement(a, b)
    return {"n": len(keys), "kappa": kap,
            "agreement": {n: float(np.mean(a[:, j] == b[:, j])) for j, n in enumerate(LABEL_NAMES)},
            "exact_match": float(np.mean((a == b).all(1))),
            "disagreements": [k for k, x, y in zip(keys, a, b, strict=True) if (x != y).any()]}


def resolve(rnd: Round, adjudicated: dict[str, Answer]) -> dict[str, Answer]:
    """One answer per key: the adjudicator's where given, else the single answer, else (agreeing doubles) the
    first. A double-labelled key whose labellers disagree and that has no adjudication is an error."""
    out: dict[str, Answer] = {}
    for key, answers in rnd.answers.items():
        if key in adjudicated:
            out[key] = adjudicated[key]
        elif len({a.labels for a in answers}) == 1:
            out[key] = answers[0]
        else:
            raise InputError(f"key {key}: labellers disagree ({', '.join(a.labeller for a in answers)}) and no "
                             "adjudication was given; adjudicate it")
    return out


# Provenance every harvested segment carries (classifiers/data/SOURCES.md lists one line per source).
PROVENANCE = ("registry", "package", "version", "licence", "genre", "path")
GENRES = ("encyclopedic", "dictionary", "news", "fiction_drama", "essays_letters", "recipes_howto", "graphics_manual",
          "game_world", "science_manual", "math_manual", "academic", "code", "code_prose", "software_docs", "legal",
          "forum_qa")


def read_segments(path: Path) -> list[dict]:
    """A labeller's harvested-and-labelled segments: ``{key, source, text, labels, rationale}`` plus
    :data:`PROVENANCE`; a line missing a field or naming an unknown label or genre stops with file and line."""
    rows = []
    fields = lambda rec: {k: rec[k] for k in ("key", "source", "text", "labels", "rationale", *PROVENANCE)}  # noqa: E731
    for n, row in read_json_lines(path, "a labelled-segment line", fields):
        bad = sorted(set(row["labels"]) - set(LABEL_NAMES))
        if bad or row["genre"] not in GENRES:
            raise InputError(f"{path}:{n}: unknown labels {bad} or genre {row['genre']!r}")
        rows.append(row)
    return rows


def norm_text(text: str) -> str:
    """Whitespace-insensitive identity of a text (duplicates and gold/training overlap are judged on it)."""
    return " ".join(text.split())


def cap_per_group(groups: list[str], share: float, keep_first: list[bool], seed: int = 0) -> list[int]:
    """Row indices to keep so that no group exceeds ``share`` of the kept rows. Rows marked ``keep_first``
    (double-labelled, adjudicated) are kept before the rest; the rest of an over-full group is a seeded sample."""
    import random

    n = len(groups)
    by: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by.setdefault(g, []).append(i)
    rng = random.Random(seed)
    for rows in by.values():
        rng.shuffle(rows)
        rows.sort(key=lambda i: not keep_first[i])
    while True:  # capping big groups shrinks the total, which lowers the cap: iterate to a fixed point
        cap = int(share * n)
        kept = [rows[:cap] for rows in by.values()]
        total = sum(map(len, kept))
        if total == n:
            return sorted(i for rows in kept for i in rows)
        n = total
