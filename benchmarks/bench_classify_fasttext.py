"""Our fastText classify stage vs datatrove's FastTextClassifierFilter vs bare ``model.predict`` (per text, on a list).

Same model, same documents, one run. The model is distilled here from rules-teacher labels on real text
(the docstrings of the Python standard library, or --shards DIR), so nothing is downloaded.
Prints ``name: ratio=… (ours … / reference …)`` by CPU seconds (``_cpu``) and by wall time; ratio > 1 means
ours is faster.

Example: python benchmarks/bench_classify_fasttext.py --docs 20000
"""

from __future__ import annotations

import argparse
import ast
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from datatrove.data import Document  # noqa: E402
from datatrove.pipeline.filters import FastTextClassifierFilter  # noqa: E402

from foresight.classifiers.base import label_matrix  # noqa: E402
from foresight.classifiers.fasttext_model import train_fasttext  # noqa: E402
from foresight.classifiers.teacher.rules import RulesTeacher  # noqa: E402
from foresight.pipeline.stages.classify import build_classify_step, read_segments  # noqa: E402


def stdlib_texts(n: int) -> list[str]:
    """Module, class and function docstrings (≥ 200 chars) of the standard library: real English + code."""
    out: list[str] = []
    for path in sorted(Path(ast.__file__).parent.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= 200:
                    out.append(doc)
                    if len(out) >= n:
                        return out
    return out


def timed(fn) -> tuple[float, float]:
    """Wall and CPU seconds of ``fn()`` (every path is single-threaded, so CPU seconds measure its work)."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=20000, help="documents to classify (cycled if fewer exist)")
    ap.add_argument("--shards", type=Path, help="take texts from this shard directory instead of the stdlib")
    ap.add_argument("--batch-size", type=int, default=64, help="[classify] batch_size, as `foresight curate` runs it")
    ap.add_argument("--repeats", type=int, default=9, help="best of N interleaved timings per path")
    args = ap.parse_args()

    base = read_segments(args.shards)["text"] if args.shards else stdlib_texts(args.docs)
    if not base:
        raise SystemExit("no texts found")
    texts = [base[i % len(base)] for i in range(args.docs)]
    teacher = RulesTeacher()
    y = label_matrix(teacher.predict_scores(base), teacher.thresholds)
    for j in range(y.shape[1]):  # the distillation refuses labels that never occur; seed one example each
        if not y[:, j].any():
            y[j % len(y), j] = 1
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "bench.bin"
        train_fasttext(base, y, model, epoch=5, threads=1)

        ours = build_classify_step(str(model), batch_size=args.batch_size)
        # remove_labels with an unreachable score keeps every document; without keep/remove labels datatrove
        # 0.10.1 fails on `[] + None` when it loads the model.
        ref = FastTextClassifierFilter(str(model), remove_labels=[("code_reasoning", 2.0)],
                                       save_labels_in_metadata=True, newline_replacement=" ")
        _ = ref.model  # load every model outside the timing
        bare = ours.classifier.model

        # Each stage run gets fresh documents, made outside the timing (building them is the reader's cost): a
        # pipeline hands a stage each document once, with metadata that no other classifier has filled.
        def fresh_docs() -> list[Document]:
            return [Document(text=t, id=str(i)) for i, t in enumerate(texts)]

        def run_ours(docs: list[Document]) -> None:
            for _ in ours.run(iter(docs)):
                pass

        def run_datatrove(docs: list[Document]) -> None:
            for _ in ref.run(iter(docs)):
                pass

        def run_bare(lines: list[str]) -> None:
            for t in lines:
                bare.predict(t.replace("\n", " "), k=-1)

        def run_bare_list(lines: list[str]) -> None:
            bare.predict([t.replace("\n", " ") for t in lines], k=-1)

        paths = {"ours": (fresh_docs, run_ours), "datatrove": (fresh_docs, run_datatrove),
                 "bare": (lambda: texts, run_bare), "bare_list": (lambda: texts, run_bare_list)}
        best = {clock: dict.fromkeys(paths, float("inf")) for clock in ("wall", "cpu")}
        for _ in range(args.repeats):  # interleaved, so load from other processes hits every path alike
            for name, (setup, fn) in paths.items():
                arg = setup()
                wall, cpu = timed(lambda: fn(arg))  # noqa: B023 (called at once)
                best["wall"][name], best["cpu"][name] = min(best["wall"][name], wall), min(best["cpu"][name], cpu)
    print(f"docs={args.docs} unique_texts={len(base)} batch_size={args.batch_size} group_size={ours.group_size}")
    # On a shared CPU, wall time follows when the scheduler runs us; CPU seconds are the steadier figure.
    for clock, suffix, unit in (("cpu", "_cpu", "docs/cpu-s"), ("wall", "", "docs/s")):
        report(best[clock], args.docs, suffix, unit)


def report(best: dict[str, float], docs: int, suffix: str, unit: str) -> None:
    rate = {k: docs / v for k, v in best.items()}
    print(f"classify_fasttext_vs_datatrove{suffix}: ratio={rate['ours'] / rate['datatrove']:.2f} "
          f"(ours {rate['ours']:.0f} {unit} / reference {rate['datatrove']:.0f} {unit})")
    bare = max(("bare", "bare_list"), key=rate.__getitem__)  # the faster of model.predict per text / on the list
    print(f"classify_fasttext_vs_bare_predict{suffix}: ratio={rate['ours'] / rate[bare]:.2f} "
          f"(ours {rate['ours']:.0f} {unit} / reference {rate[bare]:.0f} {unit})  [reference: "
          f"model.predict {'on the whole list' if bare == 'bare_list' else 'per text'}; per text "
          f"{rate['bare']:.0f}, on the list {rate['bare_list']:.0f} {unit}]")


if __name__ == "__main__":
    main()
