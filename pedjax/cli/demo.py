"""``pedjax demo``: the main job on the shipped zoo.

The shipped zoo (``pedjax/assets/zoo``, docs/zoo.md) is loaded, every member's features are
extracted on a shipped task's training split (``--task``, default :data:`DEFAULT_TASK`), and the
benchmark loop (:func:`pedjax.rank.benchmark`) scores them with the metrics of
:data:`DEMO_METRICS` (``--metric`` picks others, ``--metric all`` every registered one) — feature
metrics statically and after PED — and computes each one's weighted Kendall τ against the zoo's
fine-tuning ground truth. ``--zoo digits`` (and the fallback when no zoo is installed) runs the
digits stand-in zoo (:mod:`pedjax.features.digits`) instead.
"""
from __future__ import annotations

import time
from pathlib import Path

from . import printing

#: the shipped-zoo demo's metrics (``--metric`` picks others; ``all``: every registered metric of
#: class labels): the two PED was published with (LogME, SFDA), the best two of the 27-member
#: benchmark (NCTI, ETran; docs/results.md), GBC and H-score, and the two that read the source
#: models' predictions (LEEP, NCE). Every metric costs a compilation per feature width on a cold
#: start (~1 s each on 2 cores), so the demo keeps to these eight to start in ≤ 25 s (issue 24;
#: BENCHMARKS.md); the others, the cross-validated baselines (kNN, linear probe: tens of times the
#: cost of the rest together) included, are one ``--metric`` away.
DEMO_METRICS = ("logme", "sfda", "ncti", "etran", "gbc", "hscore", "leep", "nce")
#: the digits zoo's metrics (LEEP/NCE need source-model predictions, which that zoo lacks)
DEFAULT_METRICS = ("logme", "sfda", "gbc", "hscore")
#: the shipped task the demo scores by default when the zoo's ground truth has no per-seed
#: accuracies (no download: scikit-learn's bundled digits); with them, the task with the highest
#: noise ceiling among those whose data is installed (:func:`default_task`)
DEFAULT_TASK = "digits-10"
ZOOS = ("shipped", "digits")


def add_parser(sub) -> None:
    from ._common import add_ped_options

    p = sub.add_parser("demo", help="score the shipped zoo on a shipped task with eight metrics, with and without PED")
    add_ped_options(p, flag=False)
    p.add_argument("--metric", action="append", help="score these metrics instead of the demo's eight (repeatable; 'all': every registered one)")
    p.add_argument("--zoo", default="shipped", help="'shipped' (pedjax/assets/zoo; default), 'digits' (a quick zoo built on the fly) or a zoo folder")
    p.add_argument("--task", default=None, help="shipped zoo: the task to score (default: the one with the highest noise ceiling whose data is installed; "
                   "`pedjax zoo list` shows them)")
    p.add_argument("--plot", default=None, metavar="DIR", help="also write scores-vs-ground-truth figures (PNG) to DIR")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def shipped_zoo_available(zoo_dir=None) -> bool:
    """Whether a zoo with a ground-truth table is installed (``pedjax/assets/zoo`` by default)."""
    from ..zoo import DEFAULT_ZOO, MANIFEST, TRUTH_FILE

    path = Path(zoo_dir) if zoo_dir is not None else DEFAULT_ZOO
    return (path / MANIFEST).is_file() and (path / TRUTH_FILE).is_file()


def default_task(table: dict) -> str:
    """The task with the highest noise ceiling (seed-to-seed τ_w) of a ground-truth table that holds
    per-seed accuracies (the shipped zoo's), among the tasks whose dataset is installed (the
    Fashion-MNIST tasks need the Debian package; the digits ones never miss); else
    :data:`DEFAULT_TASK` (or the table's first task)."""
    from ..data import fashion
    from ..data.tasks import TASKS
    from ..rank import judging

    tasks = list(table["datasets"])
    usable = [t for t in tasks if t not in TASKS or TASKS[t].dataset != "fashion-mnist" or fashion.available()]
    tasks = usable or tasks
    ceilings = {t: c for t, c in judging.headline(table.get("per_seed", {}), tasks)["ceiling"].items() if c == c}
    if ceilings:
        return max(ceilings, key=ceilings.__getitem__)
    return DEFAULT_TASK if DEFAULT_TASK in tasks else tasks[0]


def judged_against(table: dict, task: str) -> dict:
    """What a metric's τ_w on ``task`` should be read against: the noise ceiling (``None`` without
    per-seed accuracies) and the history mean rank baseline's τ_w (leave-one-task-out; ``None``
    with one task)."""
    from ..rank import judging

    per_seed = table.get("per_seed", {}).get(task)
    ceiling = judging.noise_ceiling(per_seed)["ceiling"] if per_seed else None
    truth = table["datasets"]
    history = None
    if len(truth) > 1:
        history = judging.tau_per_task({task: judging.history_scores(truth, task)}, {task: truth[task]})[task]
    return {"noise_ceiling": ceiling if ceiling is None or ceiling == ceiling else None, "history_tau": history}


def run_demo(nsigma: float = 0.6, metrics_list=None, *, zoo: str = "shipped", task: str | None = None, zoo_dir=None,
             feature_cache=None) -> dict:
    """The demo's scores and weighted τ (see the module docstring); a JSON-ready dict.

    ``zoo="shipped"`` falls back to the digits zoo when no shipped zoo is installed (the result's
    ``"zoo"`` says which ran); ``task`` applies to the shipped zoo only. ``feature_cache``: a
    folder of :class:`pedjax.features.cache.FeatureCache` (the command line passes its user cache).
    """
    from ..metrics import REGISTRY, names
    from ..physics import PEDConfig
    from ..rank import benchmark

    if zoo not in ZOOS:
        raise ValueError(f"--zoo: unknown zoo {zoo!r}; choose one of {list(ZOOS)}")
    every = bool(metrics_list) and "all" in metrics_list
    if every:
        metrics_list = names(target="classes")
    unknown = [m for m in (metrics_list or []) if m not in REGISTRY]
    if unknown:
        raise ValueError(f"--metric: unknown metric {unknown[0]!r}; choose one of {names()}")
    t0 = time.perf_counter()
    cfg = PEDConfig(nsigma=nsigma).validate()
    if zoo == "shipped" and (zoo_dir is not None or shipped_zoo_available()):
        from ..features import extract_features
        from ..zoo import load_zoo

        z = load_zoo(zoo_dir)
        table = z.truth()
        if table is None:
            raise FileNotFoundError(f"--zoo: {z.path} has no ground-truth table; build it with `pedjax zoo build --zoo {z.path}`")
        task = task or default_task(table)
        z.task_truth(task, "--task")  # a bad --task fails before any feature is computed
        fs = extract_features(z, task, "train", with_truth=True, cache=feature_cache)
        head = {"zoo": str(z.path), "task": f"{task} (train split)", "truth_label": "fine-tuned test acc",
                "judged_against": judged_against(table, task)}
        metric_names = metrics_list or list(DEMO_METRICS)
    else:
        if task is not None:
            raise ValueError("--task: the digits zoo has one fixed task; --task applies to the shipped zoo")
        from ..features import digits_feature_set

        fs = digits_feature_set()
        head = {"zoo": "digits", "task": fs.task, "truth_label": "probe acc"}
        metric_names = metrics_list or [n for n in DEFAULT_METRICS if n in REGISTRY]
        if every:  # the digits zoo has no source-model predictions
            metric_names = [n for n in metric_names if REGISTRY[n].input == "features"]
    res = benchmark(fs, metric_names, {"ped": cfg})
    if res.errors:
        variant, by_task = next(iter(res.errors.items()))
        raise ValueError(f"{variant}: {next(iter(by_task.values()))}")
    scores = {k: res.scores[fs.task][k] for k in sorted(res.scores[fs.task])}
    taus = {k: res.tau[k][fs.task] for k in sorted(res.tau)}
    models = {m: {"dim": d, "truth": fs.truth[m], **{k: v for k, v in fs.info.get(m, {}).items() if k in ("arch", "method")}}
              for m, d in fs.dims().items()}
    return {**head, "n_samples": fs.n_samples, "ped": {"nsigma": cfg.nsigma, "variant": cfg.variant}, "models": models,
            "scores": scores, "weighted_tau": taus, "feature_seconds": fs.seconds, "seconds": time.perf_counter() - t0}


def plot_demo(result: dict, out_dir) -> list[str]:
    """Score-vs-ground-truth scatters (static and + PED side by side) of the demo's metrics."""
    from ..plots import scores_vs_truth

    truth = {k: v["truth"] for k, v in result["models"].items()}
    title = f"{result['task']}: score vs {result.get('truth_label', 'ground truth')} (τ_w: weighted Kendall τ)"
    feat = [k for k in result["scores"] if k + "+ped" in result["scores"]]
    if not feat:
        return []
    pairs = {lbl: result["scores"][lbl] for k in feat for lbl in (k, k + "+ped")}
    return [scores_vs_truth(pairs, truth, Path(out_dir) / "demo_scores.png", title=title,
                            truth_label=result.get("truth_label", "ground truth"), ncols=2)]


def run(args) -> int:
    kind, zoo_dir = (args.zoo, None) if args.zoo in ZOOS else ("shipped", args.zoo)
    if zoo_dir is not None and not Path(zoo_dir).is_dir():
        raise ValueError(f"--zoo: {zoo_dir!r} is neither {' nor '.join(ZOOS)} nor a zoo folder")
    from ._common import feature_cache_dir

    result = run_demo(nsigma=args.nsigma, metrics_list=args.metric, zoo=kind, task=args.task, zoo_dir=zoo_dir,
                      feature_cache=feature_cache_dir())
    if args.json:
        if args.plot:
            try:
                result["figures"] = plot_demo(result, args.plot)
            except OSError as exc:
                printing.print_json(result)  # the results first: an output error loses nothing
                raise OSError(f"--plot: cannot write figures to {args.plot} ({exc.strerror or exc}); the results above are complete") from None
        printing.print_json(result)
        return 0
    printing.demo_tables(result)  # printed before any figure is written: an output error loses nothing
    printing.demo_judged(result)
    if args.plot:
        try:
            printing.wrote(plot_demo(result, args.plot))
        except OSError as exc:
            raise OSError(f"--plot: cannot write figures to {args.plot} ({exc.strerror or exc}); the results above are complete") from None
    return 0
