"""
Ollivier-Ricci curvature and Ricci-flow communities
===================================================

Edges inside a community have many common neighbours (positive Ollivier-Ricci curvature);
edges between communities are bridges (negative curvature). A Ricci flow stretches the
negatively curved edges, and cutting the stretched edges leaves the communities
(Ni et al. 2019). We colour the edges of Zachary's karate club and of a planted partition by
their curvature (:class:`geoml.OllivierRicci`) and find communities with
:class:`geoml.RicciCommunities`.
"""

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
from matplotlib.collections import LineCollection

import geoml


def draw(ax, G, pos, edges, values, labels, title, vmax):
    """Edges coloured by ``values`` (diverging colormap), nodes by ``labels``."""
    nodes = list(G.nodes())
    xy = np.array([pos[v] for v in nodes])
    segs = xy[edges]
    lc = LineCollection(segs, cmap="coolwarm_r", linewidths=1.4)
    lc.set_array(values)
    lc.set_clim(-vmax, vmax)
    ax.add_collection(lc)
    ax.scatter(
        xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=28, zorder=3, edgecolors="k", linewidths=0.4
    )
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
    return lc


# %%
# The karate club
# ---------------
karate = nx.karate_club_graph()
orc = geoml.OllivierRicci(alpha=0.5).fit(karate)
rc = geoml.RicciCommunities(n_iter=20).fit(karate)
club = np.array([karate.nodes[v]["club"] == "Officer" for v in karate.nodes()], dtype=int)
print(
    f"karate: {len(orc.curvature_)} edges, curvature {orc.curvature_.min():.2f}.."
    f"{orc.curvature_.max():.2f}; {len(set(rc.labels_.tolist()))} Ricci-flow communities, "
    f"modularity {rc.modularity_:.3f}"
)

# %%
# A planted partition
# -------------------
# Four groups of 40 nodes, dense inside (p = 0.3) and sparse between (p = 0.01).
planted = nx.planted_partition_graph(4, 40, 0.3, 0.01, seed=1)
truth = np.repeat(np.arange(4), 40)
orc_p = geoml.OllivierRicci(alpha=0.5).fit(planted)
rc_p = geoml.RicciCommunities(n_iter=20).fit(planted)
inside = truth[orc_p.edges_[:, 0]] == truth[orc_p.edges_[:, 1]]
# the flow's edges come in the same order as the curvature's (sorted node pairs)
assert np.array_equal(rc.flow_.edges_, orc.edges_)
assert np.array_equal(rc_p.flow_.edges_, orc_p.edges_)
print(
    f"planted partition: mean curvature inside groups {orc_p.curvature_[inside].mean():.3f}, "
    f"between groups {orc_p.curvature_[~inside].mean():.3f}"
)


def ari(a, b):
    """Adjusted Rand index (scikit-learn's)."""
    from sklearn.metrics import adjusted_rand_score

    return adjusted_rand_score(a, b)


print(f"Ricci-flow communities vs planted groups: ARI {ari(truth, rc_p.labels_):.3f}")
print(f"Ricci-flow communities vs karate clubs: ARI {ari(club, rc.labels_):.3f}")

# %%
# Edges coloured by curvature (blue: positive, red: negative), nodes by community.
fig, axes = plt.subplots(2, 2, figsize=(10, 9))
pos_k = nx.spring_layout(karate, seed=3)
pos_p = nx.spring_layout(planted, seed=3)
vmax = 1.0
draw(
    axes[0, 0],
    karate,
    pos_k,
    orc.edges_,
    orc.curvature_,
    club,
    "karate club: curvature, nodes by club",
    vmax,
)
draw(
    axes[0, 1],
    karate,
    pos_k,
    orc.edges_,
    rc.flow_.curvature_,
    rc.labels_,
    f"after Ricci flow: {len(set(rc.labels_.tolist()))} communities",
    vmax,
)
draw(
    axes[1, 0],
    planted,
    pos_p,
    orc_p.edges_,
    orc_p.curvature_,
    truth,
    "planted partition: curvature, nodes by group",
    vmax,
)
lc = draw(
    axes[1, 1],
    planted,
    pos_p,
    orc_p.edges_,
    rc_p.flow_.curvature_,
    rc_p.labels_,
    f"after Ricci flow: ARI {ari(truth, rc_p.labels_):.2f}",
    vmax,
)
fig.colorbar(lc, ax=axes, shrink=0.6, label="Ollivier-Ricci curvature")
plt.show()

# %%
# The flow's edge lengths: bridges grow, edges inside groups shrink.
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.hist(rc_p.flow_.weights_[inside], bins=40, alpha=0.7, label="inside groups")
ax.hist(rc_p.flow_.weights_[~inside], bins=40, alpha=0.7, label="between groups")
ax.axvline(rc_p.cutoff_, color="k", ls="--", label=f"cut-off {rc_p.cutoff_:.2f}")
ax.set_xlabel("edge length after the Ricci flow")
ax.set_ylabel("edges")
ax.legend()
fig.tight_layout()
plt.show()
