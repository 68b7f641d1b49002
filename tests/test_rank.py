"""pedjax.rank against SciPy and a direct transcription of PED's rank_correlation.py."""
from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest
import scipy.stats

from pedjax import rank


def _random_pairs(seed, count=400):
    """(x, y) pairs of lengths 2..50: continuous, heavy ties, integer-valued, mixed dtypes."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        n = int(rng.integers(2, 51))
        kind = i % 6
        if kind == 0:
            x, y = rng.normal(size=n), rng.normal(size=n)
        elif kind == 1:  # heavy ties, integers
            x, y = rng.integers(0, 3, n), rng.integers(0, 3, n)
        elif kind == 2:  # integer-valued floats, some ties
            x, y = rng.integers(0, n, n).astype(float), rng.integers(0, 5, n).astype(float)
        elif kind == 3:  # correlated with ties
            x = rng.normal(size=n)
            y = np.round(x + 0.5 * rng.normal(size=n), 1)
        elif kind == 4:  # mixed dtypes: int and float
            x, y = rng.integers(0, 4, n), rng.normal(size=n)
        else:  # binary vs many-valued
            x, y = rng.integers(0, 2, n), rng.integers(-10, 10, n)
        yield x, y


def _same(a, b, tol=1e-12):
    assert isinstance(a, float)
    if np.isnan(b):
        assert np.isnan(a)
    else:
        assert abs(a - b) <= tol, (a, b)


def test_weighted_tau_matches_scipy():
    for x, y in _random_pairs(0):
        _same(rank.weighted_tau(x, y), scipy.stats.weightedtau(x, y)[0])
        _same(rank.weighted_tau(list(x), list(y)), scipy.stats.weightedtau(x, y)[0])


def test_weighted_tau_examples_and_edge_cases():
    # scipy's documented example
    assert rank.weighted_tau([12, 2, 1, 12, 2], [1, 4, 7, 1, 0]) == pytest.approx(-0.56694968153682723, abs=1e-15)
    _same(rank.weighted_tau([1, 2], [3, 4]), 1.0)
    _same(rank.weighted_tau([1, 2], [4, 3]), -1.0)
    assert np.isnan(rank.weighted_tau([1, 1, 1], [1, 2, 3]))  # constant input, like scipy
    assert np.isnan(rank.weighted_tau([1, 2, 3], [5, 5, 5]))
    # larger n (goes through several row blocks)
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 50, 2100), rng.normal(size=2100)
    _same(rank.weighted_tau(x, y), scipy.stats.weightedtau(x, y)[0], tol=1e-10)


def test_classical_correlations_match_scipy():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on constant input
        for x, y in _random_pairs(1, count=150):
            _same(rank.kendall_tau(x, y), scipy.stats.kendalltau(x, y).statistic)
            _same(rank.spearman(x, y), scipy.stats.spearmanr(x, y).statistic)
            if np.ptp(x) > 0 and np.ptp(y) > 0:
                _same(rank.pearson(x, y), scipy.stats.pearsonr(x, y).statistic, tol=1e-10)


def test_dict_alignment():
    rng = np.random.default_rng(2)
    names = [f"model{i}" for i in range(12)]
    s = rng.normal(size=12)
    t = rng.integers(0, 4, 12).astype(float)
    scores = dict(zip(names, s))
    order = rng.permutation(12)
    truth = {names[i]: t[i] for i in order}  # different key order
    for fn in (rank.weighted_tau, rank.kendall_tau, rank.pearson, rank.spearman):
        assert fn(scores, truth) == pytest.approx(fn(s, t), abs=1e-14)
    assert rank.rel_k(scores, truth, 3) == rank.rel_k(s, t, 3)


def test_validation_errors():
    with pytest.raises(ValueError, match="y: keys differ"):
        rank.weighted_tau({"a": 1.0, "b": 2.0}, {"a": 1.0, "c": 2.0})
    with pytest.raises(ValueError, match="truth: keys differ"):
        rank.top_k({"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 2.0, "c": 3.0}, 1)
    with pytest.raises(ValueError, match="y"):
        rank.kendall_tau([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="x"):
        rank.pearson([1.0], [2.0])
    with pytest.raises(ValueError, match="x"):
        rank.spearman([1.0, np.nan, 2.0], [1, 2, 3])
    with pytest.raises(ValueError, match="truth"):
        rank.rel_k([1.0, 2.0, 3.0], [0.5, np.inf, 0.2], 1)
    with pytest.raises(ValueError, match="y"):
        rank.weighted_tau({"a": 1.0, "b": 2.0}, [1.0, 2.0])
    with pytest.raises(ValueError, match="k"):
        rank.top_k([1, 2, 3], [3, 2, 1], 0)
    with pytest.raises(ValueError, match="truth"):
        rank.rel_k([1, 2, 3], [0, 0, 0], 1)


# ---------------------------------------------------------------------------------------------
# top_k / rel_k


def recall_k_transcribed(score: dict, gt: dict, k: int) -> int:
    """PED's recall_k written out: is the top-scored model among the k best by ground truth?"""
    by_score = sorted(score.items(), key=lambda kv: kv[1], reverse=True)
    by_gt = sorted(gt.items(), key=lambda kv: kv[1], reverse=True)
    best_k = [name for name, _ in by_gt][:k]
    return 1 if by_score[0][0] in best_k else 0


def rel_k_transcribed(score: dict, gt: dict, k: int) -> float:
    """PED's rel_k written out: best gt among the k top-scored models / best gt overall."""
    by_score = sorted(score.items(), key=lambda kv: kv[1], reverse=True)
    best = max(gt.values())
    chosen = [gt[name] for i, (name, _) in enumerate(by_score) if i < k]
    return max(chosen) / best


def test_top_k_rel_k_by_hand():
    scores = [0.9, 0.1, 0.5, 0.3]
    truth = [70.0, 90.0, 80.0, 60.0]  # model 1 is best, model 0 (top-scored) is third
    assert rank.top_k(scores, truth, 1) == 0.0
    assert rank.top_k(scores, truth, 2) == 0.0
    assert rank.top_k(scores, truth, 3) == 1.0
    assert rank.top_k(scores, truth, 10) == 1.0
    assert rank.rel_k(scores, truth, 1) == pytest.approx(70 / 90)
    assert rank.rel_k(scores, truth, 2) == pytest.approx(80 / 90)  # models 0, 2
    assert rank.rel_k(scores, truth, 4) == 1.0
    # ties in scores: the first in order wins (stable sort, like the reference)
    assert rank.top_k([1.0, 1.0, 0.0], [10.0, 20.0, 5.0], 1) == 0.0
    assert rank.top_k([1.0, 1.0, 0.0], [20.0, 10.0, 5.0], 1) == 1.0
    # ties in truth: dict insertion order decides who is in the top k
    assert rank.top_k({"a": 1.0, "b": 0.0}, {"b": 5.0, "a": 5.0}, 1) == 0.0
    assert rank.top_k({"a": 1.0, "b": 0.0}, {"a": 5.0, "b": 5.0}, 1) == 1.0
    assert isinstance(rank.top_k(scores, truth, 1), float)
    assert isinstance(rank.rel_k(scores, truth, 1), float)


def test_top_k_rel_k_random_against_transcription():
    rng = np.random.default_rng(3)
    for it in range(500):
        n = int(rng.integers(2, 15))
        names = [f"m{i}" for i in range(n)]
        if it % 2:  # heavy ties
            s = rng.integers(0, 3, n).astype(float)
            t = rng.integers(1, 4, n).astype(float)
        else:
            s = rng.normal(size=n)
            t = rng.uniform(10, 90, n)
        score = {names[i]: float(s[i]) for i in rng.permutation(n)}
        gt = {names[i]: float(t[i]) for i in rng.permutation(n)}
        for k in (1, 2, 3, 5):
            assert rank.top_k(score, gt, k) == recall_k_transcribed(score, gt, k)
            assert rank.rel_k(score, gt, k) == pytest.approx(rel_k_transcribed(score, gt, k), abs=1e-15)
        # sequences: aligned by position, ties by position
        k = int(rng.integers(1, n + 1))
        sd = {names[i]: float(s[i]) for i in range(n)}
        td = {names[i]: float(t[i]) for i in range(n)}
        assert rank.top_k(s, t, k) == recall_k_transcribed(sd, td, k)
        assert rank.rel_k(s, t, k) == pytest.approx(rel_k_transcribed(sd, td, k), abs=1e-15)


# ---------------------------------------------------------------------------------------------
# soft weighted tau (the differentiable τ_w the meta-learner maximises)

#: jitted as the meta-learner runs it: one compiled program per length, not one per eager operation
soft_weighted_tau = jax.jit(rank.soft_weighted_tau)


def test_soft_weighted_tau_tends_to_scipy():
    rng = np.random.default_rng(0)
    for i in range(24):
        n = (2, 7, 19)[i % 3]  # few lengths: each new length compiles once
        s = rng.normal(size=n)
        t = rng.integers(0, 4, n).astype(float) if i % 2 == 0 else rng.normal(size=n)  # ties in truth too
        if np.ptp(t) == 0:
            continue  # constant truth: SciPy's τ is NaN
        want = scipy.stats.weightedtau(s, t)[0]
        got = float(soft_weighted_tau(s, t, 1e-7))
        assert got == pytest.approx(want, abs=1e-9), (s, t)
    # monotone approach as the temperature shrinks, on one example
    s, t = rng.normal(size=7), rng.normal(size=7)
    want = rank.weighted_tau(s, t)
    errs = [abs(float(soft_weighted_tau(s, t, T)) - want) for T in (1.0, 0.1, 0.01, 1e-4)]
    assert errs[-1] < 1e-6 and errs[0] > errs[-1]


def test_soft_weighted_tau_weight_convention():
    """The top of the ranking weighs most (rank 0 = largest, w = 1/(r+1)), and the two passes are
    averaged: swapping the top pair costs more than swapping the bottom pair, exactly as SciPy."""
    t = np.arange(8.0)[::-1]  # element 0 is the best
    top = np.array([6.0, 7, 5, 4, 3, 2, 1, 0])  # top two swapped
    bottom = np.array([7.0, 6, 5, 4, 3, 2, 0, 1])  # bottom two swapped
    for s in (top, bottom):
        assert float(soft_weighted_tau(s, t, 1e-6)) == pytest.approx(scipy.stats.weightedtau(s, t)[0], abs=1e-10)
    assert float(soft_weighted_tau(top, t, 1e-6)) < float(soft_weighted_tau(bottom, t, 1e-6))
    # not symmetric in a one-sided (x-only) weighting, but SciPy's rank=True is: so is ours
    s = np.array([0.3, 2.0, 1.1, -0.4, 0.9])
    u = np.array([1.0, 0.2, 3.0, 2.5, 0.1])
    assert float(soft_weighted_tau(s, u, 1e-7)) == pytest.approx(float(soft_weighted_tau(u, s, 1e-7)), abs=1e-10)


def test_soft_weighted_tau_gradient():
    rng = np.random.default_rng(1)
    s, t = rng.normal(size=9), rng.normal(size=9)
    f = lambda s: soft_weighted_tau(s, t, 0.3)
    g = np.asarray(jax.jit(jax.grad(f))(s))
    V = rng.normal(size=9)
    h = 1e-6
    fd = (float(f(s + h * V)) - float(f(s - h * V))) / (2 * h)
    assert float(g @ V) == pytest.approx(fd, rel=1e-6)
    # raising the truly-best model's score raises τ
    assert g[np.argmax(t)] > 0
    with pytest.raises(ValueError, match="scores/truth"):
        rank.soft_weighted_tau(s, t[:5], 0.1)
