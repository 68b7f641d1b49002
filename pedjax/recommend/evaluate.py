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
    """What :func:`measures` returns."""

    tau_w: float
    rel1: float
    regret1: float
    pick: str


def measures(scores: Mapping[str, float | None], truth: Mapping[str, float]) -> Measures:
    """``{"tau_w", "rel1", "regret1", "pick"}`` of ``scores`` against ``truth`` over the models of
    both (``pick``: the model scored highest); non-finite scores rank last."""
    models = [m for m in truth if m in scores]
    s = [float(v) if (v := scores[m]) is not None and math.isfinite(v) else -1e300 for m in models]
    t = [float(truth[m]) for m in models]
    pick = models[int(np.argmax(s))]
    return {"tau_w": float(weighted_tau(s, t)), "rel1": float(rel_k(s, t, 1)), "regret1": float(max(t) - truth[pick]),
            "pick": pick}


def paired_se(a: Sequence[float], b: Sequence[float]) -> float:
    """Standard error of mean(a − b) over paired per-task values (NaN with fewer than 2 tasks)."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")


def heldout_baselines(Y, *, frac: float = 0.2, splits: int = 3, seed: int = 0) -> dict[str, float]:
    """RMSE of two trivial predictors on the held-out entries of :func:`heldout_errors`' splits:
    ``"zero"`` (the task's mean: 0 in z-scores) and ``"model mean"`` (the model's mean over its
    training entries)."""
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
    """Leave-one-task-out on a history without images. ``evaluate``: the tasks to judge (default
    all; every task stays in the others' histories). Returns per-task τ_w of history mean rank
    and of the factorisation (``"factorised (non-negative)"`` / ``"factorised (plain)"``), their
    means, the chosen ranks, and the held-out entry errors (RMSE on the preprocessed scale, with
    the baselines of :func:`heldout_baselines`)."""
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
