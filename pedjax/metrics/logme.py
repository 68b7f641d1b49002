"""LogME (You et al., ICML 2021), the fixed-point variant of "Ranking and Tuning Pre-trained
Models" (arXiv 2110.10545) exactly as in the PED/SFDA repositories' ``metrics.py``.

Per class c, a Bayesian linear regression of the one-vs-rest target on the features; the score
is the mean over classes of the maximised log evidence per sample.

Semantics matched to the published code:
  * spectrum: for N > D the D×D Gram XᵀX is decomposed and singular values ≤ 1e-10 are dropped
    (the reference's ``truncated_svd``); for N ≤ D all N singular values of X are kept;
  * fixed point from α = β = 1, at most 11 iterations, stop once |t' − t|/t ≤ 1e-3 with
    t = α/β; the evidence uses the last α, β and the residual/norm terms of the last iteration;
  * ε = 1e-5 in the α, β updates.
Here one symmetric eigendecomposition (of XᵀX or XXᵀ, whichever is smaller) serves every class,
and the per-class fixed point runs for all classes at once with a per-class "converged" mask.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .._linalg import gram
from ._registry import evaluate, register

_MAX_ITERS = 11
_TOL = 1e-3
_EPS = 1e-5
#: eigenvalue pairs closer than this (relative to the largest |eigenvalue|) count as degenerate
_DEGENERATE = 1e-10


@jax.custom_jvp
def _eigh(A: jax.Array):
    """``jnp.linalg.eigh`` (same values) whose derivative stays finite at degenerate eigenvalues.

    JAX's rule divides by w_j − w_i for every pair, which is inf/NaN for repeated eigenvalues —
    e.g. the null space of a Gram matrix of features with constant-zero columns (dead ReLUs,
    blank pixels). Here pairs closer than ``_DEGENERATE``·max|w| get no eigenvector rotation
    from each other. LogME only uses spectral sums in which such a pair enters through the
    targets' components along both vectors, which vanish on the null space, so the derivative is
    unchanged where it exists.
    """
    w, V = jnp.linalg.eigh(A)
    return w, V


@_eigh.defjvp
def _eigh_jvp(primals, tangents):
    (A,), (dA,) = primals, tangents
    w, V = _eigh(A)
    vdv = V.T @ (0.5 * (dA + dA.T)) @ V
    gap = w[None, :] - w[:, None]  # gap[i, j] = w_j − w_i
    ok = jnp.abs(gap) > _DEGENERATE * jnp.max(jnp.abs(w))
    F = jnp.where(ok, 1.0 / jnp.where(ok, gap, 1.0), 0.0)
    return (w, V), (jnp.diagonal(vdv), V @ (F * vdv))


def _spectrum(X: jax.Array, Y: jax.Array):
    """Return (sigma [K], keep [K] bool, x [K, C]) with sigma the squared singular values of X,
    x = Uᵀ Y the targets in the left-singular basis."""
    N, D = X.shape
    if N > D:
        lam, V = _eigh(gram(X))
        # the reference takes singular values of XᵀX, i.e. |eigenvalues|: rounding-level
        # directions are kept (s > 1e-10) whatever their sign, as there
        lam = jnp.abs(lam)
        pos = lam > 0  # sqrt via a safe argument: d√λ at λ = 0 is inf (NaN gradients)
        s = jnp.where(pos, jnp.sqrt(jnp.where(pos, lam, 1.0)), 0.0)
        keep = s > 1e-10
        proj = V.T @ (X.T @ Y)  # = s * (Uᵀ Y)
        x = jnp.where(keep[:, None], proj / jnp.where(keep, s, 1.0)[:, None], 0.0)
        sigma = jnp.where(keep, lam, 0.0)
    else:
        lam, U = _eigh(gram(X.T))
        sigma = jnp.maximum(lam, 0.0)
        keep = jnp.ones_like(sigma, dtype=bool)
        x = U.T @ Y
    return sigma, keep, x


def logme_core(X: jax.Array, y: jax.Array, num_classes: int) -> jax.Array:
    """LogME of features ``X`` [N, D] for coded labels ``y`` [N] in 0..num_classes-1 (pure JAX)."""
    X = jnp.asarray(X)
    N, D = X.shape
    Y = jax.nn.one_hot(y, num_classes, dtype=X.dtype)  # [N, C]
    sigma, keep, x = _spectrum(X, Y)
    sig = sigma[:, None]  # [K, 1]
    x2 = x * x  # [K, C]
    res_x2 = jnp.sum(Y * Y, axis=0) - jnp.sum(x2, axis=0)  # [C]

    def body(_, state):
        alpha, beta, res2, m2, done = state
        t = alpha / beta
        gamma = jnp.sum(sig / (sig + t), axis=0)
        m2_n = jnp.sum(sig * x2 / (t + sig) ** 2, axis=0)
        res2_n = jnp.sum(x2 / (1.0 + sig / t) ** 2, axis=0) + res_x2
        alpha_n = gamma / (m2_n + _EPS)
        beta_n = (N - gamma) / (res2_n + _EPS)
        conv = jnp.abs(alpha_n / beta_n - t) / t <= _TOL
        upd = lambda new, old: jnp.where(done, old, new)
        return (upd(alpha_n, alpha), upd(beta_n, beta), upd(res2_n, res2), upd(m2_n, m2), done | conv)

    ones = jnp.ones((num_classes,), X.dtype)
    state = (ones, ones, jnp.zeros_like(ones), jnp.zeros_like(ones), jnp.zeros((num_classes,), bool))
    alpha, beta, res2, m2, _ = jax.lax.fori_loop(0, _MAX_ITERS, body, state)
    logdet = jnp.sum(jnp.where(keep[:, None], jnp.log(alpha + beta * sig), 0.0), axis=0)
    evidence = (
        D / 2.0 * jnp.log(alpha)
        + N / 2.0 * jnp.log(beta)
        - 0.5 * logdet
        - beta / 2.0 * res2
        - alpha / 2.0 * m2
        - N / 2.0 * jnp.log(2 * jnp.pi)
    ) / N
    return jnp.mean(evidence)


@register("logme", logme_core)
def logme(X, y) -> float:
    """LogME transferability of features ``X`` [N, D] for labels ``y`` [N] (higher is better).

    Any integer labels work; they are coded 0..C-1 in sorted order. Equals the published
    fixed-point LogME to float64 precision.
    """
    return evaluate(logme_core, X, y)
