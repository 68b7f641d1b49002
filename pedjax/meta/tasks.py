"""Meta-learning tasks: :class:`~pedjax.features.FeatureSet` s with ground truth.

* :func:`shipped_tasks`: one per ground-truth task of the shipped zoo (features of every member
  on the task's training split, source statistics, fine-tuning ground truth);
* :func:`zoo_tasks`: feature stores on disk (``.npz`` zoos, results folders) with a truth table;
* :func:`digits_tasks`: stand-in tasks from the digits zoo (class subsets, probe ground truth).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..features import FeatureSet, digits_zoo, extract_features, open_store
from ..rank import load_truth
from ..zoo import load_zoo


def digits_tasks(n_tasks: int = 6, classes_per_task: int = 5, seed: int = 0, folds: int = 5, zoo=None) -> list[FeatureSet]:
    """Stand-in tasks from :func:`pedjax.features.digits_zoo`.

    Task k keeps ``classes_per_task`` digit classes drawn at random (seeded) from the zoo's
    target samples; its ground truth per model is the ``folds``-fold cross-validated accuracy of a
    linear probe (logistic regression) on those samples and features — a stand-in for
    fine-tuning. Every task has a different class subset, so ``n_tasks`` must not exceed the
    number of subsets, C(10, ``classes_per_task``) (not checked: the draw would not end).

    Args:
      n_tasks: the number of tasks.
      classes_per_task: digit classes per task (2–10).
      seed: the seed of the class draws.
      folds: cross-validation folds of the probe ground truth.
      zoo: a ``digits_zoo()`` result to reuse (``None``: build it).

    Returns:
      ``n_tasks`` :class:`pedjax.features.FeatureSet` s with ground truth, named
      ``digits{classes}`` (e.g. ``digits{01357}``).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    feats, y, stats, _ = zoo if zoo is not None else digits_zoo()
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    tasks: list[FeatureSet] = []
    seen: set[tuple[int, ...]] = set()
    while len(tasks) < n_tasks:
        cls = tuple(sorted(rng.choice(10, size=classes_per_task, replace=False).tolist()))
        if cls in seen:
            continue
        seen.add(cls)
        keep = np.isin(y, cls)
        F = {m: np.asarray(X)[keep] for m, X in feats.items()}
        truth = {m: float(np.mean(cross_val_score(LogisticRegression(max_iter=2000), X, y[keep], cv=folds)))
                 for m, X in F.items()}
        tasks.append(FeatureSet(F, y[keep], stats, truth=truth, task="digits{" + "".join(map(str, cls)) + "}"))
    return tasks


def shipped_tasks(zoo_dir=None, tasks: Sequence[str] | None = None) -> list[FeatureSet]:
    """One task per ground-truth task of the shipped zoo (``pedjax/assets/zoo``, or ``zoo_dir``).

    Each task holds every member's features on the task's training split, their source statistics
    and the fine-tuning ground truth. Every task's truth is checked before any feature is
    extracted.

    Args:
      zoo_dir: a zoo folder (``None``: the shipped zoo).
      tasks: the task names (default: every task of the zoo's ground-truth table).

    Returns:
      One :class:`pedjax.features.FeatureSet` with ground truth per task, in order.

    Raises:
      FileNotFoundError: (``--shipped``) the zoo has no ground-truth table.
      ValueError: (``--task``) a task the table lacks, or whose truth lacks a member; a zoo that
        cannot be loaded (:func:`pedjax.zoo.load_zoo`).
    """
    z = load_zoo(zoo_dir)
    table = z.truth()
    if table is None:
        raise FileNotFoundError(f"--shipped: {z.path} has no ground-truth table; build it with `pedjax zoo build`")
    names = list(tasks) if tasks else list(table["datasets"])
    for t in names:  # every task's truth is validated before any feature is extracted
        z.task_truth(t, "--task")
    return [extract_features(z, t, "train", with_truth=True) for t in names]


def zoo_tasks(truth: str, zoos: Sequence[str] = (), results_dir: str | None = None, datasets: Sequence[str] = (),
              source: str = "imagenet") -> list[FeatureSet]:
    """Tasks from feature stores on disk: each ``.npz`` zoo is one task, or each ``dataset`` of a
    results folder.

    Args:
      truth: a JSON table ``{dataset: {model: value}}`` or a built-in table name
        (:func:`pedjax.rank.load_truth`, as ``pedjax evaluate``).
      zoos: ``.npz`` zoo files, one task each.
      results_dir: a results folder (``{model}_{dataset}_feature.npy`` files), or ``None``.
      datasets: the results folder's datasets, one task each (required with ``results_dir``).
      source: the source set whose features give PED's statistics in a results folder.

    Returns:
      One :class:`pedjax.features.FeatureSet` (with source statistics and ground truth) per zoo,
      then per dataset.

    Raises:
      ValueError: (``--dataset``) ``results_dir`` without ``datasets``; no task given at all; what
        :func:`pedjax.features.open_store` or :func:`pedjax.rank.load_truth` reject (e.g. a dataset
        missing from ``truth``).
      FileNotFoundError: a missing zoo file, results folder or truth file, or missing source
        features.
    """
    opened = [open_store(None, z) for z in zoos]
    if results_dir is not None:
        if not datasets:
            raise ValueError("--dataset: give one or more datasets (tasks) with --results-dir")
        opened += [open_store(results_dir, None, d, source) for d in datasets]
    if not opened:
        raise ValueError("give tasks: --zoo FILE.npz (repeatable), --results-dir DIR --dataset NAME (repeatable), or --digits")
    out = []
    for store in opened:
        t, _ = load_truth(truth, store.dataset)
        out.append(store.feature_set(source=True, truth=t))
    return out
