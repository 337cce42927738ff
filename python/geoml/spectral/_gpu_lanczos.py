"""GPU path of :func:`geoml.eigsh` and of the spectral estimators: thick-restart Lanczos with
the basis on the device.

``geoml.eigsh`` dispatches here for CuPy dense arrays and ``cupyx.scipy.sparse`` matrices (see
:func:`eigsh`); ``LaplacianEigenmap``, ``DiffusionMap`` and ``SpectralClustering`` call
:func:`affinity_csr` and :func:`lsym_smallest` for device input or ``device="cuda"``. Imported
only on demand; ``import geoml`` never imports this module nor CuPy.

The solver (:func:`lanczos`) is written once against an array module ``xp``: with CuPy, the
Lanczos vectors (an ``(ncv + 1) x n`` array) stay on the device, products with a CSR matrix run
the ``geoml._cuda`` SpMV kernel (one warp per row), with a dense matrix cuBLAS GEMV, and the
orthogonalisation is two cuBLAS GEMVs per pass (``V[:j] @ w``, ``V[:j].T @ h``); only the small
projected matrix (``ncv x ncv``) and a few scalars per step come to the host. With NumPy the
same code runs on the host, which is how the CPU test suite checks the algorithm.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import _core, _gpu
from .._validation import is_gpu_array, random_seed, user_stacklevel
from ._eigsh import _CHECK_FAILED, _check_solver_args

__all__ = ["affinity_csr", "eigsh", "lanczos", "lsym_smallest"]


def _want_key(which: str, theta: np.ndarray) -> np.ndarray:
    """Sort key of Ritz values: smaller = more wanted."""
    if which == "LA":
        return -theta
    if which == "SA":
        return theta
    return -np.abs(theta)


def lanczos(
    matvec,
    n: int,
    k: int,
    *,
    which: str = "LA",
    tol: float = 1e-10,
    max_iter: int = 1000,
    ncv: int | None = None,
    v0=None,
    seed: int = 0,
    xp=np,
    dtype=np.float64,
):
    """Thick-restart Lanczos (Wu & Simon 2000) for ``k`` extreme eigenpairs of a symmetric
    operator, with full reorthogonalisation (classical Gram-Schmidt, repeated when it cancels:
    DGKS) — the algorithm of the CPU solver without its locking, Chebyshev filter and final
    multiplicity check.

    ``matvec(x) -> A x`` on length-``n`` vectors of ``xp`` (NumPy or CuPy) and ``dtype``. A pair
    ``(theta, x)`` is converged when ``|beta_m y_m| <= tol * anorm`` (the Lanczos residual
    estimate), ``anorm`` being the largest ``|theta|`` seen. Each restart cycle keeps the
    ``q = k + max(1, (m - k) // 2)`` most wanted Ritz vectors plus the residual vector (arrowhead
    projected matrix). Memory: ``(ncv + 1) n`` values of ``dtype``; per cycle ``ncv - q``
    products with ``A`` and O(n ncv^2) for the orthogonalisation.

    Returns ``(eigenvalues, eigenvectors, n_iter, residual_norms, converged, n_matvec,
    anorm)``: eigenvalues ascending (``xp`` array, float64), eigenvectors ``xp`` array (n, k) of
    ``dtype`` with orthonormal columns, residual norms ``||A x - theta x||`` computed with
    ``matvec`` (``xp`` array).
    """
    if not isinstance(which, str) or which not in _core.Which.__members__:
        raise ValueError(f"which={which!r}; choose 'LA', 'SA' or 'LM'")
    if not 1 <= k < n:
        raise ValueError(f"k={k} must be in [1, {n - 1}]")
    m = max(2 * k + 1, 20) if ncv is None else ncv
    m = min(max(m, k + 2), n)
    eps = float(np.finfo(dtype).eps)
    rng = np.random.default_rng(seed)
    V = xp.zeros((m + 1, n), dtype=dtype)
    Tm = np.zeros((m + 1, m + 1))
    n_matvec = 0

    def norm(x) -> float:
        return float(xp.sqrt(xp.dot(x, x)))

    def cgs(w, jj):
        """One classical Gram-Schmidt pass of w against V[:jj]: (w, h on the host, ||w||)."""
        if jj == 0:
            return w, np.zeros(0), norm(w)
        h = V[:jj] @ w
        w = w - V[:jj].T @ h
        h_host = h.get() if hasattr(h, "get") else np.asarray(h)
        return w, h_host.astype(np.float64), norm(w)

    def random_orth(jj):
        """A random unit vector orthogonal to V[:jj], or None if none can be found."""
        for _ in range(3):
            x = xp.asarray(rng.standard_normal(n).astype(dtype))
            n0 = norm(x)
            x, _, _ = cgs(x, jj)
            x, _, n1 = cgs(x, jj)
            if n1 > 1e-3 * n0:
                return x / dtype(n1)
        return None

    x = None
    if v0 is not None:
        x = xp.asarray(v0, dtype=dtype).reshape(-1)
        nx = norm(x)
        x = x / dtype(nx) if nx > 0 else None
    if x is None:
        x = random_orth(0)
    V[0] = x

    p, anorm, converged = 0, 0.0, False
    theta = Y = order = None
    mcur = m
    it = 0
    for it in range(1, max_iter + 1):
        mcur, beta_m = m, 0.0
        x, xprev = V[p], None
        for j in range(p, m):
            w = matvec(x)
            n_matvec += 1
            nop = norm(w)
            alpha = float(xp.dot(w, x))
            if j > p:
                bprev = Tm[j, j - 1]
                w = w - dtype(alpha) * x - dtype(bprev) * xprev
            else:
                w = w - dtype(alpha) * x
            nref = norm(w)
            w, h, nrm = cgs(w, j + 1)
            alpha += h[j]
            if nrm < 0.7071 * nref:
                w, h2, nrm = cgs(w, j + 1)
                alpha += h2[j]
            Tm[j, j] = alpha
            beta = nrm
            if not nrm > 100 * eps * nop:  # invariant subspace (or A x = 0): go on elsewhere
                beta = 0.0
                w = random_orth(j + 1)
                if w is None:  # the basis spans the whole space: every Ritz pair is exact
                    mcur = j + 1
                    break
                nrm = 1.0
            if j + 1 < m:
                Tm[j + 1, j] = Tm[j, j + 1] = beta
            else:
                beta_m = beta
            xprev = x
            x = w / dtype(nrm)
            V[j + 1] = x
        if mcur < m:
            beta_m = 0.0

        theta, Y = np.linalg.eigh(Tm[:mcur, :mcur])
        order = np.argsort(_want_key(which, theta), kind="stable")
        anorm = max(anorm, float(np.abs(theta).max()))
        est = np.abs(beta_m * Y[mcur - 1, order[:k]])
        if (est <= tol * max(anorm, np.finfo(np.float64).tiny)).all():
            converged = True
            break
        if it == max_iter:
            break
        # Thick restart: keep the q most wanted Ritz vectors, then the residual vector.
        q = max(k, min(mcur - 1, k + max(1, (mcur - k) // 2)))
        sel = order[:q]
        Ys = xp.asarray(np.ascontiguousarray(Y[:, sel].T).astype(dtype))
        V[:q] = Ys @ V[:mcur]
        V[q] = V[m]
        Tm[:] = 0.0
        Tm[np.arange(q), np.arange(q)] = theta[sel]
        Tm[q, :q] = Tm[:q, q] = beta_m * Y[mcur - 1, sel]
        p = q

    sel = order[:k]
    sel = sel[np.argsort(theta[sel], kind="stable")]
    X = xp.asarray(np.ascontiguousarray(Y[:, sel].T).astype(dtype)) @ V[:mcur]  # (k, n)
    w_out = theta[sel]
    res = np.empty(k)
    for i in range(k):
        r = matvec(X[i]) - dtype(w_out[i]) * X[i]
        n_matvec += 1
        res[i] = norm(r)
    return (
        xp.asarray(w_out),
        xp.ascontiguousarray(X.T),
        it,
        xp.asarray(res),
        converged,
        n_matvec,
        anorm,
    )


def _csr_matvec(A, cp, mod):
    """``x -> A x`` for a float32/float64 ``cupyx.scipy.sparse.csr_matrix`` (duplicates summed)
    with the ``geoml._cuda`` SpMV kernel (one warp per row) on CuPy's current stream."""
    dtype = A.dtype.type
    n = A.shape[0]
    data = cp.ascontiguousarray(A.data)
    indices, indptr = A.indices, A.indptr
    if indices.dtype != indptr.dtype:
        wide = np.promote_types(indices.dtype, indptr.dtype)
        indices, indptr = indices.astype(wide), indptr.astype(wide)
    indices, indptr = cp.ascontiguousarray(indices), cp.ascontiguousarray(indptr)
    if indptr.dtype not in (np.int32, np.int64):
        indices, indptr = indices.astype(np.int64), indptr.astype(np.int64)
    ptr = _gpu.device_pointer
    idt = str(indptr.dtype)
    dev = cp.cuda.Device().id

    def matvec(x):
        x = cp.ascontiguousarray(x)
        y = cp.empty(n, dtype=dtype)
        mod.csr_spmv(
            n,
            ptr(indptr, idt),
            ptr(indices, idt),
            ptr(data, str(data.dtype)),
            ptr(x, str(x.dtype)),
            ptr(y, str(y.dtype)),
            dev,
            cp.cuda.get_current_stream().ptr,
            dtype=data.dtype,
            index_dtype=indptr.dtype,
        )
        return y

    return matvec


def eigsh(
    A,
    k: int = 6,
    *,
    which: str = "LA",
    tol: float | None = None,
    max_iter: int | None = None,
    ncv: int | None = None,
    v0=None,
    random_state=None,
    check: bool = False,
    check_block: int = 4,
    check_steps: int = 20,
):
    """``geoml.eigsh`` for a CuPy dense array or a ``cupyx.scipy.sparse`` matrix.

    Same parameters and convergence test as the CPU solver (``tol`` default ``1e-10`` for
    float64, ``1e-5`` for float32, ``0`` meaning ``100 eps``, others raised to ``10 eps``;
    ``max_iter`` restart cycles, default 1000; ``ncv`` default ``max(2 k + 1, 20)``).
    float32 stays float32, other dtypes become
    float64. Runs on CuPy's current stream; each Lanczos step reads back a few scalars (norms,
    the projection coefficients), which synchronises that stream.

    Returns ``(eigenvalues, eigenvectors, n_iter, residual_norms, converged, n_matvec,
    anorm)`` — the fields of ``geoml.spectral.EigshResult`` in order, arrays as CuPy arrays —
    and warns (``RuntimeWarning``) when it did not converge.

    ``check=True`` (what :func:`geoml.eigsh` passes by default) then runs the CPU solver's
    deflated block check (``_eigsh_block.deflated_check``, the same array-module-generic
    code, blocks on the device, block products ``A @ X``) and returns ``(fields, report)``
    with the check's ``CheckReport`` (None when Lanczos ran out of restarts: no check, as on
    the CPU); ``converged`` then also requires a passing check.
    """
    cp, mod = _gpu.require_cuda("eigsh")
    import cupyx.scipy.sparse as csp

    if not isinstance(which, str) or which not in _core.Which.__members__:
        raise ValueError(f"which={which!r}; choose 'LA', 'SA' or 'LM'")
    if csp.issparse(A):
        A = A.tocsr()
        if A.dtype not in (np.float32, np.float64):
            if A.dtype.kind not in "fiub":
                raise TypeError(f"A must hold real numbers; got dtype {A.dtype}")
            A = A.astype(np.float64)
        A.sum_duplicates()
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be square; got shape {A.shape}")
        if A.nnz and not bool(cp.isfinite(A.data).all()):
            raise ValueError("A contains NaN or infinity")
        dtype = A.dtype.type
        scale = float(abs(A).max()) if A.nnz else 0.0
        asym = float(abs(A - A.T).max()) if A.nnz else 0.0
        n = A.shape[0]
        matvec = _csr_matvec(A, cp, mod)
    elif is_gpu_array(A):
        from .._neighbors_gpu import as_device_float_array

        A = as_device_float_array(A, "A", cp)
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be square; got shape {A.shape}")
        dtype = A.dtype.type
        n = A.shape[0]
        scale = float(cp.abs(A).max())
        asym = float(cp.abs(A - A.T).max())

        def matvec(x):
            return A @ x
    else:
        raise TypeError("the GPU eigsh takes a CuPy array or a cupyx.scipy.sparse matrix")
    if asym > 1e-8 * scale:
        raise ValueError(
            "A is not symmetric (max |A - A.T| > 1e-8 max |A|); eigsh needs a "
            "symmetric matrix: pass (A + A.T) / 2"
        )
    k, tol, max_iter, ncv = _check_solver_args(
        n, k, tol, max_iter, ncv, dtype, "cupy", allow_zero_tol=False
    )
    if v0 is not None:
        v0 = cp.asarray(v0, dtype=dtype).reshape(-1)
        if v0.shape[0] != n:
            raise ValueError(f"v0 has {v0.shape[0]} entries; A has {n} rows")
        if not bool(cp.isfinite(v0).all()):
            raise ValueError("v0 contains NaN or infinity")
    seed = random_seed(random_state)
    out = lanczos(
        matvec,
        n,
        k,
        which=which,
        tol=tol,
        max_iter=max_iter,
        ncv=ncv,
        v0=v0,
        seed=seed,
        xp=cp,
        dtype=dtype,
    )
    if not check:
        if not out[4]:
            warnings.warn(
                f"eigsh did not converge in {out[2]} restart cycles: raise max_iter or "
                "ncv, or loosen tol",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
        return out

    def matmat(X):  # float64 (n, b) device block -> A X in float64
        return cp.asarray(A @ X.astype(dtype, copy=False), dtype=cp.float64)

    out, report = check_lanczos_result(
        out, matmat, n, k, which, tol, seed, check_block, check_steps, max_iter
    )
    return out, report


def check_lanczos_result(out, matmat, n, k, which, tol, seed, block, steps, max_iter):
    """The deflated block check on the fields ``out`` of :func:`lanczos` (any array module);
    returns (fields, report), warning as the CPU ``eigsh`` does. Run on the host with NumPy
    by the tests, on the device by :func:`eigsh`."""
    from ._eigsh import _run_check
    from ._eigsh_block import array_module, to_host

    w, V, n_iter, res, conv, n_mv, anorm = out
    xp = array_module(V)
    if not (conv or n_iter < max_iter):  # ran out of restarts: no check (as on the CPU)
        warnings.warn(
            f"eigsh did not converge in {n_iter} restart cycles: raise max_iter or "
            "ncv, or loosen tol",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
        return out, None
    w_h, res_h = to_host(w), to_host(res)
    w_h, V, res_h, report, anorm = _run_check(
        matmat,
        n,
        w_h,
        V,
        res_h,
        k,
        which,
        tol,
        float(anorm),
        V.dtype,
        seed,
        block,
        steps,
        int(n_mv),
    )
    n_mv += report.n_matvec
    conv = bool(report.passed and (res_h <= tol * anorm).all())
    if not report.passed:
        warnings.warn(_CHECK_FAILED, RuntimeWarning, stacklevel=user_stacklevel())
    elif not conv:
        warnings.warn(
            f"eigsh did not converge in {n_iter} restart cycles: largest residual "
            f"{res_h.max():.3g} > tol * ||A|| = {tol * anorm:.3g}; raise max_iter or "
            "ncv, or loosen tol",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return (xp.asarray(w_h), V, n_iter, xp.asarray(res_h), conv, n_mv, anorm), report


def affinity_csr(W, name: str = "X"):
    """Validated ``cupyx.scipy.sparse.csr_matrix`` float64 affinity: square, finite,
    non-negative, symmetric to 1e-8 relative, diagonal (self-loops) dropped — the device twin
    of ``geoml.spectral._affinity_csr``."""
    cp, _ = _gpu.require_cuda("the spectral estimators")
    import cupyx.scipy.sparse as csp

    if not csp.issparse(W):
        raise TypeError(f"{name} must be a cupyx.scipy.sparse matrix; got {type(W).__name__}")
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"{name} must be square; got shape {W.shape}")
    if W.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers; got dtype {W.dtype}")
    W = W.tocsr().astype(np.float64)
    W.sum_duplicates()
    if W.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if W.nnz:
        if not bool(cp.isfinite(W.data).all()):
            raise ValueError(f"{name} contains NaN or infinity")
        if float(W.data.min()) < 0:
            raise ValueError(f"{name} has negative entries; affinities must be >= 0")
        if float(abs(W - W.T).max()) > 1e-8 * float(abs(W).max()):
            raise ValueError(
                f"{name} is not symmetric; symmetrise it first, e.g. "
                f"{name}.maximum({name}.T) or ({name} + {name}.T) / 2"
            )
        diag = W.diagonal()
        if bool(diag.any()):
            W = (W - csp.diags(diag)).tocsr()
        W.eliminate_zeros()
    return W


def lsym_smallest(W, k: int, *, tol: float, seed: int, max_iter: int = 1000, xp=None):
    """The ``k`` smallest eigenpairs of ``L_sym = I - D^-1/2 W D^-1/2`` on the device.

    The same reduction as the CPU path (``geoml.spectral._lsym_smallest``): the null space of
    ``L_sym`` (``D^1/2 1_C`` per connected component ``C``, ``e_i`` for an isolated node) is put
    in exactly; the other ``k - c`` pairs are the largest of ``P (N + I) P`` by :func:`lanczos`,
    ``N = D^-1/2 W D^-1/2`` and ``P`` the projector onto the complement of the null space
    (applied with per-component sums, no dense basis), so ``L``'s eigenvalue is
    ``2 - theta``. The components are labelled on the host from the CSR pattern (two index
    arrays copied down, O(nnz)); everything else stays on the device. No Chebyshev filter
    here (the CPU solver's ``p(N)``): on the GPU the basis work per product is cheap.

    ``W``: ``cupyx.scipy.sparse.csr_matrix`` float64 from :func:`affinity_csr` (or a SciPy CSR
    matrix with ``xp=numpy``, which runs the same code on the host for the CPU test suite).
    Returns ``(eigenvalues (k,) ascending as a NumPy array, eigenvectors (n, k) and degrees
    (n,) as ``xp`` arrays, converged, info)`` like the CPU path.
    """
    import scipy.sparse as sp
    from scipy.sparse import csgraph

    from ._laplacian import _scale_both

    if xp is None:
        xp, mod = _gpu.require_cuda("the spectral estimators")

        def host(a):
            return a.get()
    else:
        mod = None

        def host(a):
            return np.asarray(a)

    n = W.shape[0]
    d = xp.asarray(W.sum(axis=1), dtype=np.float64).ravel()
    pos = d > 0
    s = xp.where(pos, 1.0 / xp.sqrt(xp.where(pos, d, 1.0)), 0.0)
    N = _scale_both(W, s)
    pattern = sp.csr_matrix((np.ones(W.nnz), host(W.indices), host(W.indptr)), shape=(n, n))
    ncomp, lab_h = csgraph.connected_components(pattern, directed=False)
    lab = xp.asarray(lab_h)
    z = xp.where(pos, xp.sqrt(d), 1.0)  # null vectors, normalised per component below
    z = z / xp.sqrt(xp.bincount(lab, weights=z * z, minlength=ncomp))[lab]
    info = {"components": int(ncomp), "n_matvec": 0, "n_iter": 0}
    nz = min(ncomp, k)
    Z = xp.zeros((n, nz))
    first = lab < nz
    Z[xp.nonzero(first)[0], lab[first]] = z[first]
    if ncomp >= k:
        return np.zeros(k), Z, d, True, info
    kk = k - ncomp
    if kk > n - ncomp - 1:
        raise ValueError(
            f"{k} eigenpairs requested but the graph has only {n} nodes (and {ncomp} components)"
        )

    def project(x):
        return x - z * xp.bincount(lab, weights=z * x, minlength=ncomp)[lab]

    spmv = (lambda x: N @ x) if mod is None else _csr_matvec(N, xp, mod)

    def matvec(x):
        x = project(x)
        return project(spmv(x) + x)

    rng = np.random.default_rng(seed)
    v0 = project(xp.asarray(rng.standard_normal(n)))
    w, V, n_iter, res, conv, n_mv, _ = lanczos(
        matvec, n, kk, which="LA", tol=tol, max_iter=max_iter, v0=v0, seed=seed, xp=xp
    )
    info.update(n_matvec=int(n_mv), n_iter=int(n_iter), residuals=host(res))
    lam = np.concatenate([np.zeros(ncomp), 2.0 - host(w)[::-1]])
    if not conv:
        warnings.warn(
            f"the Laplacian eigensolver did not converge in {n_iter} restart cycles "
            f"(largest residual {float(res.max()):.3g}, tol {tol:.3g})",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return lam, xp.hstack([Z, V[:, ::-1]]), d, bool(conv), info
