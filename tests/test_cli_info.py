"""``pedjax metrics`` and ``pedjax tasks``; the one test that runs the installed console script."""
import subprocess
import sys
from pathlib import Path

import pytest

from pedjax import data
from pedjax.cli import main

#: the console script pip installs beside the interpreter (`pip install -e .`)
SCRIPT = Path(sys.executable).parent / "pedjax"


@pytest.mark.skipif(not SCRIPT.is_file(), reason=f"no installed console script at {SCRIPT} (pip install -e .)")
def test_console_script_lists_registry():
    """Smoke test of the installed entry point (`pedjax = pedjax.cli:main`) in a fresh process."""
    r = subprocess.run([str(SCRIPT), "metrics"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    for name in ("logme", "sfda", "gbc", "hscore", "leep", "nce"):
        assert name in r.stdout


def test_tasks_lists_the_registry(capsys):
    names = data.task_names()
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in names) and "source split" in out
    # every task's domain (the unit leave-one-domain-out holds out) is a column
    assert "domain" in out and all(data.TASKS[n].domain in out for n in names)
