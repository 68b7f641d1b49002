"""Issue 21, float64 definitions made well-conditioned where LayerNorm features made them rounding:

* NLEEP's k-means++ draws follow the canonical sample order of :mod:`pedjax.metrics._order`
  (first key the *signed* row sum with fixed ±1 signs, as the kNN / linear-probe folds). The plain
  row sum it used before is rounding noise for LayerNorm outputs (rows sum to ~1e-7), so after PED
  float64's own order — and score — was set by the last bits of the moved features (float32 vs
  float64 up to 4.8e-2 on the shipped zoo's random ViT).
* SFDA's power-method start: the published Sw·1 is kept wherever it is above the rounding level
  ``START_ULPS·ε·√D·‖Sw‖_F`` (ε: float32's or the computing dtype's, the larger), else the signed
  row sums Sw·s with the same signs (LayerNorm: Sw·1 = 0 in exact arithmetic).

The references are NumPy transcriptions of the documented rules (no pedjax code).
"""
from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference_impl import order_ref, signs_ref

import pedjax
from pedjax.metrics import nleep as _nleep_public  # noqa: F401  (registers the module)

nl = sys.modules["pedjax.metrics._nleep"]

pytestmark = pytest.mark.skipif(not jax.config.jax_enable_x64, reason="compares with float64")


def _layernorm_features(seed, N=240, D=24, C=4, signal=1.5):
    """Class-structured features through a LayerNorm without affine terms, in float32 (a random
    ViT's output): every row sums to 0 up to rounding."""
    rng = np.random.default_rng(seed)
    y = np.arange(N) % C
    raw = (signal * rng.normal(size=(C, D))[y] + rng.normal(size=(N, D))).astype(np.float32)
    z = raw - raw.mean(1, keepdims=True, dtype=np.float32)
    z = z / np.sqrt((z * z).mean(1, keepdims=True, dtype=np.float32) + np.float32(1e-3))
    return z.astype(np.float32), y


def _moved(X, y, seed):
    """A PED-like per-class shift computed in float64, and the same moved features rounded to float32."""
    shift = np.random.default_rng(100 + seed).normal(size=(int(y.max()) + 1, X.shape[1])) * 0.3
    m64 = X.astype(np.float64) + shift[y]
    return m64, m64.astype(np.float32)


# --------------------------------------------------------------------------- NLEEP


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nleep_order_is_the_documented_rule(seed):
    rng = np.random.default_rng(seed)
    X, y = _layernorm_features(seed)
    cases = [X, rng.normal(size=(50, 7)) + 3.0, np.repeat(rng.normal(size=(10, 5)), 3, axis=0)]  # ties: equal rows
    for Z in cases:
        want = order_ref(Z)
        order, _ = nl._host_order_and_draws(Z, 0, 4)  # the public function's order, both precisions
        np.testing.assert_array_equal(order, want)
        np.testing.assert_array_equal(np.asarray(nl.canonical_order(jnp.asarray(Z, jnp.float64))), want)
        if Z.dtype == np.float32:  # the traced float32 path (nleep_core): exact sums, the same order
            with jax.enable_x64(False):
                np.testing.assert_array_equal(np.asarray(nl.canonical_order(jnp.asarray(Z))), want)


@pytest.mark.parametrize("seed", [0, 1])
def test_nleep_order_of_moved_layernorm_features_survives_rounding(seed):
    """The old first key (plain row sum) orders PED-moved LayerNorm features by their rounding:
    float64 and the same features rounded to float32 give different orders; the signed sum does
    not."""
    X, y = _layernorm_features(seed)
    m64, m32 = _moved(X, y, seed)

    def plain(Z):
        Z = np.asarray(Z, np.float64)
        return np.lexsort((np.arange(len(Z)), Z[:, 0], np.sum(Z * Z, axis=1), np.sum(Z, axis=1)))

    assert not np.array_equal(plain(m64), plain(m32))  # the problem the signed key removes
    np.testing.assert_array_equal(order_ref(m64), order_ref(m32))
    np.testing.assert_array_equal(nl._host_order_and_draws(m64, 0, 20)[0], nl._host_order_and_draws(m32, 0, 20)[0])


def test_nleep_of_moved_layernorm_features_float32_matches_float64():
    X, y = _layernorm_features(3, N=200, D=16, C=4)
    m64, m32 = _moved(X, y, 3)
    with pedjax.precision("float64"), jax.enable_x64(True):
        a = nl.nleep(m64, y)
        a_rounded = nl.nleep(m32, y)  # float64 of its input rounded to float32: as well defined
    with pedjax.float32(), jax.enable_x64(False):
        b = nl.nleep(m32, y)
    assert abs(a_rounded - a) <= 1e-5 * abs(a)
    assert abs(b - a) <= 1e-5 * abs(a)


# --------------------------------------------------------------------------- SFDA

START_ULPS = 32.0  # the documented threshold (pedjax.metrics._sfda.START_ULPS)
EPS32 = float(np.finfo(np.float32).eps)


def _within_scatter_ref(X, y):
    X = np.asarray(X, np.float64)
    X = X - X.mean(0)
    means = np.stack([X[y == c].mean(0) for c in range(int(y.max()) + 1)])
    R = X - means[y]
    return R.T @ R / len(X)


def _iterative_A_ref(A, start, iters=3):
    """The published ``iterative_A`` from a given start."""
    x = start
    for _ in range(iters):
        t = A @ x
        yv = t / np.linalg.norm(t)
        t = A @ yv
        x = t / np.linalg.norm(t)
    return float(x @ A @ yv)


def _start_ref(A):
    ones = A.sum(1)
    D = A.shape[0]
    if np.linalg.norm(ones) > START_ULPS * EPS32 * np.sqrt(D) * np.linalg.norm(A):
        return ones, "published"
    return A @ signs_ref(D), "signed"


def test_sfda_start_is_the_published_one_unless_it_is_rounding():
    sf = sys.modules["pedjax.metrics._sfda"]
    assert sf.START_ULPS == START_ULPS
    rng = np.random.default_rng(0)
    y = np.arange(300) % 5
    relu = np.maximum(rng.normal(size=(300, 40)) + rng.normal(size=(5, 40))[y], 0.0)
    ln, yl = _layernorm_features(4, N=300, D=40, C=5)
    for X, lab, kind in ((relu, y, "published"), (ln, yl, "signed")):
        A = _within_scatter_ref(X, lab)
        start, got_kind = _start_ref(A)
        assert got_kind == kind
        want = _iterative_A_ref(A, start)
        assert float(sf.power_top_eigenvalue(jnp.asarray(A))) == pytest.approx(want, rel=1e-12)
    # generic features: the published start exactly (float64 unchanged bit for bit)
    A = _within_scatter_ref(relu, y)
    published = float(sf._power(lambda v: jnp.asarray(A) @ v, jnp.asarray(A.sum(1))))
    assert float(sf.power_top_eigenvalue(jnp.asarray(A))) == published


@pytest.mark.parametrize("seed", [0, 1])
def test_sfda_of_moved_layernorm_features_is_well_defined(seed):
    """LayerNorm features moved by a per-class shift: float64 SFDA of the float64 features, of the
    same features rounded to float32, and float32 SFDA agree (the published start Sw·1 = 0 in
    exact arithmetic made λ_max, hence the shrinkage, depend on the rounding)."""
    from pedjax import metrics

    X, y = _layernorm_features(seed, N=300, D=40, C=5, signal=0.3)
    m64, m32 = _moved(X, y, seed)
    A64, A32 = _within_scatter_ref(m64, y), _within_scatter_ref(m32, y)
    assert _start_ref(A64)[1] == _start_ref(A32)[1] == "signed"
    with pedjax.precision("float64"), jax.enable_x64(True):
        a, a_rounded = metrics.sfda(m64, y), metrics.sfda(m32, y)
    with pedjax.float32(), jax.enable_x64(False):
        b = metrics.sfda(m32, y)
    assert abs(a_rounded - a) <= 1e-6 * abs(a)
    assert abs(b - a) <= 1e-5 * abs(a)
