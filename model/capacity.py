"""ICU capacity over time: census day by day, its 90% band, the chance a bed is free, deaths missed.

Pure functions (no Streamlit): the ICU page and the CLI below both call them.

    python -m model.capacity --model-dir DIR --cases-per-day N [--doubling-days D] --beds B --los-days W
        [--los-shape K] [--census C] [--delay-days L] [--days H] [--threshold T] [--icu-share S] [--json]

Conventions (days are the unit of time everywhere):
* day 0 is today; `cases(d) = cases_per_day * 2 ** (d / doubling_days)` (flat without a doubling time,
  a halving time when negative); the same growth is assumed to have held before today.
* A case reported on day d that the model flags (risk >= threshold) is admitted to the ICU on day
  d + delay with the expected rate `icu_per_case_flagged` (ICU admissions among flagged patients per
  reported case, from the model's ICU table or a constant share). Arrivals spread evenly over the day.
* Stays are gamma distributed with mean W and shape k (k = 1: exponential). The census of a day is
  counted at its end. It is the convolution of admissions with the stay's survival function plus the
  patients in the ICU today, whose remaining stays follow the stationary residual-stay distribution.
  With flat arrivals λ it converges to λ·W (Little's law), whatever the shape.
* Only flagged patients are counted in the census: they are the patients the plan reserves beds for.
  ICU admissions expected among unflagged patients are reported next to it, not added.

Example where the shape matters: with the same mean stay, exponential stays (k = 1) fill the ICU more
slowly than k = 4, because many patients leave early while a few stay very long.
"""

from __future__ import annotations

import argparse
import json
import math
import numbers
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import gammaincc  # regularised upper incomplete gamma: the gamma sf, light to import

from model import artifact, schema

MAX_CASES_PER_DAY = 1e9  # more than any country has reported in a day: exponential growth has stopped long before
MAX_DAYS = 3650
MAX_BEDS = 1_000_000
DEFAULT_RUNS = 200
DEFAULT_SEED = 2020
BAND = (0.05, 0.95)  # the 90% band
# Above this many simulated patients (all runs together) the census is sampled from its exact
# distribution instead of patient by patient: same marginal band, bounded time.
PATIENT_BUDGET = 1_000_000
DEFAULT_ICU_SHARE = 0.25  # fallback when the model has no ICU table: share of flagged patients needing a bed
ICU_TABLE = "icu_by_threshold.csv"
ICU_TABLE_COLUMNS = (
    "threshold",
    "flagged_share",
    "recall",
    "icu_rate_flagged",
    "icu_rate_unflagged",
    "death_rate_flagged",
    "death_rate_unflagged",
)
NEED_COLUMNS = (
    "threshold",
    "flagged_share",
    "recall",
    "icu_per_case_flagged",
    "icu_per_case_unflagged",
    "missed_deaths_per_case",
    "deaths_per_case",
)

IcuSource = Literal["model", "constant share"]


class CapacityInputError(ValueError):
    """An input or a stored table is unusable; the message says what was wrong and how to fix it."""


# --- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A planner's inputs. Validated on construction: nonsense never reaches the maths.

    cases_per_day: new reported cases today; beds: staffed ICU beds for COVID-19 (whole number);
    los_days: mean ICU stay (days); los_shape: gamma shape k (1 = exponential, larger = stays closer
    to the mean); doubling_days: None for flat, > 0 doubling time, < 0 halving time (days);
    census: COVID-19 patients in the ICU today (whole number); delay_days: case report to ICU
    admission (days); days: horizon (days after today).
    """

    cases_per_day: float
    beds: float
    los_days: float
    los_shape: float = 1.0
    doubling_days: float | None = None
    census: float = 0.0
    delay_days: float = 0.0
    days: int = 90

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise CapacityInputError("; ".join(problems))

    @property
    def growth(self) -> str:
        if self.doubling_days is None:
            return "flat"
        kind = "doubling" if self.doubling_days > 0 else "halving"
        return f"{kind} every {abs(self.doubling_days):g} days"

    def cases(self, shift: float = 0.0) -> np.ndarray:
        """Reported cases on days 0..days, taken `shift` days earlier (cases/day)."""
        d = np.arange(self.days + 1, dtype=float) - shift
        if self.doubling_days is None:
            return np.full(d.shape, float(self.cases_per_day))
        return self.cases_per_day * np.exp2(d / self.doubling_days)


def _number(value: object) -> float | None:
    """A finite real number (Python or numpy), else None; booleans are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        return None
    return float(value)


def _fmt(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def _problems(s: Scenario) -> list[str]:
    """Every problem with the inputs, each saying how to fix it."""
    checks: list[tuple[str, object, float, float, bool, str]] = [
        # field, value, low, high, whole number, what it is
        ("cases_per_day", s.cases_per_day, 0, MAX_CASES_PER_DAY, False, "new cases per day"),
        ("beds", s.beds, 0, MAX_BEDS, True, "staffed ICU beds"),
        ("los_days", s.los_days, 0.1, 365, False, "mean ICU length of stay (days)"),
        ("los_shape", s.los_shape, 0.1, 100, False, "stay shape k"),
        ("census", s.census, 0, 10 * MAX_BEDS, True, "ICU census today"),
        ("delay_days", s.delay_days, 0, 60, False, "days from case report to ICU admission"),
        ("days", s.days, 1, MAX_DAYS, True, "horizon (days)"),
    ]
    problems = []
    for _, value, low, high, whole, what in checks:
        number = _number(value)
        kind = "a whole number" if whole else "a number"
        if number is None or not low <= number <= high or (whole and number != int(number)):
            problems.append(f"{what} must be {kind} from {_fmt(low)} to {_fmt(high)} (got {value!r})")
    if s.doubling_days is not None:
        d = _number(s.doubling_days)
        if d is None or abs(d) < 0.5:
            problems.append(
                f"doubling time must be at least 0.5 days, or negative for a halving time (got {s.doubling_days!r}); "
                "leave it empty for flat growth"
            )
    if not problems and s.doubling_days is not None:
        peak = float(max(s.cases()[-1], s.cases(shift=s.delay_days)[0]))
        if peak > MAX_CASES_PER_DAY:
            problems.append(_runaway_growth(s))
    return problems


def _runaway_growth(s: Scenario) -> str:
    assert s.doubling_days is not None
    limit = int(s.doubling_days * math.log2(MAX_CASES_PER_DAY / max(s.cases_per_day, 1e-12)))
    if s.doubling_days > 0:
        return (
            f"with cases {s.growth}, {s.cases_per_day:,.0f} cases/day pass {MAX_CASES_PER_DAY:,.0f} a day by day "
            f"{limit + 1}: shorten the horizon to at most {max(limit, 1)} days or lengthen the doubling time"
        )
    return (
        f"with cases {s.growth}, {s.delay_days:g} days before today there were more than {MAX_CASES_PER_DAY:,.0f} "
        "cases a day: lengthen the halving time or shorten the delay"
    )


# --- ICU need per threshold ---------------------------------------------------------------------


def _check_columns(table: pd.DataFrame, columns: Sequence[str], name: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise CapacityInputError(
            f"{name} lacks columns {', '.join(missing)}; retrain with `python -m model.train` to rebuild it"
        )
    if table.empty:
        raise CapacityInputError(f"{name} is empty; retrain with `python -m model.train`")
    try:
        values = table[list(columns)].astype(float)
    except (TypeError, ValueError):
        values = table[list(columns)].apply(pd.to_numeric, errors="coerce")  # slow path, only to name the columns
    bad = [c for c in columns if not (np.isfinite(values[c].to_numpy()) & (values[c].to_numpy() >= 0)).all()]
    if bad:
        raise CapacityInputError(
            f"{name} has missing, negative or non-numeric values in {', '.join(bad)}; retrain with "
            "`python -m model.train`"
        )
    return values.sort_values("threshold", kind="stable").reset_index(drop=True)


def need_from_icu_table(icu: pd.DataFrame) -> pd.DataFrame:
    """Per threshold: ICU admissions and missed deaths per reported case, from the model's ICU table.

    `icu` has the columns of `evaluation/icu_by_threshold.csv` (ICU_TABLE_COLUMNS); rates are per
    flagged / unflagged case, so per reported case they are weighted by the flagged share.
    """
    t = _check_columns(icu, ICU_TABLE_COLUMNS, f"evaluation/{ICU_TABLE}")
    flagged = t["flagged_share"].clip(0.0, 1.0)
    return pd.DataFrame(
        {
            "threshold": t["threshold"],
            "flagged_share": flagged,
            "recall": t["recall"],
            "icu_per_case_flagged": flagged * t["icu_rate_flagged"],
            "icu_per_case_unflagged": (1.0 - flagged) * t["icu_rate_unflagged"],
            "missed_deaths_per_case": (1.0 - flagged) * t["death_rate_unflagged"],
            "deaths_per_case": flagged * t["death_rate_flagged"] + (1.0 - flagged) * t["death_rate_unflagged"],
        }
    )


def need_from_constant_share(thresholds: pd.DataFrame, prevalence: float, icu_share: float) -> pd.DataFrame:
    """Per threshold, with a constant share of flagged patients needing ICU (the explicit override).

    `thresholds` has `threshold`, `flagged_share`, `recall` (evaluation/thresholds.csv). ICU need among
    unflagged patients is unknown here (NaN); missed deaths per case = prevalence × (1 − recall).
    """
    if not 0.0 <= icu_share <= 1.0:
        raise CapacityInputError(f"share of flagged patients needing ICU must be between 0 and 1 (got {icu_share})")
    if not (math.isfinite(prevalence) and 0.0 <= prevalence <= 1.0):
        raise CapacityInputError(
            f"the model card's test death rate is missing or invalid ({prevalence}); retrain with "
            "`python -m model.train`"
        )
    t = _check_columns(thresholds, ("threshold", "flagged_share", "recall"), "evaluation/thresholds.csv")
    flagged = t["flagged_share"].clip(0.0, 1.0)
    return pd.DataFrame(
        {
            "threshold": t["threshold"],
            "flagged_share": flagged,
            "recall": t["recall"],
            "icu_per_case_flagged": flagged * icu_share,
            "icu_per_case_unflagged": np.nan,
            "missed_deaths_per_case": prevalence * (1.0 - t["recall"]),
            "deaths_per_case": prevalence,
        }
    )


@dataclass(frozen=True)
class Need:
    """What flagging risk >= threshold means per reported case (one row of a need table)."""

    threshold: float
    flagged_share: float
    recall: float
    icu_per_case_flagged: float  # ICU admissions among flagged patients per reported case
    icu_per_case_unflagged: float  # NaN when unknown (constant-share override)
    missed_deaths_per_case: float  # deaths among unflagged patients per reported case (known-outcome rate)
    deaths_per_case: float  # all deaths per reported case (known-outcome rate)


def need_at(need: pd.DataFrame, threshold: float) -> Need:
    """The row for flag = risk >= threshold: the smallest stored threshold >= it (same patients flagged).

    Above every stored score nobody is flagged: all ICU need and all deaths fall on unflagged patients.
    """
    thresholds = need["threshold"].to_numpy(dtype=float)
    i = int(np.searchsorted(thresholds, threshold, side="left"))
    if i < len(thresholds):
        row = need.iloc[i]
        return Need(float(threshold), *(float(row[c]) for c in NEED_COLUMNS[1:]))
    last = need.iloc[-1]
    deaths = float(last["deaths_per_case"])
    return Need(
        float(threshold),
        0.0,
        0.0,
        0.0,
        float(last["icu_per_case_flagged"] + last["icu_per_case_unflagged"]),
        deaths,
        deaths,
    )


# --- stays ----------------------------------------------------------------------------------------


def residual_share(t: np.ndarray | float, mean: float, shape: float) -> np.ndarray:
    """P(a patient in the ICU at a random moment stays more than t further days).

    For stays X ~ gamma(k, W/k): E[(X − t)+] / W = sf_{k+1}(t) − (t / W)·sf_k(t), exact, no cancellation.
    """
    t = np.asarray(t, dtype=float)
    x = t * shape / mean  # t in units of the gamma scale W/k
    value = gammaincc(shape + 1.0, x) - t / mean * gammaincc(shape, x)
    return np.clip(value, 0.0, 1.0)


def census_kernel(n: int, mean: float, shape: float) -> np.ndarray:
    """K[j]: expected share of one day's admissions still in the ICU at the end of the j-th following day.

    Arrivals spread evenly over their day, so K[j] = ∫_j^{j+1} S(x) dx with S the stay's survival
    function; ΣK = W exactly (Little's law).
    """
    return mean * -np.diff(residual_share(np.arange(n + 1), mean, shape))


def expected_census(admissions: np.ndarray, census_today: float, mean: float, shape: float) -> np.ndarray:
    """Census at the end of each day: today's patients still there plus admissions still there (patients)."""
    admissions = np.asarray(admissions, dtype=float)
    n = len(admissions)
    new = np.convolve(admissions, census_kernel(n, mean, shape))[:n]
    return new + census_today * residual_share(np.arange(1, n + 1), mean, shape)


# --- the 90% band -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """5th and 95th percentile of the census per day over `runs` seeded simulation runs."""

    low: np.ndarray
    high: np.ndarray
    runs: int
    seed: int
    method: Literal["patients", "census distribution"]
    # First day over capacity in each run (-1: never), patient-level runs only.
    saturation_days: np.ndarray | None = None

    @property
    def description(self) -> str:
        if self.method == "patients":
            return (
                f"{self.runs} simulated runs (seed {self.seed}): Poisson admissions each day, each patient's "
                "stay drawn from the stay distribution"
            )
        return (
            f"{self.runs} draws per day (seed {self.seed}) from the census's exact distribution (Poisson for "
            "admissions, binomial for today's patients): too many patients to simulate one by one"
        )


def simulate_census(
    admissions: np.ndarray,
    census_today: int,
    mean: float,
    shape: float,
    *,
    runs: int = DEFAULT_RUNS,
    seed: int = DEFAULT_SEED,
) -> tuple[np.ndarray, Literal["patients", "census distribution"]]:
    """Census samples, shape (runs, days): Poisson arrivals and sampled stays, patient by patient.

    Beyond PATIENT_BUDGET patients it samples each day's census from its exact marginal law instead
    (an infinite-server queue with Poisson arrivals has a Poisson census): the band is the same,
    but runs are no longer paths through time.
    """
    admissions = np.asarray(admissions, dtype=float)
    n = len(admissions)
    rng = np.random.default_rng(seed)
    if runs * (census_today + admissions.sum()) > PATIENT_BUDGET:
        new = np.convolve(admissions, census_kernel(n, mean, shape))[:n]
        stay = residual_share(np.arange(1, n + 1), mean, shape)
        return rng.poisson(new, (runs, n)) + rng.binomial(int(census_today), stay, (runs, n)), "census distribution"
    counts = rng.poisson(admissions, (runs, n))
    scale = mean / shape
    # Admitted patients: arrival day d, uniform time in the day, gamma stay; gone by the end of day floor(leave).
    run_of = np.repeat(np.arange(runs), counts.sum(axis=1))
    leave = np.repeat(np.tile(np.arange(n), runs), counts.ravel()) + rng.random(run_of.size)
    leave += rng.gamma(shape, scale, run_of.size)
    # Today's patients: remaining stay = U × (length-biased stay), and length-biased gamma(k) is gamma(k + 1).
    today = int(census_today)
    run_of = np.concatenate([run_of, np.repeat(np.arange(runs), today)])
    leave = np.concatenate([leave, rng.random(runs * today) * rng.gamma(shape + 1.0, scale, runs * today)])
    gone_day = np.minimum(np.floor(leave), n).astype(np.int64)
    departures = np.bincount(run_of * (n + 1) + gone_day, minlength=runs * (n + 1)).reshape(runs, n + 1)[:, :n]
    arrivals = counts.copy()
    arrivals[:, 0] += today
    return np.cumsum(arrivals, axis=1) - np.cumsum(departures, axis=1), "patients"


def census_band(
    admissions: np.ndarray,
    census_today: int,
    mean: float,
    shape: float,
    beds: float,
    *,
    runs: int = DEFAULT_RUNS,
    seed: int = DEFAULT_SEED,
) -> Band:
    """The 90% band of the census per day, and each run's first day over `beds`."""
    samples, method = simulate_census(admissions, census_today, mean, shape, runs=runs, seed=seed)
    low, high = np.quantile(samples, BAND, axis=0)
    saturation_days = None
    if method == "patients":
        over = samples > beds
        saturation_days = np.where(over.any(axis=1), over.argmax(axis=1), -1)
    return Band(low=low, high=high, runs=runs, seed=seed, method=method, saturation_days=saturation_days)


# --- queueing ---------------------------------------------------------------------------------------------


def erlang_b(load: float, servers: int) -> float:
    """Erlang loss formula: P(an arriving patient finds all `servers` beds taken) at offered load λ·W.

    Recursion B(0) = 1, B(n) = A·B(n−1) / (n + A·B(n−1)): stable for any size (the textbook ratio of
    A^N/N! to a sum overflows). Insensitive to the stay distribution beyond its mean.
    """
    if not (math.isfinite(load) and load >= 0) or servers < 0 or int(servers) != servers:
        raise CapacityInputError(f"Erlang-B needs a load ≥ 0 and a whole number of beds ≥ 0 (got {load}, {servers})")
    blocked = 1.0
    for n in range(1, int(servers) + 1):
        blocked = load * blocked / (n + load * blocked)
        if blocked == 0.0:  # underflow: far more beds than load, and more beds only lower it
            break
    return blocked


def beds_for_blocking(load: float, target: float) -> int:
    """Fewest beds for which Erlang-B is at most `target` (0 < target < 1) at offered load `load`."""
    if not 0.0 < target < 1.0:
        raise CapacityInputError(f"the blocking target must be between 0 and 1 (got {target})")
    blocked, n = 1.0, 0
    while blocked > target:
        n += 1
        blocked = load * blocked / (n + load * blocked)
    return n


def saturation_day(census: np.ndarray, beds: float) -> int | None:
    """First day whose census exceeds `beds`, or None within the horizon."""
    over = np.flatnonzero(np.asarray(census) > beds + 1e-9)
    return int(over[0]) if over.size else None


# --- steady state ------------------------------------------------------------------------------------------


def steady_state_curve(need: pd.DataFrame, cases_per_day: float, los_days: float, beds: float) -> pd.DataFrame:
    """Per stored threshold at a constant case rate: beds occupied (Little's law L = λW) and deaths missed per day.

    Sorted by recall (ties: highest threshold first); `fits` marks beds_needed ≤ beds.
    """
    curve = pd.DataFrame(
        {
            "threshold": need["threshold"].to_numpy(dtype=float),
            "recall": need["recall"].to_numpy(dtype=float),
            "flagged_share": need["flagged_share"].to_numpy(dtype=float),
            "beds_needed": cases_per_day * need["icu_per_case_flagged"].to_numpy(dtype=float) * los_days,
            "deaths_missed_per_day": cases_per_day * need["missed_deaths_per_case"].to_numpy(dtype=float),
        }
    )
    curve["fits"] = curve["beds_needed"] <= beds + 1e-9
    return curve.sort_values(["recall", "threshold"], ascending=[True, False], kind="stable").reset_index(drop=True)


SaturationStatus = Literal["never_saturates", "saturates", "saturated_always"]


@dataclass(frozen=True)
class Saturation:
    """The steady-state operating point where the ICU is as full as it may be.

    `never_saturates`: even the highest recall fits; the point is that recall.
    `saturates`: the point is the highest recall whose beds fit.
    `saturated_always`: even the lowest recall overflows; the point is that lowest recall.
    """

    status: SaturationStatus
    recall: float
    threshold: float
    beds_needed: float
    deaths_missed_per_day: float


def steady_state_saturation(curve: pd.DataFrame) -> Saturation:
    """Where `steady_state_curve` stops fitting."""
    fits = curve[curve["fits"]]
    if fits.empty:
        status: SaturationStatus = "saturated_always"
        row = curve.iloc[0]
    else:
        # Among equal recalls take the highest threshold: same deaths caught, fewest beds.
        row = fits[fits["recall"] == fits["recall"].max()].sort_values("threshold").iloc[-1]
        status = "never_saturates" if bool(curve["fits"].all()) else "saturates"
    return Saturation(
        status=status,
        recall=float(row["recall"]),
        threshold=float(row["threshold"]),
        beds_needed=float(row["beds_needed"]),
        deaths_missed_per_day=float(row["deaths_missed_per_day"]),
    )


# --- projection -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Projection:
    """Day-by-day outlook for one threshold.

    `days` columns: day, cases, admissions (flagged, in the census), admissions_unflagged (not in the
    census; NaN when unknown), census, census_p05, census_p95 (NaN without a band), beds_free,
    overflow (patients beyond the beds), deaths_missed (among cases reported that day) and
    deaths_missed_cumulative.
    """

    scenario: Scenario
    need: Need
    days: pd.DataFrame
    saturation_day: int | None
    steady_state_census: float  # λ·W with λ = today's flagged admissions per day (patients)
    erlang_b: float  # P(an arriving flagged patient finds no free bed) at that steady state
    band: Band | None

    @property
    def peak_census(self) -> float:
        return float(self.days["census"].max())


def admissions(s: Scenario, icu_per_case: float) -> np.ndarray:
    """ICU admissions per day: cases reported `delay_days` earlier × ICU admissions per reported case."""
    return icu_per_case * s.cases(shift=s.delay_days)


def project(
    s: Scenario, need: Need, *, band: bool = True, runs: int = DEFAULT_RUNS, seed: int = DEFAULT_SEED
) -> Projection:
    """Census, band, saturation day, Erlang-B and deaths missed for the patients flagged at `need`."""
    arriving = admissions(s, need.icu_per_case_flagged)
    census = expected_census(arriving, s.census, s.los_days, s.los_shape)
    spread = (
        census_band(arriving, int(s.census), s.los_days, s.los_shape, s.beds, runs=runs, seed=seed) if band else None
    )
    cases = s.cases()
    missed = need.missed_deaths_per_case * cases
    days = pd.DataFrame(
        {
            "day": np.arange(s.days + 1),
            "cases": cases,
            "admissions": arriving,
            "admissions_unflagged": admissions(s, need.icu_per_case_unflagged),
            "census": census,
            "census_p05": spread.low if spread else np.nan,
            "census_p95": spread.high if spread else np.nan,
            "beds_free": np.maximum(s.beds - census, 0.0),
            "overflow": np.maximum(census - s.beds, 0.0),
            "deaths_missed": missed,
            "deaths_missed_cumulative": np.cumsum(missed),
        }
    )
    load = need.icu_per_case_flagged * s.cases_per_day * s.los_days
    return Projection(
        scenario=s,
        need=need,
        days=days,
        saturation_day=saturation_day(census, s.beds),
        steady_state_census=float(load),
        erlang_b=erlang_b(float(load), int(s.beds)),
        band=spread,
    )


FitStatus = Literal["fits_all", "fits", "none"]


@dataclass(frozen=True)
class Fit:
    """The threshold that just fits: the highest recall whose expected census never exceeds the beds.

    `fits_all`: even the lowest stored threshold fits; `none`: not even the strictest one does
    (`need` is then None; `blocked_by_today` says whether today's patients alone overflow).
    """

    status: FitStatus
    need: Need | None
    blocked_by_today: bool


def threshold_that_fits(s: Scenario, need: pd.DataFrame) -> Fit:
    """Search every stored threshold at once: the census is linear in ICU admissions per case.

    census(t) = today's patients still there (t) + r × unit(t), where r = ICU admissions per reported
    case and unit(t) is the census one admission per case would make; so a threshold fits iff
    r ≤ min over days of (beds − today's patients still there) / unit.
    """
    n = s.days + 1
    existing = s.census * residual_share(np.arange(1, n + 1), s.los_days, s.los_shape)
    unit = expected_census(s.cases(shift=s.delay_days), 0.0, s.los_days, s.los_shape)
    room = s.beds - existing
    blocked = bool((room < -1e-9).any())
    positive = unit > 0
    limit = float((room[positive] / unit[positive]).min()) if positive.any() else math.inf
    rates = need["icu_per_case_flagged"].to_numpy(dtype=float)
    fits = np.zeros(len(rates), bool) if blocked else rates <= limit * (1 + 1e-12) + 1e-15
    if not fits.any():
        return Fit("none", None, blocked)
    candidates = need[fits]
    best = candidates[candidates["recall"] == candidates["recall"].max()].sort_values("threshold").iloc[-1]
    row = Need(*(float(best[c]) for c in NEED_COLUMNS))
    return Fit("fits_all" if fits.all() else "fits", row, False)


# --- what the numbers rest on --------------------------------------------------------------------------


def card_prevalence(card: Mapping[str, Any]) -> float:
    """Death rate among known outcomes on the test split, from the model card; NaN if absent."""
    value = card.get("prevalence")
    if isinstance(value, Mapping):
        value = value.get("test")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def known_outcome_share(card: Mapping[str, Any]) -> float | None:
    """Share of the training file's cases whose death outcome was known (Yes/No), if the card says."""
    data = card.get("data") or {}
    read, dropped = data.get("rows_read"), data.get("rows_dropped") or {}
    if not isinstance(read, int | float) or read <= 0 or not isinstance(dropped, Mapping):
        return None
    unknown = sum(v for k, v in dropped.items() if str(k).startswith(f"{schema.TARGET}=") and isinstance(v, int))
    return max(0.0, 1.0 - unknown / read)


def death_rate_note(need: Need, known_share: float | None) -> str:
    """Which death rate the deaths missed use, and why (known outcomes vs all cases)."""
    rate = need.missed_deaths_per_case
    note = (
        f"Deaths missed = cases reported that day × {rate:.3%}: the deaths among unflagged patients per reported "
        "case, measured on the test split's cases whose outcome is known (died: Yes or No). Applying it to all "
        "reported cases assumes cases with a missing outcome die as often as those with a known one."
    )
    if known_share is not None and known_share < 1:
        note += (
            f" Only {known_share:.0%} of the training file's cases had a known outcome; if every unknown outcome "
            f"were a survivor the rate would be {rate * known_share:.3%} (a lower bound)."
        )
    return note


# --- model directory -------------------------------------------------------------------------------------


def read_icu_table(model_dir: str | os.PathLike[str]) -> pd.DataFrame | None:
    """`evaluation/icu_by_threshold.csv` of the model directory, or None when training did not write one."""
    path = artifact.find_model_dir(model_dir) / artifact.EVALUATION_DIR / ICU_TABLE
    return pd.read_csv(path) if path.is_file() else None


def load_need(
    model_dir: str | os.PathLike[str], icu_share: float | None = None
) -> tuple[pd.DataFrame, IcuSource, dict[str, Any]]:
    """Need table, where the ICU rates come from, and the model card.

    The model's ICU table is used unless `icu_share` is given (the explicit override) or the model
    has none (then DEFAULT_ICU_SHARE, and the source says "constant share").
    """
    card = artifact.load_card(model_dir)
    icu = read_icu_table(model_dir)
    if icu is not None and icu_share is None:
        return need_from_icu_table(icu), "model", card
    share = DEFAULT_ICU_SHARE if icu_share is None else icu_share
    table = artifact.load_table(model_dir, "thresholds")
    return need_from_constant_share(table, card_prevalence(card), share), "constant share", card


# --- command line ---------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        """One line, exit code 2 (argparse prints the whole usage first)."""
        self.exit(2, f"error: {message} (see python -m model.capacity --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m model.capacity",
        description="Project COVID-19 ICU census day by day for the patients the model flags.",
    )
    default_dir = str(artifact.model_dir_from_env())
    p.add_argument("--model-dir", type=Path, default=Path(default_dir), help=f"model directory (default {default_dir})")
    p.add_argument("--cases-per-day", type=float, required=True, help="new reported cases today")
    p.add_argument("--doubling-days", type=float, help="doubling time in days; negative = halving time; omit for flat")
    p.add_argument("--beds", type=float, required=True, help="staffed ICU beds for COVID-19")
    p.add_argument("--los-days", type=float, required=True, help="mean ICU length of stay (days)")
    p.add_argument("--los-shape", type=float, default=1.0, help="gamma shape of the stay (1 = exponential; default 1)")
    p.add_argument("--census", type=float, default=0.0, help="COVID-19 patients in the ICU today (default 0)")
    p.add_argument("--delay-days", type=float, default=0.0, help="days from case report to ICU admission (default 0)")
    p.add_argument("--days", type=int, default=90, help="horizon in days (default 90)")
    p.add_argument("--threshold", type=float, help="operating threshold, flag = risk >= it (default: 'high' band)")
    p.add_argument("--icu-share", type=float, help="override: constant share of flagged patients needing ICU")
    p.add_argument("--runs", type=int, default=DEFAULT_RUNS, help=f"simulation runs for the band ({DEFAULT_RUNS})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"simulation seed ({DEFAULT_SEED})")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return p


def default_threshold() -> float:
    """Lower edge of the 'high' risk band: the dashboard's and batch scoring's default threshold too."""
    return schema.DEFAULT_THRESHOLD


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN and infinities to null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summary(p: Projection, fit: Fit, source: IcuSource, note: str) -> dict[str, Any]:
    """Everything the CLI reports, as one JSON-ready object."""
    s, band = p.scenario, p.band
    days = [{k: _plain(v) for k, v in row.items()} for row in p.days.to_dict(orient="records")]
    out: dict[str, Any] = {
        "scenario": {**{k: _plain(v) for k, v in vars(s).items()}, "growth": s.growth},
        "threshold": p.need.threshold,
        "flagged_share": p.need.flagged_share,
        "recall": p.need.recall,
        "icu_source": source,
        "icu_per_case_flagged": p.need.icu_per_case_flagged,
        "icu_per_case_unflagged": _plain(p.need.icu_per_case_unflagged),
        "days": days,
        "saturation_day": p.saturation_day,
        "peak_census": p.peak_census,
        "steady_state_census": p.steady_state_census,
        "erlang_b": p.erlang_b,
        "beds_for_1pct_blocking": beds_for_blocking(p.steady_state_census, 0.01),
        "deaths_missed_per_case": p.need.missed_deaths_per_case,
        "deaths_missed_total": float(p.days["deaths_missed"].sum()),
        "death_rate_note": note,
        "threshold_that_fits": {
            "status": fit.status,
            "threshold": fit.need.threshold if fit.need else None,
            "recall": fit.need.recall if fit.need else None,
            "flagged_share": fit.need.flagged_share if fit.need else None,
        },
    }
    if band is not None:
        out["band"] = {"runs": band.runs, "seed": band.seed, "method": band.method, "percentiles": list(BAND)}
        if band.saturation_days is not None:
            out["band"]["runs_saturating"] = float((band.saturation_days >= 0).mean())
    return out


def _text(report: dict[str, Any]) -> str:
    s = report["scenario"]
    lines = [
        f"Threshold {report['threshold']:.4f}: flags {report['flagged_share']:.1%} of cases, recall "
        f"{report['recall']:.3f}; ICU admissions per reported case {report['icu_per_case_flagged']:.4f} "
        f"(source: {report['icu_source']}).",
        f"Cases {s['cases_per_day']:,.0f}/day, {s['growth']}; {s['beds']:,.0f} beds; stay {s['los_days']:g} days "
        f"(shape {s['los_shape']:g}); census today {s['census']:,.0f}; delay {s['delay_days']:g} days.",
        "",
        f"{'day':>4} {'cases':>10} {'ICU adm':>8} {'census':>8} {'90% band':>15} {'beds free':>9} {'missed':>7}",
    ]
    for d in report["days"]:
        low, high = d["census_p05"], d["census_p95"]
        band = f"{low:,.0f}–{high:,.0f}" if low is not None else "—"
        lines.append(
            f"{d['day']:>4} {d['cases']:>10,.0f} {d['admissions']:>8,.1f} {d['census']:>8,.1f} {band:>15} "
            f"{d['beds_free']:>9,.1f} {d['deaths_missed_cumulative']:>7,.1f}"
        )
    sat = report["saturation_day"]
    lines += [
        "",
        f"First day over capacity: {'none within the horizon' if sat is None else f'day {sat}'}.",
        f"Steady state at today's case rate: {report['steady_state_census']:,.1f} patients; P(no free bed) "
        f"(Erlang-B, {s['beds']:,.0f} beds) = {report['erlang_b']:.4f}; beds for ≤ 1%: "
        f"{report['beds_for_1pct_blocking']:,}.",
        f"Deaths missed over {s['days']} days: {report['deaths_missed_total']:,.1f}. {report['death_rate_note']}",
    ]
    fit = report["threshold_that_fits"]
    if fit["status"] == "none":
        lines.append("No stored threshold keeps the expected census within the beds.")
    else:
        lines.append(f"Threshold that just fits: {fit['threshold']:.4f} (recall {fit['recall']:.3f}).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    threshold = default_threshold() if args.threshold is None else args.threshold
    try:
        if not 0.0 <= threshold <= 1.0:
            raise CapacityInputError(f"--threshold must be between 0 and 1 (got {threshold})")
        if not 1 <= args.runs <= 100_000:
            raise CapacityInputError(f"--runs must be from 1 to 100000 (got {args.runs})")
        scenario = Scenario(
            cases_per_day=args.cases_per_day,
            beds=args.beds,
            los_days=args.los_days,
            los_shape=args.los_shape,
            doubling_days=args.doubling_days,
            census=args.census,
            delay_days=args.delay_days,
            days=args.days,
        )
        need, source, card = load_need(args.model_dir, args.icu_share)
        projection = project(scenario, need_at(need, threshold), runs=args.runs, seed=args.seed)
        fit = threshold_that_fits(scenario, need)
    except (CapacityInputError, artifact.ArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        print(
            f"error: cannot read the model directory {args.model_dir}: {exc}; retrain with `python -m model.train`",
            file=sys.stderr,
        )
        return 2
    report = summary(projection, fit, source, death_rate_note(projection.need, known_outcome_share(card)))
    if source == "constant share" and args.icu_share is None:
        print(
            f"note: the model has no evaluation/{ICU_TABLE}; using a constant {DEFAULT_ICU_SHARE:.0%} of flagged "
            "patients needing ICU (set it with --icu-share)",
            file=sys.stderr,
        )
    print(json.dumps(report, allow_nan=False) if args.json else _text(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
