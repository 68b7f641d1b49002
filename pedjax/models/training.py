"""The one training loop of pedjax: seeded batch order, orbax checkpoints, resumable chunks.

Fine-tuning (:mod:`pedjax.models.finetune`) and pretraining (:mod:`pedjax.models.pretrain`) both
run :func:`run_resumable`: the state advances in chunks of steps, a checkpoint is written after
every chunk, and a killed run resumes from its last checkpoint with bit-for-bit the result of an
uninterrupted one (the batch at step ``t`` is a pure function of ``(seed, t)``:
:func:`batch_schedule`).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np


def batch_schedule(n: int, steps: int, batch_size: int, seed: int) -> np.ndarray:
    """Indices [steps, batch_size] of the training batches: epochs of seeded permutations."""
    rng = np.random.default_rng([seed, 0x5EED])
    need = steps * batch_size
    perms = [rng.permutation(n) for _ in range(-(-need // n))]
    return np.concatenate(perms)[:need].reshape(steps, batch_size).astype(np.int32)


#: orbax's marker in the name of a checkpoint directory still being written
TMP_MARKER = ".orbax-checkpoint-tmp"


def remove_stale_tmp(directory: Path) -> list[Path]:
    """Delete the temporary checkpoint directories a killed run left in ``directory`` (orbax never
    finalised them and never reads them); returns what was removed. Only safe while this process
    is the folder's one writer (:func:`pedjax.util.output_lock`, held by every caller)."""
    import shutil

    gone = []
    if directory.is_dir():
        for p in directory.iterdir():
            if TMP_MARKER in p.name:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
                gone.append(p)
    return gone


class Checkpoints:
    """Orbax checkpoints of one seed's stacked state (leaves saved flat; the tree is rebuilt).
    Opening it removes stale temporary checkpoint directories of an interrupted run."""

    def __init__(self, directory: Path):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.directory = directory
        self.removed = remove_stale_tmp(directory)
        self.mngr = ocp.CheckpointManager(
            directory.resolve(),
            options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True, cleanup_tmp_directories=True),
        )

    def latest(self) -> int | None:
        return self.mngr.latest_step()

    def save(self, step: int, state) -> None:
        leaves = jax.tree_util.tree_leaves(state)
        self.mngr.save(step, args=self._ocp.args.StandardSave({f"{i:04d}": x for i, x in enumerate(leaves)}))

    def restore(self, step: int, like):
        leaves, treedef = jax.tree_util.tree_flatten(like)
        abstract = {f"{i:04d}": jax.ShapeDtypeStruct(np.shape(x), x.dtype) for i, x in enumerate(leaves)}
        got = self.mngr.restore(step, args=self._ocp.args.StandardRestore(abstract))
        return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(got[f"{i:04d}"]) for i in range(len(leaves))])

    def close(self) -> None:
        self.mngr.wait_until_finished()
        self.mngr.close()


def run_resumable(advance: Callable, state, total: int, every: int, ckpt: Checkpoints | None, bar=None,
                  on_chunk: Callable[[int], None] | None = None):
    """The resumable training loop shared by fine-tuning and pretraining.

    Runs ``state = advance(state, start, stop)`` in chunks of ``every`` steps up to ``total``:
    restores the latest checkpoint of ``ckpt`` first (if any), saves one after every chunk but the
    last, advances ``bar`` and calls ``on_chunk(stop)`` once the chunk is on disk. Closes ``ckpt``.
    Returns ``(state, resumed_from_step)``.
    """
    start = 0
    try:
        latest = ckpt.latest() if ckpt is not None else None
        if ckpt is not None and latest is not None:
            start = int(latest)
            state = ckpt.restore(start, state)
        resumed_from = start
        if bar is not None:
            bar.advance(start)
        while start < total:
            stop = min(start + every, total)
            state = advance(state, start, stop)
            jax.block_until_ready(state)
            if ckpt is not None and stop < total:
                ckpt.save(stop, state)
            if bar is not None:
                bar.advance(stop - start)
            start = stop
            if on_chunk is not None:
                if ckpt is not None:
                    ckpt.mngr.wait_until_finished()
                on_chunk(stop)
    finally:
        if ckpt is not None:
            ckpt.close()
    return state, resumed_from
