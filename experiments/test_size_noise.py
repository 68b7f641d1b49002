"""How much of the seed-to-seed spread of a fine-tuned accuracy is the test sample itself?

    python experiments/test_size_noise.py [--member cnn-barlow] [--seeds 0 1 2 3 4 5] [--out runs/test_size_noise.json]

Fine-tunes one v2 zoo member on ``fashion-rotated`` with several seeds (its best v2 learning rate,
400 steps, batch 32) and records every model's predictions on two disjoint test sets: the
3 000-image split the v2 tasks first used (300 per class from the official test set) and the
remaining 16 000 images the data allows (the rest of the official test set and the task pool's
images outside the train split), all rotated. It prints each set's per-seed accuracies, their
standard deviation over seeds, and the mean pairwise prediction disagreement ``d`` between seeds:
a test sample of ``n`` images adds a spread of about ``sqrt(d / 2n)`` per seed from sampling alone.
A spread that falls with ``n`` as that predicts is test-sample noise, not a difference between
the trained models; this measurement is why the Fashion tasks' test splits were enlarged
(docs/zoo.md, "Test-set size").
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--zoo", default="pedjax/assets/zoo")
    p.add_argument("--member", default="cnn-barlow")
    p.add_argument("--lr", type=float, default=0.03)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    p.add_argument("--out", default="runs/test_size_noise.json")
    args = p.parse_args(argv)
    from pedjax.cli._common import configure_process

    configure_process()
    import jax.numpy as jnp
    import numpy as np

    from pedjax.data import TaskData, fashion
    from pedjax.data import tasks as T
    from pedjax.models import finetune as ft
    from pedjax.util import atomic_write_json
    from pedjax.zoo import load_zoo

    xtr_all, ytr_all = fashion.load_fashion_mnist("train")
    xte_all, yte_all = fashion.load_fashion_mnist("test")
    # the first split: 300 per class of the official test set (the v2 tasks' original choice)
    train_idx, y_train = T._per_class(ytr_all, np.arange(*T.TASK_POOL_RANGE), T._FINE, 100, T._seed("fashion-rotated"))
    small_idx, y_small = T._per_class(yte_all, np.arange(yte_all.size), T._FINE, 300, T._seed("fashion-test-10"))
    rest_te = np.setdiff1d(np.arange(yte_all.size), small_idx)
    rest_pool = np.setdiff1d(np.arange(*T.TASK_POOL_RANGE), train_idx)
    rot = lambda x: T._rotate(T._to_float(x), 0)  # noqa: E731
    x_train = rot(xtr_all[train_idx])
    x_small = rot(xte_all[small_idx])
    x_rest = np.concatenate([rot(xte_all[rest_te]), rot(xtr_all[rest_pool])])
    y_rest = np.concatenate([yte_all[rest_te], ytr_all[rest_pool]]).astype(np.int32)
    X = np.concatenate([x_small, x_rest])
    Y = np.concatenate([y_small, y_rest]).astype(np.int32)
    task = TaskData.from_arrays(x_train, y_train, X, Y, 10, name="fashion-rotated (two test sets)")

    m = load_zoo(args.zoo)[args.member]
    preds = []
    real = ft.evaluate_grid

    def recording(predict, params, Xe, ye, num_classes, batch_size):
        out = real(predict, params, Xe, ye, num_classes, batch_size)
        preds.append(np.concatenate([np.asarray(predict(params, jnp.asarray(Xe[i:i + batch_size])))[0]
                                     for i in range(0, Xe.shape[0], batch_size)]))
        return out

    ft.evaluate_grid = recording
    try:
        cfg = ft.FinetuneConfig(steps=400, batch_size=32, lrs=(args.lr,), wds=(1e-4,), seeds=tuple(args.seeds), checkpoints=False)
        ft.finetune(m.module, task, None, params=m.params, config=cfg, progress=False)
    finally:
        ft.evaluate_grid = real
    P = np.stack(preds)
    correct = P == Y[None]
    n0 = y_small.size
    d = float(np.mean([np.mean(P[i] != P[j]) for i, j in itertools.combinations(range(len(P)), 2)]))
    rows = {}
    for name, sl in (("3000 (first split)", slice(0, n0)), (f"{Y.size - n0} (the rest)", slice(n0, None))):
        acc = correct[:, sl].mean(axis=1)
        n = correct[:, sl].shape[1]
        rows[name] = {"n": int(n), "per_seed": acc.round(5).tolist(), "sd": float(acc.std(ddof=1)),
                      "sampling_sd": float(np.sqrt(d / 2 / n))}
    print(f"{args.member} on fashion-rotated, lr {args.lr}, seeds {args.seeds}; mean pairwise disagreement d = {d:.4f}")
    print(f"{'test set':<22}{'sd over seeds':>15}{'sqrt(d/2n)':>13}   per-seed accuracy")
    for name, r in rows.items():
        print(f"{name:<22}{r['sd']:>15.4f}{r['sampling_sd']:>13.4f}   {r['per_seed']}")
    atomic_write_json(Path(args.out), {"member": args.member, "lr": args.lr, "seeds": args.seeds, "disagreement": d, "sets": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
