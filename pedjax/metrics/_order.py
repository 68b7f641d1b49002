"""The canonical sample order and its fixed pseudo-random helpers, shared by the metrics whose
result depends on an order of the samples (kNN and linear-probe folds, NLEEP's k-means++ draws)
and by SFDA's power-method fallback start (the fixed signs).

The canonical order sorts the samples by

1. the *signed* row sum Σ_j s_j·x_ij with fixed pseudo-random signs s_j = ±1 (:func:`_signs`:
   bit 7 of the ``lowbias32`` key of column j for the seed 0x5EED, as :func:`slot_keys`),
2. the row sum of squares Σ_j x_ij²,
3. the first feature x_i0,
4. the position (only rows equal in all three keys, almost surely equal rows, keep their order).

It depends on the rows' values only, so a metric drawn in this order is invariant to permuting
the samples. Why signed: a plain row sum is ill-conditioned when the rows' sums are (nearly)
constant — LayerNorm outputs without affine terms (a randomly initialised ViT) sum to ~1e−7, zero
up to rounding — and an order by it is rounding noise, in float32 and even in float64 (after PED
float64's order was decided by the last bits of its own rounding). The signed sum's spread over
the samples is of the order of √D times the features' spread whatever normalisation makes the
plain sums constant.

Precision: float64 sums in float64. Below float64 both sums are *exact*
(:func:`exact_row_sums`, :func:`_exact_squares`), i.e. the float64 order of the same float32
numbers (a float64 sum of float32 features is exact or within 2^−53 of it), ties included.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["canonical_order", "exact_row_sums", "slot_keys", "column_signs"]


def _float(X):
    return jnp.asarray(X, dtype=jnp.result_type(float))


def _mix32(x: jax.Array) -> jax.Array:
    """Chris Wellons' ``lowbias32`` integer hash (uint32 → uint32, a bijection)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def slot_keys(seed, n: int) -> jax.Array:
    """The random keys of slots 0..n−1 for ``seed``: ``mix(mix(seed) ⊕ q)`` with the ``lowbias32``
    hash, as uint32 (a bijection of q for a fixed seed, so keys never tie). A counter-based hash
    instead of ``jax.random`` keeps the program small (threefry alone took a third of kNN's
    compilation) and is the same on every backend and in either precision."""
    s = _mix32(jnp.asarray(seed).astype(jnp.uint32))
    return _mix32(s ^ jnp.arange(n, dtype=jnp.uint32))


#: bits per chunk and chunks of the exact row sums of :func:`exact_row_sums` (72 bits below the
#: largest term; int32 chunk sums hold up to 2^19 terms per row)
_CHUNK_BITS = 12
_CHUNKS = 6


def exact_row_sums(T: jax.Array) -> list[jax.Array]:
    """The exact row sums of ``T`` [N, M] as integer digits: int32 arrays ``[S_0, …, S_{K−1}]`` [N]
    with Σ_j T_ij = 2^e · Σ_k S_k[i] · 2^(−12(k+1)) (e the exponent of max|T|), S_1… in
    [0, 2^12) — so the lexicographic order of the digits is the numerical order of the exact sums
    and exactly equal sums have equal digits. Every entry is cut into 12-bit chunks on one grid
    (scaling by a power of two and ``trunc`` are exact), the chunks are summed as integers and the
    carries propagated. Exact for every entry above 2^−49 of max|T| in float32 (2^−72 in
    float64): what a float64 sum of float32 numbers resolves. Pure JAX."""
    m = jnp.max(jnp.abs(T))
    _, e = jnp.frexp(m)  # max|T| < 2^e
    u = jnp.ldexp(T, -e)  # in (−1, 1), exact
    scale = jnp.asarray(float(1 << _CHUNK_BITS), T.dtype)
    digits = []
    for _ in range(_CHUNKS):
        u = u * scale
        c = jnp.trunc(u)
        u = u - c  # exact: the fractional part
        digits.append(jnp.sum(c.astype(jnp.int32), axis=1))
    for k in range(_CHUNKS - 1, 0, -1):  # carries, lowest digit first (>> is a floor division)
        digits[k - 1] = digits[k - 1] + (digits[k] >> _CHUNK_BITS)
        digits[k] = digits[k] & ((1 << _CHUNK_BITS) - 1)
    return digits


def _exact_squares(X: jax.Array) -> jax.Array:
    """[N, 3D] float32 terms that sum, per row, exactly to the row's sum of squares: x = h + l with
    h the top 12 bits of x's significand (a bit mask, so no compiler can reassociate it) and l the
    rest, and x² = h² + 2hl + l², each product exact (12 × 12 bits)."""
    bits = jax.lax.bitcast_convert_type(X, jnp.int32)
    h = jax.lax.bitcast_convert_type(bits & jnp.int32(-(1 << 12)), X.dtype)
    lo = X - h  # exact
    return jnp.concatenate([h * h, 2.0 * h * lo, lo * lo], axis=1)


def _signs(D: int, dtype) -> jax.Array:
    """Fixed pseudo-random signs ±1 of the D columns (bit 7 of the ``lowbias32`` key of the column)."""
    return jnp.where((slot_keys(0x5EED, D) >> 7) & 1 == 1, 1.0, -1.0).astype(dtype)


def canonical_order(X: jax.Array) -> jax.Array:
    """The canonical sample order: sorted by (signed row sum Σ_j s_j x_ij with fixed pseudo-random
    signs s_j = ±1, row sum of squares, first feature), then position. The signed sum is
    well-conditioned where the plain row sum is not (LayerNorm rows sum to 0 up to rounding).
    float32: both sums exact (:func:`exact_row_sums`), i.e. the float64 order of float32 features."""
    X = _float(X)
    Xs = X * _signs(X.shape[1], X.dtype)[None, :]
    if X.dtype == jnp.float64:
        keys = [jnp.sum(Xs, axis=1), jnp.sum(X * X, axis=1), X[:, 0]]
    else:
        keys = [*exact_row_sums(Xs), *exact_row_sums(_exact_squares(X)), X[:, 0]]
    iota = jnp.arange(X.shape[0], dtype=jnp.int32)
    *_, order = jax.lax.sort((*keys, iota), num_keys=len(keys))
    return order


def column_signs(D: int, dtype) -> jax.Array:
    """The fixed signs s_j = ±1 [D] of the canonical order's first key (public name of :func:`_signs`)."""
    return _signs(D, dtype)
