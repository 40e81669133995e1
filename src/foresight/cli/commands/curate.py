"""``foresight curate``: raw text → filtered, deduplicated, segmented, tokenized Parquet shards."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import typer

from foresight.cli import interrupt
from foresight.cli.commands.common import console, disk_full, out_path, set_option, user_errors
from foresight.formats.errors import InputError, SetupError


@contextlib.contextmanager
def _stderr_to(path: Path, enabled: bool) -> Iterator[None]:
    """Send fd 2 (datatrove's per-task logging, also in worker processes) to ``path`` while running."""
    if not enabled:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def _progress(stages: list, enabled: bool) -> Iterator[None]:
    """A live status line: completed tasks per stage, read from datatrove's completion markers."""
    if not enabled:
        yield
        return
    stop = threading.Event()

    def line() -> str:
        from foresight.pipeline.curate import completed_tasks

        return " · ".join(f"{name} {done}/{tasks}" for name, done, tasks in completed_tasks(stages))

    with console.status(line()) as status:
        def poll() -> None:
            while not stop.wait(1.0):
                status.update(line())

        t = threading.Thread(target=poll, daemon=True)
        t.start()
        try:
            yield
        finally:
            stop.set()
            t.join()


def _tail(path: Path, lines: int = 5) -> str:
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return "\n".join(text[-lines:])


def register(app: typer.Typer) -> None:
    @app.command("curate")
    @user_errors
    def curate(
        inputs: list[str] = typer.Argument(..., help="JSONL(.gz/.zst), Parquet or WARC files, directories, globs "
                                                     "or fsspec URLs."),
        out: Path = typer.Option(..., "--out", parser=out_path,
                                 help="Shard directory to write (data/, stats/, index.json)."),
        config: Path | None = typer.Option(None, "--config", help="pipeline.toml (see docs/pipeline.md)."),
        tokenizer: Path = typer.Option(..., "--tokenizer", help="tokenizer.json to use "
                                       "(`foresight tokenizer train`)."),
        workers: int = typer.Option(1, "--workers", help="Tasks run at the same time (local and ray executors)."),
        tasks: int | None = typer.Option(None, "--tasks", help="Number of tasks (shards per source); default "
                                                               "min(input files, 8). Output depends on it."),
        executor: str = typer.Option("local", "--executor", help="local, slurm or ray."),
        source: str | None = typer.Option(None, "--source", help="Source for records without a `source` field "
                                                                 "(default: the input file's directory name)."),
        text_key: str | None = typer.Option(None, "--text-key", help="Field holding the text (default: text)."),
        classifier: str | None = typer.Option(None, "--classifier", help="Classifier for the classify stage: "
                                                "default (the static-embedding model shipped with foresight, CPU), "
                                                "fasttext (the shipped fastText, fastest), rules, a classifier "
                                                "directory (static or transformer) or a fastText .bin/.ftz."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier, different run in --out "
                                                                  "(the same run always resumes)."),
        verbose: bool = typer.Option(False, "--verbose", help="Show datatrove's task logs on stderr."),
        exclusions: bool = typer.Option(False, "--exclusions", help="Also write every dropped or unreadable "
                                        "document, with its reason, to OUT/excluded/<step>/ ([write] exclusions)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="--executor slurm: print the sbatch scripts that "
                                                              "would be submitted, and submit nothing."),
        set_: list[str] = set_option("segment.max_tokens=512"),
    ) -> None:
        """Run the curation pipeline: read → normalise → filter → dedup → segment → tokenize → classify → write.

        A killed run restarted with the same arguments finishes only the missing tasks.

        Example: foresight curate demo/corpus --out demo/shards --tokenizer demo/tokenizer.json --workers 2
        """
        from foresight.formats.settings import parse_overrides
        from foresight.pipeline.curate import plan_curation, prepare_output

        if workers < 1:
            raise InputError("--workers must be ≥ 1")
        if dry_run and executor != "slurm":
            raise InputError("--dry-run prints Slurm scripts: use it with --executor slurm")
        t0 = time.time()
        p = plan_curation(inputs, out, tokenizer, config=config, tasks=tasks, source=source, text_key=text_key,
                 classifier=classifier,
                 overrides=parse_overrides([*(set_ or []), *(["write.exclusions=true"] if exclusions else [])]))
        if p.ignored:
            console.print(f"ignored {len(p.ignored)} file(s) of unknown format (e.g. {p.ignored[0]})", style="yellow")
        from foresight.pipeline.inputstate import unreadable_inputs

        for path in unreadable_inputs([f.path for f in p.files]):
            console.print(f"unreadable input {path} (a symlink to a missing file): counted as "
                          "errored/unreadable_file", style="yellow", highlight=False)
        console.print(f"curate: {len(p.files)} input file(s), {p.tasks} task(s), {workers} worker(s), "
                      f"stages: {' → '.join(s.name for s in p.stages)}")
        if dry_run:
            import shutil

            from foresight.pipeline.executors import build_executors, slurm_scripts

            existed = p.out.exists()
            try:
                for name, script in slurm_scripts(build_executors(p.stages, "slurm", workers, p.config.executor)):
                    console.print(f"# ---- {name}", highlight=False, markup=False)
                    console.print(script, highlight=False, markup=False, soft_wrap=True)
            finally:
                if not existed:  # datatrove made the (empty) log folders: a later real run must find --out new
                    shutil.rmtree(p.out, ignore_errors=True)
            return
        from foresight.formats.lock import locked

        with locked(p.out, f"--out {p.out}"):  # two runs into one --out would mix their tasks
            resumed = prepare_output(p, overwrite)
            log = p.work / "curate.log"
            jobs = _run(p, executor, workers, verbose, log)
        if executor == "slurm":
            _print_submitted(p, jobs)
            return
        if executor == "ray":  # where each task ran: OUT/_work/logs/<stage>/nodes/<rank>.json
            from foresight.pipeline.rayexec import node_summary

            console.print(node_summary([s.logging_dir for s in p.stages]), highlight=False, markup=False)
        if resumed:
            console.print("resumed an earlier run: only unfinished tasks were run", style="green")
        from foresight.cli.commands.shards import print_summary

        print_summary(p.out)
        console.print(f"shards: {p.out}  ({time.time() - t0:.1f} s)")


def _print_submitted(p, jobs: list[tuple[str, str]]) -> None:  # noqa: ANN001
    """What was submitted, and how to watch, debug and resume it (docs/pipeline.md, "Slurm")."""
    console.print(f"submitted {len(jobs)} Slurm job(s), each after the previous one: "
                  + ", ".join(f"{name} {job}" for name, job in jobs), highlight=False)
    console.print(f"watch: squeue -j {','.join(job for _, job in jobs)}   task logs: "
                  f"{p.work / 'logs'}/<stage>/slurm_logs/<job>_<task>.out", highlight=False, soft_wrap=True)
    console.print("a job cancelled or failed: rerun this same command (only the missing tasks run); "
                  f"when the jobs end: foresight shards info {p.out}", highlight=False, soft_wrap=True)


def _sbatch_refusal(e: Exception, log: Path, verbose: bool) -> str | None:
    """The one-line error for a job sbatch refused (a partition, QOS, time or memory the cluster does not
    have), with sbatch's own reason from the log its stderr went to; None for any other failure."""
    import subprocess

    if not (isinstance(e, subprocess.CalledProcessError) and isinstance(e.cmd, list) and e.cmd[:1] == ["sbatch"]):
        return None
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:] if log.is_file() else []
    why = "; ".join(ln.removeprefix("sbatch: error: ") for ln in lines if ln.startswith("sbatch: error: "))
    if verbose or not why:
        why = f"exit status {e.returncode} (its message is above)"
    return (f"sbatch refused a job: {why}. Check [executor.slurm] in the config (docs/pipeline.md, \"Running on a "
            "Slurm cluster\"); jobs submitted before it are in _work/slurm_jobs.json")


def _run(p, executor: str, workers: int, verbose: bool, log: Path) -> list[tuple[str, str]]:  # noqa: ANN001
    """Run the stages with datatrove's logs in ``log``; a failure is one line plus the log's tail.
    Returns the Slurm jobs submitted (name, id)."""
    from foresight.pipeline.curate import run_stages

    try:
        with _stderr_to(log, enabled=not verbose), _progress(p.stages, enabled=executor == "local"):
            return run_stages(p, executor, workers)
    except Exception as e:
        # Ctrl-C or a kill sent to the process group also reaches the workers: the pool can report their death
        # (ConnectionResetError) while unwinding our own interrupt, or before our handler has run. Either way the
        # run stops as interrupted (128 + signal), not as a failure: re-raise the interrupt, or give a pending
        # signal its turn.
        if (irq := interrupt.raised_during(e)) is not None:
            raise irq from None
        time.sleep(0.5)
        if disk_full(e) is not None:
            raise  # user_errors says so in one line
        if (refused := _sbatch_refusal(e, log, verbose)) is not None:
            raise InputError(refused) from e
        if not verbose and _tail(log):
            console.print(_tail(log), style="dim", highlight=False)
        # raised (not fail()) so user_errors prints it as the one-line error
        raise SetupError(f"curate failed: {type(e).__name__}: {e} (task logs: {p.work / 'logs'})") from e
