"""archi2vec: a Flax architecture as an attributed DAG read from its jaxpr, embedded with
Weisfeiler–Lehman subtree features (graph2vec-style), and the meta score built on it.

Fennec (arXiv 2403.06382) embeds each candidate's architecture as a graph with graph2vec
(Narayanan et al., 2017: a graph is the "document" of its rooted WL subtrees, embedded with
doc2vec) and combines it with other meta-features into a meta score. pedjax:

1. **Graph** (:func:`arch_graph`): ``jax.make_jaxpr`` of ``module.apply`` on abstract parameters
   and one abstract image; every equation is a node (sub-jaxprs of ``jit``/``custom_jvp_call``/…
   are inlined), every parameter leaf and the image are input nodes, data flow gives the edges.
   Node attributes: the primitive's name and the rank of its output (structure), and the output's
   per-sample size (shape).
2. **Embedding** (:func:`embed`): ``iterations`` rounds of WL relabelling (a node's new label
   hashes its label with the sorted labels of its predecessors and of its successors); the bag of
   every round's labels is feature-hashed (MD5, signed) into ``dim`` buckets of log-counts and
   L2-normalised — the bag of rooted subtrees graph2vec starts from, without the doc2vec step
   (with a dozen graphs there is nothing to train it on; a fixed hash keeps embeddings comparable
   across zoos). The shape attributes enter as a separate block: a soft histogram of
   log2(per-sample output size), L2-normalised and weighted ``shape_weight``. A width change
   therefore leaves the structural block unchanged and moves only the shape block; a change of
   family moves the structural block (tested).
3. **Meta score** (:func:`meta_features`, :func:`meta_scores`): [archi2vec, log parameter count,
   log feature width, one-hot pretraining objective] → a ridge model fitted on the history
   (target: each model's mean per-task z-score), the ridge penalty chosen by leave-one-model-out.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Graph:
    """An attributed DAG (:func:`arch_graph`).

    Attributes:
      labels: each node's label, ``"primitive/rank"`` (``param``, ``input`` and ``const`` for
        input nodes).
      sizes: each node's per-sample output size (elements).
      edges: ``(src, dst)`` node index pairs of the data flow, without repeats.
    """

    labels: tuple[str, ...]
    sizes: tuple[int, ...]
    edges: tuple[tuple[int, int], ...]

    @property
    def n_nodes(self) -> int:
        return len(self.labels)


def _sub_jaxprs(eqn):
    for k in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        j = eqn.params.get(k)
        if j is not None and (hasattr(j, "eqns") or hasattr(j, "jaxpr")):
            return j
    return None


def arch_graph(module, input_shape: Sequence[int] = (28, 28, 1)) -> Graph:
    """The attributed DAG of ``module.apply({"params": p}, x)`` for one image (the module docstring).

    Traced abstractly (``jax.eval_shape`` / ``jax.make_jaxpr``): no parameter is materialised.

    Args:
      module: a Flax module taking images ``[1, *input_shape]``.
      input_shape: one image's shape (H, W, C).

    Returns:
      The :class:`Graph`.
    """
    import jax
    import jax.numpy as jnp

    params = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), jnp.zeros((1, *input_shape), jnp.float32)))["params"]
    closed = jax.make_jaxpr(lambda p, x: module.apply({"params": p}, x))(
        params, jax.ShapeDtypeStruct((1, *input_shape), jnp.float32))

    labels: list[str] = []
    sizes: list[int] = []
    edges: list[tuple[int, int]] = []

    def node(label: str, aval) -> int:
        shape = tuple(getattr(aval, "shape", ()))
        labels.append(f"{label}/{len(shape)}")
        sizes.append(int(np.prod(shape)) if shape else 1)
        return len(labels) - 1

    def walk(jaxpr, env: dict):
        """``env``: var -> node id producing it. Returns the node ids of the outvars."""
        for eqn in jaxpr.eqns:
            sub = _sub_jaxprs(eqn)
            ins = [env[v] for v in eqn.invars if not _is_literal(v) and v in env]
            if sub is not None:
                inner = sub.jaxpr if hasattr(sub, "jaxpr") else sub
                ienv = {}
                for iv, ov in zip(inner.invars, eqn.invars, strict=False):  # a sub-jaxpr may take fewer inputs than the equation passes
                    if not _is_literal(ov) and ov in env:
                        ienv[iv] = env[ov]
                for cv in getattr(inner, "constvars", ()):
                    ienv[cv] = node("const", cv.aval)
                outs = walk(inner, ienv)
                for ov, src in zip(eqn.outvars, outs, strict=False):  # see above
                    if src is not None:
                        env[ov] = src
                continue
            for ov in eqn.outvars:
                i = node(eqn.primitive.name, ov.aval)
                edges.extend((s, i) for s in ins)
                env[ov] = i
        return [env.get(v) if not _is_literal(v) else None for v in jaxpr.outvars]

    jaxpr = closed.jaxpr
    env = {}
    n_params = len(jax.tree_util.tree_leaves(params))
    for k, v in enumerate(jaxpr.invars):
        env[v] = node("param" if k < n_params else "input", v.aval)
    for cv in jaxpr.constvars:
        env[cv] = node("const", cv.aval)
    walk(jaxpr, env)
    return Graph(tuple(labels), tuple(sizes), tuple(dict.fromkeys(edges)))


def _is_literal(v) -> bool:
    return type(v).__name__ == "Literal"


def _h(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()[:16]


def wl_labels(graph: Graph, iterations: int = 3) -> list[str]:
    """Every node's label at every Weisfeiler–Lehman round 0 … ``iterations``.

    Args:
      graph: the :class:`Graph`.
      iterations: WL relabelling rounds.

    Returns:
      The bag of rooted subtrees: ``(iterations + 1) · n_nodes`` hex hash labels.
    """
    preds, succs = defaultdict(list), defaultdict(list)
    for s, d in graph.edges:
        succs[s].append(d)
        preds[d].append(s)
    cur = [_h(x) for x in graph.labels]
    bag = list(cur)
    for _ in range(iterations):
        cur = [_h(cur[i] + "|<" + ",".join(sorted(cur[p] for p in preds[i])) + "|>" + ",".join(sorted(cur[q] for q in succs[i])))
               for i in range(graph.n_nodes)]
        bag += cur
    return bag


def embed(graph: Graph, *, dim: int = 128, iterations: int = 3, shape_bins: int = 24, shape_weight: float = 0.25) -> np.ndarray:
    """The archi2vec vector of ``graph`` (the module docstring).

    Args:
      graph: the :class:`Graph` (:func:`arch_graph`).
      dim: buckets of the hashed structural block.
      iterations: WL relabelling rounds (:func:`wl_labels`).
      shape_bins: bins of the log2 per-sample-size histogram (the shape block).
      shape_weight: weight of the L2-normalised shape block.

    Returns:
      ``[dim + shape_bins]`` float64: the L2-normalised structural block, then
      ``shape_weight`` times the L2-normalised shape block.
    """
    counts: dict[str, int] = defaultdict(int)
    for lab in wl_labels(graph, iterations):
        counts[lab] += 1
    struct = np.zeros(dim)
    for lab, c in counts.items():
        h = int(lab, 16)
        struct[h % dim] += (1.0 if (h >> 20) & 1 else -1.0) * np.log1p(c)
    struct /= max(float(np.linalg.norm(struct)), 1e-12)
    shape = np.zeros(shape_bins)
    for s in graph.sizes:
        x = min(np.log2(max(s, 1)), shape_bins - 1 - 1e-9)
        lo = int(np.floor(x))
        shape[lo] += 1 - (x - lo)
        shape[lo + 1] += x - lo
    shape /= max(float(np.linalg.norm(shape)), 1e-12)
    return np.concatenate([struct, shape_weight * shape])


def embed_module(module, input_shape: Sequence[int] = (28, 28, 1), **kw) -> np.ndarray:
    """:func:`embed` of :func:`arch_graph` of ``module``.

    Args:
      module: a Flax module taking images ``[1, *input_shape]``.
      input_shape: one image's shape (H, W, C).
      **kw: ``dim``, ``iterations``, ``shape_bins``, ``shape_weight`` of :func:`embed`.

    Returns:
      The archi2vec vector ``[dim + shape_bins]``.
    """
    return embed(arch_graph(module, input_shape), **kw)


# ---------------------------------------------------------------------------------- meta score


def zoo_meta(zoo) -> dict[str, dict]:
    """The meta-features of every member of a loaded zoo (one graph per distinct architecture).

    Args:
      zoo: a loaded :class:`~pedjax.zoo.Zoo`.

    Returns:
      ``{member: {"arch_vec": archi2vec vector, "n_params": int, "feature_dim": int,
      "method": pretraining objective}}``, the ``meta`` of :func:`meta_scores`.
    """
    import json

    cache: dict[str, np.ndarray] = {}
    out = {}
    for m in zoo:
        key = json.dumps([m.arch, dict(m.arch_kwargs)], sort_keys=True)
        if key not in cache:
            cache[key] = embed_module(m.module, tuple(m.input_shape))
        out[m.name] = {"arch_vec": cache[key], "n_params": int(m.entry.get("n_params") or 0),
                       "feature_dim": int(m.feature_dim), "method": m.method}
    return out


def meta_features(meta: Mapping[str, dict], models: Sequence[str]) -> np.ndarray:
    """The meta-feature matrix: archi2vec, log parameter count, log feature width, one-hot objective.

    Args:
      meta: ``{model: meta-features}`` (:func:`zoo_meta`).
      models: the rows, each a key of ``meta``.

    Returns:
      ``[M, F]`` float64 (the one-hot columns are the objectives of ``models``, sorted).

    Raises:
      KeyError: a model of ``models`` has no entry in ``meta``.
    """
    methods = sorted({meta[m]["method"] for m in models})
    rows = []
    for m in models:
        e = meta[m]
        onehot = [1.0 if e["method"] == k else 0.0 for k in methods]
        rows.append(np.concatenate([np.asarray(e["arch_vec"], np.float64),
                                    [np.log(max(e["n_params"], 1)) / 10.0, np.log(max(e["feature_dim"], 1)) / 5.0], onehot]))
    return np.asarray(rows)


def meta_scores(meta: Mapping[str, dict], history, alphas: Sequence[float] = (0.01, 0.1, 1.0, 10.0, 100.0), *,
                cold_start: bool = False) -> dict[str, float]:
    """The meta score: a ridge model from meta-features to each model's mean per-task z-score.

    The ridge penalty is chosen from ``alphas`` by leave-one-model-out error (ties: the larger
    penalty). Models without any observed entry are left out.

    Args:
      meta: ``{model: meta-features}`` (:func:`zoo_meta`), covering every model of ``history``.
      history: the :class:`~pedjax.recommend.history.History` whose per-task z-scores
        (:meth:`~pedjax.recommend.history.History.standardized`) are the target.
      alphas: the ridge penalties to choose from.
      cold_start: return each model's leave-one-model-out prediction (the score a model new to
        the history would get: its own history does not set its own meta score) instead of the
        fitted model's prediction.

    Returns:
      ``{model: predicted mean z-score}`` over the models with an observed entry.

    Raises:
      KeyError: a model of ``history`` has no entry in ``meta``.
    """
    models = list(history.models)
    X = meta_features(meta, models)
    y = np.nanmean(history.standardized(), axis=1)
    ok = np.isfinite(y)
    X, y = X[ok], y[ok]
    names = [m for m, k in zip(models, ok, strict=True) if k]

    def loo(alpha):
        preds = np.empty(len(y))
        for i in range(len(y)):
            tr = np.arange(len(y)) != i
            preds[i] = _ridge(X[tr], y[tr], alpha) @ np.append(X[i], 1.0)
        return preds

    best = min(alphas, key=lambda a: (float(np.mean((loo(a) - y) ** 2)), -a))
    pred = loo(best) if cold_start else np.c_[X, np.ones(len(y))] @ _ridge(X, y, best)
    return dict(zip(names, map(float, pred), strict=True))


def _ridge(X, y, alpha):
    """Ridge weights on standardised columns with an unpenalised intercept (last entry), returned
    for the raw columns."""
    mu, ym = X.mean(0), y.mean()
    sd = X.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    Xc = (X - mu) / sd
    w = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T @ (y - ym)) / sd
    return np.append(w, ym - mu @ w)
