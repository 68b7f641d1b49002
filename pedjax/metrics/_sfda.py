"""SFDA (Shao et al., ECCV 2022): Self-challenging Fisher Discriminant Analysis, as released in
the SFDA/PED repositories' ``metrics.py``.

Two passes of a shrinkage Fisher discriminant with ConfMix between them:

1. ``Sw = Σ_c prior_c · Cov_c`` (biased), shrinkage ``s = max(exp(-5 λ_max(Sw)), 1e-10)`` with
   λ_max from the reference's 3-iteration power method (``utils.iterative_A``: start from the
   row sums of Sw, three double steps, return xᵀ·Sw·y; pass 1 only, pass 2 reuses ``s``),
   ``Sw_s = (1 - s) Sw + s · tr(Sw)/D · I``;
2. the reference projects on the generalized eigenvectors V of (Sb, Sw_s) and predicts with
   ``coef = means · V · Vᵀ``. V is normalised so that ``Vᵀ Sw_s V = I`` and is square, so
   ``V Vᵀ = Sw_s⁻¹``: the posterior is shrinkage LDA, computed here with one Cholesky solve
   (the between-class scatter never matters);
3. ``p = softmax(softmax(logits))`` (the reference "softens" once more), ConfMix
   ``x ← p_y x + (1 − p_y) m̄_y`` with m̄_y the mean of the other classes' means, pass 2 on the
   mixed features, score = mean posterior of the true class.

Differences from the published code (pedjax never modifies ``X`` in place, unlike it):

* **Centred first.** SFDA is translation invariant (Sw, the mean differences and ConfMix's
  convex combinations are), so pedjax centres the features once (two passes) before pass 1, in
  every precision. The published logits x·coef_c − ½·m_c·coef_c carry a class-independent part
  of size ~|mean|²/ridge along every direction the ridge alone regularises (a dead unit turned
  constant by an offset, a bias unit): with a constant feature of 1000 and s = 1e-10 that part is
  ~1e15, enough to spoil the published float64 pass-1 posteriors; centred, it is zero. On generic
  features the float64 score moves only by rounding (the size of the published code's own
  sensitivity to the order of the columns). Centring also makes ConfMix round relative to the
  spread, not to the mean, and keeps a constant feature exactly constant (in float32
  p·c + (1−p)·c is not c, and pass 2 would read the rounding as a discriminative feature).
  Measurements: docs/precision.md, "SFDA".
* **The power method's start.** The published start is Sw·1 (the row sums of Sw). pedjax keeps
  it wherever it is meaningful, ‖Sw·1‖ > START_ULPS·ε·√D·‖Sw‖_F (START_ULPS = 32, ε float32's
  epsilon or the computing dtype's if larger: ~√D·ε·‖Sw‖_F is the rounding of D-term row sums,
  and real features are float32 network outputs, so structure of Sw·1 below float32's resolution
  is noise in float64 too), and otherwise starts from the *signed* row sums Sw·s with the fixed
  pseudo-random signs s_j = ±1 of the canonical sample order (:mod:`pedjax.metrics._order`;
  where Sw·s is exactly zero too, the unit vector of Sw's largest diagonal entry). The published
  start fails exactly for LayerNorm outputs without affine terms (a random ViT): every row sums
  to 0, so do the within-class residuals, 1 is in Sw's null space and Sw·1 is a rounding-level
  vector, far below the threshold 32 ε₃₂ = 3.8e-6 (LayerNorm *with* affine terms and ReLU/CNN
  features lie far above it). From that noise the three-step power method's λ_max, hence
  s = exp(−5λ) and the score, depend on the last bits of the input, in float64 alone; from Sw·s
  they do not. Elsewhere the start is the published one and float64 scores are unchanged bit for
  bit. The measurements behind the threshold: docs/precision.md, "SFDA".
  The start's scale does not matter (iterative_A's first step divides by a norm); pedjax
  normalises it, as an unnormalised start can overflow in float32. Where Sw·1 is exactly zero
  (e.g. a feature and its negative) the published start is the zero vector and its λ_max NaN.
* Shrinkage and precision (issue 21). The published ridge s·tr(Sw)/D with s ≥ 1e-10 is tiny
  relative to λ_max once λ_max ≳ 4.6 (s = 1e-10), and Sw has rank ≤ N − C (plus exact null
  directions: dead units, LayerNorm's sum constraint). In float64 the Cholesky of Sw_s still
  succeeds (rounding of Sw ≈ 1e-16·λ_max, below the ridge); in float32 the rounding of a Gram
  (≈ 1e-7·λ_max) swamps the ridge, the Cholesky breaks down and the score was NaN (ViT features of
  the shipped zoo). pedjax keeps the published s in every precision and changes how Sw_s is
  factorised, by precision:

  - float64 (the parity path): Sw = Gram of the within-class residuals (host BLAS on the CPU),
    Cholesky of Sw_s, as published. The streamed SFDA (:mod:`pedjax.streaming`) factorises the
    same matrix from statistics (its logits are not centred yet: on generic features streamed
    and in-memory scores agree to ≤ 1e-9).
  - lower precision (float32 on accelerators): no Gram. With Xw the within-class residuals
    (scaled by an exact power of two), the Cholesky factor R of Sw_s comes from a Householder QR
    of the stacked matrix [√((1−s)/N)·Xw ; √(s·tr(Sw)/D)·I] (RᵀR = Sw_s in exact arithmetic):
    the ridge is represented on its own rows, so it is never lost to the rounding of Sw however
    small s is, and the condition number is not squared. The posterior uses whitened
    coordinates: logit_c = (R⁻ᵀx̃)·(R⁻ᵀm̃_c) − ½‖R⁻ᵀm̃_c‖² + log prior_c (x̃, m̃_c centred).
    λ_max comes from the same power method, matrix-free (Sw·v = Xwᵀ(Xw·v)/N), and its start
    Sw·1 = Xwᵀ(Xw·1)/N from row sums of the features as given, taken with compensated (TwoSum)
    summation, so that a small but meaningful Sw·1 (above the start's threshold) is float64's;
    the signed start Sw·s and ‖Sw‖_F of the threshold test are plain float32 products (a
    float32 Gram for the norm only). Cost: two QRs of an (N+D)×D matrix instead of two Grams
    (several times the Gram path on a CPU, docs/precision.md; the float32 path is for
    accelerators).
  - :func:`shrunk` (the Gram path: in-memory float64 and the streamed SFDA, whose statistics may
    be float32) floors the shrinkage at 10·ε·‖Sw‖_F / (tr(Sw)/D), ε of Sw's dtype: a ridge of at
    least 10·ε·‖Sw‖_F, the size of the Gram's own rounding, so the Cholesky of a float32 Sw_s
    never breaks down. The floor is ≤ 10·D·ε, below the published minimum 1e-10 in float64 for
    D < 45 000: float64 results are unchanged. (In float32 it does change the LDA along
    directions below the Gram's resolution: streamed float32 SFDA of ill-conditioned features
    is finite but can differ from float64 by 1e-2 and more.)

* **Saturation** (issue 21). Where the classes are well separated (after PED especially) the
  score is 1 − δ with δ far below float32's resolution of 1 (6e-8): on the near-duplicate
  synthetic zoo + PED, 11 of 12 models scored 1 − 1e-9 … 1 − 2e-8 in float64, and the float32
  mean posterior rounded them all to 1 (weighted τ 0.40 between the float32 and float64
  rankings). The registered core (:func:`sfda_deficit_core`) therefore returns δ = mean of
  Σ_{c≠y} p_c, each computed from the logits as exp(logsumexp_{c≠y} − logsumexp), which keeps
  its relative precision at any δ, and the score 1 − δ is finished on the host in float64
  (:attr:`pedjax.metrics.Metric.finish`, as GBC's). The float64 score equals the published mean
  posterior to rounding (δ is computed from the same logits).

tests/test_float32_hscore_sfda.py checks float32 against float64 on synthetic zoos with the hard
cases: ReLU features scaled by 10–100, near-duplicate and constant units, LayerNorm outputs,
D ≫ N (the shipped-zoo comparison: docs/precision.md, "SFDA"). Where float32 cannot agree: the
score depends on the data through Sw_s⁻¹, whose condition number λ_max/(s·tr(Sw)/D) reaches 1e11
and more. QR resolves within-class directions down to about ε₃₂²·λ_max, but the centred features
themselves are float32 numbers (relative rounding 6e-8 per entry): units that differ from each
other by ≲ 1e-6 of their spread (near-duplicates) span directions whose within-class variance is
set by that rounding; float64 reads the stored values exactly there, float32 cannot.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_factor, cho_solve, solve_triangular

from .._linalg import gram
from ._dtype import gram_exact_enough
from ._order import column_signs
from ._registry import evaluate, register

__all__ = ["sfda", "sfda_core", "sfda_deficit_core", "one_minus", "class_means", "power_top_eigenvalue", "within_scatter", "shrinkage_for", "shrunk",
           "lda_logits", "lda_posterior", "confmix", "off_class_mass"]

_EPS32 = float(np.finfo(np.float32).eps)
#: the published power-method start Sw·1 is rounding noise (and replaced by Sw·s) when
#: ‖Sw·1‖ ≤ START_ULPS·ε·√D·‖Sw‖_F (:func:`_start`; module docstring)
START_ULPS = 32.0
#: the shrunk scatter's ridge is at least this many ε·‖Sw‖_F (the rounding of a Gram in its dtype)
RIDGE_FLOOR_ULPS = 10.0


def class_means(X: jax.Array, y: jax.Array, num_classes: int):
    """Per-class means [C, D] and counts [C] (empty classes get a zero mean)."""
    counts = jax.ops.segment_sum(jnp.ones(X.shape[0], X.dtype), y, num_classes)
    sums = jax.ops.segment_sum(X, y, num_classes)
    return sums / jnp.maximum(counts, 1.0)[:, None], counts


def _power(matvec, x, iters: int = 3) -> jax.Array:
    """The reference's ``iterative_A`` for a symmetric operator ``matvec`` from start ``x``
    (normalised here; the result does not depend on its scale)."""
    x = x / jnp.linalg.norm(x)

    def body(_, xy):
        x, _ = xy
        t = matvec(x)
        yv = t / jnp.linalg.norm(t)
        t = matvec(yv)
        return t / jnp.linalg.norm(t), yv

    x, yv = jax.lax.fori_loop(0, iters, body, (x, x))
    return x @ matvec(yv)


def _start(rowsums: jax.Array, signed: jax.Array, diag: jax.Array, fro: jax.Array) -> jax.Array:
    """The power method's start (module docstring): the published row sums Sw·1 where they are
    above their rounding level ``START_ULPS·ε·√D·‖Sw‖_F`` (:func:`start_epsilon`), else the signed
    row sums Sw·s with the fixed ±1 signs of :func:`pedjax.metrics._order.column_signs`; where
    those are exactly zero too, the unit vector of the largest diagonal entry (never in the null
    space of a PSD matrix with a positive diagonal)."""
    D = rowsums.shape[0]
    level = START_ULPS * start_epsilon(rowsums.dtype) * math.sqrt(D) * fro
    fallback = jnp.where(jnp.any(signed != 0), signed,
                         jax.nn.one_hot(jnp.argmax(diag), D, dtype=diag.dtype))
    return jnp.where(jnp.linalg.norm(rowsums) > level, rowsums, fallback)


def start_epsilon(dtype) -> float:
    """The relative rounding level of the start test: float32's ε, or the dtype's if larger (the
    features of real models are float32 network outputs, so structure of Sw·1 below float32's
    resolution is noise whatever precision SFDA computes in)."""
    return max(float(jnp.finfo(dtype).eps), _EPS32)


def power_top_eigenvalue(A: jax.Array, iters: int = 3) -> jax.Array:
    """The reference's ``iterative_A``: start from the row sums (:func:`_start`), ``iters`` double
    steps, return xᵀAy."""
    s = column_signs(A.shape[0], A.dtype)
    return _power(lambda v: A @ v, _start(jnp.sum(A, axis=1), A @ s, jnp.diagonal(A), jnp.linalg.norm(A)), iters)


def within_scatter(X: jax.Array, y: jax.Array, means: jax.Array) -> jax.Array:
    """Σ_c prior_c · Cov_c (ddof 0) = (1/N) Σ_i (x_i − m_{y_i})(x_i − m_{y_i})ᵀ."""
    return gram(X - means[y]) / X.shape[0]


def shrinkage_for(Sw: jax.Array) -> jax.Array:
    """The published shrinkage ``max(exp(-5·λ_max(Sw)), 1e-10)``."""
    return jnp.maximum(jnp.exp(-5.0 * power_top_eigenvalue(Sw, 3)), 1e-10)


def shrunk(Sw: jax.Array, s: jax.Array) -> jax.Array:
    """``(1 − s)·Sw + s·μ·I`` with μ = tr(Sw)/D, ``s`` floored at 10·ε·‖Sw‖_F/μ (ε of Sw's dtype;
    module docstring: never binds in float64, keeps a float32 Cholesky from breaking down)."""
    D = Sw.shape[0]
    mu = jnp.trace(Sw) / D
    floor = RIDGE_FLOOR_ULPS * jnp.finfo(Sw.dtype).eps * jnp.linalg.norm(Sw) / jnp.where(mu > 0, mu, 1.0)
    s = jnp.maximum(s, floor)
    return (1.0 - s) * Sw + (s * mu) * jnp.eye(D, dtype=Sw.dtype)


def lda_logits(X, y, num_classes, s=None, raw=None):
    """One SFDA pass: returns (the shrinkage-LDA logits [N, C], shrinkage used); the posterior
    is their softmax (:func:`lda_posterior`). ``raw``: the features as given, where ``X`` is a
    translated copy (used below float64 only: :func:`_lda_logits_orthogonal`)."""
    if not gram_exact_enough(X.dtype):
        return _lda_logits_orthogonal(X, y, num_classes, s, raw=raw)
    means, counts = class_means(X, y, num_classes)
    priors = counts / X.shape[0]
    Sw = within_scatter(X, y, means)
    if s is None:
        s = shrinkage_for(Sw)
    coef = cho_solve(cho_factor(shrunk(Sw, s), lower=True), means.T).T  # means · Sw_s⁻¹
    intercept = -0.5 * jnp.sum(means * coef, axis=1) + jnp.log(priors)
    return X @ coef.T + intercept, s


def lda_posterior(X, y, num_classes, s=None):
    """One SFDA pass: returns (posterior [N, C], shrinkage used)."""
    logits, s = lda_logits(X, y, num_classes, s)
    return jax.nn.softmax(logits, axis=1), s


def _two_sum(a, b):
    """Knuth's error-free transformation: a + b = s + err exactly."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _row_sums_compensated(X: jax.Array):
    """Σ_d X[i, d] as an unevaluated pair (hi [N], lo [N]) accurate to about ε² relative to
    Σ_d |X[i, d]| (a pairwise TwoSum tree; static shapes)."""
    hi, lo = X, jnp.zeros_like(X)
    while hi.shape[1] > 1:
        if hi.shape[1] % 2:
            pad = ((0, 0), (0, 1))
            hi, lo = jnp.pad(hi, pad), jnp.pad(lo, pad)
        s, err = _two_sum(hi[:, 0::2], hi[:, 1::2])
        hi, lo = s, lo[:, 0::2] + lo[:, 1::2] + err
    return hi[:, 0], lo[:, 0]


def _within_row_sums(X, y, num_classes, counts):
    """r_i = Σ_d (x_id − m_{y_i,d}) (= Xw·1), without the cancellation of summing the rounded
    residuals: from compensated row sums of the features themselves."""
    hi, lo = _row_sums_compensated(X)
    t = (hi - hi[0]) + (lo - lo[0])  # Sterbenz: exact where the row sums are alike
    tm = jax.ops.segment_sum(t, y, num_classes) / jnp.maximum(counts, 1.0)
    return t - tm[y]


def _lda_logits_orthogonal(X, y, num_classes, s=None, raw=None):
    """One SFDA pass's logits without a Gram (lower precision; module docstring). ``raw``: the features as
    given, if ``X`` is a translated copy (the power method's start is taken from their exact
    stored values)."""
    N, D = X.shape
    counts = jax.ops.segment_sum(jnp.ones(N, X.dtype), y, num_classes)
    priors = counts / N
    Xt = X - jnp.mean(X, axis=0)
    Xt = Xt - jnp.mean(Xt, axis=0)
    means = jax.ops.segment_sum(Xt, y, num_classes) / jnp.maximum(counts, 1.0)[:, None]  # centred
    Xw = Xt - means[y]
    top = jnp.max(jnp.abs(Xt))
    _, e = jnp.frexp(jnp.where(top > 0, top, 1.0))
    unit = jnp.ldexp(jnp.ones((), X.dtype), -e)  # exact power of two: no overflow of squares
    Zw = Xw * unit
    if s is None:
        def matvec(v):
            return Zw.T @ (Zw @ v) / N

        r = _within_row_sums(X if raw is None else raw, y, num_classes, counts) * unit
        signed = matvec(column_signs(D, X.dtype))
        fro = jnp.linalg.norm(gram(Zw) / N)  # ‖Sw‖_F (scaled) for the start's rounding test
        lam = _power(matvec, _start(Zw.T @ r / N, signed, jnp.sum(Zw * Zw, axis=0) / N, fro)) / (unit * unit)
        s = jnp.maximum(jnp.exp(-5.0 * lam), 1e-10)
    mu = jnp.sum(Zw * Zw) / (N * D)  # tr(Sw)/D in scaled units
    stacked = jnp.concatenate([jnp.sqrt((1.0 - s) / N) * Zw, jnp.sqrt(s * mu) * jnp.eye(D, dtype=X.dtype)], axis=0)
    R = jnp.linalg.qr(stacked, mode="r")  # RᵀR = Sw_s (scaled)
    A = solve_triangular(R, (means * unit).T, trans="T", lower=False)  # [D, C] = R⁻ᵀ m̃ᵀ
    W = solve_triangular(R, (Xt * unit).T, trans="T", lower=False)  # [D, N] = R⁻ᵀ x̃ᵀ
    logits = W.T @ A - 0.5 * jnp.sum(A * A, axis=0) + jnp.log(priors)
    return logits, s


def confmix(X, y, num_classes, prob):
    """x ← p·x + (1 − p)·m̄_y with p the (softened) posterior of the true class."""
    means, _ = class_means(X, y, num_classes)
    outer = (jnp.sum(means, axis=0)[None, :] - means) / (num_classes - 1)
    p = jnp.take_along_axis(prob, y[:, None], axis=1)
    return p * X + (1.0 - p) * outer[y]


def sfda_deficit_core(X: jax.Array, y: jax.Array, num_classes: int) -> jax.Array:
    """1 − SFDA of features ``X`` [N, D] for coded labels ``y`` [N] in 0..num_classes-1 (pure
    JAX): the mean pass-2 posterior mass off the true class, Σ_{c≠y} p_c = exp(lse_{c≠y} − lse)
    of the logits, which keeps its relative precision where SFDA saturates (the registered core;
    the score is ``1 − value``, finished on the host in float64: module docstring, "Saturation").

    The two shrinkage-LDA passes with ConfMix between them (module docstring), on the centred
    features; float64 factorises the shrunk within-class scatter by Cholesky of its Gram, lower
    precisions by a QR without a Gram.

    Args:
      X: features [N, D] (floating point; the dtype picks the factorisation, as above).
      y: coded labels [N] (integers 0..num_classes−1).
      num_classes: number of classes C (static under ``jit``), at least 2 (ConfMix averages the
        other C − 1 class means).

    Returns:
      The mean pass-2 posterior off the true class, a 0-d ``jax.Array`` in ``X``'s dtype (in
      [0, 1]).
    """
    X = jnp.asarray(X)
    # SFDA is translation invariant: centre once (two passes), so the logits carry no large
    # class-independent term and ConfMix rounds relative to the spread, not to the mean (a
    # constant feature stays exactly constant)
    Xc = X - jnp.mean(X, axis=0)
    Xc = Xc - jnp.mean(Xc, axis=0)
    logits, s = lda_logits(Xc, y, num_classes, raw=X)
    prob = jax.nn.softmax(jax.nn.softmax(logits, axis=1), axis=1)  # the reference softens once more
    X2 = confmix(Xc, y, num_classes, prob)
    logits2, _ = lda_logits(X2, y, num_classes, s)
    return jnp.mean(off_class_mass(logits2, y, num_classes))


def off_class_mass(logits: jax.Array, y: jax.Array, num_classes: int) -> jax.Array:
    """Each sample's softmax mass off its own class, Σ_{c≠y} p_c = exp(lse_{c≠y} − lse) of the
    logits, with full relative precision where p_y rounds to 1 (module docstring, "Saturation").

    Args:
      logits: [N, C].
      y: coded labels [N] in 0..num_classes−1.
      num_classes: C.

    Returns:
      [N] in the logits' dtype, in [0, 1].
    """
    own = jax.nn.one_hot(y, num_classes, dtype=bool)
    return jnp.exp(jax.nn.logsumexp(jnp.where(own, -jnp.inf, logits), axis=1) - jax.nn.logsumexp(logits, axis=1))


def one_minus(value, xp=np):
    """The SFDA score from its core's value: ``1 − value``, elementwise (the registry's ``finish``).

    Args:
      value: 1 − SFDA (:func:`sfda_deficit_core`), a scalar or array (NumPy, or JAX with
        ``xp=jax.numpy``).
      xp: the array namespace, ``numpy`` (the host, in the value's float64) or ``jax.numpy``.

    Returns:
      ``1 − value`` in ``xp``.
    """
    return 1.0 - xp.asarray(value)


def sfda_core(X: jax.Array, y: jax.Array, num_classes: int) -> jax.Array:
    """SFDA of features ``X`` [N, D] for coded labels ``y`` [N] in 0..num_classes-1 (pure JAX):
    ``1 −`` :func:`sfda_deficit_core` in ``X``'s dtype (where SFDA saturates, float32 rounds this
    to 1; :func:`sfda` and :func:`pedjax.score_zoo` finish the deficit in float64 instead).

    Args:
      X: features [N, D] (floating point).
      y: coded labels [N] (integers 0..num_classes−1).
      num_classes: number of classes C (static under ``jit``), at least 2.

    Returns:
      The mean pass-2 posterior of the true class, a 0-d ``jax.Array`` in ``X``'s dtype (in
      [0, 1]).
    """
    return 1.0 - sfda_deficit_core(X, y, num_classes)


@register("sfda", sfda_deficit_core, finish=one_minus)
def sfda(X, y) -> float:
    """SFDA transferability of features ``X`` [N, D] for labels ``y`` [N] (higher is better).

    Equals the published SFDA to float64 precision; unlike it, never modifies ``X`` in place.
    Like every public metric, it also takes the keyword ``precision=`` (``"auto"``,
    ``"float64"`` or ``"float32"``; docs/precision.md).

    Args:
      X: features [N, D] (any real array; the features of one model on the target set).
      y: labels [N], any integer values (coded 0..C−1 in sorted order), at least 2 classes.

    Returns:
      The score as a Python ``float`` in [0, 1]; ``-inf`` for degenerate (constant) features.

    Raises:
      ValueError: ``X`` or ``y`` are malformed (not [N, D] and [N], non-finite features, fewer
        than 2 classes).
    """
    return evaluate(sfda_deficit_core, X, y)
