"""Transferability metrics: one module per metric, each a public ``fn(X, y) -> float`` and a pure
JAX core registered in :data:`REGISTRY` (name -> :class:`~pedjax.metrics._registry.Metric`)."""
from ._registry import REGISTRY, Metric, evaluate, register  # noqa: F401
from .logme import logme, logme_core  # noqa: F401
from .sfda import sfda, sfda_core  # noqa: F401

# Metric modules written by other areas register themselves on import; each is optional until
# it lands so the package always imports.
import importlib as _importlib

for _mod in ("gbc", "hscore", "leep", "nce", "nleep", "parc", "transrate", "etran"):
    try:
        _m = _importlib.import_module(f"{__name__}.{_mod}")
    except ModuleNotFoundError as _e:  # pragma: no cover - only while a module is missing
        if _e.name != f"{__name__}.{_mod}":
            raise
        continue
    for _name in getattr(_m, "__all__", ()):
        globals()[_name] = getattr(_m, _name)

del _importlib, _mod


def names() -> list[str]:
    """Registered metric names, sorted."""
    return sorted(REGISTRY)
