"""Hypothesis strategies for tests/test_fuzz.py: arrays of every shape, dtype, memory layout and
value class a user can hand to geoml, and the checks every public call must pass.

Shapes mix the ordinary (a few rows and columns) with the edges (1 x 1, empty, very thin, very
wide); dtypes the accepted floats with ints, bool, object, complex and big-endian floats;
layouts C order with Fortran order, strided and reversed views and read-only arrays; values
moderate floats (with duplicates: small integer grids) with NaN, inf, huge (1e300) and tiny
(1e-300, subnormal) numbers and all zeros.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import re
import sys
import warnings

import numpy as np
import scipy.sparse as sp
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

FLOAT_DTYPES = (np.float16, np.float32, np.float64)
# accepted (converted to float64) or refused (object, complex) with a TypeError
ODD_DTYPES = (
    np.int8,
    np.int32,
    np.int64,
    np.uint8,
    np.bool_,
    np.object_,
    np.complex64,
    np.complex128,
    np.dtype(">f8"),
    np.dtype(">f4"),
    np.dtype(">i4"),
)
LAYOUTS = ("C", "F", "strided", "reversed", "readonly")
SPECIAL = (
    0.0,
    -0.0,
    1.0,
    -1.0,
    1e300,
    -1e300,
    1e-300,
    -1e-300,
    5e-324,
    1e10,
    np.nan,
    np.inf,
    -np.inf,
)
# values kinds: "nice" finite moderate floats, "grid" small integers (many duplicates),
# "zeros", "wild" (special values mixed in)
VALUE_KINDS = ("nice", "nice", "nice", "nice", "grid", "grid", "zeros", "wild", "wild")
# drawn dtypes: the usual float64/float32 most often, then everything else
ANY_DTYPES = (np.float64,) * 6 + (np.float32,) * 3 + FLOAT_DTYPES + ODD_DTYPES

# Integer-like parameters at and beyond their bounds, plus the wrong types.
BAD_INTS = (0, -1, -(2**31), 2**31, 2**63, 1.5, float("nan"), True, None, "3", np.int64(2))

# Warnings a geoml call may legitimately issue (documented non-convergence, disconnected
# graphs); any other warning (NumPy overflow / invalid value, ...) fails the test.
ALLOWED_WARNING = re.compile(
    r"did not converge|did not reach|max_iter|connected components|"
    r"stopped after|hit max_iter|point\(s\) dropped|below target_recall|"
    r"Graph is not fully connected|will be converted to symmetric|looks like an adjacency|"
    r"is larger than the dataset size|distinct landmark"
)


def shapes_2d(max_side: int = 8):
    """(rows, cols): ordinary sizes plus 1 x 1, empty, very thin and very wide."""
    ordinary = st.tuples(st.integers(2, max_side), st.integers(1, max_side))
    edge = st.sampled_from([(1, 1), (0, 3), (3, 0), (0, 0), (40, 1), (2, 120), (1, 60), (60, 2)])
    return st.one_of(ordinary, ordinary, ordinary, edge)


@st.composite
def float_values(draw, shape, kind=None):
    """float64 array of ``shape`` filled per value kind."""
    kind = draw(st.sampled_from(VALUE_KINDS)) if kind is None else kind
    if kind == "zeros":
        return np.zeros(shape)
    if kind == "grid":
        return draw(hnp.arrays(np.float64, shape, elements=st.integers(-2, 2).map(float)))
    if kind == "nice":
        return draw(
            hnp.arrays(np.float64, shape, elements=st.floats(-100, 100, allow_subnormal=False))
        )
    return draw(
        hnp.arrays(
            np.float64,
            shape,
            elements=st.one_of(st.floats(-100, 100), st.sampled_from(SPECIAL), st.floats()),
        )
    )


def with_layout(arr: np.ndarray, layout: str) -> np.ndarray:
    """The same values in another memory layout (a view where the layout is a view)."""
    if arr.ndim == 0:
        layout = "readonly" if layout == "readonly" else "C"
    if layout == "F":
        return np.asfortranarray(arr)
    if layout == "strided":  # every other element of a twice-as-big buffer, in each axis
        big = np.zeros(tuple(2 * s for s in arr.shape), dtype=arr.dtype)
        view = big[tuple(slice(None, None, 2) for _ in arr.shape)]
        view[...] = arr
        return view
    if layout == "reversed":  # negative strides
        rev = np.ascontiguousarray(arr[tuple(slice(None, None, -1) for _ in arr.shape)])
        return rev[tuple(slice(None, None, -1) for _ in arr.shape)]
    if layout == "readonly":
        out = arr.copy()
        out.setflags(write=False)
        return out
    return arr


def cast(arr: np.ndarray, dtype) -> np.ndarray:
    """``arr`` (float64) as ``dtype``, the way a user would (NaN -> int is whatever NumPy does)."""
    dtype = np.dtype(dtype)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            return np.clip(np.nan_to_num(np.round(arr)), info.min, info.max).astype(dtype)
        if dtype.kind == "b":
            return arr != 0
        return arr.astype(dtype)


@st.composite
def arrays(draw, shape, *, dtypes=ANY_DTYPES, kind=None, layouts=LAYOUTS):
    """An array of ``shape`` (a tuple or a strategy) in a drawn dtype, value kind and layout."""
    if not isinstance(shape, tuple):
        shape = draw(shape)
    values = draw(float_values(shape, kind))
    arr = cast(values, draw(st.sampled_from(dtypes)))
    return with_layout(arr, draw(st.sampled_from(layouts)))


def nice_arrays(shape, dtypes=(np.float32, np.float64)):
    """Valid input: finite moderate floats (duplicates included) in any layout."""
    return st.sampled_from(("nice", "nice", "grid")).flatmap(
        lambda kind: arrays(shape, dtypes=dtypes, kind=kind)
    )


def to_sparse(fmt, M):
    """``fmt(M)`` (SciPy sparse constructor): SciPy builds sparse matrices in native byte order,
    and CSR/CSC without float16 (COO keeps it)."""
    M = M.astype(M.dtype.newbyteorder("="))
    if M.dtype == np.float16 and fmt is not sp.coo_matrix:
        M = M.astype(np.float32)
    return fmt(M)


def is_valid_float(arr) -> bool:
    """True for real (float / int / bool) arrays of finite values."""
    arr = np.asarray(arr)
    return arr.dtype.kind in "fiub" and bool(np.isfinite(arr.astype(np.float64)).all())


class Rejected:
    """What :func:`attempt` returns when the call raised ValueError or TypeError."""

    def __init__(self, exc):
        self.exc = exc

    def __repr__(self):
        return f"Rejected({self.exc!r})"


# A call that runs longer than this is a hang: every thread's stack is dumped to HANG_FILE
# (test_fuzz points it at the stderr pytest does not capture) and the process exits.
HANG_S = float(os.environ.get("GEOML_FUZZ_HANG_S", "120"))
HANG_FILE = sys.stderr


def attempt(fn, *args, **kwargs):
    """Call ``fn``: its result, or :class:`Rejected` for ``ValueError`` / ``TypeError`` (with a
    message). Any other exception, a warning other than geoml's documented ones, or a call
    running longer than ``HANG_S`` seconds fails."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        faulthandler.dump_traceback_later(HANG_S, exit=True, file=HANG_FILE)
        try:
            out = fn(*args, **kwargs)
        except (ValueError, TypeError) as exc:
            assert str(exc), f"{type(exc).__name__} without a message"
            out = Rejected(exc)
        finally:
            faulthandler.cancel_dump_traceback_later()
    bad = [
        w
        for w in caught
        if not (
            issubclass(w.category, (RuntimeWarning, UserWarning))
            and ALLOWED_WARNING.search(str(w.message))
        )
    ]
    assert not bad, "unexpected warnings: " + "; ".join(
        f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in bad
    )
    # --hypothesis-show-statistics shows how often each entry point accepted its input
    with contextlib.suppress(InvalidArgument):  # outside a hypothesis test: no statistics
        event(
            f"{getattr(fn, '__qualname__', fn)}: "
            f"{type(out.exc).__name__ if isinstance(out, Rejected) else 'accepted'}"
        )
    return out


def rejected(out) -> bool:
    return isinstance(out, Rejected)


def assert_finite(obj, what: str = "result"):
    """Every float in ``obj`` (arrays, sparse matrices, tuples, floats) is finite."""
    if isinstance(obj, Rejected) or obj is None:
        return
    if sp.issparse(obj):
        assert_finite(obj.data, what)
    elif isinstance(obj, np.ndarray):
        if obj.dtype.kind in "fc":
            assert np.isfinite(obj).all(), f"{what} holds NaN or infinity"
    elif isinstance(obj, (float, np.floating)):
        assert np.isfinite(obj), f"{what} is {obj}"
    elif isinstance(obj, (tuple, list)):
        for i, x in enumerate(obj):
            assert_finite(x, f"{what}[{i}]")
