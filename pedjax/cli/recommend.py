"""``pedjax recommend``: rank a zoo for a task from history + one proxy model (Fennec-style), optionally
merged with a transferability metric (the hybrid). See docs/recommend.md."""
from __future__ import annotations

from pathlib import Path

from . import printing
from ._common import add_ped_options, as_flags, ped_from_args


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
    from ..recommend import from_file, from_zoo
    from ..recommend.api import recommend
    from ..zoo import load_zoo

    if args.labels and not args.images:
        raise ValueError("--labels goes with --images")
    cfg = ped_from_args(args) if args.metric else None
    if args.metric is None and (args.ped or args.ped_config or args.weight is not None):
        raise ValueError("--ped/--ped-config/--weight apply to the hybrid; add --metric M")
    zoo = load_zoo(args.zoo)
    hist = from_zoo(zoo) if args.history == "zoo" else from_file(args.history)
    data = _own_task(args.images, args.labels, need_labels=bool(args.metric)) if args.images else load_task(args.task)
    # k, weight, proxy, history and images are checked by the library, its messages naming the flags
    with as_flags({"k": "--k", "weight": "--weight", "proxy": "--proxy", "history": "--history", "images": "--images"}):
        result = recommend(zoo, data, hist, task=args.task, proxy=args.proxy, k=args.k, nonneg=not args.plain,
                           meta=not args.no_meta, seed=args.seed, metric=args.metric, ped=cfg, weight=args.weight)
    if result.get("fallback"):  # on stderr, whatever the format: the ranking did not use the task's images
        printing.warning("recommend", result["fallback"])
    if args.json:
        printing.print_json(result)
    else:
        printing.recommend_table(result)
    return 0
