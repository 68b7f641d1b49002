"""PED physics: soft-sphere energy of class balls and the PED simulator."""
from .energy import closed_form_forces, forces, overlaps, pair_distances, soft_sphere_energy  # noqa: F401
from .ped import (  # noqa: F401
    PEDConfig,
    PEDResult,
    PEDState,
    class_balls,
    ped,
    ped_core,
    simulator,
    source_statistics,
)
