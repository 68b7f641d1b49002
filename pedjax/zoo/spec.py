"""What a zoo is made of: member specs, the build configuration, the shipped zoo's members and tasks.

A :class:`MemberSpec` names a backbone (:data:`ARCHITECTURES`), its pretraining objective and
seed; a :class:`BuildConfig` says how every member is pretrained and how the fine-tuning ground
truth is produced. :data:`DEFAULT_MEMBERS` is the shipped zoo, :data:`TINY_MEMBERS` /
:data:`TINY_CONFIG` the CI chain's.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..models import nets

FORMAT = "pedjax-zoo"
TRUTH_FORMAT = "pedjax-zoo-truth"
VERSION = 1
MANIFEST = "manifest.json"
TRUTH_FILE = "ground_truth.json"
DEFAULT_ZOO = Path(__file__).resolve().parents[1] / "assets" / "zoo"
DEFAULT_WORK = Path("runs") / "zoo-build"
TINY_WORK = Path("runs") / "zoo-tiny"
PARAM_FORMATS = ("orbax", "npz")

#: architectures a zoo member may name: :data:`pedjax.models.nets.ARCHITECTURES` plus the cheap ResNet
ARCHITECTURES = {**nets.ARCHITECTURES, "resnet-s2": nets.StridedResNet}

#: the ground-truth tasks of the shipped zoo (see ``pedjax tasks``)
DEFAULT_TASKS = ("digits-10", "fashion-lowdata", "fashion-coarse", "fashion-rotated", "fashion-inverted")


def create_module(arch: str, arch_kwargs: Mapping[str, Any] | None = None):
    """The backbone module of a member (JSON lists in ``arch_kwargs`` become tuples)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch: unknown architecture {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in (arch_kwargs or {}).items()}
    return ARCHITECTURES[arch](**kw)


@dataclass(frozen=True)
class MemberSpec:
    """What to pretrain for one member; ``None`` fields take the :class:`BuildConfig`'s value."""

    name: str
    arch: str
    method: str
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
    method_kwargs: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["arch_kwargs"] = {k: list(v) if isinstance(v, tuple) else v for k, v in dict(self.arch_kwargs).items()}
        d["method_kwargs"] = dict(self.method_kwargs)
        return d


_CNN = {"channels": (8, 16), "dense": 64}
_RES = {"stages": (8, 16, 32)}

#: the shipped zoo: all eight methods on one CNN (as the paper's zoo is all ResNet-50s), plus a
#: cheap ResNet and an MLP pretrained two ways each (three architecture families, D = 64/32/128)
DEFAULT_MEMBERS: tuple[MemberSpec, ...] = (
    MemberSpec("cnn-supervised", "cnn", "supervised", _CNN, seed=0),
    MemberSpec("cnn-simclr", "cnn", "simclr", _CNN, seed=1),
    MemberSpec("cnn-byol", "cnn", "byol", _CNN, seed=2),
    MemberSpec("cnn-barlow", "cnn", "barlow", _CNN, seed=3),
    MemberSpec("cnn-vicreg", "cnn", "vicreg", _CNN, seed=4),
    MemberSpec("cnn-rotation", "cnn", "rotation", _CNN, seed=5),
    MemberSpec("cnn-dae", "cnn", "dae", _CNN, seed=6),
    MemberSpec("cnn-random", "cnn", "random", _CNN, seed=7),
    MemberSpec("resnet-simclr", "resnet-s2", "simclr", _RES, seed=8),
    MemberSpec("resnet-supervised", "resnet-s2", "supervised", _RES, seed=9),
    MemberSpec("mlp-simclr", "mlp", "simclr", {}, seed=10),
    MemberSpec("mlp-dae", "mlp", "dae", {}, seed=11),
)

#: the CI chain's zoo: two tiny members
TINY_MEMBERS: tuple[MemberSpec, ...] = (
    MemberSpec("tiny-cnn-simclr", "cnn", "simclr", {"channels": (4, 8), "dense": 16}, {"hidden": 32, "out": 16}, seed=0),
    MemberSpec("tiny-mlp-supervised", "mlp", "supervised", {"hidden": (32,)}, seed=1),
)


@dataclass(frozen=True)
class BuildConfig:
    """How a zoo and its ground truth are built.

    Source split (Fashion-MNIST train[0:50000], ``pedjax.data.load_source``): members pretrain on
    its first ``source_n`` images; its last ``heldout`` images are the held-out source set
    (source statistics for PED, the linear probe's test set); the probe trains on its first
    ``probe_train`` images.
    """

    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    checkpoint_every: int = 200
    source_n: int = 45000
    heldout: int = 5000
    probe_train: int = 5000
    sanity_bar: float = 0.5
    params_format: str = "orbax"
    tasks: tuple[str, ...] = DEFAULT_TASKS
    ft_steps: int = 100
    ft_batch_size: int = 32
    ft_seeds: tuple[int, ...] = (0, 1)
    ft_checkpoint_every: int = 50
    ft_eval_batch_size: int = 50

    def __post_init__(self):
        from ..data import SOURCE_RANGE

        total = SOURCE_RANGE[1] - SOURCE_RANGE[0]
        for name in ("steps", "batch_size", "checkpoint_every", "source_n", "heldout", "probe_train", "ft_steps", "ft_batch_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}: must be a positive integer, got {v!r}")
        if self.source_n + self.heldout > total:
            raise ValueError(f"source_n, heldout: {self.source_n} + {self.heldout} exceed the {total}-image source split")
        if self.probe_train > self.source_n:
            raise ValueError(f"probe_train: {self.probe_train} > source_n {self.source_n}")
        if self.params_format not in PARAM_FORMATS:
            raise ValueError(f"params_format: choose one of {list(PARAM_FORMATS)}, got {self.params_format!r}")
        if not 0.0 <= float(self.sanity_bar) <= 1.0:
            raise ValueError(f"sanity_bar: an accuracy in [0, 1], got {self.sanity_bar}")
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "ft_seeds", tuple(int(s) for s in self.ft_seeds))
        if len(self.ft_seeds) < 1:
            raise ValueError("ft_seeds: need at least one seed")

    def finetune_config(self):
        from ..models.finetune import FinetuneConfig

        return FinetuneConfig(
            steps=self.ft_steps, batch_size=self.ft_batch_size, seeds=self.ft_seeds,
            checkpoint_every=self.ft_checkpoint_every, eval_batch_size=self.ft_eval_batch_size,
        )

    def pretrain_config(self, spec: MemberSpec):
        from ..models.pretrain import PretrainConfig

        return PretrainConfig(
            steps=spec.steps if spec.steps is not None else self.steps,
            batch_size=spec.batch_size if spec.batch_size is not None else self.batch_size,
            lr=spec.lr if spec.lr is not None else self.lr,
            seed=spec.seed, checkpoint_every=self.checkpoint_every,
        )

    def ranges(self) -> dict:
        from ..data import SOURCE_RANGE

        lo, hi = SOURCE_RANGE
        return {
            "pretrain": [lo, lo + self.source_n],
            "probe_train": [lo, lo + self.probe_train],
            "heldout": [hi - self.heldout, hi],
        }


#: the CI chain's build: seconds, not hours
TINY_CONFIG = BuildConfig(
    steps=8, batch_size=32, checkpoint_every=4, source_n=1000, heldout=300, probe_train=300, sanity_bar=0.3,
    params_format="orbax", tasks=("digits-5",), ft_steps=6, ft_batch_size=16, ft_seeds=(0, 1),
    ft_checkpoint_every=3, ft_eval_batch_size=135,
)
