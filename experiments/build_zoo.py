"""Build the shipped model zoo and its fine-tuning ground truth — one resumable command.

    python experiments/build_zoo.py                 # = pedjax zoo build (27 members, 11 tasks, 3 seeds)
    python experiments/build_zoo.py --tiny --zoo /tmp/z --work /tmp/w   # the CI chain's 4-member zoo
    python experiments/build_zoo.py --v1            # the first zoo's spec (12 members, 5 tasks, 2 seeds)

Phase 1 pretrains every member of ``pedjax.zoo.V2_MEMBERS`` on the Fashion-MNIST source split
(orbax checkpoints under ``--work``; a checkpoint member is a snapshot of its parent's run; each
finished member is written into the zoo folder and the manifest is rewritten atomically). Phase 2
fine-tunes one (member, task, seed) unit at a time over the 3 lr × 1 wd grid with
``pedjax.models.finetune`` and writes each unit to ``ZOO/truth_units/`` before the next starts;
``ground_truth.json`` is re-aggregated from the units. Interrupt it at any point and run the same
command again: finished members and units are skipped. Every option of ``pedjax zoo build`` is
accepted (``--help``).
"""
from __future__ import annotations

import sys

from pedjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["zoo", "build", *sys.argv[1:]]))
