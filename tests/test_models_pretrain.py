"""Self-supervised pretraining: augmentations, objectives against NumPy references, resumable
pretraining (bit-for-bit), the linear probe, and the zoo container (pedjax.modelzoo)."""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pedjax  # noqa: F401
from pedjax import data
from pedjax import zoo as modelzoo
from pedjax.features import extract_features
from pedjax.models import nets
from pedjax.scoring import score_set
from pedjax.models import pretrain as pt
from pedjax.models import ssl

TINY = nets.MLP(hidden=(16,))
SMALL_HEADS = {"simclr": {"hidden": 16, "out": 8}, "byol": {"hidden": 16, "out": 8}, "barlow": {"hidden": 16, "out": 8},
               "vicreg": {"hidden": 16, "out": 8}, "dae": {"hidden": 16}}


@pytest.fixture(scope="module")
def digits():
    x, y = data.load_digits(28)
    return x[:96], y[:96].astype(np.int32)


# ------------------------------------------------------------------------------ augmentations


def test_crop_full_box_is_identity_and_matches_jax_image():
    x = jax.random.uniform(jax.random.PRNGKey(0), (28, 28, 1))
    np.testing.assert_allclose(ssl.crop_and_resize(x, 0.0, 0.0, 28.0, 28.0), x, atol=1e-6)
    a = ssl.crop_and_resize(x, 7.0, 3.0, 14.0, 20.0)
    b = jax.image.scale_and_translate(x, (28, 28, 1), (0, 1), jnp.array([2.0, 28 / 20]), jnp.array([-14.0, -3 * 28 / 20]),
                                      method="linear", antialias=False)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_augment_shapes_range_determinism():
    x = jax.random.uniform(jax.random.PRNGKey(1), (6, 28, 28, 1))
    cfg = ssl.AugmentConfig()
    k = jax.random.PRNGKey(3)
    a, b = ssl.augment(k, x, cfg), ssl.augment(k, x, cfg)
    c = ssl.augment(jax.random.PRNGKey(4), x, cfg)
    assert a.shape == x.shape and a.dtype == jnp.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_allclose(ssl.augment(k, x, ssl.NO_AUGMENT), x, atol=1e-6)
    flip_only = ssl.AugmentConfig(crop_scale=(1, 1), crop_ratio=(1, 1), flip=1.0, contrast=(1, 1), brightness=0, noise_std=0)
    np.testing.assert_allclose(ssl.augment(k, x, flip_only), x[:, :, ::-1, :], atol=1e-6)
    k_rot = jnp.array([0, 1, 2, 3, 1, 2])
    r = np.asarray(ssl.rotate90(x, k_rot))
    for i, kk in enumerate(np.asarray(k_rot)):
        np.testing.assert_array_equal(r[i], np.rot90(np.asarray(x[i]), kk, axes=(0, 1)))
    with pytest.raises(ValueError, match="crop_scale"):
        ssl.AugmentConfig(crop_scale=(0.0, 1.0))


# ------------------------------------------------------------------------------------ losses


def _np_nt_xent(z1, z2, t):
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    s = z @ z.T / t
    np.fill_diagonal(s, -np.inf)
    B = len(z1)
    pos = np.r_[np.arange(B, 2 * B), np.arange(B)]
    lse = np.log(np.exp(s - s.max(1, keepdims=True)).sum(1)) + s.max(1)
    return np.mean(lse - s[np.arange(2 * B), pos])


def _np_barlow(z1, z2, lam):
    def st(z):
        return (z - z.mean(0)) / np.sqrt(z.var(0) + 1e-5)

    c = st(z1).T @ st(z2) / len(z1)
    return np.sum((1 - np.diag(c)) ** 2) + lam * (np.sum(c ** 2) - np.sum(np.diag(c) ** 2))


def _np_vicreg(z1, z2, a=25.0, b=25.0, g=1.0):
    B, K = z1.shape
    inv = np.mean(np.sum((z1 - z2) ** 2, 1)) / K

    def vc(z):
        zc = z - z.mean(0)
        std = np.sqrt(zc.var(0, ddof=1) + 1e-4)
        c = zc.T @ zc / (B - 1)
        return np.mean(np.maximum(0, 1 - std)), (np.sum(c ** 2) - np.sum(np.diag(c) ** 2)) / K

    v1, c1 = vc(z1)
    v2, c2 = vc(z2)
    return a * inv + b * (v1 + v2) / 2 + g * (c1 + c2)


def test_losses_match_numpy_references():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(12, 6)), rng.normal(size=(12, 6))
    np.testing.assert_allclose(ssl.nt_xent(z1, z2, 0.2), _np_nt_xent(z1, z2, 0.2), rtol=1e-6)
    np.testing.assert_allclose(ssl.barlow_twins_loss(z1, z2), _np_barlow(z1, z2, 1 / 6), rtol=1e-6)
    np.testing.assert_allclose(ssl.vicreg_loss(z1, z2), _np_vicreg(z1, z2), rtol=1e-6)
    np.testing.assert_allclose(ssl.byol_loss(z1, z1), 0.0, atol=1e-6)
    np.testing.assert_allclose(ssl.byol_loss(-z1, z1), 4.0, atol=1e-6)
    # perfectly matched, well separated pairs: NT-Xent near 0; Barlow with decorrelated identical views: 0
    e = np.eye(6)[:6] * 10
    assert float(ssl.nt_xent(e, e, 0.05)) < 1e-3
    q, _ = np.linalg.qr(np.c_[np.ones(12), rng.normal(size=(12, 6))])
    q = q[:, 1:]  # centred, mutually orthogonal columns: the cross-correlation is the identity
    assert float(ssl.barlow_twins_loss(q, q, 1.0)) < 1e-3


def test_unknown_method_and_option():
    with pytest.raises(ValueError, match="method: unknown pretraining method 'mae'"):
        ssl.get_objective("mae")
    with pytest.raises(ValueError, match="has no option"):
        ssl.get_objective("simclr", temprature=0.1)
    assert ssl.get_objective("simclr", temperature=0.5).temperature == 0.5
    assert set(ssl.names()) >= {"simclr", "byol", "barlow", "vicreg", "rotation", "dae", "supervised", "random"}


# ------------------------------------------------------------------------------ pretraining


@pytest.mark.parametrize("method", ["simclr", "byol", "barlow", "vicreg", "rotation", "dae", "supervised", "random"])
def test_every_objective_trains(method, digits):
    x, y = digits
    obj = ssl.get_objective(method, **SMALL_HEADS.get(method, {}))
    res = pt.pretrain(TINY, obj, x, y, config=pt.PretrainConfig(steps=2, batch_size=8, checkpoint_every=2, seed=1), progress=False)
    init = pt.init_params(TINY, obj, jax.random.PRNGKey(1), (28, 28, 1))
    nets.check_params(TINY, res.backbone_params)
    moved = any(not np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(res.params["backbone"]),
                                                         jax.tree_util.tree_leaves(init["backbone"])))
    if method == "random":
        assert res.losses.size == 0 and not moved
    else:
        assert res.losses.shape == (2,) and np.all(np.isfinite(res.losses))
        assert moved and not res.info["diverged"]


def test_resume_after_interrupt_is_bit_for_bit(tmp_path, digits):
    """BYOL (an EMA target as extra state): interrupted after 4 of 6 steps, resumed = uninterrupted."""
    x, _ = digits
    obj = ssl.get_objective("byol", hidden=16, out=8)
    cfg = pt.PretrainConfig(steps=6, batch_size=8, checkpoint_every=2)
    full = pt.pretrain(TINY, obj, x, config=cfg, progress=False)

    class Killed(Exception):
        pass

    def kill(step):
        if step == 4:
            raise Killed

    with pytest.raises(Killed):
        pt.pretrain(TINY, obj, x, out_dir=tmp_path, config=cfg, progress=False, on_chunk=kill)
    assert not (tmp_path / pt.RESULT_FILE).exists()
    assert list((tmp_path / "ckpt").iterdir())
    resumed = pt.pretrain(TINY, obj, x, out_dir=tmp_path, config=cfg, progress=False)
    assert resumed.info["resumed_from_step"] == 4
    for a, b in zip(jax.tree_util.tree_leaves(full.params), jax.tree_util.tree_leaves(resumed.params)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(full.losses, resumed.losses)
    assert not list((tmp_path / "ckpt").iterdir()), "a finished run leaves no checkpoint"
    # a finished run is read back, not retrained; the backbone file is what `pedjax finetune --params` reads
    again = pt.pretrain(TINY, obj, x, out_dir=tmp_path, config=cfg, progress=False)
    assert again.info["fingerprint"] == resumed.info["fingerprint"]
    nets.check_params(TINY, nets.backbone_params(nets.load_params(tmp_path / pt.FINAL_PARAMS)))
    info = json.loads((tmp_path / pt.RESULT_FILE).read_text())
    assert info["method"] == "byol" and len(info["loss_curve"]) == 6


def test_pretrain_bad_input(digits):
    x, y = digits
    with pytest.raises(ValueError, match="y: the 'supervised' objective needs labels"):
        pt.pretrain(TINY, "supervised", x, config=pt.PretrainConfig(steps=1, batch_size=8), progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        pt.pretrain(TINY, "simclr", x[:4], config=pt.PretrainConfig(steps=1, batch_size=8), progress=False)
    with pytest.raises(ValueError, match="x: images contain NaN"):
        pt.pretrain(TINY, "simclr", np.full((8, 28, 28, 1), np.nan), config=pt.PretrainConfig(steps=1, batch_size=8), progress=False)
    with pytest.raises(ValueError, match="steps"):
        pt.PretrainConfig(steps=-1)


def test_linear_probe_folds_standardisation():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 5)) * 5
    y = np.repeat(np.arange(3), 40)
    F = centres[y] + rng.normal(size=(120, 5)) * 0.5 + 100.0  # far from the origin: the folding matters
    probe = pt.linear_probe(F[::2], y[::2], F[1::2], y[1::2])
    assert probe["accuracy"] == 1.0 and probe["W"].shape == (5, 3) and probe["b"].shape == (3,)
    from sklearn.linear_model import LogisticRegression

    mu, sd = F[::2].mean(0), F[::2].std(0)
    ref = LogisticRegression(max_iter=1000).fit((F[::2] - mu) / sd, y[::2])
    np.testing.assert_allclose(F @ probe["W"] + probe["b"], ref.decision_function((F - mu) / sd), atol=1e-8)


# ---------------------------------------------------------------------------- zoo container


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
    from pedjax.cli import main

    assert main(["zoo", "list", "--zoo", str(tmp_path)]) == 0
    assert "m" in capsys.readouterr().out
    assert main(["zoo", "list", "--zoo", str(tmp_path / "none")]) == 2
    assert "pedjax zoo build" in capsys.readouterr().err
