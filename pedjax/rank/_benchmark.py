"""THE benchmark loop: FeatureSets × metrics × PED configurations → scores and weighted τ.

``pedjax demo``, ``experiments/zoo_benchmark.py`` and the meta-learning studies all run this one
loop. Per feature set:

1. the feature metrics' programs start compiling on background threads
   (:func:`pedjax.scoring.precompile`; compiling, never executing, runs concurrently);
2. PED runs **once per configuration** for all metrics (:func:`pedjax.scoring.ped_set`): the
   moved features do not depend on the metric, and scoring them reuses the static programs;
3. every metric scores the set statically and, if it reads features, after each PED
   configuration (LEEP/NCE read source-class probabilities: PED does not apply);
4. with ground truth on the set, each variant's weighted Kendall τ against it.

A variant is named ``metric`` (static) or ``metric+SUFFIX`` for the PED configuration given as
``peds={SUFFIX: PEDConfig}``. A variant that fails or gives a non-finite score on a set is
recorded in ``errors`` (τ is NaN there), never hidden.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..features import FeatureSet
from ..metrics import REGISTRY, names
from ..physics import PEDConfig
from ..scoring import ped_set, precompile, score_set
from .measures import weighted_tau


def variant_name(metric: str, suffix: str | None) -> str:
    """The name of a benchmark variant: ``metric`` (static) or ``metric+suffix`` (after PED).

    Args:
      metric: a metric's registry name.
      suffix: the PED configuration's key in ``peds``, or ``None`` for the static score.

    Returns:
      ``metric`` or ``f"{metric}+{suffix}"``.
    """
    return metric if suffix is None else f"{metric}+{suffix}"


@dataclass
class BenchmarkResult:
    """What :func:`benchmark` measured.

    Attributes:
      tasks: the feature sets' task names, in order.
      variants: every variant name, in order.
      scores: ``{task: {variant: {model: score}}}``.
      tau: ``{variant: {task: weighted τ}}`` (sets with ground truth only; NaN where a variant failed).
      errors: ``{variant: {task: message}}`` (a variant with no finite score at all).
      unscored: ``{variant: {task: [models]}}`` whose score is ``-inf`` (degenerate) or NaN: they
        rank last, tied, in τ (the ranking rule of :func:`pedjax.rank.ranking`).
      seconds: ``{variant: wall seconds over all tasks}``.
      feature_seconds: ``{task: seconds}`` the feature set took to make (``FeatureSet.seconds``).
      wall_seconds: the wall time of the whole :func:`benchmark` call.
    """

    tasks: list[str]
    variants: list[str]
    scores: dict = field(default_factory=dict)
    tau: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    feature_seconds: dict = field(default_factory=dict)
    wall_seconds: float = 0.0
    unscored: dict = field(default_factory=dict)

    def mean_tau(self) -> dict[str, float]:
        """Mean τ over the tasks per variant (NaN if any task's τ is missing or NaN).

        Returns:
          ``{variant: mean weighted τ}`` for the variants in :attr:`tau`.
        """
        out = {}
        for v, by_task in self.tau.items():
            vals = [by_task.get(t, math.nan) for t in self.tasks]
            out[v] = float(np.mean(vals)) if vals and all(math.isfinite(x) for x in vals) else math.nan
        return out


def _ranked_last(values) -> list[float]:
    """``values`` with every non-finite entry (−inf, NaN) replaced by one value below all finite
    ones: weighted τ depends on ranks only, so they rank last, tied."""
    v = np.asarray(values, float)
    ok = np.isfinite(v)
    low = v[ok].min() - 1.0 - abs(v[ok].min()) if ok.any() else 0.0
    return np.where(ok, v, low).tolist()


def _check(sets: FeatureSet | Sequence[FeatureSet], metrics: Sequence[str] | None,
           peds: Mapping[str, PEDConfig] | None) -> tuple[list[FeatureSet], list[str], dict[str, PEDConfig]]:
    sets = [sets] if isinstance(sets, FeatureSet) else list(sets)
    if not sets:
        raise ValueError("sets: give at least one FeatureSet")
    metrics = list(metrics) if metrics is not None else names()
    unknown = [m for m in metrics if m not in names()]
    if unknown:
        why = "takes real-valued targets, not class labels" if unknown[0] in REGISTRY else "is unknown"
        raise ValueError(f"--metric: metric {unknown[0]!r} {why}; choose one of {names()}")
    peds = dict(peds or {})
    for k, cfg in peds.items():
        if not isinstance(cfg, PEDConfig):
            raise ValueError(f"peds[{k!r}]: expected a PEDConfig, got {type(cfg).__name__}")
        cfg.validate()
    return sets, metrics, peds


def benchmark(sets: FeatureSet | Sequence[FeatureSet], metrics: Sequence[str] | None = None,
              peds: Mapping[str, PEDConfig] | None = None, *, compile_ahead: bool = True,
              on_variant: Callable[[str, str, float, float], None] | None = None) -> BenchmarkResult:
    """Score every set with every metric, static and after each PED configuration (module docstring).

    A variant that raises ``ValueError`` or ``FloatingPointError`` on a set, or gives no finite
    score at all, is recorded in :attr:`BenchmarkResult.errors` rather than raised.

    Args:
      sets: a :class:`pedjax.features.FeatureSet` or a sequence of them (τ is computed on sets
        with a truth table).
      metrics: registry names of class-label metrics; ``None``: every registered one
        (:func:`pedjax.metrics.names`). Probability and label metrics need the sets'
        ``source_probs``.
      peds: ``{suffix: PEDConfig}``: each feature metric is also scored after each configuration
        (variant ``metric+suffix``).
      compile_ahead: compile the feature metrics' programs on background threads first
        (:func:`pedjax.scoring.precompile`).
      on_variant: called as ``on_variant(task, variant, tau, seconds)`` after each variant
        (progress printing).

    Returns:
      A :class:`BenchmarkResult`.

    Raises:
      ValueError: ``sets`` empty; (``--metric``) an unknown metric or one of real-valued targets;
        (``peds[key]``) a value that is not a valid :class:`pedjax.PEDConfig`; a set's inputs that
        :func:`pedjax.scoring.precompile` or :func:`pedjax.scoring.ped_set` reject (they run
        before the per-variant recording).
    """
    sets, metrics, peds = _check(sets, metrics, peds)
    t_all = time.perf_counter()
    # host-batched metrics (NLEEP) compile inline: they go first, while the threads compile the rest
    order = sorted(metrics, key=lambda m: REGISTRY[m].batch != "host")
    feature_metrics = [m for m in order if REGISTRY[m].input == "features"]
    variants = [variant_name(m, s) for m in sorted(metrics)
                for s in [None] + (list(peds) if REGISTRY[m].input == "features" else [])]
    res = BenchmarkResult([fs.task for fs in sets], variants)
    for fs in sets:
        task = fs.task
        res.feature_seconds[task] = round(fs.seconds, 2)
        compiling = precompile(fs.features, fs.labels, feature_metrics, workers=2) if compile_ahead and feature_metrics else None
        moved = {s: ped_set(fs, cfg) for s, cfg in peds.items()} if feature_metrics else {}
        res.scores[task] = {}
        for metric in order:
            if compiling is not None:
                compiling.wait(metric)
            suffixes = [None] + (list(peds) if REGISTRY[metric].input == "features" else [])
            for s in suffixes:
                name = variant_name(metric, s)
                t0 = time.perf_counter()
                tau = math.nan
                try:
                    sc = score_set(fs if s is None else moved[s], metric)
                    bad = [m for m, v in sc.items() if not math.isfinite(v)]
                    if len(bad) == len(sc):
                        raise FloatingPointError(f"no finite score at all ({sorted(set(map(str, sc.values())))})")
                    if bad:  # -inf (a degenerate model) and NaN rank last, tied (docs/design.md)
                        res.unscored.setdefault(name, {})[task] = bad
                    judged = fs.judged()
                    if len(judged) >= 2:  # judged models exist only with a truth table
                        assert fs.truth is not None
                        tau = float(weighted_tau(_ranked_last([sc[m] for m in judged]), [fs.truth[m] for m in judged]))
                except (ValueError, FloatingPointError) as exc:  # recorded and reported, never hidden
                    res.errors.setdefault(name, {})[task] = f"{type(exc).__name__}: {exc}"
                    sc = None
                res.scores[task][name] = sc
                if fs.truth is not None:
                    res.tau.setdefault(name, {})[task] = tau
                dt = time.perf_counter() - t0
                res.seconds[name] = res.seconds.get(name, 0.0) + dt
                if on_variant is not None:
                    on_variant(task, name, tau, dt)
    res.wall_seconds = time.perf_counter() - t_all
    return res
