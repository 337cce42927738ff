"""Diffusion geometry: geoml vs SciPy expm_multiply, scikit-learn MDS and heatgeo.

One process run, each section geoml and its anchor on the same data:
(1) heat_kernel vs ``scipy.sparse.linalg.expm_multiply``: exp(-t L_sym) B on the 10-NN
    Gaussian graph of n clustered 3-D points with m columns, for several t (issue goal:
    >= 10x at n = 100,000, m = 100, within tol = 1e-8);
(2) metric SMACOF vs ``sklearn.manifold.smacof`` from the same classical start (goal: stress
    never above, >= 10x at n = 5,000);
(3) HeatGeo vs ``heatgeo`` (knn=10, decay=40, tau=10, Harnack 0) on
    ``make_swiss_roll(n, random_state=0)``: time, distance agreement on heatgeo's graph, and
    the Spearman correlation of embedded vs ground-truth geodesic distances (arc length along
    the roll, height); skipped without heatgeo;
(4) HeatGeo with landmarks at large n (geoml alone);
(5) PHATE vs ``phate`` (defaults, 2,000 landmarks) on the swiss roll and phate's DLA tree at
    n = 20,000: time and Spearman vs ground truth (goal: >= 10x, Spearman >= phate's);
(6) PHATE alone at n = 1,000,000 (``--sections phate_big``; approximate kNN);
(7) ``--sections transform``: ``PHATE.transform`` vs phate's ``PHATE.transform`` of 2,000 new
    points after a fit on 10,000 (swiss roll: the rest of the same draw; tree: noiseless tree
    points drawn again with fresh noise): time, Procrustes disparity of the two transforms
    after aligning the fitted embeddings, Spearman vs ground truth of the new rows; and
    ``HeatGeo.transform`` of 500 new swiss-roll points after a fit on 2,000 vs refitting on
    all points (heatgeo has no out-of-sample method), with geoml and heatgeo;
``--figure PATH`` writes the swiss-roll / tree embedding figure (geoml next to phate).

    python bench/bench_diffusion.py                 # the issue's sizes (long: see README)
    python bench/bench_diffusion.py --quick         # small sizes, a smoke run
    python bench/bench_diffusion.py --sections heat,mds
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import geoml

from ._harness import clustered, machine, print_table, timeit, write_json

DEFAULT_SECTIONS = "heat,mds,heatgeo,landmarks"


def relerr(Y, R):
    Y = Y.reshape(R.shape[0], -1)
    R = R.reshape(R.shape[0], -1)
    return float((np.linalg.norm(Y - R, axis=0) / np.linalg.norm(R, axis=0)).max())


def _timed_anchor(fn, repeats, long_s=20.0):
    """(seconds, value) of an anchor timed as geoml is: the first call is the warm-up and the
    median of ``repeats`` more is reported, except that a first call longer than ``long_s``
    is reported as it is (warm-up effects are noise there; expm_multiply at t = 100 takes
    ~110 s on the quiet machine)."""
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    if first > long_s or repeats < 1:
        return first, out
    return timeit(fn, repeats=repeats, warmup=0)


def bench_heat(n, m, times, repeats, n_jobs):
    from scipy.sparse.linalg import expm_multiply

    X = clustered(n, 3, seed=0, dtype="float64")
    W = geoml.knn_graph(X, 10, kernel="gaussian")
    L = geoml.laplacian(W).tocsr()
    B = np.random.default_rng(1).standard_normal((n, m))
    rows = []
    for t in times:
        tg, Y = timeit(lambda: geoml.heat_kernel(W, B, t, tol=1e-8, n_jobs=n_jobs), repeats=repeats)
        ts, R = _timed_anchor(lambda t=t: expm_multiply(-t * L, B), repeats)
        ratio = ts / tg
        rows.append(
            {
                "n": n,
                "m": m,
                "t": t,
                "geoml_s": tg,
                "expm_multiply_s": ts,
                "speedup": ratio,
                "rel_err": relerr(Y, R),
            }
        )
    # all times from one run
    tg, _ = timeit(lambda: geoml.heat_kernel(W, B, times, n_jobs=n_jobs), repeats=repeats)
    rows.append({"n": n, "m": m, "t": "all at once", "geoml_s": tg})
    return rows


def bench_mds(n, repeats, n_jobs, max_iter):
    from sklearn.manifold import smacof

    from geoml.diffusion import classical_mds
    from geoml.diffusion import smacof as g_smacof

    rng = np.random.default_rng(0)
    P = rng.standard_normal((n, 5))
    D = np.sqrt(np.maximum(((P[:, None, :] - P[None, :, :]) ** 2).sum(-1), 0))
    D *= rng.uniform(0.9, 1.1, D.shape)  # not exactly Euclidean
    D = 0.5 * (D + D.T)
    np.fill_diagonal(D, 0)
    Y0, _ = classical_mds(D, 2, random_state=0)
    tg, (Y, stress, n_iter, _) = timeit(
        lambda: g_smacof(D, Y0, max_iter=max_iter, n_jobs=n_jobs), repeats=repeats
    )
    t0 = time.perf_counter()
    _, s_ref, it_ref = smacof(
        D, init=Y0.copy(), n_init=1, max_iter=max_iter, eps=1e-6, return_n_iter=True
    )
    ts = time.perf_counter() - t0
    return [
        {
            "n": n,
            "geoml_s": tg,
            "sklearn_s": ts,
            "speedup": ts / tg,
            "geoml_stress": stress,
            "sklearn_stress": float(s_ref),
            "geoml_iter": n_iter,
            "sklearn_iter": int(it_ref),
            "goal": ">= 10x, stress <= sklearn: "
            + ("met" if ts / tg >= 10 and stress <= s_ref * (1 + 1e-9) else "MISSED"),
        }
    ]


def swiss(n):
    from sklearn.datasets import make_swiss_roll

    X, t = make_swiss_roll(n, random_state=0)
    arc = 0.5 * (t * np.sqrt(1 + t**2) + np.arcsinh(t))
    return X, np.column_stack([arc, X[:, 1]])


def spearman_to_truth(Y, U, n_pairs=2_000_000, seed=0):
    """Spearman of embedded vs true distances over all pairs (sampled pairs for large n)."""
    from scipy.spatial.distance import pdist
    from scipy.stats import spearmanr

    n = Y.shape[0]
    if n * (n - 1) // 2 <= n_pairs:
        return float(spearmanr(pdist(Y), pdist(U))[0])
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, n, (2, n_pairs))
    keep = i != j
    i, j = i[keep], j[keep]
    return float(
        spearmanr(np.linalg.norm(Y[i] - Y[j], axis=1), np.linalg.norm(U[i] - U[j], axis=1))[0]
    )


def bench_heatgeo(n, n_jobs):
    rows = []
    X, U = swiss(n)
    t0 = time.perf_counter()
    ours = geoml.HeatGeo(n_neighbors=10, random_state=0, n_jobs=n_jobs).fit(X)
    tg = time.perf_counter() - t0
    row = {
        "n": n,
        "tool": "geoml HeatGeo (SMACOF)",
        "time_s": tg,
        "spearman": spearman_to_truth(ours.embedding_, U),
    }
    rows.append(row)
    t0 = time.perf_counter()
    cl = geoml.HeatGeo(n_neighbors=10, random_state=0, n_jobs=n_jobs, mds="classical").fit(X)
    rows.append(
        {
            "n": n,
            "tool": "geoml HeatGeo (classical MDS)",
            "time_s": time.perf_counter() - t0,
            "spearman": spearman_to_truth(cl.embedding_, U),
        }
    )
    try:
        import heatgeo.embedding as he
    except ImportError as e:
        print(f"heatgeo not installed ({e}); skipping the reference")
        return rows
    ref = he.HeatGeo(knn=10)
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):
        Yr = ref.fit_transform(X)
    tr = time.perf_counter() - t0
    D = geoml.heat_geodesic_distances(ref.graph.W, 10.0, n_jobs=n_jobs)
    off = ~np.eye(n, dtype=bool)
    err = float(np.linalg.norm((D - ref.dist)[off]) / np.linalg.norm(ref.dist[off]))
    rho_r = spearman_to_truth(Yr, U)
    row["speedup_vs_heatgeo"] = tr / tg
    row["dist_rel_err_same_graph"] = err
    row["goal"] = "dist <= 1e-6, spearman >= heatgeo's: " + (
        "met" if err <= 1e-6 and row["spearman"] >= rho_r else "MISSED"
    )
    rows.append({"n": n, "tool": "heatgeo (s_gd2 MDS)", "time_s": tr, "spearman": rho_r})
    return rows


def bench_landmarks(n, n_landmarks, n_jobs):
    X, U = swiss(n)
    t0 = time.perf_counter()
    m = geoml.HeatGeo(n_neighbors=10, n_landmarks=n_landmarks, random_state=0, n_jobs=n_jobs)
    m.fit(X)
    t = time.perf_counter() - t0
    return [
        {
            "n": n,
            "tool": f"geoml HeatGeo, {n_landmarks} landmarks",
            "time_s": t,
            "spearman": spearman_to_truth(m.embedding_, U),
            "goal": "< 60 s: " + ("met" if t < 60 else "MISSED") if n >= 100_000 else "",
        }
    ]


def gen_dla_tree(n_branch=20, branch_length=100, n_dim=100, seed=37, sigma=4.0, clean=False):
    """phate.tree.gen_dla reproduced draw for draw, with the tree graph of the noiseless
    points (consecutive branch steps; each branch's first point to its attachment point) for
    ground-truth geodesics; ``clean=True`` also returns the noiseless points."""
    import scipy.sparse as sp

    rs = np.random.RandomState(seed)
    M = np.cumsum(-1 + 2 * rs.rand(branch_length, n_dim), 0)
    rows, cols = [], []
    for _ in range(n_branch - 1):
        ind = rs.randint(branch_length)
        new = np.cumsum(-1 + 2 * rs.rand(branch_length, n_dim), 0)
        rows.append(M.shape[0])
        cols.append(ind)
        M = np.concatenate([M, new + M[ind, :]])
    n = M.shape[0]
    X = M + rs.normal(0, sigma, M.shape)
    chain = np.arange(n - 1)
    keep = (chain + 1) % branch_length != 0
    r = np.concatenate([chain[keep], rows])
    c = np.concatenate([chain[keep] + 1, cols])
    G = sp.csr_matrix((np.linalg.norm(M[r] - M[c], axis=1), (r, c)), shape=(n, n))
    return (X, G, M) if clean else (X, G)


def spearman_tree(Y, G, n_src=300, seed=0, nodes=None):
    """Spearman of embedded vs tree-geodesic distances from ``n_src`` random sources;
    ``nodes``: the tree node of each row of ``Y`` (default: row ``i`` is node ``i``)."""
    from scipy.sparse.csgraph import dijkstra
    from scipy.stats import spearmanr

    n = Y.shape[0]
    src = np.random.default_rng(seed).choice(n, size=min(n_src, n), replace=False)
    if nodes is None:
        T = dijkstra(G, directed=False, indices=src)
    else:
        T = dijkstra(G, directed=False, indices=nodes[src])[:, nodes]
    E = np.linalg.norm(Y[src][:, None, :] - Y[None, :, :], axis=2)
    keep = np.ones(T.shape, dtype=bool)
    keep[np.arange(src.size), src] = False
    return float(spearmanr(E[keep], T[keep])[0])


def _same_blas_threads():
    """phate's BLAS held to the threads geoml uses (its load-aware default): an oversubscribed
    OpenBLAS pool on a loaded machine slowed phate tenfold."""
    import contextlib

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(max(1, geoml._core.max_threads()), user_api="blas")


def _phate_ref():
    try:
        import phate
    except ImportError as e:
        print(f"phate not installed ({e}); skipping the reference")
        return None
    import warnings

    Xw = np.random.default_rng(0).standard_normal((3000, 3))
    with warnings.catch_warnings(), _same_blas_threads():
        warnings.simplefilter("ignore")
        phate.PHATE(n_landmark=500, verbose=0, random_state=0).fit_transform(Xw)  # numba JIT
    geoml.PHATE(n_landmark=500, random_state=0).fit(Xw)  # the same warm-up for geoml
    return phate


def bench_phate(n, n_jobs, n_landmark=2000, datasets=("swiss roll", "tree"), repeats=1):
    """geoml.PHATE vs phate.PHATE (defaults: knn=5, decay=40, t='auto', gamma=1, landmarks;
    phate's MDS solver is SGD, geoml's SMACOF), time and Spearman vs ground truth. Both warmed
    up by one small fit (phate's numba JIT), then the median of ``repeats`` fits each."""
    import warnings

    phate = _phate_ref()
    rows = []
    for name in datasets:
        if name == "swiss roll":
            X, U = swiss(n)

            def quality(Y, U=U):
                return spearman_to_truth(Y, U)
        else:
            X, G = gen_dla_tree(n_branch=20, branch_length=max(1, n // 20))

            def quality(Y, G=G):
                return spearman_tree(Y, G)

        tg, ours = timeit(
            lambda X=X: geoml.PHATE(n_landmark=n_landmark, random_state=0, n_jobs=n_jobs).fit(X),
            repeats=repeats,
            warmup=0,
        )
        row = {
            "data": name,
            "n": X.shape[0],
            "tool": "geoml PHATE",
            "time_s": tg,
            "t": ours.t_,
            "spearman": quality(ours.embedding_),
        }
        rows.append(row)
        if phate is None:
            continue

        def run_ref(X=X):
            ref = phate.PHATE(n_landmark=n_landmark, verbose=0, random_state=0, n_jobs=1)
            with warnings.catch_warnings(), _same_blas_threads():
                warnings.simplefilter("ignore")
                return ref, ref.fit_transform(X)

        tr, (ref, Yr) = timeit(run_ref, repeats=repeats, warmup=0)
        rho_r = quality(Yr)
        row["speedup_vs_phate"] = tr / tg
        row["goal"] = ">= 10x, spearman >= phate's: " + (
            "met" if tr / tg >= 10 and row["spearman"] >= rho_r else "MISSED"
        )
        rows.append(
            {
                "data": name,
                "n": X.shape[0],
                "tool": "phate (SGD MDS)",
                "time_s": tr,
                "t": ref.optimal_t,
                "spearman": rho_r,
            }
        )
    return rows


def bench_phate_big(n, n_jobs):
    """geoml.PHATE alone at large n (approximate kNN, 2,000 landmarks)."""
    X, U = swiss(n)
    t0 = time.perf_counter()
    est = geoml.PHATE(knn_method="auto", random_state=0, n_jobs=n_jobs, verbose=1).fit(X)
    t = time.perf_counter() - t0
    return [
        {
            "n": n,
            "tool": "geoml PHATE (knn_method='auto', 2000 landmarks)",
            "time_s": t,
            "t": est.t_,
            "spearman": spearman_to_truth(est.embedding_, U),
        }
    ]


def _similarity_map(A, B):
    """The similarity (scale, rotation or reflection, shift) that best maps the rows of
    ``A`` onto those of ``B`` in least squares (Procrustes), as a function of points."""
    ma, mb = A.mean(axis=0), B.mean(axis=0)
    A0, B0 = A - ma, B - mb
    U, S, Vt = np.linalg.svd(A0.T @ B0)
    R = U @ Vt
    s = S.sum() / (A0**2).sum()
    return lambda Z: s * (Z - ma) @ R + mb


def _disparity(Z, B):
    """Procrustes disparity of ``Z`` (already in ``B``'s frame): squared error over ``B``'s
    total squared spread (0: identical; 1: no better than ``B``'s centroid)."""
    return float(((Z - B) ** 2).sum() / ((B - B.mean(axis=0)) ** 2).sum())


def _transform_data(name, n, m):
    """(fitted X, new points, quality of the fitted rows, quality of the new rows): the
    swiss roll's first ``n`` of ``n + m`` draws and the rest; the DLA tree of ``n`` points
    and ``m`` of its noiseless points drawn again with fresh noise (seed 1). Quality:
    Spearman of embedded vs ground-truth distances."""
    if name == "swiss roll":
        X, U = swiss(n + m)
        return (
            X[:n],
            X[n:],
            lambda Y: spearman_to_truth(Y, U[:n]),
            lambda Y: spearman_to_truth(Y, U[n:]),
        )
    X, G, M = gen_dla_tree(n_branch=20, branch_length=max(1, n // 20), clean=True)
    rng = np.random.default_rng(1)
    nodes = rng.choice(X.shape[0], size=m, replace=False)
    Xn = M[nodes] + rng.normal(0, 4.0, (m, M.shape[1]))
    return X, Xn, lambda Y: spearman_tree(Y, G), lambda Y: spearman_tree(Y, G, nodes=nodes)


def bench_phate_transform(n, m, n_jobs, repeats, n_landmark=2000, datasets=("swiss roll", "tree")):
    """geoml ``PHATE.transform`` vs phate's ``PHATE.transform`` (graphtools' extend_to_data
    and interpolate) of ``m`` new points after a fit on ``n`` (each tool its own fit, phate's
    defaults): the median of ``repeats`` calls after one warm-up (phate's builds its kNN
    tree of the fitted data there). Accuracy: geoml's fitted embedding is mapped onto
    phate's by the Procrustes similarity of the fitted rows alone, the same map is applied
    to geoml's transformed rows, and ``disparity_new`` is their Procrustes disparity to
    phate's transformed rows; ``disparity_fit`` (the fitted rows') is the floor set by the
    two embeddings' own differences (landmarks, SMACOF vs SGD). Spearman vs ground truth of
    the transformed rows for each tool."""
    import warnings

    phate = _phate_ref()
    rows = []
    for name in datasets:
        X, Xn, q_fit, q_new = _transform_data(name, n, m)
        est = geoml.PHATE(n_landmark=n_landmark, random_state=0, n_jobs=n_jobs).fit(X)
        tg, Yg = timeit(lambda est=est, Xn=Xn: est.transform(Xn), repeats=repeats)
        row = {
            "data": name,
            "n_fit": X.shape[0],
            "m_new": Xn.shape[0],
            "tool": "geoml PHATE.transform",
            "time_s": tg,
            "spearman_fit": q_fit(est.embedding_),
            "spearman_new": q_new(Yg),
        }
        rows.append(row)
        if phate is None:
            continue
        ref = phate.PHATE(n_landmark=n_landmark, verbose=0, random_state=0, n_jobs=1)
        with warnings.catch_warnings(), _same_blas_threads():
            warnings.simplefilter("ignore")
            Yr_fit = ref.fit_transform(X)

        def run_ref(ref=ref, Xn=Xn):
            with warnings.catch_warnings(), _same_blas_threads():
                warnings.simplefilter("ignore")  # phate warns on new data
                return ref.transform(Xn)

        tr, Yr = timeit(run_ref, repeats=repeats)
        to_ref = _similarity_map(est.embedding_, Yr_fit)
        row["speedup_vs_phate"] = tr / tg
        row["disparity_fit"] = _disparity(to_ref(est.embedding_), Yr_fit)
        row["disparity_new"] = _disparity(to_ref(Yg), Yr)
        rows.append(
            {
                "data": name,
                "n_fit": X.shape[0],
                "m_new": Xn.shape[0],
                "tool": "phate PHATE.transform",
                "time_s": tr,
                "spearman_fit": q_fit(Yr_fit),
                "spearman_new": q_new(Yr),
            }
        )
    return rows


def bench_heatgeo_transform(n, m, n_jobs, repeats, n_landmarks=None):
    """geoml ``HeatGeo.transform`` of ``m`` new swiss-roll points after a fit on ``n``,
    against refitting on all ``n + m`` points (heatgeo has no out-of-sample method: its
    ``HeatGeo`` has ``fit`` and ``fit_transform`` only), with geoml and, where installed,
    heatgeo. Accuracy: the refit's rows of the fitted points are mapped onto the fit's
    embedding by their Procrustes similarity, and ``disparity_vs_refit`` is the disparity of
    the transformed rows to the refit's new rows under that map (``disparity_fit``: the
    fitted rows', the floor from the refit's own changes); Spearman vs ground truth of the
    new rows for each."""
    import warnings

    X, Xn, _, q_new = _transform_data("swiss roll", n, m)
    XA = np.vstack([X, Xn])

    def make():
        return geoml.HeatGeo(n_neighbors=10, n_landmarks=n_landmarks, random_state=0, n_jobs=n_jobs)

    est = make().fit(X)
    tg, Yg = timeit(lambda: est.transform(Xn), repeats=repeats)
    tf, refit = timeit(lambda: make().fit(XA), repeats=1, warmup=0)
    Yf = refit.embedding_
    to_fit = _similarity_map(Yf[:n], est.embedding_)
    lm = "" if n_landmarks is None else f", {n_landmarks} landmarks"
    rows = [
        {
            "n_fit": n,
            "m_new": m,
            "tool": f"geoml HeatGeo.transform{lm}",
            "time_s": tg,
            "spearman_new": q_new(Yg),
            "speedup_vs_refit": tf / tg,
            "disparity_fit": _disparity(to_fit(Yf[:n]), est.embedding_),
            "disparity_vs_refit": _disparity(to_fit(Yf[n:]), Yg),
        },
        {
            "n_fit": n,
            "m_new": m,
            "tool": f"geoml HeatGeo refit on n + m{lm}",
            "time_s": tf,
            "spearman_new": q_new(Yf[n:]),
        },
    ]
    try:
        import heatgeo.embedding as he
    except ImportError as e:
        print(f"heatgeo not installed ({e}); skipping its refit")
        return rows
    if n + m > 5_000:  # dense n x n distances and s_gd2 over all pairs
        print(f"heatgeo refit skipped at n + m = {n + m} (> 5,000)")
        return rows

    def run_ref():
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return he.HeatGeo(knn=10).fit_transform(XA)

    tr, Yr = timeit(run_ref, repeats=1, warmup=0)
    rows[0]["speedup_vs_heatgeo_refit"] = tr / tg
    rows.append(
        {
            "n_fit": n,
            "m_new": m,
            "tool": "heatgeo refit on n + m (no transform)",
            "time_s": tr,
            "spearman_new": q_new(Yr[n:]),
        }
    )
    return rows


def figure(path, n=2000, n_jobs=None):
    """Swiss roll and tree embeddings: geoml PHATE / HeatGeo next to phate (and heatgeo
    where installed), coloured by the ground truth."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Xs, Us = swiss(n)
    Xt, Gt = gen_dla_tree(n_branch=20, branch_length=max(1, n // 20))
    ct = np.repeat(np.arange(20), max(1, n // 20))
    data = [("swiss roll", Xs, Us[:, 0], lambda Y: spearman_to_truth(Y, Us))]
    data.append(("tree", Xt, ct, lambda Y: spearman_tree(Y, Gt)))
    methods = [
        ("geoml PHATE", lambda X: geoml.PHATE(random_state=0, n_jobs=n_jobs).fit_transform(X)),
        (
            "geoml HeatGeo",
            lambda X: geoml.HeatGeo(n_neighbors=10, random_state=0, n_jobs=n_jobs).fit_transform(X),
        ),
    ]
    phate = _phate_ref()
    if phate is not None:

        def run_phate(X):
            with warnings.catch_warnings(), _same_blas_threads():
                warnings.simplefilter("ignore")
                return phate.PHATE(verbose=0, random_state=0).fit_transform(X)

        methods.insert(1, ("phate", run_phate))
    try:
        import heatgeo.embedding as he

        def run_heatgeo(X):
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return he.HeatGeo(knn=10).fit_transform(X)

        methods.append(("heatgeo", run_heatgeo))
    except ImportError:
        pass
    fig, axes = plt.subplots(len(data), len(methods), figsize=(3.1 * len(methods), 6.0))
    for r, (dname, X, c, q) in enumerate(data):
        for k, (mname, run) in enumerate(methods):
            Y = run(X)
            ax = axes[r, k]
            ax.scatter(Y[:, 0], Y[:, 1], c=c, s=1.5, cmap="viridis" if r == 0 else "tab20")
            ax.set_title(f"{mname}, {dname}\nSpearman to ground truth {q(Y):.3f}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    _shrink_png(path)
    print(f"figure written to {path}")


def _shrink_png(path):
    """256-colour palette PNG (Pillow comes with matplotlib): a third of the RGBA size."""
    from PIL import Image

    with Image.open(path) as im:
        out = im.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    out.save(path, optimize=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes")
    ap.add_argument("--sections", default=DEFAULT_SECTIONS)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-jobs", type=int, default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--phate-n", type=int, default=None, help="PHATE section size (20,000)")
    ap.add_argument("--big-n", type=int, default=1_000_000, help="phate_big section size")
    ap.add_argument(
        "--transform-n",
        default=None,
        help="transform section: fitted,new points for PHATE (10000,2000) and HeatGeo "
        "(2000,500), as 'N,M[,N,M]'",
    )
    ap.add_argument("--figure", default=None, help="write the embedding figure (PNG) here")
    args = ap.parse_args(argv)
    sections = set(args.sections.split(","))
    q = args.quick
    print(machine())
    out = {"args": vars(args)}
    if "heat" in sections:
        rows = bench_heat(
            5_000 if q else 100_000,
            20 if q else 100,
            [0.1, 1.0, 10.0, 100.0],
            args.repeats,
            args.n_jobs,
        )
        print("\nheat_kernel vs scipy expm_multiply (L_sym of a 10-NN Gaussian graph, tol 1e-8)")
        print_table(rows, ["n", "m", "t", "geoml_s", "expm_multiply_s", "speedup", "rel_err"])
        out["heat"] = rows
    if "mds" in sections:
        rows = bench_mds(800 if q else 5_000, args.repeats, args.n_jobs, 300)
        print("\nmetric SMACOF vs sklearn.manifold.smacof (same classical start, 300 iterations)")
        print_table(
            rows,
            [
                "n",
                "geoml_s",
                "sklearn_s",
                "speedup",
                "geoml_stress",
                "sklearn_stress",
                "geoml_iter",
                "sklearn_iter",
                "goal",
            ],
        )
        out["mds"] = rows
    if "heatgeo" in sections:
        rows = bench_heatgeo(500 if q else 2_000, args.n_jobs)
        print("\nHeatGeo vs heatgeo on make_swiss_roll (Spearman vs the unrolled roll)")
        print_table(
            rows,
            [
                "n",
                "tool",
                "time_s",
                "spearman",
                "speedup_vs_heatgeo",
                "dist_rel_err_same_graph",
                "goal",
            ],
        )
        out["heatgeo"] = rows
    if "landmarks" in sections:
        rows = bench_landmarks(20_000 if q else 100_000, 500 if q else 2_000, args.n_jobs)
        print("\nHeatGeo with landmarks (geoml alone)")
        print_table(rows, ["n", "tool", "time_s", "spearman", "goal"])
        out["landmarks"] = rows
    if "phate" in sections:
        rows = bench_phate(
            args.phate_n or (3_000 if q else 20_000), args.n_jobs, repeats=max(1, args.repeats)
        )
        print("\nPHATE vs phate (defaults; Spearman vs the unrolled roll / tree geodesics)")
        print_table(
            rows, ["data", "n", "tool", "time_s", "t", "spearman", "speedup_vs_phate", "goal"]
        )
        out["phate"] = rows
    if "phate_big" in sections:
        rows = bench_phate_big(50_000 if q else args.big_n, args.n_jobs)
        print("\nPHATE at large n (geoml alone)")
        print_table(rows, ["n", "tool", "time_s", "t", "spearman"])
        out["phate_big"] = rows
    if "transform" in sections:
        sizes = [1_000, 200, 500, 100] if q else [10_000, 2_000, 2_000, 500]
        if args.transform_n:
            given = [int(v) for v in args.transform_n.split(",")]
            sizes[: len(given)] = given
        rows = bench_phate_transform(sizes[0], sizes[1], args.n_jobs, max(1, args.repeats))
        print(
            "\nPHATE.transform vs phate's PHATE.transform of new points (disparity: after "
            "aligning the fitted embeddings; Spearman vs ground truth)"
        )
        print_table(
            rows,
            [
                "data",
                "n_fit",
                "m_new",
                "tool",
                "time_s",
                "speedup_vs_phate",
                "disparity_fit",
                "disparity_new",
                "spearman_fit",
                "spearman_new",
            ],
        )
        out["phate_transform"] = rows
        rows = bench_heatgeo_transform(sizes[2], sizes[3], args.n_jobs, max(1, args.repeats))
        print("\nHeatGeo.transform vs refitting on all points (heatgeo has no transform)")
        print_table(
            rows,
            [
                "n_fit",
                "m_new",
                "tool",
                "time_s",
                "speedup_vs_refit",
                "speedup_vs_heatgeo_refit",
                "disparity_fit",
                "disparity_vs_refit",
                "spearman_new",
            ],
        )
        out["heatgeo_transform"] = rows
    if args.figure:
        figure(args.figure, n_jobs=args.n_jobs)
    if len(out) > 1:  # some section ran (--sections none --figure PATH: the figure alone)
        # a run of other sections than the default ones is named after them, so that it
        # does not overwrite the full run's diffusion.json
        name = "diffusion"
        if sections != set(DEFAULT_SECTIONS.split(",")):
            name += "_" + "_".join(sorted(sections)) + ("_quick" if q else "")
        write_json(name, out, args.out)


if __name__ == "__main__":
    main()
