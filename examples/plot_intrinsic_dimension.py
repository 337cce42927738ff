"""
Intrinsic dimension of datasets
===============================

A point cloud can sit in a high-dimensional space and still be a low-dimensional manifold.
:func:`geoml.intrinsic_dimension` estimates that dimension from nearest-neighbour distances
(one exact kNN pass): the Levina-Bickel maximum likelihood (``"mle"``), TwoNN (``"twonn"``),
GRIDE (``"gride"``) and local PCA (``"lpca"``), with scikit-dimension's conventions. We
estimate it on manifolds of known dimension embedded in more ambient dimensions, and on
``load_digits``; then map the per-point (local) estimate on a union of a line, a plane and a
3-D ball.
"""

import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits, make_swiss_roll

import geoml

rng = np.random.default_rng(0)


def sphere(n, d, ambient):
    """Uniform points on the unit d-sphere (intrinsic dimension d), rotated into R^ambient."""
    Z = rng.standard_normal((n, d + 1))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    Q, _ = np.linalg.qr(rng.standard_normal((ambient, ambient)))
    return np.hstack([Z, np.zeros((n, ambient - d - 1))]) @ Q


datasets = {
    "swiss roll (2 in 3)": (make_swiss_roll(2000, random_state=0)[0], 2),
    "5-sphere in R^20": (sphere(2000, 5, 20), 5),
    "10-sphere in R^30": (sphere(2000, 10, 30), 10),
    "Gaussian in R^8": (rng.standard_normal((2000, 8)), 8),
    # duplicate images dropped: a zero neighbour distance has no ratio
    "load_digits (64 pixels)": (np.unique(load_digits().data, axis=0).astype(float), None),
}
methods = ["mle", "twonn", "gride", "lpca"]
table = {}
for name, (X, true_d) in datasets.items():
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        row = [geoml.intrinsic_dimension(X, m).dimension for m in methods]
    dt = time.perf_counter() - t0
    for w in caught:  # integer pixels: GRIDE drops points whose neighbour distances tie
        print(f"  note: {w.message}")
    table[name] = row
    shown = "  ".join(f"{m} {v:5.2f}" for m, v in zip(methods, row))
    print(f"{name:26s} true {true_d if true_d else '?':>2}   {shown}   ({dt * 1e3:.0f} ms)")

# %%
# MLE, TwoNN and GRIDE are nonlinear (nearest-neighbour) estimates; global ``"lpca"`` is a
# linear one: a curved ``d``-sphere spans ``d + 1`` linear dimensions and the swiss roll 3,
# so there it answers one more than the manifold's dimension.
#
# Local estimates
# ---------------
# ``local=True`` returns one estimate per point from the same kNN pass.
line = np.column_stack([np.linspace(-3, 3, 600), np.zeros((600, 2))]) + [0, 0, 4]
plane = np.column_stack([rng.uniform(-3, 3, (1000, 2)), np.zeros(1000)])
ball = rng.standard_normal((1000, 3))
ball = 1.5 * ball / np.linalg.norm(ball, axis=1, keepdims=True) * rng.random((1000, 1)) ** (1 / 3)
ball += [0, 0, -4]
U = np.vstack([line, plane, ball])
local = geoml.intrinsic_dimension(U, "mle", k=20, local=True).pointwise
for name, part in [
    ("line", slice(0, 600)),
    ("plane", slice(600, 1600)),
    ("ball", slice(1600, 2600)),
]:
    print(f"local MLE on the {name}: median {np.nanmedian(local[part]):.2f}")

# %%
fig = plt.figure(figsize=(12, 4))
ax = fig.add_subplot(1, 2, 1)
names = list(table)
width = 0.2
for i, m in enumerate(methods):
    ax.bar(np.arange(len(names)) + (i - 1.5) * width, [table[n][i] for n in names], width, label=m)
for k, n in enumerate(names):
    if datasets[n][1]:
        ax.hlines(datasets[n][1], k - 0.45, k + 0.45, color="k", lw=2)
ax.set_xticks(np.arange(len(names)))
ax.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
ax.set_ylabel("estimated dimension (black: true)")
ax.legend(fontsize=8)
ax = fig.add_subplot(1, 2, 2, projection="3d")
ax.view_init(elev=12, azim=-60)
p = ax.scatter(*U.T, c=np.clip(local, 0, 4), s=3, cmap="viridis")
ax.set_title("local MLE: a line, a plane and a ball")
fig.colorbar(p, ax=ax, shrink=0.7, label="local dimension")
fig.tight_layout()
plt.show()
