"""Smallest eigenpairs of graph Laplacians (``geoml.laplacian_eigsh``), the Laplacian route of
``geoml.eigsh(which="SA")`` and ``geoml.spectral_embedding`` (scikit-learn's meaning)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse as sp

from .. import _core
from .._validation import (
    as_real,
    check_bool,
    check_int,
    check_n_jobs,
    check_tol,
    random_seed,
    reject_gpu,
    single_threaded_blas,
    user_stacklevel,
    validate_random_state,
)
from ._amg import _AMG_MAX_ITER, _spmm
from ._eigsh import (
    _CHECK_FAILED,
    _CHECK_FAILED_ARRAY,
    EigshResult,
    _as_csr,
    _check_tol,
    _early_stop_advice,
    _EigshWork,
    _rounding_note,
    _unshared,
)
from ._laplacian import _KINDS, _affinity_csr, _degrees, _normalised_shift, _null_space
from ._lsym import _amg_lobpcg_run, _lsym_smallest, _sign_flip

_METHODS = ("auto", "lobpcg-amg", "lanczos")
_DENSE_MAX_N = 128  # "auto": graphs this small are solved densely (numpy.linalg.eigh)


def _dense_smallest(W: sp.csr_matrix, k: int, kind: str, Z: np.ndarray):
    """k smallest eigenpairs of the (symmetric or combinatorial) Laplacian by dense ``eigh``,
    the null space ``Z`` (n, c) put in exactly as the first c eigenvectors."""
    from ._laplacian import laplacian

    c = Z.shape[1]
    w, V = np.linalg.eigh(laplacian(W, kind=kind).toarray().astype(np.float64))
    V = V[:, c:k]
    C = Z.T @ V
    V -= Z @ C  # numerically orthogonal already; make it exact
    # then V^T V = I - C^T C: re-orthonormalise only when that is not I to rounding (the QR
    # of a 4,000 x 2,500 block cost about as much as the eigh itself)
    if C.size and float(np.abs(C).max()) > 1e-9:
        V, _ = np.linalg.qr(V)
    return np.concatenate([np.zeros(c), w[c:k]])[:k], np.hstack([Z, V])[:, :k]


def _lcomb_smallest(W, k, *, tol, random_state, n_jobs, method, max_iter, advice="raise max_iter"):
    """k smallest eigenpairs of ``L = D - W`` (``W`` validated CSR, no diagonal): the null
    space (``1_C / sqrt|C|`` per connected component ``C``) put in exactly, the rest by
    multilevel LOBPCG + AMG on the RCM-renumbered ``L`` (near-null vector ``1``), or by Lanczos
    for the smallest eigenvalues deflated against the null space (``method="lanczos"``, and
    the fallback when LOBPCG has not converged). ``tol`` is relative to ``max(d)`` (``||L||``
    lies in ``[max d, 2 max d]``). Returns (eigenvalues (k,), eigenvectors (n, k), d,
    converged, info). ``advice``: the non-convergence warning's advice (see
    ``_rounding_note``)."""
    n = W.shape[0]
    d = _degrees(W)
    perm, labels, ncomp = _core.rcm_components(W.indptr, W.indices)
    Z = _null_space(labels, ncomp, np.ones(n))
    info = {"components": ncomp, "n_matvec": 0, "n_iter": 0}
    if ncomp >= k:
        return np.zeros(k), Z[:, :k], d, True, info
    kk = k - ncomp
    atol = tol * max(float(d.max()), 1e-300)
    nt = check_n_jobs(n_jobs)
    seed = random_seed(random_state)
    if method != "lanczos":
        Wp = W[perm][:, perm]
        L = sp.csr_matrix(sp.diags(d[perm]) - Wp)
        L.sort_indices()
        with single_threaded_blas():
            w, V, res, n_iter, n_mv, conv = _amg_lobpcg_run(
                L, np.ones(n), Z, perm, kk, atol, _AMG_MAX_ITER, seed, nt
            )
        if conv:
            info.update(n_matvec=int(n_mv), n_iter=int(n_iter), method="lobpcg-amg")
            return np.concatenate([np.zeros(ncomp), w]), np.hstack([Z, V]), d, True, info
    L = sp.csr_matrix(sp.diags(d) - W)
    L.sort_indices()
    ip, ix = L.indptr, L.indices
    if ip.dtype != np.int64:
        ip, ix = ip.astype(np.int32), ix.astype(np.int32)
    options = _core.LanczosOptions(
        k=kk,
        which=_core.Which.SA,
        tol=tol,
        max_iter=max_iter,
        seed=seed,
    )
    out = _core.eigsh_csr(
        L.data, ip, ix, options=options, deflate=np.ascontiguousarray(Z), n_jobs=nt
    )
    w, V, res, n_iter, n_mv, conv, _, _ = out
    info.update(n_matvec=int(n_mv), n_iter=int(n_iter), method="lanczos")
    if not conv:
        warnings.warn(
            f"the Laplacian eigensolver did not converge in {n_iter} restart cycles "
            f"(largest residual {res.max():.3g}, tol {atol:.3g})"
            + _rounding_note(
                float(res.max()),
                float(d.max()),
                advice=_early_stop_advice(int(n_iter), options.max_iter, advice),
            ),
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return (
        np.concatenate([np.zeros(ncomp), w]),
        np.hstack([Z, V.reshape(n, kk)]),
        d,
        bool(conv),
        info,
    )


def _smallest(
    W, k, kind, *, tol, random_state, n_jobs, method="auto", max_iter=1000, advice="raise max_iter"
):
    """k smallest eigenpairs of the symmetric (``"symmetric"``) or combinatorial Laplacian of
    the validated CSR affinity ``W``: (eigenvalues, eigenvectors, d, converged, info).
    ``advice``: what the Lanczos non-convergence warning advises (``""`` for callers without
    ``max_iter``: "loosen tol" only)."""
    n = W.shape[0]
    dense = method == "auto" and n <= _DENSE_MAX_N
    if not dense:
        ncomp = _core.rcm_components(W.indptr, W.indices)[2]
        # the iterative paths need k - c < n - c non-null pairs with room to spare; beyond
        # half of them the dense solver, whatever n: the k eigenvectors are n k >= n^2 / 2
        # values, and a Krylov method would need a basis of order n (O(n^3) either way)
        dense = ncomp < k and k - ncomp > max(1, (n - ncomp) // 2)
    if dense:
        d = _degrees(W)
        _, labels, ncomp = _core.rcm_components(W.indptr, W.indices)
        Z = _null_space(labels, ncomp, d if kind == "symmetric" else np.ones(n))
        w, V = _dense_smallest(W, k, kind, Z)
        return w, V, d, True, {"components": ncomp, "n_matvec": 0, "n_iter": 0, "method": "dense"}
    if kind == "symmetric":
        return _lsym_smallest(
            W,
            k,
            tol=tol,
            random_state=random_state,
            n_jobs=n_jobs,
            max_iter=max_iter,
            method=method,
            advice=advice,
        )
    return _lcomb_smallest(
        W,
        k,
        tol=tol,
        random_state=random_state,
        n_jobs=n_jobs,
        method=method,
        max_iter=max_iter,
        advice=advice,
    )


def _residual_norms(W, d, kind, w, V, nt) -> np.ndarray:
    """||L v - lambda v|| for each column (``L`` of ``kind``; random walk: ``L = I - D^-1 W``)."""
    WV = _spmm(W, V, nt)
    iso = d == 0
    if kind == "combinatorial":
        R = d[:, None] * V - WV
    elif kind == "symmetric":
        s = np.where(iso, 0.0, 1.0 / np.sqrt(np.where(iso, 1.0, d)))
        R = np.where(iso[:, None], 0.0, V) - s[:, None] * _spmm(W, s[:, None] * V, nt)
    else:
        dinv = np.where(iso, 0.0, 1.0 / np.where(iso, 1.0, d))
        R = np.where(iso[:, None], 0.0, V) - dinv[:, None] * WV
    return np.linalg.norm(R - V * w, axis=0)


def laplacian_eigsh(
    W,
    k: int = 6,
    *,
    kind: str = "symmetric",
    tol: float | None = None,
    method: str = "auto",
    max_iter: int | None = None,
    random_state=None,
    n_jobs: int | None = None,
    check: bool = True,
) -> EigshResult:
    """The k smallest eigenpairs of the graph Laplacian of a symmetric affinity matrix.

    The Laplacian is that of :func:`geoml.laplacian` (self-loops ignored; an isolated node
    has an all-zero row, so it is a component of its own). Its null space is known in closed
    form: one vector per connected component ``C`` (``D^1/2 1_C`` for ``"symmetric"``,
    ``1_C`` for ``"combinatorial"`` and ``"random_walk"``, normalised), so a graph with ``c``
    components gets exactly ``c`` zero eigenvalues, each with its exact eigenvector (the first
    ``min(c, k)`` columns, in the order of the components' lowest node). The other eigenpairs
    come from multilevel LOBPCG preconditioned by smoothed-aggregation algebraic multigrid
    built from the graph, kept orthogonal to the null space (the estimators' path, see
    ``docs/design/eigensolver.md``), or, for the normalised Laplacian below 10,000 nodes,
    from Chebyshev-filtered Lanczos on ``D^-1/2 W D^-1/2``. Graphs of at most 128 nodes are
    solved densely, and so is any graph when ``k - c`` is more than half of ``n - c``
    (``numpy.linalg.eigh`` of the dense Laplacian: ``O(n^2)`` memory and ``O(n^3)`` time,
    for any ``method``; an iterative solver would need a basis of order ``n`` there).

    Parameters
    ----------
    W : sparse matrix or array-like of shape (n, n)
        Symmetric (to 1e-8 relative) non-negative affinities, no NaN/inf; the diagonal is
        ignored.
    k : int
        Number of eigenpairs, ``1 <= k < n``.
    kind : {"symmetric", "combinatorial", "random_walk"}
        ``I - D^-1/2 W D^-1/2``, ``D - W`` or ``I - D^-1 W``.
    tol : float, optional
        Residual tolerance (default ``1e-10``): ``||L v - lambda v|| <= tol`` for the
        normalised Laplacians, ``<= tol * max(d)`` for the combinatorial one.
    method : {"auto", "lobpcg-amg", "lanczos"}
        ``"auto"``: dense up to 128 nodes; LOBPCG + AMG for ``"combinatorial"`` and from
        10,000 nodes on for the normalised kinds, Lanczos below. ``"lobpcg-amg"`` and
        ``"lanczos"`` force that solver (LOBPCG falls back to Lanczos if it does not
        converge in 200 iterations).
    max_iter : int, optional
        Lanczos restart cycles at most (default 1000).
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
    n_jobs : int, optional
        Threads (None: OpenMP default; -1: all cores).
    check : bool, default True
        After the Lanczos solver, run :func:`geoml.eigsh`'s deflated block check on the
        symmetric (or combinatorial) Laplacian: an eigenvalue among the k smallest that
        Lanczos missed (a repeated non-zero eigenvalue, e.g. of identical components, which
        a single-vector start sees once) is found and converged, with the same guarantee as
        there (``check_passed``, ``miss_gap``). Not run after the dense solver (exact) nor
        after LOBPCG + AMG (a block method, its block wider than ``k``; the check would
        double its time at n = 100,000), where ``check_passed`` is None. False: no check.

    Returns
    -------
    EigshResult
        ``eigenvalues`` (k,) ascending, ``eigenvectors`` (n, k), ``residual_norms`` (k,)
        (computed with ``L``), ``converged``, ``n_iter``, ``n_matvec``, and the check's
        ``check_passed``, ``n_added``, ``miss_gap``; unpacks as ``w, V``.
        The eigenvectors are orthonormal, except for ``"random_walk"`` (not symmetric):
        there they are ``D^-1/2 u`` for the orthonormal eigenvectors ``u`` of the symmetric
        Laplacian, i.e. ``D``-orthonormal (``V.T @ D @ V = I``; ``u = e_i`` for an isolated
        node ``i``). ``anorm`` is the scale ``tol`` is relative to (1 or ``max(d)``).
        float64 whatever the dtype of ``W`` (:func:`geoml.eigsh`'s Laplacian route returns
        float32 for float32 input).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, geoml
    >>> path = sp.diags([np.ones(99), np.ones(99)], [-1, 1], format="csr")
    >>> W = sp.block_diag([path, path], format="csr")  # two components
    >>> w, V = geoml.laplacian_eigsh(W, 3, kind="combinatorial", random_state=0)
    >>> np.round(w, 6)
    array([0.      , 0.      , 0.000987])
    """
    validate_random_state(random_state)
    return _laplacian_eigsh(
        W,
        k,
        kind=kind,
        tol=tol,
        method=method,
        max_iter=max_iter,
        random_state=random_state,
        n_jobs=n_jobs,
        check=check,
    ).result()


def _laplacian_eigsh(
    W,
    k,
    *,
    kind,
    tol,
    method,
    max_iter,
    random_state,
    n_jobs,
    check,
) -> _EigshWork:
    """:func:`laplacian_eigsh`'s work, its fields still open to the routes' changes."""
    if kind not in _KINDS:
        raise ValueError(f"kind={kind!r}; choose 'symmetric', 'combinatorial' or 'random_walk'")
    if method not in _METHODS:
        raise ValueError(f"method={method!r}; choose 'auto', 'lobpcg-amg' or 'lanczos'")
    W = _affinity_csr(W)
    n = W.shape[0]
    if n < 2:
        raise ValueError(f"W is {n} x {n}; laplacian_eigsh needs n >= 2")
    k = check_int(k, "k", low=1, high=n - 1, hint=f" (W is {n} x {n})")
    tol = _check_tol(tol, np.float64)
    max_iter = 1000 if max_iter is None else check_int(max_iter, "max_iter", low=1)
    nt = check_n_jobs(n_jobs)
    W = sp.csr_matrix(W, dtype=np.float64)
    W.sort_indices()
    deg = _check_degrees(W, "W")
    dmax = float(deg.max(initial=0.0))
    # the combinatorial Laplacian is solved for W / 2^e ~ W / max(d) (exact scaling, so that
    # tiny or huge weights do not underflow in the block algebra); eigenvalues scaled back.
    # The normalised ones do not depend on the scale of W: for degrees out of [2^-400, 2^400]
    # (subnormal weights: 1 / d overflowed, NaN eigenvalues reported as converged) they are
    # solved for W / 4^e, the same operator, and nothing is scaled back (_normalised_shift)
    if kind == "combinatorial":
        shift = int(np.frexp(dmax)[1]) if dmax > 0 else 0
    else:
        shift = _normalised_shift(deg, kind)
    Ws = (
        W if shift == 0 else sp.csr_matrix((np.ldexp(W.data, -shift), W.indices, W.indptr), W.shape)
    )
    solve_kind = "combinatorial" if kind == "combinatorial" else "symmetric"
    w, V, d, conv, info = _smallest(
        Ws,
        k,
        solve_kind,
        tol=tol,
        random_state=random_state,
        n_jobs=n_jobs,
        method=method,
        max_iter=max_iter,
    )
    w = np.maximum(w, 0.0)
    V = np.ascontiguousarray(V)
    anorm = float(d.max()) if kind == "combinatorial" else 1.0
    # residuals and the check on the scaled problem (the residuals of weights near 1e200
    # overflowed in the norm's squares: inf, and converged=False on eigsh's route), then
    # the eigenvalues, residuals and scale back by 2^shift (exact)
    res = _residual_norms(Ws, d, solve_kind, w, V, nt)
    out = _EigshWork(w, V, int(info["n_iter"]), res, bool(conv), int(info["n_matvec"]), anorm)
    out._solver = info.get("method")  # for eigsh's check on the Laplacian route
    if check and conv and out._solver == "lanczos":
        _check_laplacian(out, Ws, d, solve_kind, k, tol, random_seed(random_state), nt)
    if shift and kind == "combinatorial":
        out.eigenvalues = np.ldexp(out.eigenvalues, shift)
        out.residual_norms = np.ldexp(out.residual_norms, shift)
        out.anorm = math.ldexp(out.anorm, shift)
        if math.isfinite(out.miss_gap):
            out.miss_gap = math.ldexp(out.miss_gap, shift)
    if kind == "random_walk":
        # D^-1/2 u with W's own degrees: (d / 2^shift)^-1/2 u / 2^(shift / 2), shift even
        V = out.eigenvectors / np.where(d > 0, np.sqrt(d), 1.0)[:, None]
        out.eigenvectors = np.ascontiguousarray(np.ldexp(V, -(shift // 2)) if shift else V)
        # (I - D^-1 W is the same matrix for the scaled W and degrees)
        out.residual_norms = _residual_norms(Ws, d, kind, out.eigenvalues, out.eigenvectors, nt)
    return out


def _check_laplacian(out, W, d, kind, k, tol, seed, nt, failed=_CHECK_FAILED):
    """:func:`geoml.eigsh`'s deflated block check ("SA") on ``out``, the k smallest pairs of
    the symmetric or combinatorial Laplacian of ``W`` (degrees ``d``); updates ``out``.
    ``failed``: the warning when the check fails (at the caller's line outside geoml)."""
    from ._eigsh import _check_routed

    iso = d == 0
    s = np.where(iso, 0.0, 1.0 / np.sqrt(np.where(iso, 1.0, d)))

    def matmat(X):
        if kind == "combinatorial":
            return d[:, None] * X - _spmm(W, np.ascontiguousarray(X), nt)
        SX = np.ascontiguousarray(s[:, None] * X)
        return np.where(iso[:, None], 0.0, X) - s[:, None] * _spmm(W, SX, nt)

    anorm = out.anorm
    c = int(np.count_nonzero(out.eigenvalues == 0.0))  # the exact null space, first columns
    _check_routed(out, matmat, W.shape[0], k, "SA", tol, np.float64, seed, 4, 20, failed)
    # pairs the check added are Rayleigh quotients: keep the null space's zeros exact
    out.eigenvalues = np.maximum(out.eigenvalues, 0.0)
    out.eigenvalues[:c] = 0.0
    out.anorm = anorm  # the documented scale (1 or max(d)) of the residual test
    out.converged = bool(out.converged and (out.residual_norms <= tol * anorm).all())


def _smallest_checked(W, k, kind, *, tol, random_state, n_jobs):
    """:func:`_smallest` followed by the deflated block check after the Lanczos solver (as
    :func:`laplacian_eigsh`): ``(eigenvalues, eigenvectors, d)`` of the symmetric or
    combinatorial Laplacian, for :func:`spectral_embedding` (its warnings name it and point
    at its caller; it has no ``max_iter`` and returns no ``converged`` field)."""
    got = _smallest(W, k, kind, tol=tol, random_state=random_state, n_jobs=n_jobs, advice="")
    solve = {"tol": tol, "random_state": random_state, "n_jobs": n_jobs}
    return _checked(W, k, kind, got, **solve, who="spectral_embedding")[:3]


def _checked(W, k, kind, got, *, tol, random_state, n_jobs, who="geoml"):
    """``got = (w, V, d, converged, info)`` of :func:`_smallest` or ``_lsym_smallest`` with the
    deflated block check run after their Lanczos solver (a single-vector method: a repeated
    eigenvalue can be missed); the same tuple, pairs updated. Dense, LOBPCG + AMG and GPU
    results are returned as they are. A failed check warns ``_CHECK_FAILED_ARRAY`` for the
    caller ``who`` (its result is an array: no ``converged`` field to name), pointing at the
    caller's line outside geoml."""
    w, V, d, conv, info = got
    if not conv or info.get("method") != "lanczos" or not isinstance(V, np.ndarray):
        return got
    W = sp.csr_matrix(W, dtype=np.float64)
    nt = check_n_jobs(n_jobs)
    tol = _check_tol(tol, np.float64)
    res = _residual_norms(W, d, kind, w, V, nt)
    anorm = float(d.max()) if kind == "combinatorial" else 1.0
    out = _EigshWork(w, np.ascontiguousarray(V), 0, res, True, int(info["n_matvec"]), anorm)
    out._solver = "lanczos"
    failed = _CHECK_FAILED_ARRAY.format(who=who)
    _check_laplacian(out, W, d, kind, k, tol, random_seed(random_state), nt, failed)
    return out.eigenvalues, out.eigenvectors, d, out.converged, info


def _check_degrees(W, name: str) -> np.ndarray:
    """The degrees (row sums) of ``W`` (:func:`_degrees`); ValueError when one overflows."""
    d = _degrees(W)
    if not np.isfinite(d).all():
        raise ValueError(f"the degrees (row sums of {name}) overflow float64; rescale {name}")
    return d


# ----------------------------------------------------------------------------- eigsh route
def _laplacian_structure(A: sp.csr_matrix):
    """``(kind, W)`` when the symmetric CSR ``A`` is recognisably a graph Laplacian, else None.

    ``"combinatorial"``: non-negative diagonal, non-positive off-diagonal entries and zero row
    sums (to ``100 eps`` of the row's absolute sum); ``W = -offdiag(A)``.
    ``"symmetric"``: every row either has unit diagonal and non-positive off-diagonals, or is
    all zero (an isolated node), and ``A = I - D^-1/2 P D^-1/2`` for the 0/1 pattern ``P`` of
    its off-diagonals (``D`` the row counts), i.e. ``A d^1/2 = 0`` with ``d`` read off the
    pattern: the normalised Laplacian of an unweighted graph; ``W = P``. (A weighted
    normalised Laplacian does not reveal its degrees without solving for its null space:
    it takes the general path.) Costs a few passes over the entries.
    """
    n = A.shape[0]
    eps = np.finfo(A.dtype).eps
    rows = np.repeat(np.arange(n), np.diff(A.indptr))
    off = A.indices != rows
    if not off.any():
        return None
    odata = A.data[off]
    if odata.max() > 0:
        return None
    diag = A.diagonal().astype(np.float64)
    if diag.min() < 0:
        return None
    orows, ocols = rows[off], A.indices[off]
    offsum = np.bincount(orows, odata.astype(np.float64), minlength=n)
    absrow = np.abs(diag) + np.abs(offsum)
    if np.all(np.abs(diag + offsum) <= 100 * eps * absrow):
        W = sp.csr_matrix((-odata.astype(np.float64), (orows, ocols)), shape=(n, n))
        return "combinatorial", W
    cnt = np.bincount(orows, minlength=n).astype(np.float64)
    iso = cnt == 0
    if not (np.all(diag[iso] == 0) and np.all(np.abs(diag[~iso] - 1) <= 100 * eps)):
        return None
    expect = 1.0 / np.sqrt(cnt[orows] * cnt[ocols])
    if not np.all(np.abs(-odata - expect) <= 100 * eps * expect):
        return None
    W = sp.csr_matrix((np.ones(odata.size), (orows, ocols)), shape=(n, n))
    return "symmetric", W


def _laplacian_route(A, k, *, tol, max_iter, random_state, n_jobs):
    """``eigsh(A, k, which="SA")`` through :func:`laplacian_eigsh` when the symmetric CSR ``A``
    is a graph Laplacian (:func:`_laplacian_structure`); None otherwise. The route's residual
    test is at least as strict as the general path's ``tol * ||A||``."""
    found = _laplacian_structure(A)
    if found is None:
        return None
    kind, W = found
    if k >= W.shape[0]:
        return None
    out = _laplacian_eigsh(
        W,
        k,
        kind=kind,
        method="auto",
        tol=tol,
        max_iter=max_iter,
        random_state=random_state,
        n_jobs=n_jobs,
        check=False,  # eigsh runs the check on A
    )
    # as the general path: eigenvectors in A's dtype (eigsh casts the eigenvalues at its end)
    out.eigenvectors = out.eigenvectors.astype(A.dtype, copy=False)
    return out


def _adjacency_structure(A: sp.csr_matrix):
    """The 0/1 pattern ``P`` when the symmetric CSR ``A`` is recognisably the normalised
    adjacency ``D^-1/2 P D^-1/2`` of an unweighted graph without isolated nodes (zero
    diagonal, every off-diagonal entry ``1 / sqrt(d_i d_j)`` to ``100 eps`` with ``d`` the
    pattern's row counts, every row non-empty), else None. Then ``I - A`` is the normalised
    Laplacian of ``P``: the largest eigenpairs of ``A`` are ``1 - mu`` for its smallest
    ``mu``, with the same eigenvectors. Costs a few passes over the entries."""
    n = A.shape[0]
    if A.nnz == 0:
        return None
    eps = np.finfo(A.dtype).eps
    rows = np.repeat(np.arange(n), np.diff(A.indptr))
    off = A.indices != rows
    if np.any(A.data[~off] != 0):
        return None
    odata = A.data[off].astype(np.float64)
    if odata.size == 0 or odata.min() <= 0:
        return None
    orows, ocols = rows[off], A.indices[off]
    cnt = np.bincount(orows, minlength=n).astype(np.float64)
    if cnt.min() == 0:  # an isolated node: eigenvalue 0 of A, but its Laplacian row is 0
        return None
    expect = 1.0 / np.sqrt(cnt[orows] * cnt[ocols])
    if not np.all(np.abs(odata - expect) <= 100 * eps * expect):
        return None
    return sp.csr_matrix((np.ones(odata.size), (orows, ocols)), shape=(n, n))


def _adjacency_route(A, k, *, tol, max_iter, random_state, n_jobs):
    """``eigsh(A, k, which="LA")`` through :func:`laplacian_eigsh` (``kind="symmetric"``)
    when the symmetric CSR ``A`` is the normalised adjacency of an unweighted graph
    (:func:`_adjacency_structure`); None otherwise. ``||A||_2 = 1`` (the Laplacian's
    scale), and ``||A v - (1 - mu) v|| = ||L v - mu v||``: the route's residual test is the
    general path's ``tol * ||A||``."""
    P = _adjacency_structure(A)
    if P is None or k >= P.shape[0]:
        return None
    out = _laplacian_eigsh(
        P,
        k,
        kind="symmetric",
        method="auto",
        tol=tol,
        max_iter=max_iter,
        random_state=random_state,
        n_jobs=n_jobs,
        check=False,  # eigsh runs the check on A
    )
    rev = slice(None, None, -1)  # mu ascending -> 1 - mu ascending
    out.eigenvalues = np.ascontiguousarray(1.0 - out.eigenvalues[rev])
    out.eigenvectors = np.ascontiguousarray(out.eigenvectors[:, rev], dtype=A.dtype)
    out.residual_norms = np.ascontiguousarray(out.residual_norms[rev])
    return out


# ----------------------------------------------------------------------------- embedding
def _adjacency_csr(adjacency) -> sp.csr_matrix:
    """Validated float64 CSR adjacency: square, real, finite, non-negative, symmetrised with
    scikit-learn's ``check_symmetric`` warning when it is not symmetric; diagonal dropped."""
    reject_gpu(adjacency, "adjacency", "spectral_embedding")
    if not sp.issparse(adjacency):
        if isinstance(adjacency, (str, bytes)) or adjacency is None:
            raise TypeError(
                f"adjacency must be a sparse matrix or an array; got {type(adjacency).__name__}"
            )
        adjacency = as_real(np.asarray(adjacency), "adjacency")
        if adjacency.ndim != 2:
            raise ValueError(f"adjacency must be a 2-D square matrix; got shape {adjacency.shape}")
    A = _unshared(_as_csr(adjacency, "adjacency", dtype=np.float64), adjacency)
    if A.shape[0] < 2:
        raise ValueError(f"adjacency is {A.shape[0]} x {A.shape[0]}; at least 2 nodes are needed")
    if A.nnz and A.data.min() < 0:
        raise ValueError("adjacency has negative entries; affinities must be >= 0")
    A.eliminate_zeros()  # an explicit zero is no edge
    A.sort_indices()
    if A.nnz:
        T = A.T.tocsr()  # sorted indices
        same = np.array_equal(A.indptr, T.indptr) and np.array_equal(A.indices, T.indices)
        if not same or np.abs(A.data - T.data).max() > 1e-10:
            diff = abs(A - T)
            if diff.nnz and diff.max() > 1e-10:  # scikit-learn's check_symmetric(tol=1e-10)
                warnings.warn(
                    "Array is not symmetric, and will be converted to symmetric by average "
                    "with its transpose.",
                    UserWarning,
                    stacklevel=user_stacklevel(),
                )
                A = sp.csr_matrix((A + T) * 0.5)
    diag = A.diagonal()
    if diag.any():  # self-loops are ignored, as in scipy.sparse.csgraph.laplacian
        A = sp.csr_matrix(A - sp.diags(diag))
        A.eliminate_zeros()
    A.sort_indices()
    return A


def spectral_embedding(
    adjacency,
    n_components: int = 8,
    *,
    norm_laplacian: bool = True,
    drop_first: bool = True,
    random_state=None,
    tol: float | None = None,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Spectral embedding of a graph: ``sklearn.manifold.spectral_embedding``'s result, faster.

    The same computation as scikit-learn: the eigenvectors of the ``n_components`` (+1 with
    ``drop_first``) smallest eigenvalues of the Laplacian of ``adjacency`` (self-loops
    ignored), the symmetric normalised one ``I - D^-1/2 A D^-1/2`` divided row-wise by
    ``sqrt(d)`` (so the eigenvectors of the random-walk Laplacian) when ``norm_laplacian``,
    else ``D - A``; each column's largest-magnitude entry made positive
    (scikit-learn's ``_deterministic_vector_sign_flip``); the first column dropped with
    ``drop_first``. As in scikit-learn, an isolated node of a normalised embedding has
    Laplacian diagonal 1 (eigenvalue 1, eigenvector ``e_i``) and a not fully connected graph
    gets the ``UserWarning`` "Graph is not fully connected, spectral embedding may not work
    as expected." (its null space has one dimension per component: the first columns then
    span the component indicators, ``D^-1/2``-scaled, in a basis of geoml's choosing where
    scikit-learn's is ARPACK's). The solver is :func:`laplacian_eigsh`'s (null space exact,
    LOBPCG + AMG or Lanczos), not ARPACK shift-invert.

    Parameters
    ----------
    adjacency : sparse matrix or array-like of shape (n_samples, n_samples)
        Non-negative affinities. Not symmetric: averaged with its transpose, with
        scikit-learn's warning.
    n_components : int, default 8
        Columns of the embedding; ``n_components + drop_first < n_samples``.
    norm_laplacian : bool, default True
    drop_first : bool, default True
        Drop the first eigenvector (constant times ``D^-1/2`` on a connected graph).
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
        Seeds the iterative solver (the result does not depend on it beyond ``tol``).
    tol : float, optional
        Residual tolerance of the eigensolver (default ``1e-9``, see
        :func:`laplacian_eigsh`): on the benchmark swiss roll (n = 100,000) the embedding is
        then within a principal angle of 5e-8 of scikit-learn's ARPACK one (1e-10: 5e-9,
        two more LOBPCG iterations).
    n_jobs : int, optional
        Threads (None: OpenMP default; -1: all cores).

    Returns
    -------
    ndarray of shape (n_samples, n_components)
        float32 for a float32 ``adjacency`` (computed in float64, then rounded: scikit-learn
        keeps float32 too), else float64.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, geoml
    >>> path = sp.diags([np.ones(199), np.ones(199)], [-1, 1], format="csr")
    >>> Y = geoml.spectral_embedding(path, n_components=2, random_state=0)
    >>> Y.shape
    (200, 2)
    >>> bool(np.all(np.diff(Y[:, 0]) < 0) or np.all(np.diff(Y[:, 0]) > 0))  # monotone
    True
    """
    validate_random_state(random_state)
    norm_laplacian = check_bool(norm_laplacian, "norm_laplacian")
    drop_first = check_bool(drop_first, "drop_first")
    in_dtype = getattr(adjacency, "dtype", None)
    out_dtype = (
        np.float32 if isinstance(in_dtype, np.dtype) and in_dtype.type is np.float32 else np.float64
    )
    W = _adjacency_csr(adjacency)
    n = W.shape[0]
    if n - 1 - int(drop_first) < 1:  # (n = 2 with drop_first: no component is left)
        raise ValueError(
            f"the graph has {n} nodes: with drop_first=True spectral_embedding needs n >= 3 "
            "(it solves for n_components + 1 < n eigenvectors); pass drop_first=False"
        )
    k = check_int(
        n_components,
        "n_components",
        low=1,
        high=n - 1 - int(drop_first),
        hint=f" (the graph has {n} nodes{', and drop_first adds one' if drop_first else ''})",
    ) + int(drop_first)
    tol = check_tol(tol, default=1e-9, dtype=np.float64, allow_zero=True)
    check_n_jobs(n_jobs)
    d = _check_degrees(W, "adjacency")
    if _core.rcm_components(W.indptr, W.indices)[2] > 1:
        warnings.warn(
            "Graph is not fully connected, spectral embedding may not work as expected.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    solve = {"tol": tol, "random_state": random_state, "n_jobs": n_jobs}
    if not norm_laplacian:
        if d.max() > 0:  # exact power-of-two scaling: the eigenvectors do not change
            W = sp.csr_matrix(
                (np.ldexp(W.data, -int(np.frexp(d.max())[1])), W.indices, W.indptr), W.shape
            )
        _, U, _ = _smallest_checked(W, k, "combinatorial", **solve)
        Y = U
    else:
        iso = d == 0
        # the normalised Laplacian does not depend on the scale of W: degrees out of
        # [2^-400, 2^400] (subnormal weights: 1 / sqrt(d) overflowed, NaN residuals and no
        # convergence) are solved for W / 2^shift (exact, shift even); U D^-1/2 scaled back
        shift = _normalised_shift(d, "symmetric")
        if shift:
            W = sp.csr_matrix((np.ldexp(W.data, -shift), W.indices, W.indptr), W.shape)
        if not iso.any():
            _, U, ds = _smallest_checked(W, k, "symmetric", **solve)
            Y = np.ldexp(U / np.sqrt(ds)[:, None], -(shift // 2))
        else:
            # scikit-learn sets the diagonal of the normalised Laplacian to 1: an isolated
            # node is an eigenpair (1, e_i) rather than a null vector
            keep = np.flatnonzero(~iso)
            lam = np.ones(0)
            Ys = np.zeros((keep.size, 0))
            if keep.size >= 2:
                Wk = sp.csr_matrix(W[keep][:, keep])
                kk = min(k, keep.size - 1)
                lam, U, dk = _smallest_checked(Wk, kk, "symmetric", **solve)
                Ys = np.ldexp(U / np.sqrt(dk)[:, None], -(shift // 2))
            lam = np.concatenate([lam, np.ones(int(iso.sum()))])
            order = np.argsort(lam, kind="stable")[:k]
            Y = np.zeros((n, k))
            iso_idx = np.flatnonzero(iso)
            for j, c in enumerate(order):
                if c < Ys.shape[1]:
                    Y[keep, j] = Ys[:, c]
                else:
                    Y[iso_idx[c - Ys.shape[1]], j] = 1.0
    Y = _sign_flip(np.asarray(Y, dtype=np.float64))
    return np.ascontiguousarray(Y[:, 1:k] if drop_first else Y[:, :k], dtype=out_dtype)
