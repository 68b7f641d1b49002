"""Reading zoos from disk: the published repos' results folders and ``.npz`` zoos; ``pedjax score``.

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
:func:`score` returns exactly what :func:`pedjax.score_zoo` returns on those arrays.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

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


class _DirStore:
    def __init__(self, root: Path):
        self.root = root
        self.where = str(root)

    def keys(self) -> list[str]:
        return sorted(p.name[:-4] for p in self.root.iterdir() if p.name.endswith(".npy"))

    def path(self, key: str) -> str:
        return str(self.root / f"{key}.npy")

    def has(self, key: str) -> bool:
        return (self.root / f"{key}.npy").is_file()

    def load(self, key: str, mmap: bool = False) -> np.ndarray:
        return np.load(self.root / f"{key}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)

    def filename(self, key: str) -> str:
        return f"{key}.npy"


class _NpzStore:
    def __init__(self, path: Path):
        self.where = str(path)
        try:
            self.npz = np.load(path, allow_pickle=False)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ValueError(f"--zoo: {path} is not a readable .npz file ({exc}); write one with pedjax.results.save_npz_zoo") from exc
        if not isinstance(self.npz, np.lib.npyio.NpzFile):
            raise ValueError(f"--zoo: {path} holds a single array, not an .npz zoo; write one with pedjax.results.save_npz_zoo")

    def keys(self) -> list[str]:
        return sorted(self.npz.files)

    def path(self, key: str) -> str:
        return f"{self.where}[{key}]"

    def has(self, key: str) -> bool:
        return key in self.npz.files

    def load(self, key: str, mmap: bool = False) -> np.ndarray:
        return self.npz[key]

    def filename(self, key: str) -> str:
        return key


# ----------------------------------------------------------------------------------------------
# zoo sources


class Zoo:
    """A zoo on disk: model names, and per model its target features, labels and source statistics.

    Nothing is loaded until asked for. Subclasses: :class:`ResultsZoo`, :class:`NpzZoo`.
    """

    dataset: str | None
    models: list[str]
    where: str

    def features(self, model: str) -> np.ndarray:  # [N, D] float64, finite
        raise NotImplementedError

    def labels(self, model: str) -> np.ndarray:  # [N]
        raise NotImplementedError

    def source_stats(self, model: str):  # (mean [D], std [D]) float64
        raise NotImplementedError

    def check_source(self) -> None:
        """Raise a ``ValueError`` listing what PED's source statistics would need and is missing."""

    def load(self, *, source: bool = False):
        """Everything in memory: ``(features {model: [N, D]}, labels {model: [N]}, stats or None)``."""
        if source:
            self.check_source()
        feats = {m: self.features(m) for m in self.models}
        labels = {m: self.labels(m) for m in self.models}
        stats = {m: self.source_stats(m) for m in self.models} if source else None
        return feats, labels, stats

    def shared_labels(self) -> np.ndarray:
        """The labels, when every model has the same ones (else a ``ValueError``)."""
        first = self.labels(self.models[0])
        for m in self.models[1:]:
            if not np.array_equal(self.labels(m), first):
                raise ValueError(
                    f"labels: model {m!r} has different labels (or sample order) than {self.models[0]!r}; "
                    "use Zoo.labels(model) per model, or pedjax.results.score which groups models by labels"
                )
        return first


def _finite_features(arr: np.ndarray, model: str, where: str, n_labels: int | None = None, label_where: str = "") -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"model {model!r}: {where} has shape {arr.shape}; features must be a 2-D array [samples, dims]")
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
    if arr.ndim == 2 and arr.shape[1] > 1 and np.issubdtype(arr.dtype, np.number):
        raise ValueError(
            f"model {model!r}: {where} has shape {arr.shape} (one-hot or multi-label?); "
            "save one integer class per sample, e.g. labels.argmax(1)"
        )
    return arr.reshape(-1) if arr.ndim == 2 else arr


def _mean_std(arr: np.ndarray, model: str, where: str):
    """Mean and std (ddof 0) over rows, accumulated in float64 chunk by chunk (memory-mapped input)."""
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"model {model!r}: {where} has shape {arr.shape}; source features must be [samples, dims]")
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


class ResultsZoo(Zoo):
    """The published layout (a folder, or an .npz whose keys are the file names without ``.npy``)."""

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


class NpzZoo(Zoo):
    """The pedjax npz layout (see the module docstring and :func:`save_npz_zoo`)."""

    def __init__(self, store: _NpzStore, dataset: str | None = None, source: str = DEFAULT_SOURCE, models=None, exclude=None):
        self.store, self.where = store, store.where
        keys = store.keys()
        stored = str(store.load("dataset")) if store.has("dataset") else None
        if dataset is not None and stored is not None and dataset != stored:
            raise ValueError(f"--dataset: {self.where} holds dataset {stored!r}, not {dataset!r}; pass --dataset {stored} or leave it out")
        self.dataset = dataset or stored
        self.source = source
        found = [k[len("features/"):] for k in keys if k.startswith("features/")]
        if not store.has("labels") and not all(store.has(f"labels/{m}") for m in found):
            raise ValueError(f"--zoo: {self.where} has no 'labels' array (and not one 'labels/<model>' per model); write it with pedjax.results.save_npz_zoo")
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
    """Target datasets of a results layout: ``{model}_{dataset}_feature`` keys that have a label
    partner (the dataset is read as the part after the last ``_``)."""
    keys = set(keys)
    out = set()
    for k in keys:
        if k.endswith(_FEATURE) and "_" in k[: -len(_FEATURE)]:
            stem = k[: -len(_FEATURE)]
            if f"{stem}{_LABEL}" in keys:
                out.add(stem.rsplit("_", 1)[1])
    return sorted(out)


def open_zoo(results_dir=None, zoo=None, dataset: str | None = None, source: str = DEFAULT_SOURCE, models=None, exclude=None) -> Zoo:
    """Open a results folder (``results_dir`` + ``dataset``) or an ``.npz`` zoo (``zoo``)."""
    if (results_dir is None) == (zoo is None):
        raise ValueError("give either --results-dir DIR (with --dataset) or --zoo FILE.npz")
    if results_dir is not None:
        root = Path(results_dir)
        if not root.is_dir():
            raise FileNotFoundError(f"--results-dir: {root} is not a folder; point it at the folder holding {{model}}_{{dataset}}_feature.npy files")
        if not dataset:
            known = datasets_in(_DirStore(root).keys())
            raise ValueError(f"--dataset: required with --results-dir; datasets found in {root}: {known}")
        return ResultsZoo(_DirStore(root), dataset, source, models, exclude)
    path = Path(zoo)
    if not path.is_file():
        raise FileNotFoundError(f"--zoo: no file {path}; write an .npz zoo with pedjax.results.save_npz_zoo")
    store = _NpzStore(path)
    if any(k.startswith("features/") for k in store.keys()):
        return NpzZoo(store, dataset, source, models, exclude)
    if not dataset:
        known = datasets_in(store.keys())
        if not known:
            raise ValueError(
                f"--zoo: {path} has neither features/<model> arrays (pedjax layout, see pedjax.results.save_npz_zoo) "
                "nor {model}_{dataset}_feature / _label arrays (the results-folder layout)"
            )
        if len(known) > 1:
            raise ValueError(f"--dataset: {path} holds several datasets in the results layout, pick one of {known}")
        dataset = known[0]
    return ResultsZoo(store, dataset, source, models, exclude)


# ----------------------------------------------------------------------------------------------
# writing


def write_results_dir(directory, dataset: str, features: Mapping[str, Any], labels, source_features: Mapping[str, Any] | None = None, source: str = DEFAULT_SOURCE) -> Path:
    """Write a zoo in the published layout (``{model}_{dataset}_feature.npy`` …); returns the folder.

    ``labels`` is one array for every model, or ``{model: labels}``.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    for m, X in features.items():
        np.save(root / f"{m}_{dataset}{_FEATURE}.npy", np.asarray(X))
        y = labels[m] if isinstance(labels, Mapping) else labels
        np.save(root / f"{m}_{dataset}{_LABEL}.npy", np.asarray(y))
        if source_features is not None:
            np.save(root / f"{m}_{source}{_FEATURE}.npy", np.asarray(source_features[m]))
    return root


def save_npz_zoo(path, features: Mapping[str, Any], labels, source_stats: Mapping[str, Any] | None = None, dataset: str | None = None) -> Path:
    """Write an npz zoo (pedjax layout): ``features {model: [N, D]}``, ``labels [N]``, optional
    ``source_stats {model: (mean, std)}`` and dataset name."""
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
    path = Path(path)
    np.savez(path, **arrays)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


# ----------------------------------------------------------------------------------------------
# scoring


def _metric(metric: str):
    from .metrics import REGISTRY

    feature_metrics = sorted(k for k, v in REGISTRY.items() if v.input == "features")
    name = metric.lower() if isinstance(metric, str) else metric
    if name not in REGISTRY:
        raise ValueError(f"--metric: unknown metric {metric!r}; feature metrics: {feature_metrics}")
    if REGISTRY[name].input != "features":
        raise ValueError(
            f"--metric: {name!r} takes source-model {REGISTRY[name].input}, not features, and a zoo "
            f"holds features; use one of {feature_metrics} (or pedjax.score_zoo from Python)"
        )
    return name


def score(zoo: Zoo, metric: str = "logme", ped=None, *, progress: bool = False, load_budget: int = DEFAULT_LOAD_BUDGET, **score_zoo_kwargs) -> dict[str, float]:
    """Score every model of ``zoo``; ``{model: score}`` in the zoo's order.

    Equals ``pedjax.score_zoo(features, labels, metric, ped, source_stats)`` on the arrays the zoo
    holds (features as float64, source statistics = mean/std of the source features, ddof 0).
    Models are loaded in batches of at most ``load_budget`` bytes of features and scored one batch
    (and one label set) at a time, so a zoo larger than memory scores with a progress bar.
    """
    from .zoo import score_zoo

    metric = _metric(metric)
    if ped is not None:
        zoo.check_source()
    out: dict[str, float] = {}
    bar = None
    if progress:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True), transient=True)
        bar.start()
        task = bar.add_task(f"{metric}{' + PED' if ped is not None else ''}", total=len(zoo.models))
    try:
        batch: dict[str, np.ndarray] = {}
        size = 0
        todo = list(zoo.models)
        for i, m in enumerate(todo):
            X = zoo.features(m)
            batch[m] = X
            size += X.nbytes
            if size >= load_budget or i == len(todo) - 1:
                groups: dict[bytes, list[str]] = {}
                for name in batch:
                    y = np.asarray(zoo.labels(name))
                    groups.setdefault(y.tobytes() + str(y.shape).encode() + str(y.dtype).encode(), []).append(name)
                for names in groups.values():
                    stats = {n: zoo.source_stats(n) for n in names} if ped is not None else None
                    s = score_zoo({n: batch[n] for n in names}, zoo.labels(names[0]), metric=metric, ped=ped, source_stats=stats, **score_zoo_kwargs)
                    out.update(s)
                    if bar is not None:
                        bar.advance(task, len(names))
                batch, size = {}, 0
    finally:
        if bar is not None:
            bar.stop()
    return {m: out[m] for m in zoo.models}


# ----------------------------------------------------------------------------------------------
# pedjax score


def add_cli(sub) -> None:
    p = sub.add_parser(
        "score",
        help="score a zoo read from a results folder (published PED/SFDA layout) or an .npz",
        description="Score every model of a zoo with one transferability metric, optionally after PED. "
        "Reads DIR/{model}_{dataset}_feature.npy and _label.npy (and {model}_imagenet_feature.npy for PED) "
        "as written by the published forward_feature.py, or an .npz zoo.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--results-dir", metavar="DIR", help="folder of {model}_{dataset}_feature.npy / _label.npy files")
    src.add_argument("--zoo", metavar="FILE.npz", help="an .npz zoo (pedjax.results.save_npz_zoo, or the results layout as keys)")
    p.add_argument("--dataset", metavar="NAME", help="target dataset name in the file names (required with --results-dir)")
    p.add_argument("--metric", metavar="M", default="logme", help="transferability metric (default logme; see `pedjax metrics`)")
    p.add_argument("--ped", action="store_true", help="move the features with PED (released defaults) before scoring")
    p.add_argument("--nsigma", type=float, default=None, help="PED ball scale (default 0.6; the paper also uses 0.3); needs --ped")
    p.add_argument("--ped-config", metavar="FILE.json|DIR", help="run PED with a saved config (pedjax meta learn --out FILE.json or DIR, orbax); implies --ped")
    p.add_argument("--source-set", default=DEFAULT_SOURCE, metavar="NAME",
                   help=f"source set whose {{model}}_NAME_feature.npy gives PED's rescaling statistics (default {DEFAULT_SOURCE}); "
                   f"'{TARGET_SOURCE}' uses the target features' own statistics")
    p.add_argument("--model", action="append", metavar="M", help="score only these models (repeatable)")
    p.add_argument("--exclude", action="append", metavar="M", help="leave these models out (repeatable)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help='print JSON: {"scores": {model: score}, "ranking": [...], ...}')
    fmt.add_argument("--csv", action="store_true", help="print CSV: rank,model,score")
    p.add_argument("--plot", metavar="DIR", help="write figures to DIR (scores.png; with --ped also ped_trajectory.png and clusters_<best model>.png)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (it shows only on a terminal)")
    p.set_defaults(func=_cmd_score)


def _cmd_score(args) -> int:
    import pedjax

    metric = _metric(args.metric)
    if args.ped_config is not None:
        if args.nsigma is not None:
            raise ValueError("--nsigma: give either --nsigma or --ped-config (which sets nsigma), not both")
        from .meta import load_config

        args.ped = True
    if args.nsigma is not None and not args.ped:
        raise ValueError("--nsigma sets PED's ball scale; add --ped to run PED")
    zoo = open_zoo(args.results_dir, args.zoo, args.dataset, args.source_set, args.model, args.exclude)
    cfg = pedjax.PEDConfig(nsigma=0.6 if args.nsigma is None else args.nsigma).validate() if args.ped else None
    if args.ped_config is not None:
        cfg = load_config(args.ped_config)
    t0 = time.perf_counter()
    progress = not args.no_progress and sys.stderr.isatty()
    scores = score(zoo, metric, cfg, progress=progress)
    seconds = time.perf_counter() - t0
    ranking = sorted(scores, key=lambda k: -scores[k])
    result = {
        "dataset": zoo.dataset,
        "metric": metric,
        "ped": None if cfg is None else {**dataclasses.asdict(cfg), "source_set": zoo.source},
        "source": zoo.where,
        "scores": scores,
        "ranking": ranking,
        "seconds": round(seconds, 3),
        "pedjax": pedjax.__version__,
    }
    if args.plot:
        from . import plots

        result["figures"] = plots.score_figures(zoo, result, cfg, args.plot)
    if args.json:
        print(json.dumps(result, indent=1))
    elif args.csv:
        print("rank,model,score")
        for i, m in enumerate(ranking, 1):
            print(f"{i},{m},{scores[m]!r}")
    else:
        _print_scores(result)
    return 0


def _print_scores(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console() if sys.stdout.isatty() else Console(width=120)
    label = result["metric"] + (f" + PED (nsigma={result['ped']['nsigma']})" if result["ped"] else "")
    con.print(f"{label} on {result['dataset'] or 'the zoo'}: {len(result['scores'])} models, {result['seconds']:.1f} s")
    t = Table()
    t.add_column("rank", justify="right")
    t.add_column("model")
    t.add_column("score", justify="right")
    for i, m in enumerate(result["ranking"], 1):
        t.add_row(str(i), m, f"{result['scores'][m]:.6g}")
    con.print(t)
    for f in result.get("figures", []):
        con.print(f"wrote {f}")
