"""LEEP, the Log Expected Empirical Prediction (Nguyen et al., ICML 2020), as in
github.com/thuml/LogME ``LEEP.py``.

Input is the source model's class probabilities θ [N, C_s] on the target samples (not features).
With the empirical joint P(y, z) = (1/N) Σ_{i: y_i = y} θ_iz and the conditional
P(y | z) = P(y, z) / Σ_y' P(y', z), the score is

    LEEP = (1/N) Σ_i log Σ_z θ_iz · P(y_i | z)

(≤ 0; higher is better). A source class that receives zero probability mass from every sample
makes the reference divide 0/0 (NaN); here its conditional is set to 0, which does not change any
term (all of its θ_iz are 0), so the score stays finite. The probabilities are used as given (rows
are not renormalised), exactly like the reference.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import as_float_matrix
from ._registry import evaluate, register

__all__ = ["leep", "leep_core"]


def leep_core(P: jax.Array, y: jax.Array, num_classes: int) -> jax.Array:
    """LEEP of source probabilities ``P`` [N, C_s] for coded target labels ``y`` [N] (pure JAX).

    Args:
      P: [N, C_s] source-model class probabilities θ on the target samples (used as given).
      y: [N] int32 target labels coded 0..num_classes-1.
      num_classes: C_t, the number of target classes (static under ``jax.jit``).

    Returns:
      LEEP, a scalar array (≤ 0 for probability rows; ``-inf`` if a row of ``P`` is all zero,
      which the public :func:`leep` rejects).
    """
    P = jnp.asarray(P)
    N = P.shape[0]
    joint = jax.ops.segment_sum(P, y, num_classes) / N  # [C_t, C_s]
    mass = jnp.sum(joint, axis=0)  # [C_s] = P(z)
    cond = jnp.where(mass > 0, joint / jnp.where(mass > 0, mass, 1.0), 0.0)  # P(y | z)
    eep = jnp.sum(P * cond[y], axis=1)  # [N]: Σ_z θ_iz P(y_i | z)
    return jnp.mean(jnp.log(eep))


@register("leep", leep_core, input="probs",
          citation=(
          "Nguyen, Hassner, Seeger & Archambeau, ICML 2020 (LEEP); github.com/thuml/LogME LEEP.py"))
def leep(source_probs, y) -> float:
    """LEEP transferability from source-model probabilities ``source_probs`` [N, C_s] and target
    labels ``y`` [N] (higher is better; ≤ 0 for probability rows).

    Like every registered metric it also takes the keyword ``precision=`` (``"auto"``, ``"float64"``,
    ``"float32"``; :func:`pedjax.metrics.register`).

    Args:
      source_probs: [N, C_s] non-negative class probabilities of the source (pre-trained) model on
        the target samples, e.g. ``softmax(logits)``; every row needs positive mass.
      y: [N] integer target labels, any values (coded 0..C-1 in sorted order), ≥ 2 classes.

    Returns:
      LEEP as a Python float. A constant ``source_probs`` gives the chance level, not ``-inf``.

    Raises:
      ValueError: ``source_probs`` has negative entries or an all-zero row, or is not a finite 2-D
        array with one row per label; ``y`` is invalid (fewer than 2 classes, non-integer); or
        ``precision`` is unknown.
    """
    P = as_float_matrix(source_probs, "source_probs")
    if np.any(P < 0):
        raise ValueError(
            f"source_probs: contains {int(np.count_nonzero(P < 0))} negative value(s); expected "
            "class probabilities (apply softmax to logits first)"
        )
    empty = np.sum(P, axis=1) <= 0
    if np.any(empty):
        raise ValueError(
            f"source_probs: {int(np.count_nonzero(empty))} row(s) sum to zero; every sample needs "
            "a probability distribution over the source classes"
        )
    return evaluate(leep_core, P, y, x_name="source_probs")
