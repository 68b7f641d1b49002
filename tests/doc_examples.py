"""The examples of README.md and docs/*.md as runnable steps (tests/test_docs.py runs them;
experiments/render_docs.py writes their shown outputs from real runs).

A page is run top to bottom in a fresh temporary folder, so a later example may use what an
earlier one of the same page wrote or defined. What counts as an example:

* a ```` ```python ```` block: executed in one namespace per page — unless its first line is
  ``# NAME.py``, then it is written to the file NAME.py (a later shell example runs it);
* a ```` ```bash ```` / ```` ```sh ```` block: each command is run (no output check);
* a ```` ```console ```` block (or an unlabelled one whose lines start with ``$ ``): ``$ CMD`` lines
  (``> `` continues a command) are run; the lines under a command are its shown output, compared
  with the real one after :func:`normalise` (durations vary). A command whose shown output holds
  ``error:`` must fail with exit status 2, every other one must succeed.

An HTML comment on the line before a block changes that: ``<!-- doc: slow -->`` (needs the
shipped zoo's features or Fashion-MNIST: run by ``make test-all`` only), ``<!-- doc: skip
REASON -->`` (not run; the reason says why, e.g. an install command or an hours-long build).
Blocks in any other language (``text``, ``json``, ``yaml`` …) are not examples.
"""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))

_FENCE = re.compile(r"^(```+)\s*([\w+-]*)\s*$")
_MARK = re.compile(r"^<!--\s*doc:\s*(slow|skip)\b\s*(.*?)\s*-->\s*$")
_DURATION = re.compile(r"\b\d+(?:\.\d+)?(?= s\b)")


@dataclasses.dataclass
class Block:
    page: Path
    line: int            # 1-based line of the opening fence
    lang: str            # python | shell | console
    text: str            # the block's content
    mark: str = ""       # "" | "slow" | "skip"
    reason: str = ""
    end: int = 0         # 1-based line of the closing fence

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


@dataclasses.dataclass
class Command:
    cmd: str             # the command, continuation lines joined with newlines
    shown: list          # the output lines shown under it (may be empty)


def blocks(page: Path) -> list[Block]:
    """The examples of ``page`` in order (see the module docstring)."""
    lines = page.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        j = i + 1
        while j < len(lines) and lines[j].strip() != fence:
            j += 1
        body = "\n".join(lines[i + 1:j])
        mark = reason = ""
        if i > 0 and (mm := _MARK.match(lines[i - 1].strip())):
            mark, reason = mm.group(1), mm.group(2)
        kind = {"python": "python", "py": "python", "bash": "shell", "sh": "shell", "console": "console"}.get(lang)
        if kind is None and lang == "" and any(ln.startswith("$ ") for ln in body.splitlines()):
            kind = "console"
        if kind is not None:
            out.append(Block(page, i + 1, kind, body, mark, reason, j + 1))
        i = j + 1
    return out


def commands(block: Block) -> list[Command]:
    """The ``$`` commands of a console block with their shown output, or a shell block's commands."""
    out: list[Command] = []
    if block.lang == "shell":
        cur = ""
        for ln in block.text.splitlines():
            s = ln.strip()
            if not s or (s.startswith("#") and not cur):
                continue
            cur = f"{cur}\n{ln}" if cur else ln
            if not ln.rstrip().endswith("\\"):
                out.append(Command(cur, []))
                cur = ""
        return out
    for ln in block.text.splitlines():
        if ln.startswith("$ "):
            out.append(Command(ln[2:], []))
        elif ln.startswith("> ") and out and not out[-1].shown:
            out[-1].cmd += "\n" + ln[2:]
        elif out:
            out[-1].shown.append(ln)
    for c in out:  # a blank line between commands is layout, not output
        while c.shown and not c.shown[-1].strip():
            c.shown.pop()
    return out


def normalise(text: str) -> list[str]:
    """Lines as compared: trailing spaces dropped, durations (``10.4 s``) masked, no trailing blanks."""
    lines = [_DURATION.sub("…", ln.rstrip()) for ln in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def environment(cache: Path) -> dict:
    """The environment the examples run in: this interpreter's ``pedjax`` first on PATH, 100
    columns, no colour, unbuffered Python, a cache folder shared by the run."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(COLUMNS="100", LINES="50", NO_COLOR="1", TERM="dumb", PYTHONUNBUFFERED="1",
               PEDJAX_CACHE_DIR=str(cache))
    env.pop("FORCE_COLOR", None)
    return env


def run_command(cmd: str, cwd: Path, env: dict, timeout: float = 900) -> tuple[int, str]:
    """``cmd`` through bash in ``cwd``: (exit status, stdout and stderr interleaved)."""
    r = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout)
    return r.returncode, r.stdout


def run_python(block: Block, namespace: dict, cwd: Path) -> None:
    """Execute a python block in the page's namespace, in ``cwd``; a ``# NAME.py`` block is written."""
    first = block.text.splitlines()[0].strip() if block.text.strip() else ""
    if re.fullmatch(r"#\s*[\w.-]+\.py", first):
        (cwd / first.lstrip("#").strip()).write_text(block.text + "\n")
        return
    old = os.getcwd()
    os.chdir(cwd)
    try:
        exec(compile(block.text, block.where, "exec"), namespace)
    finally:
        os.chdir(old)
