"""NCE, the Negative Conditional Entropy (Tran et al., ICCV 2019), as in github.com/thuml/LogME
``NCE.py``: with the empirical joint distribution P(y, z) of target labels y and source-model hard
labels z (usually the argmax of the source model's prediction),

    NCE = −H(Y | Z) = Σ_{y,z} P(y, z) · log P(y | z)

(≤ 0; higher is better). It is computed as −H(Y, Z) + H(Z) from joint counts, with the convention
0 · log 0 = 0. (The stored reference allocates with ``np.zeros(C_t, C_s, dtype=float)``, which
raises, and evaluates 0 · log 0 as NaN for every unseen (y, z) pair; the entropy it intends is the
one above.)

The core receives the source labels one-hot, as a float matrix [N, C_s], so models stack and vmap
like features; soft rows are accepted by the core too (the joint becomes a soft count).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import xlogy

from .._validate import encode_labels
from ._registry import evaluate, register

__all__ = ["nce", "nce_core"]


def nce_core(Z: jax.Array, y: jax.Array, num_classes: int) -> jax.Array:
    """NCE of one-hot source labels ``Z`` [N, C_s] for coded target labels ``y`` [N] (pure JAX).

    Args:
      Z: [N, C_s] one-hot source labels (soft rows are read as soft counts).
      y: [N] int32 target labels coded 0..num_classes-1.
      num_classes: C_t, the number of target classes (static under ``jax.jit``).

    Returns:
      NCE = −H(Y | Z), a scalar array (≤ 0 for one-hot rows).
    """
    Z = jnp.asarray(Z)
    N = Z.shape[0]
    joint = jax.ops.segment_sum(Z, y, num_classes) / N  # [C_t, C_s] = P(y, z)
    pz = jnp.sum(joint, axis=0)  # [C_s]
    return jnp.sum(xlogy(joint, joint)) - jnp.sum(xlogy(pz, pz))


@register("nce", nce_core, input="labels",
          citation=(
          "Tran, Nguyen & Hassner, ICCV 2019 (NCE); github.com/thuml/LogME NCE.py"))
def nce(source_labels, y) -> float:
    """NCE transferability from source-model hard labels ``source_labels`` [N] and target labels
    ``y`` [N] (higher is better; ≤ 0).

    Like every registered metric it also takes the keyword ``precision=`` (``"auto"``, ``"float64"``,
    ``"float32"``; :func:`pedjax.metrics.register`).

    Args:
      source_labels: [N] integer labels predicted by the source model (any values; one source
        class is allowed).
      y: [N] integer target labels, any values, at least 2 classes.

    Returns:
      NCE as a Python float; a single source class gives −H(Y), the chance level.

    Raises:
      ValueError: ``source_labels`` is not a 1-D integer label vector, ``y`` is invalid (fewer
        than 2 classes, non-integer), their lengths differ, or ``precision`` is unknown.
    """
    codes, classes = encode_labels(source_labels, "source_labels", min_classes=1)
    onehot = np.zeros((codes.shape[0], classes.size), dtype=np.float64)
    onehot[np.arange(codes.shape[0]), codes] = 1.0
    return evaluate(nce_core, onehot, y, x_name="source_labels")
