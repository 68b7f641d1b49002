"""``pedjax info``, ``pedjax metrics`` and ``pedjax tasks``: the machine, and what is registered."""
from __future__ import annotations

from . import printing


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="backend, devices, the precision auto picks, whether float64 works, versions")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_info)
    p = sub.add_parser("metrics", help="list the registered transferability metrics")
    p.set_defaults(func=_cmd_metrics)
    p = sub.add_parser("tasks", help="list the registered target tasks (real, offline data)")
    p.add_argument("--check", action="store_true", help="load every task and confirm its sizes (needs the data)")
    p.set_defaults(func=_cmd_tasks)


def _cmd_info(args) -> int:
    import pedjax

    from .._precision import environment, resolve

    env = {"pedjax": pedjax.__version__, **environment(), "precision": resolve()}
    if args.json:
        printing.print_json(env)
        return 0
    rows = [
        ("pedjax", env["pedjax"]),
        ("jax / jaxlib", f"{env['jax']} / {env['jaxlib']}"),
        ("backend", env["backend"]),
        ("devices", f"{env['device_count']}: " + ", ".join(env["devices"])),
        ("processes", str(env["process_count"])),
        ("precision auto picks", env["auto_precision"]),
        ("precision this run", f"{env['precision']} (--precision)"),
        ("float64 available", env["float64_available"]),
    ]
    for k, v in rows:
        print(f"{k:22s} {v}")
    return 0


def _cmd_metrics(args) -> int:
    from .. import metrics
    from ..streaming.metrics_from_stats import SUPPORTED

    rows = []
    for name in metrics.names(target=None):
        m = metrics.REGISTRY[name]
        ped = m.input == "features" and m.target == "classes"
        rows.append({"name": name, "input": m.input, "target": m.target, "PED": "yes" if ped else "no",
                     "streams": "yes" if name in SUPPORTED else "no", "citation": m.citation})
    printing.metrics_table(rows)
    return 0


def _cmd_tasks(args) -> int:
    from ..data import SOURCE_RANGE, TASK_POOL_RANGE, TASKS, task_names

    rows: list[tuple] = []
    missing: dict[str, str] = {}
    for name in task_names():
        t = TASKS[name]
        data = t.dataset
        why = t.unavailable()
        if why is not None:
            data += " (missing)"
            missing.setdefault(t.dataset, why)
        elif args.check:
            d = t.load()
            if (d.x_train.shape[0], d.x_test.shape[0], d.num_classes) != (t.n_train, t.n_test, t.num_classes):
                raise ValueError(f"task: {name} loaded {d.summary()}, registry says {t.n_train}/{t.n_test}")
            data += " ✓"
        rows.append((name, t.domain, t.num_classes, t.n_train, t.n_test, data, t.description))
    printing.tasks_table(rows)
    for dataset, why in missing.items():
        printing.text(f"{dataset} (missing): {why}")
    lo, hi = SOURCE_RANGE
    printing.text(f"zoo source split: fashion-mnist train[{lo}:{hi}] (10 classes); task train splits use "
                  f"train[{TASK_POOL_RANGE[0]}:{TASK_POOL_RANGE[1]}], test splits the official test set")
    return 0
