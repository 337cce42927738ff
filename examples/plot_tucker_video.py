"""
Tucker compression of a video-like tensor
=========================================

A short video is a tensor (frames x height x width). A moving, slowly changing scene has
low multilinear rank, so a Tucker decomposition ``T ~ G x1 U1 x2 U2 x3 U3`` with a small core
``G`` compresses it. We generate a clip of two Gaussian blobs moving over a textured
background, decompose it with :func:`geoml.tucker` at increasing ranks (HOSVD and HOOI), and
plot the relative error against the rank and the compression ratio.
"""

import time

import matplotlib.pyplot as plt
import numpy as np

import geoml

rng = np.random.default_rng(0)
n_frames, h, w = 48, 64, 80
yy, xx = np.mgrid[0:h, 0:w]
background = 0.3 * np.sin(xx / 7.0)[None] * np.cos(yy / 11.0)[None]
frames = []
for f in range(n_frames):
    s = f / n_frames
    blob1 = np.exp(-((xx - 10 - 60 * s) ** 2 + (yy - 20) ** 2) / 60.0)
    blob2 = 0.8 * np.exp(-((xx - 40) ** 2 + (yy - 10 - 40 * s) ** 2) / 90.0)
    frames.append(blob1 + blob2)
video = np.asarray(frames) + background + 0.02 * rng.standard_normal((n_frames, h, w))
print(f"video tensor {video.shape}, {video.size} values")

# %%
# Error against rank
# ------------------
# ``tucker`` returns a :class:`geoml.TuckerTensor` (``core``, ``factors``, ``rel_error``).
ranks = [2, 4, 8, 12, 16, 24]
results = {"hosvd": [], "hooi": []}
for method in results:
    for r in ranks:
        t0 = time.perf_counter()
        tt = geoml.tucker(video, (r, r, r), method=method, tol=1e-6)
        dt = time.perf_counter() - t0
        size = tt.core.size + sum(U.size for U in tt.factors)
        results[method].append((r, tt.rel_error(video), video.size / size, dt))
for method, rows in results.items():
    for r, err, ratio, dt in rows:
        print(
            f"{method:5s} rank {r:2d}: relative error {err:.4f}, "
            f"compression {ratio:6.1f}x, {dt * 1e3:.1f} ms"
        )

# %%
# HOOI refines the HOSVD factors and does a little better at every rank; both reach the
# floor set by the added noise (the error of the noise-free clip would keep falling) by
# rank ~12, where the clip is stored 60 times smaller.
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
for method, rows in results.items():
    r, err, ratio, _ = map(np.array, zip(*rows))
    ax1.semilogy(r, err, "o-", label=method)
    ax2.loglog(ratio, err, "o-", label=method)
ax1.set_xlabel("Tucker rank (per mode)")
ax1.set_ylabel("relative error")
ax1.legend()
ax2.set_xlabel("compression ratio")
ax2.set_ylabel("relative error")
ax2.legend()
fig.tight_layout()
plt.show()

# %%
# Frames of the original and of rank-4 and rank-12 reconstructions.
recon = {r: geoml.tucker(video, (r, r, r), tol=1e-6).to_tensor() for r in (4, 12)}
fig, axes = plt.subplots(3, 4, figsize=(10, 6))
for j, f in enumerate([0, 16, 32, 47]):
    for i, (name, V) in enumerate(
        [("original", video), ("rank 4", recon[4]), ("rank 12", recon[12])]
    ):
        axes[i, j].imshow(V[f], cmap="gray", vmin=video.min(), vmax=video.max())
        axes[i, j].set_xticks([])
        axes[i, j].set_yticks([])
        if j == 0:
            axes[i, j].set_ylabel(name)
        if i == 0:
            axes[i, j].set_title(f"frame {f}")
fig.tight_layout()
plt.show()
