"""Judging a metric: how well do its scores rank a zoo against the fine-tuned ground truth?

Every function takes two aligned collections, either

* two sequences/arrays of equal length, aligned by position, or
* two dicts ``{model_name: value}`` with the same keys, aligned by key (the first argument's key
  order is used),

and returns a Python float. At least two models are needed; NaN/inf values, mismatched lengths or
keys raise a ``ValueError`` naming the argument.

* :func:`weighted_tau` — exactly ``scipy.stats.weightedtau(x, y)[0]`` (hyperbolic weigher
  1/(r+1), additive pair weights, ``rank=True``), implemented here (see its docstring).
* :func:`kendall_tau` — ``scipy.stats.kendalltau`` (tau-b); :func:`pearson`, :func:`spearman`.
* :func:`top_k`, :func:`rel_k` — the ``recall_k`` / ``rel_k`` of github.com/lixiaotong97/PED
  ``rank_correlation.py``.

A constant input (all values tied) has no ranking: the correlations then return NaN, like SciPy.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["weighted_tau", "kendall_tau", "pearson", "spearman", "top_k", "rel_k"]


# --------------------------------------------------------------------------------------------
# alignment and validation


def _values(v: Any, name: str) -> np.ndarray:
    arr = np.asarray(v)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name}: expected numeric values, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence of per-model values, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        return arr.astype(np.int64)
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name}: contains {bad} NaN or infinite value(s)")
    return arr


def _align(a: Any, b: Any, a_name: str, b_name: str):
    """Return ``(a_vals, b_vals, b_pos)``: values aligned by position or key, and for each aligned
    entry its position in ``b``'s own order (used for tie-breaking like a stable sort of ``b``)."""
    a_map, b_map = isinstance(a, Mapping), isinstance(b, Mapping)
    if a_map != b_map:
        which = b_name if a_map else a_name
        raise ValueError(
            f"{which}: cannot align a dict with a sequence; pass two dicts {{model: value}} or two "
            "sequences in the same model order"
        )
    if a_map:
        a_keys, b_keys = list(a.keys()), list(b.keys())
        if set(a_keys) != set(b_keys):
            missing = [k for k in a_keys if k not in b]
            extra = [k for k in b_keys if k not in a]
            raise ValueError(
                f"{b_name}: keys differ from {a_name}'s (missing {missing[:5]}, extra {extra[:5]}); "
                "both dicts must score the same models"
            )
        where = {k: i for i, k in enumerate(b_keys)}
        a_vals = _values([a[k] for k in a_keys], a_name)
        b_vals = _values([b[k] for k in a_keys], b_name)
        b_pos = np.array([where[k] for k in a_keys], dtype=np.int64)
    else:
        a_vals, b_vals = _values(a, a_name), _values(b, b_name)
        if a_vals.shape[0] != b_vals.shape[0]:
            raise ValueError(
                f"{b_name}: has {b_vals.shape[0]} entries but {a_name} has {a_vals.shape[0]}; "
                "both must describe the same models"
            )
        b_pos = np.arange(a_vals.shape[0], dtype=np.int64)
    if a_vals.shape[0] < 2:
        raise ValueError(f"{a_name}: needs at least 2 models to rank, got {a_vals.shape[0]}")
    return a_vals, b_vals, b_pos


# --------------------------------------------------------------------------------------------
# weighted tau

#: rows per block of the O(n²) pair comparison
_BLOCK = 1024


def _sign(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sign(a − b) as int8 without forming a − b (no overflow for int64)."""
    return (a > b).astype(np.int8) - (a < b).astype(np.int8)


def _pair_counts(x: np.ndarray, y: np.ndarray):
    """Per element i: how many j ≠ i are tied with i in x, in y, in both, and discordant with i."""
    n = x.shape[0]
    tx = np.zeros(n, np.int64)
    ty = np.zeros(n, np.int64)
    txy = np.zeros(n, np.int64)
    dis = np.zeros(n, np.int64)
    for lo in range(0, n, _BLOCK):
        hi = min(n, lo + _BLOCK)
        sx = _sign(x[lo:hi, None], x[None, :])
        sy = _sign(y[lo:hi, None], y[None, :])
        ex, ey = sx == 0, sy == 0
        tx[lo:hi] = ex.sum(axis=1) - 1  # minus the element itself
        ty[lo:hi] = ey.sum(axis=1) - 1
        txy[lo:hi] = (ex & ey).sum(axis=1) - 1
        dis[lo:hi] = (sx * sy < 0).sum(axis=1)
    return tx, ty, txy, dis


def _weighted_tau_one(x: np.ndarray, y: np.ndarray, counts) -> float:
    """SciPy's ``_weightedrankedtau(x, y, rank=None)`` with the hyperbolic additive weigher.

    Ranks: elements sorted by (x, y) descending lexicographically get ranks 0, 1, …; element i
    weighs w_i = 1/(1 + rank_i) and a pair (i, j) weighs w_i + w_j. With T the weight of all
    pairs, U/V/W of pairs tied in x / y / both, and Dw of discordant pairs,
    tau = (T − U − V + W − 2·Dw) / sqrt((T − U)(T − V)), clipped to [−1, 1]; NaN if x or y is
    constant. A pair sum Σ_{pairs}(w_i + w_j) equals Σ_i w_i·(number of partners of i).
    """
    n = x.shape[0]
    perm = np.lexsort((y, x))  # ascending by x, then y (stable), as SciPy
    rank = np.empty(n, np.int64)
    rank[perm] = np.arange(n - 1, -1, -1)
    w = 1.0 / (1.0 + rank)
    tx, ty, txy, dis = counts
    if np.all(tx == n - 1) or np.all(ty == n - 1):
        return float("nan")
    tot = np.sum(w) * (n - 1)
    u = np.dot(w, tx)
    v = np.dot(w, ty)
    t = np.dot(w, txy)
    d = np.dot(w, dis)
    tau = ((tot - (v + u - t)) - 2.0 * d) / np.sqrt(tot - u) / np.sqrt(tot - v)
    return float(min(1.0, max(-1.0, tau)))


def weighted_tau(x, y) -> float:
    """Weighted Kendall τ, identical to ``scipy.stats.weightedtau(x, y)[0]`` (Vigna 2015).

    Hyperbolic weigher w(r) = 1/(r + 1) on the rank r of each element (rank 0 = largest), additive
    pair weights, ``rank=True``: the ranking is by decreasing (x, y) lexicographically for one
    pass and by decreasing (y, x) for the other, and the two values are averaged (so the result is
    symmetric in x and y). Ties are handled as in SciPy (tied pairs are neither concordant nor
    discordant and are removed from the normalisation). Only the order of the values matters.

    Cost O(n²) time, O(n·1024) memory.

    Args:
      x: a sequence, or a dict ``{model: value}``.
      y: a sequence aligned with ``x`` by position, or a dict aligned with it by key.

    Returns:
      τ_w in [−1, 1] as a float; NaN when either input is constant (as SciPy does).

    Raises:
      ValueError: naming ``x`` or ``y``: non-numeric, not 1-D, NaN or infinite values; a dict
        with a sequence; dicts with different keys or sequences of different lengths; fewer than
        two models. Unlike SciPy, NaN values raise.
    """
    xv, yv, _ = _align(x, y, "x", "y")
    counts = _pair_counts(xv, yv)  # symmetric in the roles of x and y
    tx, ty, txy, dis = counts
    return float(
        (_weighted_tau_one(xv, yv, counts) + _weighted_tau_one(yv, xv, (ty, tx, txy, dis))) / 2
    )


# --------------------------------------------------------------------------------------------
# classical correlations (SciPy)


def kendall_tau(x, y) -> float:
    """Kendall's τ-b, ``scipy.stats.kendalltau(x, y).statistic``.

    Args:
      x: a sequence, or a dict ``{model: value}``.
      y: a sequence aligned with ``x`` by position, or a dict aligned with it by key.

    Returns:
      τ-b in [−1, 1] as a float; NaN for a constant input.

    Raises:
      ValueError: naming ``x`` or ``y``: non-numeric, not 1-D, NaN or infinite values; a dict
        with a sequence; dicts with different keys or sequences of different lengths; fewer than
        two models.
    """
    xv, yv, _ = _align(x, y, "x", "y")
    import scipy.stats  # imported on use: scipy.stats costs ~1 s at start-up

    return float(scipy.stats.kendalltau(xv, yv).statistic)


def pearson(x, y) -> float:
    """Pearson's r, ``scipy.stats.pearsonr(x, y).statistic``.

    Args:
      x: a sequence, or a dict ``{model: value}``.
      y: a sequence aligned with ``x`` by position, or a dict aligned with it by key.

    Returns:
      r in [−1, 1] as a float; NaN for a constant input.

    Raises:
      ValueError: naming ``x`` or ``y``: non-numeric, not 1-D, NaN or infinite values; a dict
        with a sequence; dicts with different keys or sequences of different lengths; fewer than
        two models.
    """
    xv, yv, _ = _align(x, y, "x", "y")
    import scipy.stats  # imported on use: scipy.stats costs ~1 s at start-up

    return float(scipy.stats.pearsonr(xv.astype(np.float64), yv.astype(np.float64)).statistic)


def spearman(x, y) -> float:
    """Spearman's ρ, ``scipy.stats.spearmanr(x, y).statistic``.

    Args:
      x: a sequence, or a dict ``{model: value}``.
      y: a sequence aligned with ``x`` by position, or a dict aligned with it by key.

    Returns:
      ρ in [−1, 1] as a float; NaN for a constant input.

    Raises:
      ValueError: naming ``x`` or ``y``: non-numeric, not 1-D, NaN or infinite values; a dict
        with a sequence; dicts with different keys or sequences of different lengths; fewer than
        two models.
    """
    xv, yv, _ = _align(x, y, "x", "y")
    import scipy.stats  # imported on use: scipy.stats costs ~1 s at start-up

    return float(scipy.stats.spearmanr(xv, yv).statistic)


# --------------------------------------------------------------------------------------------
# top-k selection quality (PED's rank_correlation.py)


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: must be a positive integer, got {k!r}")
    return int(k)


def _descending(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Indices by decreasing value, ties by increasing ``pos`` (Python's stable
    ``sorted(..., reverse=True)`` over the original order)."""
    _, level = np.unique(values, return_inverse=True)  # exact order codes, ties share one
    return np.lexsort((pos, -level.reshape(-1)))


def top_k(scores, truth, k: int) -> float:
    """1.0 if the model with the highest score is among the ``k`` best by ground truth, else 0.0.

    PED's ``recall_k``. Ties are broken by order (position, or each dict's own insertion order),
    like the reference's stable ``sorted(..., reverse=True)``. ``k`` larger than the zoo means
    "all models" (always 1.0).

    Args:
      scores: the metric's scores, a sequence or a dict ``{model: score}``.
      truth: the ground truth, aligned with ``scores`` by position or by key.
      k: how many of the best models by ground truth count as a hit (a positive integer).

    Returns:
      1.0 or 0.0.

    Raises:
      ValueError: naming the argument: ``k`` not a positive integer; ``scores`` or ``truth``
        non-numeric, not 1-D, not finite, not aligned (a dict with a sequence, different keys or
        lengths); fewer than two models.
    """
    k = _check_k(k)
    s, t, t_pos = _align(scores, truth, "scores", "truth")
    best_scored = _descending(s, np.arange(s.shape[0]))[0]
    top_truth = _descending(t, t_pos)[:k]
    return 1.0 if best_scored in top_truth else 0.0


def rel_k(scores, truth, k: int) -> float:
    """Best ground truth among the ``k`` top-scored models divided by the overall best ground truth.

    PED's ``rel_k`` (1.0 = the best model is in the metric's top k). Ties in the scores are broken
    by order, like the reference. It is meant for positive accuracies.

    Args:
      scores: the metric's scores, a sequence or a dict ``{model: score}``.
      truth: the ground truth (positive), aligned with ``scores`` by position or by key.
      k: how many top-scored models to take the best ground truth among (a positive integer).

    Returns:
      The ratio as a float (1.0 = the best model is among the top ``k``).

    Raises:
      ValueError: naming the argument: ``k`` not a positive integer; ``scores`` or ``truth``
        non-numeric, not 1-D, not finite, not aligned (a dict with a sequence, different keys or
        lengths); fewer than two models.
      ValueError: (``truth``) the best ground truth is 0, so the ratio is undefined.
    """
    k = _check_k(k)
    s, t, _ = _align(scores, truth, "scores", "truth")
    best = float(np.max(t))
    if best == 0.0:
        raise ValueError("truth: the best ground-truth value is 0, so rel_k (a ratio to it) is undefined")
    top_scored = _descending(s, np.arange(s.shape[0]))[:k]
    return float(np.max(t[top_scored])) / best


# --------------------------------------------------------------------------------------------
# a differentiable surrogate of weighted tau (meta-learning, pedjax.meta)


def soft_weighted_tau(scores, truth, temperature=0.01):
    """Differentiable surrogate of :func:`weighted_tau` (a JAX scalar; ``jax.grad``-able in ``scores``).

    SciPy's ``weightedtau(scores, truth)`` (hyperbolic weigher, additive, ``rank=True``) with every
    comparison of two *scores* made soft; ``truth`` is constant data and stays exact:

    * ``sign(s_i − s_j)`` → ``tanh((s_i − s_j) / (2·temperature))`` (= 2·sigmoid(Δ/T) − 1);
    * the rank of element i by decreasing score (rank 0 = largest, SciPy's convention)
      → ``Σ_{j≠i} sigmoid((s_j − s_i) / T)``, its weight ``w_i = 1/(1 + rank_i)``;
    * the rank by decreasing truth is exact, ties in truth broken by decreasing score (SciPy's
      lexicographic (truth, score) order) with the same sigmoid;
    * a pair weighs ``w_i + w_j``; pairs tied in truth count in neither the numerator nor the
      truth normaliser, as in SciPy; the two passes (weights from the score ranking and from the
      truth ranking) are averaged.

    So ``τ_soft = ½ Σ_pass Σ_{i<j}(w_i+w_j)·t_ij·sign(g_i−g_j) / sqrt(W·(W − V))`` with W the
    weight of all pairs and V that of truth-tied pairs. As ``temperature → 0`` it tends to
    ``weighted_tau(scores, truth)`` for scores without ties (tied scores get soft comparisons
    of 0 and rank halves, SciPy removes them from the normaliser instead). ``temperature`` is in
    the units of ``scores``: standardise the scores first for a scale-free temperature
    (:mod:`pedjax.meta` does). O(n²) memory; meant for zoos of up to a few thousand models.

    Args:
      scores: [n] array (JAX or NumPy; the differentiable argument).
      truth: [n] ground truth (constant).
      temperature: > 0, in the units of ``scores`` (not checked).

    Returns:
      A 0-d JAX array in [−1, 1].

    Raises:
      ValueError: ``scores`` and ``truth`` are not two 1-D arrays of the same length ≥ 2.
    """
    import jax
    import jax.numpy as jnp

    s = jnp.asarray(scores)
    if not jnp.issubdtype(s.dtype, jnp.floating):
        s = s.astype(jnp.result_type(float))
    g = jnp.asarray(truth, s.dtype)
    if s.ndim != 1 or g.shape != s.shape or s.shape[0] < 2:
        raise ValueError(f"scores/truth: expected two 1-D arrays of the same length ≥ 2, got {s.shape} and {g.shape}")
    n = s.shape[0]
    off = 1.0 - jnp.eye(n, dtype=s.dtype)
    ds = (s[:, None] - s[None, :]) / temperature  # ds[i, j] = (s_i − s_j)/T
    sx = jnp.tanh(0.5 * ds)  # soft sign(s_i − s_j)
    sy = jnp.sign(g[:, None] - g[None, :])  # exact sign(t_i − t_j)
    tied_y = (sy == 0) * off
    # rank = number of elements ahead in decreasing order; sigmoid(s_j − s_i) = "j ahead of i"
    ahead_s = jax.nn.sigmoid(-ds) * off  # [i, j]: s_j > s_i
    rank_s = jnp.sum(ahead_s, axis=1)
    rank_t = jnp.sum((sy < 0) * off + tied_y * ahead_s, axis=1)
    conc = sx * sy * off  # [i, j], symmetric, 0 on the diagonal and on truth ties

    def one(rank):
        w = 1.0 / (1.0 + rank)
        pw = w[:, None] + w[None, :]  # additive pair weights
        tot = 0.5 * jnp.sum(pw * off)
        v = 0.5 * jnp.sum(pw * tied_y)
        num = 0.5 * jnp.sum(pw * conc)
        return num / jnp.sqrt(tot) / jnp.sqrt(tot - v)

    return 0.5 * (one(rank_s) + one(rank_t))
