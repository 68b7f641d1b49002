"""``pedjax evaluate`` in process: pedjax and published-layout score files against ground truth,
the shipped ssl-transfer table (tw.py's evaluation), and its one-line errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.stats

import pedjax
from pedjax import rank
from digits_results import DATASET, PNG, build, expected, main_err, ok


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return build(tmp_path_factory.mktemp("evaluate"))


def test_evaluate_pedjax_and_published_scores(zoo, capsys):
    # a published-layout scores file: results_metrics_cr/{metric}/{dataset}_metrics.json
    pub = zoo["root"] / "results_metrics_cr" / "logme" / f"{DATASET}_metrics.json"
    pub.parent.mkdir(parents=True)
    logme = expected(zoo, "logme", None)
    pub.write_text(json.dumps({**logme, "duration": 1.5}))
    scores = zoo["root"] / "sfda_ped.json"  # what `pedjax score --json` writes
    scores.write_text(json.dumps({"metric": "sfda", "ped": {"nsigma": 0.6}, "dataset": DATASET, "scores": expected(zoo, "sfda", pedjax.PEDConfig())}))
    figs = zoo["root"] / "figs_eval"
    out = json.loads(ok(capsys, "evaluate", "--scores", scores, "--scores", pub, "--truth", zoo["root"] / "truth.json", "--json", "--plot", figs))
    assert out["dataset"] == DATASET and set(out["results"]) == {"sfda+ped", "logme"}
    truth = zoo["truth"]
    for label, s in (("logme", logme), ("sfda+ped", json.loads(scores.read_text())["scores"])):
        r = out["results"][label]
        models = list(s)
        x, t = [s[m] for m in models], [truth[m] for m in models]
        assert r["models"] == 4
        assert r["weighted_tau"] == pytest.approx(scipy.stats.weightedtau(x, t)[0], abs=1e-12)
        assert r["kendall_tau"] == pytest.approx(scipy.stats.kendalltau(x, t).statistic, abs=1e-12)
        assert r["pearson"] == pytest.approx(scipy.stats.pearsonr(x, t).statistic, abs=1e-12)
        assert r["top1"] == rank.top_k(x, t, 1) and r["top3"] == rank.top_k(x, t, 3)
        assert r["rel1"] == pytest.approx(rank.rel_k(x, t, 1)) and r["rel3"] == pytest.approx(rank.rel_k(x, t, 3))
        assert r["pick"] == max(s, key=s.get)
    png = figs / "scores_vs_truth.png"
    assert png.read_bytes()[:8] == PNG and png.stat().st_size > 10_000


def test_evaluate_ssl_transfer_matches_tw_py(tmp_path, capsys):
    """The shipped table reproduces tw.py's evaluation: weightedtau(score, finetune_acc[dset])."""
    from pedjax.rank import truth_tables

    tables, _ = truth_tables("ssl-transfer")
    assert len(tables) == 11 and all(len(v) == 12 for v in tables.values())
    assert tables["cifar10"]["byol"] == 96.98 and tables["voc2007"]["swav"] == 85.06 and tables["sun397"]["insdis"] == 51.62
    rng = np.random.default_rng(1)
    score = {m: float(v) for m, v in zip(tables["cifar10"], rng.standard_normal(12))}
    d = tmp_path / "PED"
    d.mkdir()
    (d / "cifar10_metrics.json").write_text(json.dumps(score))
    out = ok(capsys, "evaluate", "--scores", d / "cifar10_metrics.json", "--truth", "ssl-transfer")  # dataset from the file name; table output
    gt = tables["cifar10"]
    tw = scipy.stats.weightedtau(list(score.values()), [gt[m] for m in score])[0]
    assert "PED" in out and f"{tw:+.3f}" in out and "ssl-transfer" in out


def test_evaluate_errors_one_line(tmp_path, capsys):
    (tmp_path / "s.json").write_text(json.dumps({"byol": 1.0, "swav": 2.0}))
    err = main_err(capsys, "evaluate", "--scores", tmp_path / "s.json", "--truth", "ssl-transfer", "--dataset", "mnist")
    assert "no dataset 'mnist'" in err and "cifar10" in err and "voc2007" in err
    err = main_err(capsys, "evaluate", "--scores", tmp_path / "none.json", "--truth", "ssl-transfer")
    assert "no file" in err
