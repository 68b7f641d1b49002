"""``pedjax evaluate``: weighted τ, τ, Pearson, top-k and rel@k of scores files against ground truth."""
from __future__ import annotations

from pathlib import Path

from . import printing


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="weighted τ, τ, Pearson, top-k and rel@k of scores against ground truth",
        description="Judge transferability scores against ground truth. SCORES: `pedjax score --json` output, a published "
        "{dataset}_metrics.json, or `pedjax score --csv` output. T: 'ssl-transfer' (the published fine-tuning "
        "accuracies of 12 self-supervised ResNet-50s on 11 datasets, from tw.py of github.com/lixiaotong97/PED) or a "
        "JSON file {dataset: {model: accuracy}} / {model: accuracy}.",
    )
    p.add_argument("--scores", action="append", required=True, metavar="FILE", help="scores file (repeatable: one row per metric)")
    p.add_argument("--truth", required=True, metavar="T", help="'ssl-transfer' or a JSON file")
    p.add_argument("--dataset", metavar="NAME", help="dataset in the truth table (default: the one named in the scores file)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--plot", metavar="DIR", help="write DIR/scores_vs_truth.png")
    p.set_defaults(func=run)


def read_tables(files, dataset):
    """``({label: {model: score}}, dataset)`` from scores files (labels made unique)."""
    from ..rank import load_scores

    tables: dict[str, dict[str, float]] = {}
    for f in files:
        for label, (s, ds) in load_scores(f).items():
            dataset = dataset or ds
            key, i = label, 2
            while key in tables:  # two files with the same label
                key, i = f"{label} ({i})", i + 1
            tables[key] = s
    return tables, dataset


def run(args) -> int:
    from ..rank import evaluate_scores, load_truth

    tables, dataset = read_tables(args.scores, args.dataset)
    truth, desc = load_truth(args.truth, dataset)
    results = {label: evaluate_scores(s, truth, where=f"--scores [{label}]") for label, s in tables.items()}
    for label, r in results.items():
        for model, reason in r.get("unscored", {}).items():
            printing.warning("evaluate", f"{label}: dropped {model}: {reason}")
        if r.get("dropped"):
            printing.note("evaluate", f"{label}: no ground truth for {r['dropped']}; evaluated on the other {r['models']} models")
    out = {"dataset": dataset, "truth": desc, "results": results}
    (printing.print_json if args.json else printing.evaluate_table)(out)
    if args.plot:
        from ..plots import scores_vs_truth

        try:
            fig = scores_vs_truth(tables, truth, Path(args.plot) / "scores_vs_truth.png",
                                  title=f"{dataset + ': ' if dataset else ''}score vs ground truth ({Path(args.truth).name}); τ_w = weighted Kendall τ")
        except OSError as exc:
            raise OSError(f"--plot: cannot write {Path(args.plot) / 'scores_vs_truth.png'} ({exc.strerror or exc}); the results above are complete") from None
        (printing.note("evaluate", f"wrote {fig}") if args.json else printing.wrote([fig]))
    return 0
