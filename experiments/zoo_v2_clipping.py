"""Why the v2 ground truth clips gradients: fine-tuning with and without ``clip_norm``.

    python experiments/zoo_v2_clipping.py [--pairs cnns-supervised:fashion-inverted ...] [--seeds 0 1]

For each (member, task) pair of the v2 zoo, the v2 protocol (400 steps, batch 32, SGD-Nesterov,
cosine decay, wd 1e-4) over the learning rates ``--lrs`` with 2 seeds, once without gradient
clipping and once with ``--clip`` (global L2 norm). Prints every configuration's test accuracy;
an accuracy at chance (0.1 on 10 classes, training loss stuck at log 10) is a collapsed run.
The first unclipped v2 build collapsed at lr 0.1 in 91 of its 275 units (docs/zoo.md,
"Gradient clipping").
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

DEFAULT_PAIRS = ["cnns-supervised:fashion-inverted", "cnn-supervised:fashion-inverted", "cnn-supervised-shoesbags:fashion-inverted",
                 "cnn-simclr:fashion-inverted", "mlp-dae:fashion-inverted", "cnn-random:fashion-blur",
                 "resnet-supervised:fashion-rotated", "vit-supervised:fashion-rotated"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--zoo", default="pedjax/assets/zoo")
    p.add_argument("--pairs", nargs="+", default=DEFAULT_PAIRS, metavar="MEMBER:TASK")
    p.add_argument("--lrs", type=float, nargs="+", default=[0.3, 0.1, 0.03, 0.01])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--out", default="runs/zoo_v2_clipping.json")
    args = p.parse_args(argv)
    from pedjax.cli._common import configure_process

    configure_process()
    from pedjax.models import finetune as ft
    from pedjax.util import atomic_write_json
    from pedjax.zoo import V2_CONFIG, load_zoo

    zoo = load_zoo(args.zoo)
    base = dataclasses.replace(V2_CONFIG.finetune_config(), seeds=tuple(args.seeds), lrs=tuple(args.lrs), checkpoints=False)
    rows = []
    print(f"lrs {args.lrs}; per seed, test accuracy per lr")
    for pair in args.pairs:
        member, task = pair.split(":")
        m = zoo[member]
        for clip in (None, args.clip):
            res = ft.finetune(m.module, task, None, params=m.params, config=dataclasses.replace(base, clip_norm=clip), progress=False)
            acc = [[round(a[0], 3) for a in s["accuracy"]] for s in res["per_seed"]]
            rows.append({"member": member, "task": task, "clip_norm": clip, "accuracy": acc})
            print(f"{member:26s} {task:17s} clip {str(clip):5s} {acc}", flush=True)
    atomic_write_json(Path(args.out), {"lrs": args.lrs, "seeds": args.seeds, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
