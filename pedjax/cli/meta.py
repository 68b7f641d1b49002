"""``pedjax meta learn|show``: learn PED's hyperparameters through PED → metric → soft τ_w (optax)."""
from __future__ import annotations

import dataclasses

import numpy as np

from ..meta import DEFAULT_LEARN, MetaLearner, digits_tasks, load_config, save_config, shipped_tasks, zoo_tasks
from ..physics import PEDConfig
from . import printing


def add_parser(sub) -> None:
    p = sub.add_parser("meta", help="learn PED's hyperparameters by gradient through PED → metric → soft τ_w (optax)")
    msub = p.add_subparsers(dest="meta_command", metavar="ACTION")
    msub.required = True
    q = msub.add_parser("learn", help="learn nsigma/constant/time_step on a zoo's tasks; write a config JSON")
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--shipped", action="store_true", help="the shipped zoo's tasks and fine-tuning ground truth (pedjax.meta.shipped_tasks)")
    src.add_argument("--digits", action="store_true", help="the digits stand-in tasks (pedjax.meta.digits_tasks)")
    src.add_argument("--zoo", action="append", metavar="FILE.npz", help="an .npz zoo = one task (repeatable); needs --truth")
    src.add_argument("--results-dir", metavar="DIR", help="a results folder; each --dataset is one task; needs --truth")
    q.add_argument("--dataset", action="append", default=[], metavar="NAME", help="with --results-dir (repeatable)")
    q.add_argument("--truth", metavar="T", help="ground truth: JSON {dataset: {model: acc}} or a built-in table")
    q.add_argument("--metric", default="logme", help="feature metric (default logme)")
    q.add_argument("--steps", type=int, default=30, help="optax (adam) steps (default 30)")
    q.add_argument("--lr", type=float, default=0.05, help="adam learning rate in log-parameter space (default 0.05)")
    q.add_argument("--temperature", type=float, default=0.1, help="soft τ_w temperature on standardised scores (default 0.1)")
    q.add_argument("--learn", default=",".join(DEFAULT_LEARN), help=f"comma-separated fields to learn (default {','.join(DEFAULT_LEARN)})")
    q.add_argument("--nsigma", type=float, default=0.6, help="starting nsigma (default 0.6)")
    q.add_argument("--variant", default="released", choices=["released", "paper"])
    q.add_argument("--out", required=True, metavar="FILE.json|DIR",
                   help="where to write the learned config: a JSON file (.json) or an orbax checkpoint directory")
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.set_defaults(func=_cmd_learn)
    s = msub.add_parser("show", help="print a learned config file")
    s.add_argument("file")
    s.set_defaults(func=_cmd_show)


def _cmd_learn(args) -> int:
    if args.shipped:
        tasks = shipped_tasks()
    elif args.digits:
        tasks = digits_tasks()
    else:
        if not args.truth:
            raise ValueError("--truth: required with --zoo/--results-dir (JSON {dataset: {model: accuracy}})")
        tasks = zoo_tasks(args.truth, args.zoo or (), args.results_dir, args.dataset)
    base = PEDConfig(nsigma=args.nsigma, variant=args.variant).validate()
    ml = MetaLearner(tasks, args.metric, base, learn=[k.strip() for k in args.learn.split(",") if k.strip()],
                     temperature=args.temperature, learning_rate=args.lr)
    before = ml.taus(base)
    res = ml.fit(args.steps)
    after = ml.taus(res.config)
    meta = {"metric": args.metric, "tasks": [t.task for t in tasks], "steps": args.steps, "lr": args.lr,
            "temperature": args.temperature, "learned": list(ml.learn),
            "weighted_tau_before": before, "weighted_tau_after": after,
            "note": "weighted τ on the training tasks (not held out)"}
    save_config(args.out, res.config, **meta)
    out = {"config": dataclasses.asdict(res.config), "file": str(args.out), **meta, "seconds": round(res.seconds, 2)}
    if args.json:
        printing.print_json(out)
    else:
        c = res.config
        print(f"learned on {len(tasks)} task(s), {args.metric}, {args.steps} steps, {res.seconds:.1f} s: "
              f"nsigma={c.nsigma:.4g} constant={c.constant:.4g} time_step={c.time_step:.4g}")
        print(f"mean τ_w on the training tasks: {np.mean(before):+.3f} (start) → {np.mean(after):+.3f} (learned)")
        print(f"wrote {args.out}  (use: pedjax score ... --ped-config {args.out})")
    return 0


def _cmd_show(args) -> int:
    cfg = load_config(args.file)
    printing.print_json(dataclasses.asdict(cfg), result=False)  # a config file's content
    return 0
