"""Stochastic Lanczos quadrature: ``tr f(A)`` and the spectral density of a symmetric matrix.

All probe vectors advance together: one Lanczos step is one product of ``A`` with an ``n x m``
block (the OpenMP CSR block product in C++ for sparse input, a BLAS GEMM for dense input), then
``m`` independent three-term recurrences (no coupling between the probes). The Gauss quadrature
of each probe comes from its small tridiagonal matrix (``scipy.linalg.eigh_tridiagonal``).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.linalg import eigh_tridiagonal
from scipy.sparse.linalg import LinearOperator

from .. import _core
from .._validation import (
    as_float_array,
    blocked_matmul,
    can_hold_blas,
    check_int,
    check_n_jobs,
    check_random_state,
    reject_gpu,
    single_threaded_blas,
    user_stacklevel,
)
from ._eigsh import _as_csr, _checked_product, _symmetry_error

__all__ = ["SpectralDensity", "TraceEstimate", "spectral_density", "trace_function"]

_CHECK_EVERY = 5  # Lanczos steps between two convergence checks of the quadratures
_MIN_STEPS = 10  # adaptive runs do at least this many steps (unless the Krylov space ends)
_MAX_STEPS = 300  # adaptive cap on the Lanczos steps per probe
_STEP_FRACTION = 0.01  # a probe's quadrature is converged when it moves < 0.01 rtol |value|
_FIRST_BATCH = 16  # probes in the first block
_MIN_BATCH = 8  # smallest later block
_BLOCK_ELEMS = 2**24  # widest block: n * block <= this (4 such float64 arrays, 512 MiB)
_MAX_PROBES = 512  # adaptive cap on the number of probes
_DENSITY_WEIGHT = 5.0  # density: stop when unconverged Ritz weights are <= 5 rtol (mean)
_REL = {False: (1e-8, 1e-13), True: (1e-5, 1e-6)}  # Ritz value "zero" for PSD / PD (f64, f32)
_BREAKDOWN = 1e-10  # beta_j <= this * ||T|| ends a probe's Krylov space (invariant subspace)


# ----------------------------------------------------------------------------- results


class TraceEstimate(NamedTuple):
    """Estimate of ``tr f(A)`` from :func:`trace_function`.

    Attributes
    ----------
    value : float
        The estimate (mean of the per-probe quadratures).
    stderr : float
        Standard error of the mean over the probes (``nan`` with a single probe); the Lanczos
        truncation error is kept well below ``rtol * |value|`` and is not included (with a
        fixed ``n_steps`` too few for that, ``converged`` is False).
    n_probes : int
        Probe vectors used.
    n_steps : int
        Most Lanczos steps taken by a probe.
    converged : bool
        False when a cap (probes or Lanczos steps) was hit before the requested accuracy, or
        when a fixed ``n_steps`` left a probe's quadrature unsettled (the adaptive rule, made
        once after the last step). A fixed ``n_probes`` is not held to ``rtol``: read
        ``stderr``.
    samples : ndarray of shape (n_probes,)
        The per-probe quadratures ``z^T f(A) z``.
    bounds : tuple of float
        Smallest and largest Ritz value seen: an inner estimate of ``[lambda_min, lambda_max]``.
    """

    value: float
    stderr: float
    n_probes: int
    n_steps: int
    converged: bool
    samples: np.ndarray
    bounds: tuple


class SpectralDensity(NamedTuple):
    """Spectral density (density of states) from :func:`spectral_density`.

    Attributes
    ----------
    edges : ndarray of shape (bins + 1,)
        Bin edges, ascending.
    centers : ndarray of shape (bins,)
        Bin centres.
    density : ndarray of shape (bins,)
        Estimated fraction of the eigenvalues per unit length in each bin (histogram of the
        quadrature nodes, or their Gaussian smoothing averaged over the bin); integrates to the
        fraction of the spectrum inside the edges (1 with the default edges).
    nodes : ndarray of shape (p,)
        All quadrature nodes (Ritz values) of all probes.
    weights : ndarray of shape (p,)
        Their weights, summing to 1 (the Gauss rules averaged over the probes).
    cells : ndarray of shape (p, 2)
        The interval over which each node's weight is spread in the estimated measure: from
        the midpoint to the previous node of the same probe to the midpoint to the next one;
        a point (``cells[j, 0] == cells[j, 1] == nodes[j]``) for a converged Ritz value, an
        atom of the spectrum. This interpolates the Chebyshev-Markov-Stieltjes bounds and is
        what ``density`` and ``cdf`` use.
    n_probes : int
        Probe vectors used.
    n_steps : int
        Most Lanczos steps taken by a probe.
    converged : bool
        False when a cap was hit before the requested accuracy, or when a fixed ``n_steps``
        left Ritz weights above the adaptive rule's (made once after the last step). A fixed
        ``n_probes`` is not held to ``rtol``.
    """

    edges: np.ndarray
    centers: np.ndarray
    density: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray
    cells: np.ndarray
    n_probes: int
    n_steps: int
    converged: bool

    def cdf(self, x):
        """Estimated fraction of the eigenvalues ``<= x`` (x scalar or array)."""
        return _measure_cdf(self.nodes, self.weights, self.cells, x)


def _measure_cdf(nodes, weights, cells, x):
    x = np.asarray(x, dtype=np.float64)
    a, b = cells[:, 0], cells[:, 1]
    atom = b <= a
    order = np.argsort(nodes[atom], kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(weights[atom][order])])
    out = cum[np.searchsorted(nodes[atom][order], x, "right")]
    sa, sb, sw = a[~atom], b[~atom], weights[~atom]
    flat = x.reshape(-1)
    spread = np.zeros(flat.size)
    for s in range(0, sa.size, 2048):
        t = (flat[:, None] - sa[None, s : s + 2048]) / (sb - sa)[None, s : s + 2048]
        spread += np.clip(t, 0.0, 1.0) @ sw[s : s + 2048]
    return out + spread.reshape(x.shape)


def _cells(rules):
    """(nodes, weights, cells) of the probe-averaged measure from per-probe
    (theta, w, unconverged) rules (theta ascending)."""
    nodes, weights, cells = [], [], []
    for theta, w, unconv in rules:
        mid = 0.5 * (theta[1:] + theta[:-1])
        lo = np.concatenate([[theta[0]], mid])
        hi = np.concatenate([mid, [theta[-1]]])
        lo = np.where(unconv, lo, theta)
        hi = np.where(unconv, hi, theta)
        nodes.append(theta)
        weights.append(w)
        cells.append(np.stack([lo, hi], axis=1))
    m = len(rules)
    return np.concatenate(nodes), np.concatenate(weights) / m, np.concatenate(cells)


# ----------------------------------------------------------------------------- operators


def _csr_block_product(A: sp.csr_matrix, X: np.ndarray, out: np.ndarray, nt: int) -> None:
    """out = A @ X for float64 CSR ``A`` and C-contiguous (n, m) ``X`` by geoml's OpenMP CSR
    block product (one pass over ``A`` for all ``m`` columns; rows split over threads, so the
    result does not depend on the thread count). The only call into ``geoml._core`` here."""
    _core.csr_spmm(A.indptr, A.indices, A.data, X, out, n_jobs=nt)


def _operator(A, n_jobs):
    """(n, matmat(X, out), relative tolerances (PSD, PD) for the domain checks, BLAS thread
    context) for ``A``."""
    reject_gpu(A, "A", "trace_function / spectral_density")
    nt = check_n_jobs(n_jobs)
    blas = contextlib.nullcontext()
    if isinstance(A, LinearOperator):
        if len(A.shape) != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be square; got shape {A.shape}")
        if np.dtype(A.dtype).kind == "c":
            raise TypeError("complex LinearOperators are not supported (real symmetric only)")
        n = A.shape[0]
        rel = _REL[bool(A.dtype == np.float32)]
        op = A

        def matmat(X, out):
            out[...] = _checked_product(op.matmat(X), X.shape)
    elif sp.issparse(A):
        rel = _REL[bool(A.dtype == np.float32)]
        A = _as_csr(A, "A", dtype=np.float64)
        n = A.shape[0]
        if _symmetry_error(A) > 1e-8:
            raise ValueError(
                "A is not symmetric (max |A - A.T| > 1e-8 max |A|); pass (A + A.T) / 2"
            )
        if A.indptr.dtype != A.indices.dtype:
            A.indices = A.indices.astype(A.indptr.dtype)

        def matmat(X, out):
            _csr_block_product(A, X, out, nt)
    else:
        A = as_float_array(A, "A")
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be square; got shape {A.shape}")
        n = A.shape[0]
        rel = _REL[bool(A.dtype == np.float32)]
        if _symmetry_error(A) > 1e-8:
            raise ValueError(
                "A is not symmetric (max |A - A.T| > 1e-8 max |A|); pass (A + A.T) / 2"
            )
        if can_hold_blas():
            # BLAS on one thread, the products as fixed row blocks on nt threads (one pool
            # for the solve): the same bits for any thread count (BLAS held to n_jobs threads
            # gave other bits for n_jobs=1 and 2: a multi-threaded OpenBLAS GEMM splits its
            # work by its thread count, 2e-6 relative on a 600 x 600 trace)
            box: list = [None]
            blas = _held_blas_and_pool(nt, box)

            if A.dtype == np.float64:

                def matmat(X, out):
                    blocked_matmul(A, X, nt, out=out, pool=box[0])
            else:  # float32 products, float64 recurrences

                def matmat(X, out):
                    out[...] = blocked_matmul(A, X.astype(np.float32), nt, pool=box[0])
        elif A.dtype == np.float64:

            def matmat(X, out):
                np.matmul(A, X, out=out)
        else:

            def matmat(X, out):
                out[...] = A @ X.astype(np.float32)

    if n < 1:
        raise ValueError("A is empty (0 x 0)")
    return n, matmat, rel, blas


@contextlib.contextmanager
def _held_blas_and_pool(nt: int, box: list):
    """BLAS held to one thread and, for ``nt`` (0: geoml's default count) above one, a pool of
    ``nt`` workers in ``box[0]`` for :func:`geoml._validation.blocked_matmul` while inside."""
    workers = nt if nt > 0 else max(1, _core.max_threads())
    with single_threaded_blas(), contextlib.ExitStack() as stack:
        if workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            box[0] = stack.enter_context(ThreadPoolExecutor(workers))
        try:
            yield
        finally:
            box[0] = None


def _rng(random_state) -> np.random.Generator:
    """The probe generator (the one place random_state is interpreted here)."""
    return check_random_state(random_state)


def _probes(rng: np.random.Generator, kind: str, n: int, m: int) -> np.ndarray:
    if kind == "rademacher":
        Z = rng.integers(0, 2, size=(n, m), dtype=np.int8).astype(np.float64)
        Z *= 2.0
        Z -= 1.0
        return Z
    return rng.standard_normal((n, m))


# ----------------------------------------------------------------------------- Lanczos


class _Block:
    """The three-term recurrences of ``m`` probes run together (no reorthogonalisation:
    the Gauss quadrature of finite-precision Lanczos stays accurate, Greenbaum 1989)."""

    def __init__(self, matmat, Z: np.ndarray, max_steps: int):
        n, m = Z.shape
        self.matmat, self.max_steps = matmat, max_steps
        self.norm2 = np.einsum("ij,ij->j", Z, Z)
        self.V = Z / np.sqrt(self.norm2)
        self.Vprev = np.zeros_like(self.V)
        self.W = np.empty_like(self.V)
        self.T = np.empty_like(self.V)
        self.alpha = np.zeros((max_steps, m))
        self.beta = np.zeros((max_steps, m))
        self.length = np.full(m, max_steps + 1)  # steps of a probe whose Krylov space ended
        self.active = np.ones(m, dtype=bool)
        self.scale = 0.0  # largest |alpha|, beta so far (of 2^-shift A)
        self.shift = 0  # the recurrences run on 2^-shift A (see step)
        self.k = 0

    def step(self) -> None:
        j, V, W, T = self.k, self.V, self.W, self.T
        self.matmat(V, W)
        if self.shift:
            np.ldexp(W, -self.shift, out=W)
        # the first step may overflow where A is out of range (then redone, scaled)
        with np.errstate(over="ignore", invalid="ignore") if j == 0 else contextlib.nullcontext():
            np.multiply(V, W, out=T)
            a = T.sum(axis=0)
            np.multiply(V, a, out=T)
            W -= T
            if j:
                np.multiply(self.Vprev, self.bprev, out=T)
                W -= T
            np.multiply(W, W, out=T)
            b = np.sqrt(T.sum(axis=0))
        if j == 0 and self._out_of_range(a, b):
            return self.step()  # the first step again, on 2^-shift A
        a[~self.active] = 0.0
        b[~self.active] = 0.0
        self.bprev = b
        if self.shift:  # the coefficients of A itself (exact: powers of two)
            self.alpha[j], self.beta[j] = np.ldexp(a, self.shift), np.ldexp(b, self.shift)
        else:
            self.alpha[j], self.beta[j] = a, b
        self.scale = max(self.scale, float(np.abs(a).max()), float(b.max()))
        end = self.active & (b <= _BREAKDOWN * self.scale)
        self.k = j + 1
        if end.any():
            self.length[end] = self.k
            self.active &= ~end
        b = np.where(self.active, b, 1.0)
        W /= b
        W[:, ~self.active] = 0.0
        self.Vprev, self.V, self.W = V, W, self.Vprev

    def _out_of_range(self, a, b) -> bool:
        """After the first product: whether ``A`` is so large or small that the squares in
        ``beta`` overflow or underflow (``||A||`` beyond ``2^+-400``; e.g. ``1e200 A`` gave
        ``beta = inf``, ``1e-200 A`` ``beta = 0``: a false breakdown after one step, so a
        one-node quadrature, 4 % off for ``tr A^-1``, and a one-atom density, silently). Then
        ``shift`` is set so that the recurrences run on ``2^-shift A`` (exact), the Ritz
        values and coefficients of ``A`` being scaled back; other inputs: unchanged bits."""
        top = max(float(np.abs(a).max()), float(b.max()))
        if self.shift or 2.0**-400 <= top <= 2.0**400:
            return False
        self.matmat(self.V, self.W)  # again: W was overwritten (rare inputs only)
        mx = float(np.abs(self.W).max())
        if not (math.isfinite(mx) and mx > 0):
            return False  # a zero operator (or NaN from the user's product: checked there)
        self.shift = int(np.frexp(mx)[1])
        return True

    @property
    def done(self) -> bool:
        return self.k >= self.max_steps or not self.active.any()

    def quadrature(self, residuals: bool = False, steps: int | None = None):
        """Per probe (nodes, weights summing to 1) of the Gauss rule from the steps so far
        (the first ``steps`` of them when given); with ``residuals``, (nodes, weights,
        unconverged) where ``unconverged`` flags the Ritz values whose Lanczos residual
        ``|beta_k U[k-1, j]|`` is above ``1e-6 ||T||``."""
        upto = self.k if steps is None else min(steps, self.k)
        out = []
        for i in range(self.alpha.shape[1]):
            k = min(upto, self.length[i])
            d, e = self.alpha[:k, i], self.beta[: k - 1, i]
            if k == 1:
                theta, U = d.copy(), np.ones((1, 1))
            else:
                theta, U = _tridiagonal_eigh(d, e)
            w = U[0] ** 2
            w /= w.sum()
            if residuals:
                tail = self.beta[k - 1, i] if k < self.length[i] else 0.0
                out.append(
                    (theta, w, np.abs(tail * U[-1]) > math.ldexp(1e-6 * self.scale, self.shift))
                )
            else:
                out.append((theta, w))
        return out


def _tridiagonal_eigh(d: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of the symmetric tridiagonal matrix with diagonal ``d`` and off-diagonal
    ``e``. LAPACK's ``stemr`` (``eigh_tridiagonal``'s driver) can fail (``LinAlgError``,
    info 2x) on the clustered ghost Ritz values of a long Lanczos run without
    reorthogonalisation (``tr A^-1`` of an ill-conditioned kNN-graph Laplacian, 300 steps):
    the dense symmetric solver is used there instead (order <= 300)."""
    try:
        return eigh_tridiagonal(d, e)
    except np.linalg.LinAlgError:
        return np.linalg.eigh(np.diag(d) + np.diag(e, 1) + np.diag(e, -1))


def _run_block(matmat, Z, n_steps, max_steps, stop, final=None) -> tuple[_Block, bool]:
    """Lanczos on the block ``Z``: ``n_steps`` steps, or adaptively up to ``max_steps`` until
    ``stop(block)`` says so (checked every few steps). Returns the block and whether the
    adaptive stop was reached; for a fixed ``n_steps``, whether ``final(block)`` (the same
    test, made once after the last step) passes, or every probe's Krylov space ended (True
    without ``final``)."""
    blk = _Block(matmat, Z, n_steps if n_steps is not None else max_steps)
    while not blk.done:
        blk.step()
        if (
            n_steps is None
            and blk.k >= _MIN_STEPS
            and blk.k % _CHECK_EVERY == 0
            and not blk.done
            and stop(blk)
        ):
            return blk, True
    if n_steps is None:
        converged = not blk.active.any() or stop(blk)
        return blk, converged
    return blk, bool(not blk.active.any() or final is None or final(blk))


# ----------------------------------------------------------------------------- functions

_NAMED = ("log", "exp", "xlogx", "sqrt", "inv", "power")


def _check_f(f, p):
    if callable(f) and not isinstance(f, str):
        if p is not None:
            raise ValueError("p is only used with f='power'")
        return f
    if not isinstance(f, str):
        raise TypeError(f"f must be a callable or one of {_NAMED}; got {f!r}")
    if f not in _NAMED:
        raise ValueError(f"f={f!r} is not supported; use one of {_NAMED} or a callable")
    if f == "power":
        if (
            p is None
            or isinstance(p, bool)
            or not isinstance(p, numbers.Real)
            or not math.isfinite(float(p))
        ):
            raise ValueError(f"f='power' needs a finite real exponent p; got p={p!r}")
        return f
    if p is not None:
        raise ValueError(f"p is only used with f='power' (got f={f!r})")
    return f


def _evaluate(f, p, theta: np.ndarray, tol: float) -> np.ndarray:
    """f at the Ritz values ``theta``, with the domain checks of the named functions (Ritz
    values lie inside [lambda_min, lambda_max], so one outside the domain proves A is out of
    it). ``tol`` = (relative size under which a Ritz value counts as zero for the PSD
    functions, and for the positive definite ones) times ``max |theta|``."""
    if callable(f):
        with np.errstate(all="ignore"):
            y = np.asarray(f(theta.copy()))
        if y.dtype.kind == "c":
            # (cast to float64, the imaginary parts were dropped with NumPy's ComplexWarning
            # only: f=np.emath.sqrt on an indefinite A gave a real, wrong trace)
            im = np.abs(y.imag) > 0
            if im.any():
                raise ValueError(
                    f"f returned a complex value at the Ritz value {theta[im][0]:.6g} "
                    "(inside the spectrum of A): tr f(A) is not real"
                )
            y = y.real
        y = np.asarray(y, dtype=np.float64)
        if y.shape != theta.shape:
            raise ValueError(
                f"f returned shape {y.shape} for eigenvalues of shape "
                f"{theta.shape}; it must act elementwise"
            )
        if not np.isfinite(y).all():
            bad = theta[~np.isfinite(y)]
            raise ValueError(
                f"f is not finite at the Ritz value {bad[0]:.6g} (inside the spectrum of A)"
            )
        return y
    lo = float(theta.min())
    need_pos = f in ("log", "inv") or (f == "power" and p < 0)
    need_nonneg = f in ("xlogx", "sqrt") or (f == "power" and not float(p).is_integer())
    what = f if f != "power" else f"power (p={p})"
    tol_psd, tol_pd = tol
    if need_pos and lo <= tol_pd:
        raise ValueError(
            f"f={what!r} needs a positive definite A, but A has an eigenvalue "
            f"<= {lo:.6g} (a Ritz value; Lanczos Ritz values lie inside the "
            "spectrum); shift it, e.g. A + c I"
        )
    if need_nonneg and lo < -tol_psd:
        raise ValueError(
            f"f={what!r} needs a positive semi-definite A, but A has an eigenvalue "
            f"<= {lo:.6g} (a Ritz value; Lanczos Ritz values lie inside the "
            "spectrum)"
        )
    if need_nonneg:
        theta = np.maximum(theta, 0.0)
    with np.errstate(over="ignore"):
        if f == "log":
            y = np.log(theta)
        elif f == "exp":
            y = np.exp(theta)
        elif f == "sqrt":
            y = np.sqrt(theta)
        elif f == "inv":
            y = 1.0 / theta
        elif f == "xlogx":
            y = theta * np.log(np.where(theta > 0, theta, 1.0))
        else:
            y = theta ** float(p)
    if not np.isfinite(y).all():
        bad = theta[~np.isfinite(y)]
        raise ValueError(
            f"f={what!r} overflows float64 at the Ritz value {bad[0]:.6g} (inside the "
            "spectrum of A): tr f(A) is not representable; scale or shift A"
        )
    return y


def _check_common(rtol, n_probes, n_steps, probes, n):
    if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real):
        raise TypeError(f"rtol must be a number; got {rtol!r}")
    rtol = float(rtol)
    if not (0.0 < rtol < 1.0):
        raise ValueError(f"rtol={rtol} must be in (0, 1)")
    if n_probes is not None:
        n_probes = check_int(n_probes, "n_probes", low=1)
    if n_steps is not None:
        n_steps = check_int(n_steps, "n_steps", low=1, hint=" (Lanczos steps per probe)")
        n_steps = min(n_steps, n)
    if probes not in ("rademacher", "gaussian"):
        raise ValueError(f"probes={probes!r}; choose 'rademacher' or 'gaussian'")
    return rtol, n_probes, n_steps


def _mean_and_stderr(s: np.ndarray) -> tuple[float, float]:
    """Mean of the per-probe samples and its standard error (nan for one sample), scaled by
    ``max |s|`` where the plain sums overflow (samples near the float64 limit, e.g.
    ``tr exp(A)`` with eigenvalues of several hundred): the squares in ``std`` overflowed to
    inf there, which crashed the probe count with ``OverflowError``."""
    m = s.size
    with np.errstate(over="ignore", invalid="ignore"):
        value = float(s.mean())
        se = float(s.std(ddof=1) / math.sqrt(m)) if m > 1 else math.nan
    if not (math.isfinite(value) and (m == 1 or math.isfinite(se))):
        scale = float(np.abs(s).max())
        t = s / scale
        value = scale * float(t.mean())
        se = scale * float(t.std(ddof=1) / math.sqrt(m)) if m > 1 else math.nan
    return value, se


def _max_batch(n: int) -> int:
    """Widest probe block for n rows: 16 to 512 columns, at most 2^24 values per array."""
    return int(min(max(_BLOCK_ELEMS // max(n, 1), _FIRST_BATCH), _MAX_PROBES))


def _next_batch(m_done, cap, se, target, n):
    """Probes to add so that the standard error reaches ``target`` (se ~ 1/sqrt(m))."""
    need = math.ceil(m_done * (se / target) ** 2 * 1.1) - m_done if target > 0 else cap
    return int(min(max(need, _MIN_BATCH), _max_batch(n), cap - m_done))


# ----------------------------------------------------------------------------- public


def trace_function(
    A,
    f,
    *,
    p: float | None = None,
    rtol: float = 1e-2,
    n_probes: int | None = None,
    n_steps: int | None = None,
    probes: str = "rademacher",
    random_state=None,
    n_jobs: int | None = None,
    verbose: bool = False,
) -> TraceEstimate:
    """Estimate ``tr f(A)`` of a symmetric matrix by stochastic Lanczos quadrature.

    ``tr f(A) = E[z^T f(A) z]`` for random probes ``z`` with ``E[z z^T] = I``, and
    ``z^T f(A) z = ||z||^2 e_1^T f(T_k) e_1 = ||z||^2 sum_j tau_j^2 f(theta_j)`` up to the
    error of a k-point Gauss quadrature, where ``T_k = U diag(theta) U^T`` is the tridiagonal
    matrix of k Lanczos steps from ``z`` and ``tau_j = U[0, j]`` (Ubaru, Chen & Saad 2017).
    All probes advance in one ``n x m`` block: each step is one pass over ``A``. The number
    of steps is chosen per block (every probe's quadrature moves by less than
    ``0.01 rtol |value|`` over the last 5 steps) and probes are added in blocks until the
    standard error of the mean is at most ``rtol |value| / 3`` (so the error is below
    ``rtol |value|`` with probability about 99 %). Cost:
    ``O(n_probes * n_steps * nnz(A))``, memory ``4 n min(n_probes, max(16, 2^24 / n))`` floats.

    Parameters
    ----------
    A : sparse matrix, ndarray or scipy.sparse.linalg.LinearOperator of shape (n, n)
        Real symmetric (sparse and dense input checked to ``1e-8`` relative; a
        ``LinearOperator`` is trusted and called through ``matmat`` on ``n x m`` blocks).
        float32 or float64; the recurrences run in float64 (float32 dense products in
        float32). No NaN/inf.
    f : callable or {"log", "exp", "xlogx", "sqrt", "inv", "power"}
        A callable maps an array of eigenvalues to an array of the same shape, elementwise.
        ``"xlogx"`` is ``x log x`` with ``0 log 0 = 0`` (von Neumann entropy is
        ``-tr xlogx(rho)``); ``"power"`` is ``x ** p``. ``"log"``, ``"inv"`` and negative
        powers need ``A`` positive definite; ``"sqrt"``, ``"xlogx"`` and non-integer powers
        need it positive semi-definite: a Ritz value outside the domain raises ``ValueError``,
        and so does a value of ``f`` (or a probe's ``z^T f(A) z``) beyond float64's range
        (e.g. ``"exp"`` of eigenvalues above ~700). The domain is checked on the Ritz values
        only, which lie inside the spectrum but need not reach its ends: an indefinite ``A``
        whose negative eigenvalues are few and close to 0, next to many small positive ones,
        can pass (e.g. one eigenvalue ``-1e-5`` among 5,000 spread over ``[0, 1]``: smallest
        Ritz value ``4.6e-4``) and its estimate is then that of ``f`` over a nearby positive
        spectrum, with ``converged=True``; so can a singular one (``"log"`` of a kNN-graph
        Laplacian scaled to norm 1: a finite value, ``converged=True``, where ``tr log`` is
        ``-inf``). Where ``A`` may be indefinite or singular, check its smallest
        eigenvalue first (``geoml.eigsh(A, 1, which="SA")``).
    p : float, optional
        The exponent for ``f="power"``.
    rtol : float
        Requested relative accuracy, ``0 < rtol < 1`` (default ``1e-2``).
    n_probes : int, optional
        Fixed number of probes (default: adaptive, from ``rtol``, at most 512).
    n_steps : int, optional
        Fixed number of Lanczos steps per probe (default: adaptive, at most 300). The
        adaptive rule is then applied once after the last step: if a probe's quadrature
        still moved by more than ``0.01 rtol |value|`` over its last 5 steps (or
        ``n_steps = 1``, unless the Krylov spaces ended), ``converged`` is False with a
        ``RuntimeWarning`` (the truncation error is not in ``stderr``).
    probes : {"rademacher", "gaussian"}
        Probe distribution (Rademacher has the smaller variance; it is exact for diagonal A).
    random_state : int, numpy.random.Generator or None
        Seeds the probes; the result does not depend on ``n_jobs``.
    n_jobs : int, optional
        Threads for the block products (None: OpenMP default; -1: all cores).
    verbose : bool
        Print one line per probe block.

    Returns
    -------
    TraceEstimate
        ``value``, ``stderr``, ``n_probes``, ``n_steps``, ``converged``, ``samples``
        (n_probes,), ``bounds``. When a cap is hit first, ``converged`` is False and a
        ``RuntimeWarning`` is issued.

    References
    ----------
    S. Ubaru, J. Chen and Y. Saad, "Fast estimation of tr(f(A)) via stochastic Lanczos
    quadrature", SIAM J. Matrix Anal. Appl. 38(4), 2017.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, geoml
    >>> A = sp.diags([np.linspace(1.0, 2.0, 500)], [0], format="csr")
    >>> est = geoml.trace_function(A, "log", random_state=0)
    >>> exact = np.log(np.linspace(1.0, 2.0, 500)).sum()
    >>> bool(abs(est.value - exact) <= 1e-2 * exact), est.converged
    (True, True)
    """
    f = _check_f(f, p)
    n, matmat, rel, blas = _operator(A, n_jobs)
    rtol, n_probes, n_steps = _check_common(rtol, n_probes, n_steps, probes, n)
    rng = _rng(random_state)
    max_steps = min(n, _MAX_STEPS)
    cap = n_probes if n_probes is not None else _MAX_PROBES
    samples: list[float] = []
    lo, hi = np.inf, -np.inf
    steps_used, lanczos_ok = 0, True

    def quad(blk, steps=None):
        rules = blk.quadrature(steps=steps)
        theta = np.concatenate([t for t, _ in rules])
        scale = float(np.abs(theta).max())
        y = _evaluate(f, p, theta, (rel[0] * scale, rel[1] * scale))
        sizes = np.cumsum([len(t) for t, _ in rules])[:-1]
        with np.errstate(over="ignore"):
            Q = np.array([w @ yi for (_, w), yi in zip(rules, np.split(y, sizes))]) * blk.norm2
        if not np.isfinite(Q).all():
            raise ValueError(
                "z^T f(A) z overflows float64 for a probe z (largest Ritz value "
                f"{float(theta.max()):.6g}): tr f(A) is not representable; scale or shift A"
            )
        return Q, float(theta.min()), float(theta.max())

    state = {}

    def stop(blk):
        Q, _, _ = quad(blk)
        prev = state.get("Q")
        state["Q"] = Q
        if prev is None:
            return False
        ref = max(abs(_mean_and_stderr(Q)[0]), 1e-300)
        with np.errstate(over="ignore"):
            return bool(np.all(np.abs(Q - prev) <= _STEP_FRACTION * rtol * ref))

    def settled(blk):
        # a fixed n_steps: the adaptive rule once, the last step's quadratures against those
        # of _CHECK_EVERY steps before (a 1-step rule cannot be judged); with n_steps=2 the
        # estimate of tr L^-1 was 18 % off with converged=True and a 0.3 % stderr
        if blk.k < 2:
            return False
        state["Q"] = quad(blk, steps=max(1, blk.k - _CHECK_EVERY))[0]
        return stop(blk)

    batch = min(cap, _max_batch(n) if n_probes is not None else _FIRST_BATCH)
    with blas:
        while True:
            state.clear()
            Z = _probes(rng, probes, n, batch)
            blk, ok = _run_block(matmat, Z, n_steps, max_steps, stop, settled)
            Q, tlo, thi = quad(blk)
            lanczos_ok &= ok
            steps_used = max(steps_used, blk.k)
            del Z, blk
            samples.extend(Q.tolist())
            lo, hi = min(lo, tlo), max(hi, thi)
            m = len(samples)
            s = np.asarray(samples)
            value, se = _mean_and_stderr(s)
            target = rtol * abs(value) / 3
            if verbose:
                print(
                    f"trace_function: {m} probes, value {value:.8g} +- {se:.3g} "
                    f"(target {target:.3g}), Ritz values in [{lo:.4g}, {hi:.4g}]"
                )
            if n_probes is not None:
                if m >= n_probes:
                    break
                batch = min(_max_batch(n), n_probes - m)
                continue
            if se <= target:
                break
            if m >= cap:
                break
            batch = _next_batch(m, cap, se, target, n)
    converged = bool(lanczos_ok and (n_probes is not None or m == 1 or se <= target))
    if not converged:
        why = (
            f"the Lanczos quadrature did not settle in {max_steps} steps"
            if not lanczos_ok and n_steps is None
            else f"the Lanczos quadrature had not settled after n_steps={n_steps} steps "
            f"(a probe's quadrature moved by more than {_STEP_FRACTION:g} rtol |value| over "
            "the last steps; the truncation error is not in stderr): raise n_steps, or "
            "leave it None"
            if not lanczos_ok
            else f"the standard error {se:.3g} is above rtol |value| / 3 = {target:.3g} after "
            f"{m} probes"
        )
        warnings.warn(
            f"trace_function did not reach rtol={rtol:g}: {why}; the estimate is "
            "returned with converged=False",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return TraceEstimate(value, se, m, steps_used, converged, s, (lo, hi))


def _check_edges(bins, sigma):
    if sigma is not None:
        if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
            raise TypeError(f"sigma must be a positive number or None; got {sigma!r}")
        sigma = float(sigma)
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(
                f"sigma={sigma} must be a positive finite number (or None for a histogram)"
            )
    if isinstance(bins, numbers.Integral) and not isinstance(bins, bool):
        return check_int(bins, "bins", low=1), None, sigma
    if isinstance(bins, (str, bool)) or bins is None:
        raise TypeError(f"bins must be an int or an array of edges; got {bins!r}")
    edges = as_float_array(bins, "bins", ndim=1, dtype=np.float64)
    if edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError("bins as edges must hold at least 2 strictly increasing values")
    return edges.size - 1, edges, sigma


def _cdf_rows(rules, grid):
    """(m, len(grid)) per-probe CDFs (interpolated as in ``SpectralDensity.cells``)."""
    out = np.empty((len(rules), grid.size))
    for i, rule in enumerate(rules):
        out[i] = _measure_cdf(*_cells([rule]), grid)
    return out


def spectral_density(
    A,
    *,
    bins=100,
    sigma: float | None = None,
    rtol: float = 1e-2,
    n_probes: int | None = None,
    n_steps: int | None = None,
    probes: str = "rademacher",
    random_state=None,
    n_jobs: int | None = None,
    verbose: bool = False,
) -> SpectralDensity:
    """Spectral density (density of states) of a symmetric matrix by stochastic Lanczos
    quadrature.

    The spectral measure ``mu = (1/n) sum_i delta(x - lambda_i)`` is estimated by the average
    over probes ``z`` of the Gauss rules ``sum_j tau_j^2 delta(x - theta_j)`` from ``k``
    Lanczos steps (nodes: Ritz values ``theta_j``, weights: squared first components
    ``tau_j^2`` of the eigenvectors of ``T_k``), then binned, or smoothed by a Gaussian of width
    ``sigma`` (Lin, Saad & Yang 2016). The estimated CDF interpolates the
    Chebyshev-Markov-Stieltjes bounds (each Ritz value's weight is spread between the midpoints
    to its neighbours; a converged one stays an atom). The steps are chosen per probe block
    (until the largest weight of a Ritz value not yet converged averages at most ``5 rtol``
    over the probes) and probes are added until the standard error of the CDF is at most
    ``rtol / 2`` everywhere; with the defaults the Kolmogorov-Smirnov distance to the exact
    spectrum is about ``rtol`` or less (measured: 0.003-0.014 on kNN-graph Laplacians of
    2,000-5,000 nodes). Probes advance as one block, as in :func:`trace_function`.

    Parameters
    ----------
    A : sparse matrix, ndarray or scipy.sparse.linalg.LinearOperator of shape (n, n)
        Real symmetric, as in :func:`trace_function`.
    bins : int or array-like of shape (bins + 1,)
        Number of equal bins over the estimated spectrum (default 100), or increasing edges.
    sigma : float, optional
        Width of the Gaussian smoothing; None (default) gives a histogram of the nodes.
    rtol : float
        Target accuracy of the estimated CDF, ``0 < rtol < 1`` (default ``1e-2``).
    n_probes, n_steps : int, optional
        Fix the number of probes (default: adaptive, at most 512) or of Lanczos steps
        (default: adaptive, at most 300; a fixed number is held to the adaptive rule once,
        after the last step: ``converged`` False and a ``RuntimeWarning`` when it fails).
    probes, random_state, n_jobs, verbose
        As in :func:`trace_function`.

    Returns
    -------
    SpectralDensity
        ``edges`` (bins + 1,), ``centers`` (bins,), ``density`` (bins,), the quadrature
        ``nodes`` and ``weights`` (their ``cdf(x)`` method gives the estimated CDF),
        ``n_probes``, ``n_steps``, ``converged``.

    References
    ----------
    L. Lin, Y. Saad and C. Yang, "Approximating spectral densities of large matrices",
    SIAM Review 58(1), 2016. S. Ubaru, J. Chen and Y. Saad, SIAM J. Matrix Anal. Appl.
    38(4), 2017.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, geoml
    >>> A = sp.diags([np.repeat([1.0, 3.0], [300, 100])], [0], format="csr")
    >>> sd = geoml.spectral_density(A, bins=4, random_state=0)
    >>> sd.edges
    array([1. , 1.5, 2. , 2.5, 3. ])
    >>> np.round(sd.density * np.diff(sd.edges), 6)
    array([0.75, 0.  , 0.  , 0.25])
    """
    nbins, edges, sigma = _check_edges(bins, sigma)
    n, matmat, _, blas = _operator(A, n_jobs)
    rtol, n_probes, n_steps = _check_common(rtol, n_probes, n_steps, probes, n)
    rng = _rng(random_state)
    max_steps = min(n, _MAX_STEPS)
    cap = n_probes if n_probes is not None else _MAX_PROBES

    def stop(blk):
        # Chebyshev-Markov-Stieltjes: a Gauss rule's CDF is off by at most the weight of a
        # node, and by nothing at a converged Ritz value (an exact atom of the probe's measure);
        # the interpolated CDF (cells) is far closer than that bound on smooth spectra
        rules = blk.quadrature(residuals=True)
        return bool(np.mean([(w * u).max() for _, w, u in rules]) <= _DENSITY_WEIGHT * rtol)

    all_rules: list = []
    steps_used, lanczos_ok = 0, True
    batch = min(cap, _max_batch(n) if n_probes is not None else _FIRST_BATCH)
    with blas:
        while True:
            blk, ok = _run_block(
                matmat, _probes(rng, probes, n, batch), n_steps, max_steps, stop, stop
            )
            lanczos_ok &= ok
            steps_used = max(steps_used, blk.k)
            all_rules.extend(blk.quadrature(residuals=True))
            del blk
            m = len(all_rules)
            theta = np.concatenate([r[0] for r in all_rules])
            grid = np.linspace(theta.min(), theta.max(), 201)
            C = _cdf_rows(all_rules, grid)
            se = float(C.std(axis=0, ddof=1).max() / math.sqrt(m)) if m > 1 else math.nan
            if verbose:
                print(
                    f"spectral_density: {m} probes, CDF standard error {se:.3g} (target "
                    f"{rtol / 2:.3g}), Ritz values in [{theta.min():.4g}, {theta.max():.4g}]"
                )
            if n_probes is not None:
                if m >= n_probes:
                    break
                batch = min(_max_batch(n), n_probes - m)
                continue
            if se <= rtol / 2 or m >= cap:
                break
            batch = _next_batch(m, cap, se, rtol / 2, n)
    converged = bool(lanczos_ok and (n_probes is not None or m == 1 or se <= rtol / 2))
    if not converged:
        warnings.warn(
            f"spectral_density did not reach rtol={rtol:g} ("
            + (
                f"the Ritz values had not settled after n_steps={n_steps} steps: raise it"
                if not lanczos_ok and n_steps is not None
                else "Lanczos steps cap hit"
                if not lanczos_ok
                else f"{m} probes cap hit"
            )
            + "); the estimate is returned with converged=False",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    nodes, weights, cells = _cells(all_rules)
    if edges is None:
        lo, hi = float(nodes.min()), float(nodes.max())
        if sigma is not None:
            lo, hi = lo - 4 * sigma, hi + 4 * sigma
        # a point spectrum gets the window [x - 0.5, x + 0.5]; a narrow spectrum of small
        # eigenvalues keeps its own width (the test was absolute below 1: a spectrum within
        # [1e-150, 2e-150] went into one bin of [-0.5, 0.5])
        if hi - lo <= 1e-12 * max(abs(lo), abs(hi)):
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, nbins + 1)
    width = np.diff(edges)
    if sigma is None:
        atom = cells[:, 1] <= cells[:, 0]
        mass, _ = np.histogram(nodes[atom], bins=edges, weights=weights[atom])
        spread = ~atom
        mass += np.diff(_measure_cdf(nodes[spread], weights[spread], cells[spread], edges))
    else:
        from scipy.special import ndtr

        mass = np.zeros(nbins)
        for s in range(0, nodes.size, 4096):
            t, w = nodes[s : s + 4096, None], weights[s : s + 4096, None]
            mass += (w * np.diff(ndtr((edges[None, :] - t) / sigma), axis=1)).sum(axis=0)
    return SpectralDensity(
        edges,
        0.5 * (edges[1:] + edges[:-1]),
        mass / width,
        nodes,
        weights,
        cells,
        m,
        steps_used,
        converged,
    )
