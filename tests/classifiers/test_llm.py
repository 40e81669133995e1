"""The LLM teacher against a loopback OpenAI-compatible server started by the test."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from foresight.classifiers.teacher.llm import LLMTeacher, MalformedAnswer, parse_answer
from foresight.formats.taxonomy import LABEL_NAMES

GOOD = json.dumps({n: int(n == "math_reasoning") for n in LABEL_NAMES})


class FakeServer:
    """Answers by the first word of the user message: ok, fenced, flaky (garbage once), garbage, slow, 400."""

    def __init__(self):
        self.calls: list[str] = []
        self.seen: dict[str, int] = {}
        self.auth: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = body["messages"][-1]["content"]
                server.calls.append(text)
                server.auth.append(self.headers.get("Authorization"))
                n = server.seen[text] = server.seen.get(text, 0) + 1
                kind = text.split()[0]
                if kind == "bad-request":
                    return self._send(400, {"error": "no such model"})
                if kind == "slow":
                    time.sleep(0.5)
                content = {"ok": GOOD, "slow": GOOD, "fenced": f"Sure!\n```json\n{GOOD}\n```",
                           "flaky": GOOD if n > 1 else "I think it is maths", "garbage": '{"math": "yes"}'}[kind]
                self._send(200, {"choices": [{"message": {"role": "assistant", "content": content}}]})

            def _send(self, code, obj):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture()
def server():
    s = FakeServer()
    yield s
    s.httpd.shutdown()


def teacher(server, tmp_path, **kw):
    return LLMTeacher(server.url, "test-model", cache_dir=tmp_path / "cache", backoff_s=0.01, **kw)


def test_parse_answer_accepts_only_the_six_labels():
    assert parse_answer(GOOD) == [0, 0, 0, 0, 1, 0]
    assert parse_answer(f"```json\n{GOOD}\n```") == [0, 0, 0, 0, 1, 0]
    for bad in ["no json", "{", '{"math": 1}', json.dumps({n: 0.7 for n in LABEL_NAMES}),
                json.dumps({n: "1" for n in LABEL_NAMES})]:
        with pytest.raises(MalformedAnswer):
            parse_answer(bad)


def test_labels_retries_malformed_and_caches(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "sekret")
    t = teacher(server, tmp_path, api_key_env="TEST_KEY", concurrency=3)
    texts = ["ok one", "fenced two", "flaky three", "ok four", ""]
    out = t.label(["a", "b", "c", "d", "e"], texts)
    assert out[:4] == [[0, 0, 0, 0, 1, 0]] * 4 and out[4] == [0] * 6  # empty text: no request, no label
    assert t.stats.malformed == 1 and t.stats.retries == 1 and t.stats.errored == []
    assert t.stats.empty == 1 and server.auth[0] == "Bearer sekret"
    n_calls = len(server.calls)
    again = teacher(server, tmp_path)  # a new run re-uses the on-disk cache
    assert again.label(["a", "b", "c", "d"], texts[:4]) == out[:4]
    assert len(server.calls) == n_calls and again.stats.cached == 4


def test_garbage_timeouts_and_client_errors_are_errored_with_ids(server, tmp_path):
    t = teacher(server, tmp_path, max_retries=2, timeout_s=0.2)
    out = t.label(["g1", "s1", "b1", "k1"], ["garbage x", "slow y", "bad-request z", "ok w"])
    assert out[0] is None and out[1] is None and out[2] is None and out[3] == [0, 0, 0, 0, 1, 0]
    assert sorted(t.stats.errored) == ["b1", "g1", "s1"]
    assert server.seen["garbage x"] == 3 and server.seen["slow y"] == 3  # 1 try + 2 retries each
    assert server.seen["bad-request z"] == 1  # a 4xx is not retried
    assert t.stats.malformed == 3
    with pytest.raises(RuntimeError, match="failed on segments"):
        teacher(server, tmp_path, max_retries=0).predict_scores(["garbage again"])


def test_predict_scores_and_validation(server, tmp_path):
    t = teacher(server, tmp_path)
    s = t.predict_scores(["ok a", "ok b"])
    assert s.shape == (2, 6) and s.dtype == np.float32 and s[:, 4].tolist() == [1.0, 1.0]
    assert t.info()["kind"] == "llm"
    with pytest.raises(ValueError, match="http"):
        LLMTeacher("localhost:8000", "m")
    long = LLMTeacher(server.url, "m", max_chars=10, backoff_s=0.01)
    assert long.label(["x"], ["ok " + "word " * 50]) == [[0, 0, 0, 0, 1, 0]] and long.truncated == 1


def test_cli_teach_with_llm_leaves_out_errored_segments(server, tmp_path):
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from foresight.cli import app
    from tests.helpers import make_shards

    root = make_shards(tmp_path, [{"text": t, "source": "web-crawl"} for t in ["ok a", "garbage b", "fenced c"]],
                       with_labels=False)
    out = tmp_path / "llm.parquet"
    res = CliRunner().invoke(app, ["classify", "teach", str(root), "--teacher", "llm", "--endpoint", server.url,
                                   "--model", "m", "--sample", "0", "--max-retries", "1", "--cache-dir",
                                   str(tmp_path / "c"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "errored=1" in res.output and "doc000001#0" in res.output
    t = pq.read_table(out)
    assert t.column("text").to_pylist() == ["ok a", "fenced c"] and t.column("math_reasoning").to_pylist() == [1, 1]
