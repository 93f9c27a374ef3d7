"""What the card reports beyond test metrics: period, outcome coverage, ICU need, temporal validation.

Each function takes the loader's counts table (or the fitted models) and returns
plain dicts and DataFrames for the card and the evaluation tables.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from model.core import schema
from model.data.loader import CASE_MONTH, INTAKE_POPULATION
from model.stats import evaluate
from model.training import period_validation
from model.training.candidates import CANDIDATES
from model.training.fitting import GRID_ROW, FittedModel, Weighted, fit_model, table_rows
from model.training.splits import Split, first_appearance_groups, split_unknown_outcomes

UNKNOWN_MONTH = "unknown"
# Temporal validation: the latest months holding at most this share of patients are the test period.
TEMPORAL_TEST_SHARE = 0.3
MIN_TEMPORAL_TEST_DEATHS = 100
MIN_TEMPORAL_TRAIN_DEATHS = 150
ICU_MODEL = "logistic_main_effects"


def _month_name(month: str) -> str:
    return pd.Period(month, freq="M").strftime("%b %Y")


def period_summary(counts: pd.DataFrame, *, synthetic: bool) -> dict[str, Any]:
    """The months the intake patients come from, deaths per month, and one line saying it."""
    rows = counts[counts[INTAKE_POPULATION]]
    by_month = rows.groupby(CASE_MONTH)[["deaths", "survivors", "unknown_outcome"]].sum().sort_index()
    dated = by_month.drop(index=UNKNOWN_MONTH, errors="ignore")
    table = by_month.reset_index().rename(columns={CASE_MONTH: "month"})
    known = table["deaths"] + table["survivors"]
    table["case_fatality"] = np.where(known > 0, table["deaths"] / known.where(known > 0, 1), np.nan)
    source = "synthetic CDC-like cases" if synthetic else "real CDC cases"
    if dated.empty:
        return {
            "description": f"{source}, case dates unknown",
            "first_month": None,
            "last_month": None,
            "central_90": None,
            "table": table,
        }
    patients = (dated["deaths"] + dated["survivors"]).to_numpy(dtype=float)
    share = np.cumsum(patients) / patients.sum()
    months = dated.index.to_list()
    low, high = months[int(np.searchsorted(share, 0.05))], months[int(np.searchsorted(share, 0.95))]
    span = _month_name(low) if low == high else f"{_month_name(low)} to {_month_name(high)}"
    return {
        "description": f"{source}, case dates {span} (90% of patients with a known outcome)",
        "first_month": months[0],
        "last_month": months[-1],
        "central_90": [low, high],
        "table": table,
    }


def outcome_known(counts: pd.DataFrame) -> pd.DataFrame:
    """Share of rows dropped for an unknown outcome, per age group and per case month."""
    frames = []
    for column in ("age_group", CASE_MONTH):
        grouped = counts.groupby(column)[["deaths", "survivors", "unknown_outcome"]].sum()
        rows = grouped.sum(axis=1)
        frames.append(
            pd.DataFrame(
                {
                    "column": column,
                    "value": grouped.index.astype(str),
                    "rows": rows.to_numpy(),
                    "unknown_outcome": grouped["unknown_outcome"].to_numpy(),
                    "share_dropped": (grouped["unknown_outcome"] / rows).to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


# ICU admissions per reported case: two ends of what the data allow (see icu_need).
ICU_ENDS: dict[str, str] = {
    "lower": "an unrecorded ICU answer (Missing/Unknown) counts as not admitted",
    "upper": "an unrecorded ICU answer is like the recorded ones of patients with the same intake answers and the "
    "same hospitalisation answer",
}


def reported_cases(known: Split, unknown: pd.DataFrame) -> pd.DataFrame:
    """Every reported case of one split, known outcome or not: SPLIT_COLUMNS and `w` (patients)."""
    return pd.concat([known.frame.assign(w=known.w), unknown], ignore_index=True)


def _fit_icu(frame: pd.DataFrame, inputs: tuple[str, ...], seed: int) -> Any:
    """Logistic main effects of icu_yn == "Yes" on `inputs`, weighted by patients."""
    data = Weighted.collapse(frame, (frame["icu_yn"] == "Yes").to_numpy(np.int8), frame["w"].to_numpy(float), inputs)
    model = CANDIDATES[ICU_MODEL](schema.INTAKE_MODEL, inputs, seed)
    return model.fit(data.x, data.y, model__sample_weight=data.w)


def _flagged_sums(score: np.ndarray, w: np.ndarray, values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per threshold t, the patient-weighted sums of `values` columns over patients with score >= t.

    `values` is (patients, k); returns (thresholds, k). Column 0 of `values` should be ones (patients flagged).
    """
    order = np.argsort(-score, kind="stable")
    cumulative = np.cumsum(w[order, None] * values[order], axis=0)
    flagged_n = np.searchsorted(-score[order], -thresholds, side="right")
    return np.where(flagged_n[:, None] > 0, cumulative[np.maximum(flagged_n - 1, 0)], 0.0)


def _rate(part: np.ndarray, size: np.ndarray) -> np.ndarray:
    """part / size, 0 for an empty group (always multiplied by that group's size, which is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(size > 0, part / np.where(size > 0, size, 1.0), 0.0)


def _death_columns(intake: FittedModel, test: Split, thresholds: np.ndarray) -> dict[str, np.ndarray]:
    """Flagged share, recall and death rates among the test split's patients with a known outcome."""
    values = np.column_stack([np.ones(len(test.w)), test.y])
    sums = _flagged_sums(intake.predict(test.frame), test.w, values, thresholds)
    fw, fd = sums[:, 0], sums[:, 1]
    total_w, total_d = test.patients, test.deaths
    return {
        "flagged_share": fw / total_w,
        "recall": fd / total_d if total_d else np.zeros(len(thresholds)),
        "death_rate_flagged": _rate(fd, fw),
        "death_rate_unflagged": _rate(total_d - fd, total_w - fw),
    }


def _icu_columns(
    score: np.ndarray, cases: pd.DataFrame, p: dict[str, np.ndarray], thresholds: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Share of all reported test cases flagged, and each end's ICU admissions per flagged / unflagged case."""
    w = cases["w"].to_numpy(float)
    values = np.column_stack([np.ones(len(w)), p["lower"], p["upper"]])
    sums = _flagged_sums(score, w, values, thresholds)
    totals = (w[:, None] * values).sum(axis=0)
    fw, rest = sums[:, 0], totals[0] - sums[:, 0]
    columns = {"case_flagged_share": fw / totals[0]}
    for k, suffix in enumerate(("", "_upper"), start=1):  # lower end, upper end
        columns[f"icu_rate_flagged{suffix}"] = _rate(sums[:, k], fw)
        columns[f"icu_rate_unflagged{suffix}"] = _rate(totals[k] - sums[:, k], rest)
    return columns, totals[1:] / totals[0]


def icu_need(
    counts: pd.DataFrame,
    intake: FittedModel,
    splits: tuple[Split, ...],
    thresholds: pd.DataFrame,
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """ICU admissions per reported case at both ends of what the data allow, per threshold of the intake model.

    Why two ends: icu_yn is recorded (Yes/No) for a minority of cases, mostly hospitalised ones, so its
    Yes share among recorded answers (about 22% in the first-wave file) is far above CDC's 2% of all
    cases (MMWR 2020;69(24)). The lower end counts an unrecorded answer as "not admitted" (Yes among
    all cases); the upper end assumes unrecorded answers are like recorded ones with the same intake
    answers and hospitalisation answer. Both ICU models are fitted on the training split only: every
    reported intake-population case, known outcome or not (`splits.split_unknown_outcomes`, the split the
    recording share is learned on). The table is computed on the test split: flagged share, recall and
    death rates among its known outcomes (as thresholds.csv), ICU rates among all its reported cases.
    """
    unknown = split_unknown_outcomes(counts, seed)
    train, test = reported_cases(splits[0], unknown[0]), reported_cases(splits[2], unknown[2])
    recorded = train[train["icu_yn"].isin(schema.HOSPITAL_KNOWN_VALUES)]
    yes = float(train.loc[train["icu_yn"] == "Yes", "w"].sum())
    if yes == 0 or yes == float(recorded["w"].sum()):
        return {"model": None, "reason": "no training patient with icu_yn Yes and No", "known_icu_patients": 0}, None
    inputs = schema.MODEL_FEATURES[schema.INTAKE_MODEL]
    upper_inputs = (*inputs, "hosp_yn")
    # Below, only the upper end's inputs matter: the test cases' distinct rows of them, not every case's row.
    rows, first = first_appearance_groups(test[list(upper_inputs)])
    test = test.iloc[first][list(upper_inputs)].assign(w=np.bincount(rows, weights=test["w"].to_numpy(float)))
    p = {
        "lower": _fit_icu(train, inputs, seed).predict_proba(test[list(inputs)])[:, 1],
        "upper": _fit_icu(recorded, upper_inputs, seed).predict_proba(test[list(upper_inputs)])[:, 1],
    }
    grid = thresholds["threshold"].to_numpy(dtype=float)
    icu_columns, per_case = _icu_columns(intake.predict(test), test, p, grid)
    known_test = splits[2].collapsed(list(inputs))
    table = pd.DataFrame({"threshold": grid, **_death_columns(intake, known_test, grid), **icu_columns})
    train_cases = float(train["w"].sum())
    card = {
        "model": f"{ICU_MODEL}: icu_yn Yes against everything else (lower end) and Yes vs No among recorded answers "
        "(upper end)",
        "fitted_on": "training split: every reported intake-population case, known outcome or not",
        "train_cases": int(train_cases),
        "known_icu_patients": int(recorded["w"].sum()),  # training cases with a recorded ICU answer
        "icu_rate": yes / float(recorded["w"].sum()),  # Yes among recorded answers: NOT a rate per reported case
        "icu_yes_per_case_train": yes / train_cases,
        "test_cases": int(test["w"].sum()),
        "ends": {
            end: {"assumption": ICU_ENDS[end], "inputs": list(names), "icu_per_case_test": float(per_case[k])}
            for k, (end, names) in enumerate((("lower", inputs), ("upper", upper_inputs)))
        },
    }
    return card, table


def recording_summary(known: tuple[Split, ...], unknown: tuple[pd.DataFrame, ...]) -> dict[str, Any]:
    """How many intake-population cases ever had their outcome recorded, and the two death rates that brackets.

    Every split together (train, validation, test): the whole intake population of the file.
    """
    deaths = sum(split.deaths for split in known)
    recorded = sum(split.patients for split in known)
    cases = recorded + sum(float(frame["w"].sum()) for frame in unknown)
    return {
        "cases": cases,
        "recorded": recorded,
        "recorded_share": recorded / cases if cases else None,
        "deaths": deaths,
        "death_rate_recorded": deaths / recorded if recorded else None,
        "death_rate_unrecorded_as_survived": deaths / cases if cases else None,
    }


def temporal_validation(counts: pd.DataFrame, *, seed: int, names: list[str] | None = None) -> dict[str, Any]:
    """Train the intake model on earlier months and test it on the latest ones, when the data allow it.

    `counts`: the intake model's dated patients per (inputs, case month) (`period_validation.model_counts`),
    so, like the leave-one-month-out refits, it costs what the combinations cost, not the rows; the
    earlier months' patients are dealt 75/25 into fit and recalibration parts (`period_validation.dealt`).
    """
    by_month = counts.groupby(CASE_MONTH, observed=True)[["deaths", "survivors"]].sum().sort_index()
    if len(by_month) < 2:
        return {"performed": False, "reason": "the cases span fewer than two months"}
    patients = by_month.sum(axis=1).to_numpy(dtype=float)
    later_share = 1 - np.cumsum(patients) / patients.sum()  # share of patients after each month
    cut = int(np.argmax(later_share <= TEMPORAL_TEST_SHARE))
    train_months, test_months = by_month.index[: cut + 1], by_month.index[cut + 1 :]
    test_deaths = int(by_month.loc[test_months, "deaths"].sum())
    train_deaths = int(by_month.loc[train_months, "deaths"].sum())
    if len(test_months) == 0 or test_deaths < MIN_TEMPORAL_TEST_DEATHS or train_deaths < MIN_TEMPORAL_TRAIN_DEATHS:
        return {
            "performed": False,
            "reason": f"too few deaths to split by time ({train_deaths} before and {test_deaths} after "
            f"{train_months[-1]}; at least {MIN_TEMPORAL_TRAIN_DEATHS} and {MIN_TEMPORAL_TEST_DEATHS} are needed)",
        }
    model = schema.INTAKE_MODEL
    earlier = counts[counts[CASE_MONTH].isin(train_months)]
    fit_part, recal_part = period_validation.dealt(earlier, model, np.random.default_rng(seed), (0.75, 0.25))
    fitted = fit_model(model, fit_part, recal_part, seed=seed, names=names, replicates=0)
    later = counts[counts[CASE_MONTH].isin(test_months)]
    part = period_validation.on_grid_counts(
        model, later[GRID_ROW].to_numpy(), later["deaths"].to_numpy(), later["survivors"].to_numpy()
    )
    scores = fitted.predict(part.x)
    metrics = evaluate.summary_metrics(part.y, scores, part.w)
    return {
        "performed": True,
        "train_months": [train_months[0], train_months[-1]],
        "test_months": [test_months[0], test_months[-1]],
        "candidate": fitted.candidate,
        "test_patients": metrics["patients"],
        "test_deaths": metrics["deaths"],
        "roc_auc": metrics["roc_auc"],
        "observed_expected": evaluate.observed_expected(part.y, scores, part.w),
        "calibration_line": evaluate.calibration_line(part.y, scores, part.w),
    }


def model_summary(fitted: FittedModel, metrics: dict[str, Any], splits: tuple[Split, ...]) -> dict[str, Any]:
    """A model's entry in the card: inputs, selection, recalibration, table facts, splits and test metrics."""
    table = fitted.table
    return {
        "label": schema.MODEL_LABELS[fitted.name],
        "inputs": list(fitted.inputs),
        "candidate": fitted.candidate,
        "selection": {
            "metric": "log_loss",
            "split": "validation",
            "rule": "one standard error: the simplest candidate within one SE of the best",
            "chosen": fitted.candidate,
            "candidates": fitted.selection,
        },
        "recalibration": {
            "method": "logistic",
            "intercept": fitted.recalibration.intercept,
            "slope": fitted.recalibration.slope,
        },
        "notes": fitted.notes,
        "combinations": len(table),
        "extrapolated_combinations": int(table["extrapolated"].sum()),
        "probability_range": [float(table["probability"].min()), float(table["probability"].max())],
        "splits": {
            name: split.for_model(fitted.name).summary()
            for name, split in zip(("train", "validation", "test"), splits, strict=True)
        },
        "metrics": {"test": metrics},
    }


def routed_probabilities(fitted: dict[str, FittedModel], frame: pd.DataFrame) -> np.ndarray:
    """Each row's risk from the model that would score it (schema.model_for), as the endpoint does."""
    hospital = np.ones(len(frame), dtype=bool)
    for column in schema.HOSPITAL_FIELDS:
        hospital &= frame[column].isin(schema.HOSPITAL_KNOWN_VALUES).to_numpy()
    out = np.empty(len(frame))
    for model, mask in ((schema.IN_HOSPITAL_MODEL, hospital), (schema.INTAKE_MODEL, ~hospital)):
        if mask.any():
            part = fitted[model]
            out[mask] = part.table["probability"].to_numpy()[table_rows(part.table, frame[mask], part.inputs)]
    return out


def training_distribution(train: Split, fitted: dict[str, FittedModel]) -> dict[str, Any]:
    """What the models were trained on, for drift monitoring: category shares and the risk histogram.

    Computed on the training split's patients with a known outcome (the monitor compares
    like with like: known-outcome rows against this reference).
    """
    train = train.collapsed(list(schema.MODEL_INPUTS))  # the same shares and histogram from far fewer rows
    total = train.w.sum()
    features = {}
    for name in schema.MODEL_INPUTS:
        shares = pd.Series(train.w).groupby(train.frame[name].to_numpy()).sum() / total
        features[name] = {v: float(shares.get(v, 0.0)) for v in schema.FEATURES_BY_NAME[name].values}
    return {
        "patients": float(total),
        "known_outcome_only": True,
        "features": features,
        "predicted_risk": evaluate.risk_histogram(routed_probabilities(fitted, train.frame), train.w),
    }
