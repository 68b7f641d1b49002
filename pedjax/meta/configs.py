"""Learned PED configurations on disk: a JSON file or an orbax checkpoint directory, written atomically.

``pedjax score --ped-config FILE`` and ``pedjax.score_zoo(..., ped=load_config(FILE))`` use them.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..physics import PEDConfig
from ..util import atomic_write_json

#: the ``"format"`` entry of a saved configuration
FORMAT = "pedjax.PEDConfig"


def save_config(path, cfg: PEDConfig, **meta) -> Path:
    """Write ``cfg`` (and JSON-able ``meta``) atomically, as a JSON file or an orbax checkpoint.

    As a JSON file when ``path`` ends in ``.json`` (temp file + ``os.replace``), otherwise as an
    orbax checkpoint directory (orbax's JSON handler: written to a temporary directory and
    committed by rename, overwriting ``path``). Both forms hold the same object,
    ``{"format": FORMAT, "version": 1, "config": {field: value}, "meta": meta}``, and load with
    :func:`load_config`. Missing parent folders are created.

    Args:
      path: the file (``*.json``) or checkpoint directory to write.
      cfg: the :class:`pedjax.PEDConfig` (validated first).
      **meta: JSON-able notes stored with it (e.g. the tasks and metric it was learned on).

    Returns:
      ``path`` as a ``pathlib.Path``.

    Raises:
      ValueError: ``cfg`` is not a valid configuration (:meth:`pedjax.PEDConfig.validate`).
      TypeError: ``meta`` is not JSON-serialisable.
    """
    cfg.validate()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    obj = {"format": FORMAT, "version": 1, "config": dataclasses.asdict(cfg), "meta": meta}
    if path.suffix != ".json":
        import orbax.checkpoint as ocp

        ocp.Checkpointer(ocp.JsonCheckpointHandler()).save(path.resolve(), args=ocp.args.JsonSave(obj), force=True)
        return path
    atomic_write_json(path, obj, indent=1)
    return path


def load_config(path) -> PEDConfig:
    """Read a config written by :func:`save_config`.

    Args:
      path: a JSON file (as written, or a bare JSON object of PEDConfig fields) or an orbax
        checkpoint directory.

    Returns:
      The validated :class:`pedjax.PEDConfig` (fields missing from the file keep their defaults).

    Raises:
      FileNotFoundError: (``--ped-config``) no such file or directory.
      ValueError: (``--ped-config``) a directory that is not an orbax config checkpoint, invalid
        JSON, not an object of PEDConfig fields, an unknown field, a non-numeric value of a
        numeric field, or values :meth:`pedjax.PEDConfig.validate` rejects.
    """
    p = Path(path)
    if p.is_dir():
        import orbax.checkpoint as ocp

        try:
            obj = ocp.Checkpointer(ocp.JsonCheckpointHandler()).restore(p.resolve(), args=ocp.args.JsonRestore())
        except Exception as exc:
            raise ValueError(f"--ped-config: {p} is a directory but not an orbax config checkpoint ({type(exc).__name__}); "
                             "write one with `pedjax meta learn --out DIR`") from None
    elif not p.is_file():
        raise FileNotFoundError(f"--ped-config: no file {p}; write one with `pedjax meta learn --out FILE`")
    else:
        try:
            obj = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"--ped-config: {p} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    fields = obj.get("config", obj) if isinstance(obj, dict) else None
    if not isinstance(fields, dict):
        raise ValueError(f"--ped-config: {p} must hold a JSON object of PEDConfig fields")
    known = {f.name for f in dataclasses.fields(PEDConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"--ped-config: {p} has unknown PEDConfig field(s) {unknown}; known: {sorted(known)}")
    floats = {"time_step", "nsigma", "exit_ratio", "constant", "eps"}
    vals = {}
    for k, v in fields.items():
        if k in floats:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"--ped-config: {p}: {k} must be a number, got {v!r}")
            v = float(v)
        vals[k] = v
    return PEDConfig(**vals).validate()
