"""``foresight audit``: query formats and parameters, the shell fed through stdin, the report command."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from foresight.cli import app
from tests.audit.fixtures import corpus, make_manifest

runner = CliRunner()


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["audit", *args], input=stdin)
    return result.exit_code, result.output


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_types_polars_cannot_hold_are_shown_as_text(env: dict[str, Path], fmt: str) -> None:
    """VARIANT, MAP, UNION and INTERVAL columns (and DuckDB's own settings table) never end in a traceback."""
    sql = ("SELECT 1::VARIANT AS v, map([1], [2]) AS m, union_value(k := 7) AS u, INTERVAL 1 DAY AS iv, "
           "'x'::BLOB AS b, 2 AS w, 3 AS w")
    code, out = run(str(env["shards"]), sql, "--format", fmt)
    assert code == 0, out
    assert "1 day" in out and "{1=2}" in out and "Traceback" not in out
    if fmt == "json":
        assert json.loads(out)[0]["u"] == "7"
    code, out = run(str(env["shards"]), "SELECT * FROM duckdb_settings() LIMIT 3", "--format", fmt)
    assert code == 0 and "Traceback" not in out


def test_query_table_csv_json_parquet(env: dict[str, Path], tmp_path: Path) -> None:
    sql = "SELECT source, sum(n_tokens) AS tokens FROM entries WHERE visual GROUP BY source ORDER BY source"
    code, out = run(str(env["shards"]), "-m", str(env["mixA"]), sql)
    assert code == 0 and "literature" in out and "web-crawl" in out and "2 rows" in out
    code, out = run(str(env["shards"]), "-m", str(env["mixA"]), sql, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["source"] for r in rows] == ["literature", "web-crawl"]
    code, out = run(str(env["shards"]), "SELECT id, labels, text_sha256 FROM segments WHERE id = $id",
                    "--param", "id=web1#0", "--format", "json")
    record = json.loads(out)[0]
    assert code == 0 and record["labels"] == ["visual_concept", "visual_attribute"]
    assert len(record["text_sha256"]) == 64  # bytes as hex
    target = tmp_path / "docs.parquet"
    code, out = run(str(env["shards"]), "SELECT * FROM documents", "--format", "parquet", "--out", str(target))
    assert code == 0 and pl.read_parquet(target).height == 8


def test_query_errors_exit_1_with_the_message(env: dict[str, Path]) -> None:
    code, out = run(str(env["shards"]), "SELECT * FROM segments WHERE")
    assert code == 1 and "syntax error" in out and "LINE 1" in out
    code, out = run(str(env["shards"]), "DROP VIEW segments")
    assert code == 1 and "refused: DROP" in out
    code, out = run(str(env["shards"]), "SELECT * FROM read_csv('/etc/passwd')")
    assert code == 1 and "refused" in out and "/etc/passwd" in out
    code, out = run(str(env["shards"]), "SELECT 1", "--format", "xml")
    assert code == 1 and "unknown --format" in out
    code, out = run(str(env["shards"]), "SELECT 1", "--format", "parquet")
    assert code == 1 and "--out" in out
    code, out = run(str(env["tmp"]), "SELECT 1")
    assert code == 1 and "index.json not found" in out and "foresight curate" in out
    code, out = run(str(env["shards"]))
    assert code == 1 and "--shell" in out


def test_strict_refuses_a_changed_shard(tmp_path: Path) -> None:
    shards = corpus(tmp_path)
    files = sorted((shards / "data").rglob("*.parquet"))
    shutil.copy(files[0], files[1])
    code, out = run(str(shards), "SELECT count(*) FROM segments")
    assert code == 0 and "warning" in out and files[1].name in out
    code, out = run(str(shards), "SELECT count(*) FROM segments", "--strict")
    assert code == 1 and "strict" in out


def test_shell_fed_through_stdin(env: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    history = tmp_path / "history"
    monkeypatch.setenv("FORESIGHT_AUDIT_HISTORY", str(history))
    script = "\n".join([
        ".tables",
        ".schema manifests",
        "SELECT source,",
        "       count(*) AS n FROM segments GROUP BY source ORDER BY n DESC LIMIT 1;",
        ".param src=code",
        "SELECT count(*) AS code_segments FROM segments WHERE source = $src;",
        "COPY segments TO 'x.csv';",
        "SELECT nope FROM segments;",
        ".bogus",
        ".quit",
        "SELECT 'never reached';",
    ]) + "\n"
    code, out = run(str(env["shards"]), "-m", str(env["mixA"]), "--shell", stdin=script)
    assert code == 0, out
    assert "segments" in out and "9 rows" in out  # .tables with row counts
    assert "manifests(manifest VARCHAR" in out  # .schema
    assert "web-crawl" in out  # the two-line statement ran
    assert "code_segments" in out and "│             2 │" in out  # the bound parameter
    assert "refused: COPY" in out and "Referenced column" in out and "unknown command .bogus" in out
    assert "never reached" not in out.replace("SELECT 'never reached'", "")
    lines = history.read_text().splitlines()
    assert ".tables" in lines and any(line.startswith("SELECT source,") for line in lines)


def test_report_writes_markdown_plots_csv_and_passes_checks(env: dict[str, Path], tmp_path: Path) -> None:
    out_dir = tmp_path / "report"
    code, out = run("report", str(env["shards"]), "-m", str(env["mixA"]), "-m", str(env["mixB"]),
                    "--out", str(out_dir))
    assert code == 0, out
    assert "FAIL" not in out and "report.md" in out
    names = {p.name for p in out_dir.iterdir()}
    assert {"report.md", "composition.png", "composition.csv", "manifest_shares.png", "token_lengths.png",
            "scores.png", "drops.csv", "checks.csv"} <= names
    assert (out_dir / "composition.png").read_bytes()[:4] == b"\x89PNG"
    md = (out_dir / "report.md").read_text()
    assert "## Tokens by source × label" in md and "mixA" in md and "## Checks" in md
    comp = pl.read_csv(out_dir / "composition.csv")
    code_tokens = comp.filter((pl.col("source") == "code") & (pl.col("label") == "code_reasoning"))["tokens"][0]
    assert code_tokens == 24


def test_report_fails_a_manifest_with_heldout_docs_and_epoch_repeats(tmp_path: Path) -> None:
    from foresight.formats.splits import is_heldout

    # Doc ids chosen so that some fall in the 2 % held-out split.
    docs = [{"doc_id": f"d{i}", "source": "web", "text": "the red ball", "labels": []} for i in range(200)]
    held = [d["doc_id"] for d in docs if is_heldout(d["doc_id"])]
    assert held
    from tests.helpers import make_shards

    shards = make_shards(tmp_path, docs)
    mdir = make_manifest(tmp_path / "bad", shards, "bad", {"all": {"where": "true", "weight": 1.0}},
                         [("all", f"{held[0]}#0", 0), ("all", "d1#0", 0), ("all", "d1#0", 0)])
    code, out = run("report", str(shards), "-m", str(mdir), "--out", str(tmp_path / "rep"))
    assert code == 2
    assert "FAIL no held-out document" in out and held[0] in out
    assert "FAIL no segment twice in one epoch" in out and "d1#0" in out
    checks = pl.read_csv(tmp_path / "rep" / "checks.csv")
    assert checks.filter(pl.col("result") == "FAIL").height == 2


def test_sql_from_stdin(env: dict[str, Path]) -> None:
    code, out = run(str(env["shards"]), "-", "--format", "csv", stdin="SELECT count(*) AS n FROM documents\n")
    assert code == 0 and out.splitlines() == ["n", "8"]


def test_shell_in_a_real_process_with_piped_stdin(env: dict[str, Path], tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    script = ".schema pools\nSELECT count(*) AS n_docs\n  FROM documents;\n.quit\n"
    proc = subprocess.run([sys.executable, "-m", "foresight.cli", "audit", str(env["shards"]), "--shell"],
                          input=script, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "FORESIGHT_AUDIT_HISTORY": str(tmp_path / "h"), "COLUMNS": "100"})
    assert proc.returncode == 0, proc.stderr
    assert "pools(manifest VARCHAR, pool VARCHAR" in proc.stdout and "n_docs" in proc.stdout
    assert "│      8 │" in proc.stdout
    assert (tmp_path / "h").read_text().splitlines()[-1] == ".quit"


SLOW = "SELECT sum(i) FROM range(1000000000000) t(i)"  # hours of work: only a limit ends it


def test_time_limit_stops_a_runaway_query(env: dict[str, Path]) -> None:
    code, out = run(str(env["shards"]), SLOW, "--timeout", "1")
    assert code == 1 and "query stopped after 1 s" in out and "--timeout" in out and "Traceback" not in out
    from foresight.audit import AuditError, connect

    with connect(env["shards"], timeout_s=0.5) as audit, pytest.raises(AuditError, match="stopped after 0.5 s"):
        audit.query(SLOW)


@pytest.mark.slow
def test_ctrl_c_stops_a_query_with_one_line(env: dict[str, Path]) -> None:
    import signal
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-c", "from foresight.cli import main; main()", "audit", str(env["shards"]), SLOW,
           "--timeout", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(4)  # imports, connect, then the query is running
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "query interrupted (Ctrl-C)" in out and "Traceback" not in out, out


def test_memory_limit_is_set_and_checked(env: dict[str, Path]) -> None:
    code, out = run(str(env["shards"]), "SELECT current_setting('memory_limit') AS m", "--memory-limit", "1GB",
                    "--format", "csv")
    assert code == 0 and "953.6 MiB" in out
    code, out = run(str(env["shards"]), "SELECT 1", "--memory-limit", "lots")
    assert code == 1 and "--memory-limit 'lots' is not a size" in out


@pytest.mark.parametrize("ram_mb,expected", [(64 * 1024, "8192MB"), (4 * 1024, "1024MB"), (512, "256MB")])
def test_default_memory_limit_is_a_quarter_of_ram_at_most_8gb_and_as_much_spill(
        env: dict[str, Path], monkeypatch: pytest.MonkeyPatch, ram_mb: int, expected: str) -> None:
    import os

    import duckdb

    from foresight.formats import sql

    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": ram_mb * 2**20 // 4096}
    monkeypatch.setattr(os, "sysconf", lambda name: pages[name])
    assert sql.default_memory_limit() == expected
    monkeypatch.undo()
    code, out = run(str(env["shards"]), "SELECT current_setting('memory_limit') AS m, "
                    "current_setting('max_temp_directory_size') AS t", "--format", "json")
    assert code == 0, out
    plain = duckdb.connect()
    plain.execute("SET memory_limit = $m", {"m": sql.default_memory_limit()})
    shown = plain.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert json.loads(out)[0] == {"m": shown, "t": shown}
