"""pedjax: choose a pre-trained model from a zoo without fine-tuning every one.

PED (potential energy descent, ICCV 2023) simulates how fine-tuning separates class clusters;
transferability metrics (LogME, SFDA, GBC, …) score the moved features; the zoo is scored in
one compiled, vmapped call.

Importing pedjax changes no JAX setting, environment variable or XLA flag. The entry points that
promise float64 parity with the published code (the metric functions, :func:`ped`,
:func:`score_zoo`, :func:`ped_zoo`) compute in float64 inside a scoped ``jax.enable_x64``;
``with pedjax.float32():`` runs them in the process's own precision (accelerators). See
docs/design.md, "Precision and process settings".
"""
from . import metrics, rank
from ._precision import float32
from .physics import PEDConfig, PEDResult, ped
from .scoring import ped_zoo, score_zoo

__version__ = "0.1.0"
__all__ = ["PEDConfig", "PEDResult", "ped", "ped_zoo", "score_zoo", "metrics", "rank", "float32"]
