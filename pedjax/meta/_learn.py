"""Meta-learning PED's hyperparameters through the whole chain (issue 7).

PED (scan path) → metric → soft weighted τ against ground truth is differentiable end to end, so
the ranking quality itself can be optimised over PED's hyperparameters with optax:

    θ = log(nsigma, constant, time_step)           (log-parametrised: the fields stay > 0)
    loss(θ) = −Σ_k w_k · soft_τ_w(standardise(scores_k(θ)), truth_k) / Σ_k w_k

over the tasks k of a zoo (a task = one target dataset: features of every model, labels,
source statistics, ground truth per model). Scores are standardised per task (zero mean, unit
std over the models) so that ``temperature`` is scale-free across metrics.

The objective and its gradient are one ``jax.jit``-compiled function of (θ, task weights); the
optax step is compiled once around it and reused for every step and — through the task
weights — for every leave-one-task-out fold (a held-out task gets weight 0).

A task is a :class:`pedjax.features.FeatureSet` with ground truth (:mod:`pedjax.meta.tasks` makes
them). Learned configurations are saved by :mod:`pedjax.meta.configs`.

Precision: the objective computes in the process's precision (it is not a parity entry point);
turn ``jax_enable_x64`` on for float64, as ``pedjax meta learn`` does.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._validate import encode_labels
from ..features import FeatureSet
from ..metrics import REGISTRY
from ..physics import PEDConfig, ped_core
from ..rank import soft_weighted_tau, weighted_tau

#: hyperparameters learned by default (PEDConfig's differentiable, positive fields)
DEFAULT_LEARN = ("nsigma", "constant", "time_step")
#: learnable fields (positive, so a log parametrisation applies)
LEARNABLE = ("nsigma", "constant", "time_step")


# ----------------------------------------------------------------------------------------------
# the compiled objective


def _pack(tasks: Sequence[FeatureSet]):
    """Static structure + array pytree: per task, groups of equal-D models stacked."""
    if not tasks:
        raise ValueError("tasks: need at least one task")
    static, arrays, names = [], [], []
    for t in tasks:
        if t.truth is None:
            raise ValueError(f"tasks[{t.task!r}]: has no truth table (FeatureSet.truth is None)")
        models = [m for m in t.features if m in t.truth]
        if len(models) < 2:
            raise ValueError(f"tasks[{t.task!r}]: fewer than 2 models have both features and a truth value")
        codes, classes = encode_labels(t.labels, f"tasks[{t.task!r}].labels")
        groups: dict[int, list[str]] = {}
        for m in models:
            X = np.asarray(t.features[m], np.float64)
            if X.ndim != 2 or X.shape[0] != codes.shape[0] or not np.all(np.isfinite(X)):
                raise ValueError(f"tasks[{t.task!r}].features[{m!r}]: expected finite [N={codes.shape[0]}, D], got {X.shape}")
            groups.setdefault(X.shape[1], []).append(m)
        order = [m for g in groups.values() for m in g]
        packed = []
        for ms in groups.values():
            Xs = np.stack([np.asarray(t.features[m], np.float64) for m in ms])
            if t.source_stats is None:
                mean, std = Xs.mean(axis=1), Xs.std(axis=1)
            else:
                mean = np.stack([np.asarray(t.source_stats[m][0], np.float64) for m in ms])
                std = np.stack([np.asarray(t.source_stats[m][1], np.float64) for m in ms])
            packed.append((jnp.asarray(Xs), jnp.asarray(mean), jnp.asarray(std)))
        truth = np.array([float(t.truth[m]) for m in order])
        arrays.append((packed, jnp.asarray(codes), jnp.asarray(truth)))
        static.append(int(classes.size))
        names.append(order)
    return tuple(static), arrays, names


def _config(theta: Mapping[str, jax.Array], base: PEDConfig) -> PEDConfig:
    return base.replace(**{k: jnp.exp(v) for k, v in theta.items()})


def make_objective(tasks: Sequence[FeatureSet], metric: str = "logme", base: PEDConfig | None = None,
                   temperature: float = 0.1, remat: bool = False, metric_options: Mapping[str, Any] | None = None):
    """Build ``(fn, names, data)``: ``fn(theta, weights, data) -> (loss, (soft_taus [K], scores))``.

    ``theta`` is ``{field: log value}``; ``weights`` [K] weigh the tasks (0 drops one); ``data``
    is the tasks' packed arrays (features, statistics, labels, truth) — an argument rather than
    closed-over constants, so that compiling ``fn`` does not constant-fold the whole zoo;
    ``scores`` is a list over tasks of the scores [M_k] in ``names[k]``'s model order. Not jitted
    (see :class:`MetaLearner`). PED runs on the scan path. Only the models of a task that have a
    ground truth are used.

    Args:
      tasks: the K tasks, :class:`pedjax.features.FeatureSet` s with ground truth (``source_stats``
        ``None``: each model's target statistics).
      metric: a feature metric of class labels (registry name).
      base: the configuration whose other fields stay fixed (``None``: the released defaults).
      temperature: the soft τ's temperature, on the per-task standardised scores.
      remat: rematerialise each model's PED + metric in the backward pass (less memory for large
        zoos, at some extra time; docs/design.md, "Meta-learning").
      metric_options: extra keyword options of the metric's core.

    Returns:
      ``(fn, names, data)``: the objective, ``names[k]`` the models of task k in score order, and
      ``data`` the packed arrays to pass as ``fn``'s third argument.

    Raises:
      ValueError: (``metric``) not a feature metric of class labels; an invalid ``base``;
        (``tasks``) no task, a task without a truth table or with fewer than two models that have
        both features and a truth value, features that are not finite [N, D], bad labels.
    """
    if metric not in REGISTRY or REGISTRY[metric].input != "features" or REGISTRY[metric].target != "classes":
        feats = sorted(k for k, v in REGISTRY.items() if v.input == "features" and v.target == "classes")
        raise ValueError(f"metric: {metric!r} is not a feature metric; choose one of {feats}")
    core, finish = REGISTRY[metric].core, REGISTRY[metric].finish
    opts = dict(metric_options or {})
    base = (base or PEDConfig()).validate()
    static, arrays, names = _pack(tasks)

    def one(X, mean, std, y, cfg, C):
        v = core(ped_core(X, y, C, mean, std, cfg, path="scan").features, y, C, **opts)
        return v if finish is None else finish(v, jnp)

    def fn(theta, weights, data):
        cfg = _config(theta, base)
        taus, all_scores = [], []
        for C, (packed, y, truth) in zip(static, data, strict=True):
            def f(X, m, s, y=y, C=C):
                return one(X, m, s, y, cfg, C)

            if remat:
                f = jax.checkpoint(f)
            scores = jnp.concatenate([jax.vmap(f)(Xs, means, stds) for Xs, means, stds in packed])
            z = (scores - jnp.mean(scores)) / (jnp.std(scores) + 1e-12)
            taus.append(soft_weighted_tau(z, truth, temperature))
            all_scores.append(scores)
        taus = jnp.stack(taus)
        loss = -jnp.sum(weights * taus) / jnp.sum(weights)
        return loss, (taus, all_scores)

    return fn, names, arrays


@dataclasses.dataclass
class MetaResult:
    """What :meth:`MetaLearner.fit` (and :func:`learn`) returns.

    Attributes:
      config: the :class:`pedjax.PEDConfig` with the best training objective seen (the start
        included).
      history: one dict per evaluated step: ``step``, ``loss``, ``soft_tau`` (per task) and the
        learned hyperparameters' values.
      seconds: wall time of the fit.
      compile_seconds: wall time of the first step (compilation included).
    """

    config: PEDConfig
    history: list[dict]  # per step: loss, soft τ per task, the hyperparameters
    seconds: float
    compile_seconds: float


class MetaLearner:
    """Compiled once: ``value_and_grad`` of the objective and the optax step for these tasks.

    >>> ml = MetaLearner(tasks, metric="logme")
    >>> res = ml.fit(steps=30)               # all tasks
    >>> res = ml.fit(steps=30, weights=w)    # e.g. leave one task out: w[k] = 0

    Args:
      tasks: the tasks (:func:`make_objective`).
      metric: a feature metric of class labels (registry name).
      base: the starting configuration; its fields not learned stay fixed (``None``: the released
        defaults).
      learn: the fields to learn, among :data:`LEARNABLE` (log-parametrised).
      temperature: the soft τ's temperature (> 0).
      learning_rate: Adam's learning rate (on the log values).
      remat: rematerialise PED + metric in the backward pass (:func:`make_objective`).
      metric_options: extra keyword options of the metric's core.

    Attributes:
      base: the validated starting configuration.
      tasks: the tasks, as a list.
      metric: the metric's name.
      learn: the learned fields, as a tuple.
      temperature: the soft τ's temperature.
      names: per task, its models in score order.
      opt: the optax optimizer (Adam).
      traces: how often the objective was traced (compiled): once per learner while the arguments
        keep their shapes and types.

    Raises:
      ValueError: ``learn`` empty or naming a field not in :data:`LEARNABLE`; ``temperature`` not
        > 0; an invalid ``base`` or a learned field of it not > 0; what :func:`make_objective`
        rejects.
    """

    def __init__(self, tasks: Sequence[FeatureSet], metric: str = "logme", base: PEDConfig | None = None, *,
                 learn: Sequence[str] = DEFAULT_LEARN, temperature: float = 0.1, learning_rate: float = 0.05,
                 remat: bool = False, metric_options: Mapping[str, Any] | None = None):
        bad = [k for k in learn if k not in LEARNABLE]
        if bad or not learn:
            raise ValueError(f"learn: choose among {list(LEARNABLE)}, got {list(learn)}")
        if not (temperature > 0):
            raise ValueError(f"temperature: must be > 0, got {temperature!r}")
        self.base = (base or PEDConfig()).validate()
        for k in learn:
            if not getattr(self.base, k) > 0:
                raise ValueError(f"base.{k}: must be > 0 to be learned in log space, got {getattr(self.base, k)!r}")
        self.tasks, self.metric, self.learn, self.temperature = list(tasks), metric, tuple(learn), temperature
        fn, self.names, self._data = make_objective(self.tasks, metric, self.base, temperature, remat, metric_options)
        self.opt = optax.adam(learning_rate)
        self.traces = 0  # how often the objective was traced (compiled): once per learner

        def vg(theta, weights, data):
            self.traces += 1  # runs at trace time only
            return jax.value_and_grad(fn, has_aux=True)(theta, weights, data)

        self._vg = jax.jit(vg)

        @jax.jit
        def update(theta, opt_state, g):  # the optax step: tiny, compiled once too
            upd, opt_state = self.opt.update(g, opt_state, theta)
            return optax.apply_updates(theta, upd), opt_state

        self._update = update

    def value_and_grad(self, theta, weights):
        """The one expensive compiled function: ``(theta, weights) -> ((loss, (soft τ [K], scores)), grad)``.

        Args:
          theta: ``{field: log value}`` of the learned fields (:meth:`theta0`).
          weights: [K] task weights (:meth:`weights`).

        Returns:
          ``((loss, (soft_taus [K], scores)), grad)`` with ``grad`` shaped like ``theta``.
        """
        return self._vg(theta, weights, self._data)

    def step(self, theta, opt_state, weights):
        """One meta-gradient step.

        Args:
          theta: ``{field: log value}``.
          opt_state: the optax state (``self.opt.init(theta)`` to start).
          weights: [K] task weights.

        Returns:
          ``(theta, opt_state, loss, soft_taus, grad)``: the updated parameters and state, and the
          loss, soft τ per task and gradient at the parameters given.
        """
        (loss, (taus, _)), g = self.value_and_grad(theta, weights)
        theta, opt_state = self._update(theta, opt_state, g)
        return theta, opt_state, loss, taus, g

    def theta0(self, cfg: PEDConfig | None = None) -> dict:
        """The parameters of a configuration.

        Args:
          cfg: the configuration (``None``: the base configuration).

        Returns:
          ``{field: log value}`` of the learned fields (float64 scalars).
        """
        cfg = cfg or self.base
        # strongly typed float64 scalars (a weak-typed start would retrace after the first update)
        return {k: jnp.asarray(np.log(np.float64(getattr(cfg, k)))) for k in self.learn}

    def weights(self, holdout: int | None = None) -> jax.Array:
        """Task weights: 1 for every task, 0 for the held-out one.

        Args:
          holdout: the index of the task to leave out, or ``None``.

        Returns:
          A [K] array.
        """
        w = np.ones(len(self.tasks))
        if holdout is not None:
            w[holdout] = 0.0
        return jnp.asarray(w)

    def config(self, theta) -> PEDConfig:
        """The configuration of parameters ``theta``.

        Args:
          theta: ``{field: log value}``.

        Returns:
          The base :class:`pedjax.PEDConfig` with the learned fields set to ``exp(theta)``.
        """
        return self.base.replace(**{k: float(np.exp(np.asarray(v))) for k, v in theta.items()})

    def fit(self, steps: int = 30, weights=None, theta=None) -> MetaResult:
        """Run ``steps`` optax steps from ``theta`` (default: the base config).

        The last iterate is evaluated too; the result is the configuration with the best finite
        training objective seen (the start included).

        Args:
          steps: the number of optax steps (an integer ≥ 1).
          weights: [K] task weights (``None``: every task weighs 1).
          theta: the start ``{field: log value}`` (``None``: :meth:`theta0`).

        Returns:
          A :class:`MetaResult`.

        Raises:
          ValueError: (``steps``) not an integer ≥ 1.
        """
        if not (isinstance(steps, int) and steps >= 1):
            raise ValueError(f"steps: must be an integer ≥ 1, got {steps!r}")
        weights = self.weights() if weights is None else jnp.asarray(weights, jnp.float64)
        theta = self.theta0() if theta is None else theta
        opt_state = self.opt.init(theta)
        t0 = time.perf_counter()
        history, best = [], (np.inf, theta)
        compile_s = 0.0
        for i in range(steps + 1):
            ts = time.perf_counter()
            if i < steps:
                new, opt_state, loss, taus, g = self.step(theta, opt_state, weights)
            else:  # evaluate the last iterate
                (loss, (taus, _)), g = self.value_and_grad(theta, weights)
                new = theta
            loss = float(loss)
            if i == 0:
                compile_s = time.perf_counter() - ts
            history.append({"step": i, "loss": loss, "soft_tau": [float(v) for v in np.asarray(taus)],
                            **{k: float(np.exp(np.asarray(v))) for k, v in theta.items()}})
            if np.isfinite(loss) and loss < best[0]:
                best = (loss, theta)
            theta = new
        return MetaResult(self.config(best[1]), history, time.perf_counter() - t0, compile_s)

    def scores(self, cfg: PEDConfig | None = None) -> list[dict[str, float]]:
        """Per task ``{model: score}`` with PED at ``cfg``.

        Args:
          cfg: the configuration (``None``: the base configuration).

        Returns:
          One ``{model: score}`` per task, in task order.
        """
        theta = self.theta0(cfg)
        (_, (_, scores)), _ = self.value_and_grad(theta, self.weights())
        return [dict(zip(n, map(float, np.asarray(s)), strict=True)) for n, s in zip(self.names, scores, strict=True)]

    def taus(self, cfg: PEDConfig | None = None) -> list[float]:
        """Exact weighted τ (SciPy's) per task at ``cfg``.

        Args:
          cfg: the configuration (``None``: the base configuration).

        Returns:
          The weighted τ of each task's scores against its ground truth, in task order.
        """
        out: list[float] = []
        for t, sc in zip(self.tasks, self.scores(cfg), strict=True):
            assert t.truth is not None  # checked by _pack
            out.append(weighted_tau([sc[m] for m in sc], [float(t.truth[m]) for m in sc]))
        return out


def learn(tasks: Sequence[FeatureSet], metric: str = "logme", base: PEDConfig | None = None, *, steps: int = 30, **kwargs) -> MetaResult:
    """Learn PED hyperparameters maximising the mean soft weighted τ over ``tasks`` (see module doc).

    ``MetaLearner(tasks, metric, base, **kwargs).fit(steps)``.

    Args:
      tasks: the tasks (:class:`pedjax.features.FeatureSet` s with ground truth).
      metric: a feature metric of class labels (registry name).
      base: the starting configuration (``None``: the released defaults).
      steps: the number of optax steps.
      **kwargs: further arguments of :class:`MetaLearner` (``learn``, ``temperature``,
        ``learning_rate``, ``remat``, ``metric_options``).

    Returns:
      A :class:`MetaResult`.

    Raises:
      ValueError: what :class:`MetaLearner` or :meth:`MetaLearner.fit` reject.
    """
    return MetaLearner(tasks, metric, base, **kwargs).fit(steps)
