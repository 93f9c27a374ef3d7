"""Live performance statistics with their uncertainty: is the model still calibrated, does it still rank?

Pure functions on weighted rows (y = 1 death, 0 survivor; p = predicted probability;
w = patients with that row), so a 13M-row file aggregated into per-combination counts
costs nothing here. Each returns a point estimate, a 95% interval and a p-value for
"the model is still as good as it was", which `model.monitoring.monitor` combines into its verdict.

* Observed / expected deaths (calibration-in-the-large, the standardised mortality
  ratio). O is a sum of Bernoulli outcomes, so its variance is the binomial sum
  Σ w p (1 - p), not Poisson's Σ w p: for high-risk groups Poisson is 1.3-1.65x too
  wide. Test of O = E: z = (O - E) / sqrt(Σ w p (1 - p)). Interval: ln(O/E) ± z·SE with
  SE = sqrt(Σ w q (1 - q)) / O, q = p·O/E (the risks scaled to the observed level).
* Calibration slope: logistic regression of y on logit(p) (a statsmodels binomial GLM on
  the weighted rows); Wald interval and test of slope = 1. A slope below 1 means the
  predictions are too extreme for these patients, above 1 too timid.
* ROC-AUC with the DeLong et al. (1988) standard error, computed exactly on the
  aggregated counts: the feature space is finite, so scores are tied and each distinct
  score is one group of deaths and survivors (ties count one half). Hanley-McNeil's
  formula assumes continuous scores and was 37% wider here. One-sided test of "lower
  than the reference" (the model card's test ROC-AUC, taken as known).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import chi2, norm

from model.core import schema
from model.stats.logistic import fit_logistic, safe_logit

CONFIDENCE = 0.95
_Z = float(norm.ppf(0.5 + CONFIDENCE / 2))


def observed_expected(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> dict[str, float]:
    """{"observed", "expected", "ratio", "ci_low", "ci_high", "se_log", "p_value"} for deaths among these rows.

    Binomial (Poisson-binomial) variance, see the module docstring. With no death the ratio is 0 and
    its upper limit is the exact Poisson one (3.69 / E): a log interval needs at least one death.
    """
    y, p, w = np.asarray(y), np.asarray(p, dtype=float), np.asarray(w, dtype=float)
    observed = float(np.sum(w[y == 1]))
    expected = float(np.sum(w * p))
    if expected <= 0:
        raise ValueError("no deaths are expected (every probability is 0): observed/expected is undefined")
    null_variance = float(np.sum(w * p * (1 - p)))
    z = (observed - expected) / math.sqrt(null_variance) if null_variance > 0 else 0.0
    ratio = observed / expected
    if observed > 0:
        q = np.clip(p * ratio, 0.0, 1.0)
        se_log = math.sqrt(max(float(np.sum(w * q * (1 - q))), 1e-12)) / observed
        low, high = ratio * math.exp(-_Z * se_log), ratio * math.exp(_Z * se_log)
    else:
        se_log, low, high = math.inf, 0.0, float(chi2.ppf(CONFIDENCE + (1 - CONFIDENCE) / 2, 2) / 2 / expected)
    return {
        "observed": observed,
        "expected": expected,
        "ratio": ratio,
        "ci_low": float(low),
        "ci_high": float(high),
        "se_log": float(se_log),
        "p_value": float(2 * norm.sf(abs(z))),
    }


def calibration_slope(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> dict[str, float]:
    """{"slope", "intercept", "se", "ci_low", "ci_high", "p_value"} of logit P(death) = a + b logit(p); H0: b = 1.

    A binomial GLM with `w` as frequency weights (`logistic.fit_logistic`): aggregated rows give the
    slope and standard error of one row per patient. Probabilities of 0 or 1 are clipped to logits of ±20.7.
    """
    lp = safe_logit(p)
    fit = fit_logistic(y, w, np.column_stack([np.ones_like(lp), lp]))
    intercept, slope = (float(v) for v in fit.params)
    se = float(fit.bse[1])
    return {
        "slope": slope,
        "intercept": intercept,
        "se": se,
        "ci_low": slope - _Z * se,
        "ci_high": slope + _Z * se,
        "p_value": float(2 * norm.sf(abs(slope - 1) / se)) if se > 0 else 1.0,
    }


def delong(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """ROC-AUC and its DeLong standard error on weighted rows (w = patients), ties counted one half.

    Rows are grouped by distinct score; each group's deaths share one structural component
    V10 = P(survivor score < s) + P(= s)/2, each group's survivors V01 = P(death score > s) + P(= s)/2.
    Var(AUC) = S10 / n1 + S01 / n0 with S the weighted sample variances of those components: the
    same number as DeLong on one row per patient (tests/test_monitor.py checks it by brute force).
    """
    y, w = np.asarray(y), np.asarray(w, dtype=float)
    scores, group = np.unique(np.asarray(p, dtype=float), return_inverse=True)
    pos = np.bincount(group, weights=w * (y == 1), minlength=scores.size)
    neg = np.bincount(group, weights=w * (y != 1), minlength=scores.size)
    n1, n0 = pos.sum(), neg.sum()
    if n1 <= 0 or n0 <= 0:
        raise ValueError("ROC-AUC needs both deaths and survivors")
    v10 = (np.cumsum(neg) - neg / 2) / n0  # survivors scored below (half of the tied)
    v01 = (n1 - np.cumsum(pos) + pos / 2) / n1  # deaths scored above (half of the tied)
    auc = float(np.sum(pos * v10) / n1)
    s10 = float(np.sum(pos * (v10 - auc) ** 2) / max(n1 - 1, 1))
    s01 = float(np.sum(neg * (v01 - auc) ** 2) / max(n0 - 1, 1))
    return auc, math.sqrt(max(s10 / n1 + s01 / n0, 1e-12))


def roc_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray, reference: float | None) -> dict[str, float | None]:
    """{"roc_auc", "se", "ci_low", "ci_high", "reference", "drop", "p_value"}; p_value of "lower than reference"."""
    auc, se = delong(y, p, w)
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


def expected_auc(p: np.ndarray, w: np.ndarray, intercept: float = 0.0, slope: float = 1.0) -> float:
    """Model-based concordance: the ROC-AUC these patients would give if expit(a + b logit(p)) were their true risk.

    Van Klaveren et al. (Stat Med 2016;35:4136): it moves with the case mix and the calibration slope
    only, so an observed ROC-AUC far below it means the ranking itself is wrong, while one that fell
    with it (a narrower case mix, a flatter slope) does not.
    """
    q = expit(intercept + slope * np.log(np.clip(p, 1e-9, 1 - 1e-9) / np.clip(1 - p, 1e-9, 1)))
    both = np.concatenate([np.asarray(p, dtype=float)] * 2)
    y = np.r_[np.ones(len(q)), np.zeros(len(q))]
    return delong(y, both, np.r_[w * q, w * (1 - q)])[0]


def against_outcomes(
    death_yn: pd.Series, p: np.ndarray, threshold: float, reference_auc: float | None = None
) -> dict[str, Any] | None:
    """A scored file's predictions against the outcomes it records, or None when no row has one.

    Only rows whose `death_yn` is Yes or No count (any CDC spelling); Missing/Unknown outcomes are
    reported as `unknown`. {"known", "unknown", "deaths", "observed_expected", "roc_auc",
    "calibration_slope", "roc_auc_expected" (None with one class), "flagged", "recall", "precision"}
    at `threshold` (flag = p >= threshold). The monitor's methods (binomial O/E, DeLong); `p` is
    each row's routed risk, so `reference_auc` should be the routed figure, not one model's.
    """
    outcome = death_yn.map(lambda v: schema.canonical_value(schema.TARGET, v) if isinstance(v, str) else None)
    known = outcome.isin([schema.TARGET_POSITIVE, schema.TARGET_NEGATIVE]).to_numpy()
    if not known.any():
        return None
    y = (outcome[known] == schema.TARGET_POSITIVE).to_numpy(dtype=np.int64)
    pk, w = np.asarray(p, dtype=float)[known], np.ones(int(known.sum()))
    flagged = pk >= threshold
    deaths = int(y.sum())
    both = 0 < deaths < len(y)
    slope = calibration_slope(y, pk, w) if both else None
    return {
        "known": int(known.sum()),
        "unknown": int((~known).sum()),
        "deaths": deaths,
        "observed_expected": observed_expected(y, pk, w),
        "roc_auc": roc_auc(y, pk, w, reference_auc) if both else None,
        "calibration_slope": slope,
        "roc_auc_expected": expected_auc(pk, w, slope["intercept"], slope["slope"]) if slope else None,
        "flagged": int(flagged.sum()),
        "recall": float(flagged[y == 1].mean()) if deaths else None,
        "precision": float(y[flagged].mean()) if flagged.any() else None,
    }
