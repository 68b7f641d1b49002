"""Real, offline data: Fashion-MNIST (Debian IDX files), scikit-learn digits, glyphs and emoji
rendered from Debian's font packages, local TFDS datasets, and the named target tasks the
fine-tuner produces ground truth on. See docs/data.md.

``pedjax tasks`` lists the registered tasks.
"""
from __future__ import annotations

from ._arrays import TaskData, permute_pixels, pixel_permutation
from .digits import load_digits, resize_images
from .fashion import CLASS_NAMES as FASHION_CLASS_NAMES
from .fashion import load_fashion_mnist, read_idx
from .tasks import (
    FASHION_TEST_PER_CLASS,
    SOURCE_RANGE,
    TASK_POOL_RANGE,
    TASKS,
    Task,
    get_task,
    load_source,
    load_task,
    source_indices,
    task_domains,
    task_names,
)
from .tfds_local import load_image_folder, load_tfds, tfds_available

__all__ = [
    "TaskData", "permute_pixels", "pixel_permutation", "Task", "TASKS", "task_names", "task_domains", "get_task", "load_task", "load_source", "source_indices",
    "SOURCE_RANGE", "TASK_POOL_RANGE", "FASHION_TEST_PER_CLASS", "load_fashion_mnist", "read_idx", "FASHION_CLASS_NAMES",
    "load_digits", "resize_images", "load_tfds", "load_image_folder", "tfds_available",
]
