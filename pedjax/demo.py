"""``pedjax demo``: the main job on a quick real zoo (until the shipped zoo lands).

Target task: scikit-learn's bundled handwritten digits (1 797 real 8×8 images, 10 classes), split
into a *source* half (trains the MLP and provides each model's source statistics for PED's
rescaling) and a *target* half (scored). The zoo:

* 32-d: PCA-32 (fitted on the source half), a Gaussian random projection, random ReLU
  features at two scales, a Flax MLP with a 32-wide penultimate layer, untrained and briefly
  trained on the source half;
* 128-d: random ReLU features at two scales, pixels with 64 random tanh features, the same MLP
  with a 128-wide penultimate layer, untrained and trained.

Two widths keep the zoo to two stacked, compiled groups per metric.

Ground truth for the demo is each model's linear-probe accuracy on a held-out part of the target
half (multinomial logistic regression on its features): a cheap stand-in for fine-tuning until
the fine-tuner's table exists. Every feature metric is computed with and without PED and each
metric's weighted Kendall τ against that ground truth is printed.
"""
from __future__ import annotations

import json
import time

import numpy as np


def digits_zoo(seed: int = 0):
    """Return (features {name: [N, D]}, labels [N], source_stats {name: (mean, std)}, truth {name: acc})."""
    import jax
    import jax.numpy as jnp
    import flax.linen as nn
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
    models["pixels+noise-128"] = lambda A, N=rng.standard_normal((64, 64)): np.concatenate([A, np.tanh(A @ N)], axis=1)

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
        def step(p, s, A, t, net=net):
            loss = lambda p: optax.softmax_cross_entropy_with_integer_labels(net.apply(p, A), t).mean()
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


#: the core feature metrics (LEEP/NCE need source-model predictions, which this zoo lacks)
DEFAULT_METRICS = ("logme", "sfda", "gbc", "hscore")


def run_demo(nsigma: float = 0.6, metrics_list=None, progress: bool = True) -> dict:
    import pedjax
    from pedjax import metrics as M
    from pedjax.rank import weighted_tau

    t0 = time.perf_counter()
    features, y, stats, truth = digits_zoo()
    names = metrics_list or [n for n in DEFAULT_METRICS if n in M.REGISTRY]
    cfg = pedjax.PEDConfig(nsigma=nsigma)
    scores, taus = {}, {}
    for metric in names:
        for use_ped in (False, True):
            key = f"{metric}+ped" if use_ped else metric
            s = pedjax.score_zoo(features, y, metric=metric, ped=cfg if use_ped else None, source_stats=stats)
            scores[key] = s
            order = list(features)
            taus[key] = weighted_tau([s[k] for k in order], [truth[k] for k in order])
    return {
        "task": "digits (scikit-learn), target half; ground truth = linear-probe accuracy",
        "n_samples": int(len(y)),
        "ped": {"nsigma": nsigma, "variant": cfg.variant},
        "models": {k: {"dim": int(v.shape[1]), "truth": truth[k]} for k, v in features.items()},
        "scores": scores,
        "weighted_tau": taus,
        "seconds": time.perf_counter() - t0,
    }


def _print(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    if not con.is_terminal:
        con = Console(width=140)
    models = result["models"]
    order = sorted(models, key=lambda k: -models[k]["truth"])
    shown = [m for m in ("logme", "logme+ped", "sfda", "sfda+ped") if m in result["scores"]]
    t = Table(title=f"Zoo ranking on {result['task']}")
    t.add_column("model")
    t.add_column("D", justify="right")
    t.add_column("probe acc", justify="right")
    t.add_column("GT rank", justify="right")
    for m in shown:
        t.add_column(m, justify="right")
    for i, k in enumerate(order, 1):
        row = [k, str(models[k]["dim"]), f"{models[k]['truth']:.3f}", str(i)]
        for m in shown:
            s = result["scores"][m]
            rank = sorted(s, key=lambda n: -s[n]).index(k) + 1
            row.append(f"{s[k]:.4g} (#{rank})")
        t.add_row(*row)
    con.print(t)
    tt = Table(title="Weighted Kendall τ against ground truth (higher is better)")
    tt.add_column("metric")
    tt.add_column("static", justify="right")
    tt.add_column(f"+ PED (nsigma={result['ped']['nsigma']})", justify="right")
    base = sorted({k.replace("+ped", "") for k in result["weighted_tau"]})
    for m in base:
        tt.add_row(m, f"{result['weighted_tau'][m]:+.3f}", f"{result['weighted_tau'][m + '+ped']:+.3f}")
    con.print(tt)
    con.print(f"[dim]{len(models)} models, {result['n_samples']} target samples, {result['seconds']:.1f} s[/dim]")


def add_cli(sub) -> None:
    p = sub.add_parser("demo", help="score a quick real zoo (digits) with every metric, with and without PED")
    p.add_argument("--nsigma", type=float, default=0.6, help="PED ball scale (paper candidates 0.3, 0.6)")
    p.add_argument("--metric", action="append", help="restrict to these metrics (repeatable)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args) -> int:
    from . import metrics as M

    if args.metric:
        for m in args.metric:
            if m not in M.REGISTRY:
                raise ValueError(f"--metric: unknown metric {m!r}; choose one of {M.names()}")
    result = run_demo(nsigma=args.nsigma, metrics_list=args.metric)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        _print(result)
    return 0
