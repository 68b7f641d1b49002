"""Figures (pedjax.plots) on real digits features (the quickstart notebook: tests/test_notebook.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import pedjax
from pedjax import plots

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    src, tgt = slice(0, 600), slice(600, 1200)
    pca = PCA(12, random_state=0).fit(X[src])
    S, F = pca.transform(X[src]), pca.transform(X[tgt])
    return F, y[tgt], S.mean(0), S.std(0)


def test_scores_vs_truth_png_and_tau_in_title(tmp_path):
    from pedjax.rank import weighted_tau

    rng = np.random.default_rng(0)
    truth = {f"model-{i}": float(v) for i, v in enumerate(rng.uniform(60, 90, 12))}
    scores = {"logme": {k: v + rng.normal(0, 5) for k, v in truth.items()}, "sfda": {k: -v for k, v in truth.items()}}
    fig = plots.scores_vs_truth(scores, truth)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0] == f"logme   τ_w = {weighted_tau(scores['logme'], truth):+.3f}" and titles[1] == "sfda   τ_w = -1.000"
    path = plots.scores_vs_truth(scores, truth, tmp_path / "s.png")
    assert Path(path).read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="fewer than 2 models"):
        plots.scores_vs_truth({"x": {"a": 1.0, "zzz": 2.0}}, {"a": 1.0})


def test_ped_trajectory_and_clusters(digits, tmp_path):
    F, y, mean, std = digits
    cfg = pedjax.PEDConfig(nsigma=1.0)
    res = pedjax.ped(F, y, mean, std, cfg)
    assert int(res.steps) >= 2
    # a model whose classes do not overlap at all: PED does not move it (drawn as such, not as NaN)
    far = np.repeat(np.eye(3) * 100.0, 20, axis=0) + np.random.default_rng(0).normal(0, 0.1, (60, 3))
    still = pedjax.ped(far, np.repeat(np.arange(3), 20), None, None, cfg)
    assert float(np.asarray(still.change)[0]) == 0.0
    fig = plots.ped_trajectory({"pca-12": res, "separated": still}, exit_ratio=cfg.exit_ratio)
    assert "not moved: separated" in fig.get_suptitle()
    line = fig.axes[0].get_lines()[0]
    change = np.asarray(res.change)[: int(res.steps)]
    np.testing.assert_allclose(line.get_ydata(), change / change[0])
    p = plots.ped_trajectory({"pca-12": res}, tmp_path / "t.png")
    assert Path(p).read_bytes()[:8] == PNG
    p = plots.cluster_projection(F, y, res, mean, std, tmp_path / "c.png", eps=cfg.eps)
    assert Path(p).read_bytes()[:8] == PNG and Path(p).stat().st_size > 20_000
    # two classes (one principal axis of the centres) still give a 2-D picture
    two = y < 2
    r2 = pedjax.ped(F[two], y[two], mean, std, cfg)
    fig = plots.cluster_projection(F[two], y[two], r2, mean, std)
    assert len(fig.axes) == 2
    fig = plots.score_ranking({"a": 0.3, "b": -0.1, "c": 0.9})
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["b", "a", "c"]
