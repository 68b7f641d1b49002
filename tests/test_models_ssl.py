"""Self-supervised objectives and augmentations (pedjax.models.ssl): augmentations against
jax.image, the losses against NumPy references, the objective registry."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pedjax.models import ssl

# jitted as training runs them: one compiled program per shape (and augmentation config), where
# eager calls would compile every operation separately
augment = jax.jit(ssl.augment, static_argnums=2)
crop_and_resize = jax.jit(ssl.crop_and_resize)
rotate90 = jax.jit(ssl.rotate90)
nt_xent, byol_loss = jax.jit(ssl.nt_xent), jax.jit(ssl.byol_loss)
barlow_twins_loss, vicreg_loss = jax.jit(ssl.barlow_twins_loss), jax.jit(ssl.vicreg_loss)


# ------------------------------------------------------------------------------ augmentations


def test_crop_full_box_is_identity_and_matches_jax_image():
    x = jax.random.uniform(jax.random.PRNGKey(0), (28, 28, 1))
    np.testing.assert_allclose(crop_and_resize(x, 0.0, 0.0, 28.0, 28.0), x, atol=1e-6)
    a = crop_and_resize(x, 7.0, 3.0, 14.0, 20.0)
    b = jax.image.scale_and_translate(x, (28, 28, 1), (0, 1), jnp.array([2.0, 28 / 20]), jnp.array([-14.0, -3 * 28 / 20]),
                                      method="linear", antialias=False)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_augment_shapes_range_determinism():
    x = jax.random.uniform(jax.random.PRNGKey(1), (6, 28, 28, 1))
    cfg = ssl.AugmentConfig()
    k = jax.random.PRNGKey(3)
    a, b = augment(k, x, cfg), augment(k, x, cfg)
    c = augment(jax.random.PRNGKey(4), x, cfg)
    assert a.shape == x.shape and a.dtype == jnp.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_allclose(augment(k, x, ssl.NO_AUGMENT), x, atol=1e-6)
    flip_only = ssl.AugmentConfig(crop_scale=(1, 1), crop_ratio=(1, 1), flip=1.0, contrast=(1, 1), brightness=0, noise_std=0)
    np.testing.assert_allclose(augment(k, x, flip_only), x[:, :, ::-1, :], atol=1e-6)
    k_rot = jnp.array([0, 1, 2, 3, 1, 2])
    r = np.asarray(rotate90(x, k_rot))
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
    np.testing.assert_allclose(nt_xent(z1, z2, 0.2), _np_nt_xent(z1, z2, 0.2), rtol=1e-6)
    np.testing.assert_allclose(barlow_twins_loss(z1, z2), _np_barlow(z1, z2, 1 / 6), rtol=1e-6)
    np.testing.assert_allclose(vicreg_loss(z1, z2), _np_vicreg(z1, z2), rtol=1e-6)
    np.testing.assert_allclose(byol_loss(z1, z1), 0.0, atol=1e-6)
    np.testing.assert_allclose(byol_loss(-z1, z1), 4.0, atol=1e-6)
    # perfectly matched, well separated pairs: NT-Xent near 0; Barlow with decorrelated identical views: 0
    e = np.eye(6)[:6] * 10
    assert float(nt_xent(e, e, 0.05)) < 1e-3
    q, _ = np.linalg.qr(np.c_[np.ones(12), rng.normal(size=(12, 6))])
    q = q[:, 1:]  # centred, mutually orthogonal columns: the cross-correlation is the identity
    assert float(barlow_twins_loss(q, q, 1.0)) < 1e-3


def test_unknown_method_and_option():
    with pytest.raises(ValueError, match="method: unknown pretraining method 'mae'"):
        ssl.get_objective("mae")
    with pytest.raises(ValueError, match="has no option"):
        ssl.get_objective("simclr", temprature=0.1)
    assert ssl.get_objective("simclr", temperature=0.5).temperature == 0.5
    assert set(ssl.names()) >= {"simclr", "byol", "barlow", "vicreg", "rotation", "dae", "supervised", "random"}
