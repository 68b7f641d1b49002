"""Scoring from sufficient statistics: target sets larger than memory, several devices, several machines.

docs/streaming.md has the design: what each metric needs, the passes, the memory bound, and how
to run over processes with ``jax.distributed``.
"""
from . import distributed
from ._ped_stats import ped_shifts, ped_stats
from .api import compute_stats, score_stream, subsample
from .metrics_from_stats import (
    FROM_STATS,
    MULTI_PASS,
    SUPPORTED,
    gbc_stats,
    hscore_reg_stream,
    hscore_stats,
    lfc_stats,
    logme_stats,
    require_streamable,
    score_from_stats,
    sfda_stream,
    stream_pass_metric,
)
from .stats import ArraySource, ClassStats, Engine, IterSource, NpyFileSource, accumulate, as_source

__all__ = [
    "ArraySource", "ClassStats", "Engine", "NpyFileSource", "distributed", "FROM_STATS", "IterSource", "MULTI_PASS", "SUPPORTED", "accumulate", "as_source",
    "compute_stats", "gbc_stats", "hscore_reg_stream", "hscore_stats", "lfc_stats", "logme_stats", "ped_shifts", "ped_stats", "require_streamable",
    "score_from_stats", "score_stream", "sfda_stream", "stream_pass_metric", "subsample",
]
