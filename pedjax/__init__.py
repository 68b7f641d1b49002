"""pedjax: choose a pre-trained model from a zoo without fine-tuning every one.

PED (potential energy descent, ICCV 2023) simulates how fine-tuning separates class clusters;
transferability metrics (LogME, SFDA, GBC, …) score the moved features; the zoo is scored in
one compiled, vmapped call.

Float64: unless the environment sets ``JAX_ENABLE_X64`` itself, importing pedjax turns
``jax_enable_x64`` on, so CPU results match the published NumPy code to float64 precision. Set
``JAX_ENABLE_X64=0`` before importing for float32 (e.g. on accelerators; see docs/design.md).

XLA:CPU: importing pedjax before JAX starts its backend adds
``--xla_cpu_enable_concurrency_optimized_scheduler=false`` to ``XLA_FLAGS`` (unless that flag is
already set there): with the concurrency-optimized scheduler, vmapped programs with data-dependent
loops (NLEEP's EM, TransRate's per-class log-determinants) intermittently stalled forever on the
2-core machine with jax 0.10.2 (see docs/design.md).
"""
import os as _os

_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
if _FLAG not in _os.environ.get("XLA_FLAGS", ""):
    _os.environ["XLA_FLAGS"] = (_os.environ.get("XLA_FLAGS", "") + f" {_FLAG}=false").strip()

import jax as _jax  # noqa: E402

if "JAX_ENABLE_X64" not in _os.environ:
    _jax.config.update("jax_enable_x64", True)

from . import metrics  # noqa: E402,F401

from . import rank  # noqa: E402,F401
from .physics import PEDConfig, PEDResult, ped  # noqa: E402,F401
from .zoo import ped_zoo, score_zoo  # noqa: E402,F401

__version__ = "0.1.0"
__all__ = ["PEDConfig", "PEDResult", "ped", "ped_zoo", "score_zoo", "metrics", "rank"]
