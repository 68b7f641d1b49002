"""One call that ranks a zoo for a task: history + one proxy (Fennec) ± a metric (the hybrid).

:func:`recommend` is what ``pedjax recommend`` runs (the command line parses, loads the task and
prints); docs/recommend.md describes the method and how it was judged.
"""
from __future__ import annotations

import json
import time
from importlib import resources
from typing import Any

import numpy as np

from .._validate import ParamError
from ..data import TaskData
from ..physics import PEDConfig
from ..rank import ranking
from ..zoo import Zoo
from .archi2vec import zoo_meta
from .fennec import Recommender
from .history import History
from .hybrid import merge
from .proxy import Proxy, novelty, representations, task_representation

#: the shipped PED setting the learned hybrid weights belong to
SHIPPED_NSIGMA = 0.6


def shipped_weight(variant: str, task: str) -> tuple[float | None, str]:
    """The learned hybrid weight of a metric variant for a task, from the shipped weights.

    Read from ``pedjax/assets/recommend_weights.json``: the leave-one-task-out weight when
    ``task`` is a shipped task (learned without it), else the weight learned on every shipped task.

    Args:
      variant: the hybrid's metric variant, e.g. ``"nleep+PED"`` or ``"logme"``.
      task: the task being ranked.

    Returns:
      ``(weight, why)``: the weight in [0, 1] and where it comes from, or ``(None, why)`` when
      no weight is shipped for ``variant`` (or no weights file is installed).
    """
    f = resources.files("pedjax").joinpath("assets", "recommend_weights.json")
    if not f.is_file():
        return None, "no shipped weights"
    w = json.loads(f.read_text())["weights"].get(variant)
    if w is None:
        return None, f"no shipped weight for {variant}"
    if task in w["loto"]:
        return float(w["loto"][task]), f"learned without {task} (leave-one-task-out)"
    return float(w["all"]), "learned on every shipped task"


def recommend(zoo: Zoo, data: TaskData, history: History, *, task: str | None = None, proxy: str = "mlp-dae",
              k: int = 2, nonneg: bool = True, meta: bool = True, seed: int = 0, metric: str | None = None,
              ped: PEDConfig | None = None, weight: float | None = None) -> dict:
    """Rank ``zoo``'s members for the task ``data``: history + one proxy (Fennec) ± a metric (the hybrid).

    ``history`` (covering every member) is factorised with ``task`` left out when it holds it (a
    task's own ground truth never informs its ranking); the ``proxy`` member embeds the task's
    images among the past tasks (``k`` nearest); archi2vec meta-features add a meta score unless
    ``meta=False``. With ``metric`` (± ``ped``) every member's features are scored and the final
    ranking is the hybrid ``(1 − w)·z(history) + w·z(metric)``, ``w = weight`` or the shipped,
    leave-one-task-out learned one (:func:`shipped_weight`; 0.5 without one, or with a PED
    setting other than the shipped ``nsigma``).

    Args:
      zoo: the loaded model zoo whose members are ranked.
      data: the task; its training images ``x_train`` [N, H, W, C] are read (and its labels
        ``y_train`` only with ``metric``).
      history: a (model × task) :class:`~pedjax.recommend.history.History` with a row
        for every zoo member and at least 2 tasks besides the one ranked.
      task: the task's name in the history (default ``data.name``); left out of the history
        when present.
      proxy: the zoo member whose features embed the task's images (default ``"mlp-dae"``).
      k: the number of nearest past tasks that build the task's latent vector (≥ 1).
      nonneg: non-negative factorisation (``True``, Fennec's) or plain low-rank.
      meta: add the archi2vec meta score to the Fennec score.
      seed: seed of the factorisation.
      metric: a feature metric's name (e.g. ``"logme"``) for the hybrid; ``None``: the Fennec
        ranking alone.
      ped: a :class:`~pedjax.physics.PEDConfig` to move the features before ``metric``, or
        ``None``; needs ``metric``.
      weight: the hybrid's metric weight ``w`` in [0, 1]; ``None``: the shipped learned one.

    Returns:
      A JSON-ready dict: ``ranking`` (best first), ``final`` (``"fennec"`` or ``"hybrid"``),
      ``components`` (every component's ``{model: score}``), ``neighbours`` (``{past task:
      weight}``), ``novelty`` (:func:`~pedjax.recommend.proxy.novelty` of the task among the past
      tasks: above 1 the history has seen nothing like it; ``None`` without their images),
      ``factorisation``, ``history``, ``hybrid`` (with ``metric``), ``seconds`` spent, and
      ``fallback``: ``None``, or why the neighbours are uniform instead of read from the
      task's images (the proxy could not embed the history's tasks, e.g. tasks pedjax has no
      images of).

    Raises:
      ParamError: a ``ValueError`` naming the parameter: ``history`` (does not cover the zoo, or
        fewer than 2 other tasks), ``k`` (< 1), ``weight`` (outside [0, 1]), ``ped`` (without
        ``metric``), ``proxy`` (not a member), ``images`` (shape does not fit the zoo).
      ValueError: an unknown or non-feature ``metric`` (named ``--metric``).
    """
    t_all = time.perf_counter()
    name = task or data.name
    missing = [m for m in zoo.names if m not in history.models]
    if missing:
        raise ParamError("history", f"no entries for zoo member(s) {missing}; the history must cover the zoo")
    if k < 1:
        raise ParamError("k", f"at least 1, got {k}")
    if weight is not None and not 0 <= weight <= 1:
        raise ParamError("weight", f"a number in [0, 1], got {weight}")
    if ped is not None and metric is None:
        raise ParamError("ped", "applies to the hybrid's metric; give metric= too")
    hist = history.select_models(zoo.names)
    exclude = [name] if name in hist.tasks else []  # an own task is in no history
    if len(hist.tasks) - len(exclude) < 2:
        raise ParamError("history", "needs at least 2 tasks besides the one being ranked")
    if proxy not in zoo.names:
        raise ParamError("proxy", f"{proxy!r} is not a member of the zoo; members: {zoo.names}")
    prox = Proxy.from_zoo(zoo, proxy)
    if tuple(data.x_train.shape[1:]) != tuple(zoo[proxy].input_shape):
        raise ParamError("images", f"images of shape {data.x_train.shape[1:]} do not fit the zoo (input {zoo[proxy].input_shape})")
    t0 = time.perf_counter()
    rep: np.ndarray | None = task_representation(prox, data.x_train)
    proxy_s = time.perf_counter() - t0
    past = [t for t in hist.tasks if t not in exclude]
    fallback = None
    try:
        reps = representations(prox, past)
    except (ValueError, KeyError, OSError) as exc:  # e.g. a history of tasks pedjax has no images of
        reps, rep = {}, None
        fallback = (f"the proxy could not read the past tasks' images ({type(exc).__name__}: {exc}); "
                    "every past task weighs alike (uniform neighbour weights), the transfer score does not use this task's images")
    rec = Recommender(hist, reps, zoo_meta(zoo) if meta else None, nonneg=nonneg, k=k, seed=seed)
    t0 = time.perf_counter()
    comps, neighbours = rec.scores(rep, exclude)
    fit_s = time.perf_counter() - t0
    nov = novelty(rep, reps) if rep is not None and len(reps) >= 2 else None
    fac = rec.factors(exclude)
    result: dict[str, Any] = {"task": name, "history": {"kind": hist.kind, "source": hist.source, "tasks": past, "left_out": exclude},
              "proxy": proxy, "neighbours": neighbours, "novelty": nov, "fallback": fallback, "meta_weight": rec.meta_weight,
              "factorisation": {"rank": fac.rank, "reg": fac.reg, "nonneg": nonneg, "heldout_rmse": fac.heldout_error},
              "seconds": {"proxy_forward": proxy_s, "factorise_and_score": fit_s}}
    final = "fennec"
    if metric:
        from ..features import extract_features
        from ..scoring import feature_metric, ped_set, score_set

        t0 = time.perf_counter()
        fs = extract_features(zoo, data, "train")
        variant = metric + ("+PED" if ped is not None else "")
        if ped is not None:
            feature_metric(metric)
            fs = ped_set(fs, ped)
        comps[variant] = score_set(fs, metric)
        result["seconds"]["metric"] = time.perf_counter() - t0
        w: float | None
        if weight is not None:
            w, why = weight, "given"
        else:
            w, why = shipped_weight(variant, name)
            if w is None or (ped is not None and ped.nsigma != SHIPPED_NSIGMA):
                w, why = 0.5, f"{why or 'custom PED'}; default 0.5"
        comps["hybrid"] = merge(comps["history"], comps[variant], w)
        result["hybrid"] = {"metric": variant, "weight": w, "weight_from": why}
        final = "hybrid"
    result.update({"final": final, "ranking": ranking(comps[final]), "components": comps,
                   "seconds": {**result["seconds"], "total": time.perf_counter() - t_all}})
    return result
