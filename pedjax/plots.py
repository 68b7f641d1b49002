"""Figures (matplotlib, Agg backend, PNG); ``pedjax plot`` draws them from the command line.

* :func:`scores_vs_truth` — one panel per metric: score against ground truth, one point per
  model, weighted Kendall τ in the panel title, the metric's pick starred.
* :func:`ped_trajectory` — PED's step size ω_t/ω₀ (with the released exit ratio) and potential
  energy U_t/U₀ per step, one line per model (from :class:`pedjax.PEDResult` traces).
* :func:`cluster_projection` — the class clusters of one model before and after PED, projected on
  the first two principal axes of the rescaled features (the space PED moves them in); the
  class balls are drawn with their radius, and the centre shifts as arrows (magnified by the
  factor the title states: the released defaults move centres by a few percent of their spread).
* :func:`score_ranking` — a horizontal bar chart of a zoo's scores.

matplotlib is imported lazily (the ``pedjax`` command starts without it).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .physics import ped
from .rank.measures import weighted_tau
from .util import atomic_path

_MAX_LABELLED = 24  # name points / legend entries only up to this many models
_MAX_CIRCLES = 12  # draw the class balls only up to this many classes


def _plt():
    """pyplot, on the Agg backend unless pyplot is already in use or we run inside Jupyter."""
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and not _interactive():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _interactive() -> bool:
    """True inside IPython/Jupyter (figures stay open there so they display inline)."""
    import sys

    return "ipykernel" in sys.modules


def _save(fig, path) -> str:
    path = Path(path)
    with atomic_path(path) as tmp:  # a figure appears whole or not at all
        fig.savefig(tmp, dpi=130, bbox_inches="tight", format=(path.suffix.lstrip(".") or "png"))
    if not _interactive():
        import matplotlib.pyplot as plt

        plt.close(fig)
    return str(path)


def _short(v: float) -> str:
    return "nan" if not np.isfinite(v) else f"{v:+.3f}"


# ----------------------------------------------------------------------------------------------
# score vs ground truth


def scores_vs_truth(
    scores: Mapping[str, Mapping[str, float]],
    truth: Mapping[str, float],
    path=None,
    *,
    title: str | None = None,
    truth_label: str = "ground truth",
    ncols: int | None = None,
):
    """Scatter each metric's scores against the ground truth; returns the figure, or the PNG path.

    Args:
      scores: ``{metric_label: {model: score}}``; models missing from ``truth`` are left out.
      truth: ``{model: ground truth}``.
      path: where to write the PNG; ``None`` returns the matplotlib figure.
    """

    plt = _plt()
    labels = list(scores)
    if not labels:
        raise ValueError("scores: nothing to plot; pass {metric: {model: score}}")
    n = len(labels)
    ncols = ncols or (2 if n == 4 else min(n, 3))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.9 * nrows), squeeze=False)
    placed = []
    for ax, label in zip(axes.flat, labels, strict=False):  # the grid may have more panels than labels
        s = scores[label]
        models = [m for m in s if m in truth and s[m] is not None and math.isfinite(s[m])]
        if len(models) < 2:
            raise ValueError(f"scores[{label!r}]: fewer than 2 models also have a ground truth; models: {list(s)[:6]}")
        x = np.array([s[m] for m in models], float)
        yv = np.array([truth[m] for m in models], float)
        tw = weighted_tau(x, yv)
        pick = int(np.argmax(x))
        best = int(np.argmax(yv))
        ax.scatter(x, yv, s=36, color="tab:blue", alpha=0.85, zorder=3, label="model")
        ax.scatter([x[best]], [yv[best]], s=140, facecolors="none", edgecolors="tab:green", linewidths=1.8, zorder=4, label="best by ground truth")
        ax.scatter([x[pick]], [yv[pick]], s=160, marker="*", color="tab:red", zorder=5, label="metric's pick")
        placed.append((ax, x, yv, models))
        ax.set_title(f"{label}   τ_w = {_short(tw)}", fontsize=11)
        ax.set_xlabel("score")
        ax.set_ylabel(truth_label, fontsize=9)
        ax.grid(alpha=0.3)
        pad = 0.08 * (x.max() - x.min() or 1.0)
        ax.set_xlim(x.min() - 1.5 * pad, x.max() + 2.5 * pad)  # room for the names
        ypad = 0.1 * (yv.max() - yv.min() or 1.0)
        ax.set_ylim(yv.min() - ypad, yv.max() + 1.5 * ypad)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=9, frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(title or "Transferability score vs ground truth (τ_w: weighted Kendall τ, higher is better)", fontsize=12)
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    for ax, x, yv, models in placed:  # after the layout: label positions are in display space
        if len(models) <= _MAX_LABELLED:
            _label_points(ax, x, yv, models)
    return _save(fig, path) if path is not None else fig


def _label_points(ax, x, y, names, fontsize: float = 7.0) -> None:
    """Name each point, choosing for each label the first of a few offsets whose box overlaps no
    label placed before it and no other point (greedy; enough for a zoo of a few dozen models)."""
    fig = ax.figure
    px = fig.dpi / 72.0  # pixels per point
    P = ax.transData.transform(np.column_stack([x, y]))
    h = fontsize * px * 1.15
    boxes: list[tuple[float, float, float, float]] = []
    offsets = [(4, 2), (4, -2 - fontsize), (-4, 2), (-4, -2 - fontsize), (4, 8), (4, -8 - fontsize), (-4, 8), (-4, -8 - fontsize)]

    def box(i, dx, dy):
        w = 0.58 * fontsize * px * len(names[i])
        x0 = P[i, 0] + dx * px - (w if dx < 0 else 0)
        y0 = P[i, 1] + dy * px
        return (x0, y0, x0 + w, y0 + h)

    def hits(b):
        for c in boxes:
            if b[0] < c[2] and c[0] < b[2] and b[1] < c[3] and c[1] < b[3]:
                return True
        r = 6 * px  # marker radius, the starred/circled ones included
        return any(b[0] - r < p[0] < b[2] + r and b[1] - r < p[1] < b[3] + r for p in P)

    for i in np.argsort(-P[:, 1]):
        choice = next(((dx, dy) for dx, dy in offsets if not hits(box(i, dx, dy))), offsets[0])
        boxes.append(box(i, *choice))
        ax.annotate(names[i], (x[i], y[i]), xytext=choice, textcoords="offset points", fontsize=fontsize, color="0.2",
                    ha="right" if choice[0] < 0 else "left", va="bottom")


# ----------------------------------------------------------------------------------------------
# PED trajectory


def _trace(res) -> tuple[np.ndarray, np.ndarray]:
    steps = int(np.asarray(res.steps))
    change = np.asarray(res.change, float)[:steps]
    energy = np.asarray(res.energy, float)[: steps + 1]
    return change, energy


def ped_trajectory(results: Mapping[str, Any], path=None, *, exit_ratio: float | None = 0.5, title: str | None = None):
    """PED's per-step change and energy for each model; returns the figure or the PNG path.

    Args:
      results: ``{model: PEDResult}`` (``pedjax.ped`` outputs; ``change``/``energy``/``steps`` used).
      exit_ratio: the released stopping threshold on ω_t/ω₀ to draw (``None``: none).
    """
    plt = _plt()
    if not results:
        raise ValueError("results: no PED results to plot")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    cmap = plt.get_cmap("tab20" if len(results) > 10 else "tab10")
    still = []
    for i, (name, res) in enumerate(results.items()):
        change, energy = _trace(res)
        color = cmap(i % cmap.N)
        if change.size == 0 or change[0] <= 0:
            still.append(name)
            continue
        lbl = f"{name} ({change.size} step{'s' if change.size != 1 else ''})"
        a1.plot(np.arange(change.size), change / change[0], "o-", color=color, label=lbl, ms=4)
        if energy[0] > 0:
            a2.plot(np.arange(energy.size), energy / energy[0], "o-", color=color, label=lbl, ms=4)
    if exit_ratio is not None:
        a1.axhline(exit_ratio, color="0.3", ls="--", lw=1)
        a1.text(0.02, exit_ratio, f" exit ratio {exit_ratio:g}: a step this small ends PED", va="bottom", fontsize=8, color="0.3", transform=a1.get_yaxis_transform())
    a1.set_title("step size  ω_t / ω₀   (ω = Σ|Δ class centres|)", fontsize=10)
    a1.set_xlabel("PED step")
    a1.set_ylabel("ω_t / ω₀")
    a1.set_ylim(0, 1.08)
    a2.set_title("potential energy  U_t / U₀   (overlap of class balls)", fontsize=10)
    a2.set_xlabel("after step (0 = before PED)")
    a2.set_ylabel("U_t / U₀")
    a2.set_ylim(0, 1.05)
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.xaxis.get_major_locator().set_params(integer=True)
    if 0 < len(results) - len(still) <= _MAX_LABELLED:
        a2.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    sup = title or "PED trajectory"
    if still:
        sup += f"   (no overlapping classes, not moved: {', '.join(still[:6])}{' …' if len(still) > 6 else ''})"
    fig.suptitle(sup, fontsize=11)
    fig.tight_layout()
    return _save(fig, path) if path is not None else fig


# ----------------------------------------------------------------------------------------------
# class clusters before / after PED


def cluster_projection(X, y, result, source_mean=None, source_std=None, path=None, *, eps: float = 1e-3, title: str | None = None, max_points: int = 2000, seed: int = 0):
    """Class clusters before and after PED on the first two principal axes; figure or PNG path.

    Both panels live in the rescaled space Z = (X − μ̂)/σ̂ where PED moves the classes, projected
    on the principal axes of the original Z (the same axes and limits for both). Circles are the
    class balls (radius = nsigma·ρ_j; a ball projects to a disc of its radius); arrows in the right
    panel are the centre shifts, magnified by the factor in the title when they would be invisible.

    Args:
      X: features before PED [N, D]; y: labels [N]; result: the :class:`pedjax.PEDResult` of
      ``pedjax.ped(X, y, source_mean, source_std, cfg)``; source_mean/std: the same statistics
      (``None``: the target's own, as ``pedjax.ped``).
    """
    plt = _plt()
    X = np.asarray(X, float)
    y = np.asarray(y)
    classes, codes = np.unique(y, return_inverse=True)
    mean = X.mean(0) if source_mean is None else np.asarray(source_mean, float)
    std = X.std(0) if source_std is None else np.asarray(source_std, float)
    std = np.maximum(std, eps)
    Z0 = (X - mean) / std
    Z1 = (np.asarray(result.features, float) - mean) / std
    C = classes.size
    # principal axes of the class centres before PED (the plane in which the classes spread
    # most; principal axes of all samples would mostly show within-class spread)
    cz = np.stack([Z0[codes == j].mean(0) for j in range(C)])
    mu = cz.mean(0)
    _, _, vt = np.linalg.svd(cz - mu, full_matrices=False)
    if vt.shape[0] < 2:  # two classes: add the top within-class axis
        _, _, v2 = np.linalg.svd(Z0 - cz[codes] - ((Z0 - cz[codes]) @ vt[0])[:, None] * vt[0], full_matrices=False)
        vt = np.vstack([vt[:1], v2[:1]])
    W = vt[:2].T
    P0, P1 = (Z0 - mu) @ W, (Z1 - mu) @ W
    c0 = np.stack([P0[codes == j].mean(0) for j in range(C)])
    c1 = np.stack([P1[codes == j].mean(0) for j in range(C)])
    radii = np.asarray(result.radii, float)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(y))[:max_points]
    cmap = plt.get_cmap("tab10" if C <= 10 else "tab20")
    colors = [cmap(j % cmap.N) for j in range(C)]
    allp = np.concatenate([P0[idx], P1[idx], c0, c1])
    lo, hi = np.percentile(allp, 1, axis=0), np.percentile(allp, 99, axis=0)
    pad = 0.12 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    shift = c1 - c0
    span = float(np.max(hi - lo))
    mean_shift = float(np.mean(np.linalg.norm(shift, axis=1)))
    moved = float(np.sum(np.abs(np.asarray(result.change, float)))) > 0  # else only rounding noise
    mag = 1.0
    if moved and 0 < mean_shift < 0.06 * span:  # too small to see: magnify (1-2-5 steps) to ~6 % of the view
        want = 0.06 * span / mean_shift
        mag = max(f * 10.0**e for e in range(0, 8) for f in (1, 2, 5) if f * 10.0**e <= want)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2), sharex=True, sharey=True)
    steps = int(np.asarray(result.steps))
    after = f"after PED ({steps} step{'s' if steps != 1 else ''})" if moved else "after PED: not moved (no overlapping class balls)"
    for ax, P, c, name in ((axes[0], P0, c0, "before PED"), (axes[1], P1, c1, after)):
        ax.scatter(P[idx, 0], P[idx, 1], c=[colors[k] for k in codes[idx]], s=6, alpha=0.45, linewidths=0)
        for j in range(C):
            if C <= _MAX_CIRCLES:
                ax.add_patch(plt.Circle(c[j], radii[j], fill=False, color=colors[j], lw=0.9, alpha=0.6, ls="--"))
            ax.scatter(*c[j], color=colors[j], s=60, edgecolors="k", linewidths=0.8, zorder=4)
            if C <= 20:
                ax.annotate(str(classes[j]), c[j], xytext=(5, 5), textcoords="offset points", fontsize=8, weight="bold", zorder=5)
        ax.set_title(name, fontsize=11)
        ax.set_xlabel("principal axis 1 (rescaled features)")
        ax.grid(alpha=0.25)
    axes[0].set_ylabel("principal axis 2")
    for j in range(C if moved else 0):
        axes[1].scatter(*c0[j], facecolors="none", edgecolors="0.3", s=40, linewidths=0.8, zorder=5)
        axes[1].annotate("", xy=c0[j] + mag * shift[j], xytext=c0[j], arrowprops=dict(arrowstyle="-|>", color="k", lw=1.2, mutation_scale=9), zorder=6)
    axes[0].set_xlim(lo[0], hi[0])
    axes[0].set_ylim(lo[1], hi[1])
    arrows = ("arrows: centre shift from the old centre (hollow)" + (f", magnified ×{mag:g}" if mag != 1 else "")) if moved else "PED moved nothing"
    fig.suptitle((title or "Class clusters before and after PED") + f"\n{'dashed circles: class balls (radius nsigma·ρ); ' if C <= _MAX_CIRCLES else ''}{arrows}", fontsize=11)
    fig.tight_layout()
    return _save(fig, path) if path is not None else fig


# ----------------------------------------------------------------------------------------------
# ranking bars


def score_ranking(scores: Mapping[str, float], path=None, *, title: str = "scores"):
    """Horizontal bars of ``{model: score}``, best at the top; figure or PNG path."""
    plt = _plt()
    # a model without a finite score (NaN, -inf for degenerate features) has no bar; it is named
    unscored = [k for k, v in scores.items() if v is None or not math.isfinite(v)]
    scores = {k: v for k, v in scores.items() if k not in unscored}
    order = sorted(scores, key=lambda k: scores[k])
    if unscored:
        title = f"{title}\nno score (ranked last): {', '.join(unscored[:6])}{' …' if len(unscored) > 6 else ''}"
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(order) + 1.4))
    vals = [scores[k] for k in order]
    ax.barh(range(len(order)), vals, color=["tab:red" if k == order[-1] else "tab:blue" for k in order])
    ax.set_yticks(range(len(order)), order, fontsize=8)
    ax.set_xlabel("score (higher = predicted to transfer better)")
    ax.set_title(title, fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path) if path is not None else fig


# ----------------------------------------------------------------------------------------------
# figures for the commands


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_.+" else "_" for ch in name)


def ped_runs(store, cfg, models=None) -> dict:
    """``{model: (X, y, PEDResult, (mean, std))}`` for the models of a feature store (one ``pedjax.ped`` each)."""
    out = {}
    for m in models or store.models:
        X, y = store.features(m), store.labels(m)
        mean, std = store.source_stats(m)
        out[m] = (X, y, ped(X, y, mean, std, cfg), (mean, std))
    return out


def score_figures(store, result: Mapping, cfg, out_dir) -> list[str]:
    """``pedjax score --plot DIR``: scores.png; with PED, ped_trajectory.png and clusters_<best>.png."""
    out = Path(out_dir)
    label = result["metric"] + ("+ped" if cfg is not None else "")
    files = [score_ranking(result["scores"], out / "scores.png", title=f"{label} on {result.get('dataset') or 'the zoo'}")]
    if cfg is not None:
        runs = ped_runs(store, cfg)
        files.append(ped_trajectory({m: r[2] for m, r in runs.items()}, out / "ped_trajectory.png", exit_ratio=cfg.exit_ratio if cfg.variant == "released" else None,
                                    title=f"PED trajectory on {result.get('dataset') or 'the zoo'} (nsigma={cfg.nsigma:g})"))
        best = result["ranking"][0]
        X, y, res, (mean, std) = runs[best]
        files.append(cluster_projection(X, y, res, mean, std, out / f"clusters_{_safe(best)}.png", eps=cfg.eps,
                                        title=f"{best} on {result.get('dataset') or 'the zoo'}: class clusters before and after PED (nsigma={cfg.nsigma:g})"))
    return files
