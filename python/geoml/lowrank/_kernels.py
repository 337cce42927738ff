"""BLAS hand-off and thin wrappers of the low-rank C++ kernels (TTM, Gram, sketches)."""

from __future__ import annotations

import numpy as np

from .. import _core


def _install_blas() -> None:
    from scipy.linalg import cython_blas

    capi = cython_blas.__pyx_capi__
    _core.lowrank_set_blas(capi["dgemm"], capi["sgemm"], capi["dsyrk"], capi["ssyrk"])


_install_blas()


# ---------------------------------------------------------------- small helpers


def _ttm(X: np.ndarray, n: int, M: np.ndarray, transposed: bool, nj: int) -> np.ndarray:
    """``X x_n M`` (M is J x I_n) or, if ``transposed``, ``X x_n M^T`` (M is I_n x J)."""
    M = np.ascontiguousarray(M, dtype=X.dtype)
    return _core.ttm(X, n, M, transposed=transposed, n_jobs=nj)


def _gram(X: np.ndarray, n: int, nj: int) -> np.ndarray:
    return _core.mode_gram(X, n, n_jobs=nj)


def _gram_apply(X: np.ndarray, n: int, U: np.ndarray, nj: int) -> np.ndarray:
    """``X_(n) X_(n)^T U`` in float64 without forming the Gram matrix (one read of X)."""
    U = np.ascontiguousarray(U, dtype=X.dtype)
    return _core.gram_apply(X, n, U, n_jobs=nj)


def _gram_apply_pair(X: np.ndarray, U1: np.ndarray, U2: np.ndarray, nj: int):
    """``_gram_apply`` for the last two modes (U1 for mode N-2, U2 for N-1), one read of X."""
    U1 = np.ascontiguousarray(U1, dtype=X.dtype)
    U2 = np.ascontiguousarray(U2, dtype=X.dtype)
    return _core.gram_apply_pair(X, U1, U2, n_jobs=nj)


def _sumsq(X: np.ndarray, nj: int) -> float:
    return _core.sum_squares(X, n_jobs=nj)
