"""``pedjax plot trajectory|clusters|scatter`` in process on real data (tests/digits_results.py)."""
from __future__ import annotations

import json

import pytest

from digits_results import DATASET, PNG, build, expected, ok


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return build(tmp_path_factory.mktemp("plot"))


def test_plot_subcommands(zoo, capsys):
    out = zoo["root"] / "plots"
    ok(capsys, "plot", "trajectory", "--results-dir", zoo["results"], "--dataset", DATASET, "--out", out / "t.png")
    assert ok(capsys, "plot", "clusters", "--results-dir", zoo["results"], "--dataset", DATASET, "--model", "pca-16", "--nsigma", "2", "--out", out / "c.png").strip() == str(out / "c.png")
    scores = zoo["root"] / "logme_scores.json"
    scores.write_text(json.dumps({"metric": "logme", "dataset": DATASET, "scores": expected(zoo, "logme", None)}))
    ok(capsys, "plot", "scatter", "--scores", scores, "--truth", zoo["root"] / "truth.json", "--out", out / "s.png")
    for name in ("t.png", "c.png", "s.png"):
        assert (out / name).read_bytes()[:8] == PNG
