"""Batched eigendecomposition and spectral functions of symmetric / SPD matrices."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._validation import check_real
from . import _linalg


class EighResult(NamedTuple):
    """Eigenvalues (ascending, shape (..., n)) and eigenvectors (columns, shape (..., n, n)),
    as ``numpy.linalg.eigh`` returns them."""

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray


def eigh(X, *, n_jobs=None) -> EighResult:
    """Eigendecomposition of a batch of real symmetric matrices.

    geoml's batched solver (Householder tridiagonalisation and implicit QL in double precision,
    one matrix per thread) for ``n <= 64``; LAPACK (``numpy.linalg.eigh``) above.

    Parameters
    ----------
    X : array_like, shape (..., n, n)
        Symmetric matrices (float32 or float64; other real dtypes become float64). The upper
        triangle is read; a matrix with ``max |x_ij - x_ji| > tol * max |x_ij|`` (tol about
        ``sqrt(eps)``: 1.5e-8 in float64, 3.5e-4 in float32) is refused.
    n_jobs : int, optional
        Threads (None: the OpenMP default, -1: all cores).

    Returns
    -------
    EighResult
        ``eigenvalues`` of shape (..., n), ascending, and ``eigenvectors`` of shape
        (..., n, n) with the unit eigenvector of ``eigenvalues[..., j]`` in column ``j``; in the
        dtype of ``X``.

    Raises
    ------
    ValueError
        For a non-square, non-symmetric or non-finite matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import eigh
    >>> w, V = eigh(np.array([[2.0, 1.0], [1.0, 2.0]]))
    >>> w
    array([1., 3.])
    >>> np.allclose(V @ np.diag(w) @ V.T, [[2.0, 1.0], [1.0, 2.0]])
    True
    """
    A, batch = _linalg.as_batch(X)
    n = A.shape[-1]
    w, V, status = _linalg.eigh_batch(A, n_jobs=_linalg.jobs(n_jobs))
    _linalg.raise_status(status, "X", batch)
    return EighResult(w.reshape(batch + (n,)), V.reshape(batch + (n, n)))


def _matfun(X, func, power=1.0, n_jobs=None):
    A, batch = _linalg.as_batch(X)
    n = A.shape[-1]
    F, status = _linalg.funm(A, func=func, power=power, n_jobs=_linalg.jobs(n_jobs))
    _linalg.raise_status(status, "X", batch)
    return F.reshape(batch + (n, n))


_SHAPES = """
    Parameters
    ----------
    X : array_like, shape (..., n, n)
        {what} matrices, float32 or float64 (other real dtypes become float64). Only the
        upper triangle is read; a matrix that is not symmetric within about ``sqrt(eps)``
        relative to its largest entry or holds NaN or infinity{pd} is refused.
    n_jobs : int, optional
        Threads (None: the OpenMP default, -1: all cores).

    Returns
    -------
    ndarray, shape (..., n, n)
        {result}, in the dtype of ``X``.

    Raises
    ------
    ValueError
        For input that is not {what_lower}."""

_PD = (
    ",\n        or is not numerically positive definite (smallest eigenvalue not above\n"
    "        ``n * eps * largest``: singular input is refused; add a small ridge to regularize)"
)


def sqrtm(X, *, n_jobs=None) -> np.ndarray:
    """Principal square root ``V diag(sqrt(w)) V^T`` of SPD matrices, batched.
    {shapes}

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import sqrtm
    >>> sqrtm(np.diag([4.0, 9.0]))
    array([[2., 0.],
           [0., 3.]])
    """
    return _matfun(X, "sqrt", n_jobs=n_jobs)


def invsqrtm(X, *, n_jobs=None) -> np.ndarray:
    """Inverse square root ``V diag(w^(-1/2)) V^T`` of SPD matrices, batched.
    {shapes}

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import invsqrtm
    >>> invsqrtm(np.diag([4.0, 0.25]))
    array([[0.5, 0. ],
           [0. , 2. ]])
    """
    return _matfun(X, "invsqrt", n_jobs=n_jobs)


def logm(X, *, n_jobs=None) -> np.ndarray:
    """Principal logarithm ``V diag(log w) V^T`` of SPD matrices, batched.
    {shapes}

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import logm
    >>> np.round(logm(np.diag([1.0, np.e])), 12)
    array([[0., 0.],
           [0., 1.]])
    """
    return _matfun(X, "log", n_jobs=n_jobs)


def expm(X, *, n_jobs=None) -> np.ndarray:
    """Exponential ``V diag(exp w) V^T`` of symmetric matrices, batched.
    {shapes}
        A result that overflows is also a ``ValueError``.

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import expm, logm
    >>> A = np.array([[2.0, 0.5], [0.5, 1.0]])
    >>> np.allclose(expm(logm(A)), A)
    True
    """
    return _matfun(X, "exp", n_jobs=n_jobs)


def powm(X, p, *, n_jobs=None) -> np.ndarray:
    """Power ``V diag(w^p) V^T`` of SPD matrices, batched (``p`` a finite real).

    Parameters
    ----------
    X : array_like, shape (..., n, n)
        SPD matrices (see :func:`sqrtm` for the checks).
    p : float
        The exponent.
    n_jobs : int, optional
        Threads (None: the OpenMP default, -1: all cores).

    Returns
    -------
    ndarray, shape (..., n, n)
        ``X ** p`` in the dtype of ``X``.

    Raises
    ------
    ValueError
        For input that is not SPD, or a non-finite ``p``.

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import powm
    >>> powm(np.diag([4.0, 9.0]), 1.5)
    array([[ 8.,  0.],
           [ 0., 27.]])
    """
    p = check_power(p)
    return _matfun(X, "power", power=p, n_jobs=n_jobs)


def check_power(p, *, allow_zero: bool = True) -> float:
    """A finite float exponent (``TypeError`` / ``ValueError``): a real number
    (``_validation.check_real``; ``float`` read ``p="2"`` and ``p=[2.0]`` as 2)."""
    value = check_real(p, "p", what="a real number")
    if not math.isfinite(value):
        raise ValueError(f"p must be finite; got {value!r}")
    if value == 0 and not allow_zero:
        raise ValueError("p must be nonzero for this metric")
    return value


for _f, _what, _pd, _result in (
    (sqrtm, "SPD", _PD, "``X ** (1/2)``"),
    (invsqrtm, "SPD", _PD, "``X ** (-1/2)``"),
    (logm, "SPD", _PD, "``log(X)`` (symmetric)"),
    (expm, "Symmetric", "", "``exp(X)`` (SPD)"),
):
    _f.__doc__ = _f.__doc__.replace(
        "{shapes}",
        _SHAPES.format(
            what=_what,
            pd=_pd,
            result=_result,
            what_lower=("SPD" if _what == "SPD" else "symmetric") + " matrices",
        ),
    )
