"""Tangent spaces of the SPD manifold: logarithmic and exponential maps, parallel transport,
and pyRiemann's tangent-space vectorisation."""

from __future__ import annotations

import math
import warnings

import numpy as np

from .._validation import check_bool, check_real, user_stacklevel
from . import _linalg
from ._distance import _scale_exponents, _scaled, check_metric

MAP_METRICS = ("riemann", "logeuclid", "wasserstein", "euclid")


def _fun(A, func, n_jobs, name, M=None):
    F, status = _linalg.funm(A, M, func=func, n_jobs=n_jobs)
    _linalg.raise_status(status, name)
    return F


def _ref(X, C, name_x="X", check_x=True):
    """(X3, C3, batch, dtype): C3 has one matrix or as many as X3; float32 input is checked
    in float32 and computed in float64 (``_linalg.upcast``)."""
    if check_x:
        X3, bx = _linalg.as_batch(X, name_x)
    else:
        X3, bx = X
    C3, bc = _linalg.as_batch(C, "Cref")
    n = X3.shape[-1]
    if C3.shape[-1] != n:
        raise ValueError(f"{name_x} and Cref hold matrices of different sizes")
    if bc != () and bc != bx:
        raise ValueError(f"Cref must have shape ({n}, {n}) or {bx + (n, n)}; got {bc + (n, n)}")
    dt = np.result_type(X3.dtype, C3.dtype)
    X3 = _linalg.upcast(X3.astype(dt, copy=False), name_x, bx, pd=check_x)
    C3 = _linalg.upcast(C3.astype(dt, copy=False), "Cref", bc)
    return X3, C3, bx, dt


def _symmetric(T, name):
    """A batch of symmetric (tangent) matrices: finite and symmetric."""
    T3, b = _linalg.as_batch(T, name)
    if not np.isfinite(T3).all():
        raise ValueError(f"{name} contains NaN or infinity")
    tol = _linalg.SYM_TOL[T3.dtype]
    with np.errstate(over="ignore", invalid="ignore"):
        scale = np.abs(T3).max(axis=(1, 2))
        asym = np.abs(T3 - T3.swapaxes(1, 2)).max(axis=(1, 2))
    if (asym > tol * scale).any():
        raise ValueError(f"{name} must hold symmetric matrices")
    return T3, b


@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def log_map(X, Cref, metric: str = "riemann", *, whitened: bool = True, n_jobs=None):
    r"""Logarithmic map of SPD matrices at a reference point, batched (pyRiemann's ``log_map``).

    - ``"riemann"``: :math:`\log(C^{-1/2} X C^{-1/2})` (``whitened=True``, pyRiemann's
      default) or the full map :math:`C^{1/2} \log(C^{-1/2} X C^{-1/2}) C^{1/2}`
      (``whitened=False``, pyRiemann's ``C12=True``).
    - ``"logeuclid"``: :math:`D\exp_{\log C}(\log X - \log C)`, the differential of the
      matrix exponential at :math:`\log C` (pyRiemann 0.12's ``log_map_logeuclid``).
    - ``"wasserstein"``: :math:`(C^{-1/2} (C^{1/2} X C^{1/2})^{1/2} C^{1/2})` plus its transpose,
      minus :math:`2C`.
    - ``"euclid"``: :math:`X - C`.

    Parameters
    ----------
    X : array_like, shape (..., n, n)
        SPD matrices.
    Cref : array_like, shape (n, n) or (..., n, n)
        SPD reference point(s): one for all, or one per matrix.
    metric : {"riemann", "logeuclid", "wasserstein", "euclid"}, default "riemann"
    whitened : bool, default True
        Affine-invariant map only: the whitened tangent vector (see above).
    n_jobs : int, optional
        Threads (None: the OpenMP default, -1: all cores).

    Returns
    -------
    ndarray, shape (..., n, n)
        Symmetric tangent vectors.

    Raises
    ------
    ValueError
        For matrices that are not SPD or shapes that do not match.

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import log_map
    >>> np.round(log_map(np.diag([np.e, 1.0]), np.eye(2)), 12)
    array([[1., 0.],
           [0., 0.]])
    """
    metric = check_metric(metric, MAP_METRICS)
    whitened = check_bool(whitened, "whitened")
    nj = _linalg.jobs(n_jobs)
    X3, C3, b, dt = _ref(X, Cref)
    n = X3.shape[-1]
    if metric == "riemann":
        Cm12 = _fun(C3, "invsqrt", nj, "Cref")
        L = _fun(X3, "log", nj, "X", M=Cm12)
        if not whitened:
            C12 = _fun(C3, "sqrt", nj, "Cref")
            L = C12 @ L @ C12
    elif metric == "wasserstein":
        # homogeneous of degree 1: matrices beyond 2^+-450 are mapped scaled by a power of
        # two (C^1/2 X C^1/2 of 1e-200 matrices underflowed: "X[0] is not positive definite")
        k, _ = _scale_exponents("euclid", X3, C3)
        X3, C3 = _scaled(X3, k), _scaled(C3, k)
        C12 = _fun(C3, "sqrt", nj, "Cref")
        Cm12 = _fun(C3, "invsqrt", nj, "Cref")
        S, status = _linalg.funm(X3, C12, func="sqrt", n_jobs=nj)
        sel = np.flatnonzero(status == 3)
        if sel.size:  # C^1/2 X C^1/2 semi-definite: only its root is taken (_bw_eigvals)
            j = sel if len(C12) > 1 else np.zeros_like(sel)
            lam, V = _linalg.whitened_psd(X3, C12, sel, j, vectors=True, name="X", n_jobs=nj)
            S = S.astype(np.float64, copy=True)
            S[sel] = (V * np.sqrt(lam)[:, None, :]) @ V.swapaxes(-1, -2)
            status[sel] = 0
        _linalg.raise_status(status, "X")
        tmp = Cm12 @ S @ C12
        L = tmp + tmp.swapaxes(-1, -2) - 2 * C3
        L = np.ldexp(L, k) if k else L
    elif metric == "logeuclid":
        LX = _fun(X3, "log", nj, "X").astype(np.float64)
        LC = _fun(C3, "log", nj, "Cref").astype(np.float64)
        lam, V = np.linalg.eigh(LC)
        L = _in_basis(LX - LC, V, _divided_exp(lam))
    else:
        _fun(X3, "sqrt", nj, "X")
        _fun(C3, "sqrt", nj, "Cref")
        L = X3 - C3
    return _linalg.check_finite(L, "log_map").reshape(b + (n, n)).astype(dt)


@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def exp_map(T, Cref, metric: str = "riemann", *, whitened: bool = True, n_jobs=None):
    r"""Exponential map of tangent vectors at a reference point, batched (pyRiemann's
    ``exp_map``; the inverse of :func:`log_map`).

    - ``"riemann"``: :math:`C^{1/2} \exp(T) C^{1/2}` for a whitened vector (``whitened=True``),
      :math:`C^{1/2} \exp(C^{-1/2} T C^{-1/2}) C^{1/2}` otherwise (pyRiemann's ``Cm12=True``).
    - ``"logeuclid"``: :math:`\exp(\log C + D\log_C(T))`, the differential of the matrix
      logarithm at ``C`` (pyRiemann 0.12's ``exp_map_logeuclid``).
    - ``"wasserstein"``: :math:`C + T + L_C(T)\, C\, L_C(T)` with :math:`L_C` the Lyapunov
      operator (solution of :math:`L C + C L = T`), in the eigenbasis of ``C``.
    - ``"euclid"``: :math:`T + C`.

    Parameters
    ----------
    T : array_like, shape (..., n, n)
        Symmetric tangent vectors.
    Cref : array_like, shape (n, n) or (..., n, n)
        SPD reference point(s).
    metric : {"riemann", "logeuclid", "wasserstein", "euclid"}, default "riemann"
    whitened : bool, default True
        Affine-invariant map only (see above).
    n_jobs : int, optional
        Threads (None: the OpenMP default, -1: all cores).

    Returns
    -------
    ndarray, shape (..., n, n)
        Points of the manifold.

    Raises
    ------
    ValueError
        For non-symmetric ``T``, a ``Cref`` that is not SPD, shapes that do not match.

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import exp_map
    >>> np.allclose(exp_map(np.diag([1.0, 0.0]), np.eye(2)), np.diag([np.e, 1.0]))
    True
    """
    metric = check_metric(metric, MAP_METRICS)
    whitened = check_bool(whitened, "whitened")
    nj = _linalg.jobs(n_jobs)
    T3, b = _symmetric(T, "T")
    T3, C3, b, dt = _ref((T3, b), Cref, "T", check_x=False)
    n = T3.shape[-1]
    if metric == "riemann":
        C12 = _fun(C3, "sqrt", nj, "Cref")
        if not whitened:
            Cm12 = _fun(C3, "invsqrt", nj, "Cref")
            T3 = Cm12 @ T3 @ Cm12
            T3 = 0.5 * (T3 + T3.swapaxes(-1, -2))
        E = _fun(np.ascontiguousarray(T3), "exp", nj, "T")
        out = C12 @ E @ C12
    elif metric == "wasserstein":
        k, _ = _scale_exponents("euclid", C3)  # degree 1, as in log_map
        C3, T3 = _scaled(C3, k), _scaled(T3, k)
        _fun(C3, "sqrt", nj, "Cref")
        d, V = np.linalg.eigh(C3.astype(np.float64))
        Vt = V.swapaxes(-1, -2)
        K = 1.0 / (d[..., :, None] + d[..., None, :])
        Y = K * (Vt @ T3.astype(np.float64) @ V)
        Y = Y @ (d[..., :, None] * Y)
        out = C3 + T3 + V @ Y @ Vt
        out = np.ldexp(out, k) if k else out
    elif metric == "logeuclid":
        LC = _fun(C3, "log", nj, "Cref").astype(np.float64)
        c, V = np.linalg.eigh(C3.astype(np.float64))
        S = LC + _in_basis(T3.astype(np.float64), V, _divided_log(c))
        out = _fun(np.ascontiguousarray(0.5 * (S + S.swapaxes(-1, -2))), "exp", nj, "T")
    else:
        _fun(C3, "sqrt", nj, "Cref")
        out = T3 + C3
    return _linalg.check_finite(out, "exp_map").reshape(b + (n, n)).astype(dt)


TRANSPORT_METRICS = ("riemann", "wasserstein", "logeuclid", "euclid")


def _eig(M):
    """Eigenvalues and eigenvectors of one symmetric float64 matrix."""
    w, V = np.linalg.eigh(0.5 * (M + M.T))
    return w, V


def _divided_log(a):
    """First divided differences of log at the eigenvalues ``a`` (Daleckii-Krein matrix),
    ``1 / a_i`` on the diagonal; stable for close eigenvalues (``log1p(x) / x``)."""
    ai, aj = a[..., :, None], a[..., None, :]
    x = (ai - aj) / aj
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(x == 0, 1.0, np.log1p(x) / np.where(x == 0, 1.0, x))
    return r / aj


def _divided_exp(lam):
    """First divided differences of exp at ``lam`` (``e^{l_j} expm1(d) / d``)."""
    li, lj = lam[..., :, None], lam[..., None, :]
    d = li - lj
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        r = np.where(d == 0, 1.0, np.expm1(d) / np.where(d == 0, 1.0, d))
    return r * np.exp(lj)


def _in_basis(T, V, G):
    """``V ((V^T T V) * G) V^T`` over a batch ``T`` (the Daleckii-Krein form); ``V`` and
    ``G`` one or one per matrix."""
    Vt = V.swapaxes(-1, -2)
    return V @ ((Vt @ T @ V) * G) @ Vt


def _bw_ode(T, A, B, tol):
    """Bures-Wasserstein parallel transport of the batch ``T`` along the geodesic from ``A``
    to ``B`` by the horizontal lift of the quotient ``GL(n) -> SPD``, ``M -> M M^T``: the
    geodesic lifts to the straight line ``M(t) = (I + t (E - I)) A^{1/2}`` (``E`` the
    transport map from ``A`` to ``B``); a vector field is parallel when its horizontal lift
    ``W`` has a vertical derivative, ``W' = M Omega`` with ``Omega`` skew, solving
    ``P Omega + Omega P = W^T M' - M'^T W`` (``P = M^T M``). Classical Runge-Kutta on
    ``W``, step count doubled until two runs agree to ``tol`` (relative, Frobenius)."""
    a, U = _eig(A)
    A12 = (U * np.sqrt(a)) @ U.T
    Am12 = (U / np.sqrt(a)) @ U.T
    b, Ub = _eig(A12 @ B @ A12)
    E = Am12 @ ((Ub * np.sqrt(np.maximum(b, 0.0))) @ Ub.T) @ Am12
    n = A.shape[0]
    Md = (E - np.eye(n)) @ A12
    # initial horizontal lift: W = K A^{1/2} with K A + A K = T (Lyapunov in A's eigenbasis)
    K = U @ ((U.T @ T @ U) / (a[:, None] + a[None, :])) @ U.T
    W0 = K @ A12

    def rhs(t, W):
        M = A12 + t * Md
        p, Q = _eig(M.T @ M)
        R = W.swapaxes(-1, -2) @ Md - Md.T @ W
        Om = Q @ ((Q.T @ R @ Q) / (p[:, None] + p[None, :])) @ Q.T
        return M @ Om

    def run(steps):
        W, h = W0, 1.0 / steps
        for s in range(steps):
            t = s * h
            k1 = rhs(t, W)
            k2 = rhs(t + h / 2, W + (h / 2) * k1)
            k3 = rhs(t + h / 2, W + (h / 2) * k2)
            k4 = rhs(t + h, W + h * k3)
            W = W + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
        M1 = A12 + Md
        return W @ M1.T + M1 @ W.swapaxes(-1, -2)

    steps, prev = 8, run(8)
    scale = max(np.linalg.norm(prev.reshape(len(prev), -1), axis=1).max(), np.finfo(float).tiny)
    while True:
        steps *= 2
        cur = run(steps)
        err = np.abs(cur - prev).max() / scale
        if err <= tol or steps >= 4096:
            break
        prev = cur
    if err > tol:
        warnings.warn(
            f"transport(metric='wasserstein'): the geodesic ODE reached a change of {err:.1e} "
            f"(tol={tol:g}) at {steps} steps; the points may be nearly singular",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return cur


def _bw_norm2(S, X):
    """The squared Bures-Wasserstein norms ``g_S(X, X) = tr(L_S[X] X) / 2`` of the batch
    ``X`` at ``S`` (``L_S[X]`` the solution of ``S L + L S = X``), in ``S``'s eigenbasis: a
    sum of non-negative terms ``X'_ij^2 / (2 (s_i + s_j))``."""
    s, U = _eig(S)
    Xt = U.T @ X @ U
    return 0.5 * np.sum(Xt * Xt / (s[:, None] + s[None, :]), axis=(-2, -1))


# transport(metric="wasserstein"): the largest relative change of a squared norm
# (g_B(out) against g_A(T)) that the integrated transport may show without a warning
_BW_ISOMETRY_TOL = 1e-6


def _check_bw_isometry(T, out, A, B):
    """A ``RuntimeWarning`` where the integrated Bures-Wasserstein transport is not the
    isometry that parallel transport is: the ODE's step doubling measures its discretisation
    only, not the rounding that ill-conditioned points amplify (condition 1e8: the squared
    norms changed by 4.5 %, silently; 1e6: 5e-8)."""
    ga, gb = _bw_norm2(A, T), _bw_norm2(B, out)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.where(ga > 0, np.abs(gb - ga) / ga, np.abs(gb))
    worst = float(np.max(err)) if err.size else 0.0
    if not worst <= _BW_ISOMETRY_TOL:
        warnings.warn(
            "transport(metric='wasserstein'): the integrated transport changes a tangent "
            f"vector's squared norm by {worst:.1e} (relative; an exact transport keeps it): "
            "the points are too ill-conditioned for its accuracy (condition numbers "
            f"{_cond(A):.1e}, {_cond(B):.1e})",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )


def _cond(S):
    w = np.linalg.eigvalsh(S)
    return float(w[-1] / w[0]) if w[0] > 0 else math.inf


@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def transport(T, A, B, metric: str = "riemann", *, tol: float = 1e-10, n_jobs=None):
    r"""Parallel transport of tangent vectors from ``A`` to ``B`` along the geodesic of a
    metric (pyRiemann's ``transport``).

    - ``"riemann"`` (affine-invariant, pyRiemann's ``transport_riemann``): :math:`E T E^T`
      with :math:`E = A^{1/2} (A^{-1/2} B A^{-1/2})^{1/2} A^{-1/2} = (B A^{-1})^{1/2}`.
    - ``"logeuclid"`` (pyRiemann's ``transport_logeuclid``):
      :math:`D\exp_{\log B}(D\log_A(T))`, the Daleckii-Krein derivatives.
    - ``"euclid"``: the identity.
    - ``"wasserstein"`` (Bures-Wasserstein): in closed form when ``A`` and ``B`` commute
      (Thanwerdas & Pennec, "O(n)-invariant Riemannian metrics on SPD matrices", 2023): in
      their common eigenbasis, with eigenvalues :math:`a_i` and :math:`b_i`,
      :math:`T'_{ij} = T_{ij} \sqrt{(b_i + b_j) / (a_i + a_j)}`. Otherwise there is no
      closed form; the transport is integrated along the geodesic (the horizontal lift of
      the quotient :math:`M \mapsto M M^T`, classical Runge-Kutta with the step count
      doubled until two runs agree to ``tol``; a ``RuntimeWarning`` says when they do not,
      and when the result is not the isometry that parallel transport is: squared norms
      changed by more than 1e-6 relative, which rounding does on ill-conditioned points,
      about 5 % between points of condition 1e8).
      Matrices commute here when :math:`\|AB - BA\|_F \le 10^{-12} \|A\|_F \|B\|_F`.

    The tangent vectors are the full (not whitened) ones, as pyRiemann's. Every metric's
    transport is an isometry of its own inner product at ``A`` onto the one at ``B``.

    Parameters
    ----------
    T : array_like, shape (..., n, n)
        Symmetric tangent vectors at ``A``.
    A, B : array_like, shape (n, n)
        SPD points.
    metric : {"riemann", "wasserstein", "logeuclid", "euclid"}, default "riemann"
    tol : float, default 1e-10
        Relative accuracy of the integrated Bures-Wasserstein transport (non-commuting
        points only).
    n_jobs : int, optional
        Threads.

    Returns
    -------
    ndarray, shape (..., n, n)
        Tangent vectors at ``B``.

    Raises
    ------
    ValueError
        For non-symmetric ``T``, ``A`` or ``B`` that are not SPD, shapes that do not match, an
        unknown metric or ``tol`` not in (0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import transport
    >>> transport(np.eye(2), np.eye(2), 4 * np.eye(2))
    array([[4., 0.],
           [0., 4.]])
    >>> transport(np.eye(2), np.eye(2), 4 * np.eye(2), "wasserstein")
    array([[2., 0.],
           [0., 2.]])
    """
    metric = check_metric(metric, TRANSPORT_METRICS)
    # (a real number: np.float32(1e-8) was refused, True taken as 1; TypeError for a str)
    tol = check_real(tol, "tol", what="a real number")
    if not (0 < tol < 1):
        raise ValueError(f"tol must be a number in (0, 1); got {tol!r}")
    nj = _linalg.jobs(n_jobs)
    T3, b = _symmetric(T, "T")
    n = T3.shape[-1]
    A3, ba = _linalg.as_batch(A, "A")
    B3, bb = _linalg.as_batch(B, "B")
    if ba != () or bb != () or A3.shape[-1] != n or B3.shape[-1] != n:
        raise ValueError(f"A and B must have shape ({n}, {n})")
    dt = np.result_type(T3.dtype, A3.dtype, B3.dtype)
    A3 = _linalg.upcast(A3.astype(dt), "A", ())
    B3 = _linalg.upcast(B3.astype(dt), "B", ())
    # both points must be SPD (log raises otherwise), whatever the metric
    _fun(A3, "log", nj, "A")
    logB = _fun(B3, "log", nj, "B")[0]
    T64 = T3.astype(np.float64)
    if metric == "euclid":
        out = T64.copy()
    elif metric == "riemann":
        A12 = _fun(A3, "sqrt", nj, "A")[0]
        Am12 = _fun(A3, "invsqrt", nj, "A")[0]
        S = _fun(B3, "sqrt", nj, "B", M=Am12)[0]
        E = A12 @ S @ Am12
        out = E @ T64 @ E.T
    elif metric == "logeuclid":
        a, U = _eig(A3[0])
        lam, V = _eig(logB)
        out = _in_basis(_in_basis(T64, U, _divided_log(a)), V, _divided_exp(lam))
    else:
        Ad, Bd = A3[0], B3[0]
        comm = np.linalg.norm(Ad @ Bd - Bd @ Ad)
        if comm <= 1e-12 * np.linalg.norm(Ad) * np.linalg.norm(Bd):
            # a common eigenbasis: eigenvectors of A + c B for a generic c separate the
            # eigenvalues that either matrix repeats
            c = math.pi / 3.0 * np.linalg.norm(Ad) / np.linalg.norm(Bd)
            _, U = _eig(Ad + c * Bd)
            a = np.einsum("ji,jk,ki->i", U, Ad, U)
            bb_ = np.einsum("ji,jk,ki->i", U, Bd, U)
            G = np.sqrt((bb_[:, None] + bb_[None, :]) / (a[:, None] + a[None, :]))
            out = _in_basis(T64, U, G)
        elif len(T64) == 0:  # no vector to transport (the ODE's error norm needs one)
            out = T64.copy()
        else:
            out = _bw_ode(T64, Ad, Bd, float(tol))
            _check_bw_isometry(T64, out, Ad, Bd)
    out = 0.5 * (out + out.swapaxes(-1, -2))
    return _linalg.check_finite(out, "transport").astype(dt).reshape(b + (n, n))


def upper(X) -> np.ndarray:
    r"""pyRiemann's ``upper``: the upper triangle of symmetric matrices as vectors, the
    off-diagonal entries weighted by :math:`\sqrt 2` (so the Euclidean norm of the vector is
    the Frobenius norm of the matrix), row by row.

    Parameters
    ----------
    X : array_like, shape (..., n, n)

    Returns
    -------
    ndarray, shape (..., n (n + 1) / 2)

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import upper
    >>> upper(np.array([[1.0, 2.0], [2.0, 3.0]]))
    array([1.        , 2.82842712, 3.        ])
    """
    X = np.asarray(X)
    if X.ndim < 2 or X.shape[-1] != X.shape[-2]:
        raise ValueError(f"X must hold square matrices (..., n, n); got shape {X.shape}")
    n = X.shape[-1]
    i, j = np.triu_indices(n)
    coef = np.where(i == j, 1.0, math.sqrt(2)).astype(
        X.dtype if X.dtype.kind == "f" else np.float64
    )
    return X[..., i, j] * coef


def unupper(T) -> np.ndarray:
    """Inverse of :func:`upper`: symmetric matrices from weighted upper-triangle vectors.

    Parameters
    ----------
    T : array_like, shape (..., n (n + 1) / 2)

    Returns
    -------
    ndarray, shape (..., n, n)

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import unupper
    >>> unupper(np.array([1.0, 2 ** 0.5, 3.0]))
    array([[1., 1.],
           [1., 3.]])
    """
    T = np.asarray(T)
    if T.ndim < 1:
        raise ValueError("T must have at least one dimension")
    d = T.shape[-1]
    n = round((math.sqrt(1 + 8 * d) - 1) / 2)
    if n * (n + 1) // 2 != d or d == 0:
        raise ValueError(f"T's last axis ({d}) is not n (n + 1) / 2 for an integer n >= 1")
    i, j = np.triu_indices(n)
    dt = T.dtype if T.dtype.kind == "f" else np.float64
    coef = np.where(i == j, 1.0, 1.0 / math.sqrt(2)).astype(dt)
    X = np.zeros(T.shape[:-1] + (n, n), dtype=dt)
    X[..., i, j] = T * coef
    X[..., j, i] = T * coef
    return X


def tangent_space(X, Cref, metric: str = "riemann", *, n_jobs=None) -> np.ndarray:
    """pyRiemann's ``tangent_space``: ``upper(log_map(X, Cref, metric))``.

    Parameters
    ----------
    X : array_like, shape (..., n, n)
        SPD matrices.
    Cref : array_like, shape (n, n) or (..., n, n)
        SPD reference point: one for all, or one per matrix (as :func:`log_map`).
    metric : {"riemann", "logeuclid", "wasserstein", "euclid"}, default "riemann"
    n_jobs : int, optional

    Returns
    -------
    ndarray, shape (..., n (n + 1) / 2)

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import tangent_space
    >>> np.round(tangent_space(np.diag([np.e, 1.0]), np.eye(2)), 12)
    array([1., 0., 0.])
    """
    return upper(log_map(X, Cref, metric, n_jobs=n_jobs))


def untangent_space(T, Cref, metric: str = "riemann", *, n_jobs=None) -> np.ndarray:
    """pyRiemann's ``untangent_space``: ``exp_map(unupper(T), Cref, metric)``.

    Parameters
    ----------
    T : array_like, shape (..., n (n + 1) / 2)
        Tangent vectors.
    Cref : array_like, shape (n, n) or (..., n, n)
        SPD reference point: one for all, or one per matrix (as :func:`log_map`).
    metric : {"riemann", "logeuclid", "wasserstein", "euclid"}, default "riemann"
    n_jobs : int, optional

    Returns
    -------
    ndarray, shape (..., n, n)

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import tangent_space, untangent_space
    >>> A = np.array([[2.0, 0.5], [0.5, 1.0]])
    >>> np.allclose(untangent_space(tangent_space(A, np.eye(2)), np.eye(2)), A)
    True
    """
    return exp_map(unupper(T), Cref, metric, n_jobs=n_jobs)
