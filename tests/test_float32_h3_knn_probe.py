"""kNN accuracy and the linear probe in float32 (issue 21): the same folds and the same exact
accuracies as float64.

The failure these reproduce (shipped zoo, vit-random: knn 0.658 in float64, 0.680 in float32):
the folds are drawn in a canonical sample order sorted by row sum first, and LayerNorm outputs
have row sums of ~1e-7, zero up to rounding — so float32 row sums ordered the samples by their
rounding, gave most samples another fold and changed the score by several percent. The float32
path now sorts by the exact row sums (integer digits), which is the order of the float64 sums of
the same float32 numbers. And equal accuracies tie exactly in both precisions (one rounding of an
exact fraction), where a float sum of per-fold means broke such ties differently in each.
"""
from __future__ import annotations

import importlib
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference_impl import order_ref

knn_mod = importlib.import_module("pedjax.metrics._knn")
lp_mod = importlib.import_module("pedjax.metrics._linear_probe")

pytestmark = pytest.mark.skipif(not jax.config.jax_enable_x64, reason="compares with float64")


def _layernorm_features(seed, N=200, D=16, C=4):
    """Class-structured features through a LayerNorm without affine terms, in float32 (a random
    ViT's output): every row sums to 0 up to rounding."""
    rng = np.random.default_rng(seed)
    y = np.arange(N) % C
    raw = (0.7 * rng.normal(size=(C, D))[y] + rng.normal(size=(N, D))).astype(np.float32)
    z = raw - raw.mean(1, keepdims=True, dtype=np.float32)
    z = z / np.sqrt((z * z).mean(1, keepdims=True, dtype=np.float32) + np.float32(1e-3))
    return z.astype(np.float32), y


def test_exact_row_sums_are_exact():
    rng = np.random.default_rng(0)
    T = (rng.normal(size=(40, 33)) * 10.0 ** rng.integers(-7, 4, size=(40, 33))).astype(np.float32)
    T[:5] -= T[:5].mean(1, keepdims=True)  # sums that cancel
    T[5] = 0.0
    with jax.enable_x64(False):
        digits = [np.asarray(d) for d in knn_mod.exact_row_sums(jnp.asarray(T))]
    e = int(np.frexp(np.abs(T).max())[1])
    for i in range(len(T)):
        want = sum(Fraction(float(v)) for v in T[i])
        got = Fraction(2) ** e * sum(Fraction(int(d[i]), 2 ** (12 * (k + 1))) for k, d in enumerate(digits))
        # the grid is 2^-72 of the largest entry: entries below it are cut (none here above 2^-49)
        assert abs(got - want) <= Fraction(2) ** (e - 72) * T.shape[1], i
        assert all(0 <= int(d[i]) < 4096 for d in digits[1:])


@pytest.mark.parametrize("seed", [0, 1])
def test_canonical_order_of_float32_is_the_float64_one(seed):
    X, y = _layernorm_features(seed)
    assert np.abs(X.astype(np.float64).sum(1)).max() < 1e-5  # a plain row sum would be ill-conditioned
    want = order_ref(X)
    with jax.enable_x64(True):
        np.testing.assert_array_equal(np.asarray(knn_mod.canonical_order(jnp.asarray(X, jnp.float64))), want)
    with jax.enable_x64(False):
        np.testing.assert_array_equal(np.asarray(knn_mod.canonical_order(jnp.asarray(X))), want)
        f32 = np.asarray(knn_mod.stratified_folds(X, y, 4, 5, 0))
    f64 = np.asarray(knn_mod.stratified_folds(X.astype(np.float64), y, 4, 5, 0))
    np.testing.assert_array_equal(f32, f64)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("metric", ["knn", "linear_probe"])
def test_layernorm_features_score_the_same_in_float32(metric, seed):
    fn = {"knn": knn_mod.knn, "linear_probe": lp_mod.linear_probe}[metric]
    X, y = _layernorm_features(seed)
    s64 = fn(X, y)
    s32 = fn(X, y, precision="float32")
    assert s32 == pytest.approx(s64, rel=1e-6)


def test_equal_accuracies_tie_in_both_precisions():
    """Per-fold counts with the same mean accuracy give bit-equal scores (float32 and float64),
    and the exact fraction otherwise; irregular fold sizes fall back to the mean of fold means."""
    fold = np.repeat(np.arange(5), [20, 20, 21, 21, 21])  # sizes n, n + 1 (N = 103)
    rng = np.random.default_rng(0)
    cases = []
    for _ in range(200):
        cnt = rng.integers(0, 21, size=5)
        correct = np.concatenate([rng.permutation(np.arange(s) < c) for s, c in zip([20, 20, 21, 21, 21], cnt)])
        cases.append(correct)
    exact = [sum(Fraction(int(c[fold == f].sum()), int((fold == f).sum())) for f in range(5)) / 5 for c in cases]
    for dt, x64 in ((jnp.float64, True), (jnp.float32, False)):
        with jax.enable_x64(x64):
            got = [float(knn_mod.fold_accuracy(jnp.asarray(c), jnp.asarray(fold), 5, dt)) for c in cases]
        npdt = np.float64 if x64 else np.float32
        for g, q in zip(got, exact):
            assert g == float(npdt(q.numerator) / npdt(q.denominator))  # one rounding of the fraction
        for i in range(len(cases)):
            for j in range(i):
                if exact[i] == exact[j]:
                    assert got[i] == got[j]
    irregular = np.repeat(np.arange(3), [10, 30, 31])
    c = rng.random(71) < 0.6
    want = np.mean([c[irregular == f].mean() for f in range(3)])
    with jax.enable_x64(True):
        assert float(knn_mod.fold_accuracy(jnp.asarray(c), jnp.asarray(irregular), 3, jnp.float64)) == pytest.approx(
            want, abs=1e-15)


def test_probe_converges_as_far_in_float32_on_d_gg_n():
    """D ≫ N, nearly separable training folds: the penalty alone fixes the optimum and the
    penalised Hessian is ill-conditioned, so the solver's tolerance sets the accuracy. The float32
    fit used to stop at a gradient of 100·eps = 1.2e-5 (held-out log-likelihood 5e-3 relative
    from float64's here); it now runs to the same tolerance as float64."""
    rng = np.random.default_rng(0)
    N, D, C = 60, 400, 3
    y = np.arange(N) % C
    lat = 0.8 * rng.normal(size=(C, 16))[y] + rng.normal(size=(N, 16))
    X = np.maximum(lat @ rng.normal(size=(16, D)) + 0.3 * rng.normal(size=(N, D)), 0.0).astype(np.float32)
    s64 = lp_mod.linear_probe(X, y, score="log_likelihood")
    s32 = lp_mod.linear_probe(X, y, score="log_likelihood", precision="float32")
    assert s32 == pytest.approx(s64, rel=1e-4)
