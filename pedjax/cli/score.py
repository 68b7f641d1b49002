"""``pedjax score``: one metric (± PED) over a zoo's features read from disk."""
from __future__ import annotations

import dataclasses
import sys
import time

from . import printing
from ._common import add_ped_options, add_store_options, open_store_from_args, ped_from_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "score",
        help="score a zoo read from a results folder (published PED/SFDA layout) or an .npz",
        description="Score every model of a zoo with one transferability metric, optionally after PED. "
        "Reads DIR/{model}_{dataset}_feature.npy and _label.npy (and {model}_imagenet_feature.npy for PED) "
        "as written by the published forward_feature.py, or an .npz zoo.",
    )
    add_store_options(p)
    p.add_argument("--metric", metavar="M", default="logme", help="transferability metric (default logme; see `pedjax metrics`)")
    add_ped_options(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help='print JSON: {"scores": {model: score}, "ranking": [...], ...}')
    fmt.add_argument("--csv", action="store_true", help="print CSV: rank,model,score")
    p.add_argument("--plot", metavar="DIR", help="write figures to DIR (scores.png; with --ped also ped_trajectory.png and clusters_<best model>.png)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (it shows only on a terminal)")
    p.set_defaults(func=run)


def run(args) -> int:
    import pedjax

    from ..rank import ranking, score_problems
    from ..scoring import feature_metric, score_store

    metric = feature_metric(args.metric)
    cfg = ped_from_args(args)
    store = open_store_from_args(args)
    t0 = time.perf_counter()
    scores = score_store(store, metric, cfg, progress=not args.no_progress and sys.stderr.isatty())
    order = ranking(scores)  # NaN / -inf last: a broken model is never recommended
    problems = score_problems(scores)
    result = {
        "dataset": store.dataset,
        "metric": metric,
        "ped": None if cfg is None else {**dataclasses.asdict(cfg), "source_set": store.source},
        "source": store.where,
        "scores": scores,
        "ranking": order,
        "unscored": problems,  # {model: reason} for scores written as null
        "seconds": round(time.perf_counter() - t0, 3),
        "pedjax": pedjax.__version__,
    }
    for model, reason in problems.items():
        printing.warning("score", f"{model}: no usable score, ranked last: {reason}")
    if args.json:
        printing.print_json(result)
    elif args.csv:
        printing.score_csv(result)
    else:
        printing.score_table(result)
    if args.plot:  # after the scores are out: a figure that cannot be written loses nothing
        from ..plots import score_figures

        try:
            files = score_figures(store, result, cfg, args.plot)
        except OSError as exc:
            raise OSError(f"--plot: cannot write figures to {args.plot} ({exc.strerror or exc}); the scores above are complete") from None
        (printing.note("score", "wrote " + ", ".join(files)) if args.json or args.csv else printing.wrote(files))
    return 0
