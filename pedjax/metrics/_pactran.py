"""PACTran (Ding, Chen, Levinboim, Changpinyo & Soricut, ECCV 2022, "PACTran: PAC-Bayesian Metrics
for Estimating the Transferability of Pretrained Models to Classification Tasks"), its three
instantiations with the semantics of the authors' code, github.com/google-research/pactran_metrics
``compute_metrics.py`` (``calculate_pac_dir``, ``calculate_pac_gamma``, ``calculate_pac_gauss``).

Every PACTran value is a PAC-Bayesian *bound* on the target risk: lower is better. pedjax ranks
"higher score = better" for every registered metric, so each public function here returns the
**negated bound** (``-pac``): equal to the reference's number with the sign flipped.

Size: the three variants of one paper share the reference's conventions (constants, label coding,
citation, input checks); the Gaussian variant's exact minimiser (Newton with preconditioned
conjugate gradients) is most of the module and is used by nothing else.

Notation: N samples, C target classes (labels coded 0..C-1 at the boundary), Y [N, C] one-hot,
n_c class counts.

PACTran-Dirichlet and PACTran-Gamma (``input="probs"``)
-------------------------------------------------------
Both read a probability matrix S [N, K] over K "source" outcomes: the source classifier's softmax
on the target samples (the paper's PAC_Dir / PAC_Gam), or a clustering posterior such as a GMM on
the features (the paper's PAC_nDir / PAC_nGam, which the reference builds with an unseeded
scikit-learn GaussianMixture on PCA(0.8) features: pass such posteriors in yourself). With
``α = alpha`` (1 in the paper's runs), ``a0_c = α·n_c/N + 1e-10`` and ``log s = log(S + 1e-10)``,
ten mean-field updates, starting from ``q = S``:

    a_ck  = a0_c + Σ_{i: y_i = c} q_ik                                        [C, K]
    Dirichlet:  q_i ∝ exp(log s_i + ψ(a_{y_i}) − ψ(Σ_c a_c))
    Gamma:      q_i ∝ exp(log s_i + ψ(a_{y_i}))              (rate b = 1, ψ = digamma)

(each update uses the ``a`` of the previous ``q``; the final value pairs the last ``a`` with the
last ``q``, as the reference does). Then, with ``KL = Σ_ik q_ik (log q_ik − log s_ik)``,

    PAC_Dir = −[K·log Γ(Σ_c a0_c) − K·Σ_c log Γ(a0_c) − Σ_k (log Γ(Σ_c a_ck) − Σ_c log Γ(a_ck)) − KL] / (N·C)
    PAC_Gam =  [Σ_ck (log Γ(a0_c) − log Γ(a_ck)) + KL + Σ_i (log l_i − 1)] / (N·C) + 1,
               l_i = Σ_k s_ik · Σ_c a_ck   (s unsmoothed: the probabilities as given)

and ``pactran_dirichlet = −PAC_Dir``, ``pactran_gamma = −PAC_Gam``. The 1e-10 constants are the
reference's and are kept. Rows are used as given (not renormalised), like the reference; the
public functions reject negative entries and all-zero rows (a zero row makes ``log l_i = −inf``).

PACTran-Gaussian (``input="features"``)
---------------------------------------
Features are centred (``X ← X − mean``; no scaling, no PCA). With λ = ``lda_factor``, a linear
softmax classifier (W [D, C], b [C]) minimises the convex

    L(W, b) = (1/N) Σ_i CE(softmax(x_i W + b), y_i) + |W|² / (2 λ N)          (+ log(1 + 1e-10))

(the reference's cross-entropy carries ``Σ_k y_ik log(y_ik + 1e-10) = log(1 + 1e-10)`` per sample;
kept). At the minimiser (W*, b*) with probabilities p_ic, the reference's diagonal curvature sums
to (note: *not* divided by N, unlike the loss — as published)

    Σh = Σ_i (|x_i|² + 1) · Σ_c p_ic (1 − p_ic) + D·C/(λN),
    σ⁻² = Σh · λN / (D·C) + 1e-10,
    PAC_Gau = L(W*, b*) + ½ · (D·C / (λN)) · (s2_factor / D) · log σ⁻²,

and ``pactran_gaussian = −PAC_Gau``. ``s2_factor = 0`` gives the reference's "linear" companion
value (the optimised loss alone, ``pac_opt``).

Hyperparameters: the reference evaluates a grid — λ ∈ {10, 1, 0.1}, each with two prior-variance
factors s2 ∈ {100λ, 10λ} — and its correlation script keeps, per dataset, the grid cell that
agrees best with a held-out linear-probe error; there is no single published default. pedjax's
default is the central cell λ = 1 with s2 = 100 (the reference's first s2 for λ = 1); pass any
positive ``lda_factor`` and non-negative ``s2_factor`` (the reference crashes for a λ outside its
three values).

Where pedjax differs from the published code, on purpose:

* **The optimum, not an optimiser's stopping point.** The reference minimises L with SciPy's
  L-BFGS-B from an unseeded random start (``np.random.normal·0.03``), ``maxiter=100``,
  ``tol=1e-6``: its value carries that optimiser's error and changes from run to run (measured
  in docs/design.md, "PACTran-Gaussian: the reference's optimiser error"). L is convex, and W*, the
  probabilities p — hence PAC_Gau — are unique (b* only up to a common shift, which changes
  nothing), so pedjax returns the value *at the minimiser*: damped inexact Newton (directions
  by preconditioned conjugate gradients on Hessian-vector products; preconditioner
  ``(H̄ ⊗ XᵀX + I/λ)⁻¹``, H̄ the mean softmax Hessian, applied through one eigendecomposition
  of the smaller Gram matrix; Armijo backtracking), stopped when the Newton decrement is at the
  rounding level of L *and* Σh has settled (see :func:`pactran_gaussian_fit`). The tests compare
  with SciPy's L-BFGS-B run to convergence and polished by Newton steps on the explicit Hessian.
* **Kernel form for D > N.** L depends on X only through XXᵀ (the minimiser W lies in the row
  space of X), and so does Σh (through |x_i|²). For D > N the problem is solved in the
  N-dimensional basis Z = U·√Λ of XXᵀ = UΛUᵀ: the same minimum, N·C unknowns instead of D·C.
* **Labels** are coded 0..C−1 first (the reference sizes its one-hot by ``max(label) + 1``; on
  labels like {3, 7, 42} it would add empty classes, which changes a0, C and, for the Gaussian
  variant, makes the minimum unattained). For labels 0..C−1 both agree.

Numerics (float32 as well as float64): the softmax keeps 1 − p of each row's top class as
``r/(1 + r)``, r = Σ_{c≠top} exp(z_c − z_top) (:func:`_softmax`), and the gradient, the
Hessian-vector products and Σh use it, never ``1 − p``: on separable data p(1 − p) ≈ e^−margin
is what the bound reads and what fixes the minimiser along the flat directions, and ``1 − p``
loses all of its digits in float32 (in float64 beyond margins of ~35). The mean-field updates of
the Dirichlet/Gamma variants are evaluated as ``(S + 1e-10)·exp(t − max_k t)`` with only the
[C, K] table t exponentiated, and KL from ``log q − log s = t − max t − log(row sum)``: the same
numbers as the reference's log-space updates, without [N, K] logarithms or exponentials (XLA's
CPU float64 ``exp`` is slow). Known limit: the Gaussian problem's condition number grows like
λ·|x|², so float32 stops short of the minimum on features of extreme scale (the score stays
finite, the loop ends where no decrease is left; where the limit lies is measured in
docs/precision.md, "Measurements behind the float32 formulations").
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._linalg import gram
from .._validate import as_float_matrix
from ._registry import evaluate, register

__all__ = [
    "pactran_dirichlet", "pactran_dirichlet_core", "pactran_gamma", "pactran_gamma_core",
    "pactran_gaussian", "pactran_gaussian_core", "pactran_gaussian_fit", "GaussianFit",
]

#: the reference's additive constant (in a0, log(S + ·), the one-hot log and σ⁻²)
_TINY = 1e-10
#: Σ_k y_ik log(y_ik + 1e-10) for a one-hot row, as the reference's cross-entropy adds it
_XENT_CONST = math.log(1.0 + _TINY)
#: mean-field updates of the Dirichlet / Gamma variants (fixed in the reference)
_MF_ITERS = 10

_CITATION_PREFIX = ("Ding, Chen, Levinboim, Changpinyo & Soricut, ECCV 2022 (PACTran); matches "
                    "github.com/google-research/pactran_metrics compute_metrics.py ")


# ----------------------------------------------------------------------------------------------
# Dirichlet and Gamma: mean-field on source probabilities
# ----------------------------------------------------------------------------------------------


def _mean_field(S: jax.Array, y: jax.Array, num_classes: int, alpha, dirichlet: bool):
    """The reference's ten updates. Returns ``(a0 [C], a [C, K], q [N, K], kl)`` with
    ``kl = Σ_ik q_ik (log q_ik − log s_ik)``.

    The update ``q_i ∝ exp(log s_i + t_{y_i})`` (t [C, K]: the digamma terms) is evaluated as
    ``(S_i + 1e-10) · exp(t_{y_i} − max_k t_{y_i k})`` — the same numbers without an [N, K]
    exponential or logarithm per update (XLA's CPU float64 ``exp`` is the cost otherwise): only
    the [C, K] table is exponentiated. The row sum is ≥ 1e-10 (the entry at the maximum of t),
    so it never underflows, and ``log q_ik − log s_ik = t_{y_i k} − m_{y_i} − log(row sum_i)``
    gives the KL term without forming log q.
    """
    N = S.shape[0]
    Y = jax.nn.one_hot(y, num_classes, dtype=S.dtype)
    counts = jnp.sum(Y, axis=0)
    a0 = alpha * counts / N + _TINY  # [C]
    S_tiny = S + _TINY

    def update(M):  # M = Σ_{i: y_i = c} q_i  [C, K]  →  the next (a, t, m, U, row sums)
        a = a0[:, None] + M  # [C, K]
        t = jax.scipy.special.digamma(a)
        if dirichlet:
            t = t - jax.scipy.special.digamma(jnp.sum(a, axis=0))[None, :]
        m = jnp.max(t, axis=1)  # [C]
        U = S_tiny * (Y @ jnp.exp(t - m[:, None]))  # [N, K]: q_i times its row sum
        rowsum = jnp.sum(U, axis=1)
        return a, t, m, U, rowsum

    def body(_, M):
        _, _, _, U, rowsum = update(M)
        return (Y / rowsum[:, None]).T @ U  # Σ_{i∈c} q_i without forming q

    M = jax.lax.fori_loop(0, _MF_ITERS - 1, body, Y.T @ S)  # q starts at S
    a, t, m, U, rowsum = update(M)  # the tenth update, keeping what the final value needs
    q = U / rowsum[:, None]
    kl = jnp.sum(t * (Y.T @ q)) - jnp.sum(m[y] + jnp.log(rowsum))
    return a0, a, q, kl


def pactran_dirichlet_core(S: jax.Array, y: jax.Array, num_classes: int, alpha=1.0) -> jax.Array:
    """−PAC_Dir of probabilities ``S`` [N, K] for coded labels ``y`` [N] (pure JAX, jit/vmap-able).

    Args:
      S: [N, K] probabilities over K source outcomes (used as given, not renormalised).
      y: [N] int32 labels coded 0..num_classes-1.
      num_classes: C (static under ``jax.jit``).
      alpha: the Dirichlet prior concentration α (a0_c = α·n_c/N + 1e-10).

    Returns:
      −PAC_Dir, a scalar array (higher is better).
    """
    S = jnp.asarray(S)
    N, K = S.shape
    a0, a, q, kl = _mean_field(S, y, num_classes, alpha, dirichlet=True)
    lg = jax.lax.lgamma
    log_c0 = lg(jnp.sum(a0)) - jnp.sum(lg(a0))
    log_c = lg(jnp.sum(a, axis=0)) - jnp.sum(lg(a), axis=0)  # [K]
    elbo = K * log_c0 - jnp.sum(log_c) - kl
    return elbo / (N * num_classes)  # = −PAC_Dir


def pactran_gamma_core(S: jax.Array, y: jax.Array, num_classes: int, alpha=1.0) -> jax.Array:
    """−PAC_Gam of probabilities ``S`` [N, K] for coded labels ``y`` [N] (pure JAX, jit/vmap-able).

    Args:
      S: [N, K] probabilities over K source outcomes (used as given, not renormalised; an all-zero
        row makes log l_i = −inf and the score non-finite, which the public function rejects).
      y: [N] int32 labels coded 0..num_classes-1.
      num_classes: C (static under ``jax.jit``).
      alpha: the Gamma prior's shape, total over classes (a0_c = α·n_c/N + 1e-10; rate 1).

    Returns:
      −PAC_Gam, a scalar array (higher is better).
    """
    S = jnp.asarray(S)
    N = S.shape[0]
    a0, a, q, kl = _mean_field(S, y, num_classes, alpha, dirichlet=False)
    lg = jax.lax.lgamma
    lw = S @ jnp.sum(a, axis=0)  # [N]: Σ_k s_ik Σ_c a_ck  (rate 1)
    prior = jnp.sum(lg(a0)[:, None] - lg(a))
    pac = (prior + kl + jnp.sum(jnp.log(lw) - 1.0)) / (N * num_classes) + 1.0
    return -pac


# ----------------------------------------------------------------------------------------------
# Gaussian: the regularised softmax regression at its minimum
# ----------------------------------------------------------------------------------------------


def _design(X: jax.Array):
    """Centred features → ``(Xd [N, r], lam [r], V [r, r] or None, sq [N])``: the design the
    solver uses (Xc itself for D ≤ N, U·√Λ of XcXcᵀ otherwise), the eigen-decomposition of
    XdᵀXd = V·diag(lam)·Vᵀ (``V is None``: it is diagonal) and |x_i|² of the centred rows."""
    N, D = X.shape
    Xc = X - jnp.mean(X, axis=0)
    Xc = Xc - jnp.mean(Xc, axis=0)  # second pass: centring exact to rounding
    sq = jnp.sum(Xc * Xc, axis=1)
    if D <= N:
        lam, V = jnp.linalg.eigh(gram(Xc))
        return Xc, jnp.maximum(lam, 0.0), V, sq
    lam, U = jnp.linalg.eigh(gram(Xc.T))
    lam = jnp.maximum(lam, 0.0)
    return U * jnp.sqrt(lam)[None, :], lam, None, sq


def _softmax(Z):
    """``(log p, p, 1 − p)`` of logits Z [N, C], accurate where p saturates: with m the row
    maximum and r = Σ_{c ≠ argmax} exp(z_c − m), log Σ exp(z) = m + log1p(r), and the argmax
    entry's 1 − p is r/(1 + r), not 1 − p (which loses every digit of p(1 − p) ≈ e^−margin in
    float32 — and in float64 beyond margins of ~35 — while it is that quantity the bound reads
    and that moves the optimum along the flat directions of separable data)."""
    m = jnp.max(Z, axis=1, keepdims=True)
    top = jax.nn.one_hot(jnp.argmax(Z, axis=1), Z.shape[1], dtype=Z.dtype)
    E = jnp.exp(Z - m)
    r = jnp.sum(E * (1.0 - top), axis=1, keepdims=True)
    logp = Z - m - jnp.log1p(r)
    P = E / (1.0 + r)
    Q = jnp.where(top > 0, r / (1.0 + r), 1.0 - P)
    return logp, P, Q


def _objective(Xd, Y, W, b, rho):
    """N·L without the constant: Σ_i CE_i + ρ/2·|W|²; and p, 1 − p (:func:`_softmax`)."""
    logp, P, Q = _softmax(Xd @ W + b)
    return -jnp.sum(Y * logp) + 0.5 * rho * jnp.sum(W * W), P, Q


def _dot(a, b):
    return jnp.sum(a[0] * b[0]) + jnp.sum(a[1] * b[1])


class GaussianFit(NamedTuple):
    """The minimiser of the PACTran-Gaussian objective (:func:`pactran_gaussian_fit`).

    Attributes:
      loss: min L (the reference's ``pac_opt``), including its log(1 + 1e-10).
      probs: [N, C] softmax probabilities at the minimiser.
      pq: [N] Σ_c p_ic (1 − p_ic), from the accurate complement of the top class's p.
      sq: [N] |x_i − mean|².
      newton_steps: Newton steps taken.
      cg_steps: conjugate-gradient iterations, all steps together.
      decrement: the last Newton decrement gᵀH⁻¹g of N·L.
    """

    loss: jax.Array
    probs: jax.Array
    pq: jax.Array
    sq: jax.Array
    newton_steps: jax.Array
    cg_steps: jax.Array
    decrement: jax.Array


def pactran_gaussian_fit(X: jax.Array, y: jax.Array, num_classes: int, lda_factor=1.0,
                         max_newton: int = 100, max_cg: int = 200) -> GaussianFit:
    """Minimise the PACTran-Gaussian objective L of features ``X`` [N, D] for coded labels ``y``
    (pure JAX, jit/vmap-able; ``num_classes``, ``max_newton``, ``max_cg`` static).

    Damped inexact Newton on N·L: each direction solves H·d = −g by preconditioned conjugate
    gradients (forcing term min(0.1, √(|g|/|g₀|)), never below the rounding level of g), then
    Armijo backtracking. It stops when the decrement gᵀH⁻¹g is at the rounding level of N·L and
    the curvature sum Σ_i (|x_i|² + 1)·Σ_c p_ic(1 − p_ic) — the other quantity the bound reads —
    has settled to eps^¾ (or the decrement was already that small one step before), when no
    decrease is left to find, or after ``max_newton`` steps.

    Args:
      X: features [N, D] (centred inside).
      y: [N] int32 labels coded 0..num_classes-1, every class present (the start is the bias of
        the class log-priors).
      num_classes: C (static).
      lda_factor: λ > 0; the weight penalty of L is |W|²/(2λN).
      max_newton: the most Newton steps (static).
      max_cg: the most conjugate-gradient iterations per Newton step (static).

    Returns:
      A :class:`GaussianFit`: min L, the probabilities and curvature terms at the minimiser, and
      the solver's step counts and last decrement.
    """
    X = jnp.asarray(X)
    N, D = X.shape
    C = num_classes
    dt = X.dtype
    eps = jnp.finfo(dt).eps
    Xd, lam, V, sq = _design(X)
    r = Xd.shape[1]
    Y = jax.nn.one_hot(y, C, dtype=dt)
    rho = 1.0 / jnp.asarray(lda_factor, dt)  # n·L = Σ CE + |W|²/(2λ)

    counts = jnp.sum(Y, axis=0)
    logc = jnp.log(counts)
    W0 = jnp.zeros((r, C), dt)
    b0 = logc - jnp.mean(logc)  # the optimal bias of W = 0: the class log-priors
    F0, P0, Q0 = _objective(Xd, Y, W0, b0, rho)

    def residual(P, Q):  # p − y, with p_y − 1 = −(1 − p_y) taken from the accurate complement
        return jnp.where(Y > 0, -Q, P)

    def grad(W, b, P, Q):
        R = residual(P, Q)
        return Xd.T @ R + rho * W, jnp.sum(R, axis=0)

    def curvature_sum(P, Q):  # Σ_i (|x_i|² + 1)·Σ_c p_ic(1 − p_ic): what the bound reads from p
        return jnp.sum((sq + 1.0) * jnp.sum(P * Q, axis=1))

    def rot(M, inverse=False):  # V·M (inverse: Vᵀ·M)
        if V is None:
            return M
        return (V.T @ M) if inverse else (V @ M)

    def newton_direction(P, Qc, g, gnorm, g0norm, floor):
        # preconditioner (H̄ ⊗ XdᵀXd + ρI)⁻¹ for W, (N·H̄ + ρI)⁻¹ for b; H̄ = mean softmax Hessian
        PP = P.T @ P
        Hbar = (jnp.diag(jnp.sum(P * Qc, axis=0)) + PP * (1.0 - jnp.eye(C, dtype=dt)) * -1.0) / N
        gam, Q = jnp.linalg.eigh(Hbar)
        gam = jnp.maximum(gam, 0.0)
        scale_w = 1.0 / (lam[:, None] * gam[None, :] + rho)  # [r, C]
        scale_b = 1.0 / (N * gam + rho)  # [C]

        def precond(v):
            vw, vb = v
            tw = rot(rot(vw, inverse=True) @ Q * scale_w) @ Q.T
            tb = Q @ ((Q.T @ vb) * scale_b)
            return tw, tb

        # p_i ⊙ (t_i − ⟨p_i, t_i⟩), with t measured from its value at the row's top class: the
        # top entry is then −Σ_c p_c (t_c − t_top), small terms only (no 1 − p cancellation)
        top = jax.nn.one_hot(jnp.argmax(P, axis=1), C, dtype=dt)

        def hvp(v):
            vw, vb = v
            T = Xd @ vw + vb
            Tr = T - jnp.sum(T * top, axis=1, keepdims=True)
            U = P * (Tr - jnp.sum(P * Tr, axis=1, keepdims=True))
            return Xd.T @ U + rho * vw, jnp.sum(U, axis=0)

        eta = jnp.minimum(0.1, jnp.sqrt(gnorm / jnp.maximum(g0norm, jnp.finfo(dt).tiny)))
        # no residual below the rounding level of the current gradient
        target = jnp.maximum(eta * gnorm, floor)
        rhs = (-g[0], -g[1])
        x0 = (jnp.zeros_like(g[0]), jnp.zeros_like(g[1]))
        z0 = precond(rhs)

        def cond(s):
            _, res, _, _, rz, k = s
            return (k < max_cg) & (jnp.sqrt(_dot(res, res)) > target) & (rz > 0)

        def body(s):
            x, res, z, p, rz, k = s
            Hp = hvp(p)
            pHp = _dot(p, Hp)
            ok = pHp > 0
            alpha = jnp.where(ok, rz / jnp.where(ok, pHp, 1.0), 0.0)
            x = (x[0] + alpha * p[0], x[1] + alpha * p[1])
            res = (res[0] - alpha * Hp[0], res[1] - alpha * Hp[1])
            z = precond(res)
            rz_new = jnp.where(ok, _dot(res, z), 0.0)
            beta = rz_new / jnp.where(rz > 0, rz, 1.0)
            p = (z[0] + beta * p[0], z[1] + beta * p[1])
            return x, res, z, p, rz_new, k + 1

        x, _, _, _, _, k = jax.lax.while_loop(cond, body, (x0, rhs, z0, z0, _dot(rhs, z0), 0))
        dw, db = x
        return dw, db - jnp.mean(db), k  # a common bias shift changes nothing: drop it

    g0 = grad(W0, b0, P0, Q0)
    g0norm = jnp.sqrt(_dot(g0, g0))

    def cond(s):
        return ~s["done"]

    def body(s):
        W, b, F, P, Q = s["W"], s["b"], s["F"], s["P"], s["Q"]
        g = grad(W, b, P, Q)
        gnorm = jnp.sqrt(_dot(g, g))
        # rounding level of g: eps × the norm of Σ_i |x_i|·|p_i − y_i| (+ ρ|W|)
        A = jnp.abs(residual(P, Q))
        floor = 4.0 * eps * (jnp.sqrt(jnp.sum((jnp.abs(Xd).T @ A) ** 2) + jnp.sum(A) ** 2) + rho * jnp.sqrt(jnp.sum(W * W)))
        dw, db, k_cg = newton_direction(P, Q, g, gnorm, g0norm, floor)

        dec = -_dot(g, (dw, db))  # Newton decrement gᵀH⁻¹g (≈ 2·(F − F*))

        # Armijo — up to the rounding level of N·L once the decrement is there: a Newton step
        # then decreases L below rounding, yet still moves p where the bound needs it
        level = 16.0 * eps * (jnp.abs(F) + 1.0)
        slack = jnp.where(dec <= level, level, 0.0)

        def ls_cond(t):
            return ~t[4] & (t[5] < 60)

        def ls_body(t):
            step, _, _, _, _, k = t
            step = jnp.where(k == 0, 1.0, 0.5 * step)
            Fn, Pn, Qn = _objective(Xd, Y, W + step * dw, b + step * db, rho)
            ok = Fn <= F - 1e-4 * step * dec + slack
            return step, Fn, Pn, Qn, ok, k + 1

        init_ls = (jnp.asarray(1.0, dt), F, P, Q, jnp.asarray(False), 0)
        step, Fn, Pn, Qn, ok, _ = jax.lax.while_loop(ls_cond, ls_body, init_ls)
        ok = ok & (dec > 0)
        W = jnp.where(ok, W + step * dw, W)
        b = jnp.where(ok, b + step * db, b)
        F = jnp.where(ok, Fn, F)
        P = jnp.where(ok, Pn, P)
        Q = jnp.where(ok, Qn, Q)
        it = s["it"] + 1
        # converged: the decrement (≈ 2·N·(L − L*)) is at the rounding level of N·L, and the
        # curvature sum the bound reads has settled — it still moves after L has (where p
        # saturates, L barely sees a direction that changes p(1 − p) by a large factor). A
        # rejected step (no decrease left to find) also ends the loop.
        hs = curvature_sum(P, Q)
        tiny = dec <= level
        settled = jnp.abs(hs - s["hs"]) <= 4.0 * eps ** 0.75 * hs
        done = ~ok | (tiny & settled) | (it >= max_newton)
        return dict(W=W, b=b, F=F, P=P, Q=Q, it=it, done=done, dec=dec, cg=s["cg"] + k_cg, hs=hs)

    init = dict(W=W0, b=b0, F=F0, P=P0, Q=Q0, it=0, done=jnp.asarray(False), dec=jnp.asarray(jnp.inf, dt), cg=0,
                hs=curvature_sum(P0, Q0))
    s = jax.lax.while_loop(cond, body, init)
    pq = jnp.sum(s["P"] * s["Q"], axis=1)
    return GaussianFit(s["F"] / N + _XENT_CONST, s["P"], pq, sq, s["it"], s["cg"], s["dec"])


def pactran_gaussian_core(X: jax.Array, y: jax.Array, num_classes: int, lda_factor=1.0, s2_factor=100.0,
                          max_newton: int = 100, max_cg: int = 200) -> jax.Array:
    """−PAC_Gau of features ``X`` [N, D] for coded labels ``y`` [N] (pure JAX, jit/vmap-able).

    Args:
      X: features [N, D] (centred inside).
      y: [N] int32 labels coded 0..num_classes-1.
      num_classes: C (static under ``jax.jit``).
      lda_factor: λ > 0; the weight penalty of L is |W|²/(2λN).
      s2_factor: the prior-variance factor ≥ 0, σ₀² = s2_factor / D (0: the loss alone).
      max_newton: the most Newton steps (static).
      max_cg: the most conjugate-gradient iterations per Newton step (static); the solver
        normally stops far earlier than either cap, at the rounding level of L.

    Returns:
      −PAC_Gau, a scalar array (higher is better).
    """
    X = jnp.asarray(X)
    N, D = X.shape
    C = num_classes
    dt = X.dtype
    fit = pactran_gaussian_fit(X, y, num_classes, lda_factor, max_newton, max_cg)
    v, sq = fit.pq, fit.sq
    ldas2 = jnp.asarray(lda_factor, dt) * N
    kd = D * C
    h_sum = jnp.sum((sq + 1.0) * v) + kd / ldas2
    sigma2_inv = h_sum * ldas2 / kd + _TINY
    s2 = jnp.asarray(s2_factor, dt) / D
    pac = fit.loss + 0.5 * kd / ldas2 * s2 * jnp.log(sigma2_inv)
    return -pac


# ----------------------------------------------------------------------------------------------
# public functions
# ----------------------------------------------------------------------------------------------


def _check_probs(S, name: str = "source_probs") -> np.ndarray:
    P = as_float_matrix(S, name)
    if np.any(P < 0):
        raise ValueError(
            f"{name}: contains {int(np.count_nonzero(P < 0))} negative value(s); expected "
            "probabilities (apply softmax to logits first)"
        )
    empty = np.sum(P, axis=1) <= 0
    if np.any(empty):
        raise ValueError(
            f"{name}: {int(np.count_nonzero(empty))} row(s) sum to zero; every sample needs "
            "a probability distribution over the source outcomes"
        )
    return P


def _positive(value, name: str, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    v = float(value) if ok else float("nan")
    if not (ok and math.isfinite(v) and (v >= 0 if allow_zero else v > 0)):
        what = "a finite number ≥ 0" if allow_zero else "a finite number > 0"
        raise ValueError(f"{name}: expected {what}, got {value!r}")
    return v


@register("pactran_dirichlet", pactran_dirichlet_core, input="probs",
          citation=_CITATION_PREFIX + "calculate_pac_dir (negated: higher is better)")
def pactran_dirichlet(source_probs, y, alpha: float = 1.0) -> float:
    """PACTran-Dirichlet of source probabilities ``source_probs`` [N, K] and labels ``y`` [N]:
    the negated bound −PAC_Dir (higher is better).

    Like every registered metric it also takes the keyword ``precision=`` (``"auto"``, ``"float64"``,
    ``"float32"``; :func:`pedjax.metrics.register`).

    Args:
      source_probs: [N, K] non-negative probabilities over K source outcomes (the source model's
        softmax on the target samples, or a clustering posterior such as a GMM's); rows need
        positive mass and are used as given.
      y: [N] integer target labels, any values (coded 0..C-1 in sorted order), ≥ 2 classes.
      alpha: Dirichlet prior concentration, a finite number > 0 (the paper's runs use 1).

    Returns:
      −PAC_Dir as a Python float.

    Raises:
      ValueError: ``source_probs`` has negative entries or an all-zero row, or is not a finite 2-D
        array with one row per label; ``y`` is invalid (fewer than 2 classes, non-integer);
        ``alpha`` is not a finite number > 0; or ``precision`` is unknown.
    """
    P = _check_probs(source_probs)
    return evaluate(pactran_dirichlet_core, P, y, x_name="source_probs", alpha=_positive(alpha, "alpha"))


@register("pactran_gamma", pactran_gamma_core, input="probs",
          citation=_CITATION_PREFIX + "calculate_pac_gamma (negated: higher is better)")
def pactran_gamma(source_probs, y, alpha: float = 1.0) -> float:
    """PACTran-Gamma of source probabilities ``source_probs`` [N, K] and labels ``y`` [N]:
    the negated bound −PAC_Gam (higher is better).

    Like every registered metric it also takes the keyword ``precision=`` (``"auto"``, ``"float64"``,
    ``"float32"``; :func:`pedjax.metrics.register`).

    Args:
      source_probs: [N, K] non-negative probabilities over K source outcomes (as for
        :func:`pactran_dirichlet`); rows need positive mass and are used as given.
      y: [N] integer target labels, any values (coded 0..C-1 in sorted order), ≥ 2 classes.
      alpha: the Gamma prior's shape, total over classes, a finite number > 0 (default 1).

    Returns:
      −PAC_Gam as a Python float.

    Raises:
      ValueError: ``source_probs`` has negative entries or an all-zero row, or is not a finite 2-D
        array with one row per label; ``y`` is invalid; ``alpha`` is not a finite number > 0; or
        ``precision`` is unknown.
    """
    P = _check_probs(source_probs)
    return evaluate(pactran_gamma_core, P, y, x_name="source_probs", alpha=_positive(alpha, "alpha"))


@register("pactran_gaussian", pactran_gaussian_core, static=("max_newton", "max_cg"),
          citation=_CITATION_PREFIX + "calculate_pac_gauss at the exact optimum (negated: higher is better)")
def pactran_gaussian(X, y, lda_factor: float = 1.0, s2_factor: float = 100.0) -> float:
    """PACTran-Gaussian of features ``X`` [N, D] and labels ``y`` [N]: the negated bound −PAC_Gau
    (higher is better), at the exact minimiser of the regularised softmax regression.

    Like every registered metric it also takes the keyword ``precision=`` (``"auto"``, ``"float64"``,
    ``"float32"``; :func:`pedjax.metrics.register`).

    Args:
      X: features [N, D] (centred inside; no scaling or PCA, as in the reference).
      y: [N] integer labels, any values (coded 0..C-1 in sorted order), ≥ 2 classes.
      lda_factor: λ; the weight penalty is |W|²/(2λN) (the reference's grid: 10, 1, 0.1).
      s2_factor: prior-variance factor, σ₀² = s2_factor / D (the reference pairs 100λ and 10λ);
        0 gives the optimised loss alone (the reference's "linear" value, negated).

    Returns:
      −PAC_Gau as a Python float; ``-inf`` for degenerate (constant) features.

    Raises:
      ValueError: ``lda_factor`` is not a finite number > 0 or ``s2_factor`` not a finite number
        ≥ 0; ``X`` or ``y`` is invalid (not a finite 2-D array with one row per label, fewer than
        2 classes); or ``precision`` is unknown.
    """
    lda = _positive(lda_factor, "lda_factor")
    s2 = _positive(s2_factor, "s2_factor", allow_zero=True)
    return evaluate(pactran_gaussian_core, X, y, static=("max_newton", "max_cg"), lda_factor=lda, s2_factor=s2)
