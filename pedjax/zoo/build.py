"""Building a zoo and its fine-tuning ground truth, resumable at every level.

:func:`build_members` pretrains each :class:`~pedjax.zoo.spec.MemberSpec` (a running pretraining
resumes from its last orbax checkpoint; a finished member, recognised by its fingerprint, is
skipped) and stores it with its source statistics and linear probe; :func:`build_truth` fine-tunes
every (member, task) pair over the lr × wd grid and records the result in ``ground_truth.json``
after each pair (:func:`build_truth_units`: unit by unit); :func:`build` does both. ``pedjax zoo
build`` is the command line.

The v2 zoo adds pretraining-amount members (:func:`snapshot_member`: a checkpoint of another
member's run, kept by :func:`pretrain_member` as the run passes that step), source-subset members
(:func:`_source_subset`) and the unit-by-unit ground truth (:func:`build_truth_units`: one file
per (member, task, seed) in the zoo folder, aggregated by :func:`aggregate_units`).

**Scale-out** (:class:`Shard`, ``pedjax zoo build --shard I/N``): N processes or machines build one
zoo over a shared folder. Members are claimed one pretraining run at a time by whichever worker is
free (every worker needs every member before its ground truth); ground-truth units are split by a
stable hash (SHA-1) of (task, member, seed) modulo N. Each claim is a file created with ``O_CREAT|O_EXCL``
under ``zoo/.claims/`` holding its owner's host, pid, pid start time and date, kept fresh by a
heartbeat; a claim is *stale*, and the next worker that wants the unit takes it over (atomic
rename), when its owner's pid no longer runs on the same host, or, from another host, when the
heartbeat is older than ``claim_timeout`` seconds. Every result is deterministic and written
atomically, so a unit done twice after a race is harmless: claims save work, they do not carry
correctness. Manifest updates and the ground-truth aggregate are serialised by a short ``flock``
on ``zoo/.pedjax-meta.lock``; sharded workers hold the zoo and work folders' output locks shared,
so an unsharded build refuses to start beside them (and they beside it).

Size: one module for the whole build, because the members, the ground truth and their resume
logic share the fingerprints and the manifest handling; split it if another builder is added.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.tasks import task_data_sha1
from ..util import LOCK_FILE, OutputLocked, atomic_write_json, git_commit, locks_output, sha1_arrays, sha1_json
from .spec import (
    DEFAULT_WORK,
    DEFAULT_ZOO,
    MANIFEST,
    TRUTH_FILE,
    TRUTH_FORMAT,
    V1_CONFIG,
    V1_WORK,
    V2_MEMBERS,
    V3_CONFIG,
    VERSION,
    BuildConfig,
    MemberSpec,
    create_module,
)
from .store import _now, add_member, load_zoo, read_manifest


def _log(msg: str, verbose: bool) -> None:
    if verbose:
        print(msg, flush=True)


# ---------------------------------------------------------------------------------------------
# scale-out: shards, claims, the meta lock

CLAIMS_DIR = ".claims"
META_LOCK = ".pedjax-meta.lock"
#: seconds between two heartbeats of a held claim (its file's mtime is refreshed)
CLAIM_HEARTBEAT = 30.0
#: a claim from another host whose heartbeat is older than this is stale (``--claim-timeout``)
DEFAULT_CLAIM_TIMEOUT = 900.0
#: seconds between two looks at the manifest while other workers pretrain members this one needs
MEMBER_POLL = 2.0


@dataclass(frozen=True)
class Shard:
    """Worker ``index`` of ``count`` in a sharded build (``--shard I/N``).

    It builds the ground-truth units whose stable hash (the first 8 bytes of the SHA-1 of
    ``task/member/seed``) is ``index`` modulo ``count`` (:meth:`owns`), and helps pretrain members.

    Attributes:
      index: this worker's index I, 0 ≤ I < N.
      count: the number of workers N (≥ 1).
      claim_timeout: seconds after which another host's claim without a heartbeat is stale.

    Raises:
      ValueError: not 0 ≤ ``index`` < ``count`` (integers), or ``claim_timeout`` ≤ 0.
    """

    index: int = 0
    count: int = 1
    claim_timeout: float = DEFAULT_CLAIM_TIMEOUT

    def __post_init__(self):
        if not (isinstance(self.count, int) and isinstance(self.index, int) and self.count >= 1 and 0 <= self.index < self.count):
            raise ValueError(f"shard: need 0 <= I < N, got {self.index}/{self.count}")
        if not self.claim_timeout > 0:
            raise ValueError(f"claim_timeout: a positive number of seconds, got {self.claim_timeout}")

    @classmethod
    def parse(cls, text: str, claim_timeout: float = DEFAULT_CLAIM_TIMEOUT) -> Shard:
        """A shard from its command-line form.

        Args:
          text: ``"I/N"`` (e.g. ``"0/4"``; a job array's
            ``$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``).
          claim_timeout: as the attribute.

        Returns:
          The :class:`Shard`.

        Raises:
          ValueError: ``text`` is not ``I/N`` with integers 0 ≤ I < N.
        """
        try:
            i, n = (int(v) for v in str(text).split("/"))
        except ValueError:
            raise ValueError(f"--shard: expected I/N with integers 0 <= I < N, got {text!r}") from None
        if not 0 <= i < n:
            raise ValueError(f"--shard: expected I/N with integers 0 <= I < N, got {text!r}")
        return cls(i, n, claim_timeout)

    def owns(self, task: str, member: str, seed: int) -> bool:
        """Whether the ground-truth unit (``task``, ``member``, ``seed``) is this worker's."""
        digest = hashlib.sha1(f"{task}/{member}/{int(seed)}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index


def _pid_start(pid: int) -> str | None:
    """The start time of process ``pid`` (``/proc/<pid>/stat`` field 22; guards against a reused
    pid), ``None`` where ``/proc`` is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _pid_alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = _pid_start(pid)
    return start is None or now is None or now == start


def _claim_record() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": _pid_start(os.getpid()), "since": _now(),
            "command": " ".join(sys.argv)[:300]}


def claim_stale(path, timeout: float = DEFAULT_CLAIM_TIMEOUT) -> str | None:
    """Why a claim file is stale (its owner is gone), or ``None`` when it is live.

    Stale when its owner ran on this host and its pid is gone (or now belongs to another process:
    the start time differs), or when it came from another host (or cannot be read) and its
    heartbeat — the file's modification time — is older than ``timeout`` seconds.

    Args:
      path: the claim file.
      timeout: seconds without a heartbeat after which another host's claim is stale (an
        unreadable one after at least 10 s).

    Returns:
      A one-line reason, or ``None``.

    Raises:
      FileNotFoundError: ``path`` does not exist (released meanwhile).
    """
    path = Path(path)
    st = path.stat()
    age = time.time() - st.st_mtime
    try:
        rec = json.loads(path.read_text())
        host, pid = rec["host"], int(rec["pid"])
    except (ValueError, KeyError, TypeError, OSError):
        return f"unreadable claim, {age:.0f} s old" if age > max(timeout, 10.0) else None
    if host == socket.gethostname():
        return None if _pid_alive(pid, rec.get("pid_start")) else f"pid {pid} on {host} is gone"
    return f"no heartbeat from {host} for {age:.0f} s (> {timeout:g} s)" if age > timeout else None


class Claim:
    """A held claim (:func:`try_claim`); a context manager that releases it on exit.

    Its heartbeat thread refreshes the file's mtime every ``heartbeat`` seconds; :meth:`release`
    removes the file if it is still this claim's (same inode).

    Args:
      path: the claim file.
      ino: its inode number when this worker created it.
      heartbeat: seconds between two heartbeats.
    """

    def __init__(self, path: Path, ino: int, heartbeat: float = CLAIM_HEARTBEAT):
        self.path, self.ino = path, ino
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(heartbeat,), daemon=True)
        self._thread.start()

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_ino == self.ino:
                    os.utime(self.path)

    def release(self) -> None:
        """Stop the heartbeat and remove the claim file if it is still this claim's."""
        self._stop.set()
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self.ino:
                os.unlink(self.path)

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def try_claim(path, timeout: float = DEFAULT_CLAIM_TIMEOUT, verbose: bool = False) -> Claim | None:
    """Claim a unit atomically (``O_CREAT|O_EXCL``), taking over a stale claim by an atomic rename.

    Args:
      path: the claim file (:func:`claim_path`); its folder is created.
      timeout: the staleness timeout (:func:`claim_stale`).
      verbose: log a taken-over claim.

    Returns:
      The held :class:`Claim`, or ``None`` when a live worker holds it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            try:
                st = os.stat(path)
                why = claim_stale(path, timeout)
            except FileNotFoundError:
                continue  # released meanwhile: try again
            if why is None:
                return None
            grave = path.with_name(f"{path.name}.stale-{socket.gethostname()}-{os.getpid()}")
            try:
                os.rename(path, grave)  # exactly one worker wins the stale file
            except FileNotFoundError:
                continue
            if os.stat(grave).st_ino != st.st_ino:  # a fresh claim slipped in: put it back
                with contextlib.suppress(FileExistsError):
                    os.link(grave, path)
                os.unlink(grave)
                return None
            os.unlink(grave)
            _log(f"took over a stale claim {path.name} ({why})", verbose)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(_claim_record()) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return Claim(path, os.stat(path).st_ino)
    return None


def claim_path(zoo_dir, *parts) -> Path:
    """Where the claim of a unit lives.

    Args:
      zoo_dir: the zoo folder.
      *parts: the unit's path parts: ``("truth", task, member, "seed<k>")`` or
        ``("members", name)``.

    Returns:
      ``zoo_dir/.claims/<parts…>``.
    """
    return Path(zoo_dir) / CLAIMS_DIR / Path(*[str(p) for p in parts])


_meta_depth: dict[str, list] = {}
_meta_guard = threading.Lock()


@contextlib.contextmanager
def meta_lock(zoo_dir):
    """Context manager: serialise read-modify-writes of the manifest and the ground-truth aggregate
    across processes (a blocking ``flock`` on ``zoo/.pedjax-meta.lock``; re-entrant within a process).

    Args:
      zoo_dir: the zoo folder (created if missing).

    Yields:
      Nothing; the lock is held inside the block.
    """
    import fcntl

    zoo_dir = Path(zoo_dir)
    zoo_dir.mkdir(parents=True, exist_ok=True)
    key = str(zoo_dir.resolve())
    with _meta_guard:
        held = _meta_depth.get(key)
        if held is not None:
            held[1] += 1
    if held is not None:
        try:
            yield
        finally:
            with _meta_guard:
                held[1] -= 1
        return
    with open(zoo_dir / META_LOCK, "a+") as f:  # closing releases the flock
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            with _meta_guard:
                _meta_depth[key] = [f, 1]
            yield
        finally:
            with _meta_guard:
                _meta_depth.pop(key, None)


@contextlib.contextmanager
def shared_output_lock(directory, what: str):
    """Context manager: a sharded worker's hold on an output folder.

    A non-blocking ``flock(LOCK_SH)`` on the folder's ``.pedjax.lock``, which many workers share
    and an unsharded run's exclusive lock (:func:`pedjax.util.output_lock`) excludes, both ways,
    at once.

    Args:
      directory: the output folder (created if missing).
      what: its argument name in the error message.

    Yields:
      The folder's path.

    Raises:
      pedjax.util.OutputLocked: an unsharded run holds the folder.
    """
    import fcntl

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / LOCK_FILE, "a+") as f:  # closing releases the flock
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown process"
            raise OutputLocked(f"{what}: {d} is in use by an unsharded pedjax run ({holder}); wait for it to finish") from None
        yield d


def member_fingerprint(spec: MemberSpec, config: BuildConfig, source_sha1: str, parent_fp: str | None = None) -> str:
    """What a member's files depend on: the fingerprint that decides whether a build reuses it.

    Args:
      spec: the member's :class:`~pedjax.zoo.MemberSpec`.
      config: the :class:`~pedjax.zoo.BuildConfig` (its pretraining settings for ``spec`` and
        the source ranges).
      source_sha1: the source arrays' hash (:attr:`SourceData.sha1`).
      parent_fp: the parent's fingerprint, for a checkpoint member (``spec.parent``).

    Returns:
      A SHA-1 hex digest: of the spec, its objective, the pretraining settings, the source
      ranges and data, and the probe; for a checkpoint member, of the parent's fingerprint, the
      step and the spec.

    Raises:
      ValueError: an unknown pretraining method or option.
    """
    from ..models import ssl as ssl_mod

    objective = ssl_mod.get_objective(spec.method, **dict(spec.method_kwargs))
    if spec.parent is not None:  # a checkpoint of the parent's run: same run settings, a step
        return sha1_json({"parent": parent_fp, "at_step": spec.at_step, "spec": spec.as_dict()})
    return sha1_json({
        "spec": spec.as_dict(), "objective": objective.describe(),
        "pretrain": config.pretrain_config(spec).training_dict(), "ranges": config.ranges(),
        "source": source_sha1, "probe": "sklearn LogisticRegression C=1 on standardised features",
    })


@dataclass(frozen=True, eq=False)
class SourceData:
    """The source-split arrays a build uses (see :class:`~pedjax.zoo.BuildConfig`).

    Attributes:
      x_pretrain: the pretraining images [N, 28, 28, 1].
      y_pretrain: their labels [N].
      x_heldout: the held-out source images (source statistics, the probe's test set).
      y_heldout: their labels.
      probe_train: the linear probe's training images (the first of ``x_pretrain``).
      ranges: the config's index ranges (:meth:`~pedjax.zoo.BuildConfig.ranges`).
      sha1: the content hash of the four arrays.
    """

    x_pretrain: np.ndarray
    y_pretrain: np.ndarray
    x_heldout: np.ndarray
    y_heldout: np.ndarray
    probe_train: int
    ranges: dict
    sha1: str

    @classmethod
    def load(cls, config: BuildConfig, fashion_root=None) -> SourceData:
        """The source arrays of ``config`` from Fashion-MNIST (``fashion_root``: its folder);
        ``FileNotFoundError`` when it is not installed."""
        from ..data import SOURCE_RANGE, load_source

        x, y = load_source(fashion_root)
        r = config.ranges()
        pre = slice(r["pretrain"][0] - SOURCE_RANGE[0], r["pretrain"][1] - SOURCE_RANGE[0])
        held = slice(r["heldout"][0] - SOURCE_RANGE[0], r["heldout"][1] - SOURCE_RANGE[0])
        xp, yp, xh, yh = x[pre], y[pre], x[held], y[held]
        return cls(xp, yp, xh, yh, config.probe_train, r, sha1_arrays(xp, yp, xh, yh))


def _source_subset(spec: MemberSpec, source: SourceData) -> tuple[np.ndarray, np.ndarray, dict | None]:
    """The pretraining images of ``spec``: the whole pretraining part, or a class subset / its first
    ``source_n`` images (v2's "what it was pretrained on" members)."""
    x, y = source.x_pretrain, source.y_pretrain
    if spec.source_classes is None and spec.source_n is None:
        return x, y, None
    keep = np.arange(len(y))
    if spec.source_classes is not None:
        keep = keep[np.isin(y[keep], spec.source_classes)]
    if spec.source_n is not None:
        keep = keep[: spec.source_n]
    r = source.ranges["pretrain"]
    desc = {"images": int(keep.size), "classes": sorted(int(c) for c in np.unique(y[keep])),
            "from": f"fashion-mnist train[{r[0]}:{r[1]}]" + (f", classes {list(spec.source_classes)}" if spec.source_classes else "")
            + (f", first {spec.source_n}" if spec.source_n is not None else "")}
    return x[keep], y[keep], desc


def _finish_member(module, bb, config: BuildConfig, source: SourceData, record: dict, diverged: bool = False) -> dict:
    """Source statistics and linear probe of a member's backbone ``bb``; what :func:`add_member` stores."""
    from ..models import pretrain as pt

    feat = pt.feature_fn(module)
    F_held = feat(bb, source.x_heldout).astype(np.float64)
    n = source.probe_train
    probe = pt.linear_probe(feat(bb, source.x_pretrain[:n]), source.y_pretrain[:n], F_held, source.y_heldout)
    passed = bool(probe["accuracy"] >= config.sanity_bar and not diverged)
    r = source.ranges
    probe_rec = {
        "accuracy": round(float(probe["accuracy"]), 5), "train_accuracy": round(float(probe["train_accuracy"]), 5),
        "chance": 0.1, "bar": config.sanity_bar, "passed": passed,
        "train_set": f"fashion-mnist train[{r['probe_train'][0]}:{r['probe_train'][1]}]",
        "test_set": f"fashion-mnist train[{r['heldout'][0]}:{r['heldout'][1]}] (held out of pretraining)",
        "W": probe["W"], "b": probe["b"],
    }
    return {"params": bb, "source_mean": F_held.mean(axis=0), "source_std": F_held.std(axis=0), "probe": probe_rec,
            "record": record, "passed": passed}


SNAPSHOTS = "snapshots"


def snapshot_path(run_dir, step: int) -> Path:
    """Where the backbone of a pretraining run at ``step`` is kept (a v2 pretraining-amount member).

    Args:
      run_dir: the pretraining run's folder.
      step: the step.

    Returns:
      ``run_dir/snapshots/step<step, 7 digits>.msgpack``.
    """
    return Path(run_dir) / SNAPSHOTS / f"step{int(step):07d}.msgpack"


def _save_snapshots(run_dir: Path, module, objective, steps: Sequence[int], input_shape=(28, 28, 1)) -> list[int]:
    """Copy the backbone out of every orbax checkpoint of ``run_dir`` at one of ``steps`` whose snapshot
    is missing (the checkpoint's leaves are (params, opt state, extra, losses) flattened, params first)."""
    import jax
    import orbax.checkpoint as ocp

    from ..models import nets

    saved: list[int] = []
    want = {int(s) for s in steps if not snapshot_path(run_dir, s).is_file()}
    if not want:
        return saved
    like = None
    for ck in sorted((Path(run_dir) / "ckpt").glob("*/*")):
        if not (ck.name.isdigit() and int(ck.name) in want and (ck / "default").is_dir()):
            continue
        if like is None:
            bb_abs = nets._init_abstract(module, input_shape)
            leaves, treedef = jax.tree_util.tree_flatten(bb_abs)
            like = (len(leaves), treedef)
        k, treedef = like
        got = ocp.StandardCheckpointer().restore((ck / "default").resolve())
        bb = jax.tree_util.tree_unflatten(treedef, [np.asarray(got[f"{i:04d}"], np.float32) for i in range(k)])
        nets.save_params(snapshot_path(run_dir, int(ck.name)), bb)
        saved.append(int(ck.name))
    return saved


def pretrain_member(spec: MemberSpec, config: BuildConfig, run_dir, source: SourceData, *, progress: bool = True,
                    snapshot_steps: Sequence[int] = ()) -> dict:
    """Pretrain one member (resumable in ``run_dir``), then its source statistics and linear probe.

    Args:
      spec: the member's :class:`~pedjax.zoo.MemberSpec`.
      config: the :class:`~pedjax.zoo.BuildConfig`.
      run_dir: the pretraining run's folder (checkpoints; a run there resumes).
      source: the :class:`SourceData`.
      progress: show a progress bar.
      snapshot_steps: keep the backbone at these steps too (``run_dir/snapshots/``; each a
        multiple of the run's ``checkpoint_every`` below its steps): the pretraining-amount
        members that name this one as ``parent``.

    Returns:
      ``{"params", "source_mean", "source_std", "probe", "record", "passed"}`` — what
      :func:`~pedjax.zoo.add_member` stores, and whether the probe passed the sanity bar.

    Raises:
      ValueError: a bad snapshot step, or an unknown architecture or method.
      RuntimeError: a finished run in ``run_dir`` lacks a requested snapshot.
    """
    from ..models import pretrain as pt
    from ..models import ssl as ssl_mod

    t0 = time.time()
    module = create_module(spec.arch, spec.arch_kwargs)
    objective = ssl_mod.get_objective(spec.method, **dict(spec.method_kwargs))
    pcfg = config.pretrain_config(spec)
    bad = [s for s in snapshot_steps if s % pcfg.checkpoint_every or s >= pcfg.steps]
    if bad:
        raise ValueError(f"{spec.name}: snapshot steps {bad} must be multiples of checkpoint_every {pcfg.checkpoint_every} "
                         f"below the run's {pcfg.steps} steps")
    run_dir = Path(run_dir)
    x, y, subset = _source_subset(spec, source)
    on_chunk = None
    if snapshot_steps:
        _save_snapshots(run_dir, module, objective, snapshot_steps)  # a run killed right after such a checkpoint

        def on_chunk(step):
            if step in snapshot_steps:
                _save_snapshots(run_dir, module, objective, [step])

    res = pt.pretrain(module, objective, x, y, run_dir, config=pcfg, name=spec.name, progress=progress, on_chunk=on_chunk)
    missing = [s for s in snapshot_steps if not snapshot_path(run_dir, s).is_file()]
    if missing:
        raise RuntimeError(f"{spec.name}: the run in {run_dir} finished without the snapshots at steps {missing} "
                           f"(it was built before they were asked for); delete {run_dir} and build again")
    bb = res.params["backbone"]
    info = dict(res.info)
    record = {k: info.get(k) for k in ("config", "objective", "loss_curve", "final_loss", "diverged", "wall_seconds", "fingerprint", "n_images", "backend")}
    if subset is not None:
        record["source_subset"] = subset
    out = _finish_member(module, bb, config, source, record, bool(res.info.get("diverged")))
    record["wall_seconds_member"] = round(time.time() - t0, 2)
    return out


def snapshot_member(spec: MemberSpec, parent_record: dict, config: BuildConfig, parent_run_dir, source: SourceData) -> dict:
    """A pretraining-amount member: the parent's run at ``spec.at_step`` (its saved snapshot), then
    source statistics and linear probe. Nothing is re-trained.

    Args:
      spec: the member's :class:`~pedjax.zoo.MemberSpec` (with ``parent`` and ``at_step``).
      parent_record: the parent's ``pretrain`` record from the manifest (loss curve, settings).
      config: the :class:`~pedjax.zoo.BuildConfig`.
      parent_run_dir: the parent's pretraining run folder.
      source: the :class:`SourceData`.

    Returns:
      As :func:`pretrain_member`.

    Raises:
      FileNotFoundError: the parent's run has no snapshot at ``spec.at_step``.
      ValueError: the snapshot does not fit the architecture.
    """
    from ..models import nets

    t0 = time.time()
    path = snapshot_path(parent_run_dir, int(spec.at_step or 0))
    if not path.is_file():
        raise FileNotFoundError(f"{spec.name}: no snapshot {path} of {spec.parent}'s run; delete {parent_run_dir} and "
                                f"build {spec.parent} again (with this member in the spec) to take it")
    module = create_module(spec.arch, spec.arch_kwargs)
    bb = nets.load_params(path)
    nets.check_params(module, bb)
    curve = [pt for pt in (parent_record.get("loss_curve") or []) if pt[0] <= spec.at_step]
    record = {"snapshot_of": spec.parent, "at_step": spec.at_step, "parent_fingerprint": parent_record.get("fingerprint"),
              "config": parent_record.get("config"), "objective": parent_record.get("objective"), "loss_curve": curve,
              "final_loss": curve[-1][1] if curve else None, "diverged": False, "wall_seconds": 0.0,
              "n_images": parent_record.get("n_images"), "backend": parent_record.get("backend")}
    out = _finish_member(module, bb, config, source, record)
    record["wall_seconds_member"] = round(time.time() - t0, 2)
    return out


@locks_output("zoo_dir", "work_dir")
def build_members(zoo_dir, work_dir=None, members: Sequence[MemberSpec] = V2_MEMBERS, config: BuildConfig = V3_CONFIG,
                  *, progress: bool = True, verbose: bool = True, fashion_root=None, on_member=None,
                  order: Sequence[str] | None = None) -> dict:
    """Pretrain every member that the zoo at ``zoo_dir`` lacks (or holds with another fingerprint).

    Each member: pretrain (resumable, under ``work_dir/pretrain/<name>``), source statistics and
    linear probe on the held-out source set, write its files, update the manifest atomically
    (under :func:`meta_lock`). Holds the output locks of ``zoo_dir`` and ``work_dir``.

    Args:
      zoo_dir: the zoo folder.
      work_dir: the build's work folder (default ``runs/zoo-v2-build``).
      members: the member specs (unique names; a checkpoint member after its parent).
      config: the :class:`~pedjax.zoo.BuildConfig`.
      progress: progress bars.
      verbose: print one line per member.
      fashion_root: folder of the Fashion-MNIST files.
      on_member: ``on_member(name)`` called after each member built.
      order: keep the manifest's members in this order (a sharded build adds members in the
        order its workers finish them).

    Returns:
      ``{"built": [...], "skipped": [...], "below_bar": [...], "wall_seconds"}``.

    Raises:
      ValueError: duplicate names, a checkpoint member whose parent is not an earlier
        pretrained member with its architecture, method and seed, or a bad spec.
      pedjax.util.OutputLocked: another run holds ``zoo_dir`` or ``work_dir``.
      FileNotFoundError: Fashion-MNIST is not installed.
    """
    names = [s.name for s in members]
    if len(set(names)) != len(names):
        raise ValueError(f"members: duplicate names in {names}")
    zoo_dir = Path(zoo_dir)
    work = Path(work_dir) if work_dir is not None else DEFAULT_WORK
    source = SourceData.load(config, fashion_root)
    existing = {}
    if (zoo_dir / MANIFEST).is_file():
        existing = {e["name"]: e for e in read_manifest(zoo_dir)["members"]}
    report: dict = {"built": [], "skipped": [], "below_bar": []}
    t_all = time.time()
    by_name = {s.name: s for s in members}
    snaps: dict[str, list[int]] = {}
    for s in members:
        if s.parent is not None:
            par = by_name.get(s.parent)
            if par is None or names.index(s.parent) > names.index(s.name) or par.parent is not None:
                raise ValueError(f"members: {s.name} is a checkpoint of {s.parent!r}, which must be an earlier, pretrained member of the spec")
            if (s.arch, s.as_dict()["arch_kwargs"], s.method, s.seed) != (par.arch, par.as_dict()["arch_kwargs"], par.method, par.seed):
                raise ValueError(f"members: {s.name} must name the architecture, method and seed of its parent {s.parent}")
            snaps.setdefault(s.parent, []).append(int(s.at_step or 0))
    fps: dict[str, str] = {}
    for i, spec in enumerate(members, 1):
        fp = member_fingerprint(spec, config, source.sha1, fps.get(spec.parent or ""))
        fps[spec.name] = fp
        e = existing.get(spec.name)
        # a parent whose checkpoint members still need a snapshot that is not on disk runs again
        # (its finished run then says how to take them: delete the run folder)
        need_snaps = [c for c in members if c.parent == spec.name and c.name not in existing
                      and not snapshot_path(work / "pretrain" / spec.name, int(c.at_step or 0)).is_file()]
        if e is not None and e.get("fingerprint") == fp and (zoo_dir / e["params"]["path"]).exists() and not need_snaps:
            report["skipped"].append(spec.name)
            if not e["linear_probe"].get("passed", True):
                report["below_bar"].append(spec.name)
            _log(f"[{i}/{len(members)}] {spec.name}: in the zoo (fingerprint {fp[:8]}), skipped", verbose)
            continue
        t0 = time.time()
        if spec.parent is not None:
            par_entry = {e["name"]: e for e in read_manifest(zoo_dir)["members"]}.get(spec.parent, {})
            out = snapshot_member(spec, par_entry.get("pretrain", {}), config, work / "pretrain" / spec.parent, source)
        else:
            out = pretrain_member(spec, config, work / "pretrain" / spec.name, source, progress=progress,
                                  snapshot_steps=sorted(snaps.get(spec.name, [])))
        with meta_lock(zoo_dir):
            add_member(zoo_dir, spec, out["params"], source_mean=out["source_mean"], source_std=out["source_std"],
                       probe=out["probe"], record=out["record"], fingerprint=fp, params_format=config.params_format, config=config)
            if order is not None:
                _sort_manifest(zoo_dir, order)
        report["built"].append(spec.name)
        if not out["passed"]:
            report["below_bar"].append(spec.name)
        flag = "ok" if out["passed"] else f"BELOW THE SANITY BAR {config.sanity_bar}"
        _log(f"[{i}/{len(members)}] {spec.name}: linear probe {out['probe']['accuracy']:.3f} on the held-out source set "
             f"(chance 0.1; {flag}); final loss {out['record'].get('final_loss')}; {time.time() - t0:.0f} s", verbose)
        if on_member is not None:
            on_member(spec.name)
    report["wall_seconds"] = round(time.time() - t_all, 2)
    return report


def _sort_manifest(zoo_dir, order: Sequence[str]) -> None:
    """Put the manifest's members in ``order`` (members not in it after, as they were)."""
    mpath = Path(zoo_dir) / MANIFEST
    manifest = read_manifest(zoo_dir)
    pos = {n: i for i, n in enumerate(order)}
    members = manifest["members"]
    ranked = sorted(range(len(members)), key=lambda i: (pos.get(members[i]["name"], len(pos)), i))
    if ranked != list(range(len(members))):
        manifest["members"] = [members[i] for i in ranked]
        atomic_write_json(mpath, manifest)


def _member_groups(members: Sequence[MemberSpec]) -> list[list[MemberSpec]]:
    """Pretraining runs: each member that is not a checkpoint, with the checkpoints of its run."""
    return [[s] + [c for c in members if c.parent == s.name] for s in members if s.parent is None]


def _members_done(zoo_dir, group: Sequence[MemberSpec], config: BuildConfig, source_sha1: str) -> bool:
    """Whether every member of ``group`` is in the manifest with its current fingerprint and files."""
    if not (Path(zoo_dir) / MANIFEST).is_file():
        return False
    existing = {e["name"]: e for e in read_manifest(zoo_dir)["members"]}
    fps: dict[str, str] = {}
    for spec in group:
        fps[spec.name] = fp = member_fingerprint(spec, config, source_sha1, fps.get(spec.parent or ""))
        e = existing.get(spec.name)
        if e is None or e.get("fingerprint") != fp or not (Path(zoo_dir) / e["params"]["path"]).exists():
            return False
    return True


def build_members_sharded(zoo_dir, work_dir, members: Sequence[MemberSpec], config: BuildConfig, shard: Shard, *,
                          progress: bool = True, verbose: bool = True, fashion_root=None) -> dict:
    """The members of a sharded build.

    Every worker claims whichever pretraining run (a member and its checkpoint members) is
    neither done nor claimed by a live worker, builds it, and waits until every member is in the
    manifest (taking over a run whose claim goes stale). The manifest keeps the spec's order
    whatever the order of completion. Call it holding the folders shared
    (:func:`shared_output_lock`).

    Args:
      zoo_dir: the zoo folder.
      work_dir: the build's work folder (``None``: ``runs/zoo-v2-build``).
      members: the member specs.
      config: the :class:`~pedjax.zoo.BuildConfig`.
      shard: this worker's :class:`Shard` (its ``claim_timeout``).
      progress: progress bars.
      verbose: print progress lines.
      fashion_root: folder of the Fashion-MNIST files.

    Returns:
      The report of :func:`build_members`, over the whole spec.

    Raises:
      ValueError: as :func:`build_members`.
    """
    work = Path(work_dir) if work_dir is not None else DEFAULT_WORK
    source_sha1 = SourceData.load(config, fashion_root).sha1
    order = [s.name for s in members]
    report: dict = {"built": [], "skipped": [], "below_bar": []}
    t_all, waited = time.time(), False
    while True:
        pending = [g for g in _member_groups(members) if not _members_done(zoo_dir, g, config, source_sha1)]
        if not pending:
            break
        progressed = False
        for group in pending:
            claim = try_claim(claim_path(zoo_dir, "members", group[0].name), shard.claim_timeout, verbose)
            if claim is None:
                continue
            with claim:
                if _members_done(zoo_dir, group, config, source_sha1):
                    continue
                rep = build_members.__wrapped__(zoo_dir, work, group, config, progress=progress, verbose=verbose,
                                                fashion_root=fashion_root, order=order)
                for k in ("built", "skipped", "below_bar"):
                    report[k] += rep[k]
            progressed = True
        if not progressed:
            if not waited:
                _log(f"shard {shard.index}/{shard.count}: waiting for other workers' pretraining runs "
                     f"({', '.join(g[0].name for g in pending)})", verbose)
                waited = True
            time.sleep(MEMBER_POLL)
    entries = {e["name"]: e for e in read_manifest(zoo_dir)["members"]}
    report["skipped"] = [n for n in order if n not in report["built"]]
    report["below_bar"] = [n for n in order if not entries[n]["linear_probe"].get("passed", True)]
    report["wall_seconds"] = round(time.time() - t_all, 2)
    return report


def _truth_key(member_entry: dict, task: str, ft_config, fashion_root=None) -> str:
    return sha1_json({
        "params": member_entry["params"]["sha1"], "arch": member_entry["arch"], "arch_kwargs": member_entry.get("arch_kwargs", {}),
        "task": task, "data": task_data_sha1(task, fashion_root), "config": ft_config.training_dict(), "seeds": list(ft_config.seeds),
    })


def _new_truth(config: BuildConfig) -> dict:
    ftc = config.finetune_config()
    return {
        "format": TRUTH_FORMAT,
        "version": VERSION,
        "metric": ftc.metric,
        "score_definition": f"best-of-grid test {ftc.metric} per seed, averaged over seeds (pedjax.models.finetune)",
        "datasets": {},
        "std": {},
        "runs": {},
        "provenance": {
            "finetune": {**ftc.training_dict(), "seeds": list(ftc.seeds), "grid": {"lr": list(ftc.lrs), "wd": list(ftc.wds)}},
        },
    }


@locks_output("zoo_dir", "work_dir")
def build_truth(zoo_dir, work_dir=None, config: BuildConfig = V1_CONFIG, *, tasks: Sequence[str] | None = None,
                members: Sequence[str] | None = None, progress: bool = True, verbose: bool = True, fashion_root=None,
                on_pair=None) -> dict:
    """Fine-tune every (member, task) pair the ground-truth table lacks; update it atomically after each.

    The first zoo's ground truth (one entry per pair, every seed in one sweep). Task-major order,
    so members sharing an architecture reuse one compiled trainer per task. Each sweep resumes
    through :func:`pedjax.models.finetune.finetune` (``work_dir/truth/<member>/<task>``). Holds
    the output locks of ``zoo_dir`` and ``work_dir``.

    Args:
      zoo_dir: the zoo folder.
      work_dir: the work folder (default ``runs/zoo-build``).
      config: the :class:`~pedjax.zoo.BuildConfig` (its fine-tuning settings).
      tasks: the tasks (default ``config.tasks``).
      members: only these members (default all).
      progress: progress bars.
      verbose: print one line per pair.
      fashion_root: folder of the Fashion-MNIST files.
      on_pair: ``on_pair(member, task)`` called after each pair fine-tuned.

    Returns:
      The table (also written to ``zoo_dir/ground_truth.json``).

    Raises:
      ValueError: an existing ``ground_truth.json`` that is not a pedjax table, or a bad zoo or task.
      FileNotFoundError: a task's data is not installed.
      pedjax.util.OutputLocked: another run holds ``zoo_dir`` or ``work_dir``.
    """
    from ..models import finetune as ft

    zoo = load_zoo(zoo_dir, members)
    ftc = config.finetune_config()
    tasks = tuple(tasks) if tasks is not None else config.tasks
    work = Path(work_dir) if work_dir is not None else V1_WORK
    path = Path(zoo_dir) / TRUTH_FILE
    table = json.loads(path.read_text()) if path.is_file() else _new_truth(config)
    if table.get("format") != TRUTH_FORMAT:
        raise ValueError(f"zoo: {path} is not a pedjax ground-truth table")
    if table["provenance"].get("finetune", {}).get("steps") not in (None, ftc.steps):
        _log(f"note: {path} was made with other fine-tuning settings; pairs are recomputed as needed", verbose)
    table["provenance"]["finetune"] = _new_truth(config)["provenance"]["finetune"]
    pairs = [(t, m) for t in tasks for m in zoo]
    t_all = time.time()
    done_now = 0
    for i, (task, m) in enumerate(pairs, 1):
        key = _truth_key(m.entry, task, ftc, fashion_root)
        run = table["runs"].get(task, {}).get(m.name)
        if run is not None and run.get("key") == key and m.name in table["datasets"].get(task, {}):
            _log(f"[{i}/{len(pairs)}] {m.name} on {task}: {table['datasets'][task][m.name]:.4f} (done)", verbose)
            continue
        t0 = time.time()
        res = ft.finetune(m.module, task, work / "truth" / m.name / task, params=m.params, config=ftc,
                          model_name=m.name, progress=progress, fashion_root=fashion_root)
        table["datasets"].setdefault(task, {})[m.name] = res["score"]
        table["std"].setdefault(task, {})[m.name] = res["score_std"]
        table["runs"].setdefault(task, {})[m.name] = {
            "key": key, "fingerprint": res["provenance"]["fingerprint"], "params_sha1": m.entry["params"]["sha1"],
            "best_of_mean_grid": res["best_of_mean_grid"], "per_seed_best": [s["best"] for s in res["per_seed"]],
            "wall_seconds": res["provenance"]["wall_seconds"], "date": res["provenance"]["date"],
            "n_train": res["provenance"]["task"]["n_train"], "n_test": res["provenance"]["task"]["n_test"],
            "data_sha1": res["provenance"]["task"]["data_sha1"],
        }
        prov = table["provenance"]
        prov.update({
            "updated": _now(), "git_commit": git_commit(), "jax_version": _jax_version(), "backend": _backend(),
            "machine": f"{platform.machine()} {os.cpu_count()} CPU(s), {platform.system()}", "dtype": "float32",
            "zoo_members": [{"name": mm.name, "params_sha1": mm.entry["params"]["sha1"]} for mm in zoo],
        })
        prov["total_wall_seconds"] = round(sum(r["wall_seconds"] for t in table["runs"].values() for r in t.values()), 2)
        atomic_write_json(path, table)
        done_now += 1
        _log(f"[{i}/{len(pairs)}] {m.name} on {task}: {res['score']:.4f} ± {res['score_std']:.4f} ({time.time() - t0:.0f} s)", verbose)
        if on_pair is not None:
            on_pair(m.name, task)
    _log(f"ground truth: {done_now} pair(s) fine-tuned in {time.time() - t_all:.0f} s -> {path}", verbose)
    return table


UNITS_DIR = "truth_units"
UNIT_FORMAT = "pedjax-zoo-truth-unit"


def unit_path(zoo_dir, task: str, member: str, seed: int) -> Path:
    """The file of one finished ground-truth unit (member, task, seed), inside the zoo folder.

    Args:
      zoo_dir: the zoo folder.
      task: the task.
      member: the member.
      seed: the fine-tuning seed.

    Returns:
      ``zoo_dir/truth_units/<task>/<member>/seed<seed>.json``.
    """
    return Path(zoo_dir) / UNITS_DIR / task / member / f"seed{int(seed)}.json"


def _unit_key(member_entry: dict, task: str, ft_config, seed: int, fashion_root=None) -> str:
    """What a unit's result depends on: the member's parameters and architecture, the task's arrays
    (a changed task definition, such as a larger test split, invalidates the unit), the
    fine-tuning settings and the seed."""
    return sha1_json({
        "params": member_entry["params"]["sha1"], "arch": member_entry["arch"], "arch_kwargs": member_entry.get("arch_kwargs", {}),
        "task": task, "data": task_data_sha1(task, fashion_root), "config": ft_config.training_dict(), "seed": int(seed),
    })


def _curve_recorder(run_dir: Path, seed: int, key: str):
    """``on_chunk(seed, step, losses)`` for :func:`pedjax.models.finetune.finetune`: after each
    chunk, the grid's training loss at that step is appended to ``run_dir/curves/seed<k>.json``
    (kept across a kill; training is deterministic, so a restarted unit reproduces the same points)."""
    path = run_dir / "curves" / f"seed{seed}.json"

    def load() -> dict:
        if path.is_file():
            d = json.loads(path.read_text())
            if d.get("key") == key:
                return d
        return {"key": key, "steps": [], "loss": []}

    def on_chunk(s, step, losses):
        d = load()
        if step not in d["steps"]:
            d["steps"].append(int(step))
            d["loss"].append([float(v) if np.isfinite(v) else None for v in np.asarray(losses, dtype=float)])
            atomic_write_json(path, d)

    return on_chunk, load


@locks_output("zoo_dir", "work_dir")
def build_truth_units(zoo_dir, work_dir=None, config: BuildConfig = V3_CONFIG, *, tasks: Sequence[str] | None = None,
                      members: Sequence[str] | None = None, progress: bool = True, verbose: bool = True, fashion_root=None,
                      on_unit=None, max_units: int | None = None, shard: Shard | None = None) -> dict:
    """The v2 ground truth, one (member, task, seed) unit at a time.

    Each unit fine-tunes one member on one task with one seed over the whole lr × wd grid
    (:func:`pedjax.models.finetune.finetune`, resumable from orbax checkpoints under
    ``work_dir/truth/<member>/<task>/seed<k>``) and writes ``zoo_dir/truth_units/<task>/<member>/seed<k>.json``:
    per-configuration test accuracies, the loss curves, the key (member parameters, task, settings,
    seed). A unit whose file holds the current key is skipped, so a killed build loses at most the
    unit it was running (and that one resumes from its last checkpoint). After every unit
    ``ground_truth.json`` is re-aggregated from the unit files (:func:`aggregate_units`).
    Task-major order: the members sharing an architecture reuse one compiled trainer per task.
    Holds the output locks of ``zoo_dir`` and ``work_dir``.

    Args:
      zoo_dir: the zoo folder.
      work_dir: the work folder (default ``runs/zoo-v2-build``).
      config: the :class:`~pedjax.zoo.BuildConfig` (its fine-tuning settings and seeds).
      tasks: the tasks (default ``config.tasks``).
      members: only these members (default all).
      progress: progress bars.
      verbose: print one line per unit.
      fashion_root: folder of the Fashion-MNIST files.
      on_unit: ``on_unit(member, task, seed)`` called after each unit fine-tuned.
      max_units: stop after this many newly fine-tuned units (one sitting's share of the
        build); ``None``: no limit.
      shard: build only the units :meth:`Shard.owns`, each under a claim (:func:`try_claim`; a
        unit claimed by a live worker is left to it and counted in the log). Call the
        undecorated function (``build_truth_units.__wrapped__``) holding the folders shared, as
        :func:`build` does.

    Returns:
      The aggregated table (also written to ``zoo_dir/ground_truth.json``).

    Raises:
      ValueError: a bad zoo or task.
      FileNotFoundError: a task's data is not installed.
      pedjax.util.OutputLocked: another run holds ``zoo_dir`` or ``work_dir``.
    """
    zoo = load_zoo(zoo_dir, members)
    ftc = config.finetune_config()
    tasks = tuple(tasks) if tasks is not None else config.tasks
    work = Path(work_dir) if work_dir is not None else DEFAULT_WORK
    units = [(t, m, seed) for t in tasks for m in zoo for seed in ftc.seeds]
    if shard is not None:
        units = [(t, m, seed) for t, m, seed in units if shard.owns(t, m.name, seed)]
    t_all = time.time()
    done_now, held_elsewhere = 0, []

    def done(path, key) -> bool:
        if path.is_file():
            try:
                return json.loads(path.read_text()).get("key") == key
            except json.JSONDecodeError:
                pass  # a torn file (never written by this code: writes are atomic); redo the unit
        return False

    for i, (task, m, seed) in enumerate(units, 1):
        if max_units is not None and done_now >= max_units:
            _log(f"stopping after {done_now} unit(s) (--max-units); rerun to continue", verbose)
            break
        key = _unit_key(m.entry, task, ftc, seed, fashion_root)
        path = unit_path(zoo_dir, task, m.name, seed)
        if done(path, key):
            continue
        claim = None
        if shard is not None:
            claim = try_claim(claim_path(zoo_dir, "truth", task, m.name, f"seed{seed}"), shard.claim_timeout, verbose)
            if claim is None:
                held_elsewhere.append(f"{m.name} on {task}, seed {seed}")
                continue
            if done(path, key):  # finished by another worker between the two looks
                claim.release()
                continue
        try:
            _run_unit(zoo_dir, work, zoo, config, ftc, task, m, seed, key, path, tasks, progress, fashion_root)
        finally:
            if claim is not None:
                claim.release()
        done_now += 1
        u = json.loads(path.read_text())
        _log(f"[{i}/{len(units)}] {m.name} on {task}, seed {seed}: {u['score']:.4f} ({u['wall_seconds']:.0f} s)", verbose)
        if on_unit is not None:
            on_unit(m.name, task, seed)
    if held_elsewhere:
        _log(f"{len(held_elsewhere)} unit(s) claimed by live workers, left to them: {', '.join(held_elsewhere[:5])}"
             f"{' …' if len(held_elsewhere) > 5 else ''}", verbose)
    table = aggregate_units(zoo_dir, config, tasks=tasks, members=[mm.name for mm in zoo], fashion_root=fashion_root)
    who = f"shard {shard.index}/{shard.count}: " if shard is not None else ""
    _log(f"ground truth: {who}{done_now} unit(s) fine-tuned in {time.time() - t_all:.0f} s; "
         f"{table['provenance']['units_done']}/{table['provenance']['units_total']} done -> {Path(zoo_dir) / TRUTH_FILE}", verbose)
    return table


def _run_unit(zoo_dir, work: Path, zoo, config: BuildConfig, ftc, task: str, m, seed: int, key: str, path: Path,
              tasks, progress: bool, fashion_root) -> None:
    """Fine-tune one unit, write its file atomically, re-aggregate ``ground_truth.json``."""
    from ..models import finetune as ft

    t0 = time.time()
    run_dir = work / "truth" / m.name / task / f"seed{seed}"
    on_chunk, load_curve = _curve_recorder(run_dir, seed, key)
    res = ft.finetune(m.module, task, run_dir, params=m.params, config=dataclasses.replace(ftc, seeds=(seed,)),
                      model_name=m.name, progress=progress, fashion_root=fashion_root, on_chunk=on_chunk)
    rec = res["per_seed"][0]
    curve = load_curve()
    final = np.asarray(rec["final_train_loss"], dtype=float).reshape(-1)
    steps, loss = list(curve["steps"]), list(curve["loss"])
    if ftc.steps not in steps:  # an on_chunk-less path (or a curve file from before it recorded the last chunk)
        steps.append(ftc.steps)
        loss.append([float(v) if np.isfinite(v) else None for v in final])
    prov = res["provenance"]
    unit = {
        "format": UNIT_FORMAT, "key": key, "member": m.name, "task": task, "seed": int(seed),
        "params_sha1": m.entry["params"]["sha1"], "metric": ftc.metric, "score": rec["score"], "best": rec["best"],
        "grid": {"lr": list(ftc.lrs), "wd": list(ftc.wds), "order": "lr-major"},
        "accuracy": rec["accuracy"], "mean_class_accuracy": rec["mean_class_accuracy"],
        "loss_curve": {"steps": steps, "loss": loss,
                       "what": "training loss of the batch at the last step of each chunk, per grid configuration (lr-major)"},
        "diverged": rec["diverged"], "resumed_from_step": rec["resumed_from_step"],
        "finetune": {**ftc.training_dict(), "seed": int(seed)},
        "n_train": prov["task"]["n_train"], "n_test": prov["task"]["n_test"], "data_sha1": prov["task"]["data_sha1"],
        "fingerprint": prov["fingerprint"], "wall_seconds": round(time.time() - t0, 2), "date": _now(),
        "git_commit": git_commit(), "jax_version": _jax_version(), "backend": _backend(),
        "machine": f"{platform.machine()} {os.cpu_count()} CPU(s), {platform.system()}",
    }
    atomic_write_json(path, unit)
    aggregate_units(zoo_dir, config, tasks=tasks, members=[mm.name for mm in zoo], fashion_root=fashion_root)


_UNIT_CACHE: dict = {}


def _read_unit(path: Path) -> dict | None:
    """A unit file's content, re-read only when its mtime changed (the aggregate is rebuilt after
    every unit: 891 files in the v2 build)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        _UNIT_CACHE.pop(path, None)
        return None
    hit = _UNIT_CACHE.get(path)
    if hit is not None and hit[0] == (st.st_mtime_ns, st.st_size):
        return hit[1]
    try:
        u = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    _UNIT_CACHE[path] = ((st.st_mtime_ns, st.st_size), u)
    return u


def aggregate_units(zoo_dir, config: BuildConfig, *, tasks: Sequence[str] | None = None, members: Sequence[str] | None = None,
                    fashion_root=None) -> dict:
    """``ground_truth.json`` from the unit files whose key matches the zoo's current members and the settings.

    Written atomically, reading the unit files and writing the table under :func:`meta_lock`
    (so, of concurrent workers, the last to aggregate has seen every unit written before it).

    Args:
      zoo_dir: the zoo folder (with its manifest).
      config: the :class:`~pedjax.zoo.BuildConfig` (its fine-tuning settings and seeds).
      tasks: the tasks (default ``config.tasks``).
      members: the members (default every manifest member).
      fashion_root: folder of the Fashion-MNIST files (the units' keys hash the task data).

    Returns:
      The table: ``datasets[task][member]`` (mean over seeds of the best-of-grid accuracy, only
      for pairs with every seed done), ``std``, ``per_seed[task][member]`` (best-of-grid
      accuracy per seed, in ``seeds`` order, ``null`` where missing: the noise ceiling's input),
      ``curves[task][member]`` (per seed: the loss curve of its best configuration), ``runs``
      and ``provenance`` (units done and in all).

    Raises:
      FileNotFoundError: no manifest, or a task's data is not installed.
      ValueError: an invalid manifest.
    """
    with meta_lock(zoo_dir):
        return _aggregate_units(zoo_dir, config, tasks=tasks, members=members, fashion_root=fashion_root)


def _aggregate_units(zoo_dir, config: BuildConfig, *, tasks=None, members=None, fashion_root=None) -> dict:
    zoo_dir = Path(zoo_dir)
    manifest = {e["name"]: e for e in read_manifest(zoo_dir)["members"]}
    names = list(members) if members is not None else list(manifest)
    ftc = config.finetune_config()
    tasks = tuple(tasks) if tasks is not None else config.tasks
    table = _new_truth(config)
    table["score_definition"] = f"best-of-grid test {ftc.metric} per seed, averaged over seeds; one file per (member, task, seed) in {UNITS_DIR}/"
    table["per_seed"], table["curves"], table["seeds"] = {}, {}, list(ftc.seeds)
    done, total, wall = 0, 0, 0.0
    for task in tasks:
        for name in names:
            entry = manifest.get(name)
            per: list = []
            curves: list = []
            units: list = []
            for seed in ftc.seeds:
                total += 1
                u = _read_unit(unit_path(zoo_dir, task, name, seed))
                if u is None or entry is None or u.get("key") != _unit_key(entry, task, ftc, seed, fashion_root):
                    per.append(None)
                    curves.append(None)
                    continue
                done += 1
                wall += float(u.get("wall_seconds", 0.0))
                per.append(u["score"])
                b = u["best"]["index"]
                curves.append({"steps": u["loss_curve"]["steps"], "loss": [row[b] for row in u["loss_curve"]["loss"]],
                               "lr": u["best"]["lr"], "wd": u["best"]["wd"]})
                units.append(u)
            table["per_seed"].setdefault(task, {})[name] = per
            table["curves"].setdefault(task, {})[name] = curves
            if entry is not None and units and all(v is not None for v in per):
                table["datasets"].setdefault(task, {})[name] = float(np.mean(per))
                table["std"].setdefault(task, {})[name] = float(np.std(per))
                table["runs"].setdefault(task, {})[name] = {
                    "params_sha1": entry["params"]["sha1"], "per_seed_best": [u["best"] for u in units],
                    "wall_seconds": round(sum(float(u["wall_seconds"]) for u in units), 2),
                    "n_train": units[0]["n_train"], "n_test": units[0]["n_test"], "data_sha1": units[0]["data_sha1"],
                }
    table["provenance"].update({
        "updated": _now(), "units_dir": UNITS_DIR, "units_done": done, "units_total": total, "complete": done == total,
        "total_wall_seconds": round(wall, 2), "dtype": "float32",
        "zoo_members": [{"name": n, "params_sha1": manifest[n]["params"]["sha1"]} for n in names if n in manifest],
    })
    atomic_write_json(zoo_dir / TRUTH_FILE, table)
    return table


def _jax_version() -> str:
    import jax

    return jax.__version__


def _backend() -> str:
    import jax

    return jax.default_backend()


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPU(s), {platform.system()}"


def record_build(zoo_dir) -> dict:
    """Write the build's cost into the manifest (``manifest["build"]``), under :func:`meta_lock`.

    Args:
      zoo_dir: the zoo folder.

    Returns:
      The record: pretraining wall seconds (the members' ``pretrain.wall_seconds_member``),
      ground-truth wall seconds (the finished units', from ``ground_truth.json``), their sum,
      how many units are done, whether the build is complete, and the machine.

    Raises:
      FileNotFoundError: the zoo has no manifest.
      ValueError: an invalid manifest.
    """
    with meta_lock(zoo_dir):
        return _record_build(Path(zoo_dir))


def _record_build(zoo_dir: Path) -> dict:
    mpath = zoo_dir / MANIFEST
    manifest = read_manifest(zoo_dir)
    pre = sum(float(e.get("pretrain", {}).get("wall_seconds_member") or 0.0) for e in manifest["members"])
    truth = {}
    if (zoo_dir / TRUTH_FILE).is_file():
        truth = json.loads((zoo_dir / TRUTH_FILE).read_text()).get("provenance", {})
    t_truth = float(truth.get("total_wall_seconds") or 0.0)
    done, total = truth.get("units_done"), truth.get("units_total")
    rec = {
        "pretrain_seconds": round(pre, 1), "truth_seconds": round(t_truth, 1), "total_seconds": round(pre + t_truth, 1),
        "total_hours": round((pre + t_truth) / 3600.0, 2), "members": len(manifest["members"]),
        "truth_units_done": done, "truth_units_total": total,
        "complete": (done == total) if total else None,
        "machine": _machine(), "backend": _backend(), "jax_version": _jax_version(), "updated": _now(),
        "what": "sum of the wall times recorded per member and per ground-truth unit (compilation included; "
                "sessions in between not counted); rerun `pedjax zoo build` to refresh",
    }
    manifest["build"] = rec
    atomic_write_json(mpath, manifest)
    return rec


def build(zoo_dir=None, work_dir=None, members: Sequence[MemberSpec] = V2_MEMBERS, config: BuildConfig = V3_CONFIG,
          *, truth: bool = True, pretrain: bool = True, progress: bool = True, verbose: bool = True, fashion_root=None,
          max_units: int | None = None, shard: Shard | None = None) -> dict:
    """Build (or finish building) a zoo and its ground truth.

    :func:`build_members`, then :func:`build_truth_units` (``config.truth_units``) or
    :func:`build_truth`, then :func:`record_build`.

    Args:
      zoo_dir: the zoo folder (default: the shipped zoo's, ``pedjax/assets/zoo``).
      work_dir: the work folder (default per builder: ``runs/zoo-v2-build``, or ``runs/zoo-build``
        for :func:`build_truth`).
      members: the member specs (default :data:`~pedjax.zoo.V2_MEMBERS`).
      config: the :class:`~pedjax.zoo.BuildConfig` (default :data:`~pedjax.zoo.V3_CONFIG`, the shipped
        zoo's spec: v2's members and protocol on the v3 tasks).
      truth: build the ground truth.
      pretrain: build the members.
      progress: progress bars.
      verbose: print progress lines.
      fashion_root: folder of the Fashion-MNIST files.
      max_units: stop the unit-by-unit ground truth after this many new units.
      shard: one worker of a sharded build (see :class:`Shard`; unit-by-unit ground truth only):
        the folders are held shared, members are claimed run by run
        (:func:`build_members_sharded`), and the worker's share of the ground-truth units is
        claimed unit by unit.

    Returns:
      ``{"members": report, "truth": table, "build": cost record}`` (the parts that ran).

    Raises:
      ValueError: ``shard`` without ``config.truth_units``, or a bad spec.
      pedjax.util.OutputLocked: another run holds a folder this one writes.
      FileNotFoundError: Fashion-MNIST (or a task's data) is not installed.
    """
    zoo_dir = Path(zoo_dir) if zoo_dir is not None else DEFAULT_ZOO
    if shard is not None:
        if not config.truth_units:
            raise ValueError("shard: a sharded build needs the unit-by-unit ground truth (not the --v1 spec)")
        work = Path(work_dir) if work_dir is not None else DEFAULT_WORK
        with shared_output_lock(zoo_dir, "zoo_dir"), shared_output_lock(work, "work_dir"):
            out: dict = {}
            if pretrain:
                out["members"] = build_members_sharded(zoo_dir, work, members, config, shard, progress=progress, verbose=verbose,
                                                       fashion_root=fashion_root)
            if truth:
                out["truth"] = build_truth_units.__wrapped__(
                    zoo_dir, work, config, members=[s.name for s in members], progress=progress, verbose=verbose,
                    fashion_root=fashion_root, max_units=max_units, shard=shard)
            if (zoo_dir / MANIFEST).is_file():
                out["build"] = record_build(zoo_dir)
        return out
    out = {}
    if pretrain:
        out["members"] = build_members(zoo_dir, work_dir, members, config, progress=progress, verbose=verbose, fashion_root=fashion_root)
    if truth:
        kw = {"members": [s.name for s in members], "progress": progress, "verbose": verbose, "fashion_root": fashion_root}
        if config.truth_units:
            out["truth"] = build_truth_units(zoo_dir, work_dir, config, max_units=max_units, **kw)
        else:
            out["truth"] = build_truth(zoo_dir, work_dir, config, **kw)
    if (zoo_dir / MANIFEST).is_file():
        out["build"] = record_build(zoo_dir)
    return out
