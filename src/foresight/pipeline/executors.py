"""Stages → datatrove executors: Local (default), Slurm or Ray, each stage depending on the previous one.

The step lists are the same whatever the executor; only the executor class and its resources change.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datatrove.executor.base import PipelineExecutor

from foresight.formats.atomic import write_json_atomic
from foresight.formats.errors import InputError, SetupError
from foresight.pipeline.config import ExecutorConfig, SlurmConfig

EXECUTORS = ("local", "slurm", "ray")


@dataclass
class Stage:
    """One datatrove job: a step list run over ``tasks`` tasks, logging under ``logging_dir``."""

    name: str
    pipeline: list[Any]
    tasks: int
    logging_dir: str
    per_rank: bool  # its task ranks are document ranks (its counts belong to those ranks' accounting)
    always_run: bool = False  # ignore completion markers (the finalize stage rewrites the index every time)


def build_executors(stages: list[Stage], executor: str = "local", workers: int = 1,
                    options: ExecutorConfig | None = None) -> list[PipelineExecutor]:
    """One executor per stage, chained with ``depends=``; run the last one to run them all."""
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}")
    options = options or ExecutorConfig()
    out: list[PipelineExecutor] = []
    for stage in stages:
        prev = out[-1] if out else None
        common = {"pipeline": stage.pipeline, "tasks": stage.tasks, "logging_dir": stage.logging_dir,
                  "depends": prev, "skip_completed": not stage.always_run}
        out.append(_make(executor, stage, common, workers, options))
    return out


def _make(kind: str, stage: Stage, common: dict[str, Any], workers: int, opts: ExecutorConfig) -> PipelineExecutor:
    if kind == "local":
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor(**common, workers=max(1, min(workers, stage.tasks)))
    if kind == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        slurm = opts.slurm
        if not slurm.partition:
            raise InputError("--executor slurm needs a partition: set [executor.slurm] partition = \"…\" "
                             "in pipeline.toml")
        return SlurmPipelineExecutor(
            **common, workers=workers if workers > 1 else -1, job_name=f"foresight-{stage.name}",
            partition=slurm.partition, time=slurm.time, qos=slurm.qos, cpus_per_task=slurm.cpus_per_task,
            mem_per_cpu_gb=slurm.mem_per_cpu_gb, env_command=job_environment(slurm),
        )
    from foresight.pipeline.rayexec import RayExecutor

    return RayExecutor(**common, workers=workers if workers > 1 else -1, name=stage.name, retries=opts.ray.retries,
                       cpus_per_task=opts.ray.cpus_per_task, mem_per_cpu_gb=opts.ray.mem_per_cpu_gb)


LAUNCHER = "launch_pickled_pipeline"  # datatrove's console script that every Slurm task runs (through srun)


def job_environment(slurm: SlurmConfig) -> str:
    """The shell line each sbatch script runs first, so that its tasks run this foresight's Python.

    ``venv_path`` (a virtual environment's directory, or its ``bin/activate``) is activated. Without it the job
    gets the directory of this interpreter's console scripts first on ``PATH``: datatrove's scripts call
    ``launch_pickled_pipeline`` and ``merge_stats`` by name, and a ``foresight`` started without activating its
    venv (``.venv/bin/foresight``) otherwise had jobs that found no launcher, or another environment's."""
    if slurm.venv_path:
        venv = Path(slurm.venv_path).expanduser().resolve()
        activate = venv if venv.name == "activate" else venv / "bin" / "activate"
        if not activate.is_file():
            raise InputError(f"[executor.slurm] venv_path {slurm.venv_path}: no {activate}; give the directory of "
                             "a virtual environment (python -m venv) that has foresight installed")
        return f"source {shlex.quote(str(activate))}"
    scripts = Path(sysconfig.get_path("scripts"))
    if not (scripts / LAUNCHER).is_file():
        found = shutil.which(LAUNCHER)
        if found is None:
            raise InputError(f"--executor slurm: datatrove's {LAUNCHER} script is not installed next to "
                             f"{sys.executable}; reinstall foresight there or set [executor.slurm] venv_path")
        scripts = Path(found).parent
    return f"export PATH={shlex.quote(str(scripts.resolve()))}:\"$PATH\""


def slurm_scripts(executors: list[PipelineExecutor]) -> list[tuple[str, str]]:
    """(job name, text) of every sbatch script ``--executor slurm`` would submit, in submission order, without
    writing or launching anything: datatrove's own script for each job, headed by the ``sbatch`` line it is
    submitted with (each job starts after the previous one succeeded)."""
    out = []
    for i, ex in enumerate(executors):
        run = f"{LAUNCHER} {ex.logging_dir.resolve_paths('executor.pik')}"
        script = ex.get_launch_file_contents(ex.get_sbatch_args(ex.tasks), f"srun -l -n 1 {run}")
        after = f" --dependency=afterok:<job id of {executors[i - 1].job_name}>" if i else ""
        head = f"# submitted as: sbatch --export=ALL,RUN_OFFSET=0{after} {ex.job_name}.slurm\n"
        first, rest = script.split("\n", 1)
        out.append((ex.job_name, f"{first}\n{head}{rest}"))
    return out


SLURM_JOBS_FILE = "slurm_jobs.json"  # under OUT/_work: the stage jobs of the last --executor slurm launch


def record_slurm_jobs(path: Path, executors: list[PipelineExecutor]) -> list[tuple[str, str]]:
    """Write (job name, id) of every stage job that was submitted (a stage already complete submits none)."""
    jobs = [(ex.job_name, str(ex.job_id)) for ex in executors if ex.job_id not in (None, -1)]
    write_json_atomic(path, [{"name": name, "id": job} for name, job in jobs])
    return jobs


def queued_slurm_jobs(path: Path) -> list[tuple[str, str, str]]:
    """(name, id, states) of the jobs recorded at ``path`` that Slurm still has pending or running.

    A rerun submitted while they are queued would rewrite the ranks their pending tasks read and run tasks
    twice at once into the same shards; where Slurm is not installed no job can be queued."""
    jobs = {j["id"]: j["name"] for j in json.loads(path.read_text(encoding="utf-8"))} if path.is_file() else {}
    if not jobs or shutil.which("squeue") is None:
        return []
    res = subprocess.run(["squeue", "-h", "-o", "%F|%T (%r)", "-j", ",".join(jobs)], capture_output=True,
                         text=True, timeout=60)
    if res.returncode != 0 and "Invalid job id" not in res.stderr:  # (all of them already purged)
        raise SetupError(f"squeue failed checking the earlier launch's jobs: {res.stderr.strip()}")
    states: dict[str, set[str]] = {}
    for line in res.stdout.splitlines():
        job, _, state = line.partition("|")
        states.setdefault(job, set()).add(state)
    return [(name, job, ", ".join(sorted(states[job]))) for job, name in jobs.items() if job in states]
