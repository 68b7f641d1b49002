"""pedjax.rank.benchmark: the one loop over FeatureSets × metrics × PED configs."""
import numpy as np
import pytest
import scipy.stats

import pedjax
from pedjax.features import FeatureSet
from pedjax.rank import benchmark


def _set(with_dead: bool):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    feats = {f"m{i}": rng.standard_normal((120, 6)) + (i + 1) * 0.4 * np.eye(3, 6)[y] for i in range(4)}
    if with_dead:
        feats["dead"] = np.zeros((120, 6))
    truth = {m: 0.5 + 0.1 * i for i, m in enumerate(feats)}
    stats = {m: (np.zeros(6), np.ones(6)) for m in feats}
    return FeatureSet(feats, y, stats, truth=truth, task="toy")


def test_scores_and_tau_equal_the_parts():
    fs = _set(False)
    res = benchmark(fs, ["logme", "gbc"], {"ped": pedjax.PEDConfig()})
    assert res.variants == ["gbc", "gbc+ped", "logme", "logme+ped"] and not res.errors and not res.unscored
    for name, metric, cfg in (("logme", "logme", None), ("logme+ped", "logme", pedjax.PEDConfig()), ("gbc", "gbc", None)):
        direct = pedjax.score_zoo(fs.features, fs.labels, metric, ped=cfg, source_stats=fs.source_stats if cfg else None)
        assert res.scores["toy"][name] == pytest.approx(direct, rel=1e-12)
        m = list(fs.features)
        assert res.tau[name]["toy"] == pytest.approx(scipy.stats.weightedtau([direct[k] for k in m], [fs.truth[k] for k in m])[0])


def test_a_degenerate_model_ranks_last_and_the_rest_is_judged():
    """A dead model scores -inf: the variant is not an error, the model counts as ranked last."""
    fs = _set(True)
    res = benchmark(fs, ["logme"], {"ped": pedjax.PEDConfig()})
    assert not res.errors
    for name in ("logme", "logme+ped"):
        sc = res.scores["toy"][name]
        assert sc["dead"] == -np.inf and res.unscored[name]["toy"] == ["dead"]
        m = list(fs.features)
        finite = min(v for v in sc.values() if np.isfinite(v))
        ref = scipy.stats.weightedtau([sc[k] if np.isfinite(sc[k]) else finite - 1 for k in m], [fs.truth[k] for k in m])[0]
        assert res.tau[name]["toy"] == pytest.approx(ref)
