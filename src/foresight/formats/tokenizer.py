"""Byte-level BPE tokenizers with HF ``tokenizers``: trained locally, loaded from a path, hashed."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from foresight.formats.errors import InputError
from foresight.formats.hashing import sha256_file

EOS = "<|endoftext|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = [EOS, PAD]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 16384, min_frequency: int = 2) -> Tokenizer:
    """Train a byte-level BPE; deterministic for the same texts in the same order."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


@dataclass(frozen=True)
class TokenizerInfo:
    path: str
    sha256: str
    vocab_size: int
    eos_id: int
    pad_id: int | None

    def as_dict(self) -> dict:
        return {"name": Path(self.path).name, "sha256": self.sha256, "vocab_size": self.vocab_size,
                "eos_id": self.eos_id, "pad_id": self.pad_id}


def load_tokenizer(path: str | Path) -> tuple[Tokenizer, TokenizerInfo]:
    """Load ``tokenizer.json`` from a path (never a hub) with its sha256 and EOS id."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"tokenizer {path} not found; train one with `foresight tokenizer train INPUT... --out {path}`"
        )
    tok = Tokenizer.from_file(str(path))
    eos = tok.token_to_id(EOS)
    if eos is None:
        raise InputError(f"tokenizer {path} has no {EOS!r} token; train it with `foresight tokenizer train`")
    info = TokenizerInfo(str(path), sha256_file(path), tok.get_vocab_size(), eos, tok.token_to_id(PAD))
    return tok, info


def find_tokenizer(shards_root: Path, explicit: Path | None, expected_sha256: str) -> Path:
    """The tokenizer.json the shards were made with; its sha256 must match ``expected_sha256`` (else refused).

    Without ``explicit``: ``SHARDS/tokenizer.json``, then the file named in the shard index next to the shard
    directory (``demo/tokenizer.json`` for ``demo/shards``).
    """
    if explicit is not None:
        candidates = [Path(explicit)]
    else:
        from foresight.formats.index import INDEX_FILE, ShardIndex

        name = "tokenizer.json"
        if (shards_root / INDEX_FILE).is_file():  # read through the index's own checks, not as loose JSON
            name = ShardIndex.load(shards_root).tokenizer.get("name") or name
        candidates = [shards_root / "tokenizer.json", shards_root.parent / Path(name).name]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        raise FileNotFoundError(f"tokenizer not found (looked at {', '.join(map(str, candidates))}); pass "
                                "--tokenizer PATH (the tokenizer.json the shards were tokenized with)")
    from foresight.formats.hashing import sha256_file

    got = sha256_file(path)
    if got != expected_sha256:
        raise InputError(f"tokenizer mismatch: {path} has sha256 {got[:16]}… but the manifest was built with "
                         f"{expected_sha256[:16]}…; pass the tokenizer the shards were made with")
    return path


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
