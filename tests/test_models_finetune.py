"""The Flax fine-tuner: real training on digits, resume = uninterrupted, optimizer, nets, bad input."""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pedjax  # noqa: F401
from pedjax import data
from pedjax.models import nets
from pedjax.models import finetune as ft
from pedjax.models.training import batch_schedule

TINY_MLP = nets.MLP(hidden=(32,))


def test_real_finetune_beats_chance_on_digits(tmp_path):
    cfg = ft.FinetuneConfig(steps=80, batch_size=32, seeds=(0,), checkpoint_every=40)
    res = ft.finetune(TINY_MLP, "digits-10", tmp_path, config=cfg, model_name="mlp32", progress=False)
    assert res["score"] > 0.6  # chance is 0.1
    seed = res["per_seed"][0]
    assert np.array(seed["accuracy"]).shape == (4, 4)
    assert res["score"] == pytest.approx(max(max(r) for r in seed["accuracy"]))
    lr_best = seed["best"]["lr"]
    assert lr_best in ft.GRID_LRS and seed["best"]["wd"] in ft.GRID_WDS
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert on_disk["score"] == res["score"]
    prov = on_disk["provenance"]
    assert prov["grid"]["lr"] == list(ft.GRID_LRS) and prov["grid"]["wd"] == list(ft.GRID_WDS)
    assert prov["steps"] == 80 and prov["batch_size"] == 32 and prov["seeds"] == [0]
    for key in ("date", "git_commit", "fingerprint", "task", "model"):
        assert key in prov
    assert prov["task"]["n_test"] == data.get_task("digits-10").n_test
    assert not list(tmp_path.glob("ckpt/*")), "finished seeds leave no checkpoint behind"


def test_resume_after_interrupt_equals_uninterrupted(tmp_path):
    cfg = ft.FinetuneConfig(steps=30, batch_size=16, seeds=(0, 1), checkpoint_every=10)
    full = ft.finetune(TINY_MLP, "digits-5", tmp_path / "a", config=cfg, progress=False)

    class Killed(Exception):
        pass

    seen = {}

    def kill(seed, step, losses):
        seen[(seed, step)] = losses
        if seed == 1 and step == 20:
            raise Killed

    with pytest.raises(Killed):
        ft.finetune(TINY_MLP, "digits-5", tmp_path / "b", config=cfg, progress=False, on_chunk=kill)
    assert (tmp_path / "b" / "seeds" / "seed0.json").is_file()
    assert not (tmp_path / "b" / "result.json").exists()
    assert list((tmp_path / "b" / "ckpt").iterdir()), "the interrupted seed left a checkpoint"

    resumed = ft.finetune(TINY_MLP, "digits-5", tmp_path / "b", config=cfg, progress=False)
    assert [r["resumed_from_step"] for r in resumed["per_seed"]] == [0, 20]
    for a, b in zip(full["per_seed"], resumed["per_seed"]):
        assert a["accuracy"] == b["accuracy"]
        assert a["mean_class_accuracy"] == b["mean_class_accuracy"]
        assert a["final_train_loss"] == b["final_train_loss"]  # bit-for-bit
    assert resumed["score"] == full["score"]

    # a different checkpoint interval resumes to the same numbers too
    other = ft.finetune(TINY_MLP, "digits-5", tmp_path / "c", config=ft.FinetuneConfig(
        steps=30, batch_size=16, seeds=(0, 1), checkpoint_every=7), progress=False)
    assert other["per_seed"][1]["final_train_loss"] == full["per_seed"][1]["final_train_loss"]
    # on_chunk saw the grid's training loss at each chunk: at the last step, the result's final loss
    assert sorted(seen) == [(0, 10), (0, 20), (0, 30), (1, 10), (1, 20)]
    np.testing.assert_array_equal(seen[(0, 30)], np.ravel(full["per_seed"][0]["final_train_loss"]))


def test_without_checkpoints_a_killed_seed_restarts_to_the_same_numbers(tmp_path):
    """``checkpoints=False``: no orbax save between chunks (the result is the same); a seed killed
    midway starts again from step 0, the finished seed is kept."""
    cfg = ft.FinetuneConfig(steps=30, batch_size=16, seeds=(0, 1), checkpoint_every=10, checkpoints=False)
    with_ckpt = ft.finetune(TINY_MLP, "digits-5", tmp_path / "a", config=ft.FinetuneConfig(
        steps=30, batch_size=16, seeds=(0, 1), checkpoint_every=10), progress=False)

    class Killed(Exception):
        pass

    def kill(seed, step, losses):
        assert not (tmp_path / "b" / "ckpt").exists() or not list((tmp_path / "b" / "ckpt").iterdir())
        if seed == 1 and step == 20:
            raise Killed

    with pytest.raises(Killed):
        ft.finetune(TINY_MLP, "digits-5", tmp_path / "b", config=cfg, progress=False, on_chunk=kill)
    assert (tmp_path / "b" / "seeds" / "seed0.json").is_file()
    again = ft.finetune(TINY_MLP, "digits-5", tmp_path / "b", config=cfg, progress=False)
    assert [r["resumed_from_step"] for r in again["per_seed"]] == [0, 0]
    for a, b in zip(with_ckpt["per_seed"], again["per_seed"]):
        assert a["accuracy"] == b["accuracy"] and a["final_train_loss"] == b["final_train_loss"]
    assert again["provenance"]["fingerprint"] == with_ckpt["provenance"]["fingerprint"]


def test_small_cnn_full_finetune_runs_float32():
    task = data.load_task("digits-5")
    small = data.TaskData.from_arrays(task.x_train[:128], task.y_train[:128], task.x_test[:64], task.y_test[:64], 5)
    cfg = ft.FinetuneConfig(steps=6, batch_size=8, seeds=(0,), checkpoint_every=6, lrs=(1e-1, 1e-2), wds=(1e-4,))
    res = ft.finetune(nets.SmallCNN(channels=(4, 8), dense=16), small, config=cfg, progress=False)
    assert np.array(res["per_seed"][0]["accuracy"]).shape == (2, 1)
    assert res["provenance"]["dtype"] == "float32"


def test_grid_trainer_is_one_vmapped_program_matching_a_loop():
    """The vmapped grid gives each configuration what training it alone gives."""
    task = data.load_task("digits-5")
    clf = nets.Classifier(TINY_MLP, 5)
    apply = lambda p, x: clf.apply({"params": p}, x)  # noqa: E731
    p0 = nets.init(clf, 0)
    steps, lrs, wds = 5, jnp.array([0.1, 0.01], jnp.float32), jnp.array([1e-3, 1e-6], jnp.float32)
    sched = jnp.asarray(batch_schedule(task.x_train.shape[0], steps, 8, 0))
    X, Y = jnp.asarray(task.x_train), jnp.asarray(task.y_train)
    run = ft.build_grid_trainer(apply, steps)

    def state(G):
        st = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (G, *a.shape)), p0)
        return st, jax.vmap(ft.make_optimizer(0.0, 0.0, steps).init)(st), jnp.zeros((G,), jnp.float32)

    grid = run(*state(2), lrs, wds, X, Y, sched, 0, steps)
    for g in range(2):
        one = run(*state(1), lrs[g:g + 1], wds[g:g + 1], X, Y, sched, 0, steps)
        for a, b in zip(jax.tree_util.tree_leaves(grid[0]), jax.tree_util.tree_leaves(one[0])):
            np.testing.assert_allclose(a[g], b[0], rtol=1e-5, atol=1e-6)
    assert {str(leaf.dtype) for leaf in jax.tree_util.tree_leaves(grid)} <= {"float32", "int32"}


def test_optimizer_is_sgdw_nesterov_cosine():
    lr, wd, T, mu = 0.1, 0.01, 4, 0.9
    tx = ft.make_optimizer(lr, wd, T, mu)
    p = jnp.array([1.0, -2.0], jnp.float32)
    s = tx.init(p)
    m = np.zeros(2)
    pn = np.array([1.0, -2.0])
    for t in range(3):
        g = jnp.array([0.5, 0.25 * t], jnp.float32)
        u, s = tx.update(g, s, p)
        p = optax.apply_updates(p, u)
        m = np.asarray(g) + mu * m
        d = np.asarray(g) + mu * m
        eta = lr * 0.5 * (1 + np.cos(np.pi * t / T))
        pn = pn - eta * (d + wd * pn)
        np.testing.assert_allclose(np.asarray(p), pn, rtol=1e-6)
        assert p.dtype == jnp.float32


def test_evaluate_grid_metrics():
    y = np.array([0, 0, 0, 1])
    preds = np.array([[0, 0, 0, 0], [1, 1, 1, 1], [0, -1, 0, 1]], np.int32)
    ev = ft.evaluate_grid(lambda params, xb: preds[:, : xb.shape[0]], None, np.zeros((4, 1)), y, 2, 8)
    np.testing.assert_allclose(ev["accuracy"], [0.75, 0.25, 0.75])
    np.testing.assert_allclose(ev["mean_class_accuracy"], [0.5, 0.5, (2 / 3 + 1) / 2])


def test_bad_input_errors(tmp_path):
    with pytest.raises(ValueError, match="task: unknown task 'nope'.*digits-10"):
        ft.finetune(TINY_MLP, "nope", config=ft.FinetuneConfig(steps=1, seeds=(0,)), progress=False)
    with pytest.raises(ValueError, match="model: unknown architecture"):
        ft.finetune("vgg", "digits-5", progress=False)
    for kwargs, arg in (({"steps": 0}, "steps"), ({"batch_size": -1}, "batch_size"), ({"seeds": ()}, "seeds"),
                        ({"lrs": (float("nan"),)}, "lrs"), ({"mode": "half"}, "mode"), ({"metric": "f1"}, "metric")):
        with pytest.raises(ValueError, match=arg):
            ft.FinetuneConfig(**kwargs)
    with pytest.raises(ValueError, match="params"):
        ft.finetune(nets.create("cnn"), "digits-5", params=nets.init(TINY_MLP, 0), progress=False)
    with pytest.raises(ValueError, match="y_test.*out of range"):
        x = np.zeros((4, 28, 28, 1), np.float32)
        ft.finetune(TINY_MLP, data.TaskData.from_arrays(x, [0, 1, 0, 1], x, [0, 1, 2, 1], 2), progress=False)
    (tmp_path / "junk.msgpack").write_bytes(b"not msgpack")
    with pytest.raises(ValueError, match="params"):
        nets.load_params(tmp_path / "junk.msgpack")


def test_clip_norm_clips_the_gradient_before_momentum():
    """``clip_norm``: the first update on a gradient of norm 10 equals the unclipped optimizer's
    update on that gradient scaled to norm 1 (computed here with NumPy); a small gradient passes
    unchanged; bad values name the field."""
    g = {"w": jnp.asarray(np.arange(1.0, 5.0, dtype=np.float32))}
    g = jax.tree_util.tree_map(lambda a: a * (10.0 / np.linalg.norm(np.arange(1.0, 5.0))), g)
    params = {"w": jnp.zeros(4, jnp.float32)}
    clipped = ft.make_optimizer(0.1, 0.0, 50, 0.9, clip_norm=1.0)
    plain = ft.make_optimizer(0.1, 0.0, 50, 0.9)
    u_clip, _ = clipped.update(g, clipped.init(params), params)
    unit = {"w": g["w"] / np.linalg.norm(np.asarray(g["w"]))}
    u_ref, _ = plain.update(unit, plain.init(params), params)
    np.testing.assert_allclose(np.asarray(u_clip["w"]), np.asarray(u_ref["w"]), rtol=1e-6)
    # Nesterov's first step: -lr · (1 + momentum) · g at the schedule's start
    np.testing.assert_allclose(np.asarray(u_ref["w"]), -0.1 * 1.9 * np.asarray(unit["w"]), rtol=1e-6)
    small = {"w": g["w"] / 100.0}
    a, _ = clipped.update(small, clipped.init(params), params)
    b, _ = plain.update(small, plain.init(params), params)
    np.testing.assert_allclose(np.asarray(a["w"]), np.asarray(b["w"]), rtol=1e-6)
    with pytest.raises(ValueError, match="clip_norm"):
        ft.FinetuneConfig(clip_norm=0.0)
    assert "clip_norm" not in ft.FinetuneConfig().training_dict()  # unclipped fingerprints unchanged
    assert ft.FinetuneConfig(clip_norm=1).training_dict()["clip_norm"] == 1.0
