"""Features of every member of a model zoo on a task: :func:`extract_features` → :class:`FeatureSet`."""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..data import TaskData, load_task
from ..models.pretrain import compile_features
from ..util import sha1_arrays
from ..zoo import Zoo, ZooMember, load_zoo
from .cache import FeatureCache, feature_key
from .featureset import FeatureSet


def extract_features(zoo: Zoo | str | os.PathLike | None, task, split: str = "train", *, batch_size: int = 500,
                     fashion_root=None, data_dir=None, workers: int = 2, with_truth: bool = False,
                     cache: FeatureCache | str | os.PathLike | None = None) -> FeatureSet:
    """Every zoo member's features on one split of a task, as a :class:`FeatureSet`.

    One compiled forward pass per architecture (members sharing an architecture reuse it); the
    architectures compile on ``workers`` background threads while the main thread computes
    (compiling only: concurrent executions on the CPU backend can deadlock).

    Args:
      zoo: a loaded :class:`~pedjax.zoo.Zoo`, a zoo folder, or ``None`` (the shipped zoo).
      task: a task name (``pedjax tasks``, ``tfds:NAME``, ``folder:PATH``) or a
        :class:`pedjax.data.TaskData`.
      split: ``"train"`` or ``"test"``.
      batch_size: images per forward-pass batch.
      fashion_root: folder of the Fashion-MNIST files, for Fashion tasks named by ``task``.
      data_dir: TFDS data folder, for ``tfds:NAME``.
      workers: background threads that compile the architectures.
      with_truth: attach the zoo's fine-tuning ground truth on the task (checked before any
        feature is computed).
      cache: a :class:`~pedjax.features.cache.FeatureCache` or its folder: reuses features
        computed before for the same member parameters, architecture, images and software
        (content-addressed: never stale); members it holds skip the forward pass. ``None``: no
        cache.

    Returns:
      The :class:`FeatureSet`: float32 features ``{member: [N, D_m]}`` in manifest order, int32
      labels, each member's source statistics (PED) and its probe's source-class probabilities
      (LEEP/NCE), the ground truth with ``with_truth``, per-member ``info`` and the seconds spent.

    Raises:
      ValueError: ``split`` is not ``"train"``/``"test"``, the images do not fit a member's
        input shape, an unknown task, a bad zoo, or (``with_truth``) a ground truth without the
        task or a member.
      FileNotFoundError: the zoo, the task's data or (``with_truth``) the ground-truth table is
        missing.
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
    for m in zoo:
        if tuple(x.shape[1:]) != tuple(m.input_shape):
            raise ValueError(f"task: images of shape {x.shape[1:]} do not fit member {m.name!r} (input {m.input_shape})")
    if cache is not None and not isinstance(cache, FeatureCache):
        cache = FeatureCache(cache)
    keys, done = {}, {}
    if cache is not None:
        images = sha1_arrays(np.ascontiguousarray(x))
        for m in zoo:
            psha = m.entry.get("params", {}).get("sha1")
            if psha:
                keys[m.name] = feature_key(psha, m.arch, dict(m.arch_kwargs), images, batch_size)
                hit = cache.get(keys[m.name], (x.shape[0], int(m.feature_dim)))
                if hit is not None:
                    done[m.name] = hit
    by_arch: dict[str, list[ZooMember]] = {}
    for m in zoo:
        if m.name not in done:
            by_arch.setdefault(json.dumps([m.arch, dict(m.arch_kwargs)], sort_keys=True), []).append(m)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        compiled = [pool.submit(compile_features, ms[0].module, ms[0].params, x.shape, batch_size)
                    for ms in by_arch.values()]
        for ms, fut in zip(by_arch.values(), compiled, strict=True):
            fut.result()
            for m in ms:
                done[m.name] = m.features(x, batch_size)
                if m.name in keys:  # keys are made only with a cache
                    assert cache is not None
                    cache.put(keys[m.name], done[m.name])
    feats = {m.name: done[m.name] for m in zoo}  # manifest order
    probs = {m.name: m.source_probs(feats[m.name]) for m in zoo}
    info = {m.name: {"dim": int(m.feature_dim), "arch": m.arch, "method": m.method, "n_params": m.entry.get("n_params"),
                     "probe_accuracy": m.entry.get("linear_probe", {}).get("accuracy")} for m in zoo}
    return FeatureSet(feats, np.asarray(y, np.int32), zoo.source_stats(), probs, truth, task=data.name, split=split,
                      info=info, seconds=time.time() - t0)
