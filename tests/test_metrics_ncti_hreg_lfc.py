"""NCTI, the regularized H-score and LFC against independent NumPy/SciPy/scikit-learn transcriptions
of the published code (written here, no pedjax code):

  * NCTI: BUserName/NCTI ``metrics.py`` ``NCTI_Score`` (PCA(64) → LDA, svd or shrinkage-eigen
    solver → three terms) and the min–max combination of ``evaluate_metric_group1_cpu.py``; exact
    PCA (``svd_solver="full"``), the svd solver transcribed from scikit-learn with the
    within-class factor as a parameter (the authors' scikit-learn used 1/(N − C), the installed
    1.9 uses 1/N: the transcription is first checked against the installed scikit-learn);
  * regularized H-score: thuml Transfer-Learning-Library ``regularized_h_score`` (sklearn
    ``LedoitWolf``, ``np.cov``, ``pinv``);
  * LFC: the published ``LFC.score`` (N×N kernel and label matrices; Frobenius via
    ``cosine_similarity`` of the flattened matrices, spectral via ``np.linalg.norm(ord=2)``).
"""
from __future__ import annotations

import jax
import numpy as np
import pytest
import scipy.linalg
import scipy.special
import scipy.stats
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

import pedjax
import importlib

hreg_mod = importlib.import_module("pedjax.metrics._hscore_reg")
lfc_mod = importlib.import_module("pedjax.metrics._lfc")
ncti_mod = importlib.import_module("pedjax.metrics._ncti")

RTOL = 1e-6
EPS = np.finfo(np.float64).eps


# ---------------------------------------------------------------------------------------------
# independent references


def hscore_reg_ref(f, y):
    """TLL regularized_h_score (labels coded by the caller)."""
    f = f.astype("float64")
    f = f - np.mean(f, axis=0, keepdims=True)
    C = int(y.max() + 1)
    g = np.zeros_like(f)
    cov = LedoitWolf(assume_centered=False).fit(f)
    alpha, covf_alpha = cov.shrinkage_, cov.covariance_
    for i in range(C):
        if np.any(y == i):
            g[y == i] = np.mean(f[y == i, :], axis=0)
    covg = np.cov(g, rowvar=False)
    return float(np.trace(np.dot(np.linalg.pinv(covf_alpha, rtol=1e-15), (1 - alpha) * covg)))


def lfc_ref(f, y, norm="frobenius", exact_labels=True):
    """The published LFC.score: N×N kernel and ±1 label matrix, both minus their global mean."""
    theta = f @ f.T
    theta = theta - np.mean(theta)
    lsm = (y[:, None] == y[None, :]).astype(np.float64 if exact_labels else np.float32) * 2 - 1
    lsm = lsm - np.mean(lsm)
    if norm == "frobenius":
        a, b = theta.reshape(-1), lsm.reshape(-1).astype(np.float64)
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.sum(theta * lsm) / (np.linalg.norm(theta, ord=2) * np.linalg.norm(lsm, ord=2)))


def lda_svd_ref(X, y, dof):
    """scikit-learn's LinearDiscriminantAnalysis(solver='svd') fit + predict_proba + transform,
    transcribed, with the within-class factor 1/dof as a parameter. Returns (P, projection)."""
    classes = np.unique(y)
    N, D = X.shape
    C = classes.size
    priors = np.bincount(y) / N
    means = np.stack([X[y == c].mean(axis=0) for c in classes])
    Xc = np.concatenate([X[y == c] - means[i] for i, c in enumerate(classes)])
    xbar = priors @ means
    std = Xc.std(axis=0)
    std[std == 0] = 1.0
    Xs = np.sqrt(1.0 / dof) * (Xc / std)
    _, S, Vt = scipy.linalg.svd(Xs, full_matrices=False)
    rank = int(np.sum(S > 1e-4))
    scalings = (Vt[:rank, :] / std).T / S[:rank]
    Xb = (np.sqrt((N * priors) * (1.0 / (C - 1))) * (means - xbar).T).T @ scalings
    _, sv2, Vt2 = scipy.linalg.svd(Xb, full_matrices=False)
    rank2 = int(np.sum(sv2 > 1e-4 * sv2[0]))
    scal = scalings @ Vt2.T[:, :rank2]
    coef = (means - xbar) @ scal
    intercept = -0.5 * np.sum(coef**2, axis=1) + np.log(priors)
    coef_ = coef @ scal.T
    intercept = intercept - xbar @ coef_.T
    dec = X @ coef_.T + intercept
    if C == 2:
        p = scipy.special.expit(dec[:, 1] - dec[:, 0])
        P = np.stack([1 - p, p], axis=1)
    else:
        P = scipy.special.softmax(dec, axis=1)
    return P, ((X - xbar) @ scal)[:, : min(C - 1, D)]


def ncti_components_ref(X, y, within_scale="n_minus_c"):
    """NCTI_Score (labels coded 0..C-1 by the caller) with exact PCA and pedjax's documented
    small-input rules (k = min(64, N − 1, D); rounding-level PCA components set to zero)."""
    N, D = X.shape
    C = np.unique(y).shape[0]
    k = min(64, N - 1, D)
    pca = PCA(n_components=k, svd_solver="full")
    Z = pca.fit_transform(X, y)
    ev = pca.explained_variance_
    Z[:, ev <= min(N, D) * EPS * ev[0]] = 0.0
    temp = max(np.exp(-ev[:32].sum()), 1e-10)
    if temp == 1e-10:
        P, low = lda_svd_ref(Z, y, (N - C) if within_scale == "n_minus_c" else N)
    else:
        clf = LinearDiscriminantAnalysis(solver="eigen", shrinkage=float(temp))
        low = clf.fit_transform(Z, y)
        P = clf.predict_proba(Z)
    low = low - np.mean(low, axis=0, keepdims=True)
    seli = np.linalg.norm(low, ord="nuc")
    ncc = np.sum(P[np.arange(N), y]) / N
    vc = np.log(sum(np.linalg.norm(P[(y == c).flatten()], ord="nuc") for c in range(C)))
    return seli, ncc, vc, temp == 1e-10


def ncti_combine_ref(comps):
    names = list(comps)
    a = np.array([comps[n][0] for n in names])
    b = np.array([comps[n][1] for n in names])
    c = np.array([comps[n][2] for n in names])
    return {n: (comps[n][1] - b.min()) / (b.max() - b.min()) + (comps[n][0] - a.min()) / (a.max() - a.min())
            - (comps[n][2] - c.min()) / (c.max() - c.min()) for n in names}


# ---------------------------------------------------------------------------------------------
# data


def make(seed, N, D, C, *, scale=1.0, sep=1.5, offset=3.0, const=0, singletons=0):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(C), rng.integers(0, C, N - C - singletons)])
    if singletons:
        y = np.concatenate([y, C + np.arange(singletons)])
    C_all = C + singletons
    centres = rng.standard_normal((C_all, D)) * sep
    X = (rng.standard_normal((N, D)) * rng.uniform(0.5, 1.5, D) + centres[y]) * scale + offset
    if const:
        X[:, :const] = 7.25
    perm = rng.permutation(N)
    return X[perm], y[perm]


#: shapes are shared where the case allows it (num_classes is static), so compiled programs are
#: reused across tests: three shapes in all
CASES = {
    "base": dict(seed=0, N=260, D=96, C=5),
    "seed1": dict(seed=1, N=260, D=96, C=5, sep=0.7),
    "eigen_path": dict(seed=2, N=260, D=96, C=5, scale=0.06),  # small variances: shrinkage LDA
    "constant_dims": dict(seed=6, N=260, D=96, C=5, const=12),
    "singletons": dict(seed=4, N=260, D=96, C=2, singletons=3),  # 2 classes + 3 singletons
    "d_much_larger": dict(seed=5, N=40, D=300, C=3),
    "two_classes_rank_deficient": dict(seed=3, N=150, D=50, C=2, const=10),  # k = D < 64, 10 dead
    "two_classes_eigen": dict(seed=9, N=150, D=50, C=2, scale=0.05),
}


def _data(name):
    kw = dict(CASES[name])
    return make(kw.pop("seed"), kw.pop("N"), kw.pop("D"), kw.pop("C"), **kw)


def _rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


# ---------------------------------------------------------------------------------------------
# parity, float64


@pytest.mark.parametrize("case", list(CASES))
def test_hscore_reg_matches_tll(case):
    X, y = _data(case)
    got = hreg_mod.hscore_reg(X, y)
    assert _rel(got, hscore_reg_ref(X, y)) < RTOL


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("norm", ["frobenius", "spectral"])
def test_lfc_matches_published(case, norm):
    X, y = _data(case)
    got = lfc_mod.lfc(X, y, norm=norm)
    want = lfc_ref(X, y, norm)
    assert _rel(got, want) < RTOL
    if norm == "spectral":  # the published code's float32 label matrix: rounding-level change only
        assert abs(got - lfc_ref(X, y, norm, exact_labels=False)) < 1e-6 * max(abs(want), 1e-3)


@pytest.mark.parametrize("case", list(CASES))
def test_ncti_components_match_published(case):
    X, y = _data(case)
    seli, ncc, vc, svd_path = ncti_components_ref(X, y)
    got = ncti_mod.ncti_components(X, y)
    for g, w in zip(got, (seli, ncc, vc), strict=True):
        assert _rel(g, w) < RTOL, (case, got, (seli, ncc, vc))
    if case in ("eigen_path", "two_classes_eigen"):
        assert not svd_path  # both LDA solvers are exercised
    if case == "base":
        assert svd_path
        assert ncti_mod.ncti(X, y) == pytest.approx(seli + ncc - vc, rel=RTOL)
        assert ncti_mod.ncti(X, y, seli_weight=0.5, ncc_weight=2.0, vc_weight=3.0) == pytest.approx(
            0.5 * seli + 2.0 * ncc - 3.0 * vc, rel=RTOL)


@pytest.mark.parametrize("case", ["base", "two_classes_rank_deficient"])
def test_lda_svd_transcription_matches_installed_sklearn(case):
    """The svd-solver transcription equals the installed scikit-learn (≥ 1.9: within factor 1/N)."""
    import sklearn

    if tuple(int(p) for p in sklearn.__version__.split(".")[:2]) < (1, 9):
        pytest.skip("scikit-learn < 1.9 scales the svd solver by 1/(N - C)")
    X, y = _data(case)
    Z = PCA(n_components=min(64, X.shape[1]), svd_solver="full").fit_transform(X)
    clf = LinearDiscriminantAnalysis(solver="svd").fit(Z, y)
    P, low = lda_svd_ref(Z, y, Z.shape[0])
    np.testing.assert_allclose(P, clf.predict_proba(Z), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.abs(low), np.abs(clf.transform(Z)), rtol=1e-8, atol=1e-10)


@pytest.mark.slow
def test_ncti_within_scale_n_is_sklearn_19():
    """``within_scale="n"`` equals the reference with scikit-learn 1.9's factor 1/N."""
    X, y = _data("base")
    seli, ncc, vc, _ = ncti_components_ref(X, y, within_scale="n")
    got = ncti_mod.ncti_components(X, y, within_scale="n")
    np.testing.assert_allclose(got, (seli, ncc, vc), rtol=RTOL)


def test_labels_any_values_and_permutation():
    X, y = _data("d_much_larger")  # three classes
    lab = np.array([3, 7, 42])[y]
    perm = np.random.default_rng(0).permutation(len(y))
    for fn in (hreg_mod.hscore_reg, lfc_mod.lfc, ncti_mod.ncti):
        a = fn(X, y)
        assert fn(X, lab) == pytest.approx(a, rel=1e-12)
        assert fn(X[perm], lab[perm]) == pytest.approx(a, rel=1e-9)
    assert hreg_mod.hscore_reg(X, lab) == pytest.approx(hscore_reg_ref(X, y), rel=RTOL)


def test_classwise_nuclear_norm_in_row_blocks_and_class_chunks(monkeypatch):
    """Σ_c ‖P_c‖_* with the temporaries forced small (several row blocks, padding, class chunks)
    equals NumPy's per-class nuclear norms."""
    rng = np.random.default_rng(0)
    N, C = 53, 7
    y = np.concatenate([np.arange(C), rng.integers(0, C, N - C)])
    P = scipy.special.softmax(3 * rng.standard_normal((N, C)), axis=1)
    P[y == 3] = P[y == 3][0]  # a rank-one class
    want = sum(np.linalg.norm(P[y == c], ord="nuc") for c in range(C))
    monkeypatch.setattr(ncti_mod, "_GRAM_ELEMS", 2 * C * C)  # 2 classes per chunk: 4 chunks
    monkeypatch.setattr(ncti_mod, "_BLOCK_ELEMS", 5 * C * C)  # 5 rows per block: 11 blocks, 2 padded
    got = jax.jit(ncti_mod._classwise_nuclear, static_argnums=2)(P, y.astype(np.int32), C)
    assert _rel(float(got), want) < 1e-12


def test_ncti_zoo_combination_matches_published():
    zoo, y = {}, None
    for i, (scale, sep) in enumerate([(1.0, 1.5), (1.0, 0.6), (2.0, 1.0), (0.5, 2.0)]):
        X, y = make(10, 260, 96, 5, scale=scale, sep=sep)
        zoo[f"m{i}"] = X + i
    comps = {k: ncti_components_ref(v, y)[:3] for k, v in zoo.items()}
    want = ncti_combine_ref(comps)
    got = ncti_mod.ncti_zoo(zoo, y)
    for k in zoo:
        assert got[k] == pytest.approx(want[k], rel=1e-6, abs=1e-8)
    # a model with degenerate features ranks last and leaves the others' scaling alone
    got2 = ncti_mod.ncti_zoo({**zoo, "dead": np.ones((260, 96))}, y)
    assert got2["dead"] == float("-inf")
    assert all(got2[k] == pytest.approx(got[k], rel=1e-12) for k in zoo)


# ---------------------------------------------------------------------------------------------
# sufficient statistics


def _moments(X, y, C):
    mean = X.mean(axis=0)
    Xc = X - mean
    counts = np.bincount(y, minlength=C).astype(np.float64)
    sums = np.stack([Xc[y == c].sum(axis=0) for c in range(C)])
    return Xc.T @ Xc, sums, counts, mean, float(np.sum(np.sum(Xc * Xc, axis=1) ** 2))


_hreg_moments = jax.jit(hreg_mod.hscore_reg_from_moments)
_lfc_moments = jax.jit(lfc_mod.lfc_from_moments, static_argnames=("norm",))


@pytest.mark.parametrize("case", ["singletons", "two_classes_rank_deficient"])
def test_from_moments_equal_in_memory(case):
    X, y = _data(case)
    C = int(y.max()) + 1
    G, sums, counts, mean, fourth = _moments(X, y, C)
    h = float(_hreg_moments(G, sums, counts, fourth))
    assert _rel(h, hreg_mod.hscore_reg(X, y)) < 1e-9
    for norm in ("frobenius", "spectral"):
        v = float(_lfc_moments(G, sums, counts, mean, norm=norm))
        assert _rel(v, lfc_mod.lfc(X, y, norm=norm)) < 1e-9


def test_from_moments_with_streaming_statistics():
    """The inputs come from pedjax.streaming's ClassStats (centered(), mean(), counts), and the
    fourth moment from the row-block pass ``fourth_moment_block``; PED's class shifts too."""
    from pedjax.streaming import compute_stats

    X, y = _data("base")
    st = compute_stats(X, y, block_rows=64)
    G, sums = st.centered()
    mean = st.mean()
    block = jax.jit(hreg_mod.fourth_moment_block)
    f4 = 0.0
    for i in range(0, X.shape[0], 64):  # padded row blocks with a mask, as the streaming engine runs them
        blk, yb = np.zeros((64, X.shape[1])), np.zeros(64, np.int32)
        m = min(64, X.shape[0] - i)
        blk[:m], yb[:m] = X[i:i + m], y[i:i + m]
        f4 += float(block(blk, yb, np.arange(64) < m, mean))
    assert _rel(float(_hreg_moments(G, sums, st.counts, f4)), hreg_mod.hscore_reg(X, y)) < 1e-9
    assert _rel(float(_lfc_moments(G, sums, st.counts, mean)), lfc_mod.lfc(X, y)) < 1e-9
    # class translations (PED): moved statistics give the moved features' scores
    delta = np.random.default_rng(1).standard_normal((5, X.shape[1])) * 0.3
    Xm = X + delta[y]
    mv = st.translated(delta)
    G2, sums2 = mv.centered()
    f4m = float(jax.jit(hreg_mod.fourth_moment_block)(X, y, np.ones(X.shape[0], bool), mv.mean(), delta))
    assert _rel(float(_hreg_moments(G2, sums2, mv.counts, f4m)), hreg_mod.hscore_reg(Xm, y)) < 1e-9
    assert _rel(float(_lfc_moments(G2, sums2, mv.counts, mv.mean())), lfc_mod.lfc(Xm, y)) < 1e-9


# ---------------------------------------------------------------------------------------------
# whole zoo


def _zoo(wide: bool, seed=20, m=3, N=260, D=96, C=5):
    zoo, y = {}, None
    for i in range(m):
        X, y = make(seed, N, D, C, sep=0.5 + 0.4 * i, offset=float(i))
        zoo[f"m{i}"] = X * (1.0 + 0.3 * i)
    if wide:  # a second feature width: a second vmapped group
        zoo["narrow"] = make(seed + 1, N, 70, C)[0]
    return zoo, y


_FN = {"lfc": lfc_mod.lfc, "hscore_reg": hreg_mod.hscore_reg, "ncti": ncti_mod.ncti}


@pytest.mark.parametrize("metric", ["lfc", "hscore_reg", "ncti"])
def test_score_zoo_equals_per_model(metric):
    fn = _FN[metric]
    zoo, y = _zoo(wide=metric == "lfc")
    got = pedjax.score_zoo(zoo, y, metric=metric)
    # NCTI is defined over the zoo (its terms min-max scaled over the models): score_zoo returns the
    # published zoo score, ncti_zoo of the per-model components
    want = ncti_mod.ncti_zoo(zoo, y) if metric == "ncti" else {k: fn(X, y) for k, X in zoo.items()}
    for k in zoo:
        assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-12)
    if metric == "lfc":
        _check_ped_zoo(metric, zoo, y)


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["hscore_reg", "ncti"])
def test_score_zoo_with_ped_equals_per_model(metric):
    _check_ped_zoo(metric, *_zoo(wide=False))


def _check_ped_zoo(metric, zoo, y):
    fn = _FN[metric]
    cfg = pedjax.PEDConfig()
    stats = {k: (X.mean(axis=0) + 0.1, X.std(axis=0) + 0.5) for k, X in zoo.items()}
    got = pedjax.score_zoo(zoo, y, metric=metric, ped=cfg, source_stats=stats)
    moved = {k: np.asarray(pedjax.ped(X, y, *stats[k], cfg=cfg).features) for k, X in zoo.items()}
    want = ncti_mod.ncti_zoo(moved, y) if metric == "ncti" else {k: fn(M, y) for k, M in moved.items()}
    for k in zoo:
        assert got[k] == pytest.approx(want[k], rel=1e-8, abs=1e-10)


# ---------------------------------------------------------------------------------------------
# float32


def _zoo8(seed=30, N=260, D=96, C=5):
    rng = np.random.default_rng(seed)
    zoo, y = {}, None
    for i in range(8):
        X, y = make(seed, N, D, C, sep=0.3 + 0.25 * i + 0.05 * rng.standard_normal(), offset=5.0 * i)
        zoo[f"m{i}"] = X * (0.5 + 0.2 * i)
    return zoo, y


def test_float32_finite_and_ranks_like_float64():
    zoo, y = _zoo8()
    for name, fn in (("lfc", lfc_mod.lfc), ("hscore_reg", hreg_mod.hscore_reg)):
        s64 = np.array([fn(X, y) for X in zoo.values()])
        with pedjax.float32():
            s32 = np.array([fn(X.astype(np.float32), y) for X in zoo.values()])
        assert np.all(np.isfinite(s32)), name
        assert scipy.stats.weightedtau(s32, s64)[0] >= 0.99, name
        np.testing.assert_allclose(s32, s64, rtol=2e-3, err_msg=name)
    c64 = {k: ncti_mod.ncti_components(X, y) for k, X in zoo.items()}
    with pedjax.float32():
        c32 = {k: ncti_mod.ncti_components(X.astype(np.float32), y) for k, X in zoo.items()}
    assert np.all(np.isfinite(np.array(list(c32.values()))))
    np.testing.assert_allclose(np.array(list(c32.values())), np.array(list(c64.values())), rtol=2e-3)
    z64, z32 = ncti_mod.ncti_combine(c64), ncti_mod.ncti_combine(c32)
    assert scipy.stats.weightedtau(list(z32.values()), list(z64.values()))[0] >= 0.99


def _finite32(case):
    X, y = _data(case)
    X = X.astype(np.float32)
    with pedjax.float32():
        vals = [hreg_mod.hscore_reg(X, y), lfc_mod.lfc(X, y), lfc_mod.lfc(X, y, norm="spectral"),
                *ncti_mod.ncti_components(X, y)]
    assert np.all(np.isfinite(vals)), (case, vals)


def test_float32_degenerate_inputs_stay_finite():
    _finite32("d_much_larger")


@pytest.mark.slow
@pytest.mark.parametrize("case", ["singletons", "constant_dims", "two_classes_rank_deficient", "eigen_path"])
def test_float32_degenerate_inputs_stay_finite_more(case):
    _finite32(case)


# ---------------------------------------------------------------------------------------------
# scale


def test_lfc_large_n_never_forms_n_by_n():
    """N = 60 000 rows: the D×D path (an N×N float64 kernel would need 29 GB)."""
    rng = np.random.default_rng(0)
    N, D = 60_000, 16
    y = rng.integers(0, 3, N)
    X = rng.standard_normal((N, D)) + np.eye(3, D)[y]
    v = lfc_mod.lfc(X, y)
    sub = rng.choice(N, 3000, replace=False)
    assert np.isfinite(v) and abs(v - lfc_ref(X[sub], y[sub])) < 0.05  # a subsample agrees roughly


def test_bad_options():
    X, y = _data("d_much_larger")
    with pytest.raises(ValueError, match="norm"):
        lfc_mod.lfc(X, y, norm="l1")
    with pytest.raises(ValueError, match="within_scale"):
        ncti_mod.ncti(X, y, within_scale="x")
    with pytest.raises(ValueError, match="n_components"):
        ncti_mod.ncti(X, y, n_components=0)
    with pytest.raises(ValueError, match="rcond"):
        hreg_mod.hscore_reg(X, y, rcond=2.0)
    with pytest.raises(ValueError, match="components"):
        ncti_mod.ncti_combine({})
