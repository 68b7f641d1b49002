"""``pedjax demo``: the main job on the embedded default.

**Shipped zoo** (the default, ``--zoo shipped``): the model zoo in ``pedjax/assets/zoo`` (Flax
backbones self-supervised on Fashion-MNIST, see ``docs/zoo.md``) is loaded, every member's features
are extracted on a shipped task's training split (``--task``, default :data:`DEFAULT_TASK`),
every registered metric scores the zoo — feature metrics statically and after PED — and each
metric's weighted Kendall τ against the zoo's fine-tuning ground truth (test accuracy after full
fine-tuning, ``ground_truth.json``) is printed with the ranking table.

**Digits zoo** (``--zoo digits``, and the fallback when no shipped zoo is installed): a quick zoo
built on the fly. Target task: scikit-learn's bundled handwritten digits (1 797 real 8×8 images, 10 classes), split
into a *source* half (trains the MLP and provides each model's source statistics for PED's
rescaling) and a *target* half (scored). The zoo:

* 32-d: PCA-32 (fitted on the source half), a Gaussian random projection, random ReLU
  features at two scales, a Flax MLP with a 32-wide penultimate layer, untrained and briefly
  trained on the source half;
* 128-d: random ReLU features at two scales, pixels with 64 random tanh features, the same MLP
  with a 128-wide penultimate layer, untrained and trained.

Two widths keep the zoo to two stacked, compiled groups per metric.

Ground truth for the digits zoo is each model's linear-probe accuracy on a held-out part of the target
half (multinomial logistic regression on its features): a cheap stand-in for fine-tuning until
the fine-tuner's table exists. Every feature metric is computed with and without PED and each
metric's weighted Kendall τ against that ground truth is printed.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

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


#: the digits zoo's metrics (LEEP/NCE need source-model predictions, which that zoo lacks)
DEFAULT_METRICS = ("logme", "sfda", "gbc", "hscore")
#: the shipped task the demo scores by default (no download: scikit-learn's bundled digits)
DEFAULT_TASK = "digits-10"
ZOOS = ("shipped", "digits")


def shipped_zoo_available(zoo_dir=None) -> bool:
    """Whether a zoo with a ground-truth table is installed (``pedjax/assets/zoo`` by default)."""
    from . import modelzoo

    path = Path(zoo_dir) if zoo_dir is not None else modelzoo.DEFAULT_ZOO
    return (path / modelzoo.MANIFEST).is_file() and (path / modelzoo.TRUTH_FILE).is_file()


def _any_features(names) -> bool:
    from .metrics import REGISTRY

    return any(REGISTRY[m].input == "features" for m in names)


def _rank_all(truth: dict, names, score_fn, compiling=None) -> tuple[dict, dict]:
    """Scores (static and, for feature metrics, + PED) and weighted τ of each against ``truth``.

    ``score_fn(metric, moved)`` scores the zoo on its own (``moved=False``) or on its PED-moved
    features (PED runs once for all metrics: the moved features do not depend on the metric, and
    the + PED scoring reuses the static scoring's compiled programs). ``compiling``: a
    :class:`pedjax.zoo.Compiling` whose background compilations are awaited per metric; metrics
    that compile inline (``batch="host"``) go first, while the background threads compile.
    """
    from .metrics import REGISTRY
    from .rank import weighted_tau

    scores, taus = {}, {}
    order = list(truth)
    for metric in sorted(names, key=lambda m: REGISTRY[m].batch != "host"):
        if compiling is not None:
            compiling.wait(metric)
        for use_ped in (False, True) if REGISTRY[metric].input == "features" else (False,):
            key = f"{metric}+ped" if use_ped else metric
            s = score_fn(metric, use_ped)
            scores[key] = s
            taus[key] = float(weighted_tau([s[k] for k in order], [truth[k] for k in order]))
    return {k: scores[k] for k in sorted(scores)}, {k: taus[k] for k in sorted(taus)}


def _precompile(features, labels, names):
    """Start compiling the feature metrics' programs on two background threads (see
    :func:`pedjax.zoo.precompile`); the demo then scores on the main thread."""
    from .metrics import REGISTRY
    from .zoo import precompile

    return precompile(features, labels, [m for m in names if REGISTRY[m].input == "features"], workers=2)


def run_demo(nsigma: float = 0.6, metrics_list=None, progress: bool = True, *, zoo: str = "shipped",
             task: str | None = None, zoo_dir=None) -> dict:
    """The demo's scores and weighted τ (see the module docstring); a JSON-ready dict.

    ``zoo="shipped"`` falls back to the digits zoo when no shipped zoo is installed (the result's
    ``"zoo"`` says which ran); ``task`` applies to the shipped zoo only.
    """
    import pedjax
    from pedjax import metrics as M

    if zoo not in ZOOS:
        raise ValueError(f"--zoo: unknown zoo {zoo!r}; choose one of {list(ZOOS)}")
    unknown = [m for m in (metrics_list or []) if m not in M.REGISTRY]
    if unknown:
        raise ValueError(f"--metric: unknown metric {unknown[0]!r}; choose one of {M.names()}")
    t0 = time.perf_counter()
    cfg = pedjax.PEDConfig(nsigma=nsigma)
    if zoo == "shipped" and (zoo_dir is not None or shipped_zoo_available()):
        return _run_shipped(cfg, metrics_list, task, zoo_dir, t0)
    if task is not None:
        raise ValueError("--task: the digits zoo has one fixed task; --task applies to the shipped zoo")
    features, y, stats, truth = digits_zoo()
    names = metrics_list or [n for n in DEFAULT_METRICS if n in M.REGISTRY]
    compiling = _precompile(features, y, names)
    moved = pedjax.ped_zoo(features, y, cfg, stats) if _any_features(names) else None
    scores, taus = _rank_all(truth, names, lambda m, p: pedjax.score_zoo(moved if p else features, y, metric=m), compiling)
    return {
        "zoo": "digits",
        "task": "digits (scikit-learn), target half",
        "truth_label": "probe acc",
        "n_samples": int(len(y)),
        "ped": {"nsigma": nsigma, "variant": cfg.variant},
        "models": {k: {"dim": int(v.shape[1]), "truth": truth[k]} for k, v in features.items()},
        "scores": scores,
        "weighted_tau": taus,
        "seconds": time.perf_counter() - t0,
    }


def _run_shipped(cfg, metrics_list, task, zoo_dir, t0) -> dict:
    from . import metrics as M
    from . import modelzoo

    z = modelzoo.load_zoo(zoo_dir)
    table = z.truth()
    if table is None:
        raise FileNotFoundError(f"--zoo: {z.path} has no {modelzoo.TRUTH_FILE}; build it with `pedjax zoo build --zoo {z.path}`")
    tasks = list(table["datasets"])
    task = task or (DEFAULT_TASK if DEFAULT_TASK in tasks else tasks[0])
    truth = z.task_truth(task, "--task")
    zf = modelzoo.extract_features(z, task, "train")
    names = metrics_list or M.names()
    compiling = _precompile(zf.features, zf.labels, names)
    moved = zf.with_ped(cfg) if _any_features(names) else None
    scores, taus = _rank_all(truth, names, lambda m, p: (moved if p else zf).score(m), compiling)
    return {
        "zoo": str(z.path),
        "task": f"{task} (train split)",
        "truth_label": "fine-tuned test acc",
        "n_samples": int(len(zf.labels)),
        "ped": {"nsigma": cfg.nsigma, "variant": cfg.variant},
        "models": {m.name: {"dim": int(m.feature_dim), "truth": truth[m.name], "arch": m.arch, "method": m.method} for m in z},
        "scores": scores,
        "weighted_tau": taus,
        "feature_seconds": zf.seconds,
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
    has_method = all("method" in v for v in models.values())
    if has_method:
        t.add_column("method")
    t.add_column("D", justify="right")
    t.add_column(result.get("truth_label", "ground truth"), justify="right")
    t.add_column("GT rank", justify="right")
    for m in shown:
        t.add_column(m, justify="right")
    for i, k in enumerate(order, 1):
        row = [k] + ([models[k]["method"]] if has_method else []) + [str(models[k]["dim"]), f"{models[k]['truth']:.3f}", str(i)]
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
    taus = result["weighted_tau"]
    for m in sorted({k.replace("+ped", "") for k in taus}):
        tt.add_row(m, f"{taus[m]:+.3f}", f"{taus[m + '+ped']:+.3f}" if m + "+ped" in taus else "n/a (no features)")
    con.print(tt)
    con.print(f"[dim]{len(models)} models, {result['n_samples']} target samples, {result['seconds']:.1f} s[/dim]")


def add_cli(sub) -> None:
    p = sub.add_parser("demo", help="score the shipped zoo on a shipped task with every metric, with and without PED")
    p.add_argument("--nsigma", type=float, default=0.6, help="PED ball scale (paper candidates 0.3, 0.6)")
    p.add_argument("--metric", action="append", help="restrict to these metrics (repeatable)")
    p.add_argument("--zoo", default="shipped", help="'shipped' (pedjax/assets/zoo; default), 'digits' (a quick zoo built on the fly) or a zoo folder")
    p.add_argument("--task", default=None, help=f"shipped zoo: the task to score (default {DEFAULT_TASK}; `pedjax zoo list` shows them)")
    p.add_argument("--plot", default=None, metavar="DIR", help="also write scores-vs-ground-truth figures (PNG) to DIR")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args) -> int:
    kind, zoo_dir = (args.zoo, None) if args.zoo in ZOOS else ("shipped", args.zoo)
    if zoo_dir is not None and not Path(zoo_dir).is_dir():
        raise ValueError(f"--zoo: {zoo_dir!r} is neither {' nor '.join(ZOOS)} nor a zoo folder")
    result = run_demo(nsigma=args.nsigma, metrics_list=args.metric, zoo=kind, task=args.task, zoo_dir=zoo_dir)
    if args.plot:
        result["figures"] = plot_demo(result, args.plot)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        _print(result)
        for f in result.get("figures", []):
            print(f"wrote {f}")
    return 0


def plot_demo(result: dict, out_dir) -> list[str]:
    """Score-vs-ground-truth scatters (static and + PED side by side) of the demo's metrics."""
    from .plots import scores_vs_truth

    truth = {k: v["truth"] for k, v in result["models"].items()}
    out = Path(out_dir)
    title = f"{result['task']}: score vs {result.get('truth_label', 'ground truth')} (τ_w: weighted Kendall τ)"
    feat = [k for k in result["scores"] if k + "+ped" in result["scores"]]
    files = []
    if feat:
        pairs = {lbl: result["scores"][lbl] for k in feat for lbl in (k, k + "+ped")}
        files.append(scores_vs_truth(pairs, truth, out / "demo_scores.png", title=title,
                                     truth_label=result.get("truth_label", "ground truth"), ncols=2))
    return files
