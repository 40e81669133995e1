"""``foresight classify teach|train|distill|eval|rates``: the LSBS six-label classifiers."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from foresight.cli.commands.common import console, user_errors


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def _teach(root: Path, sample: int | None, seed: int, teacher: str, out: Path, llm_opts: dict,
           stratify: bool = False) -> None:
    from foresight.classifiers.labelsio import write_labels
    from foresight.formats.taxonomy import LABEL_NAMES
    from foresight.pipeline.labelling import teach

    t = teach(root, teacher, sample=sample, seed=seed, stratify=stratify, llm_opts=llm_opts)
    for line in t.report:
        console.print(line, highlight=False)
    seg, y = t.segments, t.y
    write_labels(out, seg["id"], seg["doc_id"], seg["source"], seg["text"], y, t.extra or None)
    rates = ", ".join(f"{n}={100 * y[:, j].mean():.1f}%" for j, n in enumerate(LABEL_NAMES)) if len(y) else "-"
    console.print(f"teach: {len(y)} segments labelled by {teacher} → {out} ({rates})")


def _print_eval(name: str, result: dict) -> None:
    table = Table(title=f"{name} vs gold (n={result['n']})")
    for col in ("label", "precision", "recall", "F1", "support", "predicted"):
        table.add_column(col, justify="left" if col == "label" else "right")
    for label, m in result["per_label"].items():
        table.add_row(label, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]),
                      str(m["predicted"]))
    console.print(table)
    console.print(f"{name}: macro-F1={result['macro_f1']:.3f}")


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="LSBS six-label classifiers: teach, train, distill, evaluate, label rates.",
                        no_args_is_help=True)
    app.add_typer(group, name="classify")

    @group.command("teach")
    @user_errors
    def teach(
        shards: Path = typer.Argument(..., help="Shard directory (with index.json)."),
        out: Path = typer.Option(Path("labels.parquet"), "--out", help="Labels Parquet to write."),
        sample: int = typer.Option(2000, "--sample", help="Segments to label (seeded sample; 0 = all)."),
        teacher: str = typer.Option("rules", "--teacher", help="rules | llm"),
        seed: int = typer.Option(0, "--seed"),
        stratify: bool = typer.Option(False, "--stratify", help="Spread the sample evenly over sources."),
        endpoint: str = typer.Option("", "--endpoint", help="LLM: OpenAI-compatible base URL, e.g. "
                                     "http://localhost:8000/v1"),
        model: str = typer.Option("", "--model", help="LLM: model name served by the endpoint."),
        api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env", help="LLM: env var holding the key."),
        cache_dir: Path = typer.Option(Path(".cache/llm-teacher"), "--cache-dir", help="LLM: answer cache."),
        concurrency: int = typer.Option(8, "--concurrency", help="LLM: requests in flight at most."),
        timeout: float = typer.Option(60.0, "--timeout", help="LLM: seconds per request."),
        max_retries: int = typer.Option(4, "--max-retries", help="LLM: retries per segment."),
    ) -> None:
        """Label a sample of segments with the rules teacher or an LLM (for training the classifier).

        Example: foresight classify teach shards/sample --sample 2000 --teacher rules --out labels.parquet
        """
        _teach(shards, sample or None, seed, teacher, out,
               {"endpoint": endpoint, "model": model, "api_key_env": api_key_env, "cache_dir": cache_dir,
                "concurrency": concurrency, "timeout_s": timeout, "max_retries": max_retries}, stratify)

    @group.command("train")
    @user_errors
    def train(
        labels: Path = typer.Argument(..., help="Labels Parquet from `classify teach`."),
        out: Path = typer.Option(Path("classifier"), "--out", help="Model directory to write."),
        backbone: str = typer.Option("minilm", "--backbone", help="'minilm' (packaged) or a local HF encoder."),
        epochs: int = typer.Option(3, "--epochs"),
        batch_size: int = typer.Option(16, "--batch-size"),
        lr: float = typer.Option(5e-5, "--lr"),
        max_length: int = typer.Option(256, "--max-length", help="Tokens per segment (longer ones truncated)."),
        val_fraction: float = typer.Option(0.15, "--val-fraction", help="Held out to tune thresholds."),
        max_steps: int = typer.Option(0, "--max-steps", help="Stop after this many steps (0 = no limit)."),
        seed: int = typer.Option(0, "--seed"),
        device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
        threads: int = typer.Option(0, "--threads", help="CPU threads for torch (0 = torch default)."),
    ) -> None:
        """Fine-tune the transformer classifier (sigmoid head, BCE) and tune per-label thresholds.

        Example: foresight classify train labels.parquet --backbone minilm --out models/lsbs-minilm
        """
        import torch

        from foresight.classifiers.labelsio import read_labels
        from foresight.classifiers.train import FineTuneConfig, train_transformer

        if threads:
            torch.set_num_threads(threads)
        _, texts, y = read_labels(labels)
        cfg = FineTuneConfig(backbone=backbone, epochs=epochs, batch_size=batch_size, lr=lr, max_length=max_length,
                          val_fraction=val_fraction, seed=seed, device=device, max_steps=max_steps or None)

        def progress(epoch: int, step: int, loss: float) -> None:
            if step % 10 == 0:
                console.print(f"epoch {epoch} step {step} loss {loss:.4f}")

        _, report = train_transformer(texts, y, out, cfg, progress)
        console.print(f"train: {report['train_segments']} train / {report['val_segments']} val segments, "
                      f"{report['steps']} steps, final loss {report['final_loss']:.4f} → {out}")
        console.print("thresholds: " + ", ".join(f"{k}={v:.2f}" for k, v in report["thresholds"].items()))

    @group.command("distill")
    @user_errors
    def distill(
        model: str = typer.Argument(..., help="Teacher: a transformer directory (or 'rules')."),
        shards: Path = typer.Argument(..., help="Shard directory to sample segments from."),
        out: Path = typer.Option(Path("fasttext.bin"), "--out", help="fastText model to write (.ftz: quantised)."),
        sample: int = typer.Option(20000, "--sample", help="Pieces (or segments) to label and train on (0 = all)."),
        piece_chars: int = typer.Option(1200, "--piece-chars", help="Cut segments into pieces of at most this "
                                        "many characters, the text the teacher reads (0 = whole segments)."),
        labelled: list[Path] = typer.Option([], "--labelled", help="Hand-labelled Parquet whose own labels are "
                                            "added to the training data (repeatable)."),
        labelled_repeat: int = typer.Option(3, "--labelled-repeat", help="Times each hand-labelled row is repeated."),
        stratify: bool = typer.Option(False, "--stratify", help="Spread the sample evenly over sources."),
        seed: int = typer.Option(0, "--seed"),
        batch_size: int = typer.Option(64, "--batch-size"),
        device: str = typer.Option("auto", "--device"),
        epoch: int = typer.Option(25, "--epoch", help="fastText epochs."),
        word_ngrams: int = typer.Option(2, "--word-ngrams", help="fastText wordNgrams (≥ 2)."),
        dim: int = typer.Option(64, "--dim", help="fastText vector size."),
        threads: int = typer.Option(1, "--threads", help="fastText training threads."),
    ) -> None:
        """Label a sample with MODEL and distil it into a one-vs-all fastText model for CPU-scale runs.

        Example: foresight classify distill models/lsbs-minilm shards/sample --sample 50000 --stratify \\
            --labelled classifiers/data/labelled.parquet --out models/lsbs-fasttext.ftz
        """
        import numpy as np

        from foresight.classifiers.base import label_matrix, load_classifier
        from foresight.classifiers.fasttext_model import distill as ft_distill
        from foresight.classifiers.labelsio import read_labels
        from foresight.pipeline.labelling import distill_texts

        texts = distill_texts(shards, sample, piece_chars, seed, stratify)
        teacher = load_classifier(model, batch_size=batch_size, device=device)
        console.print(f"distill: labelling {len(texts)} {'pieces' if piece_chars else 'segments'} with {model}")
        y = label_matrix(teacher.predict_scores(texts), teacher.thresholds)
        n_teacher = len(texts)
        for path in labelled:
            _, h_texts, h_y = read_labels(path)
            texts += h_texts * labelled_repeat
            y = np.concatenate([y] + [h_y] * labelled_repeat)
        _, report = ft_distill(texts, y, out, seed=seed, epoch=epoch, word_ngrams=word_ngrams, dim=dim,
                               threads=threads, extra_meta={"teacher": teacher.info(), "teacher_labelled": n_teacher,
                                                            "hand_labelled": [str(p) for p in labelled]})
        kappa = report.get("val_kappa_vs_teacher", {}).get("mean")
        console.print(f"distill: {report['train_segments']} train / {report['val_segments']} val rows → {out}"
                      + (f" (mean κ vs teacher on val: {kappa:.3f})" if kappa is not None else ""))

    @group.command("eval")
    @user_errors
    def evaluate(
        model: str = typer.Argument(..., help="'rules', a transformer directory or a fastText .bin."),
        gold: Path = typer.Option(Path("tests/data/gold.parquet"), "--gold", help="Hand-labelled gold set."),
        against: str = typer.Option("", "--against", help="A second classifier: also report per-label κ."),
        device: str = typer.Option("auto", "--device"),
        as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    ) -> None:
        """Per-label precision/recall/F1 and macro-F1 on the gold set; per-label Cohen's κ with --against.

        Example: foresight classify eval models/lsbs-minilm --gold tests/data/gold.parquet --against rules
        """
        from foresight.classifiers.base import label_matrix, load_classifier
        from foresight.classifiers.evaluate import agreement
        from foresight.classifiers.evaluate import evaluate as run_eval
        from foresight.classifiers.labelsio import read_labels

        _, texts, y = read_labels(gold)
        results: dict = {}
        preds = {}
        for name in [model] + ([against] if against else []):
            clf = load_classifier(name, device=device)
            preds[name] = label_matrix(clf.predict_scores(texts), clf.thresholds)
            results[name] = run_eval(preds[name], y)
        if against:
            results["kappa"] = {"a": model, "b": against, "per_label": agreement(preds[model], preds[against]),
                                "a_vs_gold": agreement(preds[model], y), "b_vs_gold": agreement(preds[against], y)}
        if as_json:
            console.print_json(json.dumps(results))
            return
        for name in preds:
            _print_eval(name, results[name])
        if against:
            k = results["kappa"]
            console.print(f"Cohen's κ {model} vs {against}: " + ", ".join(
                f"{n}={v:.3f}" for n, v in k["per_label"].items()))

    @group.command("rates")
    @user_errors
    def rates(
        shards: Path = typer.Argument(..., help="Shard directory (with index.json)."),
        model: str = typer.Option("", "--model", help="Score now with this classifier instead of the stored "
                                  "labels ('rules', a directory or a .bin)."),
        device: str = typer.Option("auto", "--device"),
    ) -> None:
        """Per source: % of segments with each label, and reasoning/visual, beside LSBS Table 4 where comparable.

        Each cell is "ours/LSBS" (LSBS over 1024-token segments labelled by Qwen3-32B); the last line is the mean
        absolute gap over the comparable sources for the combined reasoning and visual columns.

        Example: foresight classify rates shards/sample
        """
        from rich import box

        from foresight.classifiers.evaluate import TABLE4_COLUMNS, table4_gap
        from foresight.pipeline.labelling import label_rates

        rows = label_rates(shards, model, device)
        short = {"code_reasoning": "code", "math_reasoning": "math", "science_reasoning": "sci", "reasoning": "REAS",
                 "visual_concept": "conc", "visual_attribute": "attr", "visual_relationship": "rel", "visual": "VIS"}
        table = Table(title=f"% of segments per label: ours, and LSBS Table 4 below ({shards})", box=box.SIMPLE_HEAD,
                      show_edge=False, pad_edge=False)
        for col in ("source", "segs", *(short[c] for c in TABLE4_COLUMNS)):
            table.add_column(col, justify="left" if col == "source" else "right", no_wrap=True)
        for r in rows:
            table.add_row(r["source"], str(r["segments"]), *(f"{r['pct'][c]:.1f}" for c in TABLE4_COLUMNS))
            if r["lsbs"]:
                table.add_row("  LSBS", "", *(_fmt(r["lsbs"][c]) for c in TABLE4_COLUMNS), style="dim")
        console.print(table)
        gap, gap8 = table4_gap(rows), table4_gap(rows, TABLE4_COLUMNS)
        if gap is not None:
            console.print(f"mean |gap| to LSBS Table 4: {gap:.1f} points (reasoning, visual); "
                          f"{gap8:.1f} points over all eight columns")
