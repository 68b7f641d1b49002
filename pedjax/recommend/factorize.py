"""Masked low-rank factorisation of a history: latent model and task vectors (Fennec's first stage).

Fennec (Bai et al., "Pre-Trained Model Recommendation for Downstream Fine-tuning", arXiv
2403.06382) factorises the (model × task) transfer matrix non-negatively into latent model
vectors U [M, r] and task vectors V [T, r]; a model's score on a task is uᵀv. pedjax fits

    min_{U, V}  Σ_{(i,j) observed} (Y_ij − u_iᵀ v_j)² / n_obs  +  reg · (‖U‖²/M + ‖V‖²/T)

with optax (Adam, a fixed number of steps inside one ``lax.scan``), from a seeded initialisation;
``nonneg=True`` projects U and V onto U, V ≥ 0 after every step (projected gradient, as NMF with
missing entries), ``nonneg=False`` is plain low-rank. Y is the history preprocessed per task
(:func:`prepare`): z-scores for plain low-rank, min–max to [0, 1] for the non-negative variant,
so tasks of different accuracy scale weigh alike. The rank and ``reg`` are chosen by held-out
entries (:func:`select`: seeded random splits of the observed entries, vmapped over ``reg`` and
splits, one compiled program per rank). Everything is deterministic for a seed.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._precision import entry_point
from .history import History


@dataclass(frozen=True)
class Factors:
    """A fitted factorisation of a history, and what produced it.

    Attributes:
      U: ``[M, r]`` latent model vectors (rows in the order of ``models``).
      V: ``[T, r]`` latent task vectors (rows in the order of ``tasks``).
      rank: the rank r.
      reg: the regularisation weight of the fit.
      nonneg: whether U and V were constrained to be non-negative.
      models: the model names of U's rows.
      tasks: the task names of V's rows.
      heldout_error: RMSE on held-out entries at the chosen (rank, reg), on the preprocessed
        scale (:func:`prepare`); NaN when not measured.
    """

    U: np.ndarray
    V: np.ndarray
    rank: int
    reg: float
    nonneg: bool
    models: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    heldout_error: float = float("nan")

    def reconstruct(self) -> np.ndarray:
        """The fitted matrix ``U Vᵀ`` [M, T] (preprocessed scale)."""
        return self.U @ self.V.T

    def task_vector(self, task: str) -> np.ndarray:
        """The latent vector ``v`` [r] of ``task``; a ``ValueError`` when ``task`` is not in :attr:`tasks`."""
        return self.V[self.tasks.index(task)]

    def scores(self, v) -> dict[str, float]:
        """Every model's score on a task with latent vector ``v``.

        Args:
          v: a task vector [r] (e.g. :func:`pedjax.recommend.proxy.latent_vector`).

        Returns:
          ``{model: u_mᵀ v}``.
        """
        return dict(zip(self.models, map(float, self.U @ np.asarray(v, np.float64)), strict=True))


def prepare(values: np.ndarray, nonneg: bool) -> np.ndarray:
    """Per-task preprocessing of a history's values before factorising.

    Args:
      values: ``[M, T]`` transfer values, NaN where missing.
      nonneg: min–max each task to [0, 1] (``True``, for the non-negative fit) or z-score it.

    Returns:
      ``[M, T]`` float64; NaN stays NaN, a constant task becomes 0.5 (min–max) or 0 (z-scores).
    """
    v = np.asarray(values, np.float64)
    if nonneg:
        lo, hi = np.nanmin(v, axis=0, keepdims=True), np.nanmax(v, axis=0, keepdims=True)
        span = hi - lo
        return np.where(span > 0, (v - lo) / np.where(span > 0, span, 1.0), 0.5)
    mu, sd = np.nanmean(v, axis=0, keepdims=True), np.nanstd(v, axis=0, keepdims=True)
    return np.where(sd > 0, (v - mu) / np.where(sd > 0, sd, 1.0), 0.0)


#: latent columns every fit carries (ranks up to this share one compiled program; unused columns are zero)
RMAX = 8


@functools.partial(jax.jit, static_argnames=("rmax", "steps", "nonneg"))
def _fit(Y, mask, reg, key, rank, *, rmax: int, steps: int, nonneg: bool, lr: float = 0.05):
    """One masked factorisation: returns (U, V) [·, rmax] with columns ≥ ``rank`` zero (``rank``
    is traced, so every rank ≤ rmax shares this program). ``Y`` has zeros where ``mask`` is 0."""
    M, T = Y.shape
    ku, kv = jax.random.split(key)
    cols = (jnp.arange(rmax) < rank).astype(Y.dtype)
    scale = 1.0 / jnp.sqrt(rank.astype(Y.dtype))
    U = jax.random.normal(ku, (M, rmax), Y.dtype) * scale * cols
    V = jax.random.normal(kv, (T, rmax), Y.dtype) * scale * cols
    if nonneg:
        U, V = jnp.abs(U), jnp.abs(V)
    n_obs = jnp.maximum(mask.sum(), 1.0)

    def loss(p):
        U, V = p
        r = (Y - U @ V.T) * mask
        return jnp.sum(r * r) / n_obs + reg * (jnp.sum(U * U) / M + jnp.sum(V * V) / T)

    opt = optax.adam(lr)
    params = (U, V)
    state = opt.init(params)

    def step(carry, _):
        params, state = carry
        g = jax.tree_util.tree_map(lambda a: a * cols, jax.grad(loss)(params))
        upd, state = opt.update(g, state, params)
        params = optax.apply_updates(params, upd)
        if nonneg:
            params = jax.tree_util.tree_map(lambda a: jnp.maximum(a, 0.0), params)
        return (params, state), None

    (params, _), _ = jax.lax.scan(step, (params, state), None, length=steps)
    return params


def _check(Y, mask):
    Y = np.asarray(Y, np.float64)
    if Y.ndim != 2:
        raise ValueError(f"Y: expected a [M, T] matrix, got shape {Y.shape}")
    mask = np.isfinite(Y) if mask is None else np.asarray(mask, bool) & np.isfinite(Y)
    if mask.sum() == 0:
        raise ValueError("Y: no observed entries")
    return np.where(mask, Y, 0.0), mask.astype(np.float64)


@entry_point
def factorize(Y, mask=None, *, rank: int = 2, reg: float = 1e-2, nonneg: bool = False, seed: int = 0,
              steps: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """Fit Y ≈ U Vᵀ on the observed entries (module docstring). Deterministic for ``seed``.

    Args:
      Y: ``[M, T]`` matrix (preprocessed, :func:`prepare`); NaN entries are unobserved.
      mask: ``[M, T]`` boolean, True where observed (and finite); default: the finite entries.
      rank: the rank r (a positive integer).
      reg: regularisation weight (finite, ≥ 0).
      nonneg: project U and V onto U, V ≥ 0 after every step.
      seed: seed of the initialisation.
      steps: Adam steps.

    Returns:
      ``(U [M, rank], V [T, rank])`` as NumPy arrays.

    Raises:
      ValueError: ``Y`` is not 2-D or has no observed entry, ``rank`` is not a positive
        integer, or ``reg`` is negative or not finite.
    """
    Yz, m = _check(Y, mask)
    if not (isinstance(rank, (int, np.integer)) and rank >= 1):
        raise ValueError(f"rank: a positive integer, got {rank!r}")
    if not (np.isfinite(reg) and reg >= 0):
        raise ValueError(f"reg: a finite number ≥ 0, got {reg!r}")
    rmax = max(RMAX, int(rank))
    U, V = _fit(jnp.asarray(Yz), jnp.asarray(m), jnp.asarray(float(reg), jnp.float64), jax.random.PRNGKey(seed),
                jnp.asarray(int(rank)), rmax=rmax, steps=int(steps), nonneg=bool(nonneg))
    return np.asarray(U)[:, :rank], np.asarray(V)[:, :rank]


def _holdout_masks(mask: np.ndarray, frac: float, splits: int, seed: int) -> np.ndarray:
    """``[splits, M, T]`` held-out masks: ``frac`` of the observed entries each, never a task's
    or a model's last observed entry (every row and column keeps one entry to fit)."""
    rng = np.random.default_rng(seed)
    obs = np.argwhere(mask > 0)
    out = np.zeros((splits,) + mask.shape)
    for s in range(splits):
        k = max(1, int(round(frac * len(obs))))
        held = np.zeros(mask.shape, bool)
        for idx in rng.permutation(len(obs)):
            if held.sum() >= k:
                break
            i, j = obs[idx]
            keep = (mask > 0) & ~held
            if keep[i].sum() > 1 and keep[:, j].sum() > 1:
                held[i, j] = True
        out[s] = held
    return out


@entry_point
def heldout_errors(Y, mask=None, *, ranks: Sequence[int] = (1, 2, 3, 4), regs: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0),
                   nonneg: bool = False, frac: float = 0.2, splits: int = 3, seed: int = 0,
                   steps: int = 1500) -> dict[tuple[int, float], float]:
    """Held-out RMSE of the factorisation for every (rank, reg).

    ``splits`` seeded random splits each hold out ``frac`` of the observed entries (never a
    row's or a column's last one); the fit sees the rest. All fits run as one compiled program.

    Args:
      Y: ``[M, T]`` matrix (preprocessed, :func:`prepare`); NaN entries are unobserved.
      mask: ``[M, T]`` boolean, True where observed; default: the finite entries.
      ranks: the ranks to try (positive integers).
      regs: the regularisation weights to try.
      nonneg: non-negative factorisation.
      frac: fraction of the observed entries held out per split.
      splits: number of random splits.
      seed: seed of the splits and of the initialisations.
      steps: Adam steps per fit.

    Returns:
      ``{(rank, reg): RMSE}``, the RMSE on the held-out entries (root of the mean over splits
      of the squared error).

    Raises:
      ValueError: ``Y`` is not 2-D or has no observed entry.
    """
    Yz, m = _check(Y, mask)
    held = _holdout_masks(m, frac, splits, seed)
    reg_values = np.asarray(regs, np.float64)
    out: dict[tuple[int, float], float] = {}
    keys = jax.random.split(jax.random.PRNGKey(seed), splits)
    rmax = max(RMAX, max(ranks))
    train = jnp.asarray(m * (1 - held))
    one = functools.partial(_fit, jnp.asarray(Yz), rmax=rmax, steps=steps, nonneg=nonneg)
    # splits × regs × ranks in one program
    fit = jax.vmap(jax.vmap(jax.vmap(one, in_axes=(0, None, 0, None)), in_axes=(None, 0, None, None)),
                   in_axes=(None, None, None, 0))
    U, V = fit(train, jnp.asarray(reg_values), keys, jnp.asarray(list(ranks)))  # [K, R, S, M, rmax], [K, R, S, T, rmax]
    pred = np.einsum("kasmr,kastr->kasmt", np.asarray(U), np.asarray(V))
    err = ((pred - Yz) ** 2 * held).sum(axis=(-2, -1)) / held.sum(axis=(1, 2))
    for b, r in enumerate(ranks):
        for a, reg in enumerate(reg_values):
            out[(int(r), float(reg))] = float(np.sqrt(err[b, a].mean()))
    return out


def select(history: History, *, nonneg: bool = False, ranks: Sequence[int] | None = None,
           regs: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0), frac: float = 0.2, splits: int = 3, seed: int = 0,
           steps: int = 1500) -> Factors:
    """Factorise ``history`` with the (rank, reg) of least held-out error, refitted on every observed entry.

    Ties in the held-out error go to the smaller rank, then the larger ``reg``.

    Args:
      history: the :class:`~pedjax.recommend.history.History` to factorise (preprocessed with
        :func:`prepare`).
      nonneg: non-negative factorisation (min–max preprocessing) or plain low-rank (z-scores).
      ranks: the ranks to try; default 1 … min(4, T − 1, M − 1) (at least 1).
      regs: the regularisation weights to try.
      frac: fraction of the observed entries held out per split (:func:`heldout_errors`).
      splits: number of held-out splits.
      seed: seed of the splits and the fits.
      steps: Adam steps per fit.

    Returns:
      The refitted :class:`Factors`, with ``heldout_error`` the chosen pair's held-out RMSE.

    Raises:
      ValueError: the history has no observed entry.
    """
    Y = prepare(history.values, nonneg)
    M, T = Y.shape
    if ranks is None:
        ranks = tuple(range(1, max(1, min(4, T - 1, M - 1)) + 1))
    errs = heldout_errors(Y, ranks=ranks, regs=regs, nonneg=nonneg, frac=frac, splits=splits, seed=seed, steps=steps)
    (rank, reg), err = min(errs.items(), key=lambda kv: (kv[1], kv[0][0], -kv[0][1]))
    U, V = factorize(Y, rank=rank, reg=reg, nonneg=nonneg, seed=seed, steps=steps)
    return Factors(U, V, rank, reg, nonneg, history.models, history.tasks, err)
