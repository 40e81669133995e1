"""The classify stage: LSBS labels and scores on every segment, from the packaged static-embedding model (the
default), the rules teacher, a transformer directory or a distilled fastText ``.bin`` (docs/pipeline.md).
``classifiers`` stays free of datatrove; this file is the wrapper."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from foresight.classifiers.base import Classifier, check_model, load_classifier, resolve_model
from foresight.formats.errors import InputError
from foresight.formats.taxonomy import LABEL_NAMES, labels_in, score_column

# A segment's labels as a bit mask (bit j = LABEL_NAMES[j]); the label list and group flags of each of the 64
# masks are made once, so the per-document work is three lookups.
_BITS = np.array([1 << j for j in range(len(LABEL_NAMES))], dtype=np.int64)
_LABEL_SETS = [tuple(n for j, n in enumerate(LABEL_NAMES) if mask >> j & 1) for mask in range(1 << len(LABEL_NAMES))]
_REASONING_BITS = sum(1 << LABEL_NAMES.index(n) for n in labels_in("reasoning"))
_VISUAL_BITS = sum(1 << LABEL_NAMES.index(n) for n in labels_in("visual"))
_MASK_INFO = [(labels, bool(mask & _REASONING_BITS), bool(mask & _VISUAL_BITS))
              for mask, labels in enumerate(_LABEL_SETS)]
# Unpacked so each score is one dict store: after ``predict`` the per-document metadata writes are most of this
# stage's cost, and ``dict.update(zip(...))`` costs half again as much. Fails at import if the taxonomy changes size.
_C0, _C1, _C2, _C3, _C4, _C5 = (score_column(n) for n in LABEL_NAMES)
# Documents handed to the classifier per call. Larger than a model batch: the transformer sorts the whole group by
# length before cutting its batches (less padding), and the per-call costs (thresholds, stats, ≈ 20 µs) spread
# thin: with groups of 64 the fastText stage spent 2-4 µs per segment outside predict, with 1,024 1.2-1.5 µs.
GROUP_SIZE = 1024


class ClassifyStep(PipelineStep):
    """Sets ``labels``, ``score_<label>``, ``reasoning`` and ``visual`` in each segment's metadata.

    The stage hands the classifier ``group_size`` documents at a time (at least ``batch_size``); the transformer
    sorts them by length and runs batches of ``batch_size``, padded per batch. The model loads lazily in the
    worker, so the step pickles cheaply to datatrove executors.
    """

    name = "🏷 LSBS classify"
    type = "🔢 - CLASSIFY"

    def __init__(self, model: str | None = None, batch_size: int = 64, device: str = "auto",
                 group_size: int = GROUP_SIZE) -> None:
        super().__init__()
        if batch_size < 1 or group_size < 1:
            raise InputError(f"classify batch_size and group_size must be ≥ 1, got {batch_size}, {group_size}")
        self._kind = check_model(model)  # bad paths fail here, before any document is read
        self.model = str(resolve_model(model))  # None → the packaged learned model
        self.batch_size = batch_size
        self.group_size = max(group_size, batch_size)
        self.device = device
        self._clf: Classifier | None = None
        self._info: dict[str, str | None] | None = None

    @property
    def classifier(self) -> Classifier:
        if self._clf is None:
            self._clf = load_classifier(self.model, batch_size=self.batch_size, device=self.device)
        return self._clf

    def classifier_info(self) -> dict[str, str | None]:
        """``{"kind", "id", "sha256"}`` for index.json; hashes the model files without loading the model."""
        if self._info is None:
            if self._clf is not None:
                self._info = self._clf.info()
            elif self._kind == "rules":
                from foresight.classifiers.teacher.rules import RulesTeacher

                self._info = RulesTeacher().info()
            else:
                from foresight.formats.hashing import sha256_path

                path = Path(str(self.model))
                self._info = {"kind": self._kind, "id": path.name, "sha256": sha256_path(path)}
        return self._info

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_clf"] = None  # never ship a loaded model to a worker; each loads its own
        return state

    def _score(self, group: list[Document]) -> None:
        """Label and score ``group`` in place (the caller yields it: one generator level per document less)."""
        clf = self.classifier
        before = dict(clf.stats)
        with self.track_time(unit="group"):
            scores = clf.predict_scores([d.text for d in group])
        # Vectorised per group: thresholds, label masks and counts in numpy, then plain dict stores.
        hits = scores >= np.array([clf.thresholds[n] for n in LABEL_NAMES], dtype=np.float32)
        for doc, srow, mask in zip(group, scores.tolist(), (hits @ _BITS).tolist(), strict=True):
            m = doc.metadata
            m[_C0], m[_C1], m[_C2], m[_C3], m[_C4], m[_C5] = srow
            labels, m["reasoning"], m["visual"] = _MASK_INFO[mask]
            m["labels"] = list(labels)
        self.stat_update("classified", value=len(group))
        for name, n_hit in zip(LABEL_NAMES, hits.sum(axis=0).tolist(), strict=True):
            if n_hit:
                self.stat_update(f"label_{name}", value=n_hit)
        if n_none := int((~hits.any(1)).sum()):
            self.stat_update("label_none", value=n_none)
        for key in ("empty", "truncated"):
            if clf.stats.get(key, 0) > before.get(key, 0):
                self.stat_update(key, value=clf.stats[key] - before.get(key, 0))

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data is None:
            return
        data = iter(data)
        while group := list(islice(data, self.group_size)):  # grouping in C: no per-document append and test
            self._score(group)
            yield from group


def read_segments(root: str | Path, columns: tuple[str, ...] = ("id", "doc_id", "source", "text"),
                  sample: int | None = None, seed: int = 0, stratify: bool = False) -> dict[str, list[Any]]:
    """Columns of the segments of a shard directory (all, or a seeded sample of ``sample`` rows).

    ``stratify`` spreads the sample evenly over sources (small sources are taken whole, their unused
    quota goes to the rest), so a rare source still reaches the teacher."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from foresight.formats.index import ShardIndex

    index = ShardIndex.load(root).verified(root)  # labels and teacher prompts come from the files index.json describes
    wanted = list(columns) + (["source"] if stratify and "source" not in columns else [])
    tables = []
    for f in index.shard_files(root):
        schema = pq.read_schema(f)
        missing = [c for c in wanted if c not in schema.names]
        if missing:
            raise InputError(f"{f}: no columns {missing}; classify the shards first (`foresight curate` with "
                             "[classify] enabled) or pass --model to score them now")
        tables.append(pq.read_table(f, columns=wanted))
    if not tables:
        raise InputError(f"{root}: index.json lists no shard files")
    table = pa.concat_tables(tables)
    if sample is not None and sample < table.num_rows:
        rng = np.random.default_rng(seed)
        if stratify:
            rows = _stratified(np.asarray(table.column("source").to_pylist()), sample, rng)
        else:
            rows = rng.choice(table.num_rows, size=sample, replace=False)
        table = table.take(pa.array(np.sort(rows)))
    return {c: table.column(c).to_pylist() for c in columns}


def _stratified(sources: np.ndarray, sample: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices: an equal share per source, small sources whole, leftover quota to the larger ones."""
    groups = {s: np.flatnonzero(sources == s) for s in sorted(set(sources.tolist()))}
    chosen: list[np.ndarray] = []
    left = sample
    for i, (_, idx) in enumerate(sorted(groups.items(), key=lambda kv: len(kv[1]))):
        quota = left // (len(groups) - i)
        take = min(quota, len(idx))
        chosen.append(rng.choice(idx, size=take, replace=False))
        left -= take
    return np.concatenate(chosen)


def build_classify_step(model: str | None, batch_size: int = 64, device: str = "auto",
                        group_size: int = GROUP_SIZE) -> ClassifyStep:
    """The classify stage for ``foresight curate``: ``model`` None or "default" → the packaged static-embedding
    classifier, "fasttext" → the packaged fastText, "rules" → the rules teacher, a directory → a static or
    transformer classifier, a ``.bin``/``.ftz`` → fastText. Bad model paths raise here, before any document is
    read."""
    return ClassifyStep(model, batch_size=batch_size, device=device, group_size=group_size)


__all__ = ["ClassifyStep", "build_classify_step", "LABEL_NAMES"]
