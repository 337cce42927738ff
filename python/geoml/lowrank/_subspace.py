"""Certified dominant eigen-subspaces of Gram matrices and rank selection."""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla


def _fix_signs(V: np.ndarray) -> np.ndarray:
    """Flip columns so that each one's largest-magnitude entry is positive (deterministic)."""
    if V.size == 0:
        return V
    idx = np.argmax(np.abs(V), axis=0)
    signs = np.sign(V[idx, np.arange(V.shape[1])])
    signs[signs == 0] = 1
    return V * signs


def _eig_desc(G: np.ndarray, r: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of the symmetric ``G`` by decreasing eigenvalue (LAPACK ``syevr``, in float64).

    With ``r`` only the leading ``r`` pairs are computed; with None all of them.
    """
    G = np.array(G, dtype=np.float64)
    dim = G.shape[0]
    if r is None or r >= dim:
        w, V = sla.eigh(G, overwrite_a=True, check_finite=False)
    else:
        w, V = sla.eigh(
            G,
            subset_by_index=[dim - r, dim - 1],
            overwrite_a=True,
            check_finite=False,
            driver="evr",
        )
    return w[::-1], _fix_signs(V[:, ::-1])


def _certified_subspace(
    apply, Q: np.ndarray, trace: float, max_steps: int, tol: float, GQ: np.ndarray | None = None
) -> np.ndarray | None:
    """Leading ``r = Q.shape[1]`` eigenvectors of a symmetric PSD ``G`` from a close start.

    ``apply(Q)`` returns ``G @ Q`` (float64); ``trace`` is ``trace(G)``. Subspace iteration with
    Rayleigh-Ritz from the orthonormal ``Q``, in float64: each step costs one ``apply`` on r
    columns. After step k, with Ritz values ``theta_1 >= ... >= theta_r`` and Ritz vectors U,
    ``mu = trace - sum(theta)`` bounds lambda_{r+1} from above (Ky Fan: the r largest
    eigenvalues sum to at least ``sum(theta)``, and G is PSD) and ``theta_r <= lambda_r``
    (interlacing), so the Davis-Kahan sin-theta theorem gives
    ``s = ||G U - U Theta||_F / (theta_r - mu) >= ||sin Theta(U, E)||_F``, E the exact leading
    subspace. One power step shrinks tangents by ``lambda_{r+1} / lambda_r <= mu / theta_r``,
    so ``t = (mu / theta_r) s / sqrt(1 - s^2)`` bounds the angles of ``span(G U)`` (available as
    ``Z C``, no extra product). Returns U when ``s <= tol``, an orthonormal basis of ``G U``
    (QR, columns in Ritz order) when ``t <= tol``, and None when neither holds after
    ``max_steps`` further steps (the caller then forms G and runs LAPACK). The bounds hold up
    to the rounding of the products. ``GQ``, when given, is ``G @ Q`` for the start ``Q``
    (computed by the caller together with another product).
    """
    Q = np.asarray(Q, dtype=np.float64)
    for step in range(max_steps + 1):
        Z = GQ if step == 0 and GQ is not None else apply(Q)
        H = Q.T @ Z
        theta, C = np.linalg.eigh(0.5 * (H + H.T))
        theta, C = theta[::-1], C[:, ::-1]
        U, GU = Q @ C, Z @ C
        mu = max(trace - float(np.sum(theta)), 0.0)
        gap = theta[-1] - mu
        if gap > 0:
            s = float(np.linalg.norm(GU - U * theta)) / gap
            if s <= tol:
                return _fix_signs(U)
            if s < 1 and mu / theta[-1] * s / math.sqrt(1.0 - s * s) <= tol:
                return _fix_signs(np.linalg.qr(GU)[0])
        if step < max_steps:
            Q = np.linalg.qr(GU)[0]
    return None


def _eig_warm(G: np.ndarray, U0: np.ndarray, max_steps: int = 3) -> np.ndarray | None:
    """Leading ``U0.shape[1]`` eigenvectors of the explicit symmetric PSD ``G`` (a HOOI Gram
    matrix) from the previous factor ``U0``: :func:`_certified_subspace` with ``G @ Q``
    products, O(I^2 r) per step instead of the O(I^3) of a full eigensolver, certified to
    1e-10; None when that fails (the caller then runs LAPACK)."""
    G = np.asarray(G, dtype=np.float64)
    return _certified_subspace(lambda Q: G @ Q, U0, float(np.trace(G)), max_steps, 1e-10)


def _eig_top(G: np.ndarray, r: int, tol: float) -> np.ndarray:
    """Leading ``r`` eigenvectors of the explicit symmetric PSD ``G`` (I x I), certified to
    ``tol`` (``||sin Theta||_F`` to the exact subspace, :func:`_certified_subspace`) by up to
    five steps of subspace iteration from a fixed Gaussian start, O(I^2 r) each; LAPACK
    (:func:`_eig_desc`, O(I^3)) when the spectrum has no gap that makes this converge, or when
    ``I < 64`` (LAPACK is as fast there). HOSVD's Gram matrices of noisy low-rank tensors have
    a wide gap after ``r``: two or three steps, several times cheaper than ``syevr``."""
    dim = G.shape[0]
    if dim >= 64 and r < dim:
        G = np.asarray(G, dtype=np.float64)
        Q0 = np.linalg.qr(np.random.default_rng(0).standard_normal((dim, r)))[0]
        V = _certified_subspace(lambda Q: G @ Q, Q0, float(np.trace(G)), 4, tol)
        if V is not None:
            return V
    return _eig_desc(G, r)[1][:, :r]


def _select_rank(eigvals: np.ndarray, budget: float) -> int:
    """Smallest rank whose discarded eigenvalues sum to at most ``budget`` (at least 1)."""
    lam = np.maximum(eigvals, 0.0)
    tail = np.concatenate([np.cumsum(lam[::-1])[::-1], [0.0]])  # tail[r] = sum(lam[r:])
    ok = np.nonzero(tail <= budget)[0]
    return max(1, int(ok[0])) if ok.size else lam.size
