"""Judging recommenders leave-one-task-out: per-task measures, paired standard errors, and the
history-only study of a published table.

* :func:`measures` — τ_w (``scipy.stats.weightedtau``), rel@1 (truth of the pick over the best
  truth) and regret@1 (best truth − truth of the pick, in the table's unit) of one ranking;
* :func:`paired_se` — the standard error of the mean per-task difference of two methods;
* :func:`published_study` — on a history with no images (a published table): history mean rank
  and the factorisation (uniform weights over the past tasks, no proxy) leave-one-task-out, and
  the factorisation's held-out entry error against two baselines.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import numpy as np

from ..rank.measures import rel_k, weighted_tau
from .factorize import _holdout_masks, prepare
from .fennec import Recommender
from .history import History


class Measures(TypedDict):
    """What :func:`measures` returns.

    Attributes:
      tau_w: weighted Kendall τ of the scores against the truth.
      rel1: truth of the pick over the best truth.
      regret1: best truth − truth of the pick (the truth's unit).
      pick: the model scored highest.
    """

    tau_w: float
    rel1: float
    regret1: float
    pick: str


def measures(scores: Mapping[str, float | None], truth: Mapping[str, float]) -> Measures:
    """How well one ranking picks: τ_w, rel@1 and regret@1 of ``scores`` against ``truth``.

    Args:
      scores: ``{model: score}``; ``None`` and non-finite scores rank last.
      truth: ``{model: ground truth}``; judged over the models of both.

    Returns:
      :class:`Measures` ``{"tau_w", "rel1", "regret1", "pick"}``.

    Raises:
      ValueError: ``scores`` and ``truth`` share no model.
    """
    models = [m for m in truth if m in scores]
    s = [float(v) if (v := scores[m]) is not None and math.isfinite(v) else -1e300 for m in models]
    t = [float(truth[m]) for m in models]
    pick = models[int(np.argmax(s))]
    return {"tau_w": float(weighted_tau(s, t)), "rel1": float(rel_k(s, t, 1)), "regret1": float(max(t) - truth[pick]),
            "pick": pick}


def paired_se(a: Sequence[float], b: Sequence[float]) -> float:
    """Standard error of mean(a − b) over paired per-task values.

    Args:
      a: one method's per-task values.
      b: the other method's, in the same task order (same length).

    Returns:
      ``std(a − b, ddof=1) / sqrt(n)``; NaN with fewer than 2 tasks.
    """
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")


def heldout_baselines(Y, *, frac: float = 0.2, splits: int = 3, seed: int = 0) -> dict[str, float]:
    """RMSE of two trivial predictors on the held-out entries of the factorisation's splits.

    The splits are those :func:`pedjax.recommend.factorize.heldout_errors` uses for the same
    ``frac``, ``splits`` and ``seed``.

    Args:
      Y: ``[M, T]`` preprocessed history (:func:`pedjax.recommend.factorize.prepare`), NaN
        where missing.
      frac: fraction of the observed entries held out per split.
      splits: number of splits.
      seed: seed of the splits.

    Returns:
      ``{"task mean": RMSE, "model mean": RMSE}``: predicting each entry by its task's (or
      model's) mean over the training entries.
    """
    Y = np.asarray(Y, np.float64)
    mask = np.isfinite(Y).astype(np.float64)
    Yz = np.where(mask > 0, Y, 0.0)
    held = _holdout_masks(mask, frac, splits, seed)
    out: dict[str, list[float]] = {"task mean": [], "model mean": []}
    for h in held:
        train = mask * (1 - h)
        col = (Yz * train).sum(0) / np.maximum(train.sum(0), 1)
        row = (Yz * train).sum(1) / np.maximum(train.sum(1), 1)
        for name, pred in (("task mean", np.broadcast_to(col[None], Y.shape)), ("model mean", np.broadcast_to(row[:, None], Y.shape))):
            out[name].append(((pred - Yz) ** 2 * h).sum() / h.sum())
    return {k: float(np.sqrt(np.mean(v))) for k, v in out.items()}


def published_study(history: History, *, evaluate: Sequence[str] | None = None, nonneg_options=(True, False),
                    seed: int = 0) -> dict:
    """Leave-one-task-out study of a history without images (a published table).

    Args:
      history: the :class:`~pedjax.recommend.history.History`.
      evaluate: the tasks to judge (default all; every task stays in the others' histories).
      nonneg_options: the factorisation variants to run (``True``: non-negative, ``False``:
        plain).
      seed: seed of the factorisations and splits.

    Returns:
      ``{"tasks", "tau", "rank", "heldout", "mean"}``: per-task τ_w of history mean rank and of
      each factorisation (``"factorised (non-negative)"`` / ``"factorised (plain)"``), their
      means, the chosen ranks, and the held-out entry errors (RMSE on the preprocessed scale,
      with the baselines of :func:`heldout_baselines`).

    Raises:
      KeyError: a task of ``evaluate`` is not in the history.
    """
    tasks = list(evaluate) if evaluate is not None else list(history.tasks)
    out: dict[str, Any] = {"tasks": tasks, "tau": {"history mean rank": {}}, "rank": {}, "heldout": {}}
    for t in tasks:
        out["tau"]["history mean rank"][t] = measures(history.mean_rank([t]), history.column(t))["tau_w"]
    for nn in nonneg_options:
        label = "factorised (non-negative)" if nn else "factorised (plain)"
        rec = Recommender(history, nonneg=nn, seed=seed)
        out["tau"][label], out["rank"][label] = {}, {}
        for t in tasks:
            out["tau"][label][t] = measures(rec.scores(None, [t]).components["transfer"], history.column(t))["tau_w"]
            out["rank"][label][t] = rec.factors([t]).rank
        full = rec.factors([])
        Y = prepare(history.values, nn)
        out["heldout"][label] = {"rmse": full.heldout_error, "rank": full.rank, "reg": full.reg,
                                 **{f"baseline: {k}": v for k, v in heldout_baselines(Y, seed=seed).items()}}
    out["mean"] = {k: float(np.mean([v[t] for t in tasks])) for k, v in out["tau"].items()}
    return out
