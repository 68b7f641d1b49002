"""Input validation at the API boundary.

Every public entry point (metrics, PED, ``score_zoo``) calls these helpers before any JAX work,
so bad input fails early with a ``ValueError`` that names the argument, the problem and the fix.
Inside the compiled code nothing is checked again.

The helpers raise :class:`ParamError`, a ``ValueError`` that also carries the parameter's name in
a field (``exc.param``): the command line maps it to its flag (``cli._common.as_flags``) without
reading the message.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class ParamError(ValueError):
    """A bad value of one named parameter.

    Attributes:
      param: the parameter's name as the caller wrote it (``"X"``, ``"k"``,
        ``"source_stats['m'] std"``).
      problem: what is wrong and how to fix it.

    The message is ``"param: problem"``; being a ``ValueError``, every ``except ValueError`` and
    ``pytest.raises(ValueError, match=...)`` sees it as before.
    """

    def __init__(self, param: str, problem: str):
        super().__init__(f"{param}: {problem}")
        self.param = param
        self.problem = problem

    def __reduce__(self):  # picklable (across processes) with both fields
        return (type(self), (self.param, self.problem))


def _default_float():
    import jax

    return np.dtype(np.float64 if jax.config.jax_enable_x64 else np.float32)


def as_float_matrix(X: Any, name: str = "X", *, n: int | None = None) -> np.ndarray:
    """``X`` as a finite 2-D array [N, D] of the default float type.

    The default float type is float64 when x64 is on (pedjax's default; float32 features, e.g.
    from ``.npy`` files, are promoted, as the published NumPy code does), float32 otherwise. One
    dtype per width also means one compiled program.

    Args:
      X: the features, array-like ``[N, D]`` (numeric or bool).
      name: the argument's name in errors.
      n: the expected number of rows (the labels' length), or ``None``.

    Returns:
      The array in the default float type (a copy when converted).

    Raises:
      ParamError: not convertible, not numeric, not 2-D, empty, ``n`` rows expected and not
        found, or NaN/inf entries.
    """
    try:
        arr = np.asarray(X)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise ParamError(name, f"could not be converted to an array ({exc})") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ParamError(name, f"expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ParamError(
            name, f"expected a 2-D array [N, D], got shape {arr.shape}; "
            "reshape to (n_samples, n_features)"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ParamError(name, f"empty array of shape {arr.shape}; need at least one sample and one feature")
    if n is not None and arr.shape[0] != n:
        raise ParamError(
            name, f"has {arr.shape[0]} rows but the labels have {n} entries; "
            "features and labels must describe the same samples"
        )
    target = _default_float()
    if arr.dtype != target:
        arr = arr.astype(target)
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ParamError(name, f"contains {bad} NaN or infinite value(s); clean or impute them first")
    return arr


def encode_labels(y: Any, name: str = "y", *, min_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Map any integer labels to ``0..C-1`` (sorted order, like ``np.unique``).

    Scores never depend on the label values, only on the partition they define, so labels
    {3, 7, 42} score exactly as {0, 1, 2}.

    Args:
      y: labels ``[N]``: integers, bools, or integral finite floats.
      name: the argument's name in errors.
      min_classes: the fewest distinct classes accepted.

    Returns:
      ``(codes int32 [N], classes [C])``.

    Raises:
      ParamError: not 1-D, empty, non-integral or non-finite values, a non-integer dtype, or
        fewer than ``min_classes`` classes.
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ParamError(name, f"expected a 1-D array of class labels, got shape {arr.shape}")
    if arr.size == 0:
        raise ParamError(name, "is empty; need one label per sample")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ParamError(name, "contains NaN or infinite labels")
        if not np.all(arr == np.round(arr)):
            raise ParamError(name, "labels must be integers (got non-integral floats)")
        arr = arr.astype(np.int64)
    elif not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise ParamError(name, f"labels must be integers, got dtype {arr.dtype}")
    classes, codes = np.unique(arr, return_inverse=True)
    if classes.size < min_classes:
        raise ParamError(
            name, f"found {classes.size} class(es) {classes.tolist()[:5]}; "
            f"need at least {min_classes} distinct classes to measure transferability"
        )
    return codes.astype(np.int32).reshape(-1), classes


def check_vector(v: Any, name: str, d: int) -> np.ndarray:
    """A finite float vector of length ``d`` (source statistics).

    Args:
      v: the vector, array-like.
      name: the argument's name in errors.
      d: the expected length (the feature dimension).

    Returns:
      The vector as a float array (integers converted to float64).

    Raises:
      ParamError: not of shape ``(d,)``, or NaN/inf entries.
    """
    arr = np.asarray(v)
    if arr.ndim != 1 or arr.shape[0] != d:
        raise ParamError(
            name, f"expected shape ({d},) to match the feature dimension, got {arr.shape}; "
            "source statistics must come from the same model as the features"
        )
    arr = arr.astype(np.float64) if not np.issubdtype(arr.dtype, np.floating) else arr
    if not np.all(np.isfinite(arr)):
        raise ParamError(name, "contains NaN or infinite values")
    return arr


def check_std(v: Any, name: str, d: int, *, allow_all_zero: bool = False) -> np.ndarray:
    """A finite, non-negative standard-deviation vector of length ``d`` (source statistics).

    A zero entry is a dimension that is constant on the source set (a dead unit): PED floors it
    at ``PEDConfig.eps``.

    Args:
      v: the vector, array-like.
      name: the argument's name in errors.
      d: the expected length.
      allow_all_zero: accept a vector that is zero everywhere (for a model whose target
        features are degenerate too, which is scored as uninformative anyway).

    Returns:
      The vector as a float array.

    Raises:
      ParamError: as :func:`check_vector`, a negative entry, or (unless ``allow_all_zero``) all
        entries zero (the model's source features are constant: nothing to rescale by).
    """
    arr = check_vector(v, name, d)
    if np.any(arr < 0):
        raise ParamError(name, f"contains {int(np.count_nonzero(arr < 0))} negative value(s); a standard deviation is ≥ 0")
    if not allow_all_zero and not np.any(arr > 0):
        raise ParamError(name, "is zero in every dimension (constant source features); "
                         "source statistics must come from the model's features on a varied source set")
    return arr


def check_choice(value: str, name: str, choices) -> str:
    """``value`` when it is one of ``choices``.

    Args:
      value: the given value.
      name: the argument's name in errors.
      choices: the accepted values.

    Returns:
      ``value``.

    Raises:
      ParamError: ``value`` is not in ``choices`` (the message lists them, sorted).
    """
    if value not in choices:
        raise ParamError(name, f"unknown value {value!r}; choose one of {sorted(choices)}")
    return value


def load_json(path, arg: str, missing: str):
    """The JSON content of a file, with errors that name the argument.

    Args:
      path: the file.
      arg: the argument (or flag) the errors name.
      missing: what to say when there is no such file (the fix).

    Returns:
      The parsed JSON value.

    Raises:
      FileNotFoundError: "``arg``: ``missing``" when there is no such file.
      ParamError: naming ``arg`` and the position when it is not valid JSON.
    """
    import json
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{arg}: {missing}")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ParamError(arg, f"{p} is not valid JSON ({exc.msg} at line {exc.lineno})") from None


#: a feature dimension is dead when its spread over the target samples is at most this many
#: units of rounding (of the input's dtype) relative to its own magnitude (docs/design.md,
#: "Degenerate models and NaN scores")
DEGENERATE_ULPS = 64


def rounding_eps(X: Any) -> float:
    """Machine epsilon of ``X``'s own float dtype (before any promotion).

    Args:
      X: an array (or anything with a ``dtype``).

    Returns:
      The dtype's epsilon; float64's for integers and objects without a float dtype.
    """
    dt = getattr(X, "dtype", None)
    if dt is not None and np.issubdtype(np.dtype(dt), np.floating):
        return float(np.finfo(np.dtype(dt)).eps)
    return float(np.finfo(np.float64).eps)


def dead_dimensions(X: Any, eps: float | None = None) -> np.ndarray:
    """Boolean [D]: dimensions of features ``X`` [N, D] that carry no information on these samples.

    Dimension d is dead when ``std_d(X) ≤ DEGENERATE_ULPS · eps · max_i |X_id|`` (zero spread
    included), with ``eps`` the rounding unit of ``X``'s dtype. The test is scale-free: it is
    computed on ``X_d / max|X_d|``, so multiplying a dimension by any power of ten (even near the
    float range's ends, where ``var`` would underflow) does not change it.

    Args:
      X: features ``[N, D]``.
      eps: the rounding unit; default :func:`rounding_eps` of ``X``.

    Returns:
      Boolean ``[D]``, True where the dimension is dead.

    Raises:
      ParamError: ``X`` is not 2-D.
    """
    eps = rounding_eps(X) if eps is None else float(eps)
    A = np.asarray(X, dtype=np.float64)
    if A.ndim != 2:
        raise ParamError("X", f"expected a 2-D array [N, D], got shape {A.shape}")
    scale = np.max(np.abs(A), axis=0) if A.shape[0] else np.zeros(A.shape[1])
    with np.errstate(invalid="ignore", over="ignore"):
        Z = A / np.where(scale > 0, scale, 1.0)
        spread = Z.std(axis=0) if A.shape[0] else np.zeros(A.shape[1])
    return ~(spread > DEGENERATE_ULPS * eps)


def is_degenerate(X: Any, eps: float | None = None) -> bool:
    """Whether every dimension of features ``X`` is dead (:func:`dead_dimensions`).

    Such a model maps all target samples to one point up to rounding and carries no information.
    Non-finite, non-numeric, empty or non-2-D input is never called degenerate (validation
    reports it).

    Args:
      X: features ``[N, D]``.
      eps: the rounding unit; default :func:`rounding_eps` of ``X``.

    Returns:
      ``True`` when degenerate.
    """
    try:
        A = np.asarray(X)
    except Exception:
        return False
    if A.ndim != 2 or A.size == 0 or A.dtype == object or not (np.issubdtype(A.dtype, np.number) or A.dtype == bool):
        return False
    if np.issubdtype(A.dtype, np.complexfloating) or not np.all(np.isfinite(A)):
        return False
    return bool(np.all(dead_dimensions(A, eps)))
