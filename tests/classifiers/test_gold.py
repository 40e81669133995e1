"""The shipped hand-labelled gold set is well-formed and covers every label."""

from pathlib import Path

import numpy as np

from foresight.classifiers.labelsio import read_labels
from foresight.formats.taxonomy import LABEL_NAMES

GOLD = Path(__file__).resolve().parents[1] / "data" / "gold.parquet"


def test_gold_set_size_coverage_and_consistency():
    assert GOLD.stat().st_size < 1_000_000
    table, texts, y = read_labels(GOLD)
    assert len(texts) >= 600 and y.shape == (len(texts), len(LABEL_NAMES))
    assert (y.sum(0) >= 25).all(), dict(zip(LABEL_NAMES, y.sum(0).tolist(), strict=True))
    assert all(0 < len(t) <= 1500 for t in texts)
    ids = table.column("id").to_pylist()
    assert len(set(ids)) == len(ids) and all(table.column("doc_id").to_pylist())
    # the six LSBS sources, food, and "other" (man pages, /usr/share/doc files: text from outside the corpus)
    assert set(table.column("source").to_pylist()) == {"code", "math", "academia", "literature", "encyclopedia",
                                                        "web-crawl", "food", "other"}
    listed = table.column("labels").to_pylist()
    assert listed == [[n for n, v in zip(LABEL_NAMES, row, strict=True) if v] for row in y.tolist()]
    assert np.isin(y, (0, 1)).all()
