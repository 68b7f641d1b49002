"""Every table the command line prints (rich), and the one JSON writer (strict JSON, NaN → null)."""
from __future__ import annotations

import dataclasses
import math
import os
import sys
from typing import TYPE_CHECKING

from ..rank import ranking
from ..util import dumps_json

if TYPE_CHECKING:
    from rich.console import JustifyMethod

#: output width when stdout is neither a terminal nor sized by ``$COLUMNS`` (a pipe, a file)
DEFAULT_WIDTH = 100


def console(width: int | None = None):
    """A rich console as wide as ``$COLUMNS`` when that is set (a positive integer), else as the
    terminal; otherwise (a pipe, a file) ``width`` columns, :data:`DEFAULT_WIDTH` by default.

    Every table below fits its console's width (:func:`_print_split`): a table too wide is split
    into several that repeat the columns naming the rows, long text wraps at spaces, and no name
    of a row or column is ever cut."""
    from rich.console import Console

    cols = os.environ.get("COLUMNS", "").strip()
    if cols.isdigit() and int(cols) > 0:
        return Console(width=int(cols))
    con = Console()
    return con if con.is_terminal else Console(width=width or DEFAULT_WIDTH)


#: a prose column (``Col(prose=True)``) is at least this wide (narrower, a description reads one
#: word per line; the table is split instead); a word longer than its width folds
PROSE_MIN = 30


@dataclasses.dataclass(frozen=True)
class Col:
    """A table column: its header (``\\n`` for a two-line header), justification, and how its cells
    may break: ``wrap`` at spaces (never inside a word), ``prose`` at spaces and, in a column narrower
    than a word, inside it (descriptions, citations: at least :data:`PROSE_MIN` wide). At most one column of a table breaks; every
    other one is as wide as its widest cell, so a name is never cut."""

    header: str
    justify: JustifyMethod = "right"
    wrap: bool = False
    prose: bool = False


def _text(s):
    from rich.text import Text

    return s if isinstance(s, Text) else Text(str(s))  # plain text: a name with [brackets] is not markup


def _table(title: str | None, cols: list[Col], rows: list[list], **kwargs):
    from rich.cells import cell_len
    from rich.table import Table

    t = Table(title=title, **kwargs)
    for j, c in enumerate(cols):
        if c.wrap or c.prose:
            t.add_column(_text(c.header), justify=c.justify, overflow="fold")
        else:
            lines = [*c.header.split("\n"), *(ln for r in rows for ln in _text(r[j]).plain.split("\n"))]
            t.add_column(_text(c.header), justify=c.justify, no_wrap=True, min_width=max(map(cell_len, lines)))
    for r in rows:
        t.add_row(*map(_text, r))
    return t


def _min_width(con, table, cols: list[Col], rows: list[list]) -> int:
    """The narrowest ``table`` (made by :func:`_table` of ``cols`` and ``rows``) renders without
    cutting a cell: no-wrap columns as wide as their widest cell, ``wrap`` columns as their longest
    word, ``prose`` columns :data:`PROSE_MIN` (or their widest cell, when narrower)."""
    from rich.cells import cell_len

    width = table.__rich_measure__(con, con.options.update_width(1 << 16)).minimum
    for j, c in enumerate(cols):
        if c.prose:
            cells = [_text(x).plain for x in [c.header, *(r[j] for r in rows)]]
            longest_word = max((cell_len(w) for x in cells for w in x.split()), default=0)
            widest = max((cell_len(ln) for x in cells for ln in x.split("\n")), default=0)
            width += min(widest, PROSE_MIN) - longest_word
    return width


def _print_split(con, title: str | None, keys: list[Col], values: list[Col], rows: list[list], *, balance: bool = True,
                 **kwargs) -> int:
    """Print a table of ``keys + values`` columns (``rows`` hold the key cells, then the value cells).
    When it is wider than ``con``, print it as several tables, each with the ``keys`` columns and a
    share of the ``values`` columns in order (as even as fits with ``balance``, else as many as
    fit in the first ones), titled "(i/n)". Returns the number of tables."""
    nk = len(keys)

    def part(idx):
        return keys + [values[i] for i in idx], [list(r[:nk]) + [r[nk + i] for i in idx] for r in rows]

    def build(idx, part_title=None):
        return _table(part_title, *part(idx), **kwargs)

    def fits(idx):
        return _min_width(con, build(idx), *part(idx)) <= con.width

    chunks: list[list[int]] = []
    cur: list[int] = []
    for i in range(len(values)):
        if cur and not fits(cur + [i]):
            chunks.append(cur)
            cur = []
        cur.append(i)
    chunks.append(cur)
    if balance and len(chunks) > 1:  # the same number of tables, their columns shared out evenly where that fits
        n = len(chunks)
        size = -(-len(values) // n)
        even = [list(range(k, min(k + size, len(values)))) for k in range(0, len(values), size)]
        if len(even) == n and all(fits(c) for c in even):
            chunks = even
    n = len(chunks)
    for i, idx in enumerate(chunks):
        con.print(build(idx, title if n == 1 or title is None else f"{title} ({i + 1}/{n})"))
    return n


def text(msg: str, width: int | None = None) -> None:
    """Print a line of prose, wrapped at spaces to the console's width (no markup)."""
    console(width).print(_text(msg))


def print_json(obj, *, result: bool = True) -> None:
    """Print ``obj`` as strict JSON. A ``result`` dict records the precision its computations ran in
    (``"precision": "float64" | "float32"``, :mod:`pedjax._precision`) unless it already does."""
    if result and isinstance(obj, dict) and "precision" not in obj:
        from .._precision import resolve

        obj = {**obj, "precision": resolve()}
    print(dumps_json(obj, indent=1))


def precision_note() -> str:
    """``"float64"``/``"float32"``, for table headers."""
    from .._precision import resolve

    return resolve()


def _signed(v) -> str:
    return "nan" if v is None or not math.isfinite(v) else f"{v:+.3f}"


def _two_lines(label: str, at: int = 10) -> str:
    """A header longer than ``at`` characters on two lines (split at the space nearest its middle)."""
    if len(label) <= at or " " not in label:
        return label
    spaces = [i for i, ch in enumerate(label) if ch == " "]
    i = min(spaces, key=lambda i: abs(i - len(label) / 2))
    return label[:i] + "\n" + label[i + 1:]


def demo_tables(result: dict) -> None:
    """The demo's ranking table (LogME/SFDA ± PED beside the ground truth) and every metric's τ_w."""
    con = console()
    models = result["models"]
    order = sorted(models, key=lambda k: -models[k]["truth"])
    shown = [m for m in ("logme", "logme+ped", "sfda", "sfda+ped") if m in result["scores"]]
    has_method = all("method" in v for v in models.values())
    values = ([Col("method", "left")] if has_method else []) + [
        Col("D"), Col(_two_lines(result.get("truth_label", "ground truth"))), Col("GT\nrank")] + [Col(m) for m in shown]
    ranks = {m: {k: i for i, k in enumerate(ranking(result["scores"][m]), 1)} for m in shown}
    rows = []
    for i, k in enumerate(order, 1):
        row = [k] + ([models[k]["method"]] if has_method else []) + [str(models[k]["dim"]), f"{models[k]['truth']:.3f}", str(i)]
        rows.append(row + [f"{result['scores'][m][k]:.4g} (#{ranks[m][k]})" for m in shown])
    # not balanced: the ground truth stays beside as many of the metrics as fit
    _print_split(con, f"Zoo ranking on {result['task']} ({precision_note()})", [Col("model", "left")], values, rows,
                 balance=False)
    taus = result["weighted_tau"]
    rows = [[m, _signed(taus[m]), _signed(taus[m + "+ped"]) if m + "+ped" in taus else "n/a (no features)"]
            for m in sorted({k.replace("+ped", "") for k in taus})]
    _print_split(con, "Weighted Kendall τ against ground truth (higher is better)", [Col("metric", "left")],
                 [Col("static"), Col(f"+ PED\n(nsigma={result['ped']['nsigma']})")], rows)
    con.print(_text(f"{len(models)} models, {result['n_samples']} target samples, {result['seconds']:.1f} s"), style="dim")


def demo_judged(result: dict) -> None:
    """Each metric's τ_w beside the noise ceiling and the history mean rank baseline (shipped zoo)."""
    ja = result.get("judged_against")
    if not ja:
        return

    def f(v):
        return "n/a" if v is None else f"{v:+.3f}"

    ceiling, hist = ja.get("noise_ceiling"), ja.get("history_tau")
    rows = [[k, f(v), f(ceiling), f(hist), "n/a" if hist is None or v != v else f"{v - hist:+.3f}"]
            for k, v in sorted(result["weighted_tau"].items(), key=lambda kv: -(kv[1] if kv[1] == kv[1] else -9))]
    con = console()
    _print_split(con, "τ_w beside what it should be read against", [Col("metric", "left")],
                 [Col("τ_w"), Col("noise\nceiling"), Col("history\nmean rank"), Col("τ_w −\nhistory")], rows)
    con.print(_text("noise ceiling: mean over seed pairs of τ_w(accuracies of seed i, seed j)"
                    + (" — n/a: this zoo's ground truth keeps no per-seed accuracies" if ceiling is None else "")
                    + "; history mean rank: the models ranked by their mean rank on the zoo's other tasks"), style="dim")


def score_table(result: dict) -> None:
    """``pedjax score``: the ranking of one metric (± PED)."""
    con = console()
    label = result["metric"] + (f" + PED (nsigma={result['ped']['nsigma']})" if result["ped"] else "")
    con.print(_text(f"{label} on {result['dataset'] or 'the zoo'}: {len(result['scores'])} models, {result['seconds']:.1f} s, "
                    f"{precision_note()}"))
    rows = [[str(i), m, f"{result['scores'][m]:.6g}"] for i, m in enumerate(result["ranking"], 1)]
    _print_split(con, None, [Col("rank"), Col("model", "left")], [Col("score")], rows)


def score_csv(result: dict) -> None:
    print("rank,model,score")
    for i, m in enumerate(result["ranking"], 1):
        print(f"{i},{m},{result['scores'][m]!r}")


def evaluate_table(out: dict) -> None:
    """``pedjax evaluate``: every measure per scores file."""
    con = console()
    values = [Col(c) for c in ("models", "τ_w", "τ", "Pearson", "top-1", "top-3", "rel@1", "rel@3")]
    values.append(Col("pick\n(GT rank)", "left"))
    rows = [[label, str(r["models"]), _signed(r["weighted_tau"]), _signed(r["kendall_tau"]), _signed(r["pearson"]),
             f"{r['top1']:.0f}", f"{r['top3']:.0f}", f"{r['rel1']:.3f}", f"{r['rel3']:.3f}",
             f"{r['pick']} (#{r['pick_truth_rank']})"] for label, r in out["results"].items()]
    _print_split(con, f"Scores vs ground truth: {out['truth']}", [Col("metric", "left")], values, rows)


def _pretrain(e: dict) -> str:
    pr = e.get("pretrain", {})
    if pr.get("snapshot_of"):
        return f"step {pr.get('at_step', '?')} of {pr['snapshot_of']}"
    if e["method"] == "random":
        return "random init"
    steps = (pr.get("config") or {}).get("steps")
    return f"{steps} steps, {pr.get('wall_seconds') or 0:.0f} s"


def zoo_table(root, manifest: dict, truth: dict | None) -> None:
    """``pedjax zoo list``: the members and their pretraining; then the ground truth per member and
    task (the tasks as short codes T1, T2, … with a legend when their names do not fit)."""
    con = console()
    members = manifest["members"]
    con.print(_text(f"pedjax zoo: {root} ({len(members)} member{'s' if len(members) != 1 else ''})"))
    rows = []
    for e in members:
        lp = e.get("linear_probe", {})
        acc = f"{lp.get('accuracy', float('nan')):.3f}" + ("" if lp.get("passed", True) else " (!)")
        rows.append([e["name"], e["arch"], e["method"], str(e["feature_dim"]), str(e.get("n_params", "")), acc, _pretrain(e)])
    values = [Col("arch", "left"), Col("method", "left"), Col("D"), Col("params"), Col("probe\nacc"),
              Col("pretrain", "left", wrap=True)]
    _print_split(con, "members", [Col("member", "left")], values, rows)
    if any(not e.get("linear_probe", {}).get("passed", True) for e in members):
        con.print(_text("(!): below the linear-probe sanity bar"), style="dim")
    if not truth:
        return
    tasks = sorted(truth["datasets"])
    rows = [[e["name"]] + ["" if truth["datasets"][t].get(e["name"]) is None else f"{truth['datasets'][t][e['name']]:.3f}"
                           for t in tasks] for e in members]
    title = f"ground truth: {truth.get('metric', 'fine-tuned accuracy')} per member and task"
    full = [Col("member", "left")] + [Col(t) for t in tasks]
    if _min_width(con, _table(None, full, rows), full, rows) <= con.width:
        _print_split(con, title, [Col("member", "left")], [Col(t) for t in tasks], rows)
        return
    codes = [f"T{i}" for i in range(1, len(tasks) + 1)]
    _print_split(con, title, [Col("member", "left")], [Col(c) for c in codes], rows)
    con.print(_text("tasks: " + ", ".join(f"{c}={t}" for c, t in zip(codes, tasks, strict=True))))


def truth_table(rows: list[dict], min_ceiling: float) -> None:
    """``pedjax zoo list``: per task, how much of the ground truth is done and its noise ceiling."""
    out = []
    for r in rows:
        c = r["ceiling"]
        flag = "" if c is None or c != c else ("below the headline bar" if c < min_ceiling else "")
        out.append([r["task"], f"{r['done']}/{r['members']}", str(r["seeds"]), "—" if c is None or c != c else f"{c:.3f}", flag])
    _print_split(console(), "ground truth per task (noise ceiling: mean τ_w between the seeds' rankings)", [Col("task", "left")],
                 [Col("members\ndone"), Col("seeds"), Col("noise\nceiling"), Col("", "left", wrap=True)], out)


def tasks_table(rows: list[tuple]) -> None:
    """``pedjax tasks``: one row per registered task (name, domain, classes, train, test, data,
    description; the description wraps)."""
    values = [Col("domain", "left"), Col("classes"), Col("train"), Col("test"), Col("data", "left"),
              Col("description", "left", prose=True)]
    _print_split(console(), "pedjax target tasks", [Col("name", "left")], values, [list(map(str, r)) for r in rows])


def metrics_table(rows: list[dict]) -> None:
    """``pedjax metrics``: one row per registered metric, a column per key of ``rows`` (the first
    names the metric; a column empty in every row is left out; ``citation`` wraps as prose)."""
    if not rows:
        return
    keys = [k for i, k in enumerate(rows[0]) if i == 0 or any(str(r.get(k) or "") for r in rows)]
    values = [Col(k, "left", prose=(k == "citation")) for k in keys[1:]]
    _print_split(console(), "pedjax metrics", [Col(keys[0], "left")], values,
                 [[str(r.get(k) or "") for k in keys] for r in rows])


def wrote(files) -> None:
    for f in files:
        print(f"wrote {f}")


def warning(command: str, msg: str) -> None:
    print(f"pedjax {command}: warning: {msg}", file=sys.stderr)


def note(command: str, msg: str) -> None:
    print(f"pedjax {command}: note: {msg}", file=sys.stderr)


def _component_legend(result: dict) -> str:
    """One line saying what each column of :func:`recommend_table` is (pedjax/recommend/fennec.py,
    hybrid.py): only the columns shown."""
    from ..recommend.hybrid import META_WEIGHT

    comps = result["components"]
    says = {
        "history": "history = mean normalised rank on the past tasks (1 best)",
        "transfer": "transfer = predicted by the factorised history from the nearest past tasks",
        "meta": "meta = predicted from architecture (archi2vec), size and pretraining method",
        "fennec": "fennec = z(transfer)" + (f" + {result.get('meta_weight', META_WEIGHT):g}·z(meta)" if "meta" in comps else ""),
    }
    if "hybrid" in result:
        hy = result["hybrid"]
        says[hy["metric"]] = f"{hy['metric']} = the metric on the task's labelled images"
        says["hybrid"] = f"hybrid = {1 - hy['weight']:.2f}·z(history) + {hy['weight']:.2f}·z({hy['metric']})"
    order = [c for c in comps if c != result["final"]] + [result["final"]]
    return "; ".join(says[c] for c in order if c in says) + "; z: z-score over the models; ▶: the ranking"


def recommend_table(result: dict) -> None:
    """``pedjax recommend``: the ranking with every component's score, and one line saying what
    each column is."""
    con = console()
    h = result["history"]
    f = result["factorisation"]
    con.print(_text(f"Recommendation for {result['task']} ({precision_note()}): history = {h['kind']} on {len(h['tasks'])} task(s)"
                    + (f" ({', '.join(h['left_out'])} left out: its own ground truth is not used)" if h["left_out"] else "")))
    con.print(_text(f"proxy {result['proxy']}; nearest past tasks: "
                    + ", ".join(f"{t} {w:.2f}" for t, w in result["neighbours"].items())
                    + (f"; novelty {nov:.2f}" + (" (> 1: unlike every past task)" if nov > 1 else "")
                       if (nov := result.get("novelty")) is not None else "")
                    + f"; factorisation rank {f['rank']} ({'non-negative' if f['nonneg'] else 'plain'}), penalty {f['reg']:g}"))
    if "hybrid" in result:
        hy = result["hybrid"]
        con.print(_text(f"hybrid of history mean rank and {hy['metric']}, weight {hy['weight']:.2f} ({hy['weight_from']})"))
    comps = result["components"]
    cols = [c for c in comps if c != result["final"]] + [result["final"]]
    rows = [[str(i), m] + [_signed(comps[c].get(m)) if c != "history" else f"{comps[c].get(m, float('nan')):.3f}" for c in cols]
            for i, m in enumerate(result["ranking"], 1)]
    _print_split(con, None, [Col("rank"), Col("model", "left")], [Col(("▶ " if c == result["final"] else "") + c) for c in cols], rows)
    con.print(_text(_component_legend(result)), style="dim")
    s = result["seconds"]
    con.print(_text(", ".join(f"{k.replace('_', ' ')} {v:.2f} s" for k, v in s.items())), style="dim")
