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


def variant_name(metric: str, nsigma: float | None) -> str:
    return metric if nsigma is None else f"{metric}+PED({nsigma:g})"


def run(zoo_dir=None, tasks=None, metrics=None, nsigmas=NSIGMAS, verbose: bool = True) -> dict:
    """Scores and weighted τ of every (metric variant, task) through the one benchmark loop
    (``pedjax.rank.benchmark``); see the module docstring."""
    import pedjax
    from pedjax.features import extract_features
    from pedjax.metrics import REGISTRY
    from pedjax.rank import benchmark
    from pedjax.zoo import TRUTH_FILE, load_zoo

    t_all = time.time()
    zoo = load_zoo(zoo_dir)
    truth = zoo.truth()
    if truth is None:
        raise FileNotFoundError(f"zoo: no {TRUTH_FILE} in {zoo.path}; build it with `pedjax zoo build --zoo {zoo.path}`")
    tasks = list(tasks) if tasks else list(truth["datasets"])
    metrics = list(metrics) if metrics else sorted(REGISTRY)
    unknown = [m for m in metrics if m not in REGISTRY]
    if unknown:
        raise ValueError(f"--metrics: unknown {unknown}; registered: {sorted(REGISTRY)}")
    for task in tasks:
        zoo.task_truth(task, "--tasks")
    peds = {f"PED({s:g})": pedjax.PEDConfig(nsigma=s) for s in nsigmas}
    sets = []
    for task in tasks:
        fs = extract_features(zoo, task, "train", with_truth=True)
        if verbose:
            print(f"{task}: features of {len(fs.models)} members on {fs.n_samples} images in {fs.seconds:.1f} s", flush=True)
        sets.append(fs)
    show = (lambda t, v, tau, sec: print(f"  {t} {v:22s} tau_w {tau:+.3f}  ({sec:.1f} s)", flush=True)) if verbose else None
    res = benchmark(sets, metrics, peds, on_variant=show)
    return {
        "zoo": str(zoo.path),
        "members": [{"name": m.name, "arch": m.arch, "method": m.method, "feature_dim": m.feature_dim,
                     "probe_accuracy": m.entry.get("linear_probe", {}).get("accuracy")} for m in zoo],
        "tasks": tasks,
        "metrics": metrics,
        "nsigmas": list(nsigmas),
        "truth": {t: truth["datasets"][t] for t in tasks},
        "truth_std": {t: truth.get("std", {}).get(t, {}) for t in tasks},
        "truth_provenance": truth.get("provenance", {}),
        "scores": res.scores,
        "tau": res.tau,
        "mean_tau": res.mean_tau(),
        "errors": res.errors,
        "seconds": {k: round(v, 2) for k, v in res.seconds.items()},
        "feature_seconds": res.feature_seconds,
        "wall_seconds": round(time.time() - t_all, 2),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


# ------------------------------------------------------------------------------------ report


def _fmt(v) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:+.3f}"


def ped_effect(result: dict) -> list[dict]:
    """Per feature metric and nsigma: mean τ_w change and the tasks where PED raised / lowered τ_w."""
    out = []
    for metric in result["metrics"]:
        for s in result["nsigmas"]:
            name = variant_name(metric, s)
            if name not in result["tau"]:
                continue
            base, ped = result["tau"][metric], result["tau"][name]
            up = [t for t in result["tasks"] if math.isfinite(ped[t]) and math.isfinite(base[t]) and ped[t] > base[t] + 1e-12]
            down = [t for t in result["tasks"] if math.isfinite(ped[t]) and math.isfinite(base[t]) and ped[t] < base[t] - 1e-12]
            d = result["mean_tau"][name] - result["mean_tau"][metric]
            out.append({"metric": metric, "nsigma": s, "delta_mean": d, "up": up, "down": down})
    return out


def markdown(result: dict, figure: str | None, command: str, machine: str, commit: str) -> str:
    tasks = result["tasks"]
    L = ["# Results: metrics ± PED on the pedjax zoo", ""]
    L += [
        "Weighted Kendall τ (`scipy.stats.weightedtau`, higher is better) between each metric's scores",
        f"and the fine-tuning ground truth, over the {len(result['members'])} models of the zoo, on each task; "
        "the last column is the mean over tasks. This is the layout of the PED paper's Table 1.",
        "",
        f"Regenerate: `{command}`  ",
        f"Run: {result['date']} on {machine}, commit `{commit}`, {result['wall_seconds']:.0f} s.",
        "",
    ]
    header = "| metric | " + " | ".join(tasks) + " | mean |"
    L += [header, "|---|" + "---:|" * (len(tasks) + 1)]
    best = {t: max((v[t] for v in result["tau"].values() if math.isfinite(v[t])), default=float("nan")) for t in tasks}
    best_mean = max((v for v in result["mean_tau"].values() if math.isfinite(v)), default=float("nan"))
    for metric in result["metrics"]:
        for s in [None] + list(result["nsigmas"]):
            name = variant_name(metric, s)
            if name not in result["tau"]:
                continue
            row = []
            for t in tasks:
                v = result["tau"][name][t]
                cell = _fmt(v)
                row.append(f"**{cell}**" if math.isfinite(v) and v == best[t] else cell)
            mv = result["mean_tau"][name]
            label = metric if s is None else f"+ PED (nsigma {s:g})"
            L.append(f"| {label} | " + " | ".join(row) + f" | {'**' + _fmt(mv) + '**' if math.isfinite(mv) and mv == best_mean else _fmt(mv)} |")
    L += ["", "Bold: best in the column. PED rows use the released PED defaults (Δt 0.1, exit ratio 0.5, at most",
          "6 steps, k 1) with the given nsigma and each member's source statistics; LEEP and NCE take source-class",
          "probabilities / predictions (each member's linear probe on the source classes), so PED does not apply.", ""]
    if figure:
        L += [f"![weighted tau per metric]({figure})", ""]

    L += ["## Where PED helps, and where it does not", ""]
    eff = ped_effect(result)
    for s in result["nsigmas"]:
        rows = [e for e in eff if e["nsigma"] == s and math.isfinite(e["delta_mean"])]
        if not rows:
            continue
        ups = [e["metric"] for e in rows if e["delta_mean"] > 1e-12]
        downs = [e["metric"] for e in rows if e["delta_mean"] < -1e-12]
        L.append(f"* **nsigma {s:g}**: PED raised the mean τ_w of {len(ups)} of {len(rows)} feature metrics"
                 + (f" ({', '.join(ups)})" if ups else "") + f" and lowered it for {len(downs)}"
                 + (f" ({', '.join(downs)})" if downs else "") + ".")
    L += ["", "| metric | nsigma | Δ mean τ_w | tasks improved | tasks worse |", "|---|---:|---:|---|---|"]
    for e in eff:
        L.append(f"| {e['metric']} | {e['nsigma']:g} | {_fmt(e['delta_mean'])} | {', '.join(e['up']) or '—'} | {', '.join(e['down']) or '—'} |")
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--zoo", default=None, help="zoo folder (default: the shipped pedjax/assets/zoo)")
    p.add_argument("--tasks", nargs="+", default=None, help="tasks (default: every task of the ground truth)")
    p.add_argument("--metrics", nargs="+", default=None, help="metrics (default: every registered metric)")
    p.add_argument("--nsigma", type=float, nargs="+", default=list(NSIGMAS), help="PED nsigma values (default 0.3 0.6)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="markdown report (default docs/results.md)")
    p.add_argument("--figure", default=str(DEFAULT_FIGURE), help="PNG figure (default docs/figures/zoo_tau.png)")
    p.add_argument("--json", default=None, help="also write every score and τ as JSON")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)

    from pedjax.cli._common import configure_process

    configure_process()  # as the command line: x64, the XLA:CPU flag, the compilation cache
    from _bench_md import git_commit, machine

    result = run(args.zoo, args.tasks, args.metrics, tuple(args.nsigma), verbose=not args.quiet)
    out = Path(args.out)
    fig = Path(args.figure)
    figure(result, fig)
    try:
        rel = str(fig.resolve().relative_to(out.resolve().parent))
    except ValueError:
        rel = str(fig.resolve())
    cmd = "python experiments/zoo_benchmark.py" + ("" if argv is None and len(sys.argv) == 1 else " " + " ".join(argv if argv is not None else sys.argv[1:]))
    text = markdown(result, rel, cmd, machine(), git_commit())
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
        for k in sorted(result["mean_tau"], key=lambda k: -np.nan_to_num(result["mean_tau"][k], nan=-9)):
            print(f"  {k:22s} mean tau_w {_fmt(result['mean_tau'][k])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
