"""Independent NumPy/SciPy transcriptions of the published semantics (PED repo ``metrics.py``),
written for the tests: loops and generalized eigendecompositions where pedjax uses closed forms."""
from __future__ import annotations

import numpy as np
import scipy.linalg


def np_logme(X, y):
    X = np.asarray(X, np.float64)
    N, D = X.shape
    if N > D:
        u_, s, vh = np.linalg.svd(X.T @ X)
        s = np.sqrt(s)
        k = int(np.sum(s > 1e-10))
        s, vh = s[:k], vh[:k]
        u = (X @ vh.T) / s
    else:
        u, s, vh = np.linalg.svd(X, full_matrices=False)
    sigma = s.reshape(-1, 1) ** 2
    ev = []
    for c in range(int(y.max()) + 1):
        t_y = (y == c).astype(np.float64).reshape(-1, 1)
        x = u.T @ t_y
        x2 = x ** 2
        res_x2 = (t_y ** 2).sum() - x2.sum()
        alpha = beta = 1.0
        for _ in range(11):
            t = alpha / beta
            gamma = (sigma / (sigma + t)).sum()
            m2 = (sigma * x2 / ((t + sigma) ** 2)).sum()
            res2 = (x2 / ((1 + sigma / t) ** 2)).sum() + res_x2
            alpha = gamma / (m2 + 1e-5)
            beta = (N - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - t) / t <= 1e-3:
                break
        e = (D / 2 * np.log(alpha) + N / 2 * np.log(beta) - 0.5 * np.sum(np.log(alpha + beta * sigma))
             - beta / 2 * res2 - alpha / 2 * m2 - N / 2 * np.log(2 * np.pi)) / N
        ev.append(e)
    return float(np.mean(ev))


def _power(A, iters=3):
    x = A.sum(axis=1)
    for _ in range(iters):
        t = A @ x
        yv = t / np.linalg.norm(t)
        t = A @ yv
        x = t / np.linalg.norm(t)
    return x @ A @ yv


def _sfda_pass(X, y, shrinkage=None):
    classes = np.unique(y)
    C, D = classes.size, X.shape[1]
    priors = np.bincount(y) / len(y)
    means = np.stack([X[y == c].mean(0) for c in classes])
    Sw = sum(priors[c] * np.cov(X[y == c].T, bias=True).reshape(D, D) for c in classes)
    if shrinkage is None:
        shrinkage = max(np.exp(-5 * _power(Sw)), 1e-10)
    St = np.cov(X.T, bias=True)
    mu_t = np.trace(St) / D
    St = (1 - shrinkage) * St + shrinkage * mu_t * np.eye(D)
    mu = np.trace(Sw) / D
    Sws = (1 - shrinkage) * Sw + shrinkage * mu * np.eye(D)
    evals, evecs = scipy.linalg.eigh(St - Sws, Sws)  # the generalized form of the published code
    evecs = evecs[:, np.argsort(evals)[::-1]]
    coef = means @ evecs @ evecs.T
    intercept = -0.5 * np.diag(means @ coef.T) + np.log(priors)
    z = X @ coef.T + intercept
    z = np.exp(z - z.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True), shrinkage


def np_sfda(X, y):
    X = np.array(X, np.float64)
    n, C = len(y), int(y.max()) + 1
    prob, s = _sfda_pass(X, y)
    prob = np.exp(prob) / np.exp(prob).sum(1, keepdims=True)
    means = np.stack([X[y == c].mean(0) for c in range(C)])
    outer = np.stack([(means.sum(0) - means[c]) / (C - 1) for c in range(C)])
    for c in range(C):
        idx = np.where(y == c)[0]
        p = prob[idx, c][:, None]
        X[idx] = p * X[idx] + (1 - p) * outer[c]
    prob, _ = _sfda_pass(X, y, s)
    return float(prob[np.arange(n), y].mean())


def np_ped(X, y, general_mean, general_std, time_step=0.1, nsigma=0.6, exit_ratio=0.5, constant=1.0, eps=1e-3, max_steps=6):
    """The released PED loop: rescale, one step over explicit class pairs, map back, repeat."""
    X = np.array(X, np.float64)
    sstd = np.maximum(general_std, eps)
    C = int(y.max()) + 1

    def one_step(X):
        Z = (X - general_mean) / sstd
        means = np.stack([Z[y == c].mean(0) for c in range(C)])
        radius = np.array([np.sqrt(Z[y == c].var(0).sum()) for c in range(C)])
        delta = np.zeros_like(means)
        for a in range(C):
            for b in range(a + 1, C):
                diff = means[b] - means[a]
                d = np.linalg.norm(diff)
                ov = max(abs(nsigma) * (radius[a] + radius[b]) - d, 0.0)
                if d == 0:
                    continue
                disp = min(0.5 * time_step ** 2 * constant * ov, ov)
                delta[a] -= diff / d * disp
                delta[b] += diff / d * disp
        return (Z + delta[y]) * sstd + general_mean, np.abs(delta).sum()

    steps, first = 0, None
    while steps < max_steps:
        Xn, change = one_step(X)
        if steps == 0:
            first = change
        ratio = change / first if first > 0 else 0.0
        if steps == 0 or ratio > exit_ratio:
            X = Xn
        else:
            break
        steps += 1
    return X, steps


def make_data(seed, N, D, C, sep=0.3, imbalanced=False, singleton=False):
    rng = np.random.default_rng(seed)
    if imbalanced:
        p = np.geomspace(1, 0.05, C)
        y = rng.choice(C, size=N, p=p / p.sum())
        y[:C] = np.arange(C)
    else:
        y = np.concatenate([np.arange(C), rng.integers(0, C, N - C)])
    if singleton:
        y[y == C - 1] = 0
        y[0] = C - 1
    X = rng.standard_normal((N, D)) + sep * rng.standard_normal((C, D))[y]
    return X, y


# ---------------------------------------------------------------------------------------------
# the canonical sample order (pedjax/metrics/_order.py), written independently


def lowbias32(x):
    """The lowbias32 integer hash, elementwise on uint64 arrays holding 32-bit values."""
    x = np.asarray(x, np.uint64) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def signs_ref(D):
    """s_j = +1 where bit 7 of the lowbias32 key of column j (seed 0x5EED) is set, else −1."""
    return np.where((lowbias32(lowbias32(0x5EED) ^ np.arange(D, dtype=np.uint64)) >> 7) & 1 == 1, 1.0, -1.0)


def order_ref(X):
    """The documented canonical order by float64 sums of the features: signed row sum, sum of
    squares, first feature, position."""
    X = np.asarray(X, np.float64)
    return np.lexsort((np.arange(len(X)), X[:, 0], np.sum(X * X, axis=1), np.sum(X * signs_ref(X.shape[1]), axis=1)))
