"""``foresight curate --executor slurm`` on a real single-node Slurm cluster (``slurm_cluster.py``): shards,
stats and ``index.json`` byte-identical to the local executor's; a job cancelled mid-run resumes with only its
missing tasks, to the same bytes."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import foresight
from tests.helpers import make_tokenizer
from tests.pipeline.slurm_cluster import PARTITION, ClusterError, SlurmCluster, unavailable
from tests.pipeline.util import prose, tree_digest, write_jsonl

pytestmark = pytest.mark.slow

TASKS = 4
JOB_TIMEOUT = 240  # seconds for a whole run's jobs; a run takes ~30 s on 2 busy cores
SKIPPED_STAGES = ("filter", "exact-sigs", "exact-find")  # complete before the segment job is cancelled


@pytest.fixture(scope="module")
def cluster() -> Iterator[SlurmCluster]:
    why = unavailable()
    if why:
        pytest.skip(why)
    c = SlurmCluster()
    try:
        c.start()
    except (ClusterError, OSError, subprocess.SubprocessError) as e:
        c.stop()
        pytest.skip(f"a Slurm cluster could not be started here: {str(e)[-2000:]}")
    yield c
    c.stop()
    assert not c.processes()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, cluster: SlurmCluster) -> dict:
    """Inputs, a config with [executor.slurm] for the test partition, and the local executor's output digest."""
    tmp = tmp_path_factory.mktemp("slurm")
    src = tmp / "in"
    for k, source in enumerate(("web", "books", "code", "news")):  # one file per task
        write_jsonl(src / source / f"{k}.jsonl", [{"text": prose(100 * k + i)} for i in range(20)])
    data = "[language]\nenabled = false\n[dedup.minhash]\nenabled = false\n"
    slurm = f'[executor.slurm]\npartition = "{PARTITION}"\ntime = "00:10:00"\nmem_per_cpu_gb = 1\n'
    (tmp / "pipeline.toml").write_text(data + slurm)
    # The same data config, jobs activating this interpreter's venv (venv_path) where it is one.
    venv = Path(sys.prefix) if Path(sys.prefix, "bin", "activate").is_file() else None
    (tmp / "venv.toml").write_text(data + slurm + (f'venv_path = "{venv}"\n' if venv else ""))
    args = [str(src), "--tokenizer", str(make_tokenizer(tmp)), "--tasks", str(TASKS), "--classifier", "rules"]
    res = _curate(cluster, tmp, [*args, "--config", str(tmp / "pipeline.toml"), "--out", str(tmp / "local")])
    assert res.returncode == 0, res.stdout + res.stderr
    return {"tmp": tmp, "local": tree_digest(tmp / "local"), "venv": venv,
            "args": [*args, "--config", str(tmp / "pipeline.toml")],
            "venv_args": [*args, "--config", str(tmp / "venv.toml")]}


def _job_env(cluster: SlurmCluster) -> dict[str, str]:
    """The cluster's environment, with this checkout's sources importable and no directory on PATH holding
    datatrove's launcher: the jobs must find this interpreter's by themselves (as after `.venv/bin/foresight`
    run without activating the venv)."""
    env = dict(cluster.env)
    env["PATH"] = os.pathsep.join(d for d in env.get("PATH", "").split(os.pathsep)
                                  if d and not Path(d, "launch_pickled_pipeline").exists())
    src = str(Path(foresight.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _curate(cluster: SlurmCluster, cwd: Path, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from foresight.cli import main; main()", "curate", *args],
                          capture_output=True, text=True, env=_job_env(cluster), cwd=cwd, timeout=120)


def _launch(cluster: SlurmCluster, run: dict, out: Path, args: str = "args") -> subprocess.CompletedProcess:
    res = _curate(cluster, run["tmp"], [*run[args], "--out", str(out), "--executor", "slurm"])
    assert res.returncode == 0, res.stdout + res.stderr + cluster.logs(out)
    assert "foresight-finalize" in res.stdout and "rerun this same command" in res.stdout
    return res


def _done(out: Path, stage: str) -> set[int]:
    d = out / "_work" / "logs" / stage / "completions"
    return {int(p.name) for p in d.iterdir()} if d.is_dir() else set()


def _wait_for(cluster: SlurmCluster, out: Path, what: str, ok, timeout: float = JOB_TIMEOUT) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; queue: {cluster.jobs()}\n{cluster.logs(out)}")
        time.sleep(0.2)


def _job_id(cluster: SlurmCluster, name: str) -> str:
    """The array job of stage ``name`` (datatrove gives its merge-stats job the same name: the lower id)."""
    ids = {j["id"].split("_")[0] for j in cluster.jobs() if j["name"] == f"foresight-{name}"}
    assert ids, cluster.jobs()
    return min(ids, key=int)


def _slurm_logs(out: Path, stage: str) -> set[str]:
    return {p.name for p in (out / "_work" / "logs" / stage / "slurm_logs").glob("*.out")}


def _assert_identical(local: dict[str, str], out: Path) -> None:
    got = tree_digest(out)
    assert got == local, [k for k in sorted(set(local) | set(got)) if local.get(k) != got.get(k)]


def test_slurm_run_is_byte_identical_to_local(cluster: SlurmCluster, run: dict) -> None:
    out = run["tmp"] / "slurm"
    _launch(cluster, run, out)
    final = _job_id(cluster, "finalize")
    cluster.cmd("scontrol", "hold", final)  # keeps the run queued while it is launched again: refused
    queued = {j["id"].split("_")[0] for j in cluster.jobs()}
    again = _curate(cluster, run["tmp"], [*run["args"], "--out", str(out), "--executor", "slurm"])
    said = again.stdout + again.stderr
    assert again.returncode == 1 and "still queued" in said and "scancel" in said, said
    assert f"foresight-finalize (job {final}: PENDING" in said
    assert {j["id"].split("_")[0] for j in cluster.jobs()} <= queued  # nothing submitted
    info = subprocess.run([sys.executable, "-c", "from foresight.cli import main; main()", "shards", "info",
                           str(out)], capture_output=True, text=True, env=_job_env(cluster), timeout=120)
    assert info.returncode == 1 and "has not finished" in info.stdout + info.stderr
    cluster.cmd("scontrol", "release", final)
    cluster.wait_idle(JOB_TIMEOUT, "(curate --executor slurm)", extra_logs=out)
    assert (out / "index.json").is_file(), f"the finalize job wrote no index\n{cluster.logs(out)}"
    _assert_identical(run["local"], out)
    assert _done(out, "segment") == set(range(TASKS)) and _slurm_logs(out, "finalize")


def test_a_partition_the_cluster_lacks_is_one_line(cluster: SlurmCluster, run: dict) -> None:
    cfg = run["tmp"] / "nope.toml"
    cfg.write_text('[executor.slurm]\npartition = "nope"\n')
    args = [*run["args"][:-2], "--config", str(cfg), "--out", str(run["tmp"] / "nope"), "--executor", "slurm"]
    res = _curate(cluster, run["tmp"], args)
    said = " ".join((res.stdout + res.stderr).split())
    assert res.returncode == 1 and "sbatch refused a job: invalid partition specified: nope" in said, said
    assert not cluster.jobs()


def test_cancelled_job_reruns_only_its_missing_tasks(cluster: SlurmCluster, run: dict) -> None:
    """The segment job is held as submitted; task 0 is let run to completion, then task 1, which is cancelled
    with the whole job while it runs (tasks 2, 3 never started). The rerun of the same command submits only
    the missing segment tasks (and finalize) and ends byte-identical to the local run. Its jobs activate
    [executor.slurm] venv_path (this interpreter's venv) where the tests run in one."""
    out = run["tmp"] / "cancelled"
    _launch(cluster, run, out, "venv_args")
    seg = _job_id(cluster, "segment")
    cluster.cmd("scontrol", "hold", seg)
    cluster.cmd("scontrol", "release", f"{seg}_0")
    _wait_for(cluster, out, "segment task 0", lambda: 0 in _done(out, "segment"))
    cluster.cmd("scontrol", "release", f"{seg}_1")
    _wait_for(cluster, out, "segment task 1 to start",
              lambda: any(j["id"] == f"{seg}_1" and j["state"] == "RUNNING" for j in cluster.jobs())
              or 1 in _done(out, "segment"))
    cluster.cmd("scancel", seg)
    cluster.wait_idle(60, "after scancel (finalize is cancelled with it: kill_invalid_depend)", extra_logs=out)

    done = _done(out, "segment")
    missing = sorted(set(range(TASKS)) - done)
    assert 0 in done and {2, 3} <= set(missing), done
    assert not (out / "index.json").exists()  # finalize never ran
    logs_before = {s: _slurm_logs(out, s) for s in SKIPPED_STAGES}
    seg_logs = out / "_work" / "logs" / "segment" / "logs"
    done_task_logs = {r: (seg_logs / f"task_{r:05d}.log").read_bytes() for r in done}

    _launch(cluster, run, out, "venv_args")  # the same command resumes
    cluster.wait_idle(JOB_TIMEOUT, "(rerun after scancel)", extra_logs=out)
    curate_log = (out / "_work" / "curate.log").read_text()
    for stage in SKIPPED_STAGES:  # not resubmitted: no new job, no new Slurm log
        assert f"Skipping launch of foresight-{stage} as all" in curate_log
        assert _slurm_logs(out, stage) == logs_before[stage]
    ranks = json.loads((out / "_work" / "logs" / "segment" / "ranks_to_run.json").read_text())
    assert ranks == missing  # only the missing segment tasks were submitted…
    assert {r: (seg_logs / f"task_{r:05d}.log").read_bytes() for r in done} == done_task_logs  # …and ran
    assert _done(out, "segment") == set(range(TASKS))
    _assert_identical(run["local"], out)
    if run["venv"]:
        activate = shlex.quote(str(run["venv"].resolve() / "bin" / "activate"))
        assert f"source {activate}\n" in (out / "_work" / "logs" / "segment" / "launch_script.slurm").read_text()
