"""
Swiss roll: kNN graph, Laplacian eigenmap and diffusion map
===========================================================

A noisy swiss roll is a 2-D sheet rolled up in 3-D. A kNN graph over the points follows the
sheet, and the bottom eigenvectors of its Laplacian unroll it. We build the graph with
:func:`geoml.knn_graph`, embed it with :func:`geoml.spectral_embedding` (and its estimator
:class:`geoml.LaplacianEigenmap`) and with a diffusion map (:class:`geoml.DiffusionMap`),
and put scikit-learn's :class:`~sklearn.manifold.SpectralEmbedding` next to them.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_swiss_roll
from sklearn.manifold import SpectralEmbedding

import geoml

X, t = make_swiss_roll(n_samples=3000, noise=0.3, random_state=0)
X = X.astype(np.float32)

# %%
# The kNN graph
# -------------
# ``knn_graph`` returns a sparse matrix of distances, symmetrised by union; with
# ``mode="connectivity"`` the stored values are ones.
G = geoml.knn_graph(X, 10)
A = geoml.knn_graph(X, 10, mode="connectivity")
deg = np.diff(A.indptr)
print(f"{A.shape[0]} nodes, {A.nnz // 2} edges, degree {deg.min()}..{deg.max()}")

# %%
# Embeddings
# ----------
# ``spectral_embedding`` takes an affinity matrix (scikit-learn's
# ``spectral_embedding`` contract); ``LaplacianEigenmap`` builds the graph itself. The diffusion
# map uses a Gaussian kernel on the same kNN graph (``alpha=1``: density removed).
timings = {}
t0 = time.perf_counter()
Y_se = geoml.spectral_embedding(A, n_components=2, random_state=0)
timings["geoml.spectral_embedding"] = time.perf_counter() - t0

t0 = time.perf_counter()
Y_le = geoml.LaplacianEigenmap(n_components=2, n_neighbors=10, random_state=0).fit_transform(X)
timings["geoml.LaplacianEigenmap"] = time.perf_counter() - t0

t0 = time.perf_counter()
Y_dm = geoml.DiffusionMap(n_components=2, n_neighbors=10, alpha=1.0, t=1).fit_transform(X)
timings["geoml.DiffusionMap"] = time.perf_counter() - t0

t0 = time.perf_counter()
Y_sk = SpectralEmbedding(
    n_components=2, affinity="nearest_neighbors", n_neighbors=10, random_state=0
).fit_transform(X)
timings["sklearn SpectralEmbedding"] = time.perf_counter() - t0


def roll_corr(Y):
    """Largest |Spearman correlation| of an embedding coordinate with the roll parameter."""
    rank = np.argsort(np.argsort(t))
    return max(abs(np.corrcoef(np.argsort(np.argsort(Y[:, j])), rank)[0, 1]) for j in range(2))


for name, Y in zip(timings, (Y_se, Y_le, Y_dm, Y_sk)):
    print(f"{name:28s} {timings[name]:6.3f} s   |rank corr| with roll {roll_corr(Y):.3f}")

# %%
# The figure: the roll coloured by its parameter, then each embedding in the same colours.
fig = plt.figure(figsize=(13, 3.2))
ax = fig.add_subplot(1, 5, 1, projection="3d")
ax.scatter(X[:, 0], X[:, 1], X[:, 2], c=t, s=2, cmap="Spectral")
ax.view_init(10, -70)
ax.set_title("swiss roll (n=3000)")
ax.set_axis_off()
for i, (name, Y) in enumerate(zip(timings, (Y_se, Y_le, Y_dm, Y_sk)), start=2):
    ax = fig.add_subplot(1, 5, i)
    ax.scatter(Y[:, 0], Y[:, 1], c=t, s=2, cmap="Spectral")
    ax.set_title(f"{name}\n{timings[name]:.2f} s", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
plt.show()
