"""score_zoo and score_store switch to streamed statistics for inputs larger than their budgets."""
import warnings

import numpy as np
import pytest

import pedjax
from pedjax.features import open_store, write_results_dir
from pedjax.scoring import score_store


def _zoo(N=1200, D=8, C=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(N) % C
    feats = {f"m{i}": (rng.normal(size=(N, D)) + (0.3 + 0.2 * i) * rng.normal(size=(C, D))[y]).astype(np.float32) for i in range(2)}
    return feats, y


def test_score_zoo_streams_above_its_memory_budget():
    feats, y = _zoo()
    ref = pedjax.score_zoo(feats, y, "gbc", ped=pedjax.PEDConfig())
    with pytest.warns(UserWarning, match="streamed sufficient statistics"):
        got = pedjax.score_zoo(feats, y, "gbc", ped=pedjax.PEDConfig(), memory_budget=10_000)
    assert list(got) == list(ref)
    for k in ref:
        assert abs(got[k] - ref[k]) <= 1e-9 * abs(ref[k])
    with warnings.catch_warnings():  # a metric that needs samples keeps the in-memory path
        warnings.simplefilter("error")
        pedjax.score_zoo(feats, y, "transrate", memory_budget=10_000)


def test_score_store_streams_large_files(tmp_path):
    feats, y = _zoo()
    write_results_dir(tmp_path, "toy", feats, y)
    store = open_store(results_dir=tmp_path, dataset="toy", source="target")
    ref = score_store(store, "logme")
    with pytest.warns(UserWarning, match="streamed"):
        got = score_store(store, "logme", load_budget=1000)
    for k in ref:
        assert abs(got[k] - ref[k]) <= 1e-9 * abs(ref[k])
