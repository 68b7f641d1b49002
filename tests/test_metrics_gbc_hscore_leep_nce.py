"""GBC, H-score, LEEP and NCE against independent NumPy/SciPy transcriptions of the references.

References re-implemented here in plain NumPy (loops over classes, no shared code with pedjax):
  * GBC: google-research ``stable_transfer/transferability/gbc.py``;
  * H-score: the paper / authors' code ``trace(pinv(Cov_f) @ Cov_g)`` (cut-off: pedjax's rcond);
  * LEEP: thuml/LogME ``LEEP.py``;
  * NCE: thuml/LogME ``NCE.py`` with 0·log 0 = 0 (entropies by ``scipy.stats.entropy``).
Shapes are reused across tests so the jit caches hit.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import pedjax  # noqa: F401  (turns x64 on)
from pedjax import metrics
from pedjax.metrics._gbc import gbc_core, gbc_log_core, neg_exp
from pedjax.metrics._hscore import hscore_core
from pedjax.metrics._leep import leep_core
from pedjax.metrics._nce import nce_core

pytestmark = pytest.mark.skipif(not jax.config.jax_enable_x64, reason="float64 parity needs jax_enable_x64")

RTOL = 1e-6
N_SOURCE = 7  # source classes for LEEP / NCE


# ---------------------------------------------------------------------------------------------
# independent references


def gbc_ref(X, y, gaussian_type="spherical"):
    stats = {}
    for c in np.unique(y):
        f = X[y == c]
        stats[c] = (f.mean(axis=0), np.maximum(f.var(axis=0), 1e-4))
    total = 0.0
    for c1 in stats:
        for c2 in stats:
            if c1 == c2:
                continue
            m1, s1 = stats[c1]
            m2, s2 = stats[c2]
            if gaussian_type == "spherical":
                s1, s2 = np.mean(s1), np.mean(s2)
            avg = (s1 + s2) / 2
            first = np.sum((m1 - m2) ** 2 / avg) / 8
            second = np.sum(np.log(avg)) - 0.5 * np.sum(np.log(s1)) - 0.5 * np.sum(np.log(s2))
            total += np.exp(-(first + 0.5 * second))
    return -total


def _cov(A):
    A0 = A - A.mean(axis=0, keepdims=True)
    return A0.T @ A0 / (A.shape[0] - 1)


def hscore_ref(X, y, rcond=None):
    N, D = X.shape
    if rcond is None:
        rcond = 10 * max(N, D) * np.finfo(np.float64).eps
    g = np.zeros_like(X)
    for c in np.unique(y):
        g[y == c] = X[y == c].mean(axis=0)
    return float(np.trace(np.linalg.pinv(_cov(X), rtol=rcond) @ _cov(g)))


def leep_ref(P, y):
    N, Cs = P.shape
    Ct = int(y.max()) + 1
    joint = np.zeros((Ct, Cs))
    for t in range(Ct):
        joint[t] = P[y == t].sum(axis=0) / N
    cond = (joint / joint.sum(axis=0, keepdims=True)).T  # [Cs, Ct] = P(y | z)
    pred = P @ cond
    return float(np.mean(np.log(pred[np.arange(N), y])))


def nce_ref(z, y):
    h = 0.0
    for s in np.unique(z):
        mask = z == s
        counts = np.array([np.sum(y[mask] == t) for t in np.unique(y)], dtype=float)
        h += mask.mean() * scipy.stats.entropy(counts)
    return -h


# ---------------------------------------------------------------------------------------------
# data


def _labels(rng, n, sizes):
    y = np.repeat(np.arange(len(sizes)), sizes)
    assert y.size == n
    return rng.permutation(y)


def _features(rng, y, d, sep=1.5):
    C = int(y.max()) + 1
    centres = rng.normal(scale=sep, size=(C, d))
    return centres[y] + rng.normal(size=(y.size, d)) * rng.uniform(0.5, 2.0, size=d)


def make_case(name, seed):
    rng = np.random.default_rng(seed)
    if name == "two_classes":  # N=30, D=5, C=2
        y = _labels(rng, 30, [17, 13])
        X = _features(rng, y, 5)
    elif name == "two_classes_singleton":  # same shape: one class has one sample
        y = _labels(rng, 30, [29, 1])
        X = _features(rng, y, 5)
    elif name == "many_classes":  # N=200, D=8, C=50
        y = rng.permutation(np.concatenate([np.arange(50), rng.integers(0, 50, 150)]))
        X = _features(rng, y, 8)
    elif name == "d_gt_n":  # N=20, D=40, C=3
        y = _labels(rng, 20, [9, 7, 4])
        X = _features(rng, y, 40)
    elif name == "imbalanced_singleton":  # N=60, D=6, C=4
        y = _labels(rng, 60, [45, 10, 4, 1])
        X = _features(rng, y, 6)
    elif name == "constant_features":  # same shape, two constant columns
        y = _labels(rng, 60, [45, 10, 4, 1])
        X = _features(rng, y, 6)
        X[:, 1] = 0.1
        X[:, 4] = -3.7
    else:  # pragma: no cover
        raise KeyError(name)
    logits = 2.0 * rng.normal(size=(y.size, N_SOURCE)) + 3.0 * np.eye(N_SOURCE)[y % N_SOURCE]
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    z = np.where(rng.uniform(size=y.size) < 0.6, y % N_SOURCE, rng.integers(0, N_SOURCE, y.size))
    return X, y, P, z


CASES = ["two_classes", "two_classes_singleton", "many_classes", "d_gt_n", "imbalanced_singleton",
         "constant_features"]
SEEDS = [0, 1]


def _close(a, b, rtol=RTOL):
    assert np.isfinite(a), a
    np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# parity


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", CASES)
def test_parity(case, seed):
    X, y, P, z = make_case(case, seed)
    _close(metrics.gbc(X, y), gbc_ref(X, y, "spherical"))
    _close(metrics.gbc(X, y, gaussian_type="diagonal"), gbc_ref(X, y, "diagonal"))
    _close(metrics.hscore(X, y), hscore_ref(X, y))
    _close(metrics.leep(P, y), leep_ref(P, y))
    _close(metrics.nce(z, y), nce_ref(z, y))


def test_hscore_rcond_option_and_paper_not_elementwise():
    X, y, _, _ = make_case("imbalanced_singleton", 3)
    _close(metrics.hscore(X, y, rcond=1e-5), hscore_ref(X, y, rcond=1e-5))
    # google-research multiplies element-wise; the paper (followed here) uses the matrix product
    g = np.zeros_like(X)
    for c in np.unique(y):
        g[y == c] = X[y == c].mean(axis=0)
    elementwise = np.trace(np.linalg.pinv(_cov(X), rtol=1e-5) * _cov(g))
    assert abs(metrics.hscore(X, y) - elementwise) > 1e-3 * abs(elementwise)


def test_hscore_degenerate_values():
    # D >= N: every kept direction is explained by the class means, so H = C - 1
    X, y, _, _ = make_case("d_gt_n", 5)
    _close(metrics.hscore(X, y), 2.0)
    # all features constant: nothing to explain, the core gives H = 0 (not rounding noise); the
    # public function gives a degenerate model the uninformative score -inf (docs/design.md)
    Xc = np.full((30, 5), 0.1)
    _, y2, _, _ = make_case("two_classes", 0)
    c2 = np.unique(y2, return_inverse=True)[1].astype(np.int32)
    assert float(jax.jit(hscore_core, static_argnums=2)(jnp.asarray(Xc), jnp.asarray(c2), 2)) == 0.0
    assert metrics.hscore(Xc, y2) == -np.inf
    # constant features add nothing: same score as without them
    X, y, _, _ = make_case("constant_features", 2)
    _close(metrics.hscore(X, y), hscore_ref(X[:, [0, 2, 3, 5]], y))


def test_gbc_degenerate_values():
    # all classes identical -> every BC is 1 -> the core's GBC = -C(C-1); the public function
    # gives such a degenerate model (every sample the same point) the uninformative -inf
    X = np.tile(np.arange(5.0), (30, 1))
    _, y, _, _ = make_case("two_classes", 0)
    c = jnp.asarray(np.unique(y, return_inverse=True)[1].astype(np.int32))
    for kind in ("spherical", "diagonal"):
        core = jax.jit(functools.partial(gbc_core, gaussian_type=kind), static_argnums=2)
        _close(float(core(jnp.asarray(X), c, 2)), -2.0)
        assert metrics.gbc(X, y, gaussian_type=kind) == -np.inf


def test_leep_unused_source_class_is_finite():
    X, y, P, _ = make_case("two_classes", 4)
    P0 = np.concatenate([P[:, :3], np.zeros((P.shape[0], 1)), P[:, 3:-1]], axis=1)  # still 7 columns
    P0 /= P0.sum(axis=1, keepdims=True)
    val = metrics.leep(P0, y)
    _close(val, leep_ref(np.delete(P0, 3, axis=1), y))


def test_nce_values():
    # source labels determine the target exactly -> H(Y|Z) = 0
    y = np.array([0, 0, 1, 1, 2, 2])
    assert metrics.nce(y * 10 + 5, y) == 0.0
    # one source class: NCE = -H(Y)
    y = np.array([0, 0, 0, 1])
    _close(metrics.nce(np.zeros(4, int), y), -scipy.stats.entropy([3, 1]))


# ---------------------------------------------------------------------------------------------
# label coding, jit + vmap


def test_label_values_do_not_matter():
    X, y, P, z = make_case("d_gt_n", 7)
    y2 = np.array([3, 7, 42])[y]
    z2 = np.array([-5, 0, 2, 9, 11, 100, 1000])[z]
    for fn, A in [(metrics.gbc, X), (metrics.hscore, X), (metrics.leep, P)]:
        assert fn(A, y2) == pytest.approx(fn(A, y), rel=1e-12, abs=1e-12)
    assert metrics.nce(z2, y2) == pytest.approx(metrics.nce(z, y), rel=1e-12, abs=1e-12)
    assert metrics.gbc(X, y2, "diagonal") == pytest.approx(metrics.gbc(X, y, "diagonal"), rel=1e-12)


@pytest.mark.parametrize("case", ["two_classes", "d_gt_n"])
def test_jit_vmap_matches_one_by_one(case):
    stacks = [make_case(case, s) for s in (10, 11, 12)]
    _, y, _, _ = stacks[0]
    Xs = np.stack([s[0] for s in stacks])
    Ps = np.stack([s[2] for s in stacks])
    Zs = np.stack([np.eye(N_SOURCE)[s[3]] for s in stacks])
    C = int(np.unique(y).size)
    yj = jnp.asarray(y, jnp.int32)

    def batched(core, A, **opts):
        f = jax.jit(jax.vmap(functools.partial(core, num_classes=C, **opts), in_axes=(0, None)))
        return np.asarray(f(jnp.asarray(A), yj))

    got = {
        "gbc": batched(gbc_core, Xs),
        "gbc_diag": batched(gbc_core, Xs, gaussian_type="diagonal"),
        "hscore": batched(hscore_core, Xs),
        "leep": batched(leep_core, Ps),
        "nce": batched(nce_core, Zs),
    }
    for m, (X, _, P, z) in enumerate(stacks):
        np.testing.assert_allclose(got["gbc"][m], metrics.gbc(X, y), rtol=1e-10)
        np.testing.assert_allclose(got["gbc_diag"][m], metrics.gbc(X, y, "diagonal"), rtol=1e-10)
        np.testing.assert_allclose(got["hscore"][m], metrics.hscore(X, y), rtol=1e-10)
        np.testing.assert_allclose(got["leep"][m], metrics.leep(P, y), rtol=1e-10)
        np.testing.assert_allclose(got["nce"][m], metrics.nce(z, y), rtol=1e-10)


def test_registry_entries():
    R = metrics.REGISTRY
    assert R["gbc"].core is gbc_log_core and R["gbc"].finish is neg_exp and R["gbc"].static == ("gaussian_type",)
    assert R["hscore"].input == "features"
    assert R["leep"].input == "probs" and R["nce"].input == "labels"
    for name in ("gbc", "hscore", "leep", "nce"):
        assert hasattr(metrics, name)


# ---------------------------------------------------------------------------------------------
# validation


@pytest.mark.parametrize("fn", [metrics.gbc, metrics.hscore, metrics.leep])
def test_bad_matrix_input(fn):
    X, y, P, _ = make_case("two_classes", 0)
    A = P if fn is metrics.leep else X
    name = "source_probs" if fn is metrics.leep else "X"
    bad = A.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=name):
        fn(bad, y)
    with pytest.raises(ValueError, match=name):
        fn(A[:, 0], y)  # wrong ndim
    with pytest.raises(ValueError, match=name):
        fn(A[:-1], y)  # mismatched N
    with pytest.raises(ValueError, match="class"):
        fn(A, np.zeros_like(y))  # one class
    with pytest.raises(ValueError, match="y"):
        fn(A, y.astype(float) + np.where(np.arange(y.size) == 2, np.nan, 0.0))


def test_bad_options_and_probs():
    X, y, P, _ = make_case("two_classes", 0)
    with pytest.raises(ValueError, match="gaussian_type"):
        metrics.gbc(X, y, gaussian_type="full")
    with pytest.raises(ValueError, match="rcond"):
        metrics.hscore(X, y, rcond=-1.0)
    neg = P.copy()
    neg[0, 0] = -0.1
    with pytest.raises(ValueError, match="source_probs"):
        metrics.leep(neg, y)
    zero = P.copy()
    zero[5] = 0.0
    with pytest.raises(ValueError, match="source_probs"):
        metrics.leep(zero, y)


def test_bad_nce_input():
    _, y, _, z = make_case("two_classes", 0)
    with pytest.raises(ValueError, match="source_labels"):
        metrics.nce(z.astype(float) + np.where(np.arange(z.size) == 1, np.nan, 0.0), y)
    with pytest.raises(ValueError, match="source_labels"):
        metrics.nce(z[:, None], y)  # wrong ndim
    with pytest.raises(ValueError, match="source_labels"):
        metrics.nce(z[:-1], y)  # mismatched N
    with pytest.raises(ValueError, match="class"):
        metrics.nce(z, np.ones_like(y))  # one target class
    assert np.isfinite(metrics.nce(np.zeros_like(z), y))  # one source class is fine


def test_gbc_below_float32_range():
    """Wide, well-separated features (D ≫ N): GBC ≈ −1e−100, far below float32's range. The
    registered core returns log(−GBC) and the score is finished in float64, so float32 scores
    agree with float64 ones (and with the reference) instead of all underflowing to −0.0; the
    traced gbc_core (−exp in the core's dtype) does underflow in float32, as documented."""
    rng = np.random.default_rng(5)
    y = np.repeat(np.arange(4), 10)
    got = {}
    for k, sep in enumerate((0.9, 1.0, 1.1)):
        X = rng.standard_normal((40, 2000)) + sep * rng.standard_normal((4, 2000))[y]
        ref = gbc_ref(X, y)
        assert 0 > ref > -1e-60  # below float32's smallest subnormal (1.4e-45)
        s64, s32 = metrics.gbc(X, y), metrics.gbc(X, y, precision="float32")
        _close(s64, ref, rtol=1e-10)
        assert s32 < 0 and abs(s32 - s64) <= 1e-3 * abs(s64), (k, s32, s64)
        got[k] = s64
        with pedjax.float32():
            traced = jax.jit(gbc_core, static_argnums=2)(jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.int32), 4)
        assert float(traced) == 0.0
    assert got[0] < got[1] < got[2]  # more separation, less overlap, higher score
