"""Shared helper for benchmark scripts: each script owns one section of BENCHMARKS.md.

``write_section(name, body)`` replaces the text between ``<!-- name:start -->`` and
``<!-- name:end -->`` (appending the section when absent) and writes the file atomically, so
scripts can be re-run independently without clobbering each other's results.
"""
from __future__ import annotations

import datetime
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "BENCHMARKS.md"
_HEADER = "# Benchmarks\n\nEvery figure here is written by a script in `experiments/`; each section names its command,\nmachine and date. Ratios are measured side by side in one run.\n"


def machine() -> str:
    """One line describing where the benchmark ran."""
    import jax

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    devs = ", ".join(sorted({d.device_kind for d in jax.devices()}))
    return f"{cpu}, {os.cpu_count()} cores, jax {jax.__version__} on {jax.default_backend()} ({devs}), python {platform.python_version()}"


def git_commit() -> str:
    """The short commit (pedjax.util.git_commit, shortened)."""
    from pedjax.util import git_commit as full

    return full()[:7]


def stamp(command: str | None = None) -> str:
    command = command or "python " + " ".join(sys.argv)
    today = datetime.date.today().isoformat()
    return f"Command: `{command}`  \nMachine: {machine()}  \nDate: {today}, commit {git_commit()}\n"


def write_section(name: str, body: str, path: Path = BENCHMARKS) -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text() if path.exists() else _HEADER
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        pre, rest = text.split(start, 1)
        _, post = rest.split(end, 1)
        text = pre + block + post
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    from pedjax.util import atomic_write_text

    atomic_write_text(path, text)
