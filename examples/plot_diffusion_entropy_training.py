"""
Diffusion spectral entropy during training
==========================================

Diffusion spectral entropy (DSE, Liao et al. 2023) is the entropy of the eigenvalues of a
diffusion operator on a point cloud: high when the points fill many directions, lower when
they collapse onto a few clusters. We train a small network (scikit-learn's
:class:`~sklearn.neural_network.MLPClassifier`, one epoch per ``partial_fit``) on
``load_digits`` and follow the DSE of its hidden representation
(:func:`geoml.diffusion_spectral_entropy`), the diffusion spectral mutual information with
the labels (:func:`geoml.diffusion_spectral_mutual_information`) and the test accuracy.
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
probe = X_te[:500]
probe_y = y_te[:500]


def hidden(net, Z):
    """Hidden-layer representation (ReLU of the first layer), standardised per unit."""
    H = np.maximum(Z @ net.coefs_[0] + net.intercepts_[0], 0)
    return H / (H.std() + 1e-12)


net = MLPClassifier(hidden_layer_sizes=(64,), learning_rate_init=1e-3, random_state=0)
epochs, dse, dsmi, acc = [], [], [], []
classes = np.unique(y)
for epoch in range(1, 41):
    net.partial_fit(X_tr, y_tr, classes=classes)
    if epoch in (1, 2, 3, 5, 8, 12, 16, 20, 25, 30, 35, 40):
        H = hidden(net, probe)
        epochs.append(epoch)
        dse.append(geoml.diffusion_spectral_entropy(H, sigma=2.0, method="exact").value)
        dsmi.append(
            geoml.diffusion_spectral_mutual_information(H, probe_y, sigma=2.0, method="exact").value
        )
        acc.append(net.score(X_te, y_te))
        print(
            f"epoch {epoch:2d}: test accuracy {acc[-1]:.3f}, DSE {dse[-1]:.3f} bits, "
            f"DSMI {dsmi[-1]:.3f} bits"
        )

dse_input = geoml.diffusion_spectral_entropy(probe / probe.std(), sigma=2.0, method="exact").value
print(f"DSE of the standardised input pixels: {dse_input:.3f} bits")

# %%
fig, ax1 = plt.subplots(figsize=(7, 4))
ax1.plot(epochs, dse, "o-", color="tab:blue", label="DSE of the hidden layer")
ax1.plot(epochs, dsmi, "s-", color="tab:purple", label="DSMI with the labels")
ax1.axhline(dse_input, color="tab:blue", ls=":", label="DSE of the input")
ax1.set_xlabel("epoch")
ax1.set_ylabel("bits")
ax2 = ax1.twinx()
ax2.plot(epochs, acc, "^-", color="tab:green", label="test accuracy")
ax2.set_ylabel("test accuracy")
ax2.set_ylim(0, 1)
lines = ax1.get_legend_handles_labels()
lines2 = ax2.get_legend_handles_labels()
ax1.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center right", fontsize=8)
ax1.set_title("MLP (64 hidden units) on load_digits")
fig.tight_layout()
plt.show()
