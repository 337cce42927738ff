"""
Optimal transport between two digit images
==========================================

Each 8x8 image of :func:`sklearn.datasets.load_digits` is a histogram over pixel positions.
Optimal transport moves the ink of one digit onto the other at the least total squared
distance. We solve the exact problem with :func:`geoml.ot.emd` (network simplex) and the
entropic one with :func:`geoml.ot.sinkhorn` at several ``eps``, and draw the plans and the
barycentric maps ``T(x_i) = sum_j P_ij y_j / a_i``: where each source pixel's ink goes on
average.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

import geoml

digits = load_digits()
src_img = digits.images[digits.target == 3][0]
dst_img = digits.images[digits.target == 7][0]

# pixel coordinates (x right, y up) of the inked pixels, and their masses
rows, cols = np.mgrid[0:8, 0:8]
coords = np.column_stack([cols.ravel(), 7 - rows.ravel()]).astype(float)


def histogram(img):
    w = img.ravel().astype(float)
    keep = w > 0
    return w[keep] / w[keep].sum(), coords[keep]


a, xs = histogram(src_img)
b, xt = histogram(dst_img)
C = ((xs[:, None, :] - xt[None, :, :]) ** 2).sum(-1)
C /= C.max()  # costs in [0, 1]: eps is relative to the cost range
print(f"source: {len(a)} inked pixels, target: {len(b)}; cost matrix {C.shape}")

# %%
# Exact and entropic plans
# ------------------------
exact = geoml.ot.emd(a, b, C)
print(
    f"emd: cost {exact.cost:.5f}, {exact.n_iter} pivots, converged {exact.converged}, "
    f"{np.count_nonzero(exact.plan > 1e-12)} non-zero entries (at most m + n - 1 = "
    f"{len(a) + len(b) - 1})"
)

epsilons = [1e-1, 1e-2, 1e-3]
entropic = {}
for eps in epsilons:
    res = geoml.ot.sinkhorn(a, b, C, eps)
    entropic[eps] = res
    print(
        f"sinkhorn eps={eps:g}: cost {res.cost:.5f} (exact {exact.cost:.5f}), "
        f"{res.n_iter} iterations, marginal error {res.marginal_error:.1e}, "
        f"converged {res.converged}"
    )

# %%
# The transport cost of the entropic plan falls to the exact cost as ``eps`` shrinks,
# and the plan sharpens from a blur to the sparse exact plan.
plans = [("exact (emd)", exact.plan)] + [
    (f"sinkhorn eps={e:g}", entropic[e].plan) for e in epsilons
]
fig, axes = plt.subplots(
    1, 6, figsize=(16, 3.2), gridspec_kw={"width_ratios": [1, 1, 1.3, 1.3, 1.3, 1.3]}
)
axes[0].imshow(src_img, cmap="Blues")
axes[0].set_title("source: a 3", fontsize=10)
axes[1].imshow(dst_img, cmap="Reds")
axes[1].set_title("target: a 7", fontsize=10)
for ax in axes[:2]:
    ax.set_xticks([])
    ax.set_yticks([])
for ax, (name, P) in zip(axes[2:], plans):
    ax.imshow(P, cmap="magma_r", aspect="auto", interpolation="nearest")
    ax.set_title(f"{name}\ncost {np.sum(P * C):.4f}", fontsize=10)
    ax.set_xlabel("target pixel")
axes[2].set_ylabel("source pixel")
fig.tight_layout()
plt.show()

# %%
# Barycentric maps
# ----------------
# Arrows from each source pixel (blue dots, sized by mass) to the barycentre of where its
# ink goes, over the target digit (red).


def barycentric(P):
    return (P @ xt) / P.sum(1, keepdims=True)


fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
for ax, (name, P) in zip(axes, plans):
    T = barycentric(P)
    ax.imshow(dst_img, cmap="Reds", extent=(-0.5, 7.5, -0.5, 7.5), alpha=0.6)
    ax.scatter(xs[:, 0], xs[:, 1], s=600 * a, c="tab:blue", zorder=2)
    ax.quiver(
        xs[:, 0],
        xs[:, 1],
        T[:, 0] - xs[:, 0],
        T[:, 1] - xs[:, 1],
        angles="xy",
        scale_units="xy",
        scale=1,
        color="k",
        width=0.008,
        zorder=3,
    )
    ax.set_title(name, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("barycentric map of a 3 (blue) onto a 7 (red)")
fig.tight_layout()
plt.show()
