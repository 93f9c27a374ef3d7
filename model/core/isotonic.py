"""Weighted isotonic regression in numpy: the non-decreasing-in-age rule of the risk tables (training and scoring)."""

from __future__ import annotations

import numpy as np


def pool_adjacent_violators(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted least-squares non-decreasing fit to `values` (in their order): pool adjacent violators.

    Written out because a stratum holds at most the 8 age groups from 10-19 up: scikit-learn's
    IsotonicRegression (the same fit) spent its time validating, on thousands of strata per refit,
    and the scoring server (model/serving/submodels.py) never imports scikit-learn.
    """
    means: list[float] = []
    mass: list[float] = []
    sizes: list[int] = []
    for value, weight in zip(values.tolist(), weights.tolist(), strict=True):
        means.append(value)
        mass.append(weight)
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            mean, total, size = means.pop(), mass.pop(), sizes.pop()
            means[-1] = (means[-1] * mass[-1] + mean * total) / (mass[-1] + total)
            mass[-1] += total
            sizes[-1] += size
    return np.repeat(means, sizes)
