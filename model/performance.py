"""Live performance statistics with their uncertainty: is the model still calibrated, does it still rank?

Pure functions on weighted rows (y = 1 death, 0 survivor; p = predicted probability;
w = patients with that row), so a 13M-row file aggregated into per-combination counts
costs nothing here. Each returns a point estimate, a 95% interval and a p-value for
"the model is still as good as it was", which `model.monitor` combines into its verdict.

* Observed / expected deaths (calibration-in-the-large, the standardised mortality
  ratio): exact Poisson (Garwood) interval for the observed count divided by the
  expected count; two-sided exact Poisson test of O against E. Poisson rather than
  Poisson-binomial: slightly conservative when many probabilities are large.
* Calibration slope: logistic regression of y on logit(p) (Newton-Raphson on the
  weighted rows); Wald interval and test of slope = 1. A slope below 1 means the
  predictions are too extreme for these patients, above 1 too timid.
* ROC-AUC (scikit-learn, weighted) with the Hanley & McNeil (1982) standard error;
  one-sided test of "lower than the reference" (the model card's test ROC-AUC, taken as
  known). Hanley-McNeil assumes continuous scores; with a few thousand distinct scores
  it is approximate.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import chi2, norm, poisson
from sklearn.metrics import roc_auc_score

from model import schema

CONFIDENCE = 0.95
_Z = float(norm.ppf(0.5 + CONFIDENCE / 2))


def observed_expected(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> dict[str, float]:
    """{"observed", "expected", "ratio", "ci_low", "ci_high", "p_value"} for deaths among these rows."""
    observed = float(np.sum(w[y == 1]))
    expected = float(np.sum(w * p))
    if expected <= 0:
        raise ValueError("no deaths are expected (every probability is 0): observed/expected is undefined")
    alpha = 1 - CONFIDENCE
    low = chi2.ppf(alpha / 2, 2 * observed) / 2 if observed > 0 else 0.0
    high = chi2.ppf(1 - alpha / 2, 2 * observed + 2) / 2
    k = math.floor(observed)  # weights are patient counts, so observed is a whole number
    tail = min(poisson.cdf(k, expected), poisson.sf(k - 1, expected))
    return {
        "observed": observed,
        "expected": expected,
        "ratio": observed / expected,
        "ci_low": float(low / expected),
        "ci_high": float(high / expected),
        "p_value": float(min(1.0, 2 * tail)),
    }


def _log_likelihood(design: np.ndarray, beta: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    eta = design @ beta
    return float(np.sum(w * (y * eta - np.logaddexp(0.0, eta))))


def calibration_slope(y: np.ndarray, p: np.ndarray, w: np.ndarray, iterations: int = 100) -> dict[str, float]:
    """{"slope", "intercept", "se", "ci_low", "ci_high", "p_value"} of logit P(death) = a + b logit(p); H0: b = 1.

    Newton-Raphson with step halving (so probabilities of 0 or 1, clipped to logits of about ±21, cannot
    make it diverge), from the intercept-only fit.
    """
    clipped = np.clip(p, 1e-9, 1 - 1e-9)
    design = np.column_stack([np.ones_like(clipped), np.log(clipped / (1 - clipped))])
    mean = float(np.clip(np.sum(w * y) / np.sum(w), 1e-9, 1 - 1e-9))
    beta = np.array([math.log(mean / (1 - mean)), 0.0])
    current = _log_likelihood(design, beta, y, w)
    for _ in range(iterations):
        mu = expit(design @ beta)
        gradient = design.T @ (w * (y - mu))
        hessian = design.T @ (design * (w * mu * (1 - mu))[:, None])
        step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        for _ in range(30):  # halve the step until the likelihood does not fall
            candidate = _log_likelihood(design, beta + step, y, w)
            if candidate >= current - 1e-12:
                break
            step = step / 2
        beta, improvement, current = beta + step, candidate - current, candidate
        if np.max(np.abs(step)) < 1e-10 or abs(improvement) < 1e-12:
            break
    mu = expit(design @ beta)
    information = design.T @ (design * (w * mu * (1 - mu))[:, None])
    se = float(math.sqrt(max(np.linalg.pinv(information)[1, 1], 0.0)))
    slope = float(beta[1])
    return {
        "slope": slope,
        "intercept": float(beta[0]),
        "se": se,
        "ci_low": slope - _Z * se,
        "ci_high": slope + _Z * se,
        "p_value": float(2 * norm.sf(abs(slope - 1) / se)) if se > 0 else 1.0,
    }


def roc_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray, reference: float | None) -> dict[str, float | None]:
    """{"roc_auc", "se", "ci_low", "ci_high", "reference", "drop", "p_value"}; p_value of "lower than reference"."""
    auc = float(roc_auc_score(y, p, sample_weight=w))
    n1, n0 = float(np.sum(w[y == 1])), float(np.sum(w[y == 0]))
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0)
    se = math.sqrt(max(variance, 1e-12))
    out: dict[str, float | None] = {
        "roc_auc": auc,
        "se": se,
        "ci_low": max(0.0, auc - _Z * se),
        "ci_high": min(1.0, auc + _Z * se),
        "reference": reference,
        "drop": None,
        "p_value": None,
    }
    if reference is not None:
        out["drop"] = reference - auc
        out["p_value"] = float(norm.sf((reference - auc) / se))
    return out


def against_outcomes(
    death_yn: pd.Series, p: np.ndarray, threshold: float, reference_auc: float | None = None
) -> dict[str, Any] | None:
    """A scored file's predictions against the outcomes it records, or None when no row has one.

    Only rows whose `death_yn` is Yes or No count (any CDC spelling); Missing/Unknown outcomes are
    reported as `unknown`. {"known", "unknown", "deaths", "observed_expected", "roc_auc" (None
    with one class), "flagged", "recall", "precision"} at `threshold` (flag = p >= threshold).
    """
    outcome = death_yn.map(lambda v: schema.canonical_value(schema.TARGET, v) if isinstance(v, str) else None)
    known = outcome.isin([schema.TARGET_POSITIVE, schema.TARGET_NEGATIVE]).to_numpy()
    if not known.any():
        return None
    y = (outcome[known] == schema.TARGET_POSITIVE).to_numpy(dtype=np.int64)
    pk, w = np.asarray(p, dtype=float)[known], np.ones(int(known.sum()))
    flagged = pk >= threshold
    deaths = int(y.sum())
    return {
        "known": int(known.sum()),
        "unknown": int((~known).sum()),
        "deaths": deaths,
        "observed_expected": observed_expected(y, pk, w),
        "roc_auc": roc_auc(y, pk, w, reference_auc) if 0 < deaths < len(y) else None,
        "flagged": int(flagged.sum()),
        "recall": float(flagged[y == 1].mean()) if deaths else None,
        "precision": float(y[flagged].mean()) if flagged.any() else None,
    }
