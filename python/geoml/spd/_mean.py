"""Means of SPD matrices: affine-invariant (Karcher), log-Euclidean, Bures-Wasserstein."""

from __future__ import annotations

import math
import re
import warnings
from contextvars import ContextVar
from typing import NamedTuple

import numpy as np

from .._validation import check_int, check_tol, finite_sum, user_stacklevel
from . import _linalg
from ._distance import check_metric

MEAN_METRICS = ("riemann", "logeuclid", "wasserstein", "euclid")


class MeanResult(NamedTuple):
    """An iterative mean: ``mean`` (shape (..., n, n)), ``n_iter`` and ``converged`` (per
    set of matrices: arrays of the batch shape, or scalars for one set)."""

    mean: np.ndarray
    n_iter: np.ndarray | int
    converged: np.ndarray | bool


class ConvergenceWarning(UserWarning):
    """An iterative mean stopped at ``max_iter`` before meeting ``tol``."""


# The end of the ConvergenceWarning: what the public caller lets the user set (the estimators,
# which have no max_iter or tol, set their own for the duration of their mean: _advising)
_ADVICE: ContextVar[str] = ContextVar("geoml_spd_mean_advice", default="increase max_iter or tol")


def _sets(X, weights):
    """(X4, weights (S, m) normalised, batch): X (..., m, n, n) as (S, m, n, n)."""
    X3, batch = _linalg.as_batch(X, "X", min_ndim=3)
    n = X3.shape[-1]
    m = batch[-1]
    if m == 0:
        raise ValueError("X holds no matrices: at least one is needed for a mean")
    sets = batch[:-1]
    X4 = _linalg.upcast(X3, "X", batch).reshape((-1, m, n, n))  # (X[s, i] in its errors)
    if weights is None:
        w = np.full(m, 1.0 / m)
    else:
        w = np.asarray(weights)
        if w.dtype.kind not in "fiub":
            raise TypeError(f"weights must hold real numbers; got dtype {w.dtype}")
        w = w.astype(np.float64)
        if w.shape != (m,):
            raise ValueError(f"weights must have shape ({m},); got {w.shape}")
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError("weights must be finite and non-negative")
        # (finite weights whose sum overflows, two of 1e308: w / inf was all zero, and the
        # means came out as the identity, zero or "mean is not positive definite")
        w, total = finite_sum(w)
        if not total > 0:
            raise ValueError("weights must not all be zero")
        w = w / total
    return X4, w, sets, X3.dtype


def _single(M, func, power=1.0, n_jobs=0, name="mean"):
    """``f(M)`` of one iterate (float64, exactly symmetric), with the kernels' checks. LAPACK
    (``numpy.linalg.eigh``, ~0.1 ms on 22 x 22) rather than the lane solver, which pays a
    whole group of 32 lanes for one matrix (~0.4 ms): once or twice per iteration of a mean,
    serial, ~3 % of a 1,000-matrix BW barycenter's wall time. ``n_jobs`` is not used (one
    matrix)."""
    M = np.asarray(M)
    sym_tol = _linalg.SYM_TOL[M.dtype]
    F, status = _linalg._funm_np(M[None], None, func, power, sym_tol)
    _linalg.raise_status(status, name, ())
    F = F[0].astype(np.float64)
    return 0.5 * (F + F.T)


def _wsum(X, w, M, func, n_jobs, name="X", lower=False, psd=False):
    S, status = _linalg.funm_wsum(X, w, M, func=func, lower=lower, n_jobs=n_jobs)
    if psd and (status == 3).any():
        # the Bures-Wasserstein pass (func "sqrt"): M X M is positive semi-definite, only its
        # square root is taken; products that the kernel refused as not numerically definite
        # (the condition numbers of X and M^2 beyond 1 / eps: sets of condition 1e8 to 1e9
        # were refused) are taken as semi-definite (_linalg.whitened_psd), the sum in NumPy
        m = X.shape[0]
        lam, V = _linalg.whitened_psd(
            X,
            np.asarray(M)[None],
            np.arange(m),
            np.zeros(m, dtype=np.int64),
            lower=lower,
            vectors=True,
            name=name,
            n_jobs=n_jobs,
        )
        S = np.einsum("b,bij,bj,bkj->ik", w, V, np.sqrt(lam), V)
        return 0.5 * (S + S.T)
    if M is not None:
        _linalg.raise_whitened(status, X, name, n_jobs)  # (raise_status included)
    else:
        _linalg.raise_status(status, name)
    return 0.5 * (S + S.T)


def _finish(means, iters, conv, sets, dt, what, n):
    # (np.zeros for an empty batch of sets, X of shape (0, m, n, n): np.stack([]) failed)
    stacked = np.stack(means) if means else np.zeros((0, n, n))
    mean = _linalg.check_finite(stacked, what).reshape(sets + (n, n)).astype(dt)
    if not all(conv):
        warnings.warn(
            f"{what}: convergence not reached for {conv.count(False)} of {len(conv)} set(s); "
            + _ADVICE.get(),
            ConvergenceWarning,
            stacklevel=user_stacklevel(),
        )
    if sets == ():
        return MeanResult(mean, int(iters[0]), bool(conv[0]))
    return MeanResult(
        mean,
        np.asarray(iters, dtype=np.int64).reshape(sets),
        np.asarray(conv, dtype=bool).reshape(sets),
    )


def _named_in_set(err: ValueError, s: int, sets: tuple) -> ValueError:
    """``err`` of the set ``s`` of a batch of sets, a matrix named by its index in the set
    (``X[i]``), with that matrix named by its index in ``X`` (``X[s, i]``); ``err`` itself
    for one set or another message."""
    found = re.match(r"X\[(\d+)\]", str(err))
    if sets == () or found is None:
        return err
    where = tuple(int(k) for k in np.unravel_index(s, sets)) + (int(found.group(1)),)
    return ValueError(f"X[{', '.join(map(str, where))}]" + str(err)[found.end() :])


def _check_start(M, Xs, s: int, sets: tuple) -> None:
    """The start ``M`` of a mean of the set ``Xs`` (number ``s`` of the batch ``sets``) is
    finite unless some matrix of the set is not (the iterations check their iterates, which
    blamed "mean" for a NaN in X): name the first one. O(n^2) unless it is not."""
    if np.isfinite(M).all():
        return
    bad = np.flatnonzero(~np.isfinite(Xs).all(axis=(-2, -1)))
    if bad.size:
        where = tuple(int(i) for i in np.unravel_index(s, sets)) + (int(bad[0]),)
        raise ValueError(f"X[{', '.join(map(str, where))}] contains NaN or infinity")


def _check_init(init, n, dt):
    if init is None:
        return None
    I3, b = _linalg.as_batch(init, "init")
    if b != () or I3.shape[-1] != n:
        raise ValueError(f"init must have shape ({n}, {n}); got {np.shape(init)}")
    # its own checks (a NaN or indefinite init was reported as the iterate "mean")
    _, status = _linalg.funm(I3, func="sqrt")
    _linalg.raise_status(status, "init", ())
    return I3[0].astype(np.float64)


def _range_exponent(M, Xs):
    """``e`` such that ``M 2^-e`` (and the set) sits mid-range: 0 unless the largest entry of
    ``M`` (of ``Xs`` where ``M`` overflowed) is beyond ``2^+-500``. The Karcher mean is
    equivariant (``mean(c X) = c mean(X)``); near the ends of the float64 range its iteration
    overflowed (``G + G^T`` beyond the largest double: no convergence, or a NaN mean)."""
    top = float(np.max(np.abs(M)))
    if not np.isfinite(top):
        top = float(np.max(np.abs(Xs)))
    if top == 0.0 or 2.0**-500 <= top <= 2.0**500:
        return 0
    return int(np.frexp(top)[1])


def _karcher_step(Xs, w, M, nu, nj):
    """``(J, G)`` at ``M``: ``J = sum w log(M^-1/2 X M^-1/2)`` (up to a rotation that keeps
    its norm) and ``G = M^1/2 exp(nu J) M^1/2``; ``ValueError`` where ``M`` (or a matrix of
    ``Xs``) is not positive definite."""
    n = M.shape[-1]
    # with M = L L^T (Cholesky), L^-1 = Q^T M^-1/2 for an orthogonal Q, so J' =
    # sum w log(L^-1 X L^-T) = Q^T J Q (same norm) and M^1/2 exp(nu J) M^1/2 =
    # L exp(nu J') L^T: the same iterates, with a triangular congruence (cheaper)
    fac = _linalg.cholesky_pair(M) if n <= _linalg.SMALL_N else None
    if fac is not None:
        L, Li = fac
        J = _wsum(Xs, w, Li, "log", nj, lower=True)
        G = L @ _single(nu * J, "exp", n_jobs=nj) @ L.T
    else:
        M12 = _single(M, "sqrt", n_jobs=nj)
        J = _wsum(Xs, w, _single(M, "invsqrt", n_jobs=nj), "log", nj)
        G = M12 @ _single(nu * J, "exp", n_jobs=nj) @ M12
    return J, 0.5 * (G + G.T)


def _karcher_gradient(Xs, w, M, tol, max_iter, nj):
    """pyRiemann's gradient descent: ``M <- G``, its step rule for ``nu``. An iterate outside
    the numerical domain (some ``X_i`` not numerically definite once whitened by it: its
    logarithm has no correct digit) is not refused: the iteration goes back to the previous
    iterate with ``nu`` halved (pyRiemann's rule for a step that does not decrease; each
    retreat counts as an iteration). A start outside the domain raises (the input's error)."""
    nu, tau = 1.0, np.finfo(np.float64).max
    ok, it, prev = False, 0, None  # prev: the last iterate stepped from and its nu
    for it in range(1, max_iter + 1):  # noqa: B007 (it: the count after the loop)
        try:
            J, G = _karcher_step(Xs, w, M, nu, nj)
        except ValueError:
            if prev is None:  # at the start: the input's own error
                raise
            M, nu = prev[0], 0.5 * prev[1]
            prev = (M, nu)
            if nu <= tol:
                break
            continue
        prev, M = (M, nu), G
        crit = float(np.linalg.norm(J))
        h = nu * crit
        if h < tau:
            nu, tau = 0.95 * nu, h
        else:
            nu = 0.5 * nu
        if crit <= tol or nu <= tol:
            ok = crit <= tol
            break
    return M, it, ok


def _karcher_anderson(Xs, w, M, tol, max_iter, nj, mem=3):
    """The fixed point ``M = G(M)`` with Anderson acceleration (type II, memory ``mem``):
    ``M <- G_k - dG gamma``, ``gamma`` the least-squares fit of the residual ``F_k = G_k - M_k``
    by the differences ``dF`` of the last residuals. Safeguards, each clearing the history: a
    combined iterate whose ``||J||`` is not below the last one is dropped for the plain step
    ``G`` of the last accepted point; where a plain step does not decrease ``||J||``, ``nu`` is
    halved (pyRiemann's rule); an iterate outside the domain (not positive definite, or some
    ``X_i`` not numerically definite once whitened by it) sends the iteration back to the last
    accepted point with ``nu`` halved."""
    nu, prev, G_prev, last = 1.0, np.inf, None, None
    xs, gs = [], []
    ok, it, combined = False, 0, False
    for it in range(1, max_iter + 1):  # noqa: B007 (it: the count after the loop)
        try:
            J, G = _karcher_step(Xs, w, M, nu, nj)
        except ValueError:
            if last is None:  # at the start: the input's own error
                raise
            M, nu, prev, xs, gs, combined = last, 0.5 * nu, np.inf, [], [], False
            continue
        crit = float(np.linalg.norm(J))
        if crit <= tol or nu <= tol:
            ok = crit <= tol
            M = G
            break
        if crit >= prev:
            xs, gs = [], []
            if combined:
                M, combined = G_prev, False
                continue
            nu *= 0.5
        prev, G_prev, last = crit, G, M
        xs.append(M.ravel())
        gs.append(G.ravel())
        xs, gs = xs[-(mem + 1) :], gs[-(mem + 1) :]
        combined = len(xs) > 1
        if combined:
            F = np.stack(gs, 1) - np.stack(xs, 1)
            dF = np.diff(F, axis=1)
            dG = np.diff(np.stack(gs, 1), axis=1)
            gamma = np.linalg.lstsq(dF, F[:, -1], rcond=None)[0]
            M = (gs[-1] - dG @ gamma).reshape(G.shape)
            M = 0.5 * (M + M.T)
        else:
            M = G
    return M, it, ok


@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def mean_riemann(
    X,
    weights=None,
    *,
    method: str = "anderson",
    tol: float = 1e-8,
    max_iter: int = 50,
    init=None,
    n_jobs=None,
):
    r"""Affine-invariant (Karcher) mean of SPD matrices, weighted, batched over sets.

    Minimises :math:`\sum_i w_i d_R(M, X_i)^2`. From the weighted Euclidean mean, each
    iteration takes :math:`J = \sum_i w_i \log(M^{-1/2} X_i M^{-1/2})` (the batch pass) and
    :math:`G = M^{1/2} \exp(\nu J) M^{1/2}`, stopping when :math:`\|J\|_F \le` ``tol``
    (or the step ``nu`` falls below ``tol``) and returning that :math:`G`, as pyRiemann.
    ``method="gradient"`` is pyRiemann's gradient descent
    (``pyriemann.utils.mean.mean_riemann``: the same iterates, step rule for ``nu`` and
    stopping rule): :math:`M \leftarrow G`, except that an iterate outside the numerical
    domain (some whitened ``X_i`` not numerically definite: its logarithm has no correct
    digit, where pyRiemann goes on with it or raises) sends it back to the previous iterate
    with ``nu`` halved, as the Anderson method does, rather than refusing the set: on
    sets of condition ~1e12 it raised at its third iterate. ``method="anderson"`` (default)
    takes the same
    fixed point :math:`M = G(M)` (``nu = 1``) with Anderson acceleration (type II, memory 3,
    in the entries of :math:`M`); a combined iterate that does not decrease
    :math:`\|J\|_F` is replaced by the plain step, ``nu`` is halved where a plain step does
    not decrease it, and an iterate outside the domain (the whitened ``X_i`` not numerically
    definite) sends it back to the last accepted point with ``nu`` halved: 4 batch passes
    instead of 5-6 on 22 x 22 covariances, for the same mean to ~1e-10.

    Parameters
    ----------
    X : array_like, shape (..., m, n, n)
        Sets of ``m`` SPD matrices; leading axes are independent sets.
    weights : array_like, shape (m,), optional
        Non-negative weights (normalised to sum 1); None: equal.
    method : {"anderson", "gradient"}, default "anderson"
        The iteration (same fixed point and stopping rule).
    tol : float, default 1e-8
        Raised to ``10 n eps`` of the dtype when smaller (float32 cannot reach 1e-8).
    max_iter : int, default 50
    init : array_like, shape (n, n), optional
        Starting point (SPD); None: the weighted Euclidean mean.
    n_jobs : int, optional
        Threads (None: the OpenMP default, -1: all cores).

    Returns
    -------
    MeanResult
        ``mean`` (shape (..., n, n), dtype of ``X``), ``n_iter`` and ``converged``
        (``||J||_F <= tol`` reached; a :class:`ConvergenceWarning` otherwise).

    Raises
    ------
    ValueError
        For matrices that are not SPD, bad weights or parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import mean_riemann
    >>> res = mean_riemann(np.stack([np.diag([1.0, 4.0]), np.diag([4.0, 1.0])]))
    >>> np.round(res.mean, 10), res.converged
    (array([[2., 0.],
           [0., 2.]]), True)
    """
    if method not in ("anderson", "gradient"):
        raise ValueError(f"method must be 'anderson' or 'gradient'; got {method!r}")
    tol = check_tol(tol)
    max_iter = check_int(max_iter, "max_iter", low=1)
    nj = _linalg.jobs(n_jobs)
    X4, w, sets, dt = _sets(X, weights)
    n = X4.shape[-1]
    init = _check_init(init, n, dt)
    tol = max(tol, 10 * n * float(np.finfo(dt).eps))
    step = _karcher_gradient if method == "gradient" else _karcher_anderson
    means, iters, conv = [], [], []
    for s, Xs in enumerate(X4):
        try:
            M = np.einsum("i,ijk->jk", w, Xs) if init is None else init
            _check_start(M, Xs, s, sets)
            e = _range_exponent(M, Xs)  # a power of two: exact, the same iterates
            if e:
                Xs, M = np.ldexp(Xs, -e), np.ldexp(M, -e)
            M, it, ok = step(Xs, w, M, tol, max_iter, nj)
            means.append(np.ldexp(M, e) if e else M)
            iters.append(it)
            conv.append(ok)
        except ValueError as err:  # name the matrix by its index in X
            raise _named_in_set(err, s, sets) from None
    return _finish(means, iters, conv, sets, dt, "mean_riemann", n)


@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def mean_logeuclid(X, weights=None, *, n_jobs=None) -> np.ndarray:
    r"""Log-Euclidean mean :math:`\exp(\sum_i w_i \log X_i)` of SPD matrices, batched over sets.

    Parameters
    ----------
    X : array_like, shape (..., m, n, n)
        Sets of ``m`` SPD matrices.
    weights : array_like, shape (m,), optional
        Non-negative weights (normalised to sum 1); None: equal.
    n_jobs : int, optional
        Threads (None: the OpenMP default, -1: all cores).

    Returns
    -------
    ndarray, shape (..., n, n)
        The means, in the dtype of ``X``.

    Raises
    ------
    ValueError
        For matrices that are not SPD or bad weights.

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import mean_logeuclid
    >>> np.round(mean_logeuclid(np.stack([np.diag([1.0, 4.0]), np.diag([4.0, 1.0])])), 10)
    array([[2., 0.],
           [0., 2.]])
    """
    nj = _linalg.jobs(n_jobs)
    X4, w, sets, dt = _sets(X, weights)
    n = X4.shape[-1]
    out = []
    for s, Xs in enumerate(X4):
        try:
            L = _wsum(Xs, w, None, "log", nj)
            out.append(_single(L, "exp", n_jobs=nj))
        except ValueError as err:  # name the matrix by its index in X
            raise _named_in_set(err, s, sets) from None
    out = np.stack(out) if out else np.zeros((0, n, n))  # (an empty batch of sets)
    return out.reshape(sets + (n, n)).astype(dt)


_STALL = 10  # mean_wasserstein: iterations without a smaller step that make a stall


def _max_cond(Xs) -> float:
    """``max_i cond(X_i)`` (inf where some ``X_i`` is not numerically definite)."""
    lam = np.linalg.eigvalsh(Xs)
    if not (lam[:, 0] > 0).all():
        return math.inf
    return float(np.max(lam[:, -1] / lam[:, 0]))


def _at_rounding_floor(kappa, C, d_first, d_min, i_min) -> bool:
    """Whether a fixed-point iteration of the BW barycenter whose steps stopped decreasing
    (none below ``d_min``, taken at iteration ``i_min``, in ``_STALL`` iterations) has reached
    its rounding floor with the mean certified to ``1e-10 ||C||_F``.

    Rounding: ``d_min <= n eps sqrt(max_i cond(X_i)) ||C||_F`` (the matrix square roots of
    the iteration are accurate to ``eps sqrt(cond)`` relative; measured stalls sit at 0.03-0.1
    of ``eps sqrt(cond) ||C||_F`` for condition numbers 1e4 to 1e10). Accuracy: with the
    contraction rate ``rho = (d_min / d_first)^(1 / (i_min - 1))`` (the mean rate of the
    steps' decrease), the distance to the fixed point ``d_min / (1 - rho)`` is at most
    ``1e-10 ||C||_F`` (issue 20's accuracy against POT). Called only on a stall (not on data
    whose steps meet ``tol``: those results are unchanged), so ``kappa`` (``_max_cond``,
    taken once, at the first stall) costs nothing on ordinary data."""
    n = C.shape[-1]
    eps = float(np.finfo(np.float64).eps)
    norm = float(np.linalg.norm(C))
    if not d_min <= n * eps * math.sqrt(kappa) * norm:
        return False
    if i_min < 2 or not d_min < d_first:
        return False
    rho = (d_min / d_first) ** (1.0 / (i_min - 1))
    return d_min <= 1e-10 * norm * (1.0 - rho)


@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def mean_wasserstein(
    X,
    weights=None,
    *,
    method: str = "alvarez_esteban",
    tol: float | None = None,
    max_iter: int = 1000,
    init=None,
    n_jobs=None,
):
    r"""Bures-Wasserstein barycenter of SPD matrices (fixed point), weighted, batched over sets.

    The barycenter is the fixed point :math:`C = \sum_i w_i (C^{1/2} X_i C^{1/2})^{1/2}`.
    ``method="alvarez_esteban"`` (default) iterates the fixed point of Alvarez-Esteban et al.
    (2016), :math:`C \leftarrow C^{-1/2} (\sum_i w_i (C^{1/2} X_i C^{1/2})^{1/2})^2 C^{-1/2}`,
    whose contraction is much stronger (8 iterations to a step of 1e-13 on 22 x 22
    covariances, where POT's takes 54), and returns the last iterate. ``method="pot"`` is
    POT's fixed point (``ot.gaussian.bures_wasserstein_barycenter``, ``method="fixed_point"``):
    :math:`C \leftarrow \sum_i w_i (C^{1/2} X_i C^{1/2})^{1/2}`, returning the last ``C``
    before the step that met ``tol``, as POT does. Both stop when
    :math:`\|C_{new} - C\|_F \le` ``tol``. POT starts from ``mean(w_i X_i)`` (the weighted
    sum divided by ``m``); geoml's default start is the weighted Euclidean mean
    :math:`\sum_i w_i X_i`, and ``init`` takes any SPD start (with ``method="pot"``, pass
    POT's to reproduce its iterates exactly).

    Parameters
    ----------
    X : array_like, shape (..., m, n, n)
        Sets of ``m`` SPD matrices (covariances of Gaussians).
    weights : array_like, shape (m,), optional
        Non-negative weights (normalised to sum 1); None: equal.
    method : {"alvarez_esteban", "pot"}, default "alvarez_esteban"
        The fixed-point iteration (same fixed point).
    tol : float, optional
        Frobenius norm of the last step; None: ``min(1e-10, 1e-10 ||C_0||_F)``
        (``"alvarez_esteban"``: relative for matrices of small scale, e.g. covariances of
        signals in volts) or 1e-7 (``"pot"``, POT's absolute ``eps``). Raised to
        ``10 n eps ||C_0||_F`` (``eps`` of the dtype, ``C_0`` the start) when smaller. Sets
        with entries beyond ``2^+-500`` are solved scaled by a power of two (the barycenter
        is equivariant), ``tol`` with them. On ill-conditioned sets the steps can stall at
        the iteration's rounding noise (about ``0.1 eps sqrt(cond(X_i)) ||C||_F``) above that
        floor: after 10 iterations without a smaller step the iteration stops, converged
        when the smallest step is within ``n eps sqrt(max_i cond(X_i)) ||C||_F`` (rounding)
        and the distance to the fixed point it implies, ``step / (1 - rate)`` (``rate`` the
        mean contraction of the steps so far), within ``1e-10 ||C||_F``.
    max_iter : int, default 1000
    init : array_like, shape (n, n), optional
        Starting point (SPD).
    n_jobs : int, optional
        Threads (None: the OpenMP default, -1: all cores).

    Returns
    -------
    MeanResult
        ``mean`` (shape (..., n, n)), ``n_iter`` and ``converged`` (``tol`` met, or the
        rounding floor reached as described under ``tol``; a :class:`ConvergenceWarning`
        when not).

    Raises
    ------
    ValueError
        For matrices that are not SPD, bad weights or parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import mean_wasserstein
    >>> res = mean_wasserstein(np.stack([np.diag([1.0, 9.0]), np.diag([9.0, 1.0])]))
    >>> np.round(res.mean, 8), res.converged
    (array([[4., 0.],
           [0., 4.]]), True)
    """
    if method not in ("alvarez_esteban", "pot"):
        raise ValueError(f"method must be 'alvarez_esteban' or 'pot'; got {method!r}")
    ae = method == "alvarez_esteban"
    relative = tol is None and ae  # the default 1e-10 is also relative: see below
    if tol is None:
        tol = 1e-10 if ae else 1e-7
    tol = check_tol(tol)
    max_iter = check_int(max_iter, "max_iter", low=1)
    nj = _linalg.jobs(n_jobs)
    X4, w, sets, dt = _sets(X, weights)
    n = X4.shape[-1]
    init = _check_init(init, n, dt)
    means, iters, conv = [], [], []
    for s, Xs in enumerate(X4):
        try:
            C = np.einsum("i,ijk->jk", w, Xs) if init is None else init
            _check_start(C, Xs, s, sets)
            # the barycenter is equivariant (mean(c X) = c mean(X)): a set beyond 2^+-500 is
            # scaled by a power of two (exact), as the Karcher mean is (1e200 matrices overflowed,
            # 1e-200 ones were refused as "not numerically whitened"), tol with it
            e = _range_exponent(C, Xs)
            tol_s = tol
            if e:
                Xs, C, tol_s = np.ldexp(Xs, -e), np.ldexp(C, -e), math.ldexp(tol, -e)
            if relative:
                # the default tol is at most 1e-10 ||C_0||_F: the absolute 1e-10 alone stopped
                # covariances of scale 1e-10 (EEG in volts) after 2 steps, 0.3 % off the
                # barycenter (1.5 % at 1e-12, after one step), with converged=True
                tol_s = min(tol_s, 1e-10 * float(np.linalg.norm(C)))
            floor = 10 * n * float(np.finfo(dt).eps) * np.linalg.norm(C)
            ok, it = False, 0
            d_first, d_min, i_min, kappa = None, np.inf, 0, None  # the stall rule
            for it in range(1, max_iter + 1):
                # with C = R^T R, R lower triangular (the Cholesky factor of C reversed), R =
                # Q C^1/2 for an orthogonal Q = R C^-1/2, so T = sum w (R X R^T)^1/2 = Q S Q^T
                # with S = sum w (C^1/2 X C^1/2)^1/2: POT's step is Q^T T Q, Alvarez-Esteban's
                # C^-1/2 S^2 C^-1/2 = R^-1 T^2 R^-T (C^-1/2 Q^T = R^-1): the same iterates, with a
                # triangular congruence
                fac = _linalg.cholesky_pair(C[::-1, ::-1]) if n <= _linalg.SMALL_N else None
                if fac is not None:
                    R = np.ascontiguousarray(fac[0][::-1, ::-1].T)
                    T = _wsum(Xs, w, R, "sqrt", nj, lower=True, psd=True)
                    if ae:
                        Ri = fac[1][::-1, ::-1].T
                        Cnew = Ri @ (T @ T) @ Ri.T
                    else:
                        Q = R @ _single(C, "invsqrt", n_jobs=nj)
                        Cnew = Q.T @ T @ Q
                else:
                    S = _wsum(Xs, w, _single(C, "sqrt", n_jobs=nj), "sqrt", nj, psd=True)
                    if ae:
                        Cm12 = _single(C, "invsqrt", n_jobs=nj)
                        Cnew = Cm12 @ (S @ S) @ Cm12
                    else:
                        Cnew = S
                Cnew = 0.5 * (Cnew + Cnew.T)
                d = float(np.linalg.norm(C - Cnew))
                if d <= max(tol_s, floor):
                    ok = True
                    if ae:
                        C = Cnew
                    break
                if d_first is None:
                    d_first = d
                if d < d_min:
                    d_min, i_min = d, it
                elif it - i_min >= _STALL:
                    # the steps stopped decreasing above the floor: rounding noise of an
                    # ill-conditioned set (cond 1e8: 7 of 12 random sets ran to max_iter)?
                    if kappa is None:
                        kappa = _max_cond(Xs[w > 0])  # (the matrices in the sum)
                    if _at_rounding_floor(kappa, Cnew, d_first, d_min, i_min):
                        ok = True
                        if ae:
                            C = Cnew
                        break
                C = Cnew
            means.append(np.ldexp(C, e) if e else C)
            iters.append(it)
            conv.append(ok)
        except ValueError as err:  # name the matrix by its index in X
            raise _named_in_set(err, s, sets) from None
    return _finish(means, iters, conv, sets, dt, "mean_wasserstein", n)


@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def mean(X, weights=None, *, metric: str = "riemann", n_jobs=None, **kwargs) -> np.ndarray:
    """The mean of SPD matrices under ``metric`` (the array only; see :func:`mean_riemann`,
    :func:`mean_logeuclid`, :func:`mean_wasserstein` for the options and flags).

    Parameters
    ----------
    X : array_like, shape (..., m, n, n)
        Sets of SPD matrices.
    weights : array_like, shape (m,), optional
    metric : {"riemann", "logeuclid", "wasserstein", "euclid"}, default "riemann"
    n_jobs : int, optional
    **kwargs
        ``tol``, ``max_iter``, ``init`` of the iterative means.

    Returns
    -------
    ndarray, shape (..., n, n)

    Examples
    --------
    >>> import numpy as np
    >>> from geoml.spd import mean
    >>> mean(np.stack([np.eye(2), 3 * np.eye(2)]), metric="euclid")
    array([[2., 0.],
           [0., 2.]])
    """
    metric = check_metric(metric, MEAN_METRICS)
    if metric == "riemann":
        return mean_riemann(X, weights, n_jobs=n_jobs, **kwargs).mean
    if metric == "wasserstein":
        return mean_wasserstein(X, weights, n_jobs=n_jobs, **kwargs).mean
    if kwargs:
        raise TypeError(f"unexpected arguments for metric={metric!r}: {sorted(kwargs)}")
    if metric == "logeuclid":
        return mean_logeuclid(X, weights, n_jobs=n_jobs)
    X4, w, sets, dt = _sets(X, weights)
    nj = _linalg.jobs(n_jobs)
    n = X4.shape[-1]
    # SPD check, the bad matrix named by its index in X ("X[1]" was the second of any set)
    _, status = _linalg.funm(X4.reshape((-1, n, n)), func="sqrt", n_jobs=nj)
    _linalg.raise_status(status, "X", sets + (X4.shape[1],))
    return np.einsum("i,sijk->sjk", w, X4).reshape(sets + (n, n)).astype(dt)
