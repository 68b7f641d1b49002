"""Meta-learning PED's hyperparameters through the whole chain (issue 7).

PED (scan path) → metric → soft weighted τ against ground truth is differentiable end to end, so
the ranking quality itself can be optimised over PED's hyperparameters with optax:

    θ = log(nsigma, constant, time_step)           (log-parametrised: the fields stay > 0)
    loss(θ) = −Σ_k w_k · soft_τ_w(standardise(scores_k(θ)), truth_k) / Σ_k w_k

over the tasks k of a zoo (a task = one target dataset: features of every model, labels,
source statistics, ground truth per model). Scores are standardised per task (zero mean, unit
std over the models) so that ``temperature`` is scale-free across metrics.

The objective and its gradient are one ``jax.jit``-compiled function of (θ, task weights); the
optax step is compiled once around it and reused for every step and — through the task
weights — for every leave-one-task-out fold (a held-out task gets weight 0).

Learned configurations are plain JSON (:func:`save_config` writes atomically,
:func:`load_config` returns a :class:`pedjax.PEDConfig`); ``pedjax score --ped-config FILE`` and
``pedjax.score_zoo(..., ped=load_config(FILE))`` use them.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._validate import encode_labels
from .physics.ped import PEDConfig, ped_core
from .rank import soft_weighted_tau, weighted_tau

#: hyperparameters learned by default (PEDConfig's differentiable, positive fields)
DEFAULT_LEARN = ("nsigma", "constant", "time_step")
#: learnable fields (positive, so a log parametrisation applies)
LEARNABLE = ("nsigma", "constant", "time_step")
FORMAT = "pedjax.PEDConfig"


class Task(NamedTuple):
    """One target task of a zoo: features {model: [N, D]}, labels [N] (any integers), source
    statistics {model: (mean [D], std [D])} (``None``: target statistics) and truth {model: value}."""

    name: str
    features: Mapping[str, Any]
    labels: Any
    source_stats: Mapping[str, Any] | None
    truth: Mapping[str, float]


# ----------------------------------------------------------------------------------------------
# the compiled objective


def _pack(tasks: Sequence[Task]):
    """Static structure + array pytree: per task, groups of equal-D models stacked."""
    if not tasks:
        raise ValueError("tasks: need at least one task")
    static, arrays, names = [], [], []
    for t in tasks:
        models = [m for m in t.features if m in t.truth]
        if len(models) < 2:
            raise ValueError(f"tasks[{t.name!r}]: fewer than 2 models have both features and a truth value")
        codes, classes = encode_labels(t.labels, f"tasks[{t.name!r}].labels")
        groups: dict[int, list[str]] = {}
        for m in models:
            X = np.asarray(t.features[m], np.float64)
            if X.ndim != 2 or X.shape[0] != codes.shape[0] or not np.all(np.isfinite(X)):
                raise ValueError(f"tasks[{t.name!r}].features[{m!r}]: expected finite [N={codes.shape[0]}, D], got {X.shape}")
            groups.setdefault(X.shape[1], []).append(m)
        order = [m for g in groups.values() for m in g]
        packed = []
        for d, ms in groups.items():
            Xs = np.stack([np.asarray(t.features[m], np.float64) for m in ms])
            if t.source_stats is None:
                mean, std = Xs.mean(axis=1), Xs.std(axis=1)
            else:
                mean = np.stack([np.asarray(t.source_stats[m][0], np.float64) for m in ms])
                std = np.stack([np.asarray(t.source_stats[m][1], np.float64) for m in ms])
            packed.append((jnp.asarray(Xs), jnp.asarray(mean), jnp.asarray(std)))
        truth = np.array([float(t.truth[m]) for m in order])
        arrays.append((packed, jnp.asarray(codes), jnp.asarray(truth)))
        static.append(int(classes.size))
        names.append(order)
    return tuple(static), arrays, names


def _config(theta: Mapping[str, jax.Array], base: PEDConfig) -> PEDConfig:
    return base.replace(**{k: jnp.exp(v) for k, v in theta.items()})


def make_objective(tasks: Sequence[Task], metric: str = "logme", base: PEDConfig | None = None,
                   temperature: float = 0.1, remat: bool = False, metric_options: Mapping[str, Any] | None = None):
    """Build ``(fn, names, data)``: ``fn(theta, weights, data) -> (loss, (soft_taus [K], scores))``.

    ``theta`` is ``{field: log value}``; ``weights`` [K] weigh the tasks (0 drops one); ``data``
    is the tasks' packed arrays (features, statistics, labels, truth) — an argument rather than
    closed-over constants, so that compiling ``fn`` does not constant-fold the whole zoo;
    ``scores`` is a list over tasks of the scores [M_k] in ``names[k]``'s model order. Not jitted
    (see :class:`MetaLearner`). ``remat`` rematerialises each model's PED + metric in the
    backward pass (less memory for large zoos, ~1.3× time).
    """
    from .metrics import REGISTRY

    if metric not in REGISTRY or REGISTRY[metric].input != "features":
        feats = sorted(k for k, v in REGISTRY.items() if v.input == "features")
        raise ValueError(f"metric: {metric!r} is not a feature metric; choose one of {feats}")
    core = REGISTRY[metric].core
    opts = dict(metric_options or {})
    base = (base or PEDConfig()).validate()
    static, arrays, names = _pack(tasks)

    def one(X, mean, std, y, cfg, C):
        return core(ped_core(X, y, C, mean, std, cfg, path="scan").features, y, C, **opts)

    def fn(theta, weights, data):
        cfg = _config(theta, base)
        taus, all_scores = [], []
        for C, (packed, y, truth) in zip(static, data):
            f = lambda X, m, s, y=y, C=C: one(X, m, s, y, cfg, C)
            if remat:
                f = jax.checkpoint(f)
            scores = jnp.concatenate([jax.vmap(f)(Xs, means, stds) for Xs, means, stds in packed])
            z = (scores - jnp.mean(scores)) / (jnp.std(scores) + 1e-12)
            taus.append(soft_weighted_tau(z, truth, temperature))
            all_scores.append(scores)
        taus = jnp.stack(taus)
        loss = -jnp.sum(weights * taus) / jnp.sum(weights)
        return loss, (taus, all_scores)

    return fn, names, arrays


@dataclasses.dataclass
class MetaResult:
    config: PEDConfig
    history: list[dict]  # per step: loss, soft τ per task, the hyperparameters
    seconds: float
    compile_seconds: float


class MetaLearner:
    """Compiled once: ``value_and_grad`` of the objective and the optax step for these tasks.

    >>> ml = MetaLearner(tasks, metric="logme")
    >>> res = ml.fit(steps=30)               # all tasks
    >>> res = ml.fit(steps=30, weights=w)    # e.g. leave one task out: w[k] = 0
    """

    def __init__(self, tasks: Sequence[Task], metric: str = "logme", base: PEDConfig | None = None, *,
                 learn: Sequence[str] = DEFAULT_LEARN, temperature: float = 0.1, learning_rate: float = 0.05,
                 remat: bool = False, metric_options: Mapping[str, Any] | None = None):
        bad = [k for k in learn if k not in LEARNABLE]
        if bad or not learn:
            raise ValueError(f"learn: choose among {list(LEARNABLE)}, got {list(learn)}")
        if not (temperature > 0):
            raise ValueError(f"temperature: must be > 0, got {temperature!r}")
        self.base = (base or PEDConfig()).validate()
        for k in learn:
            if not getattr(self.base, k) > 0:
                raise ValueError(f"base.{k}: must be > 0 to be learned in log space, got {getattr(self.base, k)!r}")
        self.tasks, self.metric, self.learn, self.temperature = list(tasks), metric, tuple(learn), temperature
        fn, self.names, self._data = make_objective(self.tasks, metric, self.base, temperature, remat, metric_options)
        self.opt = optax.adam(learning_rate)
        self.traces = 0  # how often the objective was traced (compiled): once per learner

        def vg(theta, weights, data):
            self.traces += 1  # runs at trace time only
            return jax.value_and_grad(fn, has_aux=True)(theta, weights, data)

        self._vg = jax.jit(vg)

        @jax.jit
        def update(theta, opt_state, g):  # the optax step: tiny, compiled once too
            upd, opt_state = self.opt.update(g, opt_state, theta)
            return optax.apply_updates(theta, upd), opt_state

        self._update = update

    def value_and_grad(self, theta, weights):
        """The one expensive compiled function: ``(theta, weights) -> ((loss, (soft τ [K], scores)), grad)``."""
        return self._vg(theta, weights, self._data)

    def step(self, theta, opt_state, weights):
        """One meta-gradient step: ``(theta, opt_state, loss, soft_taus, grad)``."""
        (loss, (taus, _)), g = self.value_and_grad(theta, weights)
        theta, opt_state = self._update(theta, opt_state, g)
        return theta, opt_state, loss, taus, g

    def theta0(self, cfg: PEDConfig | None = None) -> dict:
        cfg = cfg or self.base
        # strongly typed float64 scalars (a weak-typed start would retrace after the first update)
        return {k: jnp.asarray(np.log(np.float64(getattr(cfg, k)))) for k in self.learn}

    def weights(self, holdout: int | None = None) -> jax.Array:
        w = np.ones(len(self.tasks))
        if holdout is not None:
            w[holdout] = 0.0
        return jnp.asarray(w)

    def config(self, theta) -> PEDConfig:
        return self.base.replace(**{k: float(np.exp(np.asarray(v))) for k, v in theta.items()})

    def fit(self, steps: int = 30, weights=None, theta=None) -> MetaResult:
        """Run ``steps`` optax steps from ``theta`` (default: the base config); returns the config
        with the best training objective seen (the start included)."""
        if not (isinstance(steps, int) and steps >= 1):
            raise ValueError(f"steps: must be an integer ≥ 1, got {steps!r}")
        weights = self.weights() if weights is None else jnp.asarray(weights, jnp.float64)
        theta = self.theta0() if theta is None else theta
        opt_state = self.opt.init(theta)
        t0 = time.perf_counter()
        history, best = [], (np.inf, theta)
        compile_s = 0.0
        for i in range(steps + 1):
            ts = time.perf_counter()
            if i < steps:
                new, opt_state, loss, taus, g = self.step(theta, opt_state, weights)
            else:  # evaluate the last iterate
                (loss, (taus, _)), g = self.value_and_grad(theta, weights)
                new = theta
            loss = float(loss)
            if i == 0:
                compile_s = time.perf_counter() - ts
            history.append({"step": i, "loss": loss, "soft_tau": [float(v) for v in np.asarray(taus)],
                            **{k: float(np.exp(np.asarray(v))) for k, v in theta.items()}})
            if np.isfinite(loss) and loss < best[0]:
                best = (loss, theta)
            theta = new
        return MetaResult(self.config(best[1]), history, time.perf_counter() - t0, compile_s)

    def scores(self, cfg: PEDConfig | None = None) -> list[dict[str, float]]:
        """Per task ``{model: score}`` with PED at ``cfg`` (the base config by default)."""
        theta = self.theta0(cfg)
        (_, (_, scores)), _ = self.value_and_grad(theta, self.weights())
        return [dict(zip(n, map(float, np.asarray(s)))) for n, s in zip(self.names, scores)]

    def taus(self, cfg: PEDConfig | None = None) -> list[float]:
        """Exact weighted τ (SciPy's) per task at ``cfg``."""
        out = []
        for t, sc in zip(self.tasks, self.scores(cfg)):
            out.append(weighted_tau([sc[m] for m in sc], [float(t.truth[m]) for m in sc]))
        return out


def learn(tasks: Sequence[Task], metric: str = "logme", base: PEDConfig | None = None, *, steps: int = 30, **kwargs) -> MetaResult:
    """Learn PED hyperparameters maximising the mean soft weighted τ over ``tasks`` (see module doc)."""
    return MetaLearner(tasks, metric, base, **kwargs).fit(steps)


# ----------------------------------------------------------------------------------------------
# saving and loading


def save_config(path, cfg: PEDConfig, **meta) -> Path:
    """Write ``cfg`` (and JSON-able ``meta``) atomically: as a JSON file when ``path`` ends in
    ``.json`` (temp file + ``os.replace``), otherwise as an orbax checkpoint directory (orbax's JSON
    handler: written to a temporary directory and committed by rename, overwriting ``path``).
    Both forms hold the same object and load with :func:`load_config`."""
    cfg.validate()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    obj = {"format": FORMAT, "version": 1, "config": dataclasses.asdict(cfg), "meta": meta}
    if path.suffix != ".json":
        import orbax.checkpoint as ocp

        ocp.Checkpointer(ocp.JsonCheckpointHandler()).save(path.resolve(), args=ocp.args.JsonSave(obj), force=True)
        return path
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_config(path) -> PEDConfig:
    """Read a config written by :func:`save_config` — a JSON file (or a bare JSON object of
    PEDConfig fields) or an orbax checkpoint directory."""
    p = Path(path)
    if p.is_dir():
        import orbax.checkpoint as ocp

        try:
            obj = ocp.Checkpointer(ocp.JsonCheckpointHandler()).restore(p.resolve(), args=ocp.args.JsonRestore())
        except Exception as exc:
            raise ValueError(f"--ped-config: {p} is a directory but not an orbax config checkpoint ({type(exc).__name__}); "
                             "write one with `pedjax meta learn --out DIR`") from None
    elif not p.is_file():
        raise FileNotFoundError(f"--ped-config: no file {p}; write one with `pedjax meta learn --out FILE`")
    else:
        try:
            obj = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"--ped-config: {p} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    fields = obj.get("config", obj) if isinstance(obj, dict) else None
    if not isinstance(fields, dict):
        raise ValueError(f"--ped-config: {p} must hold a JSON object of PEDConfig fields")
    known = {f.name for f in dataclasses.fields(PEDConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"--ped-config: {p} has unknown PEDConfig field(s) {unknown}; known: {sorted(known)}")
    floats = {"time_step", "nsigma", "exit_ratio", "constant", "eps"}
    vals = {}
    for k, v in fields.items():
        if k in floats:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"--ped-config: {p}: {k} must be a number, got {v!r}")
            v = float(v)
        vals[k] = v
    return PEDConfig(**vals).validate()


# ----------------------------------------------------------------------------------------------
# tasks: the digits stand-in and zoos on disk


def digits_tasks(n_tasks: int = 6, classes_per_task: int = 5, seed: int = 0, folds: int = 5, zoo=None) -> list[Task]:
    """Stand-in tasks from :func:`pedjax.demo.digits_zoo` until the shipped zoo lands.

    Task k keeps ``classes_per_task`` digit classes drawn at random (seeded) from the zoo's
    target samples; its ground truth per model is the ``folds``-fold cross-validated accuracy of a
    linear probe (logistic regression) on those samples and features — a stand-in for
    fine-tuning. ``zoo`` reuses a ``digits_zoo()`` result.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from .demo import digits_zoo

    feats, y, stats, _ = zoo if zoo is not None else digits_zoo()
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    tasks, seen = [], set()
    while len(tasks) < n_tasks:
        cls = tuple(sorted(rng.choice(10, size=classes_per_task, replace=False).tolist()))
        if cls in seen:
            continue
        seen.add(cls)
        keep = np.isin(y, cls)
        F = {m: np.asarray(X)[keep] for m, X in feats.items()}
        truth = {m: float(np.mean(cross_val_score(LogisticRegression(max_iter=2000), X, y[keep], cv=folds)))
                 for m, X in F.items()}
        tasks.append(Task("digits{" + "".join(map(str, cls)) + "}", F, y[keep], stats, truth))
    return tasks


def shipped_tasks(zoo_dir=None, tasks: Sequence[str] | None = None) -> list[Task]:
    """One task per ground-truth task of the shipped zoo (``pedjax/assets/zoo``, or ``zoo_dir``):
    every member's features on the task's training split, its source statistics, and the
    fine-tuning ground truth."""
    from . import modelzoo

    z = modelzoo.load_zoo(zoo_dir)
    table = z.truth()
    if table is None:
        raise FileNotFoundError(f"--shipped: {z.path} has no {modelzoo.TRUTH_FILE}; build it with `pedjax zoo build`")
    out = []
    for t in list(tasks) if tasks else list(table["datasets"]):
        truth = z.task_truth(t, "--task")  # validated before the features are extracted
        zf = modelzoo.extract_features(z, t, "train")
        out.append(Task(t, zf.features, zf.labels, zf.source_stats, truth))
    return out


def zoo_tasks(truth: str, zoos: Sequence[str] = (), results_dir: str | None = None, datasets: Sequence[str] = (),
              source: str = "imagenet") -> list[Task]:
    """Tasks from zoos on disk: each ``.npz`` zoo is one task, or each ``dataset`` of a results
    folder; ``truth`` is a JSON table ``{dataset: {model: value}}`` or a built-in table name
    (see ``pedjax evaluate``)."""
    from .evaluate import load_truth
    from .results import open_zoo

    opened = [open_zoo(None, z) for z in zoos]
    if results_dir is not None:
        if not datasets:
            raise ValueError("--dataset: give one or more datasets (tasks) with --results-dir")
        opened += [open_zoo(results_dir, None, d, source) for d in datasets]
    if not opened:
        raise ValueError("give tasks: --zoo FILE.npz (repeatable), --results-dir DIR --dataset NAME (repeatable), or --digits")
    tasks = []
    for z in opened:
        feats, _, stats = z.load(source=True)
        t, _ = load_truth(truth, z.dataset)
        tasks.append(Task(z.dataset or z.where, feats, z.shared_labels(), stats, t))
    return tasks


# ----------------------------------------------------------------------------------------------
# pedjax meta


def add_cli(sub) -> None:
    p = sub.add_parser("meta", help="learn PED's hyperparameters by gradient through PED → metric → soft τ_w (optax)")
    msub = p.add_subparsers(dest="meta_command", metavar="ACTION")
    msub.required = True
    q = msub.add_parser("learn", help="learn nsigma/constant/time_step on a zoo's tasks; write a config JSON")
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--shipped", action="store_true", help="the shipped zoo's tasks and fine-tuning ground truth (pedjax.meta.shipped_tasks)")
    src.add_argument("--digits", action="store_true", help="the digits stand-in tasks (pedjax.meta.digits_tasks)")
    src.add_argument("--zoo", action="append", metavar="FILE.npz", help="an .npz zoo = one task (repeatable); needs --truth")
    src.add_argument("--results-dir", metavar="DIR", help="a results folder; each --dataset is one task; needs --truth")
    q.add_argument("--dataset", action="append", default=[], metavar="NAME", help="with --results-dir (repeatable)")
    q.add_argument("--truth", metavar="T", help="ground truth: JSON {dataset: {model: acc}} or a built-in table")
    q.add_argument("--metric", default="logme", help="feature metric (default logme)")
    q.add_argument("--steps", type=int, default=30, help="optax (adam) steps (default 30)")
    q.add_argument("--lr", type=float, default=0.05, help="adam learning rate in log-parameter space (default 0.05)")
    q.add_argument("--temperature", type=float, default=0.1, help="soft τ_w temperature on standardised scores (default 0.1)")
    q.add_argument("--learn", default=",".join(DEFAULT_LEARN), help=f"comma-separated fields to learn (default {','.join(DEFAULT_LEARN)})")
    q.add_argument("--nsigma", type=float, default=0.6, help="starting nsigma (default 0.6)")
    q.add_argument("--variant", default="released", choices=["released", "paper"])
    q.add_argument("--out", required=True, metavar="FILE.json|DIR",
                   help="where to write the learned config: a JSON file (.json) or an orbax checkpoint directory")
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.set_defaults(func=_cmd_learn)
    s = msub.add_parser("show", help="print a learned config file")
    s.add_argument("file")
    s.set_defaults(func=_cmd_show)


def _cmd_learn(args) -> int:
    if args.shipped:
        tasks = shipped_tasks()
    elif args.digits:
        tasks = digits_tasks()
    else:
        if not args.truth:
            raise ValueError("--truth: required with --zoo/--results-dir (JSON {dataset: {model: accuracy}})")
        tasks = zoo_tasks(args.truth, args.zoo or (), args.results_dir, args.dataset)
    base = PEDConfig(nsigma=args.nsigma, variant=args.variant).validate()
    ml = MetaLearner(tasks, args.metric, base, learn=[k.strip() for k in args.learn.split(",") if k.strip()],
                     temperature=args.temperature, learning_rate=args.lr)
    before = ml.taus(base)
    res = ml.fit(args.steps)
    after = ml.taus(res.config)
    meta = {"metric": args.metric, "tasks": [t.name for t in tasks], "steps": args.steps, "lr": args.lr,
            "temperature": args.temperature, "learned": list(ml.learn),
            "weighted_tau_before": before, "weighted_tau_after": after,
            "note": "weighted τ on the training tasks (not held out)"}
    save_config(args.out, res.config, **meta)
    out = {"config": dataclasses.asdict(res.config), "file": str(args.out), **meta, "seconds": round(res.seconds, 2)}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        c = res.config
        print(f"learned on {len(tasks)} task(s), {args.metric}, {args.steps} steps, {res.seconds:.1f} s: "
              f"nsigma={c.nsigma:.4g} constant={c.constant:.4g} time_step={c.time_step:.4g}")
        print(f"mean τ_w on the training tasks: {np.mean(before):+.3f} (start) → {np.mean(after):+.3f} (learned)")
        print(f"wrote {args.out}  (use: pedjax score ... --ped-config {args.out})")
    return 0


def _cmd_show(args) -> int:
    cfg = load_config(args.file)
    print(json.dumps(dataclasses.asdict(cfg), indent=1))
    return 0
