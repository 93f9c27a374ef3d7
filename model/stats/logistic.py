"""Aggregated weighted patients and the logistic pieces every stage shares: logit, recalibration, bounds.

Training (`model.training`), evaluation (`model.stats.evaluate`) and updating all work on patients
aggregated to (inputs, outcome) rows with a patient count, and on probabilities through the logit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit

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
        """Maximum-likelihood recalibration of risks `p` to outcomes `y` (w patients per row).

        `with_slope=False` fits the intercept alone (calibration in the large, slope 1).
        """
        lp = safe_logit(p)
        if with_slope:
            intercept, slope = fit_logistic(y, w, np.column_stack([np.ones_like(lp), lp])).params
            return cls(float(intercept), float(slope))
        return cls(intercept_with_offset(lp, y, w), 1.0)


def safe_logit(p: np.ndarray) -> np.ndarray:
    return logit(np.clip(np.asarray(p, dtype=float), 1e-9, 1 - 1e-9))


def fit_logistic(
    y: np.ndarray, w: np.ndarray, design: np.ndarray, offset: np.ndarray | None = None, maxiter: int = 100
) -> Any:
    """Unpenalised logistic regression of `y` on `design` (plus `offset`), `w` patients per row: a fitted GLM.

    statsmodels' binomial GLM with frequency weights, so the standard errors (`.bse`) are those of the
    same data written one row per patient. Returns statsmodels' results (`.params`, `.bse`, `.llf`).
    Separated or rank-deficient data still give a fit whose standard errors say how little it knows,
    so statsmodels' warnings about them are not repeated to the user.
    """
    # Imported here: the dashboard imports this package's modules for functions that need no model
    # fit, and statsmodels costs it about 0.2 s.
    from statsmodels.genmod.families import Binomial
    from statsmodels.genmod.generalized_linear_model import GLM
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning, SingularMatrixWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (PerfectSeparationWarning, SingularMatrixWarning))
        return GLM(y, design, family=Binomial(), offset=offset, freq_weights=w).fit(maxiter=maxiter)


def intercept_with_offset(lp: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Intercept a in logit P(y) = a + lp (lp as offset): calibration-in-the-large."""
    return float(fit_logistic(y, w, np.ones((len(lp), 1)), offset=lp).params[0])
