"""What the card reports beyond test metrics: period, outcome coverage, ICU need, temporal validation.

Each function takes the loader's counts table (or the fitted models) and returns
plain dicts and DataFrames for the card and the evaluation tables.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from model import evaluate, schema
from model.candidates import CANDIDATES
from model.fitting import FittedModel, Weighted, fit_model, table_rows
from model.loader import CASE_MONTH, INTAKE_POPULATION
from model.splits import Split, split_counts

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


def icu_need(
    counts: pd.DataFrame, intake: FittedModel, test: Split, thresholds: pd.DataFrame, seed: int = 0
) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """An ICU-admission model on intake inputs, and per threshold the ICU need of flagged and unflagged patients.

    The ICU model learns icu_yn Yes vs No among intake-population cases with a known
    ICU answer (whatever their death outcome). Expected ICU admissions per case are then
    averaged over the test split's patients flagged (risk >= threshold) and not flagged.
    """
    inputs = schema.MODEL_FEATURES[schema.INTAKE_MODEL]
    rows = counts[counts[INTAKE_POPULATION] & counts["icu_yn"].isin(schema.HOSPITAL_KNOWN_VALUES)]
    patients = (rows["deaths"] + rows["survivors"] + rows["unknown_outcome"]).to_numpy(dtype=float)
    known = Weighted.collapse(rows, (rows["icu_yn"] == "Yes").to_numpy(np.int8), patients, inputs)
    if known.events == 0 or known.events == known.w.sum():
        # Nothing to learn ICU need from: no table, and the ICU page uses its explicit constant share.
        return {"model": None, "reason": "no intake patient with icu_yn Yes and No", "known_icu_patients": 0}, None
    model = CANDIDATES[ICU_MODEL](schema.INTAKE_MODEL, inputs, seed)
    model.fit(known.x, known.y, model__sample_weight=known.w)
    p_icu = model.predict_proba(test.frame[list(inputs)])[:, 1]
    score = intake.predict(test.frame)
    order = np.argsort(-score, kind="stable")
    s, w, y, icu = score[order], test.w[order], test.y[order], p_icu[order]
    cum_w, cum_icu, cum_deaths = np.cumsum(w), np.cumsum(w * icu), np.cumsum(w * y)
    total_w, total_icu, total_deaths = cum_w[-1], cum_icu[-1], cum_deaths[-1]
    # Patients flagged at threshold t: those with score >= t, a prefix of the descending order.
    flagged_n = np.searchsorted(-s, -thresholds["threshold"].to_numpy(), side="right")
    pick = np.maximum(flagged_n - 1, 0)
    fw = np.where(flagged_n > 0, cum_w[pick], 0.0)
    fi = np.where(flagged_n > 0, cum_icu[pick], 0.0)
    fd = np.where(flagged_n > 0, cum_deaths[pick], 0.0)
    # A rate of an empty group (nobody flagged at threshold 1, nobody left at 0) is written as 0:
    # it is always multiplied by that group's size, which is 0.
    rest = total_w - fw
    with np.errstate(divide="ignore", invalid="ignore"):
        table = pd.DataFrame(
            {
                "threshold": thresholds["threshold"].to_numpy(),
                "flagged_share": fw / total_w,
                "recall": fd / total_deaths if total_deaths else 0.0,
                "icu_rate_flagged": np.where(fw > 0, fi / fw, 0.0),
                "icu_rate_unflagged": np.where(rest > 0, (total_icu - fi) / rest, 0.0),
                "death_rate_flagged": np.where(fw > 0, fd / fw, 0.0),
                "death_rate_unflagged": np.where(rest > 0, (total_deaths - fd) / rest, 0.0),
            }
        )
    card = {
        "model": f"{ICU_MODEL} on intake inputs (icu_yn Yes vs No)",
        "known_icu_patients": int(known.w.sum()),
        "icu_rate": float(known.events / known.w.sum()) if known.w.sum() else None,
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


def temporal_validation(known: pd.DataFrame, *, seed: int, names: list[str] | None = None) -> dict[str, Any]:
    """Train the intake model on earlier months and test it on the latest ones, when the data allow it."""
    dated = known[known[CASE_MONTH] != UNKNOWN_MONTH]
    by_month = dated.groupby(CASE_MONTH)[["deaths", "survivors"]].sum().sort_index()
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
    earlier = dated[dated[CASE_MONTH].isin(train_months)]
    fit_part, recal_part = split_counts(earlier, seed, (0.75, 0.25))
    model = schema.INTAKE_MODEL
    fitted = fit_model(
        model, fit_part.weighted(model), recal_part.weighted(model), seed=seed, names=names, replicates=0
    )
    (later,) = split_counts(dated[dated[CASE_MONTH].isin(test_months)], seed, (1.0,))
    scores = fitted.predict(later.frame)
    metrics = evaluate.summary_metrics(later.y, scores, later.w)
    return {
        "performed": True,
        "train_months": [train_months[0], train_months[-1]],
        "test_months": [test_months[0], test_months[-1]],
        "candidate": fitted.candidate,
        "test_patients": metrics["patients"],
        "test_deaths": metrics["deaths"],
        "roc_auc": metrics["roc_auc"],
        "observed_expected": evaluate.observed_expected(later.y, scores, later.w),
        "calibration_line": evaluate.calibration_line(later.y, scores, later.w),
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
