"""soft_weighted_tau, the optax meta-learner, config files and the CLI (small and fast)."""
from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np
import pytest
import scipy.stats

import pedjax
from pedjax import meta, rank
from pedjax.features import FeatureSet
from pedjax.cli import main


# ----------------------------------------------------------------------------------------------
# soft weighted tau


def test_soft_weighted_tau_tends_to_scipy():
    rng = np.random.default_rng(0)
    for i in range(24):
        n = (2, 7, 19)[i % 3]  # few shapes: each new shape compiles JAX's eager ops
        s = rng.normal(size=n)
        t = rng.integers(0, 4, n).astype(float) if i % 2 == 0 else rng.normal(size=n)  # ties in truth too
        if np.ptp(t) == 0:
            continue  # constant truth: SciPy's τ is NaN
        want = scipy.stats.weightedtau(s, t)[0]
        got = float(rank.soft_weighted_tau(s, t, 1e-7))
        assert got == pytest.approx(want, abs=1e-9), (s, t)
    # monotone approach as the temperature shrinks, on one example
    s, t = rng.normal(size=7), rng.normal(size=7)
    want = rank.weighted_tau(s, t)
    errs = [abs(float(rank.soft_weighted_tau(s, t, T)) - want) for T in (1.0, 0.1, 0.01, 1e-4)]
    assert errs[-1] < 1e-6 and errs[0] > errs[-1]


def test_soft_weighted_tau_weight_convention():
    """The top of the ranking weighs most (rank 0 = largest, w = 1/(r+1)), and the two passes are
    averaged: swapping the top pair costs more than swapping the bottom pair, exactly as SciPy."""
    t = np.arange(8.0)[::-1]  # element 0 is the best
    top = np.array([6.0, 7, 5, 4, 3, 2, 1, 0])  # top two swapped
    bottom = np.array([7.0, 6, 5, 4, 3, 2, 0, 1])  # bottom two swapped
    for s in (top, bottom):
        assert float(rank.soft_weighted_tau(s, t, 1e-6)) == pytest.approx(scipy.stats.weightedtau(s, t)[0], abs=1e-10)
    assert float(rank.soft_weighted_tau(top, t, 1e-6)) < float(rank.soft_weighted_tau(bottom, t, 1e-6))
    # not symmetric in a one-sided (x-only) weighting, but SciPy's rank=True is: so is ours
    s = np.array([0.3, 2.0, 1.1, -0.4, 0.9])
    u = np.array([1.0, 0.2, 3.0, 2.5, 0.1])
    assert float(rank.soft_weighted_tau(s, u, 1e-7)) == pytest.approx(float(rank.soft_weighted_tau(u, s, 1e-7)), abs=1e-10)


def test_soft_weighted_tau_gradient():
    rng = np.random.default_rng(1)
    s, t = rng.normal(size=9), rng.normal(size=9)
    f = lambda s: rank.soft_weighted_tau(s, t, 0.3)
    g = np.asarray(jax.grad(f)(s))
    V = rng.normal(size=9)
    h = 1e-6
    fd = (float(f(s + h * V)) - float(f(s - h * V))) / (2 * h)
    assert float(g @ V) == pytest.approx(fd, rel=1e-6)
    # raising the truly-best model's score raises τ
    assert g[np.argmax(t)] > 0
    with pytest.raises(ValueError, match="scores/truth"):
        rank.soft_weighted_tau(s, t[:5], 0.1)


# ----------------------------------------------------------------------------------------------
# the meta-learner on a small synthetic zoo


def _tasks(n_tasks=2, seed=0):
    """Models = noisy views of class-structured data; truth = how separable they are (known)."""
    rng = np.random.default_rng(seed)
    tasks = []
    for k in range(n_tasks):
        C, n, d = 3, 45, 4
        y = np.arange(n) % C
        centers = rng.standard_normal((C, d))
        feats, stats, truth = {}, {}, {}
        for m, (sep, dim) in enumerate([(0.3, 4), (0.6, 4), (1.0, 4), (0.45, 6), (0.8, 6)]):
            c = np.pad(centers, ((0, 0), (0, dim - d))) if dim > d else centers
            X = rng.standard_normal((n, dim)) + sep * 2 * c[y]
            feats[f"m{m}"] = X
            stats[f"m{m}"] = (X.mean(0) + 0.1, X.std(0) * 1.3)
            truth[f"m{m}"] = sep + 0.05 * rng.normal()
        tasks.append(FeatureSet(feats, y, stats, truth=truth, task=f"t{k}"))
    return tasks


@pytest.fixture(scope="module")
def learner():
    return meta.MetaLearner(_tasks(), "logme", pedjax.PEDConfig(time_step=0.5), temperature=0.5, learning_rate=0.1)


def test_meta_learner_compiles_once_and_improves(learner):
    theta = learner.theta0()
    (loss0, _), _ = learner.value_and_grad(theta, learner.weights())
    res = learner.fit(steps=5)
    res2 = learner.fit(steps=3, weights=learner.weights(holdout=0))  # a leave-one-out fold: same executable
    assert learner.traces == 1
    assert len(res.history) == 6 and len(res2.history) == 4
    assert min(h["loss"] for h in res.history) <= float(loss0) + 1e-12
    assert all(np.isfinite(h["loss"]) for h in res.history + res2.history)
    for k in meta.DEFAULT_LEARN:
        assert getattr(res.config, k) > 0
    # the history's hyperparameters move
    assert res.history[-1]["nsigma"] != res.history[0]["nsigma"]


def test_meta_gradient_matches_finite_differences(learner):
    theta = learner.theta0()
    w = learner.weights()
    (_, _), g = learner.value_and_grad(theta, w)
    for k in ("nsigma", "constant"):
        h = 1e-5
        lp = float(learner.value_and_grad({**theta, k: theta[k] + h}, w)[0][0])
        lm = float(learner.value_and_grad({**theta, k: theta[k] - h}, w)[0][0])
        fd = (lp - lm) / (2 * h)
        assert float(g[k]) == pytest.approx(fd, rel=1e-4, abs=1e-9)


def test_meta_scores_equal_score_zoo(learner):
    """The learner's scores are pedjax.score_zoo's (the scan path == the while path)."""
    cfg = pedjax.PEDConfig(time_step=0.5, nsigma=0.8)
    t = learner.tasks[0]
    want = pedjax.score_zoo(t.features, t.labels, "logme", ped=cfg, source_stats=t.source_stats)
    got = learner.scores(cfg)[0]
    for m in want:
        assert got[m] == pytest.approx(want[m], rel=1e-10, abs=1e-12)
    taus = learner.taus(cfg)
    assert taus[0] == pytest.approx(rank.weighted_tau([got[m] for m in got], [t.truth[m] for m in got]))


def test_bad_arguments():
    tasks = _tasks(1)
    with pytest.raises(ValueError, match="learn"):
        meta.MetaLearner(tasks, learn=("exit_ratio",))
    with pytest.raises(ValueError, match="metric"):
        meta.MetaLearner(tasks, metric="leep")
    with pytest.raises(ValueError, match="tasks"):
        meta.MetaLearner([])


# ----------------------------------------------------------------------------------------------
# config files and the CLI


def test_save_load_roundtrip(tmp_path):
    cfg = pedjax.PEDConfig(nsigma=0.4123456789012345, constant=1.7, time_step=0.21, variant="paper", max_steps=5)
    p = meta.save_config(tmp_path / "sub" / "cfg.json", cfg, metric="logme")
    assert meta.load_config(p) == cfg
    assert not [f for f in p.parent.iterdir() if f.name != "cfg.json"]  # no temp files left
    obj = json.loads(p.read_text())
    assert obj["format"] == meta.FORMAT and obj["meta"]["metric"] == "logme"
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"nsigma": 0.3}))
    assert meta.load_config(bare) == pedjax.PEDConfig(nsigma=0.3)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"config": {"nsigmaa": 0.3}}))
    with pytest.raises(ValueError, match="nsigmaa"):
        meta.load_config(bad)
    bad.write_text(json.dumps({"nsigma": "big"}))
    with pytest.raises(ValueError, match="nsigma"):
        meta.load_config(bad)
    with pytest.raises(FileNotFoundError):
        meta.load_config(tmp_path / "none.json")


def test_save_load_orbax_checkpoint(tmp_path):
    """A path without .json is an orbax checkpoint directory holding the same object; saving
    again overwrites it; a directory that is no such checkpoint is a clear error."""
    cfg = pedjax.PEDConfig(nsigma=0.4123456789012345, constant=1.7, time_step=0.21, variant="paper", max_steps=5)
    d = meta.save_config(tmp_path / "learned", cfg, metric="sfda")
    assert d.is_dir() and meta.load_config(d) == cfg
    cfg2 = cfg.replace(nsigma=0.9)
    meta.save_config(d, cfg2)
    assert meta.load_config(d) == cfg2
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="orbax"):
        meta.load_config(tmp_path / "empty")


def test_cli_learn_then_score_with_ped_config(tmp_path, capsys):
    from pedjax.features import save_npz_zoo

    t = _tasks(1)[0]
    zoo = save_npz_zoo(tmp_path / "zoo.npz", {m: X for m, X in t.features.items() if X.shape[1] == 4}, t.labels,
                       {m: s for m, s in t.source_stats.items()}, dataset="toy")
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({"toy": t.truth}))
    out = tmp_path / "learned.json"
    rc = main(["meta", "learn", "--zoo", str(zoo), "--truth", str(truth), "--steps", "1", "--lr", "0.1",
               "--out", str(out), "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    cfg = meta.load_config(out)
    assert res["config"] == dataclasses.asdict(cfg)
    rc = main(["score", "--zoo", str(zoo), "--metric", "logme", "--ped-config", str(out), "--json"])
    assert rc == 0
    got = json.loads(capsys.readouterr().out)
    assert got["ped"]["nsigma"] == cfg.nsigma and got["ped"]["constant"] == cfg.constant
    feats = {m: X for m, X in t.features.items() if X.shape[1] == 4}
    want = pedjax.score_zoo(feats, t.labels, "logme", ped=cfg, source_stats=t.source_stats)
    for m in want:
        assert got["scores"][m] == pytest.approx(want[m], rel=1e-12)
    assert main(["score", "--zoo", str(zoo), "--ped-config", str(out), "--nsigma", "0.3"]) == 2
    assert main(["score", "--zoo", str(zoo), "--ped-config", str(tmp_path / "missing.json")]) == 2
    assert main(["meta", "show", str(out)]) == 0
