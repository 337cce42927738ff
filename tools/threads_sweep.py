"""Thread-invariance sweep of geoml's public API (session 28).

Usage:
  python tools/threads_sweep.py [CASES...]  # driver: the configs in subprocesses, the table
  python tools/threads_sweep.py --worker CFG OUT [CASES...]  # one config, pickled outputs

Configs (all with GEOML_LOAD_AWARE=0 so that OMP_NUM_THREADS is honoured as is):
  nj1 / nj2 : n_jobs=1 / n_jobs=2 in the call, BLAS and OMP env left at the machine's default
  omp1/omp2 : n_jobs=None, OMP_NUM_THREADS=1/2, OPENBLAS_NUM_THREADS=1
  blas1/blas2: n_jobs=None, OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1/2
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import subprocess
import sys
import tempfile
import time
import warnings

CONFIGS = {
    "nj1": ({}, 1),
    "nj2": ({}, 2),
    "omp1": ({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}, None),
    "omp2": ({"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "1"}, None),
    "blas1": ({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}, None),
    "blas2": ({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "2"}, None),
}


def flatten(obj, prefix="", out=None, depth=0):
    import numpy as np
    import scipy.sparse as sp

    if out is None:
        out = {}
    if depth > 4:
        return out
    if obj is None or isinstance(obj, (str, bytes)):
        out[prefix] = repr(obj)
    elif isinstance(obj, (bool, int, float, complex, np.number, np.bool_)):
        out[prefix] = np.asarray(obj)
    elif isinstance(obj, np.ndarray):
        out[prefix] = obj.copy()
    elif sp.issparse(obj):
        c = sp.csr_matrix(obj)
        out[prefix + ".data"] = c.data.copy()
        out[prefix + ".indices"] = c.indices.copy()
        out[prefix + ".indptr"] = c.indptr.copy()
    elif isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, f"{prefix}[{k!r}]", out, depth + 1)
    elif isinstance(obj, tuple) and hasattr(obj, "_fields"):
        for k in obj._fields:
            flatten(getattr(obj, k), f"{prefix}.{k}", out, depth + 1)
        for k, v in vars(obj).items() if hasattr(obj, "__dict__") else ():
            flatten(v, f"{prefix}.{k}", out, depth + 1)
    elif isinstance(obj, (list, tuple)):
        if len(obj) > 50 and all(isinstance(x, (int, float, np.number)) for x in obj):
            out[prefix] = np.asarray(obj)
        else:
            for i, v in enumerate(obj):
                flatten(v, f"{prefix}[{i}]", out, depth + 1)
    elif dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            flatten(getattr(obj, f.name), f"{prefix}.{f.name}", out, depth + 1)
    elif hasattr(obj, "get_params") and hasattr(obj, "fit"):  # a fitted estimator
        for k, v in vars(obj).items():
            if k.endswith("_") and not k.startswith("_"):
                flatten(v, f"{prefix}.{k}", out, depth + 1)
    elif hasattr(obj, "__dict__"):
        for k, v in vars(obj).items():
            if not k.startswith("_"):
                flatten(v, f"{prefix}.{k}", out, depth + 1)
    else:
        out[prefix] = repr(obj)
    return out


def build_cases():
    """name -> f(nj) (nj: the n_jobs argument; None in the env configs)."""
    import numpy as np
    import scipy.sparse as sp

    import geoml
    from geoml import measures as gm
    from geoml import ot, spd
    from geoml.demo import swiss_roll
    from geoml.diffusion import alpha_decay_graph, classical_mds, heat_entropy_time, smacof
    from geoml.diffusion import von_neumann_entropy as phate_vne

    rng = np.random.default_rng(0)
    X2000 = swiss_roll(2000, seed=1)[0].astype(np.float64)
    X1000 = swiss_roll(1000, seed=2)[0].astype(np.float64)
    X600 = swiss_roll(600, seed=3)[0].astype(np.float64)
    X2000f = swiss_roll(2000, seed=1)[0]  # float32
    Hd = rng.normal(size=(1500, 40))  # high-dim blobs
    W1000 = sp.csr_matrix(geoml.knn_graph(X1000, 10, mode="connectivity"), dtype=np.float64)
    W2000 = sp.csr_matrix(geoml.knn_graph(X2000, 10, mode="connectivity"), dtype=np.float64)
    A_sym = sp.random(2000, 2000, density=0.005, random_state=2, format="csr")
    A_sym = (A_sym + A_sym.T).tocsr()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):  # inputs: the same bits in every config
        Ad = rng.normal(size=(1500, 60)) @ rng.normal(size=(60, 800)) + 0.01 * rng.normal(
            size=(1500, 800)
        )
    Ad32 = Ad.astype(np.float32)
    Asp = sp.random(3000, 1500, density=0.01, random_state=3, format="csr")
    T3 = rng.normal(size=(60, 50, 40))
    D600 = np.sqrt(((X600[:, None] - X600[None]) ** 2).sum(-1))
    # OT problems
    n_ot = 500
    xa, xb = rng.normal(size=(n_ot, 3)), rng.normal(size=(n_ot, 3)) + 0.5
    C = ((xa[:, None] - xb[None]) ** 2).sum(-1)
    a = np.full(n_ot, 1.0 / n_ot)
    b = rng.random(n_ot)
    b /= b.sum()
    Cb = rng.random((20, 60, 60))
    ab = np.full((20, 60), 1 / 60)
    Cs = rng.random((20, 80, 80))
    Csym = ((xa[:, None] - xa[None]) ** 2).sum(-1)
    # SPD
    Z = rng.normal(size=(300, 12, 40))
    S = np.einsum("nij,nkj->nik", Z, Z) / 40 + 1e-3 * np.eye(12)
    Cref = S.mean(0)
    yS = (np.arange(300) % 3).astype(int)
    Xts = rng.normal(size=(200, 8, 120))  # time series for covariances
    # graphs for curvature
    Wc = sp.csr_matrix(geoml.knn_graph(X600, 6, mode="connectivity"), dtype=np.float64)
    Wc = Wc.maximum(Wc.T).tocsr()
    Wcw = Wc.copy()
    Wcw.data = 1.0 + rng.random(Wcw.data.size)
    Wcw = Wcw.maximum(Wcw.T).tocsr()

    def est(make, X, *extra):
        def f(nj):
            e = make(nj).fit(X)
            out = {"fit": e}
            for name, arg in extra:
                out[name] = getattr(e, name)(arg)
            return out

        return f

    warnings.simplefilter("ignore")
    c = {}
    # ------------------------------------------------------------------ neighbors
    c["knn exact f64"] = lambda nj: geoml.knn(X2000, 10, n_jobs=nj)
    c["knn exact f32"] = lambda nj: geoml.knn(X2000f, 10, n_jobs=nj)
    c["knn Y"] = lambda nj: geoml.knn(X2000, 5, Y=X1000, n_jobs=nj)
    c["knn cosine hd"] = lambda nj: geoml.knn(Hd, 8, metric="cosine", n_jobs=nj)
    c["knn nndescent"] = lambda nj: geoml.knn(Hd, 8, method="nndescent", random_state=0, n_jobs=nj)
    c["knn_graph"] = lambda nj: geoml.knn_graph(X2000, 10, n_jobs=nj)
    c["knn_graph nndescent"] = lambda nj: geoml.knn_graph(
        Hd, 8, method="nndescent", random_state=0, n_jobs=nj
    )
    c["KNNGraph"] = est(lambda nj: geoml.KNNGraph(8, random_state=0, n_jobs=nj), X2000)
    c["KNNGraph nndescent"] = est(
        lambda nj: geoml.KNNGraph(8, method="nndescent", random_state=0, n_jobs=nj), Hd
    )
    c["KNNTransformer"] = est(
        lambda nj: geoml.KNNTransformer(8, random_state=0, n_jobs=nj), X2000, ("transform", X1000)
    )
    # ------------------------------------------------------------------ spectral
    c["eigsh LA"] = lambda nj: geoml.eigsh(A_sym, 6, which="LA", random_state=3, n_jobs=nj)
    c["eigsh SA"] = lambda nj: geoml.eigsh(A_sym, 6, which="SA", random_state=3, n_jobs=nj)
    c["eigsh LM dense"] = lambda nj: geoml.eigsh(
        (Ad[:800, :800] + Ad[:800, :800].T), 5, random_state=3, n_jobs=nj
    )
    for kind in ("symmetric", "random_walk", "combinatorial"):
        c[f"laplacian_eigsh {kind}"] = lambda nj, kind=kind: geoml.laplacian_eigsh(
            W2000, 6, kind=kind, random_state=3, n_jobs=nj
        )
    c["laplacian_eigsh lobpcg-amg"] = lambda nj: geoml.laplacian_eigsh(
        W2000, 6, method="lobpcg-amg", random_state=3, n_jobs=nj
    )
    c["laplacian"] = lambda nj: geoml.laplacian(W2000, "symmetric")
    c["spectral_embedding"] = lambda nj: geoml.spectral_embedding(
        W2000, 4, random_state=3, n_jobs=nj
    )
    c["trace_function"] = lambda nj: geoml.trace_function(A_sym, "exp", random_state=3, n_jobs=nj)
    c["trace_function dense"] = lambda nj: geoml.trace_function(
        D600 / D600.max(), "exp", random_state=3, n_jobs=nj
    )
    c["spectral_density"] = lambda nj: geoml.spectral_density(A_sym, random_state=3, n_jobs=nj)
    c["spectral_density dense"] = lambda nj: geoml.spectral_density(
        D600 / D600.sum(1).max(), random_state=3, n_jobs=nj
    )
    c["LaplacianEigenmap"] = est(
        lambda nj: geoml.LaplacianEigenmap(3, n_neighbors=10, random_state=4, n_jobs=nj), X2000
    )
    c["DiffusionMap"] = est(
        lambda nj: geoml.DiffusionMap(3, n_neighbors=10, random_state=4, n_jobs=nj), X2000
    )
    c["SpectralClustering"] = est(
        lambda nj: geoml.SpectralClustering(4, n_neighbors=10, random_state=4, n_jobs=nj), X2000
    )
    # ------------------------------------------------------------------ diffusion
    c["heat_kernel"] = lambda nj: geoml.heat_kernel(W1000, X1000, [0.5, 3.0], n_jobs=nj)
    c["heat_geodesic_distances"] = lambda nj: geoml.heat_geodesic_distances(W1000, n_jobs=nj)
    c["heat_geodesic_distances lm"] = lambda nj: geoml.heat_geodesic_distances(
        W1000, landmarks=np.arange(0, 1000, 10), n_jobs=nj
    )
    c["heat_entropy_time"] = lambda nj: heat_entropy_time(W1000, n_jobs=nj)
    c["alpha_decay_graph"] = lambda nj: alpha_decay_graph(X2000, 10, random_state=0, n_jobs=nj)
    c["classical_mds"] = lambda nj: classical_mds(D600, 2, random_state=0, n_jobs=nj)
    Y0 = np.random.default_rng(5).normal(size=(600, 2))
    c["smacof"] = lambda nj: smacof(D600, Y0, max_iter=50, n_jobs=nj)
    P300 = rng.random((300, 300)) + np.eye(300)
    P300 /= P300.sum(1, keepdims=True)
    c["phate von_neumann_entropy"] = lambda nj: phate_vne(P300)
    c["MDS"] = est(lambda nj: geoml.MDS(2, random_state=4, n_jobs=nj, max_iter=50), X600)
    c["MDS landmarks"] = est(
        lambda nj: geoml.MDS(2, random_state=4, n_jobs=nj, landmarks=100, max_iter=50), X2000
    )
    c["MDS classical"] = est(lambda nj: geoml.MDS(2, metric=False, random_state=4, n_jobs=nj), X600)
    c["HeatGeo"] = est(
        lambda nj: geoml.HeatGeo(2, 8, random_state=4, n_jobs=nj), X1000, ("transform", X600)
    )
    c["HeatGeo landmarks"] = est(
        lambda nj: geoml.HeatGeo(2, 8, random_state=4, n_jobs=nj, n_landmarks=150),
        X2000,
        ("transform", X600),
    )
    c["PHATE"] = est(
        lambda nj: geoml.PHATE(2, knn=5, random_state=4, n_jobs=nj, n_landmark=None),
        X1000,
        ("transform", X600),
    )
    c["PHATE landmarks"] = est(
        lambda nj: geoml.PHATE(2, knn=5, n_landmark=300, random_state=4, n_jobs=nj),
        X2000,
        ("transform", X600),
    )
    c["PHATE landmarks f32"] = est(
        lambda nj: geoml.PHATE(2, knn=5, n_landmark=300, random_state=4, n_jobs=nj),
        X2000f,
    )
    # ------------------------------------------------------------------ lowrank
    c["randomized_svd dense"] = lambda nj: geoml.randomized_svd(Ad, 10, random_state=3, n_jobs=nj)
    c["randomized_svd dense f32"] = lambda nj: geoml.randomized_svd(
        Ad32, 10, random_state=3, n_jobs=nj
    )
    c["randomized_svd sparse"] = lambda nj: geoml.randomized_svd(Asp, 10, random_state=3, n_jobs=nj)
    Asp2 = sp.random(3000, 1500, density=0.03, random_state=3, format="csr")
    c["randomized_svd sparse nnz*l>2^20"] = lambda nj: geoml.randomized_svd(
        Asp2, 10, random_state=3, n_jobs=nj
    )
    c["knn exact f32 roll"] = lambda nj: geoml.knn(X2000f, 10, n_jobs=nj)
    c["MDS landmarks f32 roll"] = est(
        lambda nj: geoml.MDS(2, random_state=4, n_jobs=nj, landmarks=100, max_iter=50), X2000f
    )
    c["tucker hooi"] = lambda nj: geoml.tucker(T3, (5, 5, 5), random_state=3, n_jobs=nj)
    c["tucker hosvd"] = lambda nj: geoml.tucker(
        T3, (5, 5, 5), method="hosvd", random_state=3, n_jobs=nj
    )
    c["tucker randomized"] = lambda nj: geoml.tucker(
        T3, (5, 5, 5), method="randomized", random_state=3, n_jobs=nj
    )
    c["Tucker"] = est(lambda nj: geoml.Tucker((5, 5), random_state=3, n_jobs=nj), T3)
    # ------------------------------------------------------------------ measures
    c["DSE exact"] = lambda nj: geoml.diffusion_spectral_entropy(
        X1000, method="exact", random_state=0, n_jobs=nj
    )
    c["DSE slq"] = lambda nj: geoml.diffusion_spectral_entropy(
        X2000, method="slq", random_state=0, n_jobs=nj
    )
    c["DSE slq knn"] = lambda nj: geoml.diffusion_spectral_entropy(
        X2000, method="slq", kernel="knn", random_state=0, n_jobs=nj
    )
    c["DSMI"] = lambda nj: geoml.diffusion_spectral_mutual_information(
        X1000, np.arange(1000) % 3, discrete=True, random_state=0, n_jobs=nj
    )
    c["DSMI continuous"] = lambda nj: geoml.diffusion_spectral_mutual_information(
        X1000, X1000[:, 0], discrete=False, random_state=0, n_jobs=nj
    )
    c["von_neumann_entropy exact"] = lambda nj: geoml.von_neumann_entropy(
        W1000, graph=True, method="exact", random_state=0, n_jobs=nj
    )
    c["von_neumann_entropy slq"] = lambda nj: geoml.von_neumann_entropy(
        W2000, graph=True, method="slq", random_state=0, n_jobs=nj
    )
    c["effective_rank"] = lambda nj: geoml.effective_rank(Hd)
    for meth in ("mle", "twonn", "gride", "lpca"):
        c[f"intrinsic_dimension {meth}"] = lambda nj, meth=meth: geoml.intrinsic_dimension(
            X2000, method=meth, random_state=0, n_jobs=nj
        )
    c["intrinsic_dimension mle approx"] = lambda nj: geoml.intrinsic_dimension(
        Hd, method="mle", target_recall=0.9, random_state=0, n_jobs=nj
    )
    c["magnitude"] = lambda nj: geoml.magnitude(X1000, t=[0.5, 2.0], n_jobs=nj)
    c["magnitude cg"] = lambda nj: geoml.magnitude(X2000, t=[1.0], method="cg", n_jobs=nj)
    c["weighting_vector"] = lambda nj: gm.weighting_vector(X1000, t=1.0, n_jobs=nj)
    c["magnitude_dimension"] = lambda nj: gm.magnitude_dimension(
        X1000, [0.5, 1.0, 2.0, 4.0], n_jobs=nj
    )
    # ------------------------------------------------------------------ OT
    c["emd"] = lambda nj: ot.emd(a, b, C)
    c["emd_batched"] = lambda nj: ot.emd_batched(ab, ab, Cb, n_jobs=nj)
    c["sinkhorn"] = lambda nj: ot.sinkhorn(a, b, C, eps=0.05, n_jobs=nj)
    c["sinkhorn_newton"] = lambda nj: ot.sinkhorn_newton(a, b, C, eps=0.05, n_jobs=nj)
    c["sinkhorn_unbalanced"] = lambda nj: ot.sinkhorn_unbalanced(
        a, b, C, eps=0.05, rho=1.0, n_jobs=nj
    )
    c["sinkhorn_points"] = lambda nj: ot.sinkhorn_points(xa, xb, eps=0.05, n_jobs=nj)
    c["sinkhorn_batched"] = lambda nj: ot.sinkhorn_batched(ab, ab, Cb, eps=0.05, n_jobs=nj)
    c["sinkhorn_symmetric"] = lambda nj: ot.sinkhorn_symmetric(Csym, a, eps=0.5, n_jobs=nj)
    c["linear_assignment"] = lambda nj: ot.linear_assignment(C)
    c["linear_assignment_batched"] = lambda nj: ot.linear_assignment_batched(Cs, n_jobs=nj)
    # ------------------------------------------------------------------ curvature
    for meth in ("exact", "sinkhorn", "atd", "lower_bound"):
        c[f"ollivier_ricci {meth}"] = lambda nj, meth=meth: geoml.ollivier_ricci(
            Wc if meth == "lower_bound" else Wcw, method=meth, n_jobs=nj
        )
    c["OllivierRicci"] = est(lambda nj: geoml.OllivierRicci(n_jobs=nj), Wcw)
    c["forman_ricci"] = lambda nj: geoml.forman_ricci(Wcw, n_jobs=nj)
    c["FormanRicci"] = est(lambda nj: geoml.FormanRicci(n_jobs=nj), Wcw)
    c["RicciFlow"] = est(lambda nj: geoml.RicciFlow(n_iter=3, n_jobs=nj), Wcw)
    c["ricci_communities"] = lambda nj: geoml.ricci_communities(Wc, n_iter=3, n_jobs=nj)
    c["RicciCommunities"] = est(lambda nj: geoml.RicciCommunities(n_iter=3, n_jobs=nj), Wc)
    # ------------------------------------------------------------------ spd
    for fn in ("eigh", "sqrtm", "invsqrtm", "logm", "expm"):
        c[f"spd.{fn}"] = lambda nj, fn=fn: getattr(spd, fn)(
            S if fn != "expm" else S / 10, n_jobs=nj
        )
    c["spd.powm"] = lambda nj: spd.powm(S, 0.3, n_jobs=nj)
    c["spd.covariances"] = lambda nj: spd.covariances(Xts)
    c["spd.augmented_covariances"] = lambda nj: spd.augmented_covariances(Xts, order=2, lag=1)
    for metric in ("riemann", "logeuclid", "euclid", "wasserstein"):
        c[f"spd.distance {metric}"] = lambda nj, metric=metric: spd.distance(
            S, Cref, metric=metric, n_jobs=nj
        )
        c[f"spd.pairwise_distance {metric}"] = lambda nj, metric=metric: spd.pairwise_distance(
            S[:120], metric=metric, n_jobs=nj
        )
    for metric in ("riemann", "logeuclid", "euclid", "wasserstein"):
        c[f"spd.mean {metric}"] = lambda nj, metric=metric: spd.mean(S, metric=metric, n_jobs=nj)
    c["spd.mean_riemann"] = lambda nj: spd.mean_riemann(S, n_jobs=nj)
    c["spd.mean_logeuclid"] = lambda nj: spd.mean_logeuclid(S, n_jobs=nj)
    c["spd.mean_wasserstein"] = lambda nj: spd.mean_wasserstein(S, n_jobs=nj)
    c["spd.log_map"] = lambda nj: spd.log_map(S, Cref, n_jobs=nj)
    c["spd.exp_map"] = lambda nj: spd.exp_map(spd.log_map(S, Cref, n_jobs=1) / 3, Cref, n_jobs=nj)
    c["spd.transport"] = lambda nj: spd.transport(
        spd.log_map(S, Cref, n_jobs=1), Cref, S[0], n_jobs=nj
    )
    c["spd.tangent_space"] = lambda nj: spd.tangent_space(S, Cref, n_jobs=nj)
    c["spd.untangent_space"] = lambda nj: spd.untangent_space(
        spd.tangent_space(S, Cref, n_jobs=1), Cref, n_jobs=nj
    )
    c["spd.upper/unupper"] = lambda nj: spd.unupper(spd.upper(S))
    c["MDM"] = lambda nj: {
        "fit": (m := spd.MDM(n_jobs=nj).fit(S, yS)),
        "pred": m.predict(S),
        "tr": m.transform(S),
    }
    c["TangentSpace"] = lambda nj: {
        "fit": (m := spd.TangentSpace(n_jobs=nj).fit(S)),
        "tr": m.transform(S),
        "inv": m.inverse_transform(m.transform(S)),
    }
    # ------------------------------------------------------------------ dask
    try:
        import dask

        import geoml.dask as gd

        dask.config.set(scheduler="synchronous")
        import dask.array as da

        dX = da.from_array(X2000, chunks=(500, 3))
        dab = da.from_array(ab, chunks=(5, 60))
        dCb = da.from_array(Cb, chunks=(5, 60, 60))
        c["dask.knn"] = lambda nj: gd.knn(dX, 8, n_jobs=nj)
        c["dask.knn nndescent"] = lambda nj: gd.knn(
            da.from_array(Hd, chunks=(500, 40)), 8, method="nndescent", random_state=0, n_jobs=nj
        )
        c["dask.knn_graph"] = lambda nj: gd.knn_graph(dX, 8, n_jobs=nj)
        c["dask.emd_batched"] = lambda nj: gd.emd_batched(dab, dab, dCb, n_jobs=nj)
        c["dask.sinkhorn_batched"] = lambda nj: gd.sinkhorn_batched(
            dab, dab, dCb, eps=0.05, n_jobs=nj
        )
        c["dask.ollivier_ricci"] = lambda nj: gd.ollivier_ricci(Wcw, n_jobs=nj)
        c["dask.ricci_flow"] = lambda nj: gd.ricci_flow(Wcw, n_iter=2, n_jobs=nj)
    except ImportError:
        pass
    return c


def _compute(res):
    import dask

    def conv(v):
        if hasattr(v, "compute") and hasattr(v, "dask"):
            return v.compute()
        return v

    if isinstance(res, tuple) and hasattr(res, "_fields"):
        try:
            return type(res)(*[conv(v) for v in res])
        except Exception:
            return res
    if isinstance(res, dict):
        return {k: conv(v) for k, v in res.items()}
    if isinstance(res, (list, tuple)):
        return type(res)(conv(v) for v in res)
    del dask
    return conv(res)


def worker(cfg, out_path, only):
    _, nj = CONFIGS[cfg]
    cases = build_cases()
    results = {}
    for name, f in cases.items():
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        try:
            res = f(nj)
            with contextlib.suppress(ImportError):
                res = _compute(res)
            results[name] = ("ok", flatten(res), time.perf_counter() - t0)
        except Exception as e:
            results[name] = ("err", f"{type(e).__name__}: {e}"[:300], time.perf_counter() - t0)
        print(f"{cfg} {name}: {results[name][0]} {results[name][2]:.2f}s", file=sys.stderr)
    with open(out_path, "wb") as fh:
        pickle.dump(results, fh)


def compare(r1, r2):
    import numpy as np

    if r1[0] != "ok" or r2[0] != "ok":
        return "ERR " + (r1[1] if r1[0] != "ok" else r2[1])[:80]
    a, b = r1[1], r2[1]
    if a.keys() != b.keys():
        return f"keys differ {sorted(set(a) ^ set(b))[:3]}"
    worst, where = 0.0, []
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, str) or isinstance(y, str):
            if x != y:
                where.append(k)
                worst = max(worst, float("nan") if False else 1.0)
            continue
        if x.shape != y.shape or x.dtype != y.dtype:
            where.append(k + "(shape)")
            worst = np.inf
            continue
        if np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
            continue
        where.append(k)
        if x.dtype.kind in "fc":
            d = np.abs(x.astype(np.float64) - y.astype(np.float64))
            d = d[np.isfinite(d)]
            scale = max(np.abs(x).max() if x.size else 0, 1e-300)
            worst = max(worst, float(d.max() / scale) if d.size else np.inf)
        else:
            worst = np.inf  # integer arrays (labels, indices) differ
    if not where:
        return "equal"
    return f"rel {worst:.1e} in {','.join(where[:3])}"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], set(sys.argv[4:]))
        return
    only = sys.argv[1:]
    here = tempfile.mkdtemp(prefix="geoml_threads_")  # the pickles and table.md
    print(f"outputs in {here}", file=sys.stderr)
    res = {}
    for cfg, (env, _) in CONFIGS.items():
        e = dict(os.environ, GEOML_LOAD_AWARE="0", **env)
        out = os.path.join(here, f"out_{cfg}.pkl")
        t0 = time.time()
        subprocess.run([sys.executable, __file__, "--worker", cfg, out, *only], env=e, check=True)
        print(f"config {cfg}: {time.time() - t0:.0f} s", file=sys.stderr)
        with open(out, "rb") as fh:
            res[cfg] = pickle.load(fh)
    names = list(res["nj1"])
    w = max(len(n) for n in names)
    lines = [
        f"| {'function':<{w}} | n_jobs 1 vs 2 | OMP 1 vs 2 | BLAS 1 vs 2 |",
        "|" + "-" * (w + 2) + "|---|---|---|",
    ]
    for n in names:
        cols = [
            compare(res[p][n], res[q][n])
            for p, q in (("nj1", "nj2"), ("omp1", "omp2"), ("blas1", "blas2"))
        ]
        lines.append(f"| {n:<{w}} | " + " | ".join(cols) + " |")
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(here, "table.md"), "w") as fh:
        fh.write(table + "\n")


if __name__ == "__main__":
    main()
