"""``pedjax plot``: score vs ground truth, PED trajectories, class clusters before and after PED."""
from __future__ import annotations

from ..features import DEFAULT_SOURCE, TARGET_SOURCE
from ..plots import cluster_projection, ped_runs, ped_trajectory, scores_vs_truth
from ._common import PED_DEFAULTS, add_ped_options, open_store_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="figures: score vs ground truth, PED trajectory, class clusters before/after PED")
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True
    s = kinds.add_parser("scatter", help="score vs ground truth, one panel per scores file, τ_w in the title")
    s.add_argument("--scores", action="append", required=True, metavar="FILE", help="pedjax score --json output or a published {dataset}_metrics.json (repeatable)")
    s.add_argument("--truth", required=True, metavar="T", help="'ssl-transfer' or a JSON file (see `pedjax evaluate --help`)")
    s.add_argument("--dataset", metavar="NAME", help="dataset of the truth table (default: from the scores file)")
    s.add_argument("--out", required=True, metavar="FILE.png")
    s.set_defaults(func=_cmd_scatter)
    for name, helptext in (("trajectory", "PED's step size and energy per step, one line per model"),
                           ("clusters", "class clusters of one model before and after PED (PCA)")):
        q = kinds.add_parser(name, help=helptext)
        src = q.add_mutually_exclusive_group(required=True)
        src.add_argument("--results-dir", metavar="DIR")
        src.add_argument("--zoo", metavar="FILE.npz")
        q.add_argument("--dataset", metavar="NAME")
        add_ped_options(q, flag=False)
        q.add_argument("--source-set", default=DEFAULT_SOURCE, metavar="NAME", help=f"source set for PED's rescaling (default {DEFAULT_SOURCE}; '{TARGET_SOURCE}' = own statistics)")
        q.add_argument("--model", action="append", metavar="M", help="models to plot (repeatable; clusters: one, default the first)")
        q.add_argument("--exclude", action="append", metavar="M")
        q.add_argument("--out", required=True, metavar="FILE.png")
        q.set_defaults(func=_cmd_trajectory if name == "trajectory" else _cmd_clusters)


def _cmd_scatter(args) -> int:
    from ..rank import load_truth
    from .evaluate import read_tables

    tables, dataset = read_tables(args.scores, args.dataset)
    truth, source = load_truth(args.truth, dataset)
    print(scores_vs_truth(tables, truth, args.out, title=f"{dataset or ''} — score vs ground truth ({source}); τ_w = weighted Kendall τ".strip(" —")))
    return 0


def _open(args):
    import dataclasses

    store = open_store_from_args(args)
    store.check_source()
    return store, dataclasses.replace(PED_DEFAULTS, nsigma=args.nsigma).validate()


def _cmd_trajectory(args) -> int:
    store, cfg = _open(args)
    runs = ped_runs(store, cfg)
    print(ped_trajectory({m: r[2] for m, r in runs.items()}, args.out, exit_ratio=cfg.exit_ratio,
                         title=f"PED trajectory on {store.dataset or 'the zoo'} (nsigma={cfg.nsigma:g})"))
    return 0


def _cmd_clusters(args) -> int:
    store, cfg = _open(args)
    if args.model and len(args.model) > 1:
        raise ValueError(f"--model: clusters draws one model, got {args.model}; pass one --model")
    m = store.models[0]
    X, y, res, (mean, std) = ped_runs(store, cfg, [m])[m]
    print(cluster_projection(X, y, res, mean, std, args.out, eps=cfg.eps,
                             title=f"{m} on {store.dataset or 'the zoo'}: class clusters before and after PED (nsigma={cfg.nsigma:g})"))
    return 0
