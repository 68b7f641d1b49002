"""Benchmark: the 16-configuration lr × wd grid as ONE vmapped program vs a Python loop over 16 configs.

Same backbone, task, batches and number of steps on both sides; the loop runs the same compiled
trainer with a grid of one (so it compiles once too). Compile time is reported apart from the
training time; each timing is the best of ``--repeats`` runs. A second row repeats the
comparison with ``flax.linen.Conv`` instead of :class:`pedjax.models.nets.Conv`, the reason the nets
use an im2col convolution. Writes the ``bench_finetune`` section of BENCHMARKS.md.

    python experiments/bench_finetune.py [--steps 100] [--batch 64] [--task digits-10] [--repeats 2]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import pedjax  # noqa: E402,F401
from pedjax.cli._common import configure_process  # noqa: E402

configure_process()
from _bench_md import stamp, write_section  # noqa: E402
from pedjax import data  # noqa: E402
from pedjax.models import nets  # noqa: E402
from pedjax.models import finetune as ft  # noqa: E402


class FlaxConvCNN(nn.Module):
    """SmallCNN with flax.linen.Conv (for the comparison row only)."""

    channels: tuple = (16, 32)
    dense: int = 64

    @nn.compact
    def __call__(self, x):
        for i, c in enumerate(self.channels):
            x = nn.relu(nn.Conv(c, (3, 3), padding="SAME", name=f"conv{i}")(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        return nn.relu(nn.Dense(self.dense, name="dense")(x.reshape((x.shape[0], -1))))


def compare(backbone, task, steps: int, batch: int, repeats: int) -> dict:
    cfg = ft.FinetuneConfig(steps=steps, batch_size=batch, seeds=(0,))
    clf = nets.Classifier(backbone, task.num_classes)
    apply = lambda p, x: clf.apply({"params": p}, x)  # noqa: E731
    p0 = nets.init(clf, 0, task.image_shape)
    run = ft.build_grid_trainer(apply, steps)
    X, Y = jnp.asarray(task.x_train), jnp.asarray(task.y_train)
    sched = jnp.asarray(ft.batch_schedule(task.x_train.shape[0], steps, batch, 0))
    lrs = jnp.asarray([lr for lr, _ in cfg.grid], jnp.float32)
    wds = jnp.asarray([wd for _, wd in cfg.grid], jnp.float32)
    G = len(cfg.grid)

    def state(g):
        st = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (g, *a.shape)), p0)
        return st, jax.vmap(ft.make_optimizer(0.0, 0.0, steps).init)(st), jnp.zeros((g,), jnp.float32)

    s16, s1 = state(G), state(1)
    zero, one, end = jnp.int32(0), jnp.int32(1), jnp.int32(steps)

    t = time.perf_counter()
    jax.block_until_ready(run(*s16, lrs, wds, X, Y, sched, zero, one))
    compile_grid = time.perf_counter() - t
    t = time.perf_counter()
    jax.block_until_ready(run(*s1, lrs[:1], wds[:1], X, Y, sched, zero, one))
    compile_loop = time.perf_counter() - t

    grid_t, loop_t = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        out16 = jax.block_until_ready(run(*s16, lrs, wds, X, Y, sched, zero, end))
        grid_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        outs = [jax.block_until_ready(run(*s1, lrs[g:g + 1], wds[g:g + 1], X, Y, sched, zero, end)) for g in range(G)]
        loop_t.append(time.perf_counter() - t)
    # both sides trained the same thing: final training loss of each configuration, grid vs loop
    grid_loss = np.asarray(out16[2], dtype=float)
    loop_loss = np.array([float(o[2][0]) for o in outs])
    diff = np.abs(grid_loss - loop_loss)
    calm = np.asarray(lrs) <= 1e-2
    return {
        "loss_diff_calm": float(np.nanmax(diff[calm])), "loss_diff_all": float(np.nanmax(diff)),
        "grid_s": min(grid_t), "loop_s": min(loop_t), "compile_grid_s": compile_grid, "compile_loop_s": compile_loop,
        "ratio": min(loop_t) / min(grid_t), "params": nets.count_params(p0),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="digits-10")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--flax-steps", type=int, default=10, help="steps for the flax.linen.Conv row (slow)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    task = data.load_task(args.task)
    rows = [
        ("SmallCNN (16, 32) + Dense 64, pedjax.models.nets.Conv (im2col)", nets.SmallCNN(), args.steps),
        ("MLP (256, 128)", nets.MLP(), args.steps),
        ("SmallCNN (16, 32) + Dense 64, flax.linen.Conv", FlaxConvCNN(), args.flax_steps),
    ]
    lines = [
        f"Task `{task.name}` ({task.x_train.shape[0]} train images, {task.image_shape}), batch {args.batch}, "
        "16 configurations (4 lr × 4 wd), float32. *Grid* = one vmapped, jit-compiled program training all 16; "
        "*loop* = the same trainer with a grid of one, called 16 times (compiled once). Times exclude "
        f"compilation (reported apart); best of {args.repeats}.",
        "",
        "| backbone | params | steps | grid (s) | loop (s) | loop / grid | compile grid / one (s) | max \\|Δ loss\\| lr ≤ 1e-2 / all |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, bb, steps in rows:
        r = compare(bb, task, steps, args.batch, args.repeats)
        line = (f"| {label} | {r['params']:,} | {steps} | {r['grid_s']:.2f} | {r['loop_s']:.2f} | **{r['ratio']:.2f}×** | "
                f"{r['compile_grid_s']:.1f} / {r['compile_loop_s']:.1f} | {r['loss_diff_calm']:.1e} / {r['loss_diff_all']:.1e} |")
        print(line, flush=True)
        lines.append(line)
    lines += [
        "",
        "Last column: largest difference in final training loss between a configuration trained in the grid and "
        "alone. The two programs order float32 sums differently; with lr = 0.1 the rounding differences grow "
        "chaotically over the run, at lr ≤ 1e-2 they stay small.",
        "",
        "Reading: on this 2-core CPU a small CNN's step already keeps XLA busy at batch 64, so the vmapped "
        "grid runs at about the speed of the loop (the MLP, mostly small matmuls, is a little slower batched); "
        "what the single program buys here is one dispatch, one checkpoint and one progress update per chunk "
        "for all 16 configurations, not speed. With `flax.linen.Conv`, vmapping over per-configuration kernels "
        "turns each convolution into a grouped one, and XLA:CPU's convolutions are slow even ungrouped: compare "
        "the per-step times of the first and last rows (loop / steps / 16 = time per configuration-step). Hence "
        "`pedjax.models.nets.Conv` (im2col + matmul, the same parameters and outputs as `flax.linen.Conv`). "
        "No GPU was lent to this session, so there is no accelerator row.",
    ]
    body = "## Fine-tuning grid: vmapped vs loop (`experiments/bench_finetune.py`)\n\n" + stamp() + "\n" + "\n".join(lines)
    if not args.no_write:
        write_section("bench_finetune", body)
        print("wrote BENCHMARKS.md section bench_finetune")
    return 0


if __name__ == "__main__":
    sys.exit(main())
