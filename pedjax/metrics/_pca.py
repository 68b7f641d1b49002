"""Exact PCA for the metrics that reduce features first (NLEEP, PARC).

scikit-learn's ``PCA`` centres the data, takes a full SVD and fixes signs with
``svd_flip(u_based_decision=False)`` (each component's largest-magnitude loading is positive).
Here the same subspace comes from one symmetric eigendecomposition of the centred Gram matrix in
the smaller of the two dimensions (``Xc Xcᵀ`` [N, N] when N ≤ D, else ``Xcᵀ Xc`` [D, D]); the
Gram product goes through :func:`pedjax._linalg.gram` (host BLAS for large float64 inputs).

* explained variances are ``λ / (N − 1)`` in descending order, as scikit-learn's;
* :func:`n_components_for_ratio` is scikit-learn's float ``n_components`` rule:
  ``searchsorted(cumsum(ratio), r, side="right") + 1`` — the smallest k whose cumulative
  explained-variance ratio is *strictly* above ``r``;
* scores are ``Xc · V`` (or ``U · s`` when N ≤ D), with scikit-learn's signs when asked.

Everything is pure JAX with static shapes (``n_components`` static), so it jit-compiles and
vmaps over a model axis.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._linalg import gram

__all__ = ["pca_spectrum", "pca_scores", "sklearn_signs_for", "n_components_for_ratio", "n_components_for_ratio_jax"]


def _eig_desc(G: jax.Array):
    lam, V = jnp.linalg.eigh(G)
    return jnp.maximum(lam[::-1], 0.0), V[:, ::-1]


def pca_spectrum(X: jax.Array, n_components: int | None = None, *, sklearn_signs: bool = False):
    """Exact PCA of ``X`` [N, D].

    Returns ``(explained_variance [r], scores [N, k])`` with ``r = min(N, D)`` (all eigenvalues,
    descending, ``λ/(N−1)``) and ``k = n_components or r`` leading component scores. With
    ``sklearn_signs`` the scores carry scikit-learn's sign convention (needed only where
    coordinates matter: PARC's row correlations, user-supplied initial GMM means).
    """
    X = jnp.asarray(X)
    N, D = X.shape
    r = min(N, D)
    k = r if n_components is None else int(n_components)
    if not 1 <= k <= r:
        raise ValueError(f"n_components: must be in [1, {r}], got {k}")
    Xc = X - jnp.mean(X, axis=0)
    if N <= D:
        lam, U = _eig_desc(gram(Xc.T))  # Xc Xcᵀ = U Λ Uᵀ
        scores = U[:, :k] * jnp.sqrt(lam[:k])
    else:
        lam, V = _eig_desc(gram(Xc))
        scores = Xc @ V[:, :k]
    if sklearn_signs:
        scores = scores * sklearn_signs_for(Xc, scores)
    return lam / max(N - 1, 1), scores


def sklearn_signs_for(Xc: jax.Array, scores: jax.Array) -> jax.Array:
    """Signs [k] that give ``scores`` scikit-learn's ``svd_flip(u_based_decision=False)``
    convention: each component's largest-magnitude loading positive. The loadings are
    proportional (positive factor 1/λ) to ``Xcᵀ · scores``; a zero column keeps sign +1."""
    V = Xc.T @ scores
    idx = jnp.argmax(jnp.abs(V), axis=0)
    s = jnp.sign(jnp.take_along_axis(V, idx[None, :], axis=0)[0])
    return jnp.where(s == 0, 1.0, s).astype(scores.dtype)


def pca_scores(X: jax.Array, n_components: int, *, sklearn_signs: bool = True) -> jax.Array:
    """``PCA(n_components).fit_transform(X)`` (exact solver) as [N, n_components]."""
    return pca_spectrum(X, n_components, sklearn_signs=sklearn_signs)[1]


def n_components_for_ratio(explained_variance, ratio: float) -> int:
    """scikit-learn's rule for ``PCA(n_components=ratio)``, 0 < ratio < 1 (host side)."""
    ev = np.asarray(explained_variance, dtype=np.float64)
    total = ev.sum()
    if not total > 0:
        return 1
    cum = np.cumsum(ev / total)
    return min(int(np.searchsorted(cum, ratio, side="right")) + 1, int(ev.size))


def n_components_for_ratio_jax(explained_variance: jax.Array, ratio: float) -> jax.Array:
    """The same rule inside compiled code (a traced int32 scalar)."""
    ev = explained_variance
    total = jnp.sum(ev)
    cum = jnp.cumsum(ev / jnp.where(total > 0, total, 1.0))
    k = jnp.searchsorted(cum, jnp.asarray(ratio, ev.dtype), side="right") + 1
    return jnp.clip(k, 1, ev.shape[0]).astype(jnp.int32)
