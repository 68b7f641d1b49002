"""TransRate (Huang et al., ICML 2022, "Frustratingly easy transferability estimation"):
the coding-rate difference between the features and the features given the labels.

With the authors' published formulation (paper appendix; ``eps = 1e-4``):

    Z = X − mean(X)                                   (centred once, globally)
    R(Z, ε) = ½ · log det(I_d + Zᵀ Z / (n ε))         (n rows of Z)
    TrR = R(Z, ε) − (1/C) · Σ_c R(Z_c, ε)             (Z_c: the rows of class c, not re-centred)

Exact choices:

* C is the number of distinct classes (labels are coded 0..C−1; the published code uses
  ``y.max() + 1`` and so needs labels 0..C−1 already — for such labels the two agree);
* ``log det`` by Cholesky (every matrix is I + PSD, so it always exists) in whichever of the
  feature or sample space is smaller — ``det(I_d + ZᵀZ/a) = det(I_n + ZZᵀ/a)``;
* Σ_c R(Z_c) in sample space is *one* log-determinant: ``log det(I_N + M ⊙ ZZᵀ)`` with
  ``M_ij = [y_i = y_j] / (n_{y_i} ε)`` is block-diagonal up to a permutation, so it equals the
  sum of the per-class log-determinants; in feature space (when C·(N·D² + D³/3) is smaller than
  N³/3 + N²·D) the per-class D × D matrices are formed one class at a time.

Precision (issue 21). float64 (the parity path) forms the Gram products and factorises
``I + Gram/a`` by Cholesky, as above. Lower precisions (float32 on accelerators) form no Gram for
R(Z) and for the feature-space class rates: ``log det(I_d + ZᵀZ/a) = 2·Σ log |diag R|`` with R the
triangular factor of a Householder QR of the stacked matrix ``[Z/√a ; I_d]`` ((n + d) × d; in
the smaller space, ``[Zᵀ/√a ; I_n]``), whose columns' inner products are exactly ``I + ZᵀZ/a``.
A Gram squares the condition number, and JAX's float32 Cholesky of ``I + Gram/a`` lost more on
top: on the near-duplicate synthetic zoo (8 copies of each unit that differ by 1e-2 of its
spread, on an offset) R(Z) came out 758.17 in float32 against 756.48 in float64 (TransRate 3e-3
relative), the QR gives 756.47535 against 756.47536. The sample-space class term stays one
Cholesky of the block-diagonal ``I + M ⊙ ZZᵀ`` (a QR would need one per class; its blocks have
at most n_c ≤ D rows, whose singular values the offset and near-duplicate directions do not
spread: 1e-4 relative on that zoo, docs/precision.md).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .._linalg import gram
from ._dtype import gram_exact_enough
from ._registry import evaluate, register

__all__ = ["transrate", "transrate_core"]


def _logdet_pd(A: jax.Array) -> jax.Array:
    L = jnp.linalg.cholesky(A)
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1)), axis=-1)


def _half_logdet_qr(Z: jax.Array, a) -> jax.Array:
    """½ log det(I_d + ZᵀZ/a) for Z [n, d] from a QR of ``[Z/√a ; I_d]`` (no Gram)."""
    d = Z.shape[1]
    stacked = jnp.concatenate([Z / jnp.sqrt(jnp.asarray(a, Z.dtype)), jnp.eye(d, dtype=Z.dtype)], axis=0)
    R = jnp.linalg.qr(stacked, mode="r")
    return jnp.sum(jnp.log(jnp.abs(jnp.diagonal(R))))


def coding_rate(Z: jax.Array, eps: float = 1e-4) -> jax.Array:
    """R(Z, ε) = ½ log det(I + ZᵀZ / (n ε)) for Z [n, d] (pure JAX; in the smaller space; a Gram
    and Cholesky in float64, a QR without a Gram in lower precision: module docstring).

    Args:
      Z: [n, d] rows (centred by the caller where that is meant).
      eps: the distortion ε.

    Returns:
      The coding rate, a scalar array.
    """
    n, d = Z.shape
    if not gram_exact_enough(Z.dtype):
        return _half_logdet_qr(Z if d <= n else Z.T, n * eps)
    G = gram(Z) if d <= n else gram(Z.T)
    return 0.5 * _logdet_pd(jnp.eye(G.shape[0], dtype=G.dtype) + G / (n * eps))


def _sample_space(N: int, D: int, C: int) -> bool:
    return N**3 / 3 + N * N * D <= C * (N * D * D + D**3 / 3)


def transrate_core(X: jax.Array, y: jax.Array, num_classes: int, eps: float = 1e-4) -> jax.Array:
    """TransRate of features ``X`` [N, D] for coded labels ``y`` (pure JAX, jit/vmap-able).

    Args:
      X: features [N, D].
      y: [N] int32 labels coded 0..num_classes-1.
      num_classes: C (static under ``jax.jit``; it also picks the sample- or feature-space form).
      eps: the distortion ε of the coding rates.

    Returns:
      TrR = R(Z, ε) − (1/C)·Σ_c R(Z_c, ε), a scalar array in JAX's default float type.
    """
    X = jnp.asarray(X, dtype=jnp.result_type(float))
    N, D = X.shape
    Z = X - jnp.mean(X, axis=0)
    rz = coding_rate(Z, eps)
    counts = jax.ops.segment_sum(jnp.ones((N,), Z.dtype), y, num_classes)
    if _sample_space(N, D, num_classes):
        same = (y[:, None] == y[None, :]).astype(Z.dtype)
        scale = same / (counts[y][:, None] * eps)
        B = jnp.eye(N, dtype=Z.dtype) + scale * gram(Z.T)
        rzy = 0.5 * _logdet_pd(B)
    else:
        eye = jnp.eye(D, dtype=Z.dtype)

        def one(c):
            m = (y == c).astype(Z.dtype)
            n_c = jnp.maximum(counts[c], 1.0)
            if not gram_exact_enough(Z.dtype):  # the class's rows (the others zeroed) through a QR
                return _half_logdet_qr(Z * m[:, None], n_c * eps)
            G = (Z * m[:, None]).T @ Z
            return 0.5 * _logdet_pd(eye + G / (n_c * eps))

        rzy = jnp.sum(jax.lax.map(one, jnp.arange(num_classes)))
    return rz - rzy / num_classes


@register("transrate", transrate_core, static=(),
          citation=(
          "Huang, Huang, Rong, Yang & Wei, ICML 2022 (TransRate); the authors' published "
          "coding-rate formulation (eps = 1e-4)"))
def transrate(X, y, eps: float = 1e-4) -> float:
    """TransRate of features ``X`` [N, D] for labels ``y`` [N] (higher is better).

    Like every registered metric it also takes the keyword ``precision=`` (``"auto"``, ``"float64"``,
    ``"float32"``; :func:`pedjax.metrics.register`).

    Args:
      X: features [N, D].
      y: [N] integer labels, any values (coded 0..C-1 in sorted order), at least 2 classes.
      eps: the distortion ε of the coding rates, > 0 (default 1e-4, the authors').

    Returns:
      TransRate as a Python float; ``-inf`` for degenerate (constant) features.

    Raises:
      ValueError: ``eps`` is not a positive number; ``X`` or ``y`` is invalid (not a finite 2-D
        array with one row per label, fewer than 2 classes); or ``precision`` is unknown.
    """
    if not (isinstance(eps, (int, float)) and not isinstance(eps, bool) and eps > 0):
        raise ValueError(f"eps: expected a positive number, got {eps!r}")
    return evaluate(transrate_core, X, y, eps=float(eps))
