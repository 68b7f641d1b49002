"""``pedjax recommend``: rank a zoo for a task from history + one proxy model (Fennec-style), optionally
merged with a transferability metric (the hybrid). See docs/recommend.md."""
from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path

from . import printing
from ._common import add_ped_options, ped_from_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "recommend",
        help="rank the zoo for a task from history + a proxy's task embedding (no labels; ± a metric: the hybrid)",
        description="Rank a zoo's members for a task without its labels and without a forward pass of each member: "
        "the history of (member × task) fine-tuning results is factorised, one proxy member reads the task's images "
        "and places it among the past tasks, and archi2vec meta-features add a meta score (Fennec, arXiv 2403.06382). "
        "With --metric the ranking is the hybrid (1 - w)·z(history mean rank) + w·z(metric), w learned leave-one-task-out "
        "on the shipped zoo (docs/recommend.md). A task of the history is left out of it (its own ground truth never "
        "informs its ranking).",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--task", metavar="NAME", help="task name (`pedjax tasks`, tfds:NAME, folder:PATH)")
    src.add_argument("--images", metavar="FILE.npz", help="a task of your own: an .npz with 'images' [N, H, W(, C)] in [0, 1] "
                     "and, for --metric, 'labels' [N] (or --labels FILE.npy)")
    p.add_argument("--labels", metavar="FILE.npy", help="with --images: the labels [N] (only the hybrid's metric reads them)")
    p.add_argument("--zoo", metavar="DIR", help="zoo folder (default: the shipped zoo)")
    p.add_argument("--history", metavar="H", default="zoo",
                   help="'zoo' (the zoo's fine-tuning ground truth, default), a CSV/JSON file {task: {model: value}}, "
                   "or a published table (supervised-cnn, ssl-resnet50) whose models are the zoo's")
    p.add_argument("--proxy", metavar="MEMBER", default="mlp-dae", help="the zoo member that embeds tasks (default mlp-dae)")
    p.add_argument("--k", type=int, default=2, help="nearest past tasks the new task's latent vector is built from (default 2)")
    p.add_argument("--plain", action="store_true", help="plain low-rank factorisation instead of non-negative")
    p.add_argument("--no-meta", action="store_true", help="no archi2vec meta score")
    p.add_argument("--metric", metavar="M", help="merge with this metric's scores (the hybrid; computes every member's features)")
    add_ped_options(p)
    p.add_argument("--weight", type=float, help="the hybrid's metric weight w in [0, 1] (default: learned, shipped)")
    p.add_argument("--seed", type=int, default=0, help="factorisation seed (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def shipped_weight(variant: str, task: str) -> tuple[float | None, str]:
    """The learned hybrid weight of ``variant`` for ``task`` from ``pedjax/assets/recommend_weights.json``."""
    f = resources.files("pedjax").joinpath("assets", "recommend_weights.json")
    if not f.is_file():
        return None, "no shipped weights"
    w = json.loads(f.read_text())["weights"].get(variant)
    if w is None:
        return None, f"no shipped weight for {variant}"
    if task in w["loto"]:
        return float(w["loto"][task]), f"learned without {task} (leave-one-task-out)"
    return float(w["all"]), "learned on every shipped task"


def _own_task(images_path: str, labels_path: str | None, need_labels: bool):
    """A :class:`~pedjax.data.TaskData` from ``--images`` (and ``--labels``); the proxy reads only
    the images, the hybrid's metric the labels too."""
    import numpy as np

    from ..data import TaskData
    from ..features.files import load_npy

    try:
        with np.load(images_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"--images: {images_path} is not a readable .npz ({exc}); save one with np.savez(F, images=X, labels=y)") from None
    if "images" not in arrays:
        raise ValueError(f"--images: {images_path} has no 'images' array (it has {sorted(arrays)}); save one with np.savez(F, images=X)")
    x = arrays["images"]
    if x.ndim not in (3, 4) or x.shape[0] < 2:
        raise ValueError(f"--images: 'images' must be [N, H, W] or [N, H, W, C] with N ≥ 2, got shape {x.shape}")
    y = load_npy(Path(labels_path)) if labels_path else arrays.get("labels")
    if y is None:
        if need_labels:
            raise ValueError(f"--images: {images_path} has no 'labels' array and no --labels was given; the hybrid's metric needs labels")
        y = np.arange(x.shape[0]) % 2  # placeholder labels for TaskData: nothing reads them without --metric
    y = np.asarray(y).reshape(-1)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"--labels: {y.shape[0]} labels for {x.shape[0]} images")
    codes = np.unique(y, return_inverse=True)[1]
    k = int(codes.max()) + 1
    return TaskData.from_arrays(x, codes, x[:1], codes[:1], num_classes=k, name=f"images:{Path(images_path).name}",
                                provenance={"images": str(images_path), "labels": labels_path or ("in the .npz" if "labels" in arrays else None)})


def run(args) -> int:
    from ..data import load_task
    from ..rank import ranking
    from ..recommend import Proxy, Recommender, from_file, from_zoo, merge, task_representation, zoo_meta
    from ..recommend.proxy import representations
    from ..zoo import load_zoo

    t_all = time.perf_counter()
    if args.labels and not args.images:
        raise ValueError("--labels goes with --images")
    cfg = ped_from_args(args) if args.metric else None
    if args.metric is None and (args.ped or args.ped_config or args.weight is not None):
        raise ValueError("--ped/--ped-config/--weight apply to the hybrid; add --metric M")
    if args.weight is not None and not 0 <= args.weight <= 1:
        raise ValueError(f"--weight: a number in [0, 1], got {args.weight}")
    if args.k < 1:
        raise ValueError(f"--k: at least 1, got {args.k}")
    zoo = load_zoo(args.zoo)
    hist = from_zoo(zoo) if args.history == "zoo" else from_file(args.history)
    missing = [m for m in zoo.names if m not in hist.models]
    if missing:
        raise ValueError(f"--history: no entries for zoo member(s) {missing}; the history must cover the zoo")
    hist = hist.select_models(zoo.names)
    exclude = [args.task] if args.task in hist.tasks else []  # --images: a new task, in no history
    if len(hist.tasks) - len(exclude) < 2:
        raise ValueError("--history: needs at least 2 tasks besides the one being ranked")
    proxy = Proxy.from_zoo(zoo, args.proxy)
    data = _own_task(args.images, args.labels, need_labels=bool(args.metric)) if args.images else load_task(args.task)
    if tuple(data.x_train.shape[1:]) != tuple(zoo[args.proxy].input_shape):
        raise ValueError(f"--images: images of shape {data.x_train.shape[1:]} do not fit the zoo (input {zoo[args.proxy].input_shape})")
    t0 = time.perf_counter()
    rep = task_representation(proxy, data.x_train)
    proxy_s = time.perf_counter() - t0
    past = [t for t in hist.tasks if t not in exclude]
    try:
        reps = representations(proxy, past)
    except (ValueError, KeyError, OSError):
        reps, rep = {}, None  # a history of unregistered tasks: uniform weights
    meta = None if args.no_meta else zoo_meta(zoo)
    rec = Recommender(hist, reps, meta, nonneg=not args.plain, k=args.k, seed=args.seed)
    t0 = time.perf_counter()
    comps = rec.scores(rep, exclude)
    fit_s = time.perf_counter() - t0
    final_name = "fennec"
    result = {"task": args.task or data.name, "history": {"kind": hist.kind, "source": hist.source, "tasks": past, "left_out": exclude},
              "proxy": args.proxy, "neighbours": rec.last_neighbours,
              "factorisation": {"rank": rec.factors(exclude).rank, "reg": rec.factors(exclude).reg,
                                "nonneg": not args.plain, "heldout_rmse": rec.factors(exclude).heldout_error},
              "seconds": {"proxy_forward": proxy_s, "factorise_and_score": fit_s}}
    if args.metric:
        from ..features import extract_features
        from ..scoring import feature_metric, ped_set, score_set

        t0 = time.perf_counter()
        fs = extract_features(zoo, data, "train")
        name = args.metric + ("+PED" if cfg is not None else "")
        if cfg is not None:
            feature_metric(args.metric)
            fs = ped_set(fs, cfg)
        comps[name] = score_set(fs, args.metric)
        result["seconds"]["metric"] = time.perf_counter() - t0
        if args.weight is not None:
            w, why = args.weight, "given"
        else:
            w, why = shipped_weight(name, args.task or data.name)
            if w is None or (cfg is not None and cfg.nsigma != 0.6):
                w, why = 0.5, f"{why or 'custom PED'}; default 0.5"
        comps["hybrid"] = merge(comps["history"], comps[name], w)
        result["hybrid"] = {"metric": name, "weight": w, "weight_from": why}
        final_name = "hybrid"
    order = ranking(comps[final_name])
    result.update({"final": final_name, "ranking": order, "components": comps,
                   "seconds": {**result["seconds"], "total": time.perf_counter() - t_all}})
    if args.json:
        printing.print_json(result)
    else:
        printing.recommend_table(result)
    return 0
