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

The core is one sort of the N² flattened RDM (pairs i ≥ j are pushed to the end with +inf and
ignored), average ranks from run boundaries, and a few reductions: O(N²) memory, no index arrays.
A Spearman correlation that is undefined (every class a singleton: no same-class pair) is NaN,
as in scipy.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import as_float_matrix, encode_labels
from ._pca import pca_scores
from ._registry import jitted, register

__all__ = ["parc", "parc_core", "spearman_binary", "rankdata_average"]

#: the published subsampling threshold
MAX_SAMPLES = 15000


def rankdata_average(a: jax.Array) -> jax.Array:
    """``scipy.stats.rankdata(a, method="average")`` for a 1-D array (1-based ranks)."""
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


def spearman_binary(values: jax.Array, indicator: jax.Array, valid: jax.Array) -> jax.Array:
    """Spearman correlation between ``values`` and a two-valued variable (``indicator`` 0/1),
    over the entries where ``valid``; equals ``scipy.stats.spearmanr`` on those entries."""
    f = jnp.result_type(float)
    big = jnp.asarray(jnp.inf, values.dtype)
    v = jnp.where(valid, values, big)
    b = jnp.where(valid, indicator, 0).astype(f)
    sv, sb, sm = jax.lax.sort((v, b, valid.astype(f)), num_keys=1)
    r = _average_ranks_sorted(sv)  # invalid entries (+inf) sort last: valid ranks unaffected
    M = jnp.sum(sm)
    n1 = jnp.sum(sb)
    mean_r = (M + 1.0) / 2.0
    var_r = jnp.sum(sm * r * r) / M - mean_r**2
    p = n1 / M
    cov = jnp.sum(sb * r) / M - mean_r * p
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


def parc_core(X: jax.Array, y: jax.Array, num_classes: int, n_dims: int = 32) -> jax.Array:
    """PARC of features ``X`` [N, D] for coded labels ``y`` (pure JAX; ``n_dims`` static)."""
    X = jnp.asarray(X, dtype=jnp.result_type(float))
    N, D = X.shape
    k = max(1, min(int(n_dims), N, D))
    F = _standardize(pca_scores(X, k, sklearn_signs=True))
    rdm = 1.0 - _row_corr(F)
    upper = jnp.arange(N)[:, None] < jnp.arange(N)[None, :]
    diff = y[:, None] != y[None, :]
    return 100.0 * spearman_binary(rdm.reshape(-1), diff.reshape(-1), upper.reshape(-1))


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


@register("parc", parc_core, static=("n_dims",))
def parc(X, y, n_dims: int = 32, max_samples: int = MAX_SAMPLES, seed: int = 0) -> float:
    """PARC transferability of features ``X`` [N, D] for labels ``y`` [N] (higher is better).

    Above ``max_samples`` samples each class is subsampled (seeded) to bound the N² RDMs.
    """
    codes, classes = encode_labels(y, "y")
    Xv = as_float_matrix(X, "X", n=codes.shape[0])
    if isinstance(n_dims, bool) or not isinstance(n_dims, (int, np.integer)) or n_dims < 1:
        raise ValueError(f"n_dims: expected a positive integer, got {n_dims!r}")
    if isinstance(max_samples, bool) or not isinstance(max_samples, (int, np.integer)) or max_samples < 2:
        raise ValueError(f"max_samples: expected an integer ≥ 2, got {max_samples!r}")
    keep = stratified_subsample(codes, int(max_samples), int(seed))
    Xs, cs = Xv[keep], codes[keep]
    out = jitted(parc_core, ("n_dims",))(Xs, cs, num_classes=int(classes.size), n_dims=int(n_dims))
    return float(np.asarray(out))
