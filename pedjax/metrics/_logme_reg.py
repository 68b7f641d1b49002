"""LogME for real-valued targets (You et al., ICML 2021, "LogME: Practical Assessment of
Pre-trained Models for Transfer Learning", §4: regression; the fixed-point evaluation of
arXiv 2110.10545), as ``LogME(regression=True)`` in github.com/thuml/LogME ``LogME.py``.

Targets ``y`` are a real matrix [N, K] (a vector [N] is one column). Per column k, a Bayesian
linear regression y_k ~ N(X m, β⁻¹ I), m ~ N(0, α⁻¹ I) without intercept; α and β maximise the
evidence by the fixed point

    t = α/β,  γ = Σ_j σ_j / (σ_j + t),  α ← γ / (‖m‖² + 1e−5),  β ← (N − γ) / (‖y − Xm‖² + 1e−5),

from α = β = 1, at most 11 iterations, stopping once |t' − t|/t ≤ 1e−3 (σ_j the squared singular
values of X, m the posterior mean); the score is the mean over the K columns of the maximised log
evidence per sample,

    L_k = [D/2·log α + N/2·log β − ½ Σ_j log(α + β σ_j) − β/2·‖y − Xm‖² − α/2·‖m‖² − N/2·log 2π] / N.

LogME for classification is this applied to the one-hot columns of the labels: the code is
shared. :func:`logme_targets` runs :mod:`pedjax.metrics._logme`'s own fixed point
(``_fixed_point``), spectrum (``_spectrum``, eigendecomposition of the smaller Gram matrix) and,
on the float64 CPU path, its tridiagonal evaluation (``_tridiagonal_spectrum``, ``_tri_solve``),
with the target matrix in place of the one-hot matrix; ``logme_targets(X, one_hot(y))`` equals
:func:`pedjax.metrics._logme.logme_core` ``(X, y)`` (tested). Everything the classification
LogME documents about the published code (every direction kept, ``|λ|`` of XᵀX for N > D) holds
here; the published regression path differs from the classification one only in reading the
columns of ``y`` as given (no centring, no scaling: a target's units change the score, as there).

Input: ``y`` is not a label vector, so the registry's label coding (``encode_labels``) does not
apply. The public :func:`logme_reg` validates ``y`` itself (:func:`as_targets`: finite, numeric,
[N] or [N, K] with K ≥ 1), validates ``X`` as every metric does and returns ``-inf`` for
degenerate features like every feature metric; it is registered with ``input="features"``,
``target="real"`` (:class:`~pedjax.metrics.Metric`), its core :func:`logme_reg_core` ``(X, Y)``
takes the target matrix (no ``num_classes``). ``pedjax.score_zoo(features, targets, "logme_reg")``
validates the targets with :func:`as_targets` and vmaps the core over the models of equal width.
PED needs classes and does not apply.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import as_float_matrix, is_degenerate
from ._logme import _use_tridiagonal, logme_targets_eigh, logme_targets_tridiagonal
from ._registry import UNINFORMATIVE, register

__all__ = ["logme_reg", "logme_reg_core", "logme_targets", "logme_targets_eigh", "logme_targets_tridiagonal",
           "as_targets"]

_CITATION = ("You, Liu, Wang & Long, ICML 2021 (LogME) and arXiv 2110.10545 (fixed point); "
             "github.com/thuml/LogME LogME.py, LogME(regression=True)")


@jax.custom_jvp
def _targets_fast(X, Y):
    return logme_targets_tridiagonal(X, Y)


@_targets_fast.defjvp
def _targets_fast_jvp(primals, tangents):
    # derivatives (and the primal that comes with them) through the differentiable eigh form
    return jax.jvp(logme_targets_eigh, primals, tangents)


def logme_targets(X: jax.Array, Y: jax.Array) -> jax.Array:
    """LogME of features ``X`` [N, D] for a real target matrix ``Y`` [N, K] (pure JAX; jit- and
    vmap-able).

    The float64 single-CPU path uses the tridiagonal evaluation (derivatives from the
    eigendecomposition form), as :func:`pedjax.metrics._logme.logme_core` does; elsewhere
    :func:`logme_targets_eigh`.

    Args:
      X: features [N, D].
      Y: real targets [N, K].

    Returns:
      The mean over the K columns of the maximised log evidence per sample, a scalar array.
    """
    X = jnp.asarray(X)
    if _use_tridiagonal(X):
        return _targets_fast(X, jnp.asarray(Y, X.dtype))
    return logme_targets_eigh(X, Y)


def logme_reg_core(X: jax.Array, Y: jax.Array) -> jax.Array:
    """Regression LogME of features ``X`` [N, D] for targets ``Y`` [N, K] (or [N]); pure JAX.

    The registered core (``target="real"``: no ``num_classes``).

    Args:
      X: features [N, D].
      Y: real targets [N, K], or [N] for one column (cast to the dtype of ``X``).

    Returns:
      :func:`logme_targets` of ``X`` and ``Y``, a scalar array.
    """
    X = jnp.asarray(X)
    Y = jnp.asarray(Y, X.dtype)
    if Y.ndim == 1:
        Y = Y[:, None]
    return logme_targets(X, Y)


def as_targets(y, name: str = "y", *, n: int | None = None) -> np.ndarray:
    """Real targets as a finite float matrix [N, K] of the default float type (a vector [N] is one
    column).

    Args:
      y: regression targets, array-like [N] or [N, K] (numeric or bool, not complex).
      name: the argument's name in errors.
      n: the expected number of rows, or ``None``.

    Returns:
      The targets as a float array [N, K] in the default float type.

    Raises:
      ValueError: naming ``name``: a non-numeric or complex dtype, a shape other than [N] or
        [N, K], empty, ``n`` rows expected and not found, or NaN/inf entries.
    """
    arr = np.asarray(y)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) \
            or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name}: expected real-valued regression targets, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim != 2:
        raise ValueError(f"{name}: expected targets of shape [N] or [N, K], got shape {arr.shape}")
    return as_float_matrix(arr, name, n=n)


_jit_core = jax.jit(logme_reg_core)


@register("logme_reg", logme_reg_core, target="real", citation=_CITATION)
def logme_reg(X, y) -> float:
    """Regression LogME of features ``X`` [N, D] for real-valued targets ``y`` [N] or [N, K]
    (higher is better; the mean over target columns).

    Like every registered metric it also takes the keyword ``precision=`` (``"auto"``,
    ``"float64"``, ``"float32"``; :func:`pedjax.metrics.register`).

    Args:
      X: features [N, D].
      y: real-valued targets [N] or [N, K], read as given (no centring or scaling: a target's
        units change the score).

    Returns:
      The score as a Python float; ``-inf`` for degenerate (constant) features.

    Raises:
      ValueError: ``y`` is not a finite real [N] or [N, K] array (:func:`as_targets`), ``X`` is
        not a finite 2-D array with one row per target row, or ``precision`` is unknown.
    """
    Y = as_targets(y, "y")
    Xv = as_float_matrix(X, "X", n=Y.shape[0])
    if is_degenerate(X):
        return UNINFORMATIVE
    return float(np.asarray(_jit_core(Xv, Y)))

