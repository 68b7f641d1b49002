"""Timing probe for the v2 zoo build: measured cost per pretraining step and per ground-truth unit.

    python experiments/zoo_v2_probe.py [--out runs/zoo_v2_probe.json]

For every distinct (architecture, width) of ``pedjax.zoo.V2_MEMBERS``: seconds per pretraining
step (batch ``V2_CONFIG.batch_size``) with a one-view objective (supervised) and a two-view one
(SimCLR), and seconds per fine-tuning step of the whole lr × wd grid of ``V2_CONFIG`` (batch
``ft_batch_size``) plus one evaluation of the grid on 3 000 test images; each measured after
compilation, compile times reported apart. Then the estimate of the full v2 build: every trained
member's pretraining steps, every (member, task, seed) unit, the compilations. Prints a markdown
table for docs/zoo.md and writes the numbers as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


CPU: dict = {}


def _timed(fn, repeat=1):
    """Wall seconds per call; the process CPU seconds of the last call go to ``CPU["last"]``."""
    import jax

    t, c = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        out = fn()
    jax.block_until_ready(out)
    CPU["last"] = (time.process_time() - c) / repeat
    return (time.perf_counter() - t) / repeat, out


def probe(measure_steps: int = 20) -> dict:
    import jax
    import jax.numpy as jnp

    from pedjax.models import finetune as ft
    from pedjax.models import pretrain as pt
    from pedjax.models import ssl as ssl_mod
    from pedjax.models.training import batch_schedule
    from pedjax.zoo import V2_CONFIG, V2_MEMBERS, create_module

    cfg = V2_CONFIG
    rng = np.random.default_rng(0)
    X = rng.random((2000, 28, 28, 1), dtype=np.float32)
    Y = rng.integers(0, 10, 2000).astype(np.int32)
    Xte = rng.random((3000, 28, 28, 1), dtype=np.float32)
    yte = rng.integers(0, 10, 3000)
    archs = {}
    for s in V2_MEMBERS:
        key = (s.arch, json.dumps(s.as_dict()["arch_kwargs"], sort_keys=True))
        archs.setdefault(key, s)
    out = {}
    ftc = cfg.finetune_config()
    G = len(ftc.grid)
    for (arch, kw), spec in archs.items():
        module = create_module(spec.arch, spec.arch_kwargs)
        row = {"arch": arch, "arch_kwargs": json.loads(kw)}
        for method in ("supervised", "simclr"):
            obj = ssl_mod.get_objective(method)
            pc = pt.PretrainConfig(steps=1000, batch_size=cfg.batch_size, seed=0)
            params = pt.init_params(module, obj, jax.random.PRNGKey(0))
            opt = pt.make_optimizer(pc)
            state = (params, opt.init(params), obj.init_extra(params), jnp.zeros((pc.steps,), jnp.float32))
            run = pt.build_trainer(module, obj, pc, (28, 28, 1))
            sched = jnp.asarray(batch_schedule(len(X), pc.steps, pc.batch_size, 0))
            Xd, Yd = jnp.asarray(X), jnp.asarray(Y)
            t_c, state = _timed(lambda: run(state, Xd, Yd, sched, jnp.int32(0), jnp.int32(2)))
            t_r, _ = _timed(lambda: run(state, Xd, Yd, sched, jnp.int32(2), jnp.int32(2 + measure_steps)))
            row[f"pretrain_{method}_s_per_step"] = t_r / measure_steps
            row[f"pretrain_{method}_cpu_s_per_step"] = CPU["last"] / measure_steps
            row[f"pretrain_{method}_compile_s"] = t_c
        progs = ft._programs(module, 10, (28, 28, 1), ftc.steps, ftc.momentum, "full", G)
        init = progs["init"](jax.random.PRNGKey(0))
        t_c0 = time.perf_counter()
        stack = jax.jit(progs["stack_state"])
        st = stack({"backbone": init["backbone"], "head": init["head"]})
        lrs = jnp.asarray([a for a, _ in ftc.grid], jnp.float32)
        wds = jnp.asarray([b for _, b in ftc.grid], jnp.float32)
        sched = jnp.asarray(batch_schedule(1000, ftc.steps, ftc.batch_size, 0))
        Xf, Yf = jnp.asarray(X[:1000]), jnp.asarray(Y[:1000])
        t_c, st = _timed(lambda: progs["run"](*st, lrs, wds, Xf, Yf, sched, jnp.int32(0), jnp.int32(2)))
        t_c += time.perf_counter() - t_c0 - t_c
        n = 3 * measure_steps
        t_r, st = _timed(lambda: progs["run"](*st, lrs, wds, Xf, Yf, sched, jnp.int32(2), jnp.int32(2 + n)))
        c_r = CPU["last"]
        ft.evaluate_grid(progs["predict"], st[0], Xte[:500], yte[:500], 10, ftc.eval_batch_size)  # compile
        t_e, c_e = time.perf_counter(), time.process_time()
        ft.evaluate_grid(progs["predict"], st[0], Xte, yte, 10, ftc.eval_batch_size)
        t_e, c_e = time.perf_counter() - t_e, time.process_time() - c_e
        row.update({"ft_grid_s_per_step": t_r / n, "ft_grid_cpu_s_per_step": c_r / n, "ft_compile_s": t_c, "ft_eval_3000_s": t_e,
                    "ft_eval_3000_cpu_s": c_e, "grid_size": G, "load_average": list(__import__("os").getloadavg()),
                    "n_params": int(sum(np.size(a) for a in jax.tree_util.tree_leaves(init["backbone"])))})
        out[f"{arch} {kw}"] = row
        print(f"{arch:10s} {kw:50s} pre sup {row['pretrain_supervised_s_per_step']*1e3:7.1f} ms (cpu "
              f"{row['pretrain_supervised_cpu_s_per_step']*1e3:.1f})  simclr {row['pretrain_simclr_s_per_step']*1e3:7.1f} ms (cpu "
              f"{row['pretrain_simclr_cpu_s_per_step']*1e3:.1f})  ft grid {row['ft_grid_s_per_step']*1e3:6.1f} ms/step (cpu "
              f"{c_r / n * 1e3:.1f})  eval {t_e:.2f} s (cpu {c_e:.2f})  compile ft {t_c:.1f} s  load {row['load_average'][0]:.1f}", flush=True)
    return out


TWO_VIEW = {"simclr", "byol", "barlow", "vicreg"}


def estimate(rows: dict, overhead_s_per_unit: float = 1.5, clock: str = "cpu") -> dict:
    """The full v2 build's cost from the probe: pretraining + ground truth + compilations.

    ``clock="cpu"``: per-step costs in process CPU seconds (what a quiet 2-core machine needs at
    most: XLA:CPU's intra-op threads can only make the wall time shorter); ``"wall"``: the wall
    seconds measured on the (possibly shared) machine."""
    c = "_cpu" if clock == "cpu" else ""
    from pedjax.data import get_task
    from pedjax.zoo import V2_CONFIG, V2_MEMBERS

    cfg = V2_CONFIG
    by_arch = {}
    for r in rows.values():
        by_arch[(r["arch"], json.dumps(r["arch_kwargs"], sort_keys=True))] = r
    pre, truth, compile_s = {}, {}, 0.0
    for s in V2_MEMBERS:
        r = by_arch[(s.arch, json.dumps(s.as_dict()["arch_kwargs"], sort_keys=True))]
        steps = s.steps if s.steps is not None else cfg.steps
        if s.parent is not None or s.method == "random":
            pre[s.name] = 0.0
        else:
            per = r[f"pretrain_simclr{c}_s_per_step"] if s.method in TWO_VIEW else r[f"pretrain_supervised{c}_s_per_step"]
            pre[s.name] = steps * per + r["pretrain_simclr_compile_s"]
        unit = 0.0
        for t in cfg.tasks:
            task = get_task(t)
            ev = r["ft_eval_3000_cpu_s"] if clock == "cpu" else r["ft_eval_3000_s"]
            unit_t = cfg.ft_steps * r[f"ft_grid{c}_s_per_step"] + ev * task.n_test / 3000 + overhead_s_per_unit
            unit += unit_t * len(cfg.ft_seeds)
        truth[s.name] = unit
    archs = {(s.arch, json.dumps(s.as_dict()["arch_kwargs"], sort_keys=True)) for s in V2_MEMBERS}
    compile_s = sum(by_arch[a]["ft_compile_s"] for a in archs) * len(cfg.tasks)
    units = len(V2_MEMBERS) * len(cfg.tasks) * len(cfg.ft_seeds)
    total = sum(pre.values()) + sum(truth.values()) + compile_s
    return {"clock": clock, "pretrain_s": pre, "truth_s": truth, "compile_s": compile_s, "units": units,
            "pretrain_total_s": sum(pre.values()), "truth_total_s": sum(truth.values()), "total_s": total,
            "mean_unit_s": sum(truth.values()) / units}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/zoo_v2_probe.json")
    p.add_argument("--steps", type=int, default=20, help="measured pretraining steps (3x for fine-tuning)")
    p.add_argument("--from-json", default=None, help="re-estimate from a probe JSON instead of measuring")
    args = p.parse_args(argv)
    from pedjax.cli._common import configure_process

    configure_process()
    rows = json.loads(Path(args.from_json).read_text())["rows"] if args.from_json else probe(args.steps)
    est = estimate(rows, clock="cpu")
    est_wall = estimate(rows, clock="wall")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": rows, "estimate": est, "estimate_wall": est_wall}, indent=1) + "\n")
    print("\n| family (kwargs) | params | pretrain ms/step, 1 view / 2 views: CPU (wall) | fine-tune grid ms/step: CPU (wall) | "
          "eval of the grid on 3 000: CPU (wall) | fine-tune compile (wall) |")
    print("|---|---:|---:|---:|---:|---:|")
    for k, r in rows.items():
        print(f"| `{r['arch']}` {json.dumps(r['arch_kwargs'])} | {r['n_params']} | {r['pretrain_supervised_cpu_s_per_step']*1e3:.0f} / "
              f"{r['pretrain_simclr_cpu_s_per_step']*1e3:.0f} ({r['pretrain_supervised_s_per_step']*1e3:.0f} / {r['pretrain_simclr_s_per_step']*1e3:.0f}) | "
              f"{r['ft_grid_cpu_s_per_step']*1e3:.1f} ({r['ft_grid_s_per_step']*1e3:.1f}) | {r['ft_eval_3000_cpu_s']:.2f} s ({r['ft_eval_3000_s']:.2f} s) | "
              f"{r['ft_compile_s']:.1f} s |")
    load = max(r.get("load_average", [0])[0] for r in rows.values())
    print(f"\nmeasured wall on the shared machine (load average up to {load:.1f} on 2 cores): total {est_wall['total_s']/3600:.2f} h")
    print(f"\nestimate (CPU seconds): pretraining {est['pretrain_total_s']/60:.1f} min, ground truth {est['truth_total_s']/60:.1f} min "
          f"({est['units']} units, mean {est['mean_unit_s']:.1f} s), compilation {est['compile_s']/60:.1f} min, "
          f"total {est['total_s']/3600:.2f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
