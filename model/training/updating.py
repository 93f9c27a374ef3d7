"""The statistics of updating one risk table on recent patients: four candidate updates and a closed test.

Pure functions on weighted rows (inputs `x`, outcome `y`, patients `w`) and the old
table's logit `lp` for each row; `model.training.recalibrate` reads the files and writes the
new version. The candidates (Steyerberg, Clinical Prediction Models, 2nd ed., ch. 20):

0. no update: logit = lp;
1. recalibration in the large: logit = a + lp (the level of risk moved);
2. logistic recalibration: logit = a + b lp (level and spread; the ranking is kept);
3. model revision: logit = a + b lp + X g, X the one-hot main effects of the model's
   inputs (one reference level each): every input's coefficient may move. The adopted
   revision is ridge-penalised on g (a prior centred on the old coefficients, strength
   chosen by cross-validated log loss), so few deaths move it little.

Refitting from scratch is `python -m model.train` on the recent file.

The choice is Vergouwe et al.'s closed test (Stat Med 2017;36:4529): likelihood-ratio
tests of the largest model (3, unpenalised) against 0, then 1, then 2, each at ALPHA;
the first that is *not* rejected is chosen (so the family-wise error is ALPHA). The AIC
variant picks the smallest AIC instead. Below MIN_EVENTS_FULL events only 0 and 1 are
compared; below MIN_EVENTS nothing is updated (Riley et al., Stat Med 2021;40:4230,
ask 100-200 events to estimate calibration: at 100 deaths the intercept alone has a
logit SD of about 0.14, at 20 about 0.28, three times a typical interval's width).

The fits are statsmodels GLMs (binomial, frequency weights, offsets), whose log likelihoods
and covariances the test and the intervals use; the ridge revision is a Newton fit here,
with its Laplace covariance (inverse penalised Hessian).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import chi2
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from model.core import schema
from model.stats.logistic import fit_logistic

NO_UPDATE = "no update"
IN_THE_LARGE = "recalibration in the large"
LOGISTIC = "logistic recalibration"
REVISION = "model revision"
METHODS = (NO_UPDATE, IN_THE_LARGE, LOGISTIC, REVISION)

ALPHA = 0.05  # each closed-test step (Vergouwe et al. 2017)
MIN_EVENTS = 100  # fewer deaths (or survivors): no update at all (Riley et al. 2021: 100-200 for calibration)
MIN_EVENTS_FULL = 200  # fewer: only recalibration in the large is considered
RIDGE_GRID = tuple(float(v) for v in np.logspace(-1, 4, 11))  # ridge strengths tried for the revision
CV_FOLDS = 5


@dataclass
class Fit:
    """One fitted update: coefficients over its design columns, their covariance and the log likelihood."""

    method: str
    params: np.ndarray  # [a, b, g...] as far as the method has them
    cov: np.ndarray
    loglik: float
    df: int  # parameters estimated (the design's rank)
    ridge: float | None = None
    notes: dict[str, float] = field(default_factory=dict)

    @property
    def intercept(self) -> float:
        return float(self.params[0]) if self.params.size >= 1 else 0.0

    @property
    def slope(self) -> float:
        return float(self.params[1]) if self.params.size >= 2 else 1.0


def design(x: pd.DataFrame, model: str, columns: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """One-hot main effects of `model`'s inputs, one reference level (the first) dropped per input.

    With `columns` (names "input=value" from an earlier call), exactly those columns in that order.
    """
    blocks, names = [], []
    for feature in schema.MODEL_FEATURES[model]:
        for value in schema.model_values(model, feature)[1:]:
            name = f"{feature}={value}"
            if columns is None or name in columns:
                blocks.append((x[feature].astype(str).to_numpy() == value).astype(float))
                names.append(name)
    if columns is not None:
        order = [names.index(c) for c in columns]
        blocks, names = [blocks[i] for i in order], list(columns)
    matrix = np.column_stack(blocks) if blocks else np.zeros((len(x), 0))
    return matrix, names


def informative_columns(matrix: np.ndarray, names: list[str], y: np.ndarray, w: np.ndarray) -> list[str]:
    """Columns holding both deaths and survivors (others cannot be estimated, only diverge)."""
    deaths = (matrix * (w * (y == 1))[:, None]).sum(axis=0)
    survivors = (matrix * (w * (y == 0))[:, None]).sum(axis=0)
    return [n for n, d, s in zip(names, deaths, survivors, strict=True) if d > 0 and s > 0]


def _glm(z: np.ndarray | None, lp: np.ndarray, y: np.ndarray, w: np.ndarray, method: str) -> Fit:
    """Unpenalised maximum-likelihood fit with `lp` as offset (statsmodels GLM, frequency weights)."""
    if z is None or z.shape[1] == 0:
        p = expit(lp)
        loglik = float(np.sum(w * (y * np.log(p) + (1 - y) * np.log1p(-p))))
        return Fit(method, np.zeros(0), np.zeros((0, 0)), loglik, 0)
    with warnings.catch_warnings():  # fit_logistic already silences separation and singular-matrix warnings
        warnings.simplefilter("ignore", (ConvergenceWarning, RuntimeWarning))
        result = fit_logistic(y, w, z, offset=lp, maxiter=200)
    # Degrees of freedom are the design's rank: an old logit that is itself additive in the inputs makes
    # the revision's slope and main effects collinear, and counting columns would overstate the test's df.
    rank = int(np.linalg.matrix_rank(z * np.sqrt(w)[:, None]))
    return Fit(method, np.asarray(result.params), np.asarray(result.cov_params()), float(result.llf), rank)


def candidate_fits(lp: np.ndarray, matrix: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict[str, Fit]:
    """The four updates fitted by maximum likelihood (the revision unpenalised: the closed test's largest model).

    Logistic recalibration is fitted as a + (b - 1) lp with lp as offset, then reported as b.
    """
    ones = np.ones((len(lp), 1))
    fits = {
        NO_UPDATE: _glm(None, lp, y, w, NO_UPDATE),
        IN_THE_LARGE: _glm(ones, lp, y, w, IN_THE_LARGE),
        LOGISTIC: _glm(np.hstack([ones, lp[:, None]]), lp, y, w, LOGISTIC),
        REVISION: _glm(np.hstack([ones, lp[:, None], matrix]), lp, y, w, REVISION),
    }
    for name in (LOGISTIC, REVISION):
        fits[name].params[1] += 1.0  # offset + (b - 1) lp = b lp
    return fits


def closed_test(fits: dict[str, Fit], allowed: tuple[str, ...], alpha: float = ALPHA) -> tuple[str, list[dict]]:
    """Vergouwe's closed test among `allowed` methods: the largest against each smaller one in turn.

    Returns the choice and the steps ({"compare", "lr", "df", "p_value", "rejected"}). The first
    smaller model the test does not reject is chosen; when all are rejected, the largest.
    """
    largest = allowed[-1]
    steps, top = [], fits[largest]
    for smaller in allowed[:-1]:
        lr = max(2 * (top.loglik - fits[smaller].loglik), 0.0)
        df = top.df - fits[smaller].df
        p = float(chi2.sf(lr, df))
        steps.append(
            {"compare": f"{largest} vs {smaller}", "lr": lr, "df": df, "p_value": p, "rejected": bool(p < alpha)}
        )
        if p >= alpha:
            return smaller, steps
    return largest, steps


def aic_choice(fits: dict[str, Fit], allowed: tuple[str, ...]) -> tuple[str, list[dict]]:
    """The AIC variant: the allowed method with the smallest AIC = 2 df - 2 loglik."""
    aic = {m: 2 * fits[m].df - 2 * fits[m].loglik for m in allowed}
    steps: list[dict] = [{"method": m, "aic": aic[m], "df": fits[m].df} for m in allowed]
    return min(allowed, key=lambda m: aic[m]), steps


def ridge_newton(
    z: np.ndarray, lp: np.ndarray, y: np.ndarray, w: np.ndarray, penalty: np.ndarray, iterations: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Maximise sum w loglik(y | lp + z beta) - beta' diag(penalty) beta / 2; return beta and its Laplace covariance."""
    beta = np.zeros(z.shape[1])
    for _ in range(iterations):
        mu = expit(lp + z @ beta)
        gradient = z.T @ (w * (y - mu)) - penalty * beta
        hessian = (z.T * (w * mu * (1 - mu))) @ z + np.diag(penalty)
        step = np.linalg.solve(hessian + 1e-10 * np.eye(len(beta)), gradient)
        beta += step
        if np.max(np.abs(step)) < 1e-9:
            break
    mu = expit(lp + z @ beta)
    hessian = (z.T * (w * mu * (1 - mu))) @ z + np.diag(penalty)
    return beta, np.linalg.pinv(hessian, hermitian=True)


def fold_weights(w: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Patients of each weighted row dealt out over `folds` (rows x folds), as the training split does."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(np.round(w).astype(np.int64), np.full(folds, 1 / folds)).astype(float)


def _revision_design(lp: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[1, lp, X] and the ridge mask (intercept and slope are not penalised)."""
    z = np.hstack([np.ones((len(lp), 1)), lp[:, None], matrix])
    mask = np.r_[0.0, 0.0, np.ones(matrix.shape[1])]
    return z, mask


def ridge_revision(lp: np.ndarray, matrix: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int = 0) -> Fit:
    """Model revision shrunk toward the old model: ridge strength by CV_FOLDS-fold cross-validated log loss."""
    z, mask = _revision_design(lp, matrix)
    parts = fold_weights(w, CV_FOLDS, seed)
    losses = []
    for strength in RIDGE_GRID:
        loss = 0.0
        for k in range(CV_FOLDS):
            beta, _ = ridge_newton(z, np.zeros_like(lp), y, w - parts[:, k], strength * mask)
            p = np.clip(expit(z @ beta), 1e-12, 1 - 1e-12)
            loss -= float(np.sum(parts[:, k] * (y * np.log(p) + (1 - y) * np.log1p(-p))))
        losses.append(loss)
    strength = RIDGE_GRID[int(np.argmin(losses))]
    beta, cov = ridge_newton(z, np.zeros_like(lp), y, w, strength * mask)
    p = np.clip(expit(z @ beta), 1e-12, 1 - 1e-12)
    loglik = float(np.sum(w * (y * np.log(p) + (1 - y) * np.log1p(-p))))
    return Fit(REVISION, beta, cov, loglik, z.shape[1], ridge=strength)


def update_logit(fit: Fit, lp: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The updated logit for rows with old logit `lp` and design `matrix`, and its SD from the update alone.

    The SD is the delta method over the update's own coefficients (their covariance), the old
    logit taken as given: `model.training.recalibrate` adds the old interval's spread (times the slope).
    """
    if fit.params.size == 0:
        return lp.copy(), np.zeros_like(lp)
    z = np.hstack([np.ones((len(lp), 1)), lp[:, None], matrix])[:, : fit.params.size]
    shift = z @ fit.params  # a; a + b lp; a + b lp + X g
    eta = lp + shift if fit.method == IN_THE_LARGE else shift
    return eta, np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", z, fit.cov, z), 0.0))


def refit(method: str, lp: np.ndarray, matrix: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int = 0) -> Fit:
    """Fit `method` as it is adopted (the revision ridge-penalised, the others by maximum likelihood)."""
    if method == REVISION:
        return ridge_revision(lp, matrix, y, w, seed)
    ones = np.ones((len(lp), 1))
    if method == NO_UPDATE:
        return _glm(None, lp, y, w, NO_UPDATE)
    if method == IN_THE_LARGE:
        return _glm(ones, lp, y, w, IN_THE_LARGE)
    fit = _glm(np.hstack([ones, lp[:, None]]), lp, y, w, LOGISTIC)
    fit.params[1] += 1.0
    return fit


def cross_validated_logit(
    method: str, lp: np.ndarray, matrix: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-sample updated logits: each fold's patients predicted by `method` fitted on the other folds.

    Returns (logit per row and fold, patients per row and fold), for "O/E after" judged out of sample.
    """
    parts = fold_weights(w, CV_FOLDS, seed + 1)
    logits = np.empty_like(parts)
    for k in range(CV_FOLDS):
        fit = refit(method, lp, matrix, y, w - parts[:, k], seed)
        logits[:, k] = update_logit(fit, lp, matrix)[0]
    return logits, parts
