"""NLEEP (Li et al., CVPR 2021, "Ranking neural checkpoints"): LEEP with a Gaussian mixture on
the target features standing in for the source classifier.

Size: one file for the whole pipeline (PCA width, k-means++ seeding, the EM with scikit-learn's
exact semantics, the host and the traced paths): splitting it would scatter one algorithm whose
parity with scikit-learn is tested as a unit.

Pipeline, as in the PED/SFDA repositories' ``NLEEP``:

1. **PCA** keeping 80 % of the variance, with scikit-learn's ``PCA(n_components=0.8)`` rule (the
   smallest k whose cumulative explained-variance ratio is strictly above 0.8; exact eigen-PCA,
   :mod:`pedjax.metrics._pca`);
2. **GMM**: ``K = component_ratio · C`` full-covariance components fitted by EM, with
   scikit-learn's ``GaussianMixture`` defaults — ``reg_covar = 1e-6``, ``tol = 1e-3`` on the
   change of the mean log-likelihood, ``max_iter = 100``, one initialisation;
3. **NLEEP** from the posterior p(z|x): ``p(y, z) = Σ_{i: y_i = y} p(z|x_i) / N``,
   ``p(y|z) = p(y, z) / p(z)``, ``p(y|x) = Σ_z p(z|x) p(y|z)``; the score is the mean of
   ``p(y_i|x_i)`` (the PED/SFDA repositories' form, default) or of ``log p(y_i|x_i)``
   (``log=True``: the NLEEP paper's and google-research's definition).

Where pedjax differs from the published code, on purpose:

* **Seeded, order-free initialisation.** The published code initialises like scikit-learn's
  default ``init_params="kmeans"`` (k-means++ seeding, Lloyd iterations, one-hot labels as the
  starting responsibilities) but leaves ``random_state`` unset: a different score on every run.
  pedjax does the same with seeded draws (``jax.random.key(seed)``; scikit-learn's greedy
  k-means++: ``2 + ⌊ln K⌋`` candidates per centre, the one that lowers the potential most wins;
  Lloyd with scikit-learn's stopping rules) over a canonical sample order
  (:func:`canonical_order`, shared with the kNN / linear-probe folds,
  :mod:`pedjax.metrics._order`): the same seed gives the same score bit for bit, and permuting
  the samples does not change it. The order sorts by the *signed* row sum Σ_j s_j·x_ij (fixed
  pseudo-random s_j = ±1), then the row sum of squares, then the first feature: a plain row sum
  is rounding noise for LayerNorm features (rows of a random ViT sum to zero up to rounding),
  while the signed sum spreads the samples by ~√D times the features' spread (history:
  docs/precision.md, "NLEEP").
* **Initial means** (``means_init``, [K, k] in scikit-learn's PCA coordinates) reproduce
  ``GaussianMixture(means_init=M, init_params="k-means++")`` — with given means, scikit-learn's
  start state no longer depends on its random draws (weights and covariances come from one-hot
  responsibilities). Parity is tested to 1e-6 relative in float64.
* **Float64.** Features are promoted to the default float type (float64 with ``jax_enable_x64``,
  pedjax's CPU default). scikit-learn keeps float32 inputs in float32, which is why the
  published NLEEP fails with "ill-defined empirical covariance" on ordinary float32 ReLU
  features.
* **Covariance floor, never a failure.** A component whose Cholesky factorisation fails (only
  possible from rounding) is retried with ``f = max(reg_covar, √eps · mean(z²))`` added to its
  diagonal, and if that fails too its covariance becomes its diagonal clipped below at ``f``.
  In float64 at ordinary scales this path is not taken; it keeps extreme data finite.
* **Degenerate cases.** ``K`` is capped at N (k-means++ needs one sample per component; the
  published code raises). A mixture component that receives no responsibility has p(z) = 0 and
  contributes nothing (the published code divides 0/0). With ``log=True``, p(y|x) is floored at
  the smallest normal float before the log.

Float32 (``with pedjax.float32():`` or ``precision="float32"``; accelerators). Float64 keeps
the draws, order, formulas and regulariser described above. What differs below float64, and why
(the measurements behind each point: docs/precision.md, "NLEEP"):

* **The same random numbers in both precisions.** JAX's float32 and float64 uniforms from one key
  are different numbers (and ``randint``'s integer width follows x64), so float32 would start
  from another k-means++ initialisation and rank a zoo only as two seeds do. The public
  :func:`nleep` therefore takes the k-means++ numbers (:func:`kmeanspp_draws`) and
  the canonical sample order from the features *as given*, both computed in float64 on the CPU
  in either precision (:func:`_host_order_and_draws`; O(N·D) work): float32 ``.npy`` features
  get the same draws in both. :func:`nleep_core` (traced seed, any device) draws in its own
  dtype: in float32 it starts from a different, equally valid initialisation.
* **Distances by differences; draws in double words.** k-means++ forms ``‖x − c‖²`` below
  float64 (the expanded ``‖x‖² − 2x·c + ‖c‖²`` loses ``eps·‖x‖²``, all of a short distance far
  from the origin); a candidate is drawn against the running sum's own last value, never a
  separately summed total (which could let a draw run past the end onto a zero-weight sample).
  Below float64 the running sums, the threshold ``u·total`` and the candidates' potentials are
  double words (hi + lo float32 pairs: an associative scan of Knuth's TwoSum, products from exact
  12-bit halves, :func:`_dd_cumsum`, :func:`_dd_scale`) and the public :func:`nleep` passes the
  float64 uniforms as hi + lo pairs. A plain float32 running sum resolves a draw only to an ulp
  of the total (6e-8 relative, ~N·6e-8 chance per draw to land on the other side of a sample's
  boundary, after which Lloyd and the EM start elsewhere). With double words a draw differs only where the float32 *distances* (PCA scores rounded to
  float32, ~1e-7 relative) move a boundary across it. Lloyd keeps the expanded form (one matrix
  product per iteration; differences would need an [N, K, k] temporary) on the PCA scores, which
  are centred: its error ``eps·(‖x‖² + ‖c‖²)`` only moves a sample that is that close to a tie
  between two centres.
  The E- and M-steps subtract the component mean first. The second-moment ("packed") steps are
  float64 only: their rounding bound (:func:`packed_is_accurate`) has no float32 counterpart.
* **Covariance factors by QR, the regulariser on its own rows.** A component with at most k
  samples has a singular covariance whose smallest eigenvalue *is* ``reg_covar`` (1e-6). A
  float32 Gram rounds every entry to ~``eps·λ_max``: once the data's variance exceeds ~10 such a
  component's log-determinant was rounding, the mean log-likelihood jumped between iterations and
  ``tol = 1e-3`` stopped at a random iteration. Below float64 the Cholesky factor of
  ``Σ_k + reg·I`` is the R of a Householder QR of ``[√(r_ik/n_k)·(x_i − μ_k) ; √reg·I]``
  (:func:`_cov_factor_qr`; RᵀR = Σ_k + reg·I exactly, no Gram): the regulariser sits on its own
  rows and a null direction's eigenvalue comes out as ``reg`` to about ``eps·√(tr Σ_k / reg)``
  relative, the square root of the Gram's error. That resolves scikit-learn's absolute 1e-6 at
  the scales of real features, so float32 now fits the *same* likelihood as float64:
  ``reg = max(1e-6, REL_REG·eps²·tr Cov(Z))`` with ``REL_REG = 1e4`` (:func:`effective_reg_covar`;
  one value for every component, as scikit-learn's), which is 1e-6 below ``tr Cov(Z) ≈ 7000``
  and beyond that keeps a null direction's relative error ≤ 1/√REL_REG = 1 %. Cost: a batched (N + k) × k QR per component and M-step instead of a Gram.
* **Convergence.** Below float64 the change of the mean log-likelihood is summed sample by sample,
  ``|mean(ℓ_i − ℓ_i')| < tol``, not taken as the difference of two means that each carry
  ``eps·|ℓ|`` of rounding; float64 keeps scikit-learn's expression. Likelihoods and
  responsibilities are log-sum-exp throughout.

What remains: float32 ends at float64's fit given the same order and centres; the residues are
k-means++ sampling boundaries crossed by the ~1e-7 difference between the two precisions' PED
outputs, which any seeded sampling of PED's output has and no formulation of NLEEP removes
(``tests/test_float32_nleep.py``, ``tests/test_float32_h2_nleep.py`` and
``tests/test_float32_h5_order.py`` check small versions; the shipped-zoo comparison and its
analysis: docs/precision.md, "NLEEP").

Speed (same quantities as scikit-learn, organised differently; see :func:`gmm_fit`): wherever
their rounding bound holds (:func:`packed_is_accurate`) the public :func:`nleep` runs the E- and
M-steps as one matrix product each on the second-moment table ``[x xᵀ]`` (host BLAS on CPU for
large products), the M-step skips the exact zeros of the responsibilities, and the
per-component Cholesky factors are inverted with one batched triangular solve.

Static shapes: the PCA width is a static option ``n_pca`` of the core. Columns beyond the
data-dependent k are zeroed; a zero column adds the same constant to every component's
log-density, so responsibilities — and the score — are those of the k-dimensional fit. The
public :func:`nleep` computes k exactly and, below 128 components, rounds the width up to a
multiple of 8 (fewer recompilations); :func:`nleep_core`, which :func:`pedjax.score_zoo` vmaps, needs ``n_pca`` ≥ k
for every model and returns NaN where it is too small (pick it with :func:`nleep_pca_components`).
"""
from __future__ import annotations

import contextlib
import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._linalg import gram, host_kernels_enabled
from .._validate import as_float_matrix, encode_labels
from ._order import canonical_order
from ._pca import n_components_for_ratio, n_components_for_ratio_jax, pca_spectrum, sklearn_signs_for
from ._registry import register

__all__ = ["nleep", "nleep_core", "nleep_pca_components", "gmm_fit", "GMMResult", "kmeans_plusplus", "kmeanspp_draws",
           "effective_reg_covar"]

#: scikit-learn ``GaussianMixture`` defaults
REG_COVAR = 1e-6
TOL = 1e-3
MAX_ITER = 100
#: PCA variance kept (``PCA(n_components=0.8)``)
VARIANCE = 0.8
#: elements of one [block, N, d] temporary in the E/M steps (float64: 32 MiB)
_BLOCK_ELEMS = 1 << 22
#: elements of the [N, d(d+1)/2] second-moment table (float64: 256 MiB)
_PACKED_ELEMS = 1 << 25
#: products with at least this many multiply-adds use the host BLAS on CPU (float64)
_HOST_BLAS_MIN_MACS = 5e7
#: at most this many non-zero responsibilities per sample for the sparse M-step
_SPARSE_M = 8
#: fewest components for the sparse M-step / for the second-moment steps
_SPARSE_MIN_K = 256
_PACKED_MIN_K = 128
#: largest accepted rounding bound of the second-moment steps (see packed_is_accurate)
PACKED_TOL = 1e-6
#: below float64 the covariance regulariser is at least REL_REG · eps² · (trace of the data's
#: covariance): :func:`effective_reg_covar`
REL_REG = 1e4
#: default static PCA width of the core when none is given
DEFAULT_N_PCA = 128


def _float(X):
    return jnp.asarray(X, dtype=jnp.result_type(float))


# --------------------------------------------------------------------------- k-means++ init


def kmeanspp_draws(key: jax.Array, n_samples: int, n_clusters: int, dtype=None):
    """The random numbers :func:`kmeans_plusplus` consumes: ``(first, U)`` with ``first`` the
    index of the first centre (int32 scalar, uniform over ``n_samples``) and ``U``
    [n_clusters, 2 + ⌊ln K⌋] the uniforms of the candidate draws (row c for centre c ≥ 1) in
    ``dtype`` (default: the default float type). JAX's float32 and float64 uniforms from one key
    are different numbers (and ``randint``'s default integer width follows x64 too), so the public
    :func:`nleep` draws these in float64 on the CPU in both precisions (:func:`_host_order_and_draws`)."""
    trials = 2 + int(math.log(n_clusters))
    dtype = jnp.result_type(float) if dtype is None else dtype
    k0, kloop = jax.random.split(key)
    first = jax.random.randint(k0, (), 0, n_samples)
    U = jax.vmap(lambda c: jax.random.uniform(jax.random.fold_in(kloop, c), (trials,), dtype))(jnp.arange(n_clusters))
    return first.astype(jnp.int32), U


def kmeans_plusplus(key: jax.Array, Z: jax.Array, n_clusters: int, draws=None) -> jax.Array:
    """Greedy k-means++ seeding (scikit-learn's algorithm, JAX random numbers): indices [K].

    First centre uniformly at random; then, per centre, ``2 + ⌊ln K⌋`` candidates drawn with
    probability ∝ squared distance to the nearest chosen centre, keeping the one that lowers the
    potential most. ``draws``: the random numbers ``(first, U)`` of :func:`kmeanspp_draws`
    (default: drawn here from ``key`` in ``Z``'s dtype). A candidate is the first sample whose
    running sum of distances reaches ``u`` times the *last running sum* (scikit-learn compares
    with a separately summed potential; the two differ by rounding, and in float32 a draw could
    then fall past the end and pick the last sample whatever its weight).

    Squared distances: float64 uses ``‖x‖² − 2 x·c + ‖c‖²`` (clipped at 0), as scikit-learn does;
    lower precisions subtract first (``‖x − c‖²``, see :func:`_sqdist`).

    Args:
      key: a JAX PRNG key (``jax.random.key(seed)``); used only when ``draws`` is None.
      Z: data [N, d] (floating point), in the sample order the draws refer to.
      n_clusters: number of centres K (static), 1 ≤ K ≤ N.
      draws: optional ``(first, U)`` or ``(first, U_hi, U_lo)`` (float32 uniforms as hi + lo
        pairs) from :func:`kmeanspp_draws` with ``n_samples = N`` and ``n_clusters = K``.

    Returns:
      int32 ``jax.Array`` [K]: the row indices of ``Z`` chosen as centres, in order of choice.
    """
    N = Z.shape[0]
    if draws is None:
        draws = kmeanspp_draws(key, N, n_clusters, Z.dtype)
    first, U, *U_lo = draws
    first = jnp.asarray(first, jnp.int32)
    U = jnp.asarray(U).astype(Z.dtype)
    sqdist = _sqdist(Z)
    low = _low_precision(Z.dtype)
    U_lo = jnp.asarray(U_lo[0]).astype(Z.dtype) if U_lo else jnp.zeros_like(U)

    closest = sqdist(first[None])[0]
    idx = jnp.zeros((n_clusters,), jnp.int32).at[0].set(first)

    def body(c, state):
        idx, closest = state
        if low:  # double-word running sums and threshold (:func:`_dd_cumsum`)
            hi, lo = _dd_cumsum(closest)
            th, tl = _dd_scale(U[c], U_lo[c], hi[-1], lo[-1])
            below = ((hi[None, :] - th[:, None]) + (lo[None, :] - tl[:, None])) < 0  # running sum < u·total
            cand = jnp.sum(below, axis=1)
        else:
            cs = jnp.cumsum(closest)
            cand = jnp.searchsorted(cs, U[c] * cs[-1], side="left")
        cand = jnp.minimum(cand, N - 1)
        d = jnp.minimum(closest[None, :], sqdist(cand))  # [trials, N]
        if low:
            hi, lo = jax.vmap(_dd_cumsum)(d)
            best = _dd_argmin(hi[:, -1], lo[:, -1])  # the potentials, as double words
        else:
            best = jnp.argmin(jnp.sum(d, axis=1))
        return idx.at[c].set(cand[best].astype(jnp.int32)), d[best]

    idx, _ = jax.lax.fori_loop(1, n_clusters, body, (idx, closest))
    return idx


def _two_sum(a, b):
    """Knuth's error-free transformation: ``a + b = s + e`` exactly."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _dd_add(x, y):
    """Double-word addition ``(hi, lo) + (hi, lo)`` (relative error ~ eps²)."""
    s, e = _two_sum(x[0], y[0])
    e = e + (x[1] + y[1])
    hi = s + e
    return hi, e - (hi - s)


def _dd_cumsum(v: jax.Array):
    """Running sums of ``v`` [N] as double words ``(hi, lo)`` (an associative scan of
    :func:`_dd_add`): accurate to ~eps² of the total, where a plain float32 running sum carries
    ~eps·log N (or more) of it — the resolution of a k-means++ draw's comparison."""
    return jax.lax.associative_scan(_dd_add, (v, jnp.zeros_like(v)))


def _split(a):
    """``a`` (float32) as ``hi + lo`` exactly, each with at most 12 significant bits: ``hi`` is
    ``a`` with the low 12 mantissa bits cleared (a bit mask, not Veltkamp's ``(2¹²+1)·a`` trick,
    which a compiler that contracts ``t − a`` into a fused multiply-add breaks)."""
    bits = jax.lax.bitcast_convert_type(a.astype(jnp.float32), jnp.uint32)
    hi = jax.lax.bitcast_convert_type(bits & jnp.uint32(0xFFFFF000), jnp.float32).astype(a.dtype)
    return hi, a - hi


def _two_prod(a, b):
    """``a·b`` (float32) as a double word ``(hi, lo)``, from the four partial products of the
    12-bit halves (:func:`_split`): each is exact, so only additions round (:func:`_dd_add`), and
    a compiler's contraction of a product into a fused multiply-add changes nothing (Dekker's
    ``(ah·bh − p) + …`` with the rounded product ``p`` is not safe under contraction)."""
    ah, al = _split(a)
    bh, bl = _split(b)
    z = jnp.zeros_like(ah * bh)
    x = _dd_add((ah * bh, z), (ah * bl, z))
    x = _dd_add(x, (al * bh, z))
    return _dd_add(x, (al * bl, z))


def _dd_scale(u_hi, u_lo, t_hi, t_lo):
    """``(u_hi + u_lo)·(t_hi + t_lo)`` as a double word (u [trials], t scalar; relative error
    ~ eps²)."""
    x = _two_prod(u_hi, t_hi)
    x = _dd_add(x, _two_prod(u_hi, t_lo))
    return _dd_add(x, _two_prod(u_lo, t_hi))


def _dd_argmin(hi, lo):
    """Index of the smallest double word ``hi + lo`` (first on ties): ``hi − min(hi)`` is exact
    for every ``hi`` within a factor 2 of the minimum (Sterbenz), so near-ties are decided by the
    low words."""
    return jnp.argmin((hi - jnp.min(hi)) + lo)


def _low_precision(dtype) -> bool:
    """Whether ``dtype`` is below float64 (the float32/accelerator path)."""
    return jnp.finfo(dtype).bits < 64


def _sqdist(Z: jax.Array):
    """``f(idx)`` → [len(idx), N] squared distances of every sample of ``Z`` to samples ``idx``.

    float64: scikit-learn's expanded form ``‖x‖² − 2 x·c + ‖c‖²`` clipped at 0 (one matrix
    product). Below float64 the differences are formed first: the expanded form loses
    ``eps · (‖x‖² + ‖c‖²)`` absolutely, which in float32 is the whole distance of two samples of a
    tight cluster far from the origin (the same arithmetic cost, without the BLAS product)."""
    if _low_precision(Z.dtype):
        return lambda idx: jnp.sum(jnp.square(Z[None, :, :] - Z[idx][:, None, :]), axis=-1)
    sq = jnp.sum(Z * Z, axis=1)
    return lambda idx: jnp.maximum(sq[idx][:, None] - 2.0 * (Z[idx] @ Z.T) + sq[None, :], 0.0)


# --------------------------------------------------------------------------- Gaussian mixture


class GMMResult(NamedTuple):
    """A fitted full-covariance Gaussian mixture (scikit-learn's attribute names).

    Attributes:
      weights_: mixture weights [K].
      means_: component means [K, d], in the coordinates of the data given to :func:`gmm_fit`.
      covariances_: regularised component covariances [K, d, d].
      precisions_cholesky_: [K, d, d] upper triangular P with ``P Pᵀ = Σ⁻¹``.
      lower_bound_: mean log-likelihood of the last EM iteration's E-step (0-d).
      n_iter_: number of EM iterations run (int32, 0-d).
      converged_: whether the ``tol`` test stopped the loop before ``max_iter`` (bool, 0-d).
      resp: [N, K] responsibilities p(z|x) from a final E-step under the fitted parameters.
    """

    weights_: jax.Array
    means_: jax.Array
    covariances_: jax.Array
    precisions_cholesky_: jax.Array
    lower_bound_: jax.Array
    n_iter_: jax.Array
    converged_: jax.Array
    resp: jax.Array


def _block(K: int, N: int, d: int) -> int | None:
    """Components per block so that a [block, N, d] temporary stays within budget."""
    b = max(1, _BLOCK_ELEMS // max(N * d, 1))
    return None if b >= K else b


def _per_component(f, xs, K, N, d):
    b = _block(K, N, d)
    if b is None:
        return jax.vmap(f)(*xs)
    return jax.lax.map(lambda a: f(*a), xs, batch_size=b)


def _can_pack(N: int, d: int, dtype) -> bool:
    """Whether the second-moment ("packed") E/M steps may run: float64 only (they trade a
    subtraction for speed) and only while the [N, d(d+1)/2] table of products fits the budget."""
    return jnp.dtype(dtype) == jnp.float64 and N * d * (d + 1) // 2 <= _PACKED_ELEMS


def _use_packed(N: int, d: int, K: int, dtype) -> bool:
    """``method="auto"``'s candidates: :func:`_can_pack`, and only for many components. Under
    ``auto`` both paths are compiled behind a run-time ``lax.cond`` (and under ``vmap`` both run),
    so for fewer than :data:`_PACKED_MIN_K` components ``auto`` keeps the blocked steps alone.
    The public :func:`nleep` chooses on the host instead (:func:`_host_method`) and takes the
    packed steps whenever they are accurate: with few components and narrow PCA widths they are
    several times faster per EM iteration on CPU (docs/precision.md, "NLEEP")."""
    return _can_pack(N, d, dtype) and K >= _PACKED_MIN_K


def _cholesky_floored(cov: jax.Array, floor: jax.Array) -> jax.Array:
    """Lower Cholesky factors of [K, d, d] covariances. A factorisation that fails (rounding can
    make a near-singular covariance indefinite) is retried with ``floor`` added to the diagonal;
    if that fails too, the covariance is replaced by its diagonal clipped below at ``floor``
    (a positive normal number, so the factor is always invertible)."""
    d = cov.shape[-1]
    eye = jnp.eye(d, dtype=cov.dtype)

    def chol_ok(c):
        L = jnp.linalg.cholesky(c)
        dg = jnp.diagonal(L, axis1=-2, axis2=-1)
        return L, jnp.all(jnp.isfinite(L), axis=(-2, -1)) & jnp.all(dg > 0, axis=-1)

    L, ok = chol_ok(cov)

    def floored(args):
        cov, L, ok = args
        L2, ok2 = chol_ok(cov + floor * eye)
        dg = jnp.maximum(jnp.diagonal(cov, axis1=-2, axis2=-1), floor)
        L3 = jax.vmap(jnp.diag)(jnp.sqrt(dg))
        L2 = jnp.where(ok2[:, None, None], L2, L3)
        return jnp.where(ok[:, None, None], L, L2)

    return jax.lax.cond(jnp.all(ok), lambda a: a[1], floored, (cov, L, ok))


def _factor_xla(cov, floor):
    """(L⁻¹, Σ⁻¹, −Σ log diag L) from the floored Cholesky factor L (one right-sided triangular
    solve; faster on CPU than a left-sided one or a general inverse)."""
    L = _cholesky_floored(cov, floor)
    eye = jnp.broadcast_to(jnp.eye(L.shape[-1], dtype=L.dtype), L.shape)
    Linv = jax.lax.linalg.triangular_solve(L, eye, left_side=False, lower=True)
    Q = jnp.swapaxes(Linv, -1, -2) @ Linv
    logdet = -jnp.sum(jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1)), axis=-1)
    return Linv, Q, logdet


def _precisions(cov: jax.Array, floor: jax.Array):
    """For [K, d, d] covariances: (P, Q, log det P) with P = L⁻ᵀ upper triangular (scikit-learn's
    ``precisions_cholesky_``), Q = P Pᵀ = Σ⁻¹ and log det P = −Σ log diag L (floored Cholesky)."""
    Linv, Q, logdet = _factor_xla(cov, floor)
    return jnp.swapaxes(Linv, -1, -2), Q, logdet


def _precisions_from_factor(L: jax.Array, floor: jax.Array):
    """:func:`_precisions` from given lower factors L [K, d, d] (``L Lᵀ = Σ``, positive diagonal);
    a factor with a non-positive or non-finite diagonal (NaN data) is replaced by the floored
    diagonal of its covariance, as :func:`_cholesky_floored` does."""
    dg = jnp.diagonal(L, axis1=-2, axis2=-1)
    ok = jnp.all(jnp.isfinite(L), axis=(-2, -1)) & jnp.all(dg > 0, axis=-1)
    cov_dg = jnp.maximum(jnp.sum(jnp.where(jnp.isfinite(L), L, 0.0) ** 2, axis=-1), floor)
    L = jnp.where(ok[:, None, None], L, jax.vmap(jnp.diag)(jnp.sqrt(cov_dg)))
    eye = jnp.broadcast_to(jnp.eye(L.shape[-1], dtype=L.dtype), L.shape)
    Linv = jax.lax.linalg.triangular_solve(L, eye, left_side=False, lower=True)
    Q = jnp.swapaxes(Linv, -1, -2) @ Linv
    logdet = -jnp.sum(jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1)), axis=-1)
    return jnp.swapaxes(Linv, -1, -2), Q, logdet


def _cov_factor_qr(Z, resp, means, nk, reg_covar):
    """Lower Cholesky factors [K, d, d] of the regularised covariances
    ``Σ_k = Σ_i r_ik (x_i − μ_k)(x_i − μ_k)ᵀ / n_k + reg·I`` without forming Σ_k (below float64):
    the R factor of the QR of the stacked ``[√(r_ik/n_k)·(x_i − μ_k) ; √reg·I]`` ((N + d) × d,
    RᵀR = Σ_k exactly), its rows' signs turned so that the diagonal is positive. The regulariser
    sits on its own rows, so a singular component's null directions keep the eigenvalue ``reg``
    (to about ``eps·√(λ_max/reg)`` relative) instead of the rounding of a Gram, ``eps·λ_max``."""
    N, d = Z.shape
    K = means.shape[0]
    ridge = jnp.sqrt(jnp.asarray(reg_covar, Z.dtype)) * jnp.eye(d, dtype=Z.dtype)

    def one(mu, r, n):
        A = jnp.concatenate([(Z - mu) * jnp.sqrt(r / n)[:, None], ridge], axis=0)
        R = jnp.linalg.qr(A, mode="r")
        sgn = jnp.where(jnp.diagonal(R) < 0, -1.0, 1.0).astype(Z.dtype)
        return jnp.swapaxes(R * sgn[:, None], -1, -2)

    return _per_component(one, (means, resp.T, nk), K, N + d, d)


def _maha_blocked(Z, means, P):
    """Squared Mahalanobis distances [N, K], centred per component (stable in any precision)."""
    N, d = Z.shape
    K = means.shape[0]

    def one(mu, Pk):
        y = (Z - mu) @ Pk
        return jnp.sum(y * y, axis=-1)

    return _per_component(one, (means, P), K, N, d).T


def _host_matmul(a, b):
    return np.matmul(np.asarray(a), np.asarray(b))


def _matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a @ b``; large float64 products on the CPU backend go to the host BLAS through a callback
    (XLA's CPU float64 GEMM is ~2× slower there — see :mod:`pedjax._linalg`). Not differentiable
    (the EM loop never is)."""
    if (
        a.dtype == jnp.float64 and b.dtype == jnp.float64 and a.ndim == 2 and b.ndim == 2
        and a.shape[0] * a.shape[1] * b.shape[1] >= _HOST_BLAS_MIN_MACS
        and host_kernels_enabled()
    ):
        out = jax.ShapeDtypeStruct((a.shape[0], b.shape[1]), a.dtype)
        return jax.pure_callback(_host_matmul, out, a, b, vmap_method="broadcast_all")
    return a @ b


def _maha_packed(Z, A, iu, means, Q):
    """The same from second moments: xᵀQx − 2 xᵀQμ + μᵀQμ with Q = P Pᵀ, one [N, d(d+1)/2] ×
    [d(d+1)/2, K] product (half the work of the blocked form; rounding bounded by
    :func:`packed_is_accurate`)."""
    i0, i1 = iu
    qp = Q[:, i0, i1] * jnp.where(i0 == i1, 1.0, 2.0).astype(Q.dtype)  # [K, p]
    Qmu = jnp.einsum("kde,ke->kd", Q, means)
    quad = _matmul(A, qp.T) - 2.0 * (Z @ Qmu.T) + jnp.sum(means * Qmu, axis=1)
    return jnp.maximum(quad, 0.0)


def _second_moments(A, resp):
    """Σ_i r_ik A_i [K, p]. When every sample has at most :data:`_SPARSE_M` non-zero
    responsibilities (exp underflows to exactly 0 far from a component — the usual case once the
    mixture has settled), only those terms are summed: the same sum without its exact zeros.
    Otherwise (checked at run time) the dense product."""
    N, K = resp.shape
    m = min(_SPARSE_M, K)
    if K < _SPARSE_MIN_K:  # XLA's CPU scatter is slow: dense wins for few components
        return _matmul(resp.T, A)
    vals, idx = jax.lax.top_k(resp, m + 1)
    sparse_ok = jnp.all(vals[:, m] == 0)

    def sparse(_):
        def body(j, S):
            v, i = vals[:, j], idx[:, j]
            add = lambda S: S.at[i].add(v[:, None] * A)  # noqa: E731
            return jax.lax.cond(jnp.any(v > 0), add, lambda S: S, S)  # usually only j = 0 runs

        return jax.lax.fori_loop(0, m, body, jnp.zeros((K, A.shape[1]), A.dtype))

    return jax.lax.cond(sparse_ok, sparse, lambda _: _matmul(resp.T, A), None)


def _cov_blocked(Z, resp, means, nk):
    N, d = Z.shape
    K = means.shape[0]

    def one(mu, r, n):
        diff = Z - mu
        return (diff * r[:, None]).T @ diff / n

    return _per_component(one, (means, resp.T, nk), K, N, d)


def _cov_packed(A, iu, resp, means, nk):
    """Σ_i r_ik (x_i − μ_k)(x_i − μ_k)ᵀ / n_k from Σ_i r_ik x_i x_iᵀ; with μ_k = Σ r x / n_k and
    Σ_i r_ik = n_k − 10·eps this is S/n_k − (2 − Σ_i r_ik / n_k) μ_k μ_kᵀ exactly."""
    K, d = means.shape
    S = _second_moments(A, resp) / nk[:, None]  # [K, p]: Σ_i r_ik x_i x_iᵀ / n_k (upper triangle)
    coef = 2.0 - jnp.sum(resp, axis=0) / nk
    i0, i1 = iu
    M = jnp.zeros((K, d, d), A.dtype).at[:, i0, i1].set(S)
    M = M + jnp.swapaxes(M, -1, -2) - jax.vmap(jnp.diag)(jnp.diagonal(M, axis1=-2, axis2=-1))
    return M - coef[:, None, None] * means[:, :, None] * means[:, None, :]


def effective_reg_covar(Z: jax.Array, reg_covar: float = REG_COVAR):
    """The covariance regulariser the EM adds for data ``Z`` [N, d].

    float64: ``reg_covar`` itself (scikit-learn's absolute 1e-6; parity). Lower precisions:
    ``max(reg_covar, REL_REG · eps² · tr Cov(Z))`` with ``tr Cov(Z)`` the mean squared norm of the
    centred data (ddof 0) — one value for every component, as scikit-learn's. The float32 EM
    factorises each covariance by QR with the regulariser on its own rows
    (:func:`_cov_factor_qr`), which resolves a singular component's null directions (eigenvalue
    ``reg``) to about ``eps·√(tr/reg)`` relative: ≤ 1 % at this floor, and the floor is 1e-6
    itself — float64's likelihood — up to ``tr ≈ 1e-6/(REL_REG·eps²) ≈ 7000`` (module docstring).
    Zero columns (the core's masked PCA width) add nothing to the trace and the same constant to
    every component's log-density, as before.
    """
    if not _low_precision(Z.dtype):
        return reg_covar
    Zc = Z - jnp.mean(Z, axis=0)
    tr = jnp.mean(jnp.sum(Zc * Zc, axis=1))
    return jnp.maximum(jnp.asarray(reg_covar, Z.dtype), REL_REG * jnp.finfo(Z.dtype).eps ** 2 * tr)


def packed_is_accurate(Z: jax.Array, reg_covar: float = REG_COVAR) -> jax.Array:
    """Whether the second-moment E/M steps are accurate for data ``Z`` (centred): their rounding
    error in a squared Mahalanobis distance is about ``eps · max‖z‖² / reg_covar`` (the largest
    precision is 1/reg_covar); accept it while that bound is below :data:`PACKED_TOL`."""
    eps = jnp.finfo(Z.dtype).eps
    return eps * jnp.max(jnp.sum(Z * Z, axis=1)) / reg_covar < PACKED_TOL


def gmm_fit(
    Z: jax.Array,
    means_init: jax.Array | None = None,
    *,
    resp_init: jax.Array | None = None,
    reg_covar: float = REG_COVAR,
    tol: float = TOL,
    max_iter: int = MAX_ITER,
    method: str = "auto",
) -> GMMResult:
    """EM for a full-covariance Gaussian mixture from initial means (pure JAX, vmap-able).

    Starts from scikit-learn's ``init_params="k-means++"`` state with the given means
    (covariances ``reg_covar·I``, weights ``(1 + 10·eps)/N``) — or, with ``resp_init`` [N, K]
    instead, from scikit-learn's ``_initialize(X, resp)`` state (weights, means and covariances of
    those responsibilities; ``init_params="kmeans"`` passes one-hot k-means labels) — and runs its
    loop: E-step, M-step,
    stop once the mean log-likelihood changes by less than ``tol`` or after ``max_iter``
    iterations; ``resp`` comes from a final E-step, like ``predict_proba``.

    The data are centred first (the fit is translation-equivariant; means are shifted back).
    ``method`` (static): ``"blocked"`` evaluates every component on centred differences, in
    blocks (stable in any precision); ``"packed"`` uses second moments — one [N, d(d+1)/2] ×
    [d(d+1)/2, K] product per step, half the work, float64 only; ``"auto"`` picks packed when it
    is float64, fits the memory budget and :func:`packed_is_accurate` holds (a runtime
    ``lax.cond``: both are compiled), else blocked.

    Args:
      Z: data [N, d] (promoted to the default float type).
      means_init: initial means [K, d]; exactly one of ``means_init`` and ``resp_init``.
      resp_init: initial responsibilities [N, K] (keyword only); exactly one of the two.
      reg_covar: covariance regulariser (default 1e-6, scikit-learn's); below float64 the EM uses
        :func:`effective_reg_covar` of it.
      tol: convergence threshold on the change of the mean log-likelihood (default 1e-3).
      max_iter: most EM iterations (default 100, static); 0 returns the start state.
      method: ``"auto"`` (default), ``"packed"`` or ``"blocked"`` (static; above). ``"packed"``
        falls back to ``"blocked"`` where it cannot run (not float64, or over the memory budget).

    Returns:
      A :class:`GMMResult` (means in ``Z``'s coordinates).

    Raises:
      ValueError: both or neither of ``means_init`` and ``resp_init`` are given; ``method`` is
        not one of the three choices.
    """
    Z = _float(Z)
    N, d = Z.shape
    shift = jnp.mean(Z, axis=0)
    Z = Z - shift
    if (means_init is None) == (resp_init is None):
        raise ValueError("gmm_fit: pass exactly one of means_init [K, d] and resp_init [N, K]")
    if resp_init is not None:
        resp_init = jnp.asarray(resp_init, Z.dtype)
        means0 = jnp.zeros((resp_init.shape[1], d), Z.dtype)  # unused: the means come from resp
    else:
        means0 = jnp.asarray(means_init, Z.dtype) - shift
    if method not in ("auto", "packed", "blocked"):
        raise ValueError(f"method: unknown value {method!r}; choose 'auto', 'packed' or 'blocked'")
    can_pack = _use_packed(N, d, means0.shape[0], Z.dtype)
    if method == "packed" and not _can_pack(N, d, Z.dtype):
        method = "blocked"
    if method == "auto":
        if not can_pack:
            method = "blocked"
        else:
            run = functools.partial(_gmm_em, reg_covar=reg_covar, tol=tol, max_iter=max_iter)
            out = jax.lax.cond(
                packed_is_accurate(Z, reg_covar),
                lambda z, m, r: run(z, m, r, packed=True),
                lambda z, m, r: run(z, m, r, packed=False),
                Z, means0, resp_init,
            )
            return out._replace(means_=out.means_ + shift)
    out = _gmm_em(Z, means0, resp_init, reg_covar=reg_covar, tol=tol, max_iter=max_iter, packed=method == "packed")
    return out._replace(means_=out.means_ + shift)


def _gmm_em(Z, means0, resp0, *, reg_covar, tol, max_iter, packed: bool) -> GMMResult:
    """The EM loop on centred Z (see :func:`gmm_fit`)."""
    N, d = Z.shape
    K = means0.shape[0]
    eps = jnp.finfo(Z.dtype).eps
    low = _low_precision(Z.dtype)
    reg_covar = effective_reg_covar(Z, reg_covar)
    if packed:
        iu = tuple(jnp.asarray(a) for a in np.triu_indices(d))
        A = Z[:, iu[0]] * Z[:, iu[1]]  # [N, p]
        maha = lambda mu, P, Q: _maha_packed(Z, A, iu, mu, Q)  # noqa: E731
        covs = lambda r, mu, nk: _cov_packed(A, iu, r, mu, nk)  # noqa: E731
    else:
        maha = lambda mu, P, Q: _maha_blocked(Z, mu, P)  # noqa: E731
        covs = lambda r, mu, nk: _cov_blocked(Z, r, mu, nk)  # noqa: E731

    def e_step(w, mu, P, Q, ld):
        log_prob = -0.5 * (d * jnp.log(2 * jnp.pi) + maha(mu, P, Q)) + ld
        weighted = log_prob + jnp.log(w)
        lpn = jax.nn.logsumexp(weighted, axis=1)
        return lpn, weighted - lpn[:, None]

    def moments(resp):
        nk = jnp.sum(resp, axis=0) + 10 * eps
        return nk, (resp.T @ Z) / nk[:, None]

    def factorised(resp, mu, nk):
        """(cov, P, Q, log det P) of the regularised covariances of ``resp``."""
        if low:  # never form the Gram below float64 (:func:`_cov_factor_qr`)
            L = _cov_factor_qr(Z, resp, mu, nk, reg_covar)
            P, Q, ld = _precisions_from_factor(L, floor)
            return L @ jnp.swapaxes(L, -1, -2), P, Q, ld
        cov = covs(resp, mu, nk) + reg_covar * jnp.eye(d, dtype=Z.dtype)
        return (cov, *_precisions(cov, floor))

    def m_step(log_resp):
        resp = jnp.exp(log_resp)
        nk, mu = moments(resp)
        return nk / jnp.sum(nk), mu, *factorised(resp, mu, nk)

    # covariance floor for failed factorisations: √eps × the mean per-dimension variance of the
    # data, never below reg_covar
    floor = jnp.maximum(jnp.sqrt(eps) * jnp.mean(Z * Z), reg_covar).astype(Z.dtype)
    if resp0 is None:  # scikit-learn's start from single-sample responsibilities
        w0 = jnp.full((K,), (1.0 + 10 * eps) / N, Z.dtype)
        cov0 = jnp.broadcast_to(reg_covar * jnp.eye(d, dtype=Z.dtype), (K, d, d))
        P0, Q0, ld0 = _precisions(cov0, floor)
    else:  # scikit-learn's _initialize(X, resp): weights n_k / N (not renormalised)
        nk, means0 = moments(resp0)
        cov0, P0, Q0, ld0 = factorised(resp0, means0, nk)
        w0 = nk / N

    def cond(s):
        return (s["n"] < max_iter) & ~s["conv"]

    def body(s):
        lpn, log_resp = e_step(s["w"], s["mu"], s["P"], s["Q"], s["ld"])
        w, mu, cov, P, Q, ld = m_step(log_resp)
        lb = jnp.mean(lpn)
        # below float64 the change is summed sample by sample (module docstring); float64 keeps
        # scikit-learn's test, rounded as scikit-learn rounds it
        conv = (s["n"] > 0) & (jnp.abs(jnp.mean(lpn - s["lpn"])) < tol) if low else jnp.abs(lb - s["lb"]) < tol
        return dict(w=w, mu=mu, cov=cov, P=P, Q=Q, ld=ld, lb=lb, n=s["n"] + 1, conv=conv,
                    lpn=lpn if low else s["lpn"])

    s0 = dict(w=w0, mu=means0, cov=cov0, P=P0, Q=Q0, ld=ld0, lb=jnp.asarray(-jnp.inf, Z.dtype),
              n=jnp.asarray(0, jnp.int32), conv=jnp.asarray(False),
              lpn=jnp.zeros((N if low else 0,), Z.dtype))
    s = jax.lax.while_loop(cond, body, s0) if max_iter > 0 else s0
    _, log_resp = e_step(s["w"], s["mu"], s["P"], s["Q"], s["ld"])
    return GMMResult(s["w"], s["mu"], s["cov"], s["P"], s["lb"], s["n"], s["conv"], jnp.exp(log_resp))


# --------------------------------------------------------------------------- NLEEP


def nleep_from_posterior(prob: jax.Array, y: jax.Array, num_classes: int, log: bool = False) -> jax.Array:
    """NLEEP from p(z|x) [N, K] and coded labels (the published LEEP-style aggregation)."""
    N = prob.shape[0]
    onehot = jax.nn.one_hot(y, num_classes, dtype=prob.dtype)
    pyz = onehot.T @ prob / N  # [C, K]
    pz = jnp.sum(pyz, axis=0)
    py_z = jnp.where(pz > 0, pyz / jnp.where(pz > 0, pz, 1.0), 0.0)
    p = jnp.sum(prob * py_z[y], axis=1)  # p(y_i | x_i)
    mean_log = jnp.mean(jnp.log(jnp.maximum(p, jnp.finfo(p.dtype).tiny)))
    return jnp.where(log, mean_log, jnp.mean(p))  # ``log`` may be traced


def _n_mix(component_ratio: int, num_classes: int, N: int) -> int:
    return max(1, min(int(component_ratio) * num_classes, N))


def _masked(Z, k):
    return jnp.where(jnp.arange(Z.shape[1]) < k, Z, 0.0)


def lloyd(Z: jax.Array, centers: jax.Array, max_iter: int = 300, tol: float = 1e-4) -> jax.Array:
    """k-means (Lloyd) from initial centres, scikit-learn's ``KMeans(n_init=1)`` loop: stop when
    the labels no longer change or the total squared centre shift is ≤ ``tol · mean(var(Z))``,
    at most ``max_iter`` iterations; returns the labels [N] (consistent with the final centres,
    as scikit-learn's). An empty cluster keeps its centre (scikit-learn moves it to a far point).
    """
    N = Z.shape[0]
    K = centers.shape[0]
    sq = jnp.sum(Z * Z, axis=1)
    tol_abs = tol * jnp.mean(jnp.var(Z, axis=0))

    def assign(c):
        d = sq[:, None] - 2.0 * (Z @ c.T) + jnp.sum(c * c, axis=1)[None, :]
        return jnp.argmin(d, axis=1).astype(jnp.int32)

    def cond(s):
        return (s["i"] < max_iter) & ~s["done"]

    def body(s):
        labels = assign(s["c"])
        cnt = jax.ops.segment_sum(jnp.ones((N,), Z.dtype), labels, K)
        sums = jax.ops.segment_sum(Z, labels, K)
        new = jnp.where(cnt[:, None] > 0, sums / jnp.maximum(cnt, 1.0)[:, None], s["c"])
        strict = jnp.all(labels == s["labels"])
        shift = jnp.sum((new - s["c"]) ** 2)
        return dict(c=new, labels=labels, i=s["i"] + 1, done=strict | (shift <= tol_abs), strict=strict)

    s0 = dict(c=centers, labels=jnp.full((N,), -1, jnp.int32), i=jnp.asarray(0, jnp.int32),
              done=jnp.asarray(False), strict=jnp.asarray(False))
    s = jax.lax.while_loop(cond, body, s0)
    return jnp.where(s["strict"], s["labels"], assign(s["c"]))


def _kmeans_resp(Z, k, order, seed, n_mix, draws=None):
    """scikit-learn's ``init_params="kmeans"`` responsibilities, seeded: k-means++ centres drawn
    in the sample order ``order`` (the raw features' :func:`canonical_order`) with the random
    numbers ``draws`` (default: :func:`kmeanspp_draws` of ``seed`` in ``Z``'s dtype), Lloyd
    iterations, one-hot labels [N, K] (masked scores)."""
    Z = _masked(Z, k)
    idx = kmeans_plusplus(jax.random.key(seed), Z[order], n_mix, draws)
    labels = lloyd(Z, Z[order[idx]])
    return jax.nn.one_hot(labels, n_mix, dtype=Z.dtype)


def _gmm_nleep(Z, k, init, y, num_classes, log, method="auto", from_resp=True):
    Zm = _masked(Z, k)
    fit = gmm_fit(Zm, resp_init=init, method=method) if from_resp else gmm_fit(Zm, init, method=method)
    return nleep_from_posterior(fit.resp, y, num_classes, log)


def _nleep_on_scores(Z, k, X, y, num_classes, component_ratio, seed, log, method="auto"):
    """k-means++ + GMM + NLEEP on PCA scores Z [N, w] whose columns ≥ k are zeroed (X: the raw
    features, for the canonical sample order of the k-means++ draws)."""
    resp0 = _kmeans_resp(Z, k, canonical_order(X), seed, _n_mix(component_ratio, num_classes, Z.shape[0]))
    return _gmm_nleep(Z, k, resp0, y, num_classes, log, method)


def nleep_core(
    X: jax.Array,
    y: jax.Array,
    num_classes: int,
    component_ratio: int = 5,
    seed: int = 0,
    log: bool = False,
    n_pca: int | None = DEFAULT_N_PCA,
    gmm_method: str = "auto",
) -> jax.Array:
    """NLEEP of features ``X`` [N, D] for coded labels ``y`` (pure JAX, jit/vmap-able).

    Static options: ``component_ratio``; ``n_pca``, the PCA width, which must be ≥ the number of
    components that keep 80 % of the variance (else the result is NaN; ``None`` uses all
    ``min(N, D)`` columns: exact but costly — pick it with :func:`nleep_pca_components`);
    ``gmm_method`` (see :func:`gmm_fit`: ``"auto"`` guards the fast second-moment path at run
    time, and under ``vmap`` that guard evaluates both paths; pass ``"packed"`` for features of
    moderate scale, ``"blocked"`` to skip it). ``seed`` and ``log`` may be traced.

    Args:
      X: features [N, D] (promoted to the default float type).
      y: coded labels [N] (integers 0..num_classes−1).
      num_classes: number of classes C (static).
      component_ratio: mixture components per class (default 5, static; ``K = ratio · C``,
        capped at N).
      seed: seeds the k-means++ draws, in ``X``'s dtype (default 0; may be traced).
      log: mean log p(y|x) instead of mean p(y|x) (default False; may be traced).
      n_pca: static PCA width (default 128; ``None``: all ``min(N, D)`` columns), as above.
      gmm_method: ``"auto"`` (default), ``"packed"`` or ``"blocked"`` (static; :func:`gmm_fit`).

    Returns:
      The score, a 0-d ``jax.Array`` in the default float dtype; NaN where ``n_pca`` is below
      the number of components that keep 80 % of the variance.
    """
    X = _float(X)
    r = min(X.shape)
    width = r if n_pca is None else min(int(n_pca), r)
    ev, Z = pca_spectrum(X, width)
    k = n_components_for_ratio_jax(ev, VARIANCE)
    score = _nleep_on_scores(Z, k, X, y, num_classes, component_ratio, seed, log, method=gmm_method)
    return jnp.where(k <= width, score, jnp.nan)


def _round_up(k: int, m: int, cap: int) -> int:
    return min(cap, -(-k // m) * m)


@jax.jit
def _spectrum(X):
    return pca_spectrum(_float(X), None)


@jax.jit
def _with_sklearn_signs(X, Zk):
    X = _float(X)
    return Zk * sklearn_signs_for(X - jnp.mean(X, axis=0), Zk)


@jax.jit
def _spectrum_values(X):
    X = _float(X)
    N, D = X.shape
    Xc = X - jnp.mean(X, axis=0)
    G = gram(Xc.T) if N <= D else gram(Xc)
    return jnp.maximum(jnp.linalg.eigvalsh(G)[::-1], 0.0) / max(N - 1, 1)


def nleep_pca_components(X) -> int:
    """How many PCA components NLEEP keeps for features ``X`` (scikit-learn's 0.8 rule).

    Args:
      X: features [N, D] (array-like, finite).

    Returns:
      The ``int`` k: the smallest number of components whose cumulative explained-variance ratio
      is strictly above 0.8 (a valid ``n_pca`` for :func:`nleep_core` is any width ≥ k).

    Raises:
      ValueError: ``X`` is not a finite numeric 2-D array.
    """
    Xv = as_float_matrix(X, "X")
    return n_components_for_ratio(np.asarray(_spectrum_values(Xv)), VARIANCE)


# the public function runs the stages as separate executables: ``means_init`` and k-means++ starts
# share the compiled mixture fit, and only the cheap sample ordering depends on the raw width D
_jit_canonical_order = jax.jit(canonical_order)
_jit_kmeans_resp = jax.jit(_kmeans_resp, static_argnames=("n_mix",))
_jit_gmm_nleep = jax.jit(_gmm_nleep, static_argnames=("num_classes", "method", "from_resp"))


_jit_draws = jax.jit(kmeanspp_draws, static_argnums=(2, 3))


def _host_order_and_draws(X, seed: int, K: int):
    """The k-means++ sample order and random numbers, identical in both precisions: the
    :func:`canonical_order` of the features *as given* (float32 ``.npy`` features are then the
    same numbers in both precisions) and :func:`kmeanspp_draws` of ``seed``, both computed in
    float64 on the CPU (cheap: O(N·D) sums, one sort, K·(2 + ⌊ln K⌋) uniforms; the default device
    where JAX has no CPU backend). On the CPU in float64 this is exactly what the float64 path
    always computed."""
    try:
        where = jax.default_device(jax.devices("cpu")[0])
    except RuntimeError:  # e.g. JAX_PLATFORMS=cuda
        where = contextlib.nullcontext()
    with jax.enable_x64(True), where:
        X64 = np.asarray(X, dtype=np.float64)
        order = np.asarray(_jit_canonical_order(X64))
        first, U = _jit_draws(jax.random.key(seed), X64.shape[0], K, jnp.float64)
        return order, (np.asarray(first), np.asarray(U))


def _host_method(Zk: np.ndarray, width: int, K: int) -> str:
    """The wrapper's static choice for scores ``Zk`` [N, k] fitted at ``width`` columns (what
    ``method="auto"`` would pick at run time)."""
    N = Zk.shape[0]
    if not _can_pack(N, width, Zk.dtype):
        return "blocked"
    Zc = Zk - Zk.mean(axis=0)
    bound = np.finfo(Zk.dtype).eps * np.max(np.sum(Zc * Zc, axis=1)) / REG_COVAR
    return "packed" if bound < PACKED_TOL else "blocked"


@register("nleep", nleep_core, static=("component_ratio", "n_pca", "gmm_method"), batch="host")
def nleep(X, y, component_ratio: int = 5, seed: int = 0, log: bool = False, means_init=None) -> float:
    """NLEEP transferability of features ``X`` [N, D] for labels ``y`` [N] (higher is better).

    PCA to 80 % of the variance, a seeded k-means++ start, scikit-learn's EM and the LEEP-style
    aggregation (module docstring). Like every public metric, it also takes the keyword
    ``precision=`` (``"auto"``, ``"float64"`` or ``"float32"``; docs/precision.md); the k-means++
    draws and sample order are the same in both precisions.

    Args:
      X: features [N, D] (any real array; the features of one model on the target set).
      y: labels [N], any integer values (coded 0..C−1 in sorted order), at least 2 classes.
      component_ratio: mixture components per class (``K = component_ratio · C``, capped at N).
      seed: seeds the k-means++ initialisation; the same seed gives the same score.
      log: mean log p(y|x) (paper / google-research) instead of mean p(y|x) (PED/SFDA repos).
      means_init: optional initial means [K, k] in scikit-learn's ``PCA(0.8)`` coordinates
        (replaces k-means++; reproduces ``GaussianMixture(means_init=…, init_params="k-means++")``).

    Returns:
      The score as a Python ``float`` (mean p(y|x) in [0, 1], or mean log p(y|x) ≤ 0 with
      ``log=True``); ``-inf`` for degenerate (constant) features.

    Raises:
      ValueError: ``component_ratio`` is not a positive integer; ``means_init`` is not of shape
        (K, k) = (component_ratio·C, PCA components) or is not finite; ``X`` or ``y`` are
        malformed (not [N, D] and [N], non-finite features, fewer than 2 classes).
    """
    codes, classes = encode_labels(y, "y")
    Xv = as_float_matrix(X, "X", n=codes.shape[0])
    if isinstance(component_ratio, bool) or not isinstance(component_ratio, (int, np.integer)) or component_ratio < 1:
        raise ValueError(f"component_ratio: expected a positive integer, got {component_ratio!r}")
    C = int(classes.size)
    ev, Z = _spectrum(Xv)
    k = n_components_for_ratio(np.asarray(ev), VARIANCE)
    K = _n_mix(component_ratio, C, codes.shape[0])
    # round the width up to a multiple of 8 (models with similar k share one executable), except
    # for many components, where the padding would cost more than a compilation
    width = k if K >= _PACKED_MIN_K else _round_up(k, 8, Z.shape[1])
    if means_init is not None:
        M = np.asarray(means_init, dtype=np.float64)
        if M.shape != (K, k):
            raise ValueError(
                f"means_init: expected shape ({K}, {k}) = (component_ratio·C, PCA components), got {M.shape}"
            )
        if not np.all(np.isfinite(M)):
            raise ValueError("means_init: contains NaN or infinite values")
        Zw = _with_sklearn_signs(Xv, Z[:, :width])  # scikit-learn's coordinates
        init = jnp.zeros((K, width), Zw.dtype).at[:, :k].set(M)
    else:
        Zw = Z[:, :width]
        order, draws = _host_order_and_draws(X if Xv.dtype != np.float64 else Xv, int(seed), K)
        if Zw.dtype != jnp.float64:  # the float64 uniforms as float32 pairs (hi + lo)
            U_hi = draws[1].astype(np.float32)
            draws = (draws[0], U_hi, (draws[1] - U_hi).astype(np.float32))
        init = _jit_kmeans_resp(Zw, k, order, int(seed), n_mix=K, draws=draws)
    method = _host_method(np.asarray(Zw[:, :k]), width, K)
    out = _jit_gmm_nleep(Zw, k, init, codes, C, bool(log), method, means_init is None)
    return float(np.asarray(out))
