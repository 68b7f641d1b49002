"""LFC, Label-Feature Correlation (Deshpande, Achille, Ravichandran, Li, Zancato, Fowlkes, Bhotika,
Soatto & Perona, 2021, arXiv 2102.00084, "A linearized framework and a new benchmark for model
selection for fine-tuning"): the correlation, over all N² sample pairs, between the feature kernel
and the label-agreement matrix,

    Θ = X Xᵀ (linear kernel of the raw features),  Y_ij = +1 if y_i = y_j else −1,
    Θ̃ = Θ − mean(Θ),  Ỹ = Y − mean(Y)   (global means: scalars, not double centring),
    LFC = ⟨Θ̃, Ỹ⟩ / (‖Θ̃‖ · ‖Ỹ‖).

Published code: the widely copied ``LFC``/``getLFC`` (TE-Bench-style benchmark repositories: ``thetaF
= f @ f.T; thetaF -= mean; lsm = (y[:, None] == y[None, :]) * 2 − 1; lsm -= mean``) and its
variant with a choice of kernel, which divides by the Frobenius norms (``cosine_similarity`` of the
flattened matrices). The first divides by ``np.linalg.norm(·, ord=2)``, which for a matrix is the
*spectral* norm (largest singular value), not the Frobenius norm of a correlation; the paper's
"correlation" is the Frobenius form, so ``norm="frobenius"`` (default) gives the correlation in
[−1, 1] and ``norm="spectral"`` reproduces the ``ord=2`` code. The two differ by the per-model
factor ‖Θ̃‖_F/‖Θ̃‖₂, so they can rank a zoo differently. The published code also builds the label
matrix in float32 (``astype(np.float32)``, its mean in float32); pedjax uses exact values (the
difference is at float32 rounding, ≤ ~1e-7 relative to the scale of the score).

Nothing N×N is formed when N > D. With centred features X̃ = X − x̄ (x̄ the feature mean), centred
class sums S̃_c = Σ_{i∈c} x̃_i, n_c the class sizes and q = Σ_c n_c²:

    Θ̃ = X̃X̃ᵀ + u1ᵀ + 1uᵀ,  u = X̃x̄        (X̃ᵀ1 = 0, Σu = 0)
    ⟨Θ̃, Ỹ⟩ = 2 [ Σ_c ‖S̃_c‖² + 2 Σ_c (n_c − n̄) x̄·S̃_c ]   (n̄ any constant, as Σ_c S̃_c = 0;
                                                     the mean class size avoids cancellation)
    ‖Θ̃‖_F² = ‖X̃ᵀX̃‖_F² + 2N·x̄ᵀ(X̃ᵀX̃)x̄          (two non-negative terms: no cancellation)
    ‖Ỹ‖_F² = 4 q (N² − q) / N²,  N² − q = Σ_c n_c (N − n_c)
    ‖Θ̃‖₂  = max |eig| of the (D+1)×(D+1) arrowhead [[Λ, √N Λ^{1/2}Vᵀx̄], [·, 0]]  (X̃ᵀX̃ = VΛVᵀ)
    ‖Ỹ‖₂  = 2 · max |eig(diag(n) − (q/N²)·√n√nᵀ)|   (C×C)

i.e. the D×D centred Gram, the class sums and counts and the mean (:func:`lfc_from_moments`:
exactly what :mod:`pedjax.streaming` accumulates). For N ≤ D the N×N products of the centred
features are used instead (cheaper there). Expanding ‖Θ‖² − N²·mean² on raw features instead
would cancel catastrophically in float32 for features with a large mean; the centred form does not.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .._linalg import gram
from .._validate import check_choice
from ._registry import evaluate, register

__all__ = ["lfc", "lfc_core", "lfc_from_moments"]

_NORMS = ("frobenius", "spectral")


def _label_terms(counts, norm):
    """(‖Ỹ‖/2 for the chosen norm) from the class sizes."""
    n = jnp.sum(counts)
    if norm == "frobenius":
        q = jnp.sum(counts * counts)
        rest = jnp.sum(counts * (n - counts))  # N² − q without cancellation
        return jnp.sqrt(q * rest) / n
    a = jnp.sum(counts * counts) / (n * n)
    r = jnp.sqrt(counts)
    lam = jnp.linalg.eigvalsh(jnp.diag(counts) - a * jnp.outer(r, r))
    return jnp.max(jnp.abs(lam))


def _numerator(sums, counts, mean):
    """⟨Θ̃, Ỹ⟩ / 2. Σ_c S̃_c = 0, so Σ_c n_c x̄·S̃_c = Σ_c (n_c − n̄) x̄·S̃_c: with balanced classes
    the terms x̄·S̃_c (large when the mean is) would otherwise cancel between classes."""
    w = counts - jnp.mean(counts)
    return jnp.sum(sums * sums) + 2.0 * jnp.sum(w * (sums @ mean))


def lfc_core(X: jax.Array, y: jax.Array, num_classes: int, norm: str = "frobenius") -> jax.Array:
    """LFC of features ``X`` [N, D] for coded labels ``y`` [N] in 0..num_classes-1 (pure JAX).

    Args:
      X: features [N, D] (raw, not centred: the kernel is of X itself).
      y: [N] int32 labels coded 0..num_classes-1.
      num_classes: C (static under ``jax.jit``).
      norm: ``"frobenius"`` or ``"spectral"`` (static): the norm that divides ⟨Θ̃, Ỹ⟩.

    Returns:
      LFC, a scalar array (in [−1, 1] for the Frobenius norm).
    """
    X = jnp.asarray(X)
    N, D = X.shape
    mean = jnp.mean(X, axis=0)
    Xc = X - mean
    dm = jnp.mean(Xc, axis=0)
    Xc, mean = Xc - dm, mean + dm  # second pass: centring exact to rounding
    counts = jax.ops.segment_sum(jnp.ones(N, X.dtype), y, num_classes)
    sums = jax.ops.segment_sum(Xc, y, num_classes)
    if N > D:
        return lfc_from_moments(gram(Xc), sums, counts, mean, norm)
    K = gram(Xc.T)  # [N, N] centred kernel X̃X̃ᵀ
    K = 0.5 * (K + K.T)
    u = Xc @ mean
    if norm == "frobenius":
        theta = jnp.sqrt(jnp.sum(K * K) + 2.0 * N * jnp.sum(u * u))
    else:
        ones = jnp.ones(N, X.dtype)
        theta = jnp.max(jnp.abs(jnp.linalg.eigvalsh(K + jnp.outer(u, ones) + jnp.outer(ones, u))))
    return _numerator(sums, counts, mean) / (theta * _label_terms(counts, norm))


def lfc_from_moments(gram_c: jax.Array, sums: jax.Array, counts: jax.Array, mean: jax.Array,
                     norm: str = "frobenius") -> jax.Array:
    """LFC from the statistics of the centred features X̃ = X − x̄ (pure JAX; what
    :mod:`pedjax.streaming` accumulates).

    O(D²) for the Frobenius form, one D×D and one (D+1)×(D+1) eigendecomposition for the spectral
    one.

    Args:
      gram_c: the centred Gram X̃ᵀX̃ [D, D].
      sums: the class sums of the centred features S̃_c [C, D].
      counts: the class sizes n_c [C] (N = their sum).
      mean: the feature mean x̄ [D].
      norm: ``"frobenius"`` or ``"spectral"`` (static).

    Returns:
      LFC, a scalar array (in [−1, 1] for the Frobenius norm).
    """
    G = 0.5 * (gram_c + gram_c.T)
    n = jnp.sum(counts)
    if norm == "frobenius":
        theta = jnp.sqrt(jnp.sum(G * G) + 2.0 * n * (mean @ G @ mean))
    else:
        D = G.shape[0]
        lam, V = jnp.linalg.eigh(G)
        lam = jnp.maximum(lam, 0.0)
        root = jnp.sqrt(lam)
        b = jnp.sqrt(n) * root * (V.T @ mean)  # [D]
        A = jnp.zeros((D + 1, D + 1), G.dtype)
        A = A.at[:D, :D].set(jnp.diag(lam)).at[:D, D].set(b).at[D, :D].set(b)
        theta = jnp.max(jnp.abs(jnp.linalg.eigvalsh(A)))
    return _numerator(sums, counts, mean) / (theta * _label_terms(counts, norm))


@register("lfc", lfc_core, static=("norm",),
          citation="Deshpande et al., arXiv 2102.00084, 2021 (Label-Feature Correlation); the "
                   "published LFC code (linear kernel, globally mean-centred kernel and label "
                   "matrices), Frobenius correlation by default, norm='spectral' for its ord=2 copy")
def lfc(X, y, norm: str = "frobenius") -> float:
    """LFC of features ``X`` [N, D] for labels ``y`` [N]: the correlation between the linear
    kernel XXᵀ and the ±1 label-agreement matrix, both minus their global mean (higher is better).

    Like every registered metric it also takes the keyword ``precision=`` (``"auto"``, ``"float64"``,
    ``"float32"``; :func:`pedjax.metrics.register`).

    Args:
      X: features [N, D] (raw: LFC is not translation invariant, the kernel is of X itself).
      y: [N] integer labels, any values (coded 0..C-1 in sorted order), at least 2 classes.
      norm: "frobenius" (default; the correlation of the paper, in [−1, 1]) or "spectral"
        (the widely copied code's ``np.linalg.norm(·, ord=2)``).

    Returns:
      LFC as a Python float; ``-inf`` for degenerate (constant) features.

    Raises:
      ValueError: ``norm`` is not ``"frobenius"`` or ``"spectral"``; ``X`` or ``y`` is invalid
        (not a finite 2-D array with one row per label, fewer than 2 classes); or ``precision``
        is unknown.
    """
    check_choice(norm, "norm", _NORMS)
    return evaluate(lfc_core, X, y, static=("norm",), norm=norm)
