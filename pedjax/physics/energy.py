"""Energies of class balls, JAX MD style: pure functions of positions; forces are ``-grad``.

Each class j of the target data is a ball with centre c_j and radius r_j. Overlapping balls
repel with a Hooke (soft-sphere) potential

    U(c) = Σ_{a<b} ½ · k · max(r_a + r_b − ‖c_a − c_b‖, 0)²

whose negative gradient is the paper's force F_a = Σ_b k · overlap_ab · (c_a − c_b)/‖c_a − c_b‖.

Coinciding centres (‖c_a − c_b‖ = 0) have no direction to push along; the pair contributes no
force (its energy term is constant there), so the result stays finite. The released code divides
by zero and returns NaN.

Distances use the Gram form ‖c_a‖² + ‖c_b‖² − 2 c_a·c_b, so memory is O(C² + C·D) rather than
the O(C²·D) pairwise-difference tensor of the published code.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

#: squared distances at or below this (relative to the squared centre scale) count as coinciding
_COINCIDE = 1e-24


def pair_distances(centers: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Pairwise distances [C, C] and a mask of separated pairs (off-diagonal, not coinciding).

    Safe to differentiate: coinciding pairs have distance 0 and zero gradient.

    Args:
      centers: ball centres [C, D].

    Returns:
      ``(d, apart)``: distances ``d`` [C, C] (0 on the diagonal and for coinciding pairs) and the
      boolean mask ``apart`` [C, C] of pairs that are separated (off-diagonal, squared distance
      above ``1e-24`` times the squared centre scale).
    """
    sq = jnp.sum(centers * centers, axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (centers @ centers.T)
    C = centers.shape[0]
    scale = jnp.maximum(jnp.max(sq), 1.0)
    apart = (d2 > _COINCIDE * scale) & ~jnp.eye(C, dtype=bool)
    d = jnp.where(apart, jnp.sqrt(jnp.where(apart, d2, 1.0)), 0.0)
    return d, apart


def overlaps(centers: jax.Array, radii: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Overlap max(r_a + r_b − d_ab, 0) [C, C] (zero on the diagonal) and the separated-pair mask.

    Args:
      centers: ball centres [C, D].
      radii: ball radii [C].

    Returns:
      ``(overlap, apart)``: the overlaps [C, C] (0 on the diagonal) and the separated-pair mask
      [C, C] of :func:`pair_distances`.
    """
    d, apart = pair_distances(centers)
    ov = jnp.maximum(radii[:, None] + radii[None, :] - d, 0.0)
    C = centers.shape[0]
    return jnp.where(jnp.eye(C, dtype=bool), 0.0, ov), apart


def soft_sphere_energy(centers: jax.Array, radii: jax.Array, k: float = 1.0) -> jax.Array:
    """U = Σ_{a<b} ½ k max(r_a + r_b − d_ab, 0)² for centres [C, D] and radii [C].

    Args:
      centers: ball centres [C, D].
      radii: ball radii [C].
      k: the spring constant (PEDConfig's ``constant``).

    Returns:
      The energy U, a 0-d array in the centres' dtype.
    """
    ov, _ = overlaps(centers, radii)
    return 0.25 * k * jnp.sum(ov * ov)  # each unordered pair appears twice in the full matrix


def forces(centers: jax.Array, radii: jax.Array, k: float = 1.0) -> jax.Array:
    """F = −∇_c U by autodiff of :func:`soft_sphere_energy`.

    Args:
      centers: ball centres [C, D].
      radii: ball radii [C].
      k: the spring constant.

    Returns:
      The force on every centre, [C, D].
    """
    return -jax.grad(soft_sphere_energy)(centers, radii, k)


def closed_form_forces(centers: jax.Array, radii: jax.Array, k: float = 1.0) -> jax.Array:
    """F_a = Σ_b k · overlap_ab · (c_a − c_b)/d_ab, without autodiff (for tests and speed checks).

    Args:
      centers: ball centres [C, D].
      radii: ball radii [C].
      k: the spring constant.

    Returns:
      The force on every centre, [C, D]; equal to :func:`forces` up to rounding (coinciding pairs
      contribute nothing).
    """
    ov, apart = overlaps(centers, radii)
    d, _ = pair_distances(centers)
    w = jnp.where(apart, k * ov / jnp.where(apart, d, 1.0), 0.0)  # [C, C]
    return jnp.sum(w, axis=1)[:, None] * centers - w @ centers
