"""Learning PED's hyperparameters through the whole chain with optax (:mod:`._learn`), the tasks it
learns on (:mod:`.tasks`) and learned configurations on disk (:mod:`.configs`)."""
from ._learn import DEFAULT_LEARN, LEARNABLE, MetaLearner, MetaResult, learn, make_objective
from .configs import FORMAT, load_config, save_config
from .tasks import digits_tasks, shipped_tasks, zoo_tasks

__all__ = [
    "FORMAT", "load_config", "save_config", "DEFAULT_LEARN", "LEARNABLE", "MetaLearner", "MetaResult", "learn",
    "make_objective", "digits_tasks", "shipped_tasks", "zoo_tasks",
]
