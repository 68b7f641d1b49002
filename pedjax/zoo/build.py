"""Building a zoo and its fine-tuning ground truth, resumable at every level.

:func:`build_members` pretrains each :class:`~pedjax.zoo.spec.MemberSpec` (a running pretraining
resumes from its last orbax checkpoint; a finished member, recognised by its fingerprint, is
skipped) and stores it with its source statistics and linear probe; :func:`build_truth` fine-tunes
every (member, task) pair over the lr × wd grid and records the result in ``ground_truth.json``
after each pair; :func:`build` does both. ``pedjax zoo build`` is the command line.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..util import atomic_write_json, git_commit, locks_output, sha1_arrays, sha1_json
from .spec import DEFAULT_MEMBERS, DEFAULT_WORK, DEFAULT_ZOO, MANIFEST, TRUTH_FILE, TRUTH_FORMAT, VERSION, BuildConfig, MemberSpec, create_module
from .store import _now, add_member, load_zoo, read_manifest


def _log(msg: str, verbose: bool) -> None:
    if verbose:
        print(msg, flush=True)


def member_fingerprint(spec: MemberSpec, config: BuildConfig, source_sha1: str) -> str:
    from ..models import ssl as ssl_mod

    objective = ssl_mod.get_objective(spec.method, **dict(spec.method_kwargs))
    return sha1_json({
        "spec": spec.as_dict(), "objective": objective.describe(),
        "pretrain": config.pretrain_config(spec).training_dict(), "ranges": config.ranges(),
        "source": source_sha1, "probe": "sklearn LogisticRegression C=1 on standardised features",
    })


@dataclass(frozen=True, eq=False)
class SourceData:
    """The source-split arrays a build uses (see :class:`BuildConfig`)."""

    x_pretrain: np.ndarray
    y_pretrain: np.ndarray
    x_heldout: np.ndarray
    y_heldout: np.ndarray
    probe_train: int
    ranges: dict
    sha1: str

    @classmethod
    def load(cls, config: BuildConfig, fashion_root=None) -> "SourceData":
        from ..data import SOURCE_RANGE, load_source

        x, y = load_source(fashion_root)
        r = config.ranges()
        pre = slice(r["pretrain"][0] - SOURCE_RANGE[0], r["pretrain"][1] - SOURCE_RANGE[0])
        held = slice(r["heldout"][0] - SOURCE_RANGE[0], r["heldout"][1] - SOURCE_RANGE[0])
        xp, yp, xh, yh = x[pre], y[pre], x[held], y[held]
        return cls(xp, yp, xh, yh, config.probe_train, r, sha1_arrays(xp, yp, xh, yh))


def pretrain_member(spec: MemberSpec, config: BuildConfig, run_dir, source: SourceData, *, progress: bool = True) -> dict:
    """Pretrain one member (resumable in ``run_dir``), then its source statistics and linear probe.

    Returns ``{"params", "source_mean", "source_std", "probe", "record", "passed"}`` — what
    :func:`add_member` stores.
    """
    from ..models import pretrain as pt
    from ..models import ssl as ssl_mod

    t0 = time.time()
    module = create_module(spec.arch, spec.arch_kwargs)
    objective = ssl_mod.get_objective(spec.method, **dict(spec.method_kwargs))
    res = pt.pretrain(module, objective, source.x_pretrain, source.y_pretrain, run_dir,
                      config=config.pretrain_config(spec), name=spec.name, progress=progress)
    bb = res.params["backbone"]
    feat = pt.feature_fn(module)
    F_held = feat(bb, source.x_heldout).astype(np.float64)
    n = source.probe_train
    probe = pt.linear_probe(feat(bb, source.x_pretrain[:n]), source.y_pretrain[:n], F_held, source.y_heldout)
    passed = bool(probe["accuracy"] >= config.sanity_bar and not res.info.get("diverged"))
    r = source.ranges
    probe_rec = {
        "accuracy": round(float(probe["accuracy"]), 5), "train_accuracy": round(float(probe["train_accuracy"]), 5),
        "chance": 0.1, "bar": config.sanity_bar, "passed": passed,
        "train_set": f"fashion-mnist train[{r['probe_train'][0]}:{r['probe_train'][1]}]",
        "test_set": f"fashion-mnist train[{r['heldout'][0]}:{r['heldout'][1]}] (held out of pretraining)",
        "W": probe["W"], "b": probe["b"],
    }
    info = dict(res.info)
    record = {k: info.get(k) for k in ("config", "objective", "loss_curve", "final_loss", "diverged", "wall_seconds", "fingerprint", "n_images", "backend")}
    record["wall_seconds_member"] = round(time.time() - t0, 2)
    return {"params": bb, "source_mean": F_held.mean(axis=0), "source_std": F_held.std(axis=0), "probe": probe_rec,
            "record": record, "passed": passed}


@locks_output("zoo_dir", "work_dir")
def build_members(zoo_dir, work_dir=None, members: Sequence[MemberSpec] = DEFAULT_MEMBERS, config: BuildConfig = BuildConfig(),
                  *, progress: bool = True, verbose: bool = True, fashion_root=None, on_member=None) -> dict:
    """Pretrain every member that the zoo at ``zoo_dir`` lacks (or holds with another fingerprint).

    Each member: pretrain (resumable, under ``work_dir/pretrain/<name>``), source statistics and
    linear probe on the held-out source set, write its files, update the manifest atomically.
    Returns ``{"built": [...], "skipped": [...], "below_bar": [...], "wall_seconds"}``.
    """
    names = [s.name for s in members]
    if len(set(names)) != len(names):
        raise ValueError(f"members: duplicate names in {names}")
    zoo_dir = Path(zoo_dir)
    work = Path(work_dir) if work_dir is not None else DEFAULT_WORK
    source = SourceData.load(config, fashion_root)
    existing = {}
    if (zoo_dir / MANIFEST).is_file():
        existing = {e["name"]: e for e in read_manifest(zoo_dir)["members"]}
    report = {"built": [], "skipped": [], "below_bar": []}
    t_all = time.time()
    for i, spec in enumerate(members, 1):
        fp = member_fingerprint(spec, config, source.sha1)
        e = existing.get(spec.name)
        if e is not None and e.get("fingerprint") == fp and (zoo_dir / e["params"]["path"]).exists():
            report["skipped"].append(spec.name)
            if not e["linear_probe"].get("passed", True):
                report["below_bar"].append(spec.name)
            _log(f"[{i}/{len(members)}] {spec.name}: in the zoo (fingerprint {fp[:8]}), skipped", verbose)
            continue
        t0 = time.time()
        out = pretrain_member(spec, config, work / "pretrain" / spec.name, source, progress=progress)
        add_member(zoo_dir, spec, out["params"], source_mean=out["source_mean"], source_std=out["source_std"],
                   probe=out["probe"], record=out["record"], fingerprint=fp, params_format=config.params_format, config=config)
        report["built"].append(spec.name)
        if not out["passed"]:
            report["below_bar"].append(spec.name)
        flag = "ok" if out["passed"] else f"BELOW THE SANITY BAR {config.sanity_bar}"
        _log(f"[{i}/{len(members)}] {spec.name}: linear probe {out['probe']['accuracy']:.3f} on the held-out source set "
             f"(chance 0.1; {flag}); final loss {out['record'].get('final_loss')}; {time.time() - t0:.0f} s", verbose)
        if on_member is not None:
            on_member(spec.name)
    report["wall_seconds"] = round(time.time() - t_all, 2)
    return report


def _truth_key(member_entry: dict, task: str, ft_config) -> str:
    return sha1_json({
        "params": member_entry["params"]["sha1"], "arch": member_entry["arch"], "arch_kwargs": member_entry.get("arch_kwargs", {}),
        "task": task, "config": ft_config.training_dict(), "seeds": list(ft_config.seeds),
    })


def _new_truth(config: BuildConfig) -> dict:
    from ..models.finetune import GRID_LRS, GRID_WDS

    ftc = config.finetune_config()
    return {
        "format": TRUTH_FORMAT,
        "version": VERSION,
        "metric": ftc.metric,
        "score_definition": f"best-of-grid test {ftc.metric} per seed, averaged over seeds (pedjax.finetune)",
        "datasets": {},
        "std": {},
        "runs": {},
        "provenance": {
            "finetune": {**ftc.training_dict(), "seeds": list(ftc.seeds), "grid": {"lr": list(GRID_LRS), "wd": list(GRID_WDS)}},
        },
    }


@locks_output("zoo_dir", "work_dir")
def build_truth(zoo_dir, work_dir=None, config: BuildConfig = BuildConfig(), *, tasks: Sequence[str] | None = None,
                members: Sequence[str] | None = None, progress: bool = True, verbose: bool = True, fashion_root=None,
                on_pair=None) -> dict:
    """Fine-tune every (member, task) pair the ground-truth table lacks; update it atomically after each.

    Task-major order, so members sharing an architecture reuse one compiled trainer per task.
    Each sweep resumes through :func:`pedjax.finetune.finetune` (``work_dir/truth/<member>/<task>``).
    Returns the table (also written to ``zoo_dir/ground_truth.json``).
    """
    from ..models import finetune as ft

    zoo = load_zoo(zoo_dir, members)
    ftc = config.finetune_config()
    tasks = tuple(tasks) if tasks is not None else config.tasks
    work = Path(work_dir) if work_dir is not None else DEFAULT_WORK
    path = Path(zoo_dir) / TRUTH_FILE
    table = json.loads(path.read_text()) if path.is_file() else _new_truth(config)
    if table.get("format") != TRUTH_FORMAT:
        raise ValueError(f"zoo: {path} is not a pedjax ground-truth table")
    if table["provenance"].get("finetune", {}).get("steps") not in (None, ftc.steps):
        _log(f"note: {path} was made with other fine-tuning settings; pairs are recomputed as needed", verbose)
    table["provenance"]["finetune"] = _new_truth(config)["provenance"]["finetune"]
    pairs = [(t, m) for t in tasks for m in zoo]
    t_all = time.time()
    done_now = 0
    for i, (task, m) in enumerate(pairs, 1):
        key = _truth_key(m.entry, task, ftc)
        run = table["runs"].get(task, {}).get(m.name)
        if run is not None and run.get("key") == key and m.name in table["datasets"].get(task, {}):
            _log(f"[{i}/{len(pairs)}] {m.name} on {task}: {table['datasets'][task][m.name]:.4f} (done)", verbose)
            continue
        t0 = time.time()
        res = ft.finetune(m.module, task, work / "truth" / m.name / task, params=m.params, config=ftc,
                          model_name=m.name, progress=progress, fashion_root=fashion_root)
        table["datasets"].setdefault(task, {})[m.name] = res["score"]
        table["std"].setdefault(task, {})[m.name] = res["score_std"]
        table["runs"].setdefault(task, {})[m.name] = {
            "key": key, "fingerprint": res["provenance"]["fingerprint"], "params_sha1": m.entry["params"]["sha1"],
            "best_of_mean_grid": res["best_of_mean_grid"], "per_seed_best": [s["best"] for s in res["per_seed"]],
            "wall_seconds": res["provenance"]["wall_seconds"], "date": res["provenance"]["date"],
            "n_train": res["provenance"]["task"]["n_train"], "n_test": res["provenance"]["task"]["n_test"],
            "data_sha1": res["provenance"]["task"]["data_sha1"],
        }
        prov = table["provenance"]
        prov.update({
            "updated": _now(), "git_commit": git_commit(), "jax_version": _jax_version(), "backend": _backend(),
            "machine": f"{platform.machine()} {os.cpu_count()} CPU(s), {platform.system()}", "dtype": "float32",
            "zoo_members": [{"name": mm.name, "params_sha1": mm.entry["params"]["sha1"]} for mm in zoo],
        })
        prov["total_wall_seconds"] = round(sum(r["wall_seconds"] for t in table["runs"].values() for r in t.values()), 2)
        atomic_write_json(path, table)
        done_now += 1
        _log(f"[{i}/{len(pairs)}] {m.name} on {task}: {res['score']:.4f} ± {res['score_std']:.4f} ({time.time() - t0:.0f} s)", verbose)
        if on_pair is not None:
            on_pair(m.name, task)
    _log(f"ground truth: {done_now} pair(s) fine-tuned in {time.time() - t_all:.0f} s -> {path}", verbose)
    return table


def _jax_version() -> str:
    import jax

    return jax.__version__


def _backend() -> str:
    import jax

    return jax.default_backend()


def build(zoo_dir=None, work_dir=None, members: Sequence[MemberSpec] = DEFAULT_MEMBERS, config: BuildConfig = BuildConfig(),
          *, truth: bool = True, pretrain: bool = True, progress: bool = True, verbose: bool = True, fashion_root=None) -> dict:
    """Build (or finish building) a zoo and its ground truth: :func:`build_members` then :func:`build_truth`."""
    zoo_dir = Path(zoo_dir) if zoo_dir is not None else DEFAULT_ZOO
    out: dict = {}
    if pretrain:
        out["members"] = build_members(zoo_dir, work_dir, members, config, progress=progress, verbose=verbose, fashion_root=fashion_root)
    if truth:
        out["truth"] = build_truth(zoo_dir, work_dir, config, members=[s.name for s in members], progress=progress,
                                   verbose=verbose, fashion_root=fashion_root)
    return out
