"""What several commands share: process settings and options whose defaults come from the dataclasses."""
from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..physics import PEDConfig

#: XLA:CPU flag: with the concurrency-optimized scheduler, vmapped programs with data-dependent
#: loops (NLEEP's EM, TransRate) intermittently stalled forever on 2 cores (jax 0.10.2; docs/design.md)
XLA_CPU_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
#: no "YNN" fusions on XLA:CPU: jaxlib 0.10.2 miscompiles some (garbage values, pedjax/metrics/
#: _linear_probe.py), and NLEEP's EM program crashed the compiler in the test suite (docs/design.md)
XLA_YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type"
#: environment variables that size XLA:CPU's intra-op thread pool (read once, when JAX creates its
#: CPU client; the first wins): jaxlib 0.10.2's batched LAPACK kernels block a pool thread each while
#: their chunks wait for a free one, so a pool as large as the CPU count deadlocks when as many
#: kernels run at once (docs/design.md, "A stall in XLA:CPU")
POOL_ENVS = ("PJRT_NPROC", "NPROC")
#: environment variable naming pedjax's user cache folder ("off" disables every cache in it)
CACHE_ENV = "PEDJAX_CACHE_DIR"
#: size limit of the persistent compilation cache (least recently used entries are evicted)
CACHE_MAX_BYTES = 1 << 30

PED_DEFAULTS = PEDConfig()


def cache_root() -> Path | None:
    """pedjax's user cache folder: ``$PEDJAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/pedjax``
    (``~/.cache/pedjax``); ``None`` when set to ``off``/empty. It holds ``xla/`` (the persistent
    compilation cache, :func:`cache_dir`) and ``features/`` (:func:`feature_cache_dir`)."""
    env = os.environ.get(CACHE_ENV)
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "none") else Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pedjax"


def cache_dir() -> Path | None:
    """The persistent XLA compilation cache folder, ``cache_root()/xla`` (``None`` when off)."""
    root = cache_root()
    return None if root is None else root / "xla"


def feature_cache_dir() -> Path | None:
    """The extracted-feature cache folder (:class:`pedjax.features.cache.FeatureCache`),
    ``cache_root()/features`` (``None`` when off)."""
    root = cache_root()
    return None if root is None else root / "features"


@contextlib.contextmanager
def as_flags(flags: Mapping[str, str]) -> Iterator[None]:
    """Library errors in command-line words: a :class:`~pedjax._validate.ParamError` about a
    parameter in ``flags`` (``exc.param == "k"``, message ``"k: at least 1, got 0"``) is raised
    again naming the flag (``"--k: at least 1, got 0"``), so a command checks its arguments once,
    in the library. The parameter is read from the exception's field, never from its message;
    any other error (a plain ``ValueError`` included) passes unchanged."""
    from .._validate import ParamError

    try:
        yield
    except ParamError as exc:
        if exc.param in flags:
            raise ParamError(flags[exc.param], exc.problem) from None
        raise


def configure_process() -> None:
    """The command line's own process settings (the library sets none at import):

    * ``jax_enable_x64`` on, unless ``JAX_ENABLE_X64`` is set in the environment;
    * ``--xla_cpu_enable_concurrency_optimized_scheduler=false`` in ``XLA_FLAGS`` unless set there
      (must happen before JAX starts its backend, i.e. before the first computation);
    * ``--xla_cpu_experimental_ynn_fusion_type=`` (no YNN fusions: a jaxlib 0.10.2 miscompile and
      a compiler crash, docs/design.md) in ``XLA_FLAGS`` unless set there;
    * ``jax_cpu_enable_async_dispatch`` off (an intermittent stall, docs/design.md);
    * ``PJRT_NPROC`` = the usable CPU count + 1 unless ``PJRT_NPROC`` or ``NPROC`` is set: one
      more intra-op thread than XLA:CPU's default, so that two batched LAPACK kernels running at
      once cannot hold every pool thread (the deadlock seen on 2 cores, docs/design.md; with 3
      threads the warm metrics ran as fast as with 2, with 8 several times slower);
    * JAX's persistent compilation cache in :func:`cache_dir` for every program, as an LRU cache of
      at most :data:`CACHE_MAX_BYTES`: with a size limit JAX takes a ``filelock`` lock around every
      read and write of the folder, so two processes sharing it never read a half-written entry
      (without one it writes entries in place, unlocked). Programs with host callbacks (LogME's
      and PARC's host kernels, NLEEP's per-model EM) are never cached by JAX and compile each run.
    """
    if XLA_CPU_FLAG not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" {XLA_CPU_FLAG}=false").strip()
    if XLA_YNN_FLAG not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" {XLA_YNN_FLAG}=").strip()
    if not any(os.environ.get(v) for v in POOL_ENVS):
        os.environ["PJRT_NPROC"] = str(_usable_cpus() + 1)
    import jax

    if "JAX_ENABLE_X64" not in os.environ:
        jax.config.update("jax_enable_x64", True)
    # synchronous dispatch on the CPU: a process sat idle, its main thread waiting on a result
    # that never became ready (twice in session 8, in score_zoo's compiled call); JAX issue 25861
    # reports that stall with CPU async dispatch and this switch as its workaround (docs/design.md)
    jax.config.update("jax_cpu_enable_async_dispatch", False)
    path = cache_dir()
    if path is not None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            return  # an unwritable cache folder only costs speed
        _repair_cache(path)
        jax.config.update("jax_compilation_cache_dir", str(path))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        jax.config.update("jax_compilation_cache_max_size", CACHE_MAX_BYTES)


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS tells it, else the CPU count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _repair_cache(path: Path) -> None:
    """Give every cache entry without an access-time file one. JAX's size-limited cache writes an
    entry, then its ``-atime`` file; an entry without one (a process killed in between, or a
    folder first filled without a size limit) makes every later write fail its eviction scan, so
    the cache would silently stop growing."""
    import time

    try:
        names = {p.name for p in path.iterdir()}
        stamp = time.time_ns().to_bytes(8, "little")
        for name in names:
            if name.endswith("-cache") and name[: -len("-cache")] + "-atime" not in names:
                (path / (name[: -len("-cache")] + "-atime")).write_bytes(stamp)
    except OSError:
        pass  # an unreadable cache folder only costs speed


def add_precision_option(parser) -> None:
    """``--precision auto|float64|float32`` on ``parser`` and on every subcommand below it (the
    leaves are what a person types: ``pedjax zoo list --precision float32``)."""
    import argparse

    from .._precision import PRECISIONS

    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if subs:
        for a in subs:
            for child in a.choices.values():
                add_precision_option(child)
        return
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="float64 (parity with the published code), float32 (fast on GPU/TPU) or auto "
                        "(default: float64 on CPU, float32 on GPU and TPU); stored in JSON results")


def add_ped_options(p, *, flag: bool = True) -> None:
    """``[--ped] --nsigma X [--ped-config FILE]`` with PEDConfig's defaults in the help."""
    if flag:
        p.add_argument("--ped", action="store_true", help="move the features with PED (released defaults) before scoring")
        p.add_argument("--nsigma", type=float, default=None,
                       help=f"PED ball scale (default {PED_DEFAULTS.nsigma}; the paper also uses 0.3); needs --ped")
        p.add_argument("--ped-config", metavar="FILE.json|DIR",
                       help="run PED with a saved config (pedjax meta learn --out FILE.json or DIR, orbax); implies --ped")
    else:
        p.add_argument("--nsigma", type=float, default=PED_DEFAULTS.nsigma,
                       help=f"PED ball scale (default {PED_DEFAULTS.nsigma}; paper candidates 0.3, 0.6)")


def ped_from_args(args) -> PEDConfig | None:
    """The PED configuration of ``--ped/--nsigma/--ped-config`` (``None``: no PED)."""
    from ..meta.configs import load_config

    if args.ped_config is not None:
        if args.nsigma is not None:
            raise ValueError("--nsigma: give either --nsigma or --ped-config (which sets nsigma), not both")
        return load_config(args.ped_config)
    if args.nsigma is not None and not args.ped:
        raise ValueError("--nsigma sets PED's ball scale; add --ped to run PED")
    if not args.ped:
        return None
    return dataclasses.replace(PED_DEFAULTS, nsigma=PED_DEFAULTS.nsigma if args.nsigma is None else args.nsigma).validate()


def add_store_options(p, *, required: bool = True) -> None:
    """``--results-dir DIR | --zoo FILE.npz``, ``--dataset``, ``--source-set``, ``--model``, ``--exclude``."""
    from ..features import DEFAULT_SOURCE, TARGET_SOURCE

    src = p.add_mutually_exclusive_group(required=required)
    src.add_argument("--results-dir", metavar="DIR", help="folder of {model}_{dataset}_feature.npy / _label.npy files")
    src.add_argument("--zoo", metavar="FILE.npz", help="an .npz zoo (pedjax.features.save_npz_zoo, or the results layout as keys)")
    p.add_argument("--dataset", metavar="NAME", help="target dataset name in the file names (required with --results-dir)")
    p.add_argument("--source-set", default=DEFAULT_SOURCE, metavar="NAME",
                   help=f"source set whose {{model}}_NAME_feature.npy gives PED's rescaling statistics (default {DEFAULT_SOURCE}); "
                   f"'{TARGET_SOURCE}' uses the target features' own statistics")
    p.add_argument("--model", action="append", metavar="M", help="only these models (repeatable)")
    p.add_argument("--exclude", action="append", metavar="M", help="leave these models out (repeatable)")


def open_store_from_args(args):
    from ..features import open_store

    return open_store(args.results_dir, args.zoo, args.dataset, args.source_set, args.model, args.exclude)
