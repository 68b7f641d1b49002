"""H-score (Bao et al., ICIP 2019, "An Information-theoretic Approach to Transferability in Task
Transfer Learning"), the paper's definition

    H(f) = tr( pinv(Cov(f)) · Cov(E[f | y]) ),

where Cov(f) is the covariance of the features and Cov(E[f|y]) the covariance of the matrix that
holds, for every sample, the mean feature vector of its class (as in the authors' released code,
YaojieBao/An-Information-theoretic-Metric-of-Transferability).

Differences from other public implementations, on purpose:

* google-research ``stable_transfer/transferability/hscore.py`` computes
  ``trace(pinv(Cov_f) * Cov_g)`` with an **element-wise** product (and ``rcond=1e-5``); that is
  Σ_d pinv(Cov_f)_dd·(Cov_g)_dd, not the paper's trace of the matrix product. pedjax follows the
  paper; pass ``rcond=1e-5`` to get google's cut-off (not its element-wise product).
* The paper's code uses ``pinv(..., rcond=1e-15)``, which lets rounding-noise directions of a
  rank-deficient covariance (D ≥ N, duplicated or constant features) dominate the score. pedjax
  cuts the spectrum as described next; for well-conditioned features this equals the paper's value.

**The definition (what is kept), independent of the precision the computation runs in.** With
centred features Xc = X − mean, centred class means m_c and the eigenpairs (λ_k, v_k) of XcᵀXc
(the normalisation 1/(N−1) cancels),

    H = Σ_k [λ_k kept] R²_k,   R²_k = Σ_c n_c (m_c · v_k)² / λ_k ∈ [0, 1],

R²_k being the share of the variance along principal direction k that the class means explain
(so 0 ≤ H ≤ C − 1). Direction k is kept when

    λ_k > max( rcond · λ_max,  N·D·(4·ε₆₄·max|X|)² ),   rcond = 10·max(N, D)·ε₆₄ by default,

with ε₆₄ = float64's machine epsilon **whatever dtype the features or the computation have**:
the relative cut-off is NumPy's ``matrix_rank`` tolerance for the float64 Gram (JAX's ``pinv``
default), the absolute one the rounding level of the data, so constant features contribute
exactly nothing (all-constant features score 0). With the computing dtype's epsilon instead, the
float32 cut-off would drop live directions of ReLU features and the metric's *definition* would
change with the dtype (issue 21; docs/precision.md, "Measurements behind the float32 formulations").

**The computation (how the spectrum is obtained), chosen by the precision.**

* float64 (the parity path): eigh of the Gram XcᵀXc (N > D; through the host BLAS on the
  CPU) or of XcXcᵀ (D ≥ N, where R²_k = Σ_c (Σ_{i∈c} U_ik)² / n_c with U the eigenvectors).
  Forming a Gram squares the condition number, but in float64 its rounding (≈ ε₆₄·λ_max per
  eigenvalue) lies below the definition's cut-off by construction.
* lower precision (float32 on accelerators): a Gram would resolve eigenvalues only down to about
  ε₃₂·λ_max ≈ 1e-7·λ_max, far above the definition's cut-off. Instead the centred features are
  scaled by an exact power of two (no overflow or underflow of their squares) and factorised
  orthogonally, never squared: Householder QR of Z = Xc·2⁻ᵉ (for D ≥ N of Zᵀ), then the SVD of
  the small square R gives the singular values σ_k (λ_k = σ_k²) and the left singular vectors
  U = Q·U_R, and R²_k = ‖Yᵀ U_k‖² with Y the class indicators scaled by 1/√n_c comes from
  orthonormal factors only: for C ≤ D the QR runs on [Z | Y], whose R holds QᵀY in its top right
  block (the same reflectors applied to Y, Q never formed); for C > D Q is formed. For D ≥ N the
  left singular vectors form a complete basis of R^N, so with the centred indicators
  Ỹ = Y − 1·(1ᵀY)/N the R²_k of all directions sum to ‖Ỹ‖² = C − 1 exactly; H is then the smaller
  of Σ_kept R²_k and (C − 1) − Σ_dropped R²_k (an error of at most ε·(C − 1) ≤ 2ε·H either way).
  At the ceiling (every direction kept: H = C − 1 for data in general position with D ≥ N) the
  float32 value is C − 1 to rounding, so models that tie mathematically tie in float32.
  Projecting the class sums on the right singular vectors instead would cancel: their error
  relative to a direction's own size grows as ε·σ_max/σ_k. A singular value is resolved down to
  the rounding of the data, about ε·‖Xc‖_F, i.e. λ_k ≳ ε₃₂²·tr(XcᵀXc), at or
  below the definition's cut-off (√(10·max(N,D)·ε₆₄) ≈ 4.7e-8·√max(N,D) relative in σ, against
  ε₃₂ ≈ 1.2e-7 times √(tr/λ_max)). Directions with σ_k ≤ 4·ε·‖Xc‖_F are rounding noise in that
  precision and are dropped as well: this floor is the only place where the computing precision
  enters, and it binds only where the definition keeps a direction that the precision cannot
  see. Cost: O(N·D²) like the Gram, with QR's larger constant (the float32 path is for
  accelerators).

How close float32 comes to float64 is measured in docs/precision.md;
tests/test_float32_hscore_sfda.py checks synthetic zoos with the hard cases.

Where float32 cannot agree: a direction that the definition keeps but whose σ_k lies below the
float32 floor (units differing by less than ~1e-6 of their spread, exact linear dependencies
broken only by float32 storage rounding, when they clear the definition's cut-off): float64
computes its R²_k from the exact stored values, float32 cannot resolve it; such a direction
changes H by at most R²_k ≤ 1, typically ~(C−1)/N for a noise-like direction. And H-score from
float32 *statistics* (streamed in float32) has only the Gram: its floor below drops what a
float32 Gram cannot resolve, so ill-conditioned features lose those directions there.

:func:`hscore_from_moments` is the Gram evaluation from statistics (:mod:`pedjax.streaming`
accumulates them); it takes the definition's cut-offs (:func:`definition_cutoffs`) and adds the
Gram's own rounding floor, 10·D·ε·λ_max in the dtype of the Gram (below the default cut-off in
float64, so float64 results are those of the definition).

Degenerate but legal input stays finite: singleton classes, constant features, D > N (there every
kept direction is explained by the class means and, for data in general position,
H = C − 1), two classes.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._linalg import gram
from ._dtype import gram_exact_enough
from ._registry import evaluate, register

__all__ = ["hscore", "hscore_core", "hscore_from_moments", "definition_cutoffs"]

#: float64's machine epsilon: the definition's cut-offs use it in every precision
EPS64 = float(np.finfo(np.float64).eps)
#: lower-precision path: singular values ≤ this many ε·‖Xc‖_F are rounding noise
SIGMA_FLOOR_ULPS = 4.0
#: Gram path: eigenvalues ≤ this many (Gram size)·ε·λ_max are rounding noise of the Gram
GRAM_FLOOR_ULPS = 10.0


def definition_cutoffs(n, d, max_abs, rcond=None):
    """The definition's eigenvalue cut-offs ``(rcond, noise)``, in float64 terms whatever the dtype
    (module docstring).

    Args:
      n: N, the number of samples.
      d: D, the number of features.
      max_abs: max|X| over the features (a Python or JAX scalar).
      rcond: the relative cut-off, or ``None`` for the default 10·max(N, D)·ε₆₄.

    Returns:
      ``(rcond, noise)``: the relative cut-off (as given, or the default) and the absolute one,
      ``noise`` = N·D·(4·ε₆₄·max_abs)². An eigenvalue λ of XcᵀXc is kept when
      λ > max(rcond·λ_max, noise).
    """
    if rcond is None:
        rcond = 10.0 * max(n, d) * EPS64
    return rcond, n * d * (4.0 * EPS64 * max_abs) ** 2


def hscore_core(X: jax.Array, y: jax.Array, num_classes: int, rcond=None) -> jax.Array:
    """H-score of features ``X`` [N, D] for coded labels ``y`` [N] in 0..num_classes-1 (pure JAX).

    The float64 Gram evaluation or, in lower precision, the orthogonal one (module docstring),
    chosen by the dtype of ``X``.

    Args:
      X: features [N, D] (a float array; its dtype picks the evaluation).
      y: [N] int32 labels coded 0..num_classes-1.
      num_classes: C (static under ``jax.jit``).
      rcond: the definition's relative eigenvalue cut-off (None: ``10·max(N, D)·ε₆₄``).

    Returns:
      H, a scalar array in [0, C − 1].
    """
    X = jnp.asarray(X)
    N, D = X.shape
    mean = jnp.mean(X, axis=0)
    Xc = X - mean
    Xc = Xc - jnp.mean(Xc, axis=0)  # second pass: centring exact to rounding
    counts = jax.ops.segment_sum(jnp.ones(N, X.dtype), y, num_classes)  # [C]
    if not gram_exact_enough(X.dtype):
        return _hscore_orthogonal(X, Xc, y, num_classes, counts, rcond)
    rcond, noise = definition_cutoffs(N, D, jnp.max(jnp.abs(X)), rcond)
    sums = jax.ops.segment_sum(Xc, y, num_classes)  # [C, D] = n_c · m_c
    if N > D:
        return hscore_from_moments(gram(Xc), sums, counts, rcond, noise)
    lam, U = jnp.linalg.eigh(gram(Xc.T))  # [N], [N, N]
    keep = lam > _gram_cutoff(lam, rcond, noise)
    S = jax.ops.segment_sum(U, y, num_classes)  # [C, N]: Σ_{i∈c} U_ik
    per_dir = jnp.sum(S * S / jnp.maximum(counts, 1.0)[:, None], axis=0)
    return jnp.sum(jnp.where(keep, per_dir, 0.0))


def _gram_cutoff(lam, rcond, noise):
    """Eigenvalues of a Gram [K, K] at or below this are dropped: the definition's cut-offs and
    the Gram's own rounding floor 10·K·ε·λ_max (ε of its dtype)."""
    lmax = jnp.max(lam)
    floor = GRAM_FLOOR_ULPS * lam.shape[0] * jnp.finfo(lam.dtype).eps * lmax
    return jnp.maximum(jnp.maximum(rcond * lmax, noise), floor)


def _hscore_orthogonal(X, Xc, y, num_classes, counts, rcond):
    """The lower-precision evaluation: QR of the power-of-two-scaled centred features, SVD of R
    (module docstring); never forms a Gram. R²_k = Σ_c ((1_c/√n_c) · U_k)² = ‖Yᵀ U_k‖² with Y the
    class indicators scaled by 1/√n_c, from orthonormal factors only."""
    N, D = Xc.shape
    eps = jnp.finfo(Xc.dtype).eps
    top = jnp.max(jnp.abs(Xc))
    _, e = jnp.frexp(jnp.where(top > 0, top, 1.0))
    unit = jnp.ldexp(jnp.ones((), Xc.dtype), -e)  # exact: 2^-e, so max|Z| ∈ [0.5, 1)
    Z = Xc * unit
    rcond, noise = definition_cutoffs(N, D, jnp.max(jnp.abs(X)) * unit, rcond)
    inv_sqrt_n = 1.0 / jnp.sqrt(jnp.maximum(counts, 1.0))  # [C]
    if N > D and num_classes <= D:
        # QR of [Z | Y]: the top right block of R is QᵀY, from the same Householder reflectors
        # (backward stable) without forming Q [N, D]
        Y = jax.nn.one_hot(y, num_classes, dtype=Z.dtype) * inv_sqrt_n
        Raug = jnp.linalg.qr(jnp.concatenate([Z, Y], axis=1), mode="r")
        Ur, sig, _ = jnp.linalg.svd(Raug[:D, :D])  # Z = (Q Ur) diag(sig) Vᵀ
        S = Raug[:D, D:].T @ Ur  # [C, D] = Yᵀ U
    elif N > D:  # many classes: form Q instead
        Q, R = jnp.linalg.qr(Z)  # Z = Q R, Q [N, D]
        Ur, sig, _ = jnp.linalg.svd(R)
        S = (jax.ops.segment_sum(Q, y, num_classes) @ Ur) * inv_sqrt_n[:, None]
    else:
        R = jnp.linalg.qr(Z.T, mode="r")  # Zᵀ = Q R, so Z = Rᵀ Qᵀ: U = left singular vectors of Rᵀ
        U, sig, _ = jnp.linalg.svd(R.T)  # [N, N]: a complete basis of R^N
        # the centred scaled indicators Ỹ = Y − 1·(1ᵀY)/N: Σ_k ‖Ỹᵀu_k‖² over the complete basis is
        # ‖Ỹ‖² = Σ_c (1 − n_c/N) = C − 1 (the constant direction carries ~ε²)
        Y = jax.nn.one_hot(y, num_classes, dtype=Z.dtype) * inv_sqrt_n
        Yc = Y - jnp.sqrt(counts) / N
        per_dir = jnp.sum((U.T @ Yc) ** 2, axis=1)
        total = jnp.sum(jnp.where(counts > 0, 1.0 - counts / N, 0.0))
        keep = _orthogonal_keep(Z, sig, rcond, noise, eps)
        kept = jnp.sum(jnp.where(keep, per_dir, 0.0))
        dropped = jnp.sum(jnp.where(keep, 0.0, per_dir))
        # sum the smaller part: at the ceiling H = C − 1 (every direction kept, D ≥ N) the value is
        # then exact to rounding in any precision, so mathematically tied models stay tied
        return jnp.where(dropped < kept, total - dropped, kept)
    per_dir = jnp.sum(S * S, axis=0)
    keep = _orthogonal_keep(Z, sig, rcond, noise, eps)
    return jnp.sum(jnp.where(keep, per_dir, 0.0))


def _orthogonal_keep(Z, sig, rcond, noise, eps):
    """The kept directions of the lower-precision evaluation: the definition's cut-offs on λ = σ²
    and the precision's floor σ ≤ 4·ε·‖Z‖_F (module docstring)."""
    lam = sig * sig
    floor = SIGMA_FLOOR_ULPS * eps * jnp.sqrt(jnp.sum(Z * Z))
    return (lam > jnp.maximum(rcond * jnp.max(lam), noise)) & (sig > floor)


def hscore_from_moments(gram_c: jax.Array, sums: jax.Array, counts: jax.Array, rcond, noise) -> jax.Array:
    """H-score from the centred Gram, the centred class sums and the counts (the N > D evaluation;
    :mod:`pedjax.streaming` accumulates these). Pure JAX.

    Args:
      gram_c: the centred Gram XcᵀXc [D, D].
      sums: the class sums of the centred features [C, D] (n_c·m_c).
      counts: the class sizes n_c [C].
      rcond: the definition's relative eigenvalue cut-off (:func:`definition_cutoffs`).
      noise: the definition's absolute eigenvalue cut-off (:func:`definition_cutoffs`); the Gram's
        own rounding floor, 10·D·ε·λ_max in its dtype, is added (module docstring).

    Returns:
      H, a scalar array: Σ over the kept eigendirections of Σ_c n_c (m_c · v_k)² / λ_k.
    """
    lam, V = jnp.linalg.eigh(gram_c)  # [D], [D, D]
    keep = lam > _gram_cutoff(lam, rcond, noise)
    proj = sums @ V  # [C, D] = n_c · (m_c · v_k)
    num = jnp.sum(proj * proj / jnp.maximum(counts, 1.0)[:, None], axis=0)  # Σ_c n_c (m_c·v_k)²
    per_dir = num / jnp.where(keep, lam, 1.0)
    return jnp.sum(jnp.where(keep, per_dir, 0.0))


@register("hscore", hscore_core)
def hscore(X, y, rcond=None) -> float:
    """H-score transferability of features ``X`` [N, D] for labels ``y`` [N] (higher is better).

    The paper's ``tr(pinv(Cov_f) · Cov_g)`` (a matrix product; see the module notes).
    Like every registered metric it also takes the keyword ``precision=`` (``"auto"``, ``"float64"``,
    ``"float32"``; :func:`pedjax.metrics.register`).

    Args:
      X: features [N, D].
      y: [N] integer labels, any values (coded 0..C-1 in sorted order), at least 2 classes.
      rcond: relative cut-off for the pseudo-inverse of the feature covariance, in [0, 1); ``None``
        (default) uses ``10·max(N, D)·ε₆₄`` in every precision. ``1e-5`` reproduces
        google-research's cut-off.

    Returns:
      H as a Python float in [0, C − 1]; ``-inf`` for degenerate (constant) features.

    Raises:
      ValueError: ``rcond`` is not in [0, 1); ``X`` or ``y`` is invalid (not a finite 2-D array
        with one row per label, fewer than 2 classes); or ``precision`` is unknown.
    """
    if rcond is not None:
        rcond = float(rcond)
        if not (rcond >= 0.0 and rcond < 1.0):
            raise ValueError(f"rcond: must be in [0, 1), got {rcond}")
    return evaluate(hscore_core, X, y, rcond=rcond)
