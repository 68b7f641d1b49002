"""The model zoo: self-supervised (and baseline) Flax backbones pretrained on Fashion-MNIST's source split.

A zoo is a folder (see docs/zoo.md)::

    manifest.json                       what every member is (architecture, method, feature
                                        dimension, files, pretraining record, linear-probe sanity
                                        bar, fingerprint); rewritten atomically after each member
    members/<name>-<fp8>/params/        the backbone parameters (orbax checkpoint; or params.npz)
    members/<name>-<fp8>/stats.npz      source statistics (feature mean/std on the held-out source
                                        set, float64) and the linear probe (W [D, 10], b [10])
    ground_truth.json                   fine-tuning ground truth {task: {member: score}} + provenance

:func:`load_zoo` reads it (the shipped zoo in ``pedjax/assets/zoo`` by default);
:func:`add_member` writes one member and its manifest entry atomically.
:func:`pedjax.features.extract_features` turns a loaded zoo into a
:class:`pedjax.features.FeatureSet` on a task; :mod:`pedjax.zoo.build` makes a zoo and its ground
truth.
"""
from __future__ import annotations

import datetime
import functools
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import load_json
from ..models import nets
from ..util import atomic_path, atomic_savez, atomic_write_json
from .spec import DEFAULT_ZOO, FORMAT, MANIFEST, PARAM_FORMATS, TRUTH_FILE, VERSION, BuildConfig, MemberSpec, create_module


@dataclass(frozen=True, eq=False)
class ZooMember:
    """One loaded member: its backbone, parameters, source statistics and source-class probe.

    Attributes:
      name: the member's name.
      arch: the backbone's architecture (:data:`~pedjax.zoo.ARCHITECTURES`).
      arch_kwargs: the backbone module's fields.
      method: the pretraining objective.
      feature_dim: the feature width D.
      input_shape: one image's shape ``(H, W, C)``.
      load_params: ``() -> params``, restores the parameters (:attr:`params` calls it once).
      source_mean: ``[D]`` float64 feature mean on the held-out source set.
      source_std: ``[D]`` float64 feature standard deviation there (ddof 0).
      probe_W: ``[D, 10]`` the linear probe's weights (source classes).
      probe_b: ``[10]`` its biases.
      entry: the member's manifest entry.
    """

    name: str
    arch: str
    arch_kwargs: dict
    method: str
    feature_dim: int
    input_shape: tuple[int, ...]
    load_params: Callable[[], Any] = field(repr=False)
    source_mean: np.ndarray
    source_std: np.ndarray
    probe_W: np.ndarray
    probe_b: np.ndarray
    entry: dict

    @functools.cached_property
    def params(self) -> Any:
        """The backbone parameters, restored on first use (a run whose features all come from a
        :class:`~pedjax.features.cache.FeatureCache` never reads them)."""
        return self.load_params()

    @property
    def module(self):
        """The backbone's Flax module (:func:`~pedjax.zoo.create_module`)."""
        return create_module(self.arch, self.arch_kwargs)

    def features(self, x, batch_size: int = 500) -> np.ndarray:
        """The backbone's features of a batch of images.

        Args:
          x: images ``[N, H, W, C]`` of the member's :attr:`input_shape`.
          batch_size: images per forward-pass call.

        Returns:
          float32 ``[N, D]``.
        """
        from ..models.pretrain import feature_fn

        return feature_fn(self.module)(self.params, x, batch_size)

    def source_probs(self, features) -> np.ndarray:
        """The linear probe's source-class (Fashion-MNIST) probabilities of features.

        Args:
          features: ``[N, D]`` features of this member.

        Returns:
          float64 ``[N, 10]``, rows summing to 1 (a softmax).
        """
        logits = np.asarray(features, np.float64) @ self.probe_W + self.probe_b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


@dataclass(frozen=True, eq=False)
class Zoo:
    """A loaded zoo (:func:`load_zoo`); index by name or position.

    Attributes:
      path: the zoo folder.
      manifest: the parsed ``manifest.json``.
      members: the loaded :class:`ZooMember` objects, in manifest order (or as asked).
    """

    path: Path
    manifest: dict
    members: tuple[ZooMember, ...]

    @property
    def names(self) -> list[str]:
        """The members' names, in order."""
        return [m.name for m in self.members]

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self):
        return iter(self.members)

    def __getitem__(self, key: str | int) -> ZooMember:
        """The member named ``key``, or at position ``key``; ``KeyError`` for an unknown name."""
        if isinstance(key, int):
            return self.members[key]
        for m in self.members:
            if m.name == key:
                return m
        raise KeyError(f"member: no member {key!r} in the zoo at {self.path}; members: {self.names}")

    def source_stats(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Every member's source statistics.

        Returns:
          ``{name: (mean [D], std [D])}``: the ``source_stats`` argument of :func:`pedjax.score_zoo`.
        """
        return {m.name: (m.source_mean, m.source_std) for m in self.members}

    def truth(self) -> dict | None:
        """The ground-truth table.

        Returns:
          The parsed ``ground_truth.json`` (``{"datasets": {task: {member: score}}, …}``), or
          ``None`` when the zoo has none.
        """
        p = self.path / TRUTH_FILE
        return json.loads(p.read_text()) if p.is_file() else None

    def task_truth(self, task: str, arg: str = "task") -> dict[str, float]:
        """Every member's fine-tuned score on ``task`` from the ground-truth table.

        Args:
          task: a task of the ground truth.
          arg: the argument name the errors name (e.g. ``"--task"``).

        Returns:
          ``{member: fine-tuned score}`` for every member.

        Raises:
          FileNotFoundError: the zoo has no ground-truth table.
          ValueError: the table has no ``task``, or lacks a member on it.
        """
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
    """SHA-1 over a parameter tree's leaves, independent of the storage format.

    Args:
      params: a nested mapping of arrays (Flax parameters).

    Returns:
      The hex digest over every leaf's path, shape and float32 bytes, paths sorted.
    """
    h = hashlib.sha1()
    for k, v in sorted(_flatten(params).items()):
        h.update(k.encode())
        h.update(str(v.shape).encode())
        h.update(np.ascontiguousarray(v, np.float32).tobytes())
    return h.hexdigest()


def read_manifest(path: str | os.PathLike) -> dict:
    """The manifest of a zoo folder, validated (format, version, member fields).

    Args:
      path: the zoo folder.

    Returns:
      The parsed ``manifest.json``.

    Raises:
      FileNotFoundError: the folder has no ``manifest.json``.
      ValueError: invalid JSON, not a pedjax zoo manifest, a newer version than this pedjax
        reads, no member list, or a member lacking a required field.
    """
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
    """Load a zoo folder. Parameters are restored on first use unless ``verify``.

    Args:
      path: the zoo folder; ``None``: the shipped zoo (``pedjax/assets/zoo``).
      members: load only these members (in this order); default all, in manifest order.
      verify: restore every member's parameters now, recompute their SHA-1 and compare it
        with the manifest.

    Returns:
      The :class:`Zoo`.

    Raises:
      FileNotFoundError: no ``manifest.json`` in ``path``.
      ValueError: an invalid manifest, an unknown member in ``members``, no member, missing
        parameter files, source statistics that do not match ``feature_dim``, or (``verify``)
        parameters that differ from the manifest's SHA-1.
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
        ppath = root / pinfo["path"]
        if not ppath.exists():
            raise ValueError(f"zoo: member {name!r}: its parameters {ppath} are missing")
        load_params = functools.partial(_restore_params, ppath, pinfo["format"])
        if verify:
            params = load_params()
            if params_sha1(params) != pinfo.get("sha1"):
                raise ValueError(f"zoo: member {name!r}: parameters differ from the manifest's SHA-1 (corrupt or edited files)")
            load_params = functools.partial(lambda p: p, params)
        with np.load(root / e["stats"]["path"], allow_pickle=False) as z:
            mean, std, W, b = (np.asarray(z[k], np.float64) for k in ("source_mean", "source_std", "probe_W", "probe_b"))
        if mean.shape != (e["feature_dim"],) or std.shape != mean.shape:
            raise ValueError(f"zoo: member {name!r}: source statistics have shape {mean.shape}, feature_dim is {e['feature_dim']}")
        loaded.append(ZooMember(
            name=name, arch=e["arch"], arch_kwargs=dict(e.get("arch_kwargs", {})), method=e["method"],
            feature_dim=int(e["feature_dim"]), input_shape=tuple(e["input_shape"]), load_params=load_params,
            source_mean=mean, source_std=std, probe_W=W, probe_b=b, entry=e,
        ))
    return Zoo(root, manifest, tuple(loaded))


# ----------------------------------------------------------------------------------- writing


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
    with atomic_path(dest / "params.npz", suffix=".npz") as tmp:
        np.savez(tmp, **flat)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
    return {"format": "npz", "name": "params.npz"}


def add_member(zoo_dir: str | os.PathLike, spec: MemberSpec, params, *, source_mean, source_std, probe: Mapping,
               record: Mapping, fingerprint: str, params_format: str = "orbax", config: BuildConfig | None = None) -> dict:
    """Write one member's files into ``zoo_dir`` and put it in the manifest (atomically).

    A member of the same name is replaced (in place in the member order); its old files are
    removed after the manifest is written. Files the manifest references are never overwritten:
    each write goes to a fresh ``members/<name>-<fp8>[-n]`` folder.

    Args:
      zoo_dir: the zoo folder (created if missing; a new manifest when it has none).
      spec: the member's :class:`~pedjax.zoo.MemberSpec`.
      params: the backbone's parameter tree (checked against the architecture).
      source_mean: ``[D]`` feature mean on the held-out source set.
      source_std: ``[D]`` feature standard deviation there.
      probe: the linear probe: ``W`` [D, K], ``b`` [K], ``accuracy`` and other facts kept in the
        manifest (``W``, ``b`` and ``classes`` are not).
      record: stored as the member's ``pretrain`` record.
      fingerprint: the member's build fingerprint (its first 8 characters name the folder).
      params_format: ``"orbax"`` or ``"npz"``.
      config: the :class:`~pedjax.zoo.BuildConfig` described in a new manifest (default
        ``BuildConfig()``).

    Returns:
      The member's manifest entry.

    Raises:
      ValueError: ``params`` does not fit the architecture, an unknown ``arch``, or an invalid
        existing manifest.
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
    atomic_savez(dest / "stats.npz", source_mean=np.asarray(source_mean, np.float64), source_std=np.asarray(source_std, np.float64),
                 probe_W=np.asarray(probe["W"], np.float64), probe_b=np.asarray(probe["b"], np.float64))
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
    atomic_write_json(mpath, manifest)
    if old is not None:
        old_dir = root / Path(old["params"]["path"]).parts[0] / Path(old["params"]["path"]).parts[1]
        if old_dir.resolve() != dest.resolve():
            shutil.rmtree(old_dir, ignore_errors=True)
    return entry


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
