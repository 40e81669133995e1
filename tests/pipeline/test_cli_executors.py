"""CLI (typer CliRunner), executor construction (Slurm/Ray built, not launched), classify hook, WARC input."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from foresight.cli import app
from foresight.pipeline.curate import plan_curation
from foresight.pipeline.executors import build_executors
from tests.helpers import make_tokenizer
from tests.pipeline.util import MINIMAL, accounting, curate, merge, prose, write_config, write_jsonl

runner = CliRunner()


def test_curate_and_shards_info_cli(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in" / "web" / "a.jsonl", [{"text": prose(i, 100)} for i in range(5)])
    out = tmp_path / "shards"
    args = ["curate", str(src), "--out", str(out), "--tokenizer", str(make_tokenizer(tmp_path)),
            "--config", str(write_config(tmp_path)), "--source", "forum"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "kept" in res.output and (out / "data/source=forum/part-00000.parquet").is_file()  # --source wins
    info = runner.invoke(app, ["shards", "info", str(out)])
    assert info.exit_code == 0 and "match index.json" in info.output and "forum" in info.output

    shard = out / "data/source=forum/part-00000.parquet"
    shard.write_bytes(shard.read_bytes()[:-1] + b"\x00")  # tamper with one byte
    bad = runner.invoke(app, ["shards", "info", str(out)])
    assert bad.exit_code == 1 and "do not match" in bad.output

    again = runner.invoke(app, [*args[:-2], "--source", "other"])  # a different run into the same --out
    assert again.exit_code == 1 and "different run" in again.output


def test_work_can_be_deleted_once_the_run_has_finished(tmp_path: Path) -> None:
    """The shards and index.json never refer to _work/: readers work without it."""
    import shutil

    src = write_jsonl(tmp_path / "in" / "web" / "a.jsonl", [{"text": prose(i, 100)} for i in range(5)])
    out = curate(tmp_path, [src])
    shutil.rmtree(out / "_work")
    info = runner.invoke(app, ["shards", "info", str(out)])
    assert info.exit_code == 0 and "match index.json" in info.output, info.output
    res = runner.invoke(app, ["audit", str(out), "SELECT count(DISTINCT doc_id) AS n FROM segments", "--strict",
                              "--format", "csv"])
    assert res.exit_code == 0 and res.output.strip().splitlines()[-1] == "5", res.output


def test_curate_cli_one_line_errors(tmp_path: Path) -> None:
    tok = str(make_tokenizer(tmp_path))
    res = runner.invoke(app, ["curate", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--tokenizer", tok])
    assert res.exit_code == 1 and "does not exist" in res.output
    src = write_jsonl(tmp_path / "a.jsonl", [{"text": "x"}])
    missing_tok = str(tmp_path / "t.json")
    res = runner.invoke(app, ["curate", str(src), "--out", str(tmp_path / "o"), "--tokenizer", missing_tok])
    assert res.exit_code == 1 and "tokenizer train" in res.output
    res = runner.invoke(app, ["shards", "info", str(tmp_path)])
    assert res.exit_code == 1 and "not a foresight shard directory" in res.output
    for cmd in (["curate", "--help"], ["shards", "info", "--help"]):
        assert "Example: foresight" in runner.invoke(app, cmd).output


def test_a_full_disk_in_a_curate_task_is_one_line_and_the_rerun_completes(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """pyarrow's write error (an OSError without an errno) raised inside a datatrove task reaches the CLI
    wrapped; it is still the one-line full-disk error, nothing is indexed, and the rerun completes."""
    from foresight.pipeline.stages import write

    src = write_jsonl(tmp_path / "in" / "web" / "a.jsonl", [{"text": prose(i, 100)} for i in range(5)])
    out = tmp_path / "shards"
    args = ["curate", str(src), "--out", str(out), "--tokenizer", str(make_tokenizer(tmp_path)),
            "--config", str(write_config(tmp_path))]

    def full(self: write.RankShardWriter, source: str) -> None:
        raise OSError("Error writing bytes to file. Detail: [errno 28] No space left on device")

    with monkeypatch.context() as m:
        m.setattr(write.RankShardWriter, "_flush", full)
        res = runner.invoke(app, args)
    # in-process, datatrove's task log (and its traceback) is not redirected to _work/curate.log: read ours
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: no space left on the device"), res.output
    assert not (out / "index.json").exists() and not list(out.rglob("*.parquet"))
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and accounting(out)["kept"] == 5, res.output


def test_shards_info_on_an_unfinished_run_says_so(tmp_path: Path) -> None:
    """Before the last job of a run (--executor slurm: while its jobs are queued) there is no index yet."""
    (tmp_path / "s" / "_work").mkdir(parents=True)
    res = runner.invoke(app, ["shards", "info", str(tmp_path / "s")])
    said = " ".join(res.output.split())
    assert res.exit_code == 1 and "run into" in said and "has not finished" in said, said
    assert "rerun the same curate command" in said and "not a foresight shard directory" not in said


def _plan(tmp_path: Path, **overrides):
    src = write_jsonl(tmp_path / "in" / "web" / "a.jsonl", [{"text": prose(1)}])
    on = {"dedup": {"exact": {"enabled": True}, "minhash": {"enabled": True}}, "classify": {"enabled": False},
          "executor": {"slurm": {"partition": "cpu", "time": "01:00:00"}}}
    return plan_curation([str(src)], tmp_path / "out", make_tokenizer(tmp_path), tasks=4,
                         overrides=merge(on, overrides))


def test_slurm_executor_gets_the_same_steps(tmp_path: Path) -> None:
    from datatrove.executor import SlurmPipelineExecutor

    p = _plan(tmp_path)
    local = build_executors(p.stages, "local", workers=2)
    slurm = build_executors(p.stages, "slurm", workers=2, options=p.config.executor)
    assert all(isinstance(e, SlurmPipelineExecutor) for e in slurm)
    assert [s.name for s in p.stages] == ["filter", "exact-sigs", "exact-find", "minhash-sigs", "minhash-buckets",
                                          "minhash-cluster", "segment", "finalize"]
    for stage, lo, sl in zip(p.stages, local, slurm, strict=True):
        assert sl.pipeline is stage.pipeline and lo.pipeline is stage.pipeline
        assert sl.tasks == lo.tasks == stage.tasks and sl.logging_dir.path == lo.logging_dir.path
        assert sl.partition == "cpu" and sl.time == "01:00:00" and sl.job_name == f"foresight-{stage.name}"
    assert slurm[-1].depends is slurm[-2] and slurm[0].depends is None
    assert slurm[-1].skip_completed is False  # finalize always rewrites the index


def test_slurm_dry_run_prints_valid_sbatch_scripts(tmp_path: Path) -> None:
    """--dry-run: one bash-valid sbatch script per job (array of its tasks, partition, time, the pickled
    pipeline it launches), each submitted after the previous one; nothing is written or submitted."""
    import re
    import shutil
    import subprocess

    src = write_jsonl(tmp_path / "in" / "web" / "a.jsonl", [{"text": prose(i)} for i in range(3)])
    cfg = write_config(tmp_path, '[executor.slurm]\npartition = "cpu"\ntime = "02:00:00"\n')
    out = tmp_path / "s"
    res = runner.invoke(app, ["curate", str(src), "--out", str(out), "--tokenizer", str(make_tokenizer(tmp_path)),
                              "--config", str(cfg), "--executor", "slurm", "--dry-run", "--tasks", "2"])
    assert res.exit_code == 0, res.output
    scripts = re.split(r"^# ---- ", res.output, flags=re.M)[1:]
    names = [s.split("\n", 1)[0] for s in scripts]
    assert names == ["foresight-filter", "foresight-exact-sigs", "foresight-exact-find", "foresight-segment",
                     "foresight-finalize"]
    for i, block in enumerate(scripts):
        body = block.split("\n", 1)[1]
        assert body.startswith("#!/bin/bash\n") and "#SBATCH --partition=cpu" in body
        assert "#SBATCH --time=02:00:00" in body and re.search(r"#SBATCH --array=0-\d+", body)
        assert re.search(r"launch_pickled_pipeline \S+/_work/logs/\S+/executor.pik", body)
        launcher_dir = re.search(r"^export PATH=(\S+):\"\$PATH\"$", body, flags=re.M)  # this Python's, first
        assert launcher_dir and Path(launcher_dir.group(1), "launch_pickled_pipeline").is_file()
        assert ("--dependency=afterok:" in body) == (i > 0)
        if shutil.which("bash"):
            assert subprocess.run(["bash", "-n"], input=body, text=True).returncode == 0
    assert "#SBATCH --array=0-1" in scripts[0] and "#SBATCH --array=0-0" in scripts[2]  # exact-find: 1 task
    assert not out.exists()  # nothing written (no pickle, script or marker), nothing submitted
    res = runner.invoke(app, ["curate", str(src), "--out", str(out), "--tokenizer", str(make_tokenizer(tmp_path)),
                              "--dry-run"])
    assert res.exit_code == 1 and "--executor slurm" in res.output


def test_slurm_jobs_run_this_python_or_the_configured_venv(tmp_path: Path) -> None:
    """Jobs find datatrove's launcher of the foresight that submitted them, not whatever PATH holds (with
    `.venv/bin/foresight` run unactivated they found none: tests/pipeline/test_slurm_cluster.py); venv_path
    is a venv directory (or its activate script) and is checked on submission."""
    import sysconfig

    from foresight.pipeline.config import SlurmConfig
    from foresight.pipeline.executors import job_environment

    scripts = Path(sysconfig.get_path("scripts")).resolve()
    assert job_environment(SlurmConfig(partition="cpu")) == f'export PATH={scripts}:"$PATH"'
    venv = tmp_path / "my env"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text("")
    for given in (venv, venv / "bin" / "activate"):
        assert job_environment(SlurmConfig(partition="cpu", venv_path=str(given))) == \
            f"source '{venv}/bin/activate'"
    with pytest.raises(ValueError, match="venv_path .*no .*bin/activate"):
        job_environment(SlurmConfig(partition="cpu", venv_path=str(tmp_path)))
    p = _plan(tmp_path, executor={"slurm": {"venv_path": str(venv)}})
    script = build_executors(p.stages, "slurm", options=p.config.executor)[0].get_launch_file_contents({}, "x")
    assert f"source '{venv}/bin/activate'" in script


def test_no_run_into_out_while_its_slurm_jobs_are_queued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rerun (any executor) while jobs of an earlier --executor slurm launch into OUT are pending or running
    would run their tasks twice into the same shards: refused naming the jobs and the scancel line (a real
    cluster: tests/pipeline/test_slurm_cluster.py)."""
    import os

    from foresight.formats.atomic import write_json_atomic
    from foresight.pipeline.curate import OutputDirError, prepare_output
    from foresight.pipeline.executors import SLURM_JOBS_FILE

    p = _plan(tmp_path)
    assert prepare_output(p) is False
    write_json_atomic(p.work / SLURM_JOBS_FILE, [{"name": "foresight-filter", "id": "11"},
                                                 {"name": "foresight-finalize", "id": "19"}])
    bin_dir, queue = tmp_path / "bin", tmp_path / "queue"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\ncat {queue}\n')
    (bin_dir / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    queue.write_text("19|PENDING (Dependency)\n19|PENDING (Dependency)\n42|RUNNING (None)\n")
    with pytest.raises(OutputDirError, match=r"still queued: foresight-finalize \(job 19: PENDING \(Dependency\)\)\. "
                                             r".*\(scancel 19\)"):
        prepare_output(p)
    assert (tmp_path / "args").read_text().split()[-2:] == ["-j", "11,19"]
    queue.write_text("")  # they ended: the rerun resumes
    assert prepare_output(p) is True


def test_a_job_sbatch_refuses_is_one_line_with_its_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text('#!/bin/sh\necho "sbatch: error: invalid partition specified: nope" >&2\n'
                                    'echo "sbatch: error: Batch job submission failed: Invalid partition" >&2\n'
                                    "exit 1\n")
    (bin_dir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    src = write_jsonl(tmp_path / "in" / "web" / "a.jsonl", [{"text": prose(1)}])
    cfg = write_config(tmp_path, '[executor.slurm]\npartition = "nope"\n')
    res = runner.invoke(app, ["curate", str(src), "--out", str(tmp_path / "s"), "--tokenizer",
                              str(make_tokenizer(tmp_path)), "--config", str(cfg), "--executor", "slurm"])
    assert res.exit_code == 1, res.output
    assert ("sbatch refused a job: invalid partition specified: nope; Batch job submission failed: Invalid "
            "partition. Check [executor.slurm]") in " ".join(res.output.split())
    assert "curate failed" not in res.output and "CalledProcessError" not in res.output


def test_slurm_without_partition_is_an_error(tmp_path: Path) -> None:
    p = _plan(tmp_path, executor={"slurm": {"partition": ""}})
    with pytest.raises(ValueError, match="partition"):
        build_executors(p.stages, "slurm", options=p.config.executor)


def test_ray_executor_gets_the_same_steps(tmp_path: Path) -> None:
    from datatrove.executor.ray import RayPipelineExecutor

    p = _plan(tmp_path)
    ray = build_executors(p.stages, "ray", workers=3, options=p.config.executor)
    assert all(isinstance(e, RayPipelineExecutor) for e in ray)
    assert [e.pipeline for e in ray] == [s.pipeline for s in p.stages]
    assert [e.tasks for e in ray] == [4, 4, 1, 4, 14, 1, 4, 1] and ray[3].depends is ray[2]


def test_classify_stage_inserted_when_available_and_enabled(tmp_path: Path) -> None:
    pytest.importorskip("foresight.pipeline.stages.classify")
    src = write_jsonl(tmp_path / "in" / "web" / "a.jsonl", [{"text": prose(i, 60)} for i in range(3)])
    root = curate(tmp_path, [src], out="lab", overrides={"classify": {"enabled": True}})
    t = pq.read_table(root / "data/source=web/part-00000.parquet")
    assert {"labels", "reasoning", "visual"} <= set(t.column_names)
    import json

    assert json.loads((root / "index.json").read_text())["classifier"] is not None
    names = [type(s).__name__ for s in plan_curation([str(src)], tmp_path / "x", make_tokenizer(tmp_path),
                                            overrides=merge(MINIMAL, {"classify": {"enabled": True}})).stages[-2]
             .pipeline]
    assert names[-3:] == ["Tokenize", "ClassifyStep", "ShardWriter"]


def test_classify_disabled_means_no_label_columns(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in" / "web" / "a.jsonl", [{"text": prose(1)}])
    root = curate(tmp_path, [src])
    assert "labels" not in pq.read_schema(root / "data/source=web/part-00000.parquet").names


def test_warc_input_is_extracted_with_trafilatura(tmp_path: Path) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path = tmp_path / "in" / "crawl" / "a.warc.gz"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as fh:
        w = WARCWriter(fh, gzip=True)
        for i in range(2):
            html = f"<html><body><article><h1>Title {i}</h1><p>{prose(i, 120)}</p></article></body></html>"
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            w.write_record(w.create_warc_record(f"http://example.org/{i}", "response",
                                                payload=io.BytesIO(html.encode()), http_headers=headers))
        img = StatusAndHeaders("200 OK", [("Content-Type", "image/png")], protocol="HTTP/1.1")
        w.write_record(w.create_warc_record("http://example.org/x.png", "response",
                                            payload=io.BytesIO(b"\x89PNG"), http_headers=img))
    root = curate(tmp_path, [tmp_path / "in"])
    acc = accounting(root)
    assert acc["kept"] == 2 and acc["errored"] == {"not_html": 1}
    rows = pq.read_table(root / "data/source=crawl/part-00000.parquet").to_pylist()
    assert rows[0]["url"] == "http://example.org/0"
    assert "<p>" not in rows[0]["text"] and "Story number 0" in rows[0]["text"]


def test_overwrite_replaces_a_different_run_and_same_run_resumes(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in" / "web" / "a.jsonl", [{"text": prose(i)} for i in range(3)])
    base = ["curate", str(src), "--out", str(tmp_path / "s"), "--tokenizer", str(make_tokenizer(tmp_path)),
            "--config", str(write_config(tmp_path))]
    assert runner.invoke(app, base).exit_code == 0
    res = runner.invoke(app, [*base, "--overwrite"])  # same run: resumes, nothing deleted
    assert res.exit_code == 0 and "resumed" in res.output
    res = runner.invoke(app, [*base, "--source", "blog", "--overwrite"])
    assert res.exit_code == 0 and "resumed" not in res.output
    assert [p.name for p in (tmp_path / "s" / "data").iterdir()] == ["source=blog"]
