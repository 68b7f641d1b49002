"""Streaming sufficient statistics: one pass over row blocks of a feature matrix, jitted per block.

Per model the pass accumulates (C classes, D dimensions, a shift ``a_c`` [C, D] per class):

    counts  [C]     n_c
    sums    [C, D]  S_c = Σ_{i∈c} (x_i − a_c)
    sumsq   [C, D]  Q_c = Σ_{i∈c} (x_i − a_c)²           (per dimension)
    gram    [D, D]  G   = Σ_i (x_i − a_{y_i})(x_i − a_{y_i})ᵀ
    cmax    [C, D]  max_{i∈c} x_i,  cmin [C, D]  min_{i∈c} x_i   (dead dimensions, H-score's noise
                                                                 floor, exact under class shifts)

**The shifts** (the numerics; they matter in float32). Each class's shift ``a_c`` is the mean of
that class's rows in the first block where the class occurs (set inside the compiled step, so
sorted-by-class files and iterators are served alike). Every accumulated quantity is then a sum
of values already centred on their own class to within the class spread, so

* the within-class scatter N·W = G − Σ_c S_c S_cᵀ/n_c and the class variances
  Q_c/n_c − (S_c/n_c)² cancel only at the level of that spread (the correction terms are
  O(1/n_first) of it), not at the level of the mean: "Cov = FᵀF/N − μμᵀ" on raw moments loses
  (|μ|/σ)² of float32's 24 bits — all of them for ReLU features with |μ| ≳ 10³·σ;
* the between-class part and the total covariance are rebuilt on the host in float64 from the
  class means, N·Cov = N·W + Σ_c n_c (m_c − μ)(m_c − μ)ᵀ (:meth:`ClassStats.centered`); uncentred
  quantities (LogME's FᵀF) likewise: FᵀF = N·W + Σ_c n_c m_c m_cᵀ, Fᵀy_c = n_c·m_c;
* PED's class translation is exact and free: translating class c by δ_c moves its shift
  (a_c + δ_c) and leaves S, Q and G untouched (:meth:`ClassStats.translated`).

**The sums over blocks**: in float32 (any accumulator narrower than float64) every summed field
carries a Neumaier compensation term (``<field>_c``): the accumulated error is O(eps) of the
total whatever the number of blocks, instead of growing with it (a running float32 sum over
2 000 blocks loses up to 2 000·eps ≈ 1.2e-4; counts stay exact past 2²⁴ rows per class). The
value and its compensation are added on the host in float64. Within a block, the sums are XLA's
(one segment sum and one Gram product per block, over ``block_rows`` centred rows). float64
accumulators carry no compensation (their rounding over any number of blocks is far below what
any consumer resolves), so float64 results are those of the plain shifted sums.

**Combining partial statistics** (several local devices, several processes): partials carry
their own shifts; each is recentred on the count-weighted mean of the shifts, a* = Σ n_c^p a_c^p
/ Σ n_c^p (one all-reduce), with the exact translation formulas of :meth:`ClassStats.translated`
(O(C·D²), once per pass), and then summed (one all-reduce, sum / max / min per field). The result
is the same statistics as one device would have accumulated, to rounding; any split of the rows
gives the same to rounding (the operation is associative up to rounding).

Memory: the statistics are O(C·D + D²) per model, whatever N is (twice the summed fields in
float32, for the compensation); a pass holds one block of ``block_rows`` rows besides. Blocks
are padded to a fixed number of rows with a row mask, so one compiled program serves every block.

Execution (:class:`Engine`): one device (the Gram through the host BLAS on the CPU backend in
float64, :func:`pedjax._linalg.gram`; otherwise an XLA product at precision HIGHEST, so TF32 or
bfloat16 passes never apply); several local devices (each block's rows split over the devices
with ``shard_map``; every device keeps its own partial statistics and they are combined with the
collectives above at the end); several processes (:mod:`pedjax.streaming.distributed`: a global
mesh over every process's devices, each process feeding its own row range; the same collectives
then span processes and every process receives the same statistics).

Size: one data path — the statistics, their block sources and the engine that runs a pass on one
device, local devices or processes — kept in one module so a pass reads top to bottom.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from .._linalg import _HOST_BLAS_MIN_FLOPS, host_kernels_enabled
from .._validate import DEGENERATE_ULPS, encode_labels, rounding_eps

#: float64 bytes of one block (rows × D × 8) when ``block_rows`` is not given
DEFAULT_BLOCK_BYTES = 64 << 20

_SUM, _MAX, _MIN, _SHIFT = "sum", "max", "min", "shift"
#: suffix of a summed field's compensation term (float32 accumulators)
_COMP = "_c"
#: how each accumulator field combines across blocks, devices and processes
REDUCE = {"counts": _SUM, "sums": _SUM, "sumsq": _SUM, "gram": _SUM, "cmax": _MAX, "cmin": _MIN, "score": _SUM, "deficit": _SUM}


# ----------------------------------------------------------------------------------------------
# the statistics


@dataclasses.dataclass(frozen=True)
class ClassStats:
    """Sufficient statistics of one model's features on a labelled target set (module docstring).

    All arrays are float64 NumPy (accumulated on the device in the computation's precision).
    Consumers should use the derived quantities below (they are formed in float64 without
    cancellation at the scale of the mean), not combine the raw fields themselves.

    Attributes:
      counts: ``[C]`` samples per class n_c.
      sums: ``[C, D]`` S_c = Σ_{i∈c} (x_i − a_c).
      sumsq: ``[C, D]`` Q_c = Σ_{i∈c} (x_i − a_c)², per dimension.
      gram: ``[D, D]`` G = Σ_i (x_i − a_{y_i})(x_i − a_{y_i})ᵀ (symmetric).
      cmax: ``[C, D]`` per-class maxima of the features.
      cmin: ``[C, D]`` per-class minima of the features.
      shift: ``[C, D]`` each class's shift a_c (``sums``, ``sumsq`` and ``gram`` are taken
        around it).
      classes: ``[C]`` the sorted label values (class c ↔ ``classes[c]``).
      input_eps: the rounding unit of the features' own dtype (float32 files: float32's), used
        to call a model degenerate exactly as the in-memory path does.
    """

    counts: np.ndarray
    sums: np.ndarray
    sumsq: np.ndarray
    gram: np.ndarray
    cmax: np.ndarray
    cmin: np.ndarray
    shift: np.ndarray
    classes: np.ndarray
    input_eps: float = float(np.finfo(np.float64).eps)

    # sizes ------------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """The number of samples N."""
        return int(round(float(self.counts.sum())))

    @property
    def dim(self) -> int:
        """The feature dimension D."""
        return int(self.gram.shape[0])

    @property
    def num_classes(self) -> int:
        """The number of classes C."""
        return int(self.counts.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes held by the array fields."""
        return sum(int(getattr(self, f).nbytes) for f in ("counts", "sums", "sumsq", "gram", "cmax", "cmin", "shift"))

    # derived quantities (float64, no cancellation at the scale of the mean) -----------------------
    def class_means(self) -> np.ndarray:
        """Class means m_c [C, D] of the features."""
        return self.shift + self.sums / np.maximum(self.counts, 1.0)[:, None]

    def class_var(self) -> np.ndarray:
        """Per-class, per-dimension variances [C, D] (ddof 0, clipped at 0)."""
        n = np.maximum(self.counts, 1.0)[:, None]
        m = self.sums / n
        return np.maximum(self.sumsq / n - m * m, 0.0)

    def mean(self) -> np.ndarray:
        """μ = Σ_c n_c m_c / N [D]."""
        return self.counts @ self.class_means() / self.n

    def var(self) -> np.ndarray:
        """Per-dimension variance over all samples (ddof 0): Σ_c n_c (var_c + (m_c − μ)²) / N."""
        d = self.class_means() - self.mean()
        return self.counts @ (self.class_var() + d * d) / self.n

    def std(self) -> np.ndarray:
        """Per-dimension standard deviation over all samples (ddof 0) [D]."""
        return np.sqrt(self.var())

    def within_gram(self) -> np.ndarray:
        """N·W = Σ_i (x_i − m_{y_i})(x_i − m_{y_i})ᵀ = G − Σ_c S_c S_cᵀ/n_c [D, D] (symmetric)."""
        Sn = self.sums / np.sqrt(np.maximum(self.counts, 1.0))[:, None]
        W = self.gram - Sn.T @ Sn
        return 0.5 * (W + W.T)

    def within_scatter(self) -> np.ndarray:
        """Σ_c prior_c·Cov_c = (1/N) Σ_i (x_i − m_{y_i})(x_i − m_{y_i})ᵀ, [D, D]."""
        return self.within_gram() / self.n

    def raw_gram(self) -> np.ndarray:
        """FᵀF [D, D] of the features themselves (uncentred): N·W + Σ_c n_c m_c m_cᵀ."""
        M = self.class_means() * np.sqrt(self.counts)[:, None]
        G = self.within_gram() + M.T @ M
        return 0.5 * (G + G.T)

    def raw_class_sums(self) -> np.ndarray:
        """Fᵀy_c = Σ_{i∈c} x_i = n_c·m_c, [C, D]."""
        return self.counts[:, None] * self.class_means()

    def centered(self):
        """(XcᵀXc [D, D], class sums of the centred features [C, D]) with Xc = X − mean:
        XcᵀXc = N·W + Σ_c n_c (m_c − μ)(m_c − μ)ᵀ, class sums n_c (m_c − μ)."""
        d = self.class_means() - self.mean()
        Dn = d * np.sqrt(self.counts)[:, None]
        Gc = self.within_gram() + Dn.T @ Dn
        return 0.5 * (Gc + Gc.T), self.counts[:, None] * d

    def max_abs(self) -> np.ndarray:
        """max_i |x_id| per dimension [D]."""
        return np.maximum(np.max(np.abs(self.cmax), axis=0), np.max(np.abs(self.cmin), axis=0))

    def dead_dimensions(self, eps: float | None = None) -> np.ndarray:
        """:func:`pedjax._validate.dead_dimensions` from the statistics (std ≤ 64·eps·max|x|).

        Args:
          eps: the rounding unit; default :attr:`input_eps`.

        Returns:
          Boolean ``[D]``, True where the dimension is dead.
        """
        eps = self.input_eps if eps is None else float(eps)
        scale = self.max_abs()
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            spread = self.std() / np.where(scale > 0, scale, 1.0)
        return ~(spread > DEGENERATE_ULPS * eps)

    def is_degenerate(self) -> bool:
        """Every dimension dead (in the input's own dtype): the in-memory paths score ``-inf``."""
        return bool(np.all(self.dead_dimensions()))

    def translated(self, delta: np.ndarray) -> ClassStats:
        """The statistics after translating every sample of class c by ``delta[c]``.

        Each class's shift moves with it (a_c + δ_c), so S, Q and G — sums of x − a_c — are
        unchanged; max/min + δ_c. Exact (no rounding beyond the shift's own addition); no
        feature is touched (this is how PED acts on statistics).

        Args:
          delta: ``[C, D]`` per-class translations.

        Returns:
          A new :class:`ClassStats`.
        """
        d = np.asarray(delta, np.float64)
        return dataclasses.replace(self, shift=self.shift + d, cmax=self.cmax + d, cmin=self.cmin + d)

    def recentred(self, shift: np.ndarray) -> ClassStats:
        """The same statistics taken around other class shifts.

        With d_c = a_c − a'_c: S'_c = S_c + n_c d_c, Q'_c = Q_c + 2 d_c ⊙ S_c + n_c d_c²,
        G' = G + Σ_c (S_c d_cᵀ + d_c S_cᵀ + n_c d_c d_cᵀ).

        Args:
          shift: ``[C, D]`` the new shifts a'_c.

        Returns:
          A new :class:`ClassStats`.
        """
        a = np.asarray(shift, np.float64)
        sums, sumsq, gram = _recentre(self.counts, self.sums, self.sumsq, self.gram, self.shift - a)
        return dataclasses.replace(self, sums=sums, sumsq=sumsq, gram=0.5 * (gram + gram.T), shift=a)


def _recentre(counts, sums, sumsq, gram, d):
    """(S', Q', G') around shifts moved by −d (:meth:`ClassStats.recentred`); NumPy or JAX arrays.
    ``sumsq`` may be ``None`` (statistics without moments)."""
    n = counts[:, None]
    cross = sums.T @ d
    G = gram + cross + cross.T + (d * n).T @ d
    Q = None if sumsq is None else sumsq + 2.0 * d * sums + n * d * d
    return sums + n * d, Q, G


# ----------------------------------------------------------------------------------------------
# sources of row blocks


class ArraySource:
    """Features ``X`` [N, D] (an array or a NumPy memmap of a ``.npy`` file) with labels ``y`` [N].

    Random access: any process can read any row range, so it serves every execution mode and
    every pass. The labels are read whole (N integers).

    Args:
      X: the features ``[N, D]``, real numbers (or bools); not copied.
      y: integer labels ``[N]`` (at least 2 classes).
      name: the features' name in error messages.

    Attributes:
      X: the features (``None`` for a :class:`NpyFileSource`).
      codes: ``[N]`` int32 class indices into ``classes``.
      classes: ``[C]`` the sorted label values.
      n: rows N.
      dim: columns D.
      eps: the rounding unit of ``X``'s dtype.
      name: as given.

    Raises:
      ValueError: ``X`` is not a non-empty 2-D real array, the labels are not valid
        (:func:`pedjax._validate.encode_labels`), or their count differs from ``X``'s rows.
    """

    def __init__(self, X, y, name: str = "X"):
        if not hasattr(X, "shape") or len(X.shape) != 2:
            raise ValueError(f"{name}: expected a 2-D array [N, D] (or a .npy file of one), got shape {getattr(X, 'shape', None)}")
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"{name}: is empty (shape {X.shape})")
        if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool) or np.issubdtype(X.dtype, np.complexfloating):
            raise ValueError(f"{name}: has dtype {X.dtype}; features must be real numbers")
        self.X, self.name = X, name
        self.codes, self.classes = encode_labels(y, "labels")
        if self.codes.shape[0] != X.shape[0]:
            raise ValueError(f"labels: has {self.codes.shape[0]} entries but {name} has {X.shape[0]} rows")
        self.n, self.dim = int(X.shape[0]), int(X.shape[1])
        self.eps = rounding_eps(X)
        self.random_access = True
        self.reiterable = True

    def rows(self, start: int, stop: int):
        """Rows ``[start, stop)``: ``(features [k, D] in their own dtype, class codes [k])``."""
        return np.asarray(self.X[start:stop]), self.codes[start:stop]

    def blocks(self, rows: int, start: int = 0, stop: int | None = None):
        """Yield :meth:`rows` blocks of ``rows`` rows over ``[start, stop)`` (``stop`` default N)."""
        stop = self.n if stop is None else stop
        for i in range(start, stop, rows):
            yield self.rows(i, min(i + rows, stop))


class NpyFileSource(ArraySource):
    """A ``.npy`` file [N, D] read row block by row block with plain file reads.

    No memory map: pages of a mapped file count in the process's resident memory until it is
    unmapped, so reading a whole file through a map shows the file's size resident; here only
    the current block is.

    Args:
      path: the ``.npy`` file (C order).
      y: integer labels ``[N]`` (or of the first ``n_rows`` rows).
      name: the features' name in error messages (default: the path).
      n_rows: read only the first ``n_rows`` rows.

    Raises:
      OSError: the file cannot be read.
      ValueError: the file is not a valid ``.npy`` array, is stored in Fortran order, or does
        not fit the labels (:class:`ArraySource`); a block read later is truncated.
    """

    def __init__(self, path, y, name: str | None = None, n_rows: int | None = None):
        from ..features.files import load_npy

        path = Path(path)
        arr = load_npy(path, mmap=True)  # validates the file and gives its shape and dtype
        if arr.ndim == 2 and np.isfortran(arr) and arr.shape[1] > 1:
            raise ValueError(f"{path}: is stored in Fortran order; rows cannot be streamed (save it C-ordered)")
        offset = int(arr.offset)  # type: ignore[attr-defined]  # a np.memmap (load_npy with mmap=True)
        if n_rows is not None:  # the first n_rows rows only
            arr = arr[: int(n_rows)]
        super().__init__(arr, y, name=name or str(path))
        self.path, self.dtype, self.offset = path, arr.dtype, offset
        del arr
        self.X = None
        self._f = open(path, "rb")  # noqa: SIM115 - the source reads rows from it until close()

    def rows(self, start: int, stop: int):
        """Rows ``[start, stop)`` read from the file: ``(features [k, D], class codes [k])``."""
        self._f.seek(self.offset + start * self.dim * self.dtype.itemsize)
        k = stop - start
        X = np.fromfile(self._f, dtype=self.dtype, count=k * self.dim)
        if X.size != k * self.dim:
            raise ValueError(f"{self.path}: truncated (rows {start}..{stop} missing); re-extract it")
        return X.reshape(k, self.dim), self.codes[start:stop]

    def __del__(self):
        f = getattr(self, "_f", None)
        if f is not None:
            f.close()


class IterSource:
    """Blocks ``(features [b, D], labels [b])`` from an iterable, or from a callable returning a
    fresh iterable per pass (needed by multi-pass metrics: SFDA, the regularized H-score).

    Args:
      blocks: an iterable of ``(features [b, D], labels [b])``, or a callable returning a fresh
        one per pass.
      classes: every label value that occurs (the labels are not known before the pass).
      name: the features' name in error messages.

    Raises:
      ValueError: ``classes`` is ``None`` or has fewer than 2 values; while iterating
        (:meth:`blocks`), a block that is not 2-D, has another width, a label count other than
        its rows, or a label not in ``classes``, or a one-shot iterable read a second time.
    """

    def __init__(self, blocks, classes, name: str = "blocks"):
        if classes is None:
            raise ValueError(f"{name}: an iterator of blocks needs classes= (every label value, e.g. np.arange(C)); "
                             "or pass the features as an array / .npy file with its labels")
        self.classes = np.unique(np.asarray(classes).reshape(-1))
        if self.classes.size < 2:
            raise ValueError(f"classes: at least 2 classes are needed, got {self.classes.size}")
        self.factory = blocks if callable(blocks) else None
        self._once = None if callable(blocks) else iter(blocks)
        self.name = name
        self.random_access = False
        self.reiterable = self.factory is not None
        self.n = None
        self.dim: int | None = None
        self.eps = float(np.finfo(np.float64).eps)

    def blocks(self, rows: int | None = None, start: int = 0, stop: int | None = None):
        """Yield ``(features, class codes)`` blocks of at most ``rows`` rows (``start``/``stop``
        are ignored: an iterable has no random access)."""
        if self.factory is not None:
            it = iter(self.factory())
        elif self._once is not None:
            it, self._once = self._once, None
        else:
            raise ValueError(f"{self.name}: a one-shot iterator was already consumed; pass a callable that returns "
                             "a fresh iterator per pass (SFDA reads the data three times)")
        for X, y in it:
            X = np.asarray(X)
            if X.ndim != 2:
                raise ValueError(f"{self.name}: a block has shape {X.shape}; blocks must be [rows, D]")
            y = np.asarray(y).reshape(-1)
            if y.shape[0] != X.shape[0]:
                raise ValueError(f"{self.name}: a block has {X.shape[0]} rows but {y.shape[0]} labels")
            codes = np.searchsorted(self.classes, y)
            bad = (codes >= self.classes.size) | (self.classes[np.minimum(codes, self.classes.size - 1)] != y)
            if np.any(bad):
                raise ValueError(f"{self.name}: label {y[bad][0]!r} is not in classes=")
            if self.dim is None:
                self.dim = int(X.shape[1])
                if np.issubdtype(X.dtype, np.floating):
                    self.eps = float(np.finfo(X.dtype).eps)
            elif X.shape[1] != self.dim:
                raise ValueError(f"{self.name}: blocks have {X.shape[1]} and {self.dim} columns")
            # split big blocks so one compiled block size serves all
            step = rows or X.shape[0]
            for i in range(0, X.shape[0], step):
                yield X[i : i + step], codes[i : i + step].astype(np.int32)


def as_source(features, labels=None, *, classes=None, name: str = "features"):
    """A block source (:class:`ArraySource`, :class:`NpyFileSource` or :class:`IterSource`) from what the caller has.

    Args:
      features: an array or memmap [N, D]; a path to a ``.npy`` file (read block by block,
        never loaded whole); an iterable of ``(features, labels)`` blocks, or a callable
        returning one per pass; or a source (returned as is).
      labels: ``[N]`` labels (an array or a ``.npy`` path) for an array or file.
      classes: every label value, for an iterable.
      name: the features' name in error messages.

    Returns:
      The source.

    Raises:
      ValueError: ``labels`` missing for an array or file, ``classes`` missing for an
        iterable, or ``features`` of another kind (and the sources' own checks).
      OSError: a ``.npy`` file cannot be read.
    """
    if isinstance(features, (ArraySource, IterSource)):
        return features
    if isinstance(labels, (str, Path)):
        from ..features.files import load_npy

        labels = load_npy(Path(labels))
    if isinstance(features, (str, Path)):
        if labels is None:
            raise ValueError(f"labels: required with the .npy file {features}")
        return NpyFileSource(features, labels)
    if hasattr(features, "shape") and hasattr(features, "dtype"):
        if labels is None:
            raise ValueError(f"labels: required with an array of {name}")
        return ArraySource(features, labels, name=name)
    if callable(features) or isinstance(features, Iterable):
        return IterSource(features, classes, name=name)
    raise ValueError(f"{name}: expected an array [N, D], a .npy path or an iterable of (features, labels) blocks, "
                     f"got {type(features).__name__}")


def default_block_rows(dim: int, n_dev: int = 1) -> int:
    """Rows per block when none are given: :data:`DEFAULT_BLOCK_BYTES` of float64 (at least 256),
    rounded up to a multiple of ``n_dev``."""
    rows = max(256, DEFAULT_BLOCK_BYTES // (8 * max(dim, 1)))
    return -(-rows // n_dev) * n_dev


# ----------------------------------------------------------------------------------------------
# per-block kernels (pure JAX)


def _shift_rows(shift, codes):
    """Each row's shift: ``shift`` [D] (one for all rows) or [C, D] (per class, gathered)."""
    return shift if shift.ndim == 1 else shift[codes]


def _host_gram_bits(xb):
    x = np.asarray(xb).view(np.float64)[..., 0]
    g = x.T @ x  # NumPy dispatches AᵀA to BLAS syrk/gemm
    return np.ascontiguousarray(g)[..., None].view(np.uint32)


def _block_gram(Xs):
    """Xsᵀ Xs: float64 on the CPU backend through the host BLAS (as :func:`pedjax._linalg.gram`),
    otherwise XLA at precision HIGHEST.

    The host call exchanges the float64 data as uint32 bit pairs: JAX converts a callback's
    operands and results under the x64 setting *of the thread that runs it*, and XLA:CPU runs a
    callback on one of its worker threads when it follows asynchronous work in the program (a
    scatter such as a segment sum, a conditional: the shift update here), where pedjax's scoped
    ``jax.enable_x64`` does not reach — float64 operands would arrive as float32 and the float64
    result would be rejected."""
    N, D = Xs.shape
    if Xs.dtype == jnp.float64 and N * D * D >= _HOST_BLAS_MIN_FLOPS and host_kernels_enabled():
        bits = jax.lax.bitcast_convert_type(Xs, jnp.uint32)  # [N, D, 2]
        out = jax.ShapeDtypeStruct((D, D, 2), jnp.uint32)
        return jax.lax.bitcast_convert_type(jax.pure_callback(_host_gram_bits, out, bits, vmap_method="sequential"), jnp.float64)
    return jnp.matmul(Xs.T, Xs, precision=jax.lax.Precision.HIGHEST)


def block_stats(X, codes, mask, shift, num_classes: int, moments: bool = True) -> dict:
    """Statistics of one block around ``shift``; rows with ``mask`` False contribute nothing.

    The class extrema are taken on the input's own floating dtype and then widened (exact:
    widening is monotone; cheaper than on the widened copy), and the widened, shifted block is
    materialised once (``optimization_barrier``) instead of being recomputed inside every
    segment reduction (the cost: docs/streaming.md).

    Args:
      X: ``[b, D]`` features.
      codes: ``[b]`` int class codes.
      mask: ``[b]`` bool, True for real (not padding) rows.
      shift: ``[D]`` (one for all rows) or ``[C, D]`` (per class); its dtype is the accumulators'.
      num_classes: C.
      moments: also ``sumsq``, ``cmax`` and ``cmin`` (else counts, sums and the Gram only).

    Returns:
      ``{"counts", "sums", "gram"[, "sumsq", "cmax", "cmin"]}`` of the block.
    """
    ids = jnp.where(mask, codes, num_classes)  # out of range: dropped by the segment ops
    dt = shift.dtype
    m = mask.astype(dt)
    Xs = jax.lax.optimization_barrier((X.astype(dt) - _shift_rows(shift, jnp.minimum(codes, num_classes - 1))) * m[:, None])
    out = {
        "counts": jax.ops.segment_sum(m, ids, num_classes),
        "sums": jax.ops.segment_sum(Xs, ids, num_classes),
        # float64: the host BLAS on the CPU backend; otherwise XLA at HIGHEST (no TF32/bfloat16 passes)
        "gram": _block_gram(Xs),
    }
    if moments:
        out["sumsq"] = jax.ops.segment_sum(jax.lax.optimization_barrier(Xs * Xs), ids, num_classes)
        Xe = X if jnp.issubdtype(X.dtype, jnp.floating) else X.astype(dt)  # integer extrema of an empty class are not ±inf
        out["cmax"] = jax.ops.segment_max(Xe, ids, num_classes).astype(dt)
        out["cmin"] = jax.ops.segment_min(Xe, ids, num_classes).astype(dt)
    return out


def compensated(dtype) -> bool:
    """Whether accumulators of ``dtype`` carry Neumaier compensation terms (narrower than float64)."""
    return jnp.dtype(dtype).itemsize < 8


def init_stats(num_classes: int, dim: int, dtype, moments: bool = True, adaptive: bool = False) -> dict:
    """Empty accumulators. ``adaptive``: with per-class shifts set on each class's first block
    (``"shift"``, :func:`adapt_shift`). In float32, every summed field gets a compensation
    term ``<field>_c`` (:func:`combine`)."""
    out = {"counts": jnp.zeros((num_classes,), dtype), "sums": jnp.zeros((num_classes, dim), dtype),
           "gram": jnp.zeros((dim, dim), dtype)}
    if moments:
        out["sumsq"] = jnp.zeros((num_classes, dim), dtype)
    if compensated(dtype):
        out.update({k + _COMP: jnp.zeros_like(v) for k, v in list(out.items())})
    if moments:
        out["cmax"] = jnp.full((num_classes, dim), -jnp.inf, dtype)
        out["cmin"] = jnp.full((num_classes, dim), jnp.inf, dtype)
    if adaptive:
        out["shift"] = jnp.zeros((num_classes, dim), dtype)
    return out


def _neumaier(s, c, x):
    """(s + x, compensation): Neumaier's variant of Kahan summation (the lost low part of each
    addition is kept in ``c``; exact for |x| > |s| too)."""
    t = s + x
    return t, c + jnp.where(jnp.abs(s) >= jnp.abs(x), (s - t) + x, (x - t) + s)


def combine(acc: dict, block: dict) -> dict:
    """``acc`` with one block's statistics (:func:`block_stats`, same shifts) added: sums
    (compensated where ``acc`` carries ``<field>_c``), maxima, minima. Fields of ``acc`` that the
    block lacks (shifts, compensations) are kept."""
    out = dict(acc)
    for k, v in block.items():
        r = REDUCE[k]
        if r == _SUM and k + _COMP in acc:
            out[k], out[k + _COMP] = _neumaier(acc[k], acc[k + _COMP], v)
        elif r == _SUM:
            out[k] = acc[k] + v
        else:
            out[k] = jnp.maximum(acc[k], v) if r == _MAX else jnp.minimum(acc[k], v)
    return out


def adapt_shift(acc: dict, X, codes, mask, num_classes: int):
    """``acc["shift"]`` with the shift of every class first seen in this block set to its mean
    over the block's rows (classes seen before keep theirs: their sums are taken around it)."""
    shift = acc["shift"]
    ids = jnp.where(mask, codes, num_classes)
    dt = shift.dtype
    m = mask.astype(dt)
    nb = jax.ops.segment_sum(m, ids, num_classes)
    new = (acc["counts"] == 0) & (nb > 0)

    def first_means(shift):
        sb = jax.ops.segment_sum(X.astype(dt) * m[:, None], ids, num_classes)
        return jnp.where(new[:, None], sb / jnp.maximum(nb, 1.0)[:, None], shift)

    return jax.lax.cond(jnp.any(new), first_means, lambda s: s, shift)


def _stats_step(acc, rows, params, num_classes):
    X, codes, mask = rows
    acc = dict(acc, shift=adapt_shift(acc, X, codes, mask, num_classes))
    return combine(acc, block_stats(X, codes, mask, acc["shift"], num_classes)), None


def _init_adaptive(num_classes, dim, dtype):
    return init_stats(num_classes, dim, dtype, adaptive=True)


def reduce_partials(acc: dict, axis: str) -> dict:
    """Inside ``shard_map`` over ``axis``: every device's partial statistics combined (module
    docstring): with per-class shifts, each partial is first recentred on the count-weighted
    mean of the partials' shifts; then sum / max / min per field. Compensation terms are summed
    on their own (the host adds them in float64)."""
    out = dict(acc)
    if "shift" in acc:
        n = acc["counts"] + acc.get("counts" + _COMP, 0.0)
        total = jax.lax.psum(n, axis)
        common = jax.lax.psum(n[:, None] * acc["shift"], axis) / jnp.maximum(total, 1.0)[:, None]
        d = acc["shift"] - common
        out["sums"], sumsq, out["gram"] = _recentre(n, acc["sums"], acc.get("sumsq"), acc["gram"], d)
        if sumsq is not None:
            out["sumsq"] = sumsq
        out["shift"] = common
    for k, v in out.items():
        if k == "shift":
            continue
        r = REDUCE[k.removesuffix(_COMP)]
        f = jax.lax.psum if r == _SUM else (jax.lax.pmax if r == _MAX else jax.lax.pmin)
        out[k] = f(v, axis)
    return out


def fold(acc: dict) -> dict:
    """Host-side: NumPy float64 fields with each compensation term added (``<field>_c`` dropped)."""
    out = {k: np.asarray(v, np.float64) for k, v in acc.items() if not k.endswith(_COMP)}
    for k in out:
        if k + _COMP in acc:
            out[k] = out[k] + np.asarray(acc[k + _COMP], np.float64)
    return out


# ----------------------------------------------------------------------------------------------
# the engine: one device, local devices, or processes


class Engine:
    """Runs a per-block step ``step(acc, rows, params, num_classes) -> (acc, row_output)`` over a
    source's row blocks, then reduces the accumulators (sum / max / min per field, :data:`REDUCE`).

    Args:
      devices: ``None`` = every local device (one device: no sharding); ``"global"`` = every
        device of every process (after :func:`pedjax.streaming.distributed.initialize`): each
        process reads its own row range (:meth:`row_range`); or a list of devices.
      block_rows: rows per block (default: :func:`default_block_rows`, 64 MiB of float64).

    Attributes:
      devices: the devices used.
      n_dev: their number.
      n_local: those of this process.
      n_proc: processes taking part (1 unless ``"global"``).
      mesh: the one-axis ``"rows"`` mesh, or ``None`` on one device.
      block_rows: as given.
    """

    def __init__(self, devices=None, block_rows: int | None = None):
        self.multiprocess = devices == "global"
        devs = jax.devices() if self.multiprocess else (list(devices) if devices is not None else jax.local_devices())
        self.devices = devs
        self.n_dev = len(devs)
        self.n_local = len([d for d in devs if d.process_index == jax.process_index()])
        self.n_proc = jax.process_count() if self.multiprocess else 1
        self.mesh = Mesh(np.array(devs), ("rows",)) if self.n_dev > 1 else None
        self.block_rows = block_rows

    # rows ---------------------------------------------------------------------------------------
    def rows_per_block(self, dim: int) -> int:
        """Rows of one process's block (a multiple of its local device count)."""
        rows = self.block_rows or default_block_rows(dim, 1)
        return -(-int(rows) // max(self.n_local, 1)) * max(self.n_local, 1)

    def row_range(self, n: int) -> tuple[int, int]:
        """This process's rows [start, stop) of N (contiguous, nearly equal ranges)."""
        p, k = jax.process_index() if self.multiprocess else 0, self.n_proc
        return (n * p) // k, (n * (p + 1)) // k

    def n_blocks(self, n: int, rows: int) -> int:
        """Blocks every process runs (the largest range's count: all processes step together)."""
        longest = max((n * (p + 1)) // self.n_proc - (n * p) // self.n_proc for p in range(self.n_proc))
        return max(1, -(-longest // rows))

    # compiled pieces -----------------------------------------------------------------------------
    @functools.cached_property
    def _sharding(self):
        return None if self.mesh is None else NamedSharding(self.mesh, P("rows"))

    def _compile(self, step: Callable, num_classes: int, init: Callable):
        return _compiled(step, num_classes, init, self.mesh)

    def params(self, arrays) -> tuple:
        """Per-pass parameters replicated on the engine's devices (from NumPy: every process alike)."""
        if self.mesh is None:
            return tuple(jnp.asarray(a) for a in arrays)
        rep = NamedSharding(self.mesh, P())
        return tuple(jax.make_array_from_process_local_data(rep, np.asarray(a), np.shape(a)) for a in arrays)

    def put_rows(self, arrays):
        """This process's block arrays as global arrays sharded by rows over the mesh (or plain
        device arrays on one device)."""
        if self.mesh is None:
            return tuple(jnp.asarray(a) for a in arrays)
        out = []
        for a in arrays:
            gshape = (a.shape[0] * self.n_proc,) + a.shape[1:]
            out.append(jax.make_array_from_process_local_data(self._sharding, np.asarray(a), gshape))
        return tuple(out)

    def run(self, source, step: Callable, init: Callable, params: tuple, num_classes: int, dim: int, *,
            extra_rows: Callable | None = None, progress=None, pass_name: str = "") -> tuple[dict, list]:
        """One pass over ``source``. Every product runs at precision HIGHEST (no TF32 or
        bfloat16 passes on accelerators).

        Args:
          source: a block source (:func:`as_source`).
          step: ``step(acc, rows, params, num_classes) -> (acc, row_output or None)``, traced once.
          init: ``init(num_classes, dim, dtype) -> acc``, the empty accumulators.
          params: per-pass parameters (:meth:`params`).
          num_classes: C.
          dim: D.
          extra_rows: ``extra_rows(block_index) -> tuple`` of additional per-row inputs (e.g.
            a previous pass's outputs) for each block.
          progress: a :class:`~pedjax.util.Progress` advanced once per block, or ``None``.
          pass_name: the pass's name in error messages.

        Returns:
          ``(accumulators as float64 NumPy with compensations folded in, this process's row
          outputs per block)``.

        Raises:
          ValueError: a block holds NaN/inf, or several processes are asked to read a source
            without random access.
        """
        with jax.default_matmul_precision("highest"):
            return self._run(source, step, init, params, num_classes, dim, extra_rows=extra_rows, progress=progress,
                             pass_name=pass_name)

    def _run(self, source, step, init, params, num_classes, dim, *, extra_rows, progress, pass_name):
        rows = self.rows_per_block(dim)
        fn_step, fn_init, fn_reduce = self._compile(step, num_classes, init)
        acc = fn_init(dim)
        outs = []
        if source.random_access:
            start, stop = self.row_range(source.n)
            nb = self.n_blocks(source.n, rows)
            it = (source.rows(min(start + i * rows, stop), min(start + (i + 1) * rows, stop)) for i in range(nb))
        else:
            if self.multiprocess:
                raise ValueError(f"{source.name}: several processes need random-access features (an array or .npy file), "
                                 "each process reads its own row range")
            it = source.blocks(rows)
        for b, (X, codes) in enumerate(it):
            k = X.shape[0]
            if not np.all(np.isfinite(X)):
                raise ValueError(f"{source.name}: rows of block {b} ({pass_name}) contain NaN/inf values")
            if k < rows:  # pad to the compiled size
                X = np.concatenate([X, np.zeros((rows - k,) + X.shape[1:], X.dtype)])
                codes = np.concatenate([codes, np.zeros(rows - k, codes.dtype)])
            mask = np.arange(rows) < k
            extra = extra_rows(b) if extra_rows is not None else ()
            extra = tuple(np.concatenate([e, np.zeros((rows - e.shape[0],) + e.shape[1:], e.dtype)]) if e.shape[0] < rows else e
                          for e in extra)
            acc, out = fn_step(acc, self.put_rows((X, codes.astype(np.int32), mask) + extra), params)
            if out is not None:
                outs.append(self.local_rows(out)[:k])
            if progress is not None:
                progress.advance(1)
        reduced = fn_reduce(acc)
        return fold({k: self.fetch(v) for k, v in reduced.items()}), outs

    def local_rows(self, arr) -> np.ndarray:
        """This process's rows of a row-sharded array, in order, as NumPy."""
        if self.mesh is None:
            return np.asarray(arr)
        shards = sorted(arr.addressable_shards, key=lambda s: s.index[0].start or 0)
        return np.concatenate([np.asarray(s.data) for s in shards])

    def fetch(self, arr) -> np.ndarray:
        """A replicated array's value as NumPy (from this process's first shard)."""
        if self.mesh is None:
            return np.asarray(arr)
        return np.asarray(arr.addressable_shards[0].data)


@functools.cache
def _compiled(step, num_classes, init, mesh):
    """(step, init, reduce) compiled for a mesh (or one device)."""
    if mesh is None:
        fstep = jax.jit(lambda acc, rows, params: step(acc, rows, params, num_classes), donate_argnums=0)
        finit = jax.jit(lambda dim: init(num_classes, dim, jnp.float64 if jax.config.jax_enable_x64 else jnp.float32),
                        static_argnums=0)
        return fstep, finit, lambda acc: acc
    n = mesh.devices.size
    dt = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32

    def local_step(acc, rows, params):
        acc1 = jax.tree.map(lambda a: a[0], acc)
        new, out = step(acc1, rows, params, num_classes)
        return jax.tree.map(lambda a: a[None], new), out

    def sharded_step(acc, rows, params):
        out_spec = P("rows")
        return jax.shard_map(local_step, mesh=mesh, in_specs=(P("rows"), P("rows"), P()),
                             out_specs=(P("rows"), out_spec), check_vma=False)(acc, rows, params)

    def init_global(dim):
        one = init(num_classes, dim, dt)
        return jax.tree.map(lambda a: jnp.broadcast_to(a[None], (n,) + a.shape), one)

    def local_reduce(acc):
        return reduce_partials({k: v[0] for k, v in acc.items()}, "rows")

    freduce = jax.jit(jax.shard_map(local_reduce, mesh=mesh, in_specs=P("rows"), out_specs=P(), check_vma=False))
    finit = jax.jit(init_global, static_argnums=0, out_shardings=NamedSharding(mesh, P("rows")))
    return jax.jit(sharded_step, donate_argnums=0), finit, freduce


# ----------------------------------------------------------------------------------------------
# the statistics pass


class _Chain:
    """An IterSource whose first block was already read (for the width)."""

    def __init__(self, source, first, rest):
        self.__dict__.update(source.__dict__)
        self._first, self._rest = first, rest

    def blocks(self, rows=None, start=0, stop=None):
        yield self._first
        yield from self._rest


def accumulate(source, *, engine: Engine | None = None, progress=None) -> ClassStats:
    """One statistics pass over ``source`` → :class:`ClassStats`.

    Accumulated in the caller's precision (float64 under ``jax_enable_x64``, else float32 with
    compensated sums; module docstring) and returned as float64 NumPy arrays.

    Args:
      source: a block source (:func:`as_source`).
      engine: the :class:`Engine` (default: every local device, default block size).
      progress: a :class:`~pedjax.util.Progress` advanced once per block, or ``None``.

    Returns:
      The :class:`ClassStats`.

    Raises:
      ValueError: an iterable yields no block, a block holds NaN/inf, or a class of the
        source's ``classes`` has no sample (and the source's own checks).
    """
    engine = engine or Engine()
    dim = source.dim
    src = source
    if not source.random_access:  # the width comes with the first block: peek at it
        gen = source.blocks(engine.rows_per_block(dim or 1))
        first = next(gen, None)
        if first is None:
            raise ValueError(f"{source.name}: no blocks")
        dim = first[0].shape[1]
        src = _Chain(source, first, gen)
    acc, _ = engine.run(src, _stats_step, _init_adaptive, engine.params(()), int(source.classes.size), dim,
                        progress=progress, pass_name="statistics")
    if np.any(acc["counts"] == 0):
        missing = source.classes[acc["counts"] == 0]
        raise ValueError(f"{source.name}: class(es) {missing.tolist()} have no samples; classes= must list only labels that occur")
    return ClassStats(counts=acc["counts"], sums=acc["sums"], sumsq=acc["sumsq"], gram=0.5 * (acc["gram"] + acc["gram"].T),
                      cmax=acc["cmax"], cmin=acc["cmin"], shift=acc["shift"], classes=source.classes, input_eps=source.eps)
