"""Ranking quality: measures (:mod:`.measures`), judging scores against ground truth
(:mod:`.judge`) and the one benchmark loop over FeatureSets × metrics × PED configs
(:func:`.benchmark`, module ``_benchmark``)."""
from ._benchmark import BenchmarkResult, benchmark, variant_name
from .judge import BUILTIN_TRUTH, evaluate_scores, load_scores, load_truth, ranking, score_problem, score_problems, truth_tables
from .measures import kendall_tau, pearson, rel_k, soft_weighted_tau, spearman, top_k, weighted_tau

__all__ = [
    "weighted_tau", "kendall_tau", "pearson", "spearman", "top_k", "rel_k", "soft_weighted_tau",
    "evaluate_scores", "load_scores", "ranking", "score_problem", "score_problems", "load_truth", "truth_tables", "BUILTIN_TRUTH",
    "benchmark", "BenchmarkResult", "variant_name",
]
