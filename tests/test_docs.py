"""Every Python and shell example of README.md and docs/*.md runs as written, in a fresh folder
per page, and prints what the page shows (tests/doc_examples.py says how a page is read; shown
outputs are written by ``python experiments/render_docs.py`` from real runs)."""
from __future__ import annotations

import pytest

from doc_examples import PAGES, ROOT, blocks, commands, environment, normalise, run_command, run_python


def _param(page):
    bs = blocks(page)
    marks = [pytest.mark.slow] if any(b.mark == "slow" for b in bs) else []
    return pytest.param(page, id=str(page.relative_to(ROOT)), marks=marks)


def test_every_page_has_a_known_layout():
    """Each skipped example gives its reason; the README has runnable examples."""
    for page in PAGES:
        for b in blocks(page):
            assert b.mark != "skip" or b.reason, f"{b.where}: <!-- doc: skip --> needs a reason"
    assert any(b.mark == "" for b in blocks(ROOT / "README.md"))


@pytest.mark.parametrize("page", [_param(p) for p in PAGES if blocks(p)])
def test_examples_run_as_written(page, tmp_path, tmp_path_factory):
    cwd = tmp_path / "page"
    cwd.mkdir()
    env = environment(tmp_path_factory.getbasetemp() / "pedjax-cache")
    namespace: dict = {"__name__": "__doc_example__"}
    for b in blocks(page):
        if b.mark == "skip":
            continue
        if b.lang == "python":
            run_python(b, namespace, cwd)
            continue
        for c in commands(b):
            status, out = run_command(c.cmd, cwd, env)
            fails = any("error:" in ln for ln in c.shown)
            assert status == (2 if fails else 0), f"{b.where}: `{c.cmd}` exited {status}:\n{out[-3000:]}"
            if c.shown:
                assert normalise(out) == normalise("\n".join(c.shown)), (
                    f"{b.where}: `{c.cmd}` prints other output than the page shows; "
                    f"rerun python experiments/render_docs.py and review the diff")
