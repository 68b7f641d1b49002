"""Feature sets on disk: the published repos' results folders and ``.npz`` zoos.

Size: the two on-disk formats share one store interface (discovery, label alignment, float64
loading, atomic writing); most of the length is their documented arguments and errors.

**Results folder** — what ``forward_feature.py`` of github.com/lixiaotong97/PED (and
TencentARC/SFDA) writes, read as is::

    DIR/{model}_{dataset}_feature.npy     features [N, D] of one model on the target dataset
    DIR/{model}_{dataset}_label.npy       its labels [N]
    DIR/{model}_imagenet_feature.npy      the model's features on the source set (ImageNet-val
                                          in the paper): PED rescales with their mean/std (ddof 0)

Models are discovered from the ``*_{dataset}_feature.npy`` files. Each model has its own label
file (the published loader may shuffle, so the sample order can differ between models); models
whose labels are identical are scored together.

**npz zoo** — one file; either the pedjax layout (written by :func:`save_npz_zoo`)::

    labels                 [N]      target labels shared by every model
    features/{model}       [N, D]   target features
    labels/{model}         [N]      optional per-model labels (override ``labels``)
    source_mean/{model}    [D]      optional source statistics for PED …
    source_std/{model}     [D]
    source_features/{model} [S, D]  … or the source features themselves
    dataset                str      optional name of the target dataset

or the results-folder layout with the ``.npy`` file names as keys (``{model}_{dataset}_feature``…).

Features are read as float64 (the published NumPy metrics compute in float64; the
``.npy`` files are usually float32); source statistics are accumulated in float64 in chunks of a
memory-mapped file, so a 50 000 × 2048 ImageNet-val file is never loaded whole.
A :class:`FeatureStore` loads nothing until asked; :meth:`FeatureStore.feature_set` loads it
whole as a :class:`~pedjax.features.FeatureSet`, and :func:`pedjax.scoring.score_store` scores a
store larger than memory in batches of models.
"""
from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..util import atomic_save_npy, atomic_savez
from .featureset import FeatureSet

#: name of the source set in the published layout
DEFAULT_SOURCE = "imagenet"
#: source set value that rescales with the target features' own statistics
TARGET_SOURCE = "target"
#: bytes of float64 features loaded at once by :func:`score` (a batch of models)
DEFAULT_LOAD_BUDGET = 2 << 30
_FEATURE, _LABEL = "_feature", "_label"
_CHUNK_ROWS = 8192


# ----------------------------------------------------------------------------------------------
# storage: a folder of .npy files or the arrays of an .npz, addressed by key (file name sans .npy)


_NPY_MAGIC = b"\x93NUMPY"


def load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    """``np.load`` of one ``.npy`` file (no pickles) with every failure as one error naming the file.

    Args:
      path: the ``.npy`` file.
      mmap: memory-map it read-only instead of loading it.

    Returns:
      The array (a read-only ``np.memmap`` with ``mmap``).

    Raises:
      OSError: of the same kind, when it cannot be read (missing, a folder, no permission).
      ValueError: it is empty, not a ``.npy`` file, corrupt or truncated, or holds Python objects.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; expected a .npy array file")
    try:
        with open(path, "rb") as f:
            head = f.read(len(_NPY_MAGIC))
    except OSError as exc:
        raise type(exc)(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if not head:
        raise ValueError(f"{path}: is empty (0 bytes); expected a .npy array file — re-extract it")
    if head != _NPY_MAGIC:
        raise ValueError(f"{path}: is not a .npy array file (no NumPy header); re-extract it or remove it")
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except OSError as exc:
        raise type(exc)(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (ValueError, EOFError) as exc:
        raise ValueError(f"{path}: corrupt or truncated .npy file ({exc}); re-extract it") from None
    if arr.dtype == object:
        raise ValueError(f"{path}: holds Python objects, not numbers; save a numeric array")
    return arr


class _DirFiles:
    def __init__(self, root: Path):
        self.root = root
        self.where = str(root)

    def keys(self) -> list[str]:
        try:
            return sorted(p.name[:-4] for p in self.root.iterdir() if p.name.endswith(".npy"))
        except OSError as exc:
            raise type(exc)(f"--results-dir: cannot list {self.root} ({exc.strerror or exc})") from None

    def path(self, key: str) -> str:
        return str(self.root / f"{key}.npy")

    def has(self, key: str) -> bool:
        return (self.root / f"{key}.npy").is_file()

    def load(self, key: str, mmap: bool = False) -> np.ndarray:
        return load_npy(self.root / f"{key}.npy", mmap=mmap)

    def filename(self, key: str) -> str:
        return f"{key}.npy"


class _NpzFiles:
    def __init__(self, path: Path):
        self.where = str(path)
        try:
            self.npz = np.load(path, allow_pickle=False)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ValueError(f"--zoo: {path} is not a readable .npz file ({exc}); write one with pedjax.features.save_npz_zoo") from exc
        if not isinstance(self.npz, np.lib.npyio.NpzFile):
            raise ValueError(f"--zoo: {path} holds a single array, not an .npz zoo; write one with pedjax.features.save_npz_zoo")

    def keys(self) -> list[str]:
        return sorted(self.npz.files)

    def __iter__(self):
        return iter(self.keys())

    def path(self, key: str) -> str:
        return f"{self.where}[{key}]"

    def has(self, key: str) -> bool:
        return key in self.npz.files

    def load(self, key: str, mmap: bool = False) -> np.ndarray:
        try:
            return self.npz[key]
        except (zipfile.BadZipFile, EOFError, ValueError, zlib.error) as exc:
            raise ValueError(f"{self.where}[{key}]: corrupt or truncated array in the .npz ({type(exc).__name__}: {exc})") from None

    def filename(self, key: str) -> str:
        return key


# ----------------------------------------------------------------------------------------------
# zoo sources


class FeatureStore:
    """A zoo's features on disk: model names, and per model its target features, labels and source statistics.

    Nothing is loaded until asked for. Subclasses: :class:`ResultsStore`, :class:`NpzStore`.

    Attributes:
      dataset: the target dataset's name, or ``None``.
      models: the model names (after the ``models``/``exclude`` selection).
      where: the folder or file, for messages.
    """

    dataset: str | None
    models: list[str]
    where: str

    def features(self, model: str) -> np.ndarray:
        """The target features of ``model``: float64 ``[N, D]``, finite (checked on reading)."""
        raise NotImplementedError

    def labels(self, model: str) -> np.ndarray:
        """The target labels of ``model``: ``[N]``."""
        raise NotImplementedError

    def source_stats(self, model: str):
        """``(mean [D], std [D])`` float64 of ``model``'s source features (PED's rescaling)."""
        raise NotImplementedError

    def check_source(self) -> None:
        """Raise an error (``FileNotFoundError`` or ``ValueError``) listing what PED's source
        statistics would need and is missing; nothing when all is there."""

    def load(self, *, source: bool = False):
        """Everything in memory.

        Args:
          source: also load the source statistics (checked first: :meth:`check_source`).

        Returns:
          ``(features {model: [N, D]}, labels {model: [N]}, stats {model: (mean, std)} or None)``.
        """
        if source:
            self.check_source()
        feats = {m: self.features(m) for m in self.models}
        labels = {m: self.labels(m) for m in self.models}
        stats = {m: self.source_stats(m) for m in self.models} if source else None
        return feats, labels, stats

    def feature_set(self, *, source: bool = False, truth=None) -> FeatureSet:
        """Everything in memory as a :class:`FeatureSet` (every model must share its labels).

        Args:
          source: load the source statistics PED needs.
          truth: ``{model: value}`` ground truth to attach, or ``None``.

        Returns:
          The :class:`FeatureSet`, named after the dataset (or the store's place).

        Raises:
          ValueError: models with different labels, invalid arrays, or missing source statistics.
          FileNotFoundError: missing source feature files.
        """
        feats, _, stats = self.load(source=source)
        return FeatureSet(feats, self.shared_labels(), stats, truth=truth, task=self.dataset or self.where)

    def shared_labels(self) -> np.ndarray:
        """The labels, when every model has the same ones.

        Returns:
          The shared labels ``[N]``.

        Raises:
          ValueError: a model's labels (or sample order) differ from the first model's.
        """
        first = self.labels(self.models[0])
        for m in self.models[1:]:
            if not np.array_equal(self.labels(m), first):
                raise ValueError(
                    f"labels: model {m!r} has different labels (or sample order) than {self.models[0]!r}; "
                    "use FeatureStore.labels(model) per model, or pedjax.scoring.score_store, which groups models by labels"
                )
        return first


def _finite_features(arr: np.ndarray, model: str, where: str, n_labels: int | None = None, label_where: str = "") -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise ValueError(f"model {model!r}: {where} has shape {arr.shape}; features must be a 2-D array [samples, dims]")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"model {model!r}: {where} is empty (shape {arr.shape}); features need at least one sample and one dimension")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"model {model!r}: {where} has dtype {arr.dtype}; features must be numeric")
    if n_labels is not None and arr.shape[0] != n_labels:
        raise ValueError(
            f"model {model!r}: {where} has {arr.shape[0]} rows but {label_where} has {n_labels} labels; "
            "write features and labels from the same pass over the data"
        )
    arr = arr.astype(np.float64)
    bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise ValueError(
            f"model {model!r}: {where} contains {bad} NaN/inf value(s); re-extract its features "
            f"or leave the model out with --exclude {model}"
        )
    return arr


def _labels(arr: np.ndarray, model: str, where: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.size == 0:
        raise ValueError(f"model {model!r}: {where} is empty (shape {arr.shape}); save one integer label per sample")
    if arr.ndim == 2 and arr.shape[1] > 1 and np.issubdtype(arr.dtype, np.number):
        raise ValueError(
            f"model {model!r}: {where} has shape {arr.shape} (one-hot or multi-label?); "
            "save one integer class per sample, e.g. labels.argmax(1)"
        )
    return arr.reshape(-1) if arr.ndim == 2 else arr


def _mean_std(arr: np.ndarray, model: str, where: str):
    """Mean and std (ddof 0) over rows, accumulated in float64 chunk by chunk (memory-mapped input)."""
    if arr.ndim != 2:
        raise ValueError(f"model {model!r}: {where} has shape {arr.shape}; source features must be [samples, dims]")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"model {model!r}: {where} is empty (shape {arr.shape}); source features need at least one sample")
    n = arr.shape[0]
    total = np.zeros(arr.shape[1])
    for i in range(0, n, _CHUNK_ROWS):
        block = np.asarray(arr[i : i + _CHUNK_ROWS], dtype=np.float64)
        if not np.all(np.isfinite(block)):
            raise ValueError(
                f"model {model!r}: {where} (source features) contains NaN/inf values; re-extract them "
                f"or leave the model out with --exclude {model}"
            )
        total += block.sum(axis=0)
    mean = total / n
    sq = np.zeros(arr.shape[1])
    for i in range(0, n, _CHUNK_ROWS):
        block = np.asarray(arr[i : i + _CHUNK_ROWS], dtype=np.float64) - mean
        sq += np.einsum("ij,ij->j", block, block)
    return mean, np.sqrt(sq / n)


def _select(found: list[str], models: Iterable[str] | None, exclude: Iterable[str] | None, where: str) -> list[str]:
    out = list(found)
    if models:
        models = list(models)
        unknown = [m for m in models if m not in found]
        if unknown:
            raise ValueError(f"--model: no model {unknown} in {where}; models found there: {found}")
        out = [m for m in found if m in models]
    if exclude:
        exclude = list(exclude)
        unknown = [m for m in exclude if m not in found]
        if unknown:
            raise ValueError(f"--exclude: no model {unknown} in {where}; models found there: {found}")
        out = [m for m in out if m not in exclude]
    if not out:
        raise ValueError(f"no models left to score in {where} after --model/--exclude")
    return out


class ResultsStore(FeatureStore):
    """The published layout (a folder, or an .npz whose keys are the file names without ``.npy``).

    Use :func:`open_store` rather than the constructor.

    Args:
      store: the folder's or ``.npz``'s files (internal accessor).
      dataset: the target dataset (the ``{dataset}`` of ``{model}_{dataset}_feature.npy``).
      source: the source set's name (default :data:`DEFAULT_SOURCE`); :data:`TARGET_SOURCE`
        rescales with the target features' own statistics.
      models: only these models (default all found).
      exclude: leave these models out.

    Raises:
      FileNotFoundError: no features for ``dataset``, or a feature file without its label file.
      ValueError: ``models``/``exclude`` name unknown models, or leave none.
    """

    def __init__(self, store, dataset: str, source: str = DEFAULT_SOURCE, models=None, exclude=None):
        self.store, self.dataset, self.source, self.where = store, dataset, source, store.where
        suffix = f"_{dataset}{_FEATURE}"
        keys = store.keys()
        found = sorted(k[: -len(suffix)] for k in keys if k.endswith(suffix) and len(k) > len(suffix))
        if not found:
            known = datasets_in(keys)
            hint = f"datasets found there: {known}" if known else "no *_{dataset}_feature.npy files are there at all"
            raise FileNotFoundError(
                f"--dataset: no features for dataset {dataset!r} in {self.where}: expected "
                f"{{model}}_{dataset}_feature.npy and {{model}}_{dataset}_label.npy per model; {hint}"
            )
        missing = [store.filename(f"{m}_{dataset}{_LABEL}") for m in found if not store.has(f"{m}_{dataset}{_LABEL}")]
        if missing:
            raise FileNotFoundError(
                f"missing label file(s) in {self.where}: {missing}; every {{model}}_{dataset}_feature.npy "
                f"needs its {{model}}_{dataset}_label.npy (labels [N], one integer per sample)"
            )
        self.models = _select(found, models, exclude, self.where)
        self._labels: dict[str, np.ndarray] = {}

    def _fkey(self, m):
        return f"{m}_{self.dataset}{_FEATURE}"

    def _lkey(self, m):
        return f"{m}_{self.dataset}{_LABEL}"

    def labels(self, model: str) -> np.ndarray:
        if model not in self._labels:
            self._labels[model] = _labels(self.store.load(self._lkey(model)), model, self.store.path(self._lkey(model)))
        return self._labels[model]

    def features(self, model: str) -> np.ndarray:
        y = self.labels(model)
        return _finite_features(
            self.store.load(self._fkey(model), mmap=True), model, self.store.path(self._fkey(model)),
            n_labels=y.shape[0], label_where=self.store.filename(self._lkey(model)),
        )

    def _skey(self, m):
        return f"{m}_{self.source}{_FEATURE}"

    def check_source(self) -> None:
        if self.source == TARGET_SOURCE:
            return
        missing = [self.store.filename(self._skey(m)) for m in self.models if not self.store.has(self._skey(m))]
        if missing:
            raise FileNotFoundError(
                f"PED rescales with each model's source-set features, missing in {self.where}: {missing} "
                f"(expected {{model}}_{self.source}_feature.npy for every model); extract them (ImageNet-val in the "
                f"paper), or pass --source-set target to rescale with the target features' own statistics"
            )

    def source_stats(self, model: str):
        if self.source == TARGET_SOURCE:
            X = self.features(model)
            return X.mean(axis=0), X.std(axis=0)
        self.check_source()
        arr = self.store.load(self._skey(model), mmap=True)
        where = self.store.path(self._skey(model))
        mean, std = _mean_std(arr, model, where)
        d = self.store.load(self._fkey(model), mmap=True).shape[1]
        if mean.shape[0] != d:
            raise ValueError(
                f"model {model!r}: {where} has {mean.shape[0]} dims but its target features have {d}; "
                "source and target features must come from the same layer of the same model"
            )
        return mean, std


class NpzStore(FeatureStore):
    """The pedjax npz layout (see the module docstring and :func:`save_npz_zoo`).

    Use :func:`open_store` rather than the constructor.

    Args:
      store: the ``.npz``'s arrays (internal accessor).
      dataset: the expected dataset name, or ``None`` (the file's ``dataset`` entry, if any).
      source: the source set (:data:`TARGET_SOURCE`: the target's own statistics).
      models: only these models (default all found).
      exclude: leave these models out.

    Raises:
      ValueError: ``dataset`` differs from the file's, the file has no labels, or
        ``models``/``exclude`` name unknown models or leave none.
    """

    def __init__(self, store: _NpzFiles, dataset: str | None = None, source: str = DEFAULT_SOURCE, models=None, exclude=None):
        self.store, self.where = store, store.where
        keys = store.keys()
        stored = str(store.load("dataset")) if store.has("dataset") else None
        if dataset is not None and stored is not None and dataset != stored:
            raise ValueError(f"--dataset: {self.where} holds dataset {stored!r}, not {dataset!r}; pass --dataset {stored} or leave it out")
        self.dataset = dataset or stored
        self.source = source
        found = [k[len("features/"):] for k in keys if k.startswith("features/")]
        if not store.has("labels") and not all(store.has(f"labels/{m}") for m in found):
            raise ValueError(f"--zoo: {self.where} has no 'labels' array (and not one 'labels/<model>' per model); write it with pedjax.features.save_npz_zoo")
        self.models = _select(found, models, exclude, self.where)

    def labels(self, model):
        key = f"labels/{model}" if self.store.has(f"labels/{model}") else "labels"
        return _labels(self.store.load(key), model, self.store.path(key))

    def features(self, model):
        y = self.labels(model)
        return _finite_features(self.store.load(f"features/{model}"), model, self.store.path(f"features/{model}"), n_labels=y.shape[0], label_where="its labels")

    def check_source(self):
        if self.source == TARGET_SOURCE:
            return
        missing = [m for m in self.models if not (self.store.has(f"source_mean/{m}") and self.store.has(f"source_std/{m}")) and not self.store.has(f"source_features/{m}")]
        if missing:
            raise ValueError(
                f"PED rescales with each model's source statistics; {self.where} has none for {missing} "
                "(expected source_mean/<model> and source_std/<model>, or source_features/<model>); "
                "pass --source-set target to rescale with the target features' own statistics"
            )

    def source_stats(self, model):
        if self.source == TARGET_SOURCE:
            X = self.features(model)
            return X.mean(axis=0), X.std(axis=0)
        self.check_source()
        if self.store.has(f"source_mean/{model}"):
            mean = np.asarray(self.store.load(f"source_mean/{model}"), np.float64)
            std = np.asarray(self.store.load(f"source_std/{model}"), np.float64)
            if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
                raise ValueError(f"model {model!r}: {self.where} source_mean/source_std contain NaN/inf; recompute them")
            return mean, std
        key = f"source_features/{model}"
        return _mean_std(self.store.load(key), model, self.store.path(key))


def datasets_in(keys: Iterable[str]) -> list[str]:
    """The target datasets of a results layout.

    Args:
      keys: file names without ``.npy`` (or ``.npz`` keys).

    Returns:
      The datasets, sorted: of every ``{model}_{dataset}_feature`` key that has its
      ``{model}_{dataset}_label`` partner (the dataset is read as the part after the last ``_``).
    """
    keys = set(keys)
    out = set()
    for k in keys:
        if k.endswith(_FEATURE) and "_" in k[: -len(_FEATURE)]:
            stem = k[: -len(_FEATURE)]
            if f"{stem}{_LABEL}" in keys:
                out.add(stem.rsplit("_", 1)[1])
    return sorted(out)


def open_store(results_dir=None, zoo=None, dataset: str | None = None, source: str = DEFAULT_SOURCE, models=None, exclude=None) -> FeatureStore:
    """Open a results folder (``results_dir`` + ``dataset``) or an ``.npz`` zoo (``zoo``).

    Args:
      results_dir: a folder in the published layout (give ``dataset`` too).
      zoo: an ``.npz`` zoo, in the pedjax or the results layout.
      dataset: the target dataset; needed with ``results_dir``, and with an ``.npz`` in the
        results layout holding several.
      source: the source set's name (default :data:`DEFAULT_SOURCE`); :data:`TARGET_SOURCE`
        rescales with the target features' own statistics.
      models: only these models (default all found).
      exclude: leave these models out.

    Returns:
      A :class:`ResultsStore` or :class:`NpzStore` (nothing loaded yet).

    Raises:
      ValueError: both or neither of ``results_dir`` and ``zoo``; ``dataset`` missing or
        ambiguous; an unreadable ``.npz`` or one in neither layout; a bad model selection.
      FileNotFoundError: ``results_dir`` is not a folder, ``zoo`` not a file, or files of the
        layout are missing.
    """
    if (results_dir is None) == (zoo is None):
        raise ValueError("give either --results-dir DIR (with --dataset) or --zoo FILE.npz")
    if results_dir is not None:
        root = Path(results_dir)
        if not root.is_dir():
            raise FileNotFoundError(f"--results-dir: {root} is not a folder; point it at the folder holding {{model}}_{{dataset}}_feature.npy files")
        if not dataset:
            known = datasets_in(_DirFiles(root).keys())
            raise ValueError(f"--dataset: required with --results-dir; datasets found in {root}: {known}")
        return ResultsStore(_DirFiles(root), dataset, source, models, exclude)
    path = Path(zoo)
    if not path.is_file():
        raise FileNotFoundError(f"--zoo: no file {path}; write an .npz zoo with pedjax.features.save_npz_zoo")
    store = _NpzFiles(path)
    if any(k.startswith("features/") for k in store):
        return NpzStore(store, dataset, source, models, exclude)
    if not dataset:
        known = datasets_in(store.keys())
        if not known:
            raise ValueError(
                f"--zoo: {path} has neither features/<model> arrays (pedjax layout, see pedjax.features.save_npz_zoo) "
                "nor {model}_{dataset}_feature / _label arrays (the results-folder layout)"
            )
        if len(known) > 1:
            raise ValueError(f"--dataset: {path} holds several datasets in the results layout, pick one of {known}")
        dataset = known[0]
    return ResultsStore(store, dataset, source, models, exclude)


# ----------------------------------------------------------------------------------------------
# writing


def write_results_dir(directory, dataset: str, features: Mapping[str, Any], labels, source_features: Mapping[str, Any] | None = None, source: str = DEFAULT_SOURCE) -> Path:
    """Write a zoo in the published layout (``{model}_{dataset}_feature.npy`` …), atomically per file.

    Args:
      directory: the folder (created if missing).
      dataset: the target dataset's name.
      features: ``{model: [N, D]}``.
      labels: ``[N]`` for every model, or ``{model: labels}``.
      source_features: ``{model: [S, D]}`` source-set features, written as
        ``{model}_{source}_feature.npy``; ``None``: none.
      source: the source set's name in the file names.

    Returns:
      The folder's path.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    for m, X in features.items():
        atomic_save_npy(root / f"{m}_{dataset}{_FEATURE}.npy", X)
        y = labels[m] if isinstance(labels, Mapping) else labels
        atomic_save_npy(root / f"{m}_{dataset}{_LABEL}.npy", y)
        if source_features is not None:
            atomic_save_npy(root / f"{m}_{source}{_FEATURE}.npy", source_features[m])
    return root


def save_npz_zoo(path, features: Mapping[str, Any], labels, source_stats: Mapping[str, Any] | None = None, dataset: str | None = None) -> Path:
    """Write an npz zoo in the pedjax layout (the module docstring), atomically.

    Args:
      path: the file (``.npz`` appended when missing).
      features: ``{model: [N, D]}``.
      labels: ``[N]`` shared by every model.
      source_stats: ``{model: (mean [D], std [D])}`` for PED, or ``None``.
      dataset: the target dataset's name, or ``None``.

    Returns:
      The written file's path.

    Raises:
      ValueError: a model name contains ``/``.
    """
    arrays: dict[str, np.ndarray] = {"labels": np.asarray(labels)}
    for m, X in features.items():
        if "/" in m:
            raise ValueError(f"features: model name {m!r} may not contain '/'")
        arrays[f"features/{m}"] = np.asarray(X)
        if source_stats is not None:
            mean, std = source_stats[m]
            arrays[f"source_mean/{m}"] = np.asarray(mean)
            arrays[f"source_std/{m}"] = np.asarray(std)
    if dataset is not None:
        arrays["dataset"] = np.asarray(dataset)
    return atomic_savez(path, **arrays)
