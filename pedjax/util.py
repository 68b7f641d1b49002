"""The one home of pedjax's shared helpers: atomic writes, JSON conversion, hashing, provenance and
progress bars. Every layer may import it; it imports nothing of pedjax.

* :func:`atomic_path` / :func:`atomic_write_text` / :func:`atomic_write_json` /
  :func:`atomic_save_npy` / :func:`atomic_savez`: a file appears whole
  or not at all (temporary file in the same folder, ``fsync``, ``os.replace``); a failure removes
  the temporary file and leaves any previous version untouched. The file gets the permissions
  ``open()`` would give it (``0o666`` less the umask), folders those of ``mkdir`` (``0o777`` less
  the umask): see :func:`_create_temporary`.
* :func:`to_jsonable`: NumPy scalars and arrays to Python, tuples to lists, non-finite floats to
  ``None`` (strict JSON has no NaN).
* :func:`sha1_arrays`, :func:`sha1_json`: content hashes of arrays (shape, dtype, bytes) and of
  JSON records (the fingerprints that decide whether a resumed build may reuse a finished unit).
* :func:`git_commit`: the commit of the pedjax checkout, for provenance records.
* :class:`Progress`: a rich progress bar that is a no-op when disabled; :func:`tracked` iterates with one.
* :func:`output_lock`: one writer per output directory (``fcntl.flock`` on ``DIR/.pedjax.lock``);
  a second run refuses at once with :class:`OutputLocked` naming the holder.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

#: mode of a new file before the umask, as ``open()`` and NumPy's writers use
FILE_MODE = 0o666


def _create_temporary(folder: Path, prefix: str, suffix: str) -> Path:
    """Create an empty, new file ``folder/prefix<random>suffix`` and return its path.

    Not ``tempfile.mkstemp``: that creates the file with mode ``0o600`` whatever the umask, and the
    rename would hand every result to its owner only. Here the kernel applies the process's umask
    (and any default ACL of the folder) itself, exactly as for ``open(path, "w")``: mode
    ``0o666 & ~umask``. Nothing reads or changes the umask (``os.umask`` is process-wide, so
    reading it means setting it, which races with other threads); ``O_EXCL`` makes the name ours.
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = folder / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(tmp, flags, FILE_MODE))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{folder}: no free temporary file name {prefix}*{suffix}")  # pragma: no cover


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Context manager: a temporary path beside ``path`` that replaces ``path`` atomically on success.

    The caller writes the temporary file (any writer: ``np.savez``, ``open``, …). On an
    exception the temporary file is removed and ``path`` is left as it was. The file ends up with
    the permissions ``open()`` gives a new file under the current umask (``0o666 & ~umask``); a
    missing parent folder is created as ``mkdir -p`` would (``0o777 & ~umask``).

    Args:
      path: the destination file.
      suffix: the temporary file's suffix (some writers append their own otherwise).

    Yields:
      The temporary file's path (created empty).

    Raises:
      OSError: the folder cannot be created or written, or the rename fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temporary(path.parent, f".{path.name}.", suffix)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_save_npy(path: str | os.PathLike, array) -> Path:
    """``np.save`` to ``path`` (ending in ``.npy``), atomically (:func:`atomic_path`).

    Args:
      path: the destination file.
      array: the array (no pickles: object arrays fail).

    Returns:
      ``path`` as a :class:`~pathlib.Path`.

    Raises:
      OSError: the file cannot be written.
      ValueError: ``array`` holds Python objects.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.asarray(array), allow_pickle=False)
    return Path(path)


def atomic_savez(path: str | os.PathLike, **arrays) -> Path:
    """``np.savez`` to ``path`` (``.npz`` appended when missing, as NumPy does), atomically.

    Args:
      path: the destination file.
      **arrays: the arrays, by key.

    Returns:
      The written file's path.

    Raises:
      OSError: the file cannot be written.
    """
    path = Path(path)
    path = path if path.suffix == ".npz" else path.with_name(path.name + ".npz")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`).

    Args:
      path: the destination file.
      text: the content (UTF-8 as ``Path.write_text`` writes it).

    Returns:
      ``path`` as a :class:`~pathlib.Path`.

    Raises:
      OSError: the file cannot be written.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def to_jsonable(obj: Any) -> Any:
    """``obj`` with NumPy scalars/arrays as Python values, tuples as lists and NaN/inf as ``None``.

    Args:
      obj: any nesting of dicts, lists, tuples, NumPy arrays and scalars (dict keys become strings).

    Returns:
      The converted object; other values are returned as they are.
    """
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
    """Strict JSON of :func:`to_jsonable` ``(obj)`` (never a bare ``NaN``).

    Args:
      obj: the object.
      indent: ``json.dumps``' indent (``None``: one line).

    Returns:
      The JSON text.

    Raises:
      TypeError: a value JSON cannot represent.
    """
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    """Write ``obj`` (through :func:`to_jsonable`) as strict JSON to ``path``, atomically.

    Args:
      path: the destination file.
      obj: the object.
      indent: the JSON indent.

    Returns:
      ``path`` as a :class:`~pathlib.Path`.

    Raises:
      TypeError: a value JSON cannot represent.
      OSError: the file cannot be written.
    """
    return atomic_write_text(path, dumps_json(obj, indent=indent) + "\n")


def sha1_arrays(*arrays) -> str:
    """SHA-1 over the shapes, dtypes and bytes of ``arrays``.

    Args:
      *arrays: array-likes (hashed as C-contiguous arrays, in order).

    Returns:
      The hex digest.
    """
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def sha1_json(obj: Any) -> str:
    """SHA-1 of ``json.dumps(obj, sort_keys=True, default=str)``: the fingerprint of a configuration record.

    Args:
      obj: a JSON-like record (values JSON cannot hold are hashed by their ``str``).

    Returns:
      The hex digest.
    """
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def git_commit() -> str:
    """The commit of the pedjax checkout, for provenance records.

    Returns:
      The ``HEAD`` commit's hash, or ``"unknown"`` outside a git work tree (or without git).
    """
    try:
        return subprocess.check_output(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, text=True, stderr=subprocess.DEVNULL
        ).strip()
    except Exception:
        return "unknown"


class Progress:
    """A rich progress bar (to stderr) over ``total`` units; every method is a no-op when disabled.

    A context manager that closes the bar on exit.

    Args:
      enabled: show a bar (``False``: nothing is imported or drawn).
      total: the number of units.
      label: the bar's description.
      unit: the units' name shown beside the count.
      transient: remove the bar when it closes.
    """

    def __init__(self, enabled: bool, total: int, label: str, unit: str = "steps", transient: bool = False):
        self._p = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as _RichProgress

            self._p = _RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn(unit), TimeElapsedColumn(), TimeRemainingColumn(),
                console=Console(stderr=True), transient=transient,
            )
            self._p.start()
            self._task = self._p.add_task(label, total=total)

    def advance(self, n: int = 1) -> None:
        """Advance the bar by ``n`` units."""
        if self._p is not None and n:
            self._p.advance(self._task, n)

    def close(self) -> None:
        """Stop the bar (idempotent)."""
        if self._p is not None:
            self._p.stop()
            self._p = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def tracked(items, enabled: bool, label: str, unit: str = "chunks"):
    """Iterate over ``items`` with a :class:`Progress` bar advancing per item.

    Args:
      items: an iterable (materialised into a list first, for the total).
      enabled: show the bar (``False``: plain iteration).
      label: the bar's description.
      unit: the units' name.

    Yields:
      The items, in order.
    """
    items = list(items)
    if not enabled:
        yield from items
        return
    with Progress(True, len(items), label, unit) as bar:
        for item in items:
            yield item
            bar.advance()


# ----------------------------------------------------------------------------------------------
# one writer per output directory

#: the lock file every writing run holds in its output directory
LOCK_FILE = ".pedjax.lock"


class OutputLocked(OSError):
    """The output directory is held by another running pedjax process (message names it)."""


_held: dict[str, list] = {}  # resolved directory -> [file object, depth]: re-entrant per process
_held_guard = threading.Lock()


@contextlib.contextmanager
def output_lock(directory: str | os.PathLike, what: str = "out_dir") -> Iterator[Path]:
    """Context manager: hold ``directory`` for this process (one writer per output directory).

    An exclusive, non-blocking ``fcntl.flock`` on ``directory/.pedjax.lock``, which records the
    holder (pid, host, start time, command). A second process asking for the same directory gets
    :class:`OutputLocked` at once, naming the holder; the kernel drops the lock when the holder
    exits, even when it is killed, so no stale lock outlives its process. Re-entrant within one
    process (nested writers of one folder). Linux/macOS (``fcntl``).

    Args:
      directory: the output folder (created if missing).
      what: its argument name in the error message.

    Yields:
      The folder's path.

    Raises:
      OutputLocked: another process holds the folder.
    """
    import fcntl

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    with _held_guard:
        if key in _held:
            _held[key][1] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield path
        finally:
            with _held_guard:
                _held[key][1] -= 1
        return
    lock_path = path / LOCK_FILE
    f = open(lock_path, "a+")  # noqa: SIM115 - held open (the flock) until this generator's finally
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "unknown process"
        f.close()
        raise OutputLocked(
            f"{what}: {path} is in use by another pedjax run ({holder}); wait for it to finish "
            "or write to another folder"
        ) from None
    except BaseException:
        f.close()
        raise
    try:
        f.seek(0)
        f.truncate()
        cmd = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:200]
        f.write(f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}, "
                f"command: {cmd}\n")
        f.flush()
        with _held_guard:
            _held[key] = [f, 1]
        yield path
    finally:
        with _held_guard:
            _held.pop(key, None)
        with contextlib.suppress(OSError):
            f.seek(0)
            f.truncate()
        f.close()  # releases the flock


def locks_output(*params: str):
    """Decorator: run the function holding :func:`output_lock` on each of the named arguments.

    Args:
      *params: names of the function's arguments that are output directories (an argument
        that is ``None`` is not written and not locked).

    Returns:
      The decorator; the wrapped function raises :class:`OutputLocked` when another process
      holds one of the folders, and keeps the original as ``__wrapped__``.
    """
    import functools
    import inspect

    def deco(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            bound = sig.bind_partial(*args, **kwargs)
            with contextlib.ExitStack() as stack:
                for p in params:
                    d = bound.arguments.get(p)
                    if d is not None:
                        stack.enter_context(output_lock(d, p))
                return fn(*args, **kwargs)

        return wrapper

    return deco
