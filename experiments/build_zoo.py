"""Build the shipped model zoo and its fine-tuning ground truth — one resumable command.

    python experiments/build_zoo.py                 # = pedjax zoo build (12 members, 5 tasks, 2 seeds)
    python experiments/build_zoo.py --tiny --zoo /tmp/z --work /tmp/w   # the CI chain's 2-member zoo

Phase 1 pretrains every member of ``pedjax.zoo.DEFAULT_MEMBERS`` on the Fashion-MNIST source
split (orbax checkpoints under ``--work``; each finished member is written into the zoo folder and
the manifest is rewritten atomically). Phase 2 fine-tunes every (member, task) pair over the
4×4 lr × wd grid with ``pedjax.models.finetune`` (resumable per seed) and rewrites
``ground_truth.json`` atomically after each pair. Interrupt it at any point and run the same
command again: finished members and pairs are skipped, the running one resumes from its last
checkpoint. Every option of ``pedjax zoo build`` is accepted (``--help``).
"""
from __future__ import annotations

import sys

from pedjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["zoo", "build", *sys.argv[1:]]))
