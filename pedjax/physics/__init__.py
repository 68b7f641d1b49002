"""PED physics: soft-sphere energy of class balls and the PED simulator."""
from .energy import closed_form_forces, forces, overlaps, pair_distances, soft_sphere_energy
from .ped import PEDConfig, PEDResult, PEDState, class_balls, ped, ped_core, simulator, source_statistics

__all__ = [
    "closed_form_forces", "forces", "overlaps", "pair_distances", "soft_sphere_energy",
    "PEDConfig", "PEDResult", "PEDState", "class_balls", "ped", "ped_core", "simulator", "source_statistics",
]
