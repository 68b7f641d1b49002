"""NLEEP: pedjax vs the published NLEEP (PED/SFDA repositories' ``metrics.py``), side by side.

    python experiments/bench_nleep.py --reference /path/to/PED   # a dir with metrics.py, utils.py

The reference code is *not* part of pedjax: it is loaded at run time from ``--reference`` (e.g. a
checkout of github.com/lixiaotong97/PED), with the modules it imports but NLEEP does not need
(``torch``, ``torch.nn``, ``models``, ``models.group1``, ``tqdm``) stubbed in ``sys.modules``
*after* scipy and scikit-learn are imported (scipy probes ``torch.Tensor`` when torch is loaded).

Two cases, float32 "ReLU features" (low rank + noise, fixed seed), as a network would emit them:
2040 × 2048 with C = 102 (Flowers-102-sized) and 2000 × 512 with C = 10. For each case:

* the reference on the float32 features as given (the published code keeps float32 through
  scikit-learn's GaussianMixture, which typically fails with "ill-defined empirical covariance");
* the reference on a float64 copy (where it is well defined) — its time is the baseline;
* pedjax (``pedjax.metrics.nleep``, float64 internally): the first call includes compilation.

Each side runs ``--repeats`` times, interleaved, so both see the same machine load; the reported
speed-up is best reference time / best warm pedjax time. The reference is unseeded (its score
changes between runs); pedjax's must not.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import traceback
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from experiments._bench_md import stamp, write_section  # noqa: E402

CASES = [(2040, 2048, 102), (2000, 512, 10)]


def relu_features(n: int, d: int, c: int, rank: int = 64, noise: float = 0.05, seed: int = 0):
    """float32 features relu(z W) + noise, z = class centre + N(0, I) in a rank-``rank`` space."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    rng.shuffle(y)
    centres = rng.normal(size=(c, rank))
    z = centres[y] + rng.normal(size=(n, rank))
    W = rng.normal(size=(rank, d)) / np.sqrt(rank)
    X = np.maximum(z @ W, 0.0) + noise * rng.normal(size=(n, d))
    return X.astype(np.float32), y


def load_reference(path: Path):
    """Import the published ``metrics.py`` from ``path`` with its unused imports stubbed."""
    import scipy  # noqa: F401  (before the stubs: scipy looks at sys.modules["torch"])
    import scipy.linalg  # noqa: F401
    import scipy.stats  # noqa: F401
    import sklearn.decomposition  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import sklearn.mixture  # noqa: F401

    torch = types.ModuleType("torch")
    nn = types.ModuleType("torch.nn")
    nn.Module = object
    torch.nn = nn
    torch.Tensor = type("Tensor", (), {})
    models = types.ModuleType("models")
    group1 = types.ModuleType("models.group1")
    models.group1 = group1
    tqdm = types.ModuleType("tqdm")
    tqdm.tqdm = lambda it, *a, **k: it
    for name, mod in {"torch": torch, "torch.nn": nn, "models": models, "models.group1": group1, "tqdm": tqdm}.items():
        sys.modules.setdefault(name, mod)
    sys.path.insert(0, str(path))
    spec = importlib.util.spec_from_file_location("_ped_reference_metrics", path / "metrics.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.NLEEP


def timed(fn, *args, **kw):
    t = time.perf_counter()
    try:
        out, err = fn(*args, **kw), None
    except Exception as e:  # the reference may fail; record how
        out, err = None, f"{type(e).__name__}: {str(e).splitlines()[0][:90]}"
    return time.perf_counter() - t, out, err


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", type=Path, required=True, help="directory holding the published metrics.py and utils.py")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-write", action="store_true", help="print only; do not update BENCHMARKS.md")
    args = ap.parse_args(argv)

    import warnings

    warnings.filterwarnings("ignore")
    ref_nleep = load_reference(args.reference)
    import jax

    import pedjax
    from pedjax.metrics import nleep
    from pedjax.metrics.nleep import nleep_pca_components

    rows, notes = [], []
    for n, d, c in CASES:
        X32, y = relu_features(n, d, c)
        X64 = X32.astype(np.float64)
        k = nleep_pca_components(X32)
        r32, r64, pj = [], [], []
        for rep in range(args.repeats):
            r32.append(timed(ref_nleep, X32.copy(), y))
            r64.append(timed(ref_nleep, X64.copy(), y))
            pj.append(timed(nleep, X32, y))
            print(f"{n}x{d} C={c} rep {rep}: ref f32 {r32[-1][0]:.2f}s {r32[-1][1] if r32[-1][2] is None else r32[-1][2]} | "
                  f"ref f64 {r64[-1][0]:.2f}s {r64[-1][1]} | pedjax {pj[-1][0]:.2f}s {pj[-1][1]}", flush=True)
        ok64 = [t for t, _, e in r64 if e is None]
        ref_best = min(ok64) if ok64 else float("nan")
        warm = min(t for t, _, _ in pj[1:]) if len(pj) > 1 else pj[0][0]
        cold = pj[0][0]
        pj_scores = [s for _, s, _ in pj]
        ref_scores = [s for _, s, e in r64 if e is None]
        f32_fail = [e for _, _, e in r32 if e is not None]
        rows.append(
            f"| {n} × {d}, C = {c} | {k} | {5 * c} | "
            + (f"fails {len(f32_fail)}/{len(r32)} (`{f32_fail[0][:60]}…`)" if f32_fail else "runs")
            + f" | {ref_best:.2f} s | {warm:.2f} s ({cold:.2f} s cold) | **{ref_best / warm:.1f}×** | "
            + ", ".join(f"{s:.6f}" for s in ref_scores)
            + " | "
            + ", ".join(f"{s:.6f}" for s in pj_scores)
            + (" (identical)" if len(set(pj_scores)) == 1 else " (DIFFER)")
            + f" | {'yes' if all(np.isfinite(pj_scores)) else 'NO'} |"
        )
    body = "\n".join(
        [
            "## NLEEP: pedjax vs the published NLEEP",
            "",
            stamp(),
            "float32 low-rank ReLU features (rank 64, noise 0.05, seed 0). \"ref f32\" is the published NLEEP "
            "on the features as given; the baseline time is the published NLEEP on a float64 copy (where it is "
            "well defined); pedjax takes the float32 features and works in float64. Reference and pedjax runs "
            f"are interleaved ({args.repeats} each); speed-up = best reference / best warm pedjax time. "
            "The machine is shared, so absolute times drift with its load; the interleaved ratio is the figure to read.",
            "",
            "| case | PCA k | GMM K | ref on float32 | ref time (float64) | pedjax time | speed-up | ref scores (unseeded) | pedjax scores (seed 0) | pedjax finite |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"jax {jax.__version__}, backend {jax.default_backend()}, pedjax {pedjax.__version__}.",
        ]
        + notes
    )
    print(body)
    if not args.no_write:
        write_section("bench_nleep", body)


if __name__ == "__main__":
    main()
