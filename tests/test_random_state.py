"""``random_state`` is checked by one helper (``geoml._validation.validate_random_state``) at
every public entry that takes it: a bad value is a ``TypeError`` / ``ValueError`` naming the
parameter and what it accepts, on every path (an exact search or a dense solver that draws
nothing included), and every accepted kind of value still works."""

import numpy as np
import pytest
import scipy.sparse as sp

import geoml
from geoml import _validation
from geoml.diffusion import alpha_decay_graph, classical_mds

_X = np.random.default_rng(0).normal(size=(60, 3))
_D = np.sqrt(((_X[:, None] - _X[None]) ** 2).sum(-1))
_A = _X @ _X.T + np.eye(60)
_W = sp.csr_matrix(np.exp(-(_D**2)))
_y = (_X[:, 0] > 0).astype(int)
_T = np.random.default_rng(1).normal(size=(5, 6, 7))
_S = np.diag(np.linspace(1.0, 2.0, 60))  # trace estimates converge at once


def _dask_x():
    da = pytest.importorskip("dask.array")
    return da.from_array(_X, chunks=20)


# Each entry once (the exact / dense paths, which draw nothing, included): name -> call
ENTRIES = {
    "knn exact": lambda rs: geoml.knn(_X, 3, random_state=rs),
    "knn nndescent": lambda rs: geoml.knn(_X, 3, method="nndescent", random_state=rs),
    "knn_graph": lambda rs: geoml.knn_graph(_X, 3, random_state=rs),
    "KNNGraph": lambda rs: geoml.KNNGraph(n_neighbors=3, random_state=rs).fit(_X),
    "KNNTransformer": lambda rs: geoml.KNNTransformer(n_neighbors=3, random_state=rs).fit(_X),
    "eigsh": lambda rs: geoml.eigsh(_A, 2, random_state=rs),
    "laplacian_eigsh": lambda rs: geoml.laplacian_eigsh(_W, 2, random_state=rs),
    "spectral_embedding": lambda rs: geoml.spectral_embedding(_W, 2, random_state=rs),
    "LaplacianEigenmap": lambda rs: geoml.LaplacianEigenmap(n_neighbors=5, random_state=rs).fit(_X),
    "DiffusionMap": lambda rs: geoml.DiffusionMap(n_neighbors=5, random_state=rs).fit(_X),
    "SpectralClustering": lambda rs: geoml.SpectralClustering(
        n_clusters=2, n_neighbors=5, random_state=rs
    ).fit(_X),
    "MDS": lambda rs: geoml.MDS(random_state=rs).fit(_X),
    "PHATE": lambda rs: geoml.PHATE(knn=5, random_state=rs).fit(_X),
    "HeatGeo": lambda rs: geoml.HeatGeo(n_neighbors=5, random_state=rs).fit(_X),
    "classical_mds": lambda rs: classical_mds(_D, 2, random_state=rs),
    "alpha_decay_graph": lambda rs: alpha_decay_graph(_X, 5, random_state=rs),
    "trace_function": lambda rs: geoml.trace_function(_S, "log", random_state=rs),
    "spectral_density": lambda rs: geoml.spectral_density(_S, bins=4, random_state=rs),
    "von_neumann_entropy": lambda rs: geoml.von_neumann_entropy(np.eye(4) / 4, random_state=rs),
    "diffusion_spectral_entropy": lambda rs: geoml.diffusion_spectral_entropy(_X, random_state=rs),
    "diffusion_spectral_mutual_information": lambda rs: geoml.diffusion_spectral_mutual_information(
        _X, _y, n_repetitions=1, random_state=rs
    ),
    "intrinsic_dimension": lambda rs: geoml.intrinsic_dimension(_X, "mle", random_state=rs),
    "randomized_svd": lambda rs: geoml.randomized_svd(_A, 2, random_state=rs),
    "tucker": lambda rs: geoml.tucker(_T, (2, 2, 2), random_state=rs),
    "dask.knn": lambda rs: geoml.dask.knn(_dask_x(), 3, random_state=rs),
    "dask.knn_graph": lambda rs: geoml.dask.knn_graph(_dask_x(), 3, random_state=rs),
}

ACCEPTS = "random_state must be None, an int >= 0, a numpy.random.Generator or a numpy"
BAD = [
    (-1, ValueError),
    (np.int64(-3), ValueError),
    (1.5, TypeError),
    (np.float64(2.0), TypeError),
    ("0", TypeError),
    (True, TypeError),
    ([1, 2], TypeError),
]


@pytest.mark.parametrize("name", list(ENTRIES))
@pytest.mark.parametrize(("bad", "error"), BAD, ids=[repr(b) for b, _ in BAD])
def test_bad_random_state_names_the_parameter(name, bad, error):
    if name.startswith("dask."):
        pytest.importorskip("geoml.dask")
        pytest.importorskip("dask.array")
    with pytest.raises(error, match=ACCEPTS):
        ENTRIES[name](bad)


@pytest.mark.parametrize("name", list(ENTRIES))
def test_accepted_random_states_still_work(name):
    """None, 0, a big int (2**70: NumPy's SeedSequence takes any size), a NumPy integer, a
    Generator and a RandomState, exactly as before."""
    if name.startswith("dask."):
        pytest.importorskip("dask.array")
    for rs in (
        None,
        0,
        2**70,
        np.int64(3),
        np.random.default_rng(4),
        np.random.RandomState(5),
    ):
        ENTRIES[name](rs)


def test_validate_random_state_draws_nothing():
    g, r = np.random.default_rng(7), np.random.RandomState(7)
    assert _validation.validate_random_state(g) is g
    assert _validation.validate_random_state(r) is r
    assert g.integers(2**63) == np.random.default_rng(7).integers(2**63)
    assert r.randint(2**31 - 1) == np.random.RandomState(7).randint(2**31 - 1)
    for ok in (None, 0, 2**70, np.uint8(3)):
        assert _validation.validate_random_state(ok) is ok
    with pytest.raises(ValueError, match=ACCEPTS + r".*got the negative seed -1"):
        _validation.check_random_state(-1)
    with pytest.raises(ValueError, match=ACCEPTS):
        _validation.random_seed(-(2**70))
