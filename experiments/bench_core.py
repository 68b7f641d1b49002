"""Core benchmark: a 12-model zoo (N=5000, D=2048, C=100), PED+SFDA and PED+LogME, float64.

pedjax ``score_zoo`` against the published implementation, side by side in one process:

    python experiments/bench_core.py --reference /path/to/PED-checkout

Prints a table and writes the ``bench_core`` section of BENCHMARKS.md. Without ``--reference``
only pedjax is timed. Features are synthetic low-rank ReLU features with a fixed seed; each model
has its own latent rank, class separation and noise so that the scores differ.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pedjax  # noqa: E402
from pedjax.cli._common import configure_process  # noqa: E402

configure_process()  # as the command line: x64 (the meta objective runs in the process precision), XLA:CPU flag, cache
from _bench_md import stamp, write_section  # noqa: E402
from _reference import load_reference, quiet  # noqa: E402


def make_zoo(M, N, D, C, n_source, seed=0):
    """Synthetic zoo: per model, ReLU(latent @ W) with a model-specific latent rank and separation."""
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(C), rng.integers(0, C, N - C)])
    feats, sources = {}, {}
    for m in range(M):
        r = int(rng.integers(16, 65))
        sep = float(rng.uniform(0.2, 0.6))
        noise = float(rng.uniform(0.0, 0.05))
        W = rng.standard_normal((r, D)) / np.sqrt(r)
        b = rng.standard_normal(D) * 0.5
        centres = rng.standard_normal((C, r)) * sep
        Z = centres[y] + rng.standard_normal((N, r))
        X = np.maximum(Z @ W + b + noise * rng.standard_normal((N, D)), 0.0)
        Zs = rng.standard_normal((n_source, r)) * (1.0 + sep)
        S = np.maximum(Zs @ W + b + noise * rng.standard_normal((n_source, D)), 0.0)
        feats[f"model_{m:02d}"] = X
        sources[f"model_{m:02d}"] = S
    return feats, sources, y


def rss_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB on Linux


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", help="local checkout of github.com/lixiaotong97/PED")
    ap.add_argument("--models", type=int, default=12)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--n-source", type=int, default=1000)
    ap.add_argument("--nsigma", type=float, default=0.6)
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args()

    feats, sources, y = make_zoo(args.models, args.n, args.d, args.classes, args.n_source)
    stats = {k: (S.mean(0), S.std(0)) for k, S in sources.items()}
    stacked_gib = sum(X.nbytes for X in feats.values()) / 2**30
    cfg = pedjax.PEDConfig(nsigma=args.nsigma)
    metrics = [("sfda", "SFDA"), ("logme", "LOGME")]

    # warm-up compile on the same shapes is excluded: report steady-state and first-call time
    ours, ours_first = {}, {}
    scores = {}
    for name, _ in metrics:
        t = time.perf_counter()
        scores[name] = pedjax.score_zoo(feats, y, metric=name, ped=cfg, source_stats=stats)
        ours_first[name] = time.perf_counter() - t
        t = time.perf_counter()
        scores[name] = pedjax.score_zoo(feats, y, metric=name, ped=cfg, source_stats=stats)
        ours[name] = time.perf_counter() - t
    peak = rss_gib()
    budget = 2 * stacked_gib + 1.0

    ref_times, worst = {}, {}
    ref_scores = {}
    if args.reference:
        ref = load_reference(args.reference)
        for name, typ in metrics:
            t = time.perf_counter()
            ref_scores[name] = {
                k: float(quiet(ref.PED_Score, X.copy(), y, general_X=sources[k], nsigma=args.nsigma, type=typ))
                for k, X in feats.items()
            }
            ref_times[name] = time.perf_counter() - t
            worst[name] = max(abs(scores[name][k] - v) / abs(v) for k, v in ref_scores[name].items())

    shape = f"{args.models} models × {args.n}×{args.d}, C={args.classes}, float64"
    lines = [
        f"### Core: whole-zoo PED + metric ({shape})",
        "",
        "| metric | pedjax score_zoo (s) | first call incl. compile (s) | published code (s) | speed-up | worst rel. diff |",
        "|---|---|---|---|---|---|",
    ]
    for name, typ in metrics:
        r = ref_times.get(name)
        lines.append(
            f"| PED+{typ if typ != 'LOGME' else 'LogME'} | {ours[name]:.2f} | {ours_first[name]:.2f} | "
            + (f"{r:.1f} | {r / ours[name]:.1f}× | {worst[name]:.1e} |" if r else "– | – | – |")
        )
    lines += [
        "",
        f"Peak RSS after pedjax scoring: {peak:.2f} GiB (stacked features {stacked_gib:.2f} GiB; "
        f"target ≤ 2×features + 1 GiB = {budget:.2f} GiB: {'met' if peak <= budget else 'NOT met'}).",
        "PED steps taken per model are data-dependent (early exit); both implementations take the same.",
        "",
        stamp(f"python experiments/bench_core.py --reference PATH/TO/PED"),
    ]
    text = "\n".join(lines)
    print(text)
    print("\nper-model scores (pedjax | published):")
    for name, _ in metrics:
        for k in feats:
            other = f"{ref_scores[name][k]:.10g}" if ref_scores else "–"
            print(f"  {name:6s} {k}: {scores[name][k]:.10g} | {other}")
    if not args.no_write:
        write_section("bench_core", text)


if __name__ == "__main__":
    main()
