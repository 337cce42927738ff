"""PHATE (Moon et al. 2019): potential of heat-diffused affinities, sparse and with landmarks."""

from __future__ import annotations

import contextlib
import numbers
import time
import warnings

import numpy as np
import scipy.sparse as sp

from .. import _core, _lapack
from .._base import BaseEstimator, EmbeddingMixin
from .._lapack import eigvalsh_band, eigvalsh_two_stage
from .._validation import (
    as_real,
    blas_for_dense,
    can_hold_blas,
    check_int,
    check_n_jobs,
    check_random_state,
    in_row_blocks,
    random_seed,
    reject_gpu,
    single_threaded_blas,
    truncate_to_samples,
    user_stacklevel,
)
from ..spectral._eigsh import _symmetry_error
from ..spectral._laplacian import _even_shift
from ._heat import _permute
from ._heatgeo import (
    _check_decay,
    _components,
    _input_graph,
    _owned,
    _transform_new,
    alpha_decay_graph,
)
from ._mds import MDS, say

# phate: -log(P^t + 1e-7) for gamma = 1
_POT_EPS = 1e-7
# SMACOF's relative stress-decrease tolerance (scikit-learn's and phate's smacof default)
_SMACOF_EPS = 1e-6
# k-means++ seeding of the landmark clustering runs in a random projection to this many dims
_SEED_DIM = 16
# centres per GEMM of the first Lloyd assignment (:func:`_nearest_as_seeded`: fixed blocks,
# scored while the seeding runs on two threads; a multiple of 64, where OpenBLAS gives each
# column the one-GEMM assignment's bits)
_SEED_CHUNK = 256


def _blas_threads(nt: int):
    """BLAS (NumPy/SciPy) held to the estimator's thread count (``n_jobs``; by default
    geoml's load-aware count) while it runs, via threadpoolctl when installed: on a loaded
    2-core machine OpenBLAS' own pool made a 3,000 x 110 QR 25x slower (5.1 s vs 0.2 s)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(nt if nt > 0 else max(1, _core.max_threads()), user_api="blas")


def _matmul_rows(X, Y, nt: int) -> np.ndarray:
    """``X @ Y`` as the two halves of X's rows, on up to two of ``nt`` threads
    (:func:`geoml._validation.in_row_blocks`). A fixed split: smaller blocks repack ``Y`` for
    each (on the landmarks' 2,000 x 2,000 float32 products, one thread: 256-row blocks
    0.145 s, halves 0.116, one GEMM 0.115)."""
    out = np.empty((X.shape[0], Y.shape[1]), dtype=np.result_type(X, Y))

    def run(st, e):
        np.matmul(X[st:e], Y, out=out[st:e])

    in_row_blocks(run, X.shape[0], max(1, -(-X.shape[0] // 2)), nt)
    return out


def _gram_halves(X, nt: int) -> np.ndarray:
    """``X X^T`` in 2 x 2 blocks of the halves of X's rows: the two diagonal blocks by SYRK
    (NumPy's ``A @ A.T``) on one thread, the off-diagonal one by a GEMM on another (the same
    flops: a row-block GEMM of the whole would cost twice a SYRK's, 0.22-0.26 vs 0.12 s on
    the landmarks' 2,000 x 2,000 float64 potential), the lower one its transpose: exactly
    symmetric, the same bits for any ``nt``."""
    n = X.shape[0]
    h = n // 2
    out = np.empty((n, n), dtype=X.dtype)

    def run(i, _):
        if i == 0:
            out[:h, :h] = X[:h] @ X[:h].T
            out[h:, h:] = X[h:] @ X[h:].T
        else:
            out[:h, h:] = X[:h] @ X[h:].T

    in_row_blocks(run, 2, 1, nt)
    out[h:, :h] = out[:h, h:].T
    return out


def _phate_kernel(X, knn, decay, *, method="exact", random_state=None, n_jobs=None):
    """graphtools' kNN alpha-decay kernel (the 0/1 kNN kernel for ``decay=None``) with its
    unit diagonal: ``W + I``."""
    W = alpha_decay_graph(
        X, knn, decay, method=method, random_state=random_state, n_jobs=n_jobs
    ).astype(np.float64)
    K = (W + sp.identity(W.shape[0], dtype=np.float64, format="csr")).tocsr()
    K.sort_indices()
    return K


def _kernel_shift(d: np.ndarray) -> int:
    """The power of two ``e`` by which PHATE forms its operators from ``K / 2^e`` (they do
    not depend on the scale of ``K``): 0 for degrees ``d`` within ``[2^-400, 2^400]``, else
    about the exponent of the largest, even (a precomputed kernel of 1e-310 made ``1 / d``
    overflow and the fit fail inside LAPACK: "array must not contain infs or NaNs").
    ``ValueError`` when the degrees overflow float64."""
    dmax = float(d.max(initial=0.0))
    if not np.isfinite(dmax):
        raise ValueError("the kernel's row sums overflow float64: rescale it")
    return _even_shift(dmax)


def _check_kernel(K, name: str = "X") -> sp.csr_matrix:
    """A precomputed affinity (kernel) used as given, diagonal included."""
    reject_gpu(K, name, "PHATE")
    if not sp.issparse(K):
        K = as_real(np.asarray(K), name)
        if K.ndim != 2:
            raise ValueError(f"{name} must be a 2-D square affinity matrix; got shape {K.shape}")
    else:
        K = as_real(K, name)
    if K.shape[0] != K.shape[1]:
        raise ValueError(f"{name} must be a square affinity matrix; got shape {K.shape}")
    # a copy: sum_duplicates / eliminate_zeros / sort_indices below work in place, and would
    # leave a caller's CSR matrix (whose arrays sp.csr_matrix shares) with nnz < len(data)
    K = sp.csr_matrix(K, dtype=np.float64, copy=True)
    K.sum_duplicates()
    if not np.isfinite(K.data).all():
        raise ValueError(f"{name} contains NaN or infinity")
    if K.nnz and K.data.min() < 0:
        raise ValueError(f"{name} has negative entries; affinities must be >= 0")
    if _symmetry_error(K) > 1e-8:
        raise ValueError(
            f"{name} is not symmetric; symmetrise it first, e.g. ({name} + {name}.T) / 2"
        )
    K.eliminate_zeros()
    K.sort_indices()
    return K


def von_neumann_entropy(P, t_max: int = 100) -> np.ndarray:
    """phate's von Neumann entropy of the powers of a diffusion operator.

    ``H(t) = -sum_i p_i log p_i`` with ``p = s^(t+1) / sum(s^(t+1)) + eps`` and ``s`` the
    singular values of ``P`` (dense), for ``t = 0 .. t_max - 1`` (phate's
    ``vne.compute_von_neumann_entropy``; entry ``t`` is the entropy of ``P^(t+1)``, which
    phate labels ``t``).

    Parameters
    ----------
    P : array-like or sparse matrix of shape (m, m)
        A sparse ``P`` (e.g. :class:`PHATE`'s ``diff_op_`` without landmarks) is densified.
    t_max : int
        At least 1.

    Returns
    -------
    h : ndarray of shape (t_max,)
    """
    import scipy.linalg as sla

    reject_gpu(P, "P", "von_neumann_entropy")
    if sp.issparse(P):  # (np.asarray of a sparse matrix: "setting an array element ...")
        P = P.toarray()
    P = as_real(np.asarray(P), "P").astype(np.float64, copy=False)
    if P.ndim != 2 or P.shape[0] != P.shape[1] or P.shape[0] == 0:
        raise ValueError(f"P must be a non-empty square (m, m) matrix; got shape {P.shape}")
    if not np.isfinite(P).all():
        raise ValueError("P contains NaN or infinity")
    t_max = check_int(t_max, "t_max", low=1)
    with blas_for_dense(P.shape[0]):  # the same bits for any BLAS thread count up to 1,024
        s = sla.svdvals(P)
    return _entropy_curve(s, t_max)


def _entropy_curve(s, t_max: int) -> np.ndarray:
    """phate's entropy curve from the singular values ``s`` (see von_neumann_entropy)."""
    out = np.empty(t_max)
    st = s.copy()
    eps = np.finfo(float).eps
    for i in range(t_max):
        p = st / st.sum() + eps
        out[i] = -np.sum(p * np.log(p))
        st = st * s
    return out


def _sparse_singular_values(P: sp.csr_matrix) -> np.ndarray:
    """Singular values of a sparse square ``P`` as the square roots of the eigenvalues of
    ``P P^T`` (sparse product, then a symmetric eigenvalue solve, :func:`_gram_solver`: a
    third of the dense SVD's time on phate's 2,000 x 2,000 landmark operator). A singular
    value ``s`` carries an absolute error of about ``eps s_max^2 / s`` (1e-15 at the landmark
    operator's smallest, ~0.1; the entropy curve moves by ~1e-13)."""
    return _gram_singular_values(_gram_solver(P)())


def _eigvalsh(G: np.ndarray) -> np.ndarray:
    """Ascending eigenvalues of the symmetric ``G`` (used as workspace): LAPACK's two-stage
    ``dsyevd_2stage`` where NumPy's or SciPy's LAPACK exports it (dense to band by BLAS-3,
    then bulge chasing: 0.41-0.48 s instead of ``numpy.linalg.eigvalsh``'s 0.65-0.70 s on
    the landmark operator's 2,000 x 2,000 ``P P^T``, one thread; the eigenvalues agree to
    ~1e-14 of the largest, test), else ``numpy.linalg.eigvalsh``."""
    w = eigvalsh_two_stage(G, overwrite=True)
    return np.linalg.eigvalsh(G) if w is None else w


# P P^T goes to the band solver when its reverse Cuthill-McKee bandwidth is at most
# n / _BAND_DIV (its bulge chasing costs ~n^2 kd, the dense first stage ~n^3: on the
# n = 20,000 roll's landmark Gram, bandwidth 116 of 2,000, 0.36-0.39 s against 0.58-0.59 for
# the two stages; on the tree's, bandwidth 310, 0.74-0.85 s: the dense route; loaded Xeon;
# session 24: bandwidth 84 on the roll and 297 on the tree, :func:`_band_order`)
_BAND_DIV = 12


def _gram_solver(P: sp.csr_matrix):
    """A function of no arguments that returns the ascending eigenvalues of ``P P^T``: the
    band solver (:func:`geoml._lapack.eigvalsh_band`) on its upper band in reverse
    Cuthill-McKee order (a permutation: the same eigenvalues) when that band is at most
    ``n / _BAND_DIV`` wide and the routine is available, else :func:`_eigvalsh` of the
    dense ``P P^T``. The matrices are built here; the function runs only the LAPACK call
    (it needs no GIL: it can run in a worker thread)."""
    n = P.shape[0]
    S = _sparse_gram(P)
    found = _lapack._two_stage()
    if n > 2 and found is not None and found["dsytrd_sb2st"] is not None:
        C = S.tocoo()
        kd, inv = _band_order(S, C.row, C.col)
        i, j = inv[C.row], inv[C.col]
        up = i <= j
        if kd <= n // _BAND_DIV:
            AB = np.zeros((n, kd + 1))
            AB[j[up], kd + i[up] - j[up]] = C.data[up]
            return lambda: _band_or_dense(AB, S)
    G = S.toarray()
    return lambda: _eigvalsh(G)


def _band_order(S: sp.csr_matrix, row: np.ndarray, col: np.ndarray):
    """A symmetric permutation of the sparse symmetric ``S`` (pattern ``row, col``) with a
    narrow band: reverse Cuthill-McKee orders from the start nodes of George and Liu's
    pseudo-peripheral search (a breadth-first search from the end of the previous one's
    last level, three times) and SciPy's (minimum-degree start), the narrowest kept. The
    start matters: on the n = 20,000 roll's landmark Gram SciPy's start gives bandwidth 116,
    the far end of the roll 84 (the band route's work goes as ``n^2 kd``: 0.41-0.44 ->
    0.26-0.36 s, one thread, loaded Xeon). Cuthill-McKee from a node is a breadth-first
    search that visits each node's new neighbours by increasing degree, ties by index: SciPy's
    search on the graph relabelled by (degree, index). Returns ``(bandwidth, inverse
    permutation)`` (``inv[v]`` the new index of node ``v``)."""
    from scipy.sparse.csgraph import breadth_first_order, reverse_cuthill_mckee

    n = S.shape[0]
    first = _bandwidth(reverse_cuthill_mckee(S, symmetric_mode=True), row, col)
    if first[0] > 2 * n // _BAND_DIV:  # (no other start halves it: the tree's 310 -> 297)
        return first
    cands = []
    deg = np.diff(S.indptr)
    q = np.argsort(deg, kind="stable")  # new label -> node: by (degree, index)
    R = sp.csr_matrix(S[q][:, q])
    R.sort_indices()
    start = 0
    for _ in range(3):
        o, pred = breadth_first_order(R, start, directed=False)
        if o.size < n:  # disconnected: SciPy's order (it handles the components)
            break
        cands.append(q[o[::-1]])
        lev, pr = [0] * n, pred.tolist()
        for v in o[1:].tolist():  # o is in search order: a node after its predecessor
            lev[v] = lev[pr[v]] + 1
        lev = np.array(lev)
        start = int(np.flatnonzero(lev == lev[o[-1]]).min())  # lowest degree, last level
    return min([first] + [_bandwidth(p, row, col) for p in cands], key=lambda b: b[0])


def _bandwidth(perm, row, col):
    """``(bandwidth, inverse permutation)`` of the pattern ``row, col`` in the order
    ``perm``."""
    inv = np.empty(perm.size, dtype=np.int64)
    inv[perm] = np.arange(perm.size)
    return int(np.abs(inv[row] - inv[col]).max(initial=0)), inv


def _band_or_dense(AB: np.ndarray, S: sp.csr_matrix) -> np.ndarray:
    w = eigvalsh_band(AB)
    return _eigvalsh(S.toarray()) if w is None else w


def _sparse_gram(P: sp.csr_matrix) -> sp.csr_matrix:
    """Exactly symmetric ``P P^T`` of a sparse ``P`` (sparse, sorted indices)."""
    S = sp.csr_matrix(P @ P.T)
    S = sp.csr_matrix(0.5 * (S + S.T))
    S.sort_indices()
    return S


def _gram(P: sp.csr_matrix) -> np.ndarray:
    """Dense, exactly symmetric ``P P^T`` of a sparse ``P``."""
    return _sparse_gram(P).toarray()


def _gram_singular_values(w: np.ndarray) -> np.ndarray:
    """Singular values (descending) from the ascending eigenvalues of ``P P^T``."""
    return np.sqrt(np.maximum(w[::-1], 0.0))


def _landmark_singular_values(op: sp.csr_matrix, powers, t_max: int, nt: int) -> np.ndarray:
    """The landmark operator's singular values (:func:`_sparse_singular_values`). On 2 or
    more threads the dense eigenvalue solve runs on one BLAS thread (OpenBLAS' threaded
    tridiagonalisation, level-2 products of a 2,000 x 2,000 matrix, spent 3.4-4.5 CPU s on 2
    threads against 0.7 s on one, loaded 2-core Xeon; PHATE holds BLAS to one thread with
    landmarks anyway) in a worker thread (NumPy's LAPACK call releases the GIL) while this
    thread squares the operator's conjugate (``powers``, a :class:`_SymPowers`:
    ``A^2 .. A^(2^j)`` for ``2^j <= t_max - 2``, which do not depend on the ``t`` the entropy
    picks), until the worker is done, then, while no other process runs, begins the products
    of two dense squarings that ``A^t`` may need (:meth:`_SymPowers.speculate`). On one
    thread the solve runs here."""
    ntb = nt if nt > 0 else max(1, _core.max_threads())
    if ntb < 2 or not can_hold_blas():
        return _sparse_singular_values(op)  # (without threadpoolctl no worker beside it:
        # its BLAS threads could not be held)
    from concurrent.futures import ThreadPoolExecutor

    jmax = max(1, t_max - 2).bit_length() - 1  # t <= t_max - 2 (the knee is inside)
    solve = _gram_solver(op)  # here: the worker runs only the LAPACK call (no GIL)
    with single_threaded_blas(), ThreadPoolExecutor(1) as ex:
        fut = ex.submit(solve)
        while not fut.done() and len(powers.pw) <= jmax:
            powers.grow(len(powers.pw))
        # products the power may need, on the core this thread would leave idle: not when
        # other processes load the machine (the main thread would take the solve's CPU:
        # loaded 2-core Xeon, the tree's entropy and power 1.2 -> 1.6 s wall, medians)
        powers.speculate(lambda: fut.done() or _core.idle_cores() < 2, max(1, t_max - 2))
        return _gram_singular_values(fut.result())


# Row blocks of _from_lower and _sym_mean (a transposed 2,000 x 128 block stays in cache)
_SYM_BLOCK = 128


def _from_lower(L: np.ndarray) -> np.ndarray:
    """The symmetric matrix whose lower triangle is that of the square ``L`` (its upper one
    is not read), C order. SYRK's upper triangle in Fortran order is the lower one of its
    transpose in C order: a plain copy, then each block row's upper part from the block
    column below it (2,000 x 2,000 float32: 8 ms instead of 17-18 for ``C + C^T`` with the
    diagonal restored, the same values, one thread, loaded Xeon)."""
    return _mirror_lower(np.array(L, order="C"))


def _mirror_lower(Z: np.ndarray) -> np.ndarray:
    """The upper triangle of the C-ordered square ``Z`` from its lower one, in place."""
    n, b = Z.shape[0], _SYM_BLOCK
    iu = np.triu_indices(min(n, b), 1)
    for s in range(0, n, b):
        e = min(n, s + b)
        Z[s:e, e:] = Z[e:, s:e].T
        D = Z[s:e, s:e]
        if e - s < b:
            iu = np.triu_indices(e - s, 1)
        D[iu] = D.T[iu]
    return Z


def _sym_mean(Y: np.ndarray) -> None:
    """``Y = (Y + Y^T) / 2`` in place, by block rows: each pair ``(i, j), (j, i)`` gets
    ``fl(fl(y_ij + y_ji) * 0.5)``, as ``Y += Y.T; Y *= 0.5`` gives it (whose overlap makes
    NumPy copy ``Y.T`` first), half the additions and no copy: 2,000 x 2,000 float32 10 ms
    instead of 31-33 (one thread, loaded Xeon)."""
    n, b = Y.shape[0], _SYM_BLOCK
    for s in range(0, n, b):
        e = min(n, s + b)
        U = np.add(Y[s:e, e:], Y[e:, s:e].T)
        U *= 0.5
        Y[s:e, e:] = U
        Y[e:, s:e] = U.T
        D = Y[s:e, s:e]
        U = D + D.T
        U *= 0.5
        D[...] = U


# Row blocks of the float32 powers' tiles (:func:`_skip_square`, :func:`_skip_matmul`), and
# the share of a SYRK's / GEMM's flops up to which the tiles' GEMMs replace it
_SKIP_BLOCK = 128
_SKIP_FRAC = 0.6


def _block_supports(Y: np.ndarray, b: int) -> np.ndarray:
    """``(lo, hi)`` per block of ``b`` rows of ``Y``: the range of its non-zero columns
    (``(0, 0)`` for a zero block)."""
    n = Y.shape[0]
    sup = np.zeros((-(-n // b), 2), dtype=np.int64)
    for k, s in enumerate(range(0, n, b)):
        nz = np.flatnonzero((Y[s : s + b] != 0).any(axis=0))
        if nz.size:
            sup[k] = nz[0], nz[-1] + 1
    return sup


def _tiles(sx: np.ndarray, sy: np.ndarray, n: int, b: int):
    """``(lo, hi, flops / 2)`` of each tile ``(I, J)`` of a product of the row blocks with
    the column ranges ``sx`` and ``sy`` (:func:`_block_supports`)."""
    lo = np.maximum.outer(sx[:, 0], sy[:, 0])
    hi = np.minimum.outer(sx[:, 1], sy[:, 1])
    ext = np.minimum(n - np.arange(0, n, b), b)
    return lo, hi, np.outer(ext, ext) * np.maximum(hi - lo, 0)


def _skip_plan(X: np.ndarray, Y: np.ndarray, b: int = _SKIP_BLOCK):
    """``(lo, hi)`` of the tiles of ``X Y`` (:func:`_tiles`), or ``None`` when their GEMMs
    would cost more than ``_SKIP_FRAC`` of a GEMM."""
    n = X.shape[0]
    lo, hi, work = _tiles(_block_supports(X, b), _block_supports(Y, b), n, b)
    return None if work.sum() > _SKIP_FRAC * n**3 else (lo, hi)


def _skip_matmul(X: np.ndarray, Y: np.ndarray, nt: int, b: int = _SKIP_BLOCK):
    """``X Y`` of symmetric ``X`` and ``Y`` (powers in reverse Cuthill-McKee order) as tiles
    ``X[I, K] Y[J, K]^T`` (:func:`_skip_square`), or ``None`` when they would cost more than
    ``_SKIP_FRAC`` of a GEMM. The row blocks go to two halves on the pool
    (:func:`geoml._validation.in_row_blocks`), each tile one GEMM: the same bits for any ``nt``."""
    plan = _skip_plan(X, Y, b)
    return None if plan is None else _RowsProduct(X, Y, plan, b).finish(nt)


def _skip_square(Y: np.ndarray, b: int = _SKIP_BLOCK):
    """``Y Y^T`` of a symmetric ``Y`` that is zero away from its diagonal (a graph operator's
    power in reverse Cuthill-McKee order), or ``None`` when the tiles would cost more than
    ``_SKIP_FRAC`` of a SYRK. Block ``(I, J)`` of the lower triangle is one GEMM
    ``Y[I, K] Y[J, K]^T`` over the columns ``K`` where both row blocks can be non-zero (the
    terms left out are exact zeros), zero where none; the upper triangle is its mirror
    image. The sums run in another order than SYRK's, so the bits differ from it (float32
    rounding); they do not depend on the thread count (one GEMM per tile, BLAS on one thread).
    The n = 20,000 roll's 2,000 x 2,000 landmark powers: ``A^8 .. A^32`` squared in 0.02-0.04
    instead of 0.08-0.09 s each (one thread, loaded Xeon)."""
    n = Y.shape[0]
    sup = _block_supports(Y, b)
    lo, hi, work = _tiles(sup, sup, n, b)
    if np.tril(work).sum() > _SKIP_FRAC * n * n * (n + 1) / 2:
        return None
    Z = np.zeros(Y.shape, Y.dtype)
    for J in range(sup.shape[0]):
        j0 = J * b
        for I in range(J, sup.shape[0]):
            k0, k1 = lo[I, J], hi[I, J]
            if k0 < k1:
                i0 = I * b
                np.matmul(
                    Y[i0 : i0 + b, k0:k1], Y[j0 : j0 + b, k0:k1].T, out=Z[i0 : i0 + b, j0 : j0 + b]
                )
    return _mirror_lower(Z)


# Rows per block of a dense product computed ahead of t (:class:`_RowsProduct`)
_SPEC_ROWS = 256

# Per dtype: whether this BLAS gives each row of a one-thread GEMM the same bits for any split
# of the rows into blocks of two or more rows (:func:`_rows_split_invariant`)
_SPLIT_INVARIANT: dict = {}


def _rows_split_invariant(dtype) -> bool:
    """Whether a one-thread GEMM of this process's BLAS computes each row the same way for any
    split of the rows into blocks of two or more rows (checked once per dtype, ~1 ms: a
    300 x 520 by 520 x 40 product against its row blocks split at six offsets). OpenBLAS
    0.3's SkylakeX kernels are; its Haswell ``sgemm`` kernel (AMD Zen, or
    ``OPENBLAS_CORETYPE=Haswell``) is only for splits at multiples of its 24-row tiles, so
    there a row's bits depend on where its block starts."""
    key = np.dtype(dtype).str
    if key not in _SPLIT_INVARIANT:
        rng = np.random.default_rng(0)
        X = rng.random((300, 520)).astype(dtype)
        Y = rng.random((520, 40)).astype(dtype)
        with single_threaded_blas():
            Z = X @ Y
            _SPLIT_INVARIANT[key] = all(
                np.array_equal(X[:c] @ Y, Z[:c]) and np.array_equal(X[c:] @ Y, Z[c:])
                for c in (2, 37, 128, 150, 256, 298)
            )
    return _SPLIT_INVARIANT[key]


class _RowsProduct:
    """``X @ Y`` computed a block of rows at a time (:meth:`step`, while the main thread
    would wait for the entropy's eigenvalues: :meth:`_SymPowers.speculate`), the rest as
    two halves on the pool (:meth:`finish`): by GEMMs of whole rows, or with ``plan``
    (:func:`_skip_plan`) by the tiles of :func:`_skip_matmul`. The tiles are one GEMM each;
    the row blocks have at least ``_SPEC_ROWS`` rows (or all those left), and where the
    BLAS gives each row of a GEMM the same bits for any split into blocks of two or more
    rows (:func:`_rows_split_invariant`; a single row goes through GEMV) the result is
    :func:`_matmul_rows`' (or :func:`_skip_matmul`'s) bit for bit, however many blocks were
    computed ahead. Where it does not, the blocks of whole rows are :func:`_matmul_rows`'
    two halves (``step`` computes one half): the same bits again, whatever the timing."""

    def __init__(self, X: np.ndarray, Y: np.ndarray, plan=None, b: int = _SKIP_BLOCK):
        self.X, self.Y, self.plan, self.b = X, Y, plan, b
        shape, dtype = (X.shape[0], Y.shape[1]), np.result_type(X, Y)
        # (tiles: calloc, zero tiles never written)
        self.Z = np.empty(shape, dtype) if plan is None else np.zeros(shape, dtype)
        # units: rows, or blocks of b rows for the tiles
        self.units = shape[0] if plan is None else plan[0].shape[0]
        self.per = _SPEC_ROWS if plan is None else max(1, _SPEC_ROWS // b)
        # the halves of _matmul_rows as the only blocks, where the BLAS is not split-invariant
        self.halves = plan is None and not _rows_split_invariant(dtype)
        self.done = 0  # units [0, done) computed

    def _run(self, s: int, e: int) -> None:
        X, Y, Z = self.X, self.Y, self.Z
        if self.plan is None:
            np.matmul(X[s:e], Y, out=Z[s:e])
            return
        (lo, hi), b = self.plan, self.b
        for I in range(s, e):
            i0 = I * b
            for J in np.flatnonzero(lo[I] < hi[I]).tolist():
                k0, k1, j0 = lo[I, J], hi[I, J], J * b
                np.matmul(
                    X[i0 : i0 + b, k0:k1], Y[j0 : j0 + b, k0:k1].T, out=Z[i0 : i0 + b, j0 : j0 + b]
                )

    def step(self) -> bool:
        """Compute the next block (all that is left when less than two blocks are; the next
        half in the halves mode); ``False`` when nothing is left."""
        s, n = self.done, self.units
        if s == n:
            return False
        if self.halves:
            e = max(1, -(-n // 2)) if s == 0 else n
        else:
            e = s + self.per if n - s >= 2 * self.per else n
        self._run(s, e)
        self.done = e
        return True

    def finish(self, nt: int) -> np.ndarray:
        s, n = self.done, self.units
        if self.halves and s > 0:  # the second half, as _matmul_rows computes it
            self._run(s, n)
        else:
            half = max(1, -(-(n - s) // 2))
            in_row_blocks(lambda a, e: self._run(s + a, s + e), n - s, half, nt)
        self.done = n
        return self.Z


# With the tiles (float32), sparse factors of a power whose entries per row multiply to more
# than this times n go to the product as dense factors (:meth:`_SymPowers._power`)
_SPARSE_FLOPS = 4

# Entries of a float32 power below this are set to 0 before the next product: their
# products would be subnormal (a 100x slower GEMM on x86) and they move P^t by < 1e-15.
_F32_FLUSH = 1e-18


class _SymPowers:
    """Powers of a sparse symmetric ``A``: the squarings ``A^(2^j)`` and ``A^t`` as the
    product of those of t's set bits (lowest first). The squarings do not depend on ``t``, so
    they can run while t is still being chosen (beside the entropy's eigenvalues, see
    :func:`_landmark_singular_values`); the same products either way, so the same bits.

    A graph operator's low powers are local (the n = 20,000 roll's 2,000 x 2,000 landmark
    operator: 7, 21, 72, 251 entries per row for ``A, A^2, A^4, A^8``): a power is squared as
    a SciPy sparse float64 product (symmetrised) while it has at most ``max(16, n / 16)``
    entries per row, later ones densely by SYRK (``A^s`` symmetric: its square is
    ``A^s (A^s)^T``, one triangle, half a GEMM's flops). In the product the sparse factors are
    multiplied first, applied to the lowest dense one (geoml's CSR kernel by column blocks, or
    a GEMM above ``n / 16`` entries per row), and every further dense factor costs a GEMM
    (on the n = 20,000 roll's and tree's operators the dense factors are among
    ``A^16, A^32, A^64``: at most one GEMM for ``t < 112``). ``dtype=float32``: single
    precision dense products (about half the time; ``A^t`` to ~1e-6 relative); dense powers
    are stored with entries below 1e-18 flushed to 0 (their products would be subnormal: a
    100x slower GEMM on x86; they move ``P^t`` by < 1e-15), and the powers are computed in
    reverse Cuthill-McKee order (``perm``), where they are banded: the dense squarings and
    products as tiles that skip the zero ones (:func:`_skip_square`, :func:`_skip_matmul`),
    and sparse factors too full for SciPy's product as dense ones (``_SPARSE_FLOPS``)."""

    def __init__(self, A: sp.csr_matrix, nt: int, dtype=np.float64, pool_nt: int = 1):
        self.dtype = np.dtype(dtype)
        self.nt = nt
        self.pool_nt = pool_nt  # threads of the dense products' row blocks (BLAS held to one)
        n = A.shape[0]
        self.sparse_max = max(16, n // 16) * n  # entries of a power still squared sparsely
        A64 = sp.csr_matrix(A, dtype=np.float64)
        A64 = sp.csr_matrix(0.5 * (A64 + A64.T))
        self.perm = None
        if self.dtype == np.float32:  # in reverse Cuthill-McKee order (_skip_square)
            from scipy.sparse.csgraph import reverse_cuthill_mckee

            self.perm = reverse_cuthill_mckee(A64, symmetric_mode=True)
            A64 = sp.csr_matrix(A64[self.perm][:, self.perm])
            A64.sort_indices()
        self.pw = [A64]  # pw[j] = A^(2^j) (in the order perm)
        self.ahead = {}  # products of dense powers begun before t is known (speculate)

    def _stored(self, Y: np.ndarray) -> np.ndarray:
        if self.dtype == np.float32:
            # Y[Y < _F32_FLUSH] = 0 by a product with the mask: the same values (the powers
            # of a non-negative A are >= 0), without the masked store's branches (a 2,000 x
            # 2,000 power: 5 instead of 20-28 ms, one thread)
            np.multiply(Y, Y >= _F32_FLUSH, out=Y)
        return Y

    def _dense(self, S: sp.csr_matrix) -> np.ndarray:
        # entries rounded to dtype before the dense array: half the bytes written for
        # float32, the same values
        return sp.csr_matrix(S, dtype=self.dtype).toarray()

    def grow(self, j: int, keep=None) -> None:
        """Square up to ``A^(2^j)``; dense powers whose index is not in ``keep`` (when given)
        are dropped once squared."""
        from scipy.linalg import blas

        syrk = blas.ssyrk if self.dtype == np.float32 else blas.dsyrk
        while len(self.pw) <= j:
            i = len(self.pw) - 1
            Y = self.pw[i]
            if sp.issparse(Y) and Y.nnz <= self.sparse_max:
                Z = sp.csr_matrix(Y @ Y)
                self.pw.append(sp.csr_matrix(0.5 * (Z + Z.T)))  # exactly symmetric
                continue
            if sp.issparse(Y):
                Y = self._stored(self._dense(Y))
            elif keep is not None and i not in keep:
                self.pw[i] = None
            Z = _skip_square(Y) if self.perm is not None else None
            if Z is None:
                # Y symmetric: its C order is its own Fortran order, so SYRK reads it in place
                C = syrk(1.0, Y.T, trans=0, lower=0)  # upper triangle of Y Y^T, Fortran order
                Z = _from_lower(C.T)
            self.pw.append(self._stored(Z))

    def power(self, t: int) -> np.ndarray:
        """Dense ``A^t`` (C order, exactly symmetric, of ``dtype``). One call per object: the
        result may be one of the stored powers."""
        if t < 1:
            raise ValueError("t must be >= 1")
        Y = self._power(int(t))
        if self.perm is None:
            return Y
        inv = np.empty_like(self.perm)
        inv[self.perm] = np.arange(inv.size)
        out = np.empty_like(Y)

        def run(s, e):  # Y[inv][:, inv] in 64-row blocks (in cache: 8.7 instead of 11 ms
            for a in range(s, e, 64):  # for two takes, 2,000 x 2,000 float32, one thread)
                np.take(Y[inv[a : min(e, a + 64)]], inv, axis=1, out=out[a : min(e, a + 64)])

        in_row_blocks(run, inv.size, -(-inv.size // 2), self.pool_nt)
        return out

    def speculate(self, stop, t_last: int) -> None:
        """Until ``stop()``: the products of two dense squarings that some ``t <= t_last``
        needs (:meth:`_high`), by row blocks (:class:`_RowsProduct`), the two with the
        lowest such ``t``, lowest first (on the n = 20,000 roll's and tree's landmark
        operators ``A^16 A^32``, used for ``48 <= t < 64``, then ``A^16 A^64``). Called while
        the entropy's eigenvalues, which choose ``t``, are computed in another thread;
        :meth:`power` finishes the product it needs: the same bits as without this call."""
        if self.pw[0].shape[0] < 2 * _SPEC_ROWS:  # (halves of fewer rows: one may be a row)
            return
        dense = [j for j, F in enumerate(self.pw) if F is not None and not sp.issparse(F)]
        keys = [(a, b) for a in dense for b in dense if a < b and 2**a + 2**b <= t_last]
        for key in sorted(keys, key=lambda k: 2 ** k[0] + 2 ** k[1])[:2]:  # (memory: two)
            X, Y = self.pw[key[0]], self.pw[key[1]]
            if key not in self.ahead:  # (by the tiles where _matmul would take them)
                plan = None if self.perm is None else _skip_plan(X, Y)
                self.ahead[key] = _RowsProduct(X, Y, plan)
            while not stop() and self.ahead[key].step():
                pass
            if stop():
                return

    def _high(self, high: list) -> np.ndarray:
        """The product of the dense squarings ``A^(2^j)``, ``j`` in ``high`` (lowest first),
        the first two factors' product from :meth:`speculate` when it began it."""
        Y = self.pw[high[0]]
        for i in range(1, len(high)):
            ahead = self.ahead.pop(tuple(high[: i + 1]), None)
            if ahead is None:
                Y = self._matmul(Y, self.pw[high[i]])
            else:
                Y = ahead.finish(self.pool_nt)
            _sym_mean(Y)
            Y = self._stored(Y)
        return Y

    def _power(self, t: int) -> np.ndarray:
        # A^t = (sparse low factors) (dense low factors) (product of the dense squarings),
        # the last one first: it does not depend on t's low bits (speculate)
        bits = [j for j in range(t.bit_length()) if t >> j & 1]
        self.grow(bits[-1], keep=set(bits))
        high = [j for j in bits if not sp.issparse(self.pw[j])]
        self.ahead = {k: v for k, v in self.ahead.items() if list(k) == high[: len(k)]}
        S = None
        dense = []
        n = self.pw[0].shape[0]
        for j in bits:
            F = self.pw[j]
            if not sp.issparse(F):
                continue
            elif S is not None and self.perm is not None and F.nnz * S.nnz > _SPARSE_FLOPS * n**3:
                # a dense factor: SciPy's product of rows this full costs more than the
                # tiles' GEMM (the roll's A^8 A^7, 251 x ~180 entries per row of 2,000:
                # 0.3 s against ~0.03, one thread)
                dense.append(self._stored(self._dense(F)))
            else:
                S = F if S is None else sp.csr_matrix(F @ S)
        if high:
            dense.append(self._high(high))
        if not dense:
            S = sp.csr_matrix(0.5 * (S + S.T))
            return self._dense(S)
        Y = dense[0]
        if S is not None:
            S = sp.csr_matrix(0.5 * (S + S.T))
            if S.nnz <= S.shape[0] ** 2 // 16:
                Y = _spmm_cols(sp.csr_matrix(S, dtype=self.dtype), Y, self.nt)
            else:  # GEMM: faster above n / 16 entries per row (the tree's A^4 has 87 of
                # 2,000: 0.11 s by column blocks, 0.155 s by sgemm, one thread, loaded)
                S = self._stored(self._dense(S))
                Y = self._matmul(S, Y)
            _sym_mean(Y)
        for F in dense[1:]:
            Y = self._matmul(self._stored(Y), F)
            _sym_mean(Y)
        return Y

    def _matmul(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        Z = None if self.perm is None else _skip_matmul(X, Y, self.pool_nt)
        return _matmul_rows(X, Y, self.pool_nt) if Z is None else Z


def _sym_power(A: sp.csr_matrix, t: int, nt: int, dtype=np.float64) -> np.ndarray:
    """Dense ``A^t`` of a sparse symmetric ``A`` (:class:`_SymPowers`). Returns a C-ordered
    symmetric array of ``dtype``."""
    return _SymPowers(A, nt, dtype).power(t)


def knee_point(y, x=None):
    """phate's knee of a curve (``vne.find_knee_point``): the break point minimising the
    summed absolute errors of two least-squares lines, left and right of it."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or y.size < 3:
        raise ValueError("knee_point needs a 1-D curve of at least 3 points")
    x = np.arange(y.size, dtype=np.float64) if x is None else np.asarray(x, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"x has shape {x.shape} but y has {y.shape}; they must match")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):  # (a NaN gave a knee silently)
        raise ValueError("knee_point: x or y contains NaN or infinity")
    idx = np.argsort(x)
    x, y = x[idx], y[idx]
    n = np.arange(2, y.size + 1).astype(np.float32)

    def fit(xx, yy):
        sxy = np.cumsum(xx * yy)[1:]
        sx = np.cumsum(xx)[1:]
        sy = np.cumsum(yy)[1:]
        sxx = np.cumsum(xx * xx)[1:]
        det = n * sxx - sx * sx
        return (n * sxy - sx * sy) / det, -(sx * sxy - sxx * sy) / det

    mf, bf = fit(x, y)
    mb, bb = fit(x[::-1], y[::-1])
    mb, bb = mb[::-1], bb[::-1]
    err = np.full(y.size, np.nan)
    for b in range(1, y.size - 1):
        ef = (mf[b - 1] * x[: b + 1] + bf[b - 1]) - y[: b + 1]
        eb = (mb[b - 1] * x[b:] + bb[b - 1]) - y[b:]
        err[b] = np.sum(np.abs(ef)) + np.sum(np.abs(eb))
    loc = int(np.argmin(err[1:-1])) + 1
    return x[loc]


def _potential(Pt: np.ndarray, gamma: float) -> np.ndarray:
    if gamma == 1:
        return -np.log(Pt + _POT_EPS)
    if gamma == -1:
        return Pt
    c = (1.0 - gamma) / 2.0
    return np.power(np.maximum(Pt, 0.0), c) / c


def _halves(fn, n: int, nt: int) -> None:
    """``fn(s, e)`` for the two halves of ``n`` rows, on up to two of ``nt`` threads
    (:func:`geoml._validation.in_row_blocks`; NumPy's element-wise passes release the GIL)."""
    in_row_blocks(fn, n, max(1, -(-n // 2)), nt)


def _conjugate_potential(At: np.ndarray, rs: np.ndarray, gamma: float, nt: int = 1):
    """The potential (:func:`_potential`) of ``P^t = diag(1 / rs) A^t diag(rs)`` in float64,
    by row halves on ``nt`` threads (element-wise: the same values as one pass; 0.05-0.07 s
    of serial passes over the landmarks' 2,000 x 2,000 matrix before). A float64 ``At`` is
    overwritten."""
    m = At.shape[0]
    pot = np.empty(At.shape)

    def run(s, e):
        X = At[s:e].astype(np.float64, copy=False)
        X /= rs[s:e, None]
        X *= rs[None, :]
        pot[s:e] = _potential(X, gamma)

    _halves(run, m, nt)
    return pot


def _row_normalize(A: sp.csr_matrix) -> sp.csr_matrix:
    s = np.asarray(A.sum(axis=1)).ravel()
    s[s == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / s) @ A)


def _tgram(Y, Z=None, pool_nt: int = 1) -> np.ndarray:
    """``Y^T Z`` (``Y^T Y``, by SYRK, when Z is None) for tall Y and Z as the sum of their two
    row halves' products, the halves on up to two of ``pool_nt`` threads and added in order:
    the same bits for any thread count (on the spectral features' 20,000 x 110 blocks one
    product took 10 ms, ``Q^T A Q`` 16 ms, serial while BLAS is held to one thread)."""
    h = Y.shape[0] // 2
    parts = [None, None]

    def run(i, _):
        Yi = Y[:h] if i == 0 else Y[h:]
        Zi = Yi if Z is None else (Z[:h] if i == 0 else Z[h:])
        parts[i] = Yi.T @ Zi

    in_row_blocks(run, 2, 1, pool_nt)
    return parts[0] + parts[1]


def _orth(Y, pool_nt: int = 1, halves: bool = False):
    """Orthonormal basis of the columns of a tall Y: Cholesky QR (two GEMMs; a Householder QR
    of 20,000 x 110 cost 15x more), Householder QR when Y^T Y is not numerically positive
    definite. The product by ``L^-T`` as row halves on ``pool_nt`` threads
    (:func:`_matmul_rows`: the same bits for any thread count; 0.016 s of 0.024 on
    20,000 x 110), and with ``halves`` ``Y^T Y`` too (:func:`_tgram`, the spectral
    features: other bits than one SYRK, the same for any thread count)."""
    try:
        L = np.linalg.cholesky(_tgram(Y, pool_nt=pool_nt) if halves else Y.T @ Y)
        dg = np.abs(np.diagonal(L))
        if dg.min() > 1e-6 * dg.max():
            return _matmul_rows(Y, np.linalg.inv(L).T, pool_nt)
    except np.linalg.LinAlgError:
        pass
    return np.linalg.qr(Y)[0]


def _spmm(A: sp.csr_matrix, Y: np.ndarray, nt: int) -> np.ndarray:
    """A @ Y through geoml's threaded CSR kernel (rows split over threads: the same bits for
    any thread count)."""
    return _core.csr_matmat(
        A.data, A.indices, A.indptr, np.ascontiguousarray(Y), n_cols=A.shape[1], n_jobs=nt
    )


def _spmm_cols(A: sp.csr_matrix, Y: np.ndarray, nt: int, block: int = 256) -> np.ndarray:
    """``A @ Y`` for a wide dense ``Y`` in column blocks of ``block``: the kernel gathers a
    row of ``Y`` per entry of ``A``, so with all of a 2,000 x 2,000 float32 ``Y`` (16 MB) it
    streams it from memory, with 256 columns (2 MB) from cache: 0.25-0.29 -> 0.11 s at 87
    entries per row (one thread, loaded Xeon). The same products, so the same bits."""
    if Y.shape[1] <= 2 * block:
        return _spmm(A, Y, nt)
    out = np.empty((A.shape[0], Y.shape[1]), dtype=np.result_type(A.dtype, Y.dtype))
    for s in range(0, Y.shape[1], block):
        out[:, s : s + block] = _spmm(A, np.ascontiguousarray(Y[:, s : s + block]), nt)
    return out


class _Features:
    """The spectral features ``F = D^-1 K V`` (float32, data order) as their factors in the
    reverse Cuthill-McKee order: :meth:`rows` gives any rows, :meth:`full` all of them, the
    same bits (geoml's CSR kernel computes each row on its own), so k-means can seed from
    its sample's rows while the rest are computed (:func:`_kmeans`)."""

    def __init__(self, K, V, d, inv, nt: int):
        self.K, self.V, self.d, self.inv, self.nt = K, V, d, inv, nt
        self.shape = (K.shape[0], V.shape[1])
        self.dtype = np.dtype(np.float32)

    def rows(self, ix) -> np.ndarray:
        j = self.inv[ix]
        F = _spmm(sp.csr_matrix(self.K[j]), self.V, 1) / self.d[j][:, None]
        return np.ascontiguousarray(F, dtype=np.float32)

    def full(self, nt=None) -> np.ndarray:
        F = _spmm(self.K, self.V, self.nt if nt is None else nt) / self.d[:, None]
        return np.ascontiguousarray(F[self.inv], dtype=np.float32)


def _spectral_features(
    K, d, n_svd, rng, nt: int = 0, n_iter=None, pool_nt: int = 1, lazy: bool = False
):
    """phate's landmark features: the diffusion operator ``P = D^-1 K`` applied to the top
    ``n_svd`` singular vectors of ``A = D^-1/2 K D^-1/2`` (randomised subspace iteration, as
    scikit-learn's ``randomized_svd`` with 10 oversamples; A is symmetric, so its singular
    vectors are eigenvectors and one product per step suffices). ``nt``: threads of the
    sparse products, ``pool_nt``: of the tall GEMMs' row halves (:func:`_matmul_rows`).
    ``lazy``: a :class:`_Features` instead of the (n, n_svd) float32 array."""
    n = K.shape[0]
    q = min(n, n_svd + 10)
    if n_iter is None:
        n_iter = 7 if n_svd < 0.1 * n else 4
    with contextlib.ExitStack() as stack:
        if pool_nt > 1:  # the Gaussian start (0.04 s at 20,000 x 110; NumPy's generator
            # releases the GIL) beside the ordering below: the same draws
            from concurrent.futures import ThreadPoolExecutor

            omega = stack.enter_context(ThreadPoolExecutor(1)).submit(rng.standard_normal, (n, q))
        else:
            omega = None
            Omega = rng.standard_normal((n, q))
        r = d**-0.5
        A = sp.csr_matrix(sp.diags(r) @ K @ sp.diags(r))
        # all in reverse Cuthill-McKee order (a similarity: the same subspace): the rows the
        # products gather stay in cache (2.2x per product on the n = 20,000 roll in data
        # order)
        perm = _core.rcm_components(A.indptr, A.indices)[0]
        inv = np.empty_like(perm)
        inv[perm] = np.arange(n, dtype=perm.dtype)
        A, K, d = _permute(A, perm), _permute(K, perm), d[perm]
        if omega is not None:
            Omega = omega.result()
    # randomized_svd's steps apply A^T A = A^2 with an orthonormalisation each; the span of
    # A^(2 s + 1) Omega does not depend on them, and A (spectrum in [-1, 1]) neither
    # overflows nor, over 4 powers, collapses the top subspace's columns (Cholesky QR falls
    # back to Householder if it did): orthonormalised every second step, 4 instead of 8
    Q = _spmm(A, Omega[perm], nt)
    for i in range(n_iter):
        Q = _spmm(A, _spmm(A, Q, nt), nt)
        if i % 2 == 1 or i == n_iter - 1:
            Q = _orth(Q, pool_nt, halves=True)
    B = _tgram(Q, _spmm(A, Q, nt), pool_nt)
    w, U = np.linalg.eigh(0.5 * (B + B.T))
    top = np.argsort(-np.abs(w))[: min(n_svd, q)]
    F = _Features(K, _matmul_rows(Q, U[:, top], pool_nt), d, inv, nt)
    return F if lazy else F.full()


def _nearest(F, C2, cn, block: int = 1024, nt: int = 1):
    """Nearest of the centres given by ``C2 = -2 C^T`` and ``cn = |c|^2`` for every row of F
    (float32 GEMM in row blocks of a cache-sized ``block x k`` score matrix
    ``|c|^2 - 2 f.c``, on ``nt`` threads: :func:`geoml._validation.in_row_blocks`). Returns
    the index (the first of tied scores) and the score. In float32 the shift by ``cn``, the
    argmin and the minimum in one pass over each block (``_core.argmin_shifted``: the values of
    NumPy's ``g += cn``, ``argmin`` and gather, which passed over it three times: 0.025 of 0.1
    CPU s per assignment of the n = 20,000 roll's 2,000 landmarks)."""
    lab = np.empty(F.shape[0], dtype=np.int64)
    best = np.empty(F.shape[0], dtype=np.result_type(F, C2))
    fused = best.dtype == np.float32 and cn.dtype == np.float32

    def run(s, e):
        g = np.matmul(F[s:e], C2)
        if fused:
            _core.argmin_shifted(g, cn, lab[s:e], best[s:e])
            return
        g += cn
        lab[s:e] = np.argmin(g, axis=1)
        best[s:e] = g[np.arange(e - s), lab[s:e]]

    in_row_blocks(run, F.shape[0], block, nt)
    return lab, best


def _centre_terms(C, dtype):
    """``(|c|^2, -2 C^T)`` of the centres for :func:`_nearest`."""
    return np.einsum("ij,ij->i", C, C), np.ascontiguousarray(-2.0 * C.T, dtype=dtype)


def _assign(F, C, block: int = 1024, nt: int = 1):
    """Nearest centre of every row of F (:func:`_nearest`)."""
    cn, C2 = _centre_terms(C, F.dtype)
    return _nearest(F, C2, cn, block, nt)[0]


def _reassign(S, C, lab, best, moved, nt: int = 1):
    """Lloyd's assignment after an update that moved only the centres ``moved`` (sorted):
    the scores of the other centres are unchanged, so a row whose own centre did not move
    compares its score ``best`` with the moved centres' only (one GEMM with ``len(moved)``
    columns), and only the rows whose own centre moved are scored against all centres.
    The labels and scores of :func:`_nearest` over all centres (ties go to the lower index
    as ``argmin``'s), up to the rounding of near-ties if the BLAS rounds an entry of a
    narrower GEMM differently (identical labels on the n = 20,000 roll's and tree's
    landmark problems); after the first Lloyd steps there a fifth to a half of the centres
    move. Returns ``(lab, best)``, new arrays."""
    cn, C2 = _centre_terms(C, S.dtype)
    jm, bm = _nearest(S, C2[:, moved], cn[moved], nt=nt)
    jm = moved[jm]
    lab = lab.copy()
    best = best.copy()
    take = (bm < best) | ((bm == best) & (jm < lab))
    lab[take] = jm[take]
    best[take] = bm[take]
    dirty = np.flatnonzero(np.isin(lab, moved) & ~take)  # own centre moved, not re-won
    if dirty.size:
        lab[dirty], best[dirty] = _nearest(S[dirty], C2, cn, nt=nt)
    return lab, best


def _nearest_pruned(S, C, lab, block: int = 1024, nt: int = 1, wide: int = 64):
    """Lloyd's assignment of every row of ``S`` to its nearest centre of ``C`` that scores
    each row only against the centres that can be nearest, given its previous label ``lab``
    (``a``): with ``u`` its distance to ``c_a``, a centre ``c`` with ``|c - c_a| > 2 u + tau``
    lies more than ``u + tau`` from the row (triangle inequality), and ``tau`` is chosen so
    that its float32 score then exceeds ``c_a``'s by more than both scores' rounding errors
    (at most ``(dim + 2) 2^-24 (|c|^2 + 2 |f| |c|)`` each, the GEMM's float32 sums and the
    shift: ``tau (2 u + tau) = 4 (dim + 2) 2^-24 (max|c|^2 + 2 |f| max|c|)``), so the full
    GEMM's argmin is never such a centre. Centre distances are lower bounds (their float32
    Gram's error bound subtracted), ``u`` an upper bound. The rows, ordered by label, go in
    fixed blocks of ``block``, each scored against the union of its clusters' candidates
    (each cluster's radius: the largest ``2 u + tau`` of its rows) by one float32 GEMM of the
    gathered centres; the rows whose radius exceeds twice their centre's distance to its
    nearest other centre, and those of clusters with more than ``wide`` candidates, are scored
    against all centres (:func:`_nearest`). Lloyd's steps 2-3 on the n = 20,000 roll's and
    tree's 2,000 landmarks: a median of 1 candidate per row, 90 % at most 3. The labels are
    :func:`_nearest`'s over all centres up to the rounding of near-ties (a narrower GEMM
    rounds an entry differently; the same labels on the roll's and tree's landmark problems,
    test), the same for any ``nt`` (the blocks depend on the labels only, each is one GEMM).
    Returns ``(lab, best)`` as :func:`_nearest`."""
    m, dim = S.shape
    k = C.shape[0]
    cn, C2 = _centre_terms(C, S.dtype)
    eu = (dim + 2) * 2.0**-24
    # lower bounds of the squared centre distances in the centres' dtype: the Gram's and
    # the norms' errors are at most eu (|c|^2 + |c'|^2) each, the three roundings here 2^-24
    # of it: (1 - 4 eu) (|c|^2 + |c'|^2) - 2 c.c' is below |c - c'|^2
    h = (np.asarray(1.0 - 4.0 * eu, dtype=cn.dtype) * cn).astype(cn.dtype)
    CC2 = np.matmul(C, C.T)
    CC2 *= -2
    CC2 += h[:, None]
    CC2 += h[None, :]
    np.fill_diagonal(CC2, 0)
    cmax = float(np.sqrt(np.einsum("ij,ij->i", C, C, dtype=np.float64).max()))
    diff = S - C[lab]  # float32: each entry within 2^-24 relative of the exact difference
    u = np.sqrt(np.einsum("ij,ij->i", diff, diff, dtype=np.float64)) * (1.0 + 2.0**-20)
    fn = np.sqrt(np.einsum("ij,ij->i", S, S, dtype=np.float64)) * (1.0 + 2.0**-20)
    E = 4.0 * eu * (cmax * cmax + 2.0 * fn * cmax)
    r2 = np.square(u + np.sqrt(u * u + E))  # (2 u + tau)^2
    # rows far from their centre (radius over twice its nearest other centre's distance)
    # are scored against all centres, as are the clusters with many candidates
    np.fill_diagonal(CC2, np.inf)
    far = r2 > 4.0 * CC2.min(axis=1)[lab]
    np.fill_diagonal(CC2, 0.0)
    R2 = np.zeros(k)
    np.maximum.at(R2, lab[~far], r2[~far])
    R2 = np.nextafter(R2.astype(CC2.dtype), np.inf, dtype=CC2.dtype)  # (rounded up)
    cand_of = R2[:, None] >= CC2  # (k, k): the candidates of each cluster (itself among them)
    far |= (cand_of.sum(axis=1) > wide)[lab]
    if 2 * np.count_nonzero(far) > m:  # (e.g. data without clusters: little to prune)
        return _nearest(S, C2, cn, block, nt)
    order = np.argsort(lab, kind="stable")
    wide_rows = order[far[order]]
    near = order[~far[order]]
    out_lab = np.empty(m, dtype=np.int64)
    out_best = np.empty(m, dtype=S.dtype)

    def run(s, e):
        rows = near[s:e]
        cand = np.flatnonzero(cand_of[np.unique(lab[rows])].any(axis=0))
        g = np.matmul(S[rows], np.ascontiguousarray(C2[:, cand]))
        if g.dtype == np.float32 and cn.dtype == np.float32:
            jb = np.empty(rows.size, dtype=np.int64)
            bb = np.empty(rows.size, dtype=S.dtype)
            _core.argmin_shifted(g, np.ascontiguousarray(cn[cand]), jb, bb)
        else:
            g += cn[cand]
            jb = np.argmin(g, axis=1)
            bb = g[np.arange(rows.size), jb]
        out_lab[rows] = cand[jb]
        out_best[rows] = bb

    in_row_blocks(run, near.size, block, nt)
    if wide_rows.size:
        out_lab[wide_rows], out_best[wide_rows] = _nearest(S[wide_rows], C2, cn, block, nt)
    return out_lab, out_best


def _kmeanspp(S, k, rng, nt: int = 0, seeds=None, count=None):
    """Greedy k-means++ seeding (scikit-learn's: 2 + log k candidates per centre, the one
    that lowers the potential most) in C++ (``_core.kmeanspp``: float32 distances, 64 rows per
    vector block; 0.30 -> 0.09 CPU s on phate's 6,000 x 16 seeding problem against the NumPy
    loop it replaced). The uniforms are drawn from ``rng`` as that loop drew them (the first
    row, then ``trials`` per centre), so the seeds and the generator's state after them are
    the loop's unless a distance lies within rounding of a draw (or all distances are 0, where
    the candidates come from the same uniforms). With ``seeds`` and ``count`` (int64 arrays
    of k and 1) the seeds are also stored there as they are chosen, ``count[0]`` their number
    so far (:func:`_nearest_as_seeded` reads them from another thread). Returns the indices
    of the chosen rows."""
    m = S.shape[0]
    trials = 2 + int(np.log(k))
    first = int(rng.integers(m))
    u = rng.random((k - 1, trials))
    return _core.kmeanspp(
        np.ascontiguousarray(S, dtype=np.float32),
        first=first,
        u=u,
        n_jobs=nt,
        seeds=seeds,
        count=count,
    )


def _nearest_as_seeded(
    S, cand, seeds, pool_nt: int, fut=None, count=None, chunk: int = _SEED_CHUNK
):
    """The first Lloyd assignment (:func:`_nearest` of every row of S against the centres
    ``cand[seeds]``), scored against fixed blocks of ``chunk`` centres (``[0, chunk)``,
    ``[chunk, 2 chunk)``, ...) and the lowest score kept, an earlier block's on ties, so the
    labels are those of one argmin over all centres. The blocks are the same GEMM calls
    whatever the timing and the thread count, so the same bits with any BLAS (on OpenBLAS
    they are also the one-GEMM assignment's; test). With ``fut`` (:func:`_kmeanspp` running
    in a worker with ``seeds`` and ``count``) each block is scored as soon as the seeding has
    chosen its centres (on this thread; the blocks after it is done on ``pool_nt`` threads),
    and the seeds read while it ran are checked against its result (the assignment
    recomputed if one differs). Returns ``(lab, best, seeds)``."""
    m, k = S.shape[0], seeds.size
    lab = np.zeros(m, dtype=np.int64)
    best = np.full(m, np.inf, dtype=S.dtype)
    used = []
    for s in range(0, k, chunk):
        e = min(s + chunk, k)
        ready = fut is None or fut.done()
        while not ready and count[0] < e:
            time.sleep(2e-4)  # (the seeding chooses ~256 centres in 10-15 ms)
            ready = fut.done()
        used.append(seeds[s:e].copy())
        cn, C2 = _centre_terms(cand[used[-1]], S.dtype)
        jm, bm = _nearest(S, C2, cn, nt=pool_nt if ready else 1)
        take = bm < best
        lab[take] = jm[take] + s
        best[take] = bm[take]
    if fut is None:
        return lab, best, seeds
    idx = fut.result()
    if not np.array_equal(np.concatenate(used), idx):  # (a stale read: not on x86's ordered stores)
        return _nearest_as_seeded(S, cand, idx, pool_nt, chunk=chunk)
    return lab, best, idx


def _kmeans(F, k, rng, max_iter: int = 5, sample: int = 50, nt: int = 0, pool_nt: int = 1):
    """Lloyd k-means on the spectral features (float32 GEMMs): k-means++ seeds (see below) as
    the start, empty clusters re-seeded, stops when under 0.1 % of the labels change or after
    ``max_iter`` steps (5: phate's MiniBatchKMeans stops early too; on the swiss roll and the
    tree at n = 20,000 the embedding's Spearman to the truth moved by under 1e-3 from 20
    steps, at a third of the k-means time); fitted
    on at most ``sample * k`` rows (all of them at phate's default sizes up to n = 100,000),
    then every row assigned once. After the first step only the moved centres are scored
    (:func:`_reassign`: 0.55 -> 0.42-0.48 CPU s on the n = 20,000 roll and tree, one
    thread, loaded, the same labels), or, where most centres moved, each row only against
    the centres that can be its nearest (:func:`_nearest_pruned`: 0.07 -> 0.03-0.05 CPU s
    per step there, the same labels). ``F``: an array or :class:`_Features`; ``nt``:
    threads of the seeding, ``pool_nt``: of the assignments' row blocks
    (:func:`geoml._validation.in_row_blocks`). Returns the labels."""
    n, dim = F.shape
    pick = None if n <= sample * k else np.sort(rng.choice(n, size=sample * k, replace=False))
    m = n if pick is None else pick.size
    # k-means++ seeds among 3 k rows (scikit-learn's MiniBatchKMeans init_size, as phate),
    # chosen in a random 16-dimensional projection (a quarter of the seeding's time at
    # 100 features; the seeds then refined by Lloyd in all dimensions)
    sub = rng.choice(m, size=min(m, 3 * k), replace=False)
    R = rng.standard_normal((dim, min(dim, _SEED_DIM))).astype(F.dtype)
    seeds = first = None
    if isinstance(F, _Features):
        if pool_nt > 1:
            # the serial seeding (0.10-0.17 s at 6,000 x 16 and 2,000 centres; the C++ loop
            # releases the GIL) from its rows' features while the others are computed on one
            # thread (the same bits for any count): the same rows, so the same seeds and
            # draws; then the first assignment scores the centres as they are chosen
            from concurrent.futures import ThreadPoolExecutor

            proj = F.rows(sub if pick is None else pick[sub]) @ R
            buf, count = np.zeros(k, dtype=np.int64), np.zeros(1, dtype=np.int64)
            with ThreadPoolExecutor(1) as ex:
                fut = ex.submit(_kmeanspp, proj, k, rng, nt, buf, count)
                F = F.full(1)
                S = F if pick is None else F[pick]
                *first, seeds = _nearest_as_seeded(S, S[sub], buf, pool_nt, fut, count)
        else:
            F = F.full()
    if first is None:
        S = F if pick is None else F[pick]
    if seeds is None:
        seeds = _kmeanspp(S[sub] @ R, k, rng, nt)
        *first, _ = _nearest_as_seeded(S, S[sub], seeds, pool_nt)  # the same blocks
    C = S[sub[seeds]].copy()
    lab = np.full(m, -1)
    moved = None
    for _ in range(max_iter):
        # scoring the moved centres for every row and all centres for the rows whose own
        # centre moved (at most) must cost less than all centres for every row
        if first is not None:
            (new, best), first = first, None
        elif moved is None:
            cn, C2 = _centre_terms(C, S.dtype)
            new, best = _nearest(S, C2, cn, nt=pool_nt)
        elif m * moved.size + np.isin(lab, moved).sum() * k > 0.9 * m * k:
            # most centres moved: every row against the centres that can be its nearest
            new, best = _nearest_pruned(S, C, lab, nt=pool_nt)
        else:
            new, best = _reassign(S, C, lab, best, moved, pool_nt)
        changed = int(np.count_nonzero(new != lab))
        lab = new
        ind = sp.csr_matrix((np.ones(m, np.float32), (lab, np.arange(m))), shape=(k, m))
        cnt = np.bincount(lab, minlength=k)
        sums = np.asarray(ind @ S)
        full = cnt > 0
        prev = C.copy()
        C[full] = sums[full] / cnt[full, None]
        empty = np.flatnonzero(~full)
        if empty.size:
            C[empty] = S[rng.choice(m, size=empty.size, replace=False)]
        if changed <= 1e-3 * m and not empty.size:
            break
        moved = np.flatnonzero((prev != C).any(axis=1))
        if not moved.size:  # (e.g. duplicate points trading identical centres) the next
            break  # assignment would be this one: no centre moved
    return lab if S is F else _assign(F, C, nt=pool_nt)


def _potential_distances(pot, nt: int = 1, f32: bool = False):
    """Euclidean distances between the rows of ``pot`` and the Gram matrix ``B`` of the rows
    centred on their mean, which is classical MDS's double-centred ``-1/2 J D^2 J``: one
    GEMM for both (``D^2 = b_ii + b_jj - 2 b_ij``; the centring also shrinks the norms that
    cancel in that sum), instead of a GEMM on the raw rows and a double centring of ``D^2``
    (eight passes over the landmarks' 2,000 x 2,000 matrix). Both exactly symmetric, zero
    diagonal; ``D^2`` clipped at 0. ``nt``: threads of :func:`_gram_halves`' blocks (1 where BLAS
    threads itself). ``f32``: also ``D`` rounded to float32 (in the same pass), returned
    third."""
    pot = np.asarray(pot, dtype=np.float64)
    mu = pot.mean(axis=0)
    Pc = np.empty_like(pot)
    m = pot.shape[0]
    _halves(lambda s, e: np.subtract(pot[s:e], mu, out=Pc[s:e]), m, nt)
    B = _gram_halves(Pc, nt)  # exactly symmetric
    Pc = None
    b = np.diagonal(B).copy()
    D = np.empty_like(B)
    D32 = np.empty(B.shape, dtype=np.float32) if f32 else None

    def dist(s, e):  # element-wise, by row halves: exactly symmetric as one pass
        Ds = D[s:e]
        np.add(b[s:e, None], b[None, :], out=Ds)
        Ds -= 2.0 * B[s:e]
        np.maximum(Ds, 0.0, out=Ds)
        np.sqrt(Ds, out=Ds)
        if f32:
            D32[s:e] = Ds

    _halves(dist, m, nt)
    np.fill_diagonal(D, 0.0)
    if not f32:
        return D, B
    np.fill_diagonal(D32, 0.0)
    return D, B, D32


def _classical_start(
    D, k: int, rng, tol: float = 1e-10, max_iter: int = 60, B=None, pool_nt: int = 1
):
    """Classical MDS of Euclidean distances between rows (PHATE's potential distances: the
    double-centred ``B = -1/2 J D^2 J`` is a Gram matrix, positive semidefinite, so its
    largest eigenvalues are its largest in magnitude) by block subspace iteration: ``k + 14``
    columns, one ``(m, m) x (m, k + 14)`` GEMM and a Rayleigh-Ritz step per iteration, until
    the top ``k`` Ritz pairs' residuals are below ``tol`` times the largest eigenvalue (12-16
    iterations on the n = 20,000 roll's / tree's 2,000 landmarks, whose B has
    ``lambda_17 / lambda_2 < 0.2``: 0.05 s instead of Lanczos' 0.28 s of GEMVs, one thread).
    ``B``: the double-centred matrix when the caller has it (:func:`_potential_distances`);
    ``pool_nt``: threads of the ``B @ Q`` row halves (:func:`_matmul_rows`, the same bits).
    Returns ``(Y, eigenvalues)`` as :func:`classical_mds` does (its sign convention), or None
    when not converged in ``max_iter`` iterations (the caller then runs ``classical_mds``)."""
    m = D.shape[0]
    p = k + 14
    if m < 4 * p:
        return None
    if B is None:
        B = np.square(D, dtype=np.float64)
        B -= B.mean(axis=0)[None, :]
        B -= B.mean(axis=1)[:, None]
        B *= -0.5
        B += B.T
        B *= 0.5
    Q = _orth(_matmul_rows(B, rng.standard_normal((m, p)), pool_nt))
    for _ in range(max_iter):
        Z = _matmul_rows(B, Q, pool_nt)
        H = Q.T @ Z
        w, U = np.linalg.eigh(0.5 * (H + H.T))
        top = np.argsort(-w)[:k]
        w, U = w[top], U[:, top]
        V = Q @ U
        res = np.linalg.norm(Z @ U - V * w, axis=0)
        if w[-1] > 0 and res.max() <= tol * w[0]:
            idx = np.argmax(np.abs(V), axis=0)
            signs = np.sign(V[idx, np.arange(k)])
            signs[signs == 0] = 1
            return np.ascontiguousarray(V * signs * np.sqrt(w)), w
        Q = _orth(Z)
    return None


class PHATE(EmbeddingMixin, BaseEstimator):
    """PHATE embedding (Moon et al., "Visualizing structure and transitions in
    high-dimensional biological data", Nature Biotechnology 2019), sparse, with landmarks.

    phate's algorithm and defaults: the alpha-decay kNN kernel as graphtools builds it
    (:func:`alpha_decay_graph` plus the unit diagonal: ``K = (K_a + K_a^T) / 2`` with
    ``K_a(i, j) = exp(-(d_ij / sigma_i)^decay)``, ``sigma_i`` the distance to the
    ``knn``-th neighbour, entries below 1e-4 dropped), the diffusion operator
    ``P = D^-1 K``; with more than ``n_landmark`` points, landmarks as phate's (spectral
    clusters: k-means on ``P V`` with ``V`` the top ``n_svd`` singular vectors of
    ``D^-1/2 K D^-1/2``) and the landmark operator ``P_L = P_mn P_nm`` (points to clusters and
    back, ``n_landmark x n_landmark``); ``t`` from the knee of the von Neumann entropy of the
    operator's powers; the potential ``-log(P^t + 1e-7)`` (``gamma = 1``), ``P^t``
    (``gamma = -1``) or ``(P^t)^c / c`` with ``c = (1 - gamma) / 2``; Euclidean distances
    between the potential's rows; classical then metric MDS (:class:`MDS`, SMACOF; phate's
    default solver is SGD); the landmark embedding extended to every point by the transitions
    ``P_nm``. The graph stays sparse (O(n knn) memory) and nothing ``n x n`` is formed with
    landmarks. k-means is Lloyd's from random distinct points (phate: scikit-learn's
    ``MiniBatchKMeans``), so the landmarks differ from phate's; PCA of wide data (phate's
    ``n_pca=100``) is not applied. The embedding is in the units of the potential distances
    (classical MDS: the top eigenvectors scaled by the square roots of their eigenvalues);
    phate's sizes differ: its ``mds="classic"`` is a PCA of the double-centred squared
    distances (each axis scaled by its eigenvalue, checked with phate 2.0: the axes agree
    with geoml's up to that scale) and its metric embeddings are Procrustes-normalised to
    unit size, so compare shapes (distance correlations), not coordinates.

    ``fit_transform(X)`` returns ``embedding_``; :meth:`transform` places new points as
    phate's ``transform`` does (graphtools' ``extend_to_data`` and ``interpolate``). For it
    the fitted data is kept (a copy where it may share memory with the caller's array:
    ``n_samples * n_features`` floats, the size of the input; the kNN graph alone holds
    more with ``knn >= n_features / 3``), and with landmarks their embedding
    (``n_landmark * n_components`` floats).

    Parameters
    ----------
    n_components : int, default 2
    knn : int, default 5
        Neighbours of the kernel bandwidth (phate's ``knn``). A value ``>= n_samples`` is
        truncated to ``n_samples - 1`` with a ``UserWarning`` (as graphtools and umap-learn
        do; :func:`alpha_decay_graph` raises instead).
    decay : float or None, default 40
        Alpha-decay exponent; None: phate's kernel without alpha decay, the 0/1 kNN kernel
        (graphtools' ``kneighbors_graph`` of ``knn + 1`` points with the point itself,
        ``(K + K^T) / 2``: 1 on the diagonal and between mutual neighbours, 1/2 between
        one-sided ones; no bandwidth, no 1e-4 threshold), as ``phate.PHATE(decay=None)``;
        new points in :meth:`transform` then get ``1 / knn`` on their ``knn`` nearest fitted
        points.
    t : int or "auto", default "auto"
        Diffusion time (matrix power); "auto": phate's knee of the von Neumann entropy over
        ``t = 0 .. t_max - 1``.
    gamma : float in [-1, 1], default 1
        Informational distance (1: log potential, phate's default).
    n_landmark : int or None, default 2000
        Landmarks (spectral clusters) when there are more points; None: none (``n x n``
        dense potential). Data with few distinct points can give fewer distinct landmarks
        (``potential_`` is ``m x m``); with ``m <= n_components`` the embedding's last
        ``n_components - m + 1`` columns are 0 (``m`` points span ``m - 1`` dimensions),
        with a ``RuntimeWarning``.
    n_svd : int, default 100
        Spectral dimensions of the landmark clustering.
    mds : {"metric", "classic"}, default "metric"
    affinity : {"alpha_decay", "precomputed"}, default "alpha_decay"
        "precomputed": ``X`` is the (n, n) symmetric kernel ``K``, used as given (diagonal
        included, phate's ``knn_dist="precomputed_affinity"``; a graph from
        :func:`alpha_decay_graph` has no self-loops: add the identity for phate's kernel).
    knn_method : {"exact", "auto", "nndescent", ...}, default "exact"
        Neighbour search of :func:`geoml.knn_graph` (approximate methods for large n).
    t_max : int, default 100
    max_iter : int, default 300
        SMACOF transforms.
    random_state, n_jobs : optional
    verbose : int, default 0
        Stage messages with timings on stderr.

    Attributes
    ----------
    embedding_ : ndarray of shape (n_samples, n_components)
        float64 for float32 input too (as scikit-learn's embeddings; ``fit_transform``
        and ``transform`` return it, or its rows, in that dtype).
    affinity_matrix_ : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
        The kernel ``K``.
    diff_op_ : sparse (n, n) ``P`` or ndarray (n_landmark, n_landmark) landmark operator
    t_ : int
    entropy_ : ndarray of shape (t_max,) or None
        The von Neumann entropy curve (``t="auto"``).
    potential_ : ndarray of shape (m, m)
        Diffusion potential, ``m = n_samples`` or the number of landmarks.
    distances_ : ndarray of shape (m, m)
        Euclidean distances between the potential's rows (what MDS embeds).
    clusters_ : ndarray of int of shape (n_samples,) or None
        Landmark (cluster) of every point.
    transitions_ : scipy.sparse.csr_matrix of shape (n_samples, m) or None
    stress_ : float
    n_iter_ : int
        SMACOF transforms run (0 with ``mds="classic"``).
    knn_ : int or None
        Neighbours used (``knn`` truncated); None for a precomputed kernel.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np, geoml
    >>> t = np.linspace(0, 4, 300)
    >>> X = np.column_stack([t, np.sin(t)])
    >>> ph = geoml.PHATE(random_state=0)
    >>> emb = ph.fit_transform(X)
    >>> emb.shape
    (300, 2)
    >>> bool((ph.transform(X) == emb).all())  # the fitted data: embedding_
    True
    >>> ph.transform(X[:5] + 0.01).shape  # new points: phate's interpolation
    (5, 2)
    """

    def __init__(
        self,
        n_components: int = 2,
        knn: int = 5,
        decay: float | None = 40.0,
        t="auto",
        gamma: float = 1.0,
        n_landmark: int | None = 2000,
        *,
        n_svd: int = 100,
        mds: str = "metric",
        affinity: str = "alpha_decay",
        knn_method: str = "exact",
        t_max: int = 100,
        max_iter: int = 300,
        random_state=None,
        n_jobs: int | None = None,
        verbose: int = 0,
    ):
        self.n_components = n_components
        self.knn = knn
        self.decay = decay
        self.t = t
        self.gamma = gamma
        self.n_landmark = n_landmark
        self.n_svd = n_svd
        self.mds = mds
        self.affinity = affinity
        self.knn_method = knn_method
        self.t_max = t_max
        self.max_iter = max_iter
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _say(self, msg: str) -> None:
        say(self.verbose, "PHATE", msg, self._t0)

    def _check_params(self):
        if self.affinity not in ("alpha_decay", "precomputed"):
            raise ValueError(f"affinity={self.affinity!r}; choose 'alpha_decay' or 'precomputed'")
        if self.mds not in ("metric", "classic"):
            raise ValueError(f"mds={self.mds!r}; choose 'metric' or 'classic'")
        gamma = self.gamma
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.integer, np.floating)):
            raise TypeError(f"gamma must be a number in [-1, 1]; got {gamma!r}")
        gamma = float(gamma)
        if not -1 <= gamma <= 1:
            raise ValueError(f"gamma={gamma!r} must lie in [-1, 1]")
        if 0.99 < gamma < 1:
            warnings.warn(
                "0.99 < gamma < 1 is numerically unstable; using 0.99",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
            gamma = 0.99
        if isinstance(self.t, str):
            if self.t != "auto":
                raise ValueError(f"t={self.t!r}; give a positive int or 'auto'")
            t = None
        else:
            t = check_int(self.t, "t", low=1)
        t_max = check_int(self.t_max, "t_max", low=3)
        return gamma, t, t_max, _check_decay(self.decay)

    def fit(self, X, y=None) -> PHATE:
        """Fit on ``X`` of shape (n_samples, n_features), or the (n, n) kernel with
        ``affinity="precomputed"``."""
        names_in = self._feature_names_of(X)
        self._t0 = time.perf_counter()
        gamma, t, t_max, decay = self._check_params()
        if not isinstance(self.verbose, numbers.Integral):  # (bool included; int() of None)
            raise TypeError(f"verbose must be an int or a bool; got {self.verbose!r}")
        nt = check_n_jobs(self.n_jobs)
        with _blas_threads(nt), contextlib.ExitStack() as stack:
            out = self._fit(X, gamma, t, t_max, decay, nt, stack)
            self._set_feature_names(names_in)
            return out

    def _fit(self, X, gamma, t, t_max, decay, nt, stack) -> PHATE:
        rng = check_random_state(self.random_state)
        reject_gpu(X, "X", "PHATE")

        knn = None  # set by build: None for a precomputed kernel
        fit_X = None  # the validated data (for transform); None for a precomputed kernel

        def build(Xf):
            nonlocal knn, fit_X
            fit_X = Xf
            knn = truncate_to_samples(self.knn, "knn", Xf.shape[0])
            kind = "kNN" if decay is None else "alpha-decay"
            self._say(f"{kind} kernel of {Xf.shape[0]} points, knn={knn}")
            return _phate_kernel(
                Xf,
                knn,
                decay,
                method=self.knn_method,
                random_state=random_seed(rng),
                n_jobs=self.n_jobs,
            )

        K, n_features, k = _input_graph(
            X,
            self.affinity == "precomputed",
            "PHATE",
            lambda A: _check_kernel(A, "X"),
            build,
            self.n_components,
        )
        n = K.shape[0]
        pool_nt = 1  # threads of the large GEMMs' row blocks (BLAS held to one thread)
        with np.errstate(over="ignore"):  # (refused by _kernel_shift below)
            d = np.asarray(K.sum(axis=1)).ravel()
        if (d <= 0).any():
            raise ValueError(
                f"{int((d <= 0).sum())} rows of the kernel are zero: every point needs an "
                "affinity (phate's kernel has a unit diagonal)"
            )
        ncomp = _components(K)
        if ncomp > 1:
            warnings.warn(
                f"the graph has {ncomp} connected components: PHATE distances between them "
                "are set by the 1e-7 floor of the potential, not by the data",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
        K_in = K
        e = _kernel_shift(d)
        if e:  # the same operator from K / 2^e (a precomputed kernel of 1e-310: 1 / d was inf)
            K = sp.csr_matrix((np.ldexp(K.data, -e), K.indices, K.indptr), shape=K.shape)
            d = np.ldexp(d, -e)
        P = sp.csr_matrix(sp.diags(1.0 / d) @ K)
        if self.n_landmark is not None:
            n_lm = check_int(self.n_landmark, "n_landmark", low=k + 1)
        if can_hold_blas():
            # BLAS on one thread from here, the large GEMMs in row blocks on nt threads
            # (in_row_blocks; without threadpoolctl BLAS cannot be held: its own threads):
            # the same bits for any thread count, with or without landmarks
            stack.enter_context(single_threaded_blas())
            pool_nt = nt
        if self.n_landmark is None or n <= n_lm:
            clusters = transitions = None
            op = P
            # P = D^-1 K is similar to the symmetric D^-1/2 K D^-1/2 (powers by SYRK)
            r = d
            A_sym = sp.csr_matrix(sp.diags(d**-0.5) @ K @ sp.diags(d**-0.5))
        else:
            n_svd = check_int(self.n_svd, "n_svd", low=1)
            self._say(f"spectral features ({n_svd} singular vectors)")
            F = _spectral_features(K, d, n_svd, rng, nt, pool_nt=pool_nt, lazy=True)
            self._say(f"k-means into {n_lm} landmarks")
            lab = _kmeans(F, n_lm, rng, nt=nt, pool_nt=pool_nt)
            del F
            clusters = np.unique(lab, return_inverse=True)[1].astype(np.int64)
            m = int(clusters.max()) + 1
            C = sp.csr_matrix((np.ones(n), (clusters, np.arange(n))), shape=(m, n))
            pmn = sp.csr_matrix(C @ K)  # (m, n): kernel summed over each cluster
            transitions = _row_normalize(sp.csr_matrix(pmn.T))
            # sparse (m, m): clusters meet through the graph's edges only
            op = sp.csr_matrix(_row_normalize(pmn) @ transitions)
            op.sort_indices()
            # op = diag(1/r) S with S = pmn D^-1 pmn^T symmetric: similar to
            # r^-1/2 S r^-1/2 (powers by SYRK, in float32: the landmarks are approximate)
            r = np.asarray(pmn.sum(axis=1)).ravel()
            pr = sp.csr_matrix(sp.diags(r**-0.5) @ pmn)
            A_sym = sp.csr_matrix(pr @ sp.diags(1.0 / d) @ pr.T)
            A_sym = sp.csr_matrix(0.5 * (A_sym + A_sym.T))
        m = op.shape[0]
        entropy = None
        # P^t = r^-1/2 A^t r^1/2 (float32 with landmarks: they are approximate anyway)
        powers = _SymPowers(A_sym, nt, np.float64 if transitions is None else np.float32, pool_nt)
        if t is None:
            self._say(f"von Neumann entropy of the {m} x {m} operator")
            if transitions is None:  # phate's dense SVD (its curve to rounding)
                entropy = von_neumann_entropy(op.toarray(), t_max)
            else:  # the same singular values from the sparse P P^T (a third of the time),
                # beside the squarings of A_sym
                entropy = _entropy_curve(_landmark_singular_values(op, powers, t_max, nt), t_max)
            t = int(knee_point(entropy, np.arange(t_max)))
            self._say(f"t = {t}")
        self._say("diffusion potential")
        Pt = powers.power(t)
        del powers
        pot = _conjugate_potential(Pt, np.sqrt(r), gamma, pool_nt)
        del Pt
        # with landmarks SMACOF iterates on the distances rounded to float32 (half the
        # memory its transforms stream: the n = 20,000 tree's 123 transforms 0.25 -> 0.14
        # CPU s; the float32 power's own error is larger, stress moved by 2e-10 relative)
        D, B, *D32 = _potential_distances(pot, pool_nt, f32=transitions is not None)
        # k-means of data with few distinct points can find fewer distinct landmarks than
        # n_components + 1 (50 equal points, n_landmark=10: one): m points span at most
        # m - 1 dimensions, the other columns are 0, as in the classical embedding of the
        # same points without landmarks (MDS of the m landmarks raised "n_components=2 is
        # out of range [1, 1] (there are 1 points)")
        k_fit = min(k, m - 1)
        if k_fit < k:
            warnings.warn(
                f"the landmark clustering found {m} distinct landmark(s) (the data has few "
                f"distinct points), which span at most {m - 1} dimension(s): the last "
                f"{k - k_fit} column(s) of the embedding are 0",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
        Y_m, stress, n_iter = np.zeros((m, k)), 0.0, 0
        if k_fit > 0:
            self._say(f"classical MDS of {m} points")
            start = _classical_start(
                D, k_fit, check_random_state(random_seed(rng)), B=B, pool_nt=pool_nt
            )
            B = None  # (m x m: freed before SMACOF)
            mds = MDS(
                k_fit,
                metric=self.mds == "metric",
                init="classical" if start is None else start[0],
                max_iter=self.max_iter,
                dissimilarity="precomputed",
                random_state=random_seed(rng),
                n_jobs=self.n_jobs,
                verbose=max(0, int(self.verbose) - 1),
            )
            self._say(f"{self.mds} MDS of {m} points")
            # over-relaxed SMACOF (fewer transforms to a lower stress: the n = 20,000 tree's
            # 121 instead of 179); a stop at max_iter before convergence warns (RuntimeWarning)
            Y_fit, stress, n_iter, _ = mds._embed(
                D,
                k_fit,
                check_int(self.max_iter, "max_iter", low=0),
                _SMACOF_EPS,
                check_random_state(mds.random_state),
                random_seed(mds.random_state),
                nt,
                relax=True,
                D_iter=D32[0] if D32 else None,
            )
            Y_m[:, :k_fit] = Y_fit
        del B
        Y = Y_m if transitions is None else np.asarray(transitions @ Y_m)
        self._say("done")
        self.embedding_ = np.ascontiguousarray(Y, dtype=np.float64)
        self.affinity_matrix_ = K_in
        self.diff_op_ = P if transitions is None else op.toarray()
        self.t_ = int(t)
        self.entropy_ = entropy
        self.potential_ = pot
        self.distances_ = D
        self.clusters_ = clusters
        self.transitions_ = transitions
        self.stress_ = float(stress)
        self.n_iter_ = int(n_iter)
        self.knn_ = knn
        self.n_features_in_ = n_features
        self._fit_data = (None if fit_X is None else _owned(fit_X, X), knn, decay)
        self._landmark_embedding = None if transitions is None else np.asarray(Y_m, np.float64)
        return self

    def transform(self, X) -> np.ndarray:
        """Embed ``X`` of shape (m, n_features): the fitted data gives ``embedding_``, new
        points are interpolated as phate interpolates them.

        ``X`` equal to the data given to ``fit`` (same shape and values) returns a copy of
        ``embedding_`` (so ``fit(X).transform(X)`` equals ``fit_transform(X)``). Other points
        are placed as phate's ``transform`` places new data (graphtools' ``extend_to_data``
        and ``interpolate``): each point's alpha-decay affinities to the fitted points (the
        fit's ``knn`` and ``decay``, the bandwidth its distance to its ``knn``-th nearest
        fitted point, exact neighbours whatever ``knn_method``), divided by their sum,
        times the embedding: of the fitted points without landmarks, of each fitted point's
        landmark with them (phate's landmark graph: the affinities summed per landmark). A
        row equal to a fitted point gets that point's row of ``embedding_`` (the lowest
        index among equal fitted points), so every row is transformed on its own (a subset
        or a permutation of ``X`` transforms to the same rows; phate interpolates every row
        of a matrix that is not the fitted one). The interpolation is a weighted mean of
        embedded positions: a point near a fitted one lands near, not on, that point's
        position. No warning (phate warns that a fitted PHATE should not transform new
        data; here it is a documented method, as in scikit-learn's transformers).

        Parameters
        ----------
        X : array-like of shape (m, n_features)
            With ``affinity="precomputed"`` only the fitted kernel is accepted
            (``ValueError`` otherwise, as in phate: new points have no affinities to the
            fitted ones).

        Returns
        -------
        Y : ndarray of shape (m, n_components)
            float64.
        """

        X_in = X
        self._check_feature_names_in(X)

        def basis():
            lm = self._landmark_embedding
            return self.embedding_ if lm is None else lm[self.clusters_]

        return self._wrap_output(
            _transform_new(self, X, "PHATE", lambda A: _check_kernel(A, "X"), self.n_jobs, basis),
            X_in,
        )

    def _geoml_tags(self) -> dict:
        return {"input_tags.pairwise": self.affinity == "precomputed"}
