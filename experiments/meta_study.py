"""Hyperparameter-gradient study of PED (issue 7) → docs/meta.md and docs/figures/meta_*.png.

    python experiments/meta_study.py --zoo shipped         # the shipped zoo's tasks and fine-tuning truth
    python experiments/meta_study.py                       # the digits stand-in tasks

1. Sweeps: for each hyperparameter θ ∈ {nsigma, constant, time_step} (others at the released
   defaults) the mean exact τ_w, the mean soft τ_w and d(mean soft τ_w)/d log θ over the tasks.
2. Leave-one-task-out: learn on k−1 tasks (optax/adam, log-parametrised), report the exact τ_w
   on the held-out task with the default and the learned hyperparameters, per task and mean.

Every fold and every sweep point reuses ONE compiled value-and-gradient (task weights select the
training tasks), see pedjax.meta.MetaLearner.

Tasks: ``--zoo shipped``: every ground-truth task of the shipped zoo (pedjax.meta.shipped_tasks:
members' features on each task's training split, fine-tuning truth). ``--zoo digits`` (default) builds the stand-in from pedjax.features.digits_zoo(): each task
is a random subset of digit classes, truth = cross-validated linear-probe accuracy (NOT
fine-tuning). ``--zoo FILE.npz`` (repeatable, one task each) or ``--results-dir DIR --dataset
NAME ...`` with ``--truth T`` runs on real zoos (the shipped zoo of issue 5).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax.numpy as jnp  # noqa: E402

import pedjax  # noqa: E402
from pedjax.cli._common import configure_process  # noqa: E402

configure_process()  # as the command line: x64 (the meta objective runs in the process precision), XLA:CPU flag, cache
from pedjax import meta  # noqa: E402
from pedjax.rank import weighted_tau  # noqa: E402
from pedjax.rank.judging import MIN_CEILING  # noqa: E402

GRIDS = {
    "nsigma": np.geomspace(0.1, 3.0, 9),
    "constant": np.geomspace(0.1, 30.0, 9),
    "time_step": np.geomspace(0.02, 1.5, 9),
}


def sweep(ml: meta.MetaLearner, field: str, grid) -> list[dict]:
    out = []
    w = ml.weights()
    for v in grid:
        cfg = ml.base.replace(**{field: float(v)})
        theta = ml.theta0(cfg)
        (loss, (soft, scores)), g = ml.value_and_grad(theta, w)
        exact = [weighted_tau(np.asarray(s), [t.truth[m] for m in n]) for s, n, t in zip(scores, ml.names, ml.tasks)]
        out.append({"value": float(v), "tau_w": float(np.mean(exact)), "soft_tau_w": float(-loss),
                    "dsoft_dlog": float(-g[field])})
    return out


def loto(ml: meta.MetaLearner, steps: int) -> list[dict]:
    rows = []
    default_taus = ml.taus(ml.base)
    for k, task in enumerate(ml.tasks):
        res = ml.fit(steps, weights=ml.weights(holdout=k))
        learned = ml.taus(res.config)
        rows.append({"task": task.task, "default": default_taus[k], "learned": learned[k],
                     "config": {f: getattr(res.config, f) for f in ml.learn},
                     "train_default": float(np.mean([t for i, t in enumerate(default_taus) if i != k])),
                     "train_learned": float(np.mean([t for i, t in enumerate(learned) if i != k]))})
        print(f"  held out {task.task}: default {default_taus[k]:+.3f} learned {learned[k]:+.3f}", flush=True)
    return rows


def figures(sweeps: dict, outdir: Path, label: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(2, 3, figsize=(12, 6), sharex="col")
    for j, (field, rows) in enumerate(sweeps.items()):
        v = [r["value"] for r in rows]
        axes[0, j].plot(v, [r["tau_w"] for r in rows], "o-", label="τ_w (exact)")
        axes[0, j].plot(v, [r["soft_tau_w"] for r in rows], "s--", label="soft τ_w")
        axes[0, j].axvline(getattr(pedjax.PEDConfig(), field), color="gray", lw=0.8)
        axes[1, j].plot(v, [r["dsoft_dlog"] for r in rows], "o-", color="C2")
        axes[1, j].axhline(0, color="gray", lw=0.8)
        axes[1, j].set_xscale("log")
        axes[1, j].set_xlabel(field)
        axes[0, j].set_title(field)
    axes[0, 0].set_ylabel("mean over tasks")
    axes[1, 0].set_ylabel("d soft τ_w / d log θ")
    axes[0, 0].legend()
    fig.suptitle(f"PED hyperparameter sweeps — {label}")
    fig.tight_layout()
    p = outdir / "meta_sweeps.png"
    fig.savefig(p, dpi=100)
    plt.close(fig)
    return [str(p.relative_to(ROOT))]


def markdown(info: dict) -> str:
    L = []
    L.append("# Learning PED's hyperparameters by gradient (issue 7)\n")
    if info["stand_in"]:
        L.append("> **Stand-in zoo.** This study was run on a stand-in before the shipped zoo existed; `python experiments/meta_study.py --zoo shipped` runs it on the shipped zoo and its fine-tuning ground truth (not yet run). "
                 "Everything below is on `pedjax.features.digits_zoo()` — 10 small models (PCA, random projections, random "
                 "ReLU features, pixels + random features, Flax MLPs) on scikit-learn's digits — with **tasks = random "
                 f"{info['classes_per_task']}-class subsets of the digits** and **ground truth = {info['folds']}-fold "
                 "cross-validated linear-probe accuracy**, not fine-tuning. Re-run with `--zoo` on the shipped zoo; "
                 "read nothing about PED on real models into these numbers.\n")
    if info.get("shipped"):
        L.append(f"Zoo: **the shipped zoo** (`pedjax/assets/zoo`, [zoo.md](zoo.md)): {info['n_models']} Flax backbones "
                 "pretrained on Fashion-MNIST; each task's features are the members' features on its training "
                 "split and its ground truth is the members' fine-tuned test accuracy, mean over seeds ([results.md](results.md)).\n")
        if info.get("excluded"):
            L.append(f"Left out (noise ceiling below the {info.get('min_ceiling', 0.6):g} bar, `pedjax.rank.judging.MIN_CEILING`: their seeds' rankings "
                     "disagree, so there is little to learn or judge): "
                     + ", ".join(f"{t} ({c:.2f})" for t, c in info["excluded"].items()) + ".\n")
    L.append(f"Command: `{info['command']}`  \nMachine: {info['machine']}  \nDate: {info['date']}\n")
    L.append(f"Metric: **{info['metric']}**; PED released variant, scan path (max_steps 6, exit_ratio 0.5); "
             f"{len(info['tasks'])} tasks × {info['n_models']} models; soft τ_w temperature {info['temperature']} on "
             f"per-task standardised scores; adam lr {info['lr']}, {info['steps']} steps per fold; learned θ = "
             "log(nsigma, constant, time_step). One compiled value-and-gradient serves every sweep point and fold "
             f"(compile {info['compile_s']:.1f} s, then {info['step_s']*1000:.0f} ms per gradient step over all tasks).\n")
    L.append("## How it works\n")
    L.append("`pedjax.meta.MetaLearner` stacks each task's models by feature dimension, runs "
             "`vmap(metric ∘ PED(scan))`, standardises the scores over the models of each task, and takes "
             "`pedjax.rank.soft_weighted_tau` (SciPy's hyperbolic additive weighted τ with sigmoid comparisons and "
             "sigmoid soft ranks; exact as the temperature → 0) against the truth. The loss is minus the weighted mean "
             "over tasks; `jax.value_and_grad` of it and the optax step are jit-compiled once. Learn from the CLI:\n")
    L.append("```\npedjax meta learn --shipped --metric logme --steps 30 --out learned.json         # the shipped zoo's tasks\n"
             "pedjax meta learn --zoo a.npz --zoo b.npz --truth truth.json --out learned.json  # your zoo, one task per file\n"
             "pedjax score --zoo a.npz --metric logme --ped-config learned.json              # use it\n```\n")
    L.append("`pedjax.meta.save_config(path, cfg)` writes the learned config atomically as an orbax checkpoint "
             "directory (orbax's JSON handler; any `--out` path not ending in `.json`) or as a JSON file (`--out "
             "FILE.json`: PEDConfig is eight scalars, and a diffable file any tool can read is often handier); "
             "`pedjax.meta.load_config(path) -> PEDConfig` and `--ped-config` read both.\n")
    L.append("Note: in the released variant the step is min(½Δt²k, 1)·overlap, so `constant` and `time_step` act only "
             "through the product Δt²k (until the clip at 1): their sweeps and gradients are two views of one "
             "parameter (d/d log k = ½·d/d log Δt below the clip).\n")
    L.append("## Sweeps (mean over tasks)\n")
    for field, rows in info["sweeps"].items():
        L.append(f"**{field}** (others at defaults)\n")
        L.append("| " + field + " | τ_w | soft τ_w | d soft τ_w / d log θ |\n|---:|---:|---:|---:|")
        for r in rows:
            L.append(f"| {r['value']:.3g} | {r['tau_w']:+.3f} | {r['soft_tau_w']:+.3f} | {r['dsoft_dlog']:+.4f} |")
        L.append("")
    for f in info["figures"]:
        L.append(f"![sweeps]({Path(f).relative_to('docs')})\n")
    L.append("## Leave-one-task-out\n")
    L.append("Learn on the other tasks (start: released defaults), report exact τ_w on the held-out task.\n")
    L.append("| held-out task | τ_w default | τ_w learned | Δ | learned nsigma | constant | time_step | train τ_w default → learned |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in info["loto"]:
        c = r["config"]
        L.append(f"| {r['task']} | {r['default']:+.3f} | {r['learned']:+.3f} | {r['learned'] - r['default']:+.3f} | "
                 f"{c.get('nsigma', float('nan')):.3g} | {c.get('constant', float('nan')):.3g} | {c.get('time_step', float('nan')):.3g} | "
                 f"{r['train_default']:+.3f} → {r['train_learned']:+.3f} |")
    d = np.mean([r["default"] for r in info["loto"]])
    l = np.mean([r["learned"] for r in info["loto"]])
    wins = sum(r["learned"] > r["default"] + 1e-12 for r in info["loto"])
    loss = sum(r["learned"] < r["default"] - 1e-12 for r in info["loto"])
    L.append(f"| **mean** | **{d:+.3f}** | **{l:+.3f}** | **{l - d:+.3f}** | | | | |\n")
    L.append(f"Held-out τ_w improved on {wins} of {len(info['loto'])} tasks and got worse on {loss}. "
             + info["verdict"] + "\n")
    return "\n".join(L)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", action="append", default=None, help="'shipped' (the shipped zoo), 'digits' (stand-in, default) or FILE.npz (repeatable, one task each)")
    ap.add_argument("--results-dir")
    ap.add_argument("--dataset", action="append", default=[])
    ap.add_argument("--truth")
    ap.add_argument("--metric", default="logme")
    ap.add_argument("--tasks", type=int, default=5, help="digits stand-in: number of class-subset tasks")
    ap.add_argument("--classes-per-task", type=int, default=5)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--temperature", type=float, default=0.1)
    ap.add_argument("--out", default=str(ROOT / "docs" / "meta.md"))
    ap.add_argument("--json", default=None, help="also write the raw numbers here")
    args = ap.parse_args(argv)

    from _bench_md import machine, git_commit
    import datetime

    zoos = args.zoo or ["digits"]
    stand_in = zoos == ["digits"] and args.results_dir is None
    t0 = time.perf_counter()
    shipped = zoos == ["shipped"]
    excluded: dict = {}
    if stand_in:
        tasks = meta.digits_tasks(args.tasks, args.classes_per_task, folds=args.folds)
    elif shipped:
        # learned and judged on the tasks whose ground truth is above the noise-ceiling bar
        # (../shared/DESIGN.md): a task whose seeds disagree gives the meta-gradient noise to fit
        from pedjax.rank import judging
        from pedjax.zoo import load_zoo

        table = load_zoo().truth()
        h = judging.headline(table.get("per_seed", {}), list(table["datasets"]))
        excluded = {t: h["ceiling"][t] for t in h["excluded"]}
        tasks = meta.shipped_tasks(tasks=h["tasks"])
    else:
        if not args.truth:
            ap.error("--truth is required with --zoo FILE.npz / --results-dir")
        tasks = meta.zoo_tasks(args.truth, [z for z in zoos if z != "digits"], args.results_dir, args.dataset)
    print(f"{len(tasks)} tasks ready in {time.perf_counter() - t0:.1f} s", flush=True)
    ml = meta.MetaLearner(tasks, args.metric, pedjax.PEDConfig(), temperature=args.temperature, learning_rate=args.lr)
    ts = time.perf_counter()
    ml.value_and_grad(ml.theta0(), ml.weights())[0][0].block_until_ready()
    compile_s = time.perf_counter() - ts
    ts = time.perf_counter()
    for _ in range(3):
        ml.value_and_grad(ml.theta0(), ml.weights())[0][0].block_until_ready()
    step_s = (time.perf_counter() - ts) / 3
    sweeps = {f: sweep(ml, f, g) for f, g in GRIDS.items()}
    print(f"sweeps done at {time.perf_counter() - t0:.1f} s", flush=True)
    rows = loto(ml, args.steps)
    d = np.mean([r["default"] for r in rows])
    l = np.mean([r["learned"] for r in rows])
    deltas = np.array([r["learned"] - r["default"] for r in rows])
    # paired over held-out tasks: a change smaller than twice its standard error is not claimed
    se = float(deltas.std(ddof=1) / np.sqrt(deltas.size)) if deltas.size > 1 else float("inf")
    spread = f"{l - d:+.3f} ± {se:.3f} (standard error of the paired change over {deltas.size} held-out tasks)"
    if l - d > max(2 * se, 0.02):
        verdict = f"The mean held-out τ_w rose by {spread}."
    elif l - d < -max(2 * se, 0.02):
        verdict = f"The mean held-out τ_w fell by {spread}: what was learned does not transfer across tasks here."
    else:
        verdict = f"The mean held-out τ_w changed by {spread}: within twice its standard error, so no improvement that holds out is claimed."
    if stand_in:
        verdict += " (Stand-in zoo and stand-in truth: this says nothing yet about PED on real models.)"
    label = ("digits stand-in (class-subset tasks, linear-probe truth)" if stand_in else
             ("shipped zoo, fine-tuning truth: " if shipped else "zoo: ") + ", ".join(t.task for t in tasks))
    figs = figures(sweeps, ROOT / "docs" / "figures", label)
    info = {"stand_in": stand_in, "shipped": shipped, "classes_per_task": args.classes_per_task, "folds": args.folds,
            "command": "python experiments/meta_study.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": machine(), "date": f"{datetime.date.today().isoformat()}, commit {git_commit()}",
            "metric": args.metric, "tasks": [t.task for t in tasks], "n_models": len(tasks[0].features),
            "temperature": args.temperature, "lr": args.lr, "steps": args.steps, "compile_s": compile_s,
            "step_s": step_s, "sweeps": sweeps, "loto": rows, "figures": figs, "verdict": verdict, "excluded": excluded,
            "min_ceiling": MIN_CEILING}
    Path(args.out).write_text(markdown(info))
    if args.json:
        Path(args.json).write_text(json.dumps(info, indent=1))
    print(f"wrote {args.out} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
