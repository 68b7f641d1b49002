"""The paper's Table 1 on pedjax's own zoo: every registered metric, static and + PED, against fine-tuning.

    python experiments/zoo_benchmark.py             # the shipped zoo + its ground truth -> docs/results.md
    python experiments/zoo_benchmark.py --zoo DIR --out OUT.md --figure OUT.png --json OUT.json

For every task of the zoo's ground-truth table: every member's features on the task's training
split (``pedjax.features.extract_features``), every metric of ``pedjax.metrics.REGISTRY`` —
feature metrics static and after PED with the released defaults at nsigma 0.3 and 0.6 (the
paper's two candidates; source statistics = each member's held-out source-set statistics),
LEEP/NCE (which take source-class probabilities / labels, PED does not apply) on each member's
source probe — and each variant's weighted Kendall τ (``pedjax.rank.weighted_tau``, =
``scipy.stats.weightedtau``) against the fine-tuning ground truth; per task and the mean over
tasks. Writes a markdown report (the table, where PED helps and where it does not, the ground
truth, provenance) and a PNG figure. Nothing in the report is typed by hand: rerun the script
and the numbers are regenerated.

Judged as ../shared/DESIGN.md asks (:mod:`pedjax.rank.judging`): next to every metric the
baselines on the same rows — random (expected τ_w), parameter count, source linear-probe
accuracy, history mean rank (leave-one-task-out) — the noise ceiling per task (from the per-seed
accuracies in ``ground_truth.json``; "unavailable" when the table has none), the mean pairwise
Kendall τ between the tasks' rankings, per method the paired standard error of its difference to
the best baseline across tasks, rel@1 and regret@1, and the setup stability of the winning metric.
Tasks whose noise ceiling is below ``--min-ceiling`` (0.7) are shown, marked and left out of the
headline mean.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "results.md"
DEFAULT_FIGURE = ROOT / "docs" / "figures" / "zoo_tau.png"
NSIGMAS = (0.3, 0.6)
from pedjax.rank.judging import MIN_CEILING  # noqa: E402

#: benchmark v3's targets (issue 23; docs/zoo.md "Benchmark v3"): the headline tasks' mean noise
#: ceiling (each is ≥ MIN_CEILING by construction) and their mean pairwise Kendall τ
MEAN_CEILING_TARGET = 0.8
AGREEMENT_TARGET = 0.45


def _v3_targets(J: dict, head) -> list[str]:
    """Benchmark v3's targets on the headline tasks, stated as met or missed, and each headline task's
    mean τ to the others (which tasks reorder the zoo)."""
    th = J.get("task_agreement_headline") if J["excluded"] else J.get("task_agreement")
    ceil = [J["ceiling"][t] for t in head if math.isfinite(J["ceiling"].get(t, math.nan))]
    if not th or not math.isfinite(th["mean"]) or len(ceil) < 2:
        return []
    mc = float(np.mean(ceil))
    per = {t: float(np.nanmean([v for k, v in th["pairs"].items() if t in k.split(" | ")])) for t in head}
    met = lambda ok: "met" if ok else "**missed**"  # noqa: E731
    return [f"* Benchmark v3's targets over the {len(head)} headline tasks: every noise ceiling ≥ {MIN_CEILING:g} (the "
            f"headline bar) with mean {mc:.3f} (target ≥ {MEAN_CEILING_TARGET:g}: {met(mc >= MEAN_CEILING_TARGET)}); mean "
            f"pairwise Kendall τ {_fmt(th['mean'])} (target ≤ {AGREEMENT_TARGET:g}: {met(th['mean'] <= AGREEMENT_TARGET)}).",
            "* Each headline task's mean Kendall τ to the other headline tasks (low: the task reorders the zoo): "
            + ", ".join(f"{t} {_fmt(v)}" for t, v in sorted(per.items(), key=lambda kv: kv[1])) + "."]


def variant_name(metric: str, nsigma: float | None) -> str:
    return metric if nsigma is None else f"{metric}+PED({nsigma:g})"


BASELINES = ("random", "param-count", "source-probe", "history")
BASELINE_LABELS = {"random": "random (expected τ_w)", "param-count": "parameter count", "source-probe": "source linear-probe accuracy",
                   "history": "history mean rank (leave-one-task-out)"}


def judge(result: dict, min_ceiling: float = MIN_CEILING, halves: int = 50) -> dict:
    """Baselines, noise ceiling, task agreement, paired SEs, rel@1/regret@1, stability (module docstring)."""
    from pedjax.rank import judging

    tasks = result["tasks"]
    truth = {t: result["truth"][t] for t in tasks}
    members = {m["name"]: m for m in result["members"]}
    # the baselines as scores {task: {model: score}}
    base_scores = {
        "param-count": judging.constant_scores({n: m["n_params"] for n, m in members.items() if m.get("n_params") is not None}, tasks),
        "source-probe": judging.constant_scores({n: m["probe_accuracy"] for n, m in members.items() if m.get("probe_accuracy") is not None}, tasks),
    }
    if len(tasks) >= 2:
        base_scores["history"] = {t: judging.history_scores(truth, t) for t in tasks}
    taus = {b: judging.tau_per_task(sc, truth) for b, sc in base_scores.items()}
    taus["random"] = {t: judging.random_expected_tau(truth[t]) for t in tasks}
    picks = {b: judging.pick_quality(sc, truth) for b, sc in base_scores.items()}
    rnd = {t: judging.random_expected_pick(truth[t]) for t in tasks}
    picks["random"] = {"rel1": {t: rnd[t]["rel1"] for t in tasks}, "regret1": {t: rnd[t]["regret1"] for t in tasks}}
    method_scores = {}
    for name in result["tau"]:
        method_scores[name] = {t: (result["scores"][t].get(name) or {}) for t in tasks}
        picks[name] = judging.pick_quality(method_scores[name], truth)
    # the noise ceiling and which tasks the headline keeps
    h = judging.headline(result.get("truth_per_seed", {}), tasks, min_ceiling)
    ceiling, excluded, headline = h["ceiling"], h["excluded"], h["tasks"]
    all_taus = {**{k: dict(v) for k, v in result["tau"].items()}, **taus}
    best_base = judging.best_baseline({b: {t: taus[b][t] for t in headline} for b in taus}, [b for b in BASELINES if b in taus])
    rows = {}
    for name, per_task in all_taus.items():
        pd = judging.paired_difference({t: per_task[t] for t in headline}, {t: all_taus[best_base][t] for t in headline}) \
            if best_base is not None and name != best_base else {"mean": math.nan, "se": math.nan, "n": 0}
        rows[name] = {
            "mean": judging.mean_finite(per_task[t] for t in headline),
            "mean_all": judging.mean_finite(per_task[t] for t in tasks),
            "vs_best_baseline": pd,
            "rel1": judging.mean_finite(picks[name]["rel1"][t] for t in headline),
            "regret1": judging.mean_finite(picks[name]["regret1"][t] for t in headline),
            "per_task_rel1": picks[name]["rel1"], "per_task_regret1": picks[name]["regret1"],
        }
    metric_scores = {k: v for k, v in method_scores.items() if all(v[t] for t in headline)}
    stability = judging.setup_stability(metric_scores, {t: truth[t] for t in headline}, halves=halves) \
        if metric_scores and headline else None
    ceil_vals = [ceiling[t] for t in headline if math.isfinite(ceiling[t])]
    return {
        "baseline_tau": taus, "rows": rows, "best_baseline": best_base, "ceiling": ceiling,
        "ceiling_mean": float(np.mean(ceil_vals)) if ceil_vals and len(ceil_vals) == len(headline) else math.nan,
        "ceiling_available": any(math.isfinite(v) for v in ceiling.values()),
        "excluded": excluded, "headline_tasks": headline, "min_ceiling": min_ceiling,
        "task_agreement": judging.task_agreement(truth),
        "task_agreement_headline": judging.task_agreement({t: truth[t] for t in headline}) if len(headline) >= 2 else None,
        "stability": stability,
        "beats_history": sorted(n for n in result["tau"] if "history" in rows and math.isfinite(rows[n]["mean"])
                                and rows[n]["mean"] > rows["history"]["mean"]),
    }


META_SUFFIX = "PED(meta)"


def meta_loto(sets, metric: str, steps: int, verbose: bool = True) -> dict:
    """PED settings meta-learned leave-one-task-out (``pedjax.meta.MetaLearner``): for each task, the
    settings learned on the other tasks only, then that task's scores and τ_w with them."""
    from pedjax.meta import MetaLearner
    from pedjax.rank import weighted_tau

    t0 = time.time()
    ml = MetaLearner(sets, metric)
    out = {"scores": {}, "tau": {}, "configs": {}, "steps": steps}
    for k, fs in enumerate(sets):
        res = ml.fit(steps, weights=ml.weights(holdout=k))
        cfg = res.config
        sc = ml.scores(cfg)[k]
        ms = [m for m in sc if m in fs.truth]
        out["scores"][fs.task] = sc
        out["tau"][fs.task] = weighted_tau([sc[m] for m in ms], [float(fs.truth[m]) for m in ms])
        out["configs"][fs.task] = {f: float(getattr(cfg, f)) for f in ("nsigma", "constant", "time_step")}
        if verbose:
            print(f"  {fs.task} {metric}+{META_SUFFIX:12s} tau_w {out['tau'][fs.task]:+.3f}  (learned without it: "
                  + ", ".join(f"{k2} {v:.3g}" for k2, v in out["configs"][fs.task].items()) + ")", flush=True)
    out["seconds"] = round(time.time() - t0, 2)
    return out


def run(zoo_dir=None, tasks=None, metrics=None, nsigmas=NSIGMAS, verbose: bool = True, meta=(), meta_steps: int = 20,
        meta_min_ceiling: float = MIN_CEILING, resume: Path | None = None, keep: bool = False,
        rescore=()) -> dict:
    """Scores and weighted τ of every (metric variant, task) through the one benchmark loop
    (``pedjax.rank.benchmark``); see the module docstring. ``resume``: a JSON file of the finished
    (task, metric) pairs, written after each task; a pair is reused when its nsigmas and the
    scoring code's fingerprint match (whatever the fingerprint with ``keep``) and the metric is not
    in ``rescore``."""
    import pedjax
    from pedjax.features import extract_features
    from pedjax.metrics import names
    from pedjax.rank import BenchmarkResult, benchmark
    from pedjax.zoo import TRUTH_FILE, load_zoo

    t_all = time.time()
    zoo = load_zoo(zoo_dir)
    truth = zoo.truth()
    if truth is None:
        raise FileNotFoundError(f"zoo: no {TRUTH_FILE} in {zoo.path}; build it with `pedjax zoo build --zoo {zoo.path}`")
    tasks = list(tasks) if tasks else list(truth["datasets"])
    metrics = list(metrics) if metrics else names()  # the metrics of class labels
    unknown = [m for m in metrics if m not in names()]
    if unknown:
        raise ValueError(f"--metrics: unknown or not for class labels: {unknown}; choose from {names()}")
    for task in tasks:
        zoo.task_truth(task, "--tasks")
    peds = {f"PED({s:g})": pedjax.PEDConfig(nsigma=s) for s in nsigmas}
    sets = []
    show = (lambda t, v, tau, sec: print(f"  {t} {v:22s} tau_w {tau:+.3f}  ({sec:.1f} s)", flush=True)) if verbose else None
    done = _load_partial(resume) if resume else {}
    fp = _fingerprint()  # of all the scoring code: an entry stored with it before per-metric fingerprints is valid
    rescore = set(rescore)
    res = BenchmarkResult([], [])
    for task in tasks:
        fs = extract_features(zoo, task, "train", with_truth=True)
        if verbose:
            print(f"{task}: features of {len(fs.models)} members on {fs.n_samples} images in {fs.seconds:.1f} s", flush=True)
        sets.append(fs)
        stored = done.get(task, {}).get("metrics", {})
        ok = {m: e for m, e in stored.items() if m not in rescore and e["nsigmas"] == list(nsigmas)
              and (keep or e["fingerprint"] in (_fingerprint(m), fp))}
        needed = [m for m in metrics if m not in ok]
        if needed:
            one = benchmark([fs], needed, peds, on_variant=show)
            for m in needed:
                vs = [v for v in one.variants if _metric_of(v) == m]
                ok[m] = {"fingerprint": _fingerprint(m), "nsigmas": list(nsigmas), "variants": vs,
                         "scores": {v: one.scores[task][v] for v in vs},
                         "tau": {v: one.tau.get(v, {}).get(task, math.nan) for v in vs},
                         "errors": {v: one.errors[v][task] for v in vs if task in one.errors.get(v, {})},
                         "unscored": {v: one.unscored[v][task] for v in vs if task in one.unscored.get(v, {})},
                         "seconds": {v: one.seconds[v] for v in vs}}
            if resume:
                done[task] = {"feature_seconds": one.feature_seconds[task], "metrics": {**stored, **ok}}
                _save_partial(resume, done)
        if verbose and len(needed) < len(metrics):
            print(f"  {task}: {len(metrics) - len(needed)} metric(s) reused from {resume}", flush=True)
        res.tasks.append(task)
        res.scores[task] = {}
        res.feature_seconds[task] = done.get(task, {}).get("feature_seconds", round(fs.seconds, 2))
        for m in metrics:
            e = ok[m]
            if task == tasks[0]:
                res.variants.extend(e["variants"])
            res.scores[task].update(e["scores"])
            for v in e["variants"]:
                res.tau.setdefault(v, {})[task] = e["tau"][v]
                res.seconds[v] = res.seconds.get(v, 0.0) + e["seconds"][v]
            for v, err in e["errors"].items():
                res.errors.setdefault(v, {})[task] = err
            for v, u in e["unscored"].items():
                res.unscored.setdefault(v, {})[task] = u
    metas = {}
    # learned and judged on the tasks above the noise-ceiling bar only (as experiments/meta_study.py):
    # a task whose seeds disagree gives the meta-gradient noise to fit; the others get no meta row
    from pedjax.rank import judging

    kept = judging.headline(truth.get("per_seed", {}), [fs.task for fs in sets], meta_min_ceiling)["tasks"]
    meta_sets = [fs for fs in sets if fs.task in kept]
    for metric in meta:
        if len(meta_sets) < 2:
            break
        m = meta_loto(meta_sets, metric, meta_steps, verbose)
        for fs in sets:
            if fs.task not in m["tau"]:
                m["tau"][fs.task], m["scores"][fs.task] = math.nan, {}
        name = f"{metric}+{META_SUFFIX}"
        metas[metric] = {"configs": m["configs"], "steps": meta_steps, "seconds": m["seconds"],
                         "tasks": [fs.task for fs in meta_sets]}
        res.tau[name] = m["tau"]
        for t in m["scores"]:
            res.scores[t][name] = m["scores"][t]
        res.seconds[name] = m["seconds"]
    return {
        "zoo": str(zoo.path),
        "members": [{"name": m.name, "arch": m.arch, "method": m.method, "feature_dim": m.feature_dim,
                     "n_params": m.entry.get("n_params"),
                     "probe_accuracy": m.entry.get("linear_probe", {}).get("accuracy")} for m in zoo],
        "tasks": tasks,
        "metrics": metrics,
        "nsigmas": list(nsigmas),
        "truth": {t: truth["datasets"][t] for t in tasks},
        "truth_std": {t: truth.get("std", {}).get(t, {}) for t in tasks},
        "truth_provenance": truth.get("provenance", {}),
        "build": zoo.manifest.get("build"),
        "truth_per_seed": {t: truth["per_seed"][t] for t in tasks if t in truth.get("per_seed", {})},
        "scores": res.scores,
        "tau": res.tau,
        "mean_tau": res.mean_tau(),
        "errors": res.errors,
        "meta": metas,
        "seconds": {k: round(v, 2) for k, v in res.seconds.items()},
        "feature_seconds": res.feature_seconds,
        "wall_seconds": round(time.time() - t_all, 2),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _fingerprint(metric: str | None = None) -> str:
    """The fingerprint of the code behind ``metric``'s scores (``experiments/_fingerprint.py``)."""
    from _fingerprint import fingerprint

    return fingerprint(metric)


def _metric_of(variant: str) -> str:
    return variant.split("+", 1)[0]


def _load_partial(path: Path) -> dict:
    """``{task: {"feature_seconds", "metrics": {metric: entry}}}``; an entry per task of the first
    format (all metrics in one) is split per metric."""
    done = json.loads(Path(path).read_text()) if Path(path).is_file() else {}
    for task, entry in done.items():
        if "variants" in entry and isinstance(entry.get("metrics"), list):
            per = {}
            for m in entry["metrics"]:
                vs = [v for v in entry["variants"] if _metric_of(v) == m]
                per[m] = {"fingerprint": entry["fingerprint"], "nsigmas": entry["nsigmas"], "variants": vs,
                          "scores": {v: entry["scores"][v] for v in vs}, "tau": {v: entry["tau"][v] for v in vs},
                          "errors": {v: x for v, x in entry["errors"].items() if v in vs},
                          "unscored": {v: x for v, x in entry["unscored"].items() if v in vs},
                          "seconds": {v: entry["seconds"][v] for v in vs}}
            done[task] = {"feature_seconds": entry["feature_seconds"], "metrics": per}
    return done


def _save_partial(path: Path, done: dict) -> None:
    from pedjax.util import atomic_write_text

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(path), json.dumps(done, indent=1, allow_nan=True))


# ------------------------------------------------------------------------------------ report


def _fmt(v) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:+.3f}"


def ped_effect(result: dict) -> list[dict]:
    """Per feature metric and nsigma (and the meta-learned settings): the change of the mean τ_w over
    the headline tasks and the headline tasks where PED raised / lowered τ_w."""
    tasks = (result.get("judging") or {}).get("headline_tasks", result["tasks"])
    out = []
    for metric in result["metrics"]:
        for s in list(result["nsigmas"]) + ["meta"]:
            name = f"{metric}+{META_SUFFIX}" if s == "meta" else variant_name(metric, s)
            if name not in result["tau"]:
                continue
            base, ped = result["tau"][metric], result["tau"][name]
            up = [t for t in tasks if math.isfinite(ped[t]) and math.isfinite(base[t]) and ped[t] > base[t] + 1e-12]
            down = [t for t in tasks if math.isfinite(ped[t]) and math.isfinite(base[t]) and ped[t] < base[t] - 1e-12]
            vals = [(ped[t], base[t]) for t in tasks]
            d = float(np.mean([p - b for p, b in vals])) if vals and all(math.isfinite(p) and math.isfinite(b) for p, b in vals) else math.nan
            out.append({"metric": metric, "nsigma": s, "delta_mean": d, "up": up, "down": down})
    return out


#: the metrics of the first release; the others came with issue 22 (docs/results.md says how they compare)
FIRST_METRICS = ("etran", "gbc", "hscore", "leep", "logme", "nce", "nleep", "parc", "sfda", "transrate")


def _new_metric_verdict(result: dict, J: dict, rows: dict, head) -> list[str]:
    """One line per metric added after the first release: its best variant's headline mean and its
    paired difference (``pedjax.rank.judging.paired_difference``) to ETran (static) and to the
    history baseline over the headline tasks."""
    from pedjax.rank import judging

    new = [m for m in result["metrics"] if m not in FIRST_METRICS]
    if not new:
        return []
    taus = {**result["tau"], **J["baseline_tau"]}

    def paired(a, b):
        d = judging.paired_difference({t: taus[a][t] for t in head}, {t: taus[b][t] for t in head})
        return d["mean"], d["se"]

    out = ["* Metrics added in issue 22 (the best variant of each; Δ over the headline tasks ± paired SE):"]
    beat = []
    for m in new:
        vs = [v for v in result["tau"] if (v == m or v.startswith(m + "+")) and math.isfinite(rows[v]["mean"])]
        if not vs:
            out.append(f"  * {m}: no finite mean.")
            continue
        v = max(vs, key=lambda k: rows[k]["mean"])
        parts = [f"{v} {_fmt(rows[v]['mean'])}"]
        for ref, label in (("etran", "ETran"), ("history", "history")):
            if ref in taus:
                dm, se = paired(v, ref)
                where = ("above" if dm > 2 * se else "below" if dm < -2 * se else "within two SEs of") if math.isfinite(se) else "n/a:"
                parts.append(f"vs {label} {dm:+.3f} ± {se:.3f} ({where} {label})")
                if ref == "etran" and math.isfinite(se) and dm > 2 * se:
                    beat.append(v)
        out.append("  * " + "; ".join(parts) + ".")
    out.append("  * New metric variants above ETran by more than two paired SEs: " + (", ".join(beat) if beat else "none") + ".")
    return out


def markdown(result: dict, figure: str | None, command: str, machine: str, commit: str) -> str:
    tasks = result["tasks"]
    L = ["# Results: metrics ± PED on the pedjax zoo", ""]
    L += [
        "Weighted Kendall τ (`scipy.stats.weightedtau`, higher is better) between each metric's scores",
        f"and the fine-tuning ground truth, over the {len(result['members'])} models of the zoo, on each task, then the mean "
        "over tasks. This is the layout of the PED paper's Table 1, with the baselines and the noise ceiling on the same rows "
        "(../shared/DESIGN.md, \"How ranking quality is judged\"; `pedjax.rank.judging`).",
        "",
        f"Regenerate: `{command}`  ",
        f"Run: {result['date']} on {machine}, commit `{commit}`, {result['wall_seconds']:.0f} s.",
        "",
    ]
    J = result["judging"]
    head = J["headline_tasks"]
    cols = [t + (" †" if t in J["excluded"] else "") for t in tasks]
    L += ["| method | " + " | ".join(cols) + " | mean | Δ vs best baseline ± SE | rel@1 | regret@1 |",
          "|---|" + "---:|" * (len(tasks) + 4)]
    rows = J["rows"]
    metric_names = [n for n in result["tau"]]
    best = {t: max((result["tau"][v][t] for v in metric_names if math.isfinite(result["tau"][v][t])), default=float("nan")) for t in tasks}
    best_mean = max((rows[v]["mean"] for v in metric_names if math.isfinite(rows[v]["mean"])), default=float("nan"))

    def line(label, name, per_task, bold=True):
        r = rows[name]
        cells = []
        for t in tasks:
            v = per_task[t]
            c = _fmt(v)
            cells.append(f"**{c}**" if bold and math.isfinite(v) and v == best[t] else c)
        mv = r["mean"]
        mc = f"**{_fmt(mv)}**" if bold and math.isfinite(mv) and mv == best_mean else _fmt(mv)
        pd = r["vs_best_baseline"]
        d = "—" if not math.isfinite(pd["mean"]) else f"{pd['mean']:+.3f} ± {pd['se']:.3f}" if math.isfinite(pd["se"]) else f"{pd['mean']:+.3f}"
        rel = "—" if not math.isfinite(r["rel1"]) else f"{r['rel1']:.3f}"
        reg = "—" if not math.isfinite(r["regret1"]) else f"{r['regret1']:.3f}"
        return f"| {label} | " + " | ".join(cells) + f" | {mc} | {d} | {rel} | {reg} |"

    for metric in result["metrics"]:
        for s in [None] + list(result["nsigmas"]):
            name = variant_name(metric, s)
            if name not in result["tau"]:
                continue
            label = metric if s is None else f"+ PED (nsigma {s:g})"
            L.append(line(label, name, result["tau"][name]))
        mname = f"{metric}+{META_SUFFIX}"
        if mname in result["tau"]:
            L.append(line("+ PED (meta-learned, leave-one-task-out)", mname, result["tau"][mname]))
    for b in BASELINES:
        if b in J["baseline_tau"]:
            tag = " (best baseline)" if b == J["best_baseline"] else ""
            L.append(line(f"*{BASELINE_LABELS[b]}*{tag}", b, J["baseline_tau"][b], bold=False))
    ceil = J["ceiling"]
    L.append("| *noise ceiling* | " + " | ".join("n/a" if not math.isfinite(ceil[t]) else f"{ceil[t]:+.3f}" for t in tasks)
             + f" | {'n/a' if not math.isfinite(J['ceiling_mean']) else _fmt(J['ceiling_mean'])} | | | |")
    L += ["", "Mean, rel@1 and regret@1 are over the headline tasks"
          + (f" ({len(head)} of {len(tasks)}; † = left out of them: " + "; ".join(f"{t}: {why}" for t, why in J["excluded"].items()) + ")"
             if J["excluded"] else f" (all {len(tasks)})")
          + ". Δ vs best baseline: the mean over those tasks of the method's τ_w minus that of the best baseline "
          f"(*{BASELINE_LABELS.get(J['best_baseline'], J['best_baseline'])}*), ± its paired standard error across tasks. "
          "rel@1: fine-tuned accuracy of the method's top pick over the best one's; regret@1: accuracy points lost by "
          "that pick (random: the expected values of a random pick). Noise ceiling: mean over seed pairs of "
          "τ_w(accuracies of seed i, of seed j)"
          + ("." if J["ceiling_available"] else " — **unavailable for this zoo**: its ground_truth.json keeps only the seed mean "
             "and std of each pair, not the per-seed accuracies (the v2 build records them; docs/zoo.md)."), ""]
    ta = J["task_agreement"]["mean"]
    L += ["### Verdict", ""]
    order = sorted((n for n in metric_names if math.isfinite(rows[n]["mean"])), key=lambda n: -rows[n]["mean"])
    if order:
        L.append(f"* Best metric variant: **{order[0]}**, mean τ_w {_fmt(rows[order[0]]['mean'])}; best baseline: "
                 f"*{BASELINE_LABELS.get(J['best_baseline'], J['best_baseline'])}*, {_fmt(rows[J['best_baseline']]['mean']) if J['best_baseline'] else '—'}.")
    if order:
        above = [b for b in BASELINES if b in rows and math.isfinite(rows[b]["mean"]) and rows[b]["mean"] > rows[order[0]]["mean"]]
        L.append("* Baselines above the best metric variant: "
                 + (", ".join(f"*{BASELINE_LABELS[b]}* ({_fmt(rows[b]['mean'])})" for b in above) if above else "none") + ".")
    if "history" in rows:
        bh = J["beats_history"]
        L.append(f"* History mean rank (leave-one-task-out) reaches {_fmt(rows['history']['mean'])}; "
                 + (f"{len(bh)} of {len(metric_names)} metric variants beat it: {', '.join(bh)}." if bh
                    else f"no metric variant of the {len(metric_names)} beats it."))
    better = [n for n in metric_names if J["best_baseline"] and math.isfinite(rows[n]["vs_best_baseline"]["mean"])
              and math.isfinite(rows[n]["vs_best_baseline"]["se"]) and rows[n]["vs_best_baseline"]["mean"] > 2 * rows[n]["vs_best_baseline"]["se"]]
    L.append(f"* Above the best baseline by more than two paired standard errors: {', '.join(better) if better else 'none'}.")
    L += _new_metric_verdict(result, J, rows, head)
    def _agree(v):
        return "(≤ 0.6: not a fixed leaderboard)" if v <= 0.6 else "(> 0.6: close to a fixed leaderboard, which history wins)"

    L.append(f"* Mean pairwise Kendall τ between the tasks' ground-truth rankings: {_fmt(ta) if math.isfinite(ta) else 'n/a (one task)'} "
             + (_agree(ta) if math.isfinite(ta) else "") + f" over all {len(tasks)} tasks"
             + (", a value that the tasks left out for their noise ceiling pull down: their rankings are mostly seed noise, "
                "which agrees with nothing" if J["excluded"] else "") + ".")
    th = J.get("task_agreement_headline")
    if J["excluded"] and th and math.isfinite(th["mean"]):
        L.append(f"* Over the {len(head)} headline tasks only: {_fmt(th['mean'])} {_agree(th['mean'])}.")
    L += _v3_targets(J, head)
    st = J.get("stability")
    if st:
        L.append(f"* Setup stability of the winner ({st['winner']}): the same winner in {st['leave_one_task_out']['same']} of "
                 f"{st['leave_one_task_out']['of']} leave-one-task-out setups and {st['half_zoo']['same']} of {st['half_zoo']['of']} "
                 f"random halves of the zoo (score {st['stability']:.2f}; other winners on halves: "
                 + (", ".join(f"{k} ×{v}" for k, v in st["half_zoo"]["winners"].items() if k != st["winner"]) or "none") + ").")
    if result.get("meta"):
        for metric, m in result["meta"].items():
            mt = m.get("tasks")
            L.append(f"* {metric} + PED with meta-learned settings: on each task, nsigma / k / Δt learned on the other tasks only "
                     f"({m['steps']} optax steps of `pedjax.meta.MetaLearner`, soft τ_w objective"
                     + (f"; learned and judged on the {len(mt)} tasks above the noise-ceiling bar" if mt and len(mt) < len(tasks) else "")
                     + "): "
                     + "; ".join(f"{t}: nsigma {c['nsigma']:.3g}, k {c['constant']:.3g}, Δt {c['time_step']:.3g}" for t, c in m["configs"].items()) + ".")
    else:
        L.append("* Meta-learned PED settings (learned leave-one-task-out): not run (`--meta METRIC`).")
    L.append("")
    L += ["", "Bold: best in the column. PED rows use the released PED defaults (Δt 0.1, exit ratio 0.5, at most",
          "6 steps, k 1) with the given nsigma and each member's source statistics; LEEP and NCE take source-class",
          "probabilities / predictions (each member's linear probe on the source classes), so PED does not apply.", ""]
    if figure:
        L += [f"![weighted tau per metric]({figure})", ""]

    L += ["## Where PED helps, and where it does not", ""]
    eff = ped_effect(result)
    for s in list(result["nsigmas"]) + ["meta"]:
        rows = [e for e in eff if e["nsigma"] == s and math.isfinite(e["delta_mean"])]
        if not rows:
            continue
        ups = [e["metric"] for e in rows if e["delta_mean"] > 1e-12]
        downs = [e["metric"] for e in rows if e["delta_mean"] < -1e-12]
        label = "meta-learned settings (leave-one-task-out)" if s == "meta" else f"nsigma {s:g}"
        L.append(f"* **{label}**: PED raised the mean τ_w of {len(ups)} of {len(rows)} feature metrics"
                 + (f" ({', '.join(ups)})" if ups else "") + f" and lowered it for {len(downs)}"
                 + (f" ({', '.join(downs)})" if downs else "") + ".")
    L += ["", "| metric | PED nsigma | Δ mean τ_w | tasks improved | tasks worse |", "|---|---:|---:|---|---|"]
    for e in eff:
        ns = "meta-learned" if e["nsigma"] == "meta" else f"{e['nsigma']:g}"
        L.append(f"| {e['metric']} | {ns} | {_fmt(e['delta_mean'])} | {', '.join(e['up']) or '—'} | {', '.join(e['down']) or '—'} |")
    L += ["", f"With {len(result['members'])} models, τ_w moves in coarse steps (one swapped pair near the top of the",
          "ranking changes it by roughly 0.1 or more), so small differences between rows are within noise.", ""]
    if result["errors"]:
        L += ["### Failures", ""]
        for name, per in result["errors"].items():
            for t, msg in per.items():
                L.append(f"* `{name}` on {t}: {msg}")
        L.append("")

    L += ["## Ground truth", ""]
    prov = result.get("truth_provenance", {})
    ftc = prov.get("finetune", {})
    if ftc:
        L += [f"Full fine-tuning with `pedjax.models.finetune` (backbone + linear head, SGD Nesterov, cosine schedule, "
              f"{len(ftc.get('grid', {}).get('lr', []))}×{len(ftc.get('grid', {}).get('wd', []))} lr × wd grid), "
              f"{ftc.get('steps')} steps at batch {ftc.get('batch_size')}, seeds {ftc.get('seeds')}: best-of-grid test "
              f"accuracy per seed, averaged over seeds (± std over seeds). Total fine-tuning time "
              f"{prov.get('total_wall_seconds', float('nan')) / 60:.0f} min on {prov.get('machine', '?')} ({prov.get('backend', '?')}).", ""]
    b = result.get("build")
    if b:
        L += [f"Rebuild the zoo and its ground truth: `pedjax zoo build` (resumable unit by unit; [zoo.md](zoo.md)). "
              f"Recorded build: {b['total_hours']:.2f} h of wall time (pretraining {b['pretrain_seconds'] / 60:.0f} min, "
              f"ground truth {b['truth_seconds'] / 60:.0f} min, {b['truth_units_done']}/{b['truth_units_total']} units) on {b['machine']}.", ""]
    L += ["| member | arch | method | D | source probe | " + " | ".join(tasks) + " |", "|---|---|---|---:|---:|" + "---:|" * len(tasks)]
    for m in result["members"]:
        cells = []
        for t in tasks:
            v = result["truth"][t][m["name"]]
            sd = result["truth_std"].get(t, {}).get(m["name"])
            cells.append(f"{v:.3f}" + (f" ± {sd:.3f}" if sd is not None else ""))
        pa = m.get("probe_accuracy")
        L.append(f"| {m['name']} | {m['arch']} | {m['method']} | {m['feature_dim']} | {'' if pa is None else f'{pa:.3f}'} | " + " | ".join(cells) + " |")
    L += ["", "Source probe: linear-probe accuracy on 10-class Fashion-MNIST images held out of pretraining (the",
          "zoo's sanity bar; chance 0.1). Zoo details: [zoo.md](zoo.md).", ""]
    L += ["## Cost", "", "| variant | seconds (all tasks) |", "|---|---:|"]
    for k, v in result["seconds"].items():
        L.append(f"| {k} | {v:.1f} |")
    L += ["", "Feature extraction (all members): " + ", ".join(f"{t} {s:.1f} s" for t, s in result["feature_seconds"].items()) + ".", ""]
    return "\n".join(L)


def figure(result: dict, path) -> str:
    """Mean τ_w per metric (static / + PED per nsigma) and the per-task τ_w heat map."""
    from pedjax.plots import _plt, _save

    plt = _plt()
    metrics = result["metrics"]
    variants = [None] + list(result["nsigmas"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1.1, 1]})
    width = 0.8 / len(variants)
    x = np.arange(len(metrics))
    for j, s in enumerate(variants):
        vals = [result["mean_tau"].get(variant_name(m, s), float("nan")) for m in metrics]
        ax1.bar(x + (j - (len(variants) - 1) / 2) * width, np.nan_to_num(vals, nan=0.0), width,
                label="static" if s is None else f"+ PED (nsigma {s:g})")
    ax1.axhline(0, color="k", lw=0.6)
    J = result.get("judging") or {}
    styles = {"history": ("C3", "--"), "source-probe": ("C4", ":"), "param-count": ("C5", "-.")}
    for b, (c, ls) in styles.items():
        if b in J.get("rows", {}) and math.isfinite(J["rows"][b]["mean"]):
            ax1.axhline(J["rows"][b]["mean"], color=c, ls=ls, lw=1.2, label=BASELINE_LABELS[b])
    if math.isfinite(J.get("ceiling_mean", math.nan)):
        ax1.axhline(J["ceiling_mean"], color="k", ls="--", lw=1.2, label="noise ceiling")
    ax1.set_xticks(x, metrics, rotation=30, ha="right")
    ax1.set_ylabel("mean weighted Kendall τ")
    ax1.set_title(f"mean over {len(result['tasks'])} tasks, {len(result['members'])} models")
    ax1.legend(fontsize=8)
    rows = [variant_name(m, s) for m in metrics for s in variants if variant_name(m, s) in result["tau"]]
    M = np.array([[result["tau"][r][t] for t in result["tasks"]] for r in rows], dtype=float)
    im = ax2.imshow(M, cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
    ax2.set_yticks(range(len(rows)), rows, fontsize=7)
    ax2.set_xticks(range(len(result["tasks"])), result["tasks"], rotation=30, ha="right", fontsize=8)
    for i in range(M.shape[0]):
        for j in range(M.shape[1]):
            if math.isfinite(M[i, j]):
                ax2.text(j, i, f"{M[i, j]:+.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax2, fraction=0.04)
    ax2.set_title("weighted τ per task")
    fig.tight_layout()
    return _save(fig, path)


def load_result(path) -> dict:
    """A run's result from its JSON (``--json``): NaN comes back where the JSON holds ``null`` (a
    failed metric's τ_w and scores); the judging is recomputed from it."""
    result = json.loads(Path(path).read_text())

    def nan(obj):
        if isinstance(obj, dict):
            return {k: nan(v) for k, v in obj.items()}
        return math.nan if obj is None else obj

    for key in ("tau", "mean_tau", "scores"):
        result[key] = nan(result[key])
    result.pop("judging", None)
    missing = [k for k in ("command", "machine", "commit") if k not in result]
    if missing:
        raise ValueError(f"--from-json: {path} lacks {missing} (written before they were recorded); rerun the benchmark")
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--zoo", default=None, help="zoo folder (default: the shipped pedjax/assets/zoo)")
    p.add_argument("--tasks", nargs="+", default=None, help="tasks (default: every task of the ground truth)")
    p.add_argument("--metrics", nargs="+", default=None, help="metrics (default: every registered metric)")
    p.add_argument("--nsigma", type=float, nargs="+", default=list(NSIGMAS), help="PED nsigma values (default 0.3 0.6)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="markdown report (default docs/results.md)")
    p.add_argument("--figure", default=str(DEFAULT_FIGURE), help="PNG figure (default docs/figures/zoo_tau.png)")
    p.add_argument("--json", default=None, help="also write every score and τ as JSON")
    p.add_argument("--meta", nargs="*", default=[], metavar="METRIC",
                   help="also PED with settings meta-learned leave-one-task-out for these feature metrics (e.g. logme sfda)")
    p.add_argument("--meta-steps", type=int, default=20, help="optax steps per fold of the meta-learning (default 20)")
    p.add_argument("--min-ceiling", type=float, default=MIN_CEILING, help="tasks with a lower noise ceiling leave the headline mean (default 0.7)")
    p.add_argument("--from-json", default=None, metavar="FILE",
                   help="render the report from the JSON of an earlier run (its --json) instead of computing; the page "
                   "keeps that run's command, date, machine and commit")
    p.add_argument("--resume", default=str(ROOT / "runs" / "zoo_benchmark_tasks.json"), metavar="FILE",
                   help="finished (task, metric) pairs, written after each task (default runs/zoo_benchmark_tasks.json): a "
                        "rerun reuses the pairs scored with the same nsigmas and scoring code")
    p.add_argument("--fresh", action="store_true", help="recompute every task (ignore --resume)")
    p.add_argument("--keep", action="store_true", help="reuse finished (task, metric) pairs even if the scoring code changed since")
    p.add_argument("--rescore", nargs="+", default=[], metavar="METRIC", help="recompute these metrics on every task")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)

    from pedjax.cli._common import configure_process

    configure_process()  # as the command line: x64, the XLA:CPU flag, the compilation cache
    from _bench_md import git_commit, machine

    if args.from_json:
        result = load_result(args.from_json)
    else:
        result = run(args.zoo, args.tasks, args.metrics, tuple(args.nsigma), verbose=not args.quiet, meta=args.meta,
                     meta_steps=args.meta_steps, meta_min_ceiling=args.min_ceiling,
                     resume=None if args.fresh else Path(args.resume), keep=args.keep, rescore=args.rescore)
        result["command"] = "python experiments/zoo_benchmark.py" + (
            "" if argv is None and len(sys.argv) == 1 else " " + " ".join(argv if argv is not None else sys.argv[1:]))
        result["machine"], result["commit"] = machine(), git_commit()
    result["judging"] = judge(result, args.min_ceiling)
    out = Path(args.out)
    fig = Path(args.figure)
    figure(result, fig)
    try:
        rel = str(fig.resolve().relative_to(out.resolve().parent))
    except ValueError:
        rel = str(fig.resolve())
    text = markdown(result, rel, result["command"], result["machine"], result["commit"])
    from pedjax.util import to_jsonable as _jsonable

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text + "\n")
    tmp.replace(out)
    if args.json:
        jp = Path(args.json)
        jp.parent.mkdir(parents=True, exist_ok=True)
        jp.write_text(json.dumps(_jsonable(result), indent=1) + "\n")
    if not args.quiet:
        print(f"wrote {out} and {fig}" + (f" and {args.json}" if args.json else ""))
        rows = result["judging"]["rows"]
        for k in sorted(rows, key=lambda k: -np.nan_to_num(rows[k]["mean"], nan=-9)):
            print(f"  {k:22s} mean tau_w {_fmt(rows[k]['mean'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
