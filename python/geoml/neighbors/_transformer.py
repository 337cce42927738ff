""":class:`KNNTransformer`, the scikit-learn ``KNeighborsTransformer`` contract."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._base import BaseEstimator, FeaturesOutMixin, NotFittedError, not_fitted_error
from .._validation import (
    as_float_array,
    check_int,
    check_n_jobs,
    truncate_to_samples,
    validate_random_state,
)
from ._knn import (
    RecallEstimate,
    _auto_is_exact,
    _check_method,
    _check_metric,
    _knn_checked,
    _knn_method,
    _prepend_self,
    _same_features_and_dtype,
)


class KNNTransformer(FeaturesOutMixin, BaseEstimator):
    """Sparse kNN graph of the samples, with scikit-learn's ``KNeighborsTransformer`` contract.

    A drop-in neighbours backend for estimators that take a precomputed sparse graph:
    ``Isomap(metric="precomputed")``, ``TSNE(metric="precomputed")``,
    ``SpectralEmbedding(affinity="precomputed_nearest_neighbors")``, ``DBSCAN``, UMAP
    (``precomputed_knn``) and scanpy (``sc.pp.neighbors(adata, transformer=...)``).
    ``transform(X)`` gives row ``i`` the ``n_neighbors_`` nearest fitted samples of ``X[i]``
    (one more in ``"distance"`` mode, as scikit-learn), rows sorted by distance: a CSR matrix
    of shape (n_queries, n_samples_fit) with exactly ``n_neighbors_ + 1`` stored entries per
    row in ``"distance"`` mode (``n_neighbors_`` in ``"connectivity"`` mode), explicit zeros
    included, for new data as for the fitted data.

    The fitted data (``fit_transform(X)``, or ``transform`` of an array equal to the fitted
    one) has each sample first in its own row, at an explicit distance 0 (1 for a zero vector
    under ``"cosine"``), then its ``n_neighbors_`` nearest other samples (``n_neighbors_ - 1``
    in ``"connectivity"`` mode): samples identical to it follow, at distance 0, instead of
    taking its place (scikit-learn leaves the order of such ties to its search, so a
    duplicate may come first and the sample itself drop out; scanpy reads the first column
    as the sample itself). So ``fit(X).transform(X)`` equals ``fit_transform(X)`` with an
    exact search. Under ``metric="inner_product"`` a sample need not be its own nearest
    neighbour: rows hold the nearest fitted samples as for new data.

    Parameters
    ----------
    n_neighbors : int, default 5
        Neighbours per sample (plus the sample itself in ``"distance"`` mode). More than the
        fitted samples hold (``n_neighbors >= n_samples`` in ``"distance"`` mode,
        ``> n_samples`` in ``"connectivity"`` mode, where the sample itself counts) is
        truncated by ``fit`` with a ``UserWarning`` (umap-learn's convention; scikit-learn's
        transformer raises at ``transform``) and stored as ``n_neighbors_``, which
        ``transform`` uses for new data too: after a truncation each row holds every fitted
        sample. scanpy reads ``n_neighbors`` from ``get_params()``, not the truncated count;
        it takes the rows as they are. With scanpy (``sc.pp.neighbors(adata,
        transformer=KNNTransformer(n))``, checked with scanpy 1.11) ``obsp["distances"]`` is
        this graph as it is (``n + 1`` entries per row, the cell itself at an explicit 0),
        where scanpy's own exact path (``transformer="sklearn"``, or small data by default)
        keeps ``n - 1`` per row and no diagonal; its default ``method="umap"`` connectivities
        come from the first ``n`` entries of each row and agree with that path, but
        ``method="gauss"`` weighs the stored distances, so they differ from it (as with any
        transformer instance, scikit-learn's ``KNeighborsTransformer`` included).
    mode : {"distance", "connectivity"}, default "distance"
        Stored values: distances, or ones (float64, as scikit-learn). The distances are in
        the float dtype of the data searched (the wider of the fitted data's and ``X``'s):
        float32 data gives float32 distances, as :func:`knn` and :func:`knn_graph` (geoml
        keeps float32 float32; the search computes them in float32 precision, so float64
        would add memory, not accuracy), where scikit-learn's ``KNeighborsTransformer``
        returns float64. scikit-learn's ``Isomap``, ``TSNE`` and ``DBSCAN`` take either
        (checked with scikit-learn 1.9).
    metric : {"euclidean", "sqeuclidean", "cosine", "inner_product"}, default "euclidean"
        As in :func:`knn`.
    method : {"auto", "exact", "nndescent"}, default "auto"
        Search of ``fit_transform(X)``, as in :func:`knn`: ``"nndescent"`` (or ``"auto"``
        from 20,000 samples where :func:`knn`'s ``"auto"`` keeps the approximate graph, except
        under ``metric="inner_product"``) builds the approximate graph of ``X`` and adds each
        sample as its own neighbour; otherwise, and for ``transform`` of new data, the search
        is exact (``recall_.method`` says which ran).
    target_recall, random_state, n_jobs :
        As in :func:`knn`.

    Attributes
    ----------
    n_neighbors_ : int
        ``n_neighbors`` after the truncation above: the count every ``transform`` uses.
    n_samples_fit_ : int
    n_features_in_ : int
    recall_ : RecallEstimate or None
        Recall of the last ``fit_transform`` (exact searches: 1).

    Examples
    --------
    >>> import numpy as np, geoml
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> G = geoml.KNNTransformer(n_neighbors=1).fit_transform(X)
    >>> G.toarray()
    array([[0., 1., 0., 0.],
           [1., 0., 0., 0.],
           [0., 2., 0., 0.],
           [0., 0., 4., 0.]])
    >>> G.nnz  # the explicit zeros of the diagonal count
    8
    """

    _transformer = True

    def __init__(
        self,
        n_neighbors: int = 5,
        *,
        mode: str = "distance",
        metric: str = "euclidean",
        method: str = "auto",
        target_recall: float = 0.99,
        random_state=None,
        n_jobs: int | None = None,
    ):
        self.n_neighbors = n_neighbors
        self.mode = mode
        self.metric = metric
        self.method = method
        self.target_recall = target_recall
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _check_params(self) -> float:
        if self.mode not in ("distance", "connectivity"):
            raise ValueError(f"mode={self.mode!r}; choose 'distance' or 'connectivity'")
        _check_metric(self.metric)
        check_n_jobs(self.n_jobs)
        check_int(self.n_neighbors, "n_neighbors", low=1)
        validate_random_state(self.random_state)
        return _check_method(self.method, self.target_recall)

    def _k(self) -> int:
        """Neighbours per row, scikit-learn's way: one more in distance mode."""
        k = self.n_neighbors_ + (self.mode == "distance")
        if k > self.n_samples_fit_:  # one fitted sample, or mode set to "distance" after fit
            raise ValueError(
                f"n_neighbors={self.n_neighbors_} needs {k} fitted samples in {self.mode!r} "
                f"mode (the sample itself is its first neighbour); got n_samples_fit="
                f"{self.n_samples_fit_}"
            )
        return k

    def fit(self, X, y=None) -> KNNTransformer:
        """Store the samples, array-like of shape (n_samples, n_features)."""
        names_in = self._feature_names_of(X)
        out = self._fit(X)
        self._set_feature_names(names_in)
        return out

    def _fit(self, X) -> KNNTransformer:
        """``fit``, called by ``fit`` and ``fit_transform`` (the warning's stack level)."""
        self._check_params()
        X = as_float_array(X, "X")
        n = X.shape[0]
        distance = self.mode == "distance"
        self.n_neighbors_ = truncate_to_samples(
            self.n_neighbors,
            "n_neighbors",
            n,
            high=n - distance,
            what="X.shape[0] - 1" if distance else "X.shape[0]",
        )
        self._fit_X = X
        self.n_samples_fit_, self.n_features_in_ = X.shape
        self.recall_ = None
        return self

    def _graph(self, idx: np.ndarray, dist: np.ndarray) -> sp.csr_matrix:
        m, k = idx.shape
        data = dist.ravel() if self.mode == "distance" else np.ones(m * k)
        indptr = np.arange(0, m * k + 1, k, dtype=np.int64)
        return sp.csr_matrix((data, idx.ravel(), indptr), shape=(m, self.n_samples_fit_))

    def _self_first(self, X) -> sp.csr_matrix:
        """The graph of the fitted data ``X`` (exact search): each sample first in its own
        row, then its ``_k() - 1`` nearest other samples."""
        k, n = self._k(), X.shape[0]
        others = (np.empty((n, 0), np.int64), np.empty((n, 0), X.dtype))
        if k > 1:
            others = _knn_checked(X, k - 1, None, self.metric, True, self.n_jobs)
        return self._graph(*_prepend_self(X, others, self.metric))

    def transform(self, X) -> sp.csr_matrix:
        """Graph of shape (n_queries, n_samples_fit): row ``i`` holds the ``n_neighbors_``
        (``"distance"`` mode: ``n_neighbors_ + 1``) nearest fitted samples of ``X[i]`` (exact
        search), sorted by distance; an array equal to the fitted data gives each sample
        first in its own row (see the class notes)."""
        X_in = X
        self._check_feature_names_in(X)
        return self._wrap_output(self._transform(X), X_in)

    def _transform(self, X) -> sp.csr_matrix:
        """``transform`` without the feature-name check and output container (``X`` may be
        the array ``fit_transform`` made of a DataFrame)."""
        if not hasattr(self, "_fit_X"):
            raise NotFittedError("this KNNTransformer is not fitted yet; call fit(X) first")
        Y = np.asarray(X) if not hasattr(X, "ndim") else X
        if Y.ndim == 1:
            raise ValueError(
                f"X must be a 2-D array; got shape {Y.shape}. Reshape your data, e.g. "
                "X.reshape(1, -1) for one sample"
            )
        Y = as_float_array(X, "X")
        if Y.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {Y.shape[1]} features, but KNNTransformer is expecting "
                f"{self.n_features_in_} features as input"
            )
        k = self._k()
        Xf = self._fit_X
        if self.metric != "inner_product" and Y.shape == Xf.shape and np.array_equal(Y, Xf):
            # in the dtype new data of Y's dtype gets (both converted to the wider one): a
            # float32 fit gave float32 for its own values given as float64, float64 otherwise
            # (G.astype would sort each row by column: rows are sorted by distance)
            G = self._self_first(Xf)
            wide = np.promote_types(G.dtype, Y.dtype)
            if G.dtype == wide:
                return G
            return sp.csr_matrix((G.data.astype(wide), G.indices, G.indptr), shape=G.shape)
        Xf, Y = _same_features_and_dtype(Xf, Y)
        idx, dist = _knn_checked(Xf, k, Y, self.metric, False, self.n_jobs)
        return self._graph(idx, dist)

    @property
    def _n_features_out(self) -> int:
        """One column per fitted sample (scikit-learn's ``KNeighborsTransformer``)."""
        if not hasattr(self, "_fit_X"):
            raise not_fitted_error(self)
        return int(self.n_samples_fit_)

    def fit_transform(self, X, y=None) -> sp.csr_matrix:
        """``fit(X).transform(X)``: each sample first in its own row (see the class notes);
        with an approximate ``method`` its other neighbours come from NN-descent."""
        names_in, X_in = self._feature_names_of(X), X
        target = self._check_params()
        X = as_float_array(X, "X")
        n = X.shape[0]
        # "auto" stays exact under inner products: the approximate graph puts each sample
        # first in its row, which a sample need not be under that metric (nndescent refuses)
        approx = self.method == "nndescent" or (
            self.method == "auto"
            and self.metric != "inner_product"
            and not _auto_is_exact(n, X.shape[1])
        )
        if not approx:
            out = self._fit(X)._transform(X)
            self.recall_ = RecallEstimate(1.0, 1.0, 1.0, n, target, True, "exact", 0)
            out = self._wrap_output(out, X_in)
            self._set_feature_names(names_in)
            return out
        self._fit(X)
        res = _knn_method(
            X,
            self._k(),
            None,
            self.metric,
            False,
            self.n_jobs,
            False,
            self.method,  # "auto": the exact search when NN-descent falls short in its cost
            target,
            self.random_state,
        )
        self.recall_ = res.recall_
        out = self._wrap_output(self._graph(res[0], res[1]), X_in)
        self._set_feature_names(names_in)
        return out
