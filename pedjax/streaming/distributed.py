"""Several processes (machines) scoring one target set: JAX's own multi-controller runtime.

Every process runs the same program::

    from pedjax import streaming
    streaming.distributed.initialize("host0:1234", num_processes=4, process_id=RANK)
    scores = streaming.score_stream({"resnet50": "feats/resnet50_cifar_feature.npy"},
                                    "feats/resnet50_cifar_label.npy", ["logme", "sfda"],
                                    ped=pedjax.PEDConfig(), devices="global")

* :func:`initialize` calls ``jax.distributed.initialize`` (the coordinator is process 0's
  address; on SLURM/Open MPI/Kubernetes JAX can read everything from the environment: call it
  without arguments). On the CPU backend it selects JAX's gloo collectives first.
* ``devices="global"`` builds one mesh over every process's devices. Each process reads its own
  contiguous row range of every file (``Engine.row_range``: rows ⌊N·p/P⌋ … ⌊N·(p+1)/P⌋ − 1) in
  blocks; all processes step through the same number of blocks (shorter ranges are padded with
  masked rows). The statistics stay on the device that computed them until the end of a pass:
  each device's partial statistics are taken around its own class shifts (each class's mean in
  the first block where that device saw it), so they are first recentred on the count-weighted
  mean of the devices' shifts (one all-reduce, exact translation formulas), then combined (one
  all-reduce: sum, max, min per field; in float32 the compensation terms of the sums travel
  alongside and are added on the host in float64) — :mod:`pedjax.streaming.stats`. Every process
  then holds the same statistics and computes the same scores. SFDA's passes 2 and 3 work the
  same way (each process keeps its own rows' ConfMix weights).
* Every process must see the files at the same path (a shared file system) or its own copy;
  labels are read whole by every process (N integers) to agree on the classes.

No networking of pedjax's own: the collectives are XLA's (gloo on CPU, NCCL on GPU).
"""
from __future__ import annotations

import jax


def initialize(coordinator_address: str | None = None, num_processes: int | None = None, process_id: int | None = None,
               *, local_device_ids=None, cpu_collectives: str | None = "gloo", **kwargs) -> None:
    """``jax.distributed.initialize`` (call before any other JAX use in the process).

    Args:
      coordinator_address: ``"host:port"`` of process 0; ``None``: read from the cluster
        environment (SLURM, Open MPI, Kubernetes) by JAX.
      num_processes: the number of processes; ``None``: from the environment.
      process_id: this process's index 0 … ``num_processes`` − 1; ``None``: from the
        environment.
      local_device_ids: the local devices this process uses (JAX's argument); ``None``: all.
      cpu_collectives: the CPU backend's cross-process collectives (``"gloo"``); ``None`` keeps
        JAX's setting.
      **kwargs: further keyword arguments of ``jax.distributed.initialize``.
    """
    if cpu_collectives is not None:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id, local_device_ids=local_device_ids, **kwargs)


def shutdown() -> None:
    """``jax.distributed.shutdown``: leave the multi-process runtime."""
    jax.distributed.shutdown()


def process_info() -> dict:
    """Where this process stands in the multi-process runtime.

    Returns:
      ``{"process": index, "processes": count, "local_devices": n, "devices": n}``.
    """
    return {"process": jax.process_index(), "processes": jax.process_count(),
            "local_devices": jax.local_device_count(), "devices": jax.device_count()}
