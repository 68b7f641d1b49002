"""Judge a metric's scores against ground truth: reading scores and truth tables, all measures at once.

Scores files (any of):

* ``pedjax score --json`` output (``{"scores": {model: score}, "metric": …, "dataset": …}``);
* ``pedjax demo --json`` output (``{"scores": {metric: {model: score}}}``: one entry per metric);
* the published repos' ``results_metrics_cr/{metric}/{dataset}_metrics.json`` (``{model: score}``,
  a ``"duration"`` entry is ignored as in their ``load_score``); the label is the folder name and
  the dataset the file name;
* ``pedjax score --csv`` output (``rank,model,score``).

Ground truth ``T``: ``ssl-transfer`` — the fine-tuning accuracies of the 12 self-supervised
ResNet-50s on 11 datasets published in ``tw.py`` of github.com/lixiaotong97/PED (shipped as
``pedjax/assets/ssl_transfer.json``, source cited inside) — or a JSON file holding
``{dataset: {model: value}}``, ``{"datasets": {dataset: {model: value}}}`` or ``{model: value}``.

Measures (:mod:`pedjax.rank.measures`): weighted Kendall τ (= ``scipy.stats.weightedtau``, as ``tw.py``),
Kendall τ-b, Pearson r, top-1/top-3 (the metric's pick is among the k best by ground truth) and
rel@1/rel@3 (best ground truth among the metric's top k over the overall best).
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, cast, overload

from .._validate import load_json
from . import measures as rank

#: why a score is missing, by its value (docs/design.md, "Degenerate models and NaN scores")
REASON_UNINFORMATIVE = "degenerate features (constant over the target samples up to rounding): no information, scored -inf"
REASON_NAN = "the metric returned NaN (numerically undefined on these features)"
REASON_INF = "the metric returned +inf"
REASON_MISSING = "no score (null in the file; `pedjax score --json` says why under \"unscored\")"

#: built-in ground-truth tables: name -> asset file
BUILTIN_TRUTH = {"ssl-transfer": "ssl_transfer.json"}


# ----------------------------------------------------------------------------------------------
# ranking scores that may hold NaN or -inf


def score_problem(value) -> str | None:
    """Why ``value`` is not a usable score (``None`` for a finite number).

    Args:
      value: a score (a number) or ``None`` (a score pedjax could not give).

    Returns:
      ``None`` for a finite number, else the reason: ``REASON_MISSING`` (``None``), ``REASON_NAN``,
      ``REASON_UNINFORMATIVE`` (``-inf``, a degenerate model) or ``REASON_INF``.

    Raises:
      TypeError: ``value`` is neither ``None`` nor convertible by ``float``.
      ValueError: ``value`` is a string that ``float`` cannot read.
    """
    if value is None:
        return REASON_MISSING
    v = float(value)
    if math.isnan(v):
        return REASON_NAN
    if v == float("-inf"):
        return REASON_UNINFORMATIVE
    if v == float("inf"):
        return REASON_INF
    return None


def ranking(scores: Mapping[str, float | None]) -> list[str]:
    """Models best first: finite scores by value (ties in the given order), then ``-inf``
    (uninformative), then any other non-finite or missing score (NaN, +inf, ``None``).

    A score that is not a number is never recommended.

    Args:
      scores: ``{model: score or None}``.

    Returns:
      The model names, best first.
    """
    def key(item):
        i, (k, v) = item
        problem = score_problem(v)
        if problem is None:
            return (0, -float(v), i)
        return (1 if problem == REASON_UNINFORMATIVE else 2, 0.0, i)

    return [k for _, (k, _v) in sorted(enumerate(scores.items()), key=key)]


def score_problems(scores: Mapping[str, float | None]) -> dict[str, str]:
    """``{model: reason}`` for every score that is not a finite number.

    Args:
      scores: ``{model: score or None}``.

    Returns:
      ``{model: reason}`` (:func:`score_problem`), in the scores' order; empty when every score
      is finite.
    """
    return {k: p for k, v in scores.items() if (p := score_problem(v)) is not None}


# ----------------------------------------------------------------------------------------------
# reading


@overload
def _numeric_table(d: Mapping, where: str, allow_null: Literal[False] = False) -> dict[str, float]: ...
@overload
def _numeric_table(d: Mapping, where: str, allow_null: Literal[True]) -> dict[str, float | None]: ...
def _numeric_table(d: Mapping, where: str, allow_null: bool = False) -> dict[str, float] | dict[str, float | None]:
    out: dict[str, float | None] = {}
    for k, v in d.items():
        if k == "duration":
            continue
        if v is None and allow_null:  # a score pedjax could not give (written as null + a reason)
            out[str(k)] = None
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{where}: entry {k!r} is {type(v).__name__}, not a number; expected {{model: score}}")
        out[str(k)] = float(v)
    if not out:
        raise ValueError(f"{where}: no model scores in it")
    return out


def load_scores(path) -> dict[str, tuple[dict[str, float | None], str | None]]:
    """Read a scores file (any of the formats of the module docstring).

    Args:
      path: the file: ``pedjax score --json`` or ``--csv`` output, ``pedjax demo --json`` output,
        or a published ``{metric}/{dataset}_metrics.json``.

    Returns:
      ``{label: ({model: score}, dataset or None)}``: one entry per metric the file holds; the
      label is the metric's name (``+ped`` appended for a PED run) or the file's name; a score
      pedjax could not give is ``None`` (JSON ``null``; an empty or ``null`` CSV cell is NaN).

    Raises:
      FileNotFoundError: (``--scores``) no such file.
      ValueError: (``--scores``) not valid JSON or CSV of the known layouts, a non-numeric score,
        or no model scores in it.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--scores: no file {p}; write one with `pedjax score ... --json > {p.name}`")
    text = p.read_text()
    if p.suffix.lower() == ".csv" or text.lstrip().startswith("rank,model,score"):
        rows = list(csv.DictReader(io.StringIO(text)))
        if not rows or not {"model", "score"} <= set(rows[0]):
            raise ValueError(f"--scores: {p} is not a `pedjax score --csv` file (columns rank,model,score)")
        try:
            table: dict[str, float | None] = {r["model"]: float(r["score"]) if r["score"].strip() not in ("", "null", "None") else float("nan")
                     for r in rows}
        except ValueError as exc:
            raise ValueError(f"--scores: {p} has a non-numeric score ({exc})") from None
        return {p.stem: (table, None)}
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--scores: {p} is not valid JSON ({exc.msg} at line {exc.lineno}); pass pedjax score --json output or a {{model: score}} JSON") from None
    if not isinstance(obj, dict):
        raise ValueError(f"--scores: {p} holds a JSON {type(obj).__name__}; expected an object {{model: score}}")
    if "scores" in obj and isinstance(obj["scores"], dict):
        s = obj["scores"]
        dataset = obj.get("dataset") if isinstance(obj.get("dataset"), str) else None
        if s and all(isinstance(v, dict) for v in s.values()):  # {metric: {model: score}}
            return {str(k): (_numeric_table(v, f"--scores: {p} [{k}]", True), dataset) for k, v in s.items()}
        label = obj.get("metric") or p.stem
        if obj.get("ped"):
            label = f"{label}+ped"
        return {str(label): (_numeric_table(s, f"--scores: {p}", True), dataset)}
    # the published layout: results_metrics_cr/{metric}/{dataset}_metrics.json
    m = re.fullmatch(r"(.+)_metrics", p.stem)
    dataset = m.group(1) if m else None
    parent = p.resolve().parent.name
    label = parent if m and parent else p.stem
    return {label: (_numeric_table(obj, f"--scores: {p}", True), dataset)}


def truth_tables(truth: str) -> tuple[dict[str, dict[str, float]] | dict[str, float], str]:
    """Read a ground-truth table ``T``.

    Args:
      truth: a built-in table name (:data:`BUILTIN_TRUTH`, e.g. ``"ssl-transfer"``) or the path of
        a JSON file holding ``{dataset: {model: value}}``, ``{"datasets": {…}}`` or
        ``{model: value}``.

    Returns:
      ``(tables, description)``: ``{dataset: {model: value}}`` or ``{model: value}``, and a
      description of the source (the repository and file for a built-in table, else the path).

    Raises:
      FileNotFoundError: (``--truth``) neither a built-in name nor an existing file.
      ValueError: (``--truth``) not valid JSON, not an object of the layouts above, or a value
        that is not a number.
    """
    if truth in BUILTIN_TRUTH:
        obj = json.loads((Path(__file__).resolve().parents[1] / "assets" / BUILTIN_TRUTH[truth]).read_text())
        return obj["datasets"], f"{truth} ({obj['source']['repository']} {obj['source']['file']})"
    p = Path(truth)
    obj = load_json(p, "--truth", f"no file {truth!r} and no built-in table of that name; pass one of {sorted(BUILTIN_TRUTH)} "
                    "or a JSON file {dataset: {model: accuracy}} or {model: accuracy}")
    if isinstance(obj, dict) and isinstance(obj.get("datasets"), dict):
        obj = obj["datasets"]
    if not isinstance(obj, dict) or not obj:
        raise ValueError(f"--truth: {p} must hold {{dataset: {{model: accuracy}}}} or {{model: accuracy}}")
    if all(isinstance(v, dict) for v in obj.values()):
        return {str(k): _numeric_table(v, f"--truth: {p} [{k}]") for k, v in obj.items()}, str(p)
    return _numeric_table(obj, f"--truth: {p}"), str(p)


def load_truth(truth: str, dataset: str | None) -> tuple[dict[str, float], str]:
    """The ground truth ``{model: value}`` of ``dataset`` in ``T`` and a description.

    Args:
      truth: a built-in table name or a JSON file (:func:`truth_tables`).
      dataset: the table's dataset (matched exactly, else case-insensitively); ``None`` when ``T``
        holds a single dataset or is a flat ``{model: value}`` table (then ``dataset`` is ignored).

    Returns:
      ``({model: value}, description)``; the description names the dataset.

    Raises:
      FileNotFoundError: as :func:`truth_tables`.
      ValueError: as :func:`truth_tables`; (``--dataset``) ``dataset`` is ``None`` while ``T``
        holds several datasets, or ``T`` has no such dataset.
    """
    tables, desc = truth_tables(truth)
    if tables and all(isinstance(v, dict) for v in tables.values()):
        tables = cast(dict[str, dict[str, float]], tables)  # the check above, which mypy cannot follow
        known = sorted(tables)
        if dataset is None:
            if len(known) == 1:
                return tables[known[0]], f"{desc}, {known[0]}"
            raise ValueError(f"--dataset: needed to pick a table of --truth {truth}; known datasets: {known}")
        key = dataset if dataset in tables else {k.lower(): k for k in tables}.get(dataset.lower())
        if key is None:
            raise ValueError(f"--dataset: --truth {truth} has no dataset {dataset!r}; known datasets: {known}")
        return tables[key], f"{desc}, {key}"
    return cast(dict[str, float], tables), desc


# ----------------------------------------------------------------------------------------------
# measuring


def evaluate_scores(scores: Mapping[str, float], truth: Mapping[str, float], where: str = "--scores") -> dict:
    """All measures for one metric, on the models present in both with a finite score (in the
    scores' order).

    Args:
      scores: ``{model: score or None}``.
      truth: ``{model: ground truth}`` (finite numbers).
      where: how error messages name the scores (the command line's flag by default).

    Returns:
      A dict with ``models`` (how many were judged), ``weighted_tau``, ``kendall_tau``,
      ``pearson``, ``top1``, ``top3``, ``rel1``, ``rel3`` (k = min(3, models)), ``pick`` (the
      top-scored model, first of ties), ``pick_truth``, ``pick_truth_rank`` (1 = best),
      ``best`` and ``best_truth``; with ``dropped`` (models without ground truth) and
      ``unscored`` (``{model: reason}`` for scores that are not finite numbers: NaN, ``-inf`` for
      degenerate features, ``None``) when there are any.

    Raises:
      ValueError: (``--truth``) a ground truth that is not a finite number; fewer than two models
        with both a finite score and a ground truth (named by ``where`` when non-finite scores are
        the cause, else ``--scores/--truth``); (``truth``) the best ground truth is 0 (rel@k is
        undefined).
    """
    unscored = score_problems(scores)
    bad_truth = [m for m, v in truth.items() if v is None or not math.isfinite(float(v))]
    if bad_truth:
        raise ValueError(f"--truth: ground truth of {bad_truth[:5]} is not a finite number")
    models = [m for m in scores if m in truth and m not in unscored]
    dropped = [m for m in scores if m not in truth]
    if len(models) < 2 and unscored and len([m for m in scores if m in truth]) >= 2:
        raise ValueError(
            f"{where}: only {len(models)} model(s) have a finite score; not a number: "
            + ", ".join(f"{k} ({v})" for k, v in list(unscored.items())[:5])
        )
    if len(models) < 2:
        raise ValueError(
            f"--scores/--truth: only {len(models)} model(s) have both a score and a ground truth; "
            f"scored: {list(scores)[:8]}, ground truth for: {list(truth)[:8]}; the model names must match"
        )
    s = [float(scores[m]) for m in models]
    t = [float(truth[m]) for m in models]
    k3 = min(3, len(models))
    pick = max(range(len(models)), key=lambda i: s[i])  # first of ties, like sorted(reverse=True)
    by_truth = sorted(range(len(models)), key=lambda i: -t[i])
    out = {
        "models": len(models),
        "weighted_tau": rank.weighted_tau(s, t),
        "kendall_tau": rank.kendall_tau(s, t),
        "pearson": rank.pearson(s, t),
        "top1": rank.top_k(s, t, 1),
        "top3": rank.top_k(s, t, k3),
        "rel1": rank.rel_k(s, t, 1),
        "rel3": rank.rel_k(s, t, k3),
        "pick": models[pick],
        "pick_truth": t[pick],
        "pick_truth_rank": by_truth.index(pick) + 1,
        "best": models[by_truth[0]],
        "best_truth": t[by_truth[0]],
    }
    if dropped:
        out["dropped"] = dropped
    if unscored:
        out["unscored"] = unscored
    return out
