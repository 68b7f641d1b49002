"""Load the published PED/SFDA ``metrics.py`` at run time for side-by-side benchmarks.

Point ``--reference`` at a local checkout of github.com/lixiaotong97/PED (its ``metrics.py`` and
``utils.py``). Its module imports torch and a model package it never uses for scoring; those are
stubbed here so no PyTorch install is needed. Nothing of it is copied into pedjax.
"""
from __future__ import annotations

import contextlib
import io
import sys
import types
from pathlib import Path


def load_reference(path: str | Path):
    path = Path(path)
    if not (path / "metrics.py").exists():
        raise SystemExit(f"--reference: {path} has no metrics.py; pass a checkout of lixiaotong97/PED")
    import scipy.stats  # noqa: F401  (scipy probes torch.Tensor on import: import it before the stubs)
    import sklearn.decomposition  # noqa: F401
    import sklearn.mixture  # noqa: F401

    for name in ("torch", "torch.nn", "models", "models.group1", "tqdm"):
        sys.modules.setdefault(name, types.ModuleType(name))
    torch = sys.modules["torch"]
    torch.nn = sys.modules["torch.nn"]
    if not hasattr(torch, "Tensor"):
        torch.Tensor = type("Tensor", (), {})
    sys.modules["torch.nn"].Module = object
    sys.modules["tqdm"].tqdm = lambda x, *a, **k: x
    sys.path.insert(0, str(path))
    try:
        import metrics as ref  # the published module
    finally:
        sys.path.remove(str(path))
    return ref


def quiet(fn, *args, **kwargs):
    """Call ``fn`` with its prints swallowed (the published code prints on every step)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)
