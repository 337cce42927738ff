"""The deflated block check of :func:`geoml.eigsh` (multiplicity safety).

A single-vector Krylov method sees one vector of a repeated eigenvalue per start vector, so
after the Lanczos pairs converge :func:`eigsh` runs block Krylov cycles from a random block
orthogonal to every pair found; Ritz values of that deflated space that are more wanted than
the k-th returned eigenvalue are eigenvalues that were missed: they are converged by
thick-restarted block Krylov iterations in the same deflated space, merged with the others, and the
check starts again from a fresh random block (twice as wide when it found as many as its
width). The guarantee and its failure probability are stated in ``docs/design/eigensolver.md``
and in the docstring of :func:`eigsh`.

The code is written against an array module (NumPy or CuPy, read off the arrays it is given):
the n-row blocks stay where they are (host or device) and only the small projected matrices
and per-column norms come to the host, so the GPU ``eigsh`` runs the same check as the CPU one
and the CPU tests exercise it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Failure probability at which ``miss_gap`` is stated (Kuczynski-Wozniakowski bound).
_MISS_PROB = 1e-6


def want_key(which: str, theta: np.ndarray) -> np.ndarray:
    """Sort key: smaller = more wanted."""
    theta = np.asarray(theta, dtype=np.float64)
    if which == "LA":
        return -theta
    if which == "SA":
        return theta
    return -np.abs(theta)


@dataclass
class CheckReport:
    """What the deflated block check did (see :class:`EigshResult`)."""

    passed: bool = False
    n_added: int = 0
    block: int = 0
    steps: int = 0
    rounds: int = 0
    n_matvec: int = 0
    miss_gap: float = math.inf


def kw_miss_gap(anorm: float, n_free: int, block: int, steps: int, margin: float) -> float:
    """The gap ``delta`` such that a final check of ``block`` Gaussian columns and ``steps``
    block Krylov steps in an ``n_free``-dimensional space misses an eigenvalue more wanted
    than the k-th returned one by ``delta`` or more with probability at most ``_MISS_PROB``.

    Kuczynski & Wozniakowski (1992), Thm 4.2(a): for a PSD matrix ``B`` and a random start,
    the largest Ritz value ``theta`` of the Krylov space of dimension ``q`` satisfies
    ``P(theta <= (1 - eps) lambda_max(B)) <= 1.648 sqrt(N) exp(-sqrt(eps) (2q - 1))``. The block
    space contains the Krylov space of each of its ``block`` independent columns, so the
    probability is at most that bound to the power ``block``; it is applied to
    ``B = A - lambda_min`` (LA), ``lambda_max - A`` (SA) or both (LM, union bound), whose
    spectra lie in ``[0, 2 ||A||]``.
    """
    if steps < 1 or block < 1 or n_free < 1:
        return math.inf
    logp = math.log(_MISS_PROB / 2.0)  # /2: union bound over both ends (LM)
    s = (-logp / block + math.log(1.648 * math.sqrt(n_free))) / (2 * steps - 1)
    eps = min(1.0, s * s)
    return margin + 2.0 * anorm * eps


def array_module(a):
    """NumPy, or CuPy for a CuPy array (imported only then)."""
    if type(a).__module__.split(".")[0] == "cupy":
        import cupy

        return cupy
    return np


def to_host(a) -> np.ndarray:
    """A NumPy copy (or view) of a NumPy or CuPy array."""
    return a.get() if array_module(a) is not np else np.asarray(a)


def _tall(*arrays) -> bool:
    """Whether the filtered check's tall-skinny kernels (``_core.tall_gram`` /
    ``tall_sub``: two threads, the same bits for any count) take these arrays: NumPy float64
    with contiguous columns (the check's Fortran-ordered buffers and their column slices)."""
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype != np.float64 or a.ndim != 2:
            return False
        if a.shape[0] > 1 and a.strides[0] != 8:
            return False
        if a.shape[1] > 1 and (a.strides[1] % 8 or a.strides[1] < 8 * a.shape[0]):
            return False
    return True


def _gram(A, B, nt):
    """``A^T B`` on the host (``_core.tall_gram`` on NumPy blocks with contiguous columns)."""
    if nt is not None and _tall(A, B):
        from geoml import _core

        return _core.tall_gram(A, B, n_jobs=nt)
    return to_host(A.T @ B)


def _sub_mm(Y, A, M, nt):
    """``Y -= A M`` in place (``M`` small, on the host; ``_core.tall_sub`` where it applies)."""
    if nt is not None and _tall(Y, A):
        from geoml import _core

        _core.tall_sub(Y, A, np.ascontiguousarray(M, dtype=np.float64), n_jobs=nt)
        return Y
    Y -= A @ array_module(A).asarray(M)
    return Y


class _Space:
    """Orthonormal columns (float64) that the check stays orthogonal to."""

    def __init__(self, D, nt=None):
        self.xp = array_module(D)
        self.nt = nt  # threads of the tall-skinny kernels (None: the array module's products)
        if nt is None:
            self.D = self.xp.ascontiguousarray(D, dtype=np.float64)
        else:
            self.D = self.xp.asfortranarray(D, dtype=np.float64)

    def project(self, X, passes: int = 2):
        if self.D.shape[1]:
            for _ in range(passes):
                X -= self.D @ (self.D.T @ X)
        return X

    def project_dgks(self, X):
        """``X`` minus its components in the space: one classical Gram-Schmidt pass, and a
        second only when the first removed more than 1e-3 of what is left (the rounding a pass
        leaves is ``eps`` times what it removed plus what is left, so a pass that removed
        little needs no second: "twice is enough" where it did)."""
        return self.project_gram(X)[0]

    def project_gram(self, X):
        """:meth:`project_dgks`, and ``X^T X`` of the result (host)."""
        nt = self.nt
        if self.D.shape[1]:
            C = _gram(self.D, X, nt)
            _sub_mm(X, self.D, C, nt)
            G = _gram(X, X, nt)
            if math.sqrt(float((C * C).sum())) > 1e-3 * math.sqrt(max(float(np.trace(G)), 0.0)):
                _sub_mm(X, self.D, _gram(self.D, X, nt), nt)
                G = _gram(X, X, nt)
            return X, G
        return X, _gram(X, X, nt)

    def add(self, U) -> None:
        U = self.project(self.xp.array(U, dtype=np.float64))
        Q, _ = _orthonormal(U, 1e-8)
        D = self.xp.hstack([self.D, Q])
        self.D = self.xp.ascontiguousarray(D) if self.nt is None else self.xp.asfortranarray(D)


def _orthonormal(
    X, rel: float, ref: float | None = None, max_cols: int | None = None, smin: list | None = None
):
    """An orthonormal basis of the columns of X (thin QR, then the SVD of the small R;
    directions with singular value below ``rel * ref`` dropped; ``ref`` defaults to the
    largest column norm of X; at most the ``max_cols`` leading directions kept). ``smin``:
    a list that receives the smallest kept singular value over ``ref``."""
    if X.shape[1] == 0:
        return X, 0
    xp = array_module(X)
    if ref is None:
        ref = float(xp.sqrt((X * X).sum(axis=0)).max()) if X.size else 0.0
    if not ref > 0:
        return X[:, :0], 0
    Qx, R = xp.linalg.qr(X)
    Ur, s, _ = np.linalg.svd(to_host(R))  # singular values of X, descending
    nkeep = int((s > rel * ref).sum())
    if max_cols is not None:
        nkeep = min(nkeep, max_cols)
    if smin is not None:
        smin.append(float(s[nkeep - 1]) / ref if nkeep else 1.0)
    return xp.ascontiguousarray(Qx @ xp.asarray(Ur[:, :nkeep])), nkeep


def _zero(a):
    a[...] = 0.0
    return a


def _orthonormal_gram(W, G, rel: float, ref: float, nt, tmp=None, out=None):
    """:func:`_orthonormal` of ``W`` given its Gram matrix ``G = W^T W``: when ``W`` is well
    conditioned (singular values within 1e-4 of each other and above ``100 rel ref``, so the
    QR path would keep every column: the same decision), two Cholesky-QR passes
    (``W V diag(s)^-1`` from the eigenpairs of ``G``, then ``X R^-1`` with ``X^T X = R^T R``:
    orthonormal to rounding for condition numbers far beyond 1e4), on the tall-skinny kernels;
    otherwise :func:`_orthonormal` (thin QR and the SVD of ``R``). ``tmp`` / ``out``: blocks of
    ``W``'s shape with contiguous columns for the first pass / the result (else new ones)."""
    w = W.shape[1]
    lam, V = np.linalg.eigh((G + G.T) / 2)  # ascending
    if not (
        w
        and np.isfinite(lam).all()
        and lam[0] > 1e-8 * lam[-1]
        and lam[0] > (100.0 * rel * ref) ** 2
    ):
        return _orthonormal(W, rel, ref)
    xp = array_module(W)
    X = xp.zeros(W.shape, order="F") if tmp is None else _zero(tmp)
    _sub_mm(X, W, -(V[:, ::-1] / np.sqrt(lam[::-1])), nt)
    L = np.linalg.cholesky(_gram(X, X, nt))  # X^T X = L L^T
    Y = xp.zeros(W.shape, order="F") if out is None else _zero(out)
    _sub_mm(Y, X, -np.linalg.inv(L).T, nt)
    return Y, w


def _krylov(matmat, X, space: _Space, steps: int, prefix=None, width: int | None = None):
    """Block Krylov basis Q (orthonormal, orthogonal to the space) of ``steps`` blocks from X
    and A Q; returns (Q, AQ, products). Q and AQ are column slices of preallocated
    Fortran-ordered buffers (no re-concatenation per step: the BLAS calls read them as
    they are). ``prefix = (U, AU)``: orthonormal columns already in the space (kept Ritz
    vectors of a thick restart) and their products, placed first; the blocks from X are
    orthogonalised against them too. ``width``: at most that many leading directions of X."""
    xp = array_module(X)
    n = X.shape[0]
    p = 0 if prefix is None else prefix[0].shape[1]
    X = space.project(X)
    if p:
        U = prefix[0]
        for _ in range(2):
            X -= U @ (U.T @ X)
    X, _ = _orthonormal(X, 1e-8, max_cols=width)
    cap = p + X.shape[1] * steps  # block widths never grow
    if cap == 0:
        return None, None, 0
    Qb = xp.empty((n, cap), order="F")
    AQb = xp.empty((n, cap), order="F")
    if p:
        Qb[:, :p] = prefix[0]
        AQb[:, :p] = prefix[1]
    c, nmv = p, 0
    for j in range(steps):
        w = X.shape[1]
        if w == 0:
            break
        Qb[:, c : c + w] = X
        AX = matmat(X)
        nmv += w
        AQb[:, c : c + w] = AX
        c += w
        if j == steps - 1:
            break
        W = AX.copy()
        nrm = float(xp.sqrt((W * W).sum(axis=0)).max())
        Q = Qb[:, :c]
        for _ in range(2):  # classical Gram-Schmidt against the space and Q, twice
            W = space.project(W, passes=1)
            W -= Q @ (Q.T @ W)
        smin: list = []
        X, _ = _orthonormal(W, 1e-10, nrm if nrm > 0 else None, smin=smin)
        if X.shape[1] and smin[0] < 1e-3:
            # a direction kept after cancelling more than 3 digits: the two passes left
            # components ~eps along Q and the space, which its normalisation amplified by up
            # to 1e10; once more on the normalised block (the basis nearly filling the
            # deflated space, ~1e-11 off orthonormal: Ritz values above the spectrum and a
            # residual stuck above tol, 20 components of 221 nodes)
            X = space.project(X, passes=1)
            X -= Q @ (Q.T @ X)
            X, _ = _orthonormal(X, 0.5, 1.0)
    return Qb[:, :c], AQb[:, :c], nmv


def _host_eigh(H):
    """``numpy.linalg.eigh`` of the small symmetric ``H`` (ascending), and where its LAPACK
    ``dsyevd`` reports no convergence, SciPy's ``dsyevr`` (then ``dsyev``). Measured: the
    check's 420 x 420 Ritz matrix of a spectrum of 12-fold clusters (six 300-node cycles'
    normalised adjacency, ``eigsh(S, 24, ncv=42, random_state=2)``) made NumPy 2's OpenBLAS
    ``dsyevd`` fail (``LinAlgError: Eigenvalues did not converge``, raised to the user),
    while ``dsyevr`` and ``dsyev`` solve it."""
    try:
        return np.linalg.eigh(H)
    except np.linalg.LinAlgError:
        import scipy.linalg

        try:
            return scipy.linalg.eigh(H, driver="evr")
        except np.linalg.LinAlgError:
            return scipy.linalg.eigh(H, driver="ev")


def _ritz(Q, AQ, which):
    """Ritz values (host, most wanted first) and vectors' coefficients (on Q's side)."""
    H = to_host(Q.T @ AQ)  # small: solved on the host
    H = (H + H.T) / 2
    theta, Y = _host_eigh(H)
    order = np.argsort(want_key(which, theta), kind="stable")
    return theta[order], array_module(Q).asarray(np.ascontiguousarray(Y[:, order]))


# residuals below this times ||A|| are at float64's rounding level (eigsh's warnings say so too)
_ROUNDING_LEVEL = 100 * float(np.finfo(np.float64).eps)


def deflated_check(
    matmat,
    n: int,
    w: np.ndarray,
    V: np.ndarray,
    res: np.ndarray,
    k: int,
    *,
    which: str,
    tol: float,
    anorm: float,
    rng: np.random.Generator,
    block: int,
    steps: int,
    budget: int = 0,
    max_rounds: int = 64,
    max_cycles: int = 200,
):
    """Checks (and completes) the k pairs ``(w, V)`` with residuals ``res``: returns
    (w, V, report); pairs with ``res > max(tol, 100 eps) * anorm`` are dropped and found
    again.

    ``matmat(X)`` returns A X (float64) for an (n, b) float64 block. ``budget``: products
    a passing check may spend on restarts (the first cycle is always run). ``V`` is a NumPy
    or CuPy array (the blocks live where it does: ``matmat`` takes and returns that kind);
    ``w`` and ``res`` may be either and the returned eigenvalues are NumPy."""
    xp = array_module(V)
    report = CheckReport(block=block, steps=steps)
    scale = max(anorm, np.finfo(np.float64).tiny)
    # pairs that did not converge are dropped (and found again below); a residual at float64's
    # rounding level (<= 100 eps ||A||) counts as converged here and when the check locks a
    # pair: found again it would not get lower (with tol = 0, i.e. 10 eps, the check dropped
    # such Lanczos pairs, could not converge them again and failed after ~20 s, warning of a
    # missed eigenvalue; eigsh now reports converged=False against tol, a rounding warning)
    tol_lock = max(tol, _ROUNDING_LEVEL)
    ok = to_host(res) <= tol_lock * scale
    W_all = to_host(w).astype(np.float64)[ok].copy()
    V_all = xp.array(V[:, xp.asarray(np.flatnonzero(ok))], dtype=np.float64)
    space = _Space(V_all)
    margin = 10.0 * tol * scale
    for _ in range(max_rounds):
        need = k - W_all.shape[0]  # > 0: fewer than k converged pairs yet
        keys = np.sort(want_key(which, W_all))
        kth = keys[k - 1] if need <= 0 else np.inf  # key of the k-th most wanted found
        n_free = n - space.D.shape[1]
        if n_free <= 0:
            report.passed = True
            break
        b = min(block, n_free)
        st = max(1, min(steps, n_free // b))
        report.rounds += 1
        X = xp.asarray(rng.standard_normal((n, b)))  # drawn on the host: same on any device
        Q, AQ, nmv = _krylov(matmat, X, space, st)
        report.n_matvec += nmv
        if Q is None:
            report.passed = True
            break
        theta, Y = _ritz(Q, AQ, which)
        cand = int((want_key(which, theta) < kth - margin).sum())
        # Nothing yet: restart (thick: from the b most wanted Ritz vectors, so the most
        # wanted Ritz value never gets worse) until the most wanted Ritz pair of the deflated
        # space converges, or the check has used as many products as the solve before it.
        spent = nmv
        while cand == 0 and need <= 0 and spent < budget and Q.shape[1] > b:
            u = Q @ Y[:, 0]
            r = AQ @ Y[:, 0] - float(theta[0]) * u
            if float(xp.sqrt(r @ r)) <= 100 * tol * scale:
                break
            Q, AQ, nmv = _krylov(matmat, Q @ Y[:, :b], space, st)
            report.n_matvec += nmv
            spent += nmv
            if Q is None:
                break
            prev = want_key(which, theta[:1])[0]
            theta, Y = _ritz(Q, AQ, which)
            cand = int((want_key(which, theta) < kth - margin).sum())
            # stagnation: the best Ritz value moved by less than 5% of its distance to the
            # k-th pair (an eigenvalue above the k-th would keep pulling it up)
            best = want_key(which, theta[:1])[0]
            if cand == 0 and prev - best < 0.05 * (best - kth):
                break
        if need > 0:
            cand = min(max(need, 1), theta.shape[0])
        if cand == 0:
            report.passed = True
            report.block, report.steps = b, st
            report.miss_gap = kw_miss_gap(anorm, n_free, b, st, margin)
            break
        # Missed eigenvalues: converge the `cand` most wanted Ritz pairs of the deflated
        # space by restarted block Krylov (block = cand + guards), then lock them.
        # Thick restart (Krylov-Schur-like): the `keep` most wanted unlocked Ritz vectors stay
        # in the basis with their known products, and the next blocks grow from the residuals
        # of the `nb` most wanted (in exact arithmetic the residuals of all Ritz vectors lie
        # in the span of the next Krylov block, `nb` wide). Restarting from `nb`
        # vectors alone converged too slowly on clustered doubled spectra (a 2,001-node
        # cycle graph's normalised Laplacian: 200 cycles without locking a copy).
        nb = min(max(b, cand + 2), n_free)
        st2 = max(2, min(steps, n_free // nb))
        keep = min(max(nb, nb * st2 // 2), n_free - nb)
        Xc = Q @ Y[:, :nb]
        prefix = None
        found_vals, found_vecs = [], []
        for _cycle in range(max_cycles):
            Q, AQ, nmv = _krylov(matmat, Xc, space, st2, prefix, width=nb)
            report.n_matvec += nmv
            if Q is None:
                break
            theta, Y = _ritz(Q, AQ, which)
            # Ritz values of the deflated space more wanted than the k-th pair found so far
            # are missed eigenvalues too (interlacing), also those the first count did not
            # see yet (a cluster resolves as the space improves): converge them as well; and
            # only them: pairs locked here raise the k-th, and candidates that fall behind it
            # are no longer needed (counting against the first k-th instead, a start vector
            # in the invariant subspace of the lower half of diag(1..n) had the check converge
            # n / 4 pairs for k = 3: 4 s at n = 1,000, over 5 minutes at 2,000). A missed
            # eigenvalue among those left is found by the next round's fresh check.
            cur = np.concatenate([W_all, *found_vals])
            if cur.shape[0] >= k:
                kth_cur = np.sort(want_key(which, cur))[k - 1]
                cand = int((want_key(which, theta) < kth_cur - margin).sum())
            m = min(cand, theta.shape[0])
            U = Q @ Y[:, :m]
            R = AQ @ Y[:, :m] - U * xp.asarray(theta[:m])
            res = to_host(xp.sqrt((R * R).sum(axis=0)))
            conv = res <= tol_lock * scale
            # lock the converged leading pairs (in order, so the space stays consistent)
            nconv = int(np.argmin(conv)) if not conv.all() else m
            if nconv:
                found_vals.append(theta[:nconv])
                found_vecs.append(U[:, :nconv])
                space.add(U[:, :nconv])
                cand -= nconv
            if cand <= 0:
                break
            p = min(keep, Q.shape[1] - nconv)
            if p <= 0:
                break
            sel = Y[:, nconv : nconv + p]
            Uk, AUk = Q @ sel, AQ @ sel
            # the next block: the residuals of the `nb` most wanted of them (not the leading
            # directions of all `p` residuals: in floating point those are the unconverged
            # tail's, and a nearly converged wanted pair whose residual fell outside them
            # stayed just above tol for good: 14 copies of 1 in a 225-row graph)
            q = min(nb, p)
            Xc = AUk[:, :q] - Uk[:, :q] * xp.asarray(theta[nconv : nconv + q])
            prefix = (space.project(Uk, passes=1), AUk)
        if found_vals:
            vals = np.concatenate(found_vals)
            vecs = xp.hstack(found_vecs)
            W_all = np.concatenate([W_all, vals])
            V_all = xp.hstack([V_all, vecs])
            report.n_added += vals.shape[0]
        else:
            break  # could not converge the missed pairs: report not passed
        if vals.shape[0] >= b - 1:
            block = 2 * block  # a cluster at least as wide as the block: widen it
            report.block = block
    # the k most wanted of everything found
    sel = np.argsort(want_key(which, W_all), kind="stable")[:k]
    Vk = V_all[:, xp.asarray(sel)]
    return W_all[sel], Vk, report


# ----------------------------------------------------------------- the filtered check
# The filtered check stops restarting once the best Ritz pair of P(A) has a residual below
# this fraction of its distance to the threshold (it has settled on an eigenvalue below it).
_P_CONVERGED = 0.01


class ChebFilter:
    """``P(t) = T_d((t - c) / e)`` (unscaled Chebyshev polynomial of even degree ``d``) on
    an interval ``[c - e, c + e]``: ``|P| <= 1`` there, ``P > 1`` outside it and ``P``
    increasing in ``|t - c|``. Even ``d`` makes ``P(A) + 1`` positive semi-definite for any
    symmetric ``A``, whatever its spectrum."""

    def __init__(self, lower: float, cut: float, degree: int):
        if degree < 2 or degree % 2:
            raise ValueError("the check's filter needs an even degree >= 2")
        self.c, self.e, self.d = (cut + lower) / 2.0, (cut - lower) / 2.0, int(degree)

    def __call__(self, t: float) -> float:
        x = abs(t - self.c) / self.e
        if x <= 1:
            return math.cos(self.d * math.acos(x))
        return math.cosh(self.d * math.acosh(x))

    def inverse(self, y: float) -> float:
        """The ``t >= c + e`` with ``P(t) = y`` (``c + e`` for ``y <= 1``)."""
        if not y > 1:
            return self.c + self.e
        return self.c + self.e * math.cosh(math.acosh(y) / self.d)

    def apply(self, matmat, X):
        """``P(A) X`` for an (n, b) block: ``d`` block products (three-term recurrence)."""
        c, e = self.c, self.e
        y0 = X
        y1 = (matmat(X) - c * X) / e
        for _ in range(1, self.d):
            y2 = matmat(y1)
            y2 -= c * y1
            y2 *= 2.0 / e
            y2 -= y0
            y0, y1 = y1, y2
        return y1


def kw_filtered_gap(flt: ChebFilter, tau: float, n_free: int, block: int, steps: int) -> float:
    """The smallest ``P`` value ``y`` such that a missed eigenvalue with ``P(lambda) >= y``
    survives a check of ``block`` Gaussian columns and ``steps`` block Krylov steps on
    ``B = P(A) + 1`` (positive semi-definite) with probability at most ``_MISS_PROB``
    (Kuczynski & Wozniakowski 1992, Thm 4.2(a), per column, to the power ``block``): the
    check fails only if its largest Ritz value of ``B`` is ``<= tau + 1``, i.e. ``(1 - eps)``
    times ``lambda_max(B) = y + 1`` with ``eps = 1 - (tau + 1) / (y + 1)``."""
    if steps < 1 or block < 1 or n_free < 1:
        return math.inf
    s = (-math.log(_MISS_PROB) / block + math.log(1.648 * math.sqrt(n_free))) / (2 * steps - 1)
    eps = s * s
    if eps >= 1:
        return math.inf
    return (tau + 1.0) / (1.0 - eps) - 1.0


# The growing basis's second Gram-Schmidt pass runs when the first left less than this
# fraction of the block (pass 1 leaves components of about eps / r of what is left along the
# basis; with 0.1 the basis stays orthonormal to ~1e-14, with 1e-3 it drifted to 6e-12 in a
# test; on the bench's random matrices the first pass leaves 0.4-0.65 of the block).
_REORTH_RATIO = 0.1


class _GrowingKrylov:
    """A block Krylov basis ``Q`` of ``P(A)`` (orthonormal, orthogonal to ``space``) grown
    block by block in preallocated Fortran-ordered buffers, with ``PQ = P(A) Q`` and the
    projected matrix ``H = Q^T PQ`` kept up to date (only the new columns are formed).
    The n-row algebra runs on ``_core.tall_gram`` / ``tall_sub`` (the space's ``nt``
    threads) for NumPy float64 blocks, else on the array module's products."""

    def __init__(self, pmat, space: _Space, n: int, cap: int):
        self.pmat, self.space, self.xp, self.nt = pmat, space, space.xp, space.nt
        self.Qb = self.xp.empty((n, cap), order="F")
        self.PQb = self.xp.empty((n, cap), order="F")
        self.H = np.zeros((cap, cap))
        self.c = self.last = 0  # columns used; start of the last block
        self.h_last = np.zeros((0, 0))  # Q^T P(A) Q_last (host), formed by _append
        self.g_last = np.zeros((0, 0))  # (P(A) Q_last)^T P(A) Q_last (host), by _append
        self.blocks = 0  # blocks since the start or the last restart
        self.work = None  # (n, 2 b) scratch of extend on the kernels' path (reused: no new pages)

    @property
    def Q(self):
        return self.Qb[:, : self.c]

    @property
    def PQ(self):
        return self.PQb[:, : self.c]

    def room(self, cols: int) -> bool:
        return self.c + cols <= self.Qb.shape[1]

    def _append(self, X, PX=None, placed: bool = False) -> None:
        """The block ``X`` (``placed``: already in the buffer's next columns) and its product
        ``PX`` (formed here, by ``pmat(X, out)`` into the buffer, when not given)."""
        c0, w = self.c, X.shape[1]
        if not placed:
            self.Qb[:, c0 : c0 + w] = X
        if PX is None:
            self.pmat(self.Qb[:, c0 : c0 + w], self.PQb[:, c0 : c0 + w])
        else:
            self.PQb[:, c0 : c0 + w] = PX
        self.c, self.last = c0 + w, c0
        self.blocks += 1
        PX = self.PQb[:, c0 : c0 + w]
        Hn = _gram(self.Qb[:, : c0 + w], PX, self.nt)
        self.H[: c0 + w, c0 : c0 + w] = Hn
        self.H[c0 : c0 + w, : c0 + w] = Hn.T
        self.h_last = Hn  # Q^T P(A) Q_last: the next block's first Gram-Schmidt coefficients
        self.g_last = _gram(PX, PX, self.nt)  # its column norms (the next block's tests)

    def start(self, X) -> bool:
        """A fresh basis from the block X (projected, orthonormalised): one block product."""
        X, _ = _orthonormal(self.space.project(X), 1e-8)
        self.c = self.blocks = 0
        if X.shape[1] == 0:
            return False
        self._append(X)
        return True

    def restart(self, Y) -> None:
        """The basis becomes its Ritz vectors ``Q Y`` (orthonormal, in the space), whose
        products ``PQ Y`` are known: no block product."""
        X, PX = self.Q @ Y, self.PQ @ Y
        self.c = self.blocks = 0
        self._append(self.xp.ascontiguousarray(X), self.xp.ascontiguousarray(PX))

    def extend(self, blocks: int) -> None:
        """``blocks`` more blocks (classical Gram-Schmidt against the basis and the space,
        each repeated where the first pass cancelled most of the block; dependent directions
        dropped), one block product each. The first pass against the basis takes its
        coefficients ``Q^T P(A) Q_last`` from the projected matrix (formed when the last block
        was appended): one read of the basis less per block."""
        xp, nt = self.xp, self.nt
        for _ in range(blocks):
            PX = self.PQb[:, self.last : self.c]
            if PX.shape[1] == 0:
                return
            g = np.diag(self.g_last)
            nrm = math.sqrt(max(float(g.max()), 0.0))
            Q = self.Q
            # pass 1 against the basis (known coefficients; the cancellation happens here),
            # then the space, acting on what is left; pass 2 against the basis only after a
            # cancellation: pass 1 leaves components of about eps ||P(A) Q_last|| along the
            # basis, i.e. eps / r of what is left for r = ||W|| / ||P(A) Q_last||
            w = PX.shape[1]
            if nt is None:
                W = xp.array(PX, order="F")
            else:  # the kernels' path: W and the first Cholesky-QR pass in reused scratch
                if self.work is None or self.work.shape[1] < 2 * w:
                    self.work = np.empty((PX.shape[0], 2 * w), order="F")
                W = self.work[:, :w]
                W[...] = PX
            W = _sub_mm(W, Q, self.h_last, nt)
            W, G = self.space.project_gram(W)
            if math.sqrt(max(float(np.trace(G)), 0.0)) < _REORTH_RATIO * math.sqrt(
                max(float(g.sum()), 0.0)
            ):
                _sub_mm(W, Q, _gram(Q, W, nt), nt)
                G = _gram(W, W, nt)
            out = None
            if nt is None or not nrm > 0:
                X, _ = _orthonormal(W, 1e-10, nrm if nrm > 0 else None)
            else:  # the result straight into the basis' next columns where they exist
                out = self.Qb[:, self.c : self.c + w] if self.room(w) else None
                X, _ = _orthonormal_gram(W, G, 1e-10, nrm, nt, self.work[:, w : 2 * w], out)
            if X.shape[1] == 0 or not self.room(X.shape[1]):
                return
            self._append(X, placed=X is out)

    def ritz(self):
        """Ritz values of ``P(A)`` (largest first) and coefficient vectors (on Q's side)."""
        H = self.H[: self.c, : self.c]
        theta, Y = _host_eigh((H + H.T) / 2)
        order = np.argsort(-theta, kind="stable")
        return theta[order], self.xp.asarray(np.ascontiguousarray(Y[:, order]))


# The filtered check's basis is extended (not restarted) for up to this many cycles: ``steps``
# blocks, then ``steps - 1`` per cycle (16 blocks of 4 columns at the defaults).
_CHECK_MAX_CYCLES = 3


def filtered_check(
    matmat,
    n: int,
    w: np.ndarray,
    V: np.ndarray,
    k: int,
    *,
    flt: ChebFilter,
    lam_k: float,
    tol: float,
    anorm: float,
    rng: np.random.Generator,
    block: int,
    steps: int,
    budget: int,
    apply=None,
    n_jobs: int = 0,
):
    """Detection only: is there an eigenvalue ``lambda`` with ``P(lambda) > P(lam_k +
    margin)`` (for the filter of the solve: more wanted than the k-th pair found, by the
    margin ``10 tol ||A||``) in the orthogonal complement of the k pairs ``V`` found?

    ``matmat`` is the product with ``A`` itself (for the LA problem: SA callers pass ``-A``;
    "LM" callers a filter centred at 0, so ``P`` is increasing in ``|t|``). Block Krylov on
    ``P(A)`` from a Gaussian block orthogonal to ``V`` (``steps`` blocks), Rayleigh-Ritz; then
    cycles of ``steps - 1`` more blocks, each ending with the same tests: the basis is
    extended for up to ``_CHECK_MAX_CYCLES`` cycles, then restarted
    from its ``block`` best Ritz vectors (their products are known: ``steps - 1`` block
    products a cycle either way; the extended space contains the restarted one, so its best
    Ritz value is at least as large, and the best Ritz value never decreases), until the best
    Ritz vector has an A-residual ``<= 100 tol ||A||``, or the best Ritz value moves by less
    than 5% of its distance to the threshold in a cycle, or ``budget`` products are spent
    (counted as a restart from scratch would spend them: ``steps`` blocks a cycle).
    ``apply(X, out)``: writes ``P(A) X`` into ``out`` (a column slice of the basis' product
    buffer; ``_core.csr_cheb_filter`` for CSR float64 input), in place of
    :meth:`ChebFilter.apply` on ``matmat``.
    ``n_jobs``: threads of the basis algebra on NumPy blocks (``_core.tall_gram`` /
    ``tall_sub``: the same bits for any count); ``None``: the array module's products.
    Returns (passed, report): ``passed`` False means a Ritz value crossed the threshold
    (missed eigenvalue(s): the caller runs :func:`deflated_check` to find them)."""
    xp = array_module(V)
    report = CheckReport(block=block, steps=steps)
    scale = max(anorm, np.finfo(np.float64).tiny)
    margin = 10.0 * tol * scale
    tau = flt(abs(lam_k) + margin if flt.c == 0 else lam_k + margin)
    space = _Space(V, nt=n_jobs)
    n_free = n - space.D.shape[1]
    if n_free <= 0:
        report.passed = True
        report.miss_gap = 0.0
        return True, report
    b = min(block, n_free)
    st = max(1, min(steps, n_free // b))
    counter = [0]

    def pmat(X, out):
        counter[0] += flt.d * X.shape[1]
        if apply is None:
            out[...] = flt.apply(matmat, X)
        else:
            apply(X, out)

    cap = b * (st + (_CHECK_MAX_CYCLES - 1) * max(st - 1, 1))
    kry = _GrowingKrylov(pmat, space, n, min(n_free, cap))
    if not kry.start(xp.asarray(rng.standard_normal((n, b)))):
        report.passed = True
        return True, report
    kry.extend(st - 1)
    fresh = kry.blocks  # blocks built from the Gaussian start, before any restart
    restarted = False
    spent = counter[0]  # products as restarts from scratch would count them
    theta, Y = kry.ritz()
    while True:
        if theta[0] > tau:
            report.n_matvec = counter[0]
            return False, report
        if spent >= budget or kry.c <= b:
            break
        u = kry.Q @ Y[:, 0]
        rp = kry.PQ @ Y[:, 0] - float(theta[0]) * u  # residual of the best pair of P(A)
        if float(xp.sqrt(rp @ rp)) <= _P_CONVERGED * (tau - float(theta[0])):
            break
        Au = matmat(u[:, None])[:, 0]
        counter[0] += 1
        spent += 1
        rq = float(u @ Au)
        r = Au - rq * u
        if float(xp.sqrt(r @ r)) <= 100 * tol * scale:
            break
        prev = float(theta[0])
        before = counter[0]
        if not kry.room(b * (st - 1)):
            kry.restart(Y[:, :b])
            restarted = True
        c0 = kry.c
        kry.extend(st - 1)
        if kry.c == c0:
            break
        if not restarted:
            fresh = kry.blocks
        spent += counter[0] - before + flt.d * b  # + the restart block's products
        theta, Y = kry.ritz()
        if theta[0] <= tau and float(theta[0]) - prev < 0.05 * (tau - float(theta[0])):
            break
    report.n_matvec = counter[0]
    report.passed = True
    report.block, report.steps = b, fresh
    y = kw_filtered_gap(flt, tau, n_free, b, report.steps)
    t = flt.inverse(y) if math.isfinite(y) else math.inf
    report.miss_gap = max(t - (abs(lam_k) if flt.c == 0 else lam_k), margin)
    return True, report
