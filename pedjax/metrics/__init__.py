"""Transferability metrics: one module per metric, each a public ``fn(X, y) -> float`` and a pure
JAX core registered in :data:`REGISTRY` (name -> :class:`~pedjax.metrics._registry.Metric`).
Importing this package imports every metric module, which registers it.

Every public metric function also takes the keyword ``precision=`` (``"auto"``, ``"float64"`` or
``"float32"``; ``None``, the default, uses the surrounding :func:`pedjax.precision` block, else
``"auto"``), added by :func:`register`; an unknown value raises ``ValueError``
(docs/precision.md)."""
from ._etran import energy_score, etran, etran_combine, etran_components, etran_core, lda_score
from ._gbc import gbc, gbc_core
from ._hscore import hscore, hscore_core
from ._hscore_reg import fourth_moment_block, hscore_reg, hscore_reg_core, hscore_reg_from_moments
from ._knn import knn, knn_core, stratified_folds
from ._leep import leep, leep_core
from ._lfc import lfc, lfc_core, lfc_from_moments
from ._linear_probe import linear_probe, linear_probe_core, linear_probe_fit
from ._logme import logme, logme_core
from ._logme_reg import logme_reg, logme_reg_core
from ._nce import nce, nce_core
from ._ncti import ncti, ncti_combine, ncti_components, ncti_components_core, ncti_core, ncti_zoo
from ._nleep import GMMResult, gmm_fit, kmeans_plusplus, nleep, nleep_core, nleep_pca_components
from ._pactran import (
    GaussianFit,
    pactran_dirichlet,
    pactran_dirichlet_core,
    pactran_gamma,
    pactran_gamma_core,
    pactran_gaussian,
    pactran_gaussian_core,
    pactran_gaussian_fit,
)
from ._parc import parc, parc_core, rankdata_average, spearman_binary
from ._registry import REGISTRY, UNINFORMATIVE, Metric, evaluate, register
from ._sfda import sfda, sfda_core
from ._transrate import transrate, transrate_core

__all__ = [
    "REGISTRY", "UNINFORMATIVE", "Metric", "evaluate", "register", "names",
    "etran", "etran_core", "etran_components", "etran_combine", "energy_score", "lda_score",
    "gbc", "gbc_core", "hscore", "hscore_core", "hscore_reg", "hscore_reg_core", "hscore_reg_from_moments",
    "fourth_moment_block", "lfc", "lfc_core", "lfc_from_moments", "ncti", "ncti_core", "ncti_components",
    "ncti_components_core", "ncti_combine", "ncti_zoo", "knn", "knn_core", "stratified_folds",
    "linear_probe", "linear_probe_core", "linear_probe_fit", "GaussianFit", "pactran_dirichlet",
    "pactran_dirichlet_core", "pactran_gamma", "pactran_gamma_core", "pactran_gaussian", "pactran_gaussian_core",
    "pactran_gaussian_fit", "leep", "leep_core", "logme", "logme_core", "logme_reg", "logme_reg_core", "nce", "nce_core",
    "nleep", "nleep_core", "nleep_pca_components", "gmm_fit", "GMMResult", "kmeans_plusplus",
    "parc", "parc_core", "spearman_binary", "rankdata_average", "sfda", "sfda_core", "transrate", "transrate_core",
]


def names(target: str | None = "classes") -> list[str]:
    """Registered metric names, sorted, optionally only those for one kind of target.

    Args:
      target: what the metrics' ``y`` holds (:attr:`Metric.target`): ``"classes"`` (the default)
        for classification tasks, ``"real"`` for regression targets, ``None`` for every metric.

    Returns:
      The sorted registry keys whose :attr:`Metric.target` is ``target`` (all of them for ``None``).
    """
    return sorted(k for k, m in REGISTRY.items() if target is None or m.target == target)
