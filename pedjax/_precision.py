"""Float64 where pedjax promises parity with the published NumPy code, without process-wide effects.

The rule (docs/design.md, "Precision and process settings"): importing pedjax changes no JAX
setting, no environment variable and no XLA flag. The public entry points that promise float64
parity — every metric function, :func:`pedjax.ped`, :func:`pedjax.score_zoo`,
:func:`pedjax.ped_zoo`, :func:`pedjax.scoring.precompile` and what is built on them — are
decorated with :func:`float64`: they run under ``jax.enable_x64(True)``, JAX's scoped and
thread-local switch, so a user's own JAX code before and after the call keeps its dtypes. Inside
:func:`float32` (e.g. on an accelerator, where float32 is allowed with documented tolerance) they
run in whatever precision the process has. The command line (``pedjax.cli``) turns float64 on for
its own process.
"""
from __future__ import annotations

import contextlib
import functools
import threading

import jax

_local = threading.local()


@contextlib.contextmanager
def float32():
    """Within this block pedjax's entry points run in the process's precision instead of float64."""
    prev = getattr(_local, "float32", False)
    _local.float32 = True
    try:
        yield
    finally:
        _local.float32 = prev


def wanted() -> bool:
    """Whether pedjax's entry points compute in float64 here (not inside :func:`float32`)."""
    return not getattr(_local, "float32", False)


def scope(x64: bool | None = None):
    """The context an entry point (or a worker thread it starts) runs in: ``jax.enable_x64(x64)``,
    with ``x64=None`` meaning "float64 unless inside :func:`float32`"."""
    if x64 is None:
        x64 = wanted() or bool(jax.config.jax_enable_x64)
    if bool(jax.config.jax_enable_x64) == x64:
        return contextlib.nullcontext()
    return jax.enable_x64(x64)


def float64(fn):
    """Decorator: run ``fn`` under float64 (see the module docstring)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with scope():
            return fn(*args, **kwargs)

    return wrapper
