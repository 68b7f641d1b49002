"""The metric registry and the one boundary helper every metric goes through.

A metric is two functions:

* ``core(X, y, num_classes, **options) -> scalar``: pure JAX, ``y`` already coded ``0..C-1``
  (int32), ``num_classes`` static. jit-able and vmap-able over a leading model axis; this is what
  :func:`pedjax.score_zoo` stacks and vmaps.
* the public function (``metrics.logme(X, y)`` …): validates at the boundary, codes the labels,
  calls the jit-compiled core and returns a Python float.

A core whose score can leave float32's range, or its resolution, returns it transformed, and the
metric's ``finish`` maps the core's value to the score on the host in float64 (GBC: the core
returns ``log(−GBC)``, ``finish`` is ``−exp``; SFDA: the core returns 1 − SFDA, which saturated
scores need to stay distinct in float32, ``finish`` is ``1 − value``). Everything that reads a core's value — the public function,
:func:`pedjax.score_zoo`, :mod:`pedjax.streaming`, :mod:`pedjax.meta` — applies ``finish``
(:func:`finish_value` on the host).

Degenerate models (docs/design.md, "Degenerate models and NaN scores"): a feature metric given
features that are constant over the target samples up to rounding
(:func:`pedjax._validate.is_degenerate`) returns its ``uninformative`` value, ``-inf``, without
running the core — such features carry no information, and the rounding noise a core would
read instead can look like perfect class separation. Metrics on probabilities or labels (LEEP,
NCE) compute their own value on a constant input: chance level.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from .._precision import entry_point
from .._validate import as_float_matrix, encode_labels, is_degenerate

#: the score of a model whose features carry no information (ranks below every real score)
UNINFORMATIVE = float("-inf")

#: name -> :class:`Metric`
REGISTRY: dict[str, Metric] = {}
#: what a metric's ``y`` holds (:attr:`Metric.target`)
TARGETS = ("classes", "real")


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
      target: what ``y`` holds: ``"classes"`` (class labels, any values; the core receives them
        coded 0..C-1 with ``num_classes``) or ``"real"`` (real-valued regression targets [N] or
        [N, K]; the core is ``core(X, Y [N, K])`` and PED, which moves classes, does not apply).
      static: names of options that change shapes or control flow (passed as static to jit).
      higher_is_better: all built-in metrics rank "higher score = better model".
      uninformative: the score of degenerate features (``-inf`` for feature metrics); ``None``
        where the metric's own value on a constant input is the chance level (LEEP, NCE).
      citation: the paper (authors, venue, year) and the published code the metric matches.
      zoo: ``None``, or ``(components_core, combine)`` for a metric the published code defines over
        a whole zoo (NCTI min–max scales each term over the models): :func:`pedjax.score_zoo` vmaps
        ``components_core(X, y, num_classes) -> [K]`` and returns ``combine({name: components})``;
        the public per-model function cannot see the zoo and returns its documented per-model value.
      finish: ``None``, or ``finish(value, xp)``: the score from the core's value, elementwise, for
        a core that returns its score transformed because the score itself can leave float32's
        range (GBC: the core returns ``log(−GBC)``, ``finish`` is ``−exp``). Applied on the host in
        float64 with ``xp=numpy`` (:func:`finish_value`), or inside traced code with
        ``xp=jax.numpy``.
      batch: how :func:`pedjax.score_zoo` runs the metric over a stacked model axis: ``"vmap"``
        (one batched program of the core) or ``"host"`` (PED, if any, batched as usual, then the
        public function per model — for metrics whose public path picks shapes from the data,
        like NLEEP's PCA width, which a traced core must instead pad to a bound).
    """

    name: str
    fn: Callable[..., float]
    core: Callable[..., Any]
    input: str = "features"
    target: str = "classes"
    static: tuple[str, ...] = ()
    higher_is_better: bool = True
    batch: str = "vmap"
    uninformative: float | None = UNINFORMATIVE
    citation: str = ""
    zoo: tuple[Callable[..., Any], Callable[..., dict]] | None = None
    finish: Callable[[Any, Any], Any] | None = None

    def __call__(self, *args, **kwargs) -> float:
        return self.fn(*args, **kwargs)


def register(name: str, core: Callable, *, input: str = "features", target: str = "classes",
             static: tuple[str, ...] = (), batch: str = "vmap", citation: str = "",
             zoo: tuple[Callable[..., Any], Callable[..., dict]] | None = None,
             finish: Callable[[Any, Any], Any] | None = None):
    """Decorator for a public metric function: records it with its JAX core in :data:`REGISTRY`.

    The function is returned wrapped in :func:`pedjax._precision.entry_point`: it takes an optional
    ``precision=`` keyword and computes in the resolved precision without changing the caller's
    JAX settings. A feature metric on class labels (``input="features"``, ``target="classes"``)
    is also wrapped so that degenerate features return :data:`UNINFORMATIVE` after validation.

    Args:
      name: the registry key (and the name ``score_zoo`` and the command line use).
      core: the pure JAX core, :attr:`Metric.core`.
      input: what ``X`` holds: ``"features"``, ``"probs"`` or ``"labels"`` (:attr:`Metric.input`).
      target: what ``y`` holds: ``"classes"`` or ``"real"`` (:attr:`Metric.target`).
      static: names of the core's options to pass as static to ``jax.jit``.
      batch: ``"vmap"`` or ``"host"``: how :func:`pedjax.score_zoo` runs it (:attr:`Metric.batch`).
      citation: the paper and the published code it matches (shown by ``pedjax metrics``).
      zoo: ``None``, or ``(components_core, combine)`` for a zoo-level metric (:attr:`Metric.zoo`).
      finish: ``None``, or the map from the core's value to the score (:attr:`Metric.finish`).

    Returns:
      The decorator: it registers the function and returns the wrapped public function, which
      carries the core as its attribute ``core``.

    Raises:
      ValueError: ``batch`` is not ``"vmap"`` or ``"host"``, or ``target`` is not one of
        ``("classes", "real")``.
    """
    if batch not in ("vmap", "host"):
        raise ValueError(f"batch: 'vmap' or 'host', got {batch!r}")
    if target not in TARGETS:
        raise ValueError(f"target: one of {TARGETS}, got {target!r}")

    def deco(fn):
        fn = entry_point(fn)
        if input == "features" and target == "classes":  # a real-target metric validates its own y
            fn = _uninformative_guard(fn)
        REGISTRY[name] = Metric(name=name, fn=fn, core=core, input=input, target=target, static=tuple(static), batch=batch,
                                uninformative=UNINFORMATIVE if input == "features" else None, citation=citation, zoo=zoo,
                                finish=finish)
        fn.core = core
        return fn

    return deco


def _uninformative_guard(fn):
    """``fn`` returning :data:`UNINFORMATIVE` for degenerate features (after validating them)."""
    params = list(inspect.signature(fn).parameters)

    @functools.wraps(fn)
    def public(*args, **kwargs):
        X = args[0] if args else kwargs.get(params[0])
        if is_degenerate(X):
            y = args[1] if len(args) > 1 else kwargs.get(params[1])
            codes, _ = encode_labels(y, "y")
            as_float_matrix(X, "X", n=codes.shape[0])
            return UNINFORMATIVE
        return fn(*args, **kwargs)

    return public


def _metric_of(core: Callable) -> Metric | None:
    for m in REGISTRY.values():
        if m.core is core:
            return m
    return None


def finish_value(m: Metric, value: Any) -> np.ndarray:
    """A metric's scores from its core's values, on the host in float64 (:attr:`Metric.finish`;
    the values as float64 where the metric has none).

    Args:
      m: the metric.
      value: the core's value(s), a scalar or array (JAX or NumPy).

    Returns:
      The scores as a float64 NumPy array of ``value``'s shape.
    """
    v = np.asarray(value, np.float64)
    return v if m.finish is None else np.asarray(m.finish(v, np), np.float64)


@functools.cache
def jitted(core: Callable, static: tuple[str, ...] = ()) -> Callable:
    """``jax.jit(core)`` with ``num_classes`` and the metric's static options marked static."""
    return jax.jit(core, static_argnames=("num_classes",) + tuple(static))


def evaluate(core: Callable, X: Any, y: Any, *, x_name: str = "X", static: tuple[str, ...] = (), **options) -> float:
    """Validate ``X``/``y``, code the labels and run the compiled core: the body of a public metric.

    Args:
      core: a registered core ``core(X, y, num_classes, **options)``.
      X: the model's input [N, D] (features, probabilities or one-hot labels), array-like.
      y: [N] integer class labels, any values (coded 0..C-1 in sorted order), at least 2 classes.
      x_name: the name of ``X`` in error messages (e.g. ``"source_probs"``).
      static: names of ``options`` that are static for ``jax.jit``.
      **options: the core's keyword options, passed through.

    Returns:
      The core's value (after the metric's ``finish``, if any) as a Python float; :data:`UNINFORMATIVE` (``-inf``) without running the
      core for degenerate features when ``core`` is a feature metric's.

    Raises:
      ValueError: ``y`` is not a 1-D integer label vector with at least 2 classes, or ``X`` is not
        a finite numeric 2-D array with one row per label (the message names the argument).
    """
    codes, classes = encode_labels(y, "y")
    Xv = as_float_matrix(X, x_name, n=codes.shape[0])
    m = _metric_of(core)
    if (m is None or m.input == "features") and is_degenerate(X):
        return UNINFORMATIVE
    out = jitted(core, tuple(static))(Xv, codes, num_classes=int(classes.size), **options)
    return float(np.asarray(out) if m is None else finish_value(m, out))
