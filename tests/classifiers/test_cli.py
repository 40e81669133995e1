"""``foresight classify`` end to end on tiny shards (rules teacher → train → distill → eval → rates)."""

import json

import numpy as np
import pyarrow.parquet as pq
from typer.testing import CliRunner

from foresight.classifiers.labelsio import write_labels
from foresight.cli import app
from foresight.formats.taxonomy import LABEL_NAMES
from tests.classifiers.conftest import EXAMPLES, NONE_TEXT
from tests.helpers import make_shards

runner = CliRunner()


def shards(tmp_path, with_labels=False):
    texts = list(EXAMPLES.values()) + [NONE_TEXT]
    docs = [{"text": f"{t} ({i})", "source": ["code", "literature", "web-crawl"][i % 3]}
            for i in range(28) for t in [texts[i % len(texts)]]]
    if with_labels:
        from foresight.classifiers.base import annotate
        from foresight.classifiers.teacher.rules import RulesTeacher
        t = RulesTeacher()
        for d, s in zip(docs, t.predict_scores([d["text"] for d in docs]), strict=True):
            d.update(annotate(s, t.thresholds))
    return make_shards(tmp_path, docs, with_labels=with_labels)


def run(*args):
    res = runner.invoke(app, list(map(str, args)))
    assert res.exit_code == 0, res.output
    return res.output


def test_teach_train_distill_eval(tmp_path):
    root = shards(tmp_path)
    labels = tmp_path / "labels.parquet"
    out = run("classify", "teach", root, "--sample", 0, "--out", labels)
    assert "28 segments labelled by rules" in out
    t = pq.read_table(labels)
    assert t.num_rows == 28 and "votes" in t.column_names and sum(t.column("code_reasoning").to_pylist()) == 4
    model = tmp_path / "model"
    run("classify", "train", labels, "--out", model, "--max-steps", 1, "--batch-size", 4, "--max-length", 32,
        "--threads", 1, "--device", "cpu")
    assert (model / "foresight_classifier.json").exists()
    ft = tmp_path / "ft.bin"
    out = run("classify", "distill", "rules", root, "--out", ft, "--sample", 0, "--epoch", 10)
    assert ft.exists() and "distill:" in out
    # grade against labels written by hand (EXAMPLES' intended label), not against the rules' own output
    gold = tmp_path / "gold.parquet"
    names = list(EXAMPLES) + ["none"]
    y = np.array([[int(n == lab) for lab in LABEL_NAMES] for n in names], dtype=np.int8)
    write_labels(gold, names, names, ["test"] * len(names), [EXAMPLES.get(n, NONE_TEXT) for n in names], y)
    res = json.loads(run("classify", "eval", "rules", "--gold", gold, "--against", ft, "--json"))
    per = res["rules"]["per_label"]
    assert res["rules"]["n"] == 7 and per["code_reasoning"]["f1"] == 1.0 and per["math_reasoning"]["recall"] == 1.0
    assert res["rules"]["macro_f1"] == np.mean([v["f1"] for v in per.values()])
    assert set(res["kappa"]["per_label"]) >= {"code_reasoning", "mean"}
    out = run("classify", "eval", model, "--gold", labels, "--device", "cpu")
    assert "macro-F1=" in out


def test_rates_from_stored_labels_and_on_the_fly(tmp_path):
    from foresight.classifiers.evaluate import TABLE4_COLUMNS
    from foresight.formats.taxonomy import labels_in

    root = shards(tmp_path, with_labels=True)
    out = run("classify", "rates", root)
    rows = [r for f in sorted((root / "data").rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    for source in ("code", "literature", "web-crawl"):
        mine = [set(r["labels"]) for r in rows if r["source"] == source]
        want = {c: 100 * np.mean([bool(labs & set(labels_in(c))) if c in ("reasoning", "visual") else c in labs
                                  for labs in mine]) for c in TABLE4_COLUMNS}
        line = next(ln.split() for ln in out.splitlines() if ln.split()[:1] == [source])
        assert int(line[1]) == len(mine) and line[2:] == [f"{want[c]:.1f}" for c in TABLE4_COLUMNS], (source, line)
    out2 = run("classify", "rates", tmp_path / "shards", "--model", "rules")
    assert out2.split("\n")[3:] == out.split("\n")[3:]


def test_user_errors_are_one_line(tmp_path):
    root = shards(tmp_path)
    res = runner.invoke(app, ["classify", "rates", str(root)])
    assert res.exit_code == 1 and "no columns" in res.output
    res = runner.invoke(app, ["classify", "train", str(tmp_path / "nope.parquet")])
    assert res.exit_code == 1 and "does not exist" in res.output
    res = runner.invoke(app, ["classify", "eval", str(tmp_path / "nomodel"), "--gold", str(tmp_path / "x.parquet")])
    assert res.exit_code == 1 and "does not exist" in res.output
    res = runner.invoke(app, ["classify", "teach", str(root), "--teacher", "llm"])
    assert res.exit_code == 1 and "--endpoint" in res.output
