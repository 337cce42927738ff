"""
HeatGeo and PHATE embeddings of a swiss roll and a branching tree
=================================================================

HeatGeo (Huguet et al., NeurIPS 2023) estimates geodesic distances from the heat kernel of
a kNN graph (Varadhan's formula ``d^2 ~ -4 t log h_t``) and embeds them with metric MDS.
:class:`geoml.HeatGeo` runs the whole chain (alpha-decay graph, Chebyshev heat kernel, SMACOF);
:func:`geoml.heat_geodesic_distances` gives the distances alone. We embed a swiss roll and a
generated tree (random walks branching from a trunk, like PHATE's ``gen_dla``) and compare
the heat-geodesic distances with the true geodesic distances along the roll, then set HeatGeo
next to :class:`geoml.PHATE` (potential distances of the diffusion operator at the von Neumann
entropy knee) on the same data.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import spearmanr
from sklearn.datasets import make_swiss_roll

import geoml

X_roll, t_roll = make_swiss_roll(n_samples=800, noise=0.2, random_state=0)


def tree(n_branches=6, n_steps=120, dim=10, sigma=4.0, seed=0):
    """Branches of Gaussian random walks, each starting at a random point of an earlier one."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, 1, size=(n_branches, dim))
    branches, labels = [], []
    start = np.zeros(dim)
    for b in range(n_branches):
        walk = start + np.cumsum(steps[b] + 0.2 * rng.normal(size=(n_steps, dim)), axis=0)
        branches.append(walk)
        labels.append(np.full(n_steps, b))
        parent = branches[rng.integers(0, b + 1)]
        start = parent[rng.integers(n_steps // 3, n_steps)]
    X = np.vstack(branches)
    return X + rng.normal(0, sigma * 0.05, size=X.shape), np.concatenate(labels)


X_tree, branch = tree()

# %%
# Embeddings
# ----------
emb, fitted = {}, {}
for name, X in [("swiss roll", X_roll), ("tree", X_tree)]:
    t0 = time.perf_counter()
    est = geoml.HeatGeo(n_components=2, n_neighbors=10, t=10, random_state=0).fit(X)
    emb[name], fitted[name] = est.embedding_, est
    print(
        f"HeatGeo on the {name} ({X.shape[0]} points, {X.shape[1]}-D): "
        f"{time.perf_counter() - t0:.2f} s"
    )

# %%
# How well do heat-geodesic distances track the distance along the roll? The roll's
# intrinsic coordinates are (arc length of the spiral, height). The same distances come from
# the functions HeatGeo chains: the alpha-decay kNN graph, then the heat-geodesic distances.
W = geoml.diffusion.alpha_decay_graph(X_roll, n_neighbors=10)
D = geoml.heat_geodesic_distances(W, t=10)
print(
    f"max |HeatGeo.distances_ - heat_geodesic_distances| = "
    f"{np.abs(D - fitted['swiss roll'].distances_).max():.1e}"
)
arc = 0.5 * (t_roll * np.sqrt(1 + t_roll**2) + np.arcsinh(t_roll))
U = np.column_stack([arc, X_roll[:, 1]])
D_true = np.linalg.norm(U[:, None] - U[None], axis=-1)
D_euclid = np.linalg.norm(X_roll[:, None] - X_roll[None], axis=-1)
iu = np.triu_indices(len(X_roll), 1)
rho_heat = spearmanr(D[iu], D_true[iu]).statistic
rho_euclid = spearmanr(D_euclid[iu], D_true[iu]).statistic
print(
    f"Spearman with the true geodesic distance: heat-geodesic {rho_heat:.3f}, "
    f"Euclidean {rho_euclid:.3f}"
)

# %%
# The heat-geodesic distance saturates at ``sqrt(-4 t log 1e-16)`` (about 38 at ``t = 10``):
# beyond it the heat kernel is below rounding. A larger ``t`` reaches farther and blurs more.
fig = plt.figure(figsize=(13, 3.6))
ax = fig.add_subplot(1, 4, 1, projection="3d")
ax.scatter(*X_roll.T, c=t_roll, s=3, cmap="Spectral")
ax.view_init(10, -70)
ax.set_axis_off()
ax.set_title("swiss roll")
ax = fig.add_subplot(1, 4, 2)
ax.scatter(*emb["swiss roll"].T, c=t_roll, s=3, cmap="Spectral")
ax.set_title("HeatGeo of the roll")
ax = fig.add_subplot(1, 4, 3)
sub = np.random.default_rng(0).choice(len(iu[0]), 4000, replace=False)
ax.scatter(D_true[iu][sub], D[iu][sub], s=1, alpha=0.4)
ax.set_xlabel("true geodesic distance")
ax.set_ylabel("heat-geodesic distance")
ax.set_title(f"Spearman {rho_heat:.2f} (Euclidean: {rho_euclid:.2f})", fontsize=10)
ax = fig.add_subplot(1, 4, 4)
ax.scatter(*emb["tree"].T, c=branch, s=3, cmap="tab10")
ax.set_title("HeatGeo of a branching tree")
for a in fig.axes[1:2] + fig.axes[3:]:
    a.set_xticks([])
    a.set_yticks([])
fig.tight_layout()
plt.show()

# %%
# HeatGeo next to PHATE
# ---------------------
# PHATE (Moon et al., 2019) diffuses on the same kind of alpha-decay graph, picks its time
# scale at the knee of the von Neumann entropy, and embeds log-potential distances by metric
# MDS. The Spearman correlation of each embedding's distances with the roll's true geodesic
# distances says which keeps the roll's geometry better at these settings.
phate_emb = {}
for name, X in [("swiss roll", X_roll), ("tree", X_tree)]:
    t0 = time.perf_counter()
    ph = geoml.PHATE(n_components=2, knn=5, random_state=0).fit(X)
    phate_emb[name] = ph.embedding_
    print(f"PHATE on the {name}: t = {ph.t_}, {time.perf_counter() - t0:.2f} s")


def rho(E):
    """Spearman of the embedding's pairwise distances with the true geodesic distances."""
    d = np.linalg.norm(E[:, None] - E[None], axis=-1)
    return spearmanr(d[iu], D_true[iu]).statistic


fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
panels = [
    (
        emb["swiss roll"],
        t_roll,
        "Spectral",
        f"HeatGeo, roll (Spearman {rho(emb['swiss roll']):.2f})",
    ),
    (
        phate_emb["swiss roll"],
        t_roll,
        "Spectral",
        f"PHATE, roll (Spearman {rho(phate_emb['swiss roll']):.2f})",
    ),
    (emb["tree"], branch, "tab10", "HeatGeo, tree"),
    (phate_emb["tree"], branch, "tab10", "PHATE, tree"),
]
for ax, (E, c, cmap, title) in zip(axes, panels):
    ax.scatter(*E.T, c=c, s=3, cmap=cmap)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
plt.show()
