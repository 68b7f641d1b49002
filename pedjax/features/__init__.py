"""Feature sets: a zoo's features on one task (:class:`FeatureSet`), extracted from a model zoo,
read from the published results layout or ``.npz`` files, or built on the fly (digits).

:func:`extract_features`, :func:`digits_zoo` and :func:`digits_feature_set` are loaded on first
use (they pull in Flax and the model zoo, which reading features from disk does not need).
"""
import importlib

from .featureset import INPUT_KINDS, FeatureSet
from .files import (
    DEFAULT_SOURCE,
    TARGET_SOURCE,
    FeatureStore,
    NpzStore,
    ResultsStore,
    datasets_in,
    open_store,
    save_npz_zoo,
    write_results_dir,
)

#: names loaded on first use -> their module
_LAZY = {"extract_features": ".extract", "digits_zoo": ".digits", "digits_feature_set": ".digits"}

__all__ = [
    "FeatureSet", "INPUT_KINDS", "extract_features", "digits_feature_set", "digits_zoo",
    "DEFAULT_SOURCE", "TARGET_SOURCE", "FeatureStore", "NpzStore", "ResultsStore", "datasets_in", "open_store",
    "save_npz_zoo", "write_results_dir",
]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
