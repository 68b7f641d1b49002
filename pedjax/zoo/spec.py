"""What a zoo is made of: member specs, the build configuration, the shipped zoo's members and tasks.

A :class:`MemberSpec` names a backbone (:data:`ARCHITECTURES`), its pretraining objective and
seed; a :class:`BuildConfig` says how every member is pretrained and how the fine-tuning ground
truth is produced. The shipped zoo (:data:`DEFAULT_ZOO`) is built from :data:`V2_MEMBERS` /
:data:`V2_CONFIG` (benchmark v2); :data:`TINY_V2_MEMBERS` / :data:`TINY_V2_CONFIG` are the CI chain's.
:data:`V1_MEMBERS` / :data:`V1_CONFIG` (``pedjax zoo build --v1``) are the first zoo's spec
(docs/zoo.md, "The first zoo"); :data:`TINY_MEMBERS` / :data:`TINY_CONFIG` its tiny chain.
:data:`V3_TASKS` / :data:`V3_CONFIG` (``pedjax zoo build --v3``) add benchmark v3's new target
domains to the shipped zoo, with the v2 members and protocol.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..models import nets

FORMAT = "pedjax-zoo"
TRUTH_FORMAT = "pedjax-zoo-truth"
VERSION = 1
MANIFEST = "manifest.json"
TRUTH_FILE = "ground_truth.json"
#: the shipped zoo (built from :data:`V2_MEMBERS` / :data:`V2_CONFIG`) and its build's work folder
DEFAULT_ZOO = Path(__file__).resolve().parents[1] / "assets" / "zoo"
DEFAULT_WORK = Path("runs") / "zoo-v2-build"
#: the first zoo's work folder (``--v1``; its zoo goes to V1_WORK/zoo) and the tiny chains'
V1_WORK = Path("runs") / "zoo-build"
TINY_WORK = Path("runs") / "zoo-tiny"
TINY_V2_WORK = Path("runs") / "zoo-v2-tiny"
PARAM_FORMATS = ("orbax", "npz")

#: architectures a zoo member may name: :data:`pedjax.models.nets.ARCHITECTURES` plus the cheap ResNet
#: and the small Vision Transformer (the v2 zoo's attention family)
ARCHITECTURES = {**nets.ARCHITECTURES, "resnet-s2": nets.StridedResNet, "vit": nets.SmallViT}

#: the first zoo's ground-truth tasks (see ``pedjax tasks``)
V1_TASKS = ("digits-10", "fashion-lowdata", "fashion-coarse", "fashion-rotated", "fashion-inverted")


def create_module(arch: str, arch_kwargs: Mapping[str, Any] | None = None):
    """The backbone module of a member.

    Args:
      arch: a key of :data:`ARCHITECTURES`.
      arch_kwargs: the module's fields (JSON lists become tuples); ``None``: the defaults.

    Returns:
      The (unbound) Flax module.

    Raises:
      ValueError: an unknown ``arch``.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch: unknown architecture {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in (arch_kwargs or {}).items()}
    return ARCHITECTURES[arch](**kw)


@dataclass(frozen=True)
class MemberSpec:
    """What to pretrain for one member; ``None`` fields take the :class:`BuildConfig`'s value.

    Attributes:
      name: the member's name (unique in a zoo).
      arch: the backbone, a key of :data:`ARCHITECTURES`.
      method: the pretraining objective (``supervised``, ``simclr``, ``byol``, ``barlow``,
        ``vicreg``, ``rotation``, ``dae``, ``random``).
      arch_kwargs: the backbone module's fields.
      method_kwargs: the objective's options (e.g. projection head sizes).
      seed: the pretraining seed.
      steps: pretraining steps; ``None``: the config's.
      batch_size: pretraining batch size; ``None``: the config's.
      lr: pretraining learning rate; ``None``: the config's.
      source_classes: pretrain only on these Fashion-MNIST classes 0..9 (a class-subset
        source; stored sorted), or ``None``.
      source_n: pretrain only on the first ``source_n`` (≥ 2) images of the pretraining part
        (a low-data source), or ``None``.
      parent: this member is the checkpoint of member ``parent``'s pretraining run at step
        ``at_step`` (same architecture, method and seed; taken from the parent's run, never
        re-run), or ``None``.
      at_step: the parent run's step (a positive integer; with ``parent``).

    Raises:
      ValueError: invalid ``source_classes``, ``source_n`` or ``at_step``, or only one of
        ``parent`` and ``at_step``.
    """

    name: str
    arch: str
    method: str
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
    method_kwargs: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    source_classes: tuple[int, ...] | None = None
    source_n: int | None = None
    parent: str | None = None
    at_step: int | None = None

    def __post_init__(self):
        if self.source_classes is not None:
            sc = tuple(sorted(int(c) for c in self.source_classes))
            if not sc or len(set(sc)) != len(sc) or sc[0] < 0 or sc[-1] > 9:
                raise ValueError(f"source_classes: distinct Fashion-MNIST classes 0..9, got {self.source_classes!r}")
            object.__setattr__(self, "source_classes", sc)
        if self.source_n is not None and (not isinstance(self.source_n, (int, np.integer)) or self.source_n < 2):
            raise ValueError(f"source_n: an integer >= 2, got {self.source_n!r}")
        if (self.parent is None) != (self.at_step is None):
            raise ValueError(f"{self.name}: parent and at_step go together")
        if self.at_step is not None and (not isinstance(self.at_step, (int, np.integer)) or self.at_step < 1):
            raise ValueError(f"at_step: a positive integer, got {self.at_step!r}")

    def as_dict(self) -> dict:
        """The spec as a JSON-ready dict (tuples as lists; the optional v2 fields only when set)."""
        d = dataclasses.asdict(self)
        d["arch_kwargs"] = {k: list(v) if isinstance(v, tuple) else v for k, v in dict(self.arch_kwargs).items()}
        d["method_kwargs"] = dict(self.method_kwargs)
        # the v2 fields only when set: the v1 members' fingerprints (and the shipped zoo) stay valid
        for k in ("source_classes", "source_n", "parent", "at_step"):
            if d[k] is None:
                d.pop(k)
            elif k == "source_classes":
                d[k] = list(d[k])
        return d


_CNN = {"channels": (8, 16), "dense": 64}
_RES = {"stages": (8, 16, 32)}

#: the first zoo (docs/zoo.md, "The first zoo"): all eight methods on one CNN (as the paper's zoo is all
#: ResNet-50s), plus a cheap ResNet and an MLP pretrained two ways each (three families, D = 64/32/128)
V1_MEMBERS: tuple[MemberSpec, ...] = (
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

    Attributes:
      steps: pretraining steps per member (a member's own ``steps`` wins).
      batch_size: pretraining batch size.
      lr: pretraining learning rate.
      checkpoint_every: pretraining steps between checkpoints (and per compiled call).
      source_n: pretraining images (the first of the source split).
      heldout: held-out source images (the last of the source split).
      probe_train: the linear probe's training images (the first of the source split).
      sanity_bar: the probe accuracy a member must reach to pass the sanity check.
      params_format: how parameters are stored: ``"orbax"`` or ``"npz"``.
      tasks: the ground-truth tasks (``pedjax tasks``).
      ft_steps: fine-tuning steps per run.
      ft_batch_size: fine-tuning batch size.
      ft_seeds: fine-tuning seeds (the ground truth averages over them; at least one).
      ft_checkpoint_every: fine-tuning steps per compiled call (and between checkpoints).
      ft_eval_batch_size: test images per evaluation call.
      ft_checkpoints: orbax checkpoints inside a fine-tuning run
        (``FinetuneConfig.checkpoints``); the v2 units are short, so they go without (a killed
        unit restarts; docs/zoo.md, "Ground truth, unit by unit").
      ft_clip_norm: gradient clipping of the fine-tuning (``FinetuneConfig.clip_norm``), or
        ``None``; the v2 truth uses 1.0.
      ft_lrs: the fine-tuning learning rates; ``None``: the paper's grid.
      ft_wds: the fine-tuning weight decays; ``None``: the paper's grid.
      truth_units: build the ground truth unit by unit, one (member, task, seed) per file under
        ``zoo/truth_units/`` (committable, skipped on restart), aggregated into
        ``ground_truth.json`` (v2).

    Raises:
      ValueError: a size that is not a positive integer, ``source_n + heldout`` over the source
        split, ``probe_train > source_n``, an unknown ``params_format``, ``sanity_bar`` outside
        [0, 1], or no ``ft_seeds``.
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
    tasks: tuple[str, ...] = V1_TASKS
    ft_steps: int = 100
    ft_batch_size: int = 32
    ft_seeds: tuple[int, ...] = (0, 1)
    ft_checkpoint_every: int = 50
    ft_eval_batch_size: int = 50
    ft_checkpoints: bool = True
    ft_clip_norm: float | None = None
    ft_lrs: tuple[float, ...] | None = None
    ft_wds: tuple[float, ...] | None = None
    truth_units: bool = False

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
        """The :class:`~pedjax.models.finetune.FinetuneConfig` of the ground truth's runs."""
        from ..models.finetune import FinetuneConfig

        grid = {}
        if self.ft_lrs is not None:
            grid["lrs"] = tuple(self.ft_lrs)
        if self.ft_wds is not None:
            grid["wds"] = tuple(self.ft_wds)
        return FinetuneConfig(
            steps=self.ft_steps, batch_size=self.ft_batch_size, seeds=self.ft_seeds,
            checkpoint_every=self.ft_checkpoint_every, eval_batch_size=self.ft_eval_batch_size,
            checkpoints=self.ft_checkpoints, clip_norm=self.ft_clip_norm, **grid,
        )

    def pretrain_config(self, spec: MemberSpec):
        """The :class:`~pedjax.models.pretrain.PretrainConfig` of ``spec`` (its own steps, batch
        size and lr where set, else this config's)."""
        from ..models.pretrain import PretrainConfig

        return PretrainConfig(
            steps=spec.steps if spec.steps is not None else self.steps,
            batch_size=spec.batch_size if spec.batch_size is not None else self.batch_size,
            lr=spec.lr if spec.lr is not None else self.lr,
            seed=spec.seed, checkpoint_every=self.checkpoint_every,
        )

    def ranges(self) -> dict:
        """``{"pretrain", "probe_train", "heldout": [start, stop)}`` index ranges into
        Fashion-MNIST's official train set."""
        from ..data import SOURCE_RANGE

        lo, hi = SOURCE_RANGE
        return {
            "pretrain": [lo, lo + self.source_n],
            "probe_train": [lo, lo + self.probe_train],
            "heldout": [hi - self.heldout, hi],
        }


#: the first zoo's build (the field defaults)
V1_CONFIG = BuildConfig()

#: the first zoo's CI chain: seconds, not hours
TINY_CONFIG = BuildConfig(
    steps=8, batch_size=32, checkpoint_every=4, source_n=1000, heldout=300, probe_train=300, sanity_bar=0.3,
    params_format="orbax", tasks=("digits-5",), ft_steps=6, ft_batch_size=16, ft_seeds=(0, 1),
    ft_checkpoint_every=3, ft_eval_batch_size=135,
)


# ------------------------------------------------------------------------------------------------
# Benchmark v2 (docs/zoo.md, "The v2 zoo"): a zoo whose members differ in real quality — family,
# width, objective, amount of pretraining, pretraining data — and 11 tasks that each exercise one
# property. The shipped zoo (DEFAULT_ZOO) is built from it.

#: the v2 ground-truth tasks (``pedjax tasks``), one property each
V2_TASKS = (
    "fashion-rotated",   # rotation
    "fashion-inverted",  # inversion
    "fashion-blur",      # blur
    "fashion-noisy",     # additive noise
    "fashion-occluded",  # occlusion
    "fashion-lowdata",   # low data (50 per class)
    "fashion-fewshot",   # few shots (10 per class)
    "fashion-coarse",    # coarse labels
    "fashion-tops",      # a class subset (the 4 upper-body classes, the hard ones)
    "digits-10",         # another dataset
    "digits-degraded",   # another dataset, degraded
)

_CNNS = {"channels": (4, 8), "dense": 32}
_MLPN = {"hidden": (128, 64)}
_VIT = {"dim": 32, "depth": 2, "heads": 4, "patch": 7}
_VITW = {"dim": 64, "depth": 2, "heads": 4, "patch": 7}
#: the classes a "class-subset source" member sees: footwear and bags only (no upper-body garment)
V2_SUBSET_CLASSES = (5, 7, 8, 9)

#: the v2 zoo: 27 members, 4 families (CNN at two widths, strided ResNet, MLP at two widths, ViT at
#: two widths), all 8 objectives on the narrow CNN, three checkpoints of one run (pretraining
#: amount), a class-subset and a low-data source, and a random initialisation in every family
V2_MEMBERS: tuple[MemberSpec, ...] = (
    # all eight objectives on the narrow CNN: the v1 zoo's eight CNN members, the same specs
    *V1_MEMBERS[:8],
    # pretraining amount: checkpoints of the two runs above (no extra pretraining)
    MemberSpec("cnn-supervised@100", "cnn", "supervised", _CNN, seed=0, parent="cnn-supervised", at_step=100),
    MemberSpec("cnn-supervised@300", "cnn", "supervised", _CNN, seed=0, parent="cnn-supervised", at_step=300),
    MemberSpec("cnn-simclr@200", "cnn", "simclr", _CNN, seed=1, parent="cnn-simclr", at_step=200),
    # what it was pretrained on: a class subset, a low-data source
    MemberSpec("cnn-supervised-shoesbags", "cnn", "supervised", _CNN, seed=12, source_classes=V2_SUBSET_CLASSES),
    MemberSpec("cnn-simclr-1k", "cnn", "simclr", _CNN, seed=13, source_n=1000),
    # width: the slim CNN (half the channels; a wider one costs 4-5x the fine-tuning time)
    MemberSpec("cnns-supervised", "cnn", "supervised", _CNNS, seed=14),
    MemberSpec("cnns-simclr", "cnn", "simclr", _CNNS, seed=15),
    MemberSpec("cnns-random", "cnn", "random", _CNNS, seed=16),
    # ResNet family
    MemberSpec("resnet-supervised", "resnet-s2", "supervised", _RES, seed=17),
    MemberSpec("resnet-simclr", "resnet-s2", "simclr", _RES, seed=18),
    MemberSpec("resnet-random", "resnet-s2", "random", _RES, seed=19),
    # MLP family at two widths
    MemberSpec("mlp-supervised", "mlp", "supervised", {}, seed=20),
    MemberSpec("mlp-dae", "mlp", "dae", {}, seed=21),
    MemberSpec("mlp-random", "mlp", "random", {}, seed=22),
    MemberSpec("mlpn-simclr", "mlp", "simclr", _MLPN, seed=23),
    # attention family (ViT) at two widths
    MemberSpec("vit-supervised", "vit", "supervised", _VIT, seed=24),
    MemberSpec("vit-simclr", "vit", "simclr", _VIT, seed=25),
    MemberSpec("vit-random", "vit", "random", _VIT, seed=26),
    MemberSpec("vitw-supervised", "vit", "supervised", _VITW, seed=27),
)

#: how the v2 zoo is built, pretraining + ground-truth fine-tuning within a 4-hour budget of the
#: 2-core machine: 400 fine-tuning steps, 3 learning rates × one weight decay, 3 seeds, gradients
#: clipped to global norm 1.0, unit by unit. Why each choice (length, grid, clipping), with the
#: measurements: docs/zoo.md, "Ground truth, unit by unit", "Gradient clipping" and "Cost of the build".
V2_CONFIG = BuildConfig(
    steps=1000, batch_size=128, checkpoint_every=100, tasks=V2_TASKS,
    ft_steps=400, ft_batch_size=32, ft_seeds=(0, 1, 2), ft_checkpoint_every=100, ft_eval_batch_size=500,
    ft_lrs=(0.1, 0.03, 0.01), ft_wds=(1e-4,), truth_units=True, ft_checkpoints=False, ft_clip_norm=1.0,
)

#: the v2 chain's tiny zoo (tests/test_zoo_v2.py): a pretraining-amount checkpoint, a class-subset
#: source, a tiny ViT and a random init, in seconds
TINY_V2_MEMBERS: tuple[MemberSpec, ...] = (
    MemberSpec("t-cnn-sup", "cnn", "supervised", {"channels": (4, 8), "dense": 16}, seed=0),
    MemberSpec("t-cnn-sup@4", "cnn", "supervised", {"channels": (4, 8), "dense": 16}, seed=0, parent="t-cnn-sup", at_step=4),
    MemberSpec("t-mlp-sub", "mlp", "supervised", {"hidden": (32,)}, seed=1, source_classes=(0, 1, 2)),
    MemberSpec("t-vit-random", "vit", "random", {"dim": 16, "depth": 1, "heads": 2, "patch": 7}, seed=2),
)
TINY_V2_CONFIG = BuildConfig(
    steps=8, batch_size=32, checkpoint_every=4, source_n=1000, heldout=300, probe_train=300, sanity_bar=0.0,
    params_format="npz", tasks=("digits-5", "digits-degraded"), ft_steps=4, ft_batch_size=16, ft_seeds=(0, 1),
    ft_checkpoint_every=2, ft_eval_batch_size=200, ft_lrs=(0.1, 0.03, 0.01), ft_wds=(1e-4,), truth_units=True,
    ft_checkpoints=False, ft_clip_norm=1.0,
)


# ------------------------------------------------------------------------------------------------
# Benchmark v3 (issue 23; docs/zoo.md "Benchmark v3"): target domains the zoo never saw, built into
# the shipped zoo's folder unit by unit with the same 27 members and the same ground-truth protocol.

#: the new tasks (``pedjax tasks``; docs/data.md "Glyph and emoji tasks"): domains "glyphs" and "emoji"
V3_NEW_TASKS = (
    "glyphs-letters",   # notMNIST-style letters A-J, test fonts unseen
    "glyphs-digits",    # typeset digits
    "glyphs-greek",     # another alphabet
    "glyphs-cyrillic",  # another alphabet
    "glyphs-case",      # coarse labels: lower vs upper case
    "glyphs-weight",    # a style property: regular vs bold
    "glyphs-fewshot",   # few shots (10 per class)
    "glyphs-script",    # which alphabet: Latin, Greek, Cyrillic
    "emoji-groups",     # Unicode's 8 emoji groups, test emoji unseen
    "emoji-shift",      # colour emoji -> black-and-white outlines
    "fashion-permuted",  # pixels permuted: no spatial structure (the zoo's own domain)
    "glyphs-permuted",   # typeset digits, pixels permuted
)
V3_TASKS = V2_TASKS + V3_NEW_TASKS
#: the same members: no re-pretraining (their fingerprints, and so the shipped files, are v2's)
V3_MEMBERS = V2_MEMBERS
#: v2's protocol (3 learning rates, 400 steps, 3 seeds, clipped) on the v3 tasks
V3_CONFIG = dataclasses.replace(V2_CONFIG, tasks=V3_TASKS)
