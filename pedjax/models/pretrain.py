"""Resumable pretraining of a backbone with an objective of :mod:`pedjax.models.ssl`; the linear-probe sanity bar.

One compiled program runs a chunk of optimizer steps (``lax.fori_loop``): gather the batch,
augment it, compute the objective's loss, update with AdamW, update the objective's extra state
(BYOL's EMA target). The batch at step t is ``finetune.batch_schedule(…, seed)[t]`` and every random
draw of step t comes from ``fold_in(key(seed, impl="rbg"), t)``, so the run is a pure function of
(config, data) and a resumed run equals an uninterrupted one bit for bit (on one backend and JAX
version: the rbg generator is XLA's RngBitGenerator, chosen because it compiles about twice as
fast as threefry on XLA:CPU).

With ``out_dir`` nothing is lost:

==========================  ======================================================================
``out_dir/ckpt/<fp>/``      orbax checkpoint of (params, optimizer state, extra state, per-step
                            losses) every ``checkpoint_every`` steps; removed when the run finishes
``out_dir/final.msgpack``   the trained ``{"backbone", "head"}`` parameters (Flax msgpack; the
                            backbone part is what ``pedjax finetune --params`` reads)
``out_dir/pretrain.json``   config, fingerprint, loss curve, wall time; written atomically last —
                            a rerun with the same fingerprint returns it without training
==========================  ======================================================================

``<fp>`` is a fingerprint of the architecture, the objective, the config and the data, so a
changed setting never resumes from a stale state.

Precision: float32 parameters, images and optimizer, whatever ``jax_enable_x64`` says.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..util import Progress, atomic_save_npy, atomic_write_json, locks_output, sha1_arrays, sha1_json, to_jsonable
from . import nets
from . import ssl as ssl_mod
from .training import Checkpoints, batch_schedule, run_resumable

FINAL_PARAMS = "final.msgpack"
RESULT_FILE = "pretrain.json"


@dataclass(frozen=True)
class PretrainConfig:
    """How a backbone is pretrained. Only ``checkpoint_every`` may change between a run and its resume.

    Attributes:
      steps: optimizer steps (0: no training, the random initialisation is returned).
      batch_size: images per step (each objective makes its own views of them).
      lr: peak learning rate of AdamW (linear warm-up over ``warmup_steps``, cosine decay to
        ``lr·final_lr_fraction``).
      weight_decay: AdamW's decoupled weight decay.
      seed: draws the initialisation, the batch order and every augmentation.
      checkpoint_every: steps per compiled call and between checkpoints.
    """

    steps: int = 1000
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    final_lr_fraction: float = 0.01
    seed: int = 0
    checkpoint_every: int = 100

    def __post_init__(self):
        for name in ("steps", "warmup_steps", "seed"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name}: must be a non-negative integer, got {v!r}")
        for name, lo in (("batch_size", 2), ("checkpoint_every", 1)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
                raise ValueError(f"{name}: must be an integer >= {lo}, got {v!r}")
        for name in ("lr", "weight_decay", "final_lr_fraction"):
            v = float(getattr(self, name))
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"{name}: must be a finite non-negative number, got {v}")

    def training_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("checkpoint_every")
        return d


def make_optimizer(config: PretrainConfig) -> optax.GradientTransformation:
    """AdamW with linear warm-up and cosine decay (float32)."""
    steps = max(config.steps, 1)
    warm = min(config.warmup_steps, max(steps - 1, 0))
    sched = optax.warmup_cosine_decay_schedule(
        0.0, config.lr, warm, steps, end_value=config.lr * config.final_lr_fraction
    ) if warm > 0 else optax.cosine_decay_schedule(config.lr, steps, alpha=config.final_lr_fraction)
    return optax.adamw(sched, weight_decay=config.weight_decay)


def init_params(backbone: nn.Module, objective: ssl_mod.Objective, key: jax.Array, input_shape: Sequence[int] = (28, 28, 1)):
    """``{"backbone": …, "head": …}`` (``head`` is ``{}`` for an objective without one), float32."""
    input_shape = tuple(int(s) for s in input_shape)
    head = objective.head(nets.feature_dim(backbone, input_shape), input_shape)
    return _init_fn(backbone, head, input_shape)(key)


@functools.lru_cache(maxsize=32)
def _init_fn(backbone: nn.Module, head: nn.Module | None, input_shape: tuple[int, ...]) -> Callable:
    """Compiled (at XLA level 0, see ``nets.compile_cheap``) and cached per (backbone, head, shape)."""
    x = jnp.zeros((1, *input_shape), jnp.float32)
    h = jnp.zeros((2, nets.feature_dim(backbone, input_shape)), jnp.float32)

    def init(key):
        kb, kh = jax.random.split(key)
        bb = backbone.init(kb, x)["params"]
        hp = head.init(kh, h)["params"] if head is not None else {}
        return {"backbone": bb, "head": hp}

    return nets.compile_cheap(init, jax.random.PRNGKey(0))


def build_trainer(backbone: nn.Module, objective: ssl_mod.Objective, config: PretrainConfig, input_shape) -> Callable:
    """``run(state, X, Y, schedule, start, stop) -> state``: steps ``start..stop-1``, one compiled call.

    ``state = (params, opt_state, extra, losses [steps])``; ``X`` [N, H, W, C] float32, ``Y`` [N]
    int32, ``schedule`` [steps, B] int32 batch indices. Cached per (backbone, objective, training
    settings, input shape), so a resumed run in the same process reuses the compiled program.
    """
    return _build_trainer(backbone, objective, dataclasses.replace(config, checkpoint_every=1), tuple(int(s) for s in input_shape))


@functools.lru_cache(maxsize=16)
def _build_trainer(backbone: nn.Module, objective: ssl_mod.Objective, config: PretrainConfig, input_shape) -> Callable:
    head = objective.head(nets.feature_dim(backbone, input_shape), tuple(input_shape))
    opt = make_optimizer(config)
    # augmentation randomness: the "rbg" PRNG (XLA's RngBitGenerator) compiles about twice as fast
    # as threefry on XLA:CPU; deterministic for a given backend and JAX version
    base_key = jax.random.fold_in(jax.random.key(config.seed, impl="rbg"), 0xA06)

    def fwd(params, x):
        return backbone.apply({"params": params["backbone"]}, x)

    def loss_fn(params, extra, key, xb, yb):
        return objective.loss(fwd, head, params, extra, key, xb, yb)

    def step(t, state, X, Y, schedule):
        params, opt_state, extra, losses = state
        idx = schedule[t]
        xb, yb = jnp.take(X, idx, axis=0), jnp.take(Y, idx, axis=0)
        key = jax.random.fold_in(base_key, t)
        (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, extra, key, xb, yb)
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        extra = objective.update_extra(extra, params, t + 1, config.steps)
        losses = losses.at[t].set(loss.astype(jnp.float32))
        return params, opt_state, extra, losses

    @jax.jit
    def run(state, X, Y, schedule, start, stop):
        return jax.lax.fori_loop(start, stop, lambda t, s: step(t, s, X, Y, schedule), state)

    return run


@dataclass
class PretrainResult:
    """A finished pretraining run.

    Attributes:
      params: ``{"backbone": …, "head": …}`` float32 (numpy leaves).
      losses: per-step training loss [steps] (float32).
      info: what ``pretrain.json`` holds (config, objective, fingerprint, loss curve, wall time).
    """

    params: Any
    losses: np.ndarray
    info: dict

    @property
    def backbone_params(self):
        return self.params["backbone"]


def fingerprint(backbone: nn.Module, objective: ssl_mod.Objective, config: PretrainConfig, data_sha1: str, input_shape) -> str:
    return sha1_json({
        "module": repr(backbone), "objective": objective.describe(), "config": config.training_dict(),
        "data": data_sha1, "input_shape": list(input_shape),
    })


def _as_images(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"x: expected images [N, H, W, C] (N > 0), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x: images contain NaN or inf")
    return x


@locks_output("out_dir")  # one writer per output folder: a concurrent run refuses at once
def pretrain(
    backbone: nn.Module | str,
    method: ssl_mod.Objective | str,
    x: Any,
    y: Any | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    config: PretrainConfig | None = None,
    name: str | None = None,
    progress: bool = True,
    on_chunk: Callable[[int], None] | None = None,
) -> PretrainResult:
    """Pretrain ``backbone`` with ``method`` on images ``x`` (labels ``y`` for ``supervised``).

    Args:
      backbone: a flax module mapping images to features, or a :mod:`pedjax.models.nets` name.
      method: an :class:`pedjax.models.ssl.Objective` or its name (:data:`pedjax.models.ssl.OBJECTIVES`).
      x: images [N, H, W, C] (or [N, H, W]) float in [0, 1].
      y: int labels [N]; required by objectives with ``needs_labels``.
      out_dir: where checkpoints and the final parameters go (``None``: memory only, no resume).
      config: :class:`PretrainConfig`.
      on_chunk: called as ``on_chunk(step)`` after each checkpointed chunk (an exception from it
        stops the run; rerunning resumes).
    """
    config = config or PretrainConfig()
    if isinstance(backbone, str):
        backbone = nets.create(backbone)
    if not isinstance(backbone, nn.Module):
        raise ValueError(f"backbone: expected a flax.linen Module or an architecture name, got {type(backbone).__name__}")
    objective = ssl_mod.get_objective(method)
    X = _as_images(x)
    N = X.shape[0]
    if objective.needs_labels:
        if y is None:
            raise ValueError(f"y: the {objective.name!r} objective needs labels")
        Y = np.asarray(y)
        if Y.shape != (N,) or not np.issubdtype(Y.dtype, np.integer):
            raise ValueError(f"y: expected integer labels [{N}], got {Y.dtype} {Y.shape}")
        if Y.min() < 0 or Y.max() >= getattr(objective, "num_classes", Y.max() + 1):
            raise ValueError(f"y: labels must be in 0..{getattr(objective, 'num_classes', 0) - 1}")
        Y = Y.astype(np.int32)
    else:
        Y = np.zeros((N,), np.int32)
    if objective.trains and config.batch_size > N:
        raise ValueError(f"batch_size: {config.batch_size} is larger than the {N} training images")
    input_shape = X.shape[1:]
    label = name or f"{type(backbone).__name__}-{objective.name}"
    fp = fingerprint(backbone, objective, config, sha1_arrays(X, Y if objective.needs_labels else np.zeros(0)), input_shape)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        done = _load_done(out, fp)
        if done is not None:
            if progress:
                print(f"pretrain {label}: already done ({out / RESULT_FILE})")
            return done

    t0 = time.time()
    params = init_params(backbone, objective, jax.random.PRNGKey(config.seed), input_shape)
    steps = config.steps if objective.trains else 0
    losses = np.zeros((steps,), np.float32)
    resumed_from = 0
    if steps > 0:
        opt = make_optimizer(config)
        state = (params, opt.init(params), objective.init_extra(params), jnp.zeros((steps,), jnp.float32))
        run = build_trainer(backbone, objective, config, input_shape)
        schedule = jnp.asarray(batch_schedule(N, steps, config.batch_size, config.seed))
        Xd, Yd = jnp.asarray(X), jnp.asarray(Y)
        ckpt = Checkpoints(out / "ckpt" / fp[:12]) if out is not None else None
        bar = Progress(progress, total=steps, label=f"pretrain {label}")
        try:
            state, resumed_from = run_resumable(
                lambda st, a, b: run(st, Xd, Yd, schedule, jnp.int32(a), jnp.int32(b)),
                state, steps, config.checkpoint_every, ckpt, bar, on_chunk)
        finally:
            bar.close()
        params = state[0]
        losses = np.asarray(state[3], np.float32)
    params = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), params)
    info = to_jsonable({
        "name": label,
        "module": repr(backbone),
        "objective": objective.describe(),
        "method": objective.name,
        "config": config.training_dict(),
        "fingerprint": fp,
        "n_images": int(N),
        "input_shape": list(input_shape),
        "n_params_backbone": nets.count_params(params["backbone"]),
        "loss_curve": _loss_curve(losses),
        "final_loss": float(np.mean(losses[-max(1, len(losses) // 10):])) if len(losses) else None,
        "diverged": bool(len(losses) and not np.all(np.isfinite(losses))),
        "resumed_from_step": int(resumed_from),
        "wall_seconds": round(time.time() - t0, 2),
        "backend": jax.default_backend(),
        "dtype": "float32",
    })
    result = PretrainResult(params, losses, info)
    if out is not None:
        nets.save_params(out / FINAL_PARAMS, params)
        atomic_save_npy(out / "losses.npy", losses)
        atomic_write_json(out / RESULT_FILE, info)
        shutil.rmtree(out / "ckpt" / fp[:12], ignore_errors=True)
    return result


def _loss_curve(losses: np.ndarray, points: int = 20) -> list[list[float]]:
    """[[step, mean loss of the window ending there], …] at about ``points`` evenly spaced steps."""
    n = len(losses)
    if n == 0:
        return []
    edges = np.unique(np.linspace(0, n, min(points, n) + 1).astype(int))
    return [[int(b), float(np.mean(losses[a:b]))] for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _load_done(out: Path, fp: str) -> PretrainResult | None:
    rf, pf = out / RESULT_FILE, out / FINAL_PARAMS
    if not (rf.is_file() and pf.is_file()):
        return None
    info = json.loads(rf.read_text())
    if info.get("fingerprint") != fp:
        return None
    lf = out / "losses.npy"
    losses = np.load(lf) if lf.is_file() else np.zeros(0, np.float32)
    return PretrainResult(nets.load_params(pf), losses, info)


# ------------------------------------------------------------------------------ evaluation


def source_statistics(backbone: nn.Module, params, x, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(mean [D], std [D]) of the backbone's features on images ``x``, float64, ddof 0.

    PED's rescaling input: the model's feature statistics on a general source set (the paper uses
    ImageNet-val; the zoo uses a held-out part of its Fashion-MNIST source split).
    """
    F = feature_fn(backbone)(nets.backbone_params(params), _as_images(x), batch_size).astype(np.float64)
    return F.mean(axis=0), F.std(axis=0)


_FEATURE_FNS: dict = {}


def _forward(backbone: nn.Module):
    """The jit-compiled forward pass of ``backbone``, one per (hashable) module."""
    key: object
    try:
        hash(backbone)
        key = backbone
    except TypeError:  # pragma: no cover - unhashable module
        key = id(backbone)
    fwd = _FEATURE_FNS.get(key)
    if fwd is None:
        fwd = jax.jit(lambda p, xb: backbone.apply({"params": p}, xb))
        _FEATURE_FNS[key] = fwd
    return fwd


def feature_fn(backbone: nn.Module) -> Callable:
    """``f(params, x [N, H, W, C], batch_size) -> float32 [N, D]``, compiled once per module.

    Like :func:`pedjax.models.nets.features` but the compiled forward pass is cached per (hashable)
    module, so a zoo with several members of one architecture compiles once per batch shape.
    """
    fwd = _forward(backbone)

    def run(params, x, batch_size: int = 500) -> np.ndarray:
        return nets.apply_batched(fwd, params, x, batch_size)

    return run


def compile_features(backbone: nn.Module, params, x_shape, batch_size: int = 500) -> None:
    """Compile (without running) what ``feature_fn(backbone)(params, x, batch_size)`` runs for
    images of shape ``x_shape`` [N, H, W(, C)]: safe on a background thread."""
    n = int(x_shape[0])
    shape = tuple(x_shape[1:]) + ((1,) if len(x_shape) == 3 else ())
    xb = jax.ShapeDtypeStruct((min(batch_size, n), *shape), jnp.float32)
    _forward(backbone).lower(params, xb).compile()


def linear_probe(features_train, y_train, features_test, y_test, *, C: float = 1.0, max_iter: int = 1000) -> dict:
    """Multinomial logistic regression on standardised features; the sanity bar of a zoo member.

    Returns ``{"accuracy", "train_accuracy", "W" [D, K], "b" [K]}`` where ``softmax(F·W + b)`` are
    the probe's class probabilities on raw features ``F`` (the standardisation is folded in), so
    the probe doubles as the member's source classifier (LEEP/NCE inputs).
    """
    from sklearn.linear_model import LogisticRegression

    Ftr = np.asarray(features_train, np.float64)
    Fte = np.asarray(features_test, np.float64)
    mu = Ftr.mean(0)
    sd = Ftr.std(0)
    sd = np.where(sd > 1e-8, sd, 1.0)
    clf = LogisticRegression(C=C, max_iter=max_iter)
    clf.fit((Ftr - mu) / sd, y_train)
    W = (clf.coef_ / sd).T  # [D, K]
    b = clf.intercept_ - (mu / sd) @ clf.coef_.T
    classes = clf.classes_

    def acc(F, y):
        return float(np.mean(classes[np.argmax(F @ W + b, axis=1)] == np.asarray(y)))

    return {"accuracy": acc(Fte, y_test), "train_accuracy": acc(Ftr, y_train), "W": W, "b": b, "classes": classes}
