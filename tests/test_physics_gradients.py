"""Reverse-mode gradients through PED (scan path) → LogME / SFDA / GBC against central finite
differences (float64, small problems), for the features and for PED's hyperparameters."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pedjax.metrics import REGISTRY
from pedjax.physics import PEDConfig, ped_core

RTOL = 1e-4
METRICS = ("logme", "sfda", "gbc")
HPARAMS = ("nsigma", "constant", "time_step")


def _data(seed, n=60, d=5, c=3, sep=0.5):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    X = rng.standard_normal((n, d)) + sep * rng.standard_normal((c, d))[y]
    return X, y


def _check(g, fd, what):
    assert np.isfinite(g), what
    scale = max(abs(fd), 1e-8)
    assert abs(g - fd) <= RTOL * scale, f"{what}: grad {g!r} vs finite difference {fd!r}"


def _chain(metric, variant, X, y, mean, std):
    core = REGISTRY[metric].core
    C = int(y.max()) + 1
    yj = jnp.asarray(y, jnp.int32)
    base = PEDConfig(variant=variant, time_step=0.5, exit_ratio=0.0, max_steps=4)

    def f(X, hp):
        cfg = base.replace(**hp)
        return core(ped_core(X, yj, C, mean, std, cfg, path="scan").features, yj, C)

    # one compiled program gives both: the value (finite differences) and the gradient
    value_and_grad = jax.jit(jax.value_and_grad(f, argnums=(0, 1)))
    return (lambda X, hp: value_and_grad(X, hp)[0]), (lambda X, hp: value_and_grad(X, hp)[1]), {k: getattr(base, k) for k in HPARAMS}


@functools.lru_cache(maxsize=None)
def _problem(seed):
    X, y = _data(seed)
    return X, y, X.mean(0), X.std(0) * 1.5  # source stats ≠ target stats


# every metric through the released variant; the paper variant (no clipping, its own stop rule) once
@pytest.mark.parametrize("metric,variant", [(m, "released") for m in METRICS] + [("sfda", "paper")])
def test_grad_through_ped_and_metric(metric, variant):
    """One jax.grad over (features, nsigma, constant, time_step) of metric(PED(X)) vs central differences."""
    X, y, mean, std = _problem(1)
    f, grad, hp0 = _chain(metric, variant, X, y, mean, std)
    gX, ghp = grad(jnp.asarray(X), hp0)
    # features: a directional derivative along a random direction
    V = np.random.default_rng(7).standard_normal(X.shape)
    h = 1e-5
    fd = (float(f(X + h * V, hp0)) - float(f(X - h * V, hp0))) / (2 * h)
    _check(float(jnp.sum(gX * V)), fd, f"{metric}/{variant} d/dX")
    for k in HPARAMS:
        v0 = hp0[k]
        hk = 1e-5 * v0
        fd = (float(f(X, {**hp0, k: v0 + hk})) - float(f(X, {**hp0, k: v0 - hk}))) / (2 * hk)
        assert abs(fd) > 1e-7, f"{metric}/{variant}: PED has no effect on {k}; the test would be vacuous"
        _check(float(ghp[k]), fd, f"{metric}/{variant} d/d{k}")


@pytest.mark.parametrize("metric", METRICS)
def test_grad_metric_alone_features(metric):
    """The metric cores alone, N > D (LogME's D×D branch) and N ≤ D (its N×N branch)."""
    core = REGISTRY[metric].core
    for n, d in ((40, 6), (12, 20)):
        X, y = _data(3, n=n, d=d, c=3)
        yj = jnp.asarray(y, jnp.int32)
        value_and_grad = jax.jit(jax.value_and_grad(lambda X: core(X, yj, 3)))
        f = lambda X: value_and_grad(X)[0]  # noqa: E731
        g = value_and_grad(jnp.asarray(X))[1]
        V = np.random.default_rng(n).standard_normal(X.shape)
        h = 1e-5
        fd = (float(f(X + h * V)) - float(f(X - h * V))) / (2 * h)
        _check(float(jnp.sum(g * V)), fd, f"{metric} N={n} D={d}")


def test_logme_gradient_finite_with_degenerate_spectrum():
    """Constant-zero and repeated feature columns (dead ReLUs, blank pixels) give repeated
    eigenvalues of the Gram matrix; JAX's eigh rule divides by their gap (NaN). LogME's guarded
    rule stays finite and matches finite differences in nsigma through PED."""
    X, y = _data(5, n=60, d=6)
    X[:, 4:] = 0.0  # two exactly-zero columns → an exactly repeated zero eigenvalue
    mean, std = X.mean(0), np.maximum(X.std(0), 0) * 1.5
    f, grad, hp0 = _chain("logme", "released", X, y, mean, std)
    gX, ghp = grad(jnp.asarray(X), hp0)
    assert np.all(np.isfinite(np.asarray(gX)))
    v0 = hp0["nsigma"]
    h = 1e-5
    fd = (float(f(X, {**hp0, "nsigma": v0 + h})) - float(f(X, {**hp0, "nsigma": v0 - h}))) / (2 * h)
    _check(float(ghp["nsigma"]), fd, "logme degenerate d/dnsigma")
