"""Public entry points of the streaming path: statistics, scores, subsamples."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._precision import entry_point
from ..metrics._registry import UNINFORMATIVE
from ..physics import PEDConfig
from ..util import Progress
from ._ped_stats import ped_shifts
from .metrics_from_stats import MULTI_PASS, require_streamable, score_from_stats, stream_pass_metric
from .stats import ArraySource, ClassStats, Engine, IterSource, accumulate, as_source


def _engine(devices, block_rows) -> Engine:
    if isinstance(devices, Engine):
        return devices
    return Engine(devices=devices, block_rows=block_rows)


def _n_blocks(source, engine: Engine) -> int | None:
    if not source.random_access:
        return None
    return engine.n_blocks(source.n, engine.rows_per_block(source.dim))


@entry_point
def compute_stats(features, labels=None, *, classes=None, block_rows: int | None = None, devices=None,
                  progress: bool = False) -> ClassStats:
    """One statistics pass over ``features`` → :class:`~pedjax.streaming.stats.ClassStats` in float64.

    Args:
      features: an array / memmap [N, D] (with ``labels``), a ``.npy`` path (read block by
        block), or an iterable of ``(features, labels)`` blocks (or a callable returning one)
        with ``classes``.
      labels: ``[N]`` labels (array or ``.npy`` path) for an array or file.
      classes: every label value, for an iterable.
      block_rows: rows per block (default: 64 MiB of float64 per block).
      devices: ``None`` every local device (rows of each block split over them), ``"global"``
        every process's devices (:mod:`pedjax.streaming.distributed`), or a list of devices.
      progress: a progress bar over blocks (random-access sources only).

    Returns:
      The :class:`~pedjax.streaming.stats.ClassStats`.

    Raises:
      ValueError: bad features, labels or classes (:func:`~pedjax.streaming.stats.as_source`),
        NaN/inf in a block, or a class of ``classes`` without samples.
      OSError: a ``.npy`` file cannot be read.
    """
    source = as_source(features, labels, classes=classes)
    engine = _engine(devices, block_rows)
    nb = _n_blocks(source, engine)
    with Progress(progress and nb is not None, nb or 0, "statistics", unit="blocks", transient=True) as bar:
        return accumulate(source, engine=engine, progress=bar)


def _as_sources(features, labels, classes) -> dict[str, Any]:
    if isinstance(features, Mapping):
        if not features:
            raise ValueError("features: the zoo is empty; pass at least one model's features")
        return {str(k): as_source(v, labels, classes=classes, name=f"features[{k!r}]") for k, v in features.items()}
    if isinstance(features, (ArraySource, IterSource)) or hasattr(features, "shape") or isinstance(features, str) or callable(features):
        return {"model_0": as_source(features, labels, classes=classes)}
    return {"model_0": as_source(features, labels, classes=classes)}


@entry_point
def score_stream(
    features,
    labels=None,
    metric="logme",
    ped: PEDConfig | None = None,
    source_stats=None,
    *,
    classes=None,
    metric_options: Mapping[str, Any] | None = None,
    block_rows: int | None = None,
    devices=None,
    progress: bool = False,
    with_and_without_ped: bool = False,
):
    """Score a zoo from streamed sufficient statistics; memory O(C·D + D² + one block) per model.

    Args:
      features: ``{name: source}`` or one source; a source is an array / NumPy memmap [N, D]
        (with ``labels``), a ``.npy`` path (memory-mapped), or an iterable of ``(features, labels)``
        blocks (or a callable returning a fresh one per pass, for SFDA) with ``classes``.
      labels: target labels [N] shared by the array sources (array or ``.npy`` path).
      metric: a name, or a list of names (then the result is ``{metric: {name: score}}``):
        ``logme``, ``gbc``, ``hscore``, ``lfc`` (one pass), ``hscore_reg`` (two passes), ``sfda``
        (three passes).
      ped: a :class:`PEDConfig` to move the classes with PED first (no extra pass), or ``None``.
      source_stats: ``{name: (mean [D], std [D])}``; ``None`` with PED: the target's own.
      classes: every label value, for iterable sources (their labels are not known before the
        pass).
      metric_options: keyword options of the metric (``gaussian_type`` for GBC, ``rcond`` for the
        H-scores, ``norm`` for LFC).
      block_rows: rows per block (default: 64 MiB of float64 per block).
      devices: ``None`` (every local device), ``"global"`` (every process; see
        :mod:`pedjax.streaming.distributed`) or a list of devices.
      progress: a progress bar over blocks.
      with_and_without_ped: also return the scores without PED, ``(static, moved)``, from the
        same statistics pass.

    Returns:
      ``{name: score}`` equal to :func:`pedjax.score_zoo` on the same data (to ~1e-12 relative
      in float64; docs/streaming.md); degenerate features score ``-inf``. With a list of
      metrics, ``{metric: {name: score}}``; with ``with_and_without_ped`` (and ``ped``), the
      pair ``(static, moved)`` of these.

    Raises:
      ValueError: a metric that needs the samples (:func:`require_streamable`); ``ped`` not a
        valid :class:`PEDConfig`; an empty ``features`` mapping; ``source_stats`` (with ``ped``)
        missing a model or not matching its features; a multi-pass metric over a one-shot
        iterable; bad features, labels or classes, or NaN/inf in a block.
      OSError: a ``.npy`` file cannot be read.
    """
    metrics = [metric] if isinstance(metric, str) else list(metric)
    for m in metrics:
        require_streamable(m)
    if ped is not None:
        if not isinstance(ped, PEDConfig):
            raise ValueError(f"ped: expected a PEDConfig or None, got {type(ped).__name__}")
        ped.validate()
    opts = dict(metric_options or {})
    sources = _as_sources(features, labels, classes)
    engine = _engine(devices, block_rows)
    if source_stats is not None and ped is not None:
        missing = [k for k in sources if k not in source_stats]
        if missing:
            raise ValueError(f"source_stats: no statistics for model(s) {missing}; give (mean, std) for every model")
    static: dict[str, dict[str, float]] = {m: {} for m in metrics}
    moved: dict[str, dict[str, float]] = {m: {} for m in metrics}
    total: int | None = 0
    for src in sources.values():
        nb = _n_blocks(src, engine)
        if nb is None or total is None:
            total = None
            break
        passes = 1 + sum(MULTI_PASS.get(m, 1) - 1 for m in metrics) * (2 if (ped is not None and with_and_without_ped) else 1)
        total += nb * passes
    with Progress(progress and total is not None, total or 0, f"streaming {len(sources)} model(s)", unit="blocks",
                  transient=True) as bar:
        for name, src in sources.items():
            stats = accumulate(src, engine=engine, progress=bar)
            degenerate = stats.is_degenerate()
            runs = []
            if ped is None or with_and_without_ped:
                runs.append((static, stats, None))
            if ped is not None:
                mean, std = source_stats[name] if source_stats is not None else (None, None)
                delta, _ = ped_shifts(stats, mean, std, ped)
                runs.append((moved, stats.translated(delta), delta))
            for out, st, delta in runs:
                for m in metrics:
                    m_opts = {k: v for k, v in opts.items() if k in _OPTIONS.get(m, ())}
                    if degenerate:
                        out[m][name] = UNINFORMATIVE
                    elif m in MULTI_PASS:
                        out[m][name] = stream_pass_metric(m, src, st, delta, engine=engine, progress=bar, **m_opts)
                    else:
                        out[m][name] = score_from_stats(st, m, **m_opts)
    result = moved if ped is not None else static
    pick = (lambda d: d[metrics[0]]) if isinstance(metric, str) else (lambda d: d)
    if ped is not None and with_and_without_ped:
        return pick(static), pick(moved)
    return pick(result)


_OPTIONS = {"gbc": ("gaussian_type",), "hscore": ("rcond",), "hscore_reg": ("rcond",), "lfc": ("norm",)}


def subsample(features, labels, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A uniform random subset of rows, as float64 in memory: the path for metrics that need samples.

    NLEEP, PARC, ETran and TransRate cannot be computed from sufficient statistics; score them
    on a subsample. Reads only the chosen rows.

    Args:
      features: an array / memmap [N, D] or a ``.npy`` path.
      labels: ``[N]`` labels (array or ``.npy`` path).
      n: rows to keep (at least 2; all N when N ≤ n), chosen without replacement and kept in
        file order.
      seed: seed of the choice.

    Returns:
      ``(X float64 [n, D], y [n])``, ``y`` the original label values.

    Raises:
      ValueError: ``features`` is not random-access (an iterable), ``n`` < 2, or bad features
        or labels.
      OSError: a ``.npy`` file cannot be read.
    """
    src = as_source(features, labels)
    if not isinstance(src, ArraySource):
        raise ValueError("features: subsample needs random access (an array or a .npy file)")
    n = int(n)
    if n < 2:
        raise ValueError(f"n: at least 2 rows, got {n}")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(src.n, size=min(n, src.n), replace=False))
    if src.X is None:  # a .npy file: read the chosen rows one by one
        X = np.concatenate([src.rows(int(i), int(i) + 1)[0] for i in idx]).astype(np.float64)
    else:
        X = np.asarray(src.X[idx], np.float64)
    return X, src.classes[src.codes[idx]]
