"""Transferability metrics from sufficient statistics (:class:`~pedjax.streaming.stats.ClassStats`).

Same numbers as the in-memory metrics (relative difference ≤ 1e-9 in float64, tested), same
degenerate rule (features constant over the target up to rounding score ``-inf``).

========  =========================================================  ==============================
metric    what it needs                                              passes over the features
========  =========================================================  ==============================
logme     FᵀF, Fᵀy_c (class sums), n_c                               1 (the statistics pass)
gbc       class means, per-dimension class variances                 1
hscore    centred Gram, centred class sums, n_c, max|x|              1
lfc       centred Gram, centred class sums, n_c, mean                1
hscore_   centred Gram, centred class sums, n_c, and Ledoit–Wolf's   2: statistics; Σ_i ‖x̃_i‖⁴
reg       fourth moment Σ_i ‖x_i − mean‖⁴, which needs the mean      of the rows as they stream by
          first
sfda      pass 1: Gram, class sums, n_c → shrinkage-LDA posterior;   3: statistics; prediction +
          ConfMix needs each sample's posterior of its own class,    ConfMix statistics; prediction
          so pass 2 streams the posteriors and accumulates the       of the mixed features
          mixed features' Gram and class sums; pass 3 streams the
          second posterior of the true class
========  =========================================================  ==============================

PED never adds a pass: it moves the statistics (:mod:`pedjax.streaming._ped_stats`); SFDA's
passes 2 and 3 and the regularized H-score's pass 2 add each class's translation to the rows as
they stream by.

LogME, LFC and the regularized H-score are finished from the statistics in float64 on the host
CPU whatever the precision of the passes (:func:`host_float64`): that part is O(D³) (O(D²) for
LFC's Frobenius form) and independent of N.

SFDA keeps one number per sample between passes 2 and 3 (its ConfMix weight p_i, 8·N bytes:
1/D of the features' float64 size) instead of recomputing the first posterior.

NLEEP, PARC, ETran, TransRate (and LEEP, NCE, which take source-model outputs) need the samples
themselves: :func:`require_streamable` says so and points at :func:`pedjax.streaming.subsample`.
"""
from __future__ import annotations

import contextlib
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_factor, cho_solve

from .._linalg import host_kernels_enabled
from ..metrics._gbc import VAR_FLOOR, gbc_log_from_gaussians
from ..metrics._hscore import hscore_from_moments
from ..metrics._hscore_reg import fourth_moment_block, hscore_reg_from_moments
from ..metrics._lfc import lfc_from_moments
from ..metrics._logme import _eigh, _fixed_point, _tri_solve, _tridiagonal_spectrum
from ..metrics._registry import REGISTRY, UNINFORMATIVE, finish_value
from ..metrics._sfda import off_class_mass, shrinkage_for, shrunk
from .stats import ClassStats, Engine, block_stats, combine, init_stats

#: metrics computed from the statistics alone
FROM_STATS = ("logme", "gbc", "hscore", "lfc")
#: metrics that stream further passes over the features after the statistics pass: name -> passes
MULTI_PASS = {"sfda": 3, "hscore_reg": 2}
SUPPORTED = FROM_STATS + tuple(MULTI_PASS)


def require_streamable(metric: str) -> None:
    """Check that ``metric`` can be scored from streamed statistics (returns ``None`` when it can).

    Args:
      metric: a metric's registry name.

    Raises:
      ValueError: ``metric`` is not one of :data:`SUPPORTED` (it needs the samples themselves);
        the message gives the subsampling path (:func:`pedjax.streaming.subsample`).
    """
    if metric in SUPPORTED:
        return
    raise ValueError(
        f"metric: {metric!r} needs the samples themselves (per-sample neighbourhoods, mixtures, ranks or "
        f"source-model outputs), not sufficient statistics; streaming supports {list(SUPPORTED)}. Score a "
        f"uniform random subsample instead: X, y = pedjax.streaming.subsample(features, labels, n=20000, seed=0); "
        f"pedjax.metrics.{metric}(X, y) (or pedjax.score_zoo on the subsampled zoo) — docs/streaming.md"
    )


# ----------------------------------------------------------------------------------------------
# LogME


@functools.partial(jax.jit, static_argnames=("n", "tridiagonal"))
def _logme_moments(G, B, yy, n: int, tridiagonal: bool):
    """LogME from FᵀF [D, D], FᵀY [D, C] and ‖y_c‖² [C] (the in-memory N > D formulas; for
    N ≤ D the N largest eigenvalues of FᵀF are those of FFᵀ)."""
    D, C = B.shape
    if n > D and tridiagonal:
        d, e, QB, lam = _tridiagonal_spectrum(G, B)
        sig = jnp.abs(lam)[:, None]
        keep = jnp.ones(lam.shape, bool)

        def sums(t):
            m = _tri_solve(d, e, t, QB)
            m2 = jnp.sum(m * m, axis=0)
            return m2, yy - jnp.sum(QB * m, axis=0) - t * m2

        return _fixed_point(n, D, C, G.dtype, sig, keep, sums)
    lam, V = _eigh(G)
    if n > D:
        lam = jnp.abs(lam)
    else:  # eigh sorts ascending: the N largest
        lam, V = jnp.maximum(lam[D - n:], 0.0), V[:, D - n:]
    pos = lam > 0
    s = jnp.where(pos, jnp.sqrt(jnp.where(pos, lam, 1.0)), 0.0)
    x = jnp.where(pos[:, None], (V.T @ B) / jnp.where(pos, s, 1.0)[:, None], 0.0)
    sig = lam[:, None]
    keep = jnp.ones(lam.shape, bool)
    x2 = x * x
    res_x2 = yy - jnp.sum(x2, axis=0)

    def sums_e(t):
        return (jnp.sum(sig * x2 / (t + sig) ** 2, axis=0),
                jnp.sum(x2 / (1.0 + sig / t) ** 2, axis=0) + res_x2)

    return _fixed_point(n, D, C, G.dtype, sig, keep, sums_e)


def logme_stats(stats: ClassStats) -> float:
    """LogME from the statistics, finished in float64 on the host CPU whatever the precision of
    the pass (:func:`host_float64`).

    Args:
      stats: the :class:`~pedjax.streaming.stats.ClassStats` (not degenerate:
        :func:`score_from_stats` checks).

    Returns:
      The LogME score.
    """
    G = stats.raw_gram()
    B = stats.raw_class_sums().T
    with host_float64():
        tri = min(stats.n, stats.dim) >= 2 and host_kernels_enabled()
        return float(_logme_moments(jnp.asarray(G), jnp.asarray(B), jnp.asarray(stats.counts), n=stats.n, tridiagonal=tri))


@contextlib.contextmanager
def host_float64():
    """Context manager: float64 on the host CPU device, where LogME, LFC and the regularized
    H-score are finished from the statistics.

    The statistics pass is the N-proportional work and runs on the accelerator in the requested
    precision; what follows is O(D³) and independent of N, and every host has float64 (TPUs do
    not). LogME needs it: its evidence keeps every direction of the uncentred FᵀF, whose
    condition number for features with a large mean (ReLU outputs: |μ| ≫ σ) can exceed
    float32's 2²⁴, so in float32 the small eigenvalues, and with them the score, move even from
    exact statistics (docs/streaming.md, "Float64 finish and block kernels").

    Yields:
      Nothing; inside the block ``jax_enable_x64`` is on and the default device is the first
      host CPU device.
    """
    with jax.enable_x64(True), jax.default_device(jax.local_devices(backend="cpu")[0]):
        yield


# ----------------------------------------------------------------------------------------------
# GBC, H-score


_gbc_log_jit = jax.jit(gbc_log_from_gaussians, static_argnames=("gaussian_type",))
_hscore_jit = jax.jit(hscore_from_moments)


def gbc_stats(stats: ClassStats, gaussian_type: str = "spherical") -> float:
    """GBC from the class means and per-dimension class variances (floored as the in-memory GBC does).

    Args:
      stats: the :class:`~pedjax.streaming.stats.ClassStats`.
      gaussian_type: ``"spherical"`` (default) or ``"diagonal"`` class Gaussians
        (:func:`pedjax.metrics.gbc`).

    Returns:
      The GBC score.
    """
    var = np.maximum(stats.class_var(), VAR_FLOOR)
    # GBC sees only differences of class means: centred in float64 first, so a float32 finish
    # does not round them at the scale of the features' mean
    means = stats.class_means() - stats.mean()
    log_neg = _gbc_log_jit(jnp.asarray(means), jnp.asarray(var), gaussian_type=gaussian_type)
    return float(finish_value(REGISTRY["gbc"], log_neg))  # -exp in float64: the score can leave float32's range


def hscore_stats(stats: ClassStats, rcond=None) -> float:
    """H-score from the centred Gram, the centred class sums and the counts (the N > D evaluation).

    Args:
      stats: the :class:`~pedjax.streaming.stats.ClassStats`.
      rcond: relative eigenvalue cut-off of the covariance; ``None``: 10·max(N, D)·eps of
        float64. The absolute noise floor comes from the features' largest magnitude.

    Returns:
      The H-score.
    """
    n, d = stats.n, stats.dim
    eps = float(np.finfo(np.float64).eps)
    rcond = 10.0 * max(n, d) * eps if rcond is None else float(rcond)
    noise = n * d * (4.0 * eps * float(np.max(stats.max_abs()))) ** 2
    Gc, csums = stats.centered()
    return float(_hscore_jit(jnp.asarray(Gc), jnp.asarray(csums), jnp.asarray(stats.counts), rcond, noise))


_lfc_jit = jax.jit(lfc_from_moments, static_argnames=("norm",))


def lfc_stats(stats: ClassStats, norm: str = "frobenius") -> float:
    """LFC from the centred Gram, the centred class sums, the counts and the mean, finished in
    float64 on the host (:func:`host_float64`).

    Args:
      stats: the :class:`~pedjax.streaming.stats.ClassStats`.
      norm: ``"frobenius"`` (default) or ``"spectral"`` (:func:`pedjax.metrics.lfc`).

    Returns:
      The LFC score.
    """
    Gc, csums = stats.centered()
    mean = stats.mean()
    with host_float64():
        f64 = [jnp.asarray(a, jnp.float64) for a in (Gc, csums, stats.counts, mean)]
        return float(_lfc_jit(*f64, norm=norm))


# ----------------------------------------------------------------------------------------------
# Regularized H-score: two passes


def _passes_setup(source, stats: ClassStats, delta, engine, why: str):
    """What every multi-pass metric starts with: a ``ValueError`` (``why``) unless ``source`` can be
    read again; the engine; C, D, the statistics' dtype and PED's class shifts ``delta`` [C, D]
    (zeros for ``None``) in that dtype."""
    if not getattr(source, "reiterable", False):
        raise ValueError(f"{source.name}: {why}; pass an array, a .npy file or a callable returning a fresh iterator "
                         "of blocks per pass")
    C, D = stats.num_classes, stats.dim
    dt = stats.gram.dtype
    delta = np.zeros((C, D), dt) if delta is None else np.asarray(delta, dt)
    return engine or Engine(), C, D, dt, delta


def fourth_moment_step(acc, rows, params, num_classes):
    """Pass 2 of the regularized H-score: Σ_i ‖x_i + δ_{y_i} − mean‖⁴ over the block's rows.

    An :class:`~pedjax.streaming.stats.Engine` step: ``rows`` is ``(X, codes, mask)``,
    ``params`` is ``(mean [D], delta [C, D])``; returns ``({"score": running sum}, None)``.
    """
    X, codes, mask = rows
    mean, delta = params
    return {"score": acc["score"] + fourth_moment_block(X, codes, mask, mean, delta)}, None


def hscore_reg_stream(source, stats: ClassStats, delta: np.ndarray | None = None, *, rcond=None,
                      engine: Engine | None = None, progress=None) -> float:
    """Regularized H-score of ``source``'s features from their statistics and a second pass.

    The second pass accumulates Ledoit–Wolf's fourth moment; the score is finished in float64 on
    the host.

    Args:
      source: the block source the statistics came from (re-readable:
        :func:`~pedjax.streaming.stats.as_source`).
      stats: the :class:`~pedjax.streaming.stats.ClassStats` of the (translated) features.
      delta: ``[C, D]`` per-class translation of the rows (PED's shifts), or ``None``.
      rcond: relative eigenvalue cut-off of the shrunk covariance; ``None``:
        ``10·max(N, D)·eps`` of float64 (as :func:`pedjax.metrics.hscore_reg`).
      engine: the :class:`~pedjax.streaming.stats.Engine` (default: every local device).
      progress: a :class:`~pedjax.util.Progress` advanced per block, or ``None``.

    Returns:
      The regularized H-score.

    Raises:
      ValueError: ``source`` cannot be read twice (a one-shot iterable), or a block holds
        NaN/inf.
    """
    engine, C, D, dt, delta = _passes_setup(source, stats, delta, engine, "the regularized H-score reads the features twice")
    mean = stats.mean().astype(dt)
    acc, _ = engine.run(source, fourth_moment_step, init_score, engine.params((mean, delta)), C, D,
                        progress=progress, pass_name="regularized H-score fourth moment")
    Gc, csums = stats.centered()
    with host_float64():
        return float(hscore_reg_from_moments(jnp.asarray(Gc, jnp.float64), jnp.asarray(csums, jnp.float64),
                                             jnp.asarray(stats.counts, jnp.float64),
                                             jnp.asarray(float(acc["score"]), jnp.float64), rcond))


def stream_pass_metric(metric: str, source, stats: ClassStats, delta=None, *, engine=None, progress=None,
                       **options) -> float:
    """A :data:`MULTI_PASS` metric of ``source`` (:func:`sfda_stream`, :func:`hscore_reg_stream`).

    Args:
      metric: ``"sfda"`` or ``"hscore_reg"``.
      source: the block source the statistics came from (re-readable).
      stats: the :class:`~pedjax.streaming.stats.ClassStats` of the (translated) features.
      delta: ``[C, D]`` per-class translation of the rows (PED's shifts), or ``None``.
      engine: the :class:`~pedjax.streaming.stats.Engine` (default: every local device).
      progress: a :class:`~pedjax.util.Progress` advanced per block, or ``None``.
      **options: the metric's options (``rcond`` for ``hscore_reg``; SFDA takes none).

    Returns:
      The score.

    Raises:
      ValueError: ``metric`` is not a multi-pass metric, or ``source`` cannot be read again.
    """
    if metric == "sfda":
        return sfda_stream(source, stats, delta, engine=engine, progress=progress)
    if metric == "hscore_reg":
        return hscore_reg_stream(source, stats, delta, engine=engine, progress=progress, **options)
    raise ValueError(f"metric: {metric!r} is not one of the multi-pass metrics {sorted(MULTI_PASS)}")


# ----------------------------------------------------------------------------------------------
# SFDA: three passes


@jax.jit
def _lda(Sw, means, counts, s):
    """(coef [C, D], intercept [C], shrinkage) of one SFDA pass from its statistics; ``s < 0``:
    compute the shrinkage from Sw (pass 1)."""
    s = jnp.where(s < 0, shrinkage_for(Sw), s)
    coef = cho_solve(cho_factor(shrunk(Sw, s), lower=True), means.T).T
    intercept = -0.5 * jnp.sum(means * coef, axis=1) + jnp.log(counts / jnp.sum(counts))
    return coef, intercept, s


def _host_matmul(a, b):
    return np.asarray(a) @ np.asarray(b)


def matmul(A, B):
    """``A @ B``; float64 on the CPU backend through the host BLAS (XLA:CPU's float64 product is
    slower: docs/design.md, "Float64 and the CPU"): SFDA's per-block logits are an N·D·C product.

    Args:
      A: ``[N, D]``.
      B: ``[D, C]``.

    Returns:
      ``[N, C]``.
    """
    if A.dtype == jnp.float64 and host_kernels_enabled() and A.shape[0] * A.shape[1] * B.shape[1] >= 5e7:
        out = jax.ShapeDtypeStruct((A.shape[0], B.shape[1]), A.dtype)
        return jax.pure_callback(_host_matmul, out, A, B, vmap_method="sequential")
    return A @ B


def _mixed(X, codes, c, delta, p, outer):
    X = (X.astype(delta.dtype) - c) + delta[codes]
    return p * X + (1.0 - p) * outer[codes]


def sfda_mix_step(acc, rows, params, num_classes):
    """SFDA's pass 2 (an :class:`~pedjax.streaming.stats.Engine` step): first posterior →
    ConfMix weight p_i (the per-row output), statistics of the mixed features."""
    X, codes, mask = rows
    shift, c, delta, coef, intercept, outer = params
    Xm = (X.astype(delta.dtype) - c) + delta[codes]
    prob = jax.nn.softmax(matmul(Xm, coef.T) + intercept, axis=1)
    prob = jax.nn.softmax(prob, axis=1)  # the reference softens once more
    p = jnp.take_along_axis(prob, codes[:, None], axis=1)
    X2 = p * Xm + (1.0 - p) * outer[codes]
    return combine(acc, block_stats(X2, codes, mask, shift, num_classes, moments=False)), p[:, 0]


def sfda_score_step(acc, rows, params, num_classes):
    """SFDA's pass 3 (an :class:`~pedjax.streaming.stats.Engine` step): the second posterior's
    mass off each sample's own class (:func:`pedjax.metrics._sfda.off_class_mass`), summed
    (relative precision where SFDA saturates, as :func:`pedjax.metrics._sfda.sfda_deficit_core`)."""
    X, codes, mask, p = rows
    c, delta, outer, coef, intercept = params
    X2 = _mixed(X, codes, c, delta, p[:, None], outer)
    off = off_class_mass(matmul(X2, coef.T) + intercept, codes, num_classes)
    return {"deficit": acc["deficit"] + jnp.sum(jnp.where(mask, off, 0.0))}, None


def init_deficit(num_classes, dim, dtype):
    """An empty scalar accumulator ``{"deficit": 0}`` (SFDA's pass 3)."""
    return {"deficit": jnp.zeros((), dtype)}


def init_mix(num_classes, dim, dtype):
    """Empty accumulators of SFDA's pass 2 (counts, sums, Gram; no moments)."""
    return init_stats(num_classes, dim, dtype, moments=False)


def init_score(num_classes, dim, dtype):
    """An empty scalar accumulator ``{"score": 0}``."""
    return {"score": jnp.zeros((), dtype)}


def _scatter(counts, sums, G):
    n = float(counts.sum())
    Sn = sums / np.sqrt(counts)[:, None]
    W = (G - Sn.T @ Sn) / n
    return 0.5 * (W + W.T)


def sfda_stream(source, stats: ClassStats, delta: np.ndarray | None = None, *, engine: Engine | None = None,
                progress=None) -> float:
    """SFDA of ``source``'s features from their statistics and two more passes.

    Args:
      source: the block source the statistics came from (re-readable:
        :func:`~pedjax.streaming.stats.as_source`).
      stats: the :class:`~pedjax.streaming.stats.ClassStats` of the (translated) features.
      delta: ``[C, D]`` per-class translation of the rows (PED's shifts), or ``None``.
      engine: the :class:`~pedjax.streaming.stats.Engine` (default: every local device).
      progress: a :class:`~pedjax.util.Progress` advanced per block, or ``None``.

    Returns:
      The SFDA score.

    Raises:
      ValueError: ``source`` cannot be read three times (a one-shot iterable), or a block holds
        NaN/inf.
    """
    engine, C, D, dt, delta = _passes_setup(source, stats, delta, engine, "SFDA reads the features three times")
    # every pass works on rows centred at c, the overall mean rounded to the computing dtype, and
    # on class means centred at the same c in float64 (LDA's posteriors do not depend on the
    # origin). Uncentred, a float32 intercept −½·m·coef of features far from 0 cancelled: 4e-3
    # of the score at a mean of 30 spreads (tests/test_streaming_float32.py).
    c = np.asarray(stats.mean(), np.float64).astype(dt)
    c64 = c.astype(np.float64)
    counts = np.asarray(stats.counts, np.float64)
    means = (np.asarray(stats.shift, np.float64) - c64
             + np.asarray(stats.sums, np.float64) / np.maximum(counts, 1.0)[:, None]).astype(dt)
    coef, intercept, s = _lda(jnp.asarray(stats.within_scatter()), jnp.asarray(means), jnp.asarray(stats.counts),
                              jnp.asarray(-1.0, dt))
    outer = (means.sum(axis=0)[None, :] - means) / (C - 1)
    shift2 = (np.asarray(stats.shift, np.float64) - c64).astype(dt)  # pass 2's class shifts, centred rows
    params = engine.params((shift2, c, delta, np.asarray(coef), np.asarray(intercept), outer))
    acc, ps = engine.run(source, sfda_mix_step, init_mix, params, C, D, progress=progress, pass_name="SFDA prediction")
    sums2, G2 = acc["sums"], 0.5 * (acc["gram"] + acc["gram"].T)
    means2 = (shift2.astype(np.float64) + np.asarray(sums2, np.float64) / np.maximum(counts, 1.0)[:, None]).astype(dt)
    coef2, intercept2, _ = _lda(jnp.asarray(_scatter(stats.counts, sums2, G2)), jnp.asarray(means2),
                                jnp.asarray(stats.counts), s)
    params = engine.params((c, delta, outer, np.asarray(coef2), np.asarray(intercept2)))
    acc, _ = engine.run(source, sfda_score_step, init_deficit, params, C, D, extra_rows=lambda b: (ps[b],),
                        progress=progress, pass_name="SFDA ConfMix prediction")
    return 1.0 - float(acc["deficit"]) / stats.n  # finished in float64, as the in-memory SFDA


# ----------------------------------------------------------------------------------------------


def score_from_stats(stats: ClassStats, metric: str, **options) -> float:
    """A one-pass metric (:data:`FROM_STATS`) from statistics alone.

    Args:
      stats: the :class:`~pedjax.streaming.stats.ClassStats` (of the PED-moved features for
        PED: :func:`~pedjax.streaming.ped_stats`).
      metric: ``"logme"``, ``"gbc"``, ``"hscore"`` or ``"lfc"``.
      **options: the metric's options (``gaussian_type`` for GBC, ``rcond`` for the H-score,
        ``norm`` for LFC).

    Returns:
      The score; ``-inf`` for degenerate features.

    Raises:
      ValueError: a metric that needs the samples, or a multi-pass one (``sfda``,
        ``hscore_reg``: :func:`pedjax.streaming.score_stream`).
    """
    require_streamable(metric)
    if metric in MULTI_PASS:
        raise ValueError(f"metric: {metric!r} streams {MULTI_PASS[metric]} passes over the features; use "
                         "pedjax.streaming.score_stream (statistics alone are not enough)")
    if stats.is_degenerate():
        return UNINFORMATIVE
    if metric == "logme":
        return logme_stats(stats)
    if metric == "gbc":
        return gbc_stats(stats, **options)
    if metric == "lfc":
        return lfc_stats(stats, **options)
    return hscore_stats(stats, **options)
