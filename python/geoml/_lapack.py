"""LAPACK routines that NumPy and SciPy do not wrap, called through ctypes.

``eigvalsh_two_stage``: the eigenvalues of a dense symmetric matrix by LAPACK's two-stage
tridiagonalisation (``dsyevd_2stage``, ``JOBZ='N'``: dense to band by BLAS-3 products, band to
tridiagonal by bulge chasing, then ``dsterf``). ``numpy.linalg.eigvalsh`` (``dsyevd``) and
``scipy.linalg.eigvalsh`` tridiagonalise by level-2 products (``dsytrd``): on the PHATE
landmark operator's 2,000 x 2,000 ``P P^T`` one thread took 0.41-0.48 s against 0.65-0.70 s
(2-core Xeon, OpenBLAS 0.3.27 / 0.3.29), the eigenvalues within 1.2e-14 of the largest.
``eigvalsh_band``: the second stage alone (``dsytrd_sb2st``, then ``dsterf``) on a band
matrix.

The routines are exported by the LAPACK that NumPy's (or SciPy's) LAPACK module links (the
OpenBLAS of the wheels: ``scipy_dsyevd_2stage_64_`` in NumPy's ILP64 ``scipy_openblas64_``,
``dsyevd_2stage_`` in SciPy 1.13's), found by ``dlsym`` through that module (the dynamic
linker searches the module's dependencies); integers are passed as zero-padded 64-bit values
on little-endian machines (right for either width), and both routes are checked against
``numpy.linalg.eigvalsh`` on a small matrix at first use. Where they are not found (other
platforms, other LAPACKs) the callers fall back to ``numpy.linalg.eigvalsh``. ctypes releases
the GIL during the calls.
"""

from __future__ import annotations

import sys

import numpy as np

# {"int": integer ctype, routine name: ctypes function or None} once resolved, or None
_TWO_STAGE: list = []

# symbol name patterns -> integer width: the wheels' OpenBLAS builds (NumPy's ILP64
# scipy_openblas64, SciPy's LP64 openblas / scipy_openblas32), a plain reference LAPACK / MKL
_NAMES = (
    ("scipy_{}_64_", 64),
    ("{}_64_", 64),
    ("{}64_", 64),
    ("scipy_{}_", 32),
    ("{}_", 32),
)


def _modules() -> list[str]:
    """Files of the extension modules whose LAPACK is searched: NumPy's, then SciPy's."""
    files = []
    try:
        from numpy.linalg import _umath_linalg

        files.append(_umath_linalg.__file__)
    except (ImportError, AttributeError):
        pass
    try:
        from scipy.linalg import cython_lapack

        files.append(cython_lapack.__file__)
    except (ImportError, AttributeError):
        pass
    return files


def _resolve():
    """``dsyevd_2stage`` from the first library that has it, and ``dsytrd_sb2st`` and
    ``dsterf`` under the same naming (None where absent)."""
    import ctypes

    for path in _modules():
        try:
            lib = ctypes.CDLL(path)  # already loaded: its handle; dlsym searches its dependencies
        except OSError:
            continue
        for pattern, bits in _NAMES:
            if not hasattr(lib, pattern.format("dsyevd_2stage")):
                continue
            # integers passed as zero-padded 64-bit values on little-endian machines: an LP64
            # routine reads their low halves (the same values) and writes its outputs there,
            # so a width read wrongly from the name cannot make it read past an argument
            wide = bits == 64 or sys.byteorder == "little"
            out = {"int": ctypes.c_int64 if wide else ctypes.c_int32}
            for routine in ("dsyevd_2stage", "dsytrd_sb2st", "dsterf"):
                fn = getattr(lib, pattern.format(routine), None)
                if fn is not None:
                    fn.restype = None
                out[routine] = fn
            return out
    return None


def _two_stage():
    if not _TWO_STAGE:
        try:
            _TWO_STAGE.append(_resolve())
            if _TWO_STAGE[0] is not None:
                _self_check()
        except Exception:  # any failure of the lookup or of the check: the fallback
            _TWO_STAGE[:] = [None]
    return _TWO_STAGE[0]


def _self_check() -> None:
    """Both routes against ``numpy.linalg.eigvalsh`` on a small band matrix (a wrong
    integer width read from a symbol's name would give wrong values): routines that
    disagree are not used."""
    n, kd = 9, 2
    i, j = np.indices((n, n))
    A = np.where(np.abs(i - j) <= kd, 1.0 / (1.0 + i + j), 0.0) + np.diag(np.arange(n) % 4)
    ref = np.linalg.eigvalsh(A)
    tol = 1e-12 * np.abs(ref).max()
    if np.abs(eigvalsh_two_stage(A) - ref).max() > tol:
        raise ArithmeticError("dsyevd_2stage disagrees with numpy.linalg.eigvalsh")
    if _TWO_STAGE[0]["dsytrd_sb2st"] is not None and _TWO_STAGE[0]["dsterf"] is not None:
        AB = np.zeros((n, kd + 1))
        for d in range(kd + 1):
            AB[d:, kd - d] = np.diagonal(A, d)
        if np.abs(eigvalsh_band(AB) - ref).max() > tol:
            _TWO_STAGE[0]["dsytrd_sb2st"] = None


def eigvalsh_two_stage(G: np.ndarray, overwrite: bool = False) -> np.ndarray | None:
    """Ascending eigenvalues of the symmetric float64 ``G`` (its lower triangle is read; with
    ``overwrite`` a C-contiguous float64 ``G`` is used as the workspace) by ``dsyevd_2stage``,
    or None where the routine is not available (then use ``numpy.linalg.eigvalsh``).
    ``numpy.linalg.LinAlgError`` where it does not converge (as ``eigvalsh``)."""
    import ctypes

    found = _two_stage()
    n = G.shape[0]
    if found is None or n == 0:
        return None
    fn, it = found["dsyevd_2stage"], found["int"]
    # C-order G is its transpose in Fortran order: the same matrix (symmetric), its upper
    # triangle in Fortran terms is the lower one in C terms
    # (asarray: no copy where G already is C-ordered float64; NumPy 1.x has no copy=None)
    if overwrite:
        A = np.ascontiguousarray(G, dtype=np.float64)
    else:
        A = np.array(G, dtype=np.float64, order="C", copy=True)
    w = np.empty(n)
    idt = np.int64 if it is ctypes.c_int64 else np.int32
    N, info = it(n), it(0)
    ptr = ctypes.c_void_p

    def call(work, lwork, iwork, liwork):
        fn(
            ctypes.c_char_p(b"N"),
            ctypes.c_char_p(b"U"),
            ctypes.byref(N),
            A.ctypes.data_as(ptr),
            ctypes.byref(N),
            w.ctypes.data_as(ptr),
            work.ctypes.data_as(ptr),
            ctypes.byref(it(lwork)),
            iwork.ctypes.data_as(ptr),
            ctypes.byref(it(liwork)),
            ctypes.byref(info),
            ctypes.c_size_t(1),  # gfortran's hidden lengths of JOBZ and UPLO
            ctypes.c_size_t(1),
        )
        return info.value

    wq, iwq = np.zeros(1), np.zeros(1, dtype=idt)
    if call(wq, -1, iwq, -1) != 0:  # workspace query
        return None
    work = np.empty(max(1, int(wq[0])))
    iwork = np.empty(max(1, int(iwq[0])), dtype=idt)
    if call(work, work.size, iwork, iwork.size) != 0:  # (info > 0: dsterf did not converge)
        raise np.linalg.LinAlgError(f"dsyevd_2stage failed (info = {info.value})")
    return w


def eigvalsh_band(AB: np.ndarray) -> np.ndarray | None:
    """Ascending eigenvalues of a symmetric band matrix given as its upper band ``AB`` of
    shape ``(n, kd + 1)``, C order (LAPACK's ``(kd + 1, n)`` band storage: ``AB[j, kd + i -
    j] = A[i, j]`` for ``j - kd <= i <= j``; overwritten): the second stage alone
    (``dsytrd_sb2st``, bulge chasing, then ``dsterf``), for matrices whose band is narrow
    (work ``~ n^2 kd`` against the dense first stage's ``n^3``). None where the routines are
    not available; ``numpy.linalg.LinAlgError`` where ``dsterf`` does not converge."""
    import ctypes

    found = _two_stage()
    n, ld = AB.shape
    if found is None or found["dsytrd_sb2st"] is None or found["dsterf"] is None or n < 2:
        return None
    if AB.dtype != np.float64 or not AB.flags.c_contiguous:
        raise ValueError("AB must be a C-contiguous float64 array")
    sb2st, sterf, it = found["dsytrd_sb2st"], found["dsterf"], found["int"]
    N, KD, LD, info = it(n), it(ld - 1), it(ld), it(0)
    d, e = np.empty(n), np.empty(n - 1)
    ptr = ctypes.c_void_p

    def call(hous, lhous, work, lwork):
        sb2st(
            ctypes.c_char_p(b"N"),  # STAGE1: AB is a band matrix stored the usual way
            ctypes.c_char_p(b"N"),  # no Householder vectors kept
            ctypes.c_char_p(b"U"),
            ctypes.byref(N),
            ctypes.byref(KD),
            AB.ctypes.data_as(ptr),
            ctypes.byref(LD),
            d.ctypes.data_as(ptr),
            e.ctypes.data_as(ptr),
            hous.ctypes.data_as(ptr),
            ctypes.byref(it(lhous)),
            work.ctypes.data_as(ptr),
            ctypes.byref(it(lwork)),
            ctypes.byref(info),
            ctypes.c_size_t(1),
            ctypes.c_size_t(1),
            ctypes.c_size_t(1),
        )
        return info.value

    hq, wq = np.zeros(1), np.zeros(1)
    if call(hq, -1, wq, -1) != 0:
        return None
    if call(np.empty(max(1, int(hq[0]))), int(hq[0]), np.empty(max(1, int(wq[0]))), int(wq[0])):
        raise np.linalg.LinAlgError(f"dsytrd_sb2st failed (info = {info.value})")
    sterf(ctypes.byref(N), d.ctypes.data_as(ptr), e.ctypes.data_as(ptr), ctypes.byref(info))
    if info.value != 0:
        raise np.linalg.LinAlgError(f"dsterf failed (info = {info.value})")
    return d
