"""Time of one meta-gradient step (value + gradient of the mean soft τ_w over zoo × tasks, and
the optax update) → BENCHMARKS.md section ``bench_meta``.

    python experiments/bench_meta.py --zoo shipped          # the shipped zoo × its tasks
    python experiments/bench_meta.py                        # digits stand-in (pedjax.meta.digits_tasks)
    python experiments/bench_meta.py --zoo a.npz --zoo b.npz --truth truth.json   # a real zoo, one task per file
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402

import pedjax  # noqa: E402
from pedjax.cli._common import configure_process  # noqa: E402

configure_process()  # as the command line: x64 (the meta objective runs in the process precision), XLA:CPU flag, cache
from pedjax import meta  # noqa: E402
from _bench_md import stamp, write_section  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", action="append", default=None)
    ap.add_argument("--truth")
    ap.add_argument("--metric", action="append", default=None, help="default: logme, sfda, gbc")
    ap.add_argument("--tasks", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    stand_in = not args.zoo
    shipped = args.zoo == ["shipped"]
    tasks = (meta.digits_tasks(args.tasks) if stand_in else meta.shipped_tasks() if shipped
             else meta.zoo_tasks(args.truth, args.zoo))
    n_models = len(tasks[0].features)
    n_samples = sum(len(t.labels) for t in tasks)
    rows = []
    for metric in args.metric or ["logme", "sfda", "gbc"]:
        ml = meta.MetaLearner(tasks, metric, pedjax.PEDConfig())
        theta, w = ml.theta0(), ml.weights()
        state = ml.opt.init(theta)
        t = time.perf_counter()
        jax.block_until_ready(ml.step(theta, state, w))
        compile_s = time.perf_counter() - t
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            theta, state, *_ = jax.block_until_ready(ml.step(theta, state, w))
            times.append(time.perf_counter() - t)
        rows.append((metric, compile_s, float(np.median(times)), float(np.min(times))))
        print(f"{metric}: compile {compile_s:.1f} s, step median {np.median(times)*1e3:.0f} ms", flush=True)
    what = ("digits stand-in (pedjax.meta.digits_tasks: class-subset tasks of pedjax.features.digits_zoo)"
            if stand_in else "the shipped zoo (pedjax/assets/zoo) on its ground-truth tasks" if shipped
            else "zoo " + ", ".join(args.zoo))
    body = [
        "## Meta-gradient step (issue 7)\n",
        f"One optax step of `pedjax.meta.MetaLearner`: PED (scan, released defaults) → metric → soft τ_w for "
        f"every model of every task, `jax.value_and_grad` w.r.t. log(nsigma, constant, time_step), adam update; "
        f"one compiled call. Zoo: {what}; {len(tasks)} tasks × {n_models} models, {n_samples} samples in all. "
        "Median of the repeats after the compiling call.\n",
        "| metric | compile + first step (s) | step median (ms) | step min (ms) |",
        "|---|---:|---:|---:|",
    ]
    for m, c, med, mn in rows:
        body.append(f"| {m} | {c:.1f} | {med*1e3:.0f} | {mn*1e3:.0f} |")
    body.append("")
    body.append(stamp())
    write_section("bench_meta", "\n".join(body))
    print("wrote BENCHMARKS.md section bench_meta")
    return 0


if __name__ == "__main__":
    sys.exit(main())
