"""Entropy of a normalised spectrum by stochastic Lanczos quadrature, with an error bar.

For a symmetric operator ``A`` and a function ``g >= 0`` of its eigenvalues, the Shannon
entropy of ``p_i = g(l_i) / S`` with ``S = sum_i g(l_i) = tr g(A)`` is
``H = log S - T / S`` with ``T = tr(g log g)(A)``. Both traces come from the same probes
and the same Lanczos runs (geoml.spectral's block Lanczos); ``H`` is the ratio estimate and
its standard error the delta-method one from the per-probe samples.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.linalg import eigh_tridiagonal

from .._validation import check_random_state
from ..spectral._slq import _max_batch, _probes, _run_block

_FIRST = 16
_MAX_PROBES = 512
_MAX_STEPS = 200
_STEP_FRACTION = 0.01


def _glogg(g):
    def h(x):
        y = g(x)
        safe = np.where(y > 0, y, 1.0)
        return np.where(y > 0, y * np.log(safe), 0.0)

    return h


def _rules(blk):
    """Per probe (Ritz values, Gauss weights) of a Lanczos block; LAPACK's stemr can fail on
    a tridiagonal matrix with clustered ghost Ritz values (long runs without
    reorthogonalisation), where the dense symmetric solver is used instead."""
    out = []
    for i in range(blk.alpha.shape[1]):
        k = min(blk.k, blk.length[i])
        d, e = blk.alpha[:k, i], blk.beta[: k - 1, i]
        if k == 1:
            theta, U = d.copy(), np.ones((1, 1))
        else:
            try:
                theta, U = eigh_tridiagonal(d, e)
            except np.linalg.LinAlgError:
                theta, U = np.linalg.eigh(np.diag(d) + np.diag(e, 1) + np.diag(e, -1))
        w = U[0] ** 2
        out.append((theta, w / w.sum()))
    return out


def slq_entropy(
    matmat,
    n,
    g,
    *,
    S_exact=None,
    S_extra=0.0,
    T_extra=0.0,
    rtol=1e-2,
    n_probes=None,
    n_steps=None,
    random_state=None,
    what="entropy",
):
    """(H in nats, stderr, probes, steps, converged) for ``p = g(l) / S`` over the spectrum of
    the operator plus extra known terms: ``S = S_extra + tr g(A)`` (or ``S_exact`` when the
    caller knows it) and ``T = T_extra + tr (g log g)(A)``."""
    rng = check_random_state(random_state)
    h = _glogg(g)
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
        ref_s = max(abs(float(s.mean())), 1e-300)
        ref_t = max(abs(float(t.mean())), 1e-300)
        tol = _STEP_FRACTION * rtol
        return bool(
            np.all(np.abs(s - prev[0]) <= tol * ref_s)
            and np.all(np.abs(t - prev[1]) <= tol * ref_t)
        )

    lanczos_ok, steps = True, 0
    batch = min(cap, _max_batch(n) if n_probes is not None else _FIRST)
    while True:
        state.clear()
        Z = _probes(rng, "rademacher", n, batch)
        blk, ok = _run_block(matmat, Z, n_steps, max_steps, stop)
        s, t = quad(blk)
        lanczos_ok &= ok
        steps = max(steps, blk.k)
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
    converged = bool(lanczos_ok and (n_probes is not None or se <= target))
    if not converged:
        warnings.warn(
            f"{what}: the SLQ estimate did not reach rtol={rtol:g} (standard error {se:.3g} "
            f"after {m} probes, Lanczos settled: {lanczos_ok}); returned with converged=False",
            RuntimeWarning,
            stacklevel=3,
        )
    return H, se, m, steps, converged
