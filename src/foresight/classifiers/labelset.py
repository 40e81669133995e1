"""Team-labelled sets: merge labellers' JSONL answers, measure inter-labeller agreement, apply adjudication.

A labelling round works on blind slices: each labeller sees only ``{"key", "text"}`` lines and answers one
``{"key", "labels", "rationale"}`` line per key (the last line for a key wins). Some keys are given to two
labellers independently; their agreement is Cohen's κ per label, and disagreements are settled by an
adjudicator whose answer replaces both. The result is written with :func:`classifiers.labelsio.write_labels`
plus a one-line ``rationale`` per row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from foresight.classifiers.evaluate import agreement
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
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                key, labels, why = str(rec["key"]), list(rec["labels"]), str(rec.get("rationale", "")).strip()
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{n}: not a {{key, labels, rationale}} JSON line ({e})") from None
            unknown = sorted(set(labels) - set(LABEL_NAMES))
            if unknown:
                raise ValueError(f"{path}:{n}: unknown labels {unknown}; use {list(LABEL_NAMES)}")
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
            raise ValueError(f"key {key}: labellers disagree ({', '.join(a.labeller for a in answers)}) and no "
                             "adjudication was given; adjudicate it")
    return out
