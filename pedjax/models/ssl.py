"""Self-supervised pretraining objectives and image augmentations, in JAX.

The zoo (:mod:`pedjax.zoo`) is pretrained with these on the Fashion-MNIST source split. Every
piece is a pure function of arrays and PRNG keys, so a whole training step (batch gather,
augmentation, loss, update) compiles into one XLA program and is a function of (seed, step) only:
a resumed run is bit-for-bit the uninterrupted one.

**Augmentations** (per image, vmapped over the batch; images ``[B, H, W, C]`` float32 in [0, 1]):
random resized crop (:func:`random_resized_crop`, separable bilinear
resampling), horizontal flip, contrast and brightness jitter, Gaussian pixel
noise; :func:`augment` chains them under an :class:`AugmentConfig`.

**Objectives** (:data:`OBJECTIVES`, :func:`get_objective`): each is a frozen dataclass with

* ``head(feature_dim, input_shape)`` → the ``flax.linen`` module trained on top of the backbone
  (projector, predictor, classifier or decoder; ``None`` when there is nothing to train);
* ``init_extra(params)`` → state that is not trained by gradients (BYOL's EMA target), ``{}`` else;
* ``loss(fwd, params, extra, key, x, y)`` → ``(loss, logs)`` where ``fwd(params, x)`` runs the
  backbone and ``params = {"backbone": …, "head": …}``;
* ``update_extra(extra, params, step, total_steps)`` → the new extra state after an optimizer step.

=============  ==================================================================================
name           objective
=============  ==================================================================================
``simclr``     NT-Xent over two augmented views (Chen et al. 2020), temperature 0.2
``byol``       online projector + predictor regress an EMA target's projection, symmetric
               2 − 2·cos (Grill et al. 2020); EMA rate 0.99 → 1 on a cosine schedule
``barlow``     Barlow Twins: cross-correlation of batch-standardised projections → identity
               (Zbontar et al. 2021), λ = 1/projection width
``vicreg``     variance–invariance–covariance (Bardes et al. 2022), weights 25 / 25 / 1
``rotation``   predict which of 0/90/180/270° rotated the (augmented) image (Gidaris et al. 2018)
``dae``        denoising autoencoder: reconstruct the clean image from a masked + noisy one
``supervised`` cross-entropy on the source labels (augmented images): the supervised baseline
``random``     no training: the random initialisation baseline
=============  ==================================================================================

Heads have no batch statistics (LayerNorm instead of BatchNorm), so ``params`` is the whole model.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..util import to_jsonable

Params = Any
Forward = Callable[[Params, jax.Array], jax.Array]

# ------------------------------------------------------------------------------ augmentations


@dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation of one view.

    Attributes:
      crop_scale: range of the crop's area as a fraction of the image (random resized crop);
        ``(1, 1)`` disables cropping.
      crop_ratio: range of the crop's aspect ratio (width / height), sampled log-uniformly.
      flip: probability of a horizontal flip.
      contrast: range of the contrast factor c: ``x ← (x − mean(x))·c + mean(x)``.
      brightness: half-width of the additive brightness shift b ~ U(−brightness, brightness).
      noise_std: largest pixel-noise standard deviation; σ ~ U(0, noise_std) per image.
    """

    crop_scale: tuple[float, float] = (0.35, 1.0)
    crop_ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    flip: float = 0.5
    contrast: tuple[float, float] = (0.6, 1.4)
    brightness: float = 0.2
    noise_std: float = 0.1

    def __post_init__(self):
        lo, hi = (float(v) for v in self.crop_scale)
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"crop_scale: need 0 < low <= high <= 1, got {self.crop_scale}")
        rlo, rhi = (float(v) for v in self.crop_ratio)
        if not 0.0 < rlo <= rhi:
            raise ValueError(f"crop_ratio: need 0 < low <= high, got {self.crop_ratio}")
        if not 0.0 <= float(self.flip) <= 1.0:
            raise ValueError(f"flip: a probability in [0, 1], got {self.flip}")
        clo, chi = (float(v) for v in self.contrast)
        if not 0.0 <= clo <= chi:
            raise ValueError(f"contrast: need 0 <= low <= high, got {self.contrast}")
        if float(self.brightness) < 0 or float(self.noise_std) < 0:
            raise ValueError("brightness, noise_std: must be non-negative")
        object.__setattr__(self, "crop_scale", (lo, hi))
        object.__setattr__(self, "crop_ratio", (rlo, rhi))
        object.__setattr__(self, "contrast", (clo, chi))


#: no augmentation at all (the identity)
NO_AUGMENT = AugmentConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip=0.0, contrast=(1.0, 1.0), brightness=0.0, noise_std=0.0)


def _interp_matrix(start, length, n: int) -> jax.Array:
    """[n, n] bilinear weights: output pixel i samples the input at ``start + (i + ½)·length/n − ½``
    (pixel centres at integers), triangle kernel, rows renormalised at the border."""
    src = start + (jnp.arange(n, dtype=jnp.float32) + 0.5) * (length / n) - 0.5
    w = jnp.maximum(0.0, 1.0 - jnp.abs(src[:, None] - jnp.arange(n, dtype=jnp.float32)[None, :]))
    return w / jnp.maximum(w.sum(axis=1, keepdims=True), 1e-12)


def crop_and_resize(image: jax.Array, top, left, height, width) -> jax.Array:
    """The box ``[top, top+height) × [left, left+width)`` (continuous pixel coordinates, pixel i
    covering [i, i+1)) of ``image`` [H, W, C], resized bilinearly back to [H, W, C].

    Two small interpolation matrices and two matmuls (separable bilinear resampling): compiles in
    milliseconds, unlike ``jax.image.scale_and_translate``, and is exact for the full box.
    """
    H, W = image.shape[0], image.shape[1]
    Ry = _interp_matrix(top, height, H)
    Rx = _interp_matrix(left, width, W)
    return jnp.einsum("ij,jlc,kl->ikc", Ry, image.astype(jnp.float32), Rx)


def _crop_box(u: jax.Array, H: int, W: int, scale, ratio):
    """(top, left, height, width) of a random resized crop from four U(0, 1) numbers ``u``."""
    area = (scale[0] + (scale[1] - scale[0]) * u[0]) * H * W
    r = jnp.exp(np.log(ratio[0]) + (np.log(ratio[1]) - np.log(ratio[0])) * u[1])
    h = jnp.clip(jnp.sqrt(area / r), 1.0, H)
    w = jnp.clip(jnp.sqrt(area * r), 1.0, W)
    return u[2] * (H - h), u[3] * (W - w), h, w


def random_resized_crop(key: jax.Array, image: jax.Array, scale=(0.35, 1.0), ratio=(3 / 4, 4 / 3)) -> jax.Array:
    """Random crop of ``image`` [H, W, C] with area fraction U(``scale``) and aspect ratio
    log-U(``ratio``) (width / height), resized back to [H, W, C] bilinearly."""
    u = jax.random.uniform(key, (4,), jnp.float32)
    return crop_and_resize(image, *_crop_box(u, image.shape[0], image.shape[1], scale, ratio))


#: columns of the per-image uniform draws used by :func:`augment`
_U_CROP, _U_FLIP, _U_CONTRAST, _U_BRIGHT, _U_SIGMA, _NU = slice(0, 4), 4, 5, 6, 7, 8


def _augment_one(image: jax.Array, u: jax.Array, noise: jax.Array | None, cfg: AugmentConfig) -> jax.Array:
    x = image
    if cfg.crop_scale != (1.0, 1.0) or cfg.crop_ratio != (1.0, 1.0):
        x = crop_and_resize(x, *_crop_box(u[_U_CROP], x.shape[0], x.shape[1], cfg.crop_scale, cfg.crop_ratio))
    if cfg.flip > 0:
        x = jnp.where(u[_U_FLIP] < cfg.flip, x[:, ::-1, :], x)
    if cfg.contrast != (1.0, 1.0):
        c = cfg.contrast[0] + (cfg.contrast[1] - cfg.contrast[0]) * u[_U_CONTRAST]
        m = jnp.mean(x)
        x = (x - m) * c + m
    if cfg.brightness > 0:
        x = x + cfg.brightness * (2.0 * u[_U_BRIGHT] - 1.0)
    if noise is not None:
        x = x + cfg.noise_std * u[_U_SIGMA] * noise
    return jnp.clip(x, 0.0, 1.0).astype(jnp.float32)


def augment(key: jax.Array, images: jax.Array, cfg: AugmentConfig = AugmentConfig()) -> jax.Array:
    """One random view of every image: ``images`` [B, H, W, C] → [B, H, W, C] float32 in [0, 1].

    Per image: random resized crop → horizontal flip → contrast → brightness → Gaussian noise
    (σ ~ U(0, ``noise_std``)) → clip to [0, 1]. The random numbers of the whole batch are two
    draws (a [B, 8] uniform, a [B, H, W, C] normal): XLA:CPU compiles each threefry draw for
    seconds, so per-image draws would make every training step slow to compile. A pure function
    of ``key``: the same key gives the same views.
    """
    ku, kn = jax.random.split(key)
    B = images.shape[0]
    u = jax.random.uniform(ku, (B, _NU), jnp.float32)
    noise = jax.random.normal(kn, images.shape, jnp.float32) if cfg.noise_std > 0 else None
    return jax.vmap(_augment_one, in_axes=(0, 0, None if noise is None else 0, None))(images, u, noise, cfg)


def rotate90(images: jax.Array, k: jax.Array) -> jax.Array:
    """Rotate each square image [B, H, H, C] by ``k[b]``·90° counter-clockwise (``np.rot90``)."""
    if images.shape[1] != images.shape[2]:
        raise ValueError(f"images: rotation prediction needs square images, got {images.shape[1:3]}")
    rots = jnp.stack([jnp.rot90(images, r, axes=(1, 2)) for r in range(4)])  # [4, B, H, W, C]
    return jnp.take_along_axis(rots, k.astype(jnp.int32)[None, :, None, None, None], axis=0)[0]


# ------------------------------------------------------------------------------------- losses


def _l2n(z: jax.Array, eps: float = 1e-6) -> jax.Array:
    return z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), eps)


def nt_xent(z1: jax.Array, z2: jax.Array, temperature: float = 0.2) -> jax.Array:
    """SimCLR's NT-Xent loss of the pairs (z1[i], z2[i]); z1, z2 [B, K]. Mean over the 2B anchors."""
    B = z1.shape[0]
    z = _l2n(jnp.concatenate([z1, z2], axis=0))
    sim = (z @ z.T) / temperature
    sim = jnp.where(jnp.eye(2 * B, dtype=bool), -jnp.inf, sim)
    pos = jnp.concatenate([jnp.arange(B, 2 * B), jnp.arange(0, B)])
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(sim, pos))


def byol_loss(p: jax.Array, z: jax.Array) -> jax.Array:
    """2 − 2·cos(p, sg(z)), batch mean; ``z`` (the target projection) gets no gradient."""
    return jnp.mean(2.0 - 2.0 * jnp.sum(_l2n(p) * _l2n(jax.lax.stop_gradient(z)), axis=-1))


def _standardise(z: jax.Array, eps: float = 1e-5) -> jax.Array:
    return (z - z.mean(0)) / jnp.sqrt(z.var(0) + eps)


def barlow_twins_loss(z1: jax.Array, z2: jax.Array, lambd: float | None = None) -> jax.Array:
    """Σ_i (1 − C_ii)² + λ·Σ_{i≠j} C_ij², C = standardise(z1)ᵀ·standardise(z2) / B; λ = 1/K by default."""
    B, K = z1.shape
    lambd = 1.0 / K if lambd is None else lambd
    c = _standardise(z1).T @ _standardise(z2) / B
    on = jnp.sum((1.0 - jnp.diagonal(c)) ** 2)
    off = jnp.sum(c ** 2) - jnp.sum(jnp.diagonal(c) ** 2)
    return on + lambd * off


def vicreg_loss(z1: jax.Array, z2: jax.Array, sim: float = 25.0, var: float = 25.0, cov: float = 1.0) -> jax.Array:
    """VICReg: ``sim``·MSE(z1, z2) + ``var``·mean hinge(1 − std) + ``cov``·off-diagonal covariance² / K."""
    B, K = z1.shape
    inv = jnp.mean(jnp.sum((z1 - z2) ** 2, axis=-1)) / K

    def var_cov(z):
        zc = z - z.mean(0)
        std = jnp.sqrt(zc.var(0) * B / (B - 1) + 1e-4)
        v = jnp.mean(jax.nn.relu(1.0 - std))
        c = zc.T @ zc / (B - 1)
        return v, (jnp.sum(c ** 2) - jnp.sum(jnp.diagonal(c) ** 2)) / K

    v1, c1 = var_cov(z1)
    v2, c2 = var_cov(z2)
    return sim * inv + var * (v1 + v2) / 2.0 + cov * (c1 + c2)


# ---------------------------------------------------------------------------------- heads


class Projector(nn.Module):
    """Dense ``hidden`` → LayerNorm → ReLU → Dense ``out`` (no batch statistics)."""

    hidden: int = 256
    out: int = 64

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        h = nn.Dense(self.hidden, name="fc1")(h)
        h = nn.relu(nn.LayerNorm(name="norm")(h))
        return nn.Dense(self.out, name="fc2")(h)


class BYOLHead(nn.Module):
    """BYOL's online projector and predictor; ``project`` alone is what the EMA target keeps."""

    hidden: int = 256
    out: int = 64

    def setup(self):
        self.projector = Projector(self.hidden, self.out)
        self.predictor = Projector(self.hidden, self.out)

    def __call__(self, h: jax.Array) -> jax.Array:
        return self.predictor(self.projector(h))

    def project(self, h: jax.Array) -> jax.Array:
        return self.projector(h)


class Decoder(nn.Module):
    """Features → Dense ``hidden`` → ReLU → Dense H·W·C → sigmoid, reshaped to an image."""

    image_shape: tuple[int, ...] = (28, 28, 1)
    hidden: int = 256

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        h = nn.relu(nn.Dense(self.hidden, name="fc1")(h))
        out = nn.Dense(int(np.prod(self.image_shape)), name="fc2")(h)
        return jax.nn.sigmoid(out).reshape((h.shape[0], *self.image_shape))


# ------------------------------------------------------------------------------ objectives


def _two_views(key, x, aug):
    k1, k2 = jax.random.split(key)
    return augment(k1, x, aug), augment(k2, x, aug)


@dataclass(frozen=True)
class Objective:
    """Base class: a pretraining objective (see the module docstring for the protocol)."""

    name: str = "base"
    needs_labels: bool = False
    trains: bool = True
    augment: AugmentConfig = AugmentConfig()

    def head(self, feature_dim: int, input_shape: Sequence[int]) -> nn.Module | None:  # pragma: no cover
        raise NotImplementedError

    def init_extra(self, params: Params) -> Params:
        return {}

    def loss(self, fwd: Forward, head: nn.Module | None, params: Params, extra: Params, key, x, y):  # pragma: no cover
        raise NotImplementedError

    def update_extra(self, extra: Params, params: Params, step, total_steps: int) -> Params:
        return extra

    def describe(self) -> dict:
        """The objective's hyperparameters (JSON-able)."""
        return to_jsonable(dataclasses.asdict(self))


@dataclass(frozen=True)
class _ProjectedViews(Objective):
    """Two augmented views through the backbone and a :class:`Projector` (``hidden``, ``out``
    fields of the subclass); the subclass's ``pair_loss(z1, z2)`` compares the projections."""

    def head(self, feature_dim, input_shape):
        return Projector(self.hidden, self.out)

    def pair_loss(self, z1: jax.Array, z2: jax.Array) -> jax.Array:  # pragma: no cover
        raise NotImplementedError

    def loss(self, fwd, head, params, extra, key, x, y):
        v1, v2 = _two_views(key, x, self.augment)
        z = head.apply({"params": params["head"]}, fwd(params, jnp.concatenate([v1, v2])))
        B = x.shape[0]
        return self.pair_loss(z[:B], z[B:]), {}


@dataclass(frozen=True)
class SimCLR(_ProjectedViews):
    name: str = "simclr"
    temperature: float = 0.2
    hidden: int = 256
    out: int = 64

    def pair_loss(self, z1, z2):
        return nt_xent(z1, z2, self.temperature)


@dataclass(frozen=True)
class BYOL(Objective):
    name: str = "byol"
    hidden: int = 256
    out: int = 64
    ema: float = 0.99  # base EMA rate, raised to 1 on a cosine schedule

    def head(self, feature_dim, input_shape):
        return BYOLHead(self.hidden, self.out)

    def init_extra(self, params):
        return {"backbone": params["backbone"], "projector": params["head"]["projector"]}

    def loss(self, fwd, head, params, extra, key, x, y):
        v1, v2 = _two_views(key, x, self.augment)
        v = jnp.concatenate([v1, v2])
        B = x.shape[0]
        p = head.apply({"params": params["head"]}, fwd(params, v))
        target = {"backbone": extra["backbone"], "head": {"projector": extra["projector"]}}
        zt = head.apply({"params": target["head"]}, fwd(target, v), method=BYOLHead.project)
        zt = jax.lax.stop_gradient(zt)
        # symmetric: the online view 1 predicts the target view 2 and vice versa
        loss = byol_loss(p[:B], zt[B:]) + byol_loss(p[B:], zt[:B])
        return loss, {}

    def update_extra(self, extra, params, step, total_steps):
        frac = jnp.minimum(step.astype(jnp.float32) / jnp.float32(max(total_steps, 1)), 1.0)
        tau = 1.0 - (1.0 - self.ema) * (jnp.cos(jnp.float32(np.pi) * frac) + 1.0) / 2.0
        online = {"backbone": params["backbone"], "projector": params["head"]["projector"]}
        return jax.tree_util.tree_map(lambda t, o: (tau * t + (1.0 - tau) * o).astype(t.dtype), extra, online)


@dataclass(frozen=True)
class BarlowTwins(_ProjectedViews):
    name: str = "barlow"
    hidden: int = 256
    out: int = 128
    lambd: float | None = None  # default 1/out

    def pair_loss(self, z1, z2):
        return barlow_twins_loss(z1, z2, self.lambd)


@dataclass(frozen=True)
class VICReg(_ProjectedViews):
    name: str = "vicreg"
    hidden: int = 256
    out: int = 128
    sim: float = 25.0
    var: float = 25.0
    cov: float = 1.0

    def pair_loss(self, z1, z2):
        return vicreg_loss(z1, z2, self.sim, self.var, self.cov)


@dataclass(frozen=True)
class Rotation(Objective):
    name: str = "rotation"
    # milder views than the contrastive methods: the rotation must stay recognisable
    augment: AugmentConfig = AugmentConfig(crop_scale=(0.6, 1.0), flip=0.5, noise_std=0.05)

    def head(self, feature_dim, input_shape):
        return nn.Dense(4)

    def loss(self, fwd, head, params, extra, key, x, y):
        ka, kr = jax.random.split(key)
        k = jax.random.randint(kr, (x.shape[0],), 0, 4)
        xr = rotate90(augment(ka, x, self.augment), k)
        logits = head.apply({"params": params["head"]}, fwd(params, xr))
        loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, k))
        return loss, {"accuracy": jnp.mean(jnp.argmax(logits, -1) == k)}


@dataclass(frozen=True)
class DenoisingAE(Objective):
    name: str = "dae"
    mask: float = 0.25  # fraction of pixels zeroed
    noise: float = 0.3  # std of the added Gaussian noise
    hidden: int = 256
    augment: AugmentConfig = NO_AUGMENT

    def head(self, feature_dim, input_shape):
        return Decoder(tuple(int(s) for s in input_shape), self.hidden)

    def loss(self, fwd, head, params, extra, key, x, y):
        ka, km, kn = jax.random.split(key, 3)
        clean = augment(ka, x, self.augment)
        keep = jax.random.uniform(km, clean.shape) >= self.mask
        noisy = jnp.clip(jnp.where(keep, clean, 0.0) + self.noise * jax.random.normal(kn, clean.shape), 0.0, 1.0)
        recon = head.apply({"params": params["head"]}, fwd(params, noisy))
        return jnp.mean(jnp.sum((recon - clean) ** 2, axis=(1, 2, 3))), {}


@dataclass(frozen=True)
class Supervised(Objective):
    name: str = "supervised"
    needs_labels: bool = True
    num_classes: int = 10
    augment: AugmentConfig = AugmentConfig(crop_scale=(0.6, 1.0), flip=0.5, contrast=(0.8, 1.2), brightness=0.1, noise_std=0.05)

    def head(self, feature_dim, input_shape):
        return nn.Dense(self.num_classes)

    def loss(self, fwd, head, params, extra, key, x, y):
        logits = head.apply({"params": params["head"]}, fwd(params, augment(key, x, self.augment)))
        loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))
        return loss, {"accuracy": jnp.mean(jnp.argmax(logits, -1) == y)}


@dataclass(frozen=True)
class RandomInit(Objective):
    name: str = "random"
    trains: bool = False

    def head(self, feature_dim, input_shape):
        return None

    def loss(self, fwd, head, params, extra, key, x, y):
        return jnp.float32(0.0), {}


#: objective name -> its class (default hyperparameters)
OBJECTIVES: dict[str, type[Objective]] = {
    "simclr": SimCLR,
    "byol": BYOL,
    "barlow": BarlowTwins,
    "vicreg": VICReg,
    "rotation": Rotation,
    "dae": DenoisingAE,
    "supervised": Supervised,
    "random": RandomInit,
}


def names() -> list[str]:
    return list(OBJECTIVES)


def get_objective(name: str | Objective, **kwargs) -> Objective:
    """An objective by name (keyword arguments override its hyperparameters)."""
    if isinstance(name, Objective):
        return dataclasses.replace(name, **kwargs) if kwargs else name
    if name not in OBJECTIVES:
        raise ValueError(f"method: unknown pretraining method {name!r}; known: {', '.join(OBJECTIVES)}")
    fields = {f.name for f in dataclasses.fields(OBJECTIVES[name])}
    bad = sorted(set(kwargs) - fields)
    if bad:
        raise ValueError(f"method: {name} has no option(s) {bad}; options: {sorted(fields - {'name'})}")
    if "augment" in kwargs and isinstance(kwargs["augment"], dict):
        kwargs["augment"] = AugmentConfig(**kwargs["augment"])
    return OBJECTIVES[name](**kwargs)
