"""ETran (Gholami et al., ICCV 2023, "ETran: Energy-Based Transferability Estimation"), the
classification variant: an energy score plus an LDA classification score, with the semantics of
github.com/mgholamikn/ETran (``metrics.py``: ``Energy_Score``, ``LDA_Score``; ``tw.py``).

**Energy score** (label-free, "is the target in-distribution for this model?"). Each sample's
features are read as logits and its free energy is ``E(x) = logsumexp_j x_j``; the score is the
mean over the *lowest* fraction of samples. The repository calls
``Energy_Score(features, 0.5, 'bot')``: the ``int(0.5·10)·N // 1000`` = ``5·N // 1000``
samples of lowest energy, i.e. the bottom 0.5 %. pedjax: ``energy_fraction = 0.005`` gives
exactly that count; where it is 0 (N < 200; the repository then averages an empty set and
returns NaN) the single lowest energy is used.

**LDA score** (the repository's ``LDA_Score``): the mean posterior probability of the true class
under its "LDA". The repository builds a shrinkage within-class scatter (SFDA's adaptive
shrinkage), then takes ``numpy.linalg.eigh(inv(Sw_s) @ Sb)`` — ``eigh`` of a non-symmetric
matrix, which reads only its lower triangle and returns an *orthonormal square* matrix V — and
sets ``coef = means · V · Vᵀ``. Since V Vᵀ = I that is ``coef = means``: the released
classifier is the nearest-mean (isotropic) rule
``logits = x · μ_cᵀ − ½‖μ_c‖² + log π_c``, softmax over classes. pedjax computes exactly this
(tested against a NumPy re-creation of the repository's steps), without the D × D inverse and
eigendecomposition that cancel out.

**Combination.** The repository (``tw.py``) min–max scales each score *across the zoo* and adds
``0.15 · energy + 0.85 · lda``. A single model cannot be min–max scaled, so :func:`etran` returns
``energy_weight · S_en + lda_weight · S_lda`` (default 1, 1: the paper's unweighted sum
``T = S_en + S_cls``); :func:`etran_combine` reproduces the repository's zoo-level combination
from per-model :func:`etran_components`.
"""
from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import as_float_matrix, encode_labels
from ._registry import evaluate, jitted, register

__all__ = ["etran", "etran_core", "etran_components", "etran_combine", "energy_score", "lda_score"]


def _count(N: int, fraction: float) -> int:
    # the repository's int(percent·10)·N // 1000 with percent = 100·fraction, for any fraction
    return max(1, (int(round(fraction * 1_000_000)) * N) // 1_000_000)


def energy_score(X: jax.Array, energy_fraction: float = 0.005) -> jax.Array:
    """Mean of the lowest ``energy_fraction`` of the per-sample energies logsumexp(x) (pure JAX).

    Args:
      X: features [N, D], each row read as logits.
      energy_fraction: the fraction of samples, those of lowest energy, to average: the
        ``max(1, ⌊fraction·N⌋)`` lowest (a Python number; static under ``jax.jit``). The default
        0.005 is the repository's bottom 0.5 %.

    Returns:
      The energy score S_en, a scalar array in JAX's default float type (``X`` is cast to it).
    """
    X = jnp.asarray(X, dtype=jnp.result_type(float))
    e = jax.nn.logsumexp(X, axis=1)
    return jnp.mean(jnp.sort(e)[: _count(X.shape[0], energy_fraction)])


def lda_score(X: jax.Array, y: jax.Array, num_classes: int) -> jax.Array:
    """Mean posterior of the true class under the repository's (nearest-mean) LDA (pure JAX).

    Args:
      X: features [N, D].
      y: [N] int32 labels coded 0..num_classes-1.
      num_classes: C, the number of classes (static under ``jax.jit``).

    Returns:
      The LDA score S_lda ∈ (0, 1], a scalar array: the mean over samples of the softmax
      probability of the true class under ``x · μ_cᵀ − ½‖μ_c‖² + log π_c``.
    """
    X = jnp.asarray(X, dtype=jnp.result_type(float))
    N = X.shape[0]
    counts = jax.ops.segment_sum(jnp.ones((N,), X.dtype), y, num_classes)
    means = jax.ops.segment_sum(X, y, num_classes) / jnp.maximum(counts, 1.0)[:, None]
    logits = X @ means.T - 0.5 * jnp.sum(means * means, axis=1) + jnp.log(counts / N)
    p = jax.nn.softmax(logits, axis=1)
    return jnp.mean(jnp.take_along_axis(p, y[:, None], axis=1))


def _components(X, y, num_classes, energy_fraction=0.005):
    return jnp.stack([energy_score(X, energy_fraction), lda_score(X, y, num_classes)])


def etran_core(
    X: jax.Array,
    y: jax.Array,
    num_classes: int,
    energy_weight: float = 1.0,
    lda_weight: float = 1.0,
    energy_fraction: float = 0.005,
) -> jax.Array:
    """``energy_weight · S_en + lda_weight · S_lda`` (pure JAX, jit/vmap-able).

    Args:
      X: features [N, D].
      y: [N] int32 labels coded 0..num_classes-1.
      num_classes: C (static under ``jax.jit``).
      energy_weight: weight of the energy score S_en (:func:`energy_score`).
      lda_weight: weight of the LDA score S_lda (:func:`lda_score`).
      energy_fraction: fraction of lowest-energy samples averaged by S_en (static).

    Returns:
      The weighted sum, a scalar array.
    """
    e, lda = _components(X, y, num_classes, energy_fraction)
    return energy_weight * e + lda_weight * lda


def _check_fraction(f):
    if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
        raise ValueError(f"energy_fraction: expected a number in (0, 1], got {f!r}")
    return float(f)


@register("etran", etran_core, static=("energy_fraction",),
          citation=(
          "Gholami, Akbari, Wang, Kamranian & Zhang, ICCV 2023 (ETran); github.com/mgholamikn/ETran "
          "metrics.py Energy_Score + LDA_Score (classification variant)"))
def etran(X, y, energy_weight: float = 1.0, lda_weight: float = 1.0, energy_fraction: float = 0.005) -> float:
    """ETran of features ``X`` [N, D] for labels ``y`` [N]: ``energy_weight · S_en +
    lda_weight · S_lda`` (higher is better).

    See :func:`etran_combine` for the repository's zoo-level 0.15/0.85 min–max combination. Like
    every registered metric it also takes the keyword ``precision=`` (``"auto"``, ``"float64"``,
    ``"float32"``; :func:`pedjax.metrics.register`).

    Args:
      X: features [N, D].
      y: [N] integer labels, any values (coded 0..C-1 in sorted order), at least 2 classes.
      energy_weight: weight of the energy score S_en (default 1: the paper's unweighted sum).
      lda_weight: weight of the LDA score S_lda (default 1).
      energy_fraction: the fraction of lowest-energy samples that S_en averages, in (0, 1]
        (default 0.005, the repository's bottom 0.5 %; at least one sample is used).

    Returns:
      The score as a Python float; ``-inf`` for degenerate (constant) features.

    Raises:
      ValueError: ``energy_fraction`` is not a number in (0, 1]; ``X`` or ``y`` is invalid (not
        a finite 2-D array with one row per label, fewer than 2 classes); or ``precision`` is
        unknown.
    """
    return evaluate(
        etran_core, X, y, static=("energy_fraction",), energy_weight=float(energy_weight),
        lda_weight=float(lda_weight), energy_fraction=_check_fraction(energy_fraction),
    )


def etran_components(X, y, energy_fraction: float = 0.005) -> tuple[float, float]:
    """``(S_en, S_lda)`` of one model's features, the inputs of :func:`etran_combine`.

    Not a registered metric: it runs in the caller's JAX settings (no ``precision=`` keyword)
    and computes the two scores even for degenerate features.

    Args:
      X: features [N, D].
      y: [N] integer labels, any values (coded 0..C-1 in sorted order), at least 2 classes.
      energy_fraction: the fraction of lowest-energy samples that S_en averages, in (0, 1].

    Returns:
      ``(S_en, S_lda)`` as Python floats (:func:`energy_score`, :func:`lda_score`).

    Raises:
      ValueError: ``energy_fraction`` is not a number in (0, 1], or ``X`` or ``y`` is invalid.
    """
    codes, classes = encode_labels(y, "y")
    Xv = as_float_matrix(X, "X", n=codes.shape[0])
    out = jitted(_components, ("energy_fraction",))(
        Xv, codes, num_classes=int(classes.size), energy_fraction=_check_fraction(energy_fraction)
    )
    e, lda = np.asarray(out).tolist()
    return float(e), float(lda)


def etran_combine(
    components: Mapping[str, tuple[float, float]], energy_weight: float = 0.15, lda_weight: float = 0.85
) -> dict[str, float]:
    """The repository's zoo-level ETran: min–max scale the energy and the LDA scores across the
    models, then ``energy_weight · energy + lda_weight · lda``.

    A score that is equal for every model scales to 0 (the repository divides 0 by 0).

    Args:
      components: ``{model name: (S_en, S_lda)}``, e.g. from :func:`etran_components`; at least
        one model.
      energy_weight: weight of the scaled energy score (the repository's 0.15).
      lda_weight: weight of the scaled LDA score (the repository's 0.85).

    Returns:
      ``{model name: combined score}`` (Python floats in [0, energy_weight + lda_weight] for
      non-negative weights; higher is better), in the order of ``components``.

    Raises:
      ValueError: ``components`` is empty, or its values are not finite ``(energy, lda)`` pairs.
    """
    if len(components) == 0:
        raise ValueError("components: the zoo is empty; pass {name: (energy, lda)} for at least one model")
    names = list(components)
    arr = np.asarray([components[n] for n in names], dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or not np.all(np.isfinite(arr)):
        raise ValueError("components: expected finite (energy, lda) pairs, e.g. from etran_components")
    lo, hi = arr.min(axis=0), arr.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    scaled = (arr - lo) / span
    total = energy_weight * scaled[:, 0] + lda_weight * scaled[:, 1]
    return {n: float(t) for n, t in zip(names, total, strict=True)}
