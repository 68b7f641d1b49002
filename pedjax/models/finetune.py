"""Ground truth: fine-tune a backbone + linear head over the whole lr × wd grid in one vmapped program.

The protocol of the transferability papers (LogME, SFDA, PED): full fine-tuning with SGD, Nesterov
momentum 0.9, a cosine learning-rate schedule and weight decay, over the grid
lr ∈ {1e-1, 1e-2, 1e-3, 1e-4} × wd ∈ {1e-6, 1e-5, 1e-4, 1e-3}; the ground truth of a
(model, task) pair is the best test accuracy over the grid, averaged over seeds. See
docs/finetune.md.

How pedjax runs it:

* **One program for the grid.** The 16 configurations share the initial parameters and the
  batch order of a seed and differ only in (lr, wd), so their parameters and optimizer states are
  stacked on a leading axis of 16 and one ``jax.vmap``-ed, ``jax.jit``-compiled step trains all
  of them; ``lax.fori_loop`` runs a chunk of steps per call. (lr, wd) are traced arrays, so the
  program compiles once per (model, task) and serves every seed and chunk.
* **Nothing lost.** After every chunk the stacked state is saved with orbax; a sweep that dies
  resumes from its last checkpoint and gives bit-for-bit the result of an uninterrupted one (the
  batch at step t is a pure function of (seed, t)). Finished seeds are JSON files; the result
  file is written atomically.
* **float32**: parameters, images and optimizer arithmetic are float32 even though
  the command line turns ``jax_enable_x64`` on.

Optimizer (per configuration), with ``t`` counted from 0 and ``T`` = steps::

    m ← g + 0.9·m                       (optax.trace, nesterov: direction d = g + 0.9·m)
    θ ← θ − η_t·(d + wd·θ)              η_t = lr·½·(1 + cos(π·t/T))

i.e. decoupled weight decay (SGDW: the decay is not fed through the momentum) applied to every
parameter, scaled by the same cosine schedule as the gradient step.
"""
from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..data import TaskData, load_task
from ..util import Progress, atomic_write_json, git_commit, locks_output, sha1_arrays, sha1_json, to_jsonable
from . import nets
from .training import Checkpoints, batch_schedule, run_resumable

GRID_LRS = (1e-1, 1e-2, 1e-3, 1e-4)
GRID_WDS = (1e-6, 1e-5, 1e-4, 1e-3)
MODES = ("full", "probe")
METRICS = ("accuracy", "mean_class_accuracy")
RESULT_FILE = "result.json"


@dataclass(frozen=True)
class FinetuneConfig:
    """What a sweep trains. ``checkpoint_every`` and nothing else may change between a run and its resume.

    Attributes:
      steps: optimizer steps per configuration (the cosine schedule spans them).
      batch_size: training batch size (every configuration sees the same batches).
      lrs, wds: the grid axes; the grid is their product, lr-major (index = i_lr·len(wds) + i_wd).
      momentum: Nesterov momentum.
      clip_norm: clip every step's gradient to this global L2 norm (``None``: no clipping). Without
        it, a fresh random head on pretrained features gives large first gradients that can push
        a small CNN into a dead state (training loss stuck at log C, accuracy at chance): the v2
        build measured that in 91 of 275 units at lr 0.1 (docs/zoo.md, "Gradient clipping").
      mode: ``"full"`` fine-tunes backbone and head; ``"probe"`` trains only the head on frozen
        features (computed once).
      metric: ``"accuracy"`` or ``"mean_class_accuracy"`` (mean per-class recall) — what
        ``best-of-grid`` maximises; both are always recorded.
      seeds: each seed draws the head initialisation, the batch order and (for a random-init
        backbone) the backbone initialisation.
      checkpoint_every: steps per compiled call, and between checkpoints (and ``on_chunk`` calls).
      eval_batch_size: test images per evaluation call.
      checkpoints: save an orbax checkpoint after every chunk, so a killed seed resumes from its
        last chunk; ``False`` for short sweeps (a killed seed restarts from step 0; the saves cost
        more than a few hundred steps of a small model on CPU). Neither changes the result.
    """

    steps: int = 500
    batch_size: int = 64
    lrs: tuple[float, ...] = GRID_LRS
    wds: tuple[float, ...] = GRID_WDS
    momentum: float = 0.9
    clip_norm: float | None = None
    mode: str = "full"
    metric: str = "accuracy"
    seeds: tuple[int, ...] = (0, 1, 2)
    checkpoint_every: int = 100
    eval_batch_size: int = 500
    checkpoints: bool = True

    def __post_init__(self):
        for name in ("steps", "batch_size", "checkpoint_every", "eval_batch_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}: must be a positive integer, got {v!r}")
        for name in ("lrs", "wds"):
            v = tuple(float(a) for a in getattr(self, name))
            if not v or not all(np.isfinite(a) and a >= 0 for a in v):
                raise ValueError(f"{name}: must be a non-empty list of finite non-negative numbers, got {v}")
            object.__setattr__(self, name, v)
        seeds = tuple(int(s) for s in self.seeds)
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds: need at least one seed and no repeats, got {self.seeds!r}")
        object.__setattr__(self, "seeds", seeds)
        if self.clip_norm is not None:
            if isinstance(self.clip_norm, bool) or not np.isfinite(float(self.clip_norm)) or float(self.clip_norm) <= 0:
                raise ValueError(f"clip_norm: a positive number or None, got {self.clip_norm!r}")
            object.__setattr__(self, "clip_norm", float(self.clip_norm))
        if not 0.0 <= float(self.momentum) < 1.0:
            raise ValueError(f"momentum: must be in [0, 1), got {self.momentum}")
        if self.mode not in MODES:
            raise ValueError(f"mode: unknown value {self.mode!r}; choose one of {list(MODES)}")
        metric = self.metric.replace("-", "_")
        if metric not in METRICS:
            raise ValueError(f"metric: unknown value {self.metric!r}; choose one of {list(METRICS)}")
        object.__setattr__(self, "metric", metric)

    @property
    def grid(self) -> list[tuple[float, float]]:
        return [(lr, wd) for lr in self.lrs for wd in self.wds]

    def training_dict(self) -> dict:
        """The fields that determine the result (everything but checkpointing and seeds)."""
        d = dataclasses.asdict(self)
        for k in ("checkpoint_every", "seeds", "eval_batch_size", "checkpoints"):
            d.pop(k)
        if d["clip_norm"] is None:  # the protocol before clipping existed: its fingerprints stay valid
            d.pop("clip_norm")
        return d


# --------------------------------------------------------------------------------------- core


def make_optimizer(lr, wd, steps: int, momentum: float = 0.9, clip_norm: float | None = None) -> optax.GradientTransformation:
    """SGD-Nesterov + cosine decay + decoupled weight decay, float32; ``lr``/``wd`` may be traced.
    ``clip_norm``: clip each step's gradient to this global L2 norm first (``None``: no clipping)."""
    lr = jnp.asarray(lr, jnp.float32)
    wd = jnp.asarray(wd, jnp.float32)

    def schedule(count):
        frac = jnp.minimum(count, steps).astype(jnp.float32) / jnp.float32(steps)
        return -lr * jnp.float32(0.5) * (jnp.float32(1.0) + jnp.cos(jnp.float32(np.pi) * frac))

    clip = [optax.clip_by_global_norm(float(clip_norm))] if clip_norm is not None else []
    return optax.chain(
        *clip,
        optax.trace(decay=momentum, nesterov=True),
        optax.add_decayed_weights(wd),
        optax.scale_by_schedule(schedule),
    )


def build_grid_trainer(apply_fn: Callable, steps: int, momentum: float = 0.9, clip_norm: float | None = None) -> Callable:
    """The compiled grid trainer.

    Returns ``run(params, opt_state, losses, lrs, wds, X, Y, schedule, start, stop)`` that applies
    steps ``start..stop-1`` to all G configurations at once: ``params``/``opt_state`` have a leading
    axis G, ``lrs``/``wds`` are [G], ``X`` [N, ...], ``Y`` [N], ``schedule`` [steps, B] int32;
    returns the new ``(params, opt_state, losses [G])`` (losses = last step's training loss).
    """

    def loss_fn(params, xb, yb):
        logits = apply_fn(params, xb)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    def one_config(params, opt_state, lr, wd, xb, yb):
        loss, grads = jax.value_and_grad(loss_fn)(params, xb, yb)
        updates, opt_state = make_optimizer(lr, wd, steps, momentum, clip_norm).update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    grid_step = jax.vmap(one_config, in_axes=(0, 0, 0, 0, None, None))

    @jax.jit
    def run(params, opt_state, losses, lrs, wds, X, Y, schedule, start, stop):
        def body(t, carry):
            idx = schedule[t]
            return grid_step(carry[0], carry[1], lrs, wds, jnp.take(X, idx, axis=0), jnp.take(Y, idx, axis=0))

        return jax.lax.fori_loop(start, stop, body, (params, opt_state, losses))

    return run


def build_grid_predictor(apply_fn: Callable) -> Callable:
    """``predict(params [G, …], xb [B, …]) -> int32 [G, B]`` (−1 where the logits are not finite)."""

    @jax.jit
    def predict(params, xb):
        logits = jax.vmap(lambda p: apply_fn(p, xb))(params)
        ok = jnp.all(jnp.isfinite(logits), axis=-1)
        return jnp.where(ok, jnp.argmax(logits, axis=-1), -1).astype(jnp.int32)

    return predict


def evaluate_grid(predict: Callable, params, X: np.ndarray, y: np.ndarray, num_classes: int, batch_size: int) -> dict:
    """Accuracy and mean per-class accuracy of every configuration: ``{"accuracy": [G], ...}``."""
    preds = []
    n = X.shape[0]
    for i in range(0, n, batch_size):
        xb = X[i:i + batch_size]
        pad = batch_size - xb.shape[0] if n > batch_size else 0
        if pad:  # one compiled shape for every batch
            xb = np.concatenate([xb, np.zeros((pad, *xb.shape[1:]), xb.dtype)])
        p = np.asarray(predict(params, jnp.asarray(xb)))
        preds.append(p[:, : p.shape[1] - pad])
    pred = np.concatenate(preds, axis=1)  # [G, N]
    correct = pred == y[None, :]
    acc = correct.mean(axis=1)
    present = [c for c in range(num_classes) if np.any(y == c)]
    mca = np.mean([correct[:, y == c].mean(axis=1) for c in present], axis=0)
    return {"accuracy": acc.astype(float), "mean_class_accuracy": mca.astype(float)}


# ------------------------------------------------------------------------------------ driver


@dataclass
class _Model:
    module: nn.Module
    name: str
    params: Any | None  # backbone params, or None for a random init per seed
    params_file: str | None = None
    params_sha1: str | None = None
    extra: dict = field(default_factory=dict)


def _resolve_task(task: TaskData | str, fashion_root=None, data_dir=None) -> TaskData:
    if isinstance(task, TaskData):
        return task
    if isinstance(task, str):
        return load_task(task, fashion_root=fashion_root, data_dir=data_dir)
    raise ValueError(f"task: expected a task name or a TaskData, got {type(task).__name__}")


@locks_output("out_dir")  # one writer per output folder: a concurrent run refuses at once
def finetune(
    backbone: nn.Module | str,
    task: TaskData | str,
    out_dir: str | os.PathLike | None = None,
    *,
    params: Any | None = None,
    config: FinetuneConfig | None = None,
    model_name: str | None = None,
    params_file: str | None = None,
    progress: bool = True,
    on_chunk: Callable[[int, int, np.ndarray], None] | None = None,
    fashion_root: str | None = None,
    data_dir: str | None = None,
) -> dict:
    """Fine-tune ``backbone`` (+ a linear head) on ``task`` over the lr × wd grid; return the ground truth.

    Args:
      backbone: a Flax module mapping images [N, H, W, C] to features [N, D], or an architecture
        name from :mod:`pedjax.models.nets`.
      task: a registered task name (``pedjax tasks``), ``tfds:NAME``, ``folder:PATH`` or a
        :class:`~pedjax.data.TaskData`.
      out_dir: where checkpoints, per-seed results and ``result.json`` go; ``None`` keeps
        everything in memory (no resume).
      params: pretrained backbone parameters (a classifier tree is accepted: its ``backbone`` is
        used); ``None`` initialises the backbone randomly from each seed.
      config: :class:`FinetuneConfig` (default: 500 steps, batch 64, the 4×4 grid, seeds 0-2).
      on_chunk: called as ``on_chunk(seed, step, losses)`` after each chunk (once it is
        checkpointed), with the grid's training loss at ``step`` (float [G], lr-major); an
        exception from it stops the sweep; rerunning resumes.

    Returns:
      The result dict also written to ``out_dir/result.json``: ``score`` (best-of-grid ``metric``
      averaged over seeds), per-seed grids of both metrics, and provenance.
    """
    config = config or FinetuneConfig()
    if isinstance(backbone, str):
        model_name = model_name or backbone
        backbone = nets.create(backbone)
    if not isinstance(backbone, nn.Module):
        raise ValueError(f"backbone: expected a flax.linen Module or an architecture name, got {type(backbone).__name__}")
    data = _resolve_task(task, fashion_root, data_dir)
    image_shape = data.image_shape
    if params is not None:
        params = nets.backbone_params(params)
        nets.check_params(backbone, params, image_shape)
        params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), params)
    model = _Model(
        backbone, model_name or type(backbone).__name__, params, params_file,
        None if params is None else sha1_arrays(*jax.tree_util.tree_leaves(params)),
    )
    t0 = time.time()
    G = len(config.grid)
    lrs = jnp.asarray([lr for lr, _ in config.grid], jnp.float32)
    wds = jnp.asarray([wd for _, wd in config.grid], jnp.float32)

    fingerprint = sha1_json({
        "model": model.name, "module": repr(backbone), "params": model.params_sha1,
        "task": data.name, "data": sha1_arrays(data.x_train, data.y_train, data.x_test, data.y_test),
        "config": config.training_dict(),
    })
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    progs = _programs(backbone, data.num_classes, image_shape, config.steps, config.momentum, config.mode, G, config.clip_norm)
    run, predict, init_classifier = progs["run"], progs["predict"], progs["init"]
    compiled: dict[str, Any] = progs["lazy"]
    stack_state = progs["stack_state"]
    y_train = jnp.asarray(data.y_train)
    x_train_img = jnp.asarray(data.x_train, jnp.float32)

    per_seed: list[dict] = []
    bar = Progress(progress, total=len(config.seeds) * config.steps, label=f"{model.name} on {data.name}")
    try:
        for seed in config.seeds:
            seed_file = out / "seeds" / f"seed{seed}.json" if out is not None else None
            if seed_file is not None and seed_file.is_file():
                prev = json.loads(seed_file.read_text())
                if prev.get("fingerprint") == fingerprint:
                    per_seed.append(prev)
                    bar.advance(config.steps)
                    continue
            init = init_classifier(jax.random.fold_in(jax.random.PRNGKey(seed), 1))
            bb = model.params if model.params is not None else init["backbone"]
            if config.mode == "full":
                p0 = {"backbone": bb, "head": init["head"]}
                X_tr, X_te = x_train_img, data.x_test
            else:
                p0 = {"kernel": init["head"]["kernel"], "bias": init["head"]["bias"]}
                X_tr = jnp.asarray(nets.features(backbone, bb, data.x_train))
                X_te = nets.features(backbone, bb, data.x_test)
            if "stack" not in compiled:
                compiled["stack"] = nets.compile_cheap(stack_state, p0)
            state = compiled["stack"](p0)
            schedule = jnp.asarray(batch_schedule(data.x_train.shape[0], config.steps, config.batch_size, seed))

            ckpt = Checkpoints(out / "ckpt" / f"seed{seed}-{fingerprint[:12]}") if out is not None and config.checkpoints else None
            latest = [state]

            def advance(st, a, b, latest=latest, X_tr=X_tr, schedule=schedule):
                latest[0] = run(*st, lrs, wds, X_tr, y_train, schedule, jnp.int32(a), jnp.int32(b))
                return latest[0]

            def chunk_done(step, seed=seed, latest=latest):
                on_chunk(seed, step, np.asarray(latest[0][2], dtype=float))

            state, resumed_from = run_resumable(advance, state, config.steps, config.checkpoint_every, ckpt, bar,
                                                None if on_chunk is None else chunk_done)

            ev = evaluate_grid(predict, state[0], np.asarray(X_te, np.float32), data.y_test, data.num_classes, config.eval_batch_size)
            sel = ev[config.metric]
            best = int(np.argmax(sel))
            losses = np.asarray(state[2], dtype=float)
            rec = {
                "seed": seed,
                "fingerprint": fingerprint,
                "score": float(sel[best]),
                "best": {"lr": config.grid[best][0], "wd": config.grid[best][1], "index": best},
                "accuracy": _grid(ev["accuracy"], config),
                "mean_class_accuracy": _grid(ev["mean_class_accuracy"], config),
                "final_train_loss": _grid(np.where(np.isfinite(losses), losses, np.nan), config),
                "diverged": [config.grid[i] for i in range(G) if not np.isfinite(losses[i])],
                "resumed_from_step": resumed_from,
            }
            if out is not None and seed_file is not None:  # seed_file is set exactly when out is
                atomic_write_json(seed_file, to_jsonable(rec))
                shutil.rmtree(out / "ckpt" / f"seed{seed}-{fingerprint[:12]}", ignore_errors=True)
            per_seed.append(rec)
    finally:
        bar.close()

    result = _aggregate(per_seed, config, model, data, fingerprint, time.time() - t0)
    if out is not None:
        atomic_write_json(out / RESULT_FILE, result)
    return result


def _programs(backbone, num_classes, image_shape, steps, momentum, mode, G, clip_norm=None) -> dict:
    """The compiled pieces of a sweep, shared by every sweep with the same shapes and settings
    (cached when the module is hashable, as flax.linen modules with tuple fields are)."""
    try:
        hash(backbone)
    except TypeError:
        return _build_programs(backbone, num_classes, image_shape, steps, momentum, mode, G, clip_norm)
    return _cached_programs(backbone, num_classes, tuple(image_shape), steps, momentum, mode, G, clip_norm)


def _build_programs(backbone, num_classes, image_shape, steps, momentum, mode, G, clip_norm=None) -> dict:
    classifier = nets.Classifier(backbone, num_classes)
    head = nn.Dense(num_classes)
    def apply_fn(p, x):  # x: images (full fine-tuning) or frozen features (probe)
        return classifier.apply({"params": p}, x) if mode == "full" else head.apply({"params": p}, x)
    init = nets.compile_cheap(
        lambda key: classifier.init(key, jnp.zeros((1, *image_shape), jnp.float32))["params"], jax.random.PRNGKey(0)
    )

    def stack_state(p0):
        """One configuration's parameters → the stacked grid state (params, opt_state, losses)."""
        p0 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), p0)
        stacked = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (G, *a.shape)), p0)
        opt0 = jax.vmap(make_optimizer(0.0, 0.0, steps, momentum, clip_norm).init)(stacked)
        return stacked, opt0, jnp.zeros((G,), jnp.float32)

    return {
        "run": build_grid_trainer(apply_fn, steps, momentum, clip_norm), "predict": build_grid_predictor(apply_fn),
        "init": init, "stack_state": stack_state, "lazy": {},
    }


_cached_programs = functools.lru_cache(maxsize=8)(_build_programs)


def _grid(values, config: FinetuneConfig) -> list[list[float]]:
    """[G] → nested list [len(lrs)][len(wds)]."""
    return np.asarray(values, dtype=float).reshape(len(config.lrs), len(config.wds)).tolist()


def _aggregate(per_seed, config, model: _Model, data: TaskData, fingerprint, wall) -> dict:
    scores = np.array([r["score"] for r in per_seed])
    metric_grids = np.array([r[config.metric] for r in per_seed], dtype=float)  # [S, L, W]
    mean_grid = metric_grids.mean(axis=0)
    i, j = np.unravel_index(int(np.argmax(mean_grid)), mean_grid.shape)
    try:
        import importlib.metadata as md

        version = md.version("pedjax")
    except Exception:  # pragma: no cover
        version = "unknown"
    result = {
        "model": model.name,
        "task": data.name,
        "metric": config.metric,
        "mode": config.mode,
        "score": float(scores.mean()),
        "score_std": float(scores.std()),
        "score_definition": f"best-of-grid test {config.metric} per seed, averaged over seeds",
        "best_of_mean_grid": {"lr": config.lrs[i], "wd": config.wds[j], "score": float(mean_grid[i, j])},
        "per_seed": per_seed,
        "provenance": {
            "grid": {"lr": list(config.lrs), "wd": list(config.wds), "order": "lr-major"},
            "steps": config.steps,
            "batch_size": config.batch_size,
            "seeds": list(config.seeds),
            "optimizer": f"SGD Nesterov momentum {config.momentum}, cosine decay to 0 over steps, decoupled weight decay",
            "mode": config.mode,
            "model": {
                "name": model.name, "module": repr(model.module),
                "init": "pretrained" if model.params is not None else "random (per seed)",
                "params_file": model.params_file, "params_sha1": model.params_sha1,
            },
            "task": {
                "name": data.name, "num_classes": data.num_classes, "n_train": int(data.x_train.shape[0]),
                "n_test": int(data.x_test.shape[0]), "image_shape": list(data.image_shape),
                "data_sha1": sha1_arrays(data.x_train, data.y_train, data.x_test, data.y_test),
            },
            "fingerprint": fingerprint,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": git_commit(),
            "pedjax_version": version,
            "jax_version": jax.__version__,
            "backend": jax.default_backend(),
            "dtype": "float32",
            "wall_seconds": round(float(wall), 2),
        },
    }
    return to_jsonable(result)


def load_result(out_dir: str | os.PathLike) -> dict:
    """Read ``out_dir/result.json``."""
    path = Path(out_dir) / RESULT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"out_dir: no {RESULT_FILE} in {out_dir}; run `pedjax finetune` first")
    return json.loads(path.read_text())
