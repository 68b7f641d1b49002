"""Issue 21: the regularized H-score in float32 agrees with float64 (tests for the float32 path of
pedjax/metrics/_hscore_reg.py).

The failure this guards against (measured on the shipped zoo before the fix: τ_w 0.62 on
fashion-rotated, up to 25 % relative): the eigenvalue cut-off of Σ_α was ``10·max(N, D)·ε`` with
ε of the *computing* dtype, 1.2e-3·λ_max in float32 at N = 1000, above the shrinkage floor α·μ of
features with a few dominant directions, so float32 dropped the weak, class-carrying directions
float64 keeps. The input below has exactly that shape (a few class-free directions of large
variance, weak class signal elsewhere, dead ReLU units, a common offset).

References: an independent NumPy/scikit-learn transcription of TLL's ``regularized_h_score``
(``LedoitWolf``, ``np.cov``, ``pinv``), no pedjax code.
"""
from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from sklearn.covariance import LedoitWolf

import pedjax

hreg = importlib.import_module("pedjax.metrics._hscore_reg")


def hscore_reg_ref(f, y):
    """TLL regularized_h_score in float64 (labels coded 0..C-1)."""
    f = np.asarray(f, np.float64)
    f = f - f.mean(axis=0, keepdims=True)
    g = np.zeros_like(f)
    for c in np.unique(y):
        g[y == c] = f[y == c].mean(axis=0)
    lw = LedoitWolf(assume_centered=False).fit(f)
    covg = np.atleast_2d(np.cov(g, rowvar=False))
    return float(np.trace(np.linalg.pinv(lw.covariance_, rtol=1e-15) @ ((1 - lw.shrinkage_) * covg)))


def dominated(seed, N, D, C, scale=300.0, big=3, dead=4, offset=20.0):
    """Class signal of unit scale, ``big`` class-free directions of spread ``scale``, ReLU, dead units
    and a common offset (the shape of the shipped features that failed)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, N)
    X = 0.5 * rng.standard_normal((C, D))[y] + rng.standard_normal((N, D))
    X[:, :big] = scale * rng.standard_normal((N, big))
    X = np.maximum(X + 0.5, 0.0) + offset
    X[:, D - dead:] = offset
    return X, y


def _rel(a, b):
    return abs(a - b) / abs(b)


def _f32(X, y, **kw):
    with pedjax.float32():
        return hreg.hscore_reg(X.astype(np.float32), y, **kw)


@pytest.mark.parametrize("shape", [(600, 48, 5), (200, 400, 5)], ids=["n>d", "d>n"])
def test_float32_agrees_with_float64_on_dominated_features(shape):
    X, y = dominated(0, *shape)
    s64 = hreg.hscore_reg(X, y)
    assert _rel(s64, hscore_reg_ref(X, y)) < 1e-6  # float64: the published value
    s32 = _f32(X, y)
    assert np.isfinite(s32) and _rel(s32, s64) < 2e-5, (s32, s64)  # before the fix: 0.90, 0.23


def test_float32_zoo_ranks_like_float64():
    """A zoo over the spread of the dominant directions (where the old float32 cut-off dropped
    more and more of the class signal) and over the class separation."""
    rng = np.random.default_rng(3)
    zoo = [dominated(11, 600, 48, 5, scale=s, offset=o)[0] * w
           for s, o, w in zip([3.0, 30.0, 100.0, 200.0, 300.0, 1000.0], rng.uniform(0, 50, 6), [1, 1e-3, 1e3, 1, 7, 0.1], strict=True)]
    y = dominated(11, 600, 48, 5)[1]
    s64 = np.array([hreg.hscore_reg(X, y) for X in zoo])
    s32 = np.array([_f32(X, y) for X in zoo])
    assert np.all(np.isfinite(s32))
    assert scipy.stats.weightedtau(s64, s32)[0] >= 0.99
    np.testing.assert_allclose(s32, s64, rtol=2e-5)


@pytest.mark.parametrize("case", ["singletons", "two_classes", "constant_dims", "one_feature", "labels"])
def test_float32_degenerate_legal_input(case):
    rng = np.random.default_rng(5)
    N, D, C = 40, 12, 4
    y = np.arange(N) % C
    X = rng.standard_normal((N, D)) + np.eye(C, D)[y]
    if case == "singletons":  # one sample per class for two classes
        y = np.concatenate([[0, 1], 2 + np.arange(N - 2) % 3])
    elif case == "two_classes":
        y = y % 2
    elif case == "constant_dims":
        X[:, :5] = 7.0
    elif case == "one_feature":  # D = 1: no shrinkage (α = 0), plain H-score of one direction
        X = X[:, :1]
    elif case == "labels":
        y = np.array([3, 7, 42, 9])[y]
    s64 = hreg.hscore_reg(X, y)
    s32 = _f32(X, y)
    codes = np.unique(y, return_inverse=True)[1]
    assert _rel(s64, hscore_reg_ref(X, codes)) < 1e-6
    assert np.isfinite(s32) and _rel(s32, s64) < 1e-4, (s32, s64)


def test_float32_from_moments():
    """The statistics path in float32 (Gram eigendecomposition): the shrinkage floor α·μ bounds
    Σ_α's spectrum, only eigenvalues at the eigensolver's rounding level are dropped."""
    X, y = dominated(2, 800, 48, 5, scale=100.0)
    C = 5
    Xc = (X - X.mean(axis=0)).astype(np.float32)
    sums = np.zeros((C, X.shape[1]), np.float32)
    np.add.at(sums, y, Xc)
    r2 = np.sum(Xc * Xc, axis=1)
    args = (Xc.T @ Xc, sums, np.bincount(y, minlength=C).astype(np.float32), np.sum(r2 * r2))
    with jax.enable_x64(False):
        s32 = float(jax.jit(hreg.hscore_reg_from_moments)(*map(jnp.asarray, args)))
    assert _rel(s32, hreg.hscore_reg(X, y)) < 1e-4


# ---------------------------------------------------------------------------------------------
# H-score (pedjax/metrics/_hscore.py), D ≥ N: mathematically tied models stay tied in float32

hscore_mod = importlib.import_module("pedjax.metrics._hscore")


def test_hscore_float32_ceiling_is_exact_for_d_at_least_n():
    """D ≥ N in general position: H = C − 1 for every model (fashion-fewshot's mlp models). float32
    summed N − 1 rounded R²_k and gave C − 1 + 1 ulp for some, reordering the top of the zoo."""
    rng = np.random.default_rng(8)
    N, C = 100, 10
    y = np.arange(N) % C
    vals = []
    for i, D in enumerate([128, 150, 256, 101]):
        X = np.maximum(rng.standard_normal((N, D)) * (1 + i) + 3.0 * i, 0.0)
        assert hscore_mod.hscore(X, y) == pytest.approx(C - 1, rel=1e-12)
        with pedjax.float32():
            vals.append(hscore_mod.hscore(X.astype(np.float32), y))
    assert vals == [float(np.float32(C - 1))] * len(vals), vals


def test_hscore_float32_d_at_least_n_below_the_ceiling():
    """D ≥ N with a rank-deficient span (most directions dropped): the direct sum is used."""
    rng = np.random.default_rng(9)
    N, D, C = 80, 200, 5
    y = np.arange(N) % C
    X = (rng.standard_normal((N, 6)) + np.eye(C, 6)[y]) @ rng.standard_normal((6, D)) + 50.0
    s64 = hscore_mod.hscore(X, y)
    with pedjax.float32():
        s32 = hscore_mod.hscore(X.astype(np.float32), y)
    assert s64 < C - 1.5 and _rel(s32, s64) < 1e-5, (s32, s64)
