"""How ranking quality is judged (../shared/DESIGN.md): noise ceiling, task agreement, baselines,
paired standard errors, rel@1 / regret@1 and setup stability.

Inputs are plain tables, so they work for the pedjax zoo and for published tables alike:

* ``truth``: ``{task: {model: accuracy}}`` (the ground truth, mean over seeds);
* ``per_seed``: ``{model: [accuracy of seed 0, seed 1, …]}`` for one task (``None`` where a seed is missing);
* ``scores``: ``{method: {task: {model: score}}}`` (higher = predicted better).

Definitions (every τ_w is :func:`pedjax.rank.measures.weighted_tau`, = ``scipy.stats.weightedtau``):

* **noise ceiling** of a task: the mean over seed pairs (i < j) of τ_w(accuracies of seed i,
  accuracies of seed j) over the models that have both seeds — how well one fine-tuning run ranks
  another; a metric cannot be expected to do better against the seed mean by much.
* **task agreement**: the mean over task pairs of Kendall's τ-b between their ground-truth rankings
  (near 1: a fixed leaderboard, which history alone wins).
* **random**: the expected τ_w of a uniformly random ranking (exact over all permutations up to
  ``exact_limit`` models, else a seeded Monte-Carlo mean; it is 0 up to sampling for untied truth).
* **parameter count**, **source linear-probe accuracy**: the models' own number as the score.
* **history mean rank**, leave-one-task-out: on task t, model m scores −(mean over the other tasks
  of m's rank there), rank 1 = best, ties averaged (``scipy.stats.rankdata``).
* **paired standard error** of method A against B: the per-task differences d_t = τ_A,t − τ_B,t;
  mean(d) and std(d, ddof=1)/√T.
* **rel@1** = truth of the top-scored model / best truth; **regret@1** = best truth − truth of the
  top-scored model (accuracy points, 0 = the best model was picked).
* **setup stability**: the winner (highest mean τ_w among the given methods) on the full setup,
  then again with each task left out and with random halves of the zoo; the fraction of those
  perturbed setups whose winner is the same.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.stats

from .measures import kendall_tau, weighted_tau

__all__ = [
    "noise_ceiling", "headline", "task_agreement", "random_expected_tau", "random_expected_pick", "history_scores",
    "constant_scores", "tau_per_task", "mean_finite", "paired_difference", "rel_at_1", "regret_at_1",
    "pick_quality", "setup_stability", "best_baseline",
]


def _finite(v) -> bool:
    return v is not None and math.isfinite(float(v))


def mean_finite(values) -> float:
    """Mean of the values (NaN if there are none or any is not finite).

    Args:
      values: an iterable of numbers (``None`` counts as not finite).

    Returns:
      The mean as a float, or NaN.
    """
    vals = list(values)
    if not vals or not all(_finite(v) for v in vals):
        return math.nan
    return float(np.mean(vals))


# ------------------------------------------------------------------------------ ground-truth quality

#: a task whose noise ceiling is below this is shown, marked and left out of headline means
#: (issue 13 asked ≥ 0.6; benchmark v3, issue 23, "every headline task's noise ceiling ≥ 0.7": the
#: stricter bar; every v2 Fashion task is above both)
MIN_CEILING = 0.7


def noise_ceiling(per_seed: Mapping[str, Sequence[float | None]]) -> dict:
    """The noise ceiling of one task from per-seed accuracies ``{model: [acc per seed]}``.

    Args:
      per_seed: ``{model: [accuracy of seed 0, seed 1, …]}`` (``None`` where a seed is missing).

    Returns:
      ``{"ceiling", "pairs": [[i, j, τ_w, n_models]], "seeds", "models"}``: the mean τ_w over the
      seed pairs, each pair's τ_w and model count, the number of seeds and of models. ``ceiling``
      is NaN when no seed pair has at least two models with both accuracies (or no pair's τ_w is
      finite).
    """
    models = list(per_seed)
    S = max((len(v) for v in per_seed.values()), default=0)
    pairs = []
    for i, j in itertools.combinations(range(S), 2):
        both = [(per_seed[m][i], per_seed[m][j]) for m in models if len(per_seed[m]) > j]
        ok = [(a, b) for a, b in both if a is not None and b is not None and _finite(a) and _finite(b)]
        if len(ok) < 2:
            continue
        tau = weighted_tau([float(a) for a, _ in ok], [float(b) for _, b in ok])
        pairs.append([i, j, tau, len(ok)])
    finite = [p[2] for p in pairs if math.isfinite(p[2])]
    return {"ceiling": float(np.mean(finite)) if finite else math.nan, "pairs": pairs, "seeds": S, "models": len(models)}


def headline(per_seed: Mapping[str, Mapping[str, Sequence[float | None]]], tasks: Sequence[str],
             min_ceiling: float = MIN_CEILING) -> dict:
    """Which of ``tasks`` a headline mean keeps, by each task's noise ceiling.

    Args:
      per_seed: ``{task: {model: [acc per seed]}}``; a task without them has ceiling NaN
        (unavailable) and is kept.
      tasks: the tasks, in order.
      min_ceiling: tasks whose ceiling is below this are left out, with the reason.

    Returns:
      ``{"ceiling": {task: c}, "excluded": {task: reason}, "tasks": [kept, in task order]}``.
    """
    ceiling, excluded = {}, {}
    for t in tasks:
        per = per_seed.get(t)
        ceiling[t] = noise_ceiling(per)["ceiling"] if per else math.nan
        if math.isfinite(ceiling[t]) and ceiling[t] < min_ceiling:
            excluded[t] = f"noise ceiling {ceiling[t]:.2f} < {min_ceiling:g}"
    return {"ceiling": ceiling, "excluded": excluded, "tasks": [t for t in tasks if t not in excluded]}


def task_agreement(truth: Mapping[str, Mapping[str, float]]) -> dict:
    """Mean pairwise Kendall τ-b between the tasks' ground-truth rankings (common models of each pair).

    Args:
      truth: ``{task: {model: accuracy}}``.

    Returns:
      ``{"mean", "pairs": {"a | b": τ}}`` over the task pairs with at least two common models
      (``mean`` over the finite τ; NaN when there are none, e.g. with fewer than two tasks).
    """
    tasks = list(truth)
    pairs = {}
    for a, b in itertools.combinations(tasks, 2):
        common = [m for m in truth[a] if m in truth[b]]
        if len(common) >= 2:
            pairs[f"{a} | {b}"] = kendall_tau([truth[a][m] for m in common], [truth[b][m] for m in common])
    vals = [v for v in pairs.values() if math.isfinite(v)]
    return {"mean": float(np.mean(vals)) if vals else math.nan, "pairs": pairs}


# ------------------------------------------------------------------------------------------ baselines


def random_expected_tau(truth: Mapping[str, float], *, exact_limit: int = 7, draws: int = 2000, seed: int = 0) -> float:
    """Expected τ_w of a uniformly random ranking of the models against ``truth`` {model: acc}.

    Args:
      truth: ``{model: accuracy}``.
      exact_limit: up to this many models the mean is exact, over all permutations.
      draws: the number of random permutations above ``exact_limit`` (a Monte-Carlo mean).
      seed: the seed of the random permutations.

    Returns:
      The mean τ_w over the finite values; NaN for fewer than two models (or none finite).
    """
    t = np.asarray(list(truth.values()), dtype=float)
    n = t.size
    if n < 2:
        return math.nan
    if n <= exact_limit:
        vals = [weighted_tau(np.asarray(p, float), t) for p in itertools.permutations(range(n))]
    else:
        rng = np.random.default_rng(seed)
        vals = [weighted_tau(rng.permutation(n).astype(float), t) for _ in range(draws)]
    vals = [v for v in vals if math.isfinite(v)]
    return float(np.mean(vals)) if vals else math.nan


def random_expected_pick(truth: Mapping[str, float]) -> dict:
    """Expected rel@1 and regret@1 of a uniformly random pick: mean truth / best, best − mean truth.

    Args:
      truth: ``{model: accuracy}`` (at least one model).

    Returns:
      ``{"rel1": mean / best (NaN when best is 0), "regret1": best − mean}``.
    """
    t = np.asarray(list(truth.values()), dtype=float)
    best = float(t.max())
    return {"rel1": float(t.mean()) / best if best else math.nan, "regret1": best - float(t.mean())}


def history_scores(truth: Mapping[str, Mapping[str, float]], task: str, history: Sequence[str] | None = None) -> dict[str, float]:
    """History mean rank, leave-one-task-out: ``{model: −mean rank on the other tasks}`` for ``task``.

    Only models that have a ground truth on every history task and on ``task`` are scored. Ranks:
    1 = best accuracy, ties averaged.

    Args:
      truth: ``{task: {model: accuracy}}`` (holding ``task``).
      task: the task to score.
      history: the tasks the ranks come from (default: every task of ``truth``); ``task`` itself is
        always left out.

    Returns:
      ``{model: −mean rank}`` (higher = better), in ``truth[task]``'s order.

    Raises:
      ValueError: (``history``) no task other than ``task`` to take ranks from.
      KeyError: ``task`` or a history task is not in ``truth``.
    """
    others = [o for o in (history if history is not None else list(truth)) if o != task]
    if not others:
        raise ValueError(f"history: no task other than {task!r} to take ranks from")
    models = [m for m in truth[task] if all(m in truth[o] for o in others)]
    ranks = np.mean([scipy.stats.rankdata([-float(truth[o][m]) for m in models]) for o in others], axis=0)
    return {m: -float(r) for m, r in zip(models, ranks, strict=True)}


def constant_scores(values: Mapping[str, float], tasks: Sequence[str]) -> dict[str, dict[str, float]]:
    """A task-independent baseline (parameter count, source probe accuracy) as ``{task: {model: score}}``.

    Args:
      values: ``{model: value}``, the models' own number.
      tasks: the tasks to repeat it for.

    Returns:
      ``{task: {model: value}}`` (a copy per task).
    """
    return {t: dict(values) for t in tasks}


def tau_per_task(scores: Mapping[str, Mapping[str, float]], truth: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """τ_w per task of one method's scores against ``truth``.

    Args:
      scores: ``{task: {model: score}}`` (a task may be missing).
      truth: ``{task: {model: accuracy}}``.

    Returns:
      ``{task: τ_w}`` for every task of ``truth``, over the models with both a finite score and a
      ground truth (NaN where fewer than two).
    """
    out = {}
    for task, tr in truth.items():
        sc = scores.get(task) or {}
        ms = [m for m in tr if m in sc and _finite(sc[m])]
        out[task] = weighted_tau([float(sc[m]) for m in ms], [float(tr[m]) for m in ms]) if len(ms) >= 2 else math.nan
    return out


def paired_difference(a: Mapping[str, float], b: Mapping[str, float]) -> dict:
    """Per-task differences ``a − b`` (tasks where both are finite): mean and paired standard error.

    Args:
      a: ``{task: τ}`` of method A.
      b: ``{task: τ}`` of method B.

    Returns:
      ``{"mean", "se", "n"}``: the mean difference, its standard error std(ddof=1)/√n (NaN for
      n < 2) and the number of tasks n (mean NaN for n = 0).
    """
    d = np.array([float(a[t]) - float(b[t]) for t in a if t in b and _finite(a[t]) and _finite(b[t])])
    if d.size == 0:
        return {"mean": math.nan, "se": math.nan, "n": 0}
    se = float(d.std(ddof=1) / math.sqrt(d.size)) if d.size >= 2 else math.nan
    return {"mean": float(d.mean()), "se": se, "n": int(d.size)}


def best_baseline(taus: Mapping[str, Mapping[str, float]], baselines: Sequence[str]) -> str | None:
    """The baseline with the highest mean τ_w over tasks (those with a finite mean).

    Args:
      taus: ``{method: {task: τ_w}}``.
      baselines: the candidate methods (those missing from ``taus`` are skipped).

    Returns:
      The baseline's name, or ``None`` when none has a finite mean.
    """
    means = {b: mean_finite(taus[b].values()) for b in baselines if b in taus}
    means = {b: v for b, v in means.items() if math.isfinite(v)}
    return max(means, key=means.__getitem__) if means else None


# --------------------------------------------------------------------------------------- the pick


def _pick(scores: Mapping[str, float], truth: Mapping[str, float]) -> str | None:
    ms = [m for m in scores if m in truth and _finite(scores[m])]
    if not ms:
        return None
    return max(ms, key=lambda m: float(scores[m]))  # the first of tied maxima, in the scores' order


def rel_at_1(scores: Mapping[str, float], truth: Mapping[str, float]) -> float:
    """Truth of the top-scored model / the best truth (1 = the best model was picked).

    Args:
      scores: ``{model: score}``; only models with a finite score and a ground truth compete
        (the first of tied maxima wins).
      truth: ``{model: accuracy}`` (at least one model).

    Returns:
      The ratio, or NaN when no model can be picked or the best truth is 0.
    """
    m = _pick(scores, truth)
    best = max(float(v) for v in truth.values())
    return math.nan if m is None or best == 0 else float(truth[m]) / best


def regret_at_1(scores: Mapping[str, float], truth: Mapping[str, float]) -> float:
    """Best truth − truth of the top-scored model (accuracy lost by following the method).

    Args:
      scores: ``{model: score}`` (the pick as in :func:`rel_at_1`).
      truth: ``{model: accuracy}`` (at least one model).

    Returns:
      The regret (0 = the best model was picked), or NaN when no model can be picked.
    """
    m = _pick(scores, truth)
    return math.nan if m is None else max(float(v) for v in truth.values()) - float(truth[m])


def pick_quality(scores: Mapping[str, Mapping[str, float]], truth: Mapping[str, Mapping[str, float]]) -> dict:
    """rel@1 and regret@1 per task of one method.

    Args:
      scores: ``{task: {model: score}}`` (a missing task picks nothing: NaN).
      truth: ``{task: {model: accuracy}}``.

    Returns:
      ``{"rel1": {task: …}, "regret1": {task: …}}`` over the tasks of ``truth``.
    """
    return {"rel1": {t: rel_at_1(scores.get(t) or {}, truth[t]) for t in truth},
            "regret1": {t: regret_at_1(scores.get(t) or {}, truth[t]) for t in truth}}


# -------------------------------------------------------------------------------------- stability


def setup_stability(scores: Mapping[str, Mapping[str, Mapping[str, float]]], truth: Mapping[str, Mapping[str, float]],
                    *, halves: int = 50, seed: int = 0) -> dict:
    """How often the winning method (highest mean τ_w) stays the winner when the setup changes.

    Perturbations: each task left out in turn (with more than one task), and ``halves`` random
    halves of the models (seeded; τ_w recomputed on the half).

    Args:
      scores: ``{method: {task: {model: score}}}``.
      truth: ``{task: {model: accuracy}}``.
      halves: how many random halves of the zoo to try.
      seed: the seed of the halves.

    Returns:
      ``{"winner", "leave_one_task_out": {"same", "of", "winners"}, "half_zoo": {"same", "of",
      "winners"}, "stability"}`` where ``stability`` is the fraction of all perturbed setups with
      the same winner (1 = the ranking of methods does not hinge on the setup; NaN with no
      perturbation).

    Raises:
      ValueError: (``scores/truth``) no method or no task.
    """
    methods = list(scores)
    tasks = list(truth)
    if not methods or not tasks:
        raise ValueError("scores/truth: need at least one method and one task")

    def winner(task_subset, model_subset=None) -> str | None:
        means = {}
        for meth in methods:
            vals = []
            for t in task_subset:
                tr = truth[t] if model_subset is None else {m: v for m, v in truth[t].items() if m in model_subset}
                vals.append(tau_per_task({t: scores[meth].get(t) or {}}, {t: tr})[t])
            means[meth] = mean_finite(vals)
        ok = {k: v for k, v in means.items() if math.isfinite(v)}
        return max(ok, key=ok.__getitem__) if ok else None

    full = winner(tasks)
    loto = [winner([t for t in tasks if t != left]) for left in tasks] if len(tasks) > 1 else []
    models = sorted({m for t in tasks for m in truth[t]})
    rng = np.random.default_rng(seed)
    half = [winner(tasks, set(rng.permutation(models)[: max(2, len(models) // 2)].tolist())) for _ in range(halves)]
    same_l = sum(w == full for w in loto)
    same_h = sum(w == full for w in half)
    n = len(loto) + len(half)
    return {
        "winner": full,
        "leave_one_task_out": {"same": same_l, "of": len(loto), "winners": dict(zip(tasks, loto, strict=True)) if loto else {}},
        "half_zoo": {"same": same_h, "of": len(half), "winners": {w: half.count(w) for w in sorted(set(half), key=str)}},
        "stability": (same_l + same_h) / n if n else math.nan,
    }
