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
  rank-deficient covariance (D ≥ N, duplicated or constant features) dominate the score. pedjax's
  default cut-off is ``rcond = 10 · max(N, D) · eps`` relative to the largest eigenvalue (NumPy's
  ``matrix_rank``-style tolerance, JAX's ``pinv`` default), and additionally drops directions whose
  variance is at the rounding level of the data, so constant features contribute exactly nothing
  (all-constant features score 0). For well-conditioned features this equals the paper's value.

Computation: with centred features Xc = X − mean and centred class means m_c, the normalisation
1/(N−1) cancels and H = Σ_k [λ_k kept] Σ_c n_c (m_c · v_k)² / λ_k over the eigenpairs (λ_k, v_k) of
XcᵀXc. For D > N the same value comes from the N×N Gram XcXcᵀ = U Λ Uᵀ:
H = Σ_k [λ_k kept] Σ_c (Σ_{i∈c} U_ik)² / n_c. No pseudo-inverse is ever formed.

Degenerate but legal input stays finite: singleton classes, constant features, D > N (there every
kept direction is explained by the class means and, for data in general position,
H = C − 1), two classes.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .._linalg import gram
from ._registry import evaluate, register

__all__ = ["hscore", "hscore_core", "hscore_from_moments"]


def hscore_core(X: jax.Array, y: jax.Array, num_classes: int, rcond=None) -> jax.Array:
    """H-score of features ``X`` [N, D] for coded labels ``y`` [N] in 0..num_classes-1 (pure JAX).

    ``rcond``: relative eigenvalue cut-off of the pseudo-inverse (None: ``10·max(N, D)·eps``).
    """
    X = jnp.asarray(X)
    N, D = X.shape
    eps = jnp.finfo(X.dtype).eps
    if rcond is None:
        rcond = 10.0 * max(N, D) * eps
    mean = jnp.mean(X, axis=0)
    Xc = X - mean
    Xc = Xc - jnp.mean(Xc, axis=0)  # second pass: centring exact to rounding
    counts = jax.ops.segment_sum(jnp.ones(N, X.dtype), y, num_classes)  # [C]
    sums = jax.ops.segment_sum(Xc, y, num_classes)  # [C, D] = n_c · m_c
    # rounding level of the data: Gram eigenvalues below this are indistinguishable from zero
    noise = N * D * (4.0 * eps * jnp.max(jnp.abs(X))) ** 2

    def kept(lam):
        return lam > jnp.maximum(rcond * jnp.max(lam), noise)

    if N > D:
        return hscore_from_moments(gram(Xc), sums, counts, rcond, noise)
    else:
        lam, U = jnp.linalg.eigh(gram(Xc.T))  # [N], [N, N]
        keep = kept(lam)
        S = jax.ops.segment_sum(U, y, num_classes)  # [C, N]: Σ_{i∈c} U_ik
        per_dir = jnp.sum(S * S / jnp.maximum(counts, 1.0)[:, None], axis=0)
    return jnp.sum(jnp.where(keep, per_dir, 0.0))


def hscore_from_moments(gram_c: jax.Array, sums: jax.Array, counts: jax.Array, rcond, noise) -> jax.Array:
    """H-score from the centred Gram XcᵀXc [D, D], the class sums of the centred features [C, D]
    and the counts [C] (the N > D evaluation; :mod:`pedjax.streaming` accumulates these).
    ``rcond`` and ``noise`` are the relative and absolute eigenvalue cut-offs of
    :func:`hscore_core`."""
    lam, V = jnp.linalg.eigh(gram_c)  # [D], [D, D]
    keep = lam > jnp.maximum(rcond * jnp.max(lam), noise)
    proj = sums @ V  # [C, D] = n_c · (m_c · v_k)
    num = jnp.sum(proj * proj / jnp.maximum(counts, 1.0)[:, None], axis=0)  # Σ_c n_c (m_c·v_k)²
    per_dir = num / jnp.where(keep, lam, 1.0)
    return jnp.sum(jnp.where(keep, per_dir, 0.0))


@register("hscore", hscore_core)
def hscore(X, y, rcond=None) -> float:
    """H-score transferability of features ``X`` [N, D] for labels ``y`` [N] (higher is better).

    Args:
      X: features [N, D].
      y: [N] integer labels, any values (coded 0..C-1 in sorted order), at least 2 classes.
      rcond: relative cut-off for the pseudo-inverse of the feature covariance; ``None`` (default)
        uses ``10·max(N, D)·eps``. ``1e-5`` reproduces google-research's cut-off.

    The paper's ``tr(pinv(Cov_f) · Cov_g)`` (a matrix product; see the module notes).
    """
    if rcond is not None:
        rcond = float(rcond)
        if not (rcond >= 0.0 and rcond < 1.0):
            raise ValueError(f"rcond: must be in [0, 1), got {rcond}")
    return evaluate(hscore_core, X, y, rcond=rcond)
