"""Recommendation from history (Fennec-style), archi2vec, and the hybrid with transferability
metrics: see docs/recommend.md."""
from .api import recommend, shipped_weight
from .archi2vec import arch_graph, embed, embed_module, meta_scores, zoo_meta
from .factorize import Factors, heldout_errors, prepare, select
from .fennec import Recommender
from .history import History, from_file, from_metric, from_scores, from_table, from_zoo, published
from .hybrid import WEIGHT_GRID, combine, holdout, learn_weight, loto_hybrid, loto_hybrid_select, merge, zscore
from .proxy import Proxy, neighbour_weights, novelty, task_representation

__all__ = [
    "History", "from_table", "from_zoo", "from_file", "from_scores", "from_metric", "published",
    "Factors", "heldout_errors", "prepare", "select",
    "Proxy", "task_representation", "neighbour_weights", "novelty",
    "arch_graph", "embed", "embed_module", "meta_scores", "zoo_meta",
    "WEIGHT_GRID", "zscore", "combine", "merge", "learn_weight", "holdout", "loto_hybrid", "loto_hybrid_select",
    "Recommender", "recommend", "shipped_weight",
]
