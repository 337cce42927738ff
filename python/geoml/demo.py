"""``geoml demo``: geoml's kernels on a generated noisy swiss roll, with timings."""

from __future__ import annotations

import time
import warnings

import numpy as np
import scipy.sparse.csgraph as csgraph


def swiss_roll(n: int, noise: float = 0.05, seed: int = 0, dtype=np.float32):
    """Points of shape (n, 3) on a noisy swiss roll, and their roll parameter t of shape (n,)."""
    rng = np.random.default_rng(seed)
    t = 1.5 * np.pi * (1 + 2 * rng.random(n))
    h = 21 * rng.random(n)
    X = np.column_stack([t * np.cos(t), h, t * np.sin(t)]) + noise * rng.normal(size=(n, 3))
    return X.astype(dtype), t


def run_demo(n: int = 20000, k: int = 10, seed: int = 0, plot: str | None = None) -> dict:
    """Print what each geoml stage does on a swiss roll of ``n`` points; return the numbers.

    ``plot``: path of a PNG figure (written only when matplotlib is installed; otherwise a
    line says so and the demo runs on): the roll, its Laplacian eigenmap, the Ollivier-Ricci
    curvature of its kNN graph and the Ricci-flow communities of the planted partition.
    """
    import geoml

    print(
        f"geoml {geoml.__version__} demo: noisy swiss roll, n={n}, k={k}, "
        f"{geoml._core.max_threads()} threads, SIMD {geoml._core.simd_isa()}"
    )
    X, roll_t = swiss_roll(n, seed=seed)
    stats = {}

    t0 = time.perf_counter()
    G = geoml.knn_graph(X, k)
    stats["knn_graph_s"] = time.perf_counter() - t0
    deg = np.diff(G.indptr)
    ncomp, _ = csgraph.connected_components(G, directed=False)
    stats.update(
        nnz=int(G.nnz),
        components=int(ncomp),
        degree_min=int(deg.min()),
        degree_mean=float(deg.mean()),
        degree_max=int(deg.max()),
        edge_length_median=float(np.median(G.data)),
    )
    print(
        f"[knn_graph] {stats['knn_graph_s']:.3f} s: {n} nodes, {G.nnz} stored entries "
        f"(union-symmetrised), degree min/mean/max {deg.min()}/{deg.mean():.1f}/{deg.max()}, "
        f"{ncomp} connected component(s), median edge length {np.median(G.data):.3f}"
    )

    t0 = time.perf_counter()
    emb = geoml.LaplacianEigenmap(n_components=2, n_neighbors=k, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # components are reported above
        Y = emb.fit_transform(X)
    stats["eigenmap_s"] = time.perf_counter() - t0
    corr = max(abs(float(np.corrcoef(Y[:, j], roll_t)[0, 1])) for j in range(2))
    stats.update(eigenmap_eigenvalues=emb.eigenvalues_.tolist(), eigenmap_roll_corr=corr)
    print(
        f"[LaplacianEigenmap] {stats['eigenmap_s']:.3f} s: 2-D embedding of the {k}-NN graph, "
        f"L_sym eigenvalues {emb.eigenvalues_[0]:.3g}, {emb.eigenvalues_[1]:.3g}; "
        f"|corr| of a coordinate with the roll parameter {corr:.3f}"
    )
    A = geoml.knn_graph(X, k, mode="connectivity")
    t0 = time.perf_counter()
    orc = geoml.OllivierRicci(alpha=0.5).fit(A)
    stats["ollivier_ricci_s"] = time.perf_counter() - t0
    kappa = orc.curvature_
    frc = geoml.FormanRicci().fit(A)
    stats.update(
        orc_mean=float(kappa.mean()),
        orc_min=float(kappa.min()),
        orc_max=float(kappa.max()),
        forman_mean=float(frc.curvature_.mean()),
    )
    print(
        f"[OllivierRicci] {stats['ollivier_ricci_s']:.3f} s: {len(kappa)} edges "
        f"({len(kappa) / stats['ollivier_ricci_s']:.0f} edges/s), curvature mean "
        f"{kappa.mean():.3f}, min {kappa.min():.3f}, max {kappa.max():.3f}; Forman-Ricci "
        f"(augmented) mean {frc.curvature_.mean():.2f}"
    )

    # Ricci-flow communities on a planted partition (stochastic block model) graph
    rng = np.random.default_rng(seed)
    blocks = np.repeat(np.arange(3), 200)
    p = np.where(blocks[:, None] == blocks[None, :], 0.08, 0.004)
    upper = np.triu(rng.random((600, 600)) < p, 1)
    edges = np.argwhere(upper)
    t0 = time.perf_counter()
    rc = geoml.RicciCommunities(n_iter=10).fit(edges)
    stats["ricci_communities_s"] = time.perf_counter() - t0
    agree = _adjusted_rand(blocks, rc.labels_)
    stats.update(
        communities=len(set(rc.labels_.tolist())),
        communities_modularity=rc.modularity_,
        communities_ari=agree,
    )
    print(
        f"[RicciCommunities] {stats['ricci_communities_s']:.3f} s: 10 Ricci-flow iterations "
        f"on a 3-block planted partition ({len(edges)} edges): {stats['communities']} "
        f"communities, modularity {rc.modularity_:.3f}, adjusted Rand index {agree:.3f}"
    )
    if plot and _plot(plot, X, roll_t, Y, A, orc, edges, blocks, rc.labels_, stats, n, k):
        stats["plot"] = str(plot)
    return stats


def _plot(path, X, roll_t, Y, A, orc, edges, blocks, labels, stats, n, k) -> bool:
    """Four panels in one PNG; False (and a printed line) when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure  # no pyplot: leaves the user's backend alone
    except ImportError:
        print(f"[plot] matplotlib is not installed: no figure written to {path}")
        return False
    rng = np.random.default_rng(0)
    show = rng.permutation(len(X))[: min(len(X), 6000)]  # enough points to see the shapes
    fig = Figure(figsize=(13, 3.4))
    ax = fig.add_subplot(1, 4, 1, projection="3d")
    ax.scatter(*X[show].T, c=roll_t[show], s=1, cmap="Spectral")
    ax.view_init(10, -70)
    ax.set_box_aspect(None, zoom=1.3)
    ax.set_axis_off()
    ax.set_title(f"noisy swiss roll, n={n}", fontsize=10)
    ax = fig.add_subplot(1, 4, 2)
    ax.scatter(Y[show, 0], Y[show, 1], c=roll_t[show], s=1, cmap="Spectral")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"Laplacian eigenmap ({k}-NN), {stats['eigenmap_s']:.2f} s", fontsize=10)
    ax = fig.add_subplot(1, 4, 3)
    ax.hist(orc.curvature_, bins=60, color="tab:blue")
    ax.set_xlabel("Ollivier-Ricci curvature of the kNN edges")
    ax.set_ylabel("edges")
    ax.set_title(
        f"Ollivier-Ricci: {len(orc.curvature_)} edges, {stats['ollivier_ricci_s']:.2f} s",
        fontsize=10,
    )
    ax = fig.add_subplot(1, 4, 4)
    order = np.lexsort((blocks, labels))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    same = labels[edges[:, 0]] == labels[edges[:, 1]]
    for sel, color in ((same, "tab:green"), (~same, "tab:red")):
        e = edges[sel]
        ax.scatter(rank[e[:, 0]], rank[e[:, 1]], s=0.5, c=color)
        ax.scatter(rank[e[:, 1]], rank[e[:, 0]], s=0.5, c=color)
    ax.set_xlim(0, len(labels))
    ax.set_ylim(len(labels), 0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("planted partition: adjacency by community", fontsize=9)
    ax.set_title(
        f"Ricci-flow communities: {stats['communities']}, ARI {stats['communities_ari']:.2f}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"[plot] figure written to {path}")
    return True


def _adjusted_rand(a, b) -> float:
    """Adjusted Rand index of two labelings (Hubert & Arabie 1985)."""
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    table = np.zeros((ia.max() + 1, ib.max() + 1))
    np.add.at(table, (ia, ib), 1)

    def pairs(x):
        return float((x * (x - 1) / 2).sum())

    total = pairs(np.array([len(a)]))
    sa, sb = pairs(table.sum(1)), pairs(table.sum(0))
    expected = sa * sb / total if total else 0.0
    top = (sa + sb) / 2 - expected
    return (pairs(table) - expected) / top if top else 1.0
