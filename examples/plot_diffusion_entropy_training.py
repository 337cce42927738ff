"""
Diffusion spectral entropy during training
==========================================

Diffusion spectral entropy (DSE, Liao et al. 2023) is the entropy of the eigenvalues of a
diffusion operator on a point cloud: high when the points fill many directions, lower when
they collapse onto a few clusters. We train a small network (scikit-learn's
:class:`~sklearn.neural_network.MLPClassifier`, one epoch per ``partial_fit``) on
``load_digits`` and follow the DSE of its hidden representation
(:func:`geoml.diffusion_spectral_entropy`), the diffusion spectral mutual information with
the labels (:func:`geoml.diffusion_spectral_mutual_information`) and the test accuracy. The
Gaussian kernel's width follows the layer's scale (half the median pairwise distance), so
the measures see the shape of the representation, not its growing size.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

import geoml

X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)
X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
probe = X_te[:300]
probe_y = y_te[:300]


def hidden(net, Z):
    """Hidden-layer representation (ReLU of the first layer)."""
    return np.maximum(Z @ net.coefs_[0] + net.intercepts_[0], 0)


def kernel_width(H):
    """Half the median pairwise distance of the rows of H."""
    sq = (H**2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * H @ H.T, 0)
    return 0.5 * float(np.median(np.sqrt(d2[np.triu_indices(len(H), 1)])))


def measures(H, labels):
    sigma = kernel_width(H)
    entropy = geoml.diffusion_spectral_entropy(H, sigma=sigma, method="exact").value
    mi = geoml.diffusion_spectral_mutual_information(H, labels, sigma=sigma, method="exact")
    return entropy, mi.value


net = MLPClassifier(hidden_layer_sizes=(64,), learning_rate_init=1e-3, random_state=0)
epochs, dse, dsmi, acc = [], [], [], []
classes = np.unique(y)
for epoch in range(1, 41):
    net.partial_fit(X_tr, y_tr, classes=classes)
    if epoch in (1, 2, 4, 8, 12, 16, 20, 30, 40):
        entropy, mi = measures(hidden(net, probe), probe_y)
        epochs.append(epoch)
        dse.append(entropy)
        dsmi.append(mi)
        acc.append(net.score(X_te, y_te))
        print(
            f"epoch {epoch:2d}: test accuracy {acc[-1]:.3f}, DSE {entropy:.3f} bits, "
            f"DSMI {mi:.3f} bits"
        )

dse_input, dsmi_input = measures(probe, probe_y)
print(f"input pixels: DSE {dse_input:.3f} bits, DSMI {dsmi_input:.3f} bits")

# %%
# As the network learns, its hidden layer gathers the digits into classes: the entropy of
# the diffusion spectrum falls (fewer effective directions) and the information about the
# label rises, while the test accuracy saturates.
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
for ax, values, ref, name in [
    (axes[0], dse, dse_input, "DSE of the hidden layer (bits)"),
    (axes[1], dsmi, dsmi_input, "DSMI with the labels (bits)"),
]:
    ax.plot(epochs, values, "o-")
    ax.axhline(ref, color="gray", ls=":", label="input pixels")
    ax.set_title(name, fontsize=10)
    ax.set_xlabel("epoch")
    ax.legend(fontsize=8)
axes[2].plot(epochs, acc, "^-", color="tab:green")
axes[2].set_ylim(0, 1)
axes[2].set_title("test accuracy", fontsize=10)
axes[2].set_xlabel("epoch")
fig.suptitle("MLP (64 hidden units) trained on load_digits, one epoch per partial_fit")
fig.tight_layout()
plt.show()
