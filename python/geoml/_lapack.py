"""LAPACK routines that NumPy and SciPy do not wrap, called through ctypes.

``eigvalsh_two_stage``: the eigenvalues of a dense symmetric matrix by LAPACK's two-stage
tridiagonalisation (``dsyevd_2stage``, ``JOBZ='N'``: dense to band by BLAS-3 products, band to
tridiagonal by bulge chasing, then ``dsterf``). ``numpy.linalg.eigvalsh`` (``dsyevd``) and
``scipy.linalg.eigvalsh`` tridiagonalise by level-2 products (``dsytrd``): on the PHATE
landmark operator's 2,000 x 2,000 ``P P^T`` one thread took 0.41-0.48 s against 0.65-0.70 s
(2-core Xeon, OpenBLAS 0.3.27 / 0.3.29), the eigenvalues within 1.2e-14 of the largest.

The routine is exported by the LAPACK that NumPy's (or SciPy's) LAPACK module links (the
OpenBLAS of the wheels: ``scipy_dsyevd_2stage_64_`` in NumPy's ILP64 ``scipy_openblas64_``,
``dsyevd_2stage_`` in SciPy's), found by ``dlsym`` through that module (the dynamic linker
searches the module's dependencies), the integer width read from the name. Where it is not
found (other platforms, other LAPACKs) the caller falls back to ``numpy.linalg.eigvalsh``.
ctypes releases the GIL during the call.
"""

from __future__ import annotations

import numpy as np

# (ctypes function, integer ctype) once resolved, or None where not available
_TWO_STAGE: list = []

# symbol name -> integer width: the wheels' OpenBLAS builds (NumPy's ILP64 scipy_openblas64,
# SciPy's LP64 openblas / scipy_openblas32) and a plain reference LAPACK / MKL
_NAMES = (
    ("scipy_dsyevd_2stage_64_", 64),
    ("dsyevd_2stage_64_", 64),
    ("dsyevd_2stage64_", 64),
    ("scipy_dsyevd_2stage_", 32),
    ("dsyevd_2stage_", 32),
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
    import ctypes

    for path in _modules():
        try:
            lib = ctypes.CDLL(path)  # already loaded: its handle; dlsym searches its dependencies
        except OSError:
            continue
        for name, bits in _NAMES:
            try:
                fn = getattr(lib, name)
            except AttributeError:
                continue
            fn.restype = None
            return fn, ctypes.c_int64 if bits == 64 else ctypes.c_int32
    return None


def _two_stage():
    if not _TWO_STAGE:
        try:
            _TWO_STAGE.append(_resolve())
        except Exception:  # any failure of the lookup: the fallback
            _TWO_STAGE.append(None)
    return _TWO_STAGE[0]


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
    fn, it = found
    # C-order G is its transpose in Fortran order: the same matrix (symmetric), its upper
    # triangle in Fortran terms is the lower one in C terms
    A = np.array(G, dtype=np.float64, order="C", copy=None if overwrite else True)
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
