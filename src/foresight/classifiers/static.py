"""The static-embedding classifier, the CPU default: token vectors distilled from a sentence encoder
(model2vec's recipe), mean-pooled per segment, then one logistic head per label.

Why: an n-gram model (fastText) learns the surface cues of the origins it was trained on and falls to the level of
keyword rules on text from other sources; sentence-encoder vectors transfer (docs/classifiers.md measures both by
grouped, leave-source-out cross-validation).

A saved model is a directory in model2vec's layout, so ``model2vec.StaticModel.from_pretrained(DIR)`` loads the
embedder too: ``model.safetensors`` (``embeddings``: vocab × dim, float16), ``tokenizer.json``, ``config.json``;
plus ``heads.safetensors`` (``weight``: labels × dim, ``bias``) and ``foresight_classifier.json`` (labels,
thresholds and how they were chosen).
"""

from __future__ import annotations

import json
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from foresight.classifiers.base import check_model_dir as check_dir
from foresight.formats.hashing import sha256_path
from foresight.formats.taxonomy import LABEL_NAMES

FORMAT = "foresight-static/1"
META_FILE = "foresight_classifier.json"
VECTORS_FILE = "model.safetensors"
HEADS_FILE = "heads.safetensors"
REQUIRED_FILES = (VECTORS_FILE, "tokenizer.json", "config.json", HEADS_FILE, META_FILE)
MAX_TOKENS = 2048  # a 1,024-token pipeline segment is ≈ 1,300 WordPiece tokens; longer text is cut here


def _sif_weights(n: int, coefficient: float) -> np.ndarray:
    """model2vec's Zipf/SIF weighting: a token's weight falls with its assumed frequency (rank = vocabulary id)."""
    inv_rank = 1.0 / np.arange(2, n + 2)
    proba = inv_rank / inv_rank.sum()
    return coefficient / (coefficient + proba)


def _pca(x: np.ndarray, dims: int) -> np.ndarray:
    """Principal components of the rows (sign fixed by each component's largest score, as model2vec does)."""
    xc = x - x.mean(0)
    vals, vecs = np.linalg.eigh((xc.T @ xc) / max(len(x) - 1, 1))
    comps = vecs[:, ::-1][:, :dims]
    scores = xc @ comps
    signs = np.sign(scores[np.argmax(np.abs(scores), 0), np.arange(scores.shape[1])])
    return scores * np.where(signs == 0, 1, signs)


def distill_vectors(backbone: Path, pca_dims: int = 256, sif: float = 1e-4, batch_size: int = 512,
                    progress: Any = None) -> tuple[np.ndarray, str]:
    """Token vectors of a HF encoder: each vocabulary token is passed alone (``[CLS] tok [SEP]``), its output
    mean-pooled, then PCA to ``pca_dims`` and SIF-weighted (model2vec's ``distill``). Special and ``[unused]``
    tokens get zero vectors. Returns ``(vectors float32 [vocab, dims], tokenizer JSON)``."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    encoder = AutoModel.from_pretrained(str(backbone), local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(str(backbone), local_files_only=True)
    vocab = tok.get_vocab()
    n = max(vocab.values()) + 1
    skip = {i for t, i in vocab.items() if t.startswith("[unused")} | set(tok.all_special_ids)
    ids = [i for i in range(n) if i not in skip]
    cls, sep = tok.cls_token_id, tok.sep_token_id
    out = np.zeros((n, encoder.config.hidden_size), np.float32)
    with torch.inference_mode():
        for b in range(0, len(ids), batch_size):
            chunk = torch.tensor(ids[b: b + batch_size])
            inp = torch.stack([torch.full_like(chunk, cls), chunk, torch.full_like(chunk, sep)], 1)
            hidden = encoder(input_ids=inp, attention_mask=torch.ones_like(inp)).last_hidden_state
            out[ids[b: b + batch_size]] = hidden.mean(1).numpy()
            if progress:
                progress(min(b + batch_size, len(ids)), len(ids))
    live = np.array(ids)
    vectors = np.zeros((n, min(pca_dims, out.shape[1])), np.float32)
    vectors[live] = _pca(out[live].astype(np.float64), pca_dims) * _sif_weights(n, sif)[live, None]
    return vectors, tok.backend_tokenizer.to_str()


class StaticEmbedder:
    """Mean of the token vectors of a text's WordPiece tokens (no special tokens), L2-normalised."""

    def __init__(self, vectors: np.ndarray, tokenizer_json: str, max_tokens: int = MAX_TOKENS,
                 source: str = "") -> None:
        from tokenizers import Tokenizer

        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.tokenizer_json = tokenizer_json
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_tokens)
        self.max_tokens = max_tokens
        self.source = source  # where the vectors came from (config.json's tokenizer_name), for provenance

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def encode(self, texts: list[str]) -> np.ndarray:
        """``[len(texts), dim]`` float32; a text without tokens embeds as zeros.

        Token ids become a sparse (texts × vocabulary) count matrix times the vectors: gathering one vector row per
        token (``vectors[ids]``) copied ≈ 1 KB per token and ran 70x slower."""
        from scipy.sparse import csr_matrix

        if not texts:
            return np.zeros((0, self.dim), np.float32)
        ids = [e.ids for e in self.tokenizer.encode_batch_fast(texts, add_special_tokens=False)]
        lengths = np.fromiter(map(len, ids), np.int64, count=len(ids))
        flat = np.fromiter(chain.from_iterable(ids), np.int64, count=int(lengths.sum()))
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        counts = csr_matrix((np.ones(len(flat), np.float32), flat, indptr), shape=(len(ids), len(self.vectors)))
        sums = np.asarray(counts @ self.vectors, dtype=np.float32)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        return sums / np.maximum(norms, 1e-12)

    def save(self, path: Path, source: str) -> None:
        from safetensors.numpy import save_file

        path.mkdir(parents=True, exist_ok=True)
        save_file({"embeddings": self.vectors.astype(np.float16)}, str(path / VECTORS_FILE))
        (path / "tokenizer.json").write_text(self.tokenizer_json, encoding="utf-8")
        config = {"model_type": "model2vec", "architectures": ["StaticModel"], "tokenizer_name": source,
                  "hidden_dim": self.dim, "seq_length": self.max_tokens, "normalize": True, "pooling": "mean"}
        (path / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> StaticEmbedder:
        from safetensors.numpy import load_file

        vectors = load_file(str(path / VECTORS_FILE))["embeddings"]
        config = json.loads((path / "config.json").read_text())
        return cls(vectors, (path / "tokenizer.json").read_text(encoding="utf-8"),
                   int(config.get("seq_length", MAX_TOKENS)), str(config.get("tokenizer_name", "")))


class LogisticHeads:
    """One L2-regularised logistic regression per label over the embedding, with balanced class weights (each
    label's positives and negatives weigh half the loss each), fitted jointly by L-BFGS."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.weight = np.ascontiguousarray(weight, np.float32)  # [labels, dim]; safetensors writes raw buffers
        self.bias = np.ascontiguousarray(bias, np.float32)

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, c: float = 1.0, max_iter: int = 500) -> LogisticHeads:
        """sklearn's objective (``C·Σ wᵢ·lossᵢ + ½‖w‖²`` per label) divided by ``C·n``, all labels at once, by
        scipy's L-BFGS-B on a loss and gradient written in numpy (torch autograd spent 20 s on 12 k rows, most of
        it per-op overhead)."""
        from scipy.optimize import minimize

        x = np.ascontiguousarray(x, np.float32)  # the two products per step are most of the time: float32 halves it
        y = np.asarray(y, np.float32)
        n, d = x.shape
        k = y.shape[1]
        pos = np.maximum(y.sum(0), 1.0)
        neg = np.maximum(n - y.sum(0), 1.0)
        sw = ((y * (n / (2 * pos)) + (1 - y) * (n / (2 * neg))) / (n * k)).astype(np.float32)
        reg = 1.0 / (c * n * k)

        def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w, b = theta[: d * k].reshape(d, k), theta[d * k:]
            z = x @ w.astype(np.float32) + b.astype(np.float32)
            loss = np.logaddexp(0.0, z) - y * z  # BCE with logits, stable
            gz = sw * (1.0 / (1.0 + np.exp(-z)) - y)
            gw = (x.T @ gz).astype(np.float64) + reg * w
            return (float((sw * loss).sum(dtype=np.float64)) + 0.5 * reg * float((w * w).sum()),
                    np.concatenate([gw.ravel(), gz.sum(0, dtype=np.float64)]))

        res = minimize(loss_grad, np.zeros(d * k + k), jac=True, method="L-BFGS-B",
                       options={"maxiter": max_iter, "gtol": 1e-6})
        return cls(res.x[: d * k].reshape(d, k).T, res.x[d * k:])

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = x @ self.weight.T + self.bias
        return (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)


def check_model_dir(path: Path) -> dict[str, Any]:
    return check_dir(path, REQUIRED_FILES, META_FILE, FORMAT, "static classifier",
                     "`foresight classify train --kind static`")


def is_static_dir(path: Path) -> bool:
    meta = path / META_FILE
    return path.is_dir() and meta.is_file() and json.loads(meta.read_text()).get("format") == FORMAT


class Features:
    """What the heads read: the embedding, and optionally the standardised layout features
    (``classifiers.layout``) scaled by ``scale``, appended. The mean and spread come from the training texts."""

    def __init__(self, embedder: StaticEmbedder, layout: tuple[np.ndarray, np.ndarray, float] | None = None) -> None:
        self.embedder, self.layout = embedder, layout

    @classmethod
    def fit(cls, embedder: StaticEmbedder, texts: list[str], layout_scale: float = 0.0) -> Features:
        if not layout_scale:
            return cls(embedder)
        from foresight.classifiers.layout import layout_matrix

        f = layout_matrix(texts)
        return cls(embedder, (f.mean(0), f.std(0) + 1e-6, float(layout_scale)))

    def __call__(self, texts: list[str]) -> np.ndarray:
        x = self.embedder.encode(texts)
        if self.layout is None:
            return x
        from foresight.classifiers.layout import layout_matrix

        mean, std, scale = self.layout
        return np.hstack([x, (layout_matrix(texts) - mean) / std * scale]).astype(np.float32)


class StaticClassifier:
    kind = "static"

    def __init__(self, features: Features, heads: LogisticHeads, thresholds: dict[str, float],
                 path: Path | None = None, batch_size: int = 1024) -> None:
        self.features, self.heads = features, heads
        self.thresholds = dict(thresholds)
        self.path = path
        self.batch_size = batch_size
        self.stats: dict[str, int] = {"empty": 0, "truncated": 0}

    @property
    def embedder(self) -> StaticEmbedder:
        return self.features.embedder

    @classmethod
    def load(cls, path: str | Path) -> StaticClassifier:
        from safetensors.numpy import load_file

        path = Path(path)
        meta = check_model_dir(path)
        h = load_file(str(path / HEADS_FILE))
        layout = (h["layout_mean"], h["layout_std"], float(meta["layout_scale"])) if "layout_mean" in h else None
        features = Features(StaticEmbedder.load(path), layout)
        return cls(features, LogisticHeads(h["weight"], h["bias"]), meta["thresholds"], path)

    def save(self, path: str | Path, source: str, extra_meta: dict[str, Any]) -> Path:
        from safetensors.numpy import save_file

        path = Path(path)
        self.embedder.save(path, source)
        tensors = {"weight": self.heads.weight, "bias": self.heads.bias}
        meta = {"format": FORMAT, "labels": list(LABEL_NAMES), "thresholds": self.thresholds, **extra_meta}
        if self.features.layout is not None:
            mean, std, scale = self.features.layout
            tensors.update(layout_mean=np.ascontiguousarray(mean, np.float32),
                           layout_std=np.ascontiguousarray(std, np.float32))
            meta["layout_scale"] = scale
        save_file(tensors, str(path / HEADS_FILE))
        (path / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        self.path = path
        return path

    def info(self) -> dict[str, str | None]:
        return {"kind": self.kind, "id": self.path.name if self.path else "unsaved",
                "sha256": sha256_path(self.path) if self.path else None}

    def predict_scores(self, texts: list[str]) -> np.ndarray:
        scores = np.zeros((len(texts), len(LABEL_NAMES)), np.float32)
        live = [i for i, t in enumerate(texts) if t and not t.isspace()]
        self.stats["empty"] += len(texts) - len(live)  # blank text scores 0 → labelled none
        for b in range(0, len(live), self.batch_size):
            rows = live[b: b + self.batch_size]
            scores[rows] = self.heads.predict(self.features([texts[i] for i in rows]))
        return scores
