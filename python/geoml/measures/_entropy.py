"""Spectral entropies of operators and representations: von Neumann entropy, effective rank."""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .._validation import (
    as_float_array,
    as_real,
    blas_for_dense,
    canonical_csr,
    check_bool,
    check_int,
    check_n_jobs,
    reject_gpu,
    validate_random_state,
)

__all__ = ["SpectralMeasure", "effective_rank", "von_neumann_entropy"]

_AUTO_EXACT = 2000  # "auto": exact (dense eigenvalues) up to this size, SLQ above
_PSD_TOL = 1e-10  # eigenvalues below -tol * max |eigenvalue| prove an indefinite matrix


class SpectralMeasure(NamedTuple):
    """A spectral measure (entropy, effective rank) with its error bar.

    Attributes
    ----------
    value : float
        The measure.
    stderr : float
        Standard error of an estimate (stochastic Lanczos quadrature: delta method over the
        probes); 0.0 for an exact value. ``value +- 3 stderr`` covers the exact value with
        probability about 99 %.
    method : str
        ``"exact"`` or ``"slq"``.
    n_probes : int
        Probe vectors used (0 when exact).
    converged : bool
        False when the estimate stopped at a cap before reaching ``rtol`` (a
        ``RuntimeWarning`` is issued too).
    """

    value: float
    stderr: float
    method: str
    n_probes: int
    converged: bool


def _check_method(method):
    if method not in ("exact", "slq", "auto"):
        raise ValueError(f"method={method!r}; choose 'exact', 'slq' or 'auto'")


def _check_base(base):
    if base is None:
        return 1.0
    if isinstance(base, bool) or not isinstance(base, numbers.Real):
        raise TypeError(f"base must be a positive number or None; got {base!r}")
    base = float(base)
    if not (base > 0 and base != 1 and math.isfinite(base)):
        raise ValueError(f"base={base} must be positive and not 1")
    return math.log(base)


def _check_rtol(rtol):
    if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real):
        raise TypeError(f"rtol must be a number; got {rtol!r}")
    rtol = float(rtol)
    if not 0 < rtol < 1:
        raise ValueError(f"rtol={rtol} must be in (0, 1)")
    return rtol


def _shannon(p):
    """-sum p log p with 0 log 0 = 0 (p >= 0, sum 1)."""
    q = p[p > 0]
    return float(-(q * np.log(q)).sum())


def _symmetric_input(A, name):
    reject_gpu(A, name, "von_neumann_entropy")
    if sp.issparse(A):
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"{name} must be square; got shape {A.shape}")
        # (complex weights: sp.csr_matrix(A, dtype=float64) kept their real part, silently)
        A = canonical_csr(sp.csr_matrix(as_real(A, name), dtype=np.float64))
        if A.shape[0] == 0:
            raise ValueError(f"{name} is empty")
        if not np.isfinite(A.data).all():
            raise ValueError(f"{name} contains NaN or infinity")
        scale = abs(A).max() if A.nnz else 0.0
        if A.nnz and abs(A - A.T).max() > 1e-8 * scale:
            raise ValueError(f"{name} is not symmetric (max |A - A.T| > 1e-8 max |A|)")
        return A
    A = as_float_array(A, name)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} must be square; got shape {A.shape}")
    scale = float(np.abs(A).max())
    if np.abs(A - A.T).max() > 1e-8 * scale:
        raise ValueError(f"{name} is not symmetric (max |A - A.T| > 1e-8 max |A|)")
    return A


def _within_range(A):
    """``A`` scaled by a power of two (exact; ``rho`` does not depend on the scale) when its
    trace or degrees could overflow (``n max |A| > 2^1000``): ``1e306 I_1000`` had
    ``tr(A) = inf``, so ``rho = 0`` and the entropy 0 instead of ``log 1000``, silently (only
    NumPy's overflow warning). Other inputs: returned as they are."""
    amax = float(abs(A).max()) if (not sp.issparse(A) or A.nnz) else 0.0
    if not amax * A.shape[0] > 2.0**1000:
        return A
    e = -int(np.frexp(amax)[1])
    if sp.issparse(A):
        return sp.csr_matrix((np.ldexp(A.data, e), A.indices, A.indptr), A.shape)
    return np.ldexp(np.asarray(A, dtype=np.float64), e)


def _laplacian(W):
    if sp.issparse(W):
        if W.nnz and W.data.min() < 0:
            raise ValueError("graph=True needs non-negative edge weights")
        d = np.asarray(W.sum(axis=1)).ravel()
        return (sp.diags(d) - W).tocsr()
    if W.min() < 0:
        raise ValueError("graph=True needs non-negative edge weights")
    W = W.astype(np.float64)
    return np.diag(W.sum(axis=1)) - W


def von_neumann_entropy(
    A,
    *,
    graph: bool = False,
    method: str = "auto",
    base: float | None = None,
    rtol: float = 1e-2,
    n_probes: int | None = None,
    random_state=None,
    n_jobs: int | None = None,
) -> SpectralMeasure:
    """Von Neumann entropy ``S(rho) = -tr(rho log rho)`` of a density operator.

    ``rho = A / tr(A)`` for a symmetric positive semi-definite ``A`` (a covariance, a kernel, a
    density matrix), or, with ``graph=True``, ``rho = L / tr(L)`` for the combinatorial
    Laplacian ``L = D - W`` of the graph with weighted adjacency ``W = A`` (Braunstein,
    Ghosh & Severini; a complete graph on n vertices gives ``log(n - 1)``).

    ``method="exact"`` takes every eigenvalue (``numpy.linalg.eigvalsh``, O(n^3));
    ``"slq"`` estimates ``tr(rho log rho)`` by stochastic Lanczos quadrature
    (:func:`geoml.trace_function`, O(probes x steps x nnz)), to ``rtol`` relative with
    about 99 % probability, with a standard error; ``"auto"`` is exact up to n = 2000.

    Parameters
    ----------
    A : ndarray or sparse matrix of shape (n, n)
        Symmetric (checked to 1e-8 relative), positive semi-definite (an eigenvalue below
        ``-1e-10 max |l|``, ``-1.2e-5 max |l|`` for float32 input, raises ``ValueError`` in
        exact mode, a negative Ritz value in SLQ mode), non-zero trace. With
        ``graph=True``: non-negative weights.
    graph : bool
        Treat ``A`` as a weighted adjacency matrix and use its Laplacian.
    method : {"auto", "exact", "slq"}
    base : float, optional
        Logarithm base (default: natural log, nats; 2 gives bits).
    rtol : float
        SLQ target relative accuracy.
    n_probes : int, optional
        SLQ: fixed number of probes (default adaptive).
    random_state : int, Generator or None
        SLQ probes.
    n_jobs : int, optional
        Threads of the sparse products. ``method="exact"`` runs LAPACK on one BLAS thread up
        to ``n = 1,024`` (the same bits for any thread count), on the BLAS's own threads above
        (their count can change the last bits).

    Returns
    -------
    SpectralMeasure
        ``value``, ``stderr``, ``method``, ``n_probes``, ``converged``.

    Examples
    --------
    >>> import numpy as np, geoml
    >>> W = np.ones((5, 5)) - np.eye(5)  # complete graph K5
    >>> s = geoml.von_neumann_entropy(W, graph=True)
    >>> bool(np.isclose(s.value, np.log(4)))
    True
    """
    _check_method(method)
    validate_random_state(random_state)
    logb = _check_base(base)
    rtol = _check_rtol(rtol)
    graph = check_bool(graph, "graph")
    check_n_jobs(n_jobs)
    single = getattr(A, "dtype", None) == np.float32  # sparse input is made float64 below
    A = _symmetric_input(A, "A")
    A = _within_range(A)
    if graph:
        A = _laplacian(A)
    n = A.shape[0]
    single = single or A.dtype == np.float32
    psd_tol = 100 * float(np.finfo(np.float32).eps) if single else _PSD_TOL
    tr = float(A.diagonal().sum(dtype=np.float64))
    if not tr > 0:
        raise ValueError(f"tr(A) = {tr:.6g}; a density operator needs a positive trace")
    if method == "auto":
        method = "exact" if n <= _AUTO_EXACT else "slq"
    if method == "exact":
        dense = A.toarray() if sp.issparse(A) else np.asarray(A, dtype=np.float64)
        with blas_for_dense(n):  # the same bits for any BLAS thread count up to 1,024
            ev = np.linalg.eigvalsh(dense)
        if ev.min() < -psd_tol * np.abs(ev).max():
            raise ValueError(
                f"A has the eigenvalue {ev.min():.6g}: it is not positive semi-definite"
            )
        p = np.maximum(ev, 0.0) / tr
        return SpectralMeasure(_shannon(p) / logb, 0.0, "exact", 0, True)
    from ..spectral import trace_function

    rho = A / tr
    if n_probes is not None:
        n_probes = check_int(n_probes, "n_probes", low=2)
    est = trace_function(
        rho, "xlogx", rtol=rtol, n_probes=n_probes, random_state=random_state, n_jobs=n_jobs
    )
    return SpectralMeasure(
        -est.value / logb, est.stderr / logb, "slq", est.n_probes, bool(est.converged)
    )


def effective_rank(Z, *, eps: float = 0.0) -> SpectralMeasure:
    """Effective rank (RankMe) of a representation matrix: ``exp(H(p))``,
    ``p_k = sigma_k / sum_j sigma_j`` (+ ``eps``) over its singular values.

    Roy & Vetterli's effective rank; RankMe (Garrido et al. 2023) is the same with
    ``eps = 1e-7`` added to each ``p_k``. It lies in ``[1, min(n, d)]`` for ``eps = 0``.
    The singular values come from ``numpy.linalg.svd`` (float64, O(n d min(n, d)); the
    squared singular values of a Gram matrix would lose the small ones to
    ``sqrt(eps) sigma_max``). There is no stochastic mode: the
    Lanczos quadrature of ``sqrt`` over a Gram spectrum that reaches near zero converges
    too slowly to be trusted (see docs/design/measures.md).

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_features)
        float32 or float64 (computed in float64), no NaN/inf, not all zero.
    eps : float
        Added to each normalised singular value (RankMe's code uses 1e-7; default 0).

    Returns
    -------
    SpectralMeasure
        ``value`` (the effective rank), ``stderr`` 0.0, ``method`` ``"exact"``.

    Examples
    --------
    >>> import numpy as np, geoml
    >>> Z = np.diag([1.0, 1.0, 1.0, 0.0])
    >>> round(geoml.effective_rank(Z).value, 12)
    3.0
    """
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"eps must be a number; got {eps!r}")
    eps = float(eps)
    if not (eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps={eps} must be finite and >= 0")
    reject_gpu(Z, "Z", "effective_rank")
    Z = as_float_array(Z, "Z")
    if not np.any(Z):
        raise ValueError("Z is all zero; its effective rank is undefined")
    Zd = Z.astype(np.float64)
    amax = float(np.abs(Zd).max())
    if amax * Zd.size > 2.0**1000:
        # sum(s) <= size max |Z| would overflow (1e308 I_5: sum(s) = inf, p = 0 and the
        # effective rank 1 instead of 5, silently): scaled by a power of two (exact; p does
        # not depend on the scale); other inputs as they are
        Zd = np.ldexp(Zd, -int(np.frexp(amax)[1]))
    s = np.linalg.svd(Zd, compute_uv=False)
    p = s / s.sum() + eps
    return SpectralMeasure(math.exp(_shannon(p)), 0.0, "exact", 0, True)
