"""Distances between SPD matrices: affine-invariant, log-Euclidean, Bures-Wasserstein,
Euclidean, and their power deformations; pairwise distance matrices."""

from __future__ import annotations

import numpy as np

from .._validation import check_bool
from . import _linalg
from ._functions import check_power

METRICS = ("riemann", "logeuclid", "wasserstein", "euclid")


def check_metric(metric, allowed=METRICS) -> str:
    if not isinstance(metric, str):
        raise TypeError(f"metric must be a string; got {metric!r}")
    if metric not in allowed:
        raise ValueError(f"metric={metric!r} is not one of {', '.join(map(repr, allowed))}")
    return metric


def _metric_power(metric, p) -> tuple[str, float]:
    """The checked metric and power of the power-deformed distances (p = 0 only with "euclid"
    and "logeuclid"; "euclid" with p = 0 is "logeuclid")."""
    metric = check_metric(metric)
    p = check_power(p, allow_zero=metric in ("euclid", "logeuclid"))
    if metric == "euclid" and p == 0:
        metric = "logeuclid"
    return metric, p


def _fun(A, func, power=1.0, n_jobs=0, name="X", batch=None):
    F, status = _linalg.funm(A, func=func, power=power, n_jobs=n_jobs)
    _linalg.raise_status(status, name, batch)
    return F


def _pair(A, B, name_a="A", name_b="B"):
    """(A3, B3, out_batch): B3 has one matrix (shared) or as many as A3 (paired)."""
    A3, ba = _linalg.as_batch(A, name_a)
    B3, bb = _linalg.as_batch(B, name_b)
    if A3.shape[-1] != B3.shape[-1]:
        raise ValueError(f"{name_a} and {name_b} hold matrices of different sizes")
    dt = np.result_type(A3.dtype, B3.dtype)
    A3 = _linalg.upcast(A3.astype(dt, copy=False), name_a, ba)
    B3 = _linalg.upcast(B3.astype(dt, copy=False), name_b, bb)
    try:
        out = np.broadcast_shapes(ba, bb)
    except ValueError:
        raise ValueError(
            f"the batch shapes of {name_a} {ba} and {name_b} {bb} do not broadcast"
        ) from None
    n = A3.shape[-1]
    if ba != out:
        A3 = np.ascontiguousarray(np.broadcast_to(A3.reshape(ba + (n, n)), out + (n, n))).reshape(
            (-1, n, n)
        )
    if bb != out and B3.shape[0] != 1:
        B3 = np.ascontiguousarray(np.broadcast_to(B3.reshape(bb + (n, n)), out + (n, n))).reshape(
            (-1, n, n)
        )
    return A3, B3, out, dt


def _check_spd(A, name, batch, n_jobs):
    """Validates SPD-ness (the kernels' checks) for metrics that do not decompose A."""
    _fun(A, "sqrt", n_jobs=n_jobs, name=name, batch=batch)


def _bw_eigvals(w, status, A3, M, name, nj, outer=False):
    """The eigenvalues ``w`` of the Bures-Wasserstein products ``M A M`` (``M`` the square
    roots of the references, one or one per ``A``; ``outer``: every pair, ``w`` of shape
    (B * K, n)), those that the kernel refused as not numerically positive definite (status
    3: the condition numbers of ``A`` and ``M^2`` multiply beyond 1 / eps) taken as positive
    semi-definite (``_linalg.whitened_psd``: only their square roots enter the distance, as in
    pyRiemann and POT; ``distance(A, A, "wasserstein")`` of ``A = diag(1, 1e-8)`` was
    refused). Other status codes raise."""
    sel = np.flatnonzero(status == 3)
    if sel.size:
        K = len(M)
        b, j = (sel // K, sel % K) if outer else (sel, sel if K > 1 else np.zeros_like(sel))
        w = w.astype(np.float64, copy=True)
        w[sel] = _linalg.whitened_psd(A3, M, b, j, name=name, n_jobs=nj)
        status = status.copy()
        status[sel] = 0
    if outer:
        status = status.reshape(len(A3), -1).max(axis=1)
    _linalg.raise_whitened(status, A3, name, nj)
    return w


# Bures-Wasserstein: squared distances below this fraction of tr A + tr B are recomputed by
# the polar form (the trace formula cancels there)
_BW_NEAR = 1e-4


def _bw_near(d2, tr, A3, B3, B12, nj, ny=None):
    """The squared Bures-Wasserstein distances ``d2`` (float64, one per pair: ``(A3[k],
    B3[k])``, ``B3`` one matrix or one per ``A``; with ``ny``, every pair ``(A3[k // ny],
    B3[k % ny])``; ``B12`` the square roots of ``B3``) with the pairs whose ``d2`` is below
    ``_BW_NEAR (tr A + tr B)`` recomputed as ``||A^1/2 - B^1/2 W||_F^2``, ``W = U V^T`` the
    polar factor of ``B^1/2 A^1/2 = U S V^T`` (the same distance: ``max_W tr(A^1/2 B^1/2 W)
    = tr(A^1/2 B A^1/2)^1/2``), and 0 for equal matrices. The trace formula ``tr A + tr B -
    2 tr(...)^1/2``, pyRiemann's and POT's, subtracts numbers of the size of the traces: its
    squared distance is off by ~``n eps tr``, so nearby matrices (``B = A + 1e-6 E``) got
    distances 3 % off, 100 % at ``1e-8 E`` (0, or twice the distance); the polar form differs
    by ``A^1/2 - B^1/2 W`` itself, accurate to ~1e-9 relative there. One SVD per near pair
    (~0.1 ms at n = 22): pairs of equal matrices (duplicates) take none."""
    sel = np.flatnonzero(d2 < _BW_NEAR * tr)
    if sel.size == 0:
        return d2
    # the matrices of each selected pair, as indices into A3 and B3 / B12
    if ny is not None:
        ia, ib = sel // ny, sel % ny
    else:
        ia, ib = sel, (sel if len(B3) > 1 else np.zeros_like(sel))
    d2 = np.array(d2, dtype=np.float64, copy=True)
    B12 = np.asarray(B12)
    n = A3.shape[-1]
    block = max(1, 2**22 // (n * n))  # pairs per block: bounded memory for many near pairs
    same = np.zeros(sel.size, dtype=bool)
    for lo in range(0, sel.size, block):
        k = slice(lo, lo + block)
        same[k] = (A3[ia[k]] == B3[ib[k]]).all(axis=(-2, -1))
    d2[sel[same]] = 0.0
    sel, ia, ib = sel[~same], ia[~same], ib[~same]
    if sel.size == 0:
        return d2
    # the roots of the matrices of A that take part, once each
    ua, ja = np.unique(ia, return_inverse=True)
    A12 = _fun(np.ascontiguousarray(A3[ua]), "sqrt", n_jobs=nj, name="A")
    A12 = A12.astype(np.float64, copy=False)
    for lo in range(0, sel.size, block):
        k = slice(lo, lo + block)
        Ah = A12[ja[k]]
        Bh = B12[ib[k]].astype(np.float64, copy=False)
        U, _, Vt = np.linalg.svd(Bh @ Ah)
        R = Ah - Bh @ (U @ Vt)
        d2[sel[k]] = np.einsum("kij,kij->k", R, R)
    return d2


# Entries beyond this power of two (either way) put the squares of the Euclidean and
# Bures-Wasserstein distances out of float64's range (1e-200 matrices: euclid returned 0,
# silently): such inputs are scaled by a power of two (exact) and the distances back.
_SCALE_LIMIT = 450


def _scale_exponents(metric: str, *arrays) -> tuple[int, int]:
    """``(k, e)``: scale the matrices by ``2^-k`` and their distances by ``2^e`` (``e = k``
    for ``"euclid"``, ``k = 2 e`` for ``"wasserstein"``, homogeneous of degree 1/2);
    ``(0, 0)`` for the other metrics (scale-invariant or logarithmic) and for matrices
    whose largest entry lies within ``2^+-_SCALE_LIMIT``."""
    if metric not in ("euclid", "wasserstein"):
        return 0, 0
    # an SPD matrix's largest entry is on its diagonal (|a_ij| <= sqrt(a_ii a_jj)): a pass
    # over n of the n^2 entries (input that is not SPD is refused by the kernels after)
    diags = [np.diagonal(a, axis1=-2, axis2=-1) for a in arrays if a.size]
    amax = max((float(np.abs(d).max()) for d in diags), default=0.0)
    if amax == 0.0 or 2.0**-_SCALE_LIMIT <= amax <= 2.0**_SCALE_LIMIT:
        return 0, 0
    x = int(np.frexp(amax)[1])
    if metric == "euclid":
        return x, x
    e = (x + 1) // 2
    return 2 * e, e


def _scaled(A, k: int):
    return A if k == 0 else np.ldexp(A, -k).astype(A.dtype, copy=False)


def _unscaled(d2, e: int, squared: bool, what: str):
    """The distances (or their squares) of matrices scaled by ``2^-k`` back to their scale;
    the squares ``d2`` of the scaled matrices' distances."""
    if e == 0:
        _linalg.check_finite(d2, what)
        return d2 if squared else np.sqrt(d2)
    d = np.ldexp(d2, 2 * e) if squared else np.ldexp(np.sqrt(d2), e)
    _linalg.check_finite(d, what)
    return d


@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def distance(A, B, metric: str = "riemann", *, p: float = 1.0, squared: bool = False, n_jobs=None):
    r"""Distance between SPD matrices, batched: ``A`` and ``B`` broadcast over leading axes.

    ``metric`` (with the power deformation ``p``, :math:`d_p(A, B) = d(A^p, B^p) / |p|`,
    ``p = 1`` the plain metric, as in the SPD batch-normalisation papers):

    - ``"riemann"``: affine-invariant, :math:`\|\log(B^{-1/2} A B^{-1/2})\|_F` (the
      generalised eigenvalues of ``(A, B)``); power-deformed: the :math:`\theta`-AIM.
    - ``"logeuclid"``: :math:`\|\log A - \log B\|_F` (its power deformation is itself, ``p``
      is ignored).
    - ``"wasserstein"``: Bures-Wasserstein,
      :math:`(\mathrm{tr} A + \mathrm{tr} B - 2 \mathrm{tr}(B^{1/2} A B^{1/2})^{1/2})^{1/2}`
      (pyRiemann's and POT's convention); power-deformed: the :math:`2\theta`-BWM with
      ``p = 2 theta``.
    - ``"euclid"``: :math:`\|A - B\|_F`; with ``p``: pyRiemann's power-Euclidean distance
      (``p = 0`` is the log-Euclidean distance).

    The same values as pyRiemann's ``distance`` (``distance_poweuclid`` for ``"euclid"`` with
    ``p``).

    Parameters
    ----------
    A, B : array_like, shape (..., n, n)
        SPD matrices (float32/float64) whose batch shapes broadcast. A single ``B`` (shape
        (n, n)) is a reference matrix: decomposed once.
    metric : {"riemann", "logeuclid", "wasserstein", "euclid"}, default "riemann"
    p : float, default 1.0
        Power deformation; nonzero for "riemann" and "wasserstein". As ``p`` tends to 0
        the deformed "riemann" distance tends to the log-Euclidean one and the deformed
        "wasserstein" distance to half of it (the Bures-Wasserstein metric is a quarter of the
        Frobenius one at the identity).
    squared : bool, default False
        Return the squared distance.
    n_jobs : int, optional
        Threads (None: the OpenMP default, -1: all cores).

    Returns
    -------
    ndarray, shape broadcast(A.shape[:-2], B.shape[:-2])
        The distances (a 0-d array for two single matrices), in the dtype of the input.

    Raises
    ------
    ValueError
        For matrices that are not SPD (or not symmetric, not finite), shapes that do not
        match, an unknown metric, ``p = 0`` where it is not defined.

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import distance
    >>> A, B = np.diag([1.0, np.e]), np.eye(2)
    >>> float(distance(A, B))
    1.0
    >>> round(float(distance(np.diag([4.0, 9.0]), np.eye(2), "wasserstein") ** 2), 12)
    5.0
    """
    metric, p = _metric_power(metric, p)
    squared = check_bool(squared, "squared")
    nj = _linalg.jobs(n_jobs)
    A3, B3, out, dt = _pair(A, B)
    if p != 1.0 and metric != "logeuclid":
        A3 = _fun(A3, "power", p, nj, "A")
        B3 = _fun(B3, "power", p, nj, "B")
    k, e = _scale_exponents(metric, A3, B3)
    A3, B3 = _scaled(A3, k), _scaled(B3, k)
    if metric == "riemann":
        # eigenvalues of L^-1 A L^-T (B = L L^T), a triangular congruence: for one reference
        # and for a batch of B (there B^-1/2 A B^-1/2 with the symmetric root lost ~1e-7
        # relative on pairs of condition 1e6, against 1e-12 this way)
        if len(B3) == 1:
            Bm = _fun(B3, "invsqrt", n_jobs=nj, name="B")  # also the SPD check of B
            Li = _linalg.inv_cholesky(B3)
        else:
            # the SPD check by the eigenvalues alone; an eigenvalue beyond float64 (status 5:
            # the matrix functions scale it, a Cholesky factor would not) takes B^-1/2
            wb, _, status = _linalg.eigh_batch(B3, vectors=False, n_jobs=nj)
            Li = None
            if not (status == 5).any():
                status[(status == 0) & ~_linalg._pd_ok(wb, np.finfo(np.float64).eps)] = 3
                _linalg.raise_status(status, "B")
                Li = _linalg.inv_cholesky(B3)
            Bm = _fun(B3, "invsqrt", n_jobs=nj, name="B") if Li is None else None
        # sum(log(w)^2) in the kernel's threads (no (B, n) eigenvalue array, no serial NumPy
        # pass after the kernel)
        if Li is not None:
            d2, status = _linalg.eigvalsh_pairs(A3, Li, lower=True, log_sq=True, n_jobs=nj)
        else:
            d2, status = _linalg.eigvalsh_pairs(A3, Bm, log_sq=True, n_jobs=nj)
        _linalg.raise_whitened(status, A3, "A", nj)
    elif metric == "logeuclid":
        LA = _fun(A3, "log", n_jobs=nj, name="A").astype(np.float64, copy=False)
        LB = _fun(B3, "log", n_jobs=nj, name="B").astype(np.float64, copy=False)
        d2 = np.sum((LA - LB) ** 2, axis=(-2, -1))
    elif metric == "wasserstein":
        B12 = _fun(B3, "sqrt", n_jobs=nj, name="B")
        w, status = _linalg.eigvalsh_pairs(A3, B12, n_jobs=nj)
        w = _bw_eigvals(w, status, A3, B12, "A", nj)
        tr = np.trace(A3, axis1=-2, axis2=-1).astype(np.float64) + np.trace(
            B3, axis1=-2, axis2=-1
        ).astype(np.float64)
        d2 = np.maximum(tr - 2.0 * np.sqrt(w.astype(np.float64, copy=False)).sum(axis=-1), 0.0)
        d2 = _bw_near(d2, tr, A3, B3, B12, nj)
    else:  # euclid
        if p == 1.0:
            _check_spd(A3, "A", None, nj)
            _check_spd(B3, "B", None, nj)
        d2 = np.sum(
            (A3.astype(np.float64, copy=False) - B3.astype(np.float64, copy=False)) ** 2,
            axis=(-2, -1),
        )
    if p != 1.0 and metric != "logeuclid":
        d2 = d2 / (p * p)
    d2 = d2.reshape(out)
    d = _unscaled(d2, e, squared, "distance")
    return np.asarray(d, dtype=dt)


@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def pairwise_distance(
    X, Y=None, metric: str = "riemann", *, p: float = 1.0, squared: bool = False, n_jobs=None
):
    """Distance matrix between two sets of SPD matrices (see :func:`distance` for the metrics).

    Parameters
    ----------
    X : array_like, shape (n_x, n, n)
        SPD matrices.
    Y : array_like, shape (n_y, n, n), optional
        SPD matrices; None: ``X`` (the result is then symmetric with a zero diagonal).
    metric : {"riemann", "logeuclid", "wasserstein", "euclid"}, default "riemann"
    p : float, default 1.0
        Power deformation (see :func:`distance`).
    squared : bool, default False
        Squared distances.
    n_jobs : int, optional
        Threads (None: the OpenMP default, -1: all cores).

    Returns
    -------
    ndarray, shape (n_x, n_y)
        ``D[i, j] = distance(X[i], Y[j])``, in the dtype of the input.

    Raises
    ------
    ValueError
        As :func:`distance`; also for input that is not 3-D.

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import pairwise_distance
    >>> X = np.stack([np.eye(2), np.diag([1.0, np.e]), np.diag([np.e, np.e])])
    >>> np.round(pairwise_distance(X) ** 2, 12)
    array([[0., 1., 2.],
           [1., 0., 1.],
           [2., 1., 0.]])
    """
    metric, p = _metric_power(metric, p)
    squared = check_bool(squared, "squared")
    nj = _linalg.jobs(n_jobs)
    same = Y is None
    X3, bx = _linalg.as_batch(X, "X")
    if len(bx) != 1:
        raise ValueError(f"X must have shape (n_x, n, n); got {np.shape(X)}")
    if same:
        Y3 = X3
    else:
        Y3, by = _linalg.as_batch(Y, "Y")
        if len(by) != 1:
            raise ValueError(f"Y must have shape (n_y, n, n); got {np.shape(Y)}")
        if Y3.shape[-1] != X3.shape[-1]:
            raise ValueError("X and Y hold matrices of different sizes")
    dt = X3.dtype if same else np.result_type(X3.dtype, Y3.dtype)
    X3 = _linalg.upcast(X3.astype(dt, copy=False), "X")
    Y3 = X3 if same else _linalg.upcast(Y3.astype(dt, copy=False), "Y")
    nx_, ny_, n = X3.shape[0], Y3.shape[0], X3.shape[-1]
    if p != 1.0 and metric != "logeuclid":
        X3 = _fun(X3, "power", p, nj, "X")
        Y3 = X3 if same else _fun(Y3, "power", p, nj, "Y")
    k, e = _scale_exponents(metric, X3, Y3)
    X3 = _scaled(X3, k)
    Y3 = X3 if same else _scaled(Y3, k)
    if metric in ("riemann", "wasserstein"):
        lower = False
        if metric == "riemann":
            M = _fun(Y3, "invsqrt", n_jobs=nj, name="Y" if not same else "X")
            Li = _linalg.inv_cholesky(Y3)  # L^-1 X L^-T: a triangular congruence
            if Li is not None:
                M, lower = Li, True
        else:
            M = _fun(Y3, "sqrt", n_jobs=nj, name="Y" if not same else "X")
        if nx_ * ny_ == 0:
            d2 = np.zeros((nx_, ny_))
        else:
            riemann = metric == "riemann"
            w, status = _linalg.eigvalsh_pairs(
                X3, M, outer=True, lower=lower, log_sq=riemann, n_jobs=nj
            )
            if riemann:
                _linalg.raise_whitened(status.reshape(nx_, ny_).max(axis=1), X3, "X", nj)
            else:
                w = _bw_eigvals(w, status, X3, M, "X", nj, outer=True)
            if riemann:
                d2 = w.reshape(nx_, ny_)
            else:
                w = w.astype(np.float64, copy=False).reshape(nx_, ny_, -1)
                tx = np.trace(X3, axis1=-2, axis2=-1).astype(np.float64)
                ty = np.trace(Y3, axis1=-2, axis2=-1).astype(np.float64)
                tr = tx[:, None] + ty[None, :]
                d2 = np.maximum(tr - 2.0 * np.sqrt(w).sum(axis=-1), 0.0)
                if same:  # (the diagonal is 0)
                    tr = tr + np.diag(np.full(nx_, np.inf))
                d2 = _bw_near(d2.ravel(), tr.ravel(), X3, Y3, M, nj, ny=ny_).reshape(nx_, ny_)
    else:
        if metric == "logeuclid":
            FX = _fun(X3, "log", n_jobs=nj, name="X")
            FY = FX if same else _fun(Y3, "log", n_jobs=nj, name="Y")
        else:
            _check_spd(X3, "X", None, nj)
            if not same:
                _check_spd(Y3, "Y", None, nj)
            FX, FY = X3, Y3
        FX = FX.reshape(nx_, n * n).astype(np.float64)  # (not -1: nx_ or ny_ may be 0)
        FY = FY.reshape(ny_, n * n).astype(np.float64)
        d2 = np.empty((nx_, ny_))
        for i in range(nx_):
            d2[i] = np.sum((FY - FX[i]) ** 2, axis=1)
    if p != 1.0 and metric != "logeuclid":
        d2 = d2 / (p * p)
    if same:
        d2 = np.triu(d2, 1)
        d2 = d2 + d2.T
    d = _unscaled(d2, e, squared, "pairwise_distance")
    return d.astype(dt)
