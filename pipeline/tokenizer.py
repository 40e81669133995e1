"""Byte-level BPE tokenizers with HF ``tokenizers``: trained locally, loaded from a path, hashed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from pipeline.hashing import sha256_file

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
        raise ValueError(f"tokenizer {path} has no {EOS!r} token; train it with `foresight tokenizer train`")
    info = TokenizerInfo(str(path), sha256_file(path), tok.get_vocab_size(), eos, tok.token_to_id(PAD))
    return tok, info


JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst")
TEXT_SUFFIXES = (".txt", ".txt.gz")


def is_training_file(path: str | Path) -> bool:
    """Files a tokenizer trains on: JSONL records (``text`` field) or plain text; other files are skipped."""
    name = str(path).lower()
    return name.endswith(JSONL_SUFFIXES) or name.endswith(TEXT_SUFFIXES)


def iter_texts_from_files(paths: Iterable[str | Path], text_key: str = "text",
                          skipped: dict[str, int] | None = None) -> Iterator[str]:
    """Texts of JSONL(.gz/.zst) or plain-text files, in sorted path order (so training is deterministic).

    Lines that are not JSON objects with a string ``text_key`` are counted in ``skipped[path]``.
    """
    import json

    from fsspec import open as fsopen

    for p in sorted(str(x) for x in paths):
        with fsopen(p, "rt", encoding="utf-8", errors="replace", compression="infer") as f:
            if not p.lower().endswith(JSONL_SUFFIXES):
                yield f.read()
                continue
            for line in f:
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    obj = None
                if isinstance(obj, dict) and isinstance(obj.get(text_key), str):
                    yield obj[text_key]
                elif skipped is not None:
                    skipped[p] = skipped.get(p, 0) + 1


def find_tokenizer(shards_root: Path, explicit: Path | None, expected_sha256: str) -> Path:
    """The tokenizer.json the shards were made with; its sha256 must match ``expected_sha256`` (else refused).

    Without ``explicit``: ``SHARDS/tokenizer.json``, then the file named in the shard index next to the shard
    directory (``demo/tokenizer.json`` for ``demo/shards``).
    """
    if explicit is not None:
        candidates = [Path(explicit)]
    else:
        import json
        name = "tokenizer.json"
        index = shards_root / "index.json"
        if index.is_file():
            name = (json.loads(index.read_text(encoding="utf-8")).get("tokenizer") or {}).get("name") or name
        candidates = [shards_root / "tokenizer.json", shards_root.parent / Path(name).name]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        raise FileNotFoundError(f"tokenizer not found (looked at {', '.join(map(str, candidates))}); pass "
                                "--tokenizer PATH (the tokenizer.json the shards were tokenized with)")
    from pipeline.hashing import sha256_file

    got = sha256_file(path)
    if got != expected_sha256:
        raise ValueError(f"tokenizer mismatch: {path} has sha256 {got[:16]}… but the manifest was built with "
                         f"{expected_sha256[:16]}…; pass the tokenizer the shards were made with")
    return path
