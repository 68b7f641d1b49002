"""LogME (You et al., ICML 2021), the fixed-point variant of "Ranking and Tuning Pre-trained
Models" (arXiv 2110.10545) exactly as in the PED/SFDA repositories' ``metrics.py``.

Per class c, a Bayesian linear regression of the one-vs-rest target on the features; the score
is the mean over classes of the maximised log evidence per sample.

Semantics matched to the published code:
  * spectrum: for N > D the D×D Gram XᵀX is decomposed and its |eigenvalues| are the squared
    singular values (the reference's ``truncated_svd`` takes the SVD of XᵀX); for N ≤ D the N
    eigenvalues of XXᵀ (clipped at 0) are;
  * every direction enters γ and the log-determinant. The reference drops singular values
    ≤ 1e-10, but its SVD of XᵀX returns rounding-level values (≈1e-6 after the square root),
    not zeros, even for exactly-zero features (dead ReLUs), so it keeps them too; an
    eigensolver returns exact zeros there, and dropping those would change the score by
    log(α)/(2N) per zero feature. Keeping them makes the score invariant to appending
    constant-zero features, as the reference is in practice (tested);
  * fixed point from α = β = 1, at most 11 iterations, stop once |t' − t|/t ≤ 1e-3 with
    t = α/β; the evidence uses the last α, β and the residual/norm terms of the last iteration;
  * ε = 1e-5 in the α, β updates.
Here one symmetric matrix (XᵀX or XXᵀ, whichever is smaller) serves every class, and the
per-class fixed point runs for all classes at once with a per-class "converged" mask.

Two evaluations of the same quantities:
  * **eigendecomposition** (:func:`logme_eigh`): the published formulas on the eigenvalues and
    the targets' squared coordinates in the eigenbasis. Differentiable (finite at degenerate
    eigenvalues) and used wherever derivatives are taken, on GPU/TPU and in float32.
  * **tridiagonal** (the float64 CPU default for primal values when min(N, D) ≥
    :data:`TRIDIAGONAL_MIN_DIM`; smaller problems use the eigh form, which has no host callback
    and so stays in JAX's persistent compilation cache): the fixed point only needs
    spectral sums Σ_k f(σ_k)·(v_kᵀb)², which are quadratic forms of resolvents of the Gram
    matrix. One Householder reduction G = Q T Qᵀ (LAPACK ``sytrd``) plus Qᵀb (blocked
    reflectors, Q is never formed), the eigenvalues of
    T (LAPACK ``stev``, for γ and the log-determinant) and, per iteration, one O(D) tridiagonal
    solve per class give the same numbers to rounding without the eigenvectors, at a fraction of
    the cost of the eigendecomposition (timings: ``BENCHMARKS.md``). For N > D with m = (G + tI)⁻¹Xᵀy:
    m² = ‖m‖² and res² = ‖y‖² − (Xᵀy)ᵀm − t‖m‖² (no division by σ); for N ≤ D with
    z = (XXᵀ + tI)⁻¹y: m² = zᵀXXᵀz and res² = t²‖z‖². Directions the reference drops
    (rounding-level σ) enter these sums with weight ≈ σ·‖y‖²/t², i.e. not at all in float64.
  * **SVD** (:func:`logme_svd`, every dtype but float64 — float32 on accelerators; issue 21): the
    same formulas on the singular values and left singular vectors of X itself, with the
    residual term ‖y‖² − ‖Uᵀy‖² taken as ‖y − U Uᵀy‖² (no cancellation). The Gram matrix
    squares the condition number, and LogME's features are not centred, so a feature mean
    (ReLU features, a shared bias) makes λ_max dominate: in float32 the eigendecomposition
    resolves the other eigenvalues, and the targets' coordinates along them, only to
    ~eps·λ_max, while the SVD resolves the singular values to ~eps·σ_max (measurements:
    docs/precision.md, "LogME"). Derivatives come from the eigh form (custom JVP), as for the
    tridiagonal evaluation. Float64 is unchanged.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .._linalg import gram, host_kernels_enabled
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
        proj = V.T @ (X.T @ Y)  # = s * (Uᵀ Y)
        x = jnp.where(pos[:, None], proj / jnp.where(pos, s, 1.0)[:, None], 0.0)
        sigma = lam
        keep = jnp.ones_like(pos)  # every direction (module docstring)
    else:
        lam, U = _eigh(gram(X.T))
        sigma = jnp.maximum(lam, 0.0)
        keep = jnp.ones_like(sigma, dtype=bool)
        x = U.T @ Y
    return sigma, keep, x


def _fixed_point(N: int, D: int, num_classes: int, dtype, sig, keep, sums):
    """The per-class evidence fixed point; ``sums(t) -> (m2, res2)`` for shifts t [C]; ``sig``
    [K, 1] the kept eigenvalues (0 elsewhere), ``keep`` [K]. Returns the mean evidence."""

    def body(_, state):
        alpha, beta, res2, m2, done = state
        t = alpha / beta
        gamma = jnp.sum(sig / (sig + t), axis=0)
        m2_n, res2_n = sums(t)
        alpha_n = gamma / (m2_n + _EPS)
        beta_n = (N - gamma) / (res2_n + _EPS)
        conv = jnp.abs(alpha_n / beta_n - t) / t <= _TOL
        def upd(new, old):
            return jnp.where(done, old, new)

        return (upd(alpha_n, alpha), upd(beta_n, beta), upd(res2_n, res2), upd(m2_n, m2), done | conv)

    ones = jnp.ones((num_classes,), dtype)
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


def logme_eigh(X: jax.Array, y: jax.Array, num_classes: int) -> jax.Array:
    """LogME through the eigendecomposition (differentiable; see the module docstring): the
    evidence of the one-hot matrix of ``y``, :func:`logme_targets_eigh`."""
    X = jnp.asarray(X)
    return logme_targets_eigh(X, jax.nn.one_hot(y, num_classes, dtype=X.dtype))


def logme_targets_eigh(X: jax.Array, Y: jax.Array) -> jax.Array:
    """LogME of features ``X`` [N, D] for targets ``Y`` [N, K] — real values, or the one-hot matrix
    of class labels (:func:`logme_eigh`) — through the eigendecomposition (pure JAX,
    differentiable).

    Args:
      X: features [N, D].
      Y: targets [N, K] (cast to the dtype of ``X``).

    Returns:
      The mean over the K columns of the maximised log evidence per sample, a scalar array.
    """
    X = jnp.asarray(X)
    Y = jnp.asarray(Y, X.dtype)
    N, D = X.shape
    sigma, keep, x = _spectrum(X, Y)
    sig = sigma[:, None]  # [R, 1]
    x2 = x * x  # [R, K]
    res_x2 = jnp.sum(Y * Y, axis=0) - jnp.sum(x2, axis=0)  # [K]

    def sums(t):
        return (jnp.sum(sig * x2 / (t + sig) ** 2, axis=0),
                jnp.sum(x2 / (1.0 + sig / t) ** 2, axis=0) + res_x2)

    return _fixed_point(N, D, Y.shape[1], X.dtype, sig, keep, sums)


def _host_eigvalsh_tridiagonal(d, e):
    from scipy.linalg import eigvalsh_tridiagonal

    d = np.asarray(d, np.float64)
    # 'stev' scales the matrix before LAPACK's sterf: same values, and fast on the wide dynamic
    # range of Gram spectra where an unscaled sterf crawls
    return eigvalsh_tridiagonal(d, np.asarray(e, np.float64), lapack_driver="stev").astype(d.dtype)


def _apply_householder_t(V: jax.Array, taus: jax.Array, B: jax.Array, block: int = 64) -> jax.Array:
    """``Qᵀ B`` for ``Q = H_0 H_1 ⋯ H_{m-1}``, ``H_i = I − τ_i v_i v_iᵀ`` with ``v_i`` the unit-lower
    column i of ``V`` [m, m] (LAPACK's storage), without forming Q: blocks of ``block`` reflectors
    are applied in compact-WY form ``I − W Tᵀ Wᵀ`` (T upper triangular, LAPACK ``larft``'s
    recurrence), O(m²·(C + block)) instead of the O(m³) of building Q."""
    m = V.shape[0]
    nblk = -(-m // block)
    pad = nblk * block - m
    W = jnp.pad(jnp.tril(V, -1) + jnp.eye(m, dtype=V.dtype), ((0, 0), (0, pad)))
    tp = jnp.pad(taus, (0, pad))  # τ = 0: the identity
    idx = jnp.arange(block)

    def apply_block(j, B):
        Wj = jax.lax.dynamic_slice(W, (0, j * block), (m, block))
        tj = jax.lax.dynamic_slice(tp, (j * block,), (block,))
        S = Wj.T @ Wj

        def column(i, T):  # T[:i, i] = −τ_i T[:i, :i] (W[:, :i]ᵀ w_i), T[i, i] = τ_i
            c = -tj[i] * (T @ jnp.where(idx < i, S[:, i], 0.0))
            return T.at[:, i].set(jnp.where(idx < i, c, 0.0) + jnp.where(idx == i, tj[i], 0.0))

        T = jax.lax.fori_loop(0, block, column, jnp.zeros((block, block), V.dtype))
        return B - Wj @ (T.T @ (Wj.T @ B))

    return jax.lax.fori_loop(0, nblk, apply_block, B)


def _tridiagonal_spectrum(G: jax.Array, B: jax.Array):
    """``G = Q T Qᵀ``: (diagonal d [n], off-diagonal e [n-1], Qᵀ B, eigenvalues of T ascending)."""
    a, d, e, taus = jax.lax.linalg.tridiagonal(G, lower=True)
    # the reflectors sit below the subdiagonal: Q = diag(1, Q') with Q' from a[1:, :-1]
    QB = jnp.concatenate([B[:1], _apply_householder_t(a[1:, :-1], taus, B[1:])], axis=0)
    out = jax.ShapeDtypeStruct(d.shape, d.dtype)
    lam = jax.pure_callback(_host_eigvalsh_tridiagonal, out, d, e, vmap_method="sequential")
    return d, e, QB, lam


def _tri_solve(d, e, t, B):
    """``(T + diag t_c) m_c = B[:, c]`` for every column c (T symmetric tridiagonal (d, e))."""
    C = B.shape[1]
    off = jnp.concatenate([jnp.zeros((1,), e.dtype), e])  # lower diagonal, first entry unused
    up = jnp.concatenate([e, jnp.zeros((1,), e.dtype)])  # upper diagonal, last entry unused
    dl = jnp.broadcast_to(off, (C, off.size))
    du = jnp.broadcast_to(up, (C, up.size))
    dd = d[None, :] + t[:, None]
    return jax.lax.linalg.tridiagonal_solve(dl, dd, du, B.T[:, :, None])[:, :, 0].T


def logme_tridiagonal(X: jax.Array, y: jax.Array, num_classes: int) -> jax.Array:
    """LogME through a tridiagonal reduction, without eigenvectors (float64 CPU; module docstring):
    the evidence of the one-hot matrix of ``y``, :func:`logme_targets_tridiagonal`."""
    X = jnp.asarray(X)
    return logme_targets_tridiagonal(X, jax.nn.one_hot(y, num_classes, dtype=X.dtype))


def logme_targets_tridiagonal(X: jax.Array, Y: jax.Array) -> jax.Array:
    """The same as :func:`logme_targets_eigh` through a tridiagonal reduction, without eigenvectors
    (float64 CPU: the tridiagonal eigenvalues come from a host callback).

    Args:
      X: features [N, D].
      Y: targets [N, K] (cast to the dtype of ``X``).

    Returns:
      The mean over the K columns of the maximised log evidence per sample, a scalar array.
    """
    X = jnp.asarray(X)
    Y = jnp.asarray(Y, X.dtype)
    N, D = X.shape
    yy = jnp.sum(Y * Y, axis=0)
    if N > D:
        B = X.T @ Y  # [D, K]
        d, e, QB, lam = _tridiagonal_spectrum(gram(X), B)
        sig = jnp.abs(lam)[:, None]  # as the reference's singular values of XᵀX
        keep = jnp.ones(lam.shape, bool)  # every direction (module docstring)

        def sums(t):
            m = _tri_solve(d, e, t, QB)
            m2 = jnp.sum(m * m, axis=0)
            return m2, yy - jnp.sum(QB * m, axis=0) - t * m2
    else:
        d, e, QY, lam = _tridiagonal_spectrum(gram(X.T), Y)
        keep = jnp.ones(lam.shape, bool)
        sig = jnp.maximum(lam, 0.0)[:, None]
        res_x2 = yy - jnp.sum(QY * QY, axis=0)

        def sums(t):
            z = _tri_solve(d, e, t, QY)
            Tz = d[:, None] * z + jnp.pad(e[:, None] * z[1:], ((0, 1), (0, 0))) + jnp.pad(e[:, None] * z[:-1], ((1, 0), (0, 0)))
            return jnp.sum(z * Tz, axis=0), t * t * jnp.sum(z * z, axis=0) + res_x2

    return _fixed_point(N, D, Y.shape[1], X.dtype, sig, keep, sums)


#: below this size of the decomposed matrix (min(N, D)) the eigh form is used on the CPU too: its
#: eigendecomposition costs milliseconds there, and a program without host callbacks is kept by
#: JAX's persistent compilation cache (a program with one compiles again in every process)
TRIDIAGONAL_MIN_DIM = 256


def _use_tridiagonal(X) -> bool:
    return X.dtype == jnp.float64 and min(X.shape) >= TRIDIAGONAL_MIN_DIM and host_kernels_enabled()


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _logme_fast(X, y, num_classes):
    return logme_tridiagonal(X, y, num_classes)


@_logme_fast.defjvp
def _logme_fast_jvp(num_classes, primals, tangents):
    # derivatives (and the primal that comes with them) through the differentiable eigh form
    X, y = primals
    dX, _ = tangents
    return jax.jvp(lambda X_: logme_eigh(X_, y, num_classes), (X,), (dX,))


def logme_svd(X: jax.Array, y: jax.Array, num_classes: int) -> jax.Array:
    """LogME through the SVD of X (the float32 evaluation; see the module docstring)."""
    X = jnp.asarray(X)
    N, D = X.shape
    Y = jax.nn.one_hot(y, num_classes, dtype=X.dtype)  # [N, C]
    U, s, _ = jnp.linalg.svd(X, full_matrices=False)  # U [N, K], K = min(N, D)
    sig = (s * s)[:, None]  # [K, 1]: the squared singular values, as the Gram eigenvalues
    x = U.T @ Y  # [K, C]
    x2 = x * x
    R = Y - U @ x  # the targets' part outside the column space, directly
    res_x2 = jnp.sum(R * R, axis=0)

    def sums(t):
        return (jnp.sum(sig * x2 / (t + sig) ** 2, axis=0),
                jnp.sum(x2 / (1.0 + sig / t) ** 2, axis=0) + res_x2)

    return _fixed_point(N, D, num_classes, X.dtype, sig, jnp.ones((s.shape[0],), bool), sums)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _logme_svd(X, y, num_classes):
    return logme_svd(X, y, num_classes)


_logme_svd.defjvp(_logme_fast_jvp)


def logme_core(X: jax.Array, y: jax.Array, num_classes: int) -> jax.Array:
    """LogME of features ``X`` [N, D] for coded labels ``y`` [N] in 0..num_classes-1 (pure JAX).

    Float64 on a single CPU device with min(N, D) ≥ :data:`TRIDIAGONAL_MIN_DIM`: the tridiagonal
    evaluation, with derivatives from the eigendecomposition form; other float64: the
    eigendecomposition form throughout; float32 (any other dtype): the SVD evaluation, with
    derivatives from the eigendecomposition form. Differentiable in ``X``.

    Args:
      X: features [N, D] (floating point; the dtype picks the evaluation, as above).
      y: coded labels [N] (integers 0..num_classes−1).
      num_classes: number of classes C (static under ``jit``); one one-vs-rest regression each.

    Returns:
      The mean over classes of the maximised log evidence per sample, a 0-d ``jax.Array`` in
      ``X``'s dtype.
    """
    X = jnp.asarray(X)
    if X.dtype != jnp.float64:
        return _logme_svd(X, y, num_classes)
    if _use_tridiagonal(X):
        return _logme_fast(X, y, num_classes)
    return logme_eigh(X, y, num_classes)


@register("logme", logme_core)
def logme(X, y) -> float:
    """LogME transferability of features ``X`` [N, D] for labels ``y`` [N] (higher is better).

    Equals the published fixed-point LogME to float64 precision. Like every public metric, it
    also takes the keyword ``precision=`` (``"auto"``, ``"float64"`` or ``"float32"``;
    docs/precision.md).

    Args:
      X: features [N, D] (any real array; the features of one model on the target set).
      y: labels [N], any integer values (coded 0..C−1 in sorted order), at least 2 classes.

    Returns:
      The score as a Python ``float``; ``-inf`` for degenerate (constant) features.

    Raises:
      ValueError: ``X`` or ``y`` are malformed (not [N, D] and [N], non-finite features, fewer
        than 2 classes).
    """
    return evaluate(logme_core, X, y)
