import json

from typer.testing import CliRunner

from foresight.cli import app
from foresight.formats.hashing import sha256_file
from foresight.formats.tokenizer import EOS, load_tokenizer


def _corpus(tmp_path):
    d = tmp_path / "corpus" / "literature"
    d.mkdir(parents=True)
    lines = [json.dumps({"text": f"the knight rode {i} miles into the green forest and sang"}) for i in range(50)]
    (d / "a.jsonl").write_text("\n".join(lines + ["not json", "[1, 2]"]) + "\n")
    (d / "notes.txt").write_text("plain text files are read whole\n")
    (tmp_path / "corpus" / "metadata.json").write_text('{"pretty": true,\n "not": "read"}')
    return tmp_path / "corpus"


def test_train_is_deterministic_and_skips_bad_lines(tmp_path):
    corpus = _corpus(tmp_path)
    runner = CliRunner()
    outs = []
    for name in ("t1.json", "t2.json"):
        res = runner.invoke(app, ["tokenizer", "train", str(corpus), "--vocab-size", "300", "--out",
                                  str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        assert "skipped 2 line(s)" in res.output
        outs.append(tmp_path / name)
    assert sha256_file(outs[0]) == sha256_file(outs[1])
    tok, info = load_tokenizer(outs[0])
    assert info.eos_id == tok.token_to_id(EOS)
    assert tok.decode(tok.encode("the green forest").ids) == "the green forest"


def test_missing_input_is_a_one_line_error(tmp_path):
    res = CliRunner().invoke(app, ["tokenizer", "train", str(tmp_path / "nope"), "--out", str(tmp_path / "t.json")])
    assert res.exit_code == 1
    assert "does not exist" in res.output


def test_find_tokenizer_reads_the_index_through_its_checks(tmp_path):
    """A broken index.json is the index's own one-line error (ShardIndexError), not a JSON traceback."""
    import pytest

    from foresight.formats.errors import ForesightError
    from foresight.formats.tokenizer import find_tokenizer

    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "index.json").write_text("{not json")
    with pytest.raises(ForesightError, match="index.json"):
        find_tokenizer(shards, None, "0" * 64)
