"""Tokenize stage: HF ``tokenizers`` batch encoding of each segment, EOS appended, exact ``n_tokens``."""

from __future__ import annotations

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.batching import batched

from foresight.formats.tokenizer import encode_plain, special_literals


class Tokenize(PipelineStep):
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
        from foresight.formats.tokenizer import load_tokenizer

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
