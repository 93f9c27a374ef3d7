"""Fit one prediction model: select a candidate, recalibrate it, and tabulate every combination with an interval.

The input space of a model is finite (a few hundred to a few thousand
combinations), so the fitted model *is* its table: one row per combination with
the probability, a 95% interval, the training patients behind it and whether it
is extrapolated. Scoring, batch scoring and the dashboard read only that table.

Steps (each a function below):
1. candidates are fitted on the training split and compared on the validation
   split by log loss (a proper scoring rule), with the one-standard-error rule in
   favour of the simpler model (`select`);
2. the chosen model is recalibrated on the validation split by logistic
   recalibration, a + b * logit(p): smooth and monotone, so unlike isotonic steps it
   never outputs exactly 0 or 1 (`Recalibration`);
3. risk is made non-decreasing in age from 10-19 up within every combination of the
   other inputs (weighted isotonic regression over age, a no-op when the model
   already is) and kept inside [PROBABILITY_FLOOR, PROBABILITY_CEILING];
4. the 95% interval: for the logistic candidates, the Laplace approximation of the
   posterior (the L2 penalty is a standard-normal prior, so the posterior covariance
   is the inverse penalised Hessian) carried to each combination's logit by the delta
   method; for the trees, a Poisson bootstrap over patients (each aggregated row's
   weight redrawn as Poisson(patients)), refitting and recalibrating each time.
   Recalibration's own uncertainty (two parameters, fitted on tens of thousands of
   patients) is left out.
"""

from __future__ import annotations

import functools
import itertools
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from threadpoolctl import ThreadpoolController

from model.core import schema
from model.core.isotonic import pool_adjacent_violators
from model.core.risk_table import table_rows
from model.stats.logistic import (
    PROBABILITY_CEILING,
    PROBABILITY_FLOOR,
    Z95,
    Recalibration,
    Weighted,
    safe_logit,
)
from model.training.candidates import CANDIDATES

BOOTSTRAP_REPLICATES = 30
# Index name of a frame whose index is each row's position in its model's grid (`on_grid`).
GRID_ROW = "grid_row"
# A combination with fewer training (+ validation) patients than this is marked extrapolated.
EXTRAPOLATED_BELOW_PATIENTS = schema.EXTRAPOLATED_BELOW_PATIENTS
# Logistic recalibration estimates the slope only with enough events; else the intercept alone.
MIN_EVENTS_FOR_SLOPE = 100


@functools.cache
def _threadpools() -> ThreadpoolController:
    """The OpenMP / BLAS libraries this process has loaded, found once (each `threadpool_limits` call scans
    the process's memory map again: milliseconds, hundreds of times per training run)."""
    return ThreadpoolController()


def one_thread() -> Any:
    """A context in which OpenMP and BLAS run one thread (fits on a few thousand aggregated rows: on 2 shared
    cores their threads' spin-waits cost more than they save)."""
    return _threadpools().limit(limits=1)


def log_losses(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def grid(model: str, inputs: tuple[str, ...]) -> pd.DataFrame:
    """Every combination of a model's inputs, in table order."""
    values = [schema.model_values(model, c) for c in inputs]
    return pd.DataFrame(list(itertools.product(*values)), columns=list(inputs), dtype=object)


@functools.cache
def _design(model: str, inputs: tuple[str, ...], name: str) -> tuple[pd.DataFrame, Pipeline, np.ndarray]:
    """A model's grid, candidate `name`'s preprocessing fitted on it, and the grid transformed by it (once a run).

    Why this is the same as preprocessing each fit's rows: every candidate's encoders are given their
    categories up front (`candidates.py`), so fitting them depends on nothing in the data, and a row's
    encoding is its grid row's. A fit then only indexes this matrix; the preprocessing (pandas columns,
    one-hot, pairwise products) ran once per model instead of once per fit and prediction.
    """
    combos = grid(model, inputs).rename_axis(GRID_ROW)
    features = CANDIDATES[name](model, inputs, 0)[:-1]
    matrix = np.asarray(features.fit_transform(combos), dtype=float)
    return combos, features, matrix


def grid_frame(model: str) -> pd.DataFrame:
    """The model's grid (`grid` of its inputs), built once a run, its index named GRID_ROW: do not modify it."""
    return _design(model, schema.MODEL_FEATURES[model], next(iter(CANDIDATES)))[0]


def grid_rows(model: str, inputs: tuple[str, ...], frame: pd.DataFrame) -> np.ndarray:
    """Row of the model's grid (`grid`) for each row of `frame`: its index when `frame` comes from that grid."""
    if frame.index.name == GRID_ROW:  # rows of this model's grid (`on_grid`), filtered or not
        return frame.index.to_numpy()
    return table_rows(_design(model, inputs, next(iter(CANDIDATES)))[0], frame, inputs)


def on_grid(model: str, data: Weighted) -> Weighted:
    """The same patients, each row's inputs taken from the model's grid (index: the grid row, GRID_ROW).

    Why: a fit, a prediction and a bootstrap replicate all need each row's grid row; looking it up once
    here instead of in each of them saves a lookup per refit (hundreds in a training run).
    """
    if data.x.index.name == GRID_ROW:
        return data
    inputs = schema.MODEL_FEATURES[model]
    combos = _design(model, inputs, next(iter(CANDIDATES)))[0]
    return Weighted(combos.iloc[grid_rows(model, inputs, data.x)], data.y, data.w)


def _fit(name: str, model: str, inputs: tuple[str, ...], data: Weighted, seed: int) -> Pipeline:
    """Candidate `name` fitted on `data` (weights in patients): its fitted preprocessing and final estimator.

    The final estimator is fitted on the rows of the pre-transformed grid (`_design`), so the result equals
    fitting the whole pipeline on `data`.
    """
    estimator = CANDIDATES[name](model, inputs, seed)
    _, features, matrix = _design(model, inputs, name)
    keep = data.w > 0
    rows = grid_rows(model, inputs, data.x[keep])
    final = estimator[-1]
    # Few aggregated rows: OpenMP and BLAS threads cost more than they save on 2 shared cores.
    with one_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        final.fit(matrix[rows], data.y[keep], sample_weight=data.w[keep])
    return Pipeline([*features.steps, ("model", final)])


def grid_probabilities(estimator: Pipeline, model: str, name: str, inputs: tuple[str, ...]) -> np.ndarray:
    """The fitted candidate's probability for every combination of the model's grid, in grid order."""
    with one_thread():
        return estimator[-1].predict_proba(_design(model, inputs, name)[2])[:, 1]


# Runs `function(*args)` for each args tuple and returns the results in order; training hands its own,
# which runs them on both cores (`model.training.train.Background.map`).
Runner = Callable[[Callable[..., Any], list[tuple[Any, ...]]], list[Any]]


def run_here(function: Callable[..., Any], calls: list[tuple[Any, ...]]) -> list[Any]:
    """The default `Runner`: every call in this process, in order."""
    return [function(*args) for args in calls]


def select(
    model: str,
    inputs: tuple[str, ...],
    train: Weighted,
    validation: Weighted,
    names: list[str],
    seed: int,
    progress: Callable[[str], None],
) -> tuple[str, Pipeline, dict[str, dict[str, Any]], np.ndarray]:
    """Fit each candidate on train; pick by validation log loss with the one-standard-error rule.

    The best candidate's loss is the reference; the simplest candidate (earliest in
    CANDIDATES) whose mean loss exceeds it by at most one standard error of the
    per-patient difference is chosen, so a gap smaller than its noise never buys complexity.
    Returns the chosen name, its fitted pipeline, every candidate's figures and the chosen one's
    probability for each grid combination (`grid_probabilities`, before recalibration).
    """
    losses, fitted, raw, results = {}, {}, {}, {}
    rows = grid_rows(model, inputs, validation.x)
    for name in names:
        started = time.perf_counter()
        fitted[name] = _fit(name, model, inputs, train, seed)
        raw[name] = grid_probabilities(fitted[name], model, name, inputs)
        losses[name] = log_losses(validation.y, raw[name][rows])
        mean = float(np.average(losses[name], weights=validation.w))
        results[name] = {"log_loss": mean, "fit_seconds": round(time.perf_counter() - started, 3)}
    best = min(names, key=lambda n: results[n]["log_loss"])
    total = validation.w.sum()
    for name in names:
        diff = losses[name] - losses[best]
        mean_diff = float(np.average(diff, weights=validation.w))
        se = float(np.sqrt(np.average((diff - mean_diff) ** 2, weights=validation.w) / total))
        results[name].update({"excess_log_loss": mean_diff, "excess_se": se, "within_one_se": mean_diff <= se})
        progress(
            f"  {model} candidate {name}: validation log loss {results[name]['log_loss']:.5f} "
            f"(+{mean_diff:.5f} ± {se:.5f} vs best)"
        )
    chosen = next(n for n in names if results[n]["within_one_se"])
    return chosen, fitted[chosen], results, raw[chosen]


def monotone_in_age(table: pd.DataFrame, inputs: tuple[str, ...], column: str, weights: np.ndarray) -> np.ndarray:
    """`column` made non-decreasing over schema.MONOTONE_AGE_GROUPS within each stratum of the other inputs.

    Only strata that break the order are refitted (weighted isotonic regression); the check is one
    vectorised pass over the table, so a model whose risk already rises with age costs almost nothing.
    """
    values = table[column].to_numpy(dtype=float).copy()
    rank = table["age_group"].map({g: i for i, g in enumerate(schema.MONOTONE_AGE_GROUPS)}).to_numpy(dtype=float)
    rows = np.flatnonzero(~np.isnan(rank))
    others = [c for c in inputs if c != "age_group"]
    strata = (
        table.iloc[rows].groupby(others, sort=False, observed=True).ngroup().to_numpy()
        if others
        else np.zeros(rows.size, dtype=np.int64)
    )
    order = rows[np.lexsort((rank[rows], strata))]  # by stratum, then age
    stratum = np.sort(strata)
    falls = (np.diff(values[order]) < 0) & (stratum[1:] == stratum[:-1])
    for bad in np.unique(stratum[1:][falls]):
        members = order[stratum == bad]
        values[members] = pool_adjacent_violators(values[members], weights[members] + 1.0)
    return values


@dataclass
class FittedModel:
    """One prediction model as its table of every combination (see the module docstring)."""

    name: str
    inputs: tuple[str, ...]
    candidate: str
    selection: dict[str, dict[str, Any]]
    recalibration: Recalibration
    table: pd.DataFrame
    notes: dict[str, Any] = field(default_factory=dict)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Probability for each row of `frame` (canonical values of this model's inputs).

        The table holds the model's grid in order (`fit_model`), so a grid row is a table row.
        """
        return self.table["probability"].to_numpy()[grid_rows(self.name, self.inputs, frame)]


def fit_model(
    model: str,
    train: Weighted,
    validation: Weighted,
    *,
    seed: int,
    names: list[str] | None = None,
    replicates: int = BOOTSTRAP_REPLICATES,
    progress: Callable[[str], None] = lambda _: None,
    on_selected: Callable[[str], None] = lambda _: None,
    runner: Runner = run_here,
) -> FittedModel:
    """Select, recalibrate, constrain and bootstrap one model; return its table.

    `replicates=0` asks for no interval (ci_low = ci_high = probability): what the validation refits use.
    `on_selected(candidate)` is called as soon as the candidate is chosen, so training can start the
    validation refits of that candidate elsewhere while the intervals are computed here; `runner` runs
    the bootstrap refits (default: here, in order).
    """
    inputs = schema.MODEL_FEATURES[model]
    names = names or list(CANDIDATES)
    train, validation = on_grid(model, train), on_grid(model, validation)
    chosen, estimator, selection, uncalibrated = select(model, inputs, train, validation, names, seed, progress)
    on_selected(chosen)
    with_slope = validation.events >= MIN_EVENTS_FOR_SLOPE
    recal = Recalibration.fit(
        uncalibrated[grid_rows(model, inputs, validation.x)], validation.y, validation.w, with_slope=with_slope
    )
    combos = grid(model, inputs)
    support = _patients_per_combination(model, inputs, train, validation)
    raw = recal.apply(uncalibrated)
    intervals = replicates >= 1  # none for the period and temporal validation refits: they judge the risk only
    if not intervals:
        spread = np.zeros(len(combos))
    elif isinstance(estimator[-1], LogisticRegression):
        spread = abs(recal.slope) * posterior_logit_sd(estimator, model, chosen, train)
        replicates = 0
    else:
        spread = bootstrap_logit_sd(model, chosen, train, validation, with_slope, seed, replicates, runner)
    table = combos.copy()
    table["probability"] = raw
    table["probability"] = monotone_in_age(table, inputs, "probability", support)
    p = np.clip(table["probability"].to_numpy(), PROBABILITY_FLOOR, PROBABILITY_CEILING)
    centre = safe_logit(p)
    table["probability"] = p
    table["ci_low"] = np.clip(expit(centre - Z95 * spread), PROBABILITY_FLOOR, p)
    table["ci_high"] = np.clip(expit(centre + Z95 * spread), p, PROBABILITY_CEILING)
    table["train_patients"] = support
    table["extrapolated"] = support < EXTRAPOLATED_BELOW_PATIENTS
    if intervals:
        widen_extrapolated(table, inputs)
    notes = {
        "recalibration_with_slope": with_slope,
        "monotone_adjusted_combinations": int(
            np.sum(~np.isclose(raw, table["probability"]) & (raw > PROBABILITY_FLOOR) & (raw < PROBABILITY_CEILING))
        ),
        "clipped_combinations": int(np.sum((raw < PROBABILITY_FLOOR) | (raw > PROBABILITY_CEILING))),
        "bootstrap_replicates": replicates,
    }
    return FittedModel(model, inputs, chosen, selection, recal, table, notes)


def attach_recording(fitted: FittedModel, recording: Weighted, seed: int) -> None:
    """Add `train_cases` and `recorded_share` to a fitted model's table (in place).

    `recording` holds the training cases of the model's population labelled 1 when their outcome was
    recorded (death_yn Yes/No) and 0 when it never was (Missing/Unknown/NA). `recorded_share` is a
    pairwise logistic model of that label over the model's inputs (smooth, so a sparse combination
    borrows from its neighbours); `train_cases` counts every training case, recorded or not. The risk
    is conditional on a recorded outcome; probability x recorded_share is the risk counting every
    unrecorded case as a survival (`probability_if_unrecorded_survived`), never above the risk.
    """
    table = fitted.table
    estimator = _fit("logistic_pairwise", fitted.name, fitted.inputs, recording, seed)
    table["train_cases"] = _patients_per_combination(fitted.name, fitted.inputs, recording)
    share = grid_probabilities(estimator, fitted.name, "logistic_pairwise", fitted.inputs)  # table = grid order
    table["recorded_share"] = np.clip(share, 0.0, 1.0)
    fitted.notes["recording"] = {
        "model": "logistic_pairwise of outcome recorded (death_yn Yes/No) vs not, training cases",
        "cases": float(recording.w.sum()),
        "recorded": recording.events,
    }


def widen_extrapolated(table: pd.DataFrame, inputs: tuple[str, ...]) -> None:
    """Widen an extrapolated combination's interval to cover its supported neighbours' intervals (in place).

    A combination nobody like was seen (age "Unknown", sex "Other", ...) gets its risk from the model's
    structure, and a bootstrap cannot show how unsure that is: no data means no spread. Its interval is
    therefore stretched over the intervals of every supported combination that differs from it in one
    input: "this patient could be like any of these".
    """
    extrapolated = table["extrapolated"].to_numpy()
    sources = ~extrapolated
    low, high = table["ci_low"].to_numpy().copy(), table["ci_high"].to_numpy().copy()
    keys = {
        column: table.groupby([c for c in inputs if c != column], sort=False).ngroup().to_numpy()
        if len(inputs) > 1
        else np.zeros(len(table), dtype=int)
        for column in inputs
    }
    # Repeat so that a combination unsupported in two inputs borrows from neighbours widened in an earlier pass.
    for _ in inputs:
        reached = np.zeros(len(table), dtype=bool)
        new_low, new_high = low.copy(), high.copy()
        for key in keys.values():
            frame = pd.DataFrame(
                {
                    "key": key,
                    "low": np.where(sources, low, np.inf),
                    "high": np.where(sources, high, -np.inf),
                    "source": sources,
                }
            )
            grouped = frame.groupby("key")
            new_low = np.minimum(new_low, grouped["low"].transform("min").to_numpy())
            new_high = np.maximum(new_high, grouped["high"].transform("max").to_numpy())
            reached |= grouped["source"].transform("any").to_numpy()
        update = extrapolated & reached & ~sources
        if not update.any():
            break
        low[update], high[update] = new_low[update], new_high[update]
        sources = sources | update
    table["ci_low"] = np.minimum(low, table["probability"].to_numpy())
    table["ci_high"] = np.maximum(high, table["probability"].to_numpy())


def _patients_per_combination(model: str, inputs: tuple[str, ...], *parts: Weighted) -> np.ndarray:
    """Patients of `parts` per combination of the model's grid, in grid order."""
    size = len(_design(model, inputs, next(iter(CANDIDATES)))[0])
    support = np.zeros(size)
    for part in parts:
        support += np.bincount(grid_rows(model, inputs, part.x), weights=part.w, minlength=size)
    return support


def posterior_logit_sd(estimator: Pipeline, model: str, name: str, train: Weighted) -> np.ndarray:
    """Posterior standard deviation of each grid combination's logit under a fitted penalised logistic candidate.

    scikit-learn minimises 0.5 * ||beta||^2 + C * sum(w * logloss) (intercept unpenalised), so the
    negative log posterior's Hessian is C * X'VX + diag(0, 1, ..., 1) with V = w p (1 - p).
    """
    inputs = schema.MODEL_FEATURES[model]
    final, matrix = estimator[-1], _design(model, inputs, name)[2]
    keep = train.w > 0
    rows = grid_rows(model, inputs, train.x[keep])
    x = np.hstack([np.ones((rows.size, 1)), matrix[rows]])
    p = final.predict_proba(x[:, 1:])[:, 1]
    v = train.w[keep] * p * (1 - p)
    hessian = final.C * (x.T * v) @ x
    hessian[np.diag_indices_from(hessian)[0][1:], np.diag_indices_from(hessian)[1][1:]] += 1.0
    g = np.hstack([np.ones((len(matrix), 1)), matrix])
    # A few hundred coefficients (the race-aware pairwise model): one BLAS thread is several times faster
    # than many contending for 2 shared cores. Each row's g' C g is one matrix product and a row sum:
    # einsum("ij,jk,ik->i") looped without BLAS and took seconds on the race-aware model's combinations.
    with one_thread():
        covariance = np.linalg.pinv(hessian, hermitian=True)
        variance = np.sum((g @ covariance) * g, axis=1)
    return np.sqrt(np.maximum(variance, 0.0))


def bootstrap_weights(
    train: Weighted, validation: Weighted, seed: int, replicates: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each replicate's Poisson(patients) weights of the training and validation rows, drawn in replicate order.

    Drawn here, before any refit, so a replicate's data do not depend on where or when it is refitted.
    """
    rng = np.random.default_rng(seed)
    return [(train.resampled(rng).w, validation.resampled(rng).w) for _ in range(replicates)]


def bootstrap_replicate(
    model: str,
    name: str,
    train: Weighted,
    validation: Weighted,
    weights: tuple[np.ndarray, np.ndarray],
    with_slope: bool,
    seed: int,
) -> np.ndarray:
    """One replicate: candidate `name` refitted and recalibrated on reweighted patients; each combination's logit."""
    inputs = schema.MODEL_FEATURES[model]
    boot_train, boot_val = Weighted(train.x, train.y, weights[0]), Weighted(validation.x, validation.y, weights[1])
    estimator = _fit(name, model, inputs, boot_train, seed)
    uncalibrated = grid_probabilities(estimator, model, name, inputs)
    keep = boot_val.w > 0
    rows = grid_rows(model, inputs, boot_val.x[keep])
    recal = Recalibration.fit(uncalibrated[rows], boot_val.y[keep], boot_val.w[keep], with_slope=with_slope)
    return safe_logit(recal.apply(uncalibrated))


def bootstrap_logit_sd(
    model: str,
    name: str,
    train: Weighted,
    validation: Weighted,
    with_slope: bool,
    seed: int,
    replicates: int,
    runner: Runner = run_here,
) -> np.ndarray:
    """Standard deviation, on the logit scale, of each grid combination's risk over Poisson bootstrap replicates.

    Each replicate reweights the aggregated rows (`bootstrap_weights`) and refits; the replicates are
    independent, so `runner` may run them anywhere (training spreads them over both cores).
    """
    if replicates < 2:  # too few replicates for a standard deviation
        return np.zeros(len(grid(model, schema.MODEL_FEATURES[model])))
    weights = bootstrap_weights(train, validation, seed, replicates)
    calls = [(model, name, train, validation, weights[b], with_slope, seed + b) for b in range(replicates)]
    return np.vstack(runner(bootstrap_replicate, calls)).std(axis=0, ddof=1)
