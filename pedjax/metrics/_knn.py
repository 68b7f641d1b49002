"""kNN accuracy: the cross-validated k-nearest-neighbour accuracy of the target features, the
empirical baseline transferability benchmarks report next to the metrics (Sorkhei et al., "k-NN
as a Simple and Effective Estimator of Transferability", TMLR 2025; the kNN monitor of
self-supervised learning).

Definition (every choice fixed, so a score is reproducible bit for bit):

* **Folds** (:func:`stratified_folds`, shared with :mod:`pedjax.metrics._linear_probe`): K
  stratified folds with scikit-learn's ``StratifiedKFold(shuffle=True)`` allocation, drawn in an
  order that does not depend on the order of the samples or the names of the labels:

  1. the samples are put in the canonical order of :func:`canonical_order` (sorted by the
     *signed* row sum Σ_j s_j·x_ij with fixed pseudo-random signs s_j = ±1 — bit 7 of the
     ``lowbias32`` key of column j for the seed 0x5EED, as :func:`slot_keys` — then the row sum
     of squares, then the first feature; exact sums in float32 — see "float32" below);
  2. classes are ordered by their first appearance in that order (scikit-learn orders them by
     first appearance in the data order); class c then owns the slots
     ``start_c … start_c + n_c − 1`` of the list of samples grouped by class;
  3. the sample in grouped slot q (class order, then canonical order) gets the pseudo-random key
     h(q) = mix(mix(seed) ⊕ q), mix Wellons' ``lowbias32`` hash (:func:`slot_keys`; distinct keys);
  4. the samples are sorted by (class, key); the fold of the sample in slot p is ``p mod K``.

  So class c's folds are the multiset {(start_c + j) mod K : j < n_c} — exactly scikit-learn's
  round-robin allocation over the class-sorted labels, which keeps the fold sizes within one of
  N/K — assigned to the members uniformly at random, as ``shuffle=True`` does. A class with
  fewer members than folds (a singleton class, say) is in fewer than K folds, as in
  scikit-learn (which warns); whenever its members are all held out, they have no training
  neighbour of their own class and count as errors. Keying the random draw to the within-class
  slot rather than to the canonical rank keeps the folds stable: two samples of different classes
  that swap places in the canonical order (rounding of the row sums, e.g. float32 against float64)
  change no fold. Requires 2 ≤ K ≤ N (then every fold and every training set is non-empty).
  ``fold_ids=`` replaces the draw by an explicit assignment (e.g. scikit-learn's own folds).
  The folds come from each model's own features, so two models of a zoo are cross-validated on
  different (equally stratified) splits; to hold the split fixed across a zoo, pass the same
  ``fold_ids`` to every model (the per-model public function; ``score_zoo`` options must be
  hashable).
* **With PED** (``knn+ped``): PED moves every sample by its own class's ball, the held-out
  folds included, so the neighbours are then found among features that already carry every
  sample's label; the accuracy is a score of the moved features, not a held-out estimate
  (as :mod:`pedjax.metrics._linear_probe`).
* **Neighbours**: for every sample, the k nearest samples of the *other* folds by Euclidean
  distance, ties in distance broken by the canonical order (so by the features, never by the
  sample positions). Distances are ranked by ``‖b‖² − 2 a·b`` on features centred by their mean
  (the ``‖a‖²`` term is constant per query): centring removes the common offset that makes the
  expansion cancel catastrophically in float32; the products run at the highest matmul precision
  on accelerators and through the host BLAS for large float64 products on the CPU. Rows are
  processed in blocks, so memory is O(block·N), not O(N²). If a training set has fewer than k
  samples, all of them vote.
* **Vote**: uniform majority vote. Ties between classes (possible for even k or C > 2):
  ``ties="nearest"`` (default) picks, among the tied classes, the one whose member comes first in
  the neighbour list (the nearest); ``ties="sklearn"`` picks the smallest label, as scikit-learn's
  ``KNeighborsClassifier`` does (``argmax`` over sorted classes).
* **Score**: the mean over folds of the held-out accuracy in each fold (what
  ``cross_val_score(KNeighborsClassifier(k), X, y, cv=folds).mean()`` reports), in [0, 1],
  higher is better; computed as one rounding of the exact fraction (:func:`fold_accuracy`), so
  that equal accuracies are equal floats.

**float32** (issue 21). Two choices keep float32 scores equal to float64 ones up to the
rounding of the distances, without changing what float64 computes:

* *The canonical order.* A plain row sum as first key is ill-conditioned when the rows' sums are
  (nearly) constant: LayerNorm outputs without affine terms (a randomly initialised ViT) sum to
  zero up to rounding, so their order, hence the folds, would be decided by rounding. The first
  key is therefore a *signed* row sum with fixed ±1 signs per column: its spread over the samples
  is of the order of √D times the features' spread, whatever normalisation makes the plain sums
  constant. In float32 :func:`canonical_order` sorts by the *exact* signed row sums
  (:func:`exact_row_sums`: every entry cut into 12-bit chunks on one power-of-two grid, the
  chunks summed as int32 and the carries propagated, giving integer digits whose lexicographic
  order is the order of the exact sums) and the exact sums of squares (each square split exactly
  into three float32 products, :func:`_exact_squares`). A float64 sum of float32 features is
  exact (or within 2^−53 of it), so float32 features give the float64 order, ties included. After
  PED (computed in each precision) the rows are not the same numbers, but they differ by ~1e−7
  relative, far below the gaps between the signed sums of distinct samples.
* *Ties between models.* Accuracies are fractions; a float sum of per-fold means rounds the same
  fraction differently for different per-fold counts (0.711 and 0.7110000000000001), so the score
  is one division of integers (fold sizes n and n + 1: Σ_f h_f·w_f / (n(n+1)K')), and equal
  fractions are equal floats in both precisions.

The measurements behind both are in docs/precision.md ("kNN accuracy and linear probe").

Where pedjax differs from the scikit-learn pipeline, on purpose:

* ``ties="nearest"`` is the default because scikit-learn's smallest-label rule makes the score
  depend on the names of the labels (renaming {0, 1} to {1, 0} can change a tied prediction);
  every pedjax metric depends only on the partition the labels define. With odd k and two
  classes there are no ties and both rules agree.
* The folds are drawn in the canonical order, not the data order (the score does not change when
  the samples are permuted); scikit-learn's ``StratifiedKFold`` shuffles with NumPy's generator,
  so its folds for the same seed differ from these (pass ``fold_ids=`` to use them).
* Degenerate features (constant up to rounding) score ``-inf`` like every feature metric
  (:mod:`pedjax.metrics._registry`), not the chance accuracy their ties would produce.

Defaults: k = 5 (scikit-learn's ``n_neighbors`` default; the benchmark papers we could read do
not fix one value), K = 5 folds, seed 0.

Cost: one N × N × D product in row blocks and k passes of a masked minimum over each block
(timings: docs/precision.md, "kNN accuracy and linear probe").
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._linalg import host_kernels_enabled
from .._validate import check_choice, encode_labels
from ._nleep import _matmul as _host_matmul
from ._order import _exact_squares, _signs, canonical_order, exact_row_sums, slot_keys  # noqa: F401  (shared; re-exported)
from ._registry import evaluate, register

__all__ = ["knn", "knn_core", "stratified_folds", "canonical_folds", "canonical_order", "exact_row_sums", "slot_keys",
           "knn_predictions", "fold_accuracy"]

TIES = ("nearest", "sklearn")
#: elements of one [block, N] distance block (float64: 32 MiB)
_BLOCK_ELEMS = 1 << 22

_CITATION = ("Sorkhei, Matsoukas, Haslum, Konuk & Smith, TMLR 2025, \"k-NN as a Simple and Effective Estimator "
             "of Transferability\"; scikit-learn KNeighborsClassifier + StratifiedKFold(shuffle=True) allocation "
             "(folds drawn in a canonical sample order; label-free tie rule by default)")


def _float(X):
    return jnp.asarray(X, dtype=jnp.result_type(float))


def dot(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a @ b`` at full precision: the host BLAS for large float64 products on the CPU backend
    (``pedjax.metrics._nleep._matmul``), the highest XLA precision elsewhere (no TF32 /
    bfloat16 passes on accelerators).

    Args:
      a: left factor [M, K].
      b: right factor [K, P], same dtype as ``a``.

    Returns:
      The product [M, P] (a ``jax.Array`` of the inputs' dtype).
    """
    if a.dtype == jnp.float64 and host_kernels_enabled():
        return _host_matmul(a, b)
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def canonical_folds(X: jax.Array, y: jax.Array, num_classes: int, folds: int, seed=0):
    """The canonical sample order and the fold of the sample at each canonical position (the
    seeded stratified draw of the module docstring). Pure JAX; ``seed`` may be traced.

    Args:
      X: features [N, D] (floating point); they fix the canonical order.
      y: coded labels [N] (integers 0..num_classes−1).
      num_classes: number of classes C (static).
      folds: number of folds K, 2 ≤ K ≤ N (static).
      seed: integer seed of the draw (default 0).

    Returns:
      ``(order, fold)``, both int32 [N]: ``order[p]`` is the sample at canonical position p and
      ``fold[p]`` its fold in 0..K−1.
    """
    N = y.shape[0]
    pos = jnp.arange(N, dtype=jnp.int32)
    order = canonical_order(X)
    yo = y[order].astype(jnp.int32)
    first = jax.ops.segment_min(pos, yo, num_classes)  # absent classes: the int32 maximum
    cls_rank = jnp.argsort(jnp.argsort(first)).astype(jnp.int32)  # class order of first appearance
    ck = cls_rank[yo]
    _, grouped = jax.lax.sort((ck, pos), num_keys=2)  # grouped[q] = canonical position in slot q
    slot = jnp.zeros((N,), jnp.int32).at[grouped].set(pos)
    key = slot_keys(seed, N)[slot]
    _, _, shuffled = jax.lax.sort((ck, key, pos), num_keys=2)
    new_slot = jnp.zeros((N,), jnp.int32).at[shuffled].set(pos)
    return order, new_slot % folds


def stratified_folds(X: jax.Array, y: jax.Array, num_classes: int, folds: int = 5, seed=0) -> jax.Array:
    """The stratified, seeded, order-free fold of every sample (the draw of the module docstring,
    shared by :func:`knn` and :func:`pedjax.metrics.linear_probe`). Pure JAX, no validation.

    Args:
      X: features [N, D]; they fix the canonical order, so the folds do not depend on the order
        of the samples.
      y: coded labels [N] (integers 0..num_classes−1).
      num_classes: number of classes C.
      folds: number of folds K (default 5), 2 ≤ K ≤ N.
      seed: integer seed of the draw (default 0); may be traced.

    Returns:
      int32 ``jax.Array`` [N]: the fold (0..folds−1) of every sample, in the given sample order.
    """
    order, fold = canonical_folds(_float(X), y, num_classes, folds, seed)
    return jnp.zeros_like(fold).at[order].set(fold)


def _k_smallest(d: jax.Array, iota: jax.Array, k: int) -> jax.Array:
    """Positions [B, k] of the k smallest entries of each row of ``d`` [B, N] in ascending
    lexicographic (value, position) order: k passes, each the minimum over the entries after the
    previous pick (faster than XLA:CPU's ``top_k`` and sort here: docs/precision.md). Entries
    equal to +inf are picked last, by position."""
    B, N = d.shape

    def body(j, state):
        v, i, out = state
        after = (d > v[:, None]) | ((d == v[:, None]) & (iota > i[:, None]))
        dm = jnp.where(after, d, jnp.inf)
        v = jnp.min(dm, axis=1)
        i = jnp.min(jnp.where(after & (dm == v[:, None]), iota, N), axis=1).astype(jnp.int32)
        return v, i, out.at[:, j].set(jnp.minimum(i, N - 1))

    state = (jnp.full((B,), -jnp.inf, d.dtype), jnp.full((B,), -1, jnp.int32), jnp.zeros((B, k), jnp.int32))
    return jax.lax.fori_loop(0, k, body, state)[2]


def _block_size(N: int) -> int:
    return int(max(1, min(N, _BLOCK_ELEMS // max(N, 1))))


def knn_predictions(X: jax.Array, y: jax.Array, fold: jax.Array, num_classes: int, k: int = 5,
                    ties: str = "nearest") -> jax.Array:
    """Predicted class of every sample from its k nearest neighbours in the other folds.

    The inputs are in the order whose positions break distance ties (the canonical order in
    :func:`knn_core`). Pure JAX.

    Args:
      X: features [N, D].
      y: coded labels [N] (integers 0..num_classes−1).
      fold: fold of every sample [N]; a sample's neighbours come from the other folds only.
      num_classes: number of classes C.
      k: neighbours per vote (default 5; all training samples vote when fewer).
      ties: ``"nearest"`` (the tied class with the nearest neighbour) or ``"sklearn"`` (the
        smallest label).

    Returns:
      int32 ``jax.Array`` [N]: the predicted class of every sample.
    """
    X = _float(X)
    N = X.shape[0]
    Xc = X - jnp.mean(X, axis=0)
    Xc = Xc - jnp.mean(Xc, axis=0)
    sq = jnp.sum(Xc * Xc, axis=1)
    kk = min(int(k), N)
    B = _block_size(N)
    nb = -(-N // B)
    pad = nb * B - N
    Xp = jnp.pad(Xc, ((0, pad), (0, 0)))
    fp = jnp.pad(fold, (0, pad), constant_values=-1)
    rank = jnp.arange(kk)
    iota = jnp.arange(N, dtype=jnp.int32)[None, :]

    def block(args):
        xb, fb = args  # [B, D], [B]
        d = sq[None, :] - 2.0 * dot(xb, Xc.T)  # ‖b‖² − 2a·b: the ranking of ‖a − b‖²
        d = jnp.where(fb[:, None] == fold[None, :], jnp.inf, d)  # own fold (self included) excluded
        idx = _k_smallest(d, iota, kk)  # [B, k], ascending (distance, position)
        valid = jnp.take_along_axis(d, idx, axis=1) < jnp.inf
        lab = y[idx]
        onehot = jax.nn.one_hot(lab, num_classes, dtype=jnp.int32) * valid[..., None]  # [B, k, C]
        votes = jnp.sum(onehot, axis=1)
        if ties == "sklearn":
            return jnp.argmax(votes, axis=1)  # first maximum: the smallest label
        firstpos = jnp.min(jnp.where(onehot > 0, rank[None, :, None], kk), axis=1)  # [B, C]
        return jnp.argmax(votes * (kk + 1) + (kk - firstpos), axis=1)

    pred = jax.lax.map(block, (Xp.reshape(nb, B, -1), fp.reshape(nb, B)))
    return pred.reshape(-1)[:N].astype(jnp.int32)


def fold_mean(values: jax.Array, fold: jax.Array, folds: int) -> jax.Array:
    """Mean over the non-empty folds of the per-fold mean of ``values``.

    Args:
      values: per-sample values [N] (floating point).
      fold: fold of every sample [N] (integers 0..folds−1).
      folds: number of folds K.

    Returns:
      Scalar ``jax.Array`` of the dtype of ``values``.
    """
    size = jax.ops.segment_sum(jnp.ones_like(values), fold, folds)
    tot = jax.ops.segment_sum(values, fold, folds)
    per = tot / jnp.maximum(size, 1.0)
    return jnp.sum(jnp.where(size > 0, per, 0.0)) / jnp.sum(size > 0)


#: above this many samples the fold accuracy's integer numerator/denominator could pass int32
_EXACT_ACCURACY_MAX_N = 65000


def fold_accuracy(correct: jax.Array, fold: jax.Array, folds: int, dtype) -> jax.Array:
    """Mean over the non-empty folds of the per-fold accuracy of ``correct`` (bool [N]), as one
    rounding of an exact fraction: with fold sizes n and n + 1 (always, for the stratified draw),
    (1/K')·Σ_f h_f/n_f = Σ_f h_f·w_f / (n(n+1)K') with w_f = n + 1 − [n_f = n + 1] in integers, then
    one division. Equal accuracies then give equal floats in either precision (a sum of per-fold
    means rounds differently for different per-fold counts of the same mean, and float32 and float64
    ordered such ties differently). Other fold sizes (``fold_ids``) or N > 65000:
    :func:`fold_mean`.

    Args:
      correct: whether each held-out prediction is right, bool [N].
      fold: fold of every sample [N] (integers 0..folds−1).
      folds: number of folds K.
      dtype: floating dtype of the result.

    Returns:
      Scalar ``jax.Array`` of ``dtype``: the accuracy in [0, 1].
    """
    N = correct.shape[0]
    fallback = fold_mean(correct.astype(dtype), fold, folds)
    if N > _EXACT_ACCURACY_MAX_N:
        return fallback
    size = jax.ops.segment_sum(jnp.ones((N,), jnp.int32), fold, folds)
    hits = jax.ops.segment_sum(correct.astype(jnp.int32), fold, folds)
    nonempty = size > 0
    n = jnp.min(jnp.where(nonempty, size, N))
    regular = jnp.all(~nonempty | (size == n) | (size == n + 1))
    num = jnp.sum(hits * jnp.where(size == n, n + 1, n))
    den = n * (n + 1) * jnp.sum(nonempty.astype(jnp.int32))  # ≤ N(N + 2)/2 < 2^31
    return jnp.where(regular, num.astype(dtype) / den.astype(dtype), fallback)


def knn_core(X: jax.Array, y: jax.Array, num_classes: int, k: int = 5, folds: int = 5, seed=0,
             ties: str = "nearest", fold_ids=None) -> jax.Array:
    """Cross-validated kNN accuracy of features ``X`` for coded labels ``y`` (pure JAX, no
    validation; the definition is in the module docstring of :func:`knn`).

    Static: ``k``, ``folds``, ``ties``. ``seed`` may be traced.

    Args:
      X: features [N, D].
      y: coded labels [N] (integers 0..num_classes−1).
      num_classes: number of classes C.
      k: neighbours per vote (default 5).
      folds: number of folds K (default 5), 2 ≤ K ≤ N.
      seed: integer seed of the fold draw (default 0).
      ties: ``"nearest"`` (default) or ``"sklearn"``, as in :func:`knn`.
      fold_ids: optional int array [N] with values 0..folds−1, in the given sample order; replaces
        the seeded stratified draw.

    Returns:
      Scalar ``jax.Array`` of the features' dtype: the mean held-out accuracy in [0, 1].
    """
    X = _float(X)
    if fold_ids is None:
        order, fold = canonical_folds(X, y, num_classes, folds, seed)
    else:
        order = canonical_order(X)
        fold = jnp.asarray(fold_ids, jnp.int32)[order]
    yo = y[order].astype(jnp.int32)
    pred = knn_predictions(X[order], yo, fold, num_classes, k, ties)
    return fold_accuracy(pred == yo, fold, folds, X.dtype)


def check_folds(folds, seed, fold_ids, n: int):
    """Validated ``(folds, seed, fold_ids)`` for the cross-validated metrics. ``fold_ids`` (any
    integer labels, one per sample) are coded 0..K−1 and set ``folds`` to their count.

    Args:
      folds: requested number of folds (an integer, 2 ≤ folds ≤ n); ignored with ``fold_ids``.
      seed: integer seed of the fold draw; ignored (returned as 0) with ``fold_ids``.
      fold_ids: ``None`` or one integer (or bool) fold label per sample, shape (n,).
      n: number of samples N.

    Returns:
      ``(folds, seed, fold_ids)``: Python ints, and ``None`` or the coded fold labels (int32
      NumPy array [n], values 0..folds−1).

    Raises:
      ValueError: ``fold_ids`` is not one-dimensional of length n, not integer-valued, or has
        fewer than 2 distinct values; ``folds`` is not an integer in [2, n]; ``seed`` is not an
        integer.
    """
    if fold_ids is not None:
        f = np.asarray(fold_ids)
        if f.ndim != 1 or f.shape[0] != n:
            raise ValueError(f"fold_ids: expected one fold label per sample, shape ({n},), got {f.shape}")
        if not (np.issubdtype(f.dtype, np.integer) or f.dtype == bool):
            raise ValueError(f"fold_ids: fold labels must be integers, got dtype {f.dtype}")
        uniq, codes = np.unique(f, return_inverse=True)
        if uniq.size < 2:
            raise ValueError("fold_ids: need at least 2 distinct folds (every sample is held out once)")
        return int(uniq.size), 0, codes.reshape(-1).astype(np.int32)
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or not 2 <= folds <= n:
        raise ValueError(f"folds: expected an integer between 2 and the number of samples ({n}), got {folds!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed: expected an integer, got {seed!r}")
    return int(folds), int(seed), None


@register("knn", knn_core, static=("k", "folds", "ties"), citation=_CITATION)
def knn(X, y, k: int = 5, folds: int = 5, seed: int = 0, ties: str = "nearest", fold_ids=None) -> float:
    """Cross-validated k-nearest-neighbour accuracy of features ``X`` for labels ``y`` (in [0, 1],
    higher is better).

    Definition: K stratified folds drawn in a canonical, label-name-free sample order (so the
    score does not change when the samples are permuted); every sample is predicted by the
    uniform majority vote of its k nearest samples (Euclidean distance) in the other folds; the
    score is the mean over folds of the held-out accuracy, as
    ``cross_val_score(KNeighborsClassifier(k), X, y, cv=folds).mean()``. The exact rules (fold
    draw, distance ties, vote ties) are in the docstring of the module ``pedjax.metrics._knn``.
    Like every public metric, it also takes the keyword ``precision=`` (``"auto"``,
    ``"float64"`` or ``"float32"``; docs/precision.md).

    Args:
      X: features [N, D] (any real array; the features of one model on the target set).
      y: labels [N], any integer values (coded 0..C−1 in sorted order).
      k: neighbours per vote (Euclidean distance; default 5, scikit-learn's default).
      folds: stratified folds K (2 ≤ K ≤ N); a class with fewer than K members is held out in
        fewer folds, as with scikit-learn's ``StratifiedKFold``.
      seed: seeds the fold draw; the same seed gives the same folds (and score) bit for bit, in
        any sample order.
      ties: ``"nearest"`` (the tied class with the nearest neighbour; default, independent of the
        label names) or ``"sklearn"`` (the smallest label, as ``KNeighborsClassifier``).
      fold_ids: optional explicit fold of every sample [N] (any integers); replaces ``folds``
        and ``seed``. Pass the same ``fold_ids`` to every model to hold the split fixed across a
        zoo.

    Returns:
      The score as a Python ``float``; ``-inf`` for degenerate (constant) features.

    Raises:
      ValueError: ``k`` is not a positive integer; ``ties`` is not one of the two choices;
        ``folds``, ``seed`` or ``fold_ids`` are invalid (:func:`check_folds`); ``X`` or ``y``
        are malformed (not [N, D] and [N], non-finite features, fewer than 2 classes).
    """
    codes, _ = encode_labels(y, "y")
    n = codes.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: expected a positive integer, got {k!r}")
    check_choice(ties, "ties", TIES)
    folds, seed, fold_ids = check_folds(folds, seed, fold_ids, n)
    return evaluate(knn_core, X, y, static=("k", "folds", "ties"), k=int(k), folds=folds, seed=seed, ties=ties,
                    fold_ids=fold_ids)
