"""Keeping a long process under the kernel's limit on memory mappings.

XLA:CPU maps each compiled program's machine code into memory: about 5 mappings per program
(jax 0.10.2, measured: 300 small jitted programs took a process from 434 to 2 269 mappings, and
``jax.clear_caches()`` brought it back to 512). JAX keeps the compiled programs of every live
``jit`` function, and pedjax's cores are jitted once and cached, so a process that compiles ~12 000
programs reaches Linux's default ``vm.max_map_count`` (65 530). The next compilation's ``mmap``
then fails inside ``backend_compile_and_load``, and XLA aborts or segfaults: the intermittent
crashes of the full test suite in sessions 8 and 9 (late in long worker processes, in whatever test
compiled next, never in isolation; docs/design.md).

:func:`relieve` drops JAX's compiled-program caches when the process holds more than
:data:`HEADROOM` of the limit. Every outermost pedjax entry point calls it (cheaply:
:func:`pedjax._precision.entry_point` looks at the count every :data:`CHECK_EVERY` calls), and the
test suite after each test. Dropping the caches costs recompilation, never results: programs are
compiled again on their next call.
"""
from __future__ import annotations

import threading

#: fraction of ``vm.max_map_count`` above which :func:`relieve` clears JAX's caches
HEADROOM = 0.5
#: entry-point calls between two looks at the mapping count
CHECK_EVERY = 32
#: Linux's default ``vm.max_map_count`` (used when /proc/sys/vm/max_map_count cannot be read)
DEFAULT_MAX_MAPS = 65530

_lock = threading.Lock()
_calls = 0
_limit: int | None = None


def map_count() -> int | None:
    """The number of memory mappings of this process (``/proc/self/maps`` lines); ``None`` where
    the kernel does not expose them (not Linux)."""
    try:
        with open("/proc/self/maps", "rb") as f:
            return f.read().count(b"\n")
    except OSError:
        return None


def map_limit() -> int:
    """The kernel's per-process limit on memory mappings (``vm.max_map_count``)."""
    global _limit
    if _limit is None:
        try:
            with open("/proc/sys/vm/max_map_count") as f:
                _limit = int(f.read().strip())
        except (OSError, ValueError):
            _limit = DEFAULT_MAX_MAPS
    return _limit


def relieve(force_check: bool = True, headroom: float = HEADROOM) -> bool:
    """Clear JAX's compiled-program caches when this process holds more than ``headroom`` of its
    memory-mapping limit (module docstring).

    Args:
      force_check: look at the mapping count now; ``False`` looks only every :data:`CHECK_EVERY`
        calls (what the entry points pass).
      headroom: the fraction of the limit above which the caches are cleared (default
        :data:`HEADROOM`; the test suite passes less, as one test can compile ~20 000 mappings'
        worth of programs before it ends).

    Returns:
      Whether the caches were cleared.
    """
    global _calls
    if not force_check:
        with _lock:
            _calls += 1
            if _calls % CHECK_EVERY:
                return False
    n = map_count()
    if n is None or n <= headroom * map_limit():
        return False
    import jax

    jax.clear_caches()
    return True
