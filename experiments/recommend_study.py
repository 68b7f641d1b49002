"""Fennec-style recommendation on the shipped zoo and the published tables (issue: `pedjax recommend`).

    python experiments/recommend_study.py                 # -> docs/recommend.md + docs/figures/recommend_tau.png
    python experiments/recommend_study.py --scores runs/recommend_scores.json   # reuse / write the metric scores cache

The metric scores come from experiments/zoo_benchmark.py's per-(task, metric) file
(runs/zoo_benchmark_tasks.json, PED at nsigma 0.6) when it is complete: run that first.

Leave-one-task-out on every ground-truth task of the shipped zoo: history mean rank, Fennec
(transfer score from the factorised history through a proxy's task embedding; + archi2vec meta
score), every metric ± PED (released defaults, nsigma 0.6), and the hybrid (history/Fennec merged
with a metric, weight learned leave-one-task-out); τ_w, rel@1, regret@1 per task and mean with
paired standard errors, and the query-time cost of each. Judged as experiments/zoo_benchmark.py
does: tasks whose noise ceiling (per-seed ground truth) is below pedjax.rank.judging.MIN_CEILING are
shown, marked † and left out of every mean (they stay in every history). On the published tables (history only):
history mean rank, the factorisation's leave-one-task-out τ_w and its held-out entry error.
Nothing in the report is typed by hand.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pedjax.cli._common import configure_process  # noqa: E402

configure_process()  # as the command line: x64, XLA:CPU flag, compilation cache

NSIGMA = 0.6


def scores_from_benchmark(path: Path) -> dict | None:
    """The :func:`metric_scores` structure from ``experiments/zoo_benchmark.py``'s per-(task,
    metric) file (its ``--resume``), when that file holds every ground-truth task and every
    metric of class labels with PED at nsigma 0.6 (variant ``m+PED(0.6)`` is ``m+PED`` here);
    ``None`` otherwise. The same scores, computed once."""
    if not path.is_file():
        return None
    from pedjax.metrics import names
    from pedjax.zoo import load_zoo

    done = json.loads(path.read_text())
    tasks = list(load_zoo().truth()["datasets"])
    scores, seconds, feat = {}, {}, {}
    for t in tasks:
        per = done.get(t, {}).get("metrics")
        if not isinstance(per, dict) or any(m not in per or NSIGMA not in per[m]["nsigmas"] for m in names()):
            return None
        scores[t] = {}
        feat[t] = done[t]["feature_seconds"]
        for m in names():
            for v in per[m]["variants"]:
                if "+" in v and v != f"{m}+PED({NSIGMA:g})":
                    continue
                name = m if "+" not in v else f"{m}+PED"
                sc = per[m]["scores"][v]
                scores[t][name] = None if sc is None else {k: (float(x) if x is not None and math.isfinite(x) else None)
                                                           for k, x in sc.items()}
                seconds[name] = seconds.get(name, 0.0) + per[m]["seconds"][v]
    return {"scores": scores, "seconds": seconds, "feature_seconds": feat, "nsigma": NSIGMA,
            "wall_seconds": sum(seconds.values()) + sum(feat.values()), "from": str(path)}


def metric_scores(cache: Path | None, verbose: bool = True, benchmark_tasks: Path | None = None) -> dict:
    """``{"scores": {task: {variant: {model: score}}}, "seconds": {variant: s}, "feature_seconds": {task: s}}``
    of every registered metric, static and + PED (nsigma 0.6), on every shipped task: from
    ``benchmark_tasks`` (:func:`scores_from_benchmark`) when it is complete, else the ``cache``
    file, else computed (and written to ``cache``)."""
    if benchmark_tasks is not None:
        got = scores_from_benchmark(benchmark_tasks)
        if got is not None:
            if verbose:
                print(f"metric scores from {benchmark_tasks}", flush=True)
            return got
    if cache is not None and cache.is_file():
        return json.loads(cache.read_text())
    import dataclasses

    from pedjax.features import extract_features
    from pedjax.physics import PEDConfig
    from pedjax.rank import benchmark
    from pedjax.zoo import load_zoo

    zoo = load_zoo()
    tasks = list(zoo.truth()["datasets"])
    sets = [extract_features(zoo, t, "train", with_truth=True) for t in tasks]
    cfg = dataclasses.replace(PEDConfig(), nsigma=NSIGMA)
    cb = (lambda task, v, tau, dt: print(f"  {task:18s} {v:14s} tau_w {tau:+.3f} {dt:6.1f}s", flush=True)) if verbose else None
    res = benchmark(sets, None, {"PED": cfg}, on_variant=cb)
    clean = {t: {v: (None if sc is None else {m: (float(x) if math.isfinite(x) else None) for m, x in sc.items()})
                 for v, sc in by.items()} for t, by in res.scores.items()}
    out = {"scores": clean, "seconds": res.seconds, "feature_seconds": res.feature_seconds, "nsigma": NSIGMA,
           "wall_seconds": res.wall_seconds}
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(out, indent=1))
    return out


PROXY = "mlp-dae"
BASE = "history mean rank"
#: the baselines that read no history and no target data (as on the results page, pedjax.rank.judging):
#: the same in both protocols
RANDOM, PARAMS, PROBE = "*random (expected τ_w)*", "*parameter count*", "*source linear-probe accuracy*"
NO_HISTORY = (RANDOM, PARAMS, PROBE)


def ceilings(zoo, tasks) -> dict:
    """The judging of experiments/zoo_benchmark.py's ``judge``: each task's noise ceiling from the
    ground truth's per-seed accuracies, the tasks below :data:`pedjax.rank.judging.MIN_CEILING`
    (``excluded``, with the reason) and the headline tasks (the others, in task order)."""
    from pedjax.rank import judging

    per_seed = (zoo.truth() or {}).get("per_seed", {})
    h = judging.headline(per_seed, tasks)
    seeds = max((len(v) for per in per_seed.values() for v in per.values()), default=0)
    return {"ceiling": h["ceiling"], "excluded": h["excluded"], "headline": h["tasks"],
            "min_ceiling": judging.MIN_CEILING, "seeds": seeds}


def domains_of(tasks) -> dict:
    """``{task: domain}`` (:attr:`pedjax.data.Task.domain`; a task pedjax does not know is its own domain)."""
    from pedjax.data.tasks import TASKS

    return {t: (TASKS[t].domain if t in TASKS and TASKS[t].domain else t) for t in tasks}


def no_history_baselines(zoo, truth: dict) -> dict:
    """``{baseline: {task: measures}}`` for :data:`NO_HISTORY`: a random ranking (its expected τ_w, rel@1
    and regret@1, :mod:`pedjax.rank.judging`), the members' parameter counts and their source
    linear-probe accuracies as task-independent scores (a baseline whose number a member lacks is left out)."""
    from pedjax.rank import judging
    from pedjax.recommend.evaluate import measures

    out = {RANDOM: {t: {"tau_w": judging.random_expected_tau(tr), **judging.random_expected_pick(tr), "pick": None}
                    for t, tr in truth.items()}}
    for label, key in ((PARAMS, lambda m: m.entry.get("n_params")),
                       (PROBE, lambda m: (m.entry.get("linear_probe") or {}).get("accuracy"))):
        vals = {m.name: key(m) for m in zoo}
        if all(v is not None for v in vals.values()):
            out[label] = {t: measures(vals, tr) for t, tr in truth.items()}
    return out


def zoo_study(cache: Path | None, proxy_name: str = PROXY, benchmark_tasks: Path | None = None,
              groups: dict | None = None) -> dict:
    """Every method's scores per task on the shipped zoo, the hybrids, costs: leave-one-task-out, or
    with ``groups`` (``{task: domain}``) leave-one-domain-out — every history-based part (history
    mean rank, the factorisation, the proxy's neighbours, the meta score's ridge fit, the hybrid's
    weights and metric choice) sees only the other domains' tasks
    (:func:`pedjax.recommend.hybrid.holdout`)."""
    from pedjax.recommend import Proxy, Recommender, from_scores, from_zoo, loto_hybrid, loto_hybrid_select, zoo_meta
    from pedjax.recommend import proxy as P
    from pedjax.recommend.evaluate import measures
    from pedjax.recommend.hybrid import holdout
    from pedjax.zoo import load_zoo

    cached = metric_scores(cache, benchmark_tasks=benchmark_tasks)
    zoo = load_zoo()
    H = from_zoo(zoo)
    tasks = list(H.tasks)
    truth = {t: H.column(t) for t in tasks}
    judged = ceilings(zoo, tasks)
    head = judged["headline"]  # judging only: every task stays in every history
    t0 = time.perf_counter()
    meta = zoo_meta(zoo)
    archi_seconds = time.perf_counter() - t0
    families = sorted({m.arch for m in zoo})
    n_archs = len({json.dumps([m.arch, dict(m.arch_kwargs)], sort_keys=True) for m in zoo})
    pr = Proxy.from_zoo(zoo, proxy_name)
    reps = P.representations(pr, tasks)
    variants = [v for v in cached["scores"][tasks[0]] if all(cached["scores"][t][v] is not None for t in tasks)]
    ms = {v: {t: {m: (x if x is not None else float("-inf")) for m, x in cached["scores"][t][v].items()} for t in tasks}
          for v in variants}
    scores: dict[str, dict[str, dict]] = {}  # method -> task -> {model: score}
    rec_nn = Recommender(H, reps, meta, nonneg=True)
    rec_pl = Recommender(H, reps, meta, nonneg=False)
    held = {t: sorted(holdout(t, tasks, groups)) for t in tasks}  # [t] leave-one-task-out
    fit_seconds = {}
    for t in tasks:
        t1 = time.perf_counter()
        rec_nn.factors(held[t])
        fit_seconds[t] = time.perf_counter() - t1
        a = rec_nn.scores(reps[t], held[t]).components
        b = rec_pl.scores(reps[t], held[t]).components
        scores.setdefault(BASE, {})[t] = a["history"]
        scores.setdefault("Fennec transfer (non-negative)", {})[t] = a["transfer"]
        scores.setdefault("Fennec transfer (plain low-rank)", {})[t] = b["transfer"]
        scores.setdefault("archi2vec meta score", {})[t] = a["meta"]
        scores.setdefault("Fennec transfer + meta (non-negative)", {})[t] = a["fennec"]
    for v in variants:
        scores[v] = ms[v]
    # a history of cheap scores instead of fine-tuning (Fennec's own choice): the best metric's scores
    # (best = highest mean τ_w over the headline tasks, picked after the fact)
    best_metric = max(variants, key=lambda v: np.mean([measures(ms[v][t], truth[t])["tau_w"] for t in head]))
    Hs = from_scores({t: ms[best_metric][t] for t in tasks}, best_metric)
    scores[f"history mean rank, history = {best_metric} scores"] = {t: Hs.mean_rank(held[t]) for t in tasks}
    # hybrids: history mean rank ⊕ each metric, weight leave-one-task-out
    hs = lambda t, ex: H.mean_rank(sorted(ex))  # noqa: E731
    fs = lambda t, ex: rec_nn.scores(reps[t], sorted(ex)).components["transfer"]  # noqa: E731
    hybrids, weights = {}, {}
    for v in variants:
        r = loto_hybrid(tasks, hs, ms[v], truth, groups=groups)
        hybrids[v] = {t: r[t]["scores"] for t in tasks}
        weights[v] = {t: r[t]["weight"] for t in tasks}
    htable = {v: {t: measures(hybrids[v][t], truth[t]) for t in tasks} for v in variants}
    # the best hybrid over the headline tasks (picked after the fact, see the page) and the best metric's
    best_hybrid = max(variants, key=lambda v: np.mean([htable[v][t]["tau_w"] for t in head]))
    for v in dict.fromkeys((best_hybrid, best_metric)):
        scores[f"hybrid: history mean rank ⊕ {v}"] = hybrids[v]
    sel = loto_hybrid_select(tasks, hs, ms, truth, groups=groups)
    scores["hybrid: history mean rank ⊕ metric chosen leave-one-task-out"] = {t: sel[t]["scores"] for t in tasks}
    chosen = {t: (sel[t]["variant"], sel[t]["weight"]) for t in tasks}
    rf = loto_hybrid(tasks, fs, ms[best_hybrid], truth, groups=groups)
    scores[f"hybrid: Fennec transfer ⊕ {best_hybrid}"] = {t: rf[t]["scores"] for t in tasks}
    # measures
    table = {m: {t: measures(s[t], truth[t]) for t in tasks} for m, s in scores.items()}
    table.update(no_history_baselines(zoo, truth))
    # weights learned on all tasks (for tasks outside the ground truth): shipped for `pedjax recommend --metric`
    from pedjax.recommend import learn_weight

    all_w = {v: learn_weight({t: H.mean_rank(held[t]) for t in tasks}, ms[v], truth)[0] for v in variants}
    return {"tasks": tasks, "truth": truth, "table": table, "hybrid_table": htable, "weights": weights, "all_weights": all_w,
            "chosen": chosen, "best_metric": best_metric, "best_hybrid": best_hybrid, "proxy": proxy_name,
            "fennec_hybrid_weights": {t: rf[t]["weight"] for t in tasks},
            "fit_seconds": fit_seconds, "ceiling": judged["ceiling"], "excluded": judged["excluded"],
            "headline": head, "min_ceiling": judged["min_ceiling"], "seeds": judged["seeds"],
            "n_members": len(H.models), "families": families, "n_archs": n_archs,
            "archi_seconds": archi_seconds, "ranks": {t: rec_nn.factors(held[t]).rank for t in tasks},
            "ranks_plain": {t: rec_pl.factors(held[t]).rank for t in tasks},
            "neighbours": {t: rec_pl.neighbours(reps[t], held[t]) for t in tasks}, "cached": cached, "variants": variants,
            "groups": groups,
            "novelty": {t: P.novelty(reps[t], {s: reps[s] for s in tasks if s not in held[t]}) for t in tasks}}


def costs(task: str = "fashion-rotated", proxy_name: str = PROXY, repeats: int = 3) -> dict:
    """Query-time cost on one task, measured in this run: Fennec (one proxy forward pass + O(M)
    arithmetic, factorisation fitted offline) against scoring the zoo with LogME (every member's
    forward pass + LogME). Cold = first call in this process (compilation included); warm = best
    of ``repeats`` later calls."""
    from pedjax.features import extract_features
    from pedjax.recommend import Proxy, Recommender, from_zoo
    from pedjax.recommend import proxy as P
    from pedjax.scoring import score_set
    from pedjax.zoo import load_zoo

    zoo = load_zoo()
    H = from_zoo(zoo)
    others = [t for t in H.tasks if t != task]
    pr = Proxy.from_zoo(zoo, proxy_name)
    reps = P.representations(pr, others)  # offline: the history's tasks
    rec = Recommender(H, reps, nonneg=True)
    rec.factors([task])  # offline
    images = P.task_images(task)

    def fennec():
        rep = P.task_representation(pr, images)
        return rec.scores(rep, [task]).components["transfer"]

    def logme():
        return score_set(extract_features(zoo, task, "train"), "logme")

    def hist():
        return H.mean_rank([task])

    out = {}
    for name, fn in (("fennec", fennec), ("logme", logme), ("history", hist)):
        t0 = time.perf_counter()
        fn()
        cold = time.perf_counter() - t0
        warm = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            warm.append(time.perf_counter() - t0)
        out[name] = {"cold": cold, "warm": min(warm)}
    t0 = time.perf_counter()
    extract_features(zoo, task, "train")
    out["features"] = {"warm": time.perf_counter() - t0}
    out["task"], out["n_images"], out["repeats"] = task, int(len(images)), repeats
    return out


def published_tables() -> dict:
    from pedjax.recommend import published
    from pedjax.recommend.evaluate import published_study

    out = {}
    for name, drop in (("supervised-cnn", ()), ("ssl-resnet50", ("sun397",))):
        h = published(name)
        t0 = time.perf_counter()
        out[name] = published_study(h, evaluate=[t for t in h.tasks if t not in drop])
        out[name]["seconds"] = time.perf_counter() - t0
        out[name]["dropped"] = list(drop)
    return out


def _fmt(v, signed=True):
    return "—" if v is None or not math.isfinite(v) else (f"{v:+.3f}" if signed else f"{v:.3f}")


def _range(vals, fmt="{:.3f}"):
    vals = [v for v in vals if math.isfinite(v)]
    if not vals:
        return "—"
    lo, hi = min(vals), max(vals)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}–{fmt.format(hi)}"


def _count(items) -> str:
    """``"a on 3 folds, b on 1 fold"``, most frequent first (ties in first-seen order)."""
    from collections import Counter

    return ", ".join(f"{k} on {n} fold{'s' if n != 1 else ''}" for k, n in Counter(items).most_common())


def markdown(z: dict, c: dict, pub: dict, meta: dict) -> str:
    from pedjax.recommend.evaluate import paired_se
    from pedjax.recommend.hybrid import META_WEIGHT

    tasks = z["tasks"]
    head = z["headline"]  # the judged (headline) tasks: noise ceiling ≥ MIN_CEILING
    excl = z["excluded"]
    T, Th = len(tasks), len(head)
    tab = z["table"]
    mean = {m: float(np.mean([tab[m][t]["tau_w"] for t in head])) for m in tab}
    metric_rows = [m for m in z["variants"]]
    best_metric = z["best_metric"]
    hyb_rows = [m for m in tab if m.startswith("hybrid")]
    best_h = z["best_hybrid"]
    hyb_mean = {v: float(np.mean([z["hybrid_table"][v][t]["tau_w"] for t in head])) for v in z["hybrid_table"]}
    cols = [t + (" †" if t in excl else "") for t in tasks]
    excl_text = "; ".join(f"{t}: {why}" for t, why in excl.items())
    fam = z["families"]
    L = []
    a = L.append
    a("# Recommending a model from history: Fennec-style, archi2vec, and a hybrid with the metrics\n")
    wall = z["cached"].get("wall_seconds")
    a("Regenerate: `python experiments/recommend_study.py` (metric scores cached in `runs/recommend_scores.json`; "
      "delete it to recompute them" + (f", {wall / 60:.0f} min when it was last computed" if wall else "") + ")  ")
    a(f"Run: {meta['date']} on {meta['machine']}, commit `{meta['commit']}`, {meta['seconds']:.0f} s.\n")
    a("## What it does\n")
    a("`pedjax recommend --task NAME` ranks the shipped zoo for a task **without its labels and without a forward "
      "pass of each candidate**, after Fennec (Bai et al., *Pre-Trained Model Recommendation for Downstream "
      "Fine-tuning*, arXiv 2403.06382):\n")
    a("1. **History** (`pedjax.recommend.history`): a (model × task) matrix with missing entries — the zoo's "
      "fine-tuning ground truth (`kind=finetune`, used here), cheap scores of any metric ± PED over (model, task) "
      "pairs (`kind=metric:NAME`; Fennec's own history is such a score), or a user's CSV/JSON; the two published "
      "tables (SFDA's 11 supervised CNNs, Ericsson et al.'s 12 self-supervised ResNet-50s, × 11 datasets) ship in "
      "`pedjax/assets/published_finetune_tables.json`.")
    a("2. **Latent factors** (`factorize.py`): masked low-rank factorisation Y ≈ UVᵀ of the per-task "
      "standardised history in JAX/optax (Adam, projected onto U, V ≥ 0 for the non-negative variant as in Fennec; "
      "plain low-rank otherwise); rank (1–4) and L2 penalty chosen by held-out entries (3 seeded splits of 20 % of "
      "the observed entries); deterministic per seed.")
    a(f"3. **Proxy task embedding** (`proxy.py`): one fixed zoo member (`{z['proxy']}` here; CLIP, Fennec's proxy, is "
      "out of reach offline and does not read 28×28 grey images) reads up to 1000 of the task's images (no labels); "
      "the task is represented by the mean and standard deviation of the proxy's source-standardised features; the "
      "new task's latent vector is the similarity-weighted mean of its k = 2 nearest past tasks' vectors; a model's "
      "**transfer score** is u_mᵀv_new. Cost: one proxy forward pass plus O(models) arithmetic.")
    a("4. **archi2vec** (`archi2vec.py`): each Flax architecture becomes an attributed DAG read from its jaxpr "
      "(primitives + output rank as node labels, per-sample output sizes as a shape attribute, data flow as edges); "
      "3 rounds of Weisfeiler–Lehman relabelling, the bag of rooted subtrees feature-hashed into 128 signed buckets "
      "(graph2vec's starting point, Narayanan et al. 2017, without its doc2vec step) plus a soft log2-size "
      "histogram. Identical architectures embed identically; a width change moves the embedding less than half as "
      "far as a change of family (tested). With parameter count, feature width and pretraining objective they feed "
      f"a ridge model fitted on the history: the **meta score**. Fennec score = z(transfer) + {META_WEIGHT:g}·z(meta).")
    a("5. **Hybrid** (`hybrid.py`): (1 − w)·z(history mean rank) + w·z(metric score), any metric ± PED; w ∈ {0, 0.1, "
      "…, 1} maximises the mean τ_w over the other tasks, each of whose history scores is itself computed without "
      "it and without the held-out task (nested leave-one-task-out; ties → mean of the tied weights).\n")
    a("**Rule**: a task's own ground truth never informs its own ranking — the factorisation, the proxy's "
      "neighbours, the meta score's ridge fit and the hybrid weight all see only the other tasks (tested: permuting "
      "a task's own column changes nothing).\n")
    # ----- main table
    a(f"## Leave-one-task-out on the shipped zoo ({z['n_members']} members, {len(fam)} architecture families, "
      f"{T} tasks × {z['seeds']} seeds)\n")
    a(f"τ_w = weighted Kendall τ against the fine-tuning ground truth (seed mean); metric rows from the benchmark loop "
      f"(every registered metric, static and + PED with the released defaults at nsigma {NSIGMA}). "
      "Every task is ranked leave-one-task-out with all the other tasks as its history (factorisation, proxy "
      "neighbours, meta score, hybrid weights and the hybrid's metric choice see every other task). "
      f"**Judging** follows the main results page ([results.md](results.md), `pedjax.rank.judging`): a task's noise ceiling is the "
      "mean over seed pairs of τ_w(accuracies of seed i, of seed j); a task whose ceiling is below "
      f"{z['min_ceiling']:g} is shown, marked †, and left out of every mean, Δ, paired SE, rel@1/regret@1 mean, the "
      "best-metric and best-hybrid choices, the bar and the figure"
      + (f" — here {len(excl)} of {T}: {excl_text}. The headline is the other {Th} tasks." if excl
         else f" — here none: all {T} tasks are headline tasks.")
      + " Paired SE of the mean difference over the headline tasks.\n")
    a("| method | " + " | ".join(cols) + " | mean τ_w | Δ vs history (±SE) | Δ vs best metric (±SE) | mean rel@1 | mean regret@1 |")
    a("|---|" + "---:|" * (T + 5))
    order = [BASE, "Fennec transfer (non-negative)", "Fennec transfer (plain low-rank)", "archi2vec meta score",
             "Fennec transfer + meta (non-negative)"] + [m for m in tab if m.startswith("history mean rank, ")] + \
        hyb_rows + sorted(metric_rows, key=lambda m: -mean[m]) + [m for m in NO_HISTORY if m in tab]
    hist_taus = [tab[BASE][t]["tau_w"] for t in head]
    bm_taus = [tab[best_metric][t]["tau_w"] for t in head]
    ses = []
    for m in order:
        taus = [tab[m][t]["tau_w"] for t in tasks]
        htaus = [tab[m][t]["tau_w"] for t in head]
        d1 = mean[m] - mean[BASE]
        d2 = mean[m] - mean[best_metric]
        s1, s2 = paired_se(htaus, hist_taus), paired_se(htaus, bm_taus)
        ses += [s for s, mm in ((s1, BASE), (s2, best_metric)) if mm != m]
        a(f"| {m} | " + " | ".join(_fmt(x) for x in taus) + f" | **{_fmt(mean[m])}** | {_fmt(d1)} ± {s1:.3f} | "
          f"{_fmt(d2)} ± {s2:.3f} | {np.mean([tab[m][t]['rel1'] for t in head]):.3f} | "
          f"{np.mean([tab[m][t]['regret1'] for t in head]):.4f} |")
    ceil = z["ceiling"]
    ceil_head = [ceil[t] for t in head]
    a("| *noise ceiling* | " + " | ".join("n/a" if not math.isfinite(ceil[t]) else _fmt(ceil[t]) for t in tasks)
      + f" | {_fmt(float(np.mean(ceil_head))) if ceil_head and all(map(math.isfinite, ceil_head)) else 'n/a'} | | | | |")
    a("")
    a("Mean τ_w, Δ, ± SE, mean rel@1 and mean regret@1 are over the headline tasks"
      + (f" ({Th} of {T}; † = left out of them: {excl_text})" if excl else f" (all {T})")
      + ". regret@1 in accuracy (fraction).\n")
    a("![mean τ_w per method](figures/recommend_tau.png)\n")
    a(f"Best single metric (headline mean): **{best_metric}** ({_fmt(mean[best_metric])}). History mean rank: "
      f"{_fmt(mean[BASE])}. Chosen ranks of the non-negative factorisation per held-out task: "
      f"{z['ranks']}; plain: {z['ranks_plain']}. Metric chosen by the fully leave-one-task-out hybrid: "
      + ", ".join(f"{t}: {v} (w {w:.2f})" for t, (v, w) in z["chosen"].items()) + ".\n")
    # ----- hybrid per metric
    a("### The hybrid with each metric (history mean rank ⊕ metric, weight leave-one-task-out)\n")
    a("Means over the headline tasks; the weights are listed for every held-out task, in the main table's task order "
      "(" + ", ".join(cols) + ").\n")
    a("| metric | metric alone | hybrid | weights per held-out task | Δ vs history | Δ vs best metric |")
    a("|---|---:|---:|---|---:|---:|")
    for v in sorted(hyb_mean, key=lambda v: -hyb_mean[v]):
        a(f"| {v} | {_fmt(mean[v])} | **{_fmt(hyb_mean[v])}** | " + ", ".join(f"{z['weights'][v][t]:.2f}" for t in tasks)
          + f" | {_fmt(hyb_mean[v] - mean[BASE])} | {_fmt(hyb_mean[v] - mean[best_metric])} |")
    a("")
    target = max(mean[BASE], mean[best_metric]) + 0.05
    sel_name = "hybrid: history mean rank ⊕ metric chosen leave-one-task-out"
    fen_name = f"hybrid: Fennec transfer ⊕ {best_h}"

    def verdict(x):
        return f"passes by {_fmt(x - target, False)}" if x >= target else f"misses by {_fmt(target - x, False)}"

    a("### Does the hybrid beat both by ≥ 0.05?\n")
    a(f"The bar is {_fmt(target)} (max of history mean rank {_fmt(mean[BASE])} and the best metric "
      f"{_fmt(mean[best_metric])}, + 0.05; headline tasks).\n")
    a(f"* With **{best_h}** as the metric the hybrid reaches **{_fmt(hyb_mean[best_h])}** ({verdict(hyb_mean[best_h])}). "
      f"But {best_h} is picked here *after* seeing all {len(hyb_mean)} hybrids' results on these {Th} headline tasks: "
      "that choice is not leave-one-task-out.")
    chosen_v = [v for v, _ in z["chosen"].values()]
    chosen_head = [z["chosen"][t][0] for t in head]
    a(f"* With the metric also chosen leave-one-task-out (per held-out task, the (metric, weight) best on the "
      f"other {T - 1} tasks) the hybrid reaches **{_fmt(mean[sel_name])}**: it {verdict(mean[sel_name])}. "
      f"The selection picks {_count(chosen_v)} (over all {T} folds); on the {Th} headline folds it picks "
      + (f"{best_h}, the best hybrid after the fact, on {chosen_head.count(best_h)}." if best_h in chosen_head
         else f"{best_h}, the best hybrid after the fact, on none."))
    a(f"* With the best single metric ({best_metric}) the hybrid reaches {_fmt(hyb_mean[best_metric])} "
      f"({_fmt(hyb_mean[best_metric] - mean[BASE])} vs history; {verdict(hyb_mean[best_metric])}).")
    if fen_name in mean:
        fw = z["fennec_hybrid_weights"]
        a(f"* Fennec's transfer score (non-negative) ⊕ {best_h} (weight leave-one-task-out, metric picked after the "
          f"fact as above) reaches {_fmt(mean[fen_name])} ({verdict(mean[fen_name])}); weights per held-out task "
          + ", ".join(f"{fw[t]:.2f}" for t in tasks)
          + (" — 0 on every fold, so this row is Fennec's transfer score alone." if all(w == 0 for w in fw.values()) else "."))
    rk_nn, rk_pl = list(z["ranks"].values()), list(z["ranks_plain"].values())
    fn, fp = mean["Fennec transfer (non-negative)"], mean["Fennec transfer (plain low-rank)"]
    s = ("* Fennec's transfer score: the non-negative factorisation's rank chosen by held-out entries is "
         + _count(f"rank {r}" for r in rk_nn) + ", the plain one's " + _count(f"rank {r}" for r in rk_pl) + ". ")
    if set(rk_nn) == {1}:
        s += ("A non-negative rank-1 factorisation orders the models by u_m for every task (v ≥ 0 is a scalar), "
              "so the proxy's task similarity cannot change its ranking: it is one fixed leaderboard. ")
    s += (f"Headline mean τ_w: non-negative {_fmt(fn)}, plain {_fmt(fp)}, history mean rank {_fmt(mean[BASE])} "
          f"(non-negative {_fmt(fn - mean[BASE])} ± {paired_se([tab['Fennec transfer (non-negative)'][t]['tau_w'] for t in head], hist_taus):.3f}, "
          f"plain {_fmt(fp - mean[BASE])} ± {paired_se([tab['Fennec transfer (plain low-rank)'][t]['tau_w'] for t in head], hist_taus):.3f} "
          "vs history). Neighbours (plain) per held-out task: "
          + "; ".join(f"{t}: " + ", ".join(f"{k} {w:.2f}" for k, w in n.items()) for t, n in z["neighbours"].items()) + ".\n")
    a(s)
    # ----- costs
    cc = c
    a(f"## Query-time cost (one task, {z['n_members']}-model zoo, measured in one run)\n")
    a(f"Task `{cc['task']}` ({cc['n_images']} training images). Fennec: the proxy's forward pass over ≤ 1000 images "
      "+ neighbour weights + u_mᵀv (factorisation fitted offline); LogME: every member's forward pass + LogME "
      f"(what `pedjax score` would do). Cold = first call in the process (compilation included), warm = best of "
      f"{cc.get('repeats', 3)}.\n")
    a("| method | cold s | warm s |")
    a("|---|---:|---:|")
    a(f"| history mean rank | {cc['history']['cold']:.4f} | {cc['history']['warm']:.5f} |")
    a(f"| Fennec transfer (proxy `{z['proxy']}`) | {cc['fennec']['cold']:.3f} | {cc['fennec']['warm']:.4f} |")
    a(f"| LogME on the zoo (features + LogME) | {cc['logme']['cold']:.2f} | {cc['logme']['warm']:.3f} |")
    a(f"| (zoo features alone) | — | {cc['features']['warm']:.3f} |")
    a("")
    def times(k):
        r = cc["logme"][k] / cc["fennec"][k]
        return f"{r:.0f}× cheaper" if r >= 1 else f"{1 / r:.0f}× dearer"

    a(f"**Fennec is {times('cold')} cold and {times('warm')} warm than scoring the zoo with LogME.** "
      f"Offline, once per history: the factorisation (held-out selection + fit) "
      f"{np.mean(list(z['fit_seconds'].values())):.1f} s per fold, archi2vec of the zoo's {z['n_archs']} distinct "
      f"architectures ({len(fam)} families: {', '.join(fam)}) {z['archi_seconds']:.1f} s. Every other metric costs "
      "the zoo's features plus its own time (per task, from the benchmark run: features "
      f"{np.mean(list(z['cached']['feature_seconds'].values())):.1f} s; "
      + ", ".join(f"{v} {z['cached']['seconds'][v] / T:.2f} s" for v in sorted(z["variants"]))
      + "); a hybrid costs its metric plus the arithmetic.\n")
    # ----- published
    a("## The published tables (history only, no images)\n")
    a("Leave-one-task-out: history mean rank, and the factorisation's transfer score with uniform weights over "
      "the past tasks (no proxy: no images). Held-out entry error: RMSE on the preprocessed scale (z-scores for "
      "plain, min–max [0, 1] for non-negative) over 3 splits of 20 % held-out entries, at the chosen rank/penalty "
      "on the full table, beside two baselines.\n")
    a("| table | judged tasks | history mean rank | factorised (non-negative) | factorised (plain) |")
    a("|---|---:|---:|---:|---:|")
    for name, r in pub.items():
        a(f"| {name}{' (without ' + ', '.join(r['dropped']) + ')' if r['dropped'] else ''} | {len(r['tasks'])} | "
          f"**{r['mean']['history mean rank']:.3f}** | {r['mean']['factorised (non-negative)']:.3f} "
          f"({r['mean']['factorised (non-negative)'] - r['mean']['history mean rank']:+.3f}) | "
          f"{r['mean']['factorised (plain)']:.3f} ({r['mean']['factorised (plain)'] - r['mean']['history mean rank']:+.3f}) |")
    a("")
    a("| table | variant | rank | penalty | held-out RMSE | baseline: task mean | baseline: model mean |")
    a("|---|---|---:|---:|---:|---:|---:|")
    rows_h = []
    for name, r in pub.items():
        for var, e in r["heldout"].items():
            rows_h.append((name, e))
            a(f"| {name} | {var} | {e['rank']} | {e['reg']:g} | **{e['rmse']:.3f}** | {e['baseline: task mean']:.3f} | "
              f"{e['baseline: model mean']:.3f} |")
    a("")
    sup, ssl = pub["supervised-cnn"]["mean"], pub["ssl-resnet50"]["mean"]
    published_values = {"supervised-cnn": 0.837, "ssl-resnet50": 0.667}  # the papers' numbers (tested)
    same = all(abs(pub[n]["mean"]["history mean rank"] - v) < 5e-4 for n, v in published_values.items())
    below = sum(e["rmse"] < min(e["baseline: task mean"], e["baseline: model mean"]) for _, e in rows_h)
    a(f"History mean rank gives {sup['history mean rank']:.3f} (supervised CNNs) and {ssl['history mean rank']:.3f} "
      f"(SSL ResNet-50s): {'it reproduces' if same else 'it differs from'} the published "
      + " and ".join(f"{v:.3f}" for v in published_values.values()) + ". "
      f"The non-negative factorisation's transfer score is {sup['factorised (non-negative)'] - sup['history mean rank']:+.3f} "
      f"(supervised CNNs) and {ssl['factorised (non-negative)'] - ssl['history mean rank']:+.3f} (SSL ResNet-50s) "
      "against it. Without a proxy, a new task's latent vector is the mean of the past tasks' vectors, so the "
      "transfer score is a smoothed mean standardised accuracy — the same information as mean rank, with accuracy "
      "gaps weighted in. What mean rank cannot do is predict missing entries: the factorisation's held-out RMSE is "
      f"below both baselines in {below} of {len(rows_h)} rows above (RMSE / task-mean baseline "
      f"{_range([e['rmse'] / e['baseline: task mean'] for _, e in rows_h], '{:.2f}')}, RMSE / model-mean baseline "
      f"{_range([e['rmse'] / e['baseline: model mean'] for _, e in rows_h], '{:.2f}')}).\n")
    a("## Not done / limits\n")
    a("* CLIP as the proxy (offline; and the zoo's tasks are 28×28 grey images). The proxy is a zoo member.")
    a("* graph2vec's doc2vec step: archi2vec stops at the hashed bag of WL subtrees (too few graphs to train on).")
    a(f"* {Th} headline tasks ({T} in all): the paired SEs of the Δ columns above range {_range(ses)}; each held-out "
      f"task's hybrid weight and metric are learned on the other {T - 1} tasks"
      + (f", including the {len(excl)} left out of the headline for their noise ceiling (†: {', '.join(excl)}), "
         "which still count in those choices and in every history" if excl else "") + ".")
    return "\n".join(L) + "\n"


NEW_DOMAINS = ("glyphs", "emoji")  # benchmark v3's domains: no earlier history covers them


def lodo_markdown(zl: dict, z: dict) -> str:
    """The leave-one-domain-out section: ``zl`` from :func:`zoo_study` with ``groups``, ``z`` the
    leave-one-task-out study (for the same tasks' leave-one-task-out history, side by side)."""
    from pedjax.recommend.evaluate import paired_se

    groups = zl["groups"]
    head = zl["headline"]
    doms = list(dict.fromkeys(groups[t] for t in zl["tasks"]))
    by_dom = {d: [t for t in head if groups[t] == d] for d in doms}
    new = [t for t in head if groups[t] in NEW_DOMAINS]
    tab = zl["table"]
    if not new:
        return ""

    def m_over(m, ts, key="tau_w", table=tab):
        return float(np.mean([table[m][t][key] for t in ts])) if ts else float("nan")

    best_new = max(zl["variants"], key=lambda v: m_over(v, new))
    sel = "hybrid: history mean rank ⊕ metric chosen leave-one-task-out"
    rows = [BASE, "Fennec transfer (non-negative)", "Fennec transfer (plain low-rank)",
            "Fennec transfer + meta (non-negative)", sel] + \
        [m for m in tab if m.startswith("hybrid") and m != sel] + sorted(zl["variants"], key=lambda v: -m_over(v, new)) + \
        [m for m in NO_HISTORY if m in tab]
    hist = [tab[BASE][t]["tau_w"] for t in new]
    bm = [tab[best_new][t]["tau_w"] for t in new]
    L = []
    a = L.append
    a("## Leave-one-domain-out: tasks from a domain the history has never seen\n")
    a("The same methods, but every history-based part — history mean rank, the factorisation, the proxy's "
      "neighbours, the meta score's ridge fit, the hybrid's weights and its metric choice — sees only the tasks of "
      "the *other* domains (`pedjax.recommend.hybrid.holdout`; the hybrid's inner folds hold out whole domains "
      "too). Domains: " + ", ".join(f"{d} ({len([t for t in zl['tasks'] if groups[t] == d])} tasks)" for d in doms)
      + f". The metric rows do not read history and are as in the table above. **New domains** = "
      f"{', '.join(NEW_DOMAINS)} ({len(new)} headline tasks): Δ, ± paired SE, rel@1 and regret@1 are over them. "
      f"Best single metric on them (picked after the fact, which favours it): **{best_new}**.\n")
    a("| method | " + " | ".join(f"{d} ({len(by_dom[d])})" for d in doms)
      + " | new domains | Δ vs history (±SE) | Δ vs best metric (±SE) | rel@1 | regret@1 |")
    a("|---|" + "---:|" * (len(doms) + 5))
    for m in rows:
        t_new = [tab[m][t]["tau_w"] for t in new]
        a(f"| {m} | " + " | ".join(_fmt(m_over(m, by_dom[d])) for d in doms)
          + f" | **{_fmt(m_over(m, new))}** | {_fmt(m_over(m, new) - m_over(BASE, new))} ± {paired_se(t_new, hist):.3f} | "
          f"{_fmt(m_over(m, new) - m_over(best_new, new))} ± {paired_se(t_new, bm):.3f} | "
          f"{m_over(m, new, 'rel1'):.3f} | {m_over(m, new, 'regret1'):.4f} |")
    ceil = zl["ceiling"]
    a("| *noise ceiling* | " + " | ".join(_fmt(float(np.mean([ceil[t] for t in by_dom[d]]))) if by_dom[d] else "—"
                                          for d in doms)
      + f" | {_fmt(float(np.mean([ceil[t] for t in new])))} | | | | |")
    a("")
    lt = z["table"]
    nl, nt = zl["novelty"], z["novelty"]
    old_dom = [t for t in zl["tasks"] if groups[t] not in NEW_DOMAINS]
    a("**Can the command see that the history is blind?** A gate was tried: the proxy's novelty "
      "(`pedjax.recommend.proxy.novelty`, which `pedjax recommend` reports; > 1: the task is further from every past "
      "task than any past task is from its nearest peer), taking the hybrid weight learned leave-one-domain-out above "
      "1. Held out with "
      f"their domain, the new-domain tasks' novelty is {_range([nl[t] for t in new], '{:.2f}')} "
      f"({sum(nl[t] > 1 for t in new)} of {len(new)} above 1); held out alone (leave-one-task-out) every task's is "
      f"{_range([nt[t] for t in zl['tasks']], '{:.2f}')} ({sum(nt[t] > 1 for t in zl['tasks'])} of "
      f"{len(zl['tasks'])} above 1); the older domains' tasks held out with their domain: "
      f"{_range([nl[t] for t in old_dom], '{:.2f}')}.\n")
    hyb = zl["hybrid_table"]
    beat = [v for v in hyb if float(np.mean([hyb[v][t]["tau_w"] for t in new])) - m_over(BASE, new)
            > 2 * paired_se([hyb[v][t]["tau_w"] for t in new], hist)]
    a("What the gate would give on the new domains: the hybrid with each metric, its weight learned "
      "leave-one-domain-out, against history and the best metric. "
      + (f"**Above history by more than two paired SEs: {', '.join(beat)}.**" if beat else
         "**No hybrid beats history mean rank on them by more than two paired SEs** (history from the other domains "
         "still ranks the new domains' tasks at least as well), so the gate would pick the blind weights where they "
         "do not help; it is not shipped, and `pedjax recommend` keeps the leave-one-task-out weights.") + "\n")
    a("| metric | metric alone | hybrid | Δ vs history (±SE) | Δ vs best metric (±SE) |")
    a("|---|---:|---:|---:|---:|")
    for v in sorted(hyb, key=lambda v: -float(np.mean([hyb[v][t]["tau_w"] for t in new]))):
        h = [hyb[v][t]["tau_w"] for t in new]
        a(f"| {v} | {_fmt(m_over(v, new))} | **{_fmt(float(np.mean(h)))}** | "
          f"{_fmt(float(np.mean(h)) - m_over(BASE, new))} ± {paired_se(h, hist):.3f} | "
          f"{_fmt(float(np.mean(h)) - m_over(best_new, new))} ± {paired_se(h, bm):.3f} |")
    a("")
    a(f"For comparison, the same {len(new)} new-domain tasks leave-one-task-out (their own domain's other tasks in "
      f"the history): history mean rank {_fmt(m_over(BASE, new, table=lt))}, Fennec transfer (non-negative) "
      f"{_fmt(m_over('Fennec transfer (non-negative)', new, table=lt))}, the leave-one-task-out hybrid "
      f"{_fmt(m_over(sel, new, table=lt))}.\n")
    # where PED helps on the new domains
    a("### PED on the new domains\n")
    a("| metric | static | + PED | Δ (± paired SE) |")
    a("|---|---:|---:|---:|")
    for v in sorted(v for v in zl["variants"] if "+" not in v and f"{v}+PED" in zl["variants"]):
        st, pd = [tab[v][t]["tau_w"] for t in new], [tab[f"{v}+PED"][t]["tau_w"] for t in new]
        d = float(np.mean(pd) - np.mean(st))
        se = paired_se(pd, st)
        a(f"| {v} | {_fmt(float(np.mean(st)))} | {_fmt(float(np.mean(pd)))} | {_fmt(d)} ± {se:.3f}"
          + (" **helps**" if d > 2 * se else " hurts" if d < -2 * se else "") + " |")
    a("")
    return "\n".join(L) + "\n"


def figure(z: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    head = z["headline"]
    tab = z["table"]
    rows = [m for m in tab if not m.startswith("history mean rank, ")]
    means = {m: np.mean([tab[m][t]["tau_w"] for t in head]) for m in rows}
    se = {m: np.std([tab[m][t]["tau_w"] for t in head], ddof=1) / np.sqrt(len(head)) if len(head) > 1 else 0.0
          for m in rows}
    rows = sorted(rows, key=lambda m: means[m])
    colors = ["tab:blue" if m in NO_HISTORY else "tab:red" if m.startswith("hybrid") else "tab:green" if m.startswith(("Fennec", "history", "archi2vec"))
              else "tab:gray" for m in rows]
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(rows) + 1))
    ax.barh(range(len(rows)), [means[m] for m in rows], xerr=[se[m] for m in rows], color=colors)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=7)
    ax.axvline(0, color="k", lw=0.5)
    excl = z["excluded"]
    ax.set_xlabel(f"mean weighted τ, leave-one-task-out (± SE over {len(head)} headline tasks"
                  + (f";\nleft out for a noise ceiling < {z['min_ceiling']:g}: {', '.join(excl)}" if excl else "") + ")",
                  fontsize=8)
    ax.set_title("Shipped zoo: history/Fennec (green), hybrids (red), metrics ± PED (grey), baselines without history (blue)",
                 fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scores", type=Path, default=ROOT / "runs" / "recommend_scores.json")
    ap.add_argument("--only-scores", action="store_true", help="compute the metric scores cache and stop")
    ap.add_argument("--benchmark-tasks", type=Path, default=ROOT / "runs" / "zoo_benchmark_tasks.json",
                    help="experiments/zoo_benchmark.py's per-(task, metric) scores: used instead of --scores when it "
                         "holds every task and metric (PED at nsigma 0.6)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "recommend.md")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "figures" / "recommend_tau.png")
    ap.add_argument("--weights", type=Path, default=ROOT / "pedjax" / "assets" / "recommend_weights.json")
    ap.add_argument("--json", type=Path, default=ROOT / "runs" / "recommend_study.json")
    args = ap.parse_args(argv)
    t0 = time.time()
    if args.only_scores:
        metric_scores(args.scores)
        return 0
    import platform
    import subprocess

    z = zoo_study(args.scores, benchmark_tasks=args.benchmark_tasks)
    groups = domains_of(z["tasks"])
    # leave-one-domain-out needs ≥ 3 domains: the hybrid's inner folds hold out a second one
    zl = zoo_study(args.scores, benchmark_tasks=args.benchmark_tasks, groups=groups) \
        if len(set(groups.values())) >= 3 else None
    c = costs()
    pub = published_tables()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    import jax

    meta = {"date": datetime.date.today().isoformat(), "commit": commit, "seconds": time.time() - t0,
            "machine": f"{platform.machine()} {__import__('os').cpu_count()} CPU(s), jax {jax.__version__}, python {platform.python_version()}"}
    page = markdown(z, c, pub, meta)
    if zl is not None:
        cut = page.index("## Query-time cost")
        page = page[:cut] + lodo_markdown(zl, z) + page[cut:]
    args.out.write_text(page)
    figure(z, args.figure)
    weights = {"description": "hybrid weights w of (1 - w)·z(history mean rank) + w·z(metric), learned by "
               "experiments/recommend_study.py on the shipped zoo: 'loto' per held-out task (learned on the other tasks), "
               "'all' on every task (for tasks outside the ground truth)", "base": BASE,
               "weights": {v: {"all": z["all_weights"][v], "loto": z["weights"][v]} for v in z["variants"]},
               "commit": commit}
    args.weights.write_text(json.dumps(weights, indent=1) + "\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        slim = {k: v for k, v in z.items() if k != "cached"}
        slim_l = None if zl is None else {k: v for k, v in zl.items() if k != "cached"}
        args.json.write_text(json.dumps({"zoo": slim, "zoo_lodo": slim_l, "costs": c, "published": pub, "meta": meta},
                                        indent=1, default=float))
    print(f"wrote {args.out}, {args.figure}, {args.weights} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
