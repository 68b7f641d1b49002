"""GBC, the Gaussian Bhattacharyya Coefficient (Pándy et al., CVPR 2022, arXiv 2111.12780), with
the semantics of google-research ``stable_transfer/transferability/gbc.py``.

Each class c is summarised by a Gaussian with the class mean μ_c [D] and the per-dimension
variance v_c [D] (ddof 0, floored at 1e-4 so constant features and singleton classes stay
finite). For every ordered pair of distinct classes (i, j) the Bhattacharyya distance is

    BD_ij = 1/8 · Σ_d (μ_id − μ_jd)² / σ_ij,d + 1/2 · (L(σ_ij) − L(v_i)/2 − L(v_j)/2),
    σ_ij = (v_i + v_j) / 2,

and the score is ``GBC = −Σ_{i≠j} exp(−BD_ij)`` (higher, i.e. closer to 0, is better: the classes
overlap less).

The registered core, :func:`gbc_log_core`, returns ``log(−GBC) = logsumexp_{i≠j}(−BD_ij)`` and
the registry's ``finish`` (:func:`neg_exp`) turns it into the score on the host in float64. The
score itself leaves float32's range on wide features: BD grows with D, and on D ≫ N sets every
``exp(−BD)`` of a model underflowed to 0 in float32 (all models tied at −0.0; weighted τ 0.80
against float64, whose range reaches 1e−308). ``log(−GBC)`` is a moderate number in either
precision. :func:`gbc_core` is the score in JAX, ``−exp(gbc_log_core)``, for traced code.

* ``gaussian_type="diagonal"``: v_c is the variance vector and ``L(v) = Σ_d log v_d``.
* ``gaussian_type="spherical"`` (default): v_c is replaced by the scalar ``mean_d v_cd`` and, as in
  the reference code, ``L(s) = log s`` is taken **once** (not D times): the reference reduces the
  log of a scalar, so only the Mahalanobis term scales with D. pedjax keeps that exactly.

There is no PCA inside (the paper reduces to 64 dims first; do that as a caller option).
The O(C²·D) pairwise term is evaluated in row blocks so memory stays O(block·C·D).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from .._validate import check_choice
from ._registry import evaluate, register

__all__ = ["gbc", "gbc_core", "gbc_log_core", "gbc_log_from_gaussians", "neg_exp"]

#: variance floor of the reference (``tf.maximum(variance, 1e-4)``)
VAR_FLOOR = 1e-4
_GAUSSIAN_TYPES = ("spherical", "diagonal")
#: at most this many elements in one block of the pairwise [rows, C, D] term
_BLOCK_ELEMS = 1 << 22


def class_gaussians(X: jax.Array, y: jax.Array, num_classes: int):
    """Per-class means [C, D] and floored ddof-0 variances [C, D] (two-pass, so exact to rounding)."""
    ones = jnp.ones(X.shape[0], X.dtype)
    counts = jax.ops.segment_sum(ones, y, num_classes)
    safe = jnp.maximum(counts, 1.0)[:, None]
    means = jax.ops.segment_sum(X, y, num_classes) / safe
    resid = X - means[y]
    var = jax.ops.segment_sum(resid * resid, y, num_classes) / safe
    return means, jnp.maximum(var, VAR_FLOOR)


def gbc_log_core(X: jax.Array, y: jax.Array, num_classes: int, gaussian_type: str = "spherical") -> jax.Array:
    """``log(−GBC)`` of features ``X`` [N, D] for coded labels ``y`` [N] in 0..num_classes-1 (pure
    JAX; the registered core: the score is :func:`neg_exp` of it).

    No validation: ``gaussian_type`` is not checked here (anything but ``"spherical"`` is taken
    as ``"diagonal"``); the public :func:`gbc` checks it.

    Args:
      X: features [N, D] (floating point).
      y: coded labels [N] (integers 0..num_classes−1).
      num_classes: number of classes C (static under ``jit``); an empty class gets a zero mean
        and the floored variance.
      gaussian_type: ``"spherical"`` (default) or ``"diagonal"`` class Gaussians (static under
        ``jit``).

    Returns:
      ``logsumexp_{i≠j}(−BD_ij)`` as a 0-d ``jax.Array`` in ``X``'s dtype.
    """
    means, var = class_gaussians(jnp.asarray(X), y, num_classes)
    return gbc_log_from_gaussians(means, var, gaussian_type)


def gbc_core(X: jax.Array, y: jax.Array, num_classes: int, gaussian_type: str = "spherical") -> jax.Array:
    """GBC of features ``X`` [N, D] for coded labels ``y`` [N] in 0..num_classes-1 (pure JAX):
    ``−exp(`` :func:`gbc_log_core` ``)``, for traced code. In float32 it underflows to −0.0 on
    wide features; the registry's path (:func:`gbc_log_core`, then :func:`neg_exp` in float64)
    does not.

    Args:
      X: features [N, D] (floating point).
      y: coded labels [N] (integers 0..num_classes−1).
      num_classes: number of classes C (static under ``jit``).
      gaussian_type: ``"spherical"`` (default) or ``"diagonal"`` (static under ``jit``).

    Returns:
      The score ``−Σ_{i≠j} exp(−BD_ij)`` as a 0-d ``jax.Array`` in ``X``'s dtype (≤ 0).
    """
    return neg_exp(gbc_log_core(X, y, num_classes, gaussian_type), jnp)


def neg_exp(value, xp=np):
    """The GBC score from ``log(−GBC)``: ``−exp(value)``, elementwise (the registry's ``finish``).

    Args:
      value: ``log(−GBC)``, a scalar or array (NumPy, or JAX with ``xp=jax.numpy``).
      xp: the array namespace, ``numpy`` (the host, in the value's float64) or ``jax.numpy``.

    Returns:
      ``−exp(value)`` in ``xp``.
    """
    return -xp.exp(value)


def gbc_log_from_gaussians(means: jax.Array, var: jax.Array, gaussian_type: str = "spherical") -> jax.Array:
    """``log(−GBC)`` from the class means [C, D] and floored per-dimension variances [C, D] (what
    :func:`class_gaussians` returns; :mod:`pedjax.streaming` derives them from class sums)."""
    C, D = means.shape
    spherical = gaussian_type == "spherical"
    if spherical:
        s = jnp.mean(var, axis=1)  # [C]
        logs = jnp.log(s)  # log of the scalar variance, once (reference semantics)
    else:
        logs = jnp.sum(jnp.log(var), axis=1)  # [C]

    def row(i):
        diff2 = (means[i][None, :] - means) ** 2  # [C, D]
        if spherical:
            avg = 0.5 * (s[i] + s)  # [C]
            maha = jnp.sum(diff2, axis=1) / avg
            logavg = jnp.log(avg)
        else:
            avg = 0.5 * (var[i][None, :] + var)  # [C, D]
            maha = jnp.sum(diff2 / avg, axis=1)
            logavg = jnp.sum(jnp.log(avg), axis=1)
        bd = maha / 8.0 + 0.5 * (logavg - 0.5 * logs[i] - 0.5 * logs)
        return jnp.where(jnp.arange(C) == i, -jnp.inf, -bd)  # [C]: log BC_ij, none on the diagonal

    block = max(1, min(C, _BLOCK_ELEMS // max(1, C * D)))
    log_bc = jax.lax.map(row, jnp.arange(C), batch_size=block)  # [C, C]
    return logsumexp(log_bc)


@register("gbc", gbc_log_core, static=("gaussian_type",), finish=neg_exp)
def gbc(X, y, gaussian_type: str = "spherical") -> float:
    """GBC transferability of features ``X`` [N, D] for labels ``y`` [N] (higher is better; ≤ 0).

    Equals google-research's ``get_gbc_score`` to float64 precision. Like every public metric,
    it also takes the keyword ``precision=`` (``"auto"``, ``"float64"`` or ``"float32"``;
    docs/precision.md).

    Args:
      X: features [N, D] (apply PCA beforehand if you want the paper's 64-dim setting).
      y: [N] integer labels, any values (coded 0..C-1 in sorted order), at least 2 classes.
      gaussian_type: "spherical" (default) or "diagonal" class Gaussians.

    Returns:
      The score as a Python ``float`` (≤ 0); ``-inf`` for degenerate (constant) features.

    Raises:
      ValueError: ``gaussian_type`` is not one of the two choices; ``X`` or ``y`` are malformed
        (not [N, D] and [N], non-finite features, fewer than 2 classes).
    """
    check_choice(gaussian_type, "gaussian_type", _GAUSSIAN_TYPES)
    return evaluate(gbc_log_core, X, y, static=("gaussian_type",), gaussian_type=gaussian_type)
