"""Host kernels shared by the metrics: dense products (and, in :mod:`pedjax.metrics._parc`, sorting).

``gram(X) = Xᵀ X`` dominates SFDA and LogME (an N·D² product). XLA's CPU backend computes
float64 matrix products with Eigen, several times slower than the host's optimised BLAS that
NumPy links (docs/design.md, "Float64 and the CPU", has the measurement). On the CPU backend, for
float64 inputs large enough to matter, ``gram`` therefore calls the host BLAS through
``jax.pure_callback``; everywhere else (GPU/TPU, float32, small inputs) it is a plain XLA
product. It stays jit-, vmap- and differentiation-friendly (custom JVP), and gives the same
numbers to rounding.

:func:`host_kernels_enabled` is the one switch for every such host path (this product, LogME's
tridiagonal eigenvalues, NLEEP's EM products, PARC's rank statistics). It is consulted while a
program is traced, and no jit cache keys on it, so it must not change under a running process:

* ``PEDJAX_HOST_BLAS=0`` switches the host kernels off. It is read **once, when pedjax is
  imported** (:data:`HOST_BLAS`); setting it later has no effect (set it before starting Python).
* :func:`host_kernels` switches them for a ``with`` block (tests and benchmarks comparing both
  paths). It clears JAX's in-memory caches on entry and on exit, so no program compiled under one
  setting is reused under the other (the persistent compilation cache keys on the program text,
  which differs). It is process-wide: not for use while other threads run JAX.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

#: products smaller than this many multiply-adds stay in XLA (callback overhead dominates)
_HOST_BLAS_MIN_FLOPS = 5e7

#: ``PEDJAX_HOST_BLAS`` as it was when pedjax was imported (``0``: no host kernels); fixed for the
#: life of the process
HOST_BLAS: bool = os.environ.get("PEDJAX_HOST_BLAS", "1") != "0"

_override: bool | None = None  # set only inside host_kernels(...)


def host_kernels_enabled() -> bool:
    """Whether host (NumPy/LAPACK) kernels may replace XLA ones.

    Returns:
      ``True`` on the CPU backend with one local device and ``jax_enable_x64`` on process-wide,
      when :data:`HOST_BLAS` (``PEDJAX_HOST_BLAS`` at import) allows it, unless
      :func:`host_kernels` says otherwise.
    """
    enabled = HOST_BLAS if _override is None else _override
    # one CPU device only: host callbacks issued from several CPU devices at once can deadlock;
    # x64 on process-wide: JAX runs a callback in a thread that does not see an entry point's scoped
    # enable_x64, and there casts the callback's float64 result to float32 and fails the call
    return enabled and _x64_process_wide() and jax.default_backend() == "cpu" and jax.local_device_count() == 1


def _x64_process_wide() -> bool:
    """Whether ``jax_enable_x64`` is on for the whole process (not only in a scope); False when
    this JAX version does not say (the XLA paths are then used: same numbers, slower)."""
    try:
        from jax._src import config as _config

        return bool(_config.enable_x64.get_global())
    except Exception:  # pragma: no cover - a JAX without the attribute
        return False


@contextlib.contextmanager
def host_kernels(enabled: bool) -> Iterator[None]:
    """Context manager: within the block, host kernels are on or off, whatever ``PEDJAX_HOST_BLAS`` said.

    JAX's in-memory caches are cleared on entry and on exit (:func:`jax.clear_caches`): a jitted
    function traced outside the block is traced again inside it, and again after it.
    Process-wide; not for use while other threads run JAX.

    Args:
      enabled: ``True``: on (where the backend allows them); ``False``: off.

    Yields:
      Nothing.
    """
    global _override
    previous = _override
    jax.clear_caches()
    _override = bool(enabled)
    try:
        yield
    finally:
        _override = previous
        jax.clear_caches()


def _host_gram(x):
    x = np.asarray(x)
    return x.T @ x  # NumPy dispatches AᵀA to BLAS syrk/gemm


@jax.custom_jvp
def _gram_callback(X):
    out = jax.ShapeDtypeStruct((X.shape[1], X.shape[1]), X.dtype)
    return jax.pure_callback(_host_gram, out, X, vmap_method="sequential")


@_gram_callback.defjvp
def _gram_jvp(primals, tangents):
    (X,), (dX,) = primals, tangents
    G = _gram_callback(X)
    dG = dX.T @ X
    return G, dG + dG.T


def gram(X: jax.Array) -> jax.Array:
    """``Xᵀ X``: through the host BLAS for large float64 inputs on the CPU backend, else XLA.

    Args:
      X: ``[N, D]``.

    Returns:
      ``[D, D]`` in ``X``'s dtype (differentiable: a custom JVP covers the host path).
    """
    N, D = X.shape
    if X.dtype == jnp.float64 and N * D * D >= _HOST_BLAS_MIN_FLOPS and host_kernels_enabled():
        return _gram_callback(X)
    return X.T @ X
