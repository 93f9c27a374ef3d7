"""ICU planning: total ICU demand over time, its 90% band, P(no free bed), and the threshold's surveillance load.

Pure functions (no Streamlit): the ICU page and the CLI below both call them (CHIME's layout: the model
is plain functions, the app only draws).

    python -m model.capacity --model-dir DIR --cases-per-day N [--doubling-days D] --beds B --los-days W
        [--population P --reported-share R] [--icu-end lower|upper] [--threshold T] [--json] ...

Conventions (days are the unit of time everywhere):
* Day 0 is today. Growth is exponential, `cases(d) = cases_per_day * 2 ** (d / doubling_days)` (flat without
  a doubling time, a halving time when negative), or, with a population, an SIR curve (`sir_cases`) that
  starts at the same growth and slows as susceptibles run out. The growth of today is assumed to have held
  before today.
* ICU demand counts every reported case: a case reported on day d is admitted to the ICU on day d + delay
  with the expected rate ICU admissions per reported case (`Need.icu_per_case`). The model's threshold does
  not change it; it only says which part of it was flagged (`admissions`) and which was not
  (`admissions_unflagged`). ICU admissions per reported case come at two ends (`ICU_ENDS`, from training):
  the lower end is the default.
* Stays are gamma distributed with mean W and shape k (k = 1: exponential). The census of a day is counted
  at its end: the convolution of admissions with the stay's survival function plus the patients in the ICU
  today, whose remaining stays follow the stationary residual-stay distribution. With flat arrivals λ it
  converges to λ·W (Little's law), whatever the shape.
* The 90% band draws, per run, ICU admissions per case, the mean stay and the growth rate uniformly
  within their ranges (`Uncertainty`), then Poisson admissions and gamma stays: what planners are least
  sure of, and chance.
* Surveillance: each flagged case is followed for `follow_days` days from its report; the load is the
  number followed at the end of a day, against the team's capacity. That is where the threshold trades
  deaths missed against work.

Every search and loop that an input sizes has a bound (MAX_BEDS beds, PATIENT_BUDGET simulated patients,
MAX_DAYS days); where a bound is reached the answer says "more than" it.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import numbers
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

import numpy as np
import pandas as pd
from scipy.signal import fftconvolve
from scipy.special import gammaincc, gammaln, logsumexp

from model.core import artifact, exit_codes, schema

MAX_CASES_PER_DAY = 1e9  # more than any country has reported in a day: exponential growth has stopped long before
MAX_DAYS = 3650
MAX_BEDS = 1_000_000
MAX_POPULATION = 1e10
DEFAULT_RUNS = 200
DEFAULT_SEED = 2020
BAND = (0.05, 0.95)  # the 90% band
# Above this many simulated patients (all runs together) the census is sampled from its exact
# distribution instead of patient by patient: same marginal band, bounded time.
PATIENT_BUDGET = 1_000_000
# Beyond this multiple of the beds (or the population) a projection no longer describes a hospital.
SUPPORTED_BEDS_MULTIPLE = 100
# Sampled runs can grow faster than the central one: their cases are capped here (cases/day).
RUN_CASES_CAP = 1e12
# Without the model's ICU table: CDC's 2% of 1,320,488 reported cases admitted to ICU (MMWR 2020;69(24):759-765),
# the same among flagged and unflagged patients.
DEFAULT_ICU_PER_CASE = 0.02
DEFAULT_INFECTIOUS_DAYS = 14.0  # CHIME's default
DEFAULT_FOLLOW_DAYS = 14  # days a flagged case is followed (the isolation period of 2020)
DEFAULT_SURVEILLANCE_CAPACITY = 1000.0
ICU_TABLE = "icu_by_threshold.csv"
ICU_TABLE_COLUMNS = (
    "threshold",
    "flagged_share",
    "recall",
    "death_rate_flagged",
    "death_rate_unflagged",
    "case_flagged_share",
    "icu_rate_flagged",
    "icu_rate_unflagged",
    "icu_rate_flagged_upper",
    "icu_rate_unflagged_upper",
)
NEED_COLUMNS = (
    "threshold",
    "flagged_share",
    "recall",
    "case_flagged_share",
    "icu_per_case_flagged",
    "icu_per_case_unflagged",
    "missed_deaths_per_case",
    "deaths_per_case",
)
IcuEnd = Literal["lower", "upper"]
ICU_ENDS: dict[str, str] = {  # what each end assumes about a case whose ICU answer was not recorded
    "lower": "an unrecorded ICU answer counts as not admitted (CDC counts every case this way: 2% in MMWR 2020;69(24))",
    "upper": "unrecorded ICU answers are like the recorded ones of patients with the same intake answers and "
    "hospitalisation answer",
}
IcuSource = Literal["model", "constant"]


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
    admission (days); days: horizon (days after today). With `population` (people who can be infected)
    cases follow an SIR curve instead of growing for ever: `reported_share` of infections are reported
    cases, and a person is infectious for `infectious_days`.
    """

    cases_per_day: float
    beds: float
    los_days: float
    los_shape: float = 1.0
    doubling_days: float | None = None
    census: float = 0.0
    delay_days: float = 0.0
    days: int = 90
    population: float | None = None
    reported_share: float = 0.1
    infectious_days: float = DEFAULT_INFECTIOUS_DAYS

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise CapacityInputError("; ".join(problems))

    @property
    def growth(self) -> str:
        if self.doubling_days is None:
            return "flat"
        kind = "doubling" if self.doubling_days > 0 else "halving"
        text = f"{kind} every {abs(self.doubling_days):g} days"
        if self.population is not None:
            text += f", slowing as {self.population:,.0f} people run out of susceptibles (SIR)"
        return text

    @property
    def growth_rate(self) -> float:
        """Continuous growth rate of cases today (per day): ln 2 / doubling time, 0 when flat."""
        return 0.0 if self.doubling_days is None else math.log(2.0) / self.doubling_days

    def cases(self, shift: float = 0.0) -> np.ndarray:
        """Reported cases on days 0..days, taken `shift` days earlier (cases/day)."""
        t = np.arange(self.days + 1, dtype=float) - shift
        return case_curve(self, t, np.array([self.growth_rate]))[0]


def _number(value: object) -> float | None:
    """A finite real number (Python or numpy), else None; booleans are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        return None
    return float(value)


def _fmt(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def _range_problems(checks: Sequence[tuple[object, float, float, bool, str]]) -> list[str]:
    """`what must be a (whole) number from low to high` for each value outside its range."""
    problems = []
    for value, low, high, whole, what in checks:
        number = _number(value)
        kind = "a whole number" if whole else "a number"
        if number is None or not low <= number <= high or (whole and number != int(number)):
            problems.append(f"{what} must be {kind} from {_fmt(low)} to {_fmt(high)} (got {value!r})")
    return problems


def _problems(s: Scenario) -> list[str]:
    """Every problem with the inputs, each saying how to fix it."""
    problems = _range_problems(
        [
            (s.cases_per_day, 0, MAX_CASES_PER_DAY, False, "new cases per day"),
            (s.beds, 0, MAX_BEDS, True, "staffed ICU beds"),
            (s.los_days, 0.1, 365, False, "mean ICU length of stay (days)"),
            (s.los_shape, 0.1, 100, False, "stay shape k"),
            (s.census, 0, 10 * MAX_BEDS, True, "ICU census today"),
            (s.delay_days, 0, 60, False, "days from case report to ICU admission"),
            (s.days, 1, MAX_DAYS, True, "horizon (days)"),
        ]
    )
    if s.doubling_days is not None:
        d = _number(s.doubling_days)
        if d is None or abs(d) < 0.5:
            problems.append(
                f"doubling time must be at least 0.5 days, or negative for a halving time (got {s.doubling_days!r}); "
                "leave it empty for flat growth"
            )
    if s.population is not None:
        problems += _sir_problems(s, s.population)
    if not problems and s.doubling_days is not None:
        peak = float(max(s.cases().max(), s.cases(shift=s.delay_days)[0]))
        if peak > MAX_CASES_PER_DAY:
            problems.append(_runaway_growth(s))
    return problems


def _sir_problems(s: Scenario, population: float) -> list[str]:
    """Problems with the susceptible-depletion inputs; `population` is `s.population`, which is given."""
    problems = _range_problems(
        [
            (population, 1, MAX_POPULATION, False, "population"),
            (s.reported_share, 0.001, 1, False, "share of infections reported as cases"),
            (s.infectious_days, 1, 60, False, "infectious period (days)"),
        ]
    )
    if problems:
        return problems
    if s.doubling_days is None or s.doubling_days <= 0:
        return ["susceptible depletion needs a growing epidemic: give a positive doubling time (or choose flat growth)"]
    infected = _already_infected(s.cases_per_day / s.reported_share, s.growth_rate, s.infectious_days)
    if infected >= 0.99 * population:
        return [
            f"population too small: with {s.cases_per_day:,.0f} cases a day, {s.reported_share:.0%} of infections "
            f"reported and cases {s.growth}, about {infected:,.0f} people have been infected already; enter a "
            f"population above {infected / 0.99:,.0f}, a larger reported share or fewer cases"
        ]
    return []


def _runaway_growth(s: Scenario) -> str:
    if s.doubling_days is None:  # flat growth cannot run away; validation only asks with a doubling time
        raise ValueError("runaway growth needs a doubling (or halving) time; this scenario has flat growth")
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


# --- case curves: exponential, or SIR (susceptible depletion) ------------------------------------------


def _already_infected(infections_per_day: float, rate: float, infectious_days: float) -> float:
    """People infected before the end of today if today's growth held before: infectious now plus recovered.

    Daily growth g = e^rate − 1 (CHIME: 2^(1/Td) − 1); past infections Σ_{k≥1} J(1+g)^−k = J/g, plus today's J.
    """
    g = math.expm1(rate)
    return infections_per_day / g + infections_per_day if g > 0 else math.inf


def sir_cases(s: Scenario, rates: np.ndarray, days: int) -> np.ndarray:
    """Reported cases on days 0..days of a discrete-time SIR epidemic, one row per growth rate in `rates`.

    As CHIME (Penn Medicine) does: daily growth g = e^rate − 1, recovery γ = 1 / infectious days, and the
    contact rate β = (g + γ) / S today, so infections grow at g today and slow as S runs out. Today's
    infections J = cases / reported share fix I = J / (g + γ); the people infected before today follow the
    scenario's own doubling time. Reported cases = reported share × new infections.
    """
    if s.population is None:
        raise ValueError("an SIR curve needs the population that can be infected: give Scenario a population")
    gamma = 1.0 / s.infectious_days
    j0 = s.cases_per_day / s.reported_share
    g = np.maximum(np.expm1(np.asarray(rates, dtype=float)), -0.5 * gamma)  # β stays positive
    infectious = j0 / (g + gamma)
    past = _already_infected(j0, s.growth_rate, s.infectious_days) - j0
    susceptible = np.full(g.shape, max(s.population - past, 1.0))  # today's infections are still to happen
    beta = (g + gamma) / susceptible
    out = np.empty((len(g), days + 1))
    for d in range(days + 1):
        new = np.minimum(beta * susceptible * infectious, susceptible)
        out[:, d] = new
        susceptible, infectious = susceptible - new, infectious + new - gamma * infectious
    return s.reported_share * out


@functools.lru_cache(maxsize=8)
def _sir_cached(s: Scenario, rates: tuple[float, ...], days: int) -> np.ndarray:
    """`sir_cases` once per scenario, rates and horizon: a projection asks for the same curve several times."""
    out = sir_cases(s, np.array(rates), days)
    out.flags.writeable = False
    return out


def case_curve(s: Scenario, t: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Reported cases per day at times `t` (days from today, any real) for each growth rate: (rates, times).

    Before today (t < 0) cases follow each rate's exponential; from today on, the exponential or, with a
    population, the SIR curve (log-linear between whole days). Capped at RUN_CASES_CAP.
    """
    t = np.asarray(t, dtype=float)
    rates = np.asarray(rates, dtype=float).reshape(-1, 1)
    with np.errstate(over="ignore"):
        out = s.cases_per_day * np.exp(np.minimum(rates * t, 700.0))
    if s.population is not None and (t > 0).any():
        daily = np.log(np.maximum(_sir_cached(s, tuple(rates[:, 0]), math.ceil(t.max())), 1e-300))
        ahead = np.flatnonzero(t > 0)
        low = np.floor(t[ahead]).astype(int)
        frac = t[ahead] - low
        high = np.minimum(low + 1, daily.shape[1] - 1)
        out[:, ahead] = np.exp((1 - frac) * daily[:, low] + frac * daily[:, high])
    return np.minimum(out, RUN_CASES_CAP)


@dataclass(frozen=True)
class Uncertainty:
    """What the band lets vary besides chance, each drawn uniformly and independently per run.

    icu_per_case: range of ICU admissions per reported case (low, high), e.g. the two ends; None keeps it
    at the value in use. los_spread: the mean stay varies within ± this share of it. growth_spread: the
    growth rate (per day, ln of the daily ratio) varies within ± this.
    """

    icu_per_case: tuple[float, float] | None = None
    los_spread: float = 0.3
    growth_spread: float = 0.005

    def __post_init__(self) -> None:
        problems = _range_problems(
            [
                (self.los_spread, 0, 0.9, False, "spread of the mean stay"),
                (self.growth_spread, 0, 0.2, False, "spread of the growth rate (per day)"),
            ]
        )
        if self.icu_per_case is not None:
            low, high = self.icu_per_case
            if not (_number(low) is not None and _number(high) is not None and 0 <= low <= high <= 1):
                problems.append(f"ICU admissions per case range must satisfy 0 ≤ low ≤ high ≤ 1 (got {low}, {high})")
        if problems:
            raise CapacityInputError("; ".join(problems))

    def describe(self, los_days: float) -> str:
        """The ranges in words, for the page, the CLI and the JSON."""
        icu = (
            "ICU admissions per reported case fixed at the value in use"
            if self.icu_per_case is None
            else f"ICU admissions per reported case {self.icu_per_case[0]:.2%} to {self.icu_per_case[1]:.2%}"
        )
        low, high = los_days * (1 - self.los_spread), los_days * (1 + self.los_spread)
        return (
            f"{icu}; mean stay {low:.1f} to {high:.1f} days; growth rate ± {self.growth_spread:.2%} per day "
            "(each uniform, independent, one draw per run)"
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


def need_from_icu_table(icu: pd.DataFrame, end: IcuEnd = "lower") -> pd.DataFrame:
    """Per threshold: ICU admissions and missed deaths per reported case, from the model's ICU table.

    ICU rates are per flagged / unflagged reported case (all the test split's cases, `case_flagged_share`
    of them flagged), so per reported case they are weighted by that share and add up to the same total at
    every threshold. Deaths use the known-outcome patients (`flagged_share`, as thresholds.csv).
    """
    if end not in ICU_ENDS:
        raise CapacityInputError(f"the ICU end must be one of {', '.join(ICU_ENDS)} (got {end!r})")
    t = _check_columns(icu, ICU_TABLE_COLUMNS, f"evaluation/{ICU_TABLE}")
    suffix = "" if end == "lower" else "_upper"
    flagged, cases = t["flagged_share"].clip(0.0, 1.0), t["case_flagged_share"].clip(0.0, 1.0)
    return pd.DataFrame(
        {
            "threshold": t["threshold"],
            "flagged_share": flagged,
            "recall": t["recall"],
            "case_flagged_share": cases,
            "icu_per_case_flagged": cases * t[f"icu_rate_flagged{suffix}"],
            "icu_per_case_unflagged": (1.0 - cases) * t[f"icu_rate_unflagged{suffix}"],
            "missed_deaths_per_case": (1.0 - flagged) * t["death_rate_unflagged"],
            "deaths_per_case": flagged * t["death_rate_flagged"] + (1.0 - flagged) * t["death_rate_unflagged"],
        }
    )


def need_from_constant(thresholds: pd.DataFrame, prevalence: float, icu_per_case: float) -> pd.DataFrame:
    """Per threshold, with a constant share of every reported case admitted to the ICU, flagged or not.

    The fallback when the model has no ICU table (and the explicit override): ICU need is assumed not to
    depend on the flag, which understates the flagged part. `thresholds` has `threshold`, `flagged_share`,
    `recall` (evaluation/thresholds.csv); missed deaths per case = prevalence × (1 − recall).
    """
    if _number(icu_per_case) is None or not 0.0 <= icu_per_case <= 1.0:
        raise CapacityInputError(f"ICU admissions per reported case must be between 0 and 1 (got {icu_per_case})")
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
            "case_flagged_share": flagged,
            "icu_per_case_flagged": flagged * icu_per_case,
            "icu_per_case_unflagged": (1.0 - flagged) * icu_per_case,
            "missed_deaths_per_case": prevalence * (1.0 - t["recall"]),
            "deaths_per_case": prevalence,
        }
    )


@dataclass(frozen=True)
class Need:
    """What flagging risk >= threshold means per reported case (one row of a need table)."""

    threshold: float
    flagged_share: float  # among known-outcome patients (recall's denominator population)
    recall: float
    case_flagged_share: float  # among all reported cases: the patients put under surveillance
    icu_per_case_flagged: float  # ICU admissions among flagged patients per reported case
    icu_per_case_unflagged: float  # ICU admissions among unflagged patients per reported case
    missed_deaths_per_case: float  # deaths among unflagged patients per reported case (known-outcome rate)
    deaths_per_case: float  # all deaths per reported case (known-outcome rate)

    @property
    def icu_per_case(self) -> float:
        """All ICU admissions per reported case: the same at every threshold."""
        return self.icu_per_case_flagged + self.icu_per_case_unflagged


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
    icu = float(last["icu_per_case_flagged"] + last["icu_per_case_unflagged"])
    return Need(float(threshold), 0.0, 0.0, 0.0, 0.0, icu, deaths, deaths)


def icu_per_case_total(need: pd.DataFrame) -> float:
    """ICU admissions per reported case of a need table (flagged + unflagged, any row)."""
    row = need.iloc[0]
    return float(row["icu_per_case_flagged"] + row["icu_per_case_unflagged"])


# --- stays ----------------------------------------------------------------------------------------


def residual_share(t: np.ndarray | float, mean: np.ndarray | float, shape: float) -> np.ndarray:
    """P(a patient in the ICU at a random moment stays more than t further days); broadcasts t and mean.

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


def _expected_new_census(admissions: np.ndarray, means: np.ndarray, shape: float) -> np.ndarray:
    """Admitted patients still in the ICU at the end of each day, one row per run (its own admissions and stay)."""
    n = admissions.shape[1]
    means = means.reshape(-1, 1)
    kernels = means * -np.diff(residual_share(np.arange(n + 1)[None, :], means, shape), axis=1)
    return np.maximum(fftconvolve(admissions, kernels, axes=1)[:, :n], 0.0)


# --- the 90% band -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """5th and 95th percentile of the total ICU census per day over `runs` seeded simulation runs."""

    low: np.ndarray
    high: np.ndarray
    runs: int
    seed: int
    method: Literal["patients", "census distribution"]
    uncertainty: str  # the parameter ranges drawn per run, in words
    # First day over capacity in each run (-1: never), patient-level runs only.
    saturation_days: np.ndarray | None = None

    @property
    def description(self) -> str:
        if self.method == "patients":
            chance = "Poisson admissions each day, each patient's stay drawn from the stay distribution"
        else:
            chance = (
                "each day's census drawn from its exact distribution (Poisson for admissions, binomial for "
                "today's patients): too many patients to simulate one by one"
            )
        return f"{self.runs} simulated runs (seed {self.seed}). Per run: {self.uncertainty}. Then {chance}."


def simulate_census(
    admissions: np.ndarray,
    census_today: int,
    mean: float | np.ndarray,
    shape: float,
    *,
    runs: int = DEFAULT_RUNS,
    seed: int = DEFAULT_SEED,
) -> tuple[np.ndarray, Literal["patients", "census distribution"]]:
    """Census samples, shape (runs, days): Poisson arrivals and sampled stays, patient by patient.

    `admissions` is one expected curve for every run (days,) or one per run (runs, days); `mean` the mean
    stay, one or one per run. Beyond PATIENT_BUDGET patients it samples each day's census from its exact
    marginal law instead (an infinite-server queue with Poisson arrivals has a Poisson census): the band
    is the same, but runs are no longer paths through time.
    """
    admissions = np.broadcast_to(np.asarray(admissions, dtype=float), (runs, np.shape(admissions)[-1]))
    means = np.broadcast_to(np.asarray(mean, dtype=float), (runs,))
    n = admissions.shape[1]
    rng = np.random.default_rng(seed)
    today = int(census_today)
    if runs * today + admissions.sum() > PATIENT_BUDGET:
        new = _expected_new_census(admissions, means, shape)
        stay = residual_share(np.arange(1, n + 1)[None, :], means[:, None], shape) if today else 0.0
        return rng.poisson(new) + rng.binomial(today, stay), "census distribution"
    counts = rng.poisson(admissions)
    # Admitted patients: arrival day d, uniform time in the day, gamma stay; gone by the end of day floor(leave).
    run_of = np.repeat(np.arange(runs), counts.sum(axis=1))
    leave = np.repeat(np.tile(np.arange(n), runs), counts.ravel()) + rng.random(run_of.size)
    leave += rng.gamma(shape, means[run_of] / shape)
    # Today's patients: remaining stay = U × (length-biased stay), and length-biased gamma(k) is gamma(k + 1).
    today_run = np.repeat(np.arange(runs), today)
    run_of = np.concatenate([run_of, today_run])
    leave = np.concatenate([leave, rng.random(today_run.size) * rng.gamma(shape + 1.0, means[today_run] / shape)])
    gone_day = np.minimum(np.floor(leave), n).astype(np.int64)
    departures = np.bincount(run_of * (n + 1) + gone_day, minlength=runs * (n + 1)).reshape(runs, n + 1)[:, :n]
    arrivals = counts.copy()
    arrivals[:, 0] += today
    return np.cumsum(arrivals, axis=1) - np.cumsum(departures, axis=1), "patients"


@dataclass(frozen=True)
class Draws:
    """One value per run of each uncertain input."""

    icu_per_case: np.ndarray
    los_days: np.ndarray
    growth_rate: np.ndarray


def draw_parameters(s: Scenario, icu_per_case: float, u: Uncertainty, runs: int, seed: int) -> Draws:
    """Uniform, independent draws within the ranges of `u` (a stream of its own, so chance is unchanged)."""
    rng = np.random.default_rng([seed, 1])
    low, high = u.icu_per_case if u.icu_per_case is not None else (icu_per_case, icu_per_case)
    return Draws(
        icu_per_case=rng.uniform(low, high, runs),
        los_days=s.los_days * rng.uniform(1 - u.los_spread, 1 + u.los_spread, runs),
        growth_rate=s.growth_rate + rng.uniform(-u.growth_spread, u.growth_spread, runs),
    )


def census_band(
    s: Scenario,
    icu_per_case: float,
    u: Uncertainty,
    *,
    runs: int = DEFAULT_RUNS,
    seed: int = DEFAULT_SEED,
) -> Band:
    """The 90% band of the total census per day, and each run's first day over the beds."""
    draws = draw_parameters(s, icu_per_case, u, runs, seed)
    t = np.arange(s.days + 1, dtype=float) - s.delay_days
    arriving = draws.icu_per_case[:, None] * case_curve(s, t, draws.growth_rate)
    samples, method = simulate_census(arriving, int(s.census), draws.los_days, s.los_shape, runs=runs, seed=seed)
    low, high = np.quantile(samples, BAND, axis=0)
    saturation_days = None
    if method == "patients":
        over = samples > s.beds
        saturation_days = np.where(over.any(axis=1), over.argmax(axis=1), -1)
    return Band(low, high, runs, seed, method, u.describe(s.los_days), saturation_days)


# --- queueing ---------------------------------------------------------------------------------------------

RECURSION_SERVERS = 5000  # Erlang-B by its recursion up to this many beds; above, the same sum in log space


def erlang_b(load: float, servers: int) -> float:
    """Erlang loss formula: P(an arriving patient finds all `servers` beds taken) at offered load λ·W.

    Recursion B(0) = 1, B(n) = A·B(n−1) / (n + A·B(n−1)): stable for any size (the textbook ratio of
    A^N/N! to a sum overflows). Above RECURSION_SERVERS beds the same quantity is summed in log space
    (`_erlang_b_log`), so time does not grow with the beds. Insensitive to the stay beyond its mean.
    """
    if not (math.isfinite(load) and load >= 0) or servers < 0 or int(servers) != servers:
        raise CapacityInputError(f"Erlang-B needs a load ≥ 0 and a whole number of beds ≥ 0 (got {load}, {servers})")
    if servers > RECURSION_SERVERS:
        return _erlang_b_log(load, int(servers))
    blocked = 1.0
    for n in range(1, int(servers) + 1):
        blocked = load * blocked / (n + load * blocked)
        if blocked == 0.0:  # underflow: far more beds than load, and more beds only lower it
            break
    return blocked


def _erlang_b_log(load: float, servers: int) -> float:
    """1 / B(N) = Σ_j N! / ((N − j)! A^j), summed over the terms that matter, in log space.

    The recursion unrolled. Terms peak at j* = max(0, N − A) and fall by more than e^−50 within
    √(100 N) + 50 of it on either side, so only that window is summed: O(√N) work for any N.
    """
    if load == 0:
        return 0.0
    n = servers
    peak = max(0, n - math.floor(load))
    width = math.ceil(math.sqrt(100.0 * n)) + 50
    j = np.arange(max(0, peak - width), min(n, peak + width) + 1, dtype=float)
    terms = gammaln(n + 1.0) - gammaln(n - j + 1.0) - j * math.log(load)
    return float(math.exp(-logsumexp(terms)))


def beds_for_blocking(load: float, target: float, limit: int = MAX_BEDS) -> int | None:
    """Fewest beds for which Erlang-B is at most `target` (0 < target < 1); None when more than `limit`.

    Bounded: Erlang-B falls as beds rise, so a bisection between the lower bound A(1 − target) (B ≥ 1 − N/A)
    and `limit` needs at most ~20 evaluations, each O(√N).
    """
    if not 0.0 < target < 1.0:
        raise CapacityInputError(f"the blocking target must be between 0 and 1 (got {target})")
    if not (math.isfinite(load) and load >= 0):
        raise CapacityInputError(f"the offered load must be a number ≥ 0 (got {load})")
    if erlang_b(load, limit) > target:
        return None
    low, high = max(0, math.floor(load * (1 - target)) - 1), limit  # B(low) > target (or low = 0) ≥ B(high)
    while high - low > 1:
        mid = (low + high) // 2
        if erlang_b(load, mid) <= target:
            high = mid
        else:
            low = mid
    return high


def beds_text(beds: int | None, limit: int = MAX_BEDS) -> str:
    """A bed count, or "more than <limit>" where the search stopped."""
    return f"more than {limit:,}" if beds is None else f"{beds:,}"


def saturation_day(census: np.ndarray, beds: float) -> int | None:
    """First day whose census exceeds `beds`, or None within the horizon."""
    over = np.flatnonzero(np.asarray(census) > beds + 1e-9)
    return int(over[0]) if over.size else None


# --- surveillance: what the threshold costs ------------------------------------------------------------------


@dataclass(frozen=True)
class Surveillance:
    """Follow-up of flagged cases: each is followed `follow_days` days from its report, by a team that can
    follow `capacity` patients at once."""

    follow_days: int = DEFAULT_FOLLOW_DAYS
    capacity: float = DEFAULT_SURVEILLANCE_CAPACITY

    def __post_init__(self) -> None:
        problems = _range_problems(
            [
                (self.follow_days, 1, 365, True, "days a flagged case is followed"),
                (self.capacity, 0, 1e9, True, "patients the surveillance team can follow at once"),
            ]
        )
        if problems:
            raise CapacityInputError("; ".join(problems))


def followed_cases(s: Scenario, follow_days: int) -> np.ndarray:
    """Cases reported within the last `follow_days` days (today included) at the end of each day 0..days."""
    t = np.arange(s.days + 1, dtype=float)[:, None] - np.arange(int(follow_days), dtype=float)[None, :]
    return case_curve(s, t.ravel(), np.array([s.growth_rate]))[0].reshape(t.shape).sum(axis=1)


FitStatus = Literal["fits_all", "fits", "none"]


@dataclass(frozen=True)
class Fit:
    """The threshold whose surveillance load fits the team: the highest recall that never exceeds it.

    `fits_all`: even the lowest stored threshold fits; `none`: no threshold that flags anybody fits
    (`need` is then None). A threshold that flags nobody is never offered as a fit.
    """

    status: FitStatus
    need: Need | None


def surveillance_fit(s: Scenario, surveillance: Surveillance, need: pd.DataFrame) -> Fit:
    """Every stored threshold at once: the load is the flagged share of all cases × cases followed."""
    peak = float(followed_cases(s, surveillance.follow_days).max())
    shares = need["case_flagged_share"].to_numpy(dtype=float)
    fits = (shares > 0) & (shares * peak <= surveillance.capacity * (1 + 1e-12))
    if not fits.any():
        return Fit("none", None)
    candidates = need[fits]
    best = candidates[candidates["recall"] == candidates["recall"].max()].sort_values("threshold").iloc[-1]
    row = Need(*(float(best[c]) for c in NEED_COLUMNS))
    return Fit("fits_all" if fits[shares > 0].all() else "fits", row)


def steady_state_curve(need: pd.DataFrame, cases_per_day: float, surveillance: Surveillance) -> pd.DataFrame:
    """Per stored threshold at a constant case rate: patients under surveillance (Little's law) and deaths missed.

    Sorted by recall (ties: highest threshold first); `fits` marks a load within the team's capacity.
    """
    shares = need["case_flagged_share"].to_numpy(dtype=float)
    curve = pd.DataFrame(
        {
            "threshold": need["threshold"].to_numpy(dtype=float),
            "recall": need["recall"].to_numpy(dtype=float),
            "case_flagged_share": shares,
            "under_surveillance": cases_per_day * shares * surveillance.follow_days,
            "deaths_missed_per_day": cases_per_day * need["missed_deaths_per_case"].to_numpy(dtype=float),
        }
    )
    curve["fits"] = curve["under_surveillance"] <= surveillance.capacity + 1e-9
    return curve.sort_values(["recall", "threshold"], ascending=[True, False], kind="stable").reset_index(drop=True)


SaturationStatus = Literal["never_saturates", "saturates", "saturated_always"]


@dataclass(frozen=True)
class Saturation:
    """The steady-state operating point where the surveillance team is as busy as it may be.

    `never_saturates`: even the highest recall fits; `saturates`: the highest recall that fits;
    `saturated_always`: even the lowest recall overflows (the point is that lowest recall).
    """

    status: SaturationStatus
    recall: float
    threshold: float
    under_surveillance: float
    deaths_missed_per_day: float


def steady_state_saturation(curve: pd.DataFrame) -> Saturation:
    """Where `steady_state_curve` stops fitting."""
    fits = curve[curve["fits"]]
    if fits.empty:
        status: SaturationStatus = "saturated_always"
        row = curve.iloc[0]
    else:
        # Among equal recalls take the highest threshold: same deaths caught, fewest followed.
        row = fits[fits["recall"] == fits["recall"].max()].sort_values("threshold").iloc[-1]
        status = "never_saturates" if bool(curve["fits"].all()) else "saturates"
    return Saturation(
        status=status,
        recall=float(row["recall"]),
        threshold=float(row["threshold"]),
        under_surveillance=float(row["under_surveillance"]),
        deaths_missed_per_day=float(row["deaths_missed_per_day"]),
    )


# --- projection -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Projection:
    """Day-by-day outlook of total ICU demand, and the threshold's share of it.

    `days` columns: day, cases, admissions (flagged) and admissions_unflagged (their sum is all ICU
    admissions, the same at any threshold), census (everyone: today's patients and all admissions),
    census_flagged (the flagged admissions still there), census_p05, census_p95 (NaN without a band),
    beds_free, overflow (patients beyond the beds), under_surveillance (flagged cases being followed),
    deaths_missed (among cases reported that day), deaths_missed_cumulative, supported (inside what the
    inputs support: see `supported_until`).
    """

    scenario: Scenario
    need: Need
    surveillance: Surveillance
    days: pd.DataFrame
    saturation_day: int | None
    steady_state_census: float  # λ·W with λ = today's ICU admissions per day, everyone (patients)
    erlang_b: float  # P(an arriving ICU patient finds no free bed) at that steady state
    beds_for_1pct: int | None  # None: more than MAX_BEDS
    band: Band | None
    supported_until: int  # last day the projection still describes a hospital
    unsupported_reason: str | None

    @property
    def shown(self) -> pd.DataFrame:
        """The days inside what the inputs support (all of them unless `unsupported_reason`)."""
        return self.days.iloc[: self.supported_until + 1]

    @property
    def peak_census(self) -> float:
        return float(self.shown["census"].max())

    @property
    def peak_surveillance(self) -> float:
        return float(self.days["under_surveillance"].max())


def admissions(s: Scenario, icu_per_case: float) -> np.ndarray:
    """ICU admissions per day: cases reported `delay_days` earlier × ICU admissions per reported case."""
    return icu_per_case * s.cases(shift=s.delay_days)


def supported_until(s: Scenario, census: np.ndarray) -> tuple[int, str | None]:
    """Last day whose expected census a hospital plan can stand on, and why the rest cannot be.

    Above SUPPORTED_BEDS_MULTIPLE × the beds (at least that many patients), or above the population,
    the inputs (usually growth held too long) describe no hospital: the page and CLI say so.
    """
    limit = SUPPORTED_BEDS_MULTIPLE * max(float(s.beds), 1.0)
    what = f"{SUPPORTED_BEDS_MULTIPLE} times the beds"
    if s.population is not None and s.population < limit:
        limit, what = float(s.population), "the population"
    over = np.flatnonzero(census > limit)
    if not over.size:
        return len(census) - 1, None
    day = int(over[0])
    advice = (
        "a shorter horizon, a longer doubling time, or susceptible depletion (a population)"
        if s.population is None
        else "a shorter horizon or a longer doubling time"
    )
    reason = (
        f"from day {day} the expected ICU census ({census[day]:,.0f} patients) is above {limit:,.0f}, {what}: "
        f"with cases {s.growth} for {s.days} days the inputs no longer describe one hospital. The projection "
        f"stops at day {max(day - 1, 0)}; use {advice}"
    )
    return max(day - 1, 0), reason


def project(
    s: Scenario,
    need: Need,
    *,
    surveillance: Surveillance | None = None,
    uncertainty: Uncertainty | None = None,
    band: bool = True,
    runs: int = DEFAULT_RUNS,
    seed: int = DEFAULT_SEED,
) -> Projection:
    """Total ICU census, its band, saturation day, Erlang-B and beds for 1%; surveillance load; deaths missed."""
    surveillance = surveillance or Surveillance()
    uncertainty = uncertainty or Uncertainty()
    flagged, unflagged = admissions(s, need.icu_per_case_flagged), admissions(s, need.icu_per_case_unflagged)
    census = expected_census(flagged + unflagged, s.census, s.los_days, s.los_shape)
    spread = census_band(s, need.icu_per_case, uncertainty, runs=runs, seed=seed) if band else None
    cases = s.cases()
    missed = need.missed_deaths_per_case * cases
    last, reason = supported_until(s, census)
    days = pd.DataFrame(
        {
            "day": np.arange(s.days + 1),
            "cases": cases,
            "admissions": flagged,
            "admissions_unflagged": unflagged,
            "census": census,
            "census_flagged": expected_census(flagged, 0.0, s.los_days, s.los_shape),
            "census_p05": spread.low if spread else np.nan,
            "census_p95": spread.high if spread else np.nan,
            "beds_free": np.maximum(s.beds - census, 0.0),
            "overflow": np.maximum(census - s.beds, 0.0),
            "under_surveillance": need.case_flagged_share * followed_cases(s, surveillance.follow_days),
            "deaths_missed": missed,
            "deaths_missed_cumulative": np.cumsum(missed),
            "supported": np.arange(s.days + 1) <= last,
        }
    )
    load = need.icu_per_case * s.cases_per_day * s.los_days
    return Projection(
        scenario=s,
        need=need,
        surveillance=surveillance,
        days=days,
        saturation_day=saturation_day(census[: last + 1], s.beds),
        steady_state_census=float(load),
        erlang_b=erlang_b(float(load), int(s.beds)),
        beds_for_1pct=beds_for_blocking(float(load), 0.01),
        band=spread,
        supported_until=last,
        unsupported_reason=reason,
    )


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


@dataclass(frozen=True)
class IcuNeed:
    """The need table in use, where its ICU rates come from, and ICU admissions per case at both ends."""

    table: pd.DataFrame
    source: IcuSource
    end: IcuEnd | None  # None for a constant
    ends: tuple[float, float]  # ICU admissions per reported case, lower and upper end (equal for a constant)
    card: dict[str, Any] = field(repr=False)


def load_need(model_dir: str | os.PathLike[str], end: IcuEnd = "lower", icu_per_case: float | None = None) -> IcuNeed:
    """The model's ICU table at `end`, unless `icu_per_case` is given (the explicit override) or the model
    has none (then DEFAULT_ICU_PER_CASE, CDC's 2%)."""
    card = artifact.load_card(model_dir)
    icu = read_icu_table(model_dir)
    if icu is not None and icu_per_case is None:
        lower, upper = need_from_icu_table(icu, "lower"), need_from_icu_table(icu, "upper")
        ends = (icu_per_case_total(lower), icu_per_case_total(upper))
        return IcuNeed(lower if end == "lower" else upper, "model", end, ends, card)
    share = DEFAULT_ICU_PER_CASE if icu_per_case is None else icu_per_case
    table = need_from_constant(artifact.load_table(model_dir, "thresholds"), card_prevalence(card), share)
    return IcuNeed(table, "constant", None, (share, share), card)


def icu_source_text(need: IcuNeed) -> str:
    """Where the ICU admissions per case come from, in one sentence (CLI, JSON, page)."""
    low, high = need.ends
    if need.source == "constant":
        return (
            f"a constant {low:.2%} of reported cases admitted to the ICU, flagged or not (without the model's ICU "
            "table: CDC's 2% of 1,320,488 cases, MMWR 2020;69(24))"
        )
    if need.end is None:
        raise ValueError("an ICU need from the model's table names its end ('lower' or 'upper'); this one has none")
    return (
        f"the model's ICU table, {need.end} end: {ICU_ENDS[need.end]}. ICU admissions per reported case: "
        f"{low:.2%} (lower end) to {high:.2%} (upper end)"
    )


# --- command line ---------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, exit code 2 (argparse prints the whole usage first)."""
        self.exit(exit_codes.BAD_INPUT, f"error: {message} (see python -m model.capacity --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m model.capacity",
        description="Project COVID-19 ICU demand day by day for all reported cases, and the flagged patients' share.",
    )
    default_dir = str(artifact.model_dir_from_env())
    p.add_argument("--model-dir", type=Path, default=Path(default_dir), help=f"model directory (default {default_dir})")
    p.add_argument("--cases-per-day", type=float, required=True, help="new reported cases today")
    p.add_argument("--doubling-days", type=float, help="doubling time in days; negative = halving time; omit for flat")
    p.add_argument("--population", type=float, help="people who can be infected: cases follow an SIR curve (CHIME)")
    p.add_argument("--reported-share", type=float, default=0.1, help="with --population: infections reported (0.1)")
    p.add_argument("--infectious-days", type=float, default=DEFAULT_INFECTIOUS_DAYS, help="with --population (14)")
    p.add_argument("--beds", type=float, required=True, help="staffed ICU beds for COVID-19")
    p.add_argument("--los-days", type=float, required=True, help="mean ICU length of stay (days)")
    p.add_argument("--los-shape", type=float, default=1.0, help="gamma shape of the stay (1 = exponential; default 1)")
    p.add_argument("--census", type=float, default=0.0, help="COVID-19 patients in the ICU today (default 0)")
    p.add_argument("--delay-days", type=float, default=0.0, help="days from case report to ICU admission (default 0)")
    p.add_argument("--days", type=int, default=90, help="horizon in days (default 90)")
    p.add_argument("--threshold", type=float, help="operating threshold, flag = risk >= it (default: 'high' band)")
    p.add_argument("--icu-end", choices=list(ICU_ENDS), default="lower", help="ICU admissions per case (lower)")
    p.add_argument("--icu-per-case", type=float, help="override: constant ICU admissions per reported case")
    p.add_argument("--fixed-icu", action="store_true", help="band: keep ICU per case fixed (default: between ends)")
    p.add_argument("--los-spread", type=float, default=0.3, help="band: mean stay ± this share (default 0.3)")
    p.add_argument("--growth-spread", type=float, default=0.005, help="band: growth rate ± this per day (0.005)")
    p.add_argument("--follow-days", type=int, default=DEFAULT_FOLLOW_DAYS, help="days a flagged case is followed")
    p.add_argument(
        "--surveillance-capacity", type=float, default=DEFAULT_SURVEILLANCE_CAPACITY, help="followed at once"
    )
    p.add_argument("--runs", type=int, default=DEFAULT_RUNS, help=f"simulation runs for the band ({DEFAULT_RUNS})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"simulation seed ({DEFAULT_SEED})")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return p


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN and infinities to null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fit_summary(fit: Fit) -> dict[str, Any]:
    n = fit.need
    return {
        "status": fit.status,
        "threshold": n.threshold if n else None,
        "recall": n.recall if n else None,
        "case_flagged_share": n.case_flagged_share if n else None,
    }


def summary(p: Projection, fit: Fit, need: IcuNeed, note: str) -> dict[str, Any]:
    """Everything the CLI reports, as one JSON-ready object."""
    s, band, now = p.scenario, p.band, p.need
    out: dict[str, Any] = {
        "scenario": {**{k: _plain(v) for k, v in vars(s).items()}, "growth": s.growth},
        "threshold": now.threshold,
        "flagged_share": now.flagged_share,
        "case_flagged_share": now.case_flagged_share,
        "recall": now.recall,
        "icu_source": need.source,
        "icu_end": need.end,
        "icu_source_text": icu_source_text(need),
        "icu_per_case_ends": {"lower": need.ends[0], "upper": need.ends[1]},
        "icu_per_case": now.icu_per_case,
        "icu_per_case_flagged": now.icu_per_case_flagged,
        "icu_per_case_unflagged": now.icu_per_case_unflagged,
        "days": [{k: _plain(v) for k, v in row.items()} for row in p.days.to_dict(orient="records")],
        "supported_until_day": p.supported_until,
        "unsupported_reason": p.unsupported_reason,
        "saturation_day": p.saturation_day,
        "peak_census": p.peak_census,
        "steady_state_census": p.steady_state_census,
        "erlang_b": p.erlang_b,
        "beds_for_1pct_blocking": p.beds_for_1pct,
        "beds_for_1pct_blocking_text": beds_text(p.beds_for_1pct),
        "surveillance": {
            "follow_days": p.surveillance.follow_days,
            "capacity": p.surveillance.capacity,
            "peak_load": p.peak_surveillance,
            "fit": _fit_summary(fit),
        },
        "deaths_missed_per_case": now.missed_deaths_per_case,
        "deaths_missed_total": float(p.days["deaths_missed"].sum()),
        "death_rate_note": note,
    }
    if band is not None:
        out["band"] = {"runs": band.runs, "seed": band.seed, "method": band.method, "percentiles": list(BAND)}
        out["band"]["description"] = band.description
        if band.saturation_days is not None:
            out["band"]["runs_saturating"] = float((band.saturation_days >= 0).mean())
    return out


def _text(report: dict[str, Any]) -> str:
    s = report["scenario"]
    lines = [
        f"ICU admissions per reported case {report['icu_per_case']:.2%} ({report['icu_source_text']}).",
        f"Threshold {report['threshold']:.4f}: flags {report['case_flagged_share']:.1%} of reported cases, recall "
        f"{report['recall']:.3f}; {report['icu_per_case_flagged']:.2%} of cases are flagged ICU admissions, "
        f"{report['icu_per_case_unflagged']:.2%} unflagged ones.",
        f"Cases {s['cases_per_day']:,.0f}/day, {s['growth']}; {s['beds']:,.0f} beds; stay {s['los_days']:g} days "
        f"(shape {s['los_shape']:g}); census today {s['census']:,.0f}; delay {s['delay_days']:g} days.",
        "",
        f"{'day':>4} {'cases':>10} {'ICU adm':>8} {'flagged':>8} {'census':>9} {'90% band':>17} {'followed':>9}",
    ]
    for d in report["days"][: report["supported_until_day"] + 1]:
        low, high = d["census_p05"], d["census_p95"]
        band = f"{low:,.0f}–{high:,.0f}" if low is not None else "—"
        total = d["admissions"] + d["admissions_unflagged"]
        lines.append(
            f"{d['day']:>4} {d['cases']:>10,.0f} {total:>8,.1f} {d['admissions']:>8,.1f} {d['census']:>9,.1f} "
            f"{band:>17} {d['under_surveillance']:>9,.0f}"
        )
    if report["unsupported_reason"]:
        lines += ["", f"Not shown: {report['unsupported_reason']}."]
    return "\n".join(lines + _text_footer(report))


def _text_footer(report: dict[str, Any]) -> list[str]:
    s, sat, surv = report["scenario"], report["saturation_day"], report["surveillance"]
    lines = [
        "",
        f"First day over capacity: {'none within the horizon' if sat is None else f'day {sat}'}.",
        f"Steady state at today's case rate: {report['steady_state_census']:,.1f} ICU patients; P(no free bed) "
        f"(Erlang-B, {s['beds']:,.0f} beds) = {report['erlang_b']:.4f}; beds for ≤ 1%: "
        f"{report['beds_for_1pct_blocking_text']}.",
        f"Surveillance: up to {surv['peak_load']:,.0f} flagged patients followed at once ({surv['follow_days']} "
        f"days each) against a capacity of {surv['capacity']:,.0f}.",
    ]
    fit = surv["fit"]
    if fit["status"] == "none":
        lines.append("No threshold that flags anybody keeps the surveillance load within its capacity.")
    else:
        lines.append(
            f"Threshold that fits the surveillance capacity: {fit['threshold']:.4f} (recall {fit['recall']:.3f})."
        )
    if "band" in report:
        lines.append(f"Band: {report['band']['description']}")
    lines.append(
        f"Deaths missed over {s['days']} days: {report['deaths_missed_total']:,.1f}. {report['death_rate_note']}"
    )
    return lines


def _inputs(args: argparse.Namespace) -> tuple[Scenario, Surveillance, float]:
    """The CLI's scenario, surveillance and threshold, validated (CapacityInputError says what to change)."""
    threshold = schema.DEFAULT_THRESHOLD if args.threshold is None else args.threshold
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
        population=args.population,
        reported_share=args.reported_share,
        infectious_days=args.infectious_days,
    )
    return scenario, Surveillance(args.follow_days, args.surveillance_capacity), threshold


def _run(args: argparse.Namespace) -> dict[str, Any]:
    scenario, surveillance, threshold = _inputs(args)
    need = load_need(args.model_dir, args.icu_end, args.icu_per_case)
    uncertainty = Uncertainty(None if args.fixed_icu else need.ends, args.los_spread, args.growth_spread)
    now = need_at(need.table, threshold)
    projection = project(
        scenario, now, surveillance=surveillance, uncertainty=uncertainty, runs=args.runs, seed=args.seed
    )
    fit = surveillance_fit(scenario, surveillance, need.table)
    return summary(projection, fit, need, death_rate_note(now, known_outcome_share(need.card)))


@exit_codes.guarded
def main(argv: list[str] | None = None) -> int:
    """Print the projection (text or --json); 2 for bad input, 70 for a bug (`guarded`)."""
    args = _parser().parse_args(argv)
    try:
        report = _run(args)
    except (CapacityInputError, artifact.ArtifactError) as exc:
        return exit_codes.bad_input(exc)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        return exit_codes.bad_input(
            f"cannot read the model directory {args.model_dir}: {exc}; retrain with `python -m model.train`"
        )
    if report["icu_source"] == "constant" and args.icu_per_case is None:
        print(
            f"note: the model has no evaluation/{ICU_TABLE}; using a constant {DEFAULT_ICU_PER_CASE:.0%} of reported "
            "cases admitted to the ICU (set it with --icu-per-case)",
            file=sys.stderr,
        )
    print(json.dumps(report, allow_nan=False) if args.json else _text(report))
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
