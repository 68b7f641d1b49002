"""The metric registry and the one boundary helper every metric goes through.

A metric is two functions:

* ``core(X, y, num_classes, **options) -> scalar``: pure JAX, ``y`` already coded ``0..C-1``
  (int32), ``num_classes`` static. jit-able and vmap-able over a leading model axis; this is what
  :func:`pedjax.score_zoo` stacks and vmaps.
* the public function (``metrics.logme(X, y)`` …): validates at the boundary, codes the labels,
  calls the jit-compiled core and returns a Python float.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import numpy as np

from .._precision import float64
from .._validate import as_float_matrix, encode_labels

#: name -> :class:`Metric`
REGISTRY: dict[str, "Metric"] = {}


@dataclasses.dataclass(frozen=True)
class Metric:
    """A registered transferability metric.

    Attributes:
      name: registry key.
      fn: the public function ``fn(X, y, **options) -> float``.
      core: pure JAX ``core(X [N, D], y int32 [N], num_classes, **options) -> scalar``.
      input: what ``X`` holds: ``"features"`` (embeddings; PED applies), ``"probs"`` (source-model
        class probabilities, e.g. LEEP) or ``"labels"`` (source-model hard labels, e.g. NCE; the
        core receives them one-hot).
      static: names of options that change shapes or control flow (passed as static to jit).
      higher_is_better: all built-in metrics rank "higher score = better model".
      batch: how :func:`pedjax.score_zoo` runs the metric over a stacked model axis: ``"vmap"``
        (one batched program of the core) or ``"host"`` (PED, if any, batched as usual, then the
        public function per model — for metrics whose public path picks shapes from the data,
        like NLEEP's PCA width, which a traced core must instead pad to a bound).
    """

    name: str
    fn: Callable[..., float]
    core: Callable[..., Any]
    input: str = "features"
    static: tuple[str, ...] = ()
    higher_is_better: bool = True
    batch: str = "vmap"

    def __call__(self, *args, **kwargs) -> float:
        return self.fn(*args, **kwargs)


def register(name: str, core: Callable, *, input: str = "features", static: tuple[str, ...] = (), batch: str = "vmap"):
    """Decorator for a public metric function: records it with its JAX core in :data:`REGISTRY`.

    The function is returned wrapped in :func:`pedjax._precision.float64` (it computes in float64
    without changing the caller's JAX settings).
    """
    if batch not in ("vmap", "host"):
        raise ValueError(f"batch: 'vmap' or 'host', got {batch!r}")

    def deco(fn):
        fn = float64(fn)
        REGISTRY[name] = Metric(name=name, fn=fn, core=core, input=input, static=tuple(static), batch=batch)
        fn.core = core
        return fn

    return deco


@functools.lru_cache(maxsize=None)
def jitted(core: Callable, static: tuple[str, ...] = ()) -> Callable:
    """``jax.jit(core)`` with ``num_classes`` and the metric's static options marked static."""
    return jax.jit(core, static_argnames=("num_classes",) + tuple(static))


def evaluate(core: Callable, X: Any, y: Any, *, x_name: str = "X", static: tuple[str, ...] = (), **options) -> float:
    """Validate ``X``/``y``, code the labels and run the compiled core; returns a Python float."""
    codes, classes = encode_labels(y, "y")
    Xv = as_float_matrix(X, x_name, n=codes.shape[0])
    out = jitted(core, tuple(static))(Xv, codes, num_classes=int(classes.size), **options)
    return float(np.asarray(out))
