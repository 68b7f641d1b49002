"""Wall time of ``pedjax demo``, cold and warm (issue 12's targets on the 2-core machine: cold first
run ≤ 25 s after install, second run ≤ 10 s, same output) → BENCHMARKS.md section ``bench_demo``.

    python experiments/bench_demo.py                  # 1 cold + 2 warm runs of `pedjax demo --json`
    python experiments/bench_demo.py --warm 3 --task fashion-lowdata

Every run is a fresh process (imports, zoo loading, feature extraction and compilation included:
what a user waits for). The cold run starts from an empty pedjax cache folder (a new
``PEDJAX_CACHE_DIR``: the persistent XLA compilation cache and the extracted-feature cache); the
warm runs reuse what it wrote. Each warm run's scores and τ must equal the cold run's exactly; the
script fails otherwise. The load average at the start of each run is recorded (the machine is
shared: a run beside another job is slower).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_md import stamp, write_section  # noqa: E402

TARGET_COLD_S, TARGET_WARM_S = 25.0, 10.0


def one_run(task: str | None, cache: str) -> dict:
    cmd = [sys.executable, "-m", "pedjax.cli", "demo", "--json"] + (["--task", task] if task else [])
    load = os.getloadavg()[0]
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True, env={**os.environ, "PEDJAX_CACHE_DIR": cache})
    wall = time.perf_counter() - t
    res = json.loads(out.stdout)
    return {"wall": wall, "inside": res["seconds"], "features": res.get("feature_seconds", float("nan")),
            "task": res["task"], "models": len(res["models"]), "n": res["n_samples"], "variants": len(res["scores"]),
            "scores": res["scores"], "tau": res["weighted_tau"], "load": load}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warm", type=int, default=2, help="warm runs after the cold one (default 2)")
    ap.add_argument("--task", default=None, help="default: the demo's default task")
    args = ap.parse_args(argv)
    if args.warm < 1:
        ap.error("--warm: need at least 1")
    with tempfile.TemporaryDirectory(prefix="pedjax-bench-cache-") as cache:
        runs = []
        for i in range(1 + args.warm):
            r = one_run(args.task, cache)
            r["kind"] = "cold" if i == 0 else "warm"
            runs.append(r)
            print(f"{r['kind']} run: wall {r['wall']:.1f} s (demo {r['inside']:.1f} s, features {r['features']:.1f} s; "
                  f"load average {r['load']:.1f})", flush=True)
    same = all(r["scores"] == runs[0]["scores"] and r["tau"] == runs[0]["tau"] for r in runs[1:])
    if not same:
        print("error: a warm run's scores differ from the cold run's", file=sys.stderr)
        return 1
    r0 = runs[0]
    warm = [r["wall"] for r in runs[1:]]
    body = [
        "## `pedjax demo` wall time, cold and warm (issue 12)\n",
        f"`pedjax demo --json` in a fresh process per run (imports, zoo loading, feature extraction and "
        f"compilation included): task {r0['task']}, {r0['models']} models, {r0['n']} samples, {r0['variants']} scored "
        f"variants (the demo's metrics, `pedjax.cli.demo.DEMO_METRICS`, feature metrics also + PED). Cold: an empty pedjax cache folder (persistent XLA "
        f"compilation cache and extracted-feature cache); warm: the caches the cold run wrote. Targets: cold ≤ {TARGET_COLD_S:.0f} s, warm ≤ {TARGET_WARM_S:.0f} s. Every warm "
        f"run's scores and τ equal the cold run's exactly (checked).\n",
        "| run | wall (s) | demo's own time (s) | of which feature extraction (s) | load average at start |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in runs:
        body.append(f"| {r['kind']} | {r['wall']:.1f} | {r['inside']:.1f} | {r['features']:.1f} | {r['load']:.1f} |")
    body.append(f"\nCold {r0['wall']:.1f} s ({'met' if r0['wall'] <= TARGET_COLD_S else 'NOT met'}: ≤ {TARGET_COLD_S:.0f} s); "
                f"warm worst {max(warm):.1f} s ({'met' if max(warm) <= TARGET_WARM_S else 'NOT met'}: ≤ {TARGET_WARM_S:.0f} s).\n")
    body.append(stamp())
    write_section("bench_demo", "\n".join(body))
    print("wrote BENCHMARKS.md section bench_demo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
