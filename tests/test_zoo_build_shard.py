"""A build that scales out (issue 23, point 6): ``pedjax zoo build --shard I/N``.

Claims (atomic creation, exclusivity under a race, stale-claim takeover, heartbeat timeout),
the shard partition, and the output locks are unit-tested here in seconds. The slow test builds
part of the tiny v2 chain once in one process and once with two concurrent worker processes
(``--shard 0/2`` and ``--shard 1/2``, started together) on one folder in which a killed worker left
two claims (a pretraining run and a ground-truth unit, their pid gone): the workers take the
stale claims over and end with the same files as the single process.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pedjax.data import fashion
from pedjax.util import OutputLocked, output_lock
from pedjax.zoo import TINY_V2_CONFIG, TINY_V2_MEMBERS
from pedjax.zoo import build as zb

ROOT = Path(__file__).resolve().parents[1]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _plant(path: Path, host: str, pid: int, age: float = 0.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host, "pid": pid, "pid_start": None, "since": "then"}) + "\n")
    if age:
        t = time.time() - age
        os.utime(path, (t, t))


def test_shard_parse_and_partition():
    assert zb.Shard.parse("1/4") == zb.Shard(1, 4)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ValueError, match="shard"):
            zb.Shard.parse(bad)
    units = [(t, m, s) for t in ("a", "b", "c") for m in ("m1", "m2", "m3", "m4") for s in range(3)]
    shards = [zb.Shard(i, 3) for i in range(3)]
    owners = [[sh.index for sh in shards if sh.owns(*u)] for u in units]
    assert all(len(o) == 1 for o in owners)  # every unit belongs to exactly one shard …
    assert all(any(o == [i] for o in owners) for i in range(3))  # … and every shard gets some
    assert owners == [[sh.index for sh in shards if sh.owns(*u)] for u in units]  # stable


def test_claims_are_exclusive_under_a_race(tmp_path):
    path = tmp_path / "claims" / "u"
    won, go = [], threading.Event()

    def grab():
        go.wait()
        c = zb.try_claim(path)
        if c is not None:
            won.append(c)

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join()
    assert len(won) == 1
    rec = json.loads(path.read_text())
    assert rec["pid"] == os.getpid() and rec["host"] == socket.gethostname()
    assert zb.try_claim(path) is None  # live: this process holds it
    won[0].release()
    assert not path.exists()
    with zb.try_claim(path) as c:  # free again
        assert c is not None and path.exists()
    assert not path.exists()


def test_stale_claims_are_taken_over(tmp_path):
    here = socket.gethostname()
    dead = tmp_path / "dead"
    _plant(dead, here, _dead_pid())
    assert "gone" in zb.claim_stale(dead)
    c = zb.try_claim(dead)
    assert c is not None and json.loads(dead.read_text())["pid"] == os.getpid()
    c.release()
    # another host: live while its heartbeat is fresh, stale after the timeout
    other = tmp_path / "other"
    _plant(other, here + "-elsewhere", 1)
    assert zb.claim_stale(other, timeout=60) is None and zb.try_claim(other, timeout=60) is None
    _plant(other, here + "-elsewhere", 1, age=120)
    assert "heartbeat" in zb.claim_stale(other, timeout=60)
    c = zb.try_claim(other, timeout=60)
    assert c is not None
    c.release()
    assert not list(tmp_path.glob("*stale*"))
    # a live pid on this host (this test's parent) is never stale, however old the file
    live = tmp_path / "live"
    _plant(live, here, os.getppid(), age=10_000)
    assert zb.claim_stale(live, timeout=60) is None


def test_heartbeat_keeps_a_claim_fresh(tmp_path):
    path = tmp_path / "u"
    c = zb.try_claim(path)
    t = time.time() - 1000
    os.utime(path, (t, t))
    c2 = zb.Claim(path, os.stat(path).st_ino, heartbeat=0.05)  # a second beater on the same file
    deadline = time.time() + 10
    while time.time() - os.stat(path).st_mtime > 100 and time.time() < deadline:
        time.sleep(0.05)
    assert time.time() - os.stat(path).st_mtime < 100
    c2._stop.set()
    c.release()


def test_shared_and_exclusive_output_locks_exclude_each_other(tmp_path):
    with zb.shared_output_lock(tmp_path, "zoo_dir"), zb.shared_output_lock(tmp_path, "zoo_dir"):  # shards share
        with pytest.raises(OutputLocked, match="zoo_dir"), output_lock(tmp_path, "zoo_dir"):
            pass
    with output_lock(tmp_path, "zoo_dir"):
        with pytest.raises(OutputLocked, match="unsharded"), zb.shared_output_lock(tmp_path, "zoo_dir"):
            pass


# ------------------------------------------------------------------------------------------- slow

_VOLATILE = ("wall", "date", "updated", "since", "machine", "git_commit", "jax_version", "backend", "resumed_from_step")


def _stable(obj):
    """``obj`` without the fields that record time, host or software (the rest must match)."""
    if isinstance(obj, dict):
        return {k: _stable(v) for k, v in obj.items() if not any(w in k for w in _VOLATILE)}
    if isinstance(obj, list):
        return [_stable(v) for v in obj]
    return obj


def _units(zoo: Path) -> dict:
    return {str(p.relative_to(zoo)): _stable(json.loads(p.read_text())) for p in sorted((zoo / zb.UNITS_DIR).rglob("*.json"))}


@pytest.mark.slow
@pytest.mark.skipif(not fashion.available(), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist): the zoo pretrains on it")
def test_two_concurrent_shards_build_what_one_process_builds(tmp_path):
    t0 = time.time()
    # the tiny chain's pretraining run with its checkpoint member, a class-subset member, one task
    members, config = TINY_V2_MEMBERS[:3], dataclasses.replace(TINY_V2_CONFIG, tasks=("digits-5",))
    ref, work_ref = tmp_path / "ref", tmp_path / "work-ref"
    zb.build(ref, work_ref, members, config, progress=False, verbose=False)

    zoo, work = tmp_path / "zoo", tmp_path / "work"
    # a killed worker left a pretraining claim and a ground-truth claim behind
    dead = _dead_pid()
    stale_member = zb.claim_path(zoo, "members", members[2].name)
    stale_unit = zb.claim_path(zoo, "truth", config.tasks[0], members[0].name, "seed1")
    for p in (stale_member, stale_unit):
        _plant(p, socket.gethostname(), dead)
    cmd = "from pedjax.cli import main; raise SystemExit(main({}))"
    procs = [subprocess.Popen([sys.executable, "-c", cmd.format(
        ["zoo", "build", "--tiny", "--zoo", str(zoo), "--work", str(work), "--no-progress", "--shard", f"{i}/2",
         "--members", *[m.name for m in members], "--tasks", *config.tasks])],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    logs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(log[-3000:] for log in logs)

    # every fine-tuning unit once, by its shard; the stale claims were taken over
    n_units = len(members) * len(config.tasks) * len(config.ft_seeds)
    done = [int(re.search(rf"shard {i}/2: (\d+) unit", log).group(1)) for i, log in enumerate(logs)]
    assert sum(done) == n_units and min(done) > 0, logs
    assert sum(log.count("took over a stale claim") for log in logs) >= 2
    assert not [p for p in (zoo / zb.CLAIMS_DIR).rglob("*") if p.is_file()], "claims left behind"

    # the same files as one process: per-seed accuracies, curves, aggregate, manifest
    assert _units(zoo) == _units(ref) and len(_units(ref)) == n_units
    gt, gt_ref = (json.loads((z / zb.TRUTH_FILE).read_text()) for z in (zoo, ref))
    for k in ("datasets", "std", "per_seed", "curves", "seeds"):
        assert gt[k] == gt_ref[k], k
    assert _stable(gt["runs"]) == _stable(gt_ref["runs"]) and gt["provenance"]["complete"]
    man, man_ref = (zb.read_manifest(z) for z in (zoo, ref))
    assert [m["name"] for m in man["members"]] == [m.name for m in members]  # the spec's order
    assert _stable(man["members"]) == _stable(man_ref["members"])
    assert man["build"]["complete"] and man["build"]["truth_units_done"] == n_units
    # a third worker finds nothing to do
    again = zb.build(zoo, work, members, config, progress=False, verbose=False, shard=zb.Shard(0, 2))
    assert again["members"]["built"] == [] and _units(zoo) == _units(ref)
    print(f"sharded tiny chain: {time.time() - t0:.0f} s")
