"""Internal-external cross-validation by calendar period: how much does the model's performance move between months?

Each month holding at least MIN_PERIOD_EVENTS deaths and as many survivors is left out
in turn; the model (the chosen candidate, refitted and recalibrated as in training, without
an interval) is trained on every other month and judged on the one left out: observed/expected deaths,
ROC-AUC (DeLong SE) and calibration slope. The months' ln(O/E) and logit(AUC) are
pooled by a random-effects meta-analysis (REML), with a 95% prediction interval for a
new month, mu ± t(k-2) * sqrt(tau^2 + SE(mu)^2) (Riley et al., BMJ 2011;342:d549 and
BMJ 2016;353:i3140; Debray et al., BMJ 2017;356:i6460). Each refit reads only the model's
counts per (inputs, case month) (`model_counts`): its cost grows with combinations and months,
never with rows, and training runs the months as separate jobs on both cores (`model.training.train`).

The between-month SD of ln(O/E), tau, is the part of a risk's uncertainty that sampling
error does not describe: case fatality moved 0.23 on the logit from March to April 2020
while a typical interval's logit SD is 0.085. `widen` adds tau^2 to each combination's
logit variance, so the interval a clinician sees is a prediction interval for a patient
of a new month, not a confidence interval for the training months.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from scipy.stats import t as student_t

from model.core import schema
from model.data.loader import CASE_MONTH
from model.stats import performance
from model.training.fitting import (
    GRID_ROW,
    PROBABILITY_CEILING,
    PROBABILITY_FLOOR,
    Z95,
    FittedModel,
    Weighted,
    fit_model,
    grid_frame,
    grid_rows,
    safe_logit,
)
from model.training.splits import hospital_known

MIN_PERIOD_EVENTS = 100  # deaths (and survivors) for a month to be left out and judged (Riley et al. 2021)
MIN_PERIODS = 3  # a prediction interval needs k - 2 >= 1 degrees of freedom
UNKNOWN_MONTH = "unknown"


def model_counts(known: pd.DataFrame, model: str) -> pd.DataFrame:
    """The model's patients with a dated case, deaths and survivors summed per (its inputs, case month).

    Columns GRID_ROW (the combination of its inputs, as a row of `fitting.grid`), CASE_MONTH, deaths and
    survivors. Every refit below needs only these, so the months are cut from this table (tens of times
    smaller than the file's counts table, and small to hand to another process): the validation costs
    what the combinations cost, not the rows.
    """
    rows = known[known[CASE_MONTH] != UNKNOWN_MONTH]
    if model == schema.IN_HOSPITAL_MODEL:
        rows = rows[hospital_known(rows)]
    inputs = schema.MODEL_FEATURES[model]
    summed = rows.groupby([*inputs, CASE_MONTH], observed=True, sort=False, as_index=False)[
        ["deaths", "survivors"]
    ].sum()
    summed = summed[(summed["deaths"] + summed["survivors"]) > 0].reset_index(drop=True)
    summed.insert(0, GRID_ROW, grid_rows(model, inputs, summed))
    return summed[[GRID_ROW, CASE_MONTH, "deaths", "survivors"]]


def eligible_months(counts: pd.DataFrame) -> list[str]:
    """Months with at least MIN_PERIOD_EVENTS deaths and survivors (`counts`: one model's `model_counts`)."""
    by_month = counts.groupby(CASE_MONTH, observed=True)[["deaths", "survivors"]].sum()
    enough = (by_month["deaths"] >= MIN_PERIOD_EVENTS) & (by_month["survivors"] >= MIN_PERIOD_EVENTS)
    return sorted(str(month) for month in by_month.index[enough])


def dealt(
    counts: pd.DataFrame, model: str, rng: np.random.Generator, shares: tuple[float, ...]
) -> tuple[Weighted, ...]:
    """Each row's deaths and survivors dealt out multinomially over `shares` (a patient-level split).

    One Weighted per share, aggregated per (grid combination, outcome) in grid order (`on_grid_counts`).
    """
    rows = counts[GRID_ROW].to_numpy()
    deaths = rng.multinomial(counts["deaths"].to_numpy(dtype=np.int64), shares)
    survivors = rng.multinomial(counts["survivors"].to_numpy(dtype=np.int64), shares)
    return tuple(on_grid_counts(model, rows, deaths[:, k], survivors[:, k]) for k in range(len(shares)))


def on_grid_counts(model: str, rows: np.ndarray, deaths: np.ndarray, survivors: np.ndarray) -> Weighted:
    """Deaths and survivors per grid row, summed per (combination, outcome): survivors (y=0) then deaths (y=1),
    combinations in grid order, rows without patients left out; inputs taken from the grid (`fitting.on_grid`)."""
    combos = grid_frame(model)
    size = len(combos)
    w = np.column_stack(
        [np.bincount(rows, weights=survivors, minlength=size), np.bincount(rows, weights=deaths, minlength=size)]
    ).ravel()
    keep = np.flatnonzero(w > 0)
    return Weighted(combos.iloc[keep // 2], (keep % 2).astype(np.int8), w[keep])


def leave_one_out(counts: pd.DataFrame, model: str, candidate: str, month: str, seed: int) -> dict[str, Any]:
    """Train on every month but `month` (fit 75% / recalibrate 25%), judge on `month` (`counts`: `model_counts`)."""
    held_out = (counts[CASE_MONTH] == month).to_numpy()
    fit_part, recal_part = dealt(counts[~held_out], model, np.random.default_rng(seed), (0.75, 0.25))
    fitted = fit_model(model, fit_part, recal_part, seed=seed, names=[candidate], replicates=0)
    held = counts[held_out]
    part = on_grid_counts(model, held[GRID_ROW].to_numpy(), held["deaths"].to_numpy(), held["survivors"].to_numpy())
    p = fitted.predict(part.x)
    oe = performance.observed_expected(part.y, p, part.w)
    auc, auc_se = performance.delong(part.y, p, part.w)
    slope = performance.calibration_slope(part.y, p, part.w)
    return {
        "month": month,
        "patients": float(part.w.sum()),
        "deaths": part.events,
        "oe": oe["ratio"],
        "oe_low": oe["ci_low"],
        "oe_high": oe["ci_high"],
        "log_oe_se": oe["se_log"],
        "roc_auc": auc,
        "roc_auc_low": max(0.0, auc - Z95 * auc_se),
        "roc_auc_high": min(1.0, auc + Z95 * auc_se),
        "logit_auc_se": auc_se / (auc * (1 - auc)),
        "calibration_slope": slope["slope"],
    }


def random_effects(estimates: np.ndarray, se: np.ndarray, iterations: int = 200) -> dict[str, Any]:
    """REML random-effects pooling: {"mu", "se", "tau2", "ci_low", "ci_high", "pi_low", "pi_high", "k"}.

    Fixed-point REML for tau^2 (from the DerSimonian-Laird start); the prediction interval uses
    Student's t with k - 2 degrees of freedom (None below MIN_PERIODS studies).
    """
    y, v = np.asarray(estimates, dtype=float), np.asarray(se, dtype=float) ** 2
    k = y.size
    w = 1 / v
    mu_fixed = float(np.sum(w * y) / np.sum(w))
    q = float(np.sum(w * (y - mu_fixed) ** 2))
    tau2 = max(0.0, (q - (k - 1)) / (np.sum(w) - np.sum(w**2) / np.sum(w))) if k > 1 else 0.0
    for _ in range(iterations):
        w = 1 / (v + tau2)
        mu = float(np.sum(w * y) / np.sum(w))
        new = max(0.0, float(np.sum(w**2 * ((y - mu) ** 2 - v)) / np.sum(w**2) + 1 / np.sum(w)))
        if abs(new - tau2) < 1e-12:
            tau2 = new
            break
        tau2 = new
    w = 1 / (v + tau2)
    mu = float(np.sum(w * y) / np.sum(w))
    se_mu = math.sqrt(1 / np.sum(w))
    out: dict[str, Any] = {
        "mu": mu,
        "se": se_mu,
        "tau2": tau2,
        "ci_low": mu - Z95 * se_mu,
        "ci_high": mu + Z95 * se_mu,
        "k": k,
    }
    half = float(student_t.ppf(0.975, k - 2)) * math.sqrt(tau2 + se_mu**2) if k >= MIN_PERIODS else None
    out["pi_low"], out["pi_high"] = (mu - half, mu + half) if half is not None else (None, None)
    return out


def _pooled(per_month: pd.DataFrame) -> dict[str, Any]:
    """Pooled O/E (log scale) and ROC-AUC (logit scale), back-transformed, with their prediction intervals."""
    oe = random_effects(np.log(per_month["oe"]), per_month["log_oe_se"])
    auc = random_effects(logit(per_month["roc_auc"]), per_month["logit_auc_se"])

    def back(result: dict[str, Any], f: Any) -> dict[str, Any]:
        keys = ("mu", "ci_low", "ci_high", "pi_low", "pi_high")
        return {k: (None if result[k] is None else float(f(result[k]))) for k in keys}

    return {
        "observed_expected": {**back(oe, np.exp), "tau_log": math.sqrt(oe["tau2"])},
        "roc_auc": {**back(auc, expit), "tau_logit": math.sqrt(auc["tau2"])},
        "periods": oe["k"],
    }


def months_to_leave_out(counts: pd.DataFrame) -> list[str]:
    """Eligible months whose other months hold at least MIN_PERIOD_EVENTS deaths to train on (`model_counts`)."""
    deaths = counts.groupby(CASE_MONTH, observed=True)["deaths"].sum()
    return [m for m in eligible_months(counts) if deaths.sum() - deaths[m] >= MIN_PERIOD_EVENTS]


def validate_model(known: pd.DataFrame, model: str, candidate: str, seed: int) -> dict[str, Any]:
    """Leave-one-month-out figures of one model and, with MIN_PERIODS months or more, their pooled values."""
    counts = model_counts(known, model)
    return pooled_result(
        [leave_one_out(counts, model, candidate, m, seed) for m in months_to_leave_out(counts)], candidate
    )


def pooled_result(rows: list[dict[str, Any]], candidate: str) -> dict[str, Any]:
    """One model's entry: the per-month figures (`leave_one_out`, month order) and their pooled values."""
    out: dict[str, Any] = {"months": rows, "candidate": candidate, "performed": len(rows) >= MIN_PERIODS}
    if not out["performed"]:
        out["reason"] = (
            f"{len(rows)} month(s) with at least {MIN_PERIOD_EVENTS} deaths and survivors (and as many deaths in "
            f"the other months to train on); {MIN_PERIODS} are needed for a prediction interval"
        )
        return out
    out["pooled"] = _pooled(pd.DataFrame(rows))
    return out


def validate(known: pd.DataFrame, fitted: dict[str, FittedModel], seed: int) -> dict[str, Any]:
    """Leave-one-month-out validation of every fitted model; widens each table's intervals by its tau (in place).

    A model with too few months borrows the intake model's tau (said in the result). Training runs the
    `leave_one_out` refits on both cores instead and hands `pooled_result`s to `combine`.
    """
    return combine({name: validate_model(known, name, model.candidate, seed) for name, model in fitted.items()}, fitted)


def combine(results: dict[str, dict[str, Any]], fitted: dict[str, FittedModel]) -> dict[str, Any]:
    """The card's section from each model's `validate_model` result; widens each table's intervals (in place)."""
    out: dict[str, Any] = {
        "method": "internal-external cross-validation: leave one calendar month out, train on the rest",
        "min_events_per_month": MIN_PERIOD_EVENTS,
        "pooling": "random effects (REML); 95% prediction interval with t(k-2)",
        "models": {name: results[name] for name in fitted},
    }
    intake = out["models"].get(schema.INTAKE_MODEL, {})
    fallback = intake["pooled"]["observed_expected"]["tau_log"] if intake.get("performed") else 0.0
    for name, model in fitted.items():
        result = out["models"][name]
        tau = result["pooled"]["observed_expected"]["tau_log"] if result["performed"] else fallback
        result["interval_tau_log"] = tau
        result["interval_tau_from"] = name if result["performed"] else schema.INTAKE_MODEL
        widen(model.table, tau)
    out["interval_shown"] = (
        "95% interval of each risk including the between-month spread of observed/expected (a prediction "
        "interval for a patient of a new month): logit SD^2 = sampling SD^2 + tau^2"
    )
    return out


def widen(table: pd.DataFrame, tau: float) -> None:
    """Add tau^2 to each combination's logit variance (its interval's half-width / 1.96, squared), in place."""
    if tau <= 0:
        return
    p = table["probability"].to_numpy(dtype=float)
    centre = safe_logit(p)
    low_sd = (centre - safe_logit(table["ci_low"].to_numpy())) / Z95
    high_sd = (safe_logit(table["ci_high"].to_numpy()) - centre) / Z95
    table["ci_low"] = np.clip(expit(centre - Z95 * np.sqrt(low_sd**2 + tau**2)), PROBABILITY_FLOOR, p)
    table["ci_high"] = np.clip(expit(centre + Z95 * np.sqrt(high_sd**2 + tau**2)), p, PROBABILITY_CEILING)


def markdown(result: dict[str, Any]) -> str:
    """The card's section for people: per-month figures and the pooled values with prediction intervals."""
    lines = ["", "## Performance between months (leave one month out)", "", result["method"] + ".", ""]
    for name, model in result["models"].items():
        lines += [f"### {schema.MODEL_LABELS.get(name, name)}", ""]
        if model["months"]:
            lines += [
                "| month left out | patients | deaths | O/E (95% CI) | ROC-AUC (95% CI) |",
                "|---|---:|---:|---|---|",
            ]
            lines += [
                f"| {m['month']} | {m['patients']:,.0f} | {m['deaths']:,.0f} | {m['oe']:.2f} ({m['oe_low']:.2f}-"
                f"{m['oe_high']:.2f}) | {m['roc_auc']:.3f} ({m['roc_auc_low']:.3f}-{m['roc_auc_high']:.3f}) |"
                for m in model["months"]
            ]
        if model["performed"]:
            oe, auc = model["pooled"]["observed_expected"], model["pooled"]["roc_auc"]
            lines += [
                "",
                f"Pooled (random effects, {model['pooled']['periods']} months): O/E {oe['mu']:.2f} (95% CI "
                f"{oe['ci_low']:.2f}-{oe['ci_high']:.2f}; 95% prediction interval for a new month "
                f"{oe['pi_low']:.2f}-{oe['pi_high']:.2f}); ROC-AUC {auc['mu']:.3f} (95% CI {auc['ci_low']:.3f}-"
                f"{auc['ci_high']:.3f}; prediction interval {auc['pi_low']:.3f}-{auc['pi_high']:.3f}). "
                f"Between-month SD of ln(O/E): {oe['tau_log']:.3f}.",
            ]
        else:
            lines += ["", f"No pooled values: {model['reason']}."]
        lines.append("")
    lines += [f"Intervals shown by the form: {result['interval_shown']}.", ""]
    return "\n".join(lines)
