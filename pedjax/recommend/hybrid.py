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
    """Standardise ``{model: score}`` over the models (see the module docstring for non-finite scores)."""
    vals = np.array([np.nan if v is None else float(v) for v in scores.values()])
    ok = np.isfinite(vals)
    if not ok.any():
        return {m: 0.0 for m in scores}
    mu, sd = vals[ok].mean(), vals[ok].std()
    sd = sd if sd > 0 else 1.0
    z = np.where(ok, (vals - mu) / sd, (vals[ok].min() - mu) / sd - 1.0)
    return dict(zip(scores, map(float, z), strict=True))


def combine(components: Mapping[str, Mapping[str, float]], weights: Mapping[str, float]) -> dict[str, float]:
    """Σ_c weights[c] · z(components[c]) over the models of the first component."""
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
    """The hybrid score ``(1 − w)·z(history) + w·z(metric)``."""
    return combine({"history": history_score, "metric": metric_score}, {"history": 1.0 - w, "metric": w})


def learn_weight(history_scores: Mapping[str, Mapping[str, float]], metric_scores: Mapping[str, Mapping[str, float]],
                 truth: Mapping[str, Mapping[str, float]], grid: Sequence[float] = WEIGHT_GRID) -> tuple[float, dict]:
    """The weight of :data:`WEIGHT_GRID` with the best mean τ_w over the tasks of ``history_scores``
    (each ``{model: score}``, computed without that task's ground truth); returns ``(w, {w: mean τ_w})``."""
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


def loto_hybrid(tasks: Sequence[str], history_score: Callable[[str, frozenset], Mapping[str, float]],
                metric_scores: Mapping[str, Mapping[str, float]], truth: Mapping[str, Mapping[str, float]],
                grid: Sequence[float] = WEIGHT_GRID) -> dict[str, dict]:
    """Leave-one-task-out hybrid over ``tasks``: ``history_score(task, excluded)`` gives a task's
    history score from a history without the tasks in ``excluded`` (which holds ``task``).
    Returns ``{task: {"scores": {model: hybrid}, "weight": w, "curve": {w: mean τ_w on the others}}}``."""
    out = {}
    for t in tasks:
        others = [s for s in tasks if s != t]
        hs = {s: history_score(s, frozenset({s, t})) for s in others}
        w, curve = learn_weight(hs, {s: metric_scores[s] for s in others}, truth, grid)
        out[t] = {"scores": merge(history_score(t, frozenset({t})), metric_scores[t], w), "weight": w, "curve": curve}
    return out


def finite(x) -> bool:
    return x is not None and math.isfinite(x)


def loto_hybrid_select(tasks: Sequence[str], history_score: Callable[[str, frozenset], Mapping[str, float]],
                       metric_scores: Mapping[str, Mapping[str, Mapping[str, float]]],
                       truth: Mapping[str, Mapping[str, float]], grid: Sequence[float] = WEIGHT_GRID) -> dict[str, dict]:
    """:func:`loto_hybrid` that also picks the metric: ``metric_scores`` is ``{variant: {task:
    {model: score}}}``; for each held-out task the (variant, weight) with the best mean τ_w on the
    other tasks is used (the first variant in the given order wins ties). Returns ``{task:
    {"scores", "weight", "variant", "curve"}}``."""
    out: dict[str, dict] = {}
    for t in tasks:
        others = [s for s in tasks if s != t]
        hs = {s: history_score(s, frozenset({s, t})) for s in others}
        best = None
        for v, by_task in metric_scores.items():
            w, curve = learn_weight(hs, {s: by_task[s] for s in others}, truth, grid)
            val = max(curve.values())
            if best is None or val > best[0] + 1e-12:
                best = (val, v, w, curve)
        if best is None:
            raise ValueError("metric_scores: give at least one variant")
        _, v, w, curve = best
        out[t] = {"scores": merge(history_score(t, frozenset({t})), metric_scores[v][t], w), "weight": w,
                  "variant": v, "curve": curve}
    return out
