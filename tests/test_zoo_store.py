"""The model-zoo container (pedjax.zoo.store): members on disk (orbax and npz params), the manifest,
features extracted from the loaded zoo and scored, replacing members, bad input."""
from __future__ import annotations

import json

import jax
import numpy as np
import pytest

import pedjax
from pedjax import data
from pedjax import zoo as modelzoo
from pedjax.features import extract_features
from pedjax.models import nets
from pedjax.models import pretrain as pt
from pedjax.scoring import score_set


def _random_member(tmp_path, name, arch, kw, fmt, seed):
    module = modelzoo.create_module(arch, kw)
    params = nets.init(module, seed)
    x, y = data.load_digits(28)
    # batches of 500, as extract_features uses below: one compiled forward pass per architecture
    F = pt.feature_fn(module)(params, x[:500], 500).astype(np.float64)
    probe = pt.linear_probe(F[:250], y[:250], F[250:], y[250:500])
    spec = modelzoo.MemberSpec(name, arch, "random", kw, seed=seed)
    return modelzoo.add_member(tmp_path, spec, params, source_mean=F.mean(0), source_std=F.std(0),
                               probe={"accuracy": probe["accuracy"], "W": probe["W"], "b": probe["b"]},
                               record={"config": {"steps": 0}}, fingerprint=f"{seed:08d}" * 5, params_format=fmt), params


def test_zoo_container_roundtrip_and_features(tmp_path):
    e1, p1 = _random_member(tmp_path, "cnn-a", "cnn", {"channels": [4, 8], "dense": 16}, "orbax", 1)
    # one feature width for all three families: score_zoo compiles once per metric
    e2, p2 = _random_member(tmp_path, "mlp-b", "mlp", {"hidden": [16]}, "npz", 2)
    e3, p3 = _random_member(tmp_path, "res-c", "resnet-s2", {"stages": [4, 8, 16]}, "npz", 3)
    manifest = json.loads((tmp_path / modelzoo.MANIFEST).read_text())
    assert [m["name"] for m in manifest["members"]] == ["cnn-a", "mlp-b", "res-c"]
    assert manifest["format"] == modelzoo.FORMAT and e1["feature_dim"] == 16 and e3["feature_dim"] == 16

    zoo = modelzoo.load_zoo(tmp_path, verify=True)
    assert zoo.names == ["cnn-a", "mlp-b", "res-c"] and len(zoo) == 3
    for m, p in zip(zoo, (p1, p2, p3)):
        for a, b in zip(jax.tree_util.tree_leaves(m.params), jax.tree_util.tree_leaves(p)):
            np.testing.assert_array_equal(a, np.asarray(b))
    task = data.load_task("digits-5")
    zf = extract_features(zoo, task)
    assert zf.features["mlp-b"].shape == (task.x_train.shape[0], 16)
    np.testing.assert_allclose(zf.features["cnn-a"][:500], pt.feature_fn(zoo["cnn-a"].module)(p1, task.x_train[:500]), rtol=1e-6)
    np.testing.assert_array_equal(zf.labels, task.y_train)
    np.testing.assert_allclose(zf.source_probs["res-c"].sum(1), 1.0)
    assert zf.source_stats["mlp-b"][0].shape == (16,)
    s = score_set(zf, "logme")
    assert s == pedjax.score_zoo(zf.features, zf.labels, "logme")
    s_ped = score_set(zf, "logme", ped=pedjax.PEDConfig())
    assert s_ped == pedjax.score_zoo(zf.features, zf.labels, "logme", ped=pedjax.PEDConfig(), source_stats=zoo.source_stats())
    assert set(score_set(zf, "leep")) == set(zoo.names)

    # replacing a member keeps its place and removes its old files
    old_dir = tmp_path / e2["params"]["path"].split("/params")[0]
    e2b, _ = _random_member(tmp_path, "mlp-b", "mlp", {"hidden": [16]}, "orbax", 4)
    assert modelzoo.read_manifest(tmp_path)["members"][1]["name"] == "mlp-b"
    assert not old_dir.exists() and (tmp_path / e2b["params"]["path"]).exists()
    _random_member(tmp_path, "mlp-b", "mlp", {"hidden": [16]}, "orbax", 4)  # the same fingerprint again
    assert modelzoo.load_zoo(tmp_path, members=["mlp-b"], verify=True).names == ["mlp-b"]
    assert len(list((tmp_path / "members").iterdir())) == 3


def test_zoo_bad_input(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="pedjax zoo build"):
        modelzoo.load_zoo(tmp_path / "nowhere")
    (tmp_path / "manifest.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="not a pedjax zoo manifest"):
        modelzoo.load_zoo(tmp_path)
    (tmp_path / "manifest.json").unlink()
    _random_member(tmp_path, "m", "mlp", {"hidden": [8]}, "npz", 0)
    with pytest.raises(ValueError, match="members: not in the zoo"):
        modelzoo.load_zoo(tmp_path, members=["x"])
    with pytest.raises(ValueError, match="arch: unknown architecture"):
        modelzoo.create_module("vgg")
    with pytest.raises(ValueError, match="source_n, heldout"):
        modelzoo.BuildConfig(source_n=48000, heldout=5000)


def test_feature_cache_skips_forward_passes_and_parameters(tmp_path, monkeypatch):
    """A second extraction with the same cache reads every member's features from it (no forward
    pass, no parameter restore) and equals the first bit for bit; other images are a miss; an
    unreadable entry is recomputed and rewritten."""
    from pedjax.features.cache import FeatureCache

    zdir, cdir = tmp_path / "zoo", tmp_path / "cache"
    _random_member(zdir, "cnn-a", "cnn", {"channels": [4, 8], "dense": 16}, "orbax", 1)
    _random_member(zdir, "mlp-b", "mlp", {"hidden": [16]}, "npz", 2)
    task = data.load_task("digits-5")
    first = extract_features(modelzoo.load_zoo(zdir), task, cache=cdir)
    entries = sorted(cdir.glob("*.npy"))
    assert len(entries) == 2
    uncached = extract_features(modelzoo.load_zoo(zdir), task)
    for m in first.models:
        np.testing.assert_array_equal(first.features[m], uncached.features[m])

    def no_forward(*a, **k):
        raise AssertionError("a forward pass ran although the cache holds the features")

    monkeypatch.setattr(modelzoo.ZooMember, "features", no_forward)
    zoo = modelzoo.load_zoo(zdir)
    again = extract_features(zoo, task, cache=FeatureCache(cdir))
    assert all("params" not in vars(m) for m in zoo), "parameters were restored"
    for m in first.models:
        np.testing.assert_array_equal(again.features[m], first.features[m])
        np.testing.assert_array_equal(again.source_probs[m], first.source_probs[m])
    monkeypatch.undo()

    other = data.TaskData.from_arrays(task.x_train[:100], task.y_train[:100], task.x_test, task.y_test, 5)
    extract_features(modelzoo.load_zoo(zdir), other, cache=cdir)  # other images: new entries
    assert len(list(cdir.glob("*.npy"))) == 4
    entries[0].write_bytes(b"torn")
    fixed = extract_features(modelzoo.load_zoo(zdir), task, cache=cdir)
    for m in first.models:
        np.testing.assert_array_equal(fixed.features[m], first.features[m])
    assert np.load(entries[0]).dtype == np.float32  # rewritten


def test_missing_parameters_fail_at_load(tmp_path):
    e, _ = _random_member(tmp_path, "m", "mlp", {"hidden": [8]}, "npz", 0)
    (tmp_path / e["params"]["path"]).unlink()
    with pytest.raises(ValueError, match="parameters .* are missing"):
        modelzoo.load_zoo(tmp_path)
