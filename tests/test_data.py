"""Real offline data: the Fashion-MNIST IDX reader, digits, TFDS paths, the task registry."""
from __future__ import annotations

import gzip
import os
import hashlib
import struct
import subprocess
import sys
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pedjax  # noqa: F401
from pedjax import data
from pedjax.data import fashion

HAVE_FASHION = fashion.available()
needs_fashion = pytest.mark.skipif(
    not HAVE_FASHION,
    reason="Fashion-MNIST IDX files not installed (apt-get install dataset-fashion-mnist; `make data` does it as root)",
)


def _tfds_or_skip():
    if not data.tfds_available():
        pytest.skip("tensorflow-datasets/tensorflow not importable; pip install 'pedjax[tfds]' to run the TFDS tests")
    import tensorflow_datasets as tfds

    return tfds


def _write_idx(path, arr: np.ndarray, gz: bool) -> None:
    arr = np.asarray(arr, np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    payload = header + arr.tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def _write_png(path, img: np.ndarray) -> None:
    """A minimal 8-bit grayscale PNG writer (no imaging library needed)."""
    img = np.asarray(img, np.uint8)
    h, w = img.shape

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + img[i].tobytes() for i in range(h))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


# ------------------------------------------------------------------------------ Fashion-MNIST


@needs_fashion
def test_fashion_reader_real_files():
    xtr, ytr = data.load_fashion_mnist("train")
    xte, yte = data.load_fashion_mnist("test")
    assert xtr.shape == (60000, 28, 28) and xte.shape == (10000, 28, 28)
    assert xtr.dtype == np.uint8 and ytr.dtype == np.uint8
    assert np.bincount(ytr).tolist() == [6000] * 10
    assert np.bincount(yte).tolist() == [1000] * 10
    assert 0 < xtr.mean() < 255 and xtr.max() == 255


def test_fashion_reader_root_argument_and_env(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([0, 3, 9, 3, 1], np.uint8)
    for i, (split_img, split_lab) in enumerate((("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                                                ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))):
        _write_idx(tmp_path / split_img, imgs, gz=i == 0)  # gzipped and plain are both read
        _write_idx(tmp_path / split_lab, labels, gz=i == 0)
    x, y = data.load_fashion_mnist("train", root=tmp_path)
    np.testing.assert_array_equal(x, imgs)
    np.testing.assert_array_equal(y, labels)
    monkeypatch.setenv(fashion.ENV_VAR, str(tmp_path))
    x2, y2 = data.load_fashion_mnist("test")
    np.testing.assert_array_equal(x2, imgs)
    np.testing.assert_array_equal(y2, labels)


def test_fashion_missing_gives_one_line_apt_hint(tmp_path, monkeypatch):
    monkeypatch.setenv(fashion.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError) as exc:
        data.load_fashion_mnist("train")
    msg = str(exc.value)
    assert "apt-get install dataset-fashion-mnist" in msg and "\n" not in msg
    with pytest.raises(ValueError, match="split"):
        data.load_fashion_mnist("validation", root=tmp_path)


def test_read_idx_rejects_corrupt_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x12\x34\x08\x01" + struct.pack(">I", 3) + b"\x00")
    with pytest.raises(ValueError, match="not an IDX"):
        data.read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 10) + b"\x00\x01")
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(short)


# ------------------------------------------------------------------------------------- digits


@pytest.mark.parametrize("shape,size", [((5, 8, 8, 1), 28), ((3, 28, 28, 2), 10), ((2, 7, 9), 13), ((2, 28, 28), 28)])
def test_resize_images_is_jax_bilinear(shape, size):
    """NumPy bilinear resampling equal to jax.image.resize's "linear" (up, down, non-square) to
    float32 rounding."""
    x = np.random.default_rng(size).random(shape).astype(np.float32)
    got = data.resize_images(x, size)
    x4 = x if x.ndim == 4 else x[..., None]
    ref = np.asarray(jax.image.resize(jnp.asarray(x4), (x4.shape[0], size, size, x4.shape[3]), "linear"))
    np.testing.assert_allclose(got, ref if x.ndim == 4 else ref[..., 0], atol=1e-6, rtol=0)


def test_digits_pixels_do_not_depend_on_jax_settings():
    """The digits tasks' arrays (and so the key of their ground truth) are the same bits with x64
    on or off and with XLA:CPU's YNN fusions on or off (they moved with both when resized by JAX)."""
    code = ("import sys, jax; jax.config.update('jax_enable_x64', sys.argv[1] == '1');"
            "from pedjax.data.tasks import task_data_sha1; print(task_data_sha1('digits-degraded'))")
    runs = set()
    for x64, flags in (("0", ""), ("1", ""), ("1", "--xla_cpu_experimental_ynn_fusion_type=")):
        env = {**os.environ, "XLA_FLAGS": flags}
        out = subprocess.run([sys.executable, "-c", code, x64], env=env, capture_output=True, text=True, check=True)
        runs.add(out.stdout.strip())
    assert len(runs) == 1, runs


def test_digits_resized_with_jax_image_resize():
    from sklearn.datasets import load_digits as sk

    x, y = data.load_digits()
    assert x.shape == (1797, 28, 28, 1) and x.dtype == np.float32 and y.dtype == np.int32
    assert 0.0 <= x.min() and x.max() <= 1.0
    d = sk()
    ref = jax.image.resize(d.images[:3, :, :, None].astype(np.float32) / 16, (3, 28, 28, 1), "linear")
    np.testing.assert_allclose(x[:3], np.clip(np.asarray(ref), 0, 1), atol=1e-6)
    np.testing.assert_array_equal(y, d.target)
    # read without importing scikit-learn: the same arrays as its loader, bit for bit
    from pedjax.data.digits import _digits_raw

    images, target = _digits_raw()
    np.testing.assert_array_equal(images, d.images)
    np.testing.assert_array_equal(target, d.target)


# --------------------------------------------------------------------------------------- TFDS


def test_image_folder_from_real_digits(tmp_path):
    _tfds_or_skip()
    from sklearn.datasets import load_digits as sk

    d = sk()
    u8 = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
    picks = {"train": range(0, 40), "test": range(40, 60)}
    for split, rng in picks.items():
        for i in rng:
            folder = tmp_path / split / f"digit{d.target[i]}"
            folder.mkdir(parents=True, exist_ok=True)
            _write_png(folder / f"{i:04d}.png", u8[i])
    task = data.load_image_folder(tmp_path, size=8)
    assert task.x_train.shape == (40, 8, 8, 1) and task.x_test.shape == (20, 8, 8, 1)
    assert task.class_names == tuple(sorted({f"digit{t}" for t in d.target[:60]}))
    # labels: folder names in sorted order; examples ordered by path (label folder, file name)
    names = np.array(task.class_names)
    order = sorted(range(40), key=lambda i: (f"digit{d.target[i]}", i))
    np.testing.assert_array_equal(names[task.y_train], [f"digit{d.target[i]}" for i in order])
    np.testing.assert_allclose(task.x_train[..., 0], u8[order] / 255.0, atol=2e-3)
    with pytest.raises(ValueError, match="test_split"):
        data.load_image_folder(tmp_path, test_split="validation")
    big = data.load_task(f"folder:{tmp_path}")
    assert big.x_train.shape == (40, 28, 28, 1) and big.num_classes == len(names)


def test_tfds_builder_with_mock_data(tmp_path):
    tfds = _tfds_or_skip()
    with tfds.testing.mock_data(num_examples=12):
        task = data.load_tfds("mnist", data_dir=tmp_path)
    assert task.x_train.shape == (12, 28, 28, 1) and task.x_test.shape == (12, 28, 28, 1)
    assert task.num_classes == 10 and task.x_train.dtype == np.float32
    assert 0 <= task.y_train.min() and task.y_train.max() < 10
    assert task.provenance["source"] == "tfds" and task.name == "tfds:mnist"


# ------------------------------------------------------------------------------------- tasks


def test_registry_has_six_named_tasks():
    names = data.task_names()  # `pedjax tasks` lists them: tests/test_cli_info.py
    assert len(names) >= 6
    for want in ("digits-10", "digits-5", "fashion-lowdata", "fashion-coarse", "fashion-rotated", "fashion-inverted", "fashion-noisy"):
        assert want in names


def test_unknown_task_lists_known_ones():
    with pytest.raises(ValueError) as exc:
        data.load_task("cifar-100")
    assert "task" in str(exc.value) and "digits-10" in str(exc.value) and "fashion-coarse" in str(exc.value)


def _check_task(name):
    t = data.get_task(name)
    d = t.load()
    assert (d.x_train.shape[0], d.x_test.shape[0], d.num_classes) == (t.n_train, t.n_test, t.num_classes)
    assert d.x_train.shape[1:] == (28, 28, 1) and d.x_train.dtype == np.float32
    assert set(np.unique(d.y_train)) == set(range(d.num_classes)) == set(np.unique(d.y_test))
    fresh = t.builder(str(fashion.fashion_root())) if t.dataset == "fashion-mnist" else t.builder()
    np.testing.assert_array_equal(fresh.x_train, d.x_train)  # deterministic
    np.testing.assert_array_equal(fresh.y_test, d.y_test)
    return d


@pytest.mark.parametrize("name", ["digits-10", "digits-5"])
def test_digits_tasks(name):
    d = _check_task(name)
    assert not set(d.provenance["train_indices"]) & set(d.provenance["test_indices"])


@needs_fashion
def test_fashion_tasks_deterministic_and_as_declared():
    for name in data.task_names():
        if name.startswith("fashion"):
            _check_task(name)
    xtr_all, _ = fashion.load_fashion_mnist("train")
    xte_all, _ = fashion.load_fashion_mnist("test")

    def raw_test(d):  # the test images the provenance names, untransformed, in the split's order
        p = d.provenance
        return np.concatenate([xte_all[p["test_indices"]], xtr_all[p["test_extra_indices"]]]).astype(np.float32)[..., None] / 255.0

    low, inv, rot = (data.load_task(n) for n in ("fashion-lowdata", "fashion-inverted", "fashion-rotated"))
    np.testing.assert_array_equal(low.x_test, raw_test(low))
    np.testing.assert_allclose(inv.x_test, 1.0 - raw_test(inv), atol=1e-6)  # its test images, inverted
    np.testing.assert_array_equal(rot.x_test, np.rot90(raw_test(rot), 1, axes=(1, 2)))
    for d in (low, inv, rot):  # as large as the data allows: most of the official test set, never the task's train split
        p = d.provenance
        assert d.x_test.shape[0] == 10 * data.FASHION_TEST_PER_CLASS and p["test_indices"].size >= 9000
        assert not set(p["test_extra_indices"].tolist()) & set(p["train_indices"].tolist())
        assert np.all((p["test_extra_indices"] >= data.TASK_POOL_RANGE[0]) & (p["test_extra_indices"] < data.TASK_POOL_RANGE[1]))


def _recover_permutation(raw: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """The one column permutation p with moved[:, j] == raw[:, p[j]] for every image, found column by
    column from the data alone (each raw column is identified by its values over the images)."""
    keys = {raw[:, k].tobytes(): k for k in range(raw.shape[1]) if raw[:, k].any()}
    return np.array([keys.get(moved[:, j].tobytes(), -1) for j in range(moved.shape[1])])


@needs_fashion
def test_permuted_tasks_move_every_pixel_by_one_fixed_permutation():
    xtr_all, _ = fashion.load_fashion_mnist("train")
    xte_all, _ = fashion.load_fashion_mnist("test")
    d = data.load_task("fashion-permuted")
    p = d.provenance
    raw_tr = xtr_all[p["train_indices"]].astype(np.float32).reshape(len(d.y_train), -1) / 255.0
    raw_te = np.concatenate([xte_all[p["test_indices"]], xtr_all[p["test_extra_indices"]]]).astype(np.float32).reshape(len(d.y_test), -1) / 255.0
    moved_tr, moved_te = d.x_train.reshape(len(d.y_train), -1), d.x_test.reshape(len(d.y_test), -1)
    # every image keeps its pixel values (as a multiset) ...
    np.testing.assert_array_equal(np.sort(moved_tr, axis=1), np.sort(raw_tr, axis=1))
    np.testing.assert_array_equal(np.sort(moved_te, axis=1), np.sort(raw_te, axis=1))
    # ... and one permutation, recovered from the data, maps train and test alike
    perm_tr, perm_te = _recover_permutation(raw_tr, moved_tr), _recover_permutation(raw_te, moved_te)
    known = (perm_tr >= 0) & (perm_te >= 0)  # all-zero border columns cannot be told apart
    assert known.sum() > 600 and np.array_equal(perm_tr[known], perm_te[known])
    np.testing.assert_array_equal(moved_tr, raw_tr[:, data.pixel_permutation()])
    # it destroys the layout: 4-neighbours in the permuted image are, on average, far apart in the original
    src = data.pixel_permutation().reshape(28, 28)
    r, c = np.divmod(src, 28)
    far = np.hypot(np.diff(r, axis=1), np.diff(c, axis=1)).mean()
    assert far > 8.0 and d.y_train.size == 1000 and d.y_test.size == 10 * data.FASHION_TEST_PER_CLASS


def test_glyphs_permuted_is_glyph_digits_rendering_permuted():
    from pedjax.data import glyphs

    spec = next(s for s in glyphs.GLYPH_SPECS if s.name == "glyphs-permuted")
    plain = next(s for s in glyphs.GLYPH_SPECS if s.name == "glyphs-digits")
    assert spec.permuted and not plain.permuted and spec.classes == plain.classes
    if not glyphs.available():
        pytest.skip(str(glyphs.missing()))
    train, _ = glyphs.plan(spec)
    fonts = glyphs.font_list()
    d = data.load_task("glyphs-permuted")
    for j in (0, 137, 999):
        i, ch, k, label = train[j]
        img = glyphs.render(fonts[i]["path"], ch, k).astype(np.float32).reshape(-1) / 255.0
        np.testing.assert_array_equal(d.x_train[j].reshape(-1), img[data.pixel_permutation()])
        assert d.y_train[j] == label


@needs_fashion
def test_source_split_never_overlaps_any_task_split():
    src = set(data.source_indices().tolist())
    assert src == set(range(*data.SOURCE_RANGE))
    xs, ys = data.load_source()
    assert xs.shape == (50000, 28, 28, 1) and ys.shape == (50000,)
    src_hashes = {hashlib.sha1(im.tobytes()).digest() for im in (xs[..., 0] * 255).round().astype(np.uint8)}
    for name in data.task_names():
        if data.TASKS[name].dataset not in ("fashion-mnist", "digits"):
            continue  # rendered from other sources (fonts, emoji): no Fashion-MNIST image in them
        d = data.load_task(name)
        prov = d.provenance
        for split in ("train", "test"):
            if prov[f"{split}_pool"] == "fashion-mnist/train":  # by index
                assert not src & set(prov[f"{split}_indices"].tolist()), (name, split)
            else:
                assert prov[f"{split}_pool"] in ("fashion-mnist/test", "sklearn-digits"), (name, split)
        if "test_extra_indices" in prov:  # the second test pool: the task pool, by index
            assert prov["test_extra_pool"] == "fashion-mnist/train"
            assert not src & set(prov["test_extra_indices"].tolist()), name
        if prov.get("transform") is None:  # by content, for untransformed images
            for x in (d.x_train, d.x_test):
                hashes = {hashlib.sha1(im.tobytes()).digest() for im in (x[..., 0] * 255).round().astype(np.uint8)}
                assert not hashes & src_hashes, name


# -------------------------------------------------------------------------------- bad input


def test_taskdata_bad_input_names_the_argument():
    x = np.zeros((6, 28, 28, 1), np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    ok = data.TaskData.from_arrays(x, y, x, y, 3)
    assert ok.num_classes == 3
    with pytest.raises(ValueError, match="x_train.*empty"):
        data.TaskData.from_arrays(x[:0], y[:0], x, y, 3)
    with pytest.raises(ValueError, match="x_test.*empty"):
        data.TaskData.from_arrays(x, y, x[:0], y[:0], 3)
    with pytest.raises(ValueError, match="y_train.*5 labels"):
        data.TaskData.from_arrays(x, y[:5], x, y, 3)
    with pytest.raises(ValueError, match="x_test.*image shape"):
        data.TaskData.from_arrays(x, y, np.zeros((6, 14, 14, 1)), y, 3)
    with pytest.raises(ValueError, match="y_test.*out of range"):
        data.TaskData.from_arrays(x, y, x, y + 1, 3)
    with pytest.raises(ValueError, match="y_train.*out of range"):
        data.TaskData.from_arrays(x, y - 1, x, y, 3)
    with pytest.raises(ValueError, match="x_train.*NaN"):
        data.TaskData.from_arrays(np.full_like(x, np.nan), y, x, y, 3)
