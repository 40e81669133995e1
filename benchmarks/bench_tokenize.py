"""Tokenize stage throughput: ours (``pipeline.stages.tokenize.Tokenize``) vs bare ``Tokenizer.encode_batch``
and vs datatrove's ``DocumentTokenizer``, on the same documents in one run.

Documents are the CPython standard library's ``.py`` files (real text, always installed), cut into pieces of
at most ``--chars`` characters. The tokenizer is ``--tokenizer`` (default ``demo/tokenizer.json`` if present),
else a byte-level BPE trained here on the first documents.

- ours: the pipeline's Tokenize step over Documents (batch encoding, EOS appended, uint32 arrays);
- bare: ``Tokenizer.encode_batch`` over the same texts in batches of the same size, EOS appended to each list;
- datatrove: ``DocumentTokenizer`` (EOS via its post-processor, writing its token files to a temp dir,
  ``shuffle_documents=False``).

Prints ``tokenize_vs_encode_batch: ratio=…`` and ``tokenize_vs_datatrove: ratio=…`` with
``(ours …s / reference …s)``; ratio = reference time / our time, so > 1 means ours is faster.
Usage: python benchmarks/bench_tokenize.py [--docs 2000] [--chars 4000] [--repeat 3] [--tokenizer PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from datatrove.data import Document  # noqa: E402

from foresight.formats.tokenizer import EOS, load_tokenizer, train_tokenizer  # noqa: E402
from foresight.pipeline.stages.tokenize import Tokenize  # noqa: E402


def stdlib_docs(n: int, chars: int) -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    docs: list[str] = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        docs += [text[i:i + chars] for i in range(0, len(text), chars) if text[i:i + chars].strip()]
        if len(docs) >= n:
            break
    return docs[:n]


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--chars", type=int, default=4000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--tokenizer", type=Path, default=Path("demo/tokenizer.json"))
    args = ap.parse_args()

    texts = stdlib_docs(args.docs, args.chars)
    tmp = Path(tempfile.mkdtemp(prefix="bench_tokenize_"))
    tok_path = args.tokenizer
    if not tok_path.is_file():
        tok_path = tmp / "tokenizer.json"
        train_tokenizer(texts[:2000], vocab_size=8192).save(str(tok_path))
    tok, info = load_tokenizer(tok_path)
    docs = [Document(text=t, id=str(i), metadata={}) for i, t in enumerate(texts)]
    n_tokens = sum(len(e.ids) + 1 for e in tok.encode_batch(texts[:200]))  # warm-up + size estimate
    print(f"{len(texts)} docs, {sum(map(len, texts)) / 1e6:.1f} M chars, tokenizer {tok_path} "
          f"(vocab {info.vocab_size}); ~{n_tokens / 200:.0f} tokens/doc", file=sys.stderr)

    ours_step = Tokenize(str(tok_path), batch_size=args.batch_size)

    def ours() -> None:
        for _ in ours_step.run(iter(docs)):
            pass

    def bare() -> None:
        for i in range(0, len(texts), args.batch_size):
            for enc in tok.encode_batch(texts[i:i + args.batch_size], add_special_tokens=False):
                ids = enc.ids
                ids.append(info.eos_id)

    def datatrove() -> None:
        from datatrove.pipeline.tokens.tokenizer import DocumentTokenizer

        out = tempfile.mkdtemp(dir=tmp)
        step = DocumentTokenizer(out, tokenizer_name_or_path=str(tok_path), eos_token=EOS,
                                 batch_size=args.batch_size, shuffle_documents=False, save_final_metadata=False)
        step.run(iter(docs), rank=0, world_size=1)

    t_ours = best_of(args.repeat, ours)
    t_bare = best_of(args.repeat, bare)
    t_dt = best_of(args.repeat, datatrove)
    print(f"tokenize_vs_encode_batch: ratio={t_bare / t_ours:.2f} (ours {t_ours:.2f}s / reference {t_bare:.2f}s)")
    print(f"tokenize_vs_datatrove: ratio={t_dt / t_ours:.2f} (ours {t_ours:.2f}s / reference {t_dt:.2f}s)")


if __name__ == "__main__":
    main()
