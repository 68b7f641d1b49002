"""Metrics II: NLEEP (JAX Gaussian mixture), PARC, TransRate, ETran — parity with the published
formulations (re-created here in NumPy/scikit-learn/scipy), robustness, vmap, validation."""
from __future__ import annotations

import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as sps
import scipy.stats as ss
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

import pedjax  # noqa: F401  (turns on x64)
from pedjax import metrics
from pedjax.metrics import _pca

nl = sys.modules["pedjax.metrics._nleep"]
pm = sys.modules["pedjax.metrics._parc"]
tm = sys.modules["pedjax.metrics._transrate"]
em = sys.modules["pedjax.metrics._etran"]

# One shape family for every NLEEP test, so compiled executables are shared.
N, D, C = 160, 24, 4
K = 5 * C


def _blobs(seed, sep=0.7, n=N, d=D, c=C):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    X = rng.normal(size=(c, d))[y] * sep + rng.normal(size=(n, d))
    return X, y


@pytest.fixture(scope="module")
def blobs():
    return _blobs(1)


@pytest.fixture(scope="module")
def sk_fit(blobs):
    """scikit-learn's PCA(0.8) + GaussianMixture from given means (the parity reference)."""
    X, y = blobs
    Z = PCA(n_components=0.8, svd_solver="full").fit_transform(X)
    M = Z[np.random.default_rng(7).choice(N, K, replace=False)]
    gm = GaussianMixture(K, means_init=M, init_params="k-means++", random_state=0).fit(Z)
    return Z, M, gm


_gmm = jax.jit(nl.gmm_fit)


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


# ----------------------------------------------------------------------------- PCA


@pytest.mark.parametrize("shape", [(60, 40), (40, 60)])
def test_pca_scores_match_sklearn_with_signs(shape):
    rng = np.random.default_rng(0)
    X = rng.normal(size=shape) @ rng.normal(size=(shape[1], shape[1]))
    ref = PCA(n_components=7, svd_solver="full").fit_transform(X)
    got = np.asarray(_pca.pca_scores(jnp.asarray(X), 7))
    assert _rel(got, ref) < 1e-10


def test_pca_component_rule_matches_sklearn():
    rng = np.random.default_rng(3)
    for decay in (0.5, 0.05, 0.005):
        X = rng.normal(size=(100, 30)) * np.geomspace(1, decay, 30)
        ev, _ = _pca.pca_spectrum(jnp.asarray(X), 1)
        k = _pca.n_components_for_ratio(np.asarray(ev), 0.8)
        assert k == PCA(n_components=0.8, svd_solver="full").fit(X).n_components_
        assert int(_pca.n_components_for_ratio_jax(ev, 0.8)) == k


# ----------------------------------------------------------------------------- NLEEP


def _reference_nleep(prob, y, log=False):
    """The published aggregation (PED/SFDA metrics.py NLEEP), from p(z|x)."""
    n, c = len(y), int(y.max()) + 1
    pyz = np.stack([prob[y == k].sum(0) / n for k in range(c)])
    pyx = prob @ (pyz / pyz.sum(0)).T
    p = pyx[np.arange(n), y]
    return np.mean(np.log(p)) if log else np.mean(p)


def test_gmm_matches_sklearn_from_same_means(sk_fit):
    Z, M, gm = sk_fit
    fit = _gmm(jnp.asarray(Z), jnp.asarray(M))
    assert int(fit.n_iter_) == gm.n_iter_ and bool(fit.converged_) == gm.converged_
    assert _rel(fit.weights_, gm.weights_) < 1e-6
    assert _rel(fit.means_, gm.means_) < 1e-6
    assert _rel(fit.covariances_, gm.covariances_) < 1e-6
    assert _rel(fit.precisions_cholesky_, gm.precisions_cholesky_) < 1e-6
    assert abs(float(fit.lower_bound_) - gm.lower_bound_) < 1e-6 * abs(gm.lower_bound_)
    assert np.max(np.abs(np.asarray(fit.resp) - gm.predict_proba(Z))) < 1e-6


def test_packed_and_sparse_steps_equal_blocked_steps(sk_fit):
    """The second-moment ("packed") E/M steps (used from 128 components on) and the sparse
    M-step compute the same Mahalanobis distances and covariances as the centred blocked steps."""
    Z, _, gm = sk_fit
    Zc = jnp.asarray(Z - Z.mean(0))
    mu = jnp.asarray(gm.means_ - Z.mean(0))
    P = jnp.asarray(gm.precisions_cholesky_)
    Q = P @ jnp.swapaxes(P, -1, -2)
    resp = jnp.asarray(gm.predict_proba(Z))
    nk = jnp.sum(resp, axis=0) + 10 * np.finfo(float).eps
    d = Z.shape[1]
    iu = tuple(jnp.asarray(a) for a in np.triu_indices(d))
    hard = jax.nn.one_hot(jnp.argmax(resp, axis=1), K, dtype=resp.dtype)  # settled: one-hot

    @jax.jit
    def both(Zc, mu, P, Q, resp, nk, hard):
        A = Zc[:, iu[0]] * Zc[:, iu[1]]
        mu_r = (resp.T @ Zc) / nk[:, None]
        return (nl._maha_packed(Zc, A, iu, mu, Q), nl._maha_blocked(Zc, mu, P),
                nl._cov_packed(A, iu, resp, mu_r, nk), nl._cov_blocked(Zc, resp, mu_r, nk),
                nl._second_moments(A, hard), hard.T @ A)

    old = nl._SPARSE_MIN_K
    nl._SPARSE_MIN_K = 1  # take the sparse M-step at this size (read at trace time)
    try:
        mp, mb, cp, cb, sparse, dense = both(Zc, mu, P, Q, resp, nk, hard)
    finally:
        nl._SPARSE_MIN_K = old
    assert _rel(mp, mb) < 1e-9
    assert _rel(cp, cb) < 1e-9
    assert _rel(sparse, dense) < 1e-12
    assert bool(nl.packed_is_accurate(Zc)) and not bool(nl.packed_is_accurate(Zc * 1e6))


def test_nleep_score_matches_reference_from_same_means(blobs, sk_fit):
    X, y = blobs
    Z, M, gm = sk_fit
    prob = gm.predict_proba(Z)
    got = metrics.nleep(X, y, means_init=M)
    assert abs(got - _reference_nleep(prob, y)) <= 1e-6 * abs(_reference_nleep(prob, y))
    got_log = metrics.nleep(X, y, means_init=M, log=True)
    assert abs(got_log - _reference_nleep(prob, y, log=True)) <= 1e-6 * abs(_reference_nleep(prob, y, log=True))


def test_nleep_deterministic_seeded_and_invariant(blobs):
    X, y = blobs
    a = metrics.nleep(X, y)
    assert a == metrics.nleep(X, y)  # bit for bit
    assert 0.0 < a <= 1.0
    assert np.isfinite(metrics.nleep(X, y, seed=5))
    perm = np.random.default_rng(0).permutation(N)
    assert abs(metrics.nleep(X[perm], y[perm]) - a) < 1e-9
    renamed = np.array([40, -3, 7, 11])[y]
    assert abs(metrics.nleep(X, renamed) - a) < 1e-9
    lg = metrics.nleep(X, y, log=True)
    assert np.isfinite(lg) and lg <= 0.0


def test_nleep_kmeanspp_depends_only_on_seed(blobs):
    X, _ = blobs
    Z = jnp.asarray(X[:, :5])
    f = jax.jit(nl.kmeans_plusplus, static_argnums=2)
    i0 = np.asarray(f(jax.random.key(0), Z, K))
    assert np.array_equal(i0, np.asarray(f(jax.random.key(0), Z, K)))
    assert len(set(i0.tolist())) == K  # distinct samples (continuous data)


def test_lloyd_matches_sklearn_kmeans(sk_fit):
    from sklearn.cluster import KMeans

    Z = sk_fit[0]
    centres = Z[np.random.default_rng(9).choice(N, K, replace=False)]
    ref = KMeans(n_clusters=K, init=centres, n_init=1).fit(Z)
    got = np.asarray(jax.jit(nl.lloyd)(jnp.asarray(Z), jnp.asarray(centres)))
    assert np.array_equal(got, ref.labels_)
    # scikit-learn's GaussianMixture start from those labels (init_params="kmeans")
    resp = np.eye(K)[ref.labels_]
    gm = GaussianMixture(K, init_params="kmeans", random_state=0)
    gm._initialize(Z, resp)  # the state its fit starts from, for these labels
    fit0 = jax.jit(lambda z, r: nl.gmm_fit(z, resp_init=r, max_iter=0))(jnp.asarray(Z), jnp.asarray(resp))
    assert _rel(fit0.weights_, gm.weights_) < 1e-12 and _rel(fit0.means_, gm.means_) < 1e-12
    assert _rel(fit0.covariances_, gm.covariances_) < 1e-10


def test_gmm_vmaps_across_models(sk_fit):
    Z = sk_fit[0]
    rng = np.random.default_rng(2)
    Zs = jnp.asarray(np.stack([Z, 2.0 * Z[::-1], Z + rng.normal(size=Z.shape)]))
    Ms = Zs[:, rng.choice(N, K, replace=False)]
    batched = jax.jit(jax.vmap(nl.gmm_fit))(Zs, Ms)
    for m in range(3):
        one = _gmm(Zs[m], Ms[m])
        assert int(one.n_iter_) == int(batched.n_iter_[m])
        assert _rel(one.weights_, batched.weights_[m]) < 1e-9
        assert np.max(np.abs(np.asarray(one.resp) - np.asarray(batched.resp[m]))) < 1e-9


def test_nleep_core_vmaps_and_matches_public():
    """The registered core, vmapped over a model axis with one static PCA width, equals the
    public function; a model whose 80 % variance needs more columns than the width gets NaN."""
    models = [_blobs(4, 1.0)[0], _blobs(5, 2.0)[0], _blobs(3, 0.5)[0]]
    y = _blobs(4)[1]
    ks = [nl.nleep_pca_components(X) for X in models]
    width = 13
    assert ks[0] <= width and ks[1] <= width < ks[2]
    core = jax.jit(jax.vmap(nl.nleep_core, in_axes=(0, None, None, None, None, None, None)), static_argnums=(2, 3, 6))
    assert nl._use_packed(N, width, K, jnp.float64) is False  # few components: one path only
    got = np.asarray(core(jnp.asarray(np.stack(models)), jnp.asarray(y, jnp.int32), C, 5, 0, False, width))
    np.testing.assert_allclose(got[:2], [metrics.nleep(X, y) for X in models[:2]], rtol=1e-9, atol=1e-12)
    assert np.isnan(got[2])


def test_nleep_finite_where_the_published_gmm_fails():
    """Huge-scale, nearly rank-1 classes: scikit-learn's float64 GaussianMixture raises
    "ill-defined empirical covariance"; pedjax's covariance floor keeps the score finite."""
    rng = np.random.default_rng(0)
    y = np.arange(N) % C
    dirs, t = rng.normal(size=(C, D)), rng.normal(size=N)
    X = (dirs[y] * t[:, None] + 0.3 * rng.normal(size=(C, D))[y]) * 1e7 + 1e-3 * rng.normal(size=(N, D))
    Z = PCA(n_components=0.8).fit_transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="ill-defined empirical covariance"):
            GaussianMixture(K, random_state=0).fit(Z)
    s = metrics.nleep(X, y)
    assert np.isfinite(s) and 0.0 <= s <= 1.0
    assert np.isfinite(metrics.nleep(X.astype(np.float32), y))


def test_covariance_floor_handles_indefinite_matrices():
    cov = jnp.asarray(np.stack([np.diag([-4.0, 1.0, 1e-6]), np.eye(3)]))
    P, Q, logdet = jax.jit(nl._precisions)(cov, jnp.asarray(1e-6))
    assert np.all(np.isfinite(np.asarray(P))) and np.all(np.isfinite(np.asarray(logdet)))
    # the indefinite one is floored: retried with +1e-6 on the diagonal, then its clipped diagonal
    np.testing.assert_allclose(np.diag(np.asarray(Q[0])), [1e6, 1.0, 1e6], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(Q[1]), np.eye(3), rtol=1e-12)


def test_nleep_validation(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="component_ratio"):
        metrics.nleep(X, y, component_ratio=0)
    with pytest.raises(ValueError, match="means_init"):
        metrics.nleep(X, y, means_init=np.zeros((3, 2)))
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="X"):
        metrics.nleep(bad, y)
    with pytest.raises(ValueError, match="y"):
        metrics.nleep(X, np.zeros(N))


# ----------------------------------------------------------------------------- PARC


def _reference_parc(X, y, n_dims=32):
    """PARC with exact PCA and the exact two-valued label RDM, via scipy."""
    F = StandardScaler().fit_transform(PCA(n_components=n_dims, svd_solver="full").fit_transform(X))
    r1 = 1 - np.corrcoef(F)
    c = int(y.max()) + 1
    r2 = (y[:, None] != y[None, :]) * (1 + 1 / (c - 1))
    iu = np.triu_indices(len(y), 1)
    return ss.spearmanr(r1[iu], r2[iu])[0] * 100


def test_rankdata_average_matches_scipy():
    a = np.random.default_rng(0).integers(0, 15, size=300).astype(float)
    np.testing.assert_array_equal(np.asarray(jax.jit(pm.rankdata_average)(jnp.asarray(a))), ss.rankdata(a))


@pytest.mark.parametrize("host", [True, False])
@pytest.mark.parametrize("seed,n,levels", [(0, 500, 7), (1, 2000, 40), (2, 333, 1000000)])
def test_spearman_binary_matches_scipy_on_both_paths(host, seed, n, levels):
    """Host (NumPy) and XLA rank statistics against scipy, with ties, a mask and uneven groups."""
    from pedjax import _linalg

    with _linalg.host_kernels(host):
        _check_spearman_binary(seed, n, levels)


def _check_spearman_binary(seed, n, levels):
    rng = np.random.default_rng(seed)
    v = rng.integers(0, levels, size=n).astype(float) / levels  # many ties when levels is small
    b = rng.random(n) < 0.3 + 0.4 * rng.random()
    valid = rng.random(n) < 0.8
    got = float(pm.spearman_binary(jnp.asarray(v), jnp.asarray(b), jnp.asarray(valid)))
    ref = ss.spearmanr(v[valid], b[valid].astype(float))[0]
    assert abs(got - ref) <= 1e-10 * max(1.0, abs(ref))
    # batched over a leading axis (score_zoo vmaps the metric): the same numbers per row
    V = np.stack([v, v[::-1]])
    rows = jax.vmap(pm.spearman_binary, in_axes=(0, None, None))(jnp.asarray(V), jnp.asarray(b), jnp.asarray(valid))
    ref2 = ss.spearmanr(v[::-1][valid], b[valid].astype(float))[0]
    np.testing.assert_allclose(np.asarray(rows), [ref, ref2], rtol=1e-10, atol=1e-12)


def test_parc_matches_scipy():
    X, y = _blobs(11, sep=0.8, n=150, d=40, c=5)
    got = metrics.parc(X, y, n_dims=16)
    ref = _reference_parc(X, y, 16)
    assert abs(got - ref) <= 1e-6 * abs(ref)


@pytest.mark.parametrize("seed,rank", [(0, 6), (1, 11)])
def test_parc_rank_deficient_features_score_their_exact_arithmetic_value(seed, rank):
    """Features of rank r < n_dims: the components beyond r are zero in exact arithmetic
    (StandardScaler leaves constant columns alone), not z-scored rounding noise; so the score is
    that reference and does not move with the last bits of the input."""
    rng = np.random.default_rng(seed)
    y = np.arange(150) % 5
    X = (rng.normal(size=(5, rank))[y] + rng.normal(size=(150, rank))) @ rng.normal(size=(rank, 40))
    F = StandardScaler().fit_transform(PCA(n_components=16, svd_solver="full").fit_transform(X))
    F[:, rank:] = 0.0
    r1 = 1 - np.corrcoef(F)
    r2 = (y[:, None] != y[None, :]).astype(float)
    iu = np.triu_indices(len(y), 1)
    ref = ss.spearmanr(r1[iu], r2[iu])[0] * 100
    got = metrics.parc(X, y, n_dims=16)
    assert abs(got - ref) <= 1e-6 * abs(ref)
    wiggled = metrics.parc(X * (1 + 1e-15 * rng.standard_normal(X.shape)), y, n_dims=16)
    assert abs(wiggled - got) <= 1e-6 * abs(got)


def test_parc_subsamples_per_class_with_labels():
    X, y = _blobs(12, sep=0.8, n=150, d=40, c=5)
    keep = pm.stratified_subsample(y.astype(np.int32), 100, 0)
    assert np.all(np.bincount(y[keep]) == 20)  # 150 → 100: rate 2/3 per class
    got = metrics.parc(X, y, n_dims=16, max_samples=100)
    assert got == metrics.parc(X, y, n_dims=16, max_samples=100)  # seeded
    assert abs(got - _reference_parc(X[keep], y[keep], 16)) <= 1e-6 * abs(got)
    with pytest.raises(ValueError, match="n_dims"):
        metrics.parc(X, y, n_dims=0)


# ----------------------------------------------------------------------------- TransRate


def _reference_transrate(Z, y, eps=1e-4):
    """The paper's code (Huang et al., ICML 2022, appendix)."""

    def rate(Z):
        n, d = Z.shape
        return 0.5 * np.linalg.slogdet(np.eye(d) + 1 / (n * eps) * Z.T @ Z)[1]

    Z = Z - Z.mean(0, keepdims=True)
    k = int(y.max() + 1)
    return rate(Z) - sum(rate(Z[y == i]) for i in range(k)) / k


@pytest.mark.parametrize("shape", [(60, 80, 3), (200, 12, 4)])
def test_transrate_matches_paper(shape):
    n, d, c = shape
    X, y = _blobs(5, n=n, d=d, c=c)
    assert abs(metrics.transrate(X, y) - _reference_transrate(X, y)) <= 1e-9 * abs(_reference_transrate(X, y))
    assert tm._sample_space(n, d, c) == (d > n)


def test_transrate_both_spaces_agree():
    X, y = _blobs(6, n=60, d=20, c=3)
    Xj, yj = jnp.asarray(X), jnp.asarray(y, jnp.int32)
    a = float(jax.jit(lambda X, y: tm.transrate_core(X, y, 3))(Xj, yj))  # a fresh trace each
    old = tm._sample_space
    tm._sample_space = lambda *args: not old(*args)
    try:
        b = float(jax.jit(lambda X, y: tm.transrate_core(X, y, 3))(Xj, yj))
    finally:
        tm._sample_space = old
    assert abs(a - b) <= 1e-9 * abs(a)
    assert abs(a - _reference_transrate(X, y)) <= 1e-9 * abs(a)
    with pytest.raises(ValueError, match="eps"):
        metrics.transrate(X, y, eps=0)


# ----------------------------------------------------------------------------- ETran


def _reference_etran_parts(X, y):
    """NumPy re-creation of the ETran repository's Energy_Score(X, 0.5, 'bot') and LDA_Score."""
    e = sps.logsumexp(X, axis=1)
    energy = e[np.argsort(e)[: int(0.5 * 10) * len(e) // 1000]].mean()
    classes, yy = np.unique(y, return_inverse=True)
    n, d = X.shape
    cnt = np.bincount(yy)
    priors = cnt / n
    means = np.zeros((len(classes), d))
    np.add.at(means, yy, X)
    means /= cnt[:, None]
    Sw = sum(priors[c] * np.cov(X[yy == c].T, bias=1) for c in range(len(classes)))
    x = Sw.sum(1)
    for _ in range(3):
        t = Sw @ x
        yv = t / np.linalg.norm(t)
        t = Sw @ yv
        x = t / np.linalg.norm(t)
    s = max(np.exp(-5 * (x @ Sw @ yv)), 1e-10)
    St = np.cov(X.T, bias=1)
    St = (1 - s) * St + s * np.trace(St) / d * np.eye(d)
    Sws = (1 - s) * Sw + s * np.trace(Sw) / d * np.eye(d)
    evals, V = np.linalg.eigh(np.linalg.inv(Sws) @ (St - Sws))
    V = V[:, np.argsort(evals)[::-1]]
    coef = means @ V @ V.T
    logits = X @ coef.T - 0.5 * np.diag(means @ coef.T) + np.log(priors)
    lda = sps.softmax(logits, axis=1)[np.arange(n), yy].mean()
    return energy, lda


def test_etran_matches_repository():
    rng = np.random.default_rng(8)
    y = np.arange(600) % 3
    X = np.maximum(rng.normal(size=(3, 10))[y] + rng.normal(size=(600, 10)), 0.0)
    e, l = metrics.etran_components(X, y)
    re, rl = _reference_etran_parts(X, y)
    assert abs(e - re) <= 1e-10 * abs(re) and abs(l - rl) <= 1e-8 * abs(rl)
    assert abs(metrics.etran(X, y) - (e + l)) <= 1e-10 * abs(e + l)
    assert abs(metrics.etran(X, y, energy_weight=0.0) - l) <= 1e-10
    # fewer than 200 samples: the repository averages an empty set (NaN); pedjax uses the lowest
    assert abs(em.energy_score(jnp.asarray(X[:50])) - sps.logsumexp(X[:50], axis=1).min()) < 1e-12
    with pytest.raises(ValueError, match="energy_fraction"):
        metrics.etran(X, y, energy_fraction=0)


def test_etran_combine_is_zoo_level_minmax():
    out = metrics.etran_combine({"a": (7.0, 0.5), "b": (8.0, 0.6), "c": (7.5, 0.7)})
    assert out == pytest.approx({"a": 0.0, "b": 0.15 + 0.85 * 0.5, "c": 0.075 + 0.85})
    assert metrics.etran_combine({"only": (1.0, 2.0)}) == {"only": 0.0}
    with pytest.raises(ValueError, match="components"):
        metrics.etran_combine({})


# ----------------------------------------------------------------------------- registry / zoo


def test_registered_with_cores():
    for name, static in (("nleep", ("component_ratio", "n_pca", "gmm_method")), ("parc", ("n_dims",)), ("transrate", ()), ("etran", ("energy_fraction",))):
        m = metrics.REGISTRY[name]
        assert m.input == "features" and m.static == static and m.fn.core is m.core


def test_usable_through_score_zoo_with_ped():
    score_zoo = getattr(pedjax, "score_zoo", None)
    if score_zoo is None or not hasattr(pedjax, "PEDConfig"):
        pytest.skip("pedjax.score_zoo / PEDConfig not available in this tree yet")
    Xs = {f"m{s}": _blobs(20 + s, sep)[0] for s, sep in ((0, 0.5), (1, 1.5))}
    y = _blobs(20)[1]
    cfg = pedjax.PEDConfig()
    for name, opts in (("transrate", None), ("nleep", {"n_pca": 24})):
        got = score_zoo(Xs, y, metric=name, ped=cfg, metric_options=opts)
        assert set(got) == set(Xs) and all(np.isfinite(v) for v in got.values()), name
