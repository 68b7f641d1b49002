"""NCTI in float32 (issue 21): the two failure modes of the shipped zoo, on small synthetic inputs.

* ``dead``: features of rank D − 1 (a duplicated unit, as vit-supervised on fashion-tops) whose
  leading PCA variances set the shrinkage s = exp(−Σλ) between 1e-10 and k·eps32, so the
  eigen-solver LDA runs. The zeroed PCA direction is a generalized eigenvector with eigenvalue
  tr(B)/tr(W) whatever s is; float64 puts it among the top C − 1 (a zero projection column).
  The former float32 path raised the shrinkage to k·eps for its Cholesky factor, which divided
  that eigenvalue by k·eps/s and swapped in a real direction: S_seli off by 24 %.
* ``small``: a few real components 1e-4 of the leading one in scale (cnn-dae on fashion-tops): the
  float32 eigendecomposition of the Gram matrix resolves eigenvalues only to ~eps·λ_max and zeroed
  them, while float64 keeps and standardises them (every component counts in the LDA): 3-10 %.

Both are compared with float64 on the same float32 input, component by component and through
the zoo-level combination.
"""
import importlib

import numpy as np
import pytest
import scipy.stats

import pedjax

ncti_mod = importlib.import_module("pedjax.metrics._ncti")


def _dead(seed, N=400, D=32, C=4, scale=0.7):
    rng = np.random.default_rng(seed)
    y = np.arange(N) % C
    M = np.zeros((C, D))
    M[:, 0] = rng.standard_normal(C) * 3.0
    M[:, 1:3] = rng.standard_normal((C, 2)) * 0.15
    X = (M[y] + rng.standard_normal((N, D)) * np.linspace(1.0, 0.3, D)) * scale
    X[:, -1] = X[:, 0]  # a duplicated unit: rank D − 1
    return (X + 3.0).astype(np.float32), y


def _small(seed, N=400, D=48, C=4):
    rng = np.random.default_rng(seed)
    y = np.arange(N) % C
    M = rng.standard_normal((C, D))
    X = M[y] + 2.0 * rng.standard_normal((N, D))
    X[:, -3:] = 1e-4 * (M[y][:, :3] + rng.standard_normal((N, 3)))  # small but real components
    return np.maximum(X + 1.0, 0.0).astype(np.float32), y


def _components(X, y):
    c64 = np.array(ncti_mod.ncti_components(X, y))
    with pedjax.float32():
        c32 = np.array(ncti_mod.ncti_components(X, y))
    return c64, c32


@pytest.mark.parametrize("make", [_dead, _small], ids=["dead", "small"])
def test_float32_components_match_float64(make):
    for seed in range(3):
        X, y = make(seed)
        c64, c32 = _components(X, y)
        assert np.all(np.isfinite(c32))
        np.testing.assert_allclose(c32, c64, rtol=1e-5, err_msg=f"{make.__name__} seed {seed}")


def test_dead_case_takes_the_eigen_solver_and_keeps_the_null_direction():
    # the premise of the "dead" case: shrinkage between the reference's floor and k·eps32, and a
    # projection column that is exactly zero in float64 (the zeroed PCA direction among the top C − 1)
    X, y = _dead(2)
    N, D = X.shape
    ev = np.linalg.svd(X - X.astype(np.float64).mean(0), compute_uv=False) ** 2 / (N - 1)
    s = np.exp(-ev[:32].sum())
    assert ncti_mod.SHRINKAGE_FLOOR < s < D * np.finfo(np.float32).eps
    c64, c32 = _components(X, y)
    assert abs(c32[0] - c64[0]) <= 1e-5 * c64[0]


def test_float32_ranks_a_zoo_of_both_cases_like_float64():
    zoo = {f"dead{s}": _dead(s) for s in range(3)} | {f"small{s}": _small(s) for s in range(3)}
    y = zoo["dead0"][1]
    assert all(np.array_equal(v[1], y) for v in zoo.values())  # one task: the same labels
    feats = {k: v[0] for k, v in zoo.items()}
    c64 = {k: ncti_mod.ncti_components(X, y) for k, X in feats.items()}
    with pedjax.float32():
        c32 = {k: ncti_mod.ncti_components(X, y) for k, X in feats.items()}
    z64, z32 = ncti_mod.ncti_combine(c64), ncti_mod.ncti_combine(c32)
    a, b = np.array(list(z64.values())), np.array(list(z32.values()))
    assert scipy.stats.weightedtau(a, b)[0] >= 0.99
    assert np.max(np.abs(a - b)) <= 1e-4 * np.ptp(a)
