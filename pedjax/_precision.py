"""The one precision setting of pedjax's entry points, chosen by backend, without process-wide effects.

``precision`` is one of:

* ``"float64"`` — parity with the published NumPy code (the parity tests' tolerances);
* ``"float32"`` — the fast path on accelerators (TPUs have no native float64; most GPUs run it at
  1/32–1/64 of float32); every metric ± PED is built to rank a zoo in float32 as in float64
  (docs/precision.md states the measured fidelity);
* ``"auto"`` (the default) — ``"float64"`` on the CPU backend, ``"float32"`` on GPU and TPU.

Where it applies: every public metric function (through :func:`pedjax.metrics.register`),
:func:`pedjax.ped`, :func:`pedjax.score_zoo`, :func:`pedjax.ped_zoo`,
:func:`pedjax.scoring.precompile`, the streaming entry points and what is built on them (the
benchmark loop, ``score_set``, ``score_store``). Each is wrapped in :func:`entry_point`, which

1. takes an optional keyword ``precision=`` (``None``: the setting of the surrounding
   :func:`precision` block, else ``"auto"``) and resolves it (:func:`resolve`);
2. runs the call under ``jax.enable_x64(resolved == "float64")`` — JAX's scoped, thread-local
   switch, so a user's own JAX code before and after the call keeps its dtypes;
3. and under ``jax.default_matmul_precision("highest")``: JAX's default float32 product on
   accelerators is reduced (TF32 on recent NVIDIA GPUs, bfloat16 passes on TPUs); inside an entry
   point every ``dot_general`` requests HIGHEST (tested by lowering the entry points).

Nesting: an entry point called from another runs in its caller's resolved precision unless given
its own ``precision=``. Importing pedjax changes no JAX setting, environment variable or XLA flag.
The command line passes ``--precision`` (every command) through :func:`precision` and records the
resolved value in its headers and JSON results.
"""
from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, cast

import jax

from . import _executables

#: the accepted values of every ``precision`` argument and ``--precision`` flag
PRECISIONS = ("auto", "float64", "float32")

_local = threading.local()


def check(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a ``ValueError`` naming the fix.

    Args:
      precision: the value to check.

    Returns:
      ``precision``, unchanged.

    Raises:
      ValueError: ``precision`` is not ``"auto"``, ``"float64"`` or ``"float32"``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision: one of {', '.join(repr(p) for p in PRECISIONS)}, got {precision!r}")
    return precision


def x64_enabled() -> bool:
    """Whether ``jax_enable_x64`` holds here (scoped and thread-local: what ``jax.enable_x64`` set).

    JAX's ``Config`` creates its option attributes at run time, hence the ``cast``.

    Returns:
      ``True`` when 64-bit types are enabled in this thread's scope.
    """
    return bool(cast(Any, jax.config).jax_enable_x64)


def setting() -> str:
    """The precision asked for in this thread: the innermost :func:`precision` block's, else ``"auto"``.

    Returns:
      One of :data:`PRECISIONS` (unresolved: ``"auto"`` stays ``"auto"``).
    """
    return getattr(_local, "setting", None) or "auto"


def auto_choice(backend: str | None = None) -> str:
    """What ``"auto"`` means on ``backend``: float64 on CPU, float32 on GPU and TPU.

    Args:
      backend: a JAX platform name (``"cpu"``, ``"gpu"``, ``"tpu"``, …); ``None``: JAX's default
        backend.

    Returns:
      ``"float64"`` for ``"cpu"``, else ``"float32"``.
    """
    backend = jax.default_backend() if backend is None else backend
    return "float64" if backend == "cpu" else "float32"


def resolve(precision: str | None = None) -> str:
    """``"float64"`` or ``"float32"``: ``precision`` (``None``: :func:`setting`) with ``"auto"`` resolved.

    Args:
      precision: one of :data:`PRECISIONS`, or ``None`` for the surrounding :func:`precision`
        block's setting (``"auto"`` outside any block).

    Returns:
      ``"float64"`` or ``"float32"`` (``"auto"`` through :func:`auto_choice`).

    Raises:
      ValueError: ``precision`` is not one of :data:`PRECISIONS`.
    """
    p = check(setting() if precision is None else precision)
    return auto_choice() if p == "auto" else p


@contextlib.contextmanager
def precision(value: str):
    """Within this block pedjax's entry points compute in ``value`` unless a call passes its own ``precision=``.

    Thread-local and nestable (the innermost block wins; the previous setting is restored on exit).
    It changes no JAX setting itself: each entry point applies it when called.

    >>> with pedjax.precision("float32"):
    ...     scores = pedjax.score_zoo(features, labels, "logme")

    Args:
      value: ``"auto"``, ``"float64"`` or ``"float32"``.

    Returns:
      A context manager (a ``with`` block) that yields ``None``.

    Raises:
      ValueError: ``value`` is not one of :data:`PRECISIONS` (raised on entering the block).
    """
    check(value)
    prev = getattr(_local, "setting", None)
    _local.setting = value
    try:
        yield
    finally:
        _local.setting = prev


_setting_block = precision  # the keyword ``precision`` shadows the function inside entry_point


def float32():
    """``precision("float32")``: pedjax's entry points compute in float32 within this block.

    Returns:
      The context manager of :func:`precision` with ``"float32"``.
    """
    return precision("float32")


def wanted() -> bool:
    """Whether pedjax's entry points compute in float64 here (the resolved setting).

    Returns:
      ``True`` when :func:`resolve` gives ``"float64"``.
    """
    return resolve() == "float64"


@contextlib.contextmanager
def scope(x64: bool | None = None):
    """The context an entry point (or a worker thread it starts) computes in.

    That is ``jax.enable_x64(x64)`` (entered only when it changes the current value) and
    ``jax.default_matmul_precision("highest")``.

    Args:
      x64: whether to compute with 64-bit types; ``None``: :func:`wanted` (the resolved setting).

    Returns:
      A context manager that yields ``None``.
    """
    if x64 is None:
        x64 = wanted()
    with contextlib.ExitStack() as stack:
        if x64_enabled() != x64:
            stack.enter_context(jax.enable_x64(x64))
        stack.enter_context(jax.default_matmul_precision("highest"))
        yield


def entry_point(fn):
    """Decorator of a public entry point: an optional ``precision=`` keyword, the call run in
    :func:`scope` of the resolved precision (see the module docstring).

    Args:
      fn: the function to wrap.

    Returns:
      The wrapper (``functools.wraps`` of ``fn``) with the extra keyword-only argument
      ``precision: str | None = None``; with a value, nested entry points inherit it. The wrapper
      raises ``ValueError`` for a ``precision`` that is not one of :data:`PRECISIONS`. The
      outermost call first keeps the process under the kernel's memory-map limit
      (:func:`pedjax._executables.relieve`).
    """

    @functools.wraps(fn)
    def wrapper(*args, precision: str | None = None, **kwargs):
        depth = getattr(_local, "depth", 0)
        if depth == 0:  # outermost: keep a long process under the memory-map limit (pedjax/_executables.py)
            _executables.relieve(force_check=False)
        _local.depth = depth + 1
        try:
            if precision is None:
                value = resolve()
                with scope(value == "float64"):
                    return fn(*args, **kwargs)
            value = resolve(precision)
            with _setting_block(value), scope(value == "float64"):  # nested entry points inherit it
                return fn(*args, **kwargs)
        finally:
            _local.depth = depth

    return wrapper


def environment() -> dict:
    """What ``pedjax info`` reports: JAX's backend and devices, what ``"auto"`` picks there, and
    whether float64 works on the default device (a float64 product and symmetric eigendecomposition
    are run and checked: TPUs lack native float64, and some backends refuse or emulate it).

    Returns:
      A dict with ``backend``, ``devices`` (``"platform:id kind"`` strings), ``device_count``,
      ``process_count``, ``auto_precision``, ``float64_available`` (``"yes"`` or ``"no (…)"``),
      ``jax`` and ``jaxlib`` (versions).
    """
    import jax.numpy as jnp
    import numpy as np

    devices = jax.devices()
    try:
        with jax.enable_x64(True), jax.default_matmul_precision("highest"):
            a = jnp.asarray(np.array([[2.0, 1.0], [1.0, 2.0]]) * (1 + 2.0 ** -40))
            lam = jnp.linalg.eigh(a @ a)[0]
            ok = lam.dtype == jnp.float64 and abs(float(lam[1]) / float(a[0, 0] + a[0, 1]) ** 2 - 1.0) < 1e-14
        f64 = "yes" if ok else "no (computes, but not to float64 accuracy)"
    except Exception as exc:  # a backend that refuses float64
        f64 = f"no ({type(exc).__name__})"
    return {
        "backend": jax.default_backend(),
        "devices": [f"{d.platform}:{d.id} {getattr(d, 'device_kind', '')}".strip() for d in devices],
        "device_count": len(devices),
        "process_count": jax.process_count(),
        "auto_precision": auto_choice(),
        "float64_available": f64,
        "jax": jax.__version__,
        "jaxlib": getattr(__import__("jaxlib"), "__version__", "?"),
    }
