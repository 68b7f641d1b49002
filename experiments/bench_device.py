"""The device benchmark (issue 21): one GPU, ≤ 5 minutes; writes BENCHMARKS.md "On a GPU".

    python experiments/bench_device.py --reference runs/pedref         # on a machine with a GPU
    python experiments/bench_device.py --smoke                          # tiny, on the CPU, seconds (the test suite)

``--reference`` is a folder holding the published ``metrics.py`` and ``utils.py``
(github.com/lixiaotong97/PED; loaded by ``experiments/_reference.py``, never copied into pedjax).
Default: ``runs/pedref`` when it exists. A device machine cannot reach the network: export the two
files into ``runs/pedref`` (``git show HEAD:metrics.py > runs/pedref/metrics.py``, same for
``utils.py``) and carry that folder; write the results where they come back::

    cp BENCHMARKS.md $OUT/ && python experiments/bench_device.py --benchmarks $OUT/BENCHMARKS.md --json $OUT/bench_device.json

What it measures, each part side by side in one process (work is placed with
``jax.config.update("jax_default_device", …)`` on the first accelerator of ``jax.devices()``
— "device" — or on ``jax.devices("cpu")[0]`` — "host CPU"; pedjax's precision is passed
explicitly, ``precision="float32"`` or ``"float64"``):

(a) **Core**: a 12-model zoo, 5000 × 2048, C = 100 (``bench_core.make_zoo``'s low-rank ReLU
    features, as float32), PED + SFDA and PED + LogME with ``pedjax.score_zoo`` in float32 and
    float64 on the device and on the host CPU, against the published code (NumPy on the host,
    timed on ``--ref-models`` of the 12 models and scaled to 12). Times are the second (warm) call;
    the first call, with compilation, is given too.
(b) **NLEEP** on 2040 × 2048, C = 102 (``bench_nleep.relu_features``) against the published
    NLEEP (scikit-learn's ``GaussianMixture`` on a float64 copy); the goal is ≥ 10×.
(c) **The demo**: the shipped zoo's features on the task ``pedjax demo`` picks
    (``extract_features``) and the demo's scoring call (``pedjax.rank.benchmark`` over every
    registered metric, feature metrics also + PED at nsigma 0.6), cold and warm, on the device in
    float32 (what ``auto`` picks there) and on the host CPU in float64 (what the demo runs on a CPU).
(d) **Fidelity**: float32 against float64 (``pedjax.rank.fidelity``) for every feature metric ±
    PED on the zoo of (a), both on the device, and every metric ± PED on the demo task: (c)'s
    device float32 run against its host float64 run.

Without an accelerator the script says so and stops (``--allow-cpu`` runs it anyway: then
"device" is the CPU). ``--smoke`` runs every part at toy sizes on the CPU — a 3-member slice of the
shipped zoo (one width) on 60 images of the demo's task for (c), (a)'s zoo in the same shapes, and
in (c)/(d) only the metrics of :data:`SMOKE_METRICS`, one per code path — and is what ``tests/test_bench_device.py`` runs (with a
stand-in reference and a temporary ``--benchmarks`` file).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pedjax  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECTION = "bench_device"
#: (a)'s first call runs on this many models: score_zoo's chunk (1 GiB budget at 5000 × 2048) holds 2 models
#: in float64 and 4 in float32, so the zoo's own call then reuses the compiled program
WARMUP_MODELS = 4
PARTS = ("a", "b", "c", "d")
NSIGMA = 0.6
FULL = {"zoo": (12, 5000, 2048, 100, 1000), "nleep": (2040, 2048, 102), "demo_n": None, "demo_members": None}
SMOKE = {"zoo": None, "nleep": (60, 16, 3), "demo_n": 60, "demo_members": 3}  # zoo: the demo slice's shapes
#: the smoke run's metrics in (c) and (d) (every code path: vmapped, host-batched, source probabilities)
SMOKE_METRICS = ("logme", "sfda", "parc", "leep")


@contextlib.contextmanager
def placed(device):
    """Every JAX computation (compilation threads included) on ``device`` within the block."""
    import jax

    old = jax.config.jax_default_device
    jax.config.update("jax_default_device", device)
    try:
        yield
    finally:
        jax.config.update("jax_default_device", old)


def timed(fn, *args, **kwargs):
    """``(seconds, result)``; the result is host data (pedjax returns floats), so the time is complete."""
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def cold_warm(fn, *args, **kwargs):
    """``(first call s, second call s, second result)``."""
    t_cold, _ = timed(fn, *args, **kwargs)
    t_warm, out = timed(fn, *args, **kwargs)
    return t_cold, t_warm, out


def worst_rel(a: dict, b: dict) -> float:
    keys = [k for k in a if k in b and math.isfinite(a[k]) and math.isfinite(b[k])]
    return max((abs(a[k] - b[k]) / max(abs(b[k]), 1e-300) for k in keys), default=math.nan)


def places(accel, cpu) -> list[tuple[str, object]]:
    return [("device", accel), ("host CPU", cpu)]


# ----------------------------------------------------------------------------------------------
# (a) core


def part_core(feats, sources, y, accel, cpu, ref, ref_models, log):
    from _reference import quiet

    stats = {k: (S.mean(0), S.std(0)) for k, S in sources.items()}
    cfg = pedjax.PEDConfig(nsigma=NSIGMA)
    out = {"rows": [], "ref": {}}
    for metric, typ in (("sfda", "SFDA"), ("logme", "LOGME")):
        scores = {}
        for where, dev in places(accel, cpu):
            for prec in ("float32", "float64"):
                with placed(dev):  # first call on a slice of WARMUP_MODELS: it compiles the chunk program the zoo reuses
                    cold, _ = timed(pedjax.score_zoo, dict(list(feats.items())[:WARMUP_MODELS]), y, metric, ped=cfg,
                                    source_stats=stats, precision=prec)
                    warm, sc = timed(pedjax.score_zoo, feats, y, metric, ped=cfg, source_stats=stats, precision=prec)
                scores[(where, prec)] = sc
                out["rows"].append({"metric": metric, "where": where, "precision": prec, "cold": cold, "warm": warm})
                log(f"(a) PED+{metric} {where} {prec}: warm {warm:.2f} s, cold {cold:.2f} s")
        ref_entry = {"seconds": math.nan, "models": 0, "worst_rel": math.nan}
        if ref is not None:
            names = list(feats)[:ref_models]
            t0 = time.perf_counter()
            rs = {k: float(quiet(ref.PED_Score, feats[k].astype(np.float64), y, general_X=sources[k], nsigma=NSIGMA, type=typ))
                  for k in names}
            dt = time.perf_counter() - t0
            ref_entry = {"seconds": dt * len(feats) / len(names), "models": len(names),
                         "worst_rel": worst_rel(scores[("device", "float64")], rs)}
            log(f"(a) published PED+{metric}: {dt:.1f} s for {len(names)} models (→ {ref_entry['seconds']:.1f} s for {len(feats)})")
        for r in out["rows"]:
            if r["metric"] == metric:
                r["rel_vs_f64"] = worst_rel(scores[(r["where"], r["precision"])], scores[("device", "float64")])
        out["ref"][metric] = ref_entry
    return out


def render_core(core, shape) -> list[str]:
    M, N, D, C, _ = shape
    lines = [f"### (a) Core: PED + SFDA and PED + LogME, {M} models × {N} × {D}, C = {C}", "",
             f"| metric | where | precision | warm (s) | first call, {WARMUP_MODELS} models (s) | published ÷ this | host CPU float64 ÷ this | "
             "worst rel. diff vs device float64 |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for metric in ("sfda", "logme"):
        ref = core["ref"].get(metric, {})
        host64 = next(r["warm"] for r in core["rows"] if r["metric"] == metric and r["where"] == "host CPU" and r["precision"] == "float64")
        label = {"sfda": "PED+SFDA", "logme": "PED+LogME"}[metric]
        if ref.get("models"):
            lines.append(f"| {label} | published code (NumPy, host) | float64 | {ref['seconds']:.1f} | – | 1.0× | "
                         f"{host64 / ref['seconds']:.2f}× | {ref['worst_rel']:.1e} (pedjax vs published) |")
        for r in core["rows"]:
            if r["metric"] != metric:
                continue
            vs_ref = f"{ref['seconds'] / r['warm']:.1f}×" if ref.get("models") else "–"
            lines.append(f"| {label} | pedjax, {r['where']} | {r['precision']} | {r['warm']:.2f} | {r['cold']:.2f} | {vs_ref} | "
                         f"{host64 / r['warm']:.1f}× | {r['rel_vs_f64']:.1e} |")
    refs = [f"{m}: {v['models']} of {M} models timed, scaled to {M}" for m, v in core["ref"].items() if v.get("models")]
    lines += ["", "The published code's time: " + ("; ".join(refs) if refs else "not measured (no `--reference`)") + "."]
    return lines


# ----------------------------------------------------------------------------------------------
# (b) NLEEP


def part_nleep(shape, accel, ref, log):
    from _reference import quiet
    from bench_nleep import relu_features

    from pedjax.metrics import nleep

    n, d, c = shape
    X32, y = relu_features(n, d, c)
    out = {"shape": shape, "rows": [], "ref": None}
    for prec in ("float32", "float64"):
        with placed(accel):
            cold, warm, s = cold_warm(nleep, X32, y, precision=prec)
        out["rows"].append({"precision": prec, "cold": cold, "warm": warm, "score": s})
        log(f"(b) NLEEP device {prec}: warm {warm:.2f} s, cold {cold:.2f} s, score {s:.6f}")
    if ref is not None:
        try:
            dt, s = timed(quiet, ref.NLEEP, X32.astype(np.float64), y)
            out["ref"] = {"seconds": dt, "score": float(s)}
        except Exception as exc:  # the published code may fail; say how
            out["ref"] = {"seconds": math.nan, "score": math.nan, "error": f"{type(exc).__name__}: {str(exc)[:80]}"}
        log(f"(b) published NLEEP: {out['ref']}")
    return out


def render_nleep(nl) -> list[str]:
    n, d, c = nl["shape"]
    ref = nl["ref"]
    lines = [f"### (b) NLEEP, {n} × {d}, C = {c} (goal ≥ 10× the published code)", "",
             "| implementation | precision | warm (s) | first call (s) | score | published ÷ this | goal met |", "|---|---|---:|---:|---:|---:|---|"]
    if ref is not None:
        lines.append(f"| published (scikit-learn GaussianMixture, host, float64 copy) | float64 | {ref['seconds']:.2f} | – | "
                     f"{ref['score']:.6f} | 1.0× | {'(' + ref['error'] + ')' if ref.get('error') else ''} |")
    for r in nl["rows"]:
        speed = ref["seconds"] / r["warm"] if ref is not None and math.isfinite(ref["seconds"]) else math.nan
        lines.append(f"| pedjax, device | {r['precision']} | {r['warm']:.2f} | {r['cold']:.2f} | {r['score']:.6f} | "
                     + (f"{speed:.1f}× | {'yes' if speed >= 10 else 'no'} |" if speed == speed else "– | – |"))
    return lines


# ----------------------------------------------------------------------------------------------
# (c) demo


def demo_inputs(smoke_n=None, smoke_members=None):
    """The shipped zoo and the task ``pedjax demo`` picks (smoke: a slice of both)."""
    from pedjax.cli.demo import default_task
    from pedjax.data import load_task
    from pedjax.zoo import load_zoo

    zoo = load_zoo(None)
    task = default_task(zoo.truth())
    data = load_task(task)
    if smoke_n:  # members of one width: one set of compiled programs, shared with (a) and (d)
        width = min(m.feature_dim for m in zoo)
        zoo = dataclasses.replace(zoo, members=tuple(m for m in zoo if m.feature_dim == width)[:smoke_members])
        data = dataclasses.replace(data, x_train=data.x_train[:smoke_n], y_train=data.y_train[:smoke_n])
    return zoo, task, data


def part_demo(zoo, task, data, accel, cpu, log, metrics=None):
    """The demo's calls (``pedjax.cli.demo.run_demo``): extract_features, then benchmark with every
    metric (``metrics``: a subset, for the smoke run)."""
    from pedjax.features import extract_features
    from pedjax.metrics import names
    from pedjax.rank import benchmark

    cfg = pedjax.PEDConfig(nsigma=NSIGMA)
    out = {"task": task, "members": len(zoo), "n": int(data.x_train.shape[0]), "rows": [], "results": {}}
    fs = None
    for where, dev, prec in (("device", accel, "float32"), ("host CPU", cpu, "float64")):
        with placed(dev):
            t_feat, fs_here = timed(extract_features, zoo, data, "train")
            fs = fs if fs is not None else fs_here
            with pedjax.precision(prec):
                cold, warm, res = cold_warm(benchmark, fs, list(metrics or names()), {"ped": cfg})
        n_var = len(res.variants)
        errors = sorted(res.errors)
        out["rows"].append({"where": where, "precision": prec, "features": t_feat, "cold": cold, "warm": warm, "variants": n_var,
                            "errors": errors})
        out["results"][(where, prec)] = res
        log(f"(c) demo {where} {prec}: features {t_feat:.1f} s, scoring cold {cold:.1f} s, warm {warm:.1f} s "
            f"({n_var} variants{', errors: ' + ', '.join(errors) if errors else ''})")
    out["fs"] = fs
    return out


def render_demo(demo) -> list[str]:
    lines = [f"### (c) The demo: {demo['members']} members on `{demo['task']}` ({demo['n']} training images), every metric ± PED", "",
             "| where | precision | features (s) | scoring, first call (s) | scoring, warm (s) | host CPU float64 ÷ this (warm) |",
             "|---|---|---:|---:|---:|---:|"]
    host = next(r for r in demo["rows"] if r["where"] == "host CPU")
    for r in demo["rows"]:
        lines.append(f"| {r['where']} | {r['precision']} | {r['features']:.1f} | {r['cold']:.1f} | {r['warm']:.1f} | "
                     f"{host['warm'] / r['warm']:.1f}× |")
    lines += ["", "Features: `extract_features` on the device (first call, compilation included); scoring: "
              "`pedjax.rank.benchmark` as `pedjax demo` calls it."
              + ("" if all(not r["errors"] for r in demo["rows"]) else
                 " Variants with errors: " + "; ".join(f"{r['where']} {r['precision']}: {', '.join(r['errors'])}" for r in demo["rows"] if r["errors"]))]
    return lines


# ----------------------------------------------------------------------------------------------
# (d) fidelity


def part_fidelity(feats, sources, y, demo, accel, log, metrics=None):
    from pedjax.features import FeatureSet
    from pedjax.rank import fidelity as F

    stats = {k: (S.mean(0), S.std(0)) for k, S in sources.items()}
    M, (N, D) = len(feats), next(iter(feats.values())).shape
    zoo_set = FeatureSet(feats, y, stats, task=f"zoo of (a), {M} × {N} × {D}")
    with placed(accel):
        use = [m for m in F.feature_metrics() if metrics is None or m in metrics]
        res = F.fidelity(zoo_set, use, {"ped": pedjax.PEDConfig(nsigma=NSIGMA)})
    rows = {"zoo": res.rows[zoo_set.task], "demo": {}}
    task = None
    if demo is not None:
        r64, r32 = demo["results"][("host CPU", "float64")], demo["results"][("device", "float32")]
        task = demo["fs"].task
        rows["demo"] = {v: F.compare(r64.scores[task].get(v), r32.scores[task].get(v), r32.errors.get(v, {}).get(task))
                        for v in r64.variants}
    bad = [f"{g}: {v}" for g, rs in rows.items() for v, r in rs.items() if r.nonfinite or not (r.tau >= F.TAU_TARGET)]
    log(f"(d) fidelity: below target: {', '.join(bad) or 'none'}")
    return {"rows": rows, "zoo_task": zoo_set.task, "demo_task": task, "seconds": res.seconds}


def render_fidelity(fid) -> list[str]:
    from pedjax.rank import fidelity as F

    z, d = fid["rows"]["zoo"], fid["rows"]["demo"]
    variants = sorted(set(z) | set(d), key=lambda v: (v.split("+")[0], "+" in v))
    lines = [f"### (d) float32 against float64 on the device (target τ_w ≥ {F.TAU_TARGET}, no new non-finite score)", "",
             "Left: the zoo of (a), both precisions on the device; right: "
             + (f"the demo task `{fid['demo_task']}`, (c)'s device float32 run against its host CPU float64 run. "
                if fid["demo_task"] else "the demo task, not run (it needs part c). ")
             + "τ_w: weighted τ between the float32 and float64 "
             "rankings; rel.: worst |s32 − s64| / |s64|; n.f.: float32 scores not finite where float64 is.", "",
             "| variant | τ_w (a) | rel. (a) | n.f. (a) | τ_w demo | rel. demo | n.f. demo |", "|---|---:|---:|---:|---:|---:|---:|"]

    def cells(r):
        if r is None:
            return "– | – | –"
        tau = "tied" if r.tied else "–" if r.tau != r.tau else (f"{r.tau:.3f}" if r.tau >= F.TAU_TARGET else f"**{r.tau:.4f}**")
        return f"{tau} | {r.worst_rel:.1e} | {r.nonfinite}"

    for v in variants:
        lines.append(f"| {v} | {cells(z.get(v))} | {cells(d.get(v))} |")
    return lines


# ----------------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="toy sizes on the CPU (seconds): every code path, no meaningful numbers")
    ap.add_argument("--reference", type=Path, default=None, help="folder with the published metrics.py/utils.py (default runs/pedref if present)")
    ap.add_argument("--ref-models", type=int, default=3, help="(a): time the published code on this many of the zoo's models")
    ap.add_argument("--benchmarks", type=Path, default=None, help="the BENCHMARKS.md to update (default: the repository's)")
    ap.add_argument("--json", type=Path, default=None, help="also write every number as JSON here")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--parts", default=",".join(PARTS), help="comma list of the parts to run: a (core), b (NLEEP), c (demo), "
                    "d (fidelity; its demo half needs c)")
    ap.add_argument("--allow-cpu", action="store_true", help="run the full sizes even when JAX sees no accelerator")
    args = ap.parse_args(argv)

    from pedjax.cli._common import configure_process

    configure_process()  # as the command line (XLA:CPU flag, compilation cache); precision is passed per call
    import jax
    from _bench_md import BENCHMARKS, stamp, write_section
    from _reference import load_reference

    t_all = time.perf_counter()
    accels = [d for d in jax.devices() if d.platform != "cpu"]
    cpu = jax.devices("cpu")[0]
    env = pedjax._precision.environment()
    print(f"backend {jax.default_backend()}; devices {[str(d) for d in jax.devices()]}; host {cpu}; "
          f"float64 on the default device: {env['float64_available']}; auto precision: {env['auto_precision']}", flush=True)
    if not accels:
        print("NO GPU: JAX sees no accelerator (backend cpu). On a GPU machine install JAX's CUDA build: "
              "pip install 'pedjax[cuda12]'; check with `pedjax info`.", flush=True)
        if not (args.smoke or args.allow_cpu):
            return 2
    accel = accels[0] if accels else cpu
    sizes = SMOKE if args.smoke else FULL
    ref_path = args.reference or (ROOT / "runs" / "pedref")
    ref = load_reference(ref_path) if (args.reference is not None or ref_path.is_dir()) else None
    if ref is None:
        print("no published reference (--reference): its columns stay empty", flush=True)
    t_part = {}

    def log(msg):
        print(f"[{time.perf_counter() - t_all:6.1f} s] {msg}", flush=True)

    from bench_core import make_zoo

    zoo, task, data = demo_inputs(sizes["demo_n"], sizes["demo_members"])
    if args.smoke:  # (a)'s zoo in the demo slice's shapes: the smoke run compiles each program once
        sizes = {**sizes, "zoo": (len(zoo), data.x_train.shape[0], int(zoo[0].feature_dim),
                                  len(np.unique(data.y_train)), 40)}
    M, N, D, C, n_source = sizes["zoo"]
    feats64, sources, y = make_zoo(M, N, D, C, n_source)
    feats = {k: X.astype(np.float32) for k, X in feats64.items()}
    del feats64
    parts = set(args.parts.split(","))
    subset = SMOKE_METRICS if args.smoke else None
    core = nl = demo = fid = None
    t = time.perf_counter()
    if "a" in parts:
        core = part_core(feats, sources, y, accel, cpu, ref, min(args.ref_models, M), log)
        t_part["a"] = time.perf_counter() - t
    if "b" in parts:
        t = time.perf_counter()
        nl = part_nleep(sizes["nleep"], accel, ref, log)
        t_part["b"] = time.perf_counter() - t
    if "c" in parts:
        t = time.perf_counter()
        demo = part_demo(zoo, task, data, accel, cpu, log, subset)
        t_part["c"] = time.perf_counter() - t
    if "d" in parts:
        t = time.perf_counter()
        fid = part_fidelity(feats, sources, y, demo, accel, log, subset)
        t_part["d"] = time.perf_counter() - t
    total = time.perf_counter() - t_all

    kind = f"{accel.platform} ({getattr(accel, 'device_kind', '')})" if accels else "NO accelerator: the CPU"
    title = "## On a GPU (`experiments/bench_device.py`)" + (f" — smoke run, toy sizes, metrics {', '.join(subset)}" if subset else "")
    lines = [title, "",
             f"Device: {kind}; host CPU: {cpu}. Each part runs side by side in one process; precision is passed "
             "explicitly (`precision=`), matmul precision is \"highest\" inside pedjax's entry points.", ""]
    for part, render in ((core, lambda: render_core(core, sizes["zoo"])), (nl, lambda: render_nleep(nl)),
                         (demo, lambda: render_demo(demo)), (fid, lambda: render_fidelity(fid))):
        if part is not None:
            lines += render() + [""]
    times = ", ".join(f"{k} {v:.0f} s" for k, v in t_part.items())
    command = "python experiments/bench_device.py" + (" --smoke" if args.smoke else " --reference runs/pedref")
    command += f" --parts {args.parts}" if parts != set(PARTS) else ""
    lines += [f"Wall time: {total:.0f} s ({times}).", "", stamp(command)]
    body = "\n".join(lines)
    print(body, flush=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        blob = {"core": core, "nleep": nl,
                "demo": None if demo is None else {k: v for k, v in demo.items() if k not in ("results", "fs")},
                "fidelity": None if fid is None else {g: {v: r.as_dict() for v, r in rs.items()} for g, rs in fid["rows"].items()},
                "seconds": {"total": total, **t_part}, "environment": env, "smoke": args.smoke}
        args.json.write_text(json.dumps(blob, indent=1, default=str))
    if not args.no_write:
        write_section(SECTION, body, args.benchmarks or BENCHMARKS)
        print(f"wrote {args.benchmarks or BENCHMARKS}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
