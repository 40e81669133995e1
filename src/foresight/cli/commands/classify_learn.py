"""``foresight classify tokenlearn``: static token vectors fitted to a sentence encoder's view of a text pool; and
the readers of unlabelled text (JSONL pools, Parquet `text` columns) that it and `classify distill` share."""

from __future__ import annotations

from pathlib import Path

import typer

from foresight.cli.commands.common import console, user_errors
from foresight.formats.errors import InputError


def _seeded_sample(texts: list[str], sample: int, seed: int) -> list[str]:
    """``sample`` of ``texts`` drawn with ``seed``, in their order (all of them when there are no more)."""
    import random

    if sample and len(texts) > sample:
        return [texts[i] for i in sorted(random.Random(seed).sample(range(len(texts)), sample))]
    return texts


def read_pool(path: Path, sample: int, seed: int) -> list[str]:
    """Texts of a JSONL pool (a seeded sample of ``sample`` lines when there are more); a bad line is named."""
    from foresight.classifiers.labelsio import read_json_lines

    texts = [t for _, t in read_json_lines(path, "a JSON object with a 'text' field", lambda rec: str(rec["text"]))]
    return _seeded_sample(texts, sample, seed)


def read_texts(path: Path, sample: int, seed: int) -> list[str]:
    """The ``text`` column of a Parquet file, or the ``text`` field of a JSONL pool (``classify pool``)."""
    if path.suffix == ".parquet":
        from foresight.classifiers.labelsio import read_parquet_texts

        return _seeded_sample(read_parquet_texts(path), sample, seed)
    return read_pool(path, sample, seed)


def _every_tenth(what: str):  # noqa: ANN202
    """A progress callback that prints at each further tenth of the work (minutes of encoding on a CPU)."""
    shown = [-1]

    def report(done: int, total: int) -> None:
        tenth = 10 * done // max(total, 1)
        if tenth > shown[0]:
            shown[0] = tenth
            console.print(f"tokenlearn: {what} {done:,}/{total:,}", highlight=False)
    return report


def add_to(group: typer.Typer) -> None:
    """Add `classify tokenlearn` to the classify group (called by classify.register)."""
    @group.command("tokenlearn")
    @user_errors
    def tokenlearn(
        base: str = typer.Argument(..., help="Static vectors to start from: 'default' (the packaged model's), a "
                                   "`classify embedder` directory or a static classifier directory."),
        texts: list[Path] = typer.Argument(..., help="Unlabelled text: JSONL pools (`classify pool`) and/or "
                                           "Parquet files with a 'text' column."),
        out: Path = typer.Option(..., "--out", help="Directory to write (model2vec layout, base + learned dims)."),
        teacher: str = typer.Option("minilm", "--teacher", help="Sentence encoder whose embeddings are the "
                                    "targets: 'minilm' (packaged) or a local HF encoder directory."),
        exclude: list[Path] = typer.Option([], "--exclude", help="Evaluation sets (Parquet/JSONL with text) whose "
                                           "texts must not be learned from: any pool text sharing an 8-word "
                                           "run with them is dropped."),
        sample: int = typer.Option(0, "--sample", help="Texts per input at most (seeded; 0 = all)."),
        epochs: int = typer.Option(4, "--epochs"),
        lr: float = typer.Option(1e-3, "--lr"),
        max_length: int = typer.Option(256, "--max-length", help="Teacher tokens per text."),
        seed: int = typer.Option(0, "--seed"),
        threads: int = typer.Option(0, "--threads", help="CPU threads for torch (0 = torch default)."),
    ) -> None:
        """Fit static token vectors so a text's mean vector predicts the teacher's embedding of it (model2vec's
        tokenlearn); the result is the base table with the learned one appended. No labels are used.

        Example: foresight classify tokenlearn default pool.jsonl labelled.parquet --exclude gold.parquet
        --out models/m2v-tokenlearn
        """
        import torch

        from foresight.classifiers.base import resolve_model
        from foresight.classifiers.static import VECTORS_FILE, StaticEmbedder
        from foresight.classifiers.tokenlearn import extend, learn_vectors, sentence_embeddings, without_overlap
        from foresight.classifiers.transformer import backbone_name, resolve_backbone

        if threads:
            torch.set_num_threads(threads)
        base_dir = Path(str(resolve_model(base)))
        if not (base_dir / VECTORS_FILE).is_file():
            raise InputError(f"{base_dir}: no static vectors ({VECTORS_FILE}); give 'default' or a directory "
                             "from `classify embedder`")
        emb = StaticEmbedder.load(base_dir)
        pool = [t for p in texts for t in read_texts(p, sample, seed)]
        banned = [t for p in exclude for t in read_texts(p, 0, seed)]
        pool, dropped = without_overlap(pool, banned)
        if not pool:
            raise InputError("tokenlearn: no text left to learn from (all inputs empty or excluded)")
        console.print(f"tokenlearn: {len(pool)} texts ({dropped} dropped for overlapping --exclude); "
                      f"embedding them with {teacher}")
        targets = sentence_embeddings(resolve_backbone(teacher), pool, max_length,
                                      progress=_every_tenth("embedded"))
        learned = learn_vectors(emb, pool, targets, epochs=epochs, lr=lr, seed=seed, progress=_every_tenth("step"))
        extend(emb, learned).save(out, f"{emb.source or base_dir.name}+tokenlearn({backbone_name(teacher)})")
        console.print(f"tokenlearn: {learned.shape[0]} token vectors × {emb.dim}+{learned.shape[1]} dims → {out}")
