"""The benchmark-v2 zoo's pieces: the ViT family, the v2 specs and config, the new tasks, and the
unit-by-unit ground truth (kill and resume on a tiny zoo)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pedjax import data
from pedjax.data import fashion
from pedjax.models import nets
from pedjax.zoo import (V1_MEMBERS, TINY_V2_CONFIG, TINY_V2_MEMBERS, V2_CONFIG, V2_MEMBERS, V2_TASKS, V3_TASKS,
                        ARCHITECTURES, create_module)

needs_fashion = pytest.mark.skipif(not fashion.available(), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")


# ------------------------------------------------------------------------------------------ ViT


def _vit_params(dim, depth, heads, patch, mlp_ratio=2, c=1, hw=28):
    tokens = (hw // patch) ** 2
    embed = patch * patch * c * dim + dim
    attn = 3 * (dim * dim + dim) + dim * dim + dim  # q, k, v (heads x head_dim = dim) + out
    block = attn + (dim * dim * mlp_ratio + dim * mlp_ratio) + (dim * mlp_ratio * dim + dim) + 4 * dim
    return embed + tokens * dim + depth * block + 2 * dim


@pytest.mark.parametrize("kw", [{}, {"dim": 64, "depth": 2, "heads": 4, "patch": 7}, {"dim": 16, "depth": 1, "heads": 2, "patch": 4}])
def test_vit_shapes_params_jit(kw):
    m = nets.SmallViT(**kw)
    p = nets.init(m, 0)
    full = {"dim": 32, "depth": 2, "heads": 4, "patch": 7, **kw}
    assert nets.count_params(p) == _vit_params(full["dim"], full["depth"], full["heads"], full["patch"])
    assert nets.feature_dim(m) == full["dim"]
    x = jax.random.uniform(jax.random.PRNGKey(1), (5, 28, 28, 1), jnp.float32)
    f = jax.jit(lambda pp, xx: m.apply({"params": pp}, xx))
    out = f(p, x)
    assert out.shape == (5, full["dim"]) and out.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(out)))
    np.testing.assert_allclose(out, m.apply({"params": p}, x), rtol=1e-5, atol=1e-5)
    # per-image: the batch does not mix images (no batch statistics)
    np.testing.assert_allclose(f(p, x[:2]), out[:2], rtol=1e-5, atol=1e-5)
    g = jax.grad(lambda pp: jnp.sum(m.apply({"params": pp}, x) ** 2))(p)
    assert all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree_util.tree_leaves(g))


def test_vit_in_the_zoo_and_rejects_bad_sizes():
    assert ARCHITECTURES["vit"] is nets.SmallViT and "vit" not in nets.ARCHITECTURES
    m = create_module("vit", {"dim": 16, "depth": 1, "heads": 2, "patch": 7})
    assert nets.feature_dim(m) == 16
    with pytest.raises(ValueError, match="patch"):
        nets.SmallViT(patch=5).init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))


# ------------------------------------------------------------------------------------ v2 specs


def test_v2_members_cover_the_issue():
    names = [s.name for s in V2_MEMBERS]
    assert len(names) == len(set(names)) >= 24
    families = {s.arch for s in V2_MEMBERS}
    assert {"cnn", "resnet-s2", "mlp", "vit"} <= families
    widths = {}
    for s in V2_MEMBERS:
        widths.setdefault(s.arch, set()).add(json.dumps(s.as_dict()["arch_kwargs"], sort_keys=True))
    assert sum(len(w) >= 2 for w in widths.values()) >= 2
    assert {s.method for s in V2_MEMBERS} >= {"supervised", "simclr", "byol", "barlow", "vicreg", "rotation", "dae", "random"}
    snaps = [s for s in V2_MEMBERS if s.parent is not None]
    assert len({s.parent for s in snaps}) >= 1 and len(snaps) >= 2
    by = {s.name: s for s in V2_MEMBERS}
    for s in snaps:  # a checkpoint of an earlier member's run, at a checkpointed step below its length
        par = by[s.parent]
        assert names.index(par.name) < names.index(s.name) and par.method == s.method and par.seed == s.seed
        assert s.at_step % V2_CONFIG.checkpoint_every == 0 and s.at_step < (par.steps or V2_CONFIG.steps)
    assert any(s.source_classes for s in V2_MEMBERS) and any(s.source_n for s in V2_MEMBERS)
    assert {s.arch for s in V2_MEMBERS if s.method == "random"} == families  # a floor in every family
    for s in V2_MEMBERS:
        create_module(s.arch, s.arch_kwargs)
    cfg = V2_CONFIG
    assert len(cfg.tasks) >= 10 and cfg.tasks == V2_TASKS and len(cfg.ft_seeds) >= 3 and cfg.truth_units
    ftc = cfg.finetune_config()
    assert len(ftc.lrs) >= 3 and len(ftc.wds) >= 1 and ftc.seeds == cfg.ft_seeds  # ≥ 3 lrs, one wd: docs/zoo.md


def test_v1_member_fingerprints_unchanged():
    """The v2 fields appear in a spec's dict only when set, so the first zoo's eight CNN members keep their
    fingerprints inside the v2 spec."""
    for s in V1_MEMBERS:
        assert set(s.as_dict()) == {"name", "arch", "method", "arch_kwargs", "method_kwargs", "seed", "steps", "batch_size", "lr"}
    assert V2_MEMBERS[:8] == V1_MEMBERS[:8]


@needs_fashion
def test_shipped_zoo_is_the_v2_spec():
    """The shipped zoo holds exactly the V2_MEMBERS, each with the fingerprint V2_CONFIG gives it (so a
    rebuild with `pedjax zoo build` skips them all)."""
    from pedjax.zoo import DEFAULT_ZOO, read_manifest
    from pedjax.zoo.build import SourceData, member_fingerprint

    manifest = read_manifest(DEFAULT_ZOO)
    entries = {e["name"]: e for e in manifest["members"]}
    assert list(entries) == [m.name for m in V2_MEMBERS]
    src_sha = SourceData.load(V2_CONFIG).sha1
    fps = {}
    for spec in V2_MEMBERS:
        fps[spec.name] = member_fingerprint(spec, V2_CONFIG, src_sha, fps.get(spec.parent))
        assert entries[spec.name]["fingerprint"] == fps[spec.name], spec.name


def test_shipped_assets_and_ground_truth_complete():
    """The shipped assets stay under 25 MB, and the shipped ground truth is the whole v3 build (v2's
    members and protocol on the v2 tasks and the glyph and emoji domains): every (member, task) pair
    with a best-of-grid accuracy per seed, the build's cost and machine recorded."""
    from pedjax.zoo import DEFAULT_ZOO, TRUTH_FILE, read_manifest

    assets = DEFAULT_ZOO.parent
    size = sum(p.stat().st_size for p in assets.rglob("*") if p.is_file())
    assert size <= 25 * 2**20, f"pedjax/assets holds {size / 2**20:.1f} MiB"
    truth = json.loads((DEFAULT_ZOO / TRUTH_FILE).read_text())
    names = [m.name for m in V2_MEMBERS]
    assert truth["seeds"] == list(V2_CONFIG.ft_seeds) and truth["provenance"]["complete"]
    assert list(truth["datasets"]) == list(V3_TASKS)
    for task in V3_TASKS:
        per = truth["per_seed"][task]
        assert list(per) == names
        for name in names:
            assert len(per[name]) == len(V2_CONFIG.ft_seeds) and all(0.0 < v <= 1.0 for v in per[name]), (task, name)
            assert truth["datasets"][task][name] == pytest.approx(np.mean(per[name]))
    build = read_manifest(DEFAULT_ZOO)["build"]
    assert build["complete"] is True and build["truth_units_done"] == len(names) * len(V3_TASKS) * len(V2_CONFIG.ft_seeds)
    assert build["machine"] and build["total_seconds"] > 0


# -------------------------------------------------------------------------------------- tasks

NEW_TASKS = ("fashion-blur", "fashion-occluded", "fashion-fewshot", "fashion-tops", "digits-degraded")


def test_v2_tasks_registered():
    names = data.task_names()
    assert all(t in names for t in V2_TASKS) and len(set(V2_TASKS)) >= 10


@needs_fashion
@pytest.mark.parametrize("name", NEW_TASKS)
def test_new_tasks_shapes_determinism_disjoint(name):
    t = data.get_task(name)
    d = t.load()
    assert (d.x_train.shape[0], d.x_test.shape[0], d.num_classes) == (t.n_train, t.n_test, t.num_classes)
    assert d.x_train.shape[1:] == (28, 28, 1) and d.x_train.dtype == np.float32
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    assert set(np.unique(d.y_train)) == set(range(d.num_classes)) == set(np.unique(d.y_test))
    fresh = t.builder(str(fashion.fashion_root())) if t.dataset == "fashion-mnist" else t.builder()
    np.testing.assert_array_equal(fresh.x_train, d.x_train)
    np.testing.assert_array_equal(fresh.x_test, d.x_test)
    prov = d.provenance
    if t.dataset == "fashion-mnist":
        assert prov["train_pool"] == "fashion-mnist/train" and prov["test_pool"] == "fashion-mnist/test"
        lo, hi = data.SOURCE_RANGE
        assert not np.any((prov["train_indices"] >= lo) & (prov["train_indices"] < hi))  # never the source split
        assert d.x_test.shape[0] >= 2000
    else:
        assert not set(prov["train_indices"]) & set(prov["test_indices"])


@needs_fashion
def test_new_tasks_do_what_they_say():
    low, blur = data.load_task("fashion-lowdata"), data.load_task("fashion-blur")
    xtr_all, _ = fashion.load_fashion_mnist("train")
    xte_all, _ = fashion.load_fashion_mnist("test")
    p = blur.provenance
    raw = np.concatenate([xte_all[p["test_indices"]], xtr_all[p["test_extra_indices"]]]).astype(np.float32)[..., None] / 255.0
    assert np.abs(np.diff(blur.x_test, axis=2)).mean() < 0.6 * np.abs(np.diff(raw, axis=2)).mean()  # its own test images, blurred
    assert blur.x_test.shape[0] == low.x_test.shape[0] == 10 * data.FASHION_TEST_PER_CLASS
    occ = data.load_task("fashion-occluded")
    zeros = (occ.x_test[..., 0] == 0).reshape(len(occ.x_test), -1).sum(1)
    assert np.all(zeros >= 144)  # a 12 x 12 black square in every image
    few = data.load_task("fashion-fewshot")
    assert np.bincount(few.y_train).tolist() == [10] * 10
    tops = data.load_task("fashion-tops")
    assert tops.num_classes == 4 and tops.x_test.shape[0] == 4 * 1700 and np.bincount(tops.y_test).tolist() == [1700] * 4
    dd, d10 = data.load_task("digits-degraded"), data.load_task("digits-10")
    assert dd.x_test.shape[0] > d10.x_test.shape[0]  # the larger test split of the two


# --------------------------------------------------------------------- the unit-by-unit chain


class Stop(Exception):
    pass


@needs_fashion
@pytest.mark.slow
def test_tiny_v2_build_kill_and_resume(tmp_path, monkeypatch):
    """Pretraining with a checkpoint member and a class-subset source, then the ground truth unit by
    unit: killed inside the first unit (the v2 units keep no checkpoint: it restarts from step 0,
    to the same numbers and the same curve), then after it; restarted
    with the command line, which skips the finished unit and completes the rest; the aggregate holds
    per-seed accuracies and loss curves."""
    from pedjax import zoo as modelzoo
    from pedjax.cli import main
    from pedjax.rank import judging
    from pedjax.zoo.build import build_members, build_truth_units, snapshot_path, unit_path

    t0 = time.time()
    zoo_dir, work = tmp_path / "zoo", tmp_path / "work"
    members, config = TINY_V2_MEMBERS, TINY_V2_CONFIG
    build_members(zoo_dir, work, members, config, progress=False, verbose=False)
    manifest = {e["name"]: e for e in modelzoo.read_manifest(zoo_dir)["members"]}
    assert list(manifest) == [m.name for m in members]
    par, snap = members[0].name, members[1]
    assert snapshot_path(work / "pretrain" / par, snap.at_step).is_file()
    assert manifest[snap.name]["pretrain"]["snapshot_of"] == par and manifest[snap.name]["params"]["sha1"] != manifest[par]["params"]["sha1"]
    assert [p[0] for p in manifest[snap.name]["pretrain"]["loss_curve"]] == list(range(1, snap.at_step + 1))
    sub = manifest[members[2].name]["pretrain"]["source_subset"]
    assert sub["classes"] == list(members[2].source_classes)

    def stop(*_):
        raise Stop

    # killed inside the first unit, after its first chunk: no unit file yet
    import pedjax.zoo.build as zb

    real = zb._curve_recorder

    def dying(run_dir, seed, key):
        on_chunk, load = real(run_dir, seed, key)

        def oc(s, step, losses):
            on_chunk(s, step, losses)
            raise Stop

        return oc, load

    monkeypatch.setattr(zb, "_curve_recorder", dying)
    with pytest.raises(Stop):
        build_truth_units(zoo_dir, work, config, progress=False, verbose=False)
    monkeypatch.setattr(zb, "_curve_recorder", real)
    assert not list((zoo_dir / "truth_units").rglob("*.json"))
    assert not (work / "truth").exists() or not list((work / "truth").rglob("ckpt/*/*")), "no checkpoint inside a v2 unit"
    # restarted: that unit runs again from step 0 (its curve kept and reproduced), then killed after it
    with pytest.raises(Stop):
        build_truth_units(zoo_dir, work, config, progress=False, verbose=False, on_unit=stop)
    files = sorted((zoo_dir / "truth_units").rglob("*.json"))
    assert len(files) == 1
    first = files[0]
    u0 = json.loads(first.read_text())
    assert u0["resumed_from_step"] == 0
    assert u0["loss_curve"]["steps"] == list(range(config.ft_checkpoint_every, config.ft_steps + 1, config.ft_checkpoint_every))
    first_text, first_mtime = first.read_text(), os.stat(first).st_mtime_ns
    partial = json.loads((zoo_dir / modelzoo.TRUTH_FILE).read_text())
    assert partial["provenance"]["units_done"] == 1 and not partial["datasets"]

    # a session's share: --max-units 1 fine-tunes exactly one more unit
    assert main(["zoo", "build", "--tiny", "--zoo", str(zoo_dir), "--work", str(work), "--no-progress", "--max-units", "1"]) == 0
    assert len(list((zoo_dir / "truth_units").rglob("*.json"))) == 2
    assert main(["zoo", "build", "--tiny", "--zoo", str(zoo_dir), "--work", str(work), "--no-progress"]) == 0
    assert first.read_text() == first_text and os.stat(first).st_mtime_ns == first_mtime  # skipped, not redone
    n_units = len(members) * len(config.tasks) * len(config.ft_seeds)
    assert len(list((zoo_dir / "truth_units").rglob("*.json"))) == n_units
    truth = json.loads((zoo_dir / modelzoo.TRUTH_FILE).read_text())
    assert truth["provenance"]["complete"] and truth["provenance"]["units_done"] == n_units
    # the build's cost and machine are recorded in the manifest
    rec = modelzoo.read_manifest(zoo_dir)["build"]
    assert rec["complete"] is True and rec["truth_units_done"] == n_units and rec["machine"]
    assert rec["truth_seconds"] == pytest.approx(truth["provenance"]["total_wall_seconds"], abs=0.1)
    assert rec["total_seconds"] == pytest.approx(rec["pretrain_seconds"] + rec["truth_seconds"], abs=0.2) and rec["pretrain_seconds"] > 0
    G = len(config.ft_lrs) * len(config.ft_wds)
    for task in config.tasks:
        for m in members:
            u = json.loads(unit_path(zoo_dir, task, m.name, 0).read_text())
            assert np.asarray(u["accuracy"]).size == G and u["loss_curve"]["steps"][-1] == config.ft_steps
            assert len(u["loss_curve"]["steps"]) == config.ft_steps // config.ft_checkpoint_every
            per = truth["per_seed"][task][m.name]
            assert len(per) == 2 and truth["datasets"][task][m.name] == pytest.approx(np.mean(per))
            assert per[0] == u["score"] == pytest.approx(np.max(u["accuracy"]))
            assert len(truth["curves"][task][m.name]) == 2
        assert np.isfinite(judging.noise_ceiling(truth["per_seed"][task])["ceiling"])
    # a third run does nothing: no unit file is rewritten
    units = {p: p.stat().st_mtime_ns for p in (zoo_dir / "truth_units").rglob("*.json")}
    assert main(["zoo", "build", "--tiny", "--zoo", str(zoo_dir), "--work", str(work), "--no-progress"]) == 0
    assert units and {p: p.stat().st_mtime_ns for p in (zoo_dir / "truth_units").rglob("*.json")} == units
    print(f"tiny v2 chain: {time.time() - t0:.0f} s")
