"""Write the shown outputs of the console examples in README.md and docs/*.md from real runs.

    python experiments/render_docs.py                 # every page
    python experiments/render_docs.py README.md docs/cli.md
    python experiments/render_docs.py --check         # only report which shown outputs drifted

Each page runs as tests/test_docs.py runs it (a fresh folder per page, examples in order, the
same environment: 100 columns, no colour); under every ``$ command`` that shows output, the
shown lines are replaced by what the command printed. Commands that show no output stay so.
Nothing is typed by hand: rerun after a change that alters an output, and review the diff.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from doc_examples import PAGES, ROOT, blocks, commands, environment, normalise, run_command, run_python  # noqa: E402

from pedjax.util import atomic_write_text  # noqa: E402


def render(page: Path, cache: Path, check: bool) -> list[str]:
    """Run ``page``; return the drifted commands and (unless ``check``) rewrite the page."""
    lines = page.read_text().splitlines()
    drift, edits = [], []  # edits: (first line index, last line index, new lines) of block bodies
    namespace: dict = {"__name__": "__doc_example__"}
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        env = environment(cache)
        for b in blocks(page):
            if b.mark == "skip":
                continue
            if b.lang == "python":
                run_python(b, namespace, cwd)
                continue
            body: list[str] = []
            changed = False
            for c in commands(b):
                status, out = run_command(c.cmd, cwd, env)
                first, *rest = c.cmd.split("\n")
                body += ([f"$ {first}"] + [f"> {r}" for r in rest]) if b.lang == "console" else [c.cmd]
                if c.shown:
                    got = [ln.rstrip() for ln in out.rstrip("\n").splitlines()]
                    if normalise(out) != normalise("\n".join(c.shown)):
                        drift.append(f"{b.where}: {first}")
                        changed = True
                    body += got
                print(f"{b.where}: exit {status}: {first}", file=sys.stderr)
            if changed and b.lang == "console":
                edits.append((b.line, b.end - 2, body))
    if edits and not check:
        for start, stop, body in reversed(edits):  # fence at index start-1; body lines start..stop
            lines[start:stop + 1] = body
        atomic_write_text(page, "\n".join(lines) + "\n")
    return drift


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="*", help="pages to render (default: README.md and docs/*.md)")
    ap.add_argument("--check", action="store_true", help="report drift, write nothing")
    args = ap.parse_args(argv)
    pages = [Path(p).resolve() for p in args.pages] or PAGES
    with tempfile.TemporaryDirectory() as cache:
        drift = []
        for page in pages:
            if blocks(page):
                drift += render(page, Path(cache), args.check)
    for d in drift:
        print(("drifted: " if args.check else "rewrote: ") + d)
    print(f"{len(drift)} shown output(s) {'drifted' if args.check else 'rewritten'} in {len(pages)} page(s)", file=sys.stderr)
    return 1 if (drift and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
