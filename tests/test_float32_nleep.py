"""NLEEP in float32 (issue 21): the same k-means++ draws in both precisions, the float32 path's
numerics (distances by differences, relative covariance regulariser, the convergence test, no
second-moment steps), and the ranking of a zoo against float64 — synthetic here, the shipped zoo's
real features in the slow test."""
from __future__ import annotations

import math
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as ss

import pedjax
from pedjax.metrics import nleep as _nleep_public  # noqa: F401  (registers the module)

nl = sys.modules["pedjax.metrics._nleep"]
EPS32 = float(np.finfo(np.float32).eps)


def _relu_zoo(seed, M=6, N=300, C=6):
    """M models' ReLU-like, non-negative features of different widths and scales (10^-2..10^3)
    with large means; class separation differs by model, so the zoo has a ranking."""
    rng = np.random.default_rng(seed)
    y = np.arange(N) % C
    feats = []
    for m in range(M):
        D = int(rng.choice([32, 64]))
        r = int(rng.integers(4, 16))
        sep = 0.2 + 1.0 * m / M
        lat = sep * rng.normal(size=(C, r))[y] + rng.normal(size=(N, r))
        H = np.maximum(lat @ rng.normal(size=(r, D)) / np.sqrt(r) + 0.5 * rng.normal(size=D), 0.0)
        H = H + 0.05 * rng.normal(size=(N, D)) ** 2
        scale = 10.0 ** rng.uniform(-2, 3)
        feats.append((H * scale + rng.uniform(0, 100) * scale).astype(np.float32))
    return feats, y


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.abs(a - b) / np.abs(b)


# ------------------------------------------------------------------------ the same draws


def test_order_and_draws_are_the_float64_ones_in_both_precisions():
    """float32 and float64 draw the same k-means++ numbers over the same sample order, and they
    are exactly what the float64 path drew before (per-centre ``fold_in`` uniforms, float64)."""
    X = _relu_zoo(0, M=1)[0][0]
    N, K = X.shape[0], 40
    with jax.enable_x64(False):
        o32, (f32, u32) = nl._host_order_and_draws(X, 3, K)
    with jax.enable_x64(True):
        o64, (f64, u64) = nl._host_order_and_draws(X, 3, K)
        k0, kloop = jax.random.split(jax.random.key(3))
        first = int(jax.random.randint(k0, (), 0, N))
        trials = 2 + int(math.log(K))
        old = np.stack([np.asarray(jax.random.uniform(jax.random.fold_in(kloop, c), (trials,), jnp.float64))
                        for c in range(1, K)])
        order = np.asarray(nl.canonical_order(jnp.asarray(X, jnp.float64)))
    assert np.array_equal(o32, o64) and np.array_equal(o64, order)
    assert int(f32) == int(f64) == first
    assert u32.dtype == u64.dtype == np.float64 and np.array_equal(u32, u64)
    assert np.array_equal(u64[1:], old)


def _np_kmeanspp(Z, first, U):
    """scikit-learn's greedy k-means++ (expanded squared distances, float64) with given draws."""
    Z = np.asarray(Z, np.float64)
    N, K = Z.shape[0], U.shape[0]
    sq = np.sum(Z * Z, axis=1)

    def d2(i):
        return np.maximum(sq[i][:, None] - 2.0 * Z[i] @ Z.T + sq[None, :], 0.0)

    idx, closest = [int(first)], d2(np.array([first]))[0]
    for c in range(1, K):
        cs = np.cumsum(closest)
        cand = np.minimum(np.searchsorted(cs, U[c] * cs[-1], side="left"), N - 1)
        d = np.minimum(closest[None, :], d2(cand))
        best = int(np.argmin(d.sum(axis=1)))
        idx.append(int(cand[best]))
        closest = d[best]
    return np.array(idx)


def test_kmeanspp_matches_numpy_in_float64_and_float32_far_from_the_origin():
    """The same draws pick the same centres as a NumPy transcription, in float64 and — on data
    shifted 1024 from the origin, where the expanded ‖x‖² − 2x·c + ‖c‖² loses ~0.6 of distances
    of order 1 in float32 — in float32 (differences first)."""
    rng = np.random.default_rng(1)
    K = 24
    Z = rng.normal(size=(K, 5))[np.arange(300) % K] * 3.0 + rng.normal(size=(300, 5))
    Z = np.round(Z * 64) / 64  # exact in float32 even after the shift below
    with jax.enable_x64(True):
        first, U = nl._jit_draws(jax.random.key(0), Z.shape[0], K, jnp.float64)
        first, U = np.asarray(first), np.asarray(U)
    ref = _np_kmeanspp(Z, first, U)
    f = jax.jit(nl.kmeans_plusplus, static_argnums=2)
    with jax.enable_x64(True):
        got64 = np.asarray(f(None, jnp.asarray(Z), K, (first, U)))
    far = Z + 1024.0
    with jax.enable_x64(False):
        got32 = np.asarray(f(None, jnp.asarray(far, jnp.float32), K, (first, U)))
    assert np.array_equal(got64, ref)
    assert np.array_equal(got32, ref)


def test_a_candidate_draw_never_runs_past_the_last_weighted_sample():
    """u = 1 selects the last sample with positive weight (the draw is scaled by the running sum's
    own last value), never the zero-weight duplicates of a chosen centre at the end."""
    rng = np.random.default_rng(2)
    Z = np.concatenate([rng.normal(size=(60, 3)), np.zeros((5, 3))]).astype(np.float32)
    Z[0] = 0.0  # the first centre; rows 60..64 duplicate it
    K = 10
    U = np.ones((K, 2 + int(math.log(K))), np.float32)
    with jax.enable_x64(False):
        idx = np.asarray(jax.jit(nl.kmeans_plusplus, static_argnums=2)(None, jnp.asarray(Z), K, (np.int32(0), U)))
    assert idx[0] == 0 and len(set(idx.tolist())) == K and np.all(idx[1:] < 60)


# ------------------------------------------------------------------------ float32 numerics


def test_regulariser_is_absolute_in_float64_and_relative_in_float32():
    rng = np.random.default_rng(3)
    small = rng.normal(size=(200, 4)) * 0.1  # eps·tr ≪ 1e-6: scikit-learn's value in both
    big = rng.normal(size=(200, 4)) * 300.0 + 1e4
    with jax.enable_x64(True):
        assert nl.effective_reg_covar(jnp.asarray(big)) == nl.REG_COVAR
    with jax.enable_x64(False):
        assert float(nl.effective_reg_covar(jnp.asarray(small, jnp.float32))) == pytest.approx(nl.REG_COVAR, rel=1e-6)
        got = float(nl.effective_reg_covar(jnp.asarray(big, jnp.float32)))
    bc = big - big.mean(axis=0)
    want = nl.REL_REG * EPS32**2 * np.mean(np.sum(bc * bc, axis=1))
    assert want > 10 * nl.REG_COVAR and got == pytest.approx(want, rel=1e-4)


def test_float32_nleep_is_free_of_the_feature_scale():
    """With the relative regulariser the float32 fit at scale s is the fit at scale 1, scaled
    (powers of two: the arithmetic scales exactly; only the logarithms round differently)."""
    X, y = _relu_zoo(4, M=1)[0][0], _relu_zoo(4, M=1)[1]
    X = X / np.std(X) * 10.0  # eps·tr ≫ 1e-6 at both scales
    with pedjax.float32():
        a = pedjax.metrics.nleep(X, y)
        b = pedjax.metrics.nleep(X * np.float32(2.0**12), y)
    assert np.isfinite(a) and abs(a - b) <= 1e-5 * abs(a)


def test_second_moment_steps_are_float64_only():
    """The packed E/M steps trade a subtraction for speed; their rounding bound is for float64, so
    float32 always takes the centred (blocked) steps — chosen on the host and inside gmm_fit."""
    rng = np.random.default_rng(5)
    Z = rng.normal(size=(300, 6))
    assert nl._host_method(Z, 6, 256) == "packed"  # float64: the bound holds at this scale
    assert nl._host_method(Z.astype(np.float32), 6, 256) == "blocked"
    assert not nl._can_pack(300, 6, jnp.float32)
    M = Z[rng.choice(300, 8, replace=False)]
    with jax.enable_x64(False):
        Zf, Mf = jnp.asarray(Z, jnp.float32), jnp.asarray(M, jnp.float32)
        packed = jax.jit(lambda z, m: nl.gmm_fit(z, m, method="packed"))(Zf, Mf)
        blocked = jax.jit(lambda z, m: nl.gmm_fit(z, m, method="blocked"))(Zf, Mf)
        assert np.array_equal(np.asarray(packed.resp), np.asarray(blocked.resp))
        assert int(packed.n_iter_) == int(blocked.n_iter_)


def test_float32_em_stops_with_float64():
    """Same start, well-conditioned components: the float32 EM takes as many iterations as the
    float64 one (the convergence test sums the change sample by sample) and ends at the same fit."""
    rng = np.random.default_rng(6)
    K = 8
    Z = rng.normal(size=(K, 4))[np.arange(800) % K] * 2.5 + rng.normal(size=(800, 4)) * rng.uniform(0.5, 2, 4)
    Z = Z * 40.0 + 500.0
    M = Z[rng.choice(800, K, replace=False)]
    fit = jax.jit(lambda z, m: nl.gmm_fit(z, m))
    with jax.enable_x64(True):
        f64 = fit(jnp.asarray(Z), jnp.asarray(M))
    with jax.enable_x64(False):
        f32 = fit(jnp.asarray(Z, jnp.float32), jnp.asarray(M, jnp.float32))
    assert 3 < int(f64.n_iter_) < nl.MAX_ITER and int(f32.n_iter_) == int(f64.n_iter_)
    assert np.max(np.abs(np.asarray(f32.resp, float) - np.asarray(f64.resp))) < 1e-3
    assert abs(float(f32.lower_bound_) - float(f64.lower_bound_)) < 1e-3 * abs(float(f64.lower_bound_))


# ------------------------------------------------------------------------ a zoo's ranking


def _compare(feats, y):
    s64 = np.array([pedjax.metrics.nleep(X, y) for X in feats])
    with pedjax.float32():
        s32 = np.array([pedjax.metrics.nleep(X, y) for X in feats])
    return s64, s32


def test_float32_ranks_a_synthetic_zoo_like_float64():
    feats, y = _relu_zoo(7)
    s64, s32 = _compare(feats, y)
    assert np.all(np.isfinite(s64)) and np.all(np.isfinite(s32))
    assert ss.weightedtau(s32, s64)[0] >= 0.99
    r = _rel(s32, s64)
    assert np.median(r) < 1e-4 and r.max() < 1e-2


# ------------------------------------------------------------------------ the shipped zoo


def _shipped_features(task):
    from pedjax.cli.demo import shipped_zoo_available
    from pedjax.data import fashion

    if not fashion.available():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    if not shipped_zoo_available():
        pytest.skip("the shipped zoo is not built (pedjax zoo build)")
    from pedjax.features import extract_features

    return extract_features(None, task, "train")


@pytest.mark.slow
def test_float32_ranks_the_shipped_zoo_like_float64():
    """The shipped zoo's 27 members on fashion-rotated, statically and after PED (each precision
    moves the features itself): finite, weighted τ ≥ 0.99 between the precisions' rankings."""
    fs = _shipped_features("fashion-rotated")
    names, y = list(fs.features), np.asarray(fs.labels)
    F = [np.asarray(fs.features[n]) for n in names]
    s64, s32 = _compare(F, y)
    assert np.all(np.isfinite(s32[np.isfinite(s64)]))
    assert ss.weightedtau(s32, s64)[0] >= 0.99 and np.max(_rel(s32, s64)) < 1e-2
    cfg = pedjax.PEDConfig(nsigma=0.6)
    m64 = pedjax.ped_zoo(fs.features, y, cfg, fs.source_stats)
    with pedjax.float32():
        m32 = pedjax.ped_zoo(fs.features, y, cfg, fs.source_stats)
    p64 = np.array([pedjax.metrics.nleep(m64[n], y) for n in names])
    with pedjax.float32():
        p32 = np.array([pedjax.metrics.nleep(m32[n], y) for n in names])
    assert np.all(np.isfinite(p32[np.isfinite(p64)]))
    assert ss.weightedtau(p32, p64)[0] >= 0.99 and np.median(_rel(p32, p64)) < 1e-4
