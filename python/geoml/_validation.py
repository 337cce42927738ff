"""Input checks shared by every public entry point (run once, at the boundary)."""

from __future__ import annotations

import contextlib
import numbers
import os
import sys
import warnings

import numpy as np

__all__ = [
    "as_float_array",
    "canonical_csr",
    "check_bool",
    "check_int",
    "check_n_jobs",
    "check_random_state",
    "check_real",
    "check_tol",
    "finite_sum",
    "is_gpu_array",
    "random_seed",
    "reject_gpu",
    "truncate_to_samples",
    "user_stacklevel",
    "validate_random_state",
]


def is_gpu_array(x) -> bool:
    """True for CuPy (or any ``__cuda_array_interface__``) arrays; never imports CuPy."""
    return hasattr(x, "__cuda_array_interface__")


def is_device_object(x) -> bool:
    """True for CuPy arrays and ``cupyx.scipy.sparse`` matrices; never imports CuPy."""
    return is_gpu_array(x) or type(x).__module__.startswith("cupyx.")


def reject_gpu(x, name: str, what: str) -> None:
    """Raise ``TypeError`` for device arrays (and ``cupyx.scipy.sparse`` matrices) on a
    CPU-only entry point."""
    if is_device_object(x):
        raise TypeError(
            f"{name} is a GPU (CuPy) array, but {what} has no GPU implementation yet; "
            f"pass a NumPy array (e.g. {name}.get())"
        )


class DTypeError(TypeError, ValueError):
    """Input of a dtype geoml does not compute with (complex numbers, strings, ...).

    A ``TypeError`` (geoml's convention for a wrong dtype) that is also a ``ValueError``
    (scikit-learn's for complex data), so ``except`` clauses written for either catch it, as
    ``sklearn.exceptions.NotFittedError`` is both a ``ValueError`` and an ``AttributeError``.
    """


def as_real(arr, name: str, message: str | None = None):
    """``arr`` (an ndarray or a SciPy sparse matrix) if its dtype is real (float, int, bool).

    An object ndarray of real numbers becomes float64, as scikit-learn and NumPy convert it;
    one holding anything else (a string, a dict, a complex number) is a ``TypeError`` that quotes
    NumPy's reason. Complex and other dtypes are a :class:`DTypeError` (``message``, default
    "<name> must hold real numbers; got dtype ...").
    """
    kind = arr.dtype.kind
    if kind in "fiub":
        return arr
    if kind == "O" and isinstance(arr, np.ndarray):
        try:
            return arr.astype(np.float64)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"{name} has dtype object and holds something that is not a real number: {e}"
            ) from None
    what = message or f"{name} must hold real numbers; got dtype {arr.dtype}"
    if kind == "c":
        what += " (Complex data not supported)"
    raise DTypeError(what)


def aligned(a: np.ndarray) -> np.ndarray:
    """``a`` C-contiguous and aligned for its dtype: a copy only when it is not (the C++ kernels
    load whole elements; a buffer deserialized at an odd offset is not aligned)."""
    return np.require(a, requirements=("C", "A"))


def as_float_array(
    X, name: str = "X", *, ndim: int = 2, dtype=None, allow_empty: bool = False, finite: bool = True
) -> np.ndarray:
    """Return ``X`` as a C-contiguous float32 or float64 NumPy array, copying only if needed.

    float32/float64 are kept; float16 becomes float32; integers and booleans become float64
    (they may not be exact in float32). ``dtype`` forces one of float32/float64.
    Object arrays of numbers become float64. Raises ``TypeError`` for non-numeric input
    (:class:`DTypeError`, also a ``ValueError``, for complex numbers) and ``ValueError`` for
    the wrong number of
    dimensions, empty input or NaN/inf.
    """
    if hasattr(X, "toarray") and not isinstance(X, np.ndarray):
        raise TypeError(f"{name} is a sparse matrix; a dense array is expected here")
    arr = as_real(np.asarray(X), name)
    if dtype is None:
        if arr.dtype.type in (np.float32, np.float64):  # either byte order: native out
            dtype = arr.dtype.type
        elif arr.dtype.type == np.float16:
            dtype = np.float32
        else:
            dtype = np.float64
    # C order and aligned (a buffer unpickled at an odd offset, e.g. by Dask, is copied once)
    arr = np.require(arr, dtype=dtype, requirements=("C", "A"))
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array; got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        if ndim == 2 and arr.shape[0] and not arr.shape[1]:  # scikit-learn's words for it
            raise ValueError(
                f"{name} is empty: 0 feature(s) (shape={arr.shape}) while a "
                "minimum of 1 is required."
            )
        raise ValueError(f"{name} is empty (shape {arr.shape}); at least one element is needed")
    if finite and not _all_finite(arr):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def _all_finite(arr) -> bool:
    """``np.isfinite(arr).all()`` in blocks of about 4M entries: the boolean temporary stays
    small (a kNN graph's memory bound counts everything beyond the data)."""
    flat = arr.reshape(-1) if arr.flags.c_contiguous or arr.flags.f_contiguous else None
    if flat is None or flat.size <= 1 << 22:
        return bool(np.isfinite(arr).all())
    step = 1 << 22
    return all(np.isfinite(flat[i : i + step]).all() for i in range(0, flat.size, step))


def finite_sum(w: np.ndarray) -> tuple[np.ndarray, float]:
    """``(w, w.sum())`` for non-negative finite weights or lengths; where the sum overflows
    (two of 1e308), ``w`` first scaled down by a power of two (exact: the same proportions),
    so that normalising by the sum does not turn every entry into 0."""
    with np.errstate(over="ignore"):
        total = w.sum()
    if len(w) and np.isfinite(w).all() and not np.isfinite(total):
        w = np.ldexp(w, -int(np.frexp(w.max())[1]))
        total = w.sum()
    return w, float(total)


def check_int(
    value, name: str, *, low: int | None = None, high: int | None = None, hint: str = ""
) -> int:
    """Validate an integer parameter within [low, high]; ``ValueError``/``TypeError`` if not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
        raise ValueError(f"{name}={value} is out of range {bounds}{hint}")
    return value


def canonical_csr(C):
    """The CSR matrix ``C`` with sorted indices and no duplicate entries: ``C`` itself when it
    has them, else a canonical copy. (``sum_duplicates`` works in place, and
    ``sp.csr_matrix(A)`` shares its arrays with a CSR ``A``: summing on them left the
    caller's matrix with ``nnz < len(data)``.)"""
    if not C.has_canonical_format:
        C = C.copy()
        C.sum_duplicates()
    return C


def check_bool(value, name: str) -> bool:
    """``value`` as a bool if it is one (NumPy's included); ``TypeError`` otherwise (a string
    "no" or None read by its truth value silently meant True / False)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool (True or False); got {value!r}")
    return bool(value)


def check_real(value, name: str, *, what: str = "a number") -> float:
    """A real scalar parameter as a float: a Python ``int`` or ``float``, a NumPy integer or
    floating scalar, or a 0-d array of one. Anything else is a ``TypeError`` naming ``name``
    and ``what`` is expected: ``bool`` (as :func:`check_int` rejects it), None, a string
    (``float()`` accepted a numeric one, and raised its own message for others), a complex
    number, a sequence or an array of more than one element. The range is the caller's to
    check (NaN and infinity pass)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]  # its NumPy scalar
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {what}; got {value!r}")
    return float(value)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
# Frames that only pass a call through (``np.errstate`` used as a decorator, a
# ``contextlib.ContextDecorator``): never the user's line, skipped like geoml's own.
_PASS_THROUGH = frozenset(
    {
        contextlib.ContextDecorator.__call__.__code__.co_filename,
        np.errstate.__call__.__code__.co_filename,
    }
)


def user_stacklevel() -> int:
    """The ``stacklevel`` for ``warnings.warn`` in the function that calls this one that
    points at the first frame outside the geoml package: the user's line, however deep the
    call (``fit`` or ``fit_transform``, a function or the estimator around it). A fixed
    level pointed inside geoml from some callers, and Python's default filter shows a
    warning once per location: a second fit with recall below target, or with a
    disconnected graph, was then not warned about.

    Pass-through frames between geoml's (``np.errstate`` as a decorator) are skipped too. A
    user callback that calls geoml is the user's line (the innermost frame outside geoml
    wins). In a worker thread (or a Dask task) the first frame outside geoml is the pool's
    or the scheduler's: the warning points there, never inside geoml. A stack that is geoml's
    to its bottom gives its outermost frame (not a level past the stack). A frame walk, run
    only when a warning is issued: a few microseconds.
    """
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and (
        frame.f_code.co_filename.startswith(_PACKAGE_DIR)
        or frame.f_code.co_filename in _PASS_THROUGH
    ):
        frame = frame.f_back
        level += 1
    return level


def truncate_to_samples(
    value, name: str, n_samples: int, *, high: int | None = None, what: str = ""
) -> int:
    """An estimator's neighbour count ``value`` (an int >= 1) for a fit on ``n_samples`` points.

    Above ``high`` (default ``n_samples - 1``: a point is not its own neighbour) it becomes
    ``high`` with a ``UserWarning`` "<name>=... is larger than the dataset size ...; truncating
    to ...", umap-learn's convention ("n_neighbors is larger than the dataset size; truncating
    to X.shape[0] - 1"). The estimators truncate; the functions (:func:`geoml.knn`,
    :func:`geoml.knn_graph`, ...) keep their ``ValueError``. ``X`` is validated before this is
    called, so NaN or a wrong shape is reported first. Fewer than 2 samples (no neighbour at
    all) is left to the caller's own check.
    """
    value = check_int(value, name, low=1)
    if high is None:
        high, what = n_samples - 1, "X.shape[0] - 1"
    if value > high >= 1:
        to = f"{what} = {high}" if what else str(high)
        warnings.warn(
            f"{name}={value} is larger than the dataset size ({n_samples} samples); "
            f"truncating to {to}",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return high
    return value


# More threads than this are never started: a count far above the cores only costs thread
# start-up and per-thread scratch (n_jobs=10**6 crashed the OpenMP runtime), and a count past
# the C int range could not be passed at all. Oversubscription up to it stays possible.
_MAX_THREADS = max(64, os.cpu_count() or 1)


def check_n_jobs(n_jobs) -> int:
    """``None`` -> 0 (OpenMP default: OMP_NUM_THREADS, else all cores), -1 -> all cores;
    counts above ``max(64, os.cpu_count())`` are capped to it."""
    if n_jobs is None:
        return 0
    n_jobs = check_int(n_jobs, "n_jobs")
    if n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs={n_jobs}: use None, -1 (all cores) or a positive count")
    return min(n_jobs, _MAX_THREADS)


_RANDOM_STATE_ACCEPTS = (
    "random_state must be None, an int >= 0, a numpy.random.Generator or a numpy.random.RandomState"
)


def validate_random_state(random_state):
    """``random_state`` itself, checked without drawing from it: None, an int ``>= 0`` (any
    size, NumPy integers included), a ``numpy.random.Generator`` or a legacy
    ``numpy.random.RandomState``. Anything else is a ``TypeError`` (bool included), a negative
    int a ``ValueError``, both naming ``random_state`` and what it accepts. The one check of the
    parameter: :func:`check_random_state` runs it, and entries whose path may not draw (an
    exact search, a dense solver) call it at their boundary so that a bad value fails on every
    path."""
    if random_state is None or isinstance(
        random_state, (np.random.Generator, np.random.RandomState)
    ):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(
        random_state, (bool, np.bool_)
    ):
        if random_state < 0:
            raise ValueError(f"{_RANDOM_STATE_ACCEPTS}; got the negative seed {random_state!r}")
        return random_state
    raise TypeError(f"{_RANDOM_STATE_ACCEPTS}; got {random_state!r}")


def check_random_state(random_state) -> np.random.Generator:
    """The ``numpy.random.Generator`` of a ``random_state`` parameter, for every CPU and GPU path.

    None: fresh OS entropy; an int ``s >= 0``: ``default_rng(s)``; a ``Generator``: itself
    (draws advance it); a legacy ``RandomState``: ``default_rng`` of one ``randint(2**31 - 1)``
    draw from it. Anything else is an error (:func:`validate_random_state`).
    """
    validate_random_state(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31 - 1))
    return np.random.default_rng(random_state)


def random_seed(random_state) -> int:
    """A 63-bit seed for the C++ and CUDA generators, drawn from
    :func:`check_random_state` ``(random_state)``: the same ``random_state`` gives the same seed
    on every path (CPU or GPU), and a ``Generator`` advances by one draw."""
    return int(check_random_state(random_state).integers(2**63))


def check_tol(
    tol, name: str = "tol", *, default: float | None = None, dtype=None, allow_zero: bool = False
) -> float:
    """A tolerance as a float: finite and ``> 0`` (``>= 0`` with ``allow_zero``), else
    ``ValueError`` (``TypeError`` for a non-number: see :func:`check_real`).

    ``default`` replaces None when given. With ``dtype``, the value is raised to
    ``10 * eps(dtype)`` (a smaller tolerance cannot be met in that precision).
    """
    if tol is None and default is not None:
        tol = default
    value = check_real(tol, name)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a {kind} number; got {value!r}")
    if dtype is not None:
        value = max(value, 10 * float(np.finfo(dtype).eps))
    return value


_BLAS_CONTROLLER: list = [None, -1]  # threadpoolctl controller, len(sys.modules) when made


# Dense exact solves (eigenvalues, Cholesky) of at most this order run on one BLAS thread:
# the same bits for any thread count (a multi-threaded OpenBLAS splits its work by its thread
# count, which changes the last bits), at a small cost (quiet 2-core EPYC, n = 1,000:
# eigvalsh 0.047 s on one thread vs 0.038 s on two); above, the BLAS's own threads (n = 2,000:
# 0.31 vs 0.20 s, and far more on many cores).
BLAS_ONE_THREAD_MAX = 1024


def blas_for_dense(n: int):
    """``single_threaded_blas()`` for a dense solve of order ``n <= BLAS_ONE_THREAD_MAX``,
    else a no-op context (the BLAS's own threads)."""
    return single_threaded_blas() if n <= BLAS_ONE_THREAD_MAX else contextlib.nullcontext()


def single_threaded_blas():
    """Context that holds NumPy/SciPy's BLAS to one thread (threadpoolctl, if installed; else
    a no-op), for solvers whose heavy loops are geoml's OpenMP kernels with BLAS calls in
    between: an idle OpenBLAS pool keeps spinning next to the OpenMP threads, and on a 2-core
    machine the two pools slowed each other down 2-5x (measured: the AMG eigensolver, 14.0 s
    vs 7.0 s on a 200,000-node graph; Tucker HOOI on 200^3, 0.12-0.16 s vs 0.066-0.078 s).

    The threadpoolctl controller (its scan of the loaded libraries: ~1 ms CPU, 5-6 ms wall on
    a loaded 2-core machine, against ~0.02 ms for the limit itself) is made once and made
    again only when a module has been imported since (a new BLAS arrives with an import).
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # threadpoolctl < 3.0 (per-call scan), or none
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return contextlib.nullcontext()
        return threadpool_limits(1, user_api="blas")
    n_modules = len(sys.modules)
    if _BLAS_CONTROLLER[0] is None or _BLAS_CONTROLLER[1] != n_modules:
        _BLAS_CONTROLLER[0] = ThreadpoolController()
        _BLAS_CONTROLLER[1] = len(sys.modules)  # after the controller's own imports
    return _BLAS_CONTROLLER[0].limit(limits=1, user_api="blas")


# Rows of A per one-thread GEMM in :func:`blocked_matmul` (fixed: the bits do not depend on the
# thread count)
BLOCK_ROWS = 256


def can_hold_blas() -> bool:
    """Whether :func:`single_threaded_blas` can hold BLAS to one thread (threadpoolctl)."""
    import importlib.util

    return importlib.util.find_spec("threadpoolctl") is not None


def in_row_blocks(fn, n: int, block: int, nt: int, pool=None) -> None:
    """``fn(s, e)`` for the fixed row blocks ``[s, e)`` of ``n`` rows (``block`` each), on
    ``nt`` threads (0 or less: geoml's default count) by a pool when there are several blocks,
    or on ``pool`` (a ``concurrent.futures`` executor) when given. With BLAS held to one
    thread (:func:`single_threaded_blas`) each block's GEMM is single-threaded, and the blocks
    do not depend on ``nt``: the same bits for any thread count (no idle OpenBLAS pool spins
    beside geoml's OpenMP kernels either)."""
    starts = range(0, n, block)
    if pool is not None and len(starts) > 1:
        list(pool.map(lambda st: fn(st, min(n, st + block)), starts))
        return
    from . import _core

    workers = min(nt if nt > 0 else max(1, _core.max_threads()), len(starts))
    if workers <= 1:
        for st in starts:
            fn(st, min(n, st + block))
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(lambda st: fn(st, min(n, st + block)), starts))


def blocked_matmul(A, X, nt: int, *, transpose: bool = False, out=None, pool=None):
    """``A @ X`` (``A.T @ X`` with ``transpose``) for a dense 2-D ``A`` as one GEMM per fixed
    block of ``BLOCK_ROWS`` rows of ``A`` (columns with ``transpose``: rows of the output),
    on ``nt`` threads (0 or less: geoml's default count) by a pool when there are several.

    Call it with BLAS held to one thread (:func:`single_threaded_blas`): each block is then a
    one-thread GEMM and the blocks do not depend on ``nt``, so the result has the same bits
    for any thread count. A multi-threaded OpenBLAS GEMM splits its work by its thread count,
    which on its Haswell kernels (AMD Zen, ``OPENBLAS_CORETYPE=Haswell``) changes the bits.
    ``out``: the output array (C-contiguous, the result's shape and dtype), else a new one.
    ``pool``: a ``concurrent.futures`` executor to run the blocks on (callers that multiply
    many times keep one for the whole solve), else one of ``nt`` workers for this call.
    """
    n_out = A.shape[1] if transpose else A.shape[0]
    if out is None:
        out = np.empty((n_out, X.shape[1]), dtype=np.result_type(A, X))

    def block(s, e):
        np.matmul(A[:, s:e].T if transpose else A[s:e], X, out=out[s:e])

    in_row_blocks(block, n_out, BLOCK_ROWS, nt, pool)
    return out
