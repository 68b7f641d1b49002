"""Pretraining (pedjax.models.pretrain): every objective trains, resumable pretraining (bit-for-bit),
bad input, the linear probe. Augmentations and losses: tests/test_models_ssl.py; the zoo
container: tests/test_zoo_store.py."""
from __future__ import annotations

import json

import jax
import numpy as np
import pytest

import pedjax  # noqa: F401
from pedjax import data
from pedjax.models import nets
from pedjax.models import pretrain as pt
from pedjax.models import ssl

TINY = nets.MLP(hidden=(16,))
SMALL_HEADS = {"simclr": {"hidden": 16, "out": 8}, "byol": {"hidden": 16, "out": 8}, "barlow": {"hidden": 16, "out": 8},
               "vicreg": {"hidden": 16, "out": 8}, "dae": {"hidden": 16}}


@pytest.fixture(scope="module")
def digits():
    x, y = data.load_digits(28)
    return x[:96], y[:96].astype(np.int32)


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
