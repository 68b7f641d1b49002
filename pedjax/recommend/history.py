"""History: a (model × task) matrix of transfer performance with missing entries.

A :class:`History` is what a recommender learns from (docs/recommend.md). Its values come from

* **fine-tuning** — a zoo's ground truth (:func:`from_zoo`, :func:`from_table`) or a published
  table shipped with pedjax (:func:`published`: ``supervised-cnn``, 11 ImageNet CNNs × 11 datasets
  from SFDA; ``ssl-resnet50``, 12 self-supervised ResNet-50s × 11 datasets from Ericsson et al.
  as used by SFDA and PED — ``ssl-transfer`` is an alias), ``kind="finetune"``;
* **cheap scores** — any metric ± PED over (model, task) pairs (:func:`from_scores`,
  ``kind="metric:NAME"``): Fennec builds its history from an FDA-style score instead of
  fine-tuning every pair; the kind records which was used;
* **a user's file** — :func:`from_file`: JSON ``{task: {model: value}}`` (or with a
  ``"datasets"`` key, or a ``"tables"`` key and ``table=NAME``), or CSV, either wide (first column
  the model, one column per task) or long (``model,task,value``); empty cells are missing.

Higher values are better. Missing entries are NaN.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.stats

#: the published tables shipped in ``pedjax/assets/published_finetune_tables.json``
PUBLISHED = ("supervised-cnn", "ssl-resnet50")
_ALIASES = {"ssl-transfer": "ssl-resnet50"}
PUBLISHED_FILE = "published_finetune_tables.json"


@dataclass(frozen=True, eq=False)
class History:
    """Transfer performance of ``models`` (rows) on ``tasks`` (columns); NaN = not observed.

    Attributes:
      values: ``[M, T]`` float64 (higher is better; NaN where missing).
      models: names of the M rows (unique).
      tasks: names of the T columns (unique).
      kind: ``"finetune"`` (fine-tuned accuracies) or ``"metric:NAME"`` (cheap scores).
      source: where the values come from (for reports).
      meta: free-form extra facts about the history (carried along by :meth:`without` and
        :meth:`select_models`).

    Raises:
      ValueError: ``values`` is not ``[len(models), len(tasks)]`` or holds an infinite entry, or
        a model or task name repeats.
    """

    values: np.ndarray
    models: tuple[str, ...]
    tasks: tuple[str, ...]
    kind: str = "finetune"
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        v = np.asarray(self.values, np.float64)
        if v.ndim != 2 or v.shape != (len(self.models), len(self.tasks)):
            raise ValueError(f"values: expected [M={len(self.models)}, T={len(self.tasks)}], got shape {v.shape}")
        if np.isinf(v).any():
            raise ValueError("values: contains infinite entries; use NaN for missing ones")
        if len(set(self.models)) != len(self.models) or len(set(self.tasks)) != len(self.tasks):
            raise ValueError("models/tasks: names must be unique")
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "tasks", tuple(self.tasks))

    @property
    def mask(self) -> np.ndarray:
        """``[M, T]`` True where observed."""
        return np.isfinite(self.values)

    def column(self, task: str) -> dict[str, float]:
        """The observed entries of one task.

        Args:
          task: a name in :attr:`tasks`.

        Returns:
          ``{model: value}`` over the models observed on ``task``.

        Raises:
          KeyError: ``task`` is not in the history.
        """
        j = self._task_index(task)
        return {m: float(v) for m, v in zip(self.models, self.values[:, j], strict=True) if np.isfinite(v)}

    def _task_index(self, task: str) -> int:
        if task not in self.tasks:
            raise KeyError(f"task: the history has no task {task!r}; it has {list(self.tasks)}")
        return self.tasks.index(task)

    def without(self, *tasks: str) -> History:
        """The history with ``tasks`` left out (leave-one-task-out).

        Args:
          *tasks: task names to drop; names not in the history are ignored.

        Returns:
          A new :class:`History` over the remaining tasks (same models, kind and source).
        """
        keep = [j for j, t in enumerate(self.tasks) if t not in tasks]
        return History(self.values[:, keep], self.models, tuple(self.tasks[j] for j in keep), self.kind, self.source,
                       dict(self.meta))

    def select_models(self, models: Sequence[str]) -> History:
        """The history restricted to ``models``, in that order.

        Args:
          models: model names, each in :attr:`models`.

        Returns:
          A new :class:`History` with one row per name of ``models``.

        Raises:
          KeyError: a name of ``models`` is not in the history.
        """
        idx = []
        for m in models:
            if m not in self.models:
                raise KeyError(f"models: the history has no model {m!r}; it has {list(self.models)}")
            idx.append(self.models.index(m))
        return History(self.values[idx], tuple(models), self.tasks, self.kind, self.source, dict(self.meta))

    def standardized(self) -> np.ndarray:
        """Per-task z-scores over the observed models (NaN stays NaN; a constant task becomes 0).

        Returns:
          ``[M, T]`` float64 array.
        """
        v = self.values
        mu = np.nanmean(v, axis=0, keepdims=True)
        sd = np.nanstd(v, axis=0, keepdims=True)
        return (v - mu) / np.where(sd > 0, sd, 1.0)

    def ranks(self) -> np.ndarray:
        """Per-task ranks normalised to [0, 1] over the observed models (1 = best; ties averaged).

        Normalising makes tasks with different numbers of observed models comparable; a task
        with one observed model gives it 0.5.

        Returns:
          ``[M, T]`` float64 array, NaN where missing.
        """
        out = np.full(self.values.shape, np.nan)
        for j in range(len(self.tasks)):
            ok = np.isfinite(self.values[:, j])
            n = int(ok.sum())
            if n == 1:
                out[ok, j] = 0.5
            elif n > 1:
                out[ok, j] = (scipy.stats.rankdata(self.values[ok, j]) - 1) / (n - 1)
        return out

    def mean_rank(self, exclude: Sequence[str] = ()) -> dict[str, float]:
        """**History mean rank**: each model's mean normalised rank (:meth:`ranks`) over the tasks.

        With every task fully observed this orders the models as their mean rank does (the
        baseline of ../shared/DESIGN.md), ties included.

        Args:
          exclude: task names left out first (leave-one-task-out).

        Returns:
          ``{model: mean normalised rank}`` (higher = better); NaN for a model never observed
          on the remaining tasks.
        """
        h = self.without(*exclude) if exclude else self
        r = h.ranks()
        with np.errstate(all="ignore"):
            cnt = np.isfinite(r).sum(axis=1)
            s = np.where(cnt > 0, np.nansum(r, axis=1) / np.maximum(cnt, 1), np.nan)
        s = np.round(s, 12)  # equal mean ranks summed in another order stay ties (τ_w treats ties specially)
        return dict(zip(h.models, map(float, s), strict=True))

    def to_table(self) -> dict[str, dict[str, float]]:
        """The history as ``{task: {model: value}}`` over the observed entries (:meth:`column`)."""
        return {t: self.column(t) for t in self.tasks}


# ---------------------------------------------------------------------------------- builders


def from_table(table: Mapping[str, Mapping[str, float | None]], *, kind: str = "finetune", source: str = "",
               models: Sequence[str] | None = None, strict: bool = False) -> History:
    """A history from a ``{task: {model: value}}`` table.

    Args:
      table: ``{task: {model: value}}``; ``None`` (or NaN unless ``strict``) or an absent entry
        is missing.
      kind: the history's kind (``"finetune"`` or ``"metric:NAME"``).
      source: where the values come from (for reports and error messages).
      models: the row names and their order; default every model that occurs, in order of
        first appearance (then models not in a task's mapping are missing there).
      strict: a user's file: only ``None`` or an absent entry is missing, a NaN or infinite
        value is an error.

    Returns:
      The :class:`History`.

    Raises:
      ValueError: ``table`` is empty or not a mapping of mappings, an entry is not a number (a
        bool counts as not one), or (``strict``) an entry is not finite.
    """
    if not isinstance(table, Mapping) or not table:
        raise ValueError("table: expected a non-empty {task: {model: value}} mapping")
    tasks = [str(t) for t in table]
    if models is None:
        seen: dict[str, None] = {}
        for col in table.values():
            if not isinstance(col, Mapping):
                raise ValueError("table: every task's entry must be a {model: value} mapping")
            seen.update((str(m), None) for m in col)
        models = list(seen)
    vals = np.full((len(models), len(tasks)), np.nan)
    for j, t in enumerate(tasks):
        for i, m in enumerate(models):
            v = table[t].get(m)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"table: entry ({m!r}, {t!r}) is {v!r}, not a number")
            if strict and not np.isfinite(v):
                raise ValueError(f"--history: {source}: entry ({m!r}, {t!r}) is {v!r}; give a finite number, or leave "
                                 "it out (an empty CSV cell, null in JSON) for a missing value")
            vals[i, j] = float(v)
    return History(vals, tuple(models), tuple(tasks), kind, source)


def from_zoo(zoo=None) -> History:
    """The fine-tuning ground truth of a zoo as a history (``kind="finetune"``).

    Args:
      zoo: a loaded :class:`~pedjax.zoo.Zoo`, a zoo folder, or ``None`` (the shipped zoo).

    Returns:
      The :class:`History` of ``ground_truth.json``, members in manifest order.

    Raises:
      FileNotFoundError: the zoo has no ground truth (or, from :func:`pedjax.zoo.load_zoo`, no
        manifest).
      ValueError: the zoo cannot be read (:func:`pedjax.zoo.load_zoo`).
    """
    from ..zoo import Zoo, load_zoo

    z = zoo if isinstance(zoo, Zoo) else load_zoo(zoo)
    table = z.truth()
    if table is None:
        raise FileNotFoundError(f"history: the zoo at {z.path} has no ground truth; build it with `pedjax zoo build`")
    h = from_table(table["datasets"], kind="finetune", source=f"fine-tuning ground truth of the zoo at {z.path}",
                   models=z.names)
    return h


def published(name: str) -> History:
    """A published fine-tuning table shipped with pedjax.

    Args:
      name: one of :data:`PUBLISHED` (``"supervised-cnn"``, ``"ssl-resnet50"``) or the alias
        ``"ssl-transfer"`` (of ``"ssl-resnet50"``).

    Returns:
      The table as a :class:`History` (``kind="finetune"``); values are top-1 accuracies in
      percent, ``source`` cites the paper.

    Raises:
      ValueError: ``name`` is not a published table.
    """
    key = _ALIASES.get(name, name)
    if key not in PUBLISHED:
        raise ValueError(f"history: no published table {name!r}; choose one of {list(PUBLISHED) + list(_ALIASES)}")
    obj = json.loads(resources.files("pedjax").joinpath("assets", PUBLISHED_FILE).read_text())
    return from_table(obj["tables"][key], kind="finetune", source=obj["sources"][key])


def from_scores(scores: Mapping[str, Mapping[str, float]], label: str) -> History:
    """A history of cheap scores of one metric (± PED), e.g. from :func:`pedjax.rank.benchmark`.

    Args:
      scores: ``{task: {model: score}}``; ``None`` or non-finite scores (degenerate models)
        become missing entries.
      label: the metric variant's name (e.g. ``"logme+PED"``); the kind is ``"metric:LABEL"``.

    Returns:
      The :class:`History`.

    Raises:
      ValueError: ``scores`` is empty (:func:`from_table`).
    """
    clean = {t: {m: (float(v) if v is not None and np.isfinite(v) else None) for m, v in col.items()}
             for t, col in scores.items()}
    return from_table(clean, kind=f"metric:{label}", source=f"{label} scores over (model, task) pairs")


def from_metric(sets, metric: str, ped=None) -> History:
    """Score every :class:`~pedjax.features.FeatureSet` of ``sets`` and return the scores as a history.

    Args:
      sets: feature sets, one per task (their ``task`` names the columns).
      metric: a metric's registry name (:func:`pedjax.scoring.score_set`).
      ped: a :class:`~pedjax.physics.PEDConfig` to move the features first, or ``None``.

    Returns:
      A :class:`History` of kind ``"metric:NAME"`` (``NAME`` is ``metric``, with ``+PED``
      when ``ped`` is given).

    Raises:
      ValueError: ``sets`` is empty, or ``metric`` is unknown or does not fit the sets
        (:func:`pedjax.scoring.score_set`).
    """
    from ..scoring import ped_set, score_set

    table = {}
    for fs in sets:
        table[fs.task] = score_set(fs if ped is None else ped_set(fs, ped), metric)
    return from_scores(table, metric + ("+PED" if ped is not None else ""))


def from_file(path, table: str | None = None) -> History:
    """A history from a JSON or CSV file (formats: the module docstring), or a published table's name.

    Args:
      path: a ``.csv`` or JSON file, or a name of :data:`PUBLISHED` (or ``"ssl-transfer"``).
      table: the table to read from a JSON file with a ``"tables"`` key (needed when it holds
        several).

    Returns:
      The :class:`History` (``kind="finetune"``; missing cells are NaN).

    Raises:
      FileNotFoundError: ``path`` is neither a file nor a published table's name.
      ValueError: the file is neither CSV nor valid JSON, ``table`` is missing or unknown,
        a row has the wrong number of cells, or an entry is not a finite number (the messages
        name ``--history``).
    """
    if isinstance(path, str) and (path in PUBLISHED or path in _ALIASES):
        return published(path)
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--history: no file {p} (or give a published table: {list(PUBLISHED)})")
    text = p.read_text()
    if p.suffix.lower() == ".csv":
        return _from_csv(text, str(p))
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--history: {p} is neither CSV nor valid JSON ({exc.msg}, line {exc.lineno})") from None
    if isinstance(obj, Mapping) and "tables" in obj:
        names = list(obj["tables"])
        if table is None:
            if len(names) != 1:
                raise ValueError(f"--history: {p} holds several tables {names}; choose one with table=NAME")
            table = names[0]
        if table not in obj["tables"]:
            raise ValueError(f"--history: {p} has no table {table!r}; it has {names}")
        obj = obj["tables"][table]
    elif isinstance(obj, Mapping) and "datasets" in obj:
        obj = obj["datasets"]
    return from_table(obj, kind="finetune", source=str(p), strict=True)


def _from_csv(text: str, where: str) -> History:
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise ValueError(f"--history: {where} has no data rows")
    head = [c.strip() for c in rows[0]]

    def num(c, where_cell):
        c = c.strip()
        if c in ("", "null", "None"):
            return None
        try:
            return float(c)
        except ValueError:
            raise ValueError(f"--history: {where}: {where_cell} is {c!r}, not a number") from None

    table: dict[str, dict[str, float | None]] = {}
    if [h.lower() for h in head] == ["model", "task", "value"]:
        for k, r in enumerate(rows[1:], 2):
            if len(r) != 3:
                raise ValueError(f"--history: {where}: line {k} has {len(r)} cells, expected model,task,value")
            table.setdefault(r[1].strip(), {})[r[0].strip()] = num(r[2], f"line {k}")
    else:
        tasks = head[1:]
        if not tasks:
            raise ValueError(f"--history: {where}: expected a header 'model,TASK1,TASK2,...' or 'model,task,value'")
        for t in tasks:
            table[t] = {}
        for k, r in enumerate(rows[1:], 2):
            if len(r) != len(head):
                raise ValueError(f"--history: {where}: line {k} has {len(r)} cells, the header {len(head)}")
            for t, c in zip(tasks, r[1:], strict=True):
                table[t][r[0].strip()] = num(c, f"line {k}, column {t!r}")
    return from_table(table, kind="finetune", source=where, strict=True)
