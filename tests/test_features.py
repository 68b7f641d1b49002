"""Feature sets (pedjax.features): the digits stand-in zoo, and feature stores — the published
results folder and the .npz layouts read alike (tests/digits_results.py's real-data zoo)."""
from __future__ import annotations

import numpy as np
import pytest

import pedjax
from pedjax.features import open_store, save_npz_zoo
from digits_results import DATASET, build, digits_zoo


def test_digits_zoo_is_real_and_ranked():
    features, y, stats, truth = digits_zoo()
    assert len(features) >= 10 and set(np.unique(y)) == set(range(10))
    assert truth["mlp32-trained"] > truth["mlp32-untrained"]
    assert all(0.1 < a <= 1.0 for a in truth.values())  # every probe beats chance (10 classes)
    s = pedjax.score_zoo(features, y, "logme", ped=pedjax.PEDConfig(), source_stats=stats)
    assert all(np.isfinite(v) for v in s.values())


def test_npz_layouts_read_like_the_folder(tmp_path):
    """An .npz holding the results-folder keys, and the pedjax npz layout with source statistics."""
    zoo = build(tmp_path / "zoo")
    folder = open_store(zoo["results"], dataset=DATASET)
    arrays = {p.stem: np.load(p) for p in zoo["results"].iterdir()}
    np.savez(tmp_path / "flat.npz", **arrays)
    flat = open_store(zoo=tmp_path / "flat.npz")  # dataset inferred from the keys
    assert flat.dataset == DATASET and flat.models == folder.models
    for m in folder.models:
        np.testing.assert_array_equal(flat.features(m), folder.features(m))
        np.testing.assert_array_equal(flat.labels(m), folder.labels(m))
        for a, b in zip(flat.source_stats(m), folder.source_stats(m)):
            np.testing.assert_array_equal(a, b)
    S = zoo["source"]["pca-16"].astype(np.float64)
    np.testing.assert_allclose(folder.source_stats("pca-16")[0], S.mean(0), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(folder.source_stats("pca-16")[1], S.std(0), rtol=1e-13, atol=1e-15)
    stats = {m: folder.source_stats(m) for m in ("pca-16", "tanh-16")}
    path = save_npz_zoo(tmp_path / "z", {m: zoo["feats"][m] for m in stats}, zoo["labels"]["pca-16"], source_stats=stats, dataset=DATASET)
    z = open_store(zoo=path, exclude=["tanh-16"])
    assert z.models == ["pca-16"] and z.dataset == DATASET
    np.testing.assert_array_equal(z.source_stats("pca-16")[1], stats["pca-16"][1])
    with pytest.raises(ValueError, match="holds dataset 'digits', not 'cifar10'"):
        open_store(zoo=path, dataset="cifar10")
    feats, labels, st = open_store(zoo=path).load(source=True)
    assert set(feats) == set(st) == {"pca-16", "tanh-16"} and all(F.dtype == np.float64 for F in feats.values())
