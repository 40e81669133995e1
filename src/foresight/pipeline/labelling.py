"""Labelling shards outside a curation run: teacher labels for a sample of segments, the texts a student is
distilled on, and per-source label rates beside LSBS Table 4. The CLI (``foresight classify``) prints these."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from foresight.formats.errors import InputError
from foresight.formats.taxonomy import LABEL_NAMES, label_vector
from foresight.pipeline.stages.classify import read_segments


@dataclass
class Taught:
    """Segments labelled by a teacher: their columns, the label matrix and what the teacher reported."""

    segments: dict[str, list[Any]]
    y: np.ndarray
    extra: dict[str, list[Any]] = field(default_factory=dict)
    report: list[str] = field(default_factory=list)


def teach(root: Path, teacher: str, sample: int | None = None, seed: int = 0, stratify: bool = False,
          llm_opts: dict[str, Any] | None = None) -> Taught:
    """Label a (stratified) sample of ``root``'s segments with the ``rules`` or ``llm`` teacher; segments the LLM
    could not label are left out (named in the report)."""
    seg = read_segments(root, sample=sample, seed=seed, stratify=stratify)
    texts = seg["text"]
    if teacher == "rules":
        from foresight.classifiers.teacher.rules import explain, scores_from_votes

        votes = [explain(t) for t in texts]
        y = np.stack([scores_from_votes(v) >= 0.5 for v in votes]).astype(np.int8) if votes else \
            np.zeros((0, len(LABEL_NAMES)), np.int8)
        return Taught(seg, y, {"votes": [json.dumps(v, sort_keys=True) for v in votes]})
    if teacher != "llm":
        raise InputError(f"--teacher must be 'rules' or 'llm', not {teacher!r}")
    from foresight.classifiers.teacher.llm import LLMTeacher

    opts = llm_opts or {}
    if not opts.get("endpoint") or not opts.get("model"):
        raise InputError("--teacher llm needs --endpoint URL and --model NAME (key from --api-key-env)")
    t = LLMTeacher(**opts)
    answers = t.label(seg["id"], texts)
    keep = [i for i, a in enumerate(answers) if a is not None]
    y = np.asarray([answers[i] for i in keep], dtype=np.int8).reshape(len(keep), len(LABEL_NAMES))
    s = t.stats
    report = [f"llm: requests={s.requests} cached={s.cached} retries={s.retries} malformed={s.malformed} "
              f"errored={len(s.errored)} truncated={t.truncated}"]
    if s.errored:
        report.append(f"errored segments (left out): {', '.join(s.errored[:20])}{' …' if len(s.errored) > 20 else ''}")
    return Taught({k: [v[i] for i in keep] for k, v in seg.items()}, y, {}, report)


def distill_texts(shards: Path, sample: int, piece_chars: int, seed: int, stratify: bool) -> list[str]:
    """The texts a teacher labels for distillation: a (stratified) sample of segments, cut into pieces of about
    ``piece_chars`` characters when asked, then sampled again down to ``sample``."""
    from foresight.classifiers.pieces import pieces

    seg = read_segments(shards, sample=sample or None, seed=seed, stratify=stratify)
    if not piece_chars:
        return seg["text"]
    out = [p for t in seg["text"] for p in pieces(t, piece_chars)]
    if sample and len(out) > sample:
        out = [out[i] for i in sorted(random.Random(seed).sample(range(len(out)), sample))]
    return out


def label_rates(shards: Path, model: str = "", device: str = "auto") -> list[dict[str, Any]]:
    """Per source: % of segments with each Table 4 column, from the stored labels or, with ``model``, scored now;
    rows as :func:`classifiers.evaluate.table4_rates` gives them (with LSBS's figure where comparable)."""
    from foresight.classifiers.base import label_matrix, load_classifier
    from foresight.classifiers.evaluate import table4_rates

    if model:
        seg = read_segments(shards, columns=("source", "text"))
        clf = load_classifier(model, device=device)
        y = label_matrix(clf.predict_scores(seg["text"]), clf.thresholds)
    else:
        seg = read_segments(shards, columns=("source", "labels"))
        y = np.array([label_vector(labs) for labs in seg["labels"]], dtype=np.int8).reshape(-1, len(LABEL_NAMES))
    return table4_rates(seg["source"], y)
