"""Float32 against float64 on the shipped zoo and on synthetic zoos: every metric ± PED (issue 21).

    python experiments/float32_fidelity.py                       # everything; resumes from experiments/results/float32_fidelity.json
    python experiments/float32_fidelity.py --only shipped        # the 11 shipped tasks (27 members)
    python experiments/float32_fidelity.py --only synthetic --scale 0.25
    python experiments/float32_fidelity.py --from-json experiments/results/float32_fidelity.json   # re-render docs/precision.md only

For every shipped task of the shipped zoo (its members' features on the task's training split,
``pedjax.features.extract_features`` with the user feature cache, as ``pedjax demo``) and for the
synthetic zoos of ``pedjax.rank.fidelity.SYNTHETIC`` (published scale 12 × 5000 × 2048 with
C = 100; D ≫ N; near-duplicate dimensions), every registered metric of class labels is scored — feature metrics
statically and after PED (released defaults, nsigma 0.6) — in float64 and in float32 on the same
float32 features, and :func:`pedjax.rank.fidelity.fidelity` compares the two: weighted τ between
the rankings, worst relative score difference, non-finite float32 scores where float64 is finite.

Resumable per set and metric: a set's entry is written to ``--json`` after each metric (a set
is rendered once every metric is done), with each metric's fingerprint of the code that computes
its scores (``experiments/_fingerprint.py``: PED, scoring, precision, validation, the registry and
the metric's own modules); a rerun skips the metrics whose fingerprint matches the code and
scores again those whose code changed (``--fresh`` recomputes all, and ``--keep`` reuses entries
whatever their fingerprint). ``--metric`` runs only the named metrics, in the given order.
``--models-per-call linear_probe=1`` scores that metric one model at a time and keeps each
finished model (resumable within a metric: the linear probe at published scale takes hours). The measured section of
docs/precision.md (between ``<!-- float32_fidelity:start/end -->``) is regenerated from the JSON.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
DEFAULT_JSON = ROOT / "experiments" / "results" / "float32_fidelity.json"  # committed: the study spans sessions
DEFAULT_DOC = ROOT / "docs" / "precision.md"
SECTION = "float32_fidelity"
NSIGMA = 0.6
def shipped_sets(tasks=None, verbose=True):
    """``(task, thunk -> FeatureSet)`` for the shipped zoo's tasks (features extracted lazily)."""
    from pedjax.cli._common import feature_cache_dir
    from pedjax.data import fashion
    from pedjax.data.tasks import TASKS
    from pedjax.features import extract_features
    from pedjax.zoo import load_zoo

    zoo = load_zoo(None)
    table = zoo.truth()
    names = list(tasks or table["datasets"])
    out = []
    for t in names:
        if t in TASKS and TASKS[t].dataset == "fashion-mnist" and not fashion.available():
            if verbose:
                print(f"skip {t}: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)", flush=True)
            continue
        out.append((t, lambda t=t: extract_features(zoo, t, "train", cache=feature_cache_dir())))
    return out


def synthetic_sets(scale: float, names=None):
    from pedjax.rank import fidelity as F

    out = []
    # in the order given; by default the cheap ones first (a run stopped early has those)
    order = list(names) if names else sorted(F.SYNTHETIC, key=lambda k: F.SYNTHETIC[k][1] * F.SYNTHETIC[k][2])
    for name in order:
        if name not in F.SYNTHETIC:
            raise SystemExit(f"--synthetic: unknown set {name!r}; choose from {list(F.SYNTHETIC)}")
        i = list(F.SYNTHETIC).index(name)
        m, n, d, c, kind = F.SYNTHETIC[name]
        if scale != 1.0:
            n, d = max(4 * c, int(round(n * scale))), max(8, int(round(d * scale)))
        task = name if scale == 1.0 else f"{name}@{scale:g}"
        out.append((task, lambda a=(m, n, d, c, kind, i, task): F.synthetic_set(*a[:5], seed=a[5], task=a[6])))
    return out


def load_json(path: Path) -> dict:
    if path.is_file():
        return json.loads(path.read_text())
    return {"sets": {}}


def save_json(path: Path, data: dict, task: str | None = None) -> None:
    """Merge into the file as it is now (another run may have added sets since this one read it),
    under a lock: ``data``'s top-level fields (the ``legacy`` maps merged key by key) and, with
    ``task``, that set's entry."""
    import fcntl

    from pedjax.util import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merged = json.loads(path.read_text()) if path.is_file() else {"sets": {}}
        if task is not None:
            merged["sets"][task] = data["sets"][task]
        merged.update({k: v for k, v in data.items() if k not in ("sets", "legacy")})
        merged["legacy"] = {**merged.get("legacy", {}), **data.get("legacy", {})}
        atomic_write_text(path, json.dumps(merged, indent=1, allow_nan=True))


def _metric(variant: str) -> str:
    return variant.split("+", 1)[0]


def valid_metrics(entry: dict, legacy: dict, keep: bool = False) -> dict:
    """``{metric: fingerprint}`` of the metrics of a stored set entry whose results are still
    valid: their per-metric fingerprint (``entry["fingerprints"]``; for an entry written before
    per-metric fingerprints, the map ``legacy[entry["fingerprint"]]`` recorded while that code was
    current) equals the current code's (``_fingerprint.fingerprint(metric)``), or any with
    ``keep``."""
    from _fingerprint import fingerprint as metric_fp

    done = entry.get("done") or sorted({_metric(v) for v in entry.get("rows", {})})
    stored = entry.get("fingerprints") or legacy.get(entry.get("fingerprint"), {})
    return {m: stored.get(m, "?") for m in done if keep or stored.get(m) == metric_fp(m)}


def score_metric(fs, metric, peds, entry, unit, persist):
    """Score one metric ± PED on a set in both precisions: the whole zoo in one
    :func:`pedjax.rank.fidelity.fidelity` call or, with ``unit`` models per call (fewer than the
    zoo), chunk by chunk, each finished chunk's scores kept in ``entry["units"][metric]`` and
    written (``persist()``) so that a metric too slow for one session resumes at its next chunk
    (the chunks are kept while the metric's fingerprint matches the code). A per-model metric
    scores each model independently, so the chunks' scores are the zoo's (a zoo-level metric,
    NCTI, is refused); the comparison
    (:func:`pedjax.rank.fidelity.compare`) is made once every model is scored.

    Returns:
      ``({variant: VariantFidelity}, {precision: {variant: {model: score} or None}},
      {precision: seconds})``.
    """
    from _fingerprint import fingerprint as metric_fp

    from pedjax.rank import fidelity as F

    task, models = fs.task, fs.models
    if unit and F.REGISTRY[metric].zoo is not None:
        raise ValueError(f"unit: {metric} is scored over the whole zoo (Metric.zoo); score it in one call")
    if not unit or unit >= len(models):
        res = F.fidelity(fs, [metric], peds)
        return (res.rows[task], {p: res.scores[p][task] for p in F.PRECISIONS},
                {p: res.seconds[p][task] for p in F.PRECISIONS})
    units = entry.setdefault("units", {})
    store = units.get(metric)
    if store is None or store["fingerprint"] != metric_fp(metric):
        store = units[metric] = {"fingerprint": metric_fp(metric), "models": [], "errors": {},
                                 "scores": {p: {} for p in F.PRECISIONS}, "seconds": {p: 0.0 for p in F.PRECISIONS}}
    for i in range(0, len(models), unit):
        chunk = [x for x in models[i:i + unit] if x not in store["models"]]
        if not chunk:
            continue
        res = F.fidelity(fs.only(chunk), [metric], peds)
        for p in F.PRECISIONS:
            for v, sc in res.scores[p][task].items():
                # a variant that raised on any chunk raised for the zoo (as one call would)
                had = store["scores"][p].get(v, {})
                store["scores"][p][v] = None if sc is None or had is None else {**had, **sc}
            store["seconds"][p] += res.seconds[p][task]
        for v, r in res.rows[task].items():
            if r.error:
                store["errors"].setdefault(v, r.error)
        store["models"] += chunk
        store["date"] = datetime.datetime.now().isoformat(timespec="seconds")
        persist()
        print(f"{task} {metric}: {len(store['models'])}/{len(models)} models ({', '.join(chunk)}: float64 "
              f"{res.seconds['float64'][task]:.0f} s, float32 {res.seconds['float32'][task]:.0f} s)", flush=True)
    del units[metric]
    if not units:
        del entry["units"]
    s64, s32 = store["scores"]["float64"], store["scores"]["float32"]
    rows = {v: F.compare(s64.get(v), s32.get(v), store["errors"].get(v)) for v in s64}
    return rows, store["scores"], store["seconds"]


def run_sets(todo, metrics, data, path, fp, *, fresh=False, keep=False, required=None, units=None) -> dict:
    """Score every set of ``todo`` one metric at a time, in the order of ``metrics``, writing the
    set's entry after each metric (``"done"``: the metrics finished; ``"fingerprints"``: the code
    fingerprint of each (``_fingerprint.fingerprint(metric)``); ``"inapplicable"``: those the
    set cannot take, e.g. LEEP without source probabilities; ``"complete"`` once every applicable
    metric of ``required`` is done: default ``metrics``, and the command line passes every
    registered metric, so that a run restricted with ``--metric`` never marks a set complete),
    so that a large set spans sessions. A stored metric is reused while its fingerprint matches
    the code (:func:`valid_metrics`); one whose code changed is dropped and scored again, and a
    set is not loaded at all when every requested metric is valid or inapplicable. ``units``:
    ``{metric: models per call}`` for metrics scored chunk by chunk (:func:`score_metric`)."""
    from _fingerprint import fingerprint as metric_fp

    from pedjax.physics import PEDConfig
    from pedjax.rank import fidelity as F

    peds = {"ped": PEDConfig(nsigma=NSIGMA)}
    legacy = data.get("legacy", {})
    for task, make in todo:
        old = data["sets"].get(task) if not fresh else None
        valid = valid_metrics(old, legacy, keep) if old is not None else {}
        covered = set(valid) | set(old.get("inapplicable", ())) if old is not None else set()
        if old is not None and set(metrics) <= covered:
            print(f"{task}: kept from {path.name} ({old['date']})", flush=True)
            continue
        t0 = time.perf_counter()
        fs = make()
        t_feat = time.perf_counter() - t0
        applicable = [m for m in (required or metrics) if F.REGISTRY[m].input == "features" or fs.source_probs is not None]
        use = [m for m in metrics if m in applicable]
        if old is not None and (valid or old.get("units")):  # resumes finished metrics and chunks
            entry = old
            stale = {_metric(v) for v in entry["rows"]} - set(valid)
            for v in [v for v in entry["rows"] if _metric(v) in stale]:
                del entry["rows"][v]
                for p in F.PRECISIONS:
                    entry["scores"][p].pop(v, None)
            for m in stale:  # seconds of a dropped metric, where recorded
                for p, sec in entry.get("metric_seconds", {}).pop(m, {}).items():
                    entry["seconds"][p] -= sec
            if stale:
                print(f"{task}: scoring code changed for {', '.join(sorted(stale))}: scored again", flush=True)
            entry["done"] = [m for m in (entry.get("done") or sorted(valid)) if m in valid]
            entry["fingerprints"] = dict(valid)
        else:
            entry = {
                "fingerprint": fp, "kind": "shipped" if not task.startswith("synthetic") else "synthetic",
                "shape": [len(fs.models), fs.n_samples, sorted(set(fs.dims().values())), int(len(set(map(int, fs.labels))))],
                "rows": {}, "scores": {p: {} for p in F.PRECISIONS}, "seconds": {"features": t_feat, **{p: 0.0 for p in F.PRECISIONS}},
                "done": [], "fingerprints": {}}
        entry["inapplicable"] = sorted(set(entry.get("inapplicable", ())) | (set(required or metrics) - set(applicable)))
        entry["complete"] = all(x in entry["done"] for x in applicable)
        bad = []
        for m in use:
            if m in entry["done"]:
                continue
            def persist(entry=entry, task=task):
                data["sets"][task] = entry
                save_json(path, data, task)

            rows, scores, seconds = score_metric(fs, m, peds, entry, (units or {}).get(m), persist)
            entry["rows"].update({v: r.as_dict() for v, r in rows.items()})
            for p in F.PRECISIONS:
                entry["scores"][p].update(scores[p])
                entry["seconds"][p] += seconds[p]
            entry.setdefault("metric_seconds", {})[m] = seconds
            entry["done"].append(m)
            entry["fingerprints"][m] = metric_fp(m)
            entry["fingerprint"] = fp
            entry["complete"] = all(x in entry["done"] for x in applicable)
            entry["date"] = datetime.datetime.now().isoformat(timespec="seconds")
            data["sets"][task] = entry
            save_json(path, data, task)
            res = F.FidelityResult([fs.task], list(rows), {fs.task: rows})
            bad += sorted({msg.split(" on ", 1)[0] for msg in res.failures()})  # as the docs' table judges (tied: τ n/a)
            print(f"{task} {m}: float64 {seconds['float64']:.0f} s, float32 {seconds['float32']:.0f} s "
                  f"({len(entry['done'])}/{len(applicable)} metrics)", flush=True)
        if "date" in entry:  # at least one metric done: record the inapplicable ones even when nothing ran now
            data["sets"][task] = entry
            save_json(path, data, task)
        print(f"{task}: {len(fs.models)} models, features {t_feat:.0f} s, float64 {entry['seconds']['float64']:.0f} s, "
              f"float32 {entry['seconds']['float32']:.0f} s; below target: {', '.join(bad) or 'none'}", flush=True)
    return data


def _fmt(x, kind):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if kind == "tau":
        return f"{x:.3f}" if x >= 0.99 else f"**{x:.4f}**"
    if kind == "rel":
        return f"{x:.1e}" if math.isfinite(x) else "inf"
    return str(x)


def rows_of(entry: dict) -> dict:
    """``{variant: VariantFidelity}`` of one stored set, recomputed from its stored scores (so a
    change of :func:`pedjax.rank.fidelity.compare` needs no new scoring)."""
    from pedjax.rank import fidelity as F

    s64, s32 = entry["scores"]["float64"], entry["scores"]["float32"]
    return {v: F.compare(s64.get(v), s32.get(v), r.get("error")) for v, r in entry["rows"].items()}


def summarise(entries: dict) -> dict:
    """``{variant: VariantFidelity}`` over the given set entries (smallest τ, worst differences,
    total non-finite; :meth:`pedjax.rank.fidelity.FidelityResult.summary`)."""
    from pedjax.rank import fidelity as F

    rows = {t: rows_of(e) for t, e in entries.items()}
    variants = list(dict.fromkeys(v for rs in rows.values() for v in rs))
    return F.FidelityResult(list(rows), variants, rows).summary()


def _table(sums: dict, variants) -> list[str]:
    """The markdown rows of one group's summary (``{variant: VariantFidelity}``), in ``variants`` order."""
    from pedjax.rank import fidelity as F

    lines = ["| variant | min τ_w | worst rel. diff (where) | worst diff / spread | non-finite in float32 | below float32 range | bound | meets targets |",
             "|---|---:|---|---:|---:|---:|---:|---|"]
    for v in variants:
        s = sums.get(v)
        if s is None:
            continue
        bound = F.rel_bound(v)
        ok = s.nonfinite == 0 and (s.tied or s.tau >= F.TAU_TARGET) and F.bounded_difference(v, s) <= bound
        on = " (on diff / spread)" if F.zoo_level(v) else ""
        tau = "tied" if s.tied else _fmt(s.tau, "tau")
        lines.append(f"| {v} | {tau} | {_fmt(s.worst_rel, 'rel')} ({s.worst_model or '–'}) | "
                     f"{'–' if s.tied else _fmt(s.worst_spread, 'rel')} | {s.nonfinite} | {s.underflow} | {bound:g}{on} | {'yes' if ok else '**no**'} |")
    return lines


def render(data: dict, command: str) -> str:
    from pedjax.rank import fidelity as F

    partial = {t: e for t, e in data["sets"].items() if not e.get("complete", True)}
    sets = {t: e for t, e in data["sets"].items() if t not in partial}
    groups = {"shipped": {t: e for t, e in sets.items() if e["kind"] == "shipped"},
              "synthetic": {t: e for t, e in sets.items() if e["kind"] == "synthetic"}}
    sums = {k: summarise(v) for k, v in groups.items()}
    variants = sorted({v for s in sums.values() for v in s}, key=lambda v: (v.split("+")[0], "+" in v))
    lines = [
        "## Measured fidelity: float32 against float64",
        "",
        "Generated by `experiments/float32_fidelity.py` (do not edit by hand). Every metric is scored on the "
        "same float32 features in float64 and in float32 (`pedjax.rank.fidelity`); feature metrics statically "
        f"and after PED (released defaults, nsigma {NSIGMA}). Per variant, over the sets of each group: the "
        "smallest weighted τ between the float32 and the float64 ranking (target ≥ "
        f"{F.TAU_TARGET}; bold below it), the worst relative score difference |s32 − s64| / |s64|, the worst "
        "|s32 − s64| relative to the zoo's float64 score spread, and how many float32 scores are not finite "
        "where the float64 score is (target 0). *tied*: the float64 scores do not separate the models beyond "
        f"float32 resolution (spread ≤ {F.TIE_LEVEL:g} of their magnitude), so τ does not apply; *below float32 range*: "
        "float64 scores smaller in magnitude than float32's smallest normal number (left out of the relative "
        "difference). The bound column is the documented worst relative difference "
        f"(`pedjax.rank.fidelity.REL_BOUNDS`; {F.REL_TARGET:g} where the metric is well conditioned).",
        "",
    ]
    for g, label in (("shipped", "Shipped zoo"), ("synthetic", "Synthetic zoos")):
        if not groups[g]:
            lines += [f"{label}: not measured.", ""]
            continue
        shapes = "; ".join(f"`{t}` {e['shape'][0]} × {e['shape'][1]} × {'/'.join(map(str, e['shape'][2]))}, C = {e['shape'][3]}"
                           for t, e in groups[g].items()) if g == "synthetic" else (
            f"{len(groups[g])} tasks ({', '.join(groups[g])}), {next(iter(groups[g].values()))['shape'][0]} members, "
            "training splits")
        lines += [f"### {label}: {shapes}", ""] + _table(sums[g], variants) + [""]
        missing = [n for n in F.SYNTHETIC if n not in groups[g]] if g == "synthetic" else []
        if missing:
            lines += ["Not measured yet (resumable metric by metric: `python experiments/float32_fidelity.py --only synthetic`): "
                      + "; ".join(f"`{n}` {F.SYNTHETIC[n][0]} × {F.SYNTHETIC[n][1]} × {F.SYNTHETIC[n][2]}, C = {F.SYNTHETIC[n][3]}"
                                  + (f" ({len(partial[n]['done'])} metrics done: {', '.join(partial[n]['done'])}"
                                     + "".join(f"; {m}: {len(u['models'])} of {partial[n]['shape'][0]} models"
                                               for m, u in partial[n].get("units", {}).items()) + ")" if n in partial else "")
                                  for n in missing) + ".", ""]
    for t, e in partial.items():
        if e.get("done"):
            s_ = summarise({t: e})
            lines += [f"### In progress: `{t}` {e['shape'][0]} × {e['shape'][1]} × {'/'.join(map(str, e['shape'][2]))}, "
                      f"C = {e['shape'][3]} ({len(e['done'])} metrics done)", ""] + _table(s_, sorted(s_, key=lambda v: (v.split("+")[0], "+" in v))) + [""]
    shipped = groups["shipped"]
    if shipped:
        tasks = list(shipped)
        rows = {t: rows_of(e) for t, e in shipped.items()}
        lines += ["Weighted τ per shipped task (float32 ranking against float64 ranking):", "",
                  "| variant | " + " | ".join(tasks) + " |", "|---|" + "---:|" * len(tasks)]
        for v in variants:
            if v not in sums["shipped"]:
                continue
            lines.append(f"| {v} | " + " | ".join(("tied" if rows[t][v].tied else _fmt(rows[t][v].tau, "tau")) if v in rows[t] else "–"
                                                  for t in tasks) + " |")
        lines.append("")
    reasons = [(m, b, why) for m, (b, why) in F.REL_BOUNDS.items() if why]
    if reasons:
        lines += ["Where a bound exceeds the well-conditioned target:", ""] + [f"* **{m}** ({b:g}): {why}" for m, b, why in reasons] + [""]
    secs = {g: sum(e["seconds"]["float64"] + e["seconds"]["float32"] + e["seconds"].get("features", 0) for e in groups[g].values())
            for g in groups}
    fps = sorted({e["fingerprint"] for e in sets.values()})
    dates = sorted(e["date"][:10] for e in sets.values())
    lines += [
        f"Run time on this machine: shipped {secs['shipped'] / 60:.1f} min, synthetic {secs['synthetic'] / 60:.1f} min "
        "(features, float64 and float32 scoring, compilation included; the machine was shared with other jobs; "
        "cumulative: a metric scored again after a change of its code counts twice where its first run predates "
        "per-metric timings).",
        "",
        f"Command: `{command}`  ",
        f"Machine: {data.get('machine', '?')}  ",
        f"Date: {dates[0] if dates else '–'}{' to ' + dates[-1] if dates and dates[-1] != dates[0] else ''}, code fingerprint{'s' if len(fps) > 1 else ''} "
        f"{', '.join(fps)} of all the scoring sources when each set was last written (the JSON keeps each metric's own "
        f"fingerprint, `experiments/_fingerprint.py`), commit {data.get('commit', '?')}",
    ]
    return "\n".join(lines)


def write_doc(path: Path, body: str) -> None:
    from pedjax.util import atomic_write_text

    start, end = f"<!-- {SECTION}:start -->", f"<!-- {SECTION}:end -->"
    text = path.read_text() if path.exists() else "# Precision: float64 and float32\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        pre, rest = text.split(start, 1)
        _, post = rest.split(end, 1)
        text = pre + block + post
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    atomic_write_text(path, text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("shipped", "synthetic"), help="one group of sets (default: both)")
    ap.add_argument("--task", action="append", help="shipped task(s) to run (default: all 11)")
    ap.add_argument("--synthetic", action="append", help="synthetic set(s) of pedjax.rank.fidelity.SYNTHETIC (default: all)")
    ap.add_argument("--scale", type=float, default=1.0, help="shrink the synthetic sets' N and D (1 = published scale)")
    ap.add_argument("--metric", action="append", help="restrict to these metrics (default: every registered one of class labels)")
    ap.add_argument("--models-per-call", action="append", metavar="METRIC=K",
                    help="score METRIC K models at a time, each chunk kept in --json as it finishes (resumes within a "
                         "metric too slow for one session, e.g. linear_probe=1 at published scale)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help="results, one entry per set (resumable)")
    ap.add_argument("--doc", type=Path, default=DEFAULT_DOC, help="the markdown file whose measured section is rewritten")
    ap.add_argument("--fresh", action="store_true", help="recompute every set")
    ap.add_argument("--keep", action="store_true", help="reuse stored sets even if the scoring code changed since")
    ap.add_argument("--from-json", action="store_true", help="only re-render the document from --json")
    ap.add_argument("--no-write", action="store_true", help="leave the document alone")
    args = ap.parse_args(argv)

    from _fingerprint import fingerprint

    from pedjax.cli._common import configure_process

    configure_process()  # as the command line: x64 on (float32 is entered per call), XLA:CPU flag, compilation cache
    from _bench_md import machine

    from pedjax.metrics import REGISTRY, names
    from pedjax.util import git_commit

    data = load_json(args.json)
    if not args.from_json:
        every = names(target="classes")
        unknown = sorted(set(args.metric or ()) - set(every))
        if unknown:
            raise SystemExit(f"--metric: unknown metric(s) {unknown}; choose from {every}")
        metrics = args.metric or every
        units = {}
        for item in args.models_per_call or ():
            name, _, k = item.partition("=")
            if name not in every or not k.isdigit() or int(k) < 1:
                raise SystemExit(f"--models-per-call: expected METRIC=K with METRIC one of {every} and K ≥ 1, got {item!r}")
            if REGISTRY[name].zoo is not None:
                raise SystemExit(f"--models-per-call: {name} is scored over the whole zoo (Metric.zoo), so it cannot "
                                 "be split into chunks of models")
            units[name] = int(k)
        todo = []
        if args.only in (None, "shipped"):
            todo += shipped_sets(args.task)
        if args.only in (None, "synthetic"):
            todo += synthetic_sets(args.scale, args.synthetic)
        t0 = time.perf_counter()
        data.update(machine=machine(), commit=git_commit()[:7])
        # the per-metric fingerprints of the code as it is now, under its global fingerprint: an
        # entry written before per-metric fingerprints (only the global one) is judged by this map
        data.setdefault("legacy", {})[fingerprint()] = {m: fingerprint(m) for m in every}
        save_json(args.json, data)
        run_sets(todo, metrics, data, args.json, fingerprint(), fresh=args.fresh, keep=args.keep, required=every, units=units)
        print(f"total {time.perf_counter() - t0:.0f} s", flush=True)
    if not data["sets"]:
        raise SystemExit(f"{args.json}: no results to render")
    command = "python experiments/float32_fidelity.py" + (f" --scale {args.scale:g}" if args.scale != 1.0 else "")
    body = render(data, command)
    print(body)
    if not args.no_write:
        write_doc(args.doc, body)
        print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
