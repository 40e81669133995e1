"""Resume after a kill and determinism across --workers: byte-identical shards, stats and index."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import make_tokenizer
from tests.pipeline.util import accounting, curate, prose, tree_digest, write_jsonl

DEDUP_ON = {"dedup": {"exact": {"enabled": True}, "minhash": {"enabled": True, "num_buckets": 4}}}


def _inputs(tmp_path: Path, files: int = 4, docs: int = 12) -> Path:
    root = tmp_path / "in"
    for f in range(files):
        recs = [{"id": f"f{f}d{i}", "text": "\n\n".join(prose(f * 10_000 + i * 10 + k, 60) for k in range(4))}
                for i in range(docs)]
        recs.append({"id": f"f{f}copy", "text": recs[0]["text"]})  # an exact duplicate in every file
        write_jsonl(root / ("web" if f % 2 else "books") / f"part{f}.jsonl", recs)
    return root


@pytest.mark.slow
def test_same_output_for_any_number_of_workers(tmp_path: Path) -> None:
    src = _inputs(tmp_path)
    one = curate(tmp_path, [src], out="w1", tasks=3, workers=1, overrides=DEDUP_ON)
    two = curate(tmp_path, [src], out="w2", tasks=3, workers=2, overrides=DEDUP_ON)
    assert tree_digest(one) == tree_digest(two)
    assert accounting(one)["dropped"]["exact_duplicate"] == 4


def _curate_cmd(src: Path, out: Path, tok: Path, tasks: int) -> list[str]:
    cfg = out.parent / "resume.toml"
    cfg.write_text("[classify]\nenabled = false\n[language]\nenabled = false\n[segment]\nmax_tokens = 64\n"
                   "[dedup.minhash]\nenabled = false\n")
    return [sys.executable, "-m", "foresight.cli", "curate", str(src), "--out", str(out), "--tokenizer", str(tok),
            "--tasks", str(tasks), "--config", str(cfg)]


@pytest.mark.slow
def test_killed_run_resumes_only_missing_tasks_and_is_byte_identical(tmp_path: Path) -> None:
    src, tok, tasks = _inputs(tmp_path, files=6, docs=20), make_tokenizer(tmp_path), 6
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(_curate_cmd(src, ref, tok, tasks), check=True, env=env, capture_output=True)

    done_dir = killed / "_work" / "logs" / "segment" / "completions"
    proc = subprocess.Popen(_curate_cmd(src, killed, tok, tasks), env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        if done_dir.is_dir() and len(list(done_dir.iterdir())) >= 1:
            os.killpg(proc.pid, signal.SIGKILL)  # mid-way through the segment/write stage
            break
        time.sleep(0.005)
    proc.wait()
    finished_before = sorted(p.name for p in done_dir.iterdir())
    assert proc.returncode == -signal.SIGKILL and 1 <= len(finished_before) < tasks, "the kill must land mid-run"
    assert not (killed / "index.json").exists()
    stamps = {n: (done_dir / n).stat().st_mtime_ns for n in finished_before}
    filter_stamp = (killed / "_work/logs/filter/completions/00000").stat().st_mtime_ns

    out = subprocess.run(_curate_cmd(src, killed, tok, tasks), env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "resumed" in out.stdout
    # finished tasks were not run again; the missing ones were
    assert {n: (done_dir / n).stat().st_mtime_ns for n in finished_before} == stamps
    assert (killed / "_work/logs/filter/completions/00000").stat().st_mtime_ns == filter_stamp
    assert len(list(done_dir.iterdir())) == tasks
    assert tree_digest(killed) == tree_digest(ref)
