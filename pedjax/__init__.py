"""pedjax: choose a pre-trained model from a zoo without fine-tuning every one.

PED (potential energy descent, ICCV 2023) simulates how fine-tuning separates class clusters;
transferability metrics (LogME, SFDA, GBC, …) score the moved features; the zoo is scored in
one compiled, vmapped call.

Importing pedjax changes no JAX setting, environment variable or XLA flag. The entry points (the
metric functions, :func:`ped`, :func:`score_zoo`, :func:`ped_zoo`) take ``precision="auto" |
"float64" | "float32"`` (or the setting of a ``with pedjax.precision(...):`` block): ``auto`` is
float64 on CPU (parity with the published code) and float32 on GPU and TPU; they compute in it
inside a scoped ``jax.enable_x64`` with matmul precision "highest". See docs/precision.md.
"""
from . import metrics, rank
from ._precision import PRECISIONS, float32, precision
from ._validate import ParamError
from .physics import PEDConfig, PEDResult, ped
from .scoring import ped_zoo, score_zoo

__version__ = "0.1.0"
__all__ = ["PEDConfig", "PEDResult", "ped", "ped_zoo", "score_zoo", "metrics", "rank", "precision", "float32",
           "PRECISIONS", "ParamError"]
