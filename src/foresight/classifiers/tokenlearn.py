"""Tokenlearn: static token vectors trained so that the mean of a text's vectors predicts what a sentence encoder
makes of the whole text (model2vec's "tokenlearn" step, written here).

Why: distilled vectors (``static.distill_vectors``) see each token alone (``[CLS] tok [SEP]``), so they carry
what a token means out of context. The encoder's embedding of a whole text carries how its tokens combine. Fitting
the table to those embeddings over a pool of unlabelled text puts some of that into vectors that still cost one
sparse product per text. No labels are used: the targets are the frozen encoder's mean-pooled outputs.

The learned table is appended to the base one (``extend``): one model2vec table of ``base + learned`` dimensions,
so nothing the base vectors knew is lost. Measured by grouped CV and on the out-of-source gold set in
docs/classifiers.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from foresight.classifiers.static import StaticEmbedder
from foresight.formats.errors import InputError

Progress = Callable[[int, int], None]
SHINGLE_WORDS = 8  # texts sharing a run of this many words are treated as the same text (overlap exclusion)


def sentence_embeddings(backbone: Path, texts: list[str], max_length: int = 256, batch_size: int = 32,
                        device: str = "auto", progress: Progress | None = None) -> np.ndarray:
    """The frozen encoder's attention-masked mean-pooled output per text (how sentence-transformers embed),
    L2-normalised: ``[len(texts), hidden]`` float32."""
    from foresight.classifiers.transformer import TransformerClassifier

    encoder = TransformerClassifier.encoder_only(backbone, max_length, batch_size, device)
    out = encoder.pooled(texts, progress)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def learn_vectors(base: StaticEmbedder, texts: list[str], targets: np.ndarray, epochs: int = 4, lr: float = 1e-3,
                  batch_size: int = 32, seed: int = 0, progress: Progress | None = None) -> np.ndarray:
    """A copy of ``base.vectors`` trained (sparse Adam) so that a linear map of each text's mean token vector has
    high cosine similarity with its target. Returns the trained table ``[vocab, base.dim]`` float32; tokens that
    never occur in ``texts`` keep their base vectors."""
    import torch
    from torch import nn

    if len(texts) != len(targets):
        raise ValueError(f"one target per text: {len(texts)} texts, {len(targets)} targets")
    torch.manual_seed(seed)
    ids = [torch.tensor(e.ids, dtype=torch.long)
           for e in base.tokenizer.encode_batch_fast(texts, add_special_tokens=False)]
    keep = [i for i, t in enumerate(ids) if len(t)]
    if not keep:
        raise InputError("tokenlearn: none of the texts has a token; give it a pool of real text")
    bag = nn.EmbeddingBag.from_pretrained(torch.tensor(base.vectors), freeze=False, mode="mean", sparse=True)
    proj = nn.Linear(base.dim, targets.shape[1])
    opts = [torch.optim.SparseAdam(list(bag.parameters()), lr=lr), torch.optim.Adam(proj.parameters(), lr=lr)]
    y = torch.tensor(np.asarray(targets, np.float32))
    rng = np.random.default_rng(seed)
    steps, step = epochs * -(-len(keep) // batch_size), 0
    for _ in range(epochs):
        order = rng.permutation(keep)
        for b in range(0, len(order), batch_size):
            rows = order[b: b + batch_size]
            seqs = [ids[i] for i in rows]
            offsets = torch.tensor([0] + [len(s) for s in seqs[:-1]]).cumsum(0)
            pred = proj(bag(torch.cat(seqs), offsets))
            loss = (1 - nn.functional.cosine_similarity(pred, y[rows])).mean()
            for o in opts:
                o.zero_grad()
            loss.backward()
            for o in opts:
                o.step()
            step += 1
            if progress and (step % 100 == 0 or step == steps):
                progress(step, steps)
    return bag.weight.detach().numpy().astype(np.float32)


def extend(base: StaticEmbedder, learned: np.ndarray) -> StaticEmbedder:
    """One embedder whose table is ``[base | learned]``: a text's vector is the normalised mean over both."""
    if learned.shape[0] != base.vectors.shape[0]:
        raise ValueError(f"learned table has {learned.shape[0]} rows; the base vocabulary {base.vectors.shape[0]}")
    return StaticEmbedder(np.hstack([base.vectors, learned]), base.tokenizer_json, base.max_tokens)


def _shingles(text: str, n: int = SHINGLE_WORDS) -> set[int]:
    words = re.findall(r"\w+", text.lower())
    return {hash(" ".join(words[i: i + n])) for i in range(max(1, len(words) - n + 1))}


def without_overlap(texts: Iterable[str], exclude: Iterable[str]) -> tuple[list[str], int]:
    """``texts`` minus any that share a run of ``SHINGLE_WORDS`` words with an ``exclude`` text (an evaluation set
    must not be in the pool, even label-free); returns ``(kept, dropped)``."""
    banned: set[int] = set()
    for t in exclude:
        banned |= _shingles(t)
    kept, dropped = [], 0
    for t in texts:
        if _shingles(t).isdisjoint(banned):
            kept.append(t)
        else:
            dropped += 1
    return kept, dropped
