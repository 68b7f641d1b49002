"""The digits stand-in zoo: a quick zoo built on the fly, for when no model zoo is installed.

Target task: scikit-learn's bundled handwritten digits (1 797 real 8×8 images, 10 classes), split
into a *source* half (trains the MLPs and provides each model's source statistics for PED's
rescaling) and a *target* half (scored). The zoo:

* 32-d: PCA-32 (fitted on the source half), a Gaussian random projection, random ReLU features
  at two scales, a Flax MLP with a 32-wide penultimate layer, untrained and briefly trained on the
  source half;
* 128-d: random ReLU features at two scales, pixels with 64 random tanh features, the same MLP
  with a 128-wide penultimate layer, untrained and trained.

Two widths keep the zoo to two stacked, compiled groups per metric. Ground truth is each model's
linear-probe accuracy on a held-out third of the target half (multinomial logistic regression on
its features): a cheap stand-in for fine-tuning.
"""
from __future__ import annotations

import numpy as np

from .featureset import FeatureSet


def digits_zoo(seed: int = 0):
    """Build the digits stand-in zoo (module docstring) and its linear-probe ground truth.

    Needs scikit-learn, Flax and optax; trains two small MLPs (100 steps each).

    Args:
      seed: seed of the source/target split, the random features and the MLPs.

    Returns:
      ``(features {name: [N, D]}, labels [N], source_stats {name: (mean [D], std [D])},
      truth {name: accuracy})``: float64 features of the scored two thirds of the target half,
      source statistics on the source half, and each model's linear-probe accuracy on the last
      third.
    """
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    digits = load_digits()
    X = digits.data.astype(np.float64) / 16.0
    y = digits.target
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(y))
    src, tgt = perm[: len(y) // 2], perm[len(y) // 2 :]
    Xs, ys, Xt, yt = X[src], y[src], X[tgt], y[tgt]

    # two feature widths (32 and 128) so the zoo compiles to two stacked groups
    models = {}
    pca = PCA(n_components=32, random_state=seed).fit(Xs)
    models["pca-32"] = pca.transform
    P = rng.standard_normal((64, 32)) / 8.0
    models["randproj-32"] = lambda A, P=P: A @ P
    for w in (32, 128):
        for j, scale in enumerate((0.5, 2.0)):
            W = rng.standard_normal((64, w)) * scale / 8.0
            b = rng.standard_normal(w) * 0.5
            models[f"relu-{w}{'ab'[j]}"] = lambda A, W=W, b=b: np.maximum(A @ W + b, 0.0)
    noise = rng.standard_normal((64, 64))
    models["pixels+noise-128"] = lambda A, N=noise: np.concatenate([A, np.tanh(A @ N)], axis=1)

    class MLP(nn.Module):
        width: int

        @nn.compact
        def __call__(self, x, features=False):
            h = nn.relu(nn.Dense(128)(x))
            h = nn.relu(nn.Dense(self.width)(h))
            return h if features else nn.Dense(10)(h)

    for width in (32, 128):
        net = MLP(width)
        params = net.init(jax.random.PRNGKey(seed + width), jnp.zeros((1, 64), jnp.float32))
        feat = jax.jit(lambda p, A, net=net: net.apply(p, A, features=True))
        models[f"mlp{width}-untrained"] = lambda A, p=params, feat=feat: np.asarray(feat(p, jnp.asarray(A, jnp.float32)), np.float64)
        opt = optax.adam(1e-3)
        state = opt.init(params)

        @jax.jit
        def step(p, s, A, t, net=net, opt=opt):
            def loss(p):
                return optax.softmax_cross_entropy_with_integer_labels(net.apply(p, A), t).mean()

            g = jax.grad(loss)(p)
            u, s = opt.update(g, s)
            return optax.apply_updates(p, u), s

        A, t = jnp.asarray(Xs, jnp.float32), jnp.asarray(ys)
        for _ in range(100):
            params, state = step(params, state, A, t)
        models[f"mlp{width}-trained"] = lambda A, p=params, feat=feat: np.asarray(feat(p, jnp.asarray(A, jnp.float32)), np.float64)

    n_score = len(yt) * 2 // 3
    features, stats, truth = {}, {}, {}
    for name, f in models.items():
        Ft, Fs = f(Xt), f(Xs)
        features[name] = Ft[:n_score]
        stats[name] = (Fs.mean(0), Fs.std(0))
        probe = LogisticRegression(max_iter=2000).fit(Ft[:n_score], yt[:n_score])
        truth[name] = float(probe.score(Ft[n_score:], yt[n_score:]))
    return features, yt[:n_score], stats, truth


def digits_feature_set(seed: int = 0) -> FeatureSet:
    """:func:`digits_zoo` as a :class:`FeatureSet` (truth: the linear-probe stand-in).

    Args:
      seed: as in :func:`digits_zoo`.

    Returns:
      The :class:`FeatureSet` (with source statistics and truth; no source probabilities).
    """
    features, y, stats, truth = digits_zoo(seed)
    return FeatureSet(features, y, stats, truth=truth, task="digits (scikit-learn), target half",
                      info={m: {"dim": int(X.shape[1])} for m, X in features.items()})
