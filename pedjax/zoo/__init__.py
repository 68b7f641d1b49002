"""Model zoos: member specs (:mod:`.spec`), the on-disk store (:mod:`.store`), the builder (:mod:`.build`).

The builder is imported on demand (``from pedjax.zoo import build``): it pulls in pretraining and
fine-tuning, which reading a zoo does not need.
"""
from .spec import (
    ARCHITECTURES,
    DEFAULT_WORK,
    DEFAULT_ZOO,
    FORMAT,
    MANIFEST,
    TINY_CONFIG,
    TINY_MEMBERS,
    TINY_V2_CONFIG,
    TINY_V2_MEMBERS,
    TINY_V2_WORK,
    TINY_WORK,
    TRUTH_FILE,
    V1_CONFIG,
    V1_MEMBERS,
    V1_TASKS,
    V1_WORK,
    V2_CONFIG,
    V2_MEMBERS,
    V2_TASKS,
    V3_CONFIG,
    V3_MEMBERS,
    V3_NEW_TASKS,
    V3_TASKS,
    BuildConfig,
    MemberSpec,
    create_module,
)
from .store import Zoo, ZooMember, add_member, load_zoo, params_sha1, read_manifest

__all__ = [
    "ARCHITECTURES", "DEFAULT_WORK", "DEFAULT_ZOO", "FORMAT", "MANIFEST", "TRUTH_FILE", "BuildConfig",
    "V3_MEMBERS", "V3_CONFIG", "V3_TASKS", "V3_NEW_TASKS", "V2_MEMBERS", "V2_CONFIG", "V2_TASKS", "TINY_V2_MEMBERS", "TINY_V2_CONFIG", "TINY_V2_WORK",
    "V1_MEMBERS", "V1_CONFIG", "V1_TASKS", "V1_WORK", "TINY_MEMBERS", "TINY_CONFIG", "TINY_WORK", "MemberSpec", "create_module",
    "Zoo", "ZooMember", "add_member", "load_zoo", "params_sha1", "read_manifest",
]
