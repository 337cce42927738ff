"""Flop/traffic cost model that orders Tucker modes and picks exact or sketched steps."""

from __future__ import annotations

import math
from itertools import permutations

import numpy as np

from ._kernels import _ttm


def _layout(shape, m: int) -> tuple[float, float, float]:
    """(L, R, numel) of ``shape`` seen around mode m as an (L, I_m, R) array."""
    L = float(math.prod(shape[:m]))
    R = float(math.prod(shape[m + 1 :]))
    return L, R, L * shape[m] * R


def _gathers(L: float, R: float) -> bool:
    """Whether the BLAS paths of the C++ kernels gather slabs (see ``ttm`` in C++)."""
    return R > 1 and L > 1 and not (R >= 64 and L <= 16)


def _ttm_cost(shape, m: int, J: int) -> float:
    """Model of the time of ``_ttm`` along mode m (size I -> J) of a tensor of ``shape``, in
    flop units: 2 J flops per input entry, 24 per entry read or written, and 64 more per entry
    when BLAS runs on gathered slabs (J > 32 output rows, narrow trailing size 1 < R < 64
    with many slabs; geoml's kernel for J <= 32 packs cache-sized blocks at little cost; see
    ``ttm`` in C++). Fitted to single-core timings on AVX2 (Zen)
    cores, float32 and float64, like the models below."""
    L, R, size = _layout(shape, m)
    out = size / max(shape[m], 1) * J
    gathered = _gathers(L, R) and J > 32
    return 2.0 * J * size + (24.0 + (64.0 if gathered else 0.0)) * (size + out)


def _gram_cost(shape, m: int) -> float:
    """Model of ``_gram`` (I_m flops per entry at BLAS speed: geoml's kernel up to I_m = 512,
    SYRK with gathered slabs beyond) in the same units."""
    L, R, size = _layout(shape, m)
    gathered = shape[m] > 512 and _gathers(L, R)
    return size * (shape[m] + 24.0 + (64.0 if gathered else 0.0))


def _apply_cost(shape, m: int, r: int) -> float:
    """Model of ``_gram_apply`` on r columns (geoml's SIMD loops, X read once), same units."""
    return _layout(shape, m)[2] * (4.0 * r + 24.0)


def _sketch_cost(shape, m: int, s: int) -> float:
    """Model of a mode-m sketch ``X_(m) W`` with s columns (BLAS, at a quarter of its peak on
    such skinny shapes) in the same units."""
    L, R, size = _layout(shape, m)
    return size * (4.0 * s + 24.0 + (64.0 if _gathers(L, R) else 0.0))


def _contract_all(
    X: np.ndarray, mats: dict[int, np.ndarray], transposed: bool, nj: int
) -> np.ndarray:
    """Apply ``X x_m M_m^T`` (transposed) or ``X x_m M_m`` for all m in ``mats``.

    The order of the products is the cheapest by the model of :func:`_ttm_cost` (all orders
    for up to 6 modes; beyond, greedily by the largest shrink or smallest growth).
    """

    def new_size(m):
        return mats[m].shape[1] if transposed else mats[m].shape[0]

    if len(mats) <= 6:

        def cost(order):
            shape, total = list(X.shape), 0.0
            for m in order:
                total += _ttm_cost(shape, m, new_size(m))
                shape[m] = new_size(m)
            return total

        todo = min(permutations(mats), key=cost)
    else:
        todo = sorted(mats, key=lambda m: new_size(m) / max(X.shape[m], 1))
    for m in todo:
        X = _ttm(X, m, mats[m], transposed, nj)
    return X


def _st_step_cost(shape, m: int, r: int) -> float:
    """Modelled time of one exact ST-HOSVD step on mode m: Gram matrix + product to rank r."""
    return _gram_cost(shape, m) + _ttm_cost(shape, m, r)


def _sketch_cols(I: int, r: int, rest: int, p: int) -> int:
    return min(r + p, I, rest)


def _rand_step(shape, m: int, r: int, p: int, q: int) -> tuple[bool, float]:
    """(use a sketch?, modelled time) of one randomized step on mode m: the sketch, q power
    iterations (a product and a sketch each), the final product to s columns, the exact step
    on its small result and the Gaussian draws; the sketch is used only when that beats the
    exact step."""
    I = shape[m]
    rest = math.prod(shape) // max(I, 1)
    s = _sketch_cols(I, r, rest, p)
    exact = _st_step_cost(shape, m, r)
    if s >= I or r >= rest:
        return False, exact
    small = list(shape)
    small[m] = s
    sketch = (
        (q + 1) * (_sketch_cost(shape, m, s) + _ttm_cost(shape, m, s))
        + _st_step_cost(tuple(small), m, r)
        + 60.0 * rest * s
    )
    return (True, sketch) if sketch < exact else (False, exact)


def _mode_order(shape, ranks: dict[int, int] | None, modes: list[int], step_cost=None) -> list[int]:
    """Order in which (ST-)HOSVD processes ``modes``: the cheapest by a time model.

    ``step_cost(shape, m, r)`` is the modelled time of processing mode m of a tensor of
    ``shape`` to rank r (default: exact ST-HOSVD step); mode m then has size r.
    All orders are tried for up to 6 modes; beyond that (or when ranks are unknown) modes
    go by increasing size, as in Vannieuwenhoven et al.
    """
    if ranks is None or len(modes) > 6:
        return sorted(modes, key=lambda m: shape[m])
    step_cost = step_cost or _st_step_cost

    def cost(order):
        cur, total = list(shape), 0.0
        for m in order:
            total += step_cost(tuple(cur), m, ranks[m])
            cur[m] = ranks[m]
        return total

    return list(min(permutations(modes), key=cost))


# ---------------------------------------------------------------- randomized SVD
