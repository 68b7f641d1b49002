"""Is 200 fine-tuning steps long enough? The v2 protocol at 100, 200 and 400 steps on a few members.

    python experiments/zoo_v2_length.py [--members ...] [--tasks ...] [--out runs/zoo_v2_length.json]

Fine-tunes members of the shipped (v1) zoo with the v2 grid (``V2_CONFIG``: 3 lr × 2 wd, batch 32,
seed 0) for each length, on tasks with few and with more training images, and prints the
best-of-grid test accuracy per length and the weighted τ between the rankings of the members at
each length and at the longest one. The cosine schedule spans each run, so every length is its own
run (no checkpoint of a longer run is a shorter run).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--members", nargs="+", default=["cnn-supervised", "cnn-random", "cnn-byol", "resnet-supervised", "mlp-dae"])
    p.add_argument("--tasks", nargs="+", default=["fashion-fewshot", "fashion-rotated"])
    p.add_argument("--steps", type=int, nargs="+", default=[100, 200, 400])
    p.add_argument("--out", default="runs/zoo_v2_length.json")
    args = p.parse_args(argv)
    from pedjax.cli._common import configure_process

    configure_process()
    from pedjax.models import finetune as ft
    from pedjax.rank import weighted_tau
    from pedjax.zoo import V2_CONFIG, load_zoo

    zoo = load_zoo(None, args.members)
    base = dataclasses.replace(V2_CONFIG.finetune_config(), seeds=(0,))
    out = {"members": args.members, "tasks": args.tasks, "steps": args.steps, "acc": {}, "seconds": {}}
    for task in args.tasks:
        for steps in args.steps:
            cfg = dataclasses.replace(base, steps=steps, checkpoint_every=steps)
            for m in zoo:
                t0 = time.time()
                res = ft.finetune(m.module, task, None, params=m.params, config=cfg, model_name=m.name, progress=False)
                out["acc"].setdefault(task, {}).setdefault(str(steps), {})[m.name] = res["score"]
                out["seconds"].setdefault(task, {}).setdefault(str(steps), {})[m.name] = round(time.time() - t0, 1)
                print(f"{task} {steps:4d} steps {m.name:18s} {res['score']:.4f} ({time.time() - t0:.0f} s)", flush=True)
    longest = str(max(args.steps))
    print("\n| task | steps | " + " | ".join(args.members) + " | τ_w vs " + longest + " steps |")
    print("|---|---:|" + "---:|" * (len(args.members) + 1))
    for task in args.tasks:
        ref = out["acc"][task][longest]
        for steps in args.steps:
            a = out["acc"][task][str(steps)]
            tau = weighted_tau([a[m] for m in args.members], [ref[m] for m in args.members])
            out.setdefault("tau_vs_longest", {}).setdefault(task, {})[str(steps)] = tau
            print(f"| {task} | {steps} | " + " | ".join(f"{a[m]:.3f}" for m in args.members) + f" | {tau:+.3f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
