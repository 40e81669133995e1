"""``foresight tokenizer train``."""

from __future__ import annotations

import glob
from pathlib import Path

import typer

from foresight.cli.commands.common import console, fail, user_errors
from foresight.pipeline.readers import is_training_file


def _expand(inputs: list[str]) -> list[str]:
    files: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files += sorted(str(f) for f in p.rglob("*") if f.is_file() and is_training_file(f))
        elif any(ch in item for ch in "*?["):
            files += sorted(glob.glob(item, recursive=True))
        elif p.is_file():
            files.append(str(p))
        else:
            fail(f"input {item} does not exist; pass JSONL/text files, directories or globs")
    if not files:
        fail(f"no .jsonl/.txt input files found in {inputs}")
    return files


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Train byte-level BPE tokenizers.", no_args_is_help=True)
    app.add_typer(group, name="tokenizer")

    @group.command("train")
    @user_errors
    def train(
        inputs: list[str] = typer.Argument(..., help="JSONL(.gz/.zst) or text files, directories or globs."),
        vocab_size: int = typer.Option(16384, "--vocab-size", help="Vocabulary size incl. special tokens."),
        out: Path = typer.Option(Path("tokenizer.json"), "--out", help="Where to write tokenizer.json."),
        text_key: str = typer.Option("text", "--text-key", help="JSON field holding the text."),
        min_frequency: int = typer.Option(2, "--min-frequency", help="Minimum pair frequency to merge."),
    ) -> None:
        """Train a byte-level BPE (deterministic for the same input).

        Example: foresight tokenizer train data/sample --vocab-size 16384 --out data/tokenizer.json
        """
        from foresight.formats.atomic import check_output_file
        from foresight.formats.tokenizer import load_tokenizer, train_tokenizer
        from foresight.pipeline.readers import iter_texts_from_files

        out = check_output_file(out)  # before the training, not after it
        files = _expand(inputs)
        skipped: dict[str, int] = {}
        tok = train_tokenizer(iter_texts_from_files(files, text_key, skipped), vocab_size, min_frequency)
        for path, n in sorted(skipped.items()):
            console.print(f"skipped {n} line(s) of {path}: not a JSON object with a string {text_key!r}",
                          style="yellow")
        out.parent.mkdir(parents=True, exist_ok=True)
        tok.save(str(out))
        _, info = load_tokenizer(out)
        console.print(f"tokenizer: {out} vocab={info.vocab_size} eos_id={info.eos_id} sha256={info.sha256[:16]}…")
