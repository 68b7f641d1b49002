"""The model zoo: self-supervised (and baseline) Flax backbones pretrained on Fashion-MNIST's source split.

A zoo is a folder (see docs/zoo.md)::

    manifest.json                       what every member is (architecture, method, feature
                                        dimension, files, pretraining record, linear-probe sanity
                                        bar, fingerprint); rewritten atomically after each member
    members/<name>-<fp8>/params/        the backbone parameters (orbax checkpoint; or params.npz)
    members/<name>-<fp8>/stats.npz      source statistics (feature mean/std on the held-out source
                                        set, float64) and the linear probe (W [D, 10], b [10])
    ground_truth.json                   fine-tuning ground truth {task: {member: score}} + provenance

:func:`load_zoo` reads it (the shipped zoo in ``pedjax/assets/zoo`` by default) and
:func:`extract_features` computes every member's features on a task, with the source statistics
PED needs and the probe's source-class probabilities LEEP/NCE need. :func:`build` makes a zoo
and its ground truth — resumable at every level: a finished member or (member, task) pair is
skipped, a running pretraining or fine-tuning resumes from its last orbax checkpoint.

``pedjax zoo build|list`` and ``pedjax pretrain`` are the command line.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from . import nets
from ._validate import load_json

FORMAT = "pedjax-zoo"
TRUTH_FORMAT = "pedjax-zoo-truth"
VERSION = 1
MANIFEST = "manifest.json"
TRUTH_FILE = "ground_truth.json"
DEFAULT_ZOO = Path(__file__).resolve().parent / "assets" / "zoo"
DEFAULT_WORK = Path("runs") / "zoo-build"
TINY_WORK = Path("runs") / "zoo-tiny"
PARAM_FORMATS = ("orbax", "npz")

#: architectures a zoo member may name: :data:`pedjax.nets.ARCHITECTURES` plus the cheap ResNet
ARCHITECTURES = {**nets.ARCHITECTURES, "resnet-s2": nets.StridedResNet}

#: the ground-truth tasks of the shipped zoo (see ``pedjax tasks``)
DEFAULT_TASKS = ("digits-10", "fashion-lowdata", "fashion-coarse", "fashion-rotated", "fashion-inverted")


def create_module(arch: str, arch_kwargs: Mapping[str, Any] | None = None):
    """The backbone module of a member (JSON lists in ``arch_kwargs`` become tuples)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch: unknown architecture {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in (arch_kwargs or {}).items()}
    return ARCHITECTURES[arch](**kw)


# ------------------------------------------------------------------------------------ spec


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
        from .data import SOURCE_RANGE

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
        from .finetune import FinetuneConfig

        return FinetuneConfig(
            steps=self.ft_steps, batch_size=self.ft_batch_size, seeds=self.ft_seeds,
            checkpoint_every=self.ft_checkpoint_every, eval_batch_size=self.ft_eval_batch_size,
        )

    def pretrain_config(self, spec: MemberSpec):
        from .pretrain import PretrainConfig

        return PretrainConfig(
            steps=spec.steps if spec.steps is not None else self.steps,
            batch_size=spec.batch_size if spec.batch_size is not None else self.batch_size,
            lr=spec.lr if spec.lr is not None else self.lr,
            seed=spec.seed, checkpoint_every=self.checkpoint_every,
        )

    def ranges(self) -> dict:
        from .data import SOURCE_RANGE

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


# ------------------------------------------------------------------------------- container


@dataclass(frozen=True, eq=False)
class ZooMember:
    """One loaded member: its backbone, parameters, source statistics and source-class probe."""

    name: str
    arch: str
    arch_kwargs: dict
    method: str
    feature_dim: int
    input_shape: tuple[int, ...]
    params: Any
    source_mean: np.ndarray
    source_std: np.ndarray
    probe_W: np.ndarray
    probe_b: np.ndarray
    entry: dict

    @property
    def module(self):
        return create_module(self.arch, self.arch_kwargs)

    def features(self, x, batch_size: int = 500) -> np.ndarray:
        """Features ``[N, D]`` (float32) of images ``x`` [N, H, W, C]."""
        from .pretrain import feature_fn

        return feature_fn(self.module)(self.params, x, batch_size)

    def source_probs(self, features) -> np.ndarray:
        """The linear probe's source-class (Fashion-MNIST) probabilities ``[N, 10]`` of features."""
        logits = np.asarray(features, np.float64) @ self.probe_W + self.probe_b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


@dataclass(frozen=True, eq=False)
class Zoo:
    """A loaded zoo: ``members`` in manifest order; index by name or position."""

    path: Path
    manifest: dict
    members: tuple[ZooMember, ...]

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self):
        return iter(self.members)

    def __getitem__(self, key: str | int) -> ZooMember:
        if isinstance(key, int):
            return self.members[key]
        for m in self.members:
            if m.name == key:
                return m
        raise KeyError(f"member: no member {key!r} in the zoo at {self.path}; members: {self.names}")

    def source_stats(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{name: (mean [D], std [D])}``: the ``source_stats`` argument of :func:`pedjax.score_zoo`."""
        return {m.name: (m.source_mean, m.source_std) for m in self.members}

    def truth(self) -> dict | None:
        """The ground-truth table (``ground_truth.json``) if the zoo has one."""
        p = self.path / TRUTH_FILE
        return json.loads(p.read_text()) if p.is_file() else None

    def task_truth(self, task: str, arg: str = "task") -> dict[str, float]:
        """``{member: fine-tuned score}`` on ``task`` from the ground-truth table, for every member;
        a missing table, task or member raises an error naming ``arg``."""
        table = self.truth()
        if table is None:
            raise FileNotFoundError(f"{arg}: {self.path} has no {TRUTH_FILE}; build it with `pedjax zoo build --zoo {self.path}`")
        if task not in table["datasets"]:
            raise ValueError(f"{arg}: the zoo's ground truth has no task {task!r}; it has {list(table['datasets'])}")
        gt = table["datasets"][task]
        missing = [m for m in self.names if m not in gt]
        if missing:
            raise ValueError(f"{arg}: the ground truth of {task!r} lacks member(s) {missing}; finish `pedjax zoo build`")
        return {m: float(gt[m]) for m in self.names}


@dataclass(frozen=True, eq=False)
class ZooFeatures:
    """Every member's features on one split of a task (what :func:`extract_features` returns).

    Attributes:
      features: ``{member: float32 [N, D_m]}``.
      labels: int32 ``[N]`` target labels.
      source_stats: ``{member: (mean, std)}`` for PED.
      source_probs: ``{member: [N, 10]}`` source-class probabilities of each member's probe (LEEP).
      seconds: wall time of the extraction.
    """

    task: str
    split: str
    features: dict[str, np.ndarray]
    labels: np.ndarray
    source_stats: dict[str, tuple[np.ndarray, np.ndarray]]
    source_probs: dict[str, np.ndarray]
    seconds: float

    def with_ped(self, ped=None, **kwargs) -> "ZooFeatures":
        """These features moved by PED (:func:`pedjax.ped_zoo` with ``source_stats``), the rest
        unchanged: score many metrics + PED while running PED once."""
        from .zoo import ped_zoo

        t0 = time.time()
        moved = ped_zoo(self.features, self.labels, ped, self.source_stats, **kwargs)
        return dataclasses.replace(self, features=moved, seconds=self.seconds + time.time() - t0)

    def score(self, metric: str = "logme", ped=None, **kwargs) -> dict[str, float]:
        """``pedjax.score_zoo`` on these features: probability metrics (LEEP) get ``source_probs``,
        label metrics (NCE) the probes' hard predictions; PED uses ``source_stats``."""
        from .metrics import REGISTRY
        from .zoo import score_zoo

        if metric not in REGISTRY:
            raise ValueError(f"metric: unknown metric {metric!r}; choose one of {sorted(REGISTRY)}")
        kind = REGISTRY[metric].input
        if kind == "probs":
            inputs = self.source_probs
        elif kind == "labels":
            inputs = {k: np.argmax(v, axis=1) for k, v in self.source_probs.items()}
        else:
            inputs = self.features
        return score_zoo(inputs, self.labels, metric=metric, ped=ped, source_stats=self.source_stats if ped is not None else None, **kwargs)


def _restore_params(path: Path, fmt: str):
    if fmt == "orbax":
        import orbax.checkpoint as ocp

        tree = ocp.StandardCheckpointer().restore(path.resolve())
        return _to_numpy(tree)
    if fmt == "npz":
        with np.load(path, allow_pickle=False) as z:
            return _unflatten({k: z[k] for k in z.files})
    raise ValueError(f"manifest: unknown params format {fmt!r}; known: {list(PARAM_FORMATS)}")


def _to_numpy(tree):
    if isinstance(tree, Mapping):
        return {str(k): _to_numpy(v) for k, v in tree.items()}
    return np.asarray(tree, dtype=np.float32)


def _flatten(tree, prefix: str = "") -> dict[str, np.ndarray]:
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "/"))
        else:
            out[key] = np.asarray(v, np.float32)
    return out


def _unflatten(flat: Mapping[str, np.ndarray]) -> dict:
    tree: dict = {}
    for key, v in flat.items():
        node = tree
        parts = key.split("/")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = np.asarray(v, np.float32)
    return tree


def params_sha1(params) -> str:
    """SHA-1 over a parameter tree's leaves (keys sorted), independent of the storage format."""
    h = hashlib.sha1()
    for k, v in sorted(_flatten(params).items()):
        h.update(k.encode())
        h.update(str(v.shape).encode())
        h.update(np.ascontiguousarray(v, np.float32).tobytes())
    return h.hexdigest()


def read_manifest(path: str | os.PathLike) -> dict:
    """The manifest of the zoo folder ``path`` (validated: format, version, member fields)."""
    p = Path(path) / MANIFEST
    m = load_json(p, "zoo", f"no {MANIFEST} in {path}; build a zoo with `pedjax zoo build --zoo {path}` "
                  "(or `python experiments/build_zoo.py`)")
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ValueError(f"zoo: {p} is not a pedjax zoo manifest (format != {FORMAT!r})")
    if int(m.get("version", -1)) > VERSION:
        raise ValueError(f"zoo: {p} has version {m.get('version')}, newer than this pedjax reads ({VERSION})")
    members = m.get("members")
    if not isinstance(members, list):
        raise ValueError(f"zoo: {p} has no member list")
    need = ("name", "arch", "method", "feature_dim", "input_shape", "params", "stats")
    for i, e in enumerate(members):
        missing = [k for k in need if k not in e]
        if missing:
            raise ValueError(f"zoo: member {i} of {p} lacks {missing}")
    return m


def load_zoo(path: str | os.PathLike | None = None, members: Iterable[str] | None = None, *, verify: bool = False) -> Zoo:
    """Load a zoo folder (default: the shipped zoo, ``pedjax/assets/zoo``).

    Args:
      members: load only these members (in this order); default all, in manifest order.
      verify: recompute each member's parameter SHA-1 and compare with the manifest.
    """
    root = Path(path) if path is not None else DEFAULT_ZOO
    manifest = read_manifest(root)
    entries = {e["name"]: e for e in manifest["members"]}
    order = list(entries) if members is None else list(members)
    unknown = [n for n in order if n not in entries]
    if unknown:
        raise ValueError(f"members: not in the zoo at {root}: {unknown}; members: {list(entries)}")
    if not order:
        raise ValueError(f"zoo: the zoo at {root} has no members")
    loaded = []
    for name in order:
        e = entries[name]
        pinfo = e["params"]
        params = _restore_params(root / pinfo["path"], pinfo["format"])
        if verify and params_sha1(params) != pinfo.get("sha1"):
            raise ValueError(f"zoo: member {name!r}: parameters differ from the manifest's SHA-1 (corrupt or edited files)")
        with np.load(root / e["stats"]["path"], allow_pickle=False) as z:
            mean, std, W, b = (np.asarray(z[k], np.float64) for k in ("source_mean", "source_std", "probe_W", "probe_b"))
        if mean.shape != (e["feature_dim"],) or std.shape != mean.shape:
            raise ValueError(f"zoo: member {name!r}: source statistics have shape {mean.shape}, feature_dim is {e['feature_dim']}")
        loaded.append(ZooMember(
            name=name, arch=e["arch"], arch_kwargs=dict(e.get("arch_kwargs", {})), method=e["method"],
            feature_dim=int(e["feature_dim"]), input_shape=tuple(e["input_shape"]), params=params,
            source_mean=mean, source_std=std, probe_W=W, probe_b=b, entry=e,
        ))
    return Zoo(root, manifest, tuple(loaded))


def extract_features(zoo: Zoo | str | os.PathLike | None, task, split: str = "train", *, batch_size: int = 500,
                     fashion_root=None, data_dir=None, workers: int = 2) -> ZooFeatures:
    """Every member's features on ``split`` (``"train"`` or ``"test"``) of ``task``.

    ``task`` is a task name (``pedjax tasks``, ``tfds:NAME``, ``folder:PATH``) or a
    :class:`pedjax.data.TaskData`; ``zoo`` a :class:`Zoo` or a zoo folder (``None``: the shipped
    zoo). One compiled forward pass per architecture (members sharing an architecture reuse it);
    the architectures compile on ``workers`` background threads while the main thread computes
    (compiling only: concurrent executions on the CPU backend can deadlock).
    """
    from concurrent.futures import ThreadPoolExecutor

    from .data import TaskData, load_task
    from .pretrain import compile_features

    t0 = time.time()
    if not isinstance(zoo, Zoo):
        zoo = load_zoo(zoo)
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
    return ZooFeatures(data.name, split, feats, np.asarray(y, np.int32), zoo.source_stats(), probs, time.time() - t0)


# ----------------------------------------------------------------------------------- writing


def _atomic_json(path: Path, obj) -> None:
    from .finetune import _atomic_write_json, _jsonable

    _atomic_write_json(path, _jsonable(obj))


def _new_manifest(config: BuildConfig) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "description": "pedjax model zoo: Flax backbones pretrained on the Fashion-MNIST source split (docs/zoo.md)",
        "source": {
            "dataset": "fashion-mnist", "split": "train[0:50000] (pedjax.data.load_source)",
            "ranges": config.ranges(),
            "heldout_use": "source statistics (feature mean/std, ddof 0) for PED; linear-probe test set",
        },
        "members": [],
    }


def _save_params(dest: Path, params, fmt: str) -> dict:
    """Write params under the member folder ``dest``; returns the manifest's ``params`` entry (path relative to dest)."""
    if fmt == "orbax":
        import orbax.checkpoint as ocp

        target = dest / "params"
        ck = ocp.StandardCheckpointer()
        ck.save(target.resolve(), _to_numpy(params), force=True)
        ck.wait_until_finished()
        ck.close()
        return {"format": "orbax", "name": "params"}
    flat = _flatten(params)
    fd, tmp = tempfile.mkstemp(dir=dest, prefix=".params.", suffix=".npz")
    os.close(fd)
    np.savez(tmp, **flat)
    os.replace(tmp, dest / "params.npz")
    return {"format": "npz", "name": "params.npz"}


def add_member(zoo_dir: str | os.PathLike, spec: MemberSpec, params, *, source_mean, source_std, probe: Mapping,
               record: Mapping, fingerprint: str, params_format: str = "orbax", config: BuildConfig | None = None) -> dict:
    """Write one member's files into ``zoo_dir`` and put it in the manifest (atomically); returns its entry.

    ``params`` is the backbone tree; ``probe`` holds ``W`` [D, K], ``b`` [K], ``accuracy``;
    ``record`` is stored as the member's ``pretrain`` record. A member of the same name is replaced
    (in place in the member order); its old files are removed after the manifest is written.
    """
    root = Path(zoo_dir)
    root.mkdir(parents=True, exist_ok=True)
    mpath = root / MANIFEST
    manifest = read_manifest(root) if mpath.is_file() else _new_manifest(config or BuildConfig())
    module = create_module(spec.arch, spec.arch_kwargs)
    nets.check_params(module, params)
    # a fresh folder every time: files the manifest references are never overwritten
    base = f"{spec.name}-{fingerprint[:8]}"
    rel = Path("members") / base
    n = 1
    while (root / rel).exists():
        rel = Path("members") / f"{base}-{n}"
        n += 1
    dest = root / rel
    dest.mkdir(parents=True)
    pentry = _save_params(dest, params, params_format)
    D = int(np.asarray(source_mean).shape[0])
    tmp = dest / ".stats.tmp.npz"
    np.savez(tmp, source_mean=np.asarray(source_mean, np.float64), source_std=np.asarray(source_std, np.float64),
             probe_W=np.asarray(probe["W"], np.float64), probe_b=np.asarray(probe["b"], np.float64))
    os.replace(tmp, dest / "stats.npz")
    entry = {
        "name": spec.name,
        "arch": spec.arch,
        "arch_kwargs": spec.as_dict()["arch_kwargs"],
        "method": spec.method,
        "method_kwargs": dict(spec.method_kwargs),
        "feature_dim": D,
        "input_shape": [28, 28, 1],
        "n_params": nets.count_params(params),
        "params": {"format": pentry["format"], "path": str(rel / pentry["name"]), "sha1": params_sha1(params)},
        "stats": {"path": str(rel / "stats.npz"), "source_set": "held-out source split", "ddof": 0},
        "linear_probe": {k: v for k, v in probe.items() if k not in ("W", "b", "classes")},
        "pretrain": dict(record),
        "fingerprint": fingerprint,
    }
    old = None
    members = manifest["members"]
    for i, e in enumerate(members):
        if e["name"] == spec.name:
            old = e
            members[i] = entry
            break
    else:
        members.append(entry)
    manifest["updated"] = _now()
    _atomic_json(mpath, manifest)
    if old is not None:
        old_dir = root / Path(old["params"]["path"]).parts[0] / Path(old["params"]["path"]).parts[1]
        if old_dir.resolve() != dest.resolve():
            shutil.rmtree(old_dir, ignore_errors=True)
    return entry


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------------- building


def _log(msg: str, verbose: bool) -> None:
    if verbose:
        print(msg, flush=True)


def member_fingerprint(spec: MemberSpec, config: BuildConfig, source_sha1: str) -> str:
    from . import ssl as ssl_mod

    objective = ssl_mod.get_objective(spec.method, **dict(spec.method_kwargs))
    return hashlib.sha1(json.dumps({
        "spec": spec.as_dict(), "objective": objective.describe(),
        "pretrain": config.pretrain_config(spec).training_dict(), "ranges": config.ranges(),
        "source": source_sha1, "probe": "sklearn LogisticRegression C=1 on standardised features",
    }, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True, eq=False)
class SourceData:
    """The source-split arrays a build uses (see :class:`BuildConfig`)."""

    x_pretrain: np.ndarray
    y_pretrain: np.ndarray
    x_heldout: np.ndarray
    y_heldout: np.ndarray
    probe_train: int
    ranges: dict
    sha1: str

    @classmethod
    def load(cls, config: BuildConfig, fashion_root=None) -> "SourceData":
        from .data import SOURCE_RANGE, load_source
        from .finetune import _sha1_arrays

        x, y = load_source(fashion_root)
        r = config.ranges()
        pre = slice(r["pretrain"][0] - SOURCE_RANGE[0], r["pretrain"][1] - SOURCE_RANGE[0])
        held = slice(r["heldout"][0] - SOURCE_RANGE[0], r["heldout"][1] - SOURCE_RANGE[0])
        xp, yp, xh, yh = x[pre], y[pre], x[held], y[held]
        return cls(xp, yp, xh, yh, config.probe_train, r, _sha1_arrays(xp, yp, xh, yh))


def pretrain_member(spec: MemberSpec, config: BuildConfig, run_dir, source: SourceData, *, progress: bool = True) -> dict:
    """Pretrain one member (resumable in ``run_dir``), then its source statistics and linear probe.

    Returns ``{"params", "source_mean", "source_std", "probe", "record", "passed"}`` — what
    :func:`add_member` stores.
    """
    from . import pretrain as pt
    from . import ssl as ssl_mod

    t0 = time.time()
    module = create_module(spec.arch, spec.arch_kwargs)
    objective = ssl_mod.get_objective(spec.method, **dict(spec.method_kwargs))
    res = pt.pretrain(module, objective, source.x_pretrain, source.y_pretrain, run_dir,
                      config=config.pretrain_config(spec), name=spec.name, progress=progress)
    bb = res.params["backbone"]
    feat = pt.feature_fn(module)
    F_held = feat(bb, source.x_heldout).astype(np.float64)
    n = source.probe_train
    probe = pt.linear_probe(feat(bb, source.x_pretrain[:n]), source.y_pretrain[:n], F_held, source.y_heldout)
    passed = bool(probe["accuracy"] >= config.sanity_bar and not res.info.get("diverged"))
    r = source.ranges
    probe_rec = {
        "accuracy": round(float(probe["accuracy"]), 5), "train_accuracy": round(float(probe["train_accuracy"]), 5),
        "chance": 0.1, "bar": config.sanity_bar, "passed": passed,
        "train_set": f"fashion-mnist train[{r['probe_train'][0]}:{r['probe_train'][1]}]",
        "test_set": f"fashion-mnist train[{r['heldout'][0]}:{r['heldout'][1]}] (held out of pretraining)",
        "W": probe["W"], "b": probe["b"],
    }
    info = dict(res.info)
    record = {k: info.get(k) for k in ("config", "objective", "loss_curve", "final_loss", "diverged", "wall_seconds", "fingerprint", "n_images", "backend")}
    record["wall_seconds_member"] = round(time.time() - t0, 2)
    return {"params": bb, "source_mean": F_held.mean(axis=0), "source_std": F_held.std(axis=0), "probe": probe_rec,
            "record": record, "passed": passed}


def build_members(zoo_dir, work_dir=None, members: Sequence[MemberSpec] = DEFAULT_MEMBERS, config: BuildConfig = BuildConfig(),
                  *, progress: bool = True, verbose: bool = True, fashion_root=None, on_member=None) -> dict:
    """Pretrain every member that the zoo at ``zoo_dir`` lacks (or holds with another fingerprint).

    Each member: pretrain (resumable, under ``work_dir/pretrain/<name>``), source statistics and
    linear probe on the held-out source set, write its files, update the manifest atomically.
    Returns ``{"built": [...], "skipped": [...], "below_bar": [...], "wall_seconds"}``.
    """
    names = [s.name for s in members]
    if len(set(names)) != len(names):
        raise ValueError(f"members: duplicate names in {names}")
    zoo_dir = Path(zoo_dir)
    work = Path(work_dir) if work_dir is not None else DEFAULT_WORK
    source = SourceData.load(config, fashion_root)
    existing = {}
    if (zoo_dir / MANIFEST).is_file():
        existing = {e["name"]: e for e in read_manifest(zoo_dir)["members"]}
    report = {"built": [], "skipped": [], "below_bar": []}
    t_all = time.time()
    for i, spec in enumerate(members, 1):
        fp = member_fingerprint(spec, config, source.sha1)
        e = existing.get(spec.name)
        if e is not None and e.get("fingerprint") == fp and (zoo_dir / e["params"]["path"]).exists():
            report["skipped"].append(spec.name)
            if not e["linear_probe"].get("passed", True):
                report["below_bar"].append(spec.name)
            _log(f"[{i}/{len(members)}] {spec.name}: in the zoo (fingerprint {fp[:8]}), skipped", verbose)
            continue
        t0 = time.time()
        out = pretrain_member(spec, config, work / "pretrain" / spec.name, source, progress=progress)
        add_member(zoo_dir, spec, out["params"], source_mean=out["source_mean"], source_std=out["source_std"],
                   probe=out["probe"], record=out["record"], fingerprint=fp, params_format=config.params_format, config=config)
        report["built"].append(spec.name)
        if not out["passed"]:
            report["below_bar"].append(spec.name)
        flag = "ok" if out["passed"] else f"BELOW THE SANITY BAR {config.sanity_bar}"
        _log(f"[{i}/{len(members)}] {spec.name}: linear probe {out['probe']['accuracy']:.3f} on the held-out source set "
             f"(chance 0.1; {flag}); final loss {out['record'].get('final_loss')}; {time.time() - t0:.0f} s", verbose)
        if on_member is not None:
            on_member(spec.name)
    report["wall_seconds"] = round(time.time() - t_all, 2)
    return report


def _truth_key(member_entry: dict, task: str, ft_config) -> str:
    return hashlib.sha1(json.dumps({
        "params": member_entry["params"]["sha1"], "arch": member_entry["arch"], "arch_kwargs": member_entry.get("arch_kwargs", {}),
        "task": task, "config": ft_config.training_dict(), "seeds": list(ft_config.seeds),
    }, sort_keys=True).encode()).hexdigest()


def _new_truth(config: BuildConfig) -> dict:
    from .finetune import GRID_LRS, GRID_WDS

    ftc = config.finetune_config()
    return {
        "format": TRUTH_FORMAT,
        "version": VERSION,
        "metric": ftc.metric,
        "score_definition": f"best-of-grid test {ftc.metric} per seed, averaged over seeds (pedjax.finetune)",
        "datasets": {},
        "std": {},
        "runs": {},
        "provenance": {
            "finetune": {**ftc.training_dict(), "seeds": list(ftc.seeds), "grid": {"lr": list(GRID_LRS), "wd": list(GRID_WDS)}},
        },
    }


def build_truth(zoo_dir, work_dir=None, config: BuildConfig = BuildConfig(), *, tasks: Sequence[str] | None = None,
                members: Sequence[str] | None = None, progress: bool = True, verbose: bool = True, fashion_root=None,
                on_pair=None) -> dict:
    """Fine-tune every (member, task) pair the ground-truth table lacks; update it atomically after each.

    Task-major order, so members sharing an architecture reuse one compiled trainer per task.
    Each sweep resumes through :func:`pedjax.finetune.finetune` (``work_dir/truth/<member>/<task>``).
    Returns the table (also written to ``zoo_dir/ground_truth.json``).
    """
    from . import finetune as ft
    from .finetune import git_commit

    zoo = load_zoo(zoo_dir, members)
    ftc = config.finetune_config()
    tasks = tuple(tasks) if tasks is not None else config.tasks
    work = Path(work_dir) if work_dir is not None else DEFAULT_WORK
    path = Path(zoo_dir) / TRUTH_FILE
    table = json.loads(path.read_text()) if path.is_file() else _new_truth(config)
    if table.get("format") != TRUTH_FORMAT:
        raise ValueError(f"zoo: {path} is not a pedjax ground-truth table")
    if table["provenance"].get("finetune", {}).get("steps") not in (None, ftc.steps):
        _log(f"note: {path} was made with other fine-tuning settings; pairs are recomputed as needed", verbose)
    table["provenance"]["finetune"] = _new_truth(config)["provenance"]["finetune"]
    pairs = [(t, m) for t in tasks for m in zoo]
    t_all = time.time()
    done_now = 0
    for i, (task, m) in enumerate(pairs, 1):
        key = _truth_key(m.entry, task, ftc)
        run = table["runs"].get(task, {}).get(m.name)
        if run is not None and run.get("key") == key and m.name in table["datasets"].get(task, {}):
            _log(f"[{i}/{len(pairs)}] {m.name} on {task}: {table['datasets'][task][m.name]:.4f} (done)", verbose)
            continue
        t0 = time.time()
        res = ft.finetune(m.module, task, work / "truth" / m.name / task, params=m.params, config=ftc,
                          model_name=m.name, progress=progress, fashion_root=fashion_root)
        table["datasets"].setdefault(task, {})[m.name] = res["score"]
        table["std"].setdefault(task, {})[m.name] = res["score_std"]
        table["runs"].setdefault(task, {})[m.name] = {
            "key": key, "fingerprint": res["provenance"]["fingerprint"], "params_sha1": m.entry["params"]["sha1"],
            "best_of_mean_grid": res["best_of_mean_grid"], "per_seed_best": [s["best"] for s in res["per_seed"]],
            "wall_seconds": res["provenance"]["wall_seconds"], "date": res["provenance"]["date"],
            "n_train": res["provenance"]["task"]["n_train"], "n_test": res["provenance"]["task"]["n_test"],
            "data_sha1": res["provenance"]["task"]["data_sha1"],
        }
        prov = table["provenance"]
        prov.update({
            "updated": _now(), "git_commit": git_commit(), "jax_version": _jax_version(), "backend": _backend(),
            "machine": f"{platform.machine()} {os.cpu_count()} CPU(s), {platform.system()}", "dtype": "float32",
            "zoo_members": [{"name": mm.name, "params_sha1": mm.entry["params"]["sha1"]} for mm in zoo],
        })
        prov["total_wall_seconds"] = round(sum(r["wall_seconds"] for t in table["runs"].values() for r in t.values()), 2)
        _atomic_json(path, table)
        done_now += 1
        _log(f"[{i}/{len(pairs)}] {m.name} on {task}: {res['score']:.4f} ± {res['score_std']:.4f} ({time.time() - t0:.0f} s)", verbose)
        if on_pair is not None:
            on_pair(m.name, task)
    _log(f"ground truth: {done_now} pair(s) fine-tuned in {time.time() - t_all:.0f} s -> {path}", verbose)
    return table


def _jax_version() -> str:
    import jax

    return jax.__version__


def _backend() -> str:
    import jax

    return jax.default_backend()


def build(zoo_dir=None, work_dir=None, members: Sequence[MemberSpec] = DEFAULT_MEMBERS, config: BuildConfig = BuildConfig(),
          *, truth: bool = True, pretrain: bool = True, progress: bool = True, verbose: bool = True, fashion_root=None) -> dict:
    """Build (or finish building) a zoo and its ground truth: :func:`build_members` then :func:`build_truth`."""
    zoo_dir = Path(zoo_dir) if zoo_dir is not None else DEFAULT_ZOO
    out: dict = {}
    if pretrain:
        out["members"] = build_members(zoo_dir, work_dir, members, config, progress=progress, verbose=verbose, fashion_root=fashion_root)
    if truth:
        out["truth"] = build_truth(zoo_dir, work_dir, config, members=[s.name for s in members], progress=progress,
                                   verbose=verbose, fashion_root=fashion_root)
    return out


# --------------------------------------------------------------------------------------- CLI


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("zoo", help="build or list the self-supervised model zoo",
                              description="The model zoo pretrained on the Fashion-MNIST source split (docs/zoo.md).")
    sub = p.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND")
    sub.required = True

    b = sub.add_parser("build", help="pretrain the zoo and fine-tune its ground truth (resumable: rerun to continue)",
                       description="Pretrain every member the zoo lacks, then fine-tune every (member, task) pair the "
                       "ground-truth table lacks. Each member and each pair is saved as soon as it is done; rerunning "
                       "the same command continues where it stopped.")
    b.add_argument("--zoo", default=None, help="zoo folder (default: the shipped pedjax/assets/zoo; WORK/zoo with --tiny)")
    b.add_argument("--work", default=None, help=f"checkpoints and fine-tuning runs (default {DEFAULT_WORK}; {TINY_WORK} with --tiny)")
    b.add_argument("--members", nargs="+", default=None, help="build only these members of the spec")
    b.add_argument("--tiny", action="store_true", help="the CI chain's configuration: 2 tiny members, a few steps, 1 task")
    b.add_argument("--steps", type=int, default=None, help="pretraining steps per member")
    b.add_argument("--batch-size", type=int, default=None, help="pretraining batch size")
    b.add_argument("--tasks", nargs="+", default=None, help="ground-truth tasks")
    b.add_argument("--ft-steps", type=int, default=None, help="fine-tuning steps per configuration")
    b.add_argument("--seeds", type=int, nargs="+", default=None, help="fine-tuning seeds")
    b.add_argument("--format", choices=PARAM_FORMATS, default=None, help="parameter storage (default orbax)")
    b.add_argument("--no-truth", action="store_true", help="pretrain only")
    b.add_argument("--truth-only", action="store_true", help="ground truth only (the members must exist)")
    b.add_argument("--fashion-root", default=None)
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=_cmd_build)

    ls = sub.add_parser("list", help="list the members of a zoo")
    ls.add_argument("--zoo", default=None, help="zoo folder (default: the shipped zoo)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_cmd_list)

    pp = subparsers.add_parser("pretrain", help="pretrain one backbone on the Fashion-MNIST source split",
                               description="Pretrain ARCH with METHOD on the source split (resumable: rerun to continue); "
                               "report the linear probe; optionally add the result to a zoo.")
    pp.add_argument("--arch", required=True, help=f"architecture: {', '.join(sorted(ARCHITECTURES))}")
    pp.add_argument("--arch-kwargs", default="{}", help='JSON keyword arguments, e.g. \'{"channels": [8, 16]}\'')
    pp.add_argument("--method", required=True, help="pretraining method: simclr byol barlow vicreg rotation dae supervised random")
    pp.add_argument("--out", required=True, help="run folder (checkpoints, final.msgpack, pretrain.json)")
    pp.add_argument("--steps", type=int, default=2000)
    pp.add_argument("--batch-size", type=int, default=128)
    pp.add_argument("--lr", type=float, default=1e-3)
    pp.add_argument("--seed", type=int, default=0)
    pp.add_argument("--checkpoint-every", type=int, default=200)
    pp.add_argument("--source-n", type=int, default=45000, help="pretrain on the first N source images")
    pp.add_argument("--add-to", default=None, metavar="ZOO", help="also add the result to this zoo folder")
    pp.add_argument("--name", default=None, help="member name (default ARCH-METHOD)")
    pp.add_argument("--fashion-root", default=None)
    pp.add_argument("--no-progress", action="store_true")
    pp.set_defaults(func=_cmd_pretrain)


def config_from_args(args) -> tuple[tuple[MemberSpec, ...], BuildConfig]:
    members = TINY_MEMBERS if args.tiny else DEFAULT_MEMBERS
    config = TINY_CONFIG if args.tiny else BuildConfig()
    if args.members:
        known = {m.name: m for m in members}
        bad = [n for n in args.members if n not in known]
        if bad:
            raise ValueError(f"--members: unknown member(s) {bad}; the spec has {list(known)}")
        members = tuple(known[n] for n in args.members)
    over = {}
    for arg, fld in (("steps", "steps"), ("batch_size", "batch_size"), ("ft_steps", "ft_steps"), ("format", "params_format")):
        v = getattr(args, arg, None)
        if v is not None:
            over[fld] = v
    if args.tasks:
        over["tasks"] = tuple(args.tasks)
    if args.seeds:
        over["ft_seeds"] = tuple(args.seeds)
    return members, dataclasses.replace(config, **over) if over else config


def _cmd_build(args) -> int:
    if args.no_truth and args.truth_only:
        raise ValueError("--no-truth, --truth-only: choose at most one")
    members, config = config_from_args(args)
    work = Path(args.work) if args.work else (TINY_WORK if args.tiny else DEFAULT_WORK)
    # the tiny zoo never goes into the shipped assets unless asked to
    zoo_dir = Path(args.zoo) if args.zoo else (work / "zoo" if args.tiny else DEFAULT_ZOO)
    progress = not args.no_progress
    out = build(zoo_dir, work, members, config, truth=not args.no_truth, pretrain=not args.truth_only,
                progress=progress, fashion_root=args.fashion_root)
    rep = out.get("members")
    if rep is not None:
        print(f"zoo {zoo_dir}: built {len(rep['built'])}, already there {len(rep['skipped'])}")
        if rep["below_bar"]:
            print(f"pedjax zoo build: error: member(s) below the linear-probe sanity bar {config.sanity_bar}: {rep['below_bar']}",
                  file=sys.stderr)
            return 1
    if "truth" in out:
        print(f"ground truth: {zoo_dir / TRUTH_FILE}")
    return 0


def _cmd_list(args) -> int:
    root = Path(args.zoo) if args.zoo else DEFAULT_ZOO
    manifest = read_manifest(root)
    truth_path = root / TRUTH_FILE
    truth = json.loads(truth_path.read_text()) if truth_path.is_file() else None
    if args.json:
        print(json.dumps({"zoo": str(root), "members": manifest["members"], "truth": truth and truth["datasets"]}, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"pedjax zoo: {root}")
    cols = ["member", "arch", "method", "D", "params", "probe acc", "pretrain"]
    tasks = sorted(truth["datasets"]) if truth else []
    for c in cols + tasks:
        t.add_column(c, justify="right" if c not in ("member", "arch", "method") else "left")
    for e in manifest["members"]:
        lp = e.get("linear_probe", {})
        acc = f"{lp.get('accuracy', float('nan')):.3f}" + ("" if lp.get("passed", True) else " (!)")
        pr = e.get("pretrain", {})
        steps = (pr.get("config") or {}).get("steps")
        row = [e["name"], e["arch"], e["method"], str(e["feature_dim"]), str(e.get("n_params", "")), acc,
               f"{steps} steps, {pr.get('wall_seconds') or 0:.0f} s"]
        for task in tasks:
            v = truth["datasets"][task].get(e["name"])
            row.append("" if v is None else f"{v:.3f}")
        t.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 200).print(t)
    if truth:
        print(f"ground truth ({truth['score_definition']}): {truth_path}")
    return 0


def _cmd_pretrain(args) -> int:
    try:
        arch_kwargs = json.loads(args.arch_kwargs)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--arch-kwargs: not valid JSON ({exc.msg})") from None
    if not isinstance(arch_kwargs, dict):
        raise ValueError("--arch-kwargs: a JSON object, e.g. '{\"channels\": [8, 16]}'")
    name = args.name or f"{args.arch}-{args.method}"
    spec = MemberSpec(name, args.arch, args.method, arch_kwargs, seed=args.seed)
    config = BuildConfig(source_n=args.source_n, heldout=min(5000, 50000 - args.source_n), probe_train=min(5000, args.source_n),
                         checkpoint_every=args.checkpoint_every, steps=args.steps, batch_size=args.batch_size, lr=args.lr)
    create_module(args.arch, arch_kwargs)  # validate before loading data
    source = SourceData.load(config, args.fashion_root)
    out = pretrain_member(spec, config, args.out, source, progress=not args.no_progress)
    r = source.ranges
    flag = "ok" if out["passed"] else f"below the sanity bar {config.sanity_bar}"
    print(f"{name}: final loss {out['record'].get('final_loss')}; linear probe {out['probe']['accuracy']:.3f} on held-out "
          f"source images train[{r['heldout'][0]}:{r['heldout'][1]}] (chance 0.1; {flag}); parameters: {Path(args.out) / 'final.msgpack'}")
    if args.add_to:
        fp = member_fingerprint(spec, config, source.sha1)
        add_member(args.add_to, spec, out["params"], source_mean=out["source_mean"], source_std=out["source_std"],
                   probe=out["probe"], record=out["record"], fingerprint=fp, params_format=config.params_format, config=config)
        print(f"added {name} to the zoo at {args.add_to}")
    return 0 if out["passed"] else 1
