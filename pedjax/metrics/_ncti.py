"""NCTI, the Neural Collapse Transferability Index (Wang, Luo, Zheng, Huang & Baktashmotlagh, ICCV 2023,
"How Far Pre-trained Models Are from Neural Collapse on the Target Dataset Informs their
Transferability"), with the semantics of the authors' code, github.com/BUserName/NCTI
(``metrics.py``: ``NCTI_Score``; ``evaluate_metric_group1_cpu.py``: the zoo-level combination).

Per model (features X [N, D], labels coded 0..C-1):

1. **PCA** to k = 64 components (scikit-learn ``PCA(n_components=64).fit_transform``): scores
   Z [N, k] and explained variances λ_j (ddof 1).
2. **Shrinkage** ``s = max(exp(−Σ_{j<32} λ_j), 1e-10)``. If s is the floor 1e-10 (Σ_{j<32} λ_j ≥
   23.03: the usual case for real features) the LDA below is scikit-learn's ``solver='svd'``;
   otherwise ``solver='eigen', shrinkage=s``.
3. **LDA** on Z (class priors = class frequencies): posterior P [N, C] (``predict_proba``) and the
   projection onto the min(C − 1, k) discriminant directions (``fit_transform``).

   * ``svd``: per-dimension within-class standardisation, SVD of the scaled within-class
     residuals (singular values ≤ 1e-4 dropped), whitened and weighted class means, their SVD
     (relative cut 1e-4); the posterior is softmax(u·u_cᵀ − ½‖u_c‖² + log π_c) in those
     coordinates u.
   * ``eigen``: Sw = (1 − s)W + s·tr(W)/k·I, Sb = (1 − s)B + s·tr(B)/k·I (W within-class, B
     between-class covariance, ddof 0; scikit-learn's St − Sw), the generalized eigenvectors of
     (Sb, Sw) — taken here as L⁻ᵀQ from the Cholesky factor Sw = LLᵀ and eigh(L⁻¹SbL⁻ᵀ) — and the
     posterior softmax(x·Sw⁻¹m_c − ½m_cᵀSw⁻¹m_c + log π_c) (scikit-learn's ``means·V·Vᵀ`` with
     V Vᵀ = Sw⁻¹), by triangular solves.

4. Three terms:

   * S_seli = ‖F − mean(F)‖_* — nuclear norm of the centred LDA projection F [N, min(C−1, k)]
     (the SELI / simplex-ETF proximity term);
   * S_ncc = (1/N) Σ_i P[i, y_i] — nearest-centre classifier term;
   * S_vc = log Σ_c ‖P_c‖_* — P_c the posterior rows of class c (within-class variability term).

**Combination across the zoo** (``evaluate_metric_group1_cpu.py``): each term is min–max scaled
over the models and the score is ``mm(S_ncc) + mm(S_seli) − mm(S_vc)``. A single model's score
is therefore not defined; as for :mod:`._etran`, :func:`ncti` returns the unscaled
``seli_weight·S_seli + ncc_weight·S_ncc − vc_weight·S_vc`` (weights 1: the paper's sum without its
normalisation — S_seli, a nuclear norm growing with N, dominates it), and
:func:`ncti_components` + :func:`ncti_combine` (or :func:`ncti_zoo`) reproduce the published
zoo-level score. ``pedjax.score_zoo(..., metric="ncti")`` scores models one by one and therefore
gives the unscaled sum.

Where pedjax differs from the published code (documented, on purpose):

* **Exact PCA.** The reference's ``PCA(64)`` uses scikit-learn's ``svd_solver='auto'``, which for
  realistic sizes is the *randomized* solver with an unseeded random state; pedjax computes the
  exact PCA (the limit of the randomized one; :mod:`._pca`, as for PARC).
* **Small inputs.** ``PCA(64)`` raises unless 64 ≤ min(N, D); pedjax uses
  k = min(64, N − 1, D) (N − 1: the centred data have rank ≤ N − 1, so a 64th component with
  N = 64 would be pure rounding noise). PCA components whose eigenvalue is at the rounding level
  of the Gram matrix (≤ min(N, D)·eps·λ_max: rank-deficient data, constant or duplicated
  dimensions) are set to exactly zero. The reference keeps them as ~1e-15-sized columns, which the
  svd-LDA's per-dimension standardisation then blows up to unit-variance noise features; with
  exact zeros they drop out (scikit-learn maps a zero standard deviation to 1).
* **scikit-learn version.** scikit-learn ≤ 1.8 (what the authors ran, 2023) scales the svd solver's
  within-class residuals by 1/(N − C) (the unbiased pooled covariance); scikit-learn 1.9 (PR
  #33626) uses 1/N. This changes the posterior's temperature, hence S_ncc and S_vc.
  ``within_scale="n_minus_c"`` (default) is the published behaviour, ``"n"`` scikit-learn ≥ 1.9's.
  All classes singletons (N = C): the reference raises; pedjax uses 1/max(N − C, 1).
* **float32** (every dtype but float64; issue 21). Both LDA solvers standardise or whiten the PCA
  scores, so NCTI depends on the *small* PCA components as much as on the large ones, and on the
  exact shrinkage in directions where the within-class scatter vanishes. Float64 is the
  computation above, unchanged; below float64:

  - the PCA comes from an SVD of the centred features (two-pass centring) instead of the Gram
    eigendecomposition, which resolves eigenvalues only to ~eps·λ_max (~1e-7·λ_max in float32)
    and would zero real small components that float64 standardises. Components whose singular
    value is ≤ √max(N, D)·eps·σ_max are zeroed (the rounding level of the SVD of the float32
    centred features);
  - the eigen solver is whitened by the SVD of the within-class residuals (QR first):
    W = V·diag(w)·Vᵀ, so Sw = V·diag((1 − s)w + s·tr(W)/k)·Vᵀ exactly and Sw^(−1/2) needs no
    Cholesky factor; the generalized eigenproblem becomes the symmetric one of
    Sw^(−1/2)·Sb·Sw^(−1/2) = (1 − s)·MᵀM + s·tr(B)/k·diag(1/d), M the whitened, prior-weighted
    centred class means. This keeps the published shrinkage s however small (≥ 1e-10): a PCA
    direction that is zero (rank-deficient features) is a generalized eigenvector with eigenvalue
    tr(B)/tr(W) whatever s is, and float64 can rank it among the top C − 1 (a zero projection
    column); flooring s for a Cholesky factor would divide that eigenvalue and swap in a real
    direction;
  - singular values of the scaled within-class residuals (svd solver) are cut at
    max(1e-4, k·eps·S_max) (1e-4 in float64).

  The measurements behind these choices are in docs/precision.md ("NCTI").
* Binary tasks: scikit-learn returns [1 − σ(d), σ(d)]; softmax of the two logits is the same
  number (up to rounding of 1 − σ).

Computation notes: both LDA variants run on the k ≤ 64 PCA scores; the choice between them is a
traced ``where`` (so the core vmaps over a zoo). Σ_c ‖P_c‖_* is computed without per-class row
slices: the class Gram matrices P_cᵀP_c [C, C, C] are accumulated by segment sums over row blocks,
their eigenvectors v found, and the singular values read as ‖P_c v‖ in a second pass (accurate to
eps·σ_max instead of the √eps·σ_max of √eig(P_cᵀP_c)).
"""
from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from .._linalg import gram
from .._validate import as_float_matrix, check_choice, encode_labels, is_degenerate
from ._pca import pca_spectrum
from ._registry import evaluate, jitted, register

__all__ = ["ncti", "ncti_core", "ncti_components", "ncti_components_core", "ncti_combine", "ncti_zoo"]

#: the reference's shrinkage floor ``max(exp(-Σλ), 1e-10)``; at the floor the svd solver is used
SHRINKAGE_FLOOR = 1e-10
#: scikit-learn's ``LinearDiscriminantAnalysis(tol=1e-4)``
LDA_TOL = 1e-4
_WITHIN_SCALES = ("n_minus_c", "n")
#: elements of one temporary (row block of outer products, class-chunk of Gram matrices)
_BLOCK_ELEMS = 1 << 22
_GRAM_ELEMS = 1 << 24


def _dims(N: int, D: int, n_components: int) -> int:
    return max(1, min(int(n_components), N - 1, D))


def _pca(X, k: int):
    """Exact PCA scores [N, k] (rounding-level components zeroed) and explained variances [r]."""
    N, D = X.shape
    ev, Z = pca_spectrum(X, k)
    eps = jnp.finfo(Z.dtype).eps
    alive = ev[:k] > min(N, D) * eps * ev[0]
    return ev, jnp.where(alive[None, :], Z, 0.0)


def _pca_f32(X, k: int):
    """:func:`_pca` below float64 (module notes, float32): scores from an SVD of the centred
    features (two-pass centring), components at the squared singular values' rounding level zeroed."""
    N, D = X.shape
    Xc = X - jnp.mean(X, axis=0)
    Xc = Xc - jnp.mean(Xc, axis=0)
    U, sv, _ = jnp.linalg.svd(Xc, full_matrices=False)
    ev = sv * sv / max(N - 1, 1)
    eps = jnp.finfo(X.dtype).eps
    alive = sv[:k] > sv[0] * (np.sqrt(max(N, D)) * eps)
    return ev, jnp.where(alive[None, :], U[:, :k] * sv[:k], 0.0)


def _lda_svd(Z, y, C, means, counts, priors, within_scale):
    """scikit-learn's svd-solver LDA: (logits [N, C], projection [N, min(C−1, k)])."""
    N, k = Z.shape
    eps = jnp.finfo(Z.dtype).eps
    xbar = priors @ means
    Xw = Z - means[y]
    std = jnp.std(Xw, axis=0)
    std = jnp.where(std == 0, 1.0, std)
    dof = N - C if within_scale == "n_minus_c" else N
    Xs = Xw / (std * np.sqrt(max(dof, 1)))
    R = jnp.linalg.qr(Xs, mode="r")  # [k, k]: same singular values / right vectors as Xs
    _, sv, Vt = jnp.linalg.svd(R, full_matrices=False)
    keep = sv > jnp.maximum(LDA_TOL, k * eps * sv[0])
    Wt = (Vt.T / std[:, None]) / jnp.where(keep, sv, 1.0)[None, :]
    Wt = jnp.where(keep[None, :], Wt, 0.0)  # [k, k] within-whitening
    Mb = (jnp.sqrt(counts / max(C - 1, 1))[:, None] * (means - xbar)) @ Wt  # [C, k]
    _, sv2, Vt2 = jnp.linalg.svd(Mb, full_matrices=False)
    keep2 = sv2 > LDA_TOL * sv2[0]
    scal = jnp.where(keep2[None, :], Wt @ Vt2.T, 0.0)  # [k, min(C, k)]
    u = (Z - xbar) @ scal
    uc = (means - xbar) @ scal
    logits = u @ uc.T - 0.5 * jnp.sum(uc * uc, axis=1) + jnp.log(priors)
    return logits, u[:, : min(C - 1, k)]


def _lda_eigen(Z, y, C, means, counts, priors, s):
    """scikit-learn's eigen-solver LDA with shrinkage ``s``: (logits, projection)."""
    N, k = Z.shape
    eps = jnp.finfo(Z.dtype).eps
    Xw = Z - means[y]
    W = gram(Xw) / N
    dm = means - jnp.mean(Z, axis=0)
    B = (dm * priors[:, None]).T @ dm
    eye = jnp.eye(k, dtype=Z.dtype)
    muW, muB = jnp.trace(W) / k, jnp.trace(B) / k
    Sw = (1.0 - s) * W + (jnp.maximum(s, k * eps) * muW) * eye
    Sb = (1.0 - s) * B + (s * muB) * eye
    L = jnp.linalg.cholesky(0.5 * (Sw + Sw.T))
    T = solve_triangular(L, Sb, lower=True)  # L⁻¹ Sb
    A = solve_triangular(L, T.T, lower=True)  # L⁻¹ Sb L⁻ᵀ
    _, Q = jnp.linalg.eigh(0.5 * (A + A.T))
    m = min(C - 1, k)
    V = solve_triangular(L.T, Q[:, ::-1][:, :m], lower=False)  # top generalized eigenvectors
    Zl = solve_triangular(L, Z.T, lower=True)  # [k, N]
    Ml = solve_triangular(L, means.T, lower=True)  # [k, C]
    logits = Zl.T @ Ml - 0.5 * jnp.sum(Ml * Ml, axis=0) + jnp.log(priors)
    return logits, Z @ V


def _lda_eigen_f32(Z, y, C, means, counts, priors, s):
    """:func:`_lda_eigen` below float64 (module notes, float32): the same shrinkage LDA, whitened by
    the SVD of the within-class residuals instead of a Cholesky factor of the shrunk scatter."""
    N, k = Z.shape
    Xw = (Z - means[y]) / np.sqrt(N)
    R = jnp.linalg.qr(Xw, mode="r")  # RᵀR = W
    _, sw, Vt = jnp.linalg.svd(R, full_matrices=False)
    w = sw * sw  # eigenvalues of W (exact to eps²·‖W‖), eigenvectors Vtᵀ
    dm = means - jnp.mean(Z, axis=0)
    muW = jnp.sum(w) / k
    muB = jnp.sum(priors * jnp.sum(dm * dm, axis=1)) / k
    d = (1.0 - s) * w + s * muW  # Sw = Vtᵀ·diag(d)·Vt exactly: the shrinkage commutes with W
    Wh = Vt.T / jnp.sqrt(d)[None, :]  # Whᵀ·Sw·Wh = I
    Mb = jnp.sqrt(priors)[:, None] * (dm @ Wh)  # [C, k]
    A = (1.0 - s) * (Mb.T @ Mb) + jnp.diag(s * muB / d)  # Whᵀ·Sb·Wh
    _, Q = jnp.linalg.eigh(0.5 * (A + A.T))
    m = min(C - 1, k)
    V = Wh @ Q[:, ::-1][:, :m]  # top generalized eigenvectors, Vᵀ·Sw·V = I
    Zl = Z @ Wh
    Ml = means @ Wh
    logits = Zl @ Ml.T - 0.5 * jnp.sum(Ml * Ml, axis=1) + jnp.log(priors)
    return logits, Z @ V


def _classwise_nuclear(P, y, C):
    """Σ_c ‖P[y == c]‖_* for P [N, C] (module notes: Gram eigenvectors, then ‖P_c v‖)."""
    N = P.shape[0]
    cb = max(1, min(C, _GRAM_ELEMS // (C * C)))  # classes per chunk of Gram matrices
    chunks = -(-C // cb)
    rows = max(1, min(N, _BLOCK_ELEMS // (C * C)))
    nb = -(-N // rows)
    pad = nb * rows - N
    Pp = jnp.pad(P, ((0, pad), (0, 0))).reshape(nb, rows, C)
    yp = jnp.pad(y, (0, pad), constant_values=chunks * cb).reshape(nb, rows)  # padding: dropped

    def chunk(c0):
        def grams(G, blk):
            p, i = blk
            return G + jax.ops.segment_sum(p[:, :, None] * p[:, None, :], i - c0, cb), None

        G, _ = jax.lax.scan(grams, jnp.zeros((cb, C, C), P.dtype), (Pp, yp))
        _, V = jnp.linalg.eigh(G)  # [cb, C, C]

        def proj(s2, blk):
            p, i = blk
            j = i - c0
            q = jnp.einsum("rij,ri->rj", V[jnp.clip(j, 0, cb - 1)], p)
            return s2 + jax.ops.segment_sum(q * q, j, cb), None

        s2, _ = jax.lax.scan(proj, jnp.zeros((cb, C), P.dtype), (Pp, yp))
        return jnp.sum(jnp.sqrt(s2))

    if chunks == 1:
        return chunk(0)
    return jnp.sum(jax.lax.map(chunk, jnp.arange(chunks) * cb))


def ncti_components_core(X: jax.Array, y: jax.Array, num_classes: int, n_components: int = 64,
                         var_components: int = 32, within_scale: str = "n_minus_c") -> jax.Array:
    """``[S_seli, S_ncc, S_vc]`` of features ``X`` for coded labels ``y`` (pure JAX, no validation;
    the options are static). The terms are defined in the docstring of the module
    ``pedjax.metrics.ncti``; the float64 and float32 paths differ as described there.

    Args:
      X: features [N, D] (float64, or a lower float type for the float32 path).
      y: coded labels [N] (integers 0..num_classes−1).
      num_classes: number of classes C.
      n_components: PCA width (default 64; capped at min(N − 1, D)).
      var_components: how many leading PCA variances set the shrinkage (default 32).
      within_scale: ``"n_minus_c"`` (default, published) or ``"n"`` (scikit-learn ≥ 1.9).

    Returns:
      ``jax.Array`` [3] of the features' dtype: S_seli, S_ncc, S_vc.
    """
    X = jnp.asarray(X)
    N, D = X.shape
    C = num_classes
    k = _dims(N, D, n_components)
    f64 = X.dtype == jnp.float64
    ev, Z = _pca(X, k) if f64 else _pca_f32(X, k)
    s = jnp.maximum(jnp.exp(-jnp.sum(ev[: min(int(var_components), k)])), SHRINKAGE_FLOOR)
    use_svd = s == SHRINKAGE_FLOOR
    counts = jax.ops.segment_sum(jnp.ones(N, Z.dtype), y, C)
    priors = counts / N
    means = jax.ops.segment_sum(Z, y, C) / jnp.maximum(counts, 1.0)[:, None]
    lg_s, low_s = _lda_svd(Z, y, C, means, counts, priors, within_scale)
    lg_e, low_e = (_lda_eigen if f64 else _lda_eigen_f32)(Z, y, C, means, counts, priors, s)
    logits = jnp.where(use_svd, lg_s, lg_e)
    low = jnp.where(use_svd, low_s, low_e)
    P = jax.nn.softmax(logits, axis=1)
    ncc = jnp.mean(jnp.take_along_axis(P, y[:, None], axis=1))
    low = low - jnp.mean(low, axis=0)
    seli = jnp.sum(jnp.linalg.svd(low, compute_uv=False))
    vc = jnp.log(_classwise_nuclear(P, y, C))
    return jnp.stack([seli, ncc, vc])


def ncti_core(X: jax.Array, y: jax.Array, num_classes: int, seli_weight: float = 1.0, ncc_weight: float = 1.0,
              vc_weight: float = 1.0, n_components: int = 64, var_components: int = 32,
              within_scale: str = "n_minus_c") -> jax.Array:
    """``seli_weight·S_seli + ncc_weight·S_ncc − vc_weight·S_vc`` (pure JAX, no validation; the
    unscaled sum — the published score min–max scales each term over the zoo:
    :func:`ncti_combine`). Static: ``n_components``, ``var_components``, ``within_scale``.

    Args:
      X: features [N, D].
      y: coded labels [N] (integers 0..num_classes−1).
      num_classes: number of classes C.
      seli_weight: weight of S_seli (default 1).
      ncc_weight: weight of S_ncc (default 1).
      vc_weight: weight of S_vc (default 1; subtracted).
      n_components: PCA width (default 64; capped at min(N − 1, D)).
      var_components: how many leading PCA variances set the shrinkage (default 32).
      within_scale: ``"n_minus_c"`` (default, published) or ``"n"`` (scikit-learn ≥ 1.9).

    Returns:
      Scalar ``jax.Array`` of the features' dtype.
    """
    seli, ncc, vc = ncti_components_core(X, y, num_classes, n_components, var_components, within_scale)
    return seli_weight * seli + ncc_weight * ncc - vc_weight * vc


_STATIC = ("n_components", "var_components", "within_scale")


def _options(n_components, var_components, within_scale):
    for name, v in (("n_components", n_components), ("var_components", var_components)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    check_choice(within_scale, "within_scale", _WITHIN_SCALES)
    return {"n_components": int(n_components), "var_components": int(var_components), "within_scale": within_scale}


@register("ncti", ncti_core, static=_STATIC, zoo=(ncti_components_core, lambda comps: ncti_combine(comps)),
          citation="Wang, Luo, Zheng, Huang & Baktashmotlagh, ICCV 2023 (NCTI); matches "
                   "github.com/BUserName/NCTI metrics.py NCTI_Score (exact PCA); the published "
                   "zoo-level min-max combination is ncti_combine")
def ncti(X, y, seli_weight: float = 1.0, ncc_weight: float = 1.0, vc_weight: float = 1.0, n_components: int = 64,
         var_components: int = 32, within_scale: str = "n_minus_c") -> float:
    """NCTI of features ``X`` [N, D] for labels ``y`` [N]: ``seli_weight·S_seli + ncc_weight·S_ncc −
    vc_weight·S_vc`` (unscaled; higher is better). The published score normalises each term over
    the zoo: use :func:`ncti_components` and :func:`ncti_combine`, or :func:`ncti_zoo`. Like
    every public metric, it also takes the keyword ``precision=`` (``"auto"``, ``"float64"`` or
    ``"float32"``; docs/precision.md).

    Args:
      X: features [N, D].
      y: [N] integer labels, any values (coded 0..C-1 in sorted order), at least 2 classes.
      seli_weight: weight of S_seli.
      ncc_weight: weight of S_ncc.
      vc_weight: weight of S_vc.
      n_components: PCA width (64 in the reference; capped at min(N − 1, D)).
      var_components: how many leading PCA variances set the shrinkage (32 in the reference).
      within_scale: "n_minus_c" (published: scikit-learn ≤ 1.8's svd solver) or "n" (≥ 1.9).

    Returns:
      The unscaled score as a Python ``float``; ``-inf`` for degenerate (constant) features.

    Raises:
      ValueError: ``n_components`` or ``var_components`` is not a positive integer;
        ``within_scale`` is not one of the two choices; ``X`` or ``y`` are malformed (not
        [N, D] and [N], non-finite features, fewer than 2 classes).
    """
    opts = _options(n_components, var_components, within_scale)
    return evaluate(ncti_core, X, y, static=_STATIC, seli_weight=float(seli_weight), ncc_weight=float(ncc_weight),
                    vc_weight=float(vc_weight), **opts)


def ncti_components(X, y, n_components: int = 64, var_components: int = 32,
                    within_scale: str = "n_minus_c", *, precision: str | None = None) -> tuple[float, float, float]:
    """``(S_seli, S_ncc, S_vc)`` of one model's features, the input of :func:`ncti_combine`.

    Args:
      X: features [N, D].
      y: [N] integer labels, any values (coded 0..C-1 in sorted order), at least 2 classes.
      n_components: PCA width (default 64; capped at min(N − 1, D)).
      var_components: how many leading PCA variances set the shrinkage (default 32).
      within_scale: ``"n_minus_c"`` (default, published) or ``"n"`` (scikit-learn ≥ 1.9).
      precision: ``"auto"``, ``"float64"`` or ``"float32"``; ``None`` (default) uses the
        surrounding :func:`pedjax.precision` block, else ``"auto"`` (docs/precision.md).

    Returns:
      ``(seli, ncc, vc)`` as Python floats; ``(nan, nan, nan)`` for degenerate features
      (:func:`ncti_combine` ranks such a model last).

    Raises:
      ValueError: ``n_components`` or ``var_components`` is not a positive integer;
        ``within_scale`` or ``precision`` is not one of its choices; ``X`` or ``y`` are malformed
        (not [N, D] and [N], non-finite features, fewer than 2 classes).
    """
    from .._precision import resolve, scope

    opts = _options(n_components, var_components, within_scale)
    codes, classes = encode_labels(y, "y")
    with scope(resolve(precision) == "float64"):
        Xv = as_float_matrix(X, "X", n=codes.shape[0])
        if is_degenerate(X):
            return (float("nan"),) * 3
        out = jitted(ncti_components_core, _STATIC)(Xv, codes, num_classes=int(classes.size), **opts)
        seli, ncc, vc = np.asarray(out, dtype=np.float64).tolist()
    return float(seli), float(ncc), float(vc)


def ncti_combine(components: Mapping[str, tuple[float, float, float]]) -> dict[str, float]:
    """The published zoo-level NCTI: each of (S_seli, S_ncc, S_vc) min–max scaled over the models,
    then ``mm(S_ncc) + mm(S_seli) − mm(S_vc)``. A term equal for every model scales to 0 (the
    reference divides 0 by 0); a model with a non-finite component (degenerate features) scores
    ``-inf`` and is left out of the scaling.

    Args:
      components: ``{model name: (S_seli, S_ncc, S_vc)}``, e.g. from :func:`ncti_components`.

    Returns:
      ``{model name: score}`` in the order of ``components`` (higher is better; in [−1, 2] for
      finite components, ``-inf`` for the others).

    Raises:
      ValueError: ``components`` is empty or its values are not triples.
    """
    if len(components) == 0:
        raise ValueError("components: the zoo is empty; pass {name: (seli, ncc, vc)} for at least one model")
    names = list(components)
    arr = np.asarray([components[n] for n in names], dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError("components: expected (seli, ncc, vc) triples, e.g. from ncti_components")
    ok = np.all(np.isfinite(arr), axis=1)
    out = {n: float("-inf") for n, good in zip(names, ok, strict=True) if not good}
    if ok.any():
        live = arr[ok]
        lo, hi = live.min(axis=0), live.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        scaled = (live - lo) / span
        total = scaled[:, 1] + scaled[:, 0] - scaled[:, 2]
        live_names = [n for n, g in zip(names, ok, strict=True) if g]
        out.update({n: float(t) for n, t in zip(live_names, total, strict=True)})
    return {n: out[n] for n in names}


def ncti_zoo(features: Mapping, y, **options) -> dict[str, float]:
    """The published NCTI of a zoo: :func:`ncti_combine` of every model's :func:`ncti_components`.

    Args:
      features: ``{name: X [N, D_m]}``, one feature matrix per model on the same N samples.
      y: [N] integer labels, any values, at least 2 classes.
      **options: passed on to :func:`ncti_components` (``n_components``, ``var_components``,
        ``within_scale``, ``precision``).

    Returns:
      ``{name: score}`` (names as strings, in the order of ``features``; higher is better).

    Raises:
      ValueError: ``features`` is not a non-empty mapping; anything :func:`ncti_components`
        raises for a model's features, the labels or the options.
    """
    if not isinstance(features, Mapping) or len(features) == 0:
        raise ValueError("features: expected a non-empty dict {name: [N, D]}")
    return ncti_combine({str(k): ncti_components(v, y, **options) for k, v in features.items()})
