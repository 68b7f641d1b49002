"""PARC (Bolya et al., NeurIPS 2021, "Scalable diverse model selection for accessible transfer
learning"), as in the PED/SFDA repositories' ``PARC_Score`` — with exact PCA.

1. PCA to ``n_dims`` = 32 components (the published code uses scikit-learn's *randomized* PCA,
   ``iterated_power=1``; pedjax computes the exact PCA it approximates, with scikit-learn's sign
   convention, since PARC's row correlations depend on the signs);
2. ``StandardScaler`` (per-feature z-score, ddof 0; a constant feature is left unscaled);
3. representation dissimilarity matrices ``RDM = 1 − corrcoef(rows)`` of the features and of the
   one-hot labels;
4. Spearman correlation (average ranks for ties) of the two upper triangles (i < j), × 100.

Exact where the published code is not:

* **Label RDM ties.** ``1 − np.corrcoef(one_hot)`` is 0 for same-class pairs and
  ``1 + 1/(C − 1)`` otherwise, but NumPy returns 0 *or* 2.2e-16 for same-class pairs depending on
  the class, so scipy ranks them as two groups. pedjax uses the exact two-valued RDM: its ranks
  are affine in the "different class" indicator, so the Spearman correlation is the correlation
  of the feature-RDM ranks with that indicator (the rank-biserial form), with no second sort.
* **Large N.** The RDMs are N × N. Above ``max_samples`` (15 000, as published) the public
  function subsamples every class at the rate ``max_samples / N`` (at least one sample per
  class; seeded with ``seed``). The published code samples the same way but then passes the
  *features as targets* (``targets = X[labeled_index]``), so its label RDM is a feature RDM and
  the score is meaningless; pedjax keeps the labels.
* ``n_dims`` is capped at ``min(N, D)`` (scikit-learn would raise).
* **Rank-deficient features.** When the features have rank r < ``n_dims`` (e.g. a 64-d layer whose
  outputs span 31 dimensions), components r+1… have zero variance in exact arithmetic, so
  ``StandardScaler`` would leave them zero. In floating point their variance is rounding noise
  (≈ 1e-14 of the top one) with an arbitrary direction, and z-scoring blows that noise up to unit
  variance: the published code's score then changes with the last bits of the input (enough to
  reorder the shipped zoo; docs/precision.md, "PARC"). pedjax zeroes components whose
  eigenvalue is ≤ max(N, D)·eps·λ_max, which gives the exact-arithmetic score.
* **float32** (issue 21). StandardScaler gives every kept component unit variance, however small
  its eigenvalue, so PARC depends on the *small* components as much as on the large ones. The
  eigendecomposition of the Gram matrix resolves an eigenvalue only to ~max(N, D)·eps·λ_max —
  in float32 ~1e-4·λ_max at N = 1000: near-duplicate features (small but real components, e.g.
  1e-5·λ_max) would be zeroed in float32 and kept in float64, which moves the float32 score and
  reorders zoos (docs/precision.md, "PARC"). In float32 (any dtype but float64) pedjax therefore
  takes the PCA from an
  SVD of the centred features, which resolves singular values to ~max(N, D)·eps·σ_max, i.e.
  eigenvalues to (max(N, D)·eps)²·λ_max, and uses that cut-off: components above ~1e-9·λ_max
  (N = 300) are kept as in float64. Components below it are float32 rounding noise of the input
  and cannot be reproduced in float32; float64 keeps (and whitens) them. The float64 path is the
  Gram eigendecomposition, unchanged.

The core needs the ranks of the upper-triangle RDM values only through two sums (see
:func:`spearman_binary`): one sort of the N² flattened RDM (pairs i ≥ j are masked), average ranks
from run boundaries, and a few reductions — O(N²) memory, no index arrays. On a single CPU device
the sort runs in NumPy through a host callback (much faster than XLA:CPU's comparator sort at
these sizes; docs/precision.md, "PARC").
A Spearman correlation that is undefined (every class a singleton: no same-class pair) is NaN,
as in scipy.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._linalg import host_kernels_enabled
from .._validate import as_float_matrix, encode_labels
from ._pca import pca_spectrum, sklearn_signs_for
from ._registry import jitted, register

__all__ = ["parc", "parc_core", "spearman_binary", "rankdata_average"]

#: the published subsampling threshold
MAX_SAMPLES = 15000


def rankdata_average(a: jax.Array) -> jax.Array:
    """``scipy.stats.rankdata(a, method="average")`` for a 1-D array (1-based ranks).

    Args:
      a: values [n] (any sortable dtype).

    Returns:
      The ranks [n] in the default float dtype: 1-based, ties share the mean of their ranks.
    """
    n = a.shape[0]
    order = jnp.argsort(a, stable=True)
    s = a[order]
    ranks_sorted = _average_ranks_sorted(s)
    return jnp.zeros((n,), ranks_sorted.dtype).at[order].set(ranks_sorted)


def _average_ranks_sorted(s: jax.Array) -> jax.Array:
    """Average 1-based ranks of an already sorted vector (ties share the mean of their ranks)."""
    n = s.shape[0]
    pos = jnp.arange(n)
    starts = jnp.concatenate([jnp.array([True]), s[1:] != s[:-1]])
    ends = jnp.concatenate([s[1:] != s[:-1], jnp.array([True])])
    first = jax.lax.cummax(jnp.where(starts, pos, 0), axis=0)
    last = jax.lax.cummin(jnp.where(ends, pos, n - 1), axis=0, reverse=True)
    return (first + last).astype(jnp.result_type(float)) / 2.0 + 1.0


def _rank_stats_xla(values: jax.Array, indicator: jax.Array, valid: jax.Array) -> jax.Array:
    """``[M, n1, Σ r², Σ_{indicator} r]`` over the valid entries (r: average 1-based ranks), in XLA."""
    f = values.dtype
    big = jnp.asarray(jnp.inf, values.dtype)
    v = jnp.where(valid, values, big)
    b = jnp.where(valid, indicator, 0).astype(f)
    sv, sb, sm = jax.lax.sort((v, b, valid.astype(f)), num_keys=1)
    r = _average_ranks_sorted(sv).astype(f)  # invalid entries (+inf) sort last: valid ranks unaffected
    return jnp.stack([jnp.sum(sm), jnp.sum(sb), jnp.sum(sm * r * r), jnp.sum(sb * r)])


def _host_rank_stats(values, indicator, valid):
    """:func:`_rank_stats_xla` in NumPy: one value-only sort, a binary search of the smaller group
    (NumPy's SIMD sort is ~30× faster than XLA:CPU's comparator sort at PARC's N² sizes).

    The rank sum over the indicator's 1s is taken directly when they are the smaller group and as
    ``M(M+1)/2`` minus the rank sum over the 0s otherwise (average ranks keep the total; every
    term is a multiple of ½ far below 2⁵³, so both ways give the same float64 number)."""
    values = np.asarray(values)
    keep = np.asarray(valid, bool)
    x = values[keep]
    s = np.sort(x)
    M = s.size
    out = np.zeros(4, values.dtype)
    if M == 0:
        return out
    starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
    ends = np.append(starts[1:], M) - 1  # 0-based [start, end] of each run of ties
    avg = (starts + ends) / 2.0 + 1.0
    ones = np.asarray(indicator, bool)[keep]
    n1 = int(np.count_nonzero(ones))
    small_is_ones = n1 <= M - n1
    q = np.sort(x[ones] if small_is_ones else x[~ones])
    lo, hi = np.searchsorted(s, q, "left"), np.searchsorted(s, q, "right")  # q's run is s[lo:hi]
    sum_q = np.sum((lo + hi + 1) / 2.0)
    sum_ones = sum_q if small_is_ones else M * (M + 1) / 2.0 - sum_q
    out[:] = (M, n1, np.sum((ends - starts + 1) * avg * avg), sum_ones)
    return out


def spearman_binary(values: jax.Array, indicator: jax.Array, valid: jax.Array) -> jax.Array:
    """Spearman correlation between ``values`` and a two-valued variable (``indicator`` 0/1),
    over the entries where ``valid``; equals ``scipy.stats.spearmanr`` on those entries.

    The two-valued side needs no ranks: its average ranks are affine in the indicator, so the
    correlation only needs the value ranks' sum of squares and their sum over the indicator's
    1s. On a single CPU device these come from a host NumPy kernel (:mod:`pedjax._linalg`),
    elsewhere from one XLA sort; same numbers to rounding. Rank statistics carry no gradient.

    Args:
      values: values to rank [M] (1-D; average ranks for ties).
      indicator: the two-valued variable [M] (0/1 or bool), same shape as ``values``.
      valid: mask [M] (bool), same shape: only these entries enter the correlation.

    Returns:
      The Spearman correlation, a 0-d ``jax.Array`` in the default float dtype; NaN when it is
      undefined (no valid entry, or ``indicator`` constant over the valid entries).
    """
    values = jax.lax.stop_gradient(jnp.asarray(values, jnp.result_type(float)))
    if host_kernels_enabled():
        out = jax.ShapeDtypeStruct((4,), values.dtype)
        stats = jax.pure_callback(_host_rank_stats, out, values, indicator, valid, vmap_method="sequential")
    else:
        stats = _rank_stats_xla(values, indicator, valid)
    M, n1, sum_r2, sum_r1 = stats[0], stats[1], stats[2], stats[3]
    mean_r = (M + 1.0) / 2.0
    var_r = sum_r2 / M - mean_r**2
    p = n1 / M
    cov = sum_r1 / M - mean_r * p
    return cov / jnp.sqrt(var_r * p * (1.0 - p))


def _standardize(Z: jax.Array) -> jax.Array:
    mu = jnp.mean(Z, axis=0)
    sd = jnp.sqrt(jnp.mean((Z - mu) ** 2, axis=0))
    return (Z - mu) / jnp.where(sd > 0, sd, 1.0)


def _row_corr(F: jax.Array) -> jax.Array:
    """``np.corrcoef(F)`` (rows as variables), clipped to [−1, 1]."""
    Fc = F - jnp.mean(F, axis=1, keepdims=True)
    nrm = jnp.sqrt(jnp.sum(Fc * Fc, axis=1))
    U = Fc / nrm[:, None]
    return jnp.clip(U @ U.T, -1.0, 1.0)


def _pca_svd(X: jax.Array, k: int):
    """``(explained variances [min(N, D)], scores [N, k])`` of X from an SVD of the centred
    features (two-pass centring), with scikit-learn's signs; :func:`pca_spectrum`'s outputs."""
    N = X.shape[0]
    Xc = X - jnp.mean(X, axis=0)
    Xc = Xc - jnp.mean(Xc, axis=0)
    U, s, _ = jnp.linalg.svd(Xc, full_matrices=False)
    Z = U[:, :k] * s[:k]
    return s**2 / max(N - 1, 1), Z * sklearn_signs_for(Xc, Z)


def _parc_parts(X: jax.Array, y: jax.Array, n_dims: int = 32):
    """PARC's inputs to the rank correlation: the flattened feature RDM ``1 − corr`` [N²], the
    label-RDM indicator (different classes) [N²] and the upper-triangle mask [N²]."""
    X = jnp.asarray(X, dtype=jnp.result_type(float))
    N, D = X.shape
    k = max(1, min(int(n_dims), N, D))
    eps = jnp.finfo(X.dtype).eps
    if X.dtype == jnp.float64:
        ev, Z = pca_spectrum(X, k, sklearn_signs=True)
        tol = ev[0] * max(N, D) * eps  # the Gram eigenvalues' rounding level
    else:  # float32: an SVD of the centred features resolves small components (module docstring)
        ev, Z = _pca_svd(X, k)
        tol = ev[0] * (max(N, D) * eps) ** 2  # the squared singular values' rounding level
    # components at the rounding level of the spectrum are zero in exact arithmetic: keep them
    # zero (a constant column, left unscaled) instead of z-scoring rounding noise to unit variance
    F = _standardize(jnp.where(ev[:k] > tol, Z, 0.0))
    rdm = 1.0 - _row_corr(F)
    upper = jnp.arange(N)[:, None] < jnp.arange(N)[None, :]
    diff = y[:, None] != y[None, :]
    return rdm.reshape(-1), diff.reshape(-1), upper.reshape(-1)


def parc_core(X: jax.Array, y: jax.Array, num_classes: int, n_dims: int = 32) -> jax.Array:
    """PARC of features ``X`` [N, D] for coded labels ``y`` (pure JAX; ``n_dims`` static).

    No subsampling here (the N × N RDMs are built in full; the public :func:`parc` subsamples).

    Args:
      X: features [N, D] (floating point; float64 takes the PCA from the Gram
        eigendecomposition, lower precisions from an SVD, module docstring).
      y: coded labels [N] (integers).
      num_classes: number of classes C (unused by the computation; the registry's core
        signature).
      n_dims: PCA components kept (default 32, static), capped at ``min(N, D)``.

    Returns:
      100 × the Spearman correlation of the feature and label RDMs, a 0-d ``jax.Array`` in the
      default float dtype; NaN when undefined (every class a singleton).
    """
    return 100.0 * spearman_binary(*_parc_parts(X, y, n_dims))


def _spearman_from_stats(stats: np.ndarray) -> float:
    """:func:`spearman_binary`'s closing formula on the host (NumPy float64)."""
    M, n1, sum_r2, sum_r1 = (float(v) for v in stats)
    mean_r = (M + 1.0) / 2.0
    var_r = sum_r2 / M - mean_r**2
    p = n1 / M
    cov = sum_r1 / M - mean_r * p
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(cov) / np.sqrt(np.float64(var_r * p * (1.0 - p))))


def stratified_subsample(codes: np.ndarray, max_samples: int, seed: int) -> np.ndarray:
    """Per-class sample indices at the rate ``max_samples / N`` (≥ 1 per class), sorted."""
    n = codes.shape[0]
    if n <= max_samples:
        return np.arange(n)
    rate = max_samples / n
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(codes):
        idx = np.flatnonzero(codes == c)
        m = max(1, int(rate * idx.size))
        keep.append(rng.choice(idx, size=m, replace=False))
    return np.sort(np.concatenate(keep))


@register("parc", parc_core, static=("n_dims",), batch="host")
def parc(X, y, n_dims: int = 32, max_samples: int = MAX_SAMPLES, seed: int = 0) -> float:
    """PARC transferability of features ``X`` [N, D] for labels ``y`` [N] (higher is better).

    Above ``max_samples`` samples each class is subsampled (seeded) to bound the N² RDMs. Like
    every public metric, it also takes the keyword ``precision=`` (``"auto"``, ``"float64"`` or
    ``"float32"``; docs/precision.md).

    Args:
      X: features [N, D] (any real array; the features of one model on the target set).
      y: labels [N], any integer values (coded 0..C−1 in sorted order), at least 2 classes.
      n_dims: PCA components before the RDMs (default 32, as published), capped at ``min(N, D)``.
      max_samples: largest N scored in full (default 15 000, as published); above it every class
        is subsampled at the rate ``max_samples / N`` (at least one sample per class).
      seed: seeds that subsampling (unused at or below ``max_samples``).

    Returns:
      The score (100 × a Spearman correlation, in [−100, 100]) as a Python ``float``; NaN when
      every class is a singleton; ``-inf`` for degenerate (constant) features.

    Raises:
      ValueError: ``n_dims`` is not a positive integer; ``max_samples`` is not an integer ≥ 2;
        ``X`` or ``y`` are malformed (not [N, D] and [N], non-finite features, fewer than 2
        classes).
    """
    codes, classes = encode_labels(y, "y")
    Xv = as_float_matrix(X, "X", n=codes.shape[0])
    if isinstance(n_dims, bool) or not isinstance(n_dims, (int, np.integer)) or n_dims < 1:
        raise ValueError(f"n_dims: expected a positive integer, got {n_dims!r}")
    if isinstance(max_samples, bool) or not isinstance(max_samples, (int, np.integer)) or max_samples < 2:
        raise ValueError(f"max_samples: expected an integer ≥ 2, got {max_samples!r}")
    keep = stratified_subsample(codes, int(max_samples), int(seed))
    Xs, cs = Xv[keep], codes[keep]
    if host_kernels_enabled():
        # the compiled part has no host callback (so JAX's persistent cache keeps it); the ranks
        # are taken on the host, outside it
        values, indicator, valid = _parts_jit(Xs, cs, n_dims=int(n_dims))
        return 100.0 * _spearman_from_stats(_host_rank_stats(np.asarray(values), np.asarray(indicator), np.asarray(valid)))
    out = jitted(parc_core, ("n_dims",))(Xs, cs, num_classes=int(classes.size), n_dims=int(n_dims))
    return float(np.asarray(out))


_parts_jit = jax.jit(_parc_parts, static_argnames=("n_dims",))
