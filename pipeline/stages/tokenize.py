"""Tokenize stage: HF ``tokenizers`` batch encoding of each segment, EOS appended, exact ``n_tokens``."""

from __future__ import annotations

import re

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.utils.batching import batched

from pipeline.stages.base import CountingStep


def special_literals(tok) -> tuple[str, ...]:
    """The tokenizer's special tokens as strings (``<|endoftext|>``, ``<|pad|>``)."""
    return tuple(sorted(t.content for t in tok.get_added_tokens_decoder().values() if t.special))


def plain_pieces(text: str, specials: tuple[str, ...]) -> list[str]:
    """``text`` cut so that no piece contains a whole special-token literal (each literal is split in two)."""
    if not specials or not any(s in text for s in specials):
        return [text]
    pattern = "(" + "|".join(re.escape(s) for s in specials) + ")"
    pieces: list[str] = []
    for part in re.split(pattern, text):
        pieces += [part[:-1], part[-1:]] if part in specials else [part]
    return [p for p in pieces if p]


def encode_plain(tok, texts: list[str], specials: tuple[str, ...]) -> list[list[int]]:
    """Token ids of each text, with special-token *literals* in the text encoded as ordinary text.

    HF tokenizers match added special tokens anywhere in the input, so a document that mentions
    ``<|endoftext|>`` would otherwise get an EOS in the middle of its segment. Such literals are
    encoded in two plain pieces instead (decoding still gives back the exact text).
    """
    ids = [e.ids for e in tok.encode_batch_fast(texts, add_special_tokens=False)]
    for i, text in enumerate(texts):
        if specials and any(s in text for s in specials):
            encs = tok.encode_batch_fast(plain_pieces(text, specials), add_special_tokens=False)
            ids[i] = [t for e in encs for t in e.ids]
    return ids


def plain_token_starts(tok, text: str, specials: tuple[str, ...]) -> list[int]:
    """Character offset where each token of ``encode_plain(tok, [text])`` starts."""
    starts, base = [], 0
    for piece in plain_pieces(text, specials):
        starts += [base + o[0] for o in tok.encode(piece, add_special_tokens=False).offsets]
        base += len(piece)
    return starts


class Tokenize(CountingStep):
    """Sets ``metadata["tokens"]`` (uint32 array, EOS last) and ``metadata["n_tokens"]`` on every segment."""

    name = "🔢 tokenize"
    type = "🔢 - TOKENIZER"

    def __init__(self, tokenizer_path: str, batch_size: int = 256) -> None:
        super().__init__()
        self.tokenizer_path = tokenizer_path
        self.batch_size = batch_size
        self._tok = None
        self._eos: int | None = None
        self._specials: tuple[str, ...] = ()

    def _load(self) -> None:
        from pipeline.tokenizer import load_tokenizer

        self._tok, info = load_tokenizer(self.tokenizer_path)
        self._eos = info.eos_id
        self._specials = special_literals(self._tok)

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        if self._tok is None:
            self._load()
        out = []
        for text_ids in encode_plain(self._tok, texts, self._specials):
            ids = np.empty(len(text_ids) + 1, dtype=np.uint32)
            ids[:-1] = text_ids
            ids[-1] = self._eos
            out.append(ids)
        return out

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for batch in batched(data, self.batch_size):
            with self.track_time("batch"):
                encoded = self.encode([d.text for d in batch])
            for doc, ids in zip(batch, encoded, strict=True):
                doc.metadata["tokens"] = ids
                doc.metadata["n_tokens"] = len(ids)
                yield doc
