"""Regularized (shrinkage) H-score (Ibrahim, Ponomareva & Mazumder, ECML-PKDD 2022, "Newer is not
always better: Rethinking transferability metrics, their peculiarities, stability and performance"),
with the semantics of thuml's Transfer-Learning-Library ``tllib/ranking/hscore.py``,
``regularized_h_score`` (the primary reference):

    H_α(f) = (1 − α) · tr( Σ_α⁻¹ · Cov(E[f | y]) ),     Σ_α = (1 − α)·S + α·μ·I,  μ = tr(S)/D,

where, with centred features X̃ = X − mean [N, D]:

* S = X̃ᵀX̃ / N is the empirical covariance (ddof 0, scikit-learn's ``LedoitWolf``);
* α is scikit-learn's Ledoit–Wolf shrinkage of X̃ (``ledoit_wolf_shrinkage``):

      δ_ = ‖S‖_F²,   β_ = Σ_i ‖x̃_i‖⁴,
      β  = (β_/N − δ_) / (D·N),   δ = ‖S − μI‖_F² / D,
      α  = min(β, δ) / δ   (0 when min(β, δ) = 0; 0 for D = 1, as scikit-learn);

* Cov(E[f|y]) is ``np.cov`` (ddof **1**) of the matrix holding every sample's class mean:
  Σ_c n_c m̃_c m̃_cᵀ / (N − 1) with m̃_c the centred class means. (The reference mixes ddof 0 for
  Σ_α and ddof 1 here; kept, it is a constant factor N/(N − 1) for a given target set.)

So H_α = (1 − α)/(N − 1) · Σ_c S̃_cᵀ Σ_α⁻¹ S̃_c / n_c with S̃_c the class sums of X̃.

Computation and where it differs from the reference (both on purpose):

* The reference inverts Σ_α with ``pinv(rcond=1e-15)``. Σ_α is positive definite whenever α > 0
  (its eigenvalues are ≥ α·μ); pedjax uses one symmetric eigendecomposition and keeps the
  eigenvalues above ``rcond·λ_max`` with ``rcond = 10·max(N, D)·ε₆₄`` (as :mod:`._hscore`), which
  equals the inverse whenever α is not tiny and only drops rounding-noise directions otherwise
  (α = 0 with a singular S, e.g. D = 1 or all samples on one line). The cut-off is part of the
  definition and uses float64's ε **in every precision** (issue 21): with the computing dtype's ε
  the float32 cut-off would lie above the shrinkage floor α·μ and drop the weak directions (where
  the class signal of features with a few dominant directions lives) that float64 keeps
  (docs/precision.md, "Measurements behind the float32 formulations").
* δ is evaluated as ‖S − μI‖_F² directly (scikit-learn: δ_ − 2μ·tr S + Dμ², which cancels when S
  is nearly isotropic); same value, more digits.
* For N ≤ D everything comes from the N×N Gram K = X̃X̃ᵀ = UΛUᵀ (no D×D matrix): the class sums
  lie in the span of the data, Σ_α acts there as ((1 − α)λ_k/N + αμ), and
  S̃_c·v_k = λ_k^{1/2}·Σ_{i∈c} U_ik; ‖S‖_F² = ‖K‖_F²/N², β_ = Σ_i K_ii².

**Lower precision (float32 on accelerators).** The float64 evaluation above is the parity path.
A float32 eigendecomposition of Σ_α (or of the Gram) resolves its eigenvalues only to about
ε₃₂·λ_max absolute, i.e. to ε₃₂·κ relative at the bottom of the spectrum, where
κ = λ_max/(α·μ) grows ~N (α ~ 1/N). Instead, as in :mod:`._hscore`, the centred features are
scaled by an exact power of two and factorised orthogonally, never squared: Householder QR of Z = X̃·2⁻ᵉ (of Zᵀ for D ≥ N), the SVD of R gives
the singular values σ_k, and R²_k = ‖Yᵀu_k‖² ∈ [0, 1] (Y the class indicators scaled by 1/√n_c)
comes from orthonormal factors only (QR of [Z | Y] for C ≤ D < N). With λ_k = σ_k²/N,

    H_α = (1 − α)·N/(N − 1) · Σ_k R²_k · λ_k / ((1 − α)·λ_k + α·μ),

and Ledoit–Wolf's α from tr S = Σλ_k, ‖S‖_F² = Σλ_k², ‖S − μI‖_F² = Σ(λ_k − μ)² + (D − K)·μ²
(K = min(N, D) singular values; sums of squares, no cancellation) and Σ_i ‖z_i‖⁴ from the rows.
The weight λ/((1 − α)λ + αμ) is a smooth function of σ whose error is governed by ε·σ_max/√(αμ)
(the square root of the Gram's ε·κ). Singular values ≤ 4·ε·‖Z‖_F are rounding noise in that
precision and dropped (they change H_α by at most ~16·ε²·D/α; the floor matters only for α = 0,
D = 1). How close float32 comes to float64 is measured in docs/precision.md; tests in
tests/test_float32_h1_hscore_reg.py.

:func:`hscore_reg_from_moments` (statistics) has only the Gram: in float32 it eigendecomposes Σ_α,
clamps its eigenvalues to ≥ α·μ (Σ_α ⪰ α·μ·I exactly; below is rounding), and drops only those at
the eigensolver's rounding level, ≤ 10·ε·λ_max (so the α·μ floor directions are kept whenever
α·μ > 10·ε·λ_max). Its accuracy degrades as ε·κ when α·μ nears that level (N ≫ D). float64: no
clamp, no floor.

google-research ``stable_transfer/transferability/hscore.py`` (checked) has no shrinkage variant:
only the plain H-score, with an element-wise ``pinv(Cov_f) * Cov_g`` (see :mod:`._hscore`); the
regularized score there is therefore not an alternative reference. Ibrahim et al.'s paper states the
same formula as TLL (Ledoit–Wolf α, μ = tr(Σ)/D, the (1 − α) factor on the between-class term).

Sufficient statistics: :func:`hscore_reg_from_moments` needs the centred Gram X̃ᵀX̃, the centred
class sums, the counts and one more number, the centred fourth moment Σ_i ‖x̃_i‖⁴ (Ledoit–Wolf's
β_). It is not a function of the second-order statistics (nor of per-class shifted sums without
per-class Gram matrices), so a streaming evaluation takes a second pass once the mean is known:
:func:`fourth_moment_block` summed over row blocks (PED's class shifts added to the rows, as
SFDA's later passes do).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._linalg import gram
from ._dtype import gram_exact_enough
from ._registry import evaluate, register

__all__ = ["hscore_reg", "hscore_reg_core", "hscore_reg_from_moments", "ledoit_wolf_shrinkage",
           "fourth_moment_block"]

#: float64's machine epsilon: the definition's default cut-off uses it in every precision
EPS64 = float(np.finfo(np.float64).eps)
#: lower-precision core: singular values ≤ this many ε·‖X̃‖_F are rounding noise (as :mod:`._hscore`)
SIGMA_FLOOR_ULPS = 4.0
#: lower-precision statistics path: eigenvalues of Σ_α ≤ this many D·ε·λ_max are rounding noise
GRAM_FLOOR_ULPS = 10.0


def _centred(X):
    X = jnp.asarray(X)
    Xc = X - jnp.mean(X, axis=0)
    return Xc - jnp.mean(Xc, axis=0)  # second pass: centring exact to rounding


def ledoit_wolf_shrinkage(fro2, trace, dev2, fourth, n, d) -> jax.Array:
    """scikit-learn's Ledoit–Wolf shrinkage α from the moments of the centred features (pure JAX).

    With S = X̃ᵀX̃/N and μ = tr S / D (module docstring):

    Args:
      fro2: ‖S‖_F².
      trace: tr S.
      dev2: ‖S − μI‖_F².
      fourth: Σ_i ‖x̃_i‖⁴ over the same centred rows as S.
      n: N, the number of samples (a Python or JAX scalar).
      d: D, the number of features (a Python int: ``d == 1`` is tested in Python).

    Returns:
      α ∈ [0, 1], a scalar array: min(β, δ)/δ, 0 when min(β, δ) = 0 or δ = 0, and 0 for D = 1
      (as scikit-learn).
    """
    if d == 1:
        return jnp.zeros((), jnp.result_type(fro2))  # scikit-learn: one feature, no shrinkage
    beta = (fourth / n - fro2) / (d * n)
    delta = dev2 / d
    beta = jnp.minimum(beta, delta)
    ok = (beta != 0) & (delta > 0)
    return jnp.where(ok, beta / jnp.where(delta > 0, delta, 1.0), 0.0)


def hscore_reg_core(X: jax.Array, y: jax.Array, num_classes: int, rcond=None) -> jax.Array:
    """Regularized H-score of ``X`` [N, D] for coded labels ``y`` [N] in 0..num_classes-1 (pure JAX).

    The float64 evaluation or, in lower precision, the orthogonal one (module docstring), chosen
    by the dtype of ``X``.

    Args:
      X: features [N, D] (a float array; its dtype picks the evaluation).
      y: [N] int32 labels coded 0..num_classes-1.
      num_classes: C (static under ``jax.jit``).
      rcond: relative eigenvalue cut-off for Σ_α (None: ``10·max(N, D)·ε₆₄`` in every precision).

    Returns:
      H_α, a scalar array.
    """
    Xc = _centred(X)
    N, D = Xc.shape
    counts = jax.ops.segment_sum(jnp.ones(N, Xc.dtype), y, num_classes)
    rcond = 10.0 * max(N, D) * EPS64 if rcond is None else rcond
    if not gram_exact_enough(Xc.dtype):
        return _hscore_reg_orthogonal(Xc, y, num_classes, counts, rcond)
    sums = jax.ops.segment_sum(Xc, y, num_classes)  # [C, D] centred class sums
    r2 = jnp.sum(Xc * Xc, axis=1)
    fourth = jnp.sum(r2 * r2)
    if N > D:
        return hscore_reg_from_moments(gram(Xc), sums, counts, fourth, rcond)
    K = gram(Xc.T)  # [N, N]
    K = 0.5 * (K + K.T)
    fro2 = jnp.sum(K * K) / N**2
    trace = jnp.trace(K) / N
    mu = trace / D
    dev2 = fro2 - 2.0 * mu * trace + D * mu * mu  # no cancellation for D ≥ N (‖S‖² ≥ tr(S)²/N)
    alpha = ledoit_wolf_shrinkage(fro2, trace, dev2, fourth, N, D)
    lam, U = jnp.linalg.eigh(K)
    lam = jnp.maximum(lam, 0.0)
    den = (1.0 - alpha) * lam / N + alpha * mu  # Σ_α on the data's span
    keep = den > rcond * jnp.maximum(jnp.max(den), alpha * mu)
    T = jax.ops.segment_sum(U, y, num_classes)  # [C, N]: Σ_{i∈c} U_ik
    num = lam * jnp.sum(T * T / jnp.maximum(counts, 1.0)[:, None], axis=0)  # Σ_c (S̃_c·v_k)²/n_c
    h = jnp.sum(jnp.where(keep, num / jnp.where(keep, den, 1.0), 0.0))
    return (1.0 - alpha) * h / (N - 1)


def _hscore_reg_orthogonal(Xc, y, num_classes, counts, rcond):
    """The lower-precision evaluation (module docstring): QR of the power-of-two-scaled centred
    features and the SVD of R give the singular values σ_k and R²_k = ‖Yᵀu_k‖² (Y: the class
    indicators scaled by 1/√n_c) from orthonormal factors only; no Gram or covariance is formed.

        H_α = (1 − α)/(N − 1) · Σ_k R²_k · σ_k² / ((1 − α)·σ_k²/N + α·μ).
    """
    N, D = Xc.shape
    eps = jnp.finfo(Xc.dtype).eps
    top = jnp.max(jnp.abs(Xc))
    _, e = jnp.frexp(jnp.where(top > 0, top, 1.0))
    Z = Xc * jnp.ldexp(jnp.ones((), Xc.dtype), -e)  # exact: max|Z| in [0.5, 1); H_α is scale-free
    r2 = jnp.sum(Z * Z, axis=1)
    fourth = jnp.sum(r2 * r2)  # Σ_i ‖z_i‖⁴
    inv_sqrt_n = 1.0 / jnp.sqrt(jnp.maximum(counts, 1.0))  # [C]
    if N > D and num_classes <= D:
        # QR of [Z | Y]: the top right block of R is QᵀY (same reflectors, Q never formed)
        Y = jax.nn.one_hot(y, num_classes, dtype=Z.dtype) * inv_sqrt_n
        Raug = jnp.linalg.qr(jnp.concatenate([Z, Y], axis=1), mode="r")
        Ur, sig, _ = jnp.linalg.svd(Raug[:D, :D])  # Z = (Q Ur) diag(sig) Vᵀ
        T = Raug[:D, D:].T @ Ur  # [C, D] = Yᵀ U
    elif N > D:  # many classes: form Q
        Q, R = jnp.linalg.qr(Z)
        Ur, sig, _ = jnp.linalg.svd(R)
        T = (jax.ops.segment_sum(Q, y, num_classes) @ Ur) * inv_sqrt_n[:, None]
    else:
        R = jnp.linalg.qr(Z.T, mode="r")  # Zᵀ = Q R: the left singular vectors of Z are those of Rᵀ
        U, sig, _ = jnp.linalg.svd(R.T)  # [N, N]
        T = jax.ops.segment_sum(U, y, num_classes) * inv_sqrt_n[:, None]
    r2_dir = jnp.sum(T * T, axis=0)  # R²_k ∈ [0, 1]
    lam = sig * sig / N  # the eigenvalues of S on the data's span (the other D − K are 0)
    trace = jnp.sum(lam)
    mu = trace / D
    fro2 = jnp.sum(lam * lam)
    dev2 = jnp.sum((lam - mu) ** 2) + (D - lam.shape[0]) * mu * mu  # ‖S − μI‖_F², no cancellation
    alpha = ledoit_wolf_shrinkage(fro2, trace, dev2, fourth, N, D)
    den = (1.0 - alpha) * lam + alpha * mu  # Σ_α on the data's span
    floor = SIGMA_FLOOR_ULPS * eps * jnp.sqrt(jnp.sum(Z * Z))
    keep = (den > rcond * jnp.maximum(jnp.max(den), alpha * mu)) & (sig > floor)
    h = jnp.sum(jnp.where(keep, r2_dir * lam / jnp.where(keep, den, 1.0), 0.0))
    return (1.0 - alpha) * N * h / (N - 1)


def hscore_reg_from_moments(gram_c: jax.Array, sums: jax.Array, counts: jax.Array, fourth: jax.Array,
                            rcond=None) -> jax.Array:
    """Regularized H-score from statistics of the centred features X̃ = X − mean (pure JAX).

    Args:
      gram_c: X̃ᵀX̃ [D, D].
      sums: class sums of X̃ [C, D].
      counts: class sizes n_c [C] (N = their sum).
      fourth: Σ_i ‖x̃_i‖⁴ (scalar; streamed by :func:`fourth_moment_block` in a second pass).
      rcond: relative eigenvalue cut-off of Σ_α (None: ``10·max(N, D)·ε₆₄``).

    Returns:
      H_α, a scalar array in the dtype of the statistics (float32 statistics: the clamped,
      floored evaluation of the module docstring).
    """
    D = gram_c.shape[0]
    n = jnp.sum(counts)
    if rcond is None:
        rcond = 10.0 * jnp.maximum(n, D) * EPS64
    S = 0.5 * (gram_c + gram_c.T) / n
    trace = jnp.trace(S)
    mu = trace / D
    eye = jnp.eye(D, dtype=S.dtype)
    dev2 = jnp.sum((S - mu * eye) ** 2)
    alpha = ledoit_wolf_shrinkage(jnp.sum(S * S), trace, dev2, fourth, n, D)
    lam, V = jnp.linalg.eigh((1.0 - alpha) * S + (alpha * mu) * eye)
    if gram_exact_enough(lam.dtype):
        keep = lam > rcond * jnp.max(lam)
    else:  # Σ_α ⪰ αμ·I; below that, and below the eigensolver's rounding floor, is noise
        lam = jnp.maximum(lam, alpha * mu)
        lmax = jnp.max(lam)
        keep = lam > jnp.maximum(rcond * lmax, GRAM_FLOOR_ULPS * jnp.finfo(lam.dtype).eps * lmax)
    proj = sums @ V  # [C, D]
    num = jnp.sum(proj * proj / jnp.maximum(counts, 1.0)[:, None], axis=0)
    h = jnp.sum(jnp.where(keep, num / jnp.where(keep, lam, 1.0), 0.0))
    return (1.0 - alpha) * h / (n - 1.0)


def fourth_moment_block(X: jax.Array, codes: jax.Array, mask: jax.Array, mean: jax.Array,
                        delta: jax.Array | None = None) -> jax.Array:
    """Σ_i mask_i·‖x_i + δ_{y_i} − mean‖⁴ over one row block (pure JAX): the streaming pass that
    gives :func:`hscore_reg_from_moments` its ``fourth`` once the statistics pass has fixed the
    mean.

    Args:
      X: one block of feature rows [B, D] (cast to the dtype of ``mean``).
      codes: [B] int labels coded 0..C-1 of the block's rows (used only with ``delta``).
      mask: [B] bool, which rows are real (False: padding of the last block).
      mean: the feature mean [D] of the translated features, from the statistics pass.
      delta: PED's class shifts [C, D] added to each row by its class, or ``None`` (no shift).

    Returns:
      The block's Σ_i ‖x̃_i‖⁴ over the masked rows, a scalar array; sum it over the blocks.
    """
    Z = X.astype(mean.dtype) - mean
    if delta is not None:
        Z = Z + delta[codes]
    r2 = jnp.sum(Z * Z, axis=1)
    return jnp.sum(jnp.where(mask, r2 * r2, 0.0))


@register("hscore_reg", hscore_reg_core,
          citation="Ibrahim, Ponomareva & Mazumder, ECML-PKDD 2022 (regularized H-score, Ledoit–Wolf "
                   "shrinkage); matches thuml/Transfer-Learning-Library tllib/ranking/hscore.py "
                   "regularized_h_score")
def hscore_reg(X, y, rcond=None) -> float:
    """Regularized (Ledoit–Wolf shrinkage) H-score of features ``X`` [N, D] for labels ``y`` [N]
    (higher is better).

    Equals TLL's ``regularized_h_score`` (see the module notes).
    Like every registered metric it also takes the keyword ``precision=`` (``"auto"``, ``"float64"``,
    ``"float32"``; :func:`pedjax.metrics.register`).

    Args:
      X: features [N, D].
      y: [N] integer labels, any values (coded 0..C-1 in sorted order), at least 2 classes.
      rcond: relative eigenvalue cut-off for the shrunk covariance, in [0, 1); ``None``:
        ``10·max(N, D)·ε₆₄`` in every precision.

    Returns:
      H_α as a Python float; ``-inf`` for degenerate (constant) features.

    Raises:
      ValueError: ``rcond`` is not in [0, 1); ``X`` or ``y`` is invalid (not a finite 2-D array
        with one row per label, fewer than 2 classes); or ``precision`` is unknown.
    """
    if rcond is not None:
        rcond = float(rcond)
        if not (rcond >= 0.0 and rcond < 1.0):
            raise ValueError(f"rcond: must be in [0, 1), got {rcond}")
    return evaluate(hscore_reg_core, X, y, rcond=rcond)
