"""Thick-restart Lanczos eigensolver for symmetric matrices (``geoml.eigsh``)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from .. import _core
from .._results import ExtraFields
from .._validation import (
    as_float_array,
    as_real,
    check_int,
    check_n_jobs,
    check_tol,
    is_device_object,
    random_seed,
    single_threaded_blas,
    user_stacklevel,
    validate_random_state,
)
from . import _eigsh_block

# the warning when the deflated block check fails (CPU and device eigsh)
_CHECK_FAILED = (
    "eigsh: the deflated block check could not confirm that no eigenvalue was missed "
    "(missed eigenpairs did not converge); converged=False"
)
# the same for callers whose result has no ``converged`` field (spectral_embedding and the
# estimators: an array of eigenvectors), formatted with the caller's name
_CHECK_FAILED_ARRAY = (
    "{who}: the deflated block check could not confirm that no eigenvalue was missed "
    "(missed eigenpairs did not converge): the returned eigenvectors may not be those of the "
    "smallest eigenvalues"
)


def _checked_product(Y, shape) -> np.ndarray:
    """A user operator's ``A.matmat(X)`` as an array, checked: X's shape, finite."""
    Y = np.asarray(Y)
    if Y.shape != shape:
        raise ValueError(f"A.matmat returned shape {Y.shape}; expected {shape}")
    if not np.isfinite(Y).all():
        raise ValueError("A.matmat returned NaN or infinity")
    return Y


class _EigshPair(NamedTuple):
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray


class EigshResult(ExtraFields, _EigshPair):
    """Eigenpairs from :func:`eigsh`: a tuple ``(eigenvalues, eigenvectors)``, as SciPy's
    ``eigsh`` returns (``w, V = result``, ``result[0]``, ``result[1]``, ``result[-1]``,
    ``len(result) == 2``, ``isinstance(result, tuple)``; named like the two fields of
    ``numpy.linalg.eigh``'s result), with the solver's report as further attributes (kept by
    ``_replace``, ``copy`` and ``pickle``).

    Attributes
    ----------
    eigenvalues : ndarray of shape (k,)
        Ascending.
    eigenvectors : ndarray of shape (n, k)
        Orthonormal columns; column ``i`` belongs to ``eigenvalues[i]``.
    n_iter : int
        Restart cycles run.
    residual_norms : ndarray of shape (k,)
        ``||A v - lambda v||`` computed (not estimated) for each returned pair.
    converged : bool
        True when every residual is at most ``tol * anorm``.
    n_matvec : int
        Products with ``A``.
    anorm : float
        The estimate of ``||A||_2`` used in the convergence test.
    check_passed : bool or None
        The deflated block check (see :func:`eigsh`) ended with a check that found no
        missed eigenvalue (None: not run, ``check=False``, or Lanczos ran out of
        ``max_iter``). False also sets ``converged`` to False.
    n_added : int
        Eigenpairs the check found that Lanczos had missed (or had not converged).
    check_block, check_steps : int
        Width and block Krylov steps of the final, passing check.
    miss_gap : float
        ``delta`` such that an eigenvalue more wanted than the k-th returned one by
        ``delta`` or more was missed with probability at most ``1e-6`` (a worst-case bound;
        inf when the check did not pass).
    """

    n_iter: int
    residual_norms: np.ndarray
    converged: bool
    n_matvec: int
    anorm: float
    check_passed: bool | None
    n_added: int
    check_block: int
    check_steps: int
    miss_gap: float

    def __new__(
        cls,
        eigenvalues,
        eigenvectors,
        n_iter=0,
        residual_norms=None,
        converged=False,
        n_matvec=0,
        anorm=0.0,
        check_passed=None,
        n_added=0,
        check_block=0,
        check_steps=0,
        miss_gap=math.inf,
    ):
        self = super().__new__(cls, eigenvalues, eigenvectors)
        self.n_iter, self.residual_norms, self.converged = n_iter, residual_norms, converged
        self.n_matvec, self.anorm, self.check_passed = n_matvec, anorm, check_passed
        self.n_added, self.check_block, self.check_steps = n_added, check_block, check_steps
        self.miss_gap = miss_gap
        return self

    def __repr__(self) -> str:
        extra = ", ".join(f"{f}={getattr(self, f, None)!r}" for f in _REPORT_FIELDS)
        return (
            f"EigshResult(eigenvalues={self.eigenvalues!r}, "
            f"eigenvectors=<array of shape {getattr(self.eigenvectors, 'shape', None)}>, {extra})"
        )


# EigshResult's attributes beyond the (eigenvalues, eigenvectors) pair, in order
_REPORT_FIELDS = (
    "n_iter",
    "residual_norms",
    "converged",
    "n_matvec",
    "anorm",
    "check_passed",
    "n_added",
    "check_block",
    "check_steps",
    "miss_gap",
)


@dataclass
class _EigshWork:
    """The fields of an :class:`EigshResult` while the solvers and the check update them in
    place; ``result()`` is the public tuple."""

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    n_iter: int
    residual_norms: np.ndarray
    converged: bool
    n_matvec: int = 0
    anorm: float = 0.0
    check_passed: bool | None = None
    n_added: int = 0
    check_block: int = 0
    check_steps: int = 0
    miss_gap: float = math.inf
    _solver: str | None = None  # the Laplacian route's solver, for its check

    def result(self) -> EigshResult:
        return EigshResult(
            self.eigenvalues, self.eigenvectors, *(getattr(self, f) for f in _REPORT_FIELDS)
        )


def _scale_shift(amax: float, dtype) -> int:
    """0 when ``amax`` (the largest entry of A, or of a product with a unit vector) lies in
    ``[2^-lim, 2^lim]``, ``lim`` = half of ``dtype``'s exponent range less 12; otherwise the
    power of two that brings it near 1 (entries so small or large lose their digits in the
    Lanczos dot products: A is scaled by ``2**shift``, exact, and the eigenvalues back)."""
    lim = np.finfo(dtype).maxexp // 2 - 12
    if amax > 0 and not 2.0**-lim <= amax <= 2.0**lim:
        return -int(np.frexp(amax)[1])
    return 0


def _default_tol(dtype) -> float:
    return 1e-10 if dtype == np.float64 else 1e-5


def _rounding_note(
    res_max: float, scale: float, dtype=np.float64, advice: str = "raise max_iter or ncv"
) -> str:
    """The end of a non-convergence warning: when the largest residual is at the rounding
    level of ``dtype`` (``<= 100 eps scale``, ``scale`` the norm ``tol`` is relative to),
    more iterations cannot lower it: say that ``tol`` is below what this precision reaches
    on this matrix. Otherwise ``advice``, or loosen tol (just "loosen tol" for an empty
    ``advice``: callers without ``max_iter``)."""
    eps = float(np.finfo(dtype).eps)
    if res_max <= 100 * eps * scale:
        return (
            f"; the residuals are at {np.dtype(dtype).name} rounding level (<= 100 eps = "
            f"{100 * eps:.3g} relative): tol is below what {np.dtype(dtype).name} reaches "
            f"on this matrix, ask for tol >= {10 * res_max / scale:.1g}"
        )
    return f"; {advice}, or loosen tol" if advice else "; loosen tol"


def _early_stop_advice(n_iter: int, max_iter: int, advice: str) -> str:
    """The advice of a Laplacian solver's non-convergence warning (see ``_rounding_note``):
    ``advice`` when Lanczos ran out of ``max_iter``; when it stopped before (its basis full
    of locked pairs while wanted copies of a repeated eigenvalue were unconverged: 6
    disjoint 300-node cycles, ``laplacian_eigsh(W, 24, random_state=1)`` stopped after 59
    cycles whatever ``max_iter``, before the retry with twice the basis in
    ``_lsym_smallest``), that raising ``max_iter`` cannot help, and what can (``method``
    where the caller has it: ``advice`` names ``max_iter``)."""
    if n_iter >= max_iter:
        return advice
    alt = "another random_state"
    if "max_iter" in advice:  # laplacian_eigsh (it has method=)
        alt = "method='lobpcg-amg' or " + alt
    return (
        f"it stopped after {n_iter} of max_iter={max_iter} restart cycles, its basis full "
        f"(raising max_iter does not help): try {alt}"
    )


def _check_tol(tol, dtype, allow_zero: bool = True) -> float:
    """The solver tolerance: None -> 1e-10 (float64) / 1e-5 (float32); 0 (SciPy's "machine
    precision") -> ``100 eps``, a level every path's residuals reach (1-10 eps ||A|| measured
    on random matrices, more on the unfiltered path's estimates; with the ``10 eps`` floor
    ``tol=0`` ran every restart cycle and then warned); other values raised to ``10 eps``."""
    value = check_tol(tol, default=_default_tol(dtype), allow_zero=allow_zero)
    eps = float(np.finfo(dtype).eps)
    return 100 * eps if value == 0 else max(value, 10 * eps)


def _check_solver_args(n, k, tol, max_iter, ncv, dtype, xp_name: str, allow_zero_tol=True):
    """The scalar arguments of the CPU and GPU ``eigsh``: ``(k, tol, max_iter, ncv or None)``
    for an n x n matrix (``xp_name``: "numpy" or "cupy", named in the hint for small n)."""
    if n < 2:
        raise ValueError(f"A is {n} x {n}; eigsh needs n >= 2 (use numpy.linalg.eigh)")
    hint = f" (A is {n} x {n}; for all eigenpairs use {xp_name}.linalg.eigh)"
    k = check_int(k, "k", low=1, high=n - 1, hint=hint)
    tol = _check_tol(tol, dtype, allow_zero_tol)
    max_iter = 1000 if max_iter is None else check_int(max_iter, "max_iter", low=1)
    if ncv is not None:
        ncv = check_int(ncv, "ncv", low=k + 2, high=n)
    return k, tol, max_iter, ncv


def _symmetry_error(A) -> float:
    """max |A - A^T| / max |A| (0 for a zero matrix)."""
    if (
        sp.issparse(A)
        and A.format == "csr"
        and A.shape[0] == A.shape[1]
        and A.dtype in (np.float32, np.float64)
        and A.indptr.dtype in (np.int32, np.int64)
        and A.indices.dtype == A.indptr.dtype
        and A.has_canonical_format
    ):
        # the same value in C++ (one pass, a cursor per row, no transpose): 2.2 against 8-9 ms
        # for SciPy's transpose and difference at 0.4M entries, serial time before every solve
        num, den = (A.dtype.type(v) for v in _core.csr_asymmetry(A.indptr, A.indices, A.data))
        return float(num / den) if den > 0 else 0.0  # divided in A's dtype, as below
    if sp.issparse(A):
        diff = abs(A - A.T)
        num = diff.max() if diff.nnz else 0.0
        den = abs(A).max() if A.nnz else 0.0
    else:
        num = np.abs(A - A.T).max()
        den = np.abs(A).max()
    return float(num / den) if den > 0 else 0.0


def _symmetric_part(A, asym: float):
    """``A`` (CSR or dense) when it is exactly symmetric (``asym``, its
    :func:`_symmetry_error`, is 0); ``(A + A.T) / 2`` in A's dtype when ``0 < asym <= 1e-8``
    (rounding in how ``A`` was formed: solved as given, its residuals could stay above ``tol``
    and Lanczos run out of restarts); ``ValueError`` above."""
    if asym > 1e-8:
        raise ValueError(
            "A is not symmetric (max |A - A.T| > 1e-8 max |A|); eigsh needs a "
            "symmetric matrix: pass (A + A.T) / 2"
        )
    if not asym > 0:
        return A
    half = A.dtype.type(0.5)
    if not sp.issparse(A):
        return np.ascontiguousarray((A + A.T) * half)  # (a + b) * 0.5: exactly symmetric
    B = sp.csr_matrix(A + A.T, dtype=A.dtype)
    B.sum_duplicates()
    B.data *= half
    return B


def _unshared(B: sp.csr_matrix, A) -> sp.csr_matrix:
    """``B``, or a copy of it when its arrays share memory with the sparse matrix ``A``'s (so
    that in-place SciPy methods on it, ``sum_duplicates``, ``eliminate_zeros``,
    ``sort_indices``, leave ``A`` as it was)."""
    if sp.issparse(A) and any(
        np.shares_memory(getattr(B, f), getattr(A, f))
        for f in ("data", "indices", "indptr")
        if isinstance(getattr(A, f, None), np.ndarray)
    ):
        return B.copy()
    return B


def _as_csr(A, name: str, dtype=None) -> sp.csr_matrix:
    """Square CSR copy-if-needed with float32/float64 data, duplicates summed; checks NaN/inf."""
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} must be square; got shape {A.shape}")
    A = as_real(A, name)
    if dtype is None:
        dtype = np.float32 if A.dtype == np.float32 else np.float64
    B = sp.csr_matrix(A, dtype=dtype)
    if not B.has_canonical_format:
        # sum_duplicates works in place on the arrays, and sp.csr_matrix(A) shares them with
        # a CSR A: copy first, or the caller's matrix is left with nnz < len(data)
        B = _unshared(B, A)
        B.sum_duplicates()
    A = B
    if not np.isfinite(A.data).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return A


def _block_product(op, data, indptr, indices, n, dtype, nt, op_shift=0):
    """matmat(X) -> A X (float64) for a float64 (n, b) block: one pass over a CSR matrix for
    all b columns (geoml's row-parallel CSR block product, thread-count independent), a GEMM
    for a dense matrix, ``op.matmat`` for a LinearOperator (times ``2**op_shift``)."""
    if op is not None:

        def matmat(X):
            Y = _checked_product(op.matmat(X.astype(dtype)), X.shape)
            Y = np.asarray(Y, dtype=np.float64)
            return np.ldexp(Y, op_shift) if op_shift else Y

    elif indptr is not None:

        def matmat(X):
            Xc = np.ascontiguousarray(X, dtype=dtype)
            Y = _core.csr_matmat(data, indices, indptr, Xc, n_cols=n, n_jobs=nt)
            return np.asarray(Y, dtype=np.float64)

    else:

        def matmat(X):
            return np.asarray(data @ X.astype(dtype), dtype=np.float64)

    return matmat


# A block of the filtered check larger than this (bytes) is multiplied by the matrix in two
# column halves (issue 23: the 4-column block of n = 100,000, 3.2 MB, does not fit in the 2 MB
# L2 of the Xeon the benchmarks ran on, and every stored entry reads a random row of it).
_SPLIT_BLOCK_BYTES = 2 << 20


def _column_halves(data, indices, indptr, n, block):
    """The arguments of ``_core.csr_cheb_matmat`` for a canonical (sorted indices) CSR matrix:
    ``((data, indices, indptr), {})`` or, for blocks of more than ``_SPLIT_BLOCK_BYTES``, the
    matrix's columns below ``n // 2`` and the rest (``data2``, ...) as two CSR matrices, each
    pass reading half of the block (a row's sum: the first part's, continued in order by the
    second's, as one pass; for 4 columns the two parts' 4-lane sums added)."""
    if n * block * 8 <= _SPLIT_BLOCK_BYTES:
        return (data, indices, indptr), {}
    left = indices < n // 2
    before = np.zeros(indices.shape[0] + 1, dtype=indptr.dtype)
    np.cumsum(left, out=before[1:])
    indptr1 = before[indptr]  # left entries before each row's start
    right = ~left
    return (data[left], indices[left], indptr1), {
        "data2": data[right],
        "indices2": indices[right],
        "indptr2": indptr - indptr1,
    }


def _check_check_args(check, check_block, check_steps):
    """Validated ``check``, ``check_block`` (default 4), ``check_steps`` (default 20)."""
    if not isinstance(check, (bool, np.bool_)):
        raise TypeError(f"check must be True or False; got {check!r}")
    check_block = 4 if check_block is None else check_int(check_block, "check_block", low=1)
    check_steps = 20 if check_steps is None else check_int(check_steps, "check_steps", low=1)
    return bool(check), check_block, check_steps


def _run_check(matmat, n, w, V, res, k, which, tol, anorm, dtype, seed, block, steps, budget):
    """The deflated block check after the Lanczos solve; recomputes the pairs it changed.

    ``V`` and the blocks ``matmat`` takes and returns are NumPy or CuPy arrays (the GPU
    ``eigsh`` runs this same code); ``w`` and ``res`` are NumPy."""
    rng = np.random.default_rng([seed, 0x6569])
    with single_threaded_blas():  # small dense products: an idle BLAS pool only spins
        w2, V2, report = _eigsh_block.deflated_check(
            matmat,
            n,
            w,
            V,
            res,
            k,
            which=which,
            tol=tol,
            anorm=anorm,
            rng=rng,
            block=block,
            steps=steps,
            budget=budget,
        )
    if V2.shape[1] < k:  # the missing pairs could not be converged: keep Lanczos' pairs
        report.passed = False
        return w, V, res, report, anorm
    if report.n_added == 0:
        return w, V, res, report, anorm
    xp = _eigsh_block.array_module(V2)  # NumPy, or CuPy for the GPU eigsh
    AV = matmat(V2)
    w2 = (V2 * AV).sum(axis=0)
    R = AV - V2 * w2
    res2 = _eigsh_block.to_host(xp.sqrt((R * R).sum(axis=0)))
    w2 = _eigsh_block.to_host(w2)
    asc = np.argsort(w2, kind="stable")
    anorm = max(anorm, float(np.abs(w2).max()))
    V2 = xp.ascontiguousarray(V2[:, xp.asarray(asc)]).astype(V.dtype, copy=False)
    return w2[asc].astype(w.dtype), V2, res2[asc].astype(res.dtype), report, anorm


def _check_routed(out, matmat, n, k, which, tol, dtype, seed, block, steps, failed=_CHECK_FAILED):
    """The deflated block check on a result of the Laplacian route; updates ``out`` in place
    and warns as the general path does (``failed``: the warning's text, pointing at the caller's
    line outside geoml). After the dense solver (all eigenpairs) or multigrid
    LOBPCG (a block method wider than k, null space put in exactly): the first cycle only;
    after Lanczos (small graphs, or LOBPCG's fallback): restarts as on the general path."""
    budget = 0 if out._solver in ("dense", "lobpcg-amg") else out.n_matvec
    w, V, res, report, anorm = _run_check(
        matmat,
        n,
        out.eigenvalues,
        out.eigenvectors,
        out.residual_norms,
        k,
        which,
        tol,
        out.anorm,
        dtype,
        seed,
        block,
        steps,
        budget,
    )
    out.eigenvalues, out.eigenvectors, out.residual_norms = w, V, res
    out.anorm = anorm
    out.n_matvec += report.n_matvec
    out.check_passed, out.n_added = report.passed, report.n_added
    out.check_block, out.check_steps = report.block, report.steps
    out.miss_gap = report.miss_gap
    out.converged = bool(out.converged and report.passed and (res <= tol * anorm).all())
    if not report.passed:
        warnings.warn(failed, RuntimeWarning, stacklevel=user_stacklevel())


def _set_lapack_syevd() -> bool:
    """Hands SciPy's ``cython_lapack`` ``dsyevd`` (its C function's address, from the module's
    ``__pyx_capi__`` capsule) to the C++ Lanczos solver, whose Rayleigh-Ritz step then
    diagonalises projected matrices above order 128 by LAPACK's divide and conquer instead of
    the built-in tred2 / tql2 (``ql_eig``, kept as the fallback). False (and ``ql_eig``) where
    SciPy has no such capsule or its signature is not the LP64 one the C++ side calls."""
    try:
        import ctypes

        from scipy.linalg import cython_lapack

        cap = cython_lapack.__pyx_capi__["dsyevd"]
        get_name = ctypes.pythonapi.PyCapsule_GetName
        get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
        name = get_name(cap)
        d, i = "__pyx_t_5scipy_6linalg_13cython_lapack_d *", "int *"
        sig = f"void (char *, char *, {i}, {d}, {i}, {d}, {d}, {i}, {i}, {i}, {i})"
        if name is None or name.decode() != sig:
            return False
        get_ptr = ctypes.pythonapi.PyCapsule_GetPointer
        get_ptr.restype, get_ptr.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        address = get_ptr(cap, name)
    except (ImportError, AttributeError, KeyError, OSError, ValueError):
        return False
    if not address:
        return False
    _core.set_lapack_syevd(int(address))
    return True


_LAPACK_SYEVD = _set_lapack_syevd()

# The filtered general path (issue 23): sparse matrices from this size on run Lanczos on a
# Chebyshev filter p(A) and the filtered deflated check (see docs/design/eigensolver.md).
_FILTER_MIN_N = 4000
_FILTER_DEGREE = 8  # even: the check's P(A) + 1 is PSD for any spectrum
# The "LM" solve's filter: odd, so that -lambda and lambda stay apart in p(A) (Lanczos "LM" on
# p(A)); the even degree 8 folded the two ends of the spectrum onto one (n = 20,000 / 100,000
# random matrices, k = 10: 631 / 1614 products against 442 / 1259 at degree 5).
_FILTER_DEGREE_LM = 5
_FILTER_PRELIM = 8  # unfiltered cycles before the filter is placed (16: k = 50 ~30% slower)
_FILTER_CHECK_STEPS = 6  # block Krylov steps on P(A) per cycle of the filtered check


# The filtered solve's products with float32 copies of the values (8 bytes per stored entry
# instead of 12) when the rounding leaves room below the tolerance; the float64 residuals
# decide (see docs/design/eigensolver.md, session 23).
_F32_MIN_LOCK = 1.0 / 3.0  # the float32 solve's locking tolerance, at least this times tol


def _float32_values(d, indptr, n, tol):
    """``(float32 copy of the float64 CSR values d, locking factor)`` for the filtered solve's
    products (int32 indices), or None when a value would overflow or leave float32's normal
    range, or when the rounding leaves too little room below ``tol``.

    The solve on the rounded matrix ``A - E`` locks pairs whose residual there is at most
    ``f tol ||A||``; their residual with ``A`` is about ``sqrt(f^2 tol^2 + ||E u||^2)`` (E's
    part is orthogonal to ``u`` to first order). ``||E u||`` for a delocalised unit ``u`` is
    about ``r = ||E||_F / sqrt(n)`` (measured: the largest of 10-50 pairs 1.1-1.2 r on random
    matrices), taken relative to a lower bound of ``||A||`` (``max(||A||_F / sqrt(n),
    |sum(A)| / n)``); ``f = sqrt(0.81 - (1.2 r)^2)`` aims at 0.9 tol, and a factor below
    ``_F32_MIN_LOCK`` (more products) means no float32 copy."""
    if d.dtype != np.float64 or indptr.dtype != np.int32 or not d.size or not tol > 0:
        return None
    # the copy and the three sums in one serial C++ pass (3.6 ms of NumPy at 0.4M values)
    out = _core.float32_copy(d)
    if out is None:
        return None
    d32, s2, s1, e2 = out
    lower = max(math.sqrt(s2 / n), abs(s1) / n)
    if not lower > 0:
        return None
    r = math.sqrt(e2 / n) / (tol * lower)
    f2 = 0.81 - (1.2 * r) ** 2
    if not f2 >= _F32_MIN_LOCK**2:
        return None
    return d32, math.sqrt(f2)


def _filtered_ncv(k: int, n: int) -> int:
    """Default basis size of the filtered path: ``k + max(k // 2, 14)`` (24 at k = 10; was
    ``max(2 k + 4, 24)``: at k = 50 a basis of 74 instead of 104 took ~15% less time, the
    Gram-Schmidt sweeps and restarts over the basis outweighing the extra products)."""
    return min(max(k + max(k // 2, 14), 24), n)


def _gershgorin(data, indptr, indices, n):
    """(lower, upper) bounds of the spectrum of a symmetric CSR matrix (Gershgorin discs; one
    serial C++ pass: 2.9 ms of SciPy at 0.4M entries)."""
    return _core.csr_gershgorin(indptr, indices, data)


def _filtered_general(
    data,
    indptr,
    indices,
    n,
    dtype,
    k,
    which,
    tol,
    max_iter,
    ncv,
    v0,
    seed,
    nt,
    check,
    check_block,
    check_steps,
):
    """Lanczos on a Chebyshev filter of A (LA; SA as LA of -A; LM with an odd filter) and the
    filtered deflated check; returns (w, V, res, n_iter, n_mv, conv, anorm, report) in A's
    terms, eigenvalues ascending."""
    sign = -1.0 if which == "SA" else 1.0
    d = -data if sign < 0 else data
    lm = which == "LM"
    lo, up = _gershgorin(d, indptr, indices, n)
    top = max(abs(lo), abs(up))
    if not top > 0:
        return None
    options = _core.LanczosOptions(
        k=k,
        which=_core.Which["LM" if lm else "LA"],
        tol=tol,
        max_iter=max_iter,
        ncv=ncv,
        seed=seed,
        verify=False,
        cheb_degree=_FILTER_DEGREE_LM if lm else _FILTER_DEGREE,
        cheb_lower=-top if lm else lo,
        cheb_upper=top if lm else up,
        cheb_cut=-3.0 * top - 1.0,  # below the lower end: the cut comes from Ritz values
        cheb_prelim=_FILTER_PRELIM,
        cheb_auto_lower=not lm,
    )
    v0s = None if v0 is None else (v0 * dtype(sign)).astype(dtype)
    out, spent_f32 = None, 0
    f32 = _float32_values(d, indptr, n, tol)
    if f32 is not None:
        # the products with float32 values, locking at f * tol on the rounded matrix; kept
        # only when the float64 residuals pass tol * ||A||, else the float64 solve
        options.tol = f32[1] * tol
        with single_threaded_blas():  # dsyevd in the Rayleigh-Ritz step above order 128
            out = _core.eigsh_csr_f32v(
                d, f32[0], indptr, indices, options=options, v0=v0s, n_jobs=nt
            )
        options.tol = tol
        if (out[2] <= tol * out[6]).all():
            out = out[:5] + (True,) + out[6:]
        else:
            out, spent_f32 = None, int(out[4])
    if out is None:
        with single_threaded_blas():
            out = _core.eigsh_csr(d, indptr, indices, options=options, v0=v0s, n_jobs=nt)
    w, V, res, n_iter, n_mv, conv, anorm, cut = out
    V = V.reshape(n, k)
    report = None
    if check and (conv or n_iter < max_iter):
        matmat = _block_product(None, d, indptr, indices, n, dtype, nt)
        wk = np.abs(w) if lm else w
        lam_k = float(wk.min())
        passed = False
        # the check's damped interval starts at -||A|| (estimated from the Ritz values of the
        # unfiltered cycles, both ends), or at Gershgorin's bound if that is tighter: an
        # eigenvalue below it only sends the check to the full check (even degree)
        lo_chk = -cut if lm else max(lo, -1.02 * anorm)
        placed = 0 < cut < lam_k if lm else lo_chk < cut < lam_k
        if placed and bool((res <= tol * anorm).all()):
            flt = _eigsh_block.ChebFilter(lo_chk, cut, _FILTER_DEGREE)
            apply = None
            if d.dtype == np.float64:  # the filter's degree steps in one call, fused products
                halves = _column_halves(d, indices, indptr, n, check_block)
                work = np.empty(3 * n * check_block + 24)  # the recurrence's blocks, every call

                def apply(X, out):
                    _core.csr_cheb_filter(
                        *halves[0],
                        X,
                        out,
                        work,
                        degree=flt.d,
                        c=flt.c,
                        e=flt.e,
                        n_jobs=nt,
                        **halves[1],
                    )

            rng = np.random.default_rng([seed, 0x6570])
            with single_threaded_blas():
                passed, report = _eigsh_block.filtered_check(
                    matmat,
                    n,
                    w,
                    V,
                    k,
                    flt=flt,
                    lam_k=lam_k,
                    tol=tol,
                    anorm=anorm,
                    rng=rng,
                    block=check_block,
                    steps=_FILTER_CHECK_STEPS,
                    budget=int(n_mv) // 2,
                    apply=apply,
                    n_jobs=nt,
                )
            n_mv += report.n_matvec
        if not passed:  # something found (or no filter placed): the full check decides
            spent = report.n_matvec if report is not None else 0
            w, V, res, report, anorm = _run_check(
                matmat,
                n,
                w,
                V,
                res,
                k,
                "LM" if lm else "LA",
                tol,
                anorm,
                dtype,
                seed,
                check_block,
                check_steps,
                int(n_mv),
            )
            n_mv += report.n_matvec
            report.n_matvec += spent
        conv = report.passed and bool((res <= tol * anorm).all())
    if sign < 0:
        w, V, res = -w[::-1], np.ascontiguousarray(V[:, ::-1]), res[::-1].copy()
        w = w.astype(dtype, copy=False)
    return w, V, res, n_iter, n_mv + spent_f32, conv, anorm, report


def eigsh(
    A,
    k: int = 6,
    *,
    which: str = "LA",
    tol: float | None = None,
    max_iter: int | None = None,
    ncv: int | None = None,
    v0=None,
    random_state=None,
    n_jobs: int | None = None,
    check: bool = True,
    check_block: int | None = None,
    check_steps: int | None = None,
) -> EigshResult:
    """A few extreme eigenpairs of a real symmetric matrix by thick-restart Lanczos.

    Thick-restart Lanczos (Wu & Simon 2000) with full reorthogonalisation (classical
    Gram-Schmidt after each three-term step, repeated when it cancels) and locking of
    converged pairs, in C++; products with a sparse matrix run as an OpenMP CSR SpMV, with a
    dense one as an OpenMP GEMV. A pair ``(lambda, v)`` is converged when
    ``||A v - lambda v|| <= tol * ||A||``, where ``||A||`` is estimated by the largest
    magnitude of all Ritz values seen (Lanczos finds both ends of the spectrum first, so this
    lower bound on ``||A||_2`` is accurate to a few digits after the first cycle). Pairs are
    locked on the Lanczos residual estimate; the returned ``residual_norms`` are recomputed
    with ``A``.

    **Multiplicity safety (the deflated block check).** A single-vector Krylov method sees
    one vector of a repeated eigenvalue per start vector, so Lanczos alone can return a
    repeated eigenvalue too few times, with small residuals. With ``check=True`` (default),
    after Lanczos a block of ``check_block`` Gaussian vectors, orthogonal to the pairs found,
    spans a block Krylov space of ``check_steps`` blocks (one block product per step: a single
    pass over a CSR matrix for all columns, ``matmat`` of a LinearOperator). Its Ritz values
    more wanted than the k-th pair found (by more than ``10 tol ||A||``) are eigenvalues that
    were missed: they are converged by thick-restarted block Krylov iterations in the same
    deflated space (half of the basis kept as its most wanted Ritz vectors; Ritz values that
    become more wanted than the k-th pair meanwhile are converged too), merged, and the
    check starts again from a fresh block, twice as wide when
    it found as many eigenvalues as its width (a wide cluster), until a check finds nothing.
    Pairs that Lanczos locked but whose computed residual exceeds ``tol * ||A||`` are dropped
    and found again the same way. What is certain and what is probabilistic:

    * certain: every returned pair has the computed residual ``residual_norms`` (``converged``
      is True only when all are ``<= tol * ||A||``), the columns are orthonormal, and an
      eigenvalue the check reports missing exists (Ritz values of a subspace orthogonal to
      the pairs found are attained by the matrix restricted to that complement);
    * probabilistic: that no eigenvalue more wanted than the k-th returned one was missed.
      Let ``delta`` be by how much a missed eigenvalue is more wanted than the k-th
      returned one. The final (passing) check misses it with probability at most
      ``(1.648 sqrt(n') exp(-sqrt(delta / (2 ||A||)) (2 s - 1)))^b`` (``b`` = block, ``s`` =
      steps, ``n'`` = n minus the pairs found; Kuczynski & Wozniakowski 1992, applied to
      each of the ``b`` independent Gaussian columns, times 2 for "LM"). ``miss_gap`` is
      the ``delta`` at which this bound is ``1e-6``. This worst-case bound is loose
      (``miss_gap`` is ~0.1 ``||A||`` at the defaults), so a passing check does more than
      one Krylov cycle: it restarts from its best Ritz vectors (which never lowers its
      most wanted Ritz value, so the bound still holds) until its most wanted Ritz pair
      has converged (residual ``<= 100 tol ||A||``) or it has spent as many products as
      the Lanczos solve. Measured: missed eigenvalues down to
      ``1e-4 ||A||`` from the k-th were found in every run of the tests (planted
      multiplicities up to 8, graphs with 2..20 components for seeds 0..19, gaps
      1e-2..1e-4).
      Eigenvalues within ``delta`` of the k-th are interchangeable with it: the returned
      eigenvalues differ from the true k most wanted by at most ``delta`` each.
      An eigenvalue repeated across the k-th position (``lambda_k = lambda_k+1``) is
      returned as many times as fit in ``k`` (an orthonormal basis of part of its
      eigenspace), as in SciPy, and nothing flags the cut: ask for more pairs to see the
      whole multiplicity.

    **Filtered path (sparse matrices from 4,000 rows).** Lanczos then runs on a Chebyshev
    filter ``p(A)`` of degree 8 (after 8 unfiltered restart cycles that place the damped
    interval below the wanted eigenvalues: ``[lower, cut]`` for "LA" / "SA" (as "LA" of
    ``-A``); for "LM" an odd filter of degree 5 damping ``[-cut, cut]``, the largest
    ``|p(A)|`` wanted), pairs locked on computed residuals with ``A``, and the
    check runs on a filter too: block Krylov on ``P(A)`` (``P`` the unscaled even
    Chebyshev polynomial, ``P(A) + 1`` positive semi-definite whatever the spectrum) from
    ``b`` Gaussian columns orthogonal to the pairs found, 6 block steps, then cycles of 5
    more (the basis is extended up to 16 blocks, then restarted from its best Ritz vectors,
    whose products are known). A Ritz value above ``tau = P(lambda_k + 10 tol ||A||)`` (an
    eigenvalue more wanted than the k-th found, or one below the damped interval) sends the
    problem to the full check above, which finds and converges it; otherwise the check
    stops when its best pair of ``P(A)`` has settled below ``tau``, its A-residual is below
    ``100 tol ||A||``, or it has spent half the solve's products (counting 6 blocks a
    cycle). Guarantee: the same Kuczynski-Wozniakowski bound, applied to ``P(A) + 1`` with
    ``b`` and ``s`` the blocks built from the Gaussian start before any restart: a missed
    eigenvalue ``lambda`` with ``P(lambda) + 1 >= (tau + 1) / (1 - eps)`` survives with
    probability at most ``1e-6``, ``eps = ((ln(1e6) / b + ln(1.648 sqrt(n'))) / (2 s -
    1))^2``; ``miss_gap`` is that ``lambda`` minus the k-th eigenvalue.

    The check costs ``b s`` products plus ``O(n (b s)^2)`` dense work per cycle, and at
    most about as many products as the solve. If a missed pair cannot be converged,
    ``check_passed`` and ``converged`` are False, with a ``RuntimeWarning``. The Laplacian
    route (see ``which``) runs the check too, after multigrid LOBPCG (graphs from 10,000
    nodes on) its first cycle only: that solver is a block method (a block wider than
    ``k``) with the eigenvalue at the end of the spectrum (one per connected component)
    put in exactly; the bound above holds with the first cycle's ``b`` and ``s``. The GPU
    path (CuPy input) runs the same check after its Lanczos solve, on the device.

    On float64 CSR input with int32 indices and a tolerance well above float32's rounding
    (e.g. ``tol = 1e-8`` on matrices with entries of one sign), the filtered solve forms its
    products with a float32 copy of the values (8 bytes per stored entry instead of 12; the
    Lanczos recurrence, the vectors and the check stay float64) and locks pairs below ``tol``
    on that rounded matrix; the returned eigenvalues and residuals are computed with the
    float64 values, and if any residual exceeds ``tol * ||A||`` the float64 solve runs
    instead. Values that would overflow or underflow in float32 keep the float64 products.

    Parameters
    ----------
    A : sparse matrix, ndarray or scipy.sparse.linalg.LinearOperator of shape (n, n)
        Symmetric. Sparse (any format) and dense input must be symmetric to within
        ``1e-8`` relative (else ``ValueError``; symmetrise with ``(A + A.T) / 2``); input
        that is not exactly symmetric is solved as ``(A + A.T) / 2`` (the residuals are
        those of that matrix). A ``LinearOperator`` is trusted to be symmetric; its
        ``matvec`` is called from the solver with the GIL held (its products are scaled by
        a power of two when the first one's entries lie beyond ``2^+-500``, as sparse and
        dense input's entries are). float32 stays float32 (eigenvalues and eigenvectors,
        computed with float64 recurrences), and so does a dense float16 array (read as
        float32, as everywhere in geoml); everything else becomes float64.
        A CuPy array or ``cupyx.scipy.sparse`` matrix runs the same algorithm on the GPU (CSR
        SpMV kernel from ``geoml._cuda``, Lanczos vectors on the device, CuPy's current
        stream; no locking there, the same deflated block check after it) and returns CuPy
        arrays.
    k : int
        Number of eigenpairs, ``1 <= k < n``.
    which : {"LA", "SA", "LM"}, default "LA"
        Largest algebraic, smallest algebraic, or largest magnitude eigenvalues. The default
        differs from ``scipy.sparse.linalg.eigsh``'s (``"LM"``): code written for SciPy that
        relies on its default must pass ``which="LM"``. SciPy's ``return_eigenvectors``,
        ``sigma``, ``M``, ``OPinv`` and ``mode`` are not accepted. ``"SA"``
        on a sparse graph Laplacian (combinatorial ``D - W``, or the normalised
        ``I - D^-1/2 W D^-1/2`` of an unweighted graph, recognised from its entries) with
        no ``v0`` or ``ncv`` takes :func:`geoml.laplacian_eigsh`'s route: null space
        exact (one zero eigenvalue per connected component), LOBPCG + AMG. So does
        ``"LA"`` on the normalised adjacency ``D^-1/2 W D^-1/2`` of an unweighted graph
        without isolated nodes (eigenvalues ``1 - mu`` for the Laplacian's smallest
        ``mu``; eigenvalue 1 once per component, exactly).
    tol : float, optional
        Relative residual tolerance. Default ``1e-10`` (float64) or ``1e-5`` (float32);
        ``0`` (SciPy's "machine precision") means ``100 * eps`` of the dtype, the rounding
        level of the computed residuals; other values below ``10 * eps`` are raised to it.
    max_iter : int, optional
        Restart cycles at most (default 1000). When they run out the best pairs found are
        returned with ``converged=False`` and a ``RuntimeWarning``. On the filtered path
        (sparse input from 4,000 rows) Lanczos also stops early when the residuals of the
        pairs not yet converged have stagnated at float rounding level (``<= 100 eps
        ||A||``, no progress in 8 restart cycles): a ``tol`` below what the precision
        reaches on the matrix; the warning then says so. On the Laplacian route
        (see ``which``) it bounds the Lanczos cycles only: multigrid LOBPCG (combinatorial
        Laplacians, and normalised ones from 10,000 nodes) stops after its own 200
        iterations (then Lanczos takes over), and ``n_iter`` counts its iterations.
    ncv : int, optional
        Lanczos basis size, ``k + 2 <= ncv <= n`` (default ``max(2 k + 1, 32)``; on the
        filtered path for sparse input from 4,000 rows ``max(k + max(k // 2, 14), 24)``).
        Memory is ``n * ncv`` values.
    v0 : array-like of shape (n,), optional
        Start vector (default: Gaussian from ``random_state``).
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
        Seeds the start vector and the vectors drawn after an invariant subspace is found.
    n_jobs : int, optional
        Threads (None: OpenMP default; -1: all cores). The result does not depend on it:
        every reduction is summed in fixed chunks of rows, in order.
    check : bool, default True
        Run the deflated block check above. False: Lanczos' own one-vector check only
        (none on the GPU path; faster, not multiplicity-safe).
    check_block : int, optional
        Initial width of the check's random block (default 4; doubled while the check keeps
        finding as many eigenvalues as its width).
    check_steps : int, optional
        Block Krylov steps of each check (default 20).

    Returns
    -------
    EigshResult
        ``eigenvalues`` (k,) ascending, ``eigenvectors`` (n, k) orthonormal, ``n_iter``,
        ``residual_norms`` (k,), ``converged``, and the check's ``check_passed``,
        ``n_added``, ``check_block``, ``check_steps``, ``miss_gap``; unpacks as ``w, V``.

    References
    ----------
    K. Wu and H. Simon, "Thick-restart Lanczos method for large symmetric eigenvalue
    problems", SIAM J. Matrix Anal. Appl. 22(2), 2000.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, geoml
    >>> A = sp.diags([np.arange(1.0, 101.0)], [0], format="csr")
    >>> w, V = geoml.eigsh(A, 3, which="SA", random_state=0)
    >>> np.round(w, 10)
    array([1., 2., 3.])
    >>> V.shape
    (100, 3)
    """
    validate_random_state(random_state)
    return _eigsh(
        A,
        k,
        which=which,
        tol=tol,
        max_iter=max_iter,
        ncv=ncv,
        v0=v0,
        random_state=random_state,
        n_jobs=n_jobs,
        check=check,
        check_block=check_block,
        check_steps=check_steps,
    )


def _eigsh(
    A,
    k,
    *,
    which="LA",
    tol=None,
    max_iter=None,
    ncv=None,
    v0=None,
    random_state=None,
    n_jobs=None,
    check=True,
    check_block=None,
    check_steps=None,
    advice: str = "raise max_iter or ncv",
    warn: bool = True,
) -> EigshResult:
    """:func:`eigsh` for geoml's own callers: ``advice`` ends the non-convergence warning
    (``_rounding_note``: what the public caller lets the user set; ``""``: "loosen tol");
    ``warn=False``: no warning for a result that did not converge or whose check failed, for
    callers that read ``converged`` / ``check_passed`` and handle it themselves."""
    if is_device_object(A):
        from . import (
            _gpu_lanczos as _spectral_gpu,  # CuPy arrays / cupyx sparse: Lanczos on the device
        )

        check, check_block, check_steps = _check_check_args(check, check_block, check_steps)
        out, report = _spectral_gpu.eigsh(
            A,
            k,
            which=which,
            tol=tol,
            max_iter=max_iter,
            ncv=ncv,
            v0=v0,
            random_state=random_state,
            check=check,
            check_block=check_block,
            check_steps=check_steps,
        )
        out = _EigshWork(*out)
        if A.dtype == np.float32:  # float32 eigenvalues, as SciPy's eigsh
            out.eigenvalues = out.eigenvalues.astype(np.float32)
        if report is not None:
            out.check_passed, out.n_added = report.passed, report.n_added
            out.check_block, out.check_steps = report.block, report.steps
            out.miss_gap = report.miss_gap
        return out.result()
    if not isinstance(which, str) or which not in _core.Which.__members__:
        raise ValueError(f"which={which!r}; choose 'LA', 'SA' or 'LM'")
    callback = indptr = indices = None
    if callable(A) and not isinstance(A, (LinearOperator, np.ndarray)) and not sp.issparse(A):
        # (a bare function read as an object array: "A has dtype object and holds something
        # that is not a real number: float() argument must be ...")
        raise TypeError(
            "A must be a matrix (ndarray, sparse matrix) or a scipy.sparse.linalg."
            f"LinearOperator; got {type(A).__name__}: wrap a function as "
            "LinearOperator((n, n), matvec=f, dtype=float)"
        )
    if isinstance(A, LinearOperator):
        if len(A.shape) != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be square; got shape {A.shape}")
        n = A.shape[0]
        dtype = np.float32 if A.dtype == np.float32 else np.float64
        if np.dtype(A.dtype).kind == "c":
            raise TypeError("complex LinearOperators are not supported (real symmetric only)")
        op = A

        op_shift = [None]  # the operator's products are scaled by 2**shift, as data below

        def callback(x):
            y = np.asarray(op.matvec(x)).reshape(-1)
            if y.shape != (n,):
                raise ValueError(f"A.matvec returned shape {y.shape}; expected ({n},)")
            if not np.isfinite(y).all():
                raise ValueError("A.matvec returned NaN or infinity")
            y = y.astype(dtype, copy=False)
            if op_shift[0] is None:  # decided on the first non-zero product (x has norm 1)
                op_shift[0] = _scale_shift(float(np.abs(y).max()), dtype)
            return np.ldexp(y, op_shift[0]).astype(dtype, copy=False) if op_shift[0] else y

        data = None
    elif sp.issparse(A):
        A = _as_csr(A, "A")
        n = A.shape[0]
        dtype = A.dtype.type
        A = _symmetric_part(A, _symmetry_error(A))
        data, indptr, indices = A.data, A.indptr, A.indices
        if indptr.dtype != np.int64:
            indptr, indices = indptr.astype(np.int32), indices.astype(np.int32)
    else:
        data = as_float_array(A, "A")
        if data.shape[0] != data.shape[1]:
            raise ValueError(f"A must be square; got shape {data.shape}")
        n = data.shape[0]
        dtype = data.dtype.type
        data = _symmetric_part(data, _symmetry_error(data))
    k, tol, max_iter, ncv = _check_solver_args(n, k, tol, max_iter, ncv, dtype, "numpy")
    check, check_block, check_steps = _check_check_args(check, check_block, check_steps)
    # Entries so small (or large) that their squares leave the normal range (e.g. 1e-305)
    # lose their digits in the Lanczos dot products: scale A by a power of two (exact), and the
    # eigenvalues back. Ordinary matrices are not touched.
    # A LinearOperator's products are scaled the same way, by the shift its first non-zero
    # product calls for (the start vector has norm 1, so that product's magnitude is about
    # ||A|| / sqrt(n) or more; ``_scale_shift`` leaves a margin of 2^12).
    shift = 0  # A is multiplied by 2**shift (ldexp: exact, and 2**shift itself may overflow)
    if data is not None and data.size:
        shift = _scale_shift(float(np.abs(data).max()), dtype)
        if shift:
            data = np.ldexp(data, shift).astype(dtype, copy=False)
    if which in ("SA", "LA") and indptr is not None and v0 is None and ncv is None and not shift:
        # a graph Laplacian (SA) or normalised adjacency (LA) takes the Laplacian route
        # (null space exact, LOBPCG + AMG), then the first cycle of the check (not for
        # entries scaled above: the check's block algebra on A would overflow)
        from ._embedding import _adjacency_route, _laplacian_route

        route = _laplacian_route if which == "SA" else _adjacency_route
        routed = route(A, k, tol=tol, max_iter=max_iter, random_state=random_state, n_jobs=n_jobs)
        if routed is not None:
            if check and routed.converged:  # as below: no check when the solver ran out
                matmat = _block_product(None, data, indptr, indices, n, dtype, check_n_jobs(n_jobs))
                _check_routed(
                    routed,
                    matmat,
                    n,
                    k,
                    which,
                    tol,
                    dtype,
                    random_seed(random_state),
                    check_block,
                    check_steps,
                )
            routed.eigenvalues = routed.eigenvalues.astype(dtype, copy=False)
            return routed.result()
    ncv_user = ncv
    if ncv is None:  # 32 rather than the solver's 20: ~30% fewer products for k <= 15
        ncv = min(max(2 * k + 1, 32), n)
    if v0 is not None:
        v0 = as_float_array(v0, "v0", ndim=1, dtype=dtype)
        if v0.shape[0] != n:
            raise ValueError(f"v0 has {v0.shape[0]} entries; A has {n} rows")
    seed = random_seed(random_state)
    filtered = None
    if indptr is not None and n >= _FILTER_MIN_N and 2 * k + 8 < n:
        filtered = _filtered_general(
            data,
            indptr,
            indices,
            n,
            dtype,
            k,
            which,
            tol,
            max_iter,
            ncv_user if ncv_user is not None else _filtered_ncv(k, n),
            v0,
            seed,
            check_n_jobs(n_jobs),
            check,
            check_block,
            check_steps,
        )
    options = _core.LanczosOptions(
        k=k,
        which=_core.Which[which],
        tol=tol,
        max_iter=max_iter,
        ncv=ncv,
        seed=seed,
        verify=not check,
    )
    solve = {"options": options, "v0": v0, "n_jobs": check_n_jobs(n_jobs)}
    if filtered is not None:
        w, V, res, n_iter, n_mv, conv, anorm, report = filtered
    elif callback is not None:
        out = _core.eigsh_callback(callback, n=n, dtype=np.dtype(dtype), **solve)
    elif indptr is not None:
        with single_threaded_blas():  # dsyevd in the Rayleigh-Ritz step above order 128
            out = _core.eigsh_csr(data, indptr, indices, **solve)
    else:
        with single_threaded_blas():
            out = _core.eigsh_dense(data, **solve)
    if filtered is None:
        w, V, res, n_iter, n_mv, conv, anorm, _ = out
        V = V.reshape(n, k)
        report = None
    if callback is not None:
        shift = op_shift[0] or 0
    if filtered is None and check and (conv or n_iter < max_iter):
        matmat = _block_product(
            A if callback is not None else None,
            data,
            indptr,
            indices,
            n,
            dtype,
            check_n_jobs(n_jobs),
            op_shift=shift if callback is not None else 0,
        )
        w, V, res, report, anorm = _run_check(
            matmat,
            n,
            w,
            V,
            res,
            k,
            which,
            tol,
            anorm,
            dtype,
            seed,
            check_block,
            check_steps,
            int(n_mv),
        )
        n_mv += report.n_matvec
        conv = report.passed and bool((res <= tol * anorm).all())
    if shift:
        w, res = np.ldexp(w, -shift).astype(dtype), np.ldexp(res, -shift).astype(res.dtype)
        anorm = math.ldexp(anorm, -shift)
    # float32 input gives float32 eigenvalues, as SciPy's eigsh (computed in float64)
    out = _EigshWork(
        w.astype(dtype, copy=False), V, int(n_iter), res, bool(conv), int(n_mv), float(anorm)
    )
    if report is not None:
        out.check_passed = report.passed
        out.n_added = report.n_added
        out.check_block, out.check_steps = report.block, report.steps
        out.miss_gap = math.ldexp(report.miss_gap, -shift) if shift else report.miss_gap
    if not warn:
        return out
    if report is not None and not report.passed:
        warnings.warn(_CHECK_FAILED, RuntimeWarning, stacklevel=user_stacklevel())
    elif not out.converged:
        warnings.warn(
            f"eigsh did not converge in {n_iter} restart cycles: largest residual "
            f"{res.max():.3g} > tol * ||A|| = {tol * anorm:.3g}"
            + _rounding_note(float(res.max()), anorm, dtype, advice=advice),
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return out.result()


# ----------------------------------------------------------------------------- Laplacians
