"""The one home of pedjax's shared helpers: atomic writes, JSON conversion, hashing, provenance and
progress bars. Every layer may import it; it imports nothing of pedjax.

* :func:`atomic_path` / :func:`atomic_write_text` / :func:`atomic_write_json`: a file appears whole
  or not at all (temporary file in the same folder, ``fsync``, ``os.replace``); a failure removes
  the temporary file and leaves any previous version untouched.
* :func:`to_jsonable`: NumPy scalars and arrays to Python, tuples to lists, non-finite floats to
  ``None`` (strict JSON has no NaN).
* :func:`sha1_arrays`, :func:`sha1_json`: content hashes of arrays (shape, dtype, bytes) and of
  JSON records (the fingerprints that decide whether a resumed build may reuse a finished unit).
* :func:`git_commit`: the commit of the pedjax checkout, for provenance records.
* :class:`Progress`: a rich progress bar that is a no-op when disabled.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The caller writes the temporary file (any writer: ``np.savez``, ``open``, …). On an
    exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def to_jsonable(obj: Any) -> Any:
    """``obj`` with NumPy scalars/arrays as Python values, tuples as lists and NaN/inf as ``None``."""
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, str) else k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps_json(obj: Any, indent: int | None = 1) -> str:
    """Strict JSON of :func:`to_jsonable` ``(obj)`` (never a bare ``NaN``)."""
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    """Write ``obj`` (through :func:`to_jsonable`) as strict JSON to ``path``, atomically."""
    return atomic_write_text(path, dumps_json(obj, indent=indent) + "\n")


def sha1_arrays(*arrays) -> str:
    """SHA-1 over the shapes, dtypes and bytes of ``arrays``."""
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def sha1_json(obj: Any) -> str:
    """SHA-1 of ``json.dumps(obj, sort_keys=True, default=str)``: the fingerprint of a configuration
    record."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def git_commit() -> str:
    """The commit of the pedjax checkout (``unknown`` outside a git work tree)."""
    try:
        return subprocess.check_output(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, text=True, stderr=subprocess.DEVNULL
        ).strip()
    except Exception:
        return "unknown"


class Progress:
    """A rich progress bar (to stderr) over ``total`` units; every method is a no-op when disabled."""

    def __init__(self, enabled: bool, total: int, label: str, unit: str = "steps", transient: bool = False):
        self._p = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as _RichProgress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._p = _RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn(unit), TimeElapsedColumn(), TimeRemainingColumn(),
                console=Console(stderr=True), transient=transient,
            )
            self._p.start()
            self._task = self._p.add_task(label, total=total)

    def advance(self, n: int = 1) -> None:
        if self._p is not None and n:
            self._p.advance(self._task, n)

    def close(self) -> None:
        if self._p is not None:
            self._p.stop()
            self._p = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
