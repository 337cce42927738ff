"""Validation and the four batched primitives behind geoml.spd (private).

Every public function of :mod:`geoml.spd` reduces to these, which call the C++ kernels
(``_core.spd_*``: Householder tridiagonalisation + implicit QL per matrix, OpenMP over the
batch) for ``n <= 64`` and NumPy/LAPACK (``numpy.linalg.eigh``) for larger ``n``:

- :func:`funm` ``f(M A M)`` per matrix (``M`` optional, shared or per matrix);
- :func:`eigvalsh_pairs` eigenvalues of ``M_k A_b M_k`` for pairs;
- :func:`funm_wsum` ``sum_b w_b f(M A_b M)``;
- :func:`eigh` eigenvalues and eigenvectors.

Each matrix is checked in the same pass (finite, symmetric within ``sym_tol`` relative to its
largest entry, positive definite where the function needs it) and a bad one is a
``ValueError`` naming its index.
"""

from __future__ import annotations

import numpy as np

from .. import _core
from .._validation import as_float_array, check_n_jobs

# Largest n solved by geoml's kernels; LAPACK (numpy.linalg.eigh) beyond.
SMALL_N = 64

# Relative symmetry tolerance: max |a_ij - a_ji| <= SYM_TOL * max |a_ij| (about sqrt(eps)).
SYM_TOL = {np.dtype(np.float64): 1.5e-8, np.dtype(np.float32): 3.5e-4}

_MESSAGES = {
    1: "contains NaN or infinity",
    2: "is not symmetric",
    3: (
        "is not positive definite (smallest eigenvalue <= n * eps * largest): SPD input is "
        "required; regularize it, e.g. add a small multiple of the identity"
    ),
    4: "could not be diagonalised (the QL iteration did not converge)",
    5: (
        "overflows (a matrix function or product of it is not finite in float64, or does not "
        "fit the output dtype)"
    ),
}

_FUNCS = ("sqrt", "invsqrt", "log", "exp", "power")


def as_batch(X, name: str = "X", *, min_ndim: int = 2):
    """``X`` as a float32/float64 array of shape ``(..., n, n)``; returns ``(X3, batch_shape)``
    with ``X3`` C-contiguous of shape ``(B, n, n)``. NaN/inf are checked by the kernels."""
    arr = np.asarray(X)
    if arr.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimensions (..., n, n); got shape {arr.shape}"
        )
    arr = as_float_array(arr, name, ndim=arr.ndim, allow_empty=True, finite=False)
    n = arr.shape[-1]
    if arr.shape[-2] != n:
        raise ValueError(f"{name} must hold square matrices (..., n, n); got shape {arr.shape}")
    if n == 0:
        raise ValueError(f"{name} holds 0 x 0 matrices; n >= 1 is needed")
    batch = arr.shape[:-2]
    return arr.reshape((-1, n, n)), batch


def raise_status(status: np.ndarray, name: str, batch_shape=None) -> None:
    """``ValueError`` (``numpy.linalg.LinAlgError`` for a non-converged QL) for the first
    matrix whose status code is not 0."""
    bad = np.flatnonzero(status)
    if bad.size == 0:
        return
    i = int(bad[0])
    code = int(status.flat[i])
    if batch_shape is not None and len(batch_shape) > 0:
        where = f"{name}[{', '.join(map(str, np.unravel_index(i, batch_shape)))}]"
    elif batch_shape is not None:
        where = name
    else:
        where = f"{name}[{i}]"
    msg = f"{where} {_MESSAGES.get(code, f'failed (code {code})')}"
    if bad.size > 1:
        msg += f" ({bad.size} matrices fail)"
    if code == 4:
        raise np.linalg.LinAlgError(msg)
    raise ValueError(msg)


def raise_whitened(status: np.ndarray, X, name: str, n_jobs: int = 0) -> None:
    """``raise_status`` for a pass over ``X`` whitened by a reference or an iterate
    (``M X M``): where a whitened matrix is not numerically positive definite, ``X``'s own
    error if ``X`` is not SPD, else a ``ValueError`` that says ``X[i]`` is SPD and that the
    condition numbers of ``X[i]`` and of the whitening multiply beyond float64's range."""
    if (status == 3).any():
        _, own = funm(X, func="sqrt", n_jobs=n_jobs)
        raise_status(own, name)
        i = int(np.flatnonzero(status == 3)[0])
        raise ValueError(
            f"{name}[{i}] is positive definite, but not numerically once whitened by the "
            "reference or the iterate of a mean (their condition numbers multiply beyond "
            "1 / eps of float64): the input is too ill-conditioned for this computation; "
            "regularize it, e.g. add a small multiple of the identity"
        )
    raise_status(status, name)


def whitened_psd(
    A, M, b, j, *, lower: bool = False, vectors: bool = False, name: str = "A", n_jobs: int = 0
):
    """The eigenvalues (and with ``vectors`` the eigenvectors) of the products
    ``M[j] A[b] M[j]`` (``lower``: ``M[j] A[b] M[j]^T``) as positive semi-definite matrices,
    in float64 NumPy, eigenvalues clipped at 0: for the pairs ``(b, j)`` (index arrays) that a
    kernel pass refused as not numerically positive definite (status 3). The
    Bures-Wasserstein passes whiten by a square root (``B^1/2 A B^1/2``, ``C^1/2 X C^1/2``,
    ``R X R^T``): that product is positive semi-definite for SPD ``A`` and ``M`` and only
    its square root is taken, so the condition numbers of ``A`` and ``M^2`` may multiply
    beyond 1 / eps (``pairwise_distance(X, metric="wasserstein")`` of any matrix of
    condition 1e8 was refused: its pair with itself has condition 1e16), where the
    affine-invariant passes take a logarithm and need the product definite. ``A``'s own
    error first when ``A`` is not SPD; a negative eigenvalue beyond rounding
    (``8 n eps ||M||_F^2 ||A||_F``) is the whitening error of :func:`raise_whitened`."""
    ub = np.unique(b)  # A's own check, on the matrices of these pairs only
    own = np.zeros(A.shape[0], dtype=np.int8)
    own[ub] = funm(np.ascontiguousarray(A[ub]), func="sqrt", n_jobs=n_jobs)[1]
    raise_status(own, name)
    Ad = A[b].astype(np.float64)
    Md = np.asarray(M)[j].astype(np.float64)
    Mt = Md.swapaxes(-1, -2) if lower else Md
    with np.errstate(all="ignore"):
        C = Md @ Ad @ Mt
    C = 0.5 * (C + C.swapaxes(-1, -2))
    if vectors:
        w, V = np.linalg.eigh(C)
    else:
        w, V = np.linalg.eigvalsh(C), None
    n = A.shape[-1]
    eps = float(np.finfo(np.float64).eps)
    bound = 8 * n * eps * np.linalg.norm(Md, axis=(-2, -1)) ** 2 * np.linalg.norm(Ad, axis=(-2, -1))
    bad = ~(w[:, 0] >= -bound)
    if bad.any():
        status = np.zeros(A.shape[0], dtype=np.int8)
        status[np.asarray(b)[bad]] = 3
        raise_whitened(status, A, name, n_jobs)
    w = np.maximum(w, 0.0)
    return (w, V) if vectors else w


# ----------------------------------------------------------------------- NumPy/LAPACK path
def _check_np(A, sym_tol):
    """Status codes 0/1/2 of a (B, n, n) batch, in NumPy."""
    status = np.zeros(A.shape[0], dtype=np.int8)
    finite = np.isfinite(A).all(axis=(1, 2))
    status[~finite] = 1
    with np.errstate(invalid="ignore", over="ignore"):
        amax = np.abs(A).max(axis=(1, 2))
        asym = np.abs(A - A.swapaxes(1, 2)).max(axis=(1, 2))
    status[finite & (asym > sym_tol * amax)] = 2
    return status


def _pd_ok(w, eps):
    n = w.shape[-1]
    return (w[..., 0] > 0) & (w[..., 0] > n * eps * w[..., -1])


def _apply(func, w, power):
    with np.errstate(all="ignore"):
        if func == "sqrt":
            return np.sqrt(w)
        if func == "invsqrt":
            return 1.0 / np.sqrt(w)
        if func == "log":
            return np.log(w)
        if func == "exp":
            return np.exp(w)
        return w**power


def _sym_part(X):
    """Upper triangle mirrored (the kernels read the upper triangle only)."""
    U = np.triu(X)
    return U + np.triu(X, 1).swapaxes(-1, -2)


def _funm_np(A, M, func, power, sym_tol):
    dt = A.dtype
    status = _check_np(A, sym_tol)
    Ad = A.astype(np.float64)
    Ad[status != 0] = np.eye(A.shape[-1])
    if M is not None and M.shape[0]:
        Md = M.astype(np.float64)
        with np.errstate(all="ignore"):
            Ad = Md @ Ad @ Md
        over = (status == 0) & ~np.isfinite(Ad).all(axis=(1, 2))
        status[over] = 5
        Ad[over] = np.eye(A.shape[-1])
    w, V = np.linalg.eigh(_sym_part(Ad))
    if func != "exp":
        bad = (status == 0) & ~_pd_ok(w, np.finfo(dt).eps)
        status[bad] = 3
    fw = _apply(func, w, power)
    status[(status == 0) & ~np.isfinite(fw).all(axis=1)] = 5
    with np.errstate(all="ignore"):  # NaN / inf of refused matrices: flagged, not warned
        out = (V * fw[:, None, :]) @ V.swapaxes(1, 2)
    big = np.finfo(dt).max
    with np.errstate(invalid="ignore"):
        status[(status == 0) & ~(np.abs(out) <= big).all(axis=(1, 2))] = 5  # not in float32
    out[status != 0] = np.nan
    return out.astype(dt), status


# ----------------------------------------------------------------------- the primitives
def funm(A, M=None, *, func: str, power: float = 1.0, n_jobs: int = 0):
    """``(F, status)``: ``F[b] = f(M A[b] M)``; A (B, n, n), M None, (n, n), or (B, n, n)."""
    n = A.shape[-1]
    sym_tol = SYM_TOL[A.dtype]
    if M is None:
        Mk = np.empty((0, n, n), dtype=A.dtype)
    else:
        Mk = np.ascontiguousarray(M, dtype=A.dtype).reshape((-1, n, n))
    if n > SMALL_N:
        return _funm_np(A, Mk, func, power, sym_tol)
    return _core.spd_funm(
        A, Mk, func=_core.SpdFunc[func], power=float(power), sym_tol=sym_tol, n_jobs=n_jobs
    )


def eigvalsh_pairs(
    A, M, *, outer: bool = False, lower: bool = False, log_sq: bool = False, n_jobs: int = 0
):
    """``(w, status)``: eigenvalues of ``M[k] A[b] M[k]`` (``lower``: ``M[k] A[b] M[k]^T``
    with M lower triangular) (positive definite required), for every pair (outer: shape
    (B*K, n)) or paired (shape (B, n)); M (K, n, n), K = 1 or B. With ``log_sq``, ``w`` is
    ``sum(log(w) ** 2, axis=-1)`` instead (float64, shape (B*K,) or (B,)), computed in the
    kernel's threads."""
    n = A.shape[-1]
    sym_tol = SYM_TOL[A.dtype]
    Mk = np.ascontiguousarray(M, dtype=A.dtype).reshape((-1, n, n))
    if Mk.shape[0] == 0:  # no pair (an empty paired batch): the kernel needs K >= 1
        status = np.zeros(0, dtype=np.int8)
        return (np.zeros(0), status) if log_sq else (np.zeros((0, n), dtype=A.dtype), status)
    if lower:
        Mk = np.ascontiguousarray(np.tril(Mk))
    if n <= SMALL_N:
        return _core.spd_eigvalsh_pairs(
            A, Mk, outer=outer, lower=lower, sym_tol=sym_tol, n_jobs=n_jobs, log_sq=log_sq
        )
    if log_sq:
        w, status = eigvalsh_pairs(A, M, outer=outer, lower=lower, n_jobs=n_jobs)
        lw = np.log(w.astype(np.float64))
        return np.einsum("...i,...i->...", lw, lw), status
    status = _check_np(A, sym_tol)
    Ad = A.astype(np.float64)
    Ad[status != 0] = np.eye(n)
    Md = Mk.astype(np.float64)
    Mt = Md.swapaxes(-2, -1) if lower else Md
    with np.errstate(all="ignore"):
        if outer:
            C = Md[None, :] @ Ad[:, None] @ Mt[None, :]
            status = np.repeat(status, Mk.shape[0])
            C = C.reshape((-1, n, n))
        else:
            C = Md @ Ad @ Mt
    over = (status == 0) & ~np.isfinite(C).all(axis=(1, 2))
    status[over] = 5
    C[over] = np.eye(n)
    w = np.linalg.eigvalsh(_sym_part(C))
    status[(status == 0) & ~_pd_ok(w, np.finfo(A.dtype).eps)] = 3
    w[status != 0] = np.nan
    return w.astype(A.dtype), status


def cholesky_pair(M):
    """``(L, L^{-1})`` (float64, lower triangular) with ``M = L L^T`` for one SPD matrix, or
    None where LAPACK refuses it (the caller keeps its symmetric square roots)."""
    from scipy.linalg import lapack

    L, info = lapack.dpotrf(np.asarray(M, dtype=np.float64), lower=1, clean=1)
    if info != 0 or not np.isfinite(L).all():
        return None
    Li, info = lapack.dtrtri(L, lower=1)
    if info != 0 or not np.isfinite(Li).all():
        return None
    return np.tril(L), np.tril(Li)


def inv_cholesky(B):
    """``L^{-1}`` (float64, lower triangular) of the Cholesky factors ``B = L L^T`` of the
    (already checked) SPD matrices B (K, n, n), or None where a factorisation fails (a matrix
    at the edge of definiteness: the caller keeps its symmetric ``B^{-1/2}``)."""
    from scipy.linalg import lapack

    out = np.empty(B.shape, dtype=np.float64)
    for k, Bk in enumerate(B.astype(np.float64, copy=False)):
        L, info = lapack.dpotrf(Bk, lower=1, clean=1)  # clean: zero strict upper triangle
        if info != 0:
            return None
        Li, info = lapack.dtrtri(L, lower=1)  # leaves that zero upper triangle as it is
        if info != 0:
            return None
        out[k] = Li
    if not np.isfinite(out).all():
        return None
    return out


def funm_wsum(
    A, weights, M=None, *, func: str, power: float = 1.0, lower: bool = False, n_jobs: int = 0
):
    """``(S, status)``: ``S = sum_b weights[b] f(M A[b] M)`` in float64; M None or (n, n);
    ``lower`` (n <= SMALL_N only): M lower triangular, ``f(M A[b] M^T)``."""
    n = A.shape[-1]
    sym_tol = SYM_TOL[A.dtype]
    w = np.ascontiguousarray(weights, dtype=np.float64)
    Mk = (
        np.empty((0, n, n), dtype=A.dtype)
        if M is None
        else np.ascontiguousarray(M, dtype=A.dtype).reshape((1, n, n))
    )
    if lower:
        if n > SMALL_N or M is None:
            raise ValueError("lower=True needs M and n <= SMALL_N")
        Mk = np.ascontiguousarray(np.tril(Mk))
    if n <= SMALL_N:
        return _core.spd_funm_wsum(
            A,
            Mk,
            w,
            func=_core.SpdFunc[func],
            power=float(power),
            lower=lower,
            sym_tol=sym_tol,
            n_jobs=n_jobs,
        )
    F, status = _funm_np(A, Mk, func, power, sym_tol)
    S = np.einsum("b,bij->ij", w, F.astype(np.float64)) if not status.any() else None
    return S, status


def eigh_batch(A, *, vectors: bool = True, n_jobs: int = 0):
    """``(w, V, status)`` of a (B, n, n) symmetric batch (ascending eigenvalues, eigenvectors
    in columns)."""
    n = A.shape[-1]
    sym_tol = SYM_TOL[A.dtype]
    if n <= SMALL_N:
        return _core.spd_eigh(A, vectors=vectors, sym_tol=sym_tol, n_jobs=n_jobs)
    status = _check_np(A, sym_tol)
    Ad = A.copy()
    Ad[status != 0] = np.eye(n, dtype=A.dtype)
    if vectors:
        w, V = np.linalg.eigh(_sym_part(Ad))
    else:
        w, V = np.linalg.eigvalsh(_sym_part(Ad)), np.empty((0, n, n), dtype=A.dtype)
    w[status != 0] = np.nan
    if vectors:
        V[status != 0] = np.nan
    return w, V, status


def check_finite(out, what: str):
    """``ValueError`` when a result overflowed (input near the float64 range)."""
    if not np.isfinite(out).all():
        raise ValueError(
            f"{what} overflows: the result is not finite in {out.dtype} (input too large)"
        )
    return out


def jobs(n_jobs) -> int:
    return check_n_jobs(n_jobs)


def upcast(A, name: str = "X", batch=None, *, pd: bool = True, n_jobs: int = 0):
    """float64 copy of a float32 batch for the composite operations (distances, means, maps),
    after checking it in float32 (finite, symmetric within float32's tolerance, and with
    ``pd`` numerically positive definite in float32); float64 input is returned as is."""
    if A.dtype == np.float64:
        return A
    w, _, status = eigh_batch(A, vectors=False, n_jobs=n_jobs)
    if pd:
        status[(status == 0) & ~_pd_ok(w, np.finfo(A.dtype).eps)] = 3
    raise_status(status, name, batch)
    A = A.astype(np.float64)
    return 0.5 * (A + A.swapaxes(-1, -2))
