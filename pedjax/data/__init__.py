"""Real, offline data: Fashion-MNIST (Debian IDX files), scikit-learn digits, local TFDS datasets,
and the named target tasks the fine-tuner produces ground truth on. See docs/data.md.

``pedjax tasks`` lists the registered tasks.
"""
from __future__ import annotations

from ._arrays import TaskData
from .digits import load_digits, resize_images
from .fashion import CLASS_NAMES as FASHION_CLASS_NAMES
from .fashion import load_fashion_mnist, read_idx
from .tasks import (
    SOURCE_RANGE,
    TASK_POOL_RANGE,
    TASKS,
    Task,
    get_task,
    load_source,
    load_task,
    source_indices,
    task_names,
)
from .tfds_local import load_image_folder, load_tfds, tfds_available

__all__ = [
    "TaskData", "Task", "TASKS", "task_names", "get_task", "load_task", "load_source", "source_indices",
    "SOURCE_RANGE", "TASK_POOL_RANGE", "load_fashion_mnist", "read_idx", "FASHION_CLASS_NAMES",
    "load_digits", "resize_images", "load_tfds", "load_image_folder", "tfds_available",
]


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("tasks", help="list the registered target tasks (real, offline data)")
    p.add_argument("--check", action="store_true", help="load every task and confirm its sizes (needs the data)")
    p.set_defaults(func=_cmd_tasks)


def _cmd_tasks(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from . import fashion

    have_fashion = fashion.available()
    table = Table(title="pedjax target tasks")
    for col in ("name", "classes", "train", "test", "data", "description"):
        table.add_column(col, overflow="fold")
    for name in task_names():
        t = TASKS[name]
        data = t.dataset
        if t.dataset == "fashion-mnist" and not have_fashion:
            data += " (missing: apt-get install dataset-fashion-mnist)"
        if args.check and (t.dataset != "fashion-mnist" or have_fashion):
            d = t.load()
            if (d.x_train.shape[0], d.x_test.shape[0], d.num_classes) != (t.n_train, t.n_test, t.num_classes):
                raise ValueError(f"task: {name} loaded {d.summary()}, registry says {t.n_train}/{t.n_test}")
            data += " ✓"
        table.add_row(name, str(t.num_classes), str(t.n_train), str(t.n_test), data, t.description)
    import sys

    Console(width=None if sys.stdout.isatty() else 160).print(table)
    lo, hi = SOURCE_RANGE
    print(f"zoo source split: fashion-mnist train[{lo}:{hi}] (10 classes); task train splits use "
          f"train[{TASK_POOL_RANGE[0]}:{TASK_POOL_RANGE[1]}], test splits the official test set")
    return 0
