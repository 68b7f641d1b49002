"""PED physics: soft-sphere energy of class balls and the PED simulator."""
from ._ped import PEDConfig, PEDResult, PEDState, class_balls, ped, ped_core, simulator, source_statistics
from .energy import closed_form_forces, forces, overlaps, pair_distances, soft_sphere_energy

__all__ = [
    "closed_form_forces", "forces", "overlaps", "pair_distances", "soft_sphere_energy",
    "PEDConfig", "PEDResult", "PEDState", "class_balls", "ped", "ped_core", "simulator", "source_statistics",
]
