"""Every answer of one fitted model, including its sub-models for inputs the clerk does not know.

A request may leave out any input but age ("not known"). The honest answer is then the
risk of all patients like this one whatever their true answer: the model's table averaged
over the omitted inputs, weighted by the training patients' distribution of those inputs
given the known ones,

    p_K(x_K) = sum_z n(x_K, z) p(x_K, z) / sum_z n(x_K, z),

with n the training (+ validation) patients with a recorded outcome per combination. A
stratum nobody was seen in falls back on the overall distribution of the omitted inputs
(a pseudo-count of one patient spread over it, negligible wherever patients exist).

Intervals: each bound is averaged with the same weights. That treats the cells' errors as
perfectly correlated, the widest case, so the interval is never narrower than the spread of
the weighted mean (and, with w = n / N, never narrower than a binomial refit on the
stratum's N patients would give, since sum_i sqrt(n_i) >= sqrt(N)). A sub-model answer with
fewer than 20 patients behind it is extrapolated and spans every combination it averages.

The low end of the outcome-recording range, `probability_if_unrecorded_survived`, is the
risk counting unrecorded outcomes as survivals: p x recorded_share per cell, averaged with
the weights of *all* training cases (recorded or not), and capped at the risk. Its interval
is the risk's interval times the same ratio.

Risk stays non-decreasing in age from 10-19 up within every sub-model (as in the full table).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from model.core import schema
from model.core.isotonic import pool_adjacent_violators
from model.serving import explain

# As in model/training/fitting.py: fewer training patients than this behind an answer marks it extrapolated.
EXTRAPOLATED_BELOW_PATIENTS = schema.EXTRAPOLATED_BELOW_PATIENTS
# The pseudo-count (in patients) of the fallback distribution of omitted inputs.
FALLBACK_PATIENTS = 1.0
ANSWER_COLUMNS = ("probability", "ci_low", "ci_high", "unrecorded", "unrecorded_low", "unrecorded_high")


def omittable(model: str) -> tuple[str, ...]:
    """Inputs of `model` a request may leave out and still be scored by it (not age, not what routes to it)."""
    return tuple(
        c
        for c in schema.MODEL_FEATURES[model]
        if c in schema.OPTIONAL_FIELDS and c not in schema.HOSPITAL_FIELDS and c != schema.RACE
    )


@dataclass
class ModelAnswers:
    """All answers of one model as tensors over its inputs; on an omittable input's axis the last digit = omitted.

    Arrays are flat in C order over `shape`; `contributions` has one column per input (0 where omitted).
    """

    model: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    answers: dict[str, np.ndarray]
    extrapolated: np.ndarray
    baseline: np.ndarray
    contributions: np.ndarray

    def used(self, position: int) -> tuple[str, ...]:
        """The inputs the answer at `position` used (those not omitted), in model order."""
        digits = np.unravel_index(position, self.shape)
        values = [len(schema.model_values(self.model, c)) for c in self.inputs]
        return tuple(c for c, d, n in zip(self.inputs, digits, values, strict=True) if d < n)


def _tensors(table: pd.DataFrame, model: str) -> dict[str, np.ndarray]:
    shape = tuple(len(schema.model_values(model, c)) for c in schema.MODEL_FEATURES[model])
    if "recorded_share" not in table.columns or "train_cases" not in table.columns:
        raise ValueError(
            f"the {model} risk table has no recorded_share/train_cases columns (a model from before the "
            "outcome-recording range); retrain it with python -m model.train"
        )
    columns = ("probability", "ci_low", "ci_high", "train_patients", "train_cases", "recorded_share", "extrapolated")
    return {c: table[c].to_numpy(dtype=float).reshape(shape) for c in columns}


def _average(values: np.ndarray, weight: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    return (values * weight).sum(axis=axes, keepdims=True) / weight.sum(axis=axes, keepdims=True)


def _with_fallback(counts: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Counts plus FALLBACK_PATIENTS spread over the overall distribution of the `axes` inputs."""
    kept = tuple(i for i in range(counts.ndim) if i not in axes)
    marginal = counts.sum(axis=kept, keepdims=True) if kept else counts
    total = marginal.sum()
    spread = marginal / total if total > 0 else np.full(marginal.shape, 1.0 / marginal.size)
    return counts + FALLBACK_PATIENTS * spread


def sub_answers(t: dict[str, np.ndarray], axes: tuple[int, ...], model: str) -> dict[str, np.ndarray]:
    """The sub-model that leaves out the inputs on `axes` (keepdims shape): answers, support, extrapolated."""
    if not axes:
        out = {c: t[c] for c in ("probability", "ci_low", "ci_high")}
        ratio = np.minimum(t["recorded_share"], 1.0)
        support, extrapolated = t["train_patients"], t["extrapolated"].astype(bool)
    else:
        known = _with_fallback(t["train_patients"], axes)
        out = {c: _average(t[c], known, axes) for c in ("probability", "ci_low", "ci_high")}
        everyone = _with_fallback(t["train_cases"], axes)
        recorded_death = _average(t["probability"] * t["recorded_share"], everyone, axes)
        ratio = np.minimum(recorded_death / out["probability"], 1.0)
        support = t["train_patients"].sum(axis=axes, keepdims=True)
        extrapolated = support < EXTRAPOLATED_BELOW_PATIENTS
        out["ci_low"] = np.where(extrapolated, t["ci_low"].min(axis=axes, keepdims=True), out["ci_low"])
        out["ci_high"] = np.where(extrapolated, t["ci_high"].max(axis=axes, keepdims=True), out["ci_high"])
        out["probability"] = _monotone(out["probability"], support)
    p = out["probability"]
    out["ci_low"], out["ci_high"] = np.minimum(out["ci_low"], p), np.maximum(out["ci_high"], p)
    out["unrecorded"] = p * ratio
    out["unrecorded_low"], out["unrecorded_high"] = out["ci_low"] * ratio, out["ci_high"] * ratio
    return {**out, "support": support, "extrapolated": extrapolated}


def _monotone(p: np.ndarray, support: np.ndarray) -> np.ndarray:
    """p (age on axis 0) made non-decreasing over schema.MONOTONE_AGE_GROUPS within every stratum of the rest.

    Weighted isotonic regression (`model.core.isotonic`, weights = patients + 1), the same fit model/training/fitting.py
    uses for the full tables; numpy only, so the scoring server never imports scikit-learn.
    """
    ages = list(schema.FEATURES_BY_NAME["age_group"].values)
    rows = [ages.index(a) for a in schema.MONOTONE_AGE_GROUPS]
    out = p.copy()
    flat, weight = out[rows].reshape(len(rows), -1), support[rows].reshape(len(rows), -1) + 1.0
    for j in np.flatnonzero((np.diff(flat, axis=0) < 0).any(axis=0)):
        flat[:, j] = pool_adjacent_violators(flat[:, j], weight[:, j])
    out[rows] = flat.reshape(out[rows].shape)
    return out


def model_answers(table: pd.DataFrame, model: str) -> ModelAnswers:
    """Every answer of `model`: the full table and each sub-model, scattered into one tensor with omitted digits."""
    inputs = schema.MODEL_FEATURES[model]
    if inputs[0] != "age_group":
        raise ValueError(f"{model}: age must be the first input (the monotone adjustment runs along axis 0)")
    t = _tensors(table, model)
    sizes = t["probability"].shape
    free = omittable(model)
    shape = tuple(n + (1 if c in free else 0) for c, n in zip(inputs, sizes, strict=True))
    answers = {c: np.zeros(shape) for c in ANSWER_COLUMNS}
    extrapolated = np.zeros(shape, dtype=bool)
    baseline = np.zeros(shape)
    contributions = np.zeros((*shape, len(inputs)))
    for k in range(len(free) + 1):
        for left_out in itertools.combinations(free, k):
            axes = tuple(inputs.index(c) for c in left_out)
            sub = sub_answers(t, axes, model)
            where = tuple(slice(n, n + 1) if i in axes else slice(0, n) for i, n in enumerate(sizes))
            for c in ANSWER_COLUMNS:
                answers[c][where] = sub[c]
            extrapolated[where] = sub["extrapolated"]
            kept = [i for i in range(len(inputs)) if i not in axes]
            squeeze = sub["probability"].reshape([sizes[i] for i in kept])
            base, shares = explain.tensor_shapley(squeeze, sub["support"].reshape(squeeze.shape))
            baseline[where] = base
            full = np.zeros((shares.shape[0], len(inputs)))
            full[:, kept] = shares
            contributions[where] = full.reshape((*sub["probability"].shape, len(inputs)))
    return ModelAnswers(
        model,
        inputs,
        shape,
        {c: a.reshape(-1) for c, a in answers.items()},
        extrapolated.reshape(-1),
        baseline.reshape(-1),
        contributions.reshape(-1, len(inputs)),
    )
