"""SFDA (Shao et al., ECCV 2022): Self-challenging Fisher Discriminant Analysis, as released in
the SFDA/PED repositories' ``metrics.py``.

Two passes of a shrinkage Fisher discriminant with ConfMix between them:

1. ``Sw = Σ_c prior_c · Cov_c`` (biased), shrinkage ``s = max(exp(-5 λ_max(Sw)), 1e-10)`` with
   λ_max from the reference's 3-iteration power method (pass 1 only; pass 2 reuses ``s``),
   ``Sw_s = (1 - s) Sw + s · tr(Sw)/D · I``;
2. the reference projects on the generalized eigenvectors V of (Sb, Sw_s) and predicts with
   ``coef = means · V · Vᵀ``. V is normalised so that ``Vᵀ Sw_s V = I`` and is square, so
   ``V Vᵀ = Sw_s⁻¹``: the posterior is shrinkage LDA, computed here with one Cholesky solve
   (the between-class scatter never matters);
3. ``p = softmax(softmax(logits))`` (the reference "softens" once more), ConfMix
   ``x ← p_y x + (1 − p_y) m̄_y`` with m̄_y the mean of the other classes' means, pass 2 on the
   mixed features, score = mean posterior of the true class.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_factor, cho_solve

from .._linalg import gram
from ._registry import evaluate, register


def class_means(X: jax.Array, y: jax.Array, num_classes: int):
    """Per-class means [C, D] and counts [C] (empty classes get a zero mean)."""
    counts = jax.ops.segment_sum(jnp.ones(X.shape[0], X.dtype), y, num_classes)
    sums = jax.ops.segment_sum(X, y, num_classes)
    return sums / jnp.maximum(counts, 1.0)[:, None], counts


def power_top_eigenvalue(A: jax.Array, iters: int = 3) -> jax.Array:
    """The reference's ``iterative_A``: start from the row sums, ``iters`` double steps, return xᵀAy."""
    x = jnp.sum(A, axis=1)

    def body(_, xy):
        x, _ = xy
        t = A @ x
        yv = t / jnp.linalg.norm(t)
        t = A @ yv
        return t / jnp.linalg.norm(t), yv

    x, yv = jax.lax.fori_loop(0, iters, body, (x, x))
    return x @ (A @ yv)


def within_scatter(X: jax.Array, y: jax.Array, means: jax.Array) -> jax.Array:
    """Σ_c prior_c · Cov_c (ddof 0) = (1/N) Σ_i (x_i − m_{y_i})(x_i − m_{y_i})ᵀ."""
    return gram(X - means[y]) / X.shape[0]


def shrinkage_for(Sw: jax.Array) -> jax.Array:
    return jnp.maximum(jnp.exp(-5.0 * power_top_eigenvalue(Sw, 3)), 1e-10)


def shrunk(Sw: jax.Array, s: jax.Array) -> jax.Array:
    D = Sw.shape[0]
    mu = jnp.trace(Sw) / D
    return (1.0 - s) * Sw + (s * mu) * jnp.eye(D, dtype=Sw.dtype)


def lda_posterior(X, y, num_classes, s=None):
    """One SFDA pass: returns (posterior [N, C], shrinkage used)."""
    means, counts = class_means(X, y, num_classes)
    priors = counts / X.shape[0]
    Sw = within_scatter(X, y, means)
    if s is None:
        s = shrinkage_for(Sw)
    coef = cho_solve(cho_factor(shrunk(Sw, s), lower=True), means.T).T  # means · Sw_s⁻¹
    intercept = -0.5 * jnp.sum(means * coef, axis=1) + jnp.log(priors)
    return jax.nn.softmax(X @ coef.T + intercept, axis=1), s


def confmix(X, y, num_classes, prob):
    """x ← p·x + (1 − p)·m̄_y with p the (softened) posterior of the true class."""
    means, _ = class_means(X, y, num_classes)
    outer = (jnp.sum(means, axis=0)[None, :] - means) / (num_classes - 1)
    p = jnp.take_along_axis(prob, y[:, None], axis=1)
    return p * X + (1.0 - p) * outer[y]


def sfda_core(X: jax.Array, y: jax.Array, num_classes: int) -> jax.Array:
    X = jnp.asarray(X)
    prob, s = lda_posterior(X, y, num_classes)
    prob = jax.nn.softmax(prob, axis=1)
    X2 = confmix(X, y, num_classes, prob)
    prob2, _ = lda_posterior(X2, y, num_classes, s)
    return jnp.mean(jnp.take_along_axis(prob2, y[:, None], axis=1))


@register("sfda", sfda_core)
def sfda(X, y) -> float:
    """SFDA transferability of features ``X`` [N, D] for labels ``y`` [N] (higher is better).

    Equals the published SFDA to float64 precision; unlike it, never modifies ``X`` in place.
    """
    return evaluate(sfda_core, X, y)
