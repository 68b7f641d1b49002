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
  eigenvalues above ``rcond·λ_max`` with ``rcond = 10·max(N, D)·eps`` (as :mod:`.hscore`), which
  equals the inverse whenever α is not tiny and only drops rounding-noise directions otherwise
  (α = 0 with a singular S, e.g. D = 1 or all samples on one line).
* δ is evaluated as ‖S − μI‖_F² directly (scikit-learn: δ_ − 2μ·tr S + Dμ², which cancels when S
  is nearly isotropic); same value, more digits.
* For N ≤ D everything comes from the N×N Gram K = X̃X̃ᵀ = UΛUᵀ (no D×D matrix): the class sums
  lie in the span of the data, Σ_α acts there as ((1 − α)λ_k/N + αμ), and
  S̃_c·v_k = λ_k^{1/2}·Σ_{i∈c} U_ik; ‖S‖_F² = ‖K‖_F²/N², β_ = Σ_i K_ii².

google-research ``stable_transfer/transferability/hscore.py`` (checked) has no shrinkage variant:
only the plain H-score, with an element-wise ``pinv(Cov_f) * Cov_g`` (see :mod:`.hscore`); the
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

from .._linalg import gram
from ._registry import evaluate, register

__all__ = ["hscore_reg", "hscore_reg_core", "hscore_reg_from_moments", "ledoit_wolf_shrinkage",
           "fourth_moment_block"]


def _centred(X):
    X = jnp.asarray(X)
    Xc = X - jnp.mean(X, axis=0)
    return Xc - jnp.mean(Xc, axis=0)  # second pass: centring exact to rounding


def ledoit_wolf_shrinkage(fro2, trace, dev2, fourth, n, d) -> jax.Array:
    """scikit-learn's Ledoit–Wolf shrinkage α from ‖S‖_F² (``fro2``), tr S (``trace``),
    ‖S − μI‖_F² (``dev2``), Σ_i ‖x̃_i‖⁴ (``fourth``), N and D (S = X̃ᵀX̃/N, μ = tr S / D)."""
    if d == 1:
        return jnp.zeros((), jnp.result_type(fro2))  # scikit-learn: one feature, no shrinkage
    beta = (fourth / n - fro2) / (d * n)
    delta = dev2 / d
    beta = jnp.minimum(beta, delta)
    ok = (beta != 0) & (delta > 0)
    return jnp.where(ok, beta / jnp.where(delta > 0, delta, 1.0), 0.0)


def hscore_reg_core(X: jax.Array, y: jax.Array, num_classes: int, rcond=None) -> jax.Array:
    """Regularized H-score of ``X`` [N, D] for coded labels ``y`` [N] in 0..num_classes-1 (pure JAX).

    ``rcond``: relative eigenvalue cut-off for Σ_α (None: ``10·max(N, D)·eps``).
    """
    Xc = _centred(X)
    N, D = Xc.shape
    counts = jax.ops.segment_sum(jnp.ones(N, Xc.dtype), y, num_classes)
    sums = jax.ops.segment_sum(Xc, y, num_classes)  # [C, D] centred class sums
    r2 = jnp.sum(Xc * Xc, axis=1)
    fourth = jnp.sum(r2 * r2)
    if N > D:
        return hscore_reg_from_moments(gram(Xc), sums, counts, fourth, rcond)
    eps = jnp.finfo(Xc.dtype).eps
    rcond = 10.0 * max(N, D) * eps if rcond is None else rcond
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


def hscore_reg_from_moments(gram_c: jax.Array, sums: jax.Array, counts: jax.Array, fourth: jax.Array,
                            rcond=None) -> jax.Array:
    """Regularized H-score from statistics of the centred features X̃ = X − mean:

    Args:
      gram_c: X̃ᵀX̃ [D, D].
      sums: class sums of X̃ [C, D].
      counts: class sizes n_c [C].
      fourth: Σ_i ‖x̃_i‖⁴ (scalar; streamed by :func:`fourth_moment_block` in a second pass).
      rcond: relative eigenvalue cut-off of Σ_α (None: ``10·max(N, D)·eps``).
    """
    D = gram_c.shape[0]
    n = jnp.sum(counts)
    eps = jnp.finfo(gram_c.dtype).eps
    if rcond is None:
        rcond = 10.0 * jnp.maximum(n, D) * eps
    S = 0.5 * (gram_c + gram_c.T) / n
    trace = jnp.trace(S)
    mu = trace / D
    eye = jnp.eye(D, dtype=S.dtype)
    dev2 = jnp.sum((S - mu * eye) ** 2)
    alpha = ledoit_wolf_shrinkage(jnp.sum(S * S), trace, dev2, fourth, n, D)
    lam, V = jnp.linalg.eigh((1.0 - alpha) * S + (alpha * mu) * eye)
    keep = lam > rcond * jnp.max(lam)
    proj = sums @ V  # [C, D]
    num = jnp.sum(proj * proj / jnp.maximum(counts, 1.0)[:, None], axis=0)
    h = jnp.sum(jnp.where(keep, num / jnp.where(keep, lam, 1.0), 0.0))
    return (1.0 - alpha) * h / (n - 1.0)


def fourth_moment_block(X: jax.Array, codes: jax.Array, mask: jax.Array, mean: jax.Array,
                        delta: jax.Array | None = None) -> jax.Array:
    """Σ_i mask_i·‖x_i + δ_{y_i} − mean‖⁴ over one row block (pure JAX): the streaming pass that
    gives :func:`hscore_reg_from_moments` its ``fourth`` once the statistics pass has fixed the
    mean (of the translated features, with PED's class shifts ``delta`` [C, D]; None: no shift)."""
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

    Args:
      X: features [N, D].
      y: [N] integer labels, any values (coded 0..C-1 in sorted order), at least 2 classes.
      rcond: relative eigenvalue cut-off for the shrunk covariance; ``None``: ``10·max(N, D)·eps``.

    Equals TLL's ``regularized_h_score`` (see the module notes).
    """
    if rcond is not None:
        rcond = float(rcond)
        if not (rcond >= 0.0 and rcond < 1.0):
            raise ValueError(f"rcond: must be in [0, 1), got {rcond}")
    return evaluate(hscore_reg_core, X, y, rcond=rcond)
