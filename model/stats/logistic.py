"""Aggregated weighted patients and the logistic pieces every stage shares: logit, recalibration, bounds.

Training (`model.training`), evaluation (`model.stats.evaluate`) and updating all work on patients
aggregated to (inputs, outcome) rows with a patient count, and on probabilities through the logit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression

# No risk the data cannot support: a 1-in-5,000 floor and a 98% ceiling. Between them
# the model speaks; outside them no CDC cell of this size could tell values apart.
PROBABILITY_FLOOR = 0.0002
PROBABILITY_CEILING = 0.98
Z95 = 1.959963984540054


@dataclass
class Weighted:
    """Aggregated patients of one model: inputs `x`, outcome `y` (1 = event), patients `w`."""

    x: pd.DataFrame
    y: np.ndarray
    w: np.ndarray

    @property
    def events(self) -> float:
        return float(self.w[self.y == 1].sum())

    @classmethod
    def collapse(cls, frame: pd.DataFrame, y: np.ndarray, w: np.ndarray, inputs: tuple[str, ...]) -> Weighted:
        """Group identical (inputs, outcome) rows: fewer rows, the same weighted data.

        Rows come out in sorted (inputs, outcome) order, as a pandas group-by gives them; the key is one
        mixed-radix integer per row (a group-by over several string columns cost more, tens of times per run).
        """
        key = np.zeros(len(frame), dtype=np.int64)
        for column in inputs:
            codes, uniques = pd.factorize(frame[column], sort=True)
            key = key * (len(uniques) + 1) + codes
        key = key * 2 + np.asarray(y, dtype=np.int64)
        keys, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        total = np.bincount(inverse, weights=np.asarray(w, dtype=float), minlength=keys.size)
        keep = total > 0
        return cls(
            frame[list(inputs)].iloc[first[keep]].reset_index(drop=True),
            np.asarray(y)[first[keep]].astype(np.int8),
            total[keep],
        )

    def resampled(self, rng: np.random.Generator) -> Weighted:
        """A Poisson bootstrap replicate: each patient counted Poisson(1) times."""
        return Weighted(self.x, self.y, rng.poisson(self.w).astype(float))


@dataclass(frozen=True)
class Recalibration:
    """p' = expit(intercept + slope * logit(p)): logistic recalibration (Cox 1958)."""

    intercept: float = 0.0
    slope: float = 1.0

    def apply(self, p: np.ndarray) -> np.ndarray:
        return expit(self.intercept + self.slope * safe_logit(p))

    @classmethod
    def fit(cls, p: np.ndarray, y: np.ndarray, w: np.ndarray, *, with_slope: bool) -> Recalibration:
        lp = safe_logit(p)
        if with_slope:
            fit = LogisticRegression(C=np.inf, max_iter=1000).fit(lp.reshape(-1, 1), y, sample_weight=w)
            return cls(float(fit.intercept_[0]), float(fit.coef_[0, 0]))
        return cls(intercept_with_offset(lp, y, w), 1.0)


def safe_logit(p: np.ndarray) -> np.ndarray:
    return logit(np.clip(np.asarray(p, dtype=float), 1e-9, 1 - 1e-9))


def intercept_with_offset(lp: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Intercept a in logit P(y) = a + lp (lp as offset): calibration-in-the-large, by Newton's method."""
    a = 0.0
    for _ in range(50):
        p = expit(a + lp)
        gradient = float(np.sum(w * (y - p)))
        hessian = float(np.sum(w * p * (1 - p)))
        if hessian <= 0:
            break
        step = gradient / hessian
        a += step
        if abs(step) < 1e-10:
            break
    return a
