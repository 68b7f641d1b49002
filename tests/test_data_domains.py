"""Benchmark v3's new target domains (issue 23, point 1): glyph tasks rendered from Debian's font
packages (split by font design) and emoji tasks from two emoji fonts (split by emoji).

The plans (which font, character and copy goes where) come from the frozen lists alone and are
checked for every task; rendering is checked on one glyph and one emoji task, and determinism on a
sample of items rendered again in a fresh process. A missing source skips with a one-line reason.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pedjax import data
from pedjax.data import emoji, glyphs

ROOT = Path(__file__).resolve().parents[1]
NEW = [s.name for s in glyphs.GLYPH_SPECS] + [s.name for s in emoji.EMOJI_SPECS]
needs_glyphs = pytest.mark.skipif(not glyphs.available(), reason=str(glyphs.missing()))
needs_emoji = pytest.mark.skipif(not emoji.available(), reason=str(emoji.missing()))


def test_registry_has_new_domains():
    tasks = data.TASKS
    assert len(NEW) >= 8 and len({tasks[n].dataset for n in NEW}) >= 2
    assert all(tasks[n].domain == "glyphs" for n in NEW if n.startswith("glyphs-"))
    assert all(tasks[n].domain == "emoji" for n in NEW if n.startswith("emoji-"))
    assert {tasks[n].domain for n in tasks if n.startswith("fashion-")} == {"fashion"}
    assert {tasks[n].domain for n in tasks if n.startswith("digits-")} == {"digits"}
    doms = data.task_domains()
    assert set(doms) == {"fashion", "digits", "glyphs", "emoji"} and sorted(sum(doms.values(), [])) == data.task_names()


def test_make_data_installs_every_source_package():
    text = (ROOT / "Makefile").read_text()
    block = re.search(r"DOMAIN_PKGS :=(.*?)\ndata:", text, re.S).group(1)
    pkgs = set(block.replace("\\", " ").split())
    assert set(glyphs.FONT_PACKAGES) | {v[0] for v in emoji.FONTS.values()} == pkgs
    assert {f["package"] for f in glyphs.font_list()} <= set(glyphs.FONT_PACKAGES)


@pytest.mark.parametrize("spec", glyphs.GLYPH_SPECS, ids=lambda s: s.name)
def test_glyph_plan_balanced_and_split_by_font(spec):
    train, test = glyphs.plan(spec)
    t = data.TASKS[spec.name]
    assert (len(train), len(test), len(spec.classes)) == (t.n_train, t.n_test, t.num_classes)
    k = len(spec.classes)
    assert np.bincount([x[3] for x in train], minlength=k).tolist() == [spec.n_train_per] * k
    per_test = np.bincount([x[3] for x in test], minlength=k)
    assert per_test.min() == per_test.max() > 0 and len(set(test)) == len(test) and len(set(train)) == len(train)
    fonts = glyphs.font_list()
    tr_fonts, te_fonts = {fonts[x[0]]["path"] for x in train}, {fonts[x[0]]["path"] for x in test}
    assert not tr_fonts & te_fonts  # test fonts unseen in training …
    assert not {fonts[x[0]]["group"] for x in train} & {fonts[x[0]]["group"] for x in test}  # … nor clones of them
    if spec.by_weight:  # the label is the font's weight; both sides hold whole families with both weights
        for items in (train, test):
            assert all((fonts[x[0]]["weight"] >= 650) == (x[3] == 1) and not fonts[x[0]]["italic"] for x in items)
    else:
        assert all(x[1] in spec.classes[x[3]] for x in train + test)


@pytest.mark.parametrize("spec", emoji.EMOJI_SPECS, ids=lambda s: s.name)
def test_emoji_plan_balanced_and_split_by_emoji(spec):
    train, test = emoji.plan(spec)
    t = data.TASKS[spec.name]
    assert (len(train), len(test), len(emoji.GROUPS)) == (t.n_train, t.n_test, t.num_classes)
    assert np.bincount([x[3] for x in train], minlength=8).tolist() == [spec.n_train_per] * 8
    per_test = np.bincount([x[3] for x in test], minlength=8)
    assert per_test.min() == per_test.max() > 0
    assert not {x[0] for x in train} & {x[0] for x in test}  # test emoji unseen in training
    assert {x[1] for x in train} == set(spec.train_fonts) and {x[1] for x in test} == set(spec.test_fonts)
    entries = emoji.emoji_list()
    assert all(entries[x[0]]["group"] == emoji.GROUPS[x[3]] for x in train + test)


def _check_loaded(d, t):
    assert (d.x_train.shape[0], d.x_test.shape[0], d.num_classes) == (t.n_train, t.n_test, t.num_classes)
    for x in (d.x_train, d.x_test):
        assert x.shape[1:] == (28, 28, 1) and x.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert (x.reshape(len(x), -1).max(axis=1) > 0.25).all()  # every image holds a drawn shape (thin fonts: faint)
    for y, n in ((d.y_train, t.n_train), (d.y_test, t.n_test)):
        assert np.bincount(y, minlength=t.num_classes).tolist() == [n // t.num_classes] * t.num_classes


@needs_glyphs
def test_glyph_task_loads():
    t = data.TASKS["glyphs-letters"]
    d = data.load_task("glyphs-letters")
    _check_loaded(d, t)
    p = d.provenance
    assert p["domain"] == "glyphs" and not set(p["train_fonts"]) & set(p["test_fonts"]) and len(p["test_fonts"]) >= 50
    assert p["pillow"] and p["freetype"]


@needs_emoji
def test_emoji_task_loads():
    t = data.TASKS["emoji-shift"]
    d = data.load_task("emoji-shift")
    _check_loaded(d, t)
    assert not set(d.provenance["train_emoji"]) & set(d.provenance["test_emoji"])


_SAMPLE = """
import hashlib, json, sys
from pedjax.data import emoji, glyphs
out = {}
for spec in glyphs.GLYPH_SPECS:
    tr, te = glyphs.plan(spec)
    fonts = glyphs.font_list()
    h = hashlib.sha1()
    for i, ch, k, _ in (tr[::97] + te[::211])[:40]:
        h.update(glyphs.render(fonts[i]["path"], ch, k).tobytes())
    out[spec.name] = h.hexdigest()
for spec in emoji.EMOJI_SPECS:
    tr, te = emoji.plan(spec)
    e = emoji.emoji_list()
    h = hashlib.sha1()
    for i, f, k, _ in (tr[::53] + te[::61])[:40]:
        h.update(emoji.render(f, chr(int(e[i]["cp"], 16)), k).tobytes())
    out[spec.name] = h.hexdigest()
print(json.dumps(out))
"""


@needs_glyphs
@needs_emoji
def test_rendering_is_deterministic_across_processes():
    ns: dict = {}
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(_SAMPLE, ns)
    here = json.loads(buf.getvalue())
    r = subprocess.run([sys.executable, "-c", _SAMPLE], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout) == here and set(here) == set(NEW)
    # and copies differ: copy 0 is the plain rendering, copy 1 a jittered one
    f = glyphs.font_list()[0]["path"]
    a, b = glyphs.render(f, "A", 0), glyphs.render(f, "A", 1)
    assert a.shape == b.shape == (28, 28) and not np.array_equal(a, b)
    assert hashlib.sha1(a.tobytes()).hexdigest() == hashlib.sha1(glyphs.render(f, "A", 0).tobytes()).hexdigest()


def test_missing_source_is_one_line_reason(monkeypatch, tmp_path):
    monkeypatch.setattr(glyphs, "FONT_ROOT", tmp_path)
    monkeypatch.setattr(emoji, "FONT_ROOT", tmp_path)
    for name in ("glyphs-digits", "emoji-groups"):
        why = data.TASKS[name].unavailable()
        assert why and "\n" not in why and "make data" in why
        with pytest.raises(FileNotFoundError, match="make data"):
            data.TASKS[name].builder()


def test_pedjax_tasks_lists_them_with_their_domain(capsys, monkeypatch):
    from pedjax.cli import main

    monkeypatch.setenv("COLUMNS", "400")
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in NEW:
        row = next(line for line in out.splitlines() if f" {name} " in f" {line} ")
        cells = [c.strip() for c in row.split("│")]
        assert data.TASKS[name].domain in cells, row  # the domain column


@needs_glyphs
@needs_emoji
@pytest.mark.slow
@pytest.mark.parametrize("name", NEW)
def test_every_new_task_loads(name):
    _check_loaded(data.load_task(name), data.TASKS[name])
