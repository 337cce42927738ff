"""Entropy of a normalised spectrum by stochastic Lanczos quadrature, with an error bar.

For a symmetric operator ``A`` and a function ``g >= 0`` of its eigenvalues, the Shannon
entropy of ``p_i = g(l_i) / S`` with ``S = sum_i g(l_i) = tr g(A)`` is
``H = log S - T / S`` with ``T = tr(g log g)(A)``. Both traces come from the same probes
and the same Lanczos runs (geoml.spectral's block Lanczos); ``H`` is the ratio estimate and
its standard error the delta-method one from the per-probe samples.

Variance reduction (``deflate=r``, Hutch++-style, Meyer et al. 2021; the block quadrature of
the top part as in Chen & Hallman's Krylov-aware estimator, 2023): ``Q`` is an orthonormal
basis of ``A Omega`` for a Gaussian ``n x r`` block ``Omega`` (one block product), and
``tr f(A) = tr Q^T f(A) Q + tr P f(A) P`` with ``P = I - Q Q^T``, an identity for any ``Q``.
The first term is the block Gauss quadrature of two block Lanczos steps from ``Q``
(exact for cubic polynomials; its error is estimated by the change from one step to two
and must be below ``rtol / 10`` of the total), the second is Hutchinson + Lanczos on the
projected probes ``P z``: when ``Q`` holds the dominant eigenvectors, their large,
uneven ``f`` values leave the probe variance, which is what limits plain SLQ when a few
eigenvalues dominate.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.linalg

from .._validation import check_random_state, single_threaded_blas, user_stacklevel
from ..spectral._slq import _max_batch, _probes, _run_block, _tridiagonal_eigh

_FIRST = 16
_MAX_PROBES = 512
_MAX_STEPS = 200
_STEP_FRACTION = 0.01
_TOP_FRACTION = 0.05  # the deflated block's rule stops moving by this fraction of rtol


def _glogg(g):
    def h(x):
        y = g(x)
        safe = np.where(y > 0, y, 1.0)
        return np.where(y > 0, y * np.log(safe), 0.0)

    return h


def _rules(blk):
    """Per probe (Ritz values, Gauss weights) of a Lanczos block (``_tridiagonal_eigh``: the
    dense solver where LAPACK's stemr fails on clustered ghost Ritz values)."""
    out = []
    for i in range(blk.alpha.shape[1]):
        k = min(blk.k, blk.length[i])
        d, e = blk.alpha[:k, i], blk.beta[: k - 1, i]
        if k == 1:
            theta, U = d.copy(), np.ones((1, 1))
        else:
            theta, U = _tridiagonal_eigh(d, e)
        w = U[0] ** 2
        out.append((theta, w / w.sum()))
    return out


def _orth(Y):
    """(Q, R) with Y = Q R, Q orthonormal: Cholesky QR twice (two GEMMs and two small
    Cholesky factorisations; LAPACK's Householder QR of a tall block was 30x slower here),
    Householder QR when the Gram matrix is numerically singular."""
    try:
        R = np.eye(Y.shape[1])
        Q = Y
        for _ in range(2):
            L = np.linalg.cholesky(Q.T @ Q)
            Q = scipy.linalg.solve_triangular(L, Q.T, lower=True).T
            R = L.T @ R
        if np.isfinite(Q).all():
            Q = np.ascontiguousarray(Q)
            # CholeskyQR2 is only orthogonal to rounding for cond(Y) below ~1e8: check it
            if np.abs(Q.T @ Q - np.eye(Q.shape[1])).max() <= 1e-10:
                return Q, R
    except np.linalg.LinAlgError:
        pass
    return np.linalg.qr(Y)


def _block_rule(As, Bs, r, g, h):
    """Block Gauss quadrature ``tr E1^T f(T) E1`` of the block tridiagonal ``T`` for g and h."""
    j = len(As)
    T = np.zeros((j * r, j * r))
    for i, A in enumerate(As):
        T[i * r : (i + 1) * r, i * r : (i + 1) * r] = A
    for i, B in enumerate(Bs[: j - 1]):
        T[(i + 1) * r : (i + 2) * r, i * r : (i + 1) * r] = B
        T[i * r : (i + 1) * r, (i + 1) * r : (i + 2) * r] = B.T
    with single_threaded_blas():  # small: threaded LAPACK only loses (15x on a busy machine)
        th, U = np.linalg.eigh(T)
    w = np.einsum("ij,ij->j", U[:r], U[:r])
    return float(w @ g(th)), float(w @ h(th))


def _top_block(matmat, n, r, rng, g, h, settled=None, max_steps=4):
    """(Q, s1, t1, err_s, err_t): ``Q`` (n x r, orthonormal) spans ``A Omega``; ``s1, t1`` are
    the block Gauss quadratures of ``tr Q^T g(A) Q`` and ``tr Q^T (g log g)(A) Q`` by block
    Lanczos from ``Q`` (full reorthogonalisation), at least two steps and more, up to
    ``max_steps``, until ``settled(s1, t1, err_s, err_t)``; ``err_*`` is the change of the rule over
    the last step (an error indicator, pessimistic: the rules converge fast)."""
    Om = rng.standard_normal((n, r))
    Y = np.empty_like(Om)
    matmat(Om, Y)
    Q, _ = _orth(Y)
    del Om
    blocks, As, Bs = [Q], [], []
    prev = None
    while True:
        V = blocks[-1]
        matmat(V, Y)
        A = V.T @ Y
        As.append(0.5 * (A + A.T))
        cur = _block_rule(As, Bs, r, g, h)
        if prev is not None:
            es, et = abs(cur[0] - prev[0]), abs(cur[1] - prev[1])
            if len(As) >= max_steps or settled is None or settled(*cur, es, et):
                return Q, cur[0], cur[1], es, et
        prev = cur
        Y -= V @ As[-1]
        if len(blocks) > 1:
            Y -= blocks[-2] @ Bs[-1].T
        for _ in range(2):  # full reorthogonalisation, twice (Kahan-Parlett)
            for P in blocks:
                Y -= P @ (P.T @ Y)
        Vn, B = _orth(Y)
        blocks.append(Vn)
        Bs.append(B)


def slq_entropy(
    matmat,
    n,
    g,
    *,
    deflate=0,
    S_exact=None,
    S_extra=0.0,
    T_extra=0.0,
    rtol=1e-2,
    n_probes=None,
    n_steps=None,
    random_state=None,
    what="entropy",
    step_rule="totals",
):
    """(H in nats, stderr, probes, steps, converged) for ``p = g(l) / S`` over the spectrum of
    the operator plus extra known terms: ``S = S_extra + tr g(A)`` (or ``S_exact`` when the
    caller knows it) and ``T = T_extra + tr (g log g)(A)``. ``deflate=r > 0``: the top
    block of rank ``r`` is taken out of the probes (see the module docstring).

    Lanczos steps stop (``step_rule="totals"``) when the probe means of both quadratures
    move by at most ``0.01 rtol`` of the totals S and T between two checks (5 steps apart);
    ``"entropy"`` also stops when the entropy of the probe means moves by at most
    ``0.01 rtol |H|``, and that last move (the truncation indicator) joins the returned
    standard error in quadrature. For a kinked ``g`` such as ``|x|`` on an indefinite
    spectrum the probe mean of H oscillates about its limit by a fraction of ``se`` for
    hundreds of steps while the totals rule waits for 1e-4 relative moves of S and T (large
    sums: tighter than H needs); on the kNN kernel at N = 10,000 it stops after 25-35 steps
    instead of 130."""
    rng = check_random_state(random_state)
    h = _glogg(g)
    Q = None
    if deflate:

        def settled(s1, t1, es, et):
            tol = _TOP_FRACTION * rtol
            return es <= tol * (abs(S_extra) + abs(s1)) and et <= tol * (abs(T_extra) + abs(t1))

        Q, s1, t1, es, et = _top_block(matmat, n, deflate, rng, g, h, settled)
        S_extra += s1
        T_extra += t1
    max_steps = min(n, _MAX_STEPS)
    cap = n_probes if n_probes is not None else _MAX_PROBES
    s_samples: list[float] = []
    t_samples: list[float] = []
    state: dict = {}

    def quad(blk):
        rules = _rules(blk)
        s = np.array([w @ g(th) for th, w in rules]) * blk.norm2
        t = np.array([w @ h(th) for th, w in rules]) * blk.norm2
        return s, t

    def stop(blk):
        s, t = quad(blk)
        prev = state.get("st")
        state["st"] = (s, t)
        if prev is None:
            return False
        # the probe mean (what enters the estimate) stops moving, relative to the totals S
        # and T (known and deflated parts included); per-probe changes of a kinked g such
        # as |x| on an indefinite spectrum oscillate for hundreds of steps
        ref_s = max(abs(S_extra + float(s.mean())), 1e-300)
        ref_t = max(abs(T_extra + float(t.mean())), 1e-300)
        tol = _STEP_FRACTION * rtol
        if (
            abs(float((s - prev[0]).mean())) <= tol * ref_s
            and abs(float((t - prev[1]).mean())) <= tol * ref_t
        ):
            return True
        if step_rule != "entropy" or s.size < 2:
            return False
        h_cur, _ = _entropy_and_se(s, t)
        h_prev, _ = _entropy_and_se(*prev)
        move = abs(h_cur - h_prev)
        if move <= tol * abs(h_cur):
            state["move"] = move
            return True
        return False

    def _entropy_and_se(sa, ta):
        S = S_exact if S_exact is not None else S_extra + float(sa.mean())
        T = T_extra + float(ta.mean())
        if not S > 0:
            return math.nan, 0.0
        u = -ta / S if S_exact is not None else (1.0 / S + T / S**2) * sa - ta / S
        return math.log(S) - T / S, float(u.std(ddof=1) / math.sqrt(sa.size))

    lanczos_ok, steps, trunc = True, 0, 0.0
    batch = min(cap, _max_batch(n) if n_probes is not None else _FIRST)
    while True:
        state.clear()
        Z = _probes(rng, "rademacher", n, batch)
        if Q is not None:
            Z -= Q @ (Q.T @ Z)
        blk, ok = _run_block(matmat, Z, n_steps, max_steps, stop)
        s, t = quad(blk)
        lanczos_ok &= ok
        steps = max(steps, blk.k)
        trunc = max(trunc, state.get("move", 0.0))
        del Z, blk
        s_samples.extend(s.tolist())
        t_samples.extend(t.tolist())
        m = len(s_samples)
        sa, ta = np.asarray(s_samples), np.asarray(t_samples)
        S = S_exact if S_exact is not None else S_extra + float(sa.mean())
        T = T_extra + float(ta.mean())
        H = math.log(S) - T / S
        if S_exact is not None:
            u = -ta / S
        else:
            u = (1.0 / S + T / S**2) * sa - ta / S
        se = float(u.std(ddof=1) / math.sqrt(m)) if m > 1 else math.nan
        se = math.hypot(se, trunc)  # the "entropy" rule's truncation indicator (0 otherwise)
        target = rtol * abs(H) / 3
        if n_probes is not None:
            if m >= n_probes:
                break
            batch = min(_max_batch(n), n_probes - m)
            continue
        if se <= target or m >= cap:
            break
        need = math.ceil(m * (se / max(target, 1e-300)) ** 2 * 1.1) - m
        batch = int(min(max(need, 8), _max_batch(n), cap - m))
    top_ok = True
    if Q is not None:
        dS = 0.0 if S_exact is not None else es
        top_err = dS * abs(1.0 / S + T / S**2) + et / S
        top_ok = top_err <= rtol * abs(H) / 10
        # the block rule's error indicator (pessimistic) joins the sampling error
        se = math.hypot(se, top_err)
    converged = bool(lanczos_ok and top_ok and (n_probes is not None or se <= target))
    if not converged:
        warnings.warn(
            f"{what}: the SLQ estimate did not reach rtol={rtol:g} (standard error {se:.3g} "
            f"after {m} probes, Lanczos settled: {lanczos_ok}, deflated block settled: "
            f"{top_ok}); returned with converged=False",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return H, se, m, steps, converged
