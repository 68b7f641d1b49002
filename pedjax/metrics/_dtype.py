"""Which formulation a metric takes for the dtype it computes in.

Several metrics (H-score, regularised H-score, SFDA, TransRate) keep the published formulation
(Gram products, Cholesky of a covariance) in float64, the parity path, and switch to an
orthogonal one (a QR or SVD of the features themselves, no Gram) below it: a Gram squares the
condition number, which float64's ε ≈ 2e-16 absorbs and float32's ε ≈ 1e-7 does not
(docs/precision.md). :func:`gram_exact_enough` is that one decision, shared so that "float64"
means the same dtypes in every metric.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

__all__ = ["gram_exact_enough"]

_EPS64 = float(np.finfo(np.float64).eps)


def gram_exact_enough(dtype) -> bool:
    """Whether Gram products in ``dtype`` are exact enough for the published formulations:
    float64 precision or better (``ε(dtype) ≤ ε₆₄``); float32, bfloat16 and float16 are not.

    Args:
      dtype: a floating-point dtype (NumPy or JAX).

    Returns:
      ``True`` for float64 (and wider), ``False`` otherwise.
    """
    return float(jnp.finfo(dtype).eps) <= _EPS64
