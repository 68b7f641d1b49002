"""The optax meta-learner and learned-config files (pedjax.meta), small and fast. soft_weighted_tau:
tests/test_rank.py; ``pedjax meta``: tests/test_cli_meta.py."""
from __future__ import annotations

import json

import numpy as np
import pytest

import pedjax
from pedjax import meta, rank
from pedjax.features import FeatureSet


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
# config files


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


def test_meta_study_loto_rows(learner):
    """experiments/meta_study.py's leave-one-task-out table: one row per held-out task, named by the
    task, its default and learned τ_w equal to the learner's exact τ_w (a FeatureSet names its task
    in ``.task``; the study once read a ``.name`` that no longer exists)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "experiments" / "meta_study.py"
    spec = importlib.util.spec_from_file_location("meta_study", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = mod.loto(learner, 2)
    assert [r["task"] for r in rows] == [t.task for t in learner.tasks]
    default = learner.taus(learner.base)
    for k, r in enumerate(rows):
        assert r["default"] == pytest.approx(default[k])
        assert set(r["config"]) == set(learner.learn) and all(v > 0 for v in r["config"].values())
