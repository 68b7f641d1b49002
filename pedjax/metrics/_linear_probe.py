"""Linear-probe accuracy: the cross-validated accuracy of an L2-penalised multinomial logistic
regression on the standardised target features — the other empirical baseline of the
transferability benchmarks (the "linear evaluation" of Kornblith et al., CVPR 2019, "Do Better
ImageNet Models Transfer Better?"; scikit-learn's ``LogisticRegression`` as the reference).

Definition:

* **Folds**: the stratified, seeded, order-free folds of :func:`pedjax.metrics._knn.stratified_folds`
  (K = 5 by default; ``fold_ids=`` for an explicit assignment).
* **Standardisation**: every feature is centred and divided by its standard deviation (ddof 0)
  over all N target samples; a feature scikit-learn's ``StandardScaler`` would call constant
  (variance ≤ N·eps·var + (N·mean·eps)², eps of the dtype) is only centred. The statistics use no
  labels, so computing them once on the whole target set (the inputs every metric sees) leaks
  nothing about the held-out labels; per-fold scalers would cost one eigendecomposition per fold.
* **With PED**: PED moves every sample by its own class's ball, held-out folds included, so the
  "+ PED" accuracy scores the moved features and is no held-out estimate (as ``knn+ped``).
* **Model**, per fold, on the n training samples of the standardised features x_i:
  multinomial (softmax) logistic regression with weights W [D, C] and intercepts b [C],

      minimise  (1/n) Σ_i −log softmax(Wᵀx_i + b)_{y_i}  +  1/(2·C_reg·n) · ‖W‖²_F,

  scikit-learn's objective for ``LogisticRegression(C=C_reg)`` (L2 penalty, intercept not
  penalised) with the multinomial loss, default ``C_reg = 1`` (scikit-learn's default). The
  objective is strictly convex in W and in the intercepts up to the common shift that softmax
  ignores; like scikit-learn, pedjax reports the symmetric solution (intercepts summing to zero,
  which the iterations preserve from b = 0). For **two classes** this is still the softmax model:
  its decision function w₂ − w₁ equals scikit-learn's binary (sigmoid) ``LogisticRegression`` with
  ``C = 2·C_reg`` (the penalty of the symmetric pair ±w/2 is ‖w‖²/4), which is what the tests check.
* **Classes absent from a training fold** (a class with fewer members than folds, e.g. a
  singleton): the fold's model covers the classes it has samples of, as scikit-learn's
  (``classes_`` are the training labels); without this the absent class's intercept would
  run to −∞ and the optimum would not exist. Its held-out members count as errors.
* **Score**: the mean over folds of the held-out accuracy (``score="accuracy"``, default; ties in
  the logits go to the smallest label, as scikit-learn's ``argmax``) or of the held-out mean
  log-likelihood log p(y_i | x_i) (``score="log_likelihood"``; scikit-learn's ``neg_log_loss``
  scorer, with log-probabilities floored at log 1e−15 instead of the dtype's eps so that float32
  and float64 agree): continuous, so it separates models whose accuracies tie. The accuracy is one
  rounding of the exact fraction (:func:`pedjax.metrics._knn.fold_accuracy`), so that equal
  accuracies are equal floats in float32 and float64.
* **float32**: the folds come from :func:`pedjax.metrics._knn.canonical_order`, whose float32 keys
  are exact sums, so float32 and float64 features get the same folds (see
  :mod:`pedjax.metrics._knn`). And the solver runs to the same tolerance in both precisions
  (below).

**Solver** (exact to a tolerance, deterministic, jit/vmap-able). One symmetric eigendecomposition
of the standardised features' Gram (XᵀX, or XXᵀ when N ≤ D, like LogME) gives an orthonormal
basis V of the row space, singular values σ and the rotated features Z = XV; every training set's
rows lie in that space, and the penalty makes the optimal W lie in it too, so W = V·A with A
[min(N, D), C] — the exact problem in at most N dimensions (D ≫ N costs nothing extra). The
variables are preconditioned as A = P·B with P_k = (σ_k²/N + μ̄)^(−½), μ̄ = 1/(C_reg·n̄) and
n̄ = N(K−1)/K the mean training size: the Hessian of the penalised loss in B is then close to the
identity on the directions the data excite while the probabilities are not saturated (near a
confident optimum the softmax curvature shrinks, and L-BFGS does the rest). P is the same for
every fold, so under ``vmap`` over folds each product reads the preconditioned features once for
all K folds (one [N, r] × [r, K·C] product instead of K).

L-BFGS: memory 10; backtracking from the unit step until Armijo's sufficient decrease holds or,
once objective values agree to rounding, Hager & Zhang's approximate Wolfe condition on the
directional derivative (a pure Armijo search stalls at a gradient of about √eps, where f can no
longer resolve progress); the objective is strictly convex, so every curvature pair has sᵀy > 0.
It stops when the largest entry of the gradient in B is ≤ ``tol`` (default 1e-8: coefficients
to about 1e-6 relative; never below 0.05·eps of the dtype), when no step is acceptable (the
rounding floor), or after ``max_iter`` iterations (default 1000). All folds are solved at once
under ``vmap``. The tolerance's floor 0.05·eps lets float32 reach the default 1e-8 (float32's
rounding of the gradient is ~eps times its terms): on D ≫ N features (nearly separable training
folds) the penalty alone fixes the solution and the penalised Hessian's smallest eigenvalue is
small, so a looser float32 tolerance would leave large coefficient errors; float64 (default
``tol`` 1e-8 ≫ eps) is unaffected. The start θ = 0 is evaluated in closed form (f = log C; the
gradient of the centred class indicators). Besides saving a product, this avoids a
miscompilation of jaxlib 0.10.2's XLA:CPU: a "YNN" fusion of broadcast → dot → reduce (here: the
features times the zero matrix, then log-softmax) returns garbage (±1e155, NaN) in some
compilations; ``XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=`` disables those fusions.

Cost: one eigendecomposition of the smaller Gram matrix, then the L-BFGS iterations of all folds
together, each one [N, r] × [r, K·C] product and its transpose (timings and the float32
tolerance measurements: docs/precision.md, "kNN accuracy and linear probe"). The fitted
coefficients of one training set are available from :func:`linear_probe_fit`.

Differences from scikit-learn, on purpose: the standardisation over all target samples (above);
the convergence test (scikit-learn's L-BFGS-B stops at ``tol`` on the gradient or at a relative
objective change below 64·eps, which leaves its coefficients ~1e-7 relative from the optimum;
ours is the preconditioned gradient); the folds (see :mod:`pedjax.metrics._knn`). Degenerate
features score ``-inf`` (:mod:`pedjax.metrics._registry`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._linalg import gram
from .._validate import as_float_matrix, check_choice, encode_labels
from ._knn import canonical_folds, canonical_order, check_folds, dot, fold_accuracy, fold_mean
from ._registry import evaluate, register

__all__ = ["linear_probe", "linear_probe_core", "linear_probe_fit", "standardise", "spectral_features", "preconditioner",
           "lbfgs"]

SCORES = ("accuracy", "log_likelihood")
DEFAULT_C = 1.0
DEFAULT_TOL = 1e-8
#: held-out log-probabilities are floored here (scikit-learn's former ``log_loss`` clipping at
#: 1e-15): a sample whose class is absent from its training fold costs 34.5 nats, not infinity
LOG_PROB_FLOOR = float(np.log(1e-15))
DEFAULT_MAX_ITER = 1000
#: L-BFGS memory, Armijo constant, backtracking halvings
_MEMORY = 10
_ARMIJO = 1e-4
_MAX_HALVINGS = 40
#: Hager–Zhang's δ of the approximate Wolfe test; objective values within this many eps (relative
#: to the start) count as equal to rounding
_HZ_DELTA = 0.1
_F_ROUNDING = 1e3
#: the gradient tolerance is never below this many eps of the dtype (float32: 6e-9, so the default
#: 1e-8 applies in both precisions; module docstring, "float32")
_TOL_EPS = 0.05

_CITATION = ("Kornblith, Shlens & Le, CVPR 2019 (linear evaluation); scikit-learn LogisticRegression "
             "(multinomial, L2, C=1) on StandardScaler features, exact optimum; folds as pedjax knn")


def _float(X):
    return jnp.asarray(X, dtype=jnp.result_type(float))


def _mm(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a @ b`` at the highest precision (no TF32 / bfloat16 passes on accelerators); plain XLA,
    so differentiable (the objective's products)."""
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def _gram(X: jax.Array) -> jax.Array:
    """``XᵀX``: :func:`pedjax._linalg.gram` (host BLAS for large float64 on the CPU) in float64,
    the highest XLA precision otherwise."""
    return gram(X) if X.dtype == jnp.float64 else _mm(X.T, X)


def standardise(X: jax.Array) -> jax.Array:
    """``(X − mean) / std`` per feature (ddof 0, two-pass mean); features scikit-learn's
    ``StandardScaler`` calls constant keep scale 1 (are only centred).

    Args:
      X: features [N, D] (converted to the default float type).

    Returns:
      The standardised features [N, D] (``jax.Array``).
    """
    X = _float(X)
    N = X.shape[0]
    eps = jnp.finfo(X.dtype).eps
    mean = jnp.mean(X, axis=0)
    Xc = X - mean
    Xc = Xc - jnp.mean(Xc, axis=0)
    var = jnp.mean(Xc * Xc, axis=0)
    const = var <= N * eps * var + (N * mean * eps) ** 2
    return Xc / jnp.where(const, 1.0, jnp.sqrt(jnp.where(const, 1.0, var)))


def spectral_features(Xs: jax.Array):
    """``(Z [N, r], σ² [r], basis)`` with r = min(N, D): the standardised features in an
    orthonormal basis of their row space (``Z = Xs·V``), the squared singular values, and what
    maps coefficients back to feature space (V [D, D] when N > D; U [N, N] when N ≤ D, where
    V = Xsᵀ·U·diag(1/σ) on the directions with σ > 0).

    Args:
      Xs: standardised features [N, D] (:func:`standardise`).

    Returns:
      ``(Z, sig2, basis)``: ``Z`` [N, r], ``sig2`` [r] (eigenvalues of the smaller Gram matrix
      clamped at 0, ascending) and ``basis`` (V [D, D] when N > D, else U [N, N]).
    """
    N, D = Xs.shape
    if N > D:
        lam, V = jnp.linalg.eigh(_gram(Xs))
        return dot(Xs, V), jnp.maximum(lam, 0.0), V
    lam, U = jnp.linalg.eigh(_gram(Xs.T))
    sig2 = jnp.maximum(lam, 0.0)
    return U * jnp.sqrt(sig2)[None, :], sig2, U


# --------------------------------------------------------------------------- L-BFGS


def _vdot(a: jax.Array, b: jax.Array) -> jax.Array:
    """Inner product of two vectors as an exact elementwise product and sum (a dot op may run at
    reduced precision on accelerators)."""
    return jnp.sum(a * b)


def lbfgs(fun, x0: jax.Array, max_iter: int, tol, memory: int | None = None, start=None):
    """Minimise a smooth strictly convex ``fun`` (flat parameters) from ``x0`` with L-BFGS.

    Backtracking from the unit step (halving, at most 40 times) until Armijo's sufficient
    decrease holds, or, where objective values agree to rounding, Hager–Zhang's approximate
    Wolfe condition ∇f(x + td)ᵀd ≤ −(1 − 2δ)·∇f(x)ᵀd. Stops when
    ``max|∇f| ≤ tol``, when no step decreases ``f`` (rounding floor), or after ``max_iter``
    iterations. Pure JAX; vmap-able.

    Args:
      fun: the objective, a scalar function of a flat parameter vector (differentiable by JAX).
      x0: starting point, flat [P].
      max_iter: iteration limit (0: return the start).
      tol: gradient tolerance on ``max|∇f|`` (may be traced).
      memory: number of stored curvature pairs (default 10).
      start: optional ``(f(x0), ∇f(x0))`` when known in closed form (saves one evaluation).

    Returns:
      ``(x, f, max|∇f|, iterations)``: the final point [P], its objective value, its largest
      gradient entry and the number of iterations run (int32), all ``jax.Array``.
    """
    memory = _MEMORY if memory is None else int(memory)
    vg = jax.value_and_grad(fun)
    f0, g0 = vg(x0) if start is None else start
    f_tol = _F_ROUNDING * jnp.finfo(x0.dtype).eps * jnp.maximum(jnp.abs(f0), 1.0)
    P = x0.shape[0]
    dt = x0.dtype

    def direction(g, S, Y, rho, k):
        n = jnp.minimum(k, memory)

        def first(i, carry):  # newest to oldest
            q, a = carry
            j = (k - 1 - i) % memory
            ok = i < n
            aj = jnp.where(ok, rho[j] * _vdot(S[j], q), 0.0)
            return q - aj * Y[j], a.at[j].set(aj)

        q, a = jax.lax.fori_loop(0, memory, first, (g, jnp.zeros((memory,), dt)))
        last = (k - 1) % memory
        yy = _vdot(Y[last], Y[last])
        gamma = jnp.where(k > 0, _vdot(S[last], Y[last]) / jnp.where(yy > 0, yy, 1.0), 1.0)
        r = gamma * q

        def second(i, r):  # oldest to newest
            j = (k - n + i) % memory
            ok = i < n
            bj = rho[j] * _vdot(Y[j], r)
            return jnp.where(ok, r + S[j] * (a[j] - bj), r)

        return -jax.lax.fori_loop(0, memory, second, r)

    def cond(s):
        return ~s["done"]

    def body(s):
        x, f, g = s["x"], s["f"], s["g"]
        d = direction(g, s["S"], s["Y"], s["rho"], s["k"])
        slope = _vdot(g, d)
        bad = ~(slope < 0)  # not a descent direction: only from rounding; fall back to −g
        d = jnp.where(bad, -g, d)
        slope = jnp.where(bad, -_vdot(g, g), slope)

        def accept(t, fn, gn):
            # Armijo on the objective; or, once objective values agree to rounding (f_tol), the
            # approximate Wolfe test of Hager & Zhang (2005) on the directional derivative, which
            # for a quadratic is sufficient decrease and stays informative below the rounding
            # level of f (a pure Armijo search stalls there at |∇f| ~ √eps)
            armijo = fn <= f + _ARMIJO * t * slope
            approx = (fn <= f + f_tol) & (_vdot(gn, d) <= (1.0 - 2.0 * _HZ_DELTA) * -slope)
            return (armijo | approx) & jnp.isfinite(fn)

        def ls_cond(c):
            t, fn, gn, h = c
            return ~accept(t, fn, gn) & (h < _MAX_HALVINGS)  # h: halvings after the unit step

        def ls_body(c):
            t, _, _, h = c
            t = 0.5 * t
            fn, gn = vg(x + t * d)
            return t, fn, gn, h + 1

        # from t = 2 with a rejected placeholder: the first pass evaluates the unit step (one copy
        # of the objective in the program, not two)
        t, fn, gn, h = jax.lax.while_loop(ls_cond, ls_body, (jnp.asarray(2.0, dt), jnp.asarray(jnp.inf, dt),
                                                            jnp.zeros_like(g), -1))
        ok = accept(t, fn, gn)
        step = t * d
        yv = gn - g
        sy = _vdot(step, yv)
        store = ok & (sy > 0)
        slot = s["k"] % memory
        S = jnp.where(store, s["S"].at[slot].set(step), s["S"])
        Y = jnp.where(store, s["Y"].at[slot].set(yv), s["Y"])
        rho = jnp.where(store, s["rho"].at[slot].set(1.0 / jnp.where(sy > 0, sy, 1.0)), s["rho"])
        k = s["k"] + store.astype(jnp.int32)
        x = jnp.where(ok, x + step, x)
        f = jnp.where(ok, fn, f)
        g = jnp.where(ok, gn, g)
        it = s["it"] + 1
        gmax = jnp.max(jnp.abs(g))
        done = (gmax <= tol) | ~ok | (it >= max_iter)
        return dict(x=x, f=f, g=g, S=S, Y=Y, rho=rho, k=k, it=it, done=done)

    s0 = dict(x=x0, f=f0, g=g0, S=jnp.zeros((memory, P), dt), Y=jnp.zeros((memory, P), dt),
              rho=jnp.zeros((memory,), dt), k=jnp.asarray(0, jnp.int32), it=jnp.asarray(0, jnp.int32),
              done=(jnp.max(jnp.abs(g0)) <= tol) | (max_iter <= 0))
    s = jax.lax.while_loop(cond, body, s0)
    return s["x"], s["f"], jnp.max(jnp.abs(s["g"])), s["it"]


# --------------------------------------------------------------------------- the probe


def preconditioner(sig2: jax.Array, N: int, C, n_train) -> jax.Array:
    """P_k = (σ_k²/N + μ)^(−½) with μ = 1/(C·n_train): the coordinate scaling of
    :func:`_fit_fold` (any positive scaling gives the same optimum; this one makes the penalised
    Hessian close to the identity on the directions the data excite).

    Args:
      sig2: squared singular values σ² [r] of the standardised features.
      N: number of samples.
      C: inverse penalty strength (scikit-learn's ``C``).
      n_train: number of training samples (may be fractional: the mean over folds).

    Returns:
      The scaling P [r] (``jax.Array``).
    """
    return jax.lax.rsqrt(sig2 / N + 1.0 / (C * n_train))


def _fit_fold(Zp, Pk, y, train, num_classes, C, max_iter, tol):
    """Coefficients for one training mask from the preconditioned features ``Zp = Z·diag(Pk)``:
    ``(A [r, C], b [C], iterations, max|∇|)`` with logits ``Z·A + b``. ``Zp`` and ``Pk`` do not
    depend on the fold (vmapped over folds, the products then read ``Zp`` once for all folds)."""
    N, r = Zp.shape
    dt = Zp.dtype
    w = train.astype(dt)
    n = jnp.sum(w)
    mu = 1.0 / (C * n)
    Y = jax.nn.one_hot(y, num_classes, dtype=dt)
    present = (w @ Y) > 0  # classes with a training sample; the others are not modelled
    n_present = jnp.sum(present)

    def unpack(theta):
        return theta[: r * num_classes].reshape(r, num_classes), theta[r * num_classes:]

    def fun(theta):
        B, b = unpack(theta)
        logits = jnp.where(present[None, :], _mm(Zp, B) + b[None, :], -jnp.inf)
        nll = -jnp.sum(jnp.where(Y > 0, jax.nn.log_softmax(logits, axis=1), 0.0), axis=1)
        return jnp.sum(jnp.where(w > 0, nll, 0.0)) / n + 0.5 * mu * jnp.sum((Pk[:, None] * B) ** 2)

    # the start θ = 0 in closed form: every modelled logit 0, p = 1/C', so f = log C' and the
    # gradient is that of the centred class indicators (module docstring: this also keeps
    # XLA:CPU from ever multiplying by a broadcast zero matrix)
    R = w[:, None] * (present[None, :] / n_present - Y) / n  # [N, C] = ∂f/∂logits at θ = 0
    g0 = jnp.concatenate([_mm(Zp.T, R).reshape(-1), jnp.sum(R, axis=0)])
    f0 = jnp.log(n_present.astype(dt))
    eps = jnp.finfo(dt).eps
    theta, _, gmax, it = lbfgs(fun, jnp.zeros((r * num_classes + num_classes,), dt), max_iter,
                               jnp.maximum(tol, _TOL_EPS * eps), start=(f0, g0))
    B, b = unpack(theta)
    b = jnp.where(present, b - jnp.sum(jnp.where(present, b, 0.0)) / n_present, 0.0)
    return Pk[:, None] * B, b, present, it, gmax


def _prepare(X, y, num_classes, folds, seed, fold_ids):
    X = _float(X)
    if fold_ids is None:
        order, fold = canonical_folds(X, y, num_classes, folds, seed)
    else:
        order = canonical_order(X)
        fold = jnp.asarray(fold_ids, jnp.int32)[order]
    return X[order], y[order].astype(jnp.int32), fold


def linear_probe_core(X: jax.Array, y: jax.Array, num_classes: int, C=DEFAULT_C, folds: int = 5, seed=0,
                      score: str = "accuracy", max_iter: int = DEFAULT_MAX_ITER, tol=DEFAULT_TOL,
                      fold_ids=None) -> jax.Array:
    """Cross-validated linear-probe score of features ``X`` for coded labels ``y`` (pure JAX, no
    validation; the definition is in the module docstring of :func:`linear_probe`).

    Static: ``folds``, ``score``, ``max_iter``; ``C``, ``seed`` and ``tol`` may be traced.

    Args:
      X: features [N, D].
      y: coded labels [N] (integers 0..num_classes−1).
      num_classes: number of classes C.
      C: inverse L2 penalty strength (scikit-learn's ``C``; default 1.0).
      folds: number of folds K (default 5), 2 ≤ K ≤ N.
      seed: integer seed of the fold draw (default 0).
      score: ``"accuracy"`` (default) or ``"log_likelihood"``.
      max_iter: L-BFGS iteration limit per fold (default 1000).
      tol: L-BFGS tolerance on the largest preconditioned gradient entry (default 1e-8; never
        below 0.05·eps of the dtype).
      fold_ids: optional int array [N] with values 0..folds−1, in the given sample order; replaces
        the seeded stratified draw.

    Returns:
      Scalar ``jax.Array`` of the features' dtype: the mean held-out accuracy in [0, 1] or the
      mean held-out log-likelihood (≤ 0).
    """
    Xo, yo, fold = _prepare(X, y, num_classes, folds, seed, fold_ids)
    Z, sig2, _ = spectral_features(standardise(Xo))
    N = Z.shape[0]
    Pk = preconditioner(sig2, N, C, N * (folds - 1) / folds)  # one for all folds
    Zp = Z * Pk[None, :]

    def one(f):
        A, b, present, _, _ = _fit_fold(Zp, Pk, yo, fold != f, num_classes, C, max_iter, tol)
        return jnp.where(present[None, :], dot(Z, A) + b[None, :], -jnp.inf)  # [N, C]

    logits = jax.vmap(one)(jnp.arange(folds))  # [K, N, C]
    own = jnp.take_along_axis(logits, fold[None, :, None], axis=0)[0]  # held-out logits [N, C]
    if score == "log_likelihood":
        ll = jnp.take_along_axis(jax.nn.log_softmax(own, axis=1), yo[:, None], axis=1)[:, 0]
        return fold_mean(jnp.maximum(ll, LOG_PROB_FLOOR), fold, folds)
    return fold_accuracy(jnp.argmax(own, axis=1) == yo, fold, folds, Z.dtype)


def _fit_coefficients(X, y, train, num_classes, C, max_iter, tol):
    Xs = standardise(X)
    Z, sig2, basis = spectral_features(Xs)
    Pk = preconditioner(sig2, Z.shape[0], C, jnp.sum(train))
    A, b, _, it, gmax = _fit_fold(Z * Pk[None, :], Pk, y, train, num_classes, C, max_iter, tol)
    N, D = Xs.shape
    if N > D:
        W = _mm(basis, A)
    else:
        sig = jnp.sqrt(sig2)
        keep = sig2 > sig2.shape[0] * jnp.finfo(Xs.dtype).eps * jnp.max(sig2)
        W = _mm(Xs.T, _mm(basis, jnp.where(keep[:, None], A / jnp.where(keep, sig, 1.0)[:, None], 0.0)))
    return W.T, b, it, gmax


_jit_fit = jax.jit(_fit_coefficients, static_argnames=("num_classes", "max_iter"))


def linear_probe_fit(X, y, train=None, C: float = DEFAULT_C, max_iter: int = DEFAULT_MAX_ITER, tol: float = DEFAULT_TOL):
    """The probe fitted on the samples ``train`` (boolean [N]; all by default), in the
    standardised feature space of all N samples: ``(coef [C, D], intercept [C], iterations,
    max|∇|)`` — scikit-learn's ``coef_`` / ``intercept_`` of
    ``LogisticRegression(C).fit(StandardScaler().fit_transform(X)[train], y[train])`` for C ≥ 3
    classes (symmetric intercepts). Runs in the precision of the surrounding
    :func:`pedjax.precision` block (``"auto"`` outside one).

    Args:
      X: features [N, D].
      y: labels [N], any integer values (coded 0..C−1 in sorted order), at least 2 classes.
      train: boolean mask [N] of the training samples; ``None`` (default) uses all.
      C: inverse L2 penalty strength (scikit-learn's ``C``; default 1.0).
      max_iter: L-BFGS iteration limit (default 1000).
      tol: L-BFGS tolerance on the largest preconditioned gradient entry (default 1e-8).

    Returns:
      ``(coef, intercept, iterations, grad_max)``: NumPy arrays [C, D] and [C] (rows in the
      sorted label order; classes without a training sample get zero intercept), the number of
      L-BFGS iterations (int) and the final largest gradient entry (float).

    Raises:
      ValueError: ``train`` is not of shape [N]; ``X`` or ``y`` are malformed (not [N, D] and
        [N], non-finite features, fewer than 2 classes).
    """
    from .._precision import scope

    with scope():
        codes, classes = encode_labels(y, "y")
        Xv = as_float_matrix(X, "X", n=codes.shape[0])
        t = np.ones(codes.shape[0], bool) if train is None else np.asarray(train, bool)
        if t.shape != codes.shape:
            raise ValueError(f"train: expected a boolean mask of shape {codes.shape}, got {t.shape}")
        W, b, it, gmax = _jit_fit(Xv, codes, t, int(classes.size), float(C), int(max_iter), float(tol))
        return np.asarray(W), np.asarray(b), int(it), float(gmax)


_STATIC = ("folds", "score", "max_iter")


@register("linear_probe", linear_probe_core, static=_STATIC, citation=_CITATION)
def linear_probe(X, y, C: float = DEFAULT_C, folds: int = 5, seed: int = 0, score: str = "accuracy",
                 max_iter: int = DEFAULT_MAX_ITER, tol: float = DEFAULT_TOL, fold_ids=None) -> float:
    """Cross-validated linear-probe score of features ``X`` for labels ``y`` (higher is better).

    Definition: on the features standardised over all N samples, an L2-penalised multinomial
    logistic regression (scikit-learn's ``LogisticRegression(C=C)`` objective, fitted to a
    tolerance) is trained on each fold's training samples; the score is the mean over the folds
    (the stratified, order-free draw of :func:`pedjax.metrics.knn`) of the held-out accuracy or
    log-likelihood.
    The full definition and solver are in the docstring of the module
    ``pedjax.metrics._linear_probe``. Like every public metric, it also takes the keyword
    ``precision=`` (``"auto"``, ``"float64"`` or ``"float32"``; docs/precision.md).

    Args:
      X: features [N, D] (any real array; the features of one model on the target set).
      y: labels [N], any integer values (coded 0..C−1 in sorted order).
      C: inverse L2 penalty strength, scikit-learn's ``C`` (default 1.0), on standardised features.
      folds: stratified folds K (2 ≤ K ≤ N; default 5), as in :func:`pedjax.metrics.knn`.
      seed: integer seed of the fold draw (default 0), as in :func:`pedjax.metrics.knn`.
      score: ``"accuracy"`` (mean held-out accuracy) or ``"log_likelihood"`` (mean held-out
        log p(y|x), log-probabilities floored at log 1e−15: continuous, ranks models whose
        accuracies tie).
      max_iter: L-BFGS iteration limit per fold (default 1000).
      tol: L-BFGS tolerance on the largest preconditioned gradient entry (default 1e-8).
      fold_ids: optional explicit fold of every sample [N] (any integers); replaces ``folds``
        and ``seed``.

    Returns:
      The score as a Python ``float``; ``-inf`` for degenerate (constant) features.

    Raises:
      ValueError: ``score`` is not one of the two choices; ``C`` is not positive and finite;
        ``max_iter`` is not a positive integer; ``tol`` is negative or not finite; ``folds``,
        ``seed`` or ``fold_ids`` are invalid (:func:`pedjax.metrics._knn.check_folds`); ``X`` or
        ``y`` are malformed (not [N, D] and [N], non-finite features, fewer than 2 classes).
    """
    codes, _ = encode_labels(y, "y")
    n = codes.shape[0]
    check_choice(score, "score", SCORES)
    C = float(C)
    if not (np.isfinite(C) and C > 0):
        raise ValueError(f"C: expected a positive finite inverse penalty, got {C!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter: expected a positive integer, got {max_iter!r}")
    tol = float(tol)
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol: expected a non-negative tolerance, got {tol!r}")
    folds, seed, fold_ids = check_folds(folds, seed, fold_ids, n)
    return evaluate(linear_probe_core, X, y, static=_STATIC, C=C, folds=folds, seed=seed, score=score,
                    max_iter=int(max_iter), tol=tol, fold_ids=fold_ids)
