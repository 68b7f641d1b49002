"""Small Flax (linen) backbones that expose their penultimate embedding.

A backbone maps images ``[N, H, W, C]`` (float32) to features ``[N, D]``; a :class:`Classifier`
puts a linear head (``"head"``) on top. The fine-tuner (:mod:`pedjax.models.finetune`) trains
``Classifier(backbone, C)``; the zoo reuses the backbones to extract features.

Architectures by name (:data:`ARCHITECTURES`, :func:`create`):

=========  ================================================================  =========
name       layers                                                            features
=========  ================================================================  =========
``mlp``    flatten → Dense 256 → ReLU → Dense 128 → ReLU                      128
``cnn``    [Conv3×3 16 → ReLU → maxpool 2] → [Conv3×3 32 → ReLU → maxpool 2]  64
           → flatten → Dense 64 → ReLU
``resnet`` Conv3×3 16 → 3 residual stages (16, 32, 64; stride 1, 2, 2; one     64
           basic block each, GroupNorm) → global average pool
=========  ================================================================  =========

Convolutions are :class:`Conv` (im2col + matmul, the parameters and outputs of
``flax.linen.Conv``), which keeps a vmapped hyperparameter grid fast on CPU. Parameters are
float32 whatever ``jax_enable_x64`` says; feed float32 images. There is no
batch-norm state, so ``params`` is the whole model (it vmaps cleanly over a hyperparameter grid).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from ..util import atomic_path

Params = Any


def _same_pads(size: int, k: int, stride: int) -> tuple[int, int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return out, total // 2, total - total // 2


def im2col(x: jax.Array, kernel_size: Sequence[int], stride: int = 1) -> jax.Array:
    """SAME-padded patches of ``x`` [N, H, W, C] → [N, H', W', kh·kw·C], ordered (kh, kw, C)."""
    kh, kw = kernel_size
    _, H, W, _ = x.shape
    ho, ht, hb = _same_pads(H, kh, stride)
    wo, wl, wr = _same_pads(W, kw, stride)
    xp = jnp.pad(x, ((0, 0), (ht, hb), (wl, wr), (0, 0)))
    cols = [
        xp[:, i: i + stride * (ho - 1) + 1: stride, j: j + stride * (wo - 1) + 1: stride, :]
        for i in range(kh) for j in range(kw)
    ]
    return jnp.concatenate(cols, axis=-1)


class Conv(nn.Module):
    """A SAME-padded 2-D convolution as im2col + matmul; parameters exactly as ``flax.linen.Conv``.

    Same ``kernel`` [kh, kw, C_in, C_out] (lecun-normal) and ``bias`` as ``nn.Conv`` and the same
    output (to float32 rounding), but it vmaps over a stack of kernels as a batched matmul. Under
    ``jax.vmap`` over configurations, ``nn.Conv`` becomes a grouped convolution, which XLA:CPU
    runs 3-8× slower than the equivalent loop (measured here: 1.19 s vs 16 × 35 ms per step);
    this module keeps the vmapped grid at least as fast as the loop.
    """

    features: int
    kernel_size: Sequence[int] = (3, 3)
    strides: int = 1
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kh, kw = self.kernel_size
        cin = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (kh, kw, cin, self.features), jnp.float32)
        y = jnp.dot(im2col(x, (kh, kw), self.strides), kernel.reshape(kh * kw * cin, self.features))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        return y


class MLP(nn.Module):
    """Flatten → (Dense → ReLU) per hidden width. Features: ``hidden[-1]``."""

    hidden: Sequence[int] = (256, 128)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape((x.shape[0], -1))
        for i, h in enumerate(self.hidden):
            x = nn.relu(nn.Dense(h, name=f"dense{i}")(x))
        return x


class SmallCNN(nn.Module):
    """Conv3×3 → ReLU → maxpool 2 per entry of ``channels``, then Dense ``dense`` → ReLU."""

    channels: Sequence[int] = (16, 32)
    dense: int = 64

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, c in enumerate(self.channels):
            x = nn.relu(Conv(c, (3, 3), name=f"conv{i}")(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        return nn.relu(nn.Dense(self.dense, name="dense")(x))


class _BasicBlock(nn.Module):
    channels: int
    stride: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        groups = min(4, self.channels)
        y = Conv(self.channels, (3, 3), strides=self.stride, use_bias=False, name="conv1")(x)
        y = nn.relu(nn.GroupNorm(num_groups=groups, name="norm1")(y))
        y = Conv(self.channels, (3, 3), use_bias=False, name="conv2")(y)
        y = nn.GroupNorm(num_groups=groups, name="norm2")(y)
        if x.shape[-1] != self.channels or self.stride != 1:
            x = Conv(self.channels, (1, 1), strides=self.stride, use_bias=False, name="proj")(x)
        return nn.relu(x + y)


class SmallResNet(nn.Module):
    """Stem conv, one basic residual block per stage (GroupNorm, no batch statistics), global pool."""

    stages: Sequence[int] = (16, 32, 64)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(Conv(self.stages[0], (3, 3), name="stem")(x))
        for i, c in enumerate(self.stages):
            x = _BasicBlock(c, stride=1 if i == 0 else 2, name=f"block{i}")(x)
        return jnp.mean(x, axis=(1, 2))


class Classifier(nn.Module):
    """``backbone`` → linear ``head`` with ``num_classes`` outputs. Params: ``{"backbone", "head"}``."""

    backbone: nn.Module
    num_classes: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.Dense(self.num_classes, name="head")(self.backbone(x))


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "mlp": MLP,
    "cnn": SmallCNN,
    "resnet": SmallResNet,
}


def names() -> list[str]:
    return sorted(ARCHITECTURES)


def create(name: str, **kwargs) -> nn.Module:
    """A backbone by architecture name (keyword arguments go to the module)."""
    if name not in ARCHITECTURES:
        raise ValueError(f"model: unknown architecture {name!r}; known: {', '.join(names())}")
    return ARCHITECTURES[name](**kwargs)


def compile_cheap(fn: Callable, *args) -> Callable:
    """``jax.jit(fn)`` compiled for ``args`` at XLA backend optimisation level 0.

    For code that runs once (parameter initialisation): the threefry random bits of a Flax init
    take XLA:CPU 5-15 s to optimise at the default level and about 1-3 s at level 0, while the
    run itself takes milliseconds either way. Falls back to a plain ``jax.jit`` if the backend
    rejects the option.
    """
    jitted = jax.jit(fn)
    try:
        # jax's CompilerOptions stub says str | bool values; XLA takes this level as an int
        return jitted.lower(*args).compile({"xla_backend_optimization_level": 0})  # type: ignore[dict-item]
    except Exception:  # pragma: no cover - backend without the option
        return jitted


def init(module: nn.Module, rng: jax.Array | int, input_shape: Sequence[int] = (28, 28, 1)) -> Params:
    """Random float32 parameters of ``module`` for images of ``input_shape`` (H, W, C)."""
    if isinstance(rng, (int, np.integer)):
        rng = jax.random.PRNGKey(int(rng))
    x = jnp.zeros((1, *input_shape), jnp.float32)
    return compile_cheap(lambda key: module.init(key, x)["params"], rng)(rng)


def _init_abstract(module: nn.Module, input_shape: Sequence[int]) -> Params:
    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    return jax.eval_shape(lambda xx: module.init(jax.random.PRNGKey(0), xx)["params"], x)


def feature_dim(module: nn.Module, input_shape: Sequence[int] = (28, 28, 1)) -> int:
    """D, the width of ``module``'s embedding, without computing anything."""
    params = _init_abstract(module, input_shape)
    out = jax.eval_shape(lambda p: module.apply({"params": p}, jnp.zeros((1, *input_shape), jnp.float32)), params)
    return int(out.shape[-1])


def features(module: nn.Module, params: Params, x: Any, batch_size: int = 512) -> np.ndarray:
    """Penultimate embedding ``[N, D]`` (float32) of images ``x`` [N, H, W, C], in batches."""
    return apply_batched(jax.jit(lambda p, xb: module.apply({"params": p}, xb)), params, x, batch_size)


def apply_batched(fn, params: Params, x: Any, batch_size: int = 512) -> np.ndarray:
    """``fn(params, batch)`` over images ``x`` [N, H, W(, C)] in batches of one compiled shape
    (the last batch is zero-padded), concatenated as float32."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    n = x.shape[0]
    bs = min(batch_size, n)
    out = []
    for i in range(0, n, bs):
        xb = x[i:i + bs]
        pad = bs - xb.shape[0]
        if pad:  # one compiled shape for every batch
            xb = np.concatenate([xb, np.zeros((pad, *xb.shape[1:]), np.float32)])
        out.append(np.asarray(fn(params, xb))[: bs - pad])
    return np.concatenate(out).astype(np.float32)


def count_params(params: Params) -> int:
    return int(sum(int(np.prod(getattr(leaf, "shape", np.shape(leaf)))) for leaf in jax.tree_util.tree_leaves(params)))


def _shapes(tree: Params) -> dict[str, tuple[int, ...]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(k): tuple(getattr(v, "shape", np.shape(v))) for k, v in flat}


def save_params(path: str | os.PathLike, params: Params) -> None:
    """Write ``params`` (a nested dict of arrays) as Flax msgpack, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = flax.serialization.msgpack_serialize(jax.tree_util.tree_map(np.asarray, params))
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def load_params(path: str | os.PathLike) -> Params:
    """Read parameters written by :func:`save_params` (a nested dict of float32 arrays).

    A file holding a full classifier (``{"backbone": …, "head": …}``) or a variables dict
    (``{"params": …}``) is accepted too; use :func:`backbone_params` to pick the backbone.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params: file {path} does not exist")
    try:
        tree = flax.serialization.msgpack_restore(path.read_bytes())
    except Exception as exc:
        raise ValueError(f"params: {path} is not a Flax msgpack parameter file ({exc})") from exc
    return jax.tree_util.tree_map(lambda a: np.asarray(a, dtype=np.float32) if np.issubdtype(np.asarray(a).dtype, np.floating) else np.asarray(a), tree)


def backbone_params(tree: Params) -> Params:
    """The backbone part of a parameter tree (strips ``{"params": …}`` and ``{"backbone": …}``)."""
    if isinstance(tree, dict) and set(tree) == {"params"}:
        tree = tree["params"]
    if isinstance(tree, dict) and "backbone" in tree:
        tree = tree["backbone"]
    return tree


def check_params(module: nn.Module, params: Params, input_shape: Sequence[int] = (28, 28, 1)) -> None:
    """Raise ``ValueError`` naming ``params`` when the tree does not fit ``module``."""
    want = _init_abstract(module, input_shape)
    want_s, got_s = _shapes(want), _shapes(params)
    if want_s != got_s:
        diff = sorted(set(want_s.items()) ^ set(got_s.items()))[:3]
        raise ValueError(
            f"params: the parameter tree does not match the architecture {type(module).__name__} "
            f"for inputs {tuple(input_shape)} (expected {count_params(want)} parameters, got {count_params(params)}; "
            f"first differences: {diff})"
        )


# ---------------------------------------------------------------------------------------------
# Appended for the model zoo (issue 5): a ResNet cheap enough to fine-tune over the whole grid on
# a CPU. At 28×28 input, :class:`SmallResNet`'s first stage runs at full resolution; this one's
# stem convolution has stride 2, so every stage runs at a quarter of the pixels.


class StridedResNet(nn.Module):
    """Stride-2 stem conv → one basic residual block per stage (GroupNorm) → global average pool.

    Not in :data:`ARCHITECTURES` (whose contents a test pins); :mod:`pedjax.zoo` names it
    ``"resnet-s2"``. Features: ``stages[-1]``. With the zoo's ``stages=(8, 16, 32)``
    a forward pass costs about 0.6 M multiply-adds per 28×28 image (``SmallResNet``: about 9 M).
    """

    stages: Sequence[int] = (8, 16, 32)
    stem_stride: int = 2

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(Conv(self.stages[0], (3, 3), strides=self.stem_stride, name="stem")(x))
        for i, c in enumerate(self.stages):
            x = _BasicBlock(c, stride=1 if i == 0 else 2, name=f"block{i}")(x)
        return jnp.mean(x, axis=(1, 2))



# ---------------------------------------------------------------------------------------------
# Appended for the v2 zoo (issue: benchmark v2): an attention family. A small Vision Transformer
# whose patch embedding is a reshape + Dense (no convolution), pre-norm blocks, mean-pooled tokens.


class _ViTBlock(nn.Module):
    dim: int
    heads: int
    mlp_ratio: int = 2

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        y = nn.LayerNorm(name="norm1")(x)
        y = nn.MultiHeadDotProductAttention(num_heads=self.heads, qkv_features=self.dim, name="attn")(y, y)
        x = x + y
        y = nn.LayerNorm(name="norm2")(x)
        y = nn.Dense(self.dim * self.mlp_ratio, name="mlp1")(y)
        y = nn.Dense(self.dim, name="mlp2")(nn.gelu(y))
        return x + y


class SmallViT(nn.Module):
    """A small Vision Transformer: non-overlapping ``patch``×``patch`` patches → Dense ``dim`` + learned
    position embeddings → ``depth`` pre-norm blocks (multi-head self-attention, MLP ``mlp_ratio``·dim,
    GELU) → LayerNorm → mean over tokens. Features: ``dim``.

    Not in :data:`ARCHITECTURES` (whose contents a test pins); :mod:`pedjax.zoo` names it ``"vit"``.
    At 28×28 with ``patch=7`` there are 16 tokens, so attention is cheap; no batch statistics, so
    ``params`` is the whole model. H and W must be multiples of ``patch``.
    """

    dim: int = 32
    depth: int = 2
    heads: int = 4
    patch: int = 7
    mlp_ratio: int = 2

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        n, H, W, C = x.shape
        p = self.patch
        if H % p or W % p:
            raise ValueError(f"SmallViT: image size {H}x{W} is not a multiple of the patch size {p}")
        x = x.reshape(n, H // p, p, W // p, p, C).transpose(0, 1, 3, 2, 4, 5).reshape(n, (H // p) * (W // p), p * p * C)
        x = nn.Dense(self.dim, name="embed")(x)
        pos = self.param("pos", nn.initializers.normal(0.02), (1, x.shape[1], self.dim), jnp.float32)
        x = x + pos
        for i in range(self.depth):
            x = _ViTBlock(self.dim, self.heads, self.mlp_ratio, name=f"block{i}")(x)
        return jnp.mean(nn.LayerNorm(name="norm")(x), axis=1)
