"""Regression LogME against an independent NumPy transcription of thuml/LogME ``LogME.py``
(``LogME(regression=True).fit``, the fixed-point ``_fit_fixed_point`` with its ``truncated_svd``),
and against pedjax's classification LogME on one-hot targets (the shared code)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import pedjax
from pedjax.metrics import REGISTRY
from pedjax.metrics._logme import logme_core


def lr():
    """The ``pedjax.metrics._logme_reg`` module (the package attribute of that name is the function)."""
    import importlib

    return importlib.import_module("pedjax.metrics._logme_reg")

pytestmark = pytest.mark.skipif(not jax.config.jax_enable_x64, reason="float64 parity needs jax_enable_x64")

RTOL = 1e-9


def thuml_regression(f, y):
    """thuml/LogME ``LogME(regression=True).fit(f, y)`` (fixed-point variant), in NumPy."""
    f = np.asarray(f, np.float64)
    y = np.asarray(y, np.float64)
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    N, D = f.shape
    if N > D:  # truncated_svd: SVD of fᵀf, singular values > 1e-10 kept
        _, s, vh = np.linalg.svd(f.T @ f)
        s = np.sqrt(s)
        k = int(np.sum(s > 1e-10))
        s, vh = s[:k], vh[:k]
        u = (f @ vh.T) / s.reshape(1, -1)
    else:
        u, s, _ = np.linalg.svd(f, full_matrices=False)
    sigma = (s ** 2).reshape(-1, 1)
    out = []
    for i in range(y.shape[1]):
        yi = y[:, i].reshape(-1, 1)
        x2 = (u.T @ yi) ** 2
        res_x2 = (yi ** 2).sum() - x2.sum()
        alpha, beta = 1.0, 1.0
        for _ in range(11):
            t = alpha / beta
            gamma = (sigma / (sigma + t)).sum()
            m2 = (sigma * x2 / ((t + sigma) ** 2)).sum()
            res2 = (x2 / ((1 + sigma / t) ** 2)).sum() + res_x2
            alpha = gamma / (m2 + 1e-5)
            beta = (N - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - t) / t <= 1e-3:
                break
        ev = (D / 2.0 * np.log(alpha) + N / 2.0 * np.log(beta) - 0.5 * np.sum(np.log(alpha + beta * sigma))
              - beta / 2.0 * res2 - alpha / 2.0 * m2 - N / 2.0 * np.log(2 * np.pi))
        out.append(ev / N)
    return float(np.mean(out))


def make(name, seed):
    rng = np.random.default_rng(seed)
    n, d, k = {"n_gt_d": (200, 10, 1), "multi_target": (200, 10, 3), "d_gt_n": (30, 80, 2),
               "constant_dims": (200, 10, 1), "large_scale": (200, 10, 1), "tridiagonal": (600, 260, 2)}[name]
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, size=d)
    W = rng.normal(size=(d, k))
    Y = X @ W * 0.3 + rng.normal(size=(n, k))
    if name == "constant_dims":
        X[:, 2] = 4.0
        X[:, 5] = 0.0  # a dead unit
    if name == "large_scale":
        Y = Y * 1e3 + 50.0
    return X, (Y[:, 0] if k == 1 else Y)


@pytest.mark.parametrize("name", ["n_gt_d", "multi_target", "d_gt_n", "constant_dims", "large_scale", "tridiagonal"])
def test_matches_thuml_regression(name):
    for seed in (0, 1):
        X, y = make(name, seed)
        want = thuml_regression(X, y)
        assert lr().logme_reg(X, y) == pytest.approx(want, rel=RTOL, abs=1e-12), (name, seed)
    if name == "tridiagonal":  # the float64 CPU path equals the eigendecomposition form
        Y = jnp.asarray(y)
        assert float(lr().logme_targets_eigh(jnp.asarray(X), Y)) == pytest.approx(want, rel=RTOL)


@pytest.mark.parametrize("shape", [(120, 8, 3), (25, 60, 4), (400, 256, 5)])
def test_classification_logme_is_the_regression_form_on_one_hot_targets(shape):
    n, d, c = shape
    rng = np.random.default_rng(n)
    y = np.arange(n) % c
    X = jnp.asarray(rng.normal(size=(c, d))[y] + rng.normal(size=(n, d)))
    Y = jax.nn.one_hot(jnp.asarray(y), c, dtype=X.dtype)
    a = float(jax.jit(lr().logme_reg_core)(X, Y))
    b = float(jax.jit(logme_core, static_argnums=2)(X, jnp.asarray(y), c))
    assert a == pytest.approx(b, rel=1e-12)


def test_zoo_vmap_equals_per_model_and_float32_ranks_as_float64():
    rng = np.random.default_rng(3)
    n, d = 150, 6
    y = rng.normal(size=n)
    zoo = {}
    for m, signal in enumerate([0.0, 0.1, 0.2, 0.35, 0.5, 0.8, 1.2, 2.0]):  # 8 models, rising signal
        X = rng.normal(size=(n, d))
        X[:, 0] += signal * y
        zoo[f"m{m}"] = X.astype(np.float32)
    names = sorted(zoo)
    s64 = np.array([lr().logme_reg(zoo[k], y) for k in names])
    stacked = jnp.asarray(np.stack([zoo[k] for k in names]), jnp.float64)
    vm = np.asarray(jax.jit(jax.vmap(lr().logme_reg_core, (0, None)))(stacked, jnp.asarray(y)))
    np.testing.assert_allclose(vm, s64, rtol=1e-12)
    with jax.enable_x64(False), pedjax.float32():
        s32 = np.array([lr().logme_reg(zoo[k], y.astype(np.float32)) for k in names])
    assert np.all(np.isfinite(s32))
    assert scipy.stats.weightedtau(s32, s64)[0] >= 0.99
    np.testing.assert_allclose(s32, s64, rtol=1e-4)


def test_validation_and_registry():
    X, y = make("n_gt_d", 0)
    for bad, match in [(np.array(["a"] * 200), "dtype"), (np.full(200, np.nan), "NaN"),
                       (np.zeros((200, 2, 2)), "shape"), (np.zeros(199), "rows")]:
        with pytest.raises(ValueError, match=match):
            lr().logme_reg(X, bad)
    with pytest.raises(ValueError, match="X"):
        lr().logme_reg(X[:, :, None], y)
    assert lr().logme_reg(np.full((200, 4), 2.5), y) == float("-inf")
    assert lr().logme_reg(X, y.reshape(-1, 1)) == lr().logme_reg(X, y)
    m = REGISTRY["logme_reg"]
    assert m.input == "features" and m.target == "real" and m.core is lr().logme_reg_core and "thuml" in m.citation
    assert "logme_reg" in pedjax.metrics.names(target=None) and "logme_reg" in pedjax.metrics.names("real")
    assert "logme_reg" not in pedjax.metrics.names()  # classification tasks (demo, benchmark) do not run it


def test_score_zoo_vmaps_real_targets():
    """score_zoo with real targets: each model equals logme_reg, models of two widths and a
    degenerate one (-inf); PED (which moves classes) and a task's class metric name refused."""
    rng = np.random.default_rng(5)
    Y = rng.normal(size=(150, 2))
    zoo = {f"m{i}": rng.normal(size=(150, d)) + Y[:, :1] * (i + 1) for i, d in enumerate((6, 6, 9))}
    zoo["flat"] = np.full((150, 6), 3.0)
    got = pedjax.score_zoo(zoo, Y, "logme_reg")
    assert list(got) == list(zoo) and got["flat"] == float("-inf")
    for k in ("m0", "m1", "m2"):
        assert got[k] == pytest.approx(lr().logme_reg(zoo[k], Y), rel=1e-12)
    assert got["m0"] < got["m1"]  # the more predictive features score higher
    with pytest.raises(ValueError, match="ped"):
        pedjax.score_zoo(zoo, Y, "logme_reg", ped=pedjax.PEDConfig())
    with pytest.raises(ValueError, match="labels"):
        pedjax.score_zoo(zoo, np.full(150, np.nan), "logme_reg")
    from pedjax.scoring import feature_metric

    with pytest.raises(ValueError, match="real-valued"):
        feature_metric("logme_reg")
