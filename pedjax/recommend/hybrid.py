"""Merging scores: the Fennec score (transfer + meta) and the hybrid with label-aware metrics.

**The rule.** Every component is standardised over the models of the task (z-score; a score that
is not a finite number — a degenerate model's −inf, a NaN — is put one standard deviation below
the lowest finite score, so it ranks last and does not distort the others), then

    fennec  = z(transfer) + β · z(meta)                       (β = :data:`META_WEIGHT`)
    hybrid  = (1 − w) · z(history score) + w · z(metric score)

where the history score is Fennec's or history mean rank, and the metric is any metric ± PED.
``w`` is chosen from :data:`WEIGHT_GRID` to maximise the mean weighted τ over the *other* tasks
(:func:`learn_weight`), each of those tasks' history score itself computed without that task and
without the held-out one (nested leave-one-task-out: the held-out task's ground truth informs
neither its history score nor its weight). Ties between grid points are resolved to their mean.

**Leave-one-domain-out.** With ``groups`` (``{task: domain}``, e.g. :attr:`pedjax.data.Task.domain`)
the unit held out is a task's whole group: the held-out task's history score is computed without
every task of its domain, its weight is learned on the tasks of the other domains only, and each
of those tasks' history score without its own domain and without the held-out one
(:func:`holdout`). Without ``groups`` every task is its own group (leave-one-task-out). The nested
protocol needs at least three domains: with two, a learning task's history (without its own
domain and without the held-out one) is empty — the shipped v2 tasks (fashion, digits) are such a
case; benchmark v3 adds glyphs and emoji (issue 23).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ..rank.measures import weighted_tau

#: the hybrid's weight grid (0 = history only, 1 = metric only)
WEIGHT_GRID = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))
#: β, the meta score's weight in the Fennec score
META_WEIGHT = 0.5


def zscore(scores: Mapping[str, float | None]) -> dict[str, float]:
    """Standardise scores over the models (z-scores; the module docstring treats non-finite ones).

    Args:
      scores: ``{model: score}``; ``None``, NaN and ±inf count as not finite.

    Returns:
      ``{model: z-score}``: a non-finite score gets one standard deviation below the lowest
      finite one; all zeros when no score is finite; a constant score's spread counts as 1.
    """
    vals = np.array([np.nan if v is None else float(v) for v in scores.values()])
    ok = np.isfinite(vals)
    if not ok.any():
        return {m: 0.0 for m in scores}
    mu, sd = vals[ok].mean(), vals[ok].std()
    sd = sd if sd > 0 else 1.0
    z = np.where(ok, (vals - mu) / sd, (vals[ok].min() - mu) / sd - 1.0)
    return dict(zip(scores, map(float, z), strict=True))


def combine(components: Mapping[str, Mapping[str, float]], weights: Mapping[str, float]) -> dict[str, float]:
    """The weighted sum of standardised components, Σ_c weights[c] · z(components[c]).

    Args:
      components: ``{component: {model: score}}``; the models are those of the first
        component (a model missing from another component counts as not finite there).
      weights: ``{component: weight}``; components of weight 0 are skipped.

    Returns:
      ``{model: combined score}``.

    Raises:
      KeyError: ``weights`` names a component not in ``components``.
    """
    models = list(next(iter(components.values())))
    out = dict.fromkeys(models, 0.0)
    for c, w in weights.items():
        if w == 0:
            continue
        z = zscore({m: components[c].get(m) for m in models})
        for m in models:
            out[m] += w * z[m]
    return out


def merge(history_score: Mapping[str, float], metric_score: Mapping[str, float], w: float) -> dict[str, float]:
    """The hybrid score ``(1 − w)·z(history) + w·z(metric)`` (:func:`combine`).

    Args:
      history_score: ``{model: score}`` from the history (Fennec or history mean rank).
      metric_score: ``{model: score}`` of the metric (± PED); models as in ``history_score``.
      w: the metric's weight in [0, 1].

    Returns:
      ``{model: hybrid score}`` over the models of ``history_score``.
    """
    return combine({"history": history_score, "metric": metric_score}, {"history": 1.0 - w, "metric": w})


def learn_weight(history_scores: Mapping[str, Mapping[str, float]], metric_scores: Mapping[str, Mapping[str, float]],
                 truth: Mapping[str, Mapping[str, float]], grid: Sequence[float] = WEIGHT_GRID) -> tuple[float, dict]:
    """The hybrid weight with the best mean weighted τ over the given tasks.

    Ties between grid points (within 1e-12) resolve to their mean.

    Args:
      history_scores: ``{task: {model: score}}``, each task's history score computed without
        that task's ground truth.
      metric_scores: ``{task: {model: score}}`` of the metric, for every task of
        ``history_scores``.
      truth: ``{task: {model: ground truth}}``; each task is judged over the models it holds.
      grid: the candidate weights (default :data:`WEIGHT_GRID`).

    Returns:
      ``(w, {w: mean τ_w})``: the chosen weight and the curve over ``grid``.

    Raises:
      ValueError: ``history_scores`` holds no task.
      KeyError: a task of ``history_scores`` is missing from ``metric_scores`` or ``truth``.
    """
    tasks = list(history_scores)
    if not tasks:
        raise ValueError("history_scores: no tasks to learn the weight on")
    curve = {}
    for w in grid:
        taus = []
        for t in tasks:
            s = merge(history_scores[t], metric_scores[t], w)
            models = [m for m in s if m in truth[t]]
            taus.append(weighted_tau([s[m] for m in models], [truth[t][m] for m in models]))
        curve[float(w)] = float(np.mean(taus))
    best = max(curve.values())
    winners = [w for w, v in curve.items() if v >= best - 1e-12]
    return float(np.mean(winners)), curve


def holdout(task: str, tasks: Sequence[str], groups: Mapping[str, str] | None = None) -> frozenset:
    """The tasks held out with ``task``: those of its group (its domain), or ``task`` alone.

    Args:
      task: the held-out task.
      tasks: every task.
      groups: ``{task: group}`` (leave-one-domain-out), or ``None`` (leave-one-task-out).

    Returns:
      The held-out tasks, ``task`` included.

    Raises:
      KeyError: ``groups`` lacks a task.
    """
    if groups is None:
        return frozenset({task})
    return frozenset(u for u in tasks if groups[u] == groups[task]) | {task}


def _learning_tasks(t: str, tasks: Sequence[str], groups: Mapping[str, str] | None) -> list[str]:
    held = holdout(t, tasks, groups)
    others = [s for s in tasks if s not in held]
    if not others:
        raise ValueError(f"tasks: no task outside {sorted(held)} to learn the weight on")
    return others


def loto_hybrid(tasks: Sequence[str], history_score: Callable[[str, frozenset], Mapping[str, float]],
                metric_scores: Mapping[str, Mapping[str, float]], truth: Mapping[str, Mapping[str, float]],
                grid: Sequence[float] = WEIGHT_GRID, groups: Mapping[str, str] | None = None) -> dict[str, dict]:
    """Leave-one-task-out hybrid over ``tasks`` (nested: the module docstring); leave-one-domain-out
    with ``groups``.

    For each held-out task the weight is learned (:func:`learn_weight`) on the tasks outside its
    hold-out (:func:`holdout`), whose history scores are computed without their own hold-out and
    without the held-out task's.

    Args:
      tasks: the task names (at least 2, in at least 2 groups).
      history_score: ``history_score(task, excluded)`` gives ``task``'s ``{model: score}``
        from a history without the tasks of ``excluded`` (which holds ``task``).
      metric_scores: ``{task: {model: score}}`` of the metric.
      truth: ``{task: {model: ground truth}}``.
      grid: the candidate weights.
      groups: ``{task: domain}`` for leave-one-domain-out; ``None``: leave-one-task-out.

    Returns:
      ``{task: {"scores": {model: hybrid score}, "weight": w, "curve": {w: mean τ_w on the
      other tasks}}}``.

    Raises:
      ValueError: no task outside a held-out task's hold-out to learn the weight on.
    """
    out = {}
    for t in tasks:
        held = holdout(t, tasks, groups)
        others = _learning_tasks(t, tasks, groups)
        hs = {s: history_score(s, holdout(s, tasks, groups) | held) for s in others}
        w, curve = learn_weight(hs, {s: metric_scores[s] for s in others}, truth, grid)
        out[t] = {"scores": merge(history_score(t, held), metric_scores[t], w), "weight": w, "curve": curve}
    return out


def finite(x) -> bool:
    """Whether ``x`` is a finite number (``None`` is not)."""
    return x is not None and math.isfinite(x)


def loto_hybrid_select(tasks: Sequence[str], history_score: Callable[[str, frozenset], Mapping[str, float]],
                       metric_scores: Mapping[str, Mapping[str, Mapping[str, float]]],
                       truth: Mapping[str, Mapping[str, float]], grid: Sequence[float] = WEIGHT_GRID,
                       groups: Mapping[str, str] | None = None) -> dict[str, dict]:
    """:func:`loto_hybrid` that also picks the metric variant per held-out task.

    For each held-out task the (variant, weight) with the best mean τ_w on the other tasks is
    used (the first variant in the given order wins ties).

    Args:
      tasks: the task names (at least 2).
      history_score: ``history_score(task, excluded)`` as in :func:`loto_hybrid`.
      metric_scores: ``{variant: {task: {model: score}}}``.
      truth: ``{task: {model: ground truth}}``.
      grid: the candidate weights.
      groups: ``{task: domain}`` for leave-one-domain-out (as :func:`loto_hybrid`).

    Returns:
      ``{task: {"scores": {model: hybrid score}, "weight": w, "variant": name, "curve": {w:
      mean τ_w}}}``.

    Raises:
      ValueError: ``metric_scores`` is empty, or no task outside a held-out task's hold-out.
    """
    out: dict[str, dict] = {}
    for t in tasks:
        held = holdout(t, tasks, groups)
        others = _learning_tasks(t, tasks, groups)
        hs = {s: history_score(s, holdout(s, tasks, groups) | held) for s in others}
        best = None
        for v, by_task in metric_scores.items():
            w, curve = learn_weight(hs, {s: by_task[s] for s in others}, truth, grid)
            val = max(curve.values())
            if best is None or val > best[0] + 1e-12:
                best = (val, v, w, curve)
        if best is None:
            raise ValueError("metric_scores: give at least one variant")
        _, v, w, curve = best
        out[t] = {"scores": merge(history_score(t, held), metric_scores[v][t], w), "weight": w,
                  "variant": v, "curve": curve}
    return out
