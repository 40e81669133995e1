"""``foresight classify teach|train|distill|eval|rates``: the LSBS six-label classifiers."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from foresight.cli.commands import classify_learn
from foresight.cli.commands.classify_learn import read_pool
from foresight.cli.commands.classify_report import print_breakdown, print_scores
from foresight.cli.commands.common import console, user_errors
from foresight.formats.errors import InputError


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
    print_scores(f"{name} vs gold (n={result['n']})", result)
    console.print(f"{name}: macro-F1={result['macro_f1']:.3f}")


def _cv_model(model: str, texts: list[str], y, embedder_path: str, c: float):  # noqa: ANN001, ANN202
    """The fit/score function of one classifier kind for grouped CV."""
    from foresight.classifiers import fit

    if model == "static":
        from foresight.classifiers.base import resolve_model
        from foresight.classifiers.static import Features, StaticClassifier, StaticEmbedder, is_static_dir

        path = Path(str(resolve_model(embedder_path)))
        if is_static_dir(path):  # a trained static model: its features (vectors, layout) and its chosen C
            meta = json.loads((path / "foresight_classifier.json").read_text())
            features = StaticClassifier.load(path).features
            c = c or float(meta.get("selection", {}).get("c", 1.0))
        else:
            features, c = Features(StaticEmbedder.load(path)), c or 1.0
        return fit.static_fit_predict(features(texts), y, c)
    if model == "fasttext":
        return fit.fasttext_fit_predict(texts, y)
    if model == "rules":
        return fit.rules_fit_predict(texts)
    if model == "transformer":
        from foresight.classifiers.train import FineTuneConfig

        return fit.transformer_fit_predict(texts, y, FineTuneConfig(epochs=4, max_length=256))
    raise InputError(f"--model {model!r} is not one of {', '.join(fit.KINDS)}")


def _train_static(texts: list[str], y, groups: list[str], out: Path, backbone: str,  # noqa: ANN001
                  embedder_path: Path | None, folds: int, seed: int, layout_scale: float) -> None:
    from foresight.classifiers.fit import train_static
    from foresight.classifiers.static import StaticEmbedder, distill_vectors
    from foresight.classifiers.transformer import backbone_name, resolve_backbone

    if embedder_path is not None:
        emb = StaticEmbedder.load(embedder_path)
        source = emb.source or embedder_path.name
    else:
        console.print(f"train: distilling token vectors from {backbone}")
        emb, source = StaticEmbedder(*distill_vectors(resolve_backbone(backbone))), backbone_name(backbone)
    _, report = train_static(texts, y, groups, emb, out, source, folds, seed, layout_scale=layout_scale,
                             log=lambda m: console.print(f"train: {m}", highlight=False))
    console.print(f"train: {len(texts)} segments from {report['groups']} groups; grouped-CV macro-F1 "
                  f"{report['macro_f1']:.3f} → {out}")
    console.print("thresholds: " + ", ".join(f"{k}={v:.2f}" for k, v in report["thresholds"].items()))


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
        kind: str = typer.Option("transformer", "--kind", help="transformer (fine-tuned encoder, GPU when present) "
                                 "| static (token vectors + logistic heads: the CPU default)."),
        backbone: str = typer.Option("minilm", "--backbone", help="'minilm' (packaged) or a local HF encoder."),
        group_by: str = typer.Option("origin", "--group", help="static: the column grouped CV never splits."),
        folds: int = typer.Option(5, "--folds", help="static: grouped folds choosing C and thresholds."),
        embedder_path: Path = typer.Option(None, "--embedder", help="static: token vectors from `classify "
                                           "embedder` (default: distil them from --backbone now)."),
        layout_scale: float = typer.Option(0.0, "--layout-scale", help="static: append the standardised layout "
                                           "features (classifiers/layout.py) at this scale (0 = off)."),
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
        """Train a classifier on labelled segments and tune per-label thresholds.

        --kind transformer fine-tunes the encoder (sigmoid head, BCE; thresholds on a validation split).
        --kind static fits one logistic head per label on static token vectors; the regularisation and the
        thresholds are chosen by grouped CV over --group, so they hold on sources the model never saw.

        Example: foresight classify train labelled.parquet --kind static --embedder models/m2v --out models/static
        """
        import torch

        from foresight.classifiers.labelsio import group_column, read_labels
        from foresight.classifiers.train import FineTuneConfig, train_transformer

        if threads:
            torch.set_num_threads(threads)
        table, texts, y = read_labels(labels)
        if kind == "static":
            _train_static(texts, y, group_column(table, group_by, labels), out, backbone, embedder_path, folds, seed,
                          layout_scale)
            return
        if kind != "transformer":
            raise InputError(f"--kind {kind!r} is not 'transformer' or 'static'")
        cfg = FineTuneConfig(backbone=backbone, epochs=epochs, batch_size=batch_size, lr=lr, max_length=max_length,
                          val_fraction=val_fraction, seed=seed, device=device, max_steps=max_steps or None)

        def progress(epoch: int, step: int, loss: float) -> None:
            if step % 10 == 0:
                console.print(f"epoch {epoch} step {step} loss {loss:.4f}")

        _, report = train_transformer(texts, y, out, cfg, progress)
        console.print(f"train: {report['train_segments']} train / {report['val_segments']} val segments, "
                      f"{report['steps']} steps, final loss {report['final_loss']:.4f} → {out}")
        console.print("thresholds: " + ", ".join(f"{k}={v:.2f}" for k, v in report["thresholds"].items()))

    @group.command("pool")
    @user_errors
    def pool(
        inputs: list[Path] = typer.Argument(..., help="Package archives (.deb, .whl, .tar.gz/.tgz; npm tarballs under "
                                            "a directory named npm) and JSONL corpora (one source per file)."),
        out: Path = typer.Option(..., "--out", help="JSONL pool to write ({source, text} per line)."),
        per_source: int = typer.Option(5000, "--per-source", help="Pieces kept per source at most (seeded)."),
        max_chars: int = typer.Option(1200, "--max-chars", help="Piece length at most (paragraph breaks)."),
        seed: int = typer.Option(0, "--seed"),
    ) -> None:
        """Build an unlabelled pool of text pieces from many sources, for `classify distill POOL.jsonl`.

        Example: foresight classify pool debs/*.deb wheels/*.whl npm/*.tgz corpus/*/*.jsonl --out pool.jsonl
        """
        from foresight.classifiers.pool import build_pool

        corpora = [p for p in inputs if p.suffix in (".jsonl", ".ndjson")]
        archives = [p for p in inputs if p not in corpora]
        kept = build_pool(archives, corpora, out, per_source, max_chars, seed,
                          log=lambda s, n: console.print(f"pool: {s}: {n} pieces", highlight=False))
        console.print(f"pool: {sum(kept.values())} pieces from {len(kept)} sources → {out}")

    @group.command("distill")
    @user_errors
    def distill(
        model: str = typer.Argument(..., help="Teacher: a transformer directory (or 'rules')."),
        shards: Path = typer.Argument(..., help="Shard directory to sample segments from, or a JSONL file of "
                                      "text pieces ({\"text\": ...} per line: a pool drawn from many sources)."),
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

        texts = (read_pool(shards, sample, seed) if shards.is_file() else
                 distill_texts(shards, sample, piece_chars, seed, stratify))
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

    @group.command("embedder")
    @user_errors
    def embedder(
        out: Path = typer.Option(..., "--out", help="Directory to write (model2vec layout)."),
        backbone: str = typer.Option("minilm", "--backbone", help="'minilm' (packaged) or a local HF encoder."),
        pca_dims: int = typer.Option(256, "--pca-dims", help="Dimensions kept after PCA."),
        threads: int = typer.Option(0, "--threads", help="CPU threads for torch (0 = torch default)."),
    ) -> None:
        """Distil static token vectors from a sentence encoder (model2vec's recipe; no labels are used).

        Example: foresight classify embedder --out models/m2v-minilm
        """
        import torch

        from foresight.classifiers.static import StaticEmbedder, distill_vectors
        from foresight.classifiers.transformer import backbone_name, resolve_backbone

        if threads:
            torch.set_num_threads(threads)
        path = resolve_backbone(backbone)
        vectors, tok = distill_vectors(path, pca_dims)
        StaticEmbedder(vectors, tok).save(out, backbone_name(backbone))
        console.print(f"embedder: {vectors.shape[0]} token vectors × {vectors.shape[1]} dims from {path} → {out}")

    classify_learn.add_to(group)

    @group.command("cv")
    @user_errors
    def cv(
        labelled: Path = typer.Argument(..., help="Labelled Parquet (text, six 0/1 label columns, the group column)."),
        group_by: str = typer.Option("origin", "--group", help="Column whose values are never split between "
                                     "train and test (origin: the source a segment came from)."),
        model: str = typer.Option("static", "--model", help="static | fasttext | rules | transformer"),
        folds: int = typer.Option(5, "--folds", help="Number of grouped folds."),
        by: str = typer.Option("", "--by", help="Also break the scores down by this column (e.g. genre)."),
        embedder_path: str = typer.Option("default", "--embedder", help="static: token vectors to use — 'default' "
                                          "(the packaged model's), or a directory from `classify embedder`."),
        c: float = typer.Option(0.0, "--c", help="static: inverse L2 strength of the heads (0 = the packaged "
                                "model's choice)."),
        seed: int = typer.Option(0, "--seed"),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Grouped K-fold cross-validation: no group is ever in both train and test.

        Prints per-label precision/recall/F1 and macro-F1 over all held-out rows (thresholds cross-fitted: each
        fold's thresholds are tuned on the other folds), then the scores per held-out group.

        Example: foresight classify cv labelled.parquet --group origin --model static --by genre
        """
        from foresight.classifiers.cv import cross_fit, cv_report, group_folds
        from foresight.classifiers.labelsio import group_column, read_labels

        table, texts, y = read_labels(labelled)
        groups = group_column(table, group_by, labelled)
        extra = {by: group_column(table, by, labelled)} if by else None
        fold = group_folds(groups, folds, seed)
        fit_predict = _cv_model(model, texts, y, embedder_path, c)
        oof = cross_fit(fold, fit_predict, lambda f, k: console.print(f"cv: fold {f}/{k} done", highlight=False))
        report = cv_report(oof, y, fold, groups, extra)
        report["model"] = model
        if as_json:
            console.print_json(json.dumps(report))
            return
        print_scores(f"{model}: grouped {folds}-fold CV by {group_by} ({report['groups']} groups, n={report['n']})",
                     report)
        console.print(f"{model}: grouped-CV macro-F1={report['macro_f1']:.3f}")
        print_breakdown(f"{model}: per held-out {group_by}", report["by_group"])
        if by:
            print_breakdown(f"{model}: by {by}", report[f"by_{by}"])

    @group.command("eval")
    @user_errors
    def evaluate(
        model: str = typer.Argument(..., help="'rules', a transformer directory or a fastText .bin."),
        gold: Path = typer.Option(..., "--gold", help="Hand-labelled gold set (Parquet: text, one 0/1 column "
                                  "per label; origin/genre columns for --by)."),
        against: str = typer.Option("", "--against", help="A second classifier: also report per-label κ."),
        by: str = typer.Option("", "--by", help="Also break the scores down by this column of the gold file "
                               "(origin, genre, source)."),
        device: str = typer.Option("auto", "--device"),
        as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    ) -> None:
        """Per-label precision/recall/F1 and macro-F1 on a gold set; per-label Cohen's κ with --against.

        MODEL is 'default' (the packaged CPU classifier), 'fasttext' (the packaged fastText), 'rules', a
        classifier directory or a fastText .bin/.ftz.

        Example: foresight classify eval default --gold gold_ood.parquet --by genre --against rules
        """
        from foresight.classifiers.base import label_matrix, load_classifier
        from foresight.classifiers.cv import breakdown
        from foresight.classifiers.evaluate import agreement
        from foresight.classifiers.evaluate import evaluate as run_eval
        from foresight.classifiers.labelsio import group_column, read_labels

        table, texts, y = read_labels(gold)
        keys = group_column(table, by, gold) if by else None
        results: dict = {}
        preds = {}
        for name in [model] + ([against] if against else []):
            clf = load_classifier(name, device=device)
            preds[name] = label_matrix(clf.predict_scores(texts), clf.thresholds)
            results[name] = run_eval(preds[name], y)
            if keys is not None:
                results[name][f"by_{by}"] = breakdown(preds[name], y, keys)
        if against:
            results["kappa"] = {"a": model, "b": against, "per_label": agreement(preds[model], preds[against]),
                                "a_vs_gold": agreement(preds[model], y), "b_vs_gold": agreement(preds[against], y)}
        if as_json:
            console.print_json(json.dumps(results))
            return
        for name in preds:
            _print_eval(name, results[name])
            if keys is not None:
                print_breakdown(f"{name} on {gold.name} by {by}", results[name][f"by_{by}"])
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
        from rich.table import Table

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
