"""Every table the command line prints (rich), and the one JSON writer (strict JSON, NaN → null)."""
from __future__ import annotations

import math
import sys

from ..rank import ranking
from ..util import dumps_json


def console(width: int = 140):
    """A rich console: the terminal's width on a terminal, ``width`` columns otherwise."""
    from rich.console import Console

    con = Console()
    return con if con.is_terminal else Console(width=width)


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


def demo_tables(result: dict) -> None:
    """The demo's ranking table (LogME/SFDA ± PED beside the ground truth) and every metric's τ_w."""
    from rich.table import Table

    con = console()
    models = result["models"]
    order = sorted(models, key=lambda k: -models[k]["truth"])
    shown = [m for m in ("logme", "logme+ped", "sfda", "sfda+ped") if m in result["scores"]]
    t = Table(title=f"Zoo ranking on {result['task']} ({precision_note()})")
    t.add_column("model")
    has_method = all("method" in v for v in models.values())
    if has_method:
        t.add_column("method")
    t.add_column("D", justify="right")
    t.add_column(result.get("truth_label", "ground truth"), justify="right")
    t.add_column("GT rank", justify="right")
    for m in shown:
        t.add_column(m, justify="right")
    for i, k in enumerate(order, 1):
        row = [k] + ([models[k]["method"]] if has_method else []) + [str(models[k]["dim"]), f"{models[k]['truth']:.3f}", str(i)]
        for m in shown:
            s = result["scores"][m]
            rank = ranking(s).index(k) + 1
            row.append(f"{s[k]:.4g} (#{rank})")
        t.add_row(*row)
    con.print(t)
    tt = Table(title="Weighted Kendall τ against ground truth (higher is better)")
    tt.add_column("metric")
    tt.add_column("static", justify="right")
    tt.add_column(f"+ PED (nsigma={result['ped']['nsigma']})", justify="right")
    taus = result["weighted_tau"]
    for m in sorted({k.replace("+ped", "") for k in taus}):
        tt.add_row(m, _signed(taus[m]), _signed(taus[m + "+ped"]) if m + "+ped" in taus else "n/a (no features)")
    con.print(tt)
    con.print(f"[dim]{len(models)} models, {result['n_samples']} target samples, {result['seconds']:.1f} s[/dim]")


def demo_judged(result: dict) -> None:
    """Each metric's τ_w beside the noise ceiling and the history mean rank baseline (shipped zoo)."""
    ja = result.get("judged_against")
    if not ja:
        return
    from rich.table import Table

    def f(v):
        return "n/a" if v is None else f"{v:+.3f}"

    ceiling, hist = ja.get("noise_ceiling"), ja.get("history_tau")
    t = Table(title="τ_w beside what it should be read against")
    for c in ("metric", "τ_w", "noise ceiling", "history mean rank", "τ_w − history"):
        t.add_column(c, justify="left" if c == "metric" else "right")
    for k, v in sorted(result["weighted_tau"].items(), key=lambda kv: -(kv[1] if kv[1] == kv[1] else -9)):
        t.add_row(k, f(v), f(ceiling), f(hist), "n/a" if hist is None or v != v else f"{v - hist:+.3f}")
    con = console()
    con.print(t)
    con.print("[dim]noise ceiling: mean over seed pairs of τ_w(accuracies of seed i, seed j)"
              + (" — n/a: this zoo's ground truth keeps no per-seed accuracies" if ceiling is None else "")
              + "; history mean rank: the models ranked by their mean rank on the zoo's other tasks[/dim]")


def score_table(result: dict) -> None:
    """``pedjax score``: the ranking of one metric (± PED)."""
    from rich.table import Table

    con = console(120)
    label = result["metric"] + (f" + PED (nsigma={result['ped']['nsigma']})" if result["ped"] else "")
    con.print(f"{label} on {result['dataset'] or 'the zoo'}: {len(result['scores'])} models, {result['seconds']:.1f} s, "
              f"{precision_note()}")
    t = Table()
    t.add_column("rank", justify="right")
    t.add_column("model")
    t.add_column("score", justify="right")
    for i, m in enumerate(result["ranking"], 1):
        t.add_row(str(i), m, f"{result['scores'][m]:.6g}")
    con.print(t)


def score_csv(result: dict) -> None:
    print("rank,model,score")
    for i, m in enumerate(result["ranking"], 1):
        print(f"{i},{m},{result['scores'][m]!r}")


def evaluate_table(out: dict) -> None:
    """``pedjax evaluate``: every measure per scores file."""
    from rich.table import Table

    con = console(130)
    t = Table(title=f"Scores vs ground truth: {out['truth']}")
    for col, just in (("metric", "left"), ("models", "right"), ("τ_w", "right"), ("τ", "right"), ("Pearson", "right"),
                      ("top-1", "right"), ("top-3", "right"), ("rel@1", "right"), ("rel@3", "right"), ("pick (GT rank)", "left")):
        t.add_column(col, justify=just)
    for label, r in out["results"].items():
        t.add_row(label, str(r["models"]), _signed(r["weighted_tau"]), _signed(r["kendall_tau"]), _signed(r["pearson"]),
                  f"{r['top1']:.0f}", f"{r['top3']:.0f}", f"{r['rel1']:.3f}", f"{r['rel3']:.3f}",
                  f"{r['pick']} (#{r['pick_truth_rank']})")
    con.print(t)


def zoo_table(root, manifest: dict, truth: dict | None) -> None:
    """``pedjax zoo list``: members, their pretraining and ground truth per task."""
    from rich.table import Table

    t = Table(title=f"pedjax zoo: {root}")
    cols = ["member", "arch", "method", "D", "params", "probe acc", "pretrain"]
    tasks = sorted(truth["datasets"]) if truth else []
    for c in cols + tasks:
        t.add_column(c, justify="right" if c not in ("member", "arch", "method") else "left")
    for e in manifest["members"]:
        lp = e.get("linear_probe", {})
        acc = f"{lp.get('accuracy', float('nan')):.3f}" + ("" if lp.get("passed", True) else " (!)")
        pr = e.get("pretrain", {})
        steps = (pr.get("config") or {}).get("steps")
        if pr.get("snapshot_of"):
            how = f"{pr['snapshot_of']} at step {pr.get('at_step', '?')}"
        elif e["method"] == "random":
            how = "random init"
        else:
            how = f"{steps} steps, {pr.get('wall_seconds') or 0:.0f} s"
        row = [e["name"], e["arch"], e["method"], str(e["feature_dim"]), str(e.get("n_params", "")), acc, how]
        for task in tasks:
            v = truth["datasets"][task].get(e["name"])
            row.append("" if v is None else f"{v:.3f}")
        t.add_row(*row)
    console(200).print(t)


def truth_table(rows: list[dict], min_ceiling: float) -> None:
    """``pedjax zoo list``: per task, how much of the ground truth is done and its noise ceiling."""
    from rich.table import Table

    t = Table(title="ground truth per task (noise ceiling: mean τ_w between the seeds' rankings)")
    for c in ("task", "members done", "seeds", "noise ceiling", ""):
        t.add_column(c, justify="left" if c in ("task", "") else "right")
    for r in rows:
        c = r["ceiling"]
        flag = "" if c is None or c != c else ("below the headline bar" if c < min_ceiling else "")
        t.add_row(r["task"], f"{r['done']}/{r['members']}", str(r["seeds"]), "—" if c is None or c != c else f"{c:.3f}", flag)
    console(160).print(t)


def tasks_table(rows: list[tuple]) -> None:
    """``pedjax tasks``: one row per registered task."""
    from rich.table import Table

    table = Table(title="pedjax target tasks")
    for col in ("name", "classes", "train", "test", "data", "description"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*map(str, row))
    console(160).print(table)


def wrote(files) -> None:
    for f in files:
        print(f"wrote {f}")


def warning(command: str, msg: str) -> None:
    print(f"pedjax {command}: warning: {msg}", file=sys.stderr)


def note(command: str, msg: str) -> None:
    print(f"pedjax {command}: note: {msg}", file=sys.stderr)


def recommend_table(result: dict) -> None:
    """``pedjax recommend``: the ranking with every component's score."""
    from rich.table import Table

    con = console(150)
    h = result["history"]
    f = result["factorisation"]
    con.print(f"Recommendation for {result['task']} ({precision_note()}): history = {h['kind']} on {len(h['tasks'])} task(s)"
              + (f" ({', '.join(h['left_out'])} left out: its own ground truth is not used)" if h["left_out"] else ""))
    con.print(f"proxy {result['proxy']}; nearest past tasks: "
              + ", ".join(f"{t} {w:.2f}" for t, w in result["neighbours"].items())
              + f"; factorisation rank {f['rank']} ({'non-negative' if f['nonneg'] else 'plain'}), penalty {f['reg']:g}")
    if "hybrid" in result:
        hy = result["hybrid"]
        con.print(f"hybrid = {1 - hy['weight']:.2f}·z(history mean rank) + {hy['weight']:.2f}·z({hy['metric']}) "
                  f"(weight {hy['weight_from']})")
    comps = result["components"]
    cols = [c for c in comps if c != result["final"]] + [result["final"]]
    t = Table()
    t.add_column("rank", justify="right")
    t.add_column("model")
    for c in cols:
        t.add_column(("▶ " if c == result["final"] else "") + c, justify="right")
    for i, m in enumerate(result["ranking"], 1):
        t.add_row(str(i), m, *[_signed(comps[c].get(m)) if c not in ("history",) else f"{comps[c].get(m, float('nan')):.3f}"
                               for c in cols])
    con.print(t)
    s = result["seconds"]
    con.print("[dim]" + ", ".join(f"{k.replace('_', ' ')} {v:.2f} s" for k, v in s.items()) + "[/dim]")
