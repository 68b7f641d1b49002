"""PACTran-Dirichlet, -Gamma and -Gaussian (pedjax.metrics._pactran) against an independent
NumPy/SciPy transcription of google-research/pactran_metrics ``compute_metrics.py``, written here.

The Gaussian reference minimises the published objective with SciPy's L-BFGS-B (run to
convergence instead of the published ``maxiter=100``) and polishes the result with a few Newton
steps on the explicit Hessian, so that both sides sit at the convex problem's minimum."""
import numpy as np
import pytest
import scipy.optimize
import scipy.special
import scipy.stats

import pedjax
from pedjax.metrics import _pactran as pactran

# ---------------------------------------------------------------------------------------------
# independent transcription of the published code (labels already coded 0..C-1)
# ---------------------------------------------------------------------------------------------


def _one_hot(a):
    b = np.zeros((a.size, a.max() + 1))
    b[np.arange(a.size), a] = 1.0
    return b


def ref_pac_dir(prob, labels, alpha=1.0):
    L = _one_hot(labels)
    a0 = alpha * L.sum(axis=0)[:, None] / L.sum() + 1e-10
    qz, log_s = prob, np.log(prob + 1e-10)
    for _ in range(10):
        aw = a0 + np.einsum("BY,BZ->YZ", L, qz)
        logits = log_s + L @ scipy.special.digamma(aw) - scipy.special.digamma(aw.sum(axis=0))[None, :]
        log_qz = logits - scipy.special.logsumexp(logits, axis=-1, keepdims=True)
        qz = np.exp(log_qz)
    log_c0 = scipy.special.loggamma(a0.sum()) - scipy.special.loggamma(a0).sum()
    log_c = scipy.special.loggamma(aw.sum(axis=0)) - scipy.special.loggamma(aw).sum(axis=0)
    pac = np.sum(log_c0 - log_c - np.sum(qz * (log_qz - log_s), axis=0))
    return -pac / L.size


def ref_pac_gamma(prob, labels, alpha=1.0):
    L = _one_hot(labels)
    a0 = alpha * L.sum(axis=0)[:, None] / L.sum() + 1e-10
    qz, s, log_s = prob, prob, np.log(prob + 1e-10)
    for _ in range(10):
        aw = a0 + np.einsum("BY,BZ->YZ", L, qz)
        lw = s @ aw.sum(axis=0)[:, None]
        logits = log_s + L @ scipy.special.digamma(aw)
        log_qz = logits - scipy.special.logsumexp(logits, axis=-1, keepdims=True)
        qz = np.exp(log_qz)
    pac = np.sum(scipy.special.loggamma(a0) - scipy.special.loggamma(aw)) + np.sum(
        np.sum(qz * (log_qz - log_s), axis=-1) + np.log(lw[:, 0]) - 1.0)
    return pac / L.size + 1.0


def ref_pac_gauss(F, labels, lda_factor, s2_factors=(0.0,), published=False, seed=0):
    """The published PAC_Gauss for each of ``s2_factors`` (s2 = 0: the optimised loss alone);
    ``published=True``: the published L-BFGS-B settings (maxiter=100, tol=1e-6)."""
    L = _one_hot(labels)
    C = L.shape[1]
    F = F - F.mean(axis=0, keepdims=True)
    n, d = F.shape
    kd, ldas2 = d * C, lda_factor * n
    Fa = np.concatenate([F, np.ones((n, 1))], axis=1)
    reg = np.concatenate([np.full(d, 1.0 / ldas2), [0.0]])

    def probs(t):
        lg = Fa @ t.reshape(d + 1, C)
        return lg - scipy.special.logsumexp(lg, axis=-1, keepdims=True)

    def loss(t):
        w = t.reshape(d + 1, C)[:d]
        return np.sum(L * (np.log(L + 1e-10) - probs(t))) / n + 0.5 * np.sum(w * w) / ldas2

    def grad(t):
        g = (np.exp(probs(t)) - L) / n
        return (Fa.T @ g + reg[:, None] * t.reshape(d + 1, C)).ravel()

    rng = np.random.RandomState(seed)
    t0 = np.concatenate([rng.normal(size=(d, C)) * 0.03, np.zeros((1, C))]).ravel()
    if published:
        t = scipy.optimize.minimize(loss, t0, method="L-BFGS-B", jac=grad, options=dict(maxiter=100), tol=1e-6).x
    else:
        t = scipy.optimize.minimize(loss, t0, method="L-BFGS-B", jac=grad,
                                    options=dict(maxiter=5000, maxfun=10000, ftol=0.0, gtol=1e-6)).x
        for _ in range(5):  # Newton polish on the explicit Hessian (singular along the bias shift)
            p = np.exp(probs(t))
            H = (np.einsum("ia,ib,ic,ce->acbe", Fa, Fa, p, np.eye(C), optimize=True)
                 - np.einsum("ia,ib,ic,ie->acbe", Fa, Fa, p, p, optimize=True)).reshape((d + 1) * C, (d + 1) * C) / n
            H += np.diag(np.repeat(reg, C))
            t = t + np.linalg.lstsq(H, -grad(t), rcond=None)[0]
    p = np.exp(probs(t))
    g2 = p - p * p
    h = np.concatenate([(F * F).T @ g2 + 1.0 / ldas2, g2.sum(axis=0, keepdims=True)])
    sigma2_inv = np.sum(h) * ldas2 / kd + 1e-10
    return [loss(t) + 0.5 * kd / ldas2 * (s2 / d) * np.log(sigma2_inv) for s2 in s2_factors]


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


def _labels(rng, n, C, singletons=0):
    """n labels over C classes, every class present; the last ``singletons`` classes have one sample."""
    big = C - singletons
    y = np.concatenate([np.arange(big), rng.integers(0, big, n - big - singletons), np.arange(big, C)])
    return rng.permutation(y)


def _features(rng, y, D, sep=1.5):
    return rng.normal(size=(y.size, D)) + sep * rng.normal(size=(y.max() + 1, D))[y]


def _probs(rng, y, K, temp=2.0, zeros=False):
    logits = temp * rng.normal(size=(y.size, K)) + rng.normal(size=(y.max() + 1, K))[y]
    S = scipy.special.softmax(logits, axis=-1)
    if zeros:  # exact zeros in the probabilities (hard source predictions for some samples)
        S[: y.size // 3] = np.eye(K)[np.argmax(S[: y.size // 3], axis=1)]
    return S


def _close(a, b, rtol=1e-9):
    assert np.isfinite(a) and np.isfinite(b), (a, b)
    assert abs(a - b) <= rtol * max(1.0, abs(b)), (a, b, abs(a - b) / max(1.0, abs(b)))


#: (N, K, C, singleton classes): two classes; a singleton class (labels {3, 7, 42}); K ≫ N
_PROB_CASES = [(150, 6, 2, 0), (90, 12, 3, 1), (40, 200, 4, 0)]


@pytest.mark.parametrize("N,K,C,single", _PROB_CASES)
def test_dirichlet_gamma_equal_published(N, K, C, single):
    for seed in range(3):  # seed 1: exact zeros in the probabilities
        rng = np.random.default_rng(seed + 17 * N)
        y = _labels(rng, N, C, single)
        S = _probs(rng, y, K, zeros=seed == 1)
        lab = np.array([3, 7, 42])[y] if C == 3 else y
        _close(pactran.pactran_dirichlet(S, lab), -ref_pac_dir(S, y), 1e-12)
        _close(pactran.pactran_gamma(S, lab), -ref_pac_gamma(S, y), 1e-12)
        _close(pactran.pactran_dirichlet(S, lab, alpha=3.0), -ref_pac_dir(S, y, 3.0), 1e-12)
        _close(pactran.pactran_gamma(S, lab, alpha=0.5), -ref_pac_gamma(S, y, 0.5), 1e-12)
        if C == 3:
            assert pactran.pactran_dirichlet(S, lab) == pactran.pactran_dirichlet(S, y)


#: (N, D, C, singleton classes, constant dimensions): two classes; a singleton class (labels
#: {3, 7, 42}); D ≫ N; constant dimensions
_GAUSS_CASES = [(120, 10, 2, 0, 0), (90, 20, 3, 1, 0), (30, 120, 3, 0, 0), (100, 12, 4, 0, 3)]


@pytest.mark.parametrize("N,D,C,single,const", _GAUSS_CASES)
def test_gaussian_equals_published_at_the_optimum(N, D, C, single, const):
    for seed in range(2):
        rng = np.random.default_rng(N + D + 1000 * seed)
        y = _labels(rng, N, C, single)
        X = _features(rng, y, D, sep=1.0 + seed)
        if const:
            X[:, :const] = rng.normal(size=const)  # constant dimensions
        lab = np.array([3, 7, 42])[y] if C == 3 else y
        for lda in (10.0, 1.0, 0.1):  # the published grid: s2 ∈ {100λ, 10λ}; s2 = 0: the loss alone
            s2s = (100.0 * lda, 10.0 * lda, 0.0)
            for s2, want in zip(s2s, ref_pac_gauss(X, y, lda, s2s), strict=True):
                _close(pactran.pactran_gaussian(X, lab, lda, s2), -want)
        # the published 100-step L-BFGS-B stops at or above the minimum of the loss, never below
        opt = -pactran.pactran_gaussian(X, lab, 1.0, 0.0)
        assert ref_pac_gauss(X, y, 1.0, published=True, seed=seed)[0] >= opt - 1e-12
        if C == 3:
            assert pactran.pactran_gaussian(X, lab) == pactran.pactran_gaussian(X, y)
        if C == 2 and seed == 0:  # centred inside: translation-free; not scale-free
            a = pactran.pactran_gaussian(X, y)
            _close(pactran.pactran_gaussian(X + 5.0, y), a, 1e-9)
            assert abs(pactran.pactran_gaussian(3.0 * X, y) - a) > 1e-3


def test_validation_and_degenerate_features():
    rng = np.random.default_rng(0)
    y = _labels(rng, 30, 3)
    S = _probs(rng, y, 4)
    with pytest.raises(ValueError, match="negative"):
        pactran.pactran_dirichlet(S - 0.5, y)
    S0 = S.copy()
    S0[0] = 0.0
    with pytest.raises(ValueError, match="sum to zero"):
        pactran.pactran_gamma(S0, y)
    with pytest.raises(ValueError, match="alpha"):
        pactran.pactran_dirichlet(S, y, alpha=0.0)
    X = _features(rng, y, 5)
    with pytest.raises(ValueError, match="lda_factor"):
        pactran.pactran_gaussian(X, y, lda_factor=-1.0)
    with pytest.raises(ValueError, match="s2_factor"):
        pactran.pactran_gaussian(X, y, s2_factor=float("nan"))
    with pytest.raises(ValueError, match="class"):
        pactran.pactran_gaussian(X, np.zeros(30, int))
    assert pactran.pactran_gaussian(np.ones((30, 5)), y) == float("-inf")
    for name in ("pactran_dirichlet", "pactran_gamma", "pactran_gaussian"):
        m = pedjax.metrics.REGISTRY[name]
        assert m.higher_is_better and "PACTran" in m.citation


def _zoo():
    """8 models on 90 samples, 3 classes (one a singleton), from useless to well separated (so the
    scores are distinct and spread), and their softmax "source probabilities" over 12 outcomes.
    Shapes shared with the parity cases above (compiled once)."""
    rng = np.random.default_rng(11)
    y = _labels(rng, 90, 3, 1)
    centres = rng.normal(size=(3, 20))
    feats = {f"m{i}": rng.normal(size=(90, 20)) + (0.15 + 0.3 * i) * centres[y] for i in range(8)}
    probs = {k: scipy.special.softmax(1.5 * v[:, :12], axis=-1) for k, v in feats.items()}
    return np.array([3, 7, 42])[y], feats, probs


def test_score_zoo_equals_per_model_with_and_without_ped():
    y, feats, probs = _zoo()
    cfg = pedjax.PEDConfig()
    plain = pedjax.score_zoo(feats, y, metric="pactran_gaussian")
    moved = pedjax.score_zoo(feats, y, metric="pactran_gaussian", ped=cfg)  # source_stats=None: own stats
    for k, X in feats.items():
        _close(plain[k], pactran.pactran_gaussian(X, y), 1e-9)
        Xp = np.asarray(pedjax.ped(X, y, cfg=cfg).features)
        _close(moved[k], pactran.pactran_gaussian(Xp, y), 1e-9)
    assert any(abs(moved[k] - plain[k]) > 1e-6 for k in feats)  # PED changed something
    for name, f in (("pactran_dirichlet", pactran.pactran_dirichlet), ("pactran_gamma", pactran.pactran_gamma)):
        zoo = pedjax.score_zoo(probs, y, metric=name)
        for k, S in probs.items():
            _close(zoo[k], f(S, y), 1e-12)


def test_float32_finite_and_ranks_the_zoo_as_float64():
    y, feats, probs = _zoo()
    for name, zoo in (("pactran_gaussian", feats), ("pactran_dirichlet", probs), ("pactran_gamma", probs)):
        s64 = pedjax.score_zoo(zoo, y, metric=name)
        with pedjax.float32():
            s32 = pedjax.score_zoo(zoo, y, metric=name)
        a = np.array([s64[k] for k in zoo])
        b = np.array([s32[k] for k in zoo])
        assert np.all(np.isfinite(a)) and np.all(np.isfinite(b)), name
        assert len(set(a.round(6))) == len(a), (name, a)  # a real ranking to reproduce
        assert scipy.stats.weightedtau(a, b)[0] >= 0.99, (name, a, b)
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5, err_msg=name)
