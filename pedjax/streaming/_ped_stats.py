"""PED on sufficient statistics: class shifts from class sums and sums of squares, then the moved
statistics from the shifts — no moved feature matrix.

:func:`pedjax.physics.ped_core` works in the rescaled space Z = (X − μ̂)/σ̂ (σ̂ floored at
``eps``): class centres c_j = mean of Z over class j, radii ρ_j = sqrt(Σ_d var_jd) with the ddof-0
variances of Z. From the statistics (:class:`~pedjax.streaming.stats.ClassStats`):

    c_j = (m_j − μ̂)/σ̂,   var_jd(Z) = var_jd(X)/σ̂_d²,   var_jd(X) = Q_jd/n_j − (S_jd/n_j)²,

the same simulator (:func:`pedjax.physics.simulator`, the released or the paper's rule, the
same step count and exit ratio) moves the centres, the shift of a dead dimension of X is zeroed
as in ``ped_core``, and the class translation in the original space is δ_j = Δc_j·σ̂. The moved
statistics follow exactly (:meth:`ClassStats.translated`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._precision import entry_point
from .._validate import check_std, check_vector
from ..physics import PEDConfig, simulator
from .stats import ClassStats


@jax.jit
def _simulate(centers0, rho, counts, cfg):
    init_fn, step_fn = simulator(rho, counts, cfg)
    final = jax.lax.while_loop(lambda s: ~s.done, step_fn, init_fn(centers0))
    return final.centers, final.step


def resolve_source_stats(stats: ClassStats, source_mean=None, source_std=None, degenerate: bool = False):
    """(μ̂, σ̂) as the in-memory path takes them: given ones validated, ``None`` → the target's own.

    Args:
      stats: the target's :class:`~pedjax.streaming.stats.ClassStats`.
      source_mean: ``[D]`` source mean, or ``None`` (with ``source_std``).
      source_std: ``[D]`` source standard deviation (≥ 0), or ``None``.
      degenerate: allow an all-zero ``source_std`` (a model whose target features are
        degenerate too).

    Returns:
      ``(mean [D], std [D])``.

    Raises:
      ValueError: only one of ``source_mean``/``source_std`` given; a
        :class:`~pedjax._validate.ParamError` for a wrong length, NaN/inf, a negative std or
        (unless ``degenerate``) an all-zero std.
    """
    if (source_mean is None) != (source_std is None):
        raise ValueError("source_mean/source_std: give both or neither")
    if source_mean is None:
        return stats.mean(), stats.std()
    d = stats.dim
    return check_vector(source_mean, "source_mean", d), check_std(source_std, "source_std", d, allow_all_zero=degenerate)


@entry_point
def ped_shifts(stats: ClassStats, source_mean=None, source_std=None, cfg: PEDConfig | None = None):
    """PED's class translations in the original feature space, from the statistics alone.

    Matches :func:`pedjax.ped` / ``ped_core`` on the full matrix to rounding (tests).

    Args:
      stats: the target's :class:`~pedjax.streaming.stats.ClassStats`.
      source_mean: ``[D]`` mean of the model's features on its source set; ``None`` (with
        ``source_std``): the target's own.
      source_std: ``[D]`` their standard deviation (ddof 0), or ``None``.
      cfg: the :class:`~pedjax.physics.PEDConfig` (default ``PEDConfig()``).

    Returns:
      ``(delta [C, D], steps)``: each class's translation (zero on dead dimensions) and the
      number of simulation steps applied.

    Raises:
      ValueError: an invalid ``cfg``, or bad source statistics (:func:`resolve_source_stats`).
    """
    cfg = (cfg or PEDConfig()).validate()
    mean, std = resolve_source_stats(stats, source_mean, source_std, stats.is_degenerate())
    sd = np.maximum(std, cfg.eps)
    centers0 = (stats.class_means() - mean) / sd
    rho = np.sqrt(np.sum(stats.class_var() / (sd * sd), axis=1))
    final, steps = _simulate(jnp.asarray(centers0), jnp.asarray(rho), jnp.asarray(stats.counts), cfg)
    shift = np.asarray(final) - centers0
    # ped_core judges dead dimensions in the computation dtype (float64)
    shift[:, stats.dead_dimensions(eps=float(np.finfo(np.float64).eps))] = 0.0
    return shift * sd, int(steps)


@entry_point
def ped_stats(stats: ClassStats, source_mean=None, source_std=None, cfg: PEDConfig | None = None) -> ClassStats:
    """The statistics of the PED-moved features (:func:`ped_shifts`, then :meth:`ClassStats.translated`).

    Args:
      stats: the target's :class:`~pedjax.streaming.stats.ClassStats`.
      source_mean: ``[D]`` source mean, or ``None`` (the target's own).
      source_std: ``[D]`` source standard deviation, or ``None``.
      cfg: the :class:`~pedjax.physics.PEDConfig` (default ``PEDConfig()``).

    Returns:
      The moved :class:`~pedjax.streaming.stats.ClassStats`.

    Raises:
      ValueError: an invalid ``cfg``, or bad source statistics.
    """
    delta, _ = ped_shifts(stats, source_mean, source_std, cfg)
    return stats.translated(delta)
