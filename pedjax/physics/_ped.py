"""PED — Potential Energy Descent (Li et al., ICCV 2023) as a JAX MD-style simulator.

Features are rescaled with the model's source-domain statistics, Z = (X − μ̂)/σ̂ (σ̂ floored at
``eps``). Each class j becomes a ball: centre c_j, radius ρ_j = sqrt(Σ_d var_jd) (ddof 0), scaled
by ``nsigma`` (λ in the paper). The balls repel through :func:`soft_sphere_energy`; a few
Newtonian steps move whole classes (every sample of class j is translated by the class's
displacement), and the features are mapped back, X' = Z'·σ̂ + μ̂.

Translating a class leaves its variance unchanged, so the radii are fixed and the simulation
state is just the C centres: the N×D features are touched once at the end.

Two variants (``PEDConfig.variant``):

``"released"`` (default) — the public evaluation code, to float64 precision:
  per pair, displacement = min(½Δt²·k·overlap, overlap) along n̂ (each ball of the pair moves
  by it, in opposite directions). Since overlap ≥ 0 this is min(½Δt²k, 1)·overlap, i.e. a step
  of min(½Δt², 1/k)·F with F = −∇U. Step 0 is always applied and its change ω₀ = Σ|Δc| is the
  reference; each later candidate step is applied only while ω/ω₀ > exit_ratio, else the loop
  stops and the candidate is dropped; at most ``max_steps`` steps are applied. Radii use |nsigma|.

``"paper"`` — Algorithm 1: a_j = F_j/m_j (unit mass, or class size with ``mass="class_size"``),
  Δc_j = ½·a_j·Δt², no per-pair clipping; the step is applied, then the loop stops when its size
  ω ≤ exit_ratio·ω₀ (ε in the paper) or after ``max_steps`` steps.

Two execution paths give identical results: ``"while"`` (``lax.while_loop``, stops early, the
fast path) and ``"scan"`` (fixed-length ``lax.scan`` with a done-mask, supports reverse-mode
gradients with respect to features and the dynamic hyperparameters nsigma, constant, time_step).
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._precision import entry_point
from .._validate import DEGENERATE_ULPS, as_float_matrix, check_choice, check_std, check_vector, encode_labels, is_degenerate
from .energy import forces, soft_sphere_energy

VARIANTS = ("released", "paper")
MASSES = ("unit", "class_size")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PEDConfig:
    """PED hyperparameters. Defaults are those of the released evaluation script.

    Dynamic (differentiable) fields: ``time_step`` (Δt), ``nsigma`` (λ), ``constant`` (k),
    ``exit_ratio`` (ε), ``eps`` (σ̂ floor). Static fields: ``max_steps`` (M), ``variant``, ``mass``.
    A frozen dataclass registered as a JAX pytree (the dynamic fields are its leaves), so it can be
    passed through ``jit``, ``vmap`` and ``grad``. Construction does not check the values;
    :meth:`validate` does (every entry point calls it).

    Attributes:
      time_step: Δt ≥ 0; a step moves a centre by ½·Δt²·F (``"released"``: min(½Δt², 1/k)·F).
      nsigma: λ, the factor on the class radii ρ_j (≥ 0; ``"released"`` uses |nsigma|).
      exit_ratio: ε; the loop stops once a step's size ω falls to ε·ω₀ (``"released"``: the
        candidate step is dropped; ``"paper"``: applied, then the loop stops).
      constant: k ≥ 0, the spring constant of :func:`soft_sphere_energy`.
      eps: ≥ 0, the floor on the source standard deviation σ̂ in the rescaling Z = (X − μ̂)/σ̂.
      max_steps: M ≥ 1, the most steps applied (static).
      variant: ``"released"`` (the public evaluation code) or ``"paper"`` (Algorithm 1); static.
      mass: ``"unit"`` or ``"class_size"`` (each class's mass is its sample count); static, used
        by the ``"paper"`` variant only.
    """

    time_step: float = 0.1
    nsigma: float = 0.6
    exit_ratio: float = 0.5
    constant: float = 1.0
    eps: float = 1e-3
    max_steps: int = dataclasses.field(default=6, metadata=dict(static=True))
    variant: str = dataclasses.field(default="released", metadata=dict(static=True))
    mass: str = dataclasses.field(default="unit", metadata=dict(static=True))

    def validate(self) -> PEDConfig:
        """Check every field (traced values inside ``jit``/``grad`` are skipped).

        Returns:
          ``self``, unchanged, so that ``cfg = PEDConfig(...).validate()`` chains.

        Raises:
          ValueError: (a :class:`pedjax.ParamError` for ``variant`` and ``mass``) naming the field
            ``PEDConfig.<field>``: an unknown ``variant`` or ``mass``; ``max_steps`` not an integer
            ≥ 1; a dynamic field that is not a finite real scalar; ``time_step``, ``nsigma``,
            ``constant`` or ``eps`` below 0.
        """
        check_choice(self.variant, "PEDConfig.variant", VARIANTS)
        check_choice(self.mass, "PEDConfig.mass", MASSES)
        if not (isinstance(self.max_steps, (int, np.integer)) and self.max_steps >= 1):
            raise ValueError(f"PEDConfig.max_steps: must be an integer ≥ 1, got {self.max_steps!r}")
        for name in ("time_step", "nsigma", "exit_ratio", "constant", "eps"):
            v = getattr(self, name)
            if isinstance(v, jax.core.Tracer):  # inside jit/grad: checked where it was concrete
                continue
            if isinstance(v, (bool, np.bool_, str, bytes)):
                raise ValueError(f"PEDConfig.{name}: must be a number, got {v!r}")
            try:
                a = np.asarray(v)
            except Exception:
                raise ValueError(f"PEDConfig.{name}: must be a number, got {type(v).__name__}") from None
            if a.dtype == object or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
                raise ValueError(f"PEDConfig.{name}: must be a number, got {v!r} (dtype {a.dtype})")
            if a.ndim != 0:
                raise ValueError(f"PEDConfig.{name}: must be a scalar, got an array of shape {a.shape}")
            if not np.isfinite(a):
                raise ValueError(f"PEDConfig.{name}: must be finite, got {v!r}")
            if name in ("time_step", "nsigma", "constant", "eps") and a < 0:
                raise ValueError(f"PEDConfig.{name}: must be ≥ 0, got {float(a)!r}")
        return self

    def replace(self, **changes) -> PEDConfig:
        """A copy with the given fields changed (``dataclasses.replace``; not validated).

        Args:
          **changes: new values by field name.

        Returns:
          A new :class:`PEDConfig`.

        Raises:
          TypeError: for a name that is not a field.
        """
        return dataclasses.replace(self, **changes)


class PEDState(NamedTuple):
    """Immutable simulator state (all arrays), as :func:`simulator`'s functions pass it on.

    Attributes:
      centers: [C, D] current class centres, in the rescaled space.
      step: int32 scalar, the number of steps applied so far.
      first_change: scalar ω₀, the size Σ|Δc| of step 0 (the reference of the exit rule).
      done: bool scalar; a done state is a fixed point of ``step_fn``.
      change: [M] ω of each applied step (0 after the last).
      energy: [M + 1] the energy U before step 0 and after each applied step (the final value
        repeated after the last).
    """

    centers: jax.Array  # [C, D] current class centres, rescaled space
    step: jax.Array  # int, steps applied so far
    first_change: jax.Array  # ω₀
    done: jax.Array  # bool
    change: jax.Array  # [M] ω of each applied step (0 after the last)
    energy: jax.Array  # [M + 1] U before step 0 and after each applied step (held after the last)


class PEDResult(NamedTuple):
    """Result of :func:`ped` and :func:`ped_core`.

    Attributes:
      features: [N, D] the moved features, in the original (not rescaled) space.
      steps: int scalar, the number of applied steps.
      change: [max_steps] the size ω = Σ|Δc| of each applied step (0 beyond ``steps``).
      energy: [max_steps + 1] the energy U before step 0 and after each applied step (the final
        energy beyond ``steps``).
      centers: [C, D] the final class centres (rescaled space).
      radii: [C] the ball radii (rescaled space, ``nsigma`` applied).
    """

    features: jax.Array
    steps: jax.Array
    change: jax.Array
    energy: jax.Array
    centers: jax.Array  # [C, D] final centres (rescaled space)
    radii: jax.Array  # [C] ball radii (rescaled space, nsigma applied)


def class_balls(Z: jax.Array, y: jax.Array, num_classes: int):
    """Centres [C, D], radii ρ_j = sqrt(Σ_d var_jd) [C] (ddof 0) and counts [C] of each class.

    Args:
      Z: (rescaled) features [N, D].
      y: coded labels [N] in 0..num_classes-1.
      num_classes: C (static under ``jit``).

    Returns:
      ``(centers [C, D], radii [C], counts [C])`` in ``Z``'s dtype; a class without samples has
      centre 0, radius 0 and count 0.
    """
    counts = jax.ops.segment_sum(jnp.ones(Z.shape[0], Z.dtype), y, num_classes)
    n = jnp.maximum(counts, 1.0)[:, None]
    centers = jax.ops.segment_sum(Z, y, num_classes) / n
    dev = Z - centers[y]
    var = jax.ops.segment_sum(dev * dev, y, num_classes) / n
    return centers, jnp.sqrt(jnp.sum(var, axis=1)), counts


def simulator(radii: jax.Array, counts: jax.Array, cfg: PEDConfig):
    """Return ``(init_fn, step_fn)`` for the configured variant (JAX MD style).

    ``init_fn(centers) -> PEDState``; ``step_fn(state) -> state`` evaluates one candidate step and
    applies it or stops according to the variant's rule. A stopped state is a fixed point.

    Args:
      radii: the classes' radii ρ [C] before ``nsigma`` (:func:`class_balls`); the simulator scales
        them by ``cfg.nsigma`` (``|nsigma|`` for ``"released"``).
      counts: samples per class [C] (the masses with ``mass="class_size"``).
      cfg: the :class:`PEDConfig` (not validated here).

    Returns:
      ``(init_fn, step_fn)``: ``init_fn`` maps centres [C, D] to the initial :class:`PEDState`;
      ``step_fn`` maps a :class:`PEDState` to the next.
    """
    k = cfg.constant
    dt2 = cfg.time_step ** 2
    M = cfg.max_steps
    coef: jax.Array | float
    inv_mass: jax.Array | float
    if cfg.variant == "released":
        r = jnp.abs(cfg.nsigma) * radii
        # min(½Δt²k·ov, ov) = ov·min(½Δt²k, 1): a step of min(½Δt², 1/k)·F
        coef = jnp.where(k > 0, jnp.minimum(0.5 * dt2 * k, 1.0) / jnp.where(k > 0, k, 1.0), 0.5 * dt2)
        inv_mass = 1.0
    else:
        r = cfg.nsigma * radii
        coef = 0.5 * dt2
        inv_mass = (1.0 / jnp.maximum(counts, 1.0))[:, None] if cfg.mass == "class_size" else 1.0

    def energy(c):
        return soft_sphere_energy(c, r, k)

    def init_fn(centers):
        dtype = centers.dtype
        return PEDState(
            centers=centers,
            step=jnp.zeros((), jnp.int32),
            first_change=jnp.zeros((), dtype),
            done=jnp.zeros((), bool),
            change=jnp.zeros((M,), dtype),
            energy=jnp.full((M + 1,), energy(centers), dtype),
        )

    def step_fn(s: PEDState) -> PEDState:
        delta = coef * inv_mass * forces(s.centers, r, k)
        omega = jnp.sum(jnp.abs(delta))
        first = s.step == 0
        omega0 = jnp.where(first, omega, s.first_change)
        ratio = jnp.where(omega0 > 0, omega / jnp.where(omega0 > 0, omega0, 1.0), 0.0)
        if cfg.variant == "released":
            accept = first | (ratio > cfg.exit_ratio)
            stop_after = jnp.zeros((), bool)
        else:
            accept = jnp.ones((), bool)
            stop_after = ~first & (ratio <= cfg.exit_ratio)
        accept = accept & ~s.done & (s.step < M)
        centers = jnp.where(accept, s.centers + delta, s.centers)
        e = energy(centers)
        idx = jnp.minimum(s.step, M - 1)
        change = jnp.where(accept, s.change.at[idx].set(omega), s.change)
        # energy after this step fills every later slot, so the trace holds the final value
        after = jnp.arange(M + 1) > s.step
        energy_tr = jnp.where(accept & after, e, s.energy)
        step = s.step + accept.astype(jnp.int32)
        done = s.done | ~accept | stop_after | (step >= M)
        return PEDState(centers, step, omega0, done, change, energy_tr)

    return init_fn, step_fn


def _run(init_fn, step_fn, centers, max_steps: int, path: str) -> PEDState:
    state = init_fn(centers)
    if path == "while":
        return jax.lax.while_loop(lambda s: ~s.done, step_fn, state)
    return jax.lax.scan(lambda s, _: (step_fn(s), None), state, None, length=max_steps)[0]


def ped_core(X, y, num_classes: int, source_mean, source_std, cfg: PEDConfig = PEDConfig(), path: str = "while") -> PEDResult:
    """Pure-JAX PED: features [N, D], coded labels [N], source mean/std [D] → :class:`PEDResult`.

    jit-able (``num_classes``, ``path`` and the static config fields static) and vmap-able over
    a model axis of (X, source_mean, source_std). Nothing is validated (:func:`ped` does that).
    Dimensions that are constant over the samples up to rounding are left unmoved.

    Args:
      X: features [N, D].
      y: coded labels [N] in 0..num_classes-1.
      num_classes: C, the number of classes (static).
      source_mean: the source mean μ̂ [D].
      source_std: the source standard deviation σ̂ [D] (floored at ``cfg.eps``).
      cfg: the :class:`PEDConfig` (released defaults).
      path: ``"while"`` (``lax.while_loop``, stops early) or ``"scan"`` (fixed length,
        reverse-differentiable); static.

    Returns:
      A :class:`PEDResult` in ``X``'s dtype.
    """
    X = jnp.asarray(X)
    std = jnp.maximum(source_std, cfg.eps)
    Z = (X - source_mean) / std
    centers0, rho, counts = class_balls(Z, y, num_classes)
    init_fn, step_fn = simulator(rho, counts, cfg)
    final = _run(init_fn, step_fn, centers0, cfg.max_steps, path)
    shift = final.centers - centers0  # [C, D], rescaled space
    # a dead dimension (constant over the samples up to rounding) stays as it is: its class
    # centres differ only by rounding, and moving along them would turn rounding into separation
    shift = jnp.where(dead_dimensions_core(X)[None, :], 0.0, shift)
    moved = (Z + shift[y]) * std + source_mean
    r = (jnp.abs(cfg.nsigma) if cfg.variant == "released" else cfg.nsigma) * rho
    return PEDResult(moved, final.step, final.change, final.energy, final.centers, r)


def dead_dimensions_core(X: jax.Array) -> jax.Array:
    """Boolean [D], the JAX form of :func:`pedjax._validate.dead_dimensions` in ``X``'s dtype
    (no gradient flows through it).

    Args:
      X: features [N, D].

    Returns:
      Boolean array [D]: True where the column, scaled by its largest magnitude, has a standard
      deviation within a few ulps of 0 (constant up to rounding).
    """
    X = jax.lax.stop_gradient(jnp.asarray(X))
    scale = jnp.max(jnp.abs(X), axis=0)
    Z = X / jnp.where(scale > 0, scale, 1.0)
    return ~(jnp.std(Z, axis=0) > DEGENERATE_ULPS * jnp.finfo(X.dtype).eps)


_ped_jit = jax.jit(ped_core, static_argnames=("num_classes", "path"))


@entry_point
def source_statistics(features, eps: float | None = None):
    """Mean and std (ddof 0) of a model's features on the source set, as the released code takes them.

    Args:
      features: the model's features on the source set [N_s, D].
      eps: unused (the floor on σ̂ is applied by PED, ``PEDConfig.eps``).

    Returns:
      ``(mean [D], std [D])`` as NumPy arrays, in the entry point's precision (see
      :func:`pedjax.precision`; the wrapper also takes a ``precision=`` keyword).

    Raises:
      ValueError: (:class:`pedjax.ParamError`, ``source_features``) when ``features`` is not a
        finite, non-empty numeric 2-D array.
    """
    F = as_float_matrix(features, "source_features")
    return F.mean(axis=0), F.std(axis=0)


@entry_point
def ped(X, y, source_mean=None, source_std=None, cfg: PEDConfig | None = None, *, path: str = "while") -> PEDResult:
    """Run PED on features ``X`` [N, D] with labels ``y`` [N].

    The call computes in the precision of :func:`pedjax.precision` (or of the extra keyword
    ``precision="auto" | "float64" | "float32"``; docs/precision.md).

    Args:
      X: target features [N, D].
      y: integer labels [N] (any values; coded 0..C-1; at least two classes).
      source_mean: the model's feature mean on a general source set [D] (the paper's
        ImageNet-val statistics). ``None`` (with ``source_std``) uses the target features' own
        mean/std (documented fallback; the released code requires source features).
      source_std: the matching standard deviation [D] (≥ 0; floored at ``cfg.eps``), or ``None``.
      cfg: :class:`PEDConfig` (``None``: the released defaults).
      path: ``"while"`` (fast, early exit) or ``"scan"`` (fixed length, reverse-differentiable).

    Returns:
      :class:`PEDResult` with moved features (same dtype as the computation), steps and traces.

    Raises:
      ValueError: naming the argument (for the input checks a :class:`pedjax.ParamError`): a bad
        ``cfg`` field (:meth:`PEDConfig.validate`) or ``path``; ``y`` not 1-D integer labels with
        at least two classes; ``X`` not a finite numeric 2-D array with one row per label;
        ``source_mean`` and ``source_std`` not both given or both ``None``, of the wrong length or
        not finite; a negative ``source_std``, or one that is 0 in every dimension (unless ``X``
        itself is degenerate).
    """
    cfg = (cfg or PEDConfig()).validate()
    check_choice(path, "path", ("while", "scan"))
    codes, classes = encode_labels(y, "y")
    Xv = as_float_matrix(X, "X", n=codes.shape[0])
    mean, std = _resolve_stats(Xv, source_mean, source_std)
    return _ped_jit(Xv, codes, int(classes.size), mean, std, cfg, path=path)


def _resolve_stats(X: np.ndarray, source_mean, source_std):
    d = X.shape[1]
    if (source_mean is None) != (source_std is None):
        raise ValueError("source_mean/source_std: give both or neither")
    if source_mean is None:
        return X.mean(axis=0), X.std(axis=0)
    return check_vector(source_mean, "source_mean", d), check_std(source_std, "source_std", d, allow_all_zero=is_degenerate(X))
