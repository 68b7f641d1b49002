"""Wall time of ``pedjax demo`` (issue 6's target: under 60 s on the 2-core machine) → BENCHMARKS.md
section ``bench_demo``.

    python experiments/bench_demo.py                  # 3 cold runs of `pedjax demo --json`
    python experiments/bench_demo.py --runs 1 --task fashion-lowdata

Each run is a fresh process (imports, zoo loading, feature extraction, every XLA compilation
included: what a user waits for). Reported: the process's wall time, the time the demo itself
reports (``seconds``: from zoo loading to the last score) and its feature-extraction part.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _bench_md import stamp, write_section  # noqa: E402

TARGET_S = 60.0


def one_run(task: str | None) -> dict:
    cmd = [sys.executable, "-m", "pedjax.cli", "demo", "--json"] + (["--task", task] if task else [])
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    res = json.loads(out.stdout)
    return {"wall": wall, "inside": res["seconds"], "features": res.get("feature_seconds", float("nan")),
            "task": res["task"], "models": len(res["models"]), "n": res["n_samples"], "variants": len(res["scores"])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--task", default=None, help="default: the demo's default task")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs: need at least 1")
    runs = []
    for i in range(args.runs):
        r = one_run(args.task)
        runs.append(r)
        print(f"run {i + 1}: wall {r['wall']:.1f} s (demo {r['inside']:.1f} s, features {r['features']:.1f} s)", flush=True)
    r0 = runs[0]
    walls = [r["wall"] for r in runs]
    body = [
        "## `pedjax demo` wall time (issue 6)\n",
        f"`pedjax demo --json` in a fresh process per run (imports, zoo loading, feature extraction and "
        f"every compilation included): task {r0['task']}, {r0['models']} models, {r0['n']} samples, "
        f"{r0['variants']} scored variants (every metric, feature metrics also + PED). Target: under {TARGET_S:.0f} s.\n",
        "| run | wall (s) | demo's own time (s) | of which feature extraction (s) |",
        "|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(runs, 1):
        body.append(f"| {i} | {r['wall']:.1f} | {r['inside']:.1f} | {r['features']:.1f} |")
    body.append(f"\nMedian wall {np.median(walls):.1f} s, worst {max(walls):.1f} s "
                f"({'under' if max(walls) < TARGET_S else 'NOT under'} the {TARGET_S:.0f} s target in every run).\n")
    body.append(stamp())
    write_section("bench_demo", "\n".join(body))
    print("wrote BENCHMARKS.md section bench_demo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
