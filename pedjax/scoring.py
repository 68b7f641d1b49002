"""Whole-zoo scoring: every model scored by one compiled, vmapped call per feature dimension.

Models whose features share a shape are stacked along a leading model axis and scored by
``vmap(metric ∘ PED)``. The model axis is processed in chunks whose size bounds memory (the
stacked chunk plus the metric's per-model temporaries stay within ``memory_budget`` bytes); each
chunk is one call of the same compiled executable. With more than one local device the chunk's
model axis is sharded over all of them with ``jax.sharding`` (``shard_map``: each device scores
its own models; no cross-device traffic but the labels).

Degenerate models (features constant over the target up to rounding,
:func:`pedjax._validate.is_degenerate`, judged on the features as given, before PED) are not
run: :func:`score_zoo` gives them the metric's ``uninformative`` score (``-inf``) and
:func:`ped_zoo` returns their features unmoved (docs/design.md, "Degenerate models and NaN scores").

Size: every path that turns a zoo into scores is kept together: stacked and vmapped
(:func:`score_zoo`, :func:`ped_zoo`), feature sets (:func:`score_set`, :func:`ped_set`), stores
loaded in batches (:func:`score_store`), and the switch to streamed statistics above the memory
budgets.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from . import _precision
from ._precision import entry_point
from ._validate import as_float_matrix, check_std, check_vector, encode_labels, is_degenerate
from .features import FeatureSet, FeatureStore
from .metrics import REGISTRY, UNINFORMATIVE, Metric
from .metrics._registry import finish_value
from .physics import PEDConfig, ped_core
from .util import Progress, tracked

#: default memory budget (bytes) for one chunk's stacked features and temporaries
DEFAULT_MEMORY_BUDGET = 1 << 30
#: temporaries of a metric, in copies of one model's features (SFDA/LogME/PED keep ~4–5 live)
_TEMP_COPIES = 6


def _resolve_metric(metric) -> Metric:
    if isinstance(metric, Metric):
        return metric
    if not isinstance(metric, str) or metric not in REGISTRY:
        raise ValueError(f"metric: unknown metric {metric!r}; choose one of {sorted(REGISTRY)}")
    return REGISTRY[metric]


def _as_named(features) -> dict[str, Any]:
    if isinstance(features, Mapping):
        if len(features) == 0:
            raise ValueError("features: the zoo is empty; pass at least one model's features")
        return {str(k): v for k, v in features.items()}
    arr = np.asarray(features)
    if arr.ndim != 3:
        raise ValueError(
            f"features: expected a dict {{name: [N, D]}} or an array [M, N, D], got shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise ValueError("features: the zoo is empty; pass at least one model's features")
    return {f"model_{i}": arr[i] for i in range(arr.shape[0])}


def _stats_for(names, source_stats, dims, X_by_name, degenerate=()):
    """Per-model (mean, std); ``None`` → each model's target statistics."""
    out = {}
    if source_stats is None:
        for n in names:
            X = X_by_name[n]
            out[n] = (X.mean(axis=0), X.std(axis=0))
        return out
    if not isinstance(source_stats, Mapping):
        means, stds = source_stats
        means, stds = np.asarray(means), np.asarray(stds)
        if means.ndim != 2 or means.shape[0] != len(names) or stds.shape != means.shape:
            raise ValueError(
                "source_stats: as arrays expected (means [M, D], stds [M, D]) matching the zoo, "
                f"got {means.shape} and {stds.shape}; or pass a dict {{name: (mean, std)}}"
            )
        source_stats = {n: (means[i], stds[i]) for i, n in enumerate(names)}
    missing = [n for n in names if n not in source_stats]
    if missing:
        raise ValueError(f"source_stats: no statistics for model(s) {missing}; give (mean, std) for every model")
    for n in names:
        mean, std = source_stats[n]
        out[n] = (
            check_vector(mean, f"source_stats[{n!r}] mean", dims[n]),
            check_std(std, f"source_stats[{n!r}] std", dims[n], allow_all_zero=n in degenerate),
        )
    return out


@functools.cache
def _zoo_fn(core, options: tuple, use_ped: bool, n_dev: int, batch: str = "vmap"):
    """Compiled ``(Xs [m,N,D], means [m,D], stds [m,D], y, cfg) -> scores [m]``; with
    ``batch="host"`` (:attr:`Metric.batch`) it returns the (PED-moved) features instead."""
    opts = dict(options)

    def one(X, mean, std, y, cfg, num_classes):
        if use_ped:
            X = ped_core(X, y, num_classes, mean, std, cfg).features
        if batch == "host":  # the moved features; the metric runs per model on the host
            return X
        return core(X, y, num_classes, **opts)

    def many(Xs, means, stds, y, cfg, num_classes):
        return jax.vmap(one, in_axes=(0, 0, 0, None, None, None))(Xs, means, stds, y, cfg, num_classes)

    if n_dev > 1:
        mesh = Mesh(np.array(jax.local_devices()[:n_dev]), ("model",))

        def sharded(Xs, means, stds, y, cfg, num_classes):
            f = functools.partial(many, num_classes=num_classes)
            return jax.shard_map(
                lambda a, b, c, yy, cc: f(a, b, c, yy, cc),
                mesh=mesh,
                in_specs=(P("model"), P("model"), P("model"), P(), P()),
                out_specs=P("model"),
                check_vma=False,
            )(Xs, means, stds, y, cfg)

        return jax.jit(sharded, static_argnames=("num_classes",)), mesh
    return jax.jit(many, static_argnames=("num_classes",)), None


def _chunks(names, arrays, n: int, batch_size, memory_budget: int, n_dev: int) -> list[tuple[int, list[str], int]]:
    """``(D, members, padded size)`` per compiled call: models grouped by feature width, each
    group cut into chunks whose stacked features and temporaries fit ``memory_budget``."""
    groups: dict[int, list[str]] = {}
    for name in names:
        groups.setdefault(arrays[name].shape[1], []).append(name)
    chunks = []
    for d, members in groups.items():
        itemsize = arrays[members[0]].dtype.itemsize if _precision.x64_enabled() else 4
        per_model = _TEMP_COPIES * n * d * max(itemsize, 4)
        b = batch_size or max(1, int(memory_budget // max(per_model, 1)))
        b = max(1, min(b, len(members)))
        if n_dev > 1:
            b = -(-b // n_dev) * n_dev  # a multiple of the device count
        for i in range(0, len(members), b):
            chunks.append((d, members[i : i + b], b))
    return chunks


def _stacked(d, members, b, arrays, stats, mesh):
    """The chunk's stacked ``(Xs, means, stds)`` (padded to ``b`` models; sharded with a mesh)."""
    padded = members + [members[-1]] * (b - len(members))
    Xs = np.stack([arrays[k] for k in padded])
    if stats is not None:
        means = np.stack([stats[k][0] for k in padded])
        stds = np.stack([stats[k][1] for k in padded])
    else:
        means = np.zeros((b, d), Xs.dtype)
        stds = np.ones((b, d), Xs.dtype)
    if mesh is not None:
        shard = NamedSharding(mesh, P("model"))
        Xs, means, stds = (jax.device_put(a, shard) for a in (Xs, means, stds))
    return Xs, means, stds


def _check_ped(ped) -> None:
    if not isinstance(ped, PEDConfig):
        raise ValueError(f"ped: expected a PEDConfig or None, got {type(ped).__name__}")
    ped.validate()


@entry_point
def ped_zoo(
    features,
    labels,
    ped: PEDConfig | None = None,
    source_stats=None,
    *,
    batch_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Every model's features moved by PED: ``{name: [N, D_m]}`` in the zoo's order.

    Batched like :func:`score_zoo` (one compiled, vmapped PED per feature width, chunked by
    ``memory_budget``, sharded over devices). ``score_zoo(ped_zoo(F, y, cfg, s), y, metric)``
    equals ``score_zoo(F, y, metric, ped=cfg, source_stats=s)`` to rounding; move once and score
    many metrics when several are wanted (the moved features do not depend on the metric).
    Computes in the precision of :func:`pedjax.precision` (or of the extra keyword ``precision=``).

    Args:
      features: ``{name: [N, D_m]}`` or an array ``[M, N, D]`` (names ``model_0``…).
      labels: target labels ``[N]`` shared by all models (any integers, at least two classes).
      ped: the :class:`PEDConfig`; ``None`` means the released defaults, ``PEDConfig()``.
      source_stats: ``{name: (mean [D], std [D])}`` or ``(means [M, D], stds [M, D])``; ``None``:
        each model's own target statistics.
      batch_size: models per compiled call; ``None``: as many as ``memory_budget`` allows.
      memory_budget: bytes for one chunk's stacked features and temporaries.
      progress: show a progress bar over chunks.

    Returns:
      ``{name: moved features [N, D_m]}`` (NumPy arrays) in the zoo's order; degenerate models'
      features are returned as given, unmoved.

    Raises:
      ValueError: naming the argument: an empty zoo or ``features`` of the wrong shape; bad
        ``labels``; a model's features not a finite [N, D] array; ``ped`` not a valid
        :class:`PEDConfig`; ``source_stats`` of the wrong shape, missing a model, or with a bad
        mean or std (see :func:`pedjax.ped`).
    """
    plan = _plan(features, labels, None, PEDConfig() if ped is None else ped, source_stats, None, batch_size, memory_budget)
    out: dict[str, np.ndarray] = {}
    for d, members, b in tracked(plan.chunks, progress, f"PED on {len(plan.names)} models"):
        moved = np.asarray(plan.fn(*plan.args(d, members, b), num_classes=plan.num_classes))
        out.update({k: moved[i] for i, k in enumerate(members)})
    out.update(plan.degenerate)  # nothing to move: as given (its dtype decides the rounding level)
    names = plan.names
    return {k: out[k] for k in names}


@dataclasses.dataclass
class _Plan:
    """Everything :func:`score_zoo` needs to run: validated arrays, chunks and the compiled function."""

    m: Metric | None  # None: PED alone (ped_zoo)
    names: list
    arrays: dict
    stats: dict | None
    cfg: PEDConfig
    codes: np.ndarray
    num_classes: int
    chunks: list
    fn: Any
    mesh: Any
    host_options: dict
    degenerate: dict  # {model: its features as given} of degenerate models: not run (module docstring)

    def args(self, d, members, b):
        """The compiled function's arguments for one chunk (``num_classes`` by keyword)."""
        return (*_stacked(d, members, b, self.arrays, self.stats, self.mesh), jnp.asarray(self.codes), self.cfg)


def _plan(features, labels, metric, ped, source_stats, metric_options, batch_size, memory_budget) -> _Plan:
    """Validate a zoo once and lay out its compiled calls; ``metric=None``: PED alone."""
    m = _resolve_metric(metric) if metric is not None else None
    kind = m.input if m is not None else "features"
    if ped is not None:
        _check_ped(ped)
        if m is not None and m.input != "features":
            raise ValueError(f"ped: PED moves feature clusters; metric {m.name!r} takes {m.input}, not features")
    codes, classes = encode_labels(labels, "labels")
    n = codes.shape[0]
    named = _as_named(features)
    names = list(named)
    arrays: dict[str, np.ndarray] = {}
    degenerate: dict[str, np.ndarray] = {}
    for name in names:
        if kind == "labels":
            src, src_classes = encode_labels(named[name], f"features[{name!r}]", min_classes=1)
            if src.shape[0] != n:
                raise ValueError(f"features[{name!r}]: has {src.shape[0]} labels but labels has {n}")
            arrays[name] = np.eye(src_classes.size)[src]
        else:
            arrays[name] = as_float_matrix(named[name], f"features[{name!r}]", n=n)
            if kind == "probs" and np.any(arrays[name] < 0):
                raise ValueError(f"features[{name!r}]: probabilities must be non-negative")
            if kind == "features" and is_degenerate(named[name]):  # judged in the input's own dtype
                degenerate[name] = np.asarray(named[name])
    dims = {k: v.shape[1] for k, v in arrays.items()}
    stats = _stats_for(names, source_stats, dims, arrays, set(degenerate)) if ped is not None else None
    options = tuple(sorted((metric_options or {}).items()))
    n_dev = jax.local_device_count()
    # PED alone, or a host metric's compiled part (also PED alone): one shared program
    if m is not None and m.zoo is not None:  # a zoo-level metric: its per-model components are vmapped
        accepted_core = inspect.signature(m.zoo[0]).parameters
        options = tuple((k, v) for k, v in options if k in accepted_core)
    fn, mesh = (_zoo_fn(None, (), True, n_dev, "host") if m is None or m.batch == "host"
                else _zoo_fn(m.core if m.zoo is None else m.zoo[0], options, ped is not None, n_dev))
    # batch="host": the public function takes its own options; core-only ones (NLEEP's padded PCA
    # width) do not apply to it, as it picks the exact shapes per model
    accepted = inspect.signature(m.fn).parameters if m is not None else {}
    host_options = {k: v for k, v in (metric_options or {}).items() if k in accepted}
    live = [k for k in names if k not in degenerate]
    return _Plan(m, names, arrays, stats, ped if ped is not None else PEDConfig(), codes, int(classes.size),
                 _chunks(live, arrays, n, batch_size, memory_budget, n_dev), fn, mesh, host_options, degenerate)


class Compiling:
    """Compilations started by :func:`precompile`, per metric; :meth:`wait` before scoring.

    Args:
      futures: ``{metric name: [concurrent.futures.Future]}``, one future per compiled program.

    Attributes:
      futures: as given.
    """

    def __init__(self, futures: dict):
        self.futures = futures

    def wait(self, metric: str | None = None) -> int:
        """Block until ``metric``'s programs (all, with ``None``) are compiled.

        Args:
          metric: a metric's registry name, or ``None`` for every metric.

        Returns:
          How many programs were waited for (0 for a metric with nothing compiled ahead).

        Raises:
          Exception: whatever a compilation raised, re-raised here.
        """
        keys = list(self.futures) if metric is None else [metric]
        fs = [f for k in keys for f in self.futures.get(k, ())]
        for f in fs:
            f.result()
        return len(fs)


@entry_point
def precompile(features, labels, metrics, ped: PEDConfig | None = None, source_stats=None, *,
               metric_options: Mapping[str, Any] | None = None, batch_size: int | None = None,
               memory_budget: int = DEFAULT_MEMORY_BUDGET, workers: int = 2) -> Compiling:
    """Compile, on ``workers`` background threads, every program that
    ``score_zoo(features, labels, metric, ped, …)`` will run for each of ``metrics``.

    XLA compiles a program on one core, and compiling — not computing — dominates scoring a small
    zoo with many metrics; compiling several programs at once uses the other cores. Nothing is
    executed on the threads (concurrent executions on the CPU backend can deadlock): call
    ``score_zoo`` from one thread as usual, after :meth:`Compiling.wait` for that metric, and it
    finds its programs in JAX's cache. The same programs serve any features of the same shapes
    (e.g. PED-moved ones from :func:`ped_zoo`). Metrics with ``batch="host"`` compile per model
    inside their own function and are skipped (with ``ped``, their PED program is compiled).
    Inputs are validated here, before returning. The programs are compiled in this call's
    precision (:func:`pedjax.precision`, or the extra keyword ``precision=``).

    Args:
      features: the zoo, as for :func:`score_zoo`.
      labels: target labels ``[N]``, as for :func:`score_zoo`.
      metrics: a metric (registry name or :class:`pedjax.metrics.Metric`) or a sequence of them.
      ped: a :class:`PEDConfig` when the scoring will move features with PED, else ``None``.
      source_stats: as for :func:`score_zoo`.
      metric_options: as for :func:`score_zoo`.
      batch_size: as for :func:`score_zoo` (it decides the programs' shapes).
      memory_budget: as for :func:`score_zoo`.
      workers: the number of compiling threads (values below 1 count as 1).

    Returns:
      A :class:`Compiling` holding one future per program.

    Raises:
      ValueError: as :func:`score_zoo` for an unknown metric or bad inputs.
    """
    from concurrent.futures import ThreadPoolExecutor

    names = [metrics] if isinstance(metrics, (str, Metric)) else list(metrics)
    plans = {_resolve_metric(k).name: _plan(features, labels, k, ped, source_stats, metric_options, batch_size, memory_budget)
             for k in names}
    x64 = _precision.x64_enabled()  # the worker threads compile in this call's precision

    def compile_one(f, a, c):
        with _precision.scope(x64):
            return f.lower(*a, num_classes=c).compile()

    pool = ThreadPoolExecutor(max_workers=max(1, int(workers)), thread_name_prefix="pedjax-compile")
    futures: dict = {}
    try:
        for name, plan in plans.items():
            assert plan.m is not None  # a metric's plan (only ped_zoo plans PED alone)
            if plan.m.batch == "host" and ped is None:
                continue
            seen = set()
            for d, members, b in plan.chunks:
                if (d, b) in seen:
                    continue
                seen.add((d, b))
                args = plan.args(d, members, b)
                futures.setdefault(name, []).append(
                    pool.submit(compile_one, plan.fn, args, plan.num_classes))
    finally:
        pool.shutdown(wait=False)  # the threads finish the queued compilations, then exit
    return Compiling(futures)


def _stream_if_large(features, labels, metric, ped, source_stats, metric_options, batch_size, memory_budget, progress):
    """Scores from streamed sufficient statistics (:mod:`pedjax.streaming`) when one model's
    features and temporaries exceed ``memory_budget`` and the metric supports it; else ``None``."""
    from . import streaming

    name = metric.name if isinstance(metric, Metric) else metric
    if batch_size is not None or name not in streaming.SUPPORTED:
        return None
    try:
        named = _as_named(features)
    except ValueError:
        return None  # _plan reports it
    sizes = {k: np.shape(v) for k, v in named.items()}
    if not all(len(s) == 2 for s in sizes.values()):
        return None
    if max(_TEMP_COPIES * s[0] * s[1] * 8 for s in sizes.values()) <= memory_budget:
        return None
    if source_stats is not None and not isinstance(source_stats, Mapping):
        means, stds = source_stats
        source_stats = {k: (means[i], stds[i]) for i, k in enumerate(named)}
    import warnings

    warnings.warn(f"score_zoo: a model's features ({max(sizes.values())}) with the metric's temporaries exceed "
                  f"memory_budget={memory_budget} bytes; scoring {name} from streamed sufficient statistics "
                  "(pedjax.streaming, same scores; docs/streaming.md)", stacklevel=3)
    return streaming.score_stream(named, labels, name, ped=ped, source_stats=source_stats if ped is not None else None,
                                  metric_options=metric_options, progress=progress)


@entry_point
def score_zoo(
    features,
    labels,
    metric: str | Metric = "logme",
    ped: PEDConfig | None = None,
    source_stats=None,
    *,
    metric_options: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
) -> dict[str, float]:
    """Score every model of a zoo; returns ``{name: score}`` in the zoo's order.

    When one model's features (with the metric's temporaries) exceed ``memory_budget``, no
    ``batch_size`` is given and the metric can be computed from sufficient statistics
    (``pedjax.streaming.SUPPORTED``: LogME, SFDA, GBC, H-score, regularized H-score, LFC), the zoo
    is scored through :func:`pedjax.streaming.score_stream` instead (a warning says so): same
    scores, memory O(C·D + D²) per model (docs/streaming.md).

    A model whose features are degenerate (constant over the target samples up to rounding)
    scores the metric's ``uninformative`` value, ``-inf``, with or without PED; a NaN from a
    metric is returned as NaN (both rank last: :func:`pedjax.rank.ranking`).

    Computes in the precision of :func:`pedjax.precision` (or of the extra keyword
    ``precision="auto" | "float64" | "float32"``; docs/precision.md).

    Args:
      features: ``{name: [N, D_m]}`` or an array ``[M, N, D]`` (names ``model_0``…). For a
        metric with ``input="probs"`` these are source-model probabilities; for ``"labels"``,
        integer source labels ``[N]``.
      labels: target labels ``[N]`` shared by all models (any integers); for a metric of real
        targets (``Metric.target == "real"``, e.g. ``logme_reg``) the targets ``[N]`` or ``[N, K]``.
      metric: a name in :data:`pedjax.metrics.REGISTRY`, or a :class:`pedjax.metrics.Metric`.
      ped: a :class:`PEDConfig` to move the features with PED before scoring, or ``None``.
      source_stats: ``{name: (mean [D], std [D])}`` or ``(means [M, D], stds [M, D])``; with PED
        and ``None``, each model's own target statistics are used (ignored without PED).
      metric_options: extra keyword options for the metric core (static, hashable values).
      batch_size: models per compiled call; default from ``memory_budget``.
      memory_budget: bytes for one compiled call's stacked features and the metric's temporaries
        (default 1 GiB); it sets the chunk size and the switch to streaming.
      progress: show a progress bar over chunks.

    Returns:
      ``{name: score}`` (Python floats) in the zoo's order.

    Raises:
      ValueError: naming the argument: an unknown ``metric``; an empty zoo or ``features`` of the
        wrong shape; bad ``labels`` (or real targets); a model's inputs not finite, of the wrong
        length, or negative probabilities; ``ped`` not a valid :class:`PEDConfig`, or given with a
        metric that does not read features; ``source_stats`` of the wrong shape, missing a model,
        or with a bad mean or std (see :func:`pedjax.ped`).
    """
    if _resolve_metric(metric).target == "real":
        return _score_real_targets(features, labels, _resolve_metric(metric), ped, metric_options, progress)
    streamed = _stream_if_large(features, labels, metric, ped, source_stats, metric_options, batch_size, memory_budget, progress)
    if streamed is not None:
        return streamed
    plan = _plan(features, labels, metric, ped, source_stats, metric_options, batch_size, memory_budget)
    m, fn = plan.m, plan.fn
    assert m is not None  # a metric's plan (only ped_zoo plans PED alone)
    scores: dict = {}
    desc = f"scoring {len(plan.names)} models ({m.name}{' + PED' if ped else ''})"
    for d, members, b in tracked(plan.chunks, progress, desc):
        args = plan.args(d, members, b)
        out: list[float] | np.ndarray
        if m.batch == "host":
            moved = np.asarray(fn(*args, num_classes=plan.num_classes)) if ped is not None else args[0]
            out = [m.fn(moved[i], plan.codes, **plan.host_options) for i in range(len(members))]
        else:
            out = np.asarray(fn(*args, num_classes=plan.num_classes))
            if m.zoo is None:
                out = finish_value(m, out)  # the core's values to scores, in float64 on the host
        del args
        for k, v in zip(members, out[: len(members)], strict=True):
            scores[k] = float(v) if m.zoo is None else tuple(np.asarray(v, np.float64).tolist())
    if m.zoo is not None:  # the published zoo-level combination over the scored (non-degenerate) models
        scores = dict(m.zoo[1](scores)) if scores else {}
    if plan.degenerate:  # only feature metrics find degenerate models, and theirs is a float
        assert m.uninformative is not None
        scores.update({k: float(m.uninformative) for k in plan.degenerate})
    names = plan.names
    return {k: scores[k] for k in names}


def _score_real_targets(features, targets, m: Metric, ped, metric_options, progress) -> dict[str, float]:
    """:func:`score_zoo` for a metric of real-valued targets (``Metric.target == "real"``): the
    targets validated once, the core vmapped over each group of models of equal width, degenerate
    models ``-inf``. PED moves classes and does not apply."""
    if ped is not None:
        raise ValueError(f"ped: PED moves class clusters; metric {m.name!r} takes real-valued targets, pass ped=None")
    from .metrics._logme_reg import as_targets

    Y = as_targets(targets, "labels")
    named = _as_named(features)
    arrays = {k: as_float_matrix(v, f"features[{k!r}]", n=Y.shape[0]) for k, v in named.items()}
    scores = {k: UNINFORMATIVE for k, v in named.items() if is_degenerate(v)}
    groups: dict[int, list[str]] = {}
    for k, v in arrays.items():
        if k not in scores:
            groups.setdefault(v.shape[1], []).append(k)
    fn = jax.jit(jax.vmap(functools.partial(m.core, **dict(metric_options or {})), in_axes=(0, None)))
    for members in tracked(list(groups.values()), progress, f"scoring {len(named)} models ({m.name})"):
        out = np.asarray(fn(jnp.asarray(np.stack([arrays[k] for k in members])), jnp.asarray(Y)))
        scores.update({k: float(v) for k, v in zip(members, out, strict=True)})
    return {k: scores[k] for k in named}


# ----------------------------------------------------------------------------------------------
# FeatureSets and feature stores


def score_set(fs: FeatureSet, metric: str = "logme", ped: PEDConfig | None = None, **kwargs) -> dict[str, float]:
    """:func:`score_zoo` on a :class:`FeatureSet`.

    Probability metrics (LEEP) read its ``source_probs``, label metrics (NCE) their argmax, feature
    metrics its features; PED uses its ``source_stats`` (``None``: the target's own statistics).

    Args:
      fs: the :class:`pedjax.features.FeatureSet`.
      metric: a metric's registry name (or a :class:`pedjax.metrics.Metric`).
      ped: a :class:`PEDConfig` to move the features with first, or ``None``.
      **kwargs: further keyword arguments of :func:`score_zoo` (``metric_options``,
        ``batch_size``, ``memory_budget``, ``progress``, ``precision``).

    Returns:
      ``{model: score}`` in the set's model order.

    Raises:
      ValueError: an unknown metric; a probability or label metric on a set without
        ``source_probs``; anything :func:`score_zoo` rejects.
    """
    m = _resolve_metric(metric)
    return score_zoo(fs.inputs(m.input), fs.labels, metric=m, ped=ped,
                     source_stats=fs.source_stats if ped is not None else None, **kwargs)


def ped_set(fs: FeatureSet, ped: PEDConfig | None = None, **kwargs) -> FeatureSet:
    """The same :class:`FeatureSet` with its features moved by PED (:func:`ped_zoo`).

    Scores many metrics + PED while running PED once.

    Args:
      fs: the :class:`pedjax.features.FeatureSet` (its ``source_stats`` are PED's statistics;
        ``None``: the target's own).
      ped: the :class:`PEDConfig` (``None``: the released defaults).
      **kwargs: further keyword arguments of :func:`ped_zoo` (``batch_size``, ``memory_budget``,
        ``progress``, ``precision``).

    Returns:
      A new :class:`pedjax.features.FeatureSet` with the moved features and PED's wall time added
      to ``seconds``.

    Raises:
      ValueError: anything :func:`ped_zoo` rejects.
    """
    import time

    t0 = time.perf_counter()
    moved = ped_zoo(fs.features, fs.labels, ped, fs.source_stats, **kwargs)
    return fs.replace(features=moved, seconds=fs.seconds + time.perf_counter() - t0)


#: bytes of float64 features :func:`score_store` loads at once (a batch of models)
DEFAULT_LOAD_BUDGET = 2 << 30


def feature_metric(metric: str) -> str:
    """The registry name of a feature metric (what a zoo's features can be scored with).

    Args:
      metric: a metric name (any case).

    Returns:
      The registry name (lower case).

    Raises:
      ValueError: naming ``--metric``: an unknown metric, a metric of real-valued targets, or one
        that reads source probabilities or labels instead of features.
    """
    feature_metrics = sorted(k for k, v in REGISTRY.items() if v.input == "features" and v.target == "classes")
    name = metric.lower() if isinstance(metric, str) else metric
    if name not in REGISTRY:
        raise ValueError(f"--metric: unknown metric {metric!r}; feature metrics: {feature_metrics}")
    if REGISTRY[name].target != "classes":
        raise ValueError(f"--metric: {name!r} takes real-valued regression targets, not a task's class labels; use "
                         f"one of {feature_metrics} (or pedjax.score_zoo with the targets from Python)")
    if REGISTRY[name].input != "features":
        raise ValueError(
            f"--metric: {name!r} takes source-model {REGISTRY[name].input}, not features, and a zoo "
            f"holds features; use one of {feature_metrics} (or pedjax.score_zoo from Python)"
        )
    return name


def _stream_path(store, model: str, metric: str, load_budget: int):
    """The ``.npy`` file of ``model`` when a results folder holds it and its float64 copy exceeds
    ``load_budget`` (and the metric streams): such models are scored by :mod:`pedjax.streaming`."""
    from . import streaming

    if metric not in streaming.SUPPORTED:
        return None
    files = getattr(store, "store", None)
    key = getattr(store, "_fkey", None)
    if files is None or key is None or not hasattr(files, "root"):
        return None
    path = files.root / f"{key(model)}.npy"
    try:
        head = np.load(path, mmap_mode="r")
    except Exception:
        return None  # store.features reports it
    if head.ndim != 2 or head.shape[0] * head.shape[1] * 8 <= load_budget:
        return None
    import warnings

    warnings.warn(f"score: {path.name} ({head.shape[0]}×{head.shape[1]}) is larger than the load budget; scoring it from "
                  "streamed sufficient statistics (pedjax.streaming)", stacklevel=3)
    return str(path)


@entry_point
def score_store(store: FeatureStore, metric: str = "logme", ped=None, *, progress: bool = False, load_budget: int = DEFAULT_LOAD_BUDGET, **score_zoo_kwargs) -> dict[str, float]:
    """Score every model of ``store``; ``{model: score}`` in the store's order.

    Equals ``pedjax.score_zoo(features, labels, metric, ped, source_stats)`` on the arrays the zoo
    holds (features as float64, source statistics = mean/std of the source features, ddof 0).
    Models are loaded in batches of at most ``load_budget`` bytes of features and scored one batch
    (and one label set) at a time, so a store larger than memory scores with a progress bar. A
    results-folder model whose float64 features alone exceed ``load_budget`` is scored from
    streamed statistics (:mod:`pedjax.streaming`, with a warning) when the metric supports it.
    Computes in the precision of :func:`pedjax.precision` (or of the extra keyword ``precision=``).

    Args:
      store: the :class:`pedjax.features.FeatureStore` (an ``.npz`` zoo or a results folder).
      metric: a feature metric's name (:func:`feature_metric`).
      ped: a :class:`PEDConfig` to move the features with first, or ``None``.
      progress: show a progress bar over the models.
      load_budget: bytes of features loaded at once (default 2 GiB).
      **score_zoo_kwargs: further keyword arguments of :func:`score_zoo` (``metric_options``,
        ``batch_size``, ``memory_budget``).

    Returns:
      ``{model: score}`` (floats) in the store's model order.

    Raises:
      ValueError: ``metric`` is not a feature metric (:func:`feature_metric`), or what
        :func:`score_zoo` rejects.
      FileNotFoundError: with ``ped``, the store lacks a model's source-set features.
    """
    metric = feature_metric(metric)
    if ped is not None:
        store.check_source()
    out: dict[str, float] = {}
    bar = Progress(progress, len(store.models), f"{metric}{' + PED' if ped is not None else ''}", unit="models", transient=True)
    try:
        batch: dict[str, np.ndarray] = {}
        size = 0
        todo = list(store.models)
        for i, m in enumerate(todo):
            path = _stream_path(store, m, metric, load_budget)
            if path is not None:  # larger than the load budget: streamed, block by block
                from . import streaming

                stats = {m: store.source_stats(m)} if ped is not None else None
                bar.close()  # one live bar at a time: the blocks' bar while this model streams
                out[m] = streaming.score_stream({m: path}, store.labels(m), metric, ped=ped, source_stats=stats,
                                                progress=progress)[m]
                bar = Progress(progress, len(store.models), f"{metric}{' + PED' if ped is not None else ''}", unit="models", transient=True)
                bar.advance(len(out) + len(batch))
                if i < len(todo) - 1 or not batch:
                    continue
                X = None
            else:
                X = store.features(m)
            if X is not None:
                batch[m] = X
                size += X.nbytes
            if batch and (size >= load_budget or i == len(todo) - 1):
                groups: dict[bytes, list[str]] = {}
                for name in batch:
                    y = np.asarray(store.labels(name))
                    groups.setdefault(y.tobytes() + str(y.shape).encode() + str(y.dtype).encode(), []).append(name)
                for names in groups.values():
                    stats = {n: store.source_stats(n) for n in names} if ped is not None else None
                    s = score_zoo({n: batch[n] for n in names}, store.labels(names[0]), metric=metric, ped=ped, source_stats=stats, **score_zoo_kwargs)
                    out.update(s)
                    bar.advance(len(names))
                batch, size = {}, 0
    finally:
        bar.close()
    return {m: out[m] for m in store.models}
