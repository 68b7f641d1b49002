"""The Flax networks (pedjax.models.nets): the hand-written conv against Flax's, feature widths, dtypes."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pedjax.models import nets


def test_nets_conv_equals_flax_conv_and_features():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, 9, 9, 3)), jnp.float32)
    for k, s in ((3, 1), (3, 2), (1, 2)):
        ref = nn.Conv(4, (k, k), strides=s, padding="SAME")
        p = {"params": {"kernel": jnp.asarray(rng.normal(size=(k, k, 3, 4)), jnp.float32),
                        "bias": jnp.asarray(rng.normal(size=(4,)), jnp.float32)}}
        np.testing.assert_allclose(nets.Conv(4, (k, k), strides=s).apply(p, x), ref.apply(p, x), atol=1e-5)
    assert {name: nets.feature_dim(nets.create(name)) for name in nets.names()} == {"cnn": 64, "mlp": 128, "resnet": 64}
    for m in (nets.MLP((8,)), nets.SmallCNN((4, 8), 16), nets.SmallResNet((4, 8))):
        p = nets.init(m, 0)
        assert {str(leaf.dtype) for leaf in jax.tree_util.tree_leaves(p)} == {"float32"}
        f = nets.features(m, p, np.zeros((3, 28, 28, 1), np.float32))
        assert f.shape == (3, nets.feature_dim(m)) and f.dtype == np.float32
