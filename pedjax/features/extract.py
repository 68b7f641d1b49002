"""Features of every member of a model zoo on a task: :func:`extract_features` → :class:`FeatureSet`."""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..data import TaskData, load_task
from ..models.pretrain import compile_features
from ..zoo import Zoo, ZooMember, load_zoo
from .featureset import FeatureSet


def extract_features(zoo: Zoo | str | os.PathLike | None, task, split: str = "train", *, batch_size: int = 500,
                     fashion_root=None, data_dir=None, workers: int = 2, with_truth: bool = False) -> FeatureSet:
    """Every member's features on ``split`` (``"train"`` or ``"test"``) of ``task``.

    ``task`` is a task name (``pedjax tasks``, ``tfds:NAME``, ``folder:PATH``) or a
    :class:`pedjax.data.TaskData`; ``zoo`` a :class:`Zoo` or a zoo folder (``None``: the shipped
    zoo). One compiled forward pass per architecture (members sharing an architecture reuse it);
    the architectures compile on ``workers`` background threads while the main thread computes
    (compiling only: concurrent executions on the CPU backend can deadlock).

    The result carries each member's source statistics (PED), its probe's source-class
    probabilities (LEEP/NCE) and, with ``with_truth``, the zoo's fine-tuning ground truth on the
    task (checked before any feature is computed; a missing table or task raises an error).
    """
    t0 = time.time()
    if not isinstance(zoo, Zoo):
        zoo = load_zoo(zoo)
    truth = zoo.task_truth(task if isinstance(task, str) else task.name, "task") if with_truth else None
    data = task if isinstance(task, TaskData) else load_task(task, fashion_root=fashion_root, data_dir=data_dir)
    if split not in ("train", "test"):
        raise ValueError(f"split: 'train' or 'test', got {split!r}")
    x = data.x_train if split == "train" else data.x_test
    y = data.y_train if split == "train" else data.y_test
    by_arch: dict[str, list[ZooMember]] = {}
    for m in zoo:
        if tuple(x.shape[1:]) != tuple(m.input_shape):
            raise ValueError(f"task: images of shape {x.shape[1:]} do not fit member {m.name!r} (input {m.input_shape})")
        by_arch.setdefault(json.dumps([m.arch, dict(m.arch_kwargs)], sort_keys=True), []).append(m)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        compiled = [pool.submit(compile_features, ms[0].module, ms[0].params, x.shape, batch_size)
                    for ms in by_arch.values()]
        done = {}
        for ms, fut in zip(by_arch.values(), compiled):
            fut.result()
            done.update({m.name: m.features(x, batch_size) for m in ms})
    feats = {m.name: done[m.name] for m in zoo}  # manifest order
    probs = {m.name: m.source_probs(feats[m.name]) for m in zoo}
    info = {m.name: {"dim": int(m.feature_dim), "arch": m.arch, "method": m.method, "n_params": m.entry.get("n_params"),
                     "probe_accuracy": m.entry.get("linear_probe", {}).get("accuracy")} for m in zoo}
    return FeatureSet(feats, np.asarray(y, np.int32), zoo.source_stats(), probs, truth, task=data.name, split=split,
                      info=info, seconds=time.time() - t0)
