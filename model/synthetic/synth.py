"""Synthetic CDC-like case-surveillance data (current, legacy-2020 and first-wave schema variants).

Why synthetic: the real public file is 10+ GB and only two extracts are available
offline (a first-wave one and a narrow 2020 one). This generator produces files
with the *shape* of the real data (columns, spellings, date formats, blanks, the
large share of Missing/Unknown) and the structure that matters for a risk model:
missingness that depends on severity, and case fatality that falls over
2020-2022. Marginals are calibrated to `../shared/cdc_published_figures.md` and the
severity-dependent reporting to the real first-wave extract; docs/data_card.md
cites every table.

Generative story per row (latent truth first, then what gets reported):

1. case month from the epidemic curve (``MONTHLY_CASES_MILLIONS``, optionally a
   ``months`` window); its period (``PERIODS``) sets the age mix and the fatality;
2. latent age group, sex, pre-existing condition (by age);
3. hospitalisation, then ICU among the hospitalised, logistic in age, sex, condition;
4. death, logistic in age, sex, condition, hospitalisation, ICU and the period's
   odds ratio. The per-age intercepts are solved so that, in the first wave, the
   death share among rows with a *reported* outcome equals the real first-wave
   file's (``FIRST_WAVE_DEATH_SHARE_BY_AGE``);
5. reporting, not at random: each row comes from a reporting style
   (``REPORTING_STYLES``: complete, "sends nothing" -> Missing, "could not find out"
   -> Unknown). A death is recorded far more often than a survival in the styles that
   leave fields blank (vital records find deaths: ``DEATH_HIDE_FACTOR``), so rows whose
   hospitalisation is Unknown die far more often than rows with No, as in the real
   file; and a share of deaths is found only through the death certificate
   (``DEATH_CERTIFICATE_SHARE``): probable cases with Unknown conditions and no dates;
6. dates from the month with specimen and report delays and realistic blanks.

Determinism: every block of ``BLOCK_ROWS`` rows draws its random numbers from its
own stream seeded by ``(seed, block index)``, and every block draws a full block
even when fewer rows are needed. So output depends only on the seed, rows and
options (not on ``chunk_rows``), and N rows are a prefix of M > N rows. All
decisions use common random numbers, so a drifted file (``age_shift``,
``death_rate_multiplier``) differs from the undrifted one only where the shift acts.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from scipy.optimize import brentq
from scipy.special import expit
from scipy.stats import poisson

from model.core import schema
from model.core.exit_codes import BAD_INPUT, guarded
from model.core.provenance import write_provenance

# --- Calibration tables (quoted by docs/data_card.md; checked by tests) -------
# "figures §X" = ../shared/cdc_published_figures.md section X; "first-wave file" =
# ../shared/data/cdc_case_surveillance_first_wave_500k.csv.gz, measured directly.
# Keys are schema spellings.

_AGES = schema.AGE_GROUPS

# Cases by age group. First wave: first public release, June 2020, FULL (figures §2C).
AGE_COUNTS_FIRST_WAVE: dict[str, float] = dict(
    zip(_AGES, (12_998, 35_190, 145_170, 177_016, 184_918, 204_764, 157_546, 92_590, 98_557), strict=True)
)
# Later periods: release of ~31 Mar 2021, FULL, millions read off bar charts (figures §2D, APPROX).
AGE_COUNTS_LATER: dict[str, float] = dict(zip(_AGES, (1.0, 2.4, 4.2, 3.65, 3.3, 3.25, 2.3, 1.27, 0.92), strict=True))

# Share of rows whose age group / sex is reported as a non-informative code instead of the latent value.
# "current" = releases from 2021 on (NA exists), "2020" = 2020 releases (no NA; age "Unknown" existed).
AGE_REPORTED: dict[str, dict[str, float]] = {
    "current": {schema.MISSING: 0.0076, schema.NA: 0.011},  # §2D Missing ≈ 0.17 M / 22.5 M; §2E NA 1.1 %
    "2020": {schema.UNKNOWN: 0.0010, schema.MISSING: 0.00001},  # §2B Unknown 0.10 %; §2A Missing 89 / 8.4 M
}
SEX_REPORTED: dict[str, dict[str, float]] = {
    "current": {"Other": 0.00003, schema.UNKNOWN: 0.007, schema.MISSING: 0.004, schema.NA: 0.034},  # §2B, §2E
    "2020": {"Other": 0.00003, schema.UNKNOWN: 0.0055, schema.MISSING: 0.0023},  # §2B, §2A
}
MALE_SHARE = 0.4756  # latent sex among Female/Male: 2,692,258 / (2,968,353 + 2,692,258) (§2B)

# Race/ethnicity, share of all rows (independent of everything else): §2B's shares among rows not
# Missing, scaled to the FULL file's 7.16 % Missing (§2A).
_RACE_2B = {
    "American Indian/Alaska Native, Non-Hispanic": 30_585,
    "Asian, Non-Hispanic": 116_514,
    "Black, Non-Hispanic": 553_444,
    "Hispanic/Latino": 900_633,
    "Multiple/Other, Non-Hispanic": 202_833,
    "Native Hawaiian/Other Pacific Islander, Non-Hispanic": 15_815,
    "White, Non-Hispanic": 2_022_005,
    schema.UNKNOWN: 1_643_725,
}
RACE_MISSING_SHARE = 0.0716
RACE_MIX: dict[str, float] = {
    **{k: v / sum(_RACE_2B.values()) * (1 - RACE_MISSING_SHARE) for k, v in _RACE_2B.items()},
    schema.MISSING: RACE_MISSING_SHARE,
}
# Case status (§2B: 5,430,230 laboratory-confirmed, 268,131 probable).
CURRENT_STATUS_MIX: dict[str, float] = {"Laboratory-confirmed case": 0.9529, "Probable Case": 0.0471}

# Death share among rows whose death_yn is Yes or No, by age, in the first wave: measured on the
# first-wave file (39,352 deaths among 276,780 known outcomes; 0-9 has 8 deaths, hence above 10-19).
FIRST_WAVE_DEATH_SHARE_BY_AGE: dict[str, float] = dict(
    zip(_AGES, (0.0038, 0.0027, 0.0059, 0.0154, 0.0349, 0.0756, 0.1796, 0.3831, 0.6212), strict=True)
)
# Share of cases hospitalised after the first wave, by age group (latent; the first wave multiplies the odds by
# FIRST_WAVE_HOSP_ODDS_RATIO). Hospitalisations are hidden less often than "No", so the reported Yes share is
# ≈ 12.5 %, between §2B's 13.3 % (subset) and §2D's ≈ 11.6 % (1.05 / 9.05 M); MMWR (§4): 14 % in the first wave.
HOSP_SHARE_BY_AGE: dict[str, float] = dict(
    zip(_AGES, (0.022, 0.013, 0.022, 0.040, 0.062, 0.100, 0.180, 0.300, 0.420), strict=True)
)
# Share of hospitalised cases admitted to ICU, by age group (MMWR §4: 29,837 ICU / 184,673 hospitalised ≈ 16 %).
ICU_SHARE_OF_HOSP_BY_AGE: dict[str, float] = dict(
    zip(_AGES, (0.12, 0.12, 0.10, 0.12, 0.15, 0.19, 0.22, 0.22, 0.15), strict=True)
)
# Share of cases with a pre-existing condition, by age (latent). Overall ≈ 50 % on the later mix:
# §2B 52.2 % Yes among Yes/No, §3C ≈ 48 %.
MEDCOND_SHARE_BY_AGE: dict[str, float] = dict(
    zip(_AGES, (0.15, 0.22, 0.32, 0.42, 0.52, 0.63, 0.75, 0.84, 0.90), strict=True)
)
# Adjusted odds ratios (within an age group) of the logistic models.
DEATH_ODDS_RATIOS: dict[str, float] = {"male": 1.5, "medcond": 2.5, "hosp": 8.0, "icu": 4.0}
HOSP_ODDS_RATIOS: dict[str, float] = {"male": 1.25, "medcond": 3.0}
ICU_ODDS_RATIOS: dict[str, float] = {"male": 1.3, "medcond": 1.5}


@dataclass(frozen=True)
class Period:
    """A stretch of the pandemic: its case months, its age mix, and its fatality against the first wave."""

    name: str
    first_month: str  # "YYYY-MM", inclusive
    last_month: str
    age_counts: Mapping[str, float]
    death_odds_ratio: float  # on every row's odds of death, against the first wave (within a cell)
    hosp_odds_ratio: float = 1.0  # on the odds of hospitalisation, against HOSP_SHARE_BY_AGE


# First-wave cases were more often hospitalised (testing was kept for the sick): 38 % of reported hosp_yn is Yes
# in the first-wave file, against 12-13 % in the later releases (§2B, §2D).
FIRST_WAVE_HOSP_ODDS_RATIO = 2.5

# Fatality falls after the first wave (testing widened to milder cases, then treatment, vaccines, Omicron).
# The ratios are chosen so a first-wave model's observed/expected deaths is ≈ 0.4 in late 2020 and ≈ 0.2 in
# early 2021 as measured on later real files (issue 11), and so cumulative death shares among known outcomes
# land near the published ones: 4.7 % to Nov 2020 (§2B), ≈ 3.4 % to Mar 2021 (§2D), 1.5 % overall (§3D).
PERIODS: tuple[Period, ...] = (
    Period("first wave", "2020-03", "2020-05", AGE_COUNTS_FIRST_WAVE, 1.0, FIRST_WAVE_HOSP_ODDS_RATIO),
    Period("summer 2020", "2020-06", "2020-08", AGE_COUNTS_LATER, 0.40),
    Period("autumn-winter 2020", "2020-09", "2020-12", AGE_COUNTS_LATER, 0.30),
    Period("2021 first half", "2021-01", "2021-06", AGE_COUNTS_LATER, 0.13),
    Period("Delta, 2021 second half", "2021-07", "2021-12", AGE_COUNTS_LATER, 0.15),
    Period("Omicron, 2022", "2022-01", "2022-12", AGE_COUNTS_LATER, 0.045),
)

# Share of all rows reported as Missing (FULL Dec 2020 release, §2A) / Unknown (FULL Mar 2021, §2D, APPROX).
REPORTING_GAPS: dict[str, dict[str, float]] = {
    "death_yn": {schema.MISSING: 0.415, schema.UNKNOWN: 0.102},
    "hosp_yn": {schema.MISSING: 0.384, schema.UNKNOWN: 0.156},
    "icu_yn": {schema.MISSING: 0.735, schema.UNKNOWN: 0.120},
    "medcond_yn": {schema.MISSING: 0.721, schema.UNKNOWN: 0.100},
}
# Rows come from one of three reporting styles (independent of the patient): a source that sends no
# clinical fields (each one Missing with probability STYLE_HIDE), one that reports them as Unknown,
# or a complete one whose gaps are solved to keep each column's marginal share above.
REPORTING_STYLES: dict[str, float] = {"sends nothing": 0.30, "could not find out": 0.09}
STYLE_HIDE = 0.95
# A field whose true value is Yes is hidden with this factor times the probability a No is hidden, per style:
# vital records and follow-up find deaths, hospitals report admissions, a condition gets written down while
# "no condition" needs someone to ask. Set so the first-wave generator reproduces the first-wave file's
# death shares by hosp_yn value (No 2.1 %, Missing 6.0 %, Unknown 32 %, Yes 40 %) and its high share of
# Yes among reported hosp_yn (38 %) and medcond_yn (70 %).
HIDE_FACTOR_IF_YES: dict[str, dict[str, float]] = {
    "death_yn": {"complete": 0.6, "sends nothing": 0.9, "could not find out": 0.08},
    "hosp_yn": {"complete": 0.4, "sends nothing": 0.8, "could not find out": 0.6},
    "icu_yn": {"complete": 0.4, "sends nothing": 0.8, "could not find out": 0.6},
    "medcond_yn": {"complete": 1.0, "sends nothing": 1.0, "could not find out": 1.0},
}
# Latent Yes share of each column over a whole 2020-2022 file, at which the marginal gaps are met exactly
# (elsewhere within about a point).
REFERENCE_YES_SHARE: dict[str, float] = {"death_yn": 0.01, "hosp_yn": 0.08, "icu_yn": 0.013, "medcond_yn": 0.5}
# Deaths found only through the death certificate: probable case (most), conditions/hospital/ICU
# Unknown or Missing, no onset date. In the first-wave file 810 of 1,301 probable cases with Unknown
# conditions and a known outcome died (62 %; 97 % at 80+).
DEATH_CERTIFICATE_SHARE = 0.03
DEATH_CERTIFICATE_PROBABLE = 0.6
DEATH_CERTIFICATE_UNKNOWN = 0.75  # else Missing

# Share of rows with a blank date (FULL Dec 2020 release, §2A); cdc_case_earliest_dt and cdc_report_dt
# are never blank. Death-certificate cases have no onset date.
DATE_BLANK_SHARE: dict[str, float] = {"pos_spec_dt": 0.658, "onset_dt": 0.477}
SPECIMEN_DELAY_MEAN_DAYS = 2.0  # onset -> specimen, Poisson
REPORT_DELAY_MEAN_DAYS = 3.0  # specimen -> report, Poisson
MAX_DELAY_DAYS = 30

# Approximate US cases per month (millions), the epidemic curve the case dates follow.
MONTHLY_CASES_MILLIONS: dict[str, float] = {
    "2020-03": 0.19,
    "2020-04": 0.89,
    "2020-05": 0.72,
    "2020-06": 0.84,
    "2020-07": 1.92,
    "2020-08": 1.47,
    "2020-09": 1.22,
    "2020-10": 1.94,
    "2020-11": 4.49,
    "2020-12": 6.41,
    "2021-01": 6.21,
    "2021-02": 2.40,
    "2021-03": 1.82,
    "2021-04": 1.86,
    "2021-05": 0.94,
    "2021-06": 0.40,
    "2021-07": 1.31,
    "2021-08": 4.29,
    "2021-09": 4.16,
    "2021-10": 2.44,
    "2021-11": 2.53,
    "2021-12": 6.02,
    "2022-01": 20.30,
    "2022-02": 4.13,
    "2022-03": 1.05,
    "2022-04": 1.13,
    "2022-05": 2.93,
    "2022-06": 3.24,
    "2022-07": 3.93,
    "2022-08": 3.10,
    "2022-09": 1.91,
    "2022-10": 1.21,
    "2022-11": 1.32,
    "2022-12": 2.04,
}

# --- Schema variants ------------------------------------------------------------
LEGACY_RACE_COLUMN = "Race and ethnicity (combined)"
_FIRST_WAVE_COLUMNS = tuple(c for c in schema.CURRENT_SCHEMA_COLUMNS if c != "cdc_case_earliest_dt")


@dataclass(frozen=True)
class Variant:
    """How one published schema version writes the same rows."""

    name: str
    columns: tuple[str, ...]  # schema column names, in file order
    race_header: str
    date_style: str  # "ymd" YYYY/MM/DD, "dmy" DD/MM/YYYY, "mdy" M/D/YYYY (no leading zeros)
    era: str  # "current" or "2020": which non-informative codes exist (NA appeared after 2020)

    def header(self) -> list[str]:
        return [self.race_header if c == "race_ethnicity_combined" else c for c in self.columns]


VARIANTS: dict[str, Variant] = {
    # data.cdc.gov from 2021 on (§1.5): 12 columns, YYYY/MM/DD.
    "current": Variant("current", schema.CURRENT_SCHEMA_COLUMNS, "race_ethnicity_combined", "ymd", "current"),
    # 2020 releases (§1.3-1.4) as in ../shared/data/cdc_case_surveillance_extract_11549.csv: DD/MM/YYYY.
    "legacy-2020": Variant("legacy-2020", _FIRST_WAVE_COLUMNS, LEGACY_RACE_COLUMN, "dmy", "2020"),
    # The first-wave extract in ../shared/data: current race name, no cdc_case_earliest_dt, M/D/YYYY.
    "first-wave": Variant("first-wave", _FIRST_WAVE_COLUMNS, "race_ethnicity_combined", "mdy", "2020"),
}
DEFAULT_VARIANT = "current"

# --- Generation constants -------------------------------------------------------
BLOCK_ROWS = 50_000  # random-stream granularity; changing it changes every file
DEFAULT_CHUNK_ROWS = 1_000_000
GZIP_LEVEL = 3  # ~4x faster than 6 for a ~25% larger file
FORMATS = {".csv.gz": "csv.gz", ".csv": "csv", ".parquet": "parquet"}
# Kept for callers that read the current variant's Arrow schema.
OUTPUT_SCHEMA = pa.schema([(name, pa.string()) for name in schema.CURRENT_SCHEMA_COLUMNS])

_EPOCH = dt.date(2020, 1, 1)
_MONTHS = tuple(MONTHLY_CASES_MILLIONS)
_STYLES = ("complete", *REPORTING_STYLES)


def _values(column: str) -> tuple[str, ...]:
    return schema.TARGET_VALUES if column == schema.TARGET else schema.FEATURES_BY_NAME[column].values


def _age_reported(era: str) -> dict[str, float]:
    """Age reporting codes of an era; "Unknown" only where the schema has it (else it is Missing)."""
    table = dict(AGE_REPORTED[era])
    if schema.UNKNOWN in table and schema.UNKNOWN not in _values("age_group"):
        table[schema.MISSING] = table.get(schema.MISSING, 0.0) + table.pop(schema.UNKNOWN)
    return table


def _shares(counts: Mapping[str, float]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()}


def period_of(month: str) -> Period:
    """The period a "YYYY-MM" case month belongs to."""
    for period in PERIODS:
        if period.first_month <= month <= period.last_month:
            return period
    raise ValueError(f"month {month!r} is outside the generated span {_MONTHS[0]}..{_MONTHS[-1]}")


def _check_tables() -> None:
    """Fail at import if the tables and the schema disagree (WHY: a silent mismatch would skew data)."""
    _check_age_keys()
    _check_values()
    _check_sums_and_months()
    _check_reporting_styles()


def _check_age_keys() -> None:
    """Every per-age table is keyed by schema.AGE_GROUPS, in order."""
    for name, table in {
        "AGE_COUNTS_FIRST_WAVE": AGE_COUNTS_FIRST_WAVE,
        "AGE_COUNTS_LATER": AGE_COUNTS_LATER,
        "FIRST_WAVE_DEATH_SHARE_BY_AGE": FIRST_WAVE_DEATH_SHARE_BY_AGE,
        "HOSP_SHARE_BY_AGE": HOSP_SHARE_BY_AGE,
        "ICU_SHARE_OF_HOSP_BY_AGE": ICU_SHARE_OF_HOSP_BY_AGE,
        "MEDCOND_SHARE_BY_AGE": MEDCOND_SHARE_BY_AGE,
    }.items():
        if tuple(table) != _AGES:
            raise RuntimeError(f"model.synthetic.synth.{name} keys must be schema.AGE_GROUPS in order")


def _check_values() -> None:
    """Every mix and reporting table uses only values the schema knows for its column."""
    tables: dict[str, Mapping[str, float]] = {
        "race_ethnicity_combined": RACE_MIX,
        "current_status": CURRENT_STATUS_MIX,
        **REPORTING_GAPS,
    }
    for era in AGE_REPORTED:
        tables[f"age_group ({era})"] = _age_reported(era)
        tables[f"sex ({era})"] = SEX_REPORTED[era]
    for label, table in tables.items():
        unknown = set(table) - set(_values(label.split(" ")[0]))
        if unknown:
            raise RuntimeError(
                f"model.synthetic.synth table for {label} has values not in the schema: {sorted(unknown)}"
            )


def _check_sums_and_months() -> None:
    """The two mixes sum to 1, and PERIODS cover every generated month."""
    for name, total in {
        "RACE_MIX": sum(RACE_MIX.values()),
        "CURRENT_STATUS_MIX": sum(CURRENT_STATUS_MIX.values()),
    }.items():
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise RuntimeError(f"model.synthetic.synth.{name} must sum to 1, sums to {total}")
    covered = [m for m in _MONTHS if any(p.first_month <= m <= p.last_month for p in PERIODS)]
    if covered != list(_MONTHS):
        raise RuntimeError("model.synthetic.synth.PERIODS must cover every month of MONTHLY_CASES_MILLIONS")


def _check_reporting_styles() -> None:
    """Each reporting style's probabilities of hiding an answer stay within [0, 1], also when the answer is Yes."""
    for column in REPORTING_GAPS:
        for style, probs in _style_probabilities(column).items():
            hidden = sum(probs.values()) * max(1.0, HIDE_FACTOR_IF_YES[column][style])
            if min(probs.values()) < 0.0 or hidden > 1.0:
                raise RuntimeError(
                    f"{column}: reporting style {style!r} gets probabilities {probs} outside [0, 1]; "
                    "change REPORTING_STYLES, STYLE_HIDE or HIDE_FACTOR_IF_YES"
                )


@cache
def _style_probabilities(column: str) -> dict[str, dict[str, float]]:
    """P(reported Missing), P(reported Unknown) of a column's *No* in each style (a Yes: times HIDE_FACTOR_IF_YES).

    Solved so each column's marginal gap is REPORTING_GAPS at its latent Yes share REFERENCE_YES_SHARE.
    """
    gaps = REPORTING_GAPS[column]
    w_nothing, w_unknown = REPORTING_STYLES["sends nothing"], REPORTING_STYLES["could not find out"]
    complete = 1.0 - w_nothing - w_unknown
    q, factor = REFERENCE_YES_SHARE[column], HIDE_FACTOR_IF_YES[column]

    def per_no(style: str, hidden: float) -> float:  # P(hidden | No) giving P(hidden) = `hidden` in a style
        return hidden / (1.0 - q + q * factor[style])

    return {
        "complete": {
            schema.MISSING: per_no("complete", (gaps[schema.MISSING] - w_nothing * STYLE_HIDE) / complete),
            schema.UNKNOWN: per_no("complete", (gaps[schema.UNKNOWN] - w_unknown * STYLE_HIDE) / complete),
        },
        "sends nothing": {schema.MISSING: per_no("sends nothing", STYLE_HIDE), schema.UNKNOWN: 0.0},
        "could not find out": {schema.MISSING: 0.0, schema.UNKNOWN: per_no("could not find out", STYLE_HIDE)},
    }


@cache
def outcome_known_probabilities() -> tuple[float, float]:
    """P(death_yn reported Yes/No | died), P(... | survived): the ascertainment that inflates known-outcome deaths."""
    probs = _style_probabilities(schema.TARGET)
    weights = {"complete": 1.0 - sum(REPORTING_STYLES.values()), **REPORTING_STYLES}
    survived = sum(w * (1.0 - sum(probs[s].values())) for s, w in weights.items())
    factor = HIDE_FACTOR_IF_YES[schema.TARGET]
    died = sum(w * (1.0 - factor[s] * sum(probs[s].values())) for s, w in weights.items())
    return DEATH_CERTIFICATE_SHARE + (1 - DEATH_CERTIFICATE_SHARE) * died, survived


# --- Solving the per-age intercepts ------------------------------------------------


@dataclass(frozen=True)
class Intercepts:
    """Per-age logistic intercepts (log-odds) that reproduce the calibration tables in the first wave."""

    hosp: np.ndarray
    icu: np.ndarray
    death: np.ndarray


def _latent_strata(age: str) -> list[tuple[float, int, int]]:
    """(weight, male, medcond) strata of one age group."""
    m = MEDCOND_SHARE_BY_AGE[age]
    return [
        (w_sex * w_med, male, med)
        for male, w_sex in ((0, 1 - MALE_SHARE), (1, MALE_SHARE))
        for med, w_med in ((0, 1 - m), (1, m))
    ]


def _solve(share: Callable[[float], float], target: float) -> float:
    """The log-odds intercept at which share(intercept) == target (share rises monotonically)."""
    return float(brentq(lambda a: share(a) - target, -40.0, 40.0, xtol=1e-12))


def _log_odds_ratios(table: Mapping[str, float]) -> dict[str, float]:
    return {k: math.log(v) for k, v in table.items()}


def latent_first_wave_death_share(age: str) -> float:
    """Deaths among *all* first-wave cases of an age that make the known-outcome share match the real file.

    With P(known | died) = kd and P(known | survived) = ks, the known-outcome share s of a latent share D is
    kd D / (kd D + ks (1 - D)); this inverts it.
    """
    kd, ks = outcome_known_probabilities()
    s = FIRST_WAVE_DEATH_SHARE_BY_AGE[age]
    return s * ks / (kd * (1 - s) + s * ks)


def _age_intercepts(age: str) -> tuple[float, float, float]:
    """(hosp, icu, death) intercepts of one age group, solved on the exact latent mixture."""
    lor_h, lor_i, lor_d = (_log_odds_ratios(t) for t in (HOSP_ODDS_RATIOS, ICU_ODDS_RATIOS, DEATH_ODDS_RATIOS))
    strata = _latent_strata(age)

    def p_hosp(a: float, male: int, med: int) -> float:
        return float(expit(a + lor_h["male"] * male + lor_h["medcond"] * med))

    def p_icu(a: float, male: int, med: int) -> float:
        return float(expit(a + lor_i["male"] * male + lor_i["medcond"] * med))

    a_h = _solve(lambda a: sum(w * p_hosp(a, x, m) for w, x, m in strata), HOSP_SHARE_BY_AGE[age])
    a_h1 = a_h + math.log(PERIODS[0].hosp_odds_ratio)  # the death intercept is solved on the first wave
    hosp_w = [(w * p_hosp(a_h, x, m), x, m) for w, x, m in strata]
    hosp_total = sum(w for w, _, _ in hosp_w)
    a_i = _solve(lambda a: sum(w * p_icu(a, x, m) for w, x, m in hosp_w) / hosp_total, ICU_SHARE_OF_HOSP_BY_AGE[age])
    # (weight, male, medcond, hosp, icu) cells of the full latent distribution.
    cells = []
    for w, x, m in strata:
        ph, pi = p_hosp(a_h1, x, m), p_icu(a_i, x, m)
        cells += [(w * (1 - ph), x, m, 0, 0), (w * ph * (1 - pi), x, m, 1, 0), (w * ph * pi, x, m, 1, 1)]

    def death_share(a: float) -> float:
        return sum(
            w * float(expit(a + lor_d["male"] * x + lor_d["medcond"] * m + lor_d["hosp"] * h + lor_d["icu"] * i))
            for w, x, m, h, i in cells
        )

    return a_h, a_i, _solve(death_share, latent_first_wave_death_share(age))


@cache
def intercepts() -> Intercepts:
    """Per-age intercepts so the expected first-wave shares match the calibration tables exactly."""
    hosp, icu, death = zip(*(_age_intercepts(age) for age in _AGES), strict=True)
    return Intercepts(np.array(hosp), np.array(icu), np.array(death))


# --- Block generation ----------------------------------------------------------------


@dataclass(frozen=True)
class _Params:
    month_cum: np.ndarray  # cumulative weight of each month of _MONTHS (0 outside the window)
    age_cum: np.ndarray  # (periods, ages) cumulative age mix of each period
    month_period: np.ndarray  # period index of each month
    death_log_odds: np.ndarray  # per period
    hosp_log_odds: np.ndarray  # per period
    death_multiplier: float  # on every row's probability of death, capped at 1
    variant: Variant


def _month_window(months: tuple[str, str] | None) -> np.ndarray:
    weights = np.array(list(MONTHLY_CASES_MILLIONS.values()))
    if months is None:
        return weights
    first, last = months
    for label, value in (("first", first), ("last", last)):
        if value not in MONTHLY_CASES_MILLIONS:
            raise ValueError(f"months: {label} month {value!r} must be YYYY-MM between {_MONTHS[0]} and {_MONTHS[-1]}")
    if first > last:
        raise ValueError(f"months: the first month {first} is after the last month {last}")
    return np.where([first <= m <= last for m in _MONTHS], weights, 0.0)


def _params(
    age_shift: Mapping[str, float] | None,
    death_rate_multiplier: float,
    months: tuple[str, str] | None = None,
    variant: str = DEFAULT_VARIANT,
) -> _Params:
    if not (
        isinstance(death_rate_multiplier, int | float)
        and math.isfinite(death_rate_multiplier)
        and death_rate_multiplier > 0
    ):
        raise ValueError(f"death_rate_multiplier must be a finite number > 0, got {death_rate_multiplier!r}")
    if variant not in VARIANTS:
        raise ValueError(f"schema variant {variant!r} is not one of {', '.join(VARIANTS)}")
    factors = np.ones(len(_AGES))
    for age, factor in (age_shift or {}).items():
        if age not in _AGES:
            raise ValueError(f"age_shift key {age!r} is not an age group; use one of {list(_AGES)}")
        if not (isinstance(factor, int | float) and math.isfinite(factor) and factor >= 0):
            raise ValueError(f"age_shift[{age!r}] must be a finite number >= 0 (a weight factor), got {factor!r}")
        factors[_AGES.index(age)] *= factor
    if factors.max() <= 0:
        raise ValueError("age_shift sets every age group's weight to 0; keep at least one factor > 0")
    age_cum = []
    for period in PERIODS:
        weights = np.array([_shares(period.age_counts)[a] for a in _AGES]) * factors
        cum = np.cumsum(weights / weights.sum())
        cum[-1] = 1.0
        age_cum.append(cum)
    month_weights = _month_window(months)
    month_cum = np.cumsum(month_weights / month_weights.sum())
    month_cum[-1] = 1.0
    return _Params(
        month_cum=month_cum,
        age_cum=np.array(age_cum),
        month_period=np.array([PERIODS.index(period_of(m)) for m in _MONTHS]),
        death_log_odds=np.log([p.death_odds_ratio for p in PERIODS]),
        hosp_log_odds=np.log([p.hosp_odds_ratio for p in PERIODS]),
        death_multiplier=float(death_rate_multiplier),
        variant=VARIANTS[variant],
    )


def _format_date(day: dt.date, style: str) -> str:
    if style == "ymd":
        return day.strftime("%Y/%m/%d")
    if style == "dmy":
        return day.strftime("%d/%m/%Y")
    return f"{day.month}/{day.day}/{day.year}"


@cache
def _month_days() -> tuple[np.ndarray, np.ndarray, int]:
    """Day offset (from 2020-01-01) of each month's first day, month lengths, and the last day offset needed."""
    starts, lengths = [], []
    for key in _MONTHS:
        first = dt.date(int(key[:4]), int(key[5:]), 1)
        nxt = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
        starts.append((first - _EPOCH).days)
        lengths.append((nxt - first).days)
    return np.array(starts), np.array(lengths), starts[-1] + lengths[-1] + 2 * MAX_DELAY_DAYS + 1


@cache
def _date_strings(style: str) -> pa.Array:
    """Every day offset's date string in one style (formatting is then a take, not 13M strftime calls)."""
    last = _month_days()[2]
    return pa.array([_format_date(_EPOCH + dt.timedelta(days=d), style) for d in range(last)])


@cache
def _cum(table_items: tuple[tuple[str, float], ...], column: str) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative thresholds and schema codes of a categorical table (given as items, for caching)."""
    values = _values(column)
    cum = np.cumsum([p for _, p in table_items])
    if math.isclose(cum[-1], 1.0, abs_tol=1e-9):
        cum[-1] = 1.0  # a full mix: every u in [0, 1) must land in a slice, despite rounding
    codes = np.array([values.index(v) for v, _ in table_items], dtype=np.int8)
    return cum, codes


def _poisson_delay(u: np.ndarray, mean: float) -> np.ndarray:
    cdf = poisson.cdf(np.arange(MAX_DELAY_DAYS), mean)
    return np.searchsorted(cdf, u, side="right").astype(np.int32)


def _pick(u: np.ndarray, table: Mapping[str, float], column: str, fallback: np.ndarray | np.int8) -> np.ndarray:
    """Replace `fallback` by the k-th value of `table` where u falls in its k-th slice of [0, sum)."""
    cum, codes = _cum(tuple(table.items()), column)
    idx = np.searchsorted(cum, u, side="right")
    hit = idx < len(codes)
    return np.where(hit, codes[np.minimum(idx, len(codes) - 1)], fallback).astype(np.int8)


_N_UNIFORMS = 25
_CODE = {c: {v: i for i, v in enumerate(_values(c))} for c in (*REPORTING_GAPS, "current_status")}


def _latent(u: np.ndarray, p: _Params) -> dict[str, np.ndarray]:
    """Latent truth of one block: month, age index, male, condition, hospitalised, ICU, died."""
    month = np.minimum(np.searchsorted(p.month_cum, u[15], side="right"), len(_MONTHS) - 1)
    period = p.month_period[month]
    age = (u[0][:, None] >= p.age_cum[period]).sum(axis=1)
    age = np.minimum(age, len(_AGES) - 1)
    ic = intercepts()
    lor_h, lor_i, lor_d = (_log_odds_ratios(t) for t in (HOSP_ODDS_RATIOS, ICU_ODDS_RATIOS, DEATH_ODDS_RATIOS))
    male = u[1] < MALE_SHARE
    med = u[2] < np.array(list(MEDCOND_SHARE_BY_AGE.values()))[age]
    hosp = u[3] < expit(ic.hosp[age] + p.hosp_log_odds[period] + lor_h["male"] * male + lor_h["medcond"] * med)
    icu = hosp & (u[4] < expit(ic.icu[age] + lor_i["male"] * male + lor_i["medcond"] * med))
    logit_d = (
        ic.death[age]
        + p.death_log_odds[period]
        + lor_d["male"] * male
        + lor_d["medcond"] * med
        + lor_d["hosp"] * hosp
        + lor_d["icu"] * icu
    )
    death = u[5] < np.minimum(1.0, p.death_multiplier * expit(logit_d))
    return {"month": month, "age": age, "male": male, "med": med, "hosp": hosp, "icu": icu, "death": death}


def _reported_outcomes(u: np.ndarray, truth: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """death_yn, hosp_yn, icu_yn, medcond_yn as reported (not at random), and the death-certificate flag."""
    style = np.searchsorted(np.cumsum(list(REPORTING_STYLES.values())), u[10], side="right")
    style = np.where(style >= len(REPORTING_STYLES), 0, style + 1)  # 0 complete, 1.. the listed styles
    certificate = truth["death"] & (u[21] < DEATH_CERTIFICATE_SHARE)
    out: dict[str, np.ndarray] = {}
    columns = (("death_yn", "death"), ("hosp_yn", "hosp"), ("icu_yn", "icu"), ("medcond_yn", "med"))
    for k, (column, key) in enumerate(columns):
        codes = _CODE[column]
        probs = _style_probabilities(column)
        p_missing = np.array([probs[s][schema.MISSING] for s in _STYLES])[style]
        p_unknown = np.array([probs[s][schema.UNKNOWN] for s in _STYLES])[style]
        factor = np.where(truth[key], np.array([HIDE_FACTOR_IF_YES[column][s] for s in _STYLES])[style], 1.0)
        p_missing, p_unknown = p_missing * factor, p_unknown * factor
        uk = u[11 + k]
        code = np.where(truth[key], codes["Yes"], codes["No"])
        code = np.where(uk < p_missing + p_unknown, codes[schema.UNKNOWN], code)
        code = np.where(uk < p_missing, codes[schema.MISSING], code)
        if column != schema.TARGET:
            # Death-certificate cases: nothing is known about the illness (hosp and ICU hidden together).
            draw = u[22] if column in ("hosp_yn", "icu_yn") else u[23]
            hidden = np.where(draw < DEATH_CERTIFICATE_UNKNOWN, codes[schema.UNKNOWN], codes[schema.MISSING])
            code = np.where(certificate, hidden, code)
        else:
            code = np.where(certificate, codes["Yes"], code)
        out[column] = code.astype(np.int8)
    return out, certificate


def _block(seed: int, index: int, p: _Params) -> dict[str, np.ndarray]:
    """Codes (indices into schema values; dates as day offsets, -1 blank) of one full block."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, index])))
    u = rng.random((_N_UNIFORMS, BLOCK_ROWS))
    truth = _latent(u, p)
    era = p.variant.era

    out: dict[str, np.ndarray] = {}
    latent_age = np.array([_values("age_group").index(a) for a in _AGES], dtype=np.int8)[truth["age"]]
    out["age_group"] = _pick(u[6], _age_reported(era), "age_group", latent_age)
    sex_values = _values("sex")
    latent_sex = np.where(truth["male"], sex_values.index("Male"), sex_values.index("Female")).astype(np.int8)
    out["sex"] = _pick(u[7], SEX_REPORTED[era], "sex", latent_sex)
    out["race_ethnicity_combined"] = _pick(u[8], RACE_MIX, "race_ethnicity_combined", np.int8(0))
    status = _pick(u[9], CURRENT_STATUS_MIX, "current_status", np.int8(0))
    reported, certificate = _reported_outcomes(u, truth)
    out.update(reported)
    probable = certificate & (u[24] < DEATH_CERTIFICATE_PROBABLE)
    out["current_status"] = np.where(probable, _CODE["current_status"]["Probable Case"], status).astype(np.int8)

    starts, lengths, _ = _month_days()
    month = truth["month"]
    onset = (starts[month] + np.floor(u[16] * lengths[month])).astype(np.int32)
    specimen = onset + _poisson_delay(u[17], SPECIMEN_DELAY_MEAN_DAYS)
    report = specimen + _poisson_delay(u[18], REPORT_DELAY_MEAN_DAYS)
    onset_blank = (u[19] < DATE_BLANK_SHARE["onset_dt"]) | certificate
    specimen_blank = u[20] < DATE_BLANK_SHARE["pos_spec_dt"]
    # Earliest of the dates that are present (onset <= specimen <= report by construction).
    out["cdc_case_earliest_dt"] = np.where(~onset_blank, onset, np.where(~specimen_blank, specimen, report))
    out["cdc_report_dt"] = report
    out["pos_spec_dt"] = np.where(specimen_blank, -1, specimen).astype(np.int32)
    out["onset_dt"] = np.where(onset_blank, -1, onset).astype(np.int32)
    return out


@cache
def _value_array(column: str, era: str) -> pa.Array:
    """The column's spellings by code; in 2020 releases "NA" did not exist yet and reads as Missing."""
    values = list(_values(column))
    if era == "2020" and schema.NA in values and schema.MISSING in values:
        values[values.index(schema.NA)] = schema.MISSING
    return pa.array(values)


def _arrow_schema(variant: Variant) -> pa.Schema:
    return pa.schema([(name, pa.string()) for name in variant.header()])


def _to_batch(codes: dict[str, np.ndarray], variant: Variant) -> pa.RecordBatch:
    date_strings = _date_strings(variant.date_style)
    arrays = []
    for name in variant.columns:
        c = codes[name]
        if name in schema.DATE_COLUMNS:
            arrays.append(pc.take(date_strings, pa.array(c, mask=c < 0)))
        else:
            arrays.append(pc.take(_value_array(name, variant.era), pa.array(c)))
    return pa.RecordBatch.from_arrays(arrays, schema=_arrow_schema(variant))


# --- Public API -------------------------------------------------------------------


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def generate_batches(
    rows: int,
    seed: int,
    *,
    age_shift: dict[str, float] | None = None,
    death_rate_multiplier: float = 1.0,
    months: tuple[str, str] | None = None,
    variant: str = DEFAULT_VARIANT,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[pa.RecordBatch]:
    """Yield `rows` rows of one CDC schema variant (all string columns) as batches of `chunk_rows`.

    age_shift: age group -> factor on its weight in every period's age mix (renormalised), e.g.
    ``{"80+ Years": 2.0}`` doubles the relative share of 80+. death_rate_multiplier
    multiplies every row's probability of death (capped at 1, so the realised factor is a
    little smaller than m > 1 where risks are already high). months: ("YYYY-MM", "YYYY-MM"),
    inclusive, restricts case dates to that window of the epidemic curve (e.g. the first wave
    ("2020-03", "2020-05")). variant: "current", "legacy-2020" or "first-wave" (`VARIANTS`).
    Output depends on seed, rows and these options only; memory is bounded by chunk_rows.
    """
    rows = _check_count("rows", rows, 1)
    seed = _check_count("seed", seed, 0)
    chunk_rows = _check_count("chunk_rows", chunk_rows, 1)
    p = _params(age_shift, death_rate_multiplier, months, variant)
    cached: tuple[int, dict[str, np.ndarray]] | None = None
    start = 0
    while start < rows:
        end = min(rows, start + chunk_rows)
        parts = []
        b = start // BLOCK_ROWS
        while b * BLOCK_ROWS < end:
            if cached is None or cached[0] != b:
                cached = (b, _block(seed, b, p))
            lo, hi = max(start, b * BLOCK_ROWS) - b * BLOCK_ROWS, min(end, (b + 1) * BLOCK_ROWS) - b * BLOCK_ROWS
            parts.append({k: v[lo:hi] for k, v in cached[1].items()})
            b += 1
        yield _to_batch({k: np.concatenate([part[k] for part in parts]) for k in parts[0]}, p.variant)
        start = end


def output_format(path: str | os.PathLike[str]) -> str:
    """'csv', 'csv.gz' or 'parquet' from the file name; ValueError naming the allowed endings otherwise."""
    name = Path(path).name.lower()
    for ending, fmt in FORMATS.items():
        if name.endswith(ending) and len(name) > len(ending):
            return fmt
    raise ValueError(f"cannot tell the output format of {str(path)!r}: the file name must end in {', '.join(FORMATS)}")


Progress = Callable[[int, int, float], None]
_OPTIONS = ("age_shift", "death_rate_multiplier", "months", "variant")


def write(
    path: str | os.PathLike[str],
    rows: int,
    seed: int,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Progress | None = None,
    **options: object,
) -> dict[str, object]:
    """Write a generated file (format from the extension); returns a small summary.

    options: ``age_shift``, ``death_rate_multiplier``, ``months``, ``variant`` as in `generate_batches`.
    The file appears atomically: it is written beside the target and renamed at
    the end, so an interrupted run never leaves a truncated file under the final name.
    progress(rows_written, rows_total, elapsed_s) is called after every chunk.
    """
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)}; use {', '.join(_OPTIONS)}")
    fmt = output_format(path)
    target = Path(path)
    batches = generate_batches(rows, seed, chunk_rows=chunk_rows, **options)  # type: ignore[arg-type]
    variant = VARIANTS[str(options.get("variant") or DEFAULT_VARIANT)]
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    began = time.perf_counter()
    written = 0
    try:
        with _batch_writer(partial, fmt, _arrow_schema(variant)) as writer:
            for batch in batches:
                writer.write_batch(batch)
                written += batch.num_rows
                if progress:
                    progress(written, rows, time.perf_counter() - began)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    summary = {
        "path": str(target),
        "format": fmt,
        "rows": written,
        "seed": seed,
        "schema_variant": variant.name,
        "seconds": round(time.perf_counter() - began, 3),
    }
    _write_synthetic_provenance(target, written, seed, options, variant.name)
    return summary


@contextlib.contextmanager
def _batch_writer(partial: Path, fmt: str, arrow_schema: pa.Schema) -> Iterator[pq.ParquetWriter | pacsv.CSVWriter]:
    """A record-batch writer for `fmt` on `partial`; the file (and gzip stream) is closed on leaving."""
    with contextlib.ExitStack() as stack:
        writer: pq.ParquetWriter | pacsv.CSVWriter
        if fmt == "parquet":
            writer = stack.enter_context(pq.ParquetWriter(partial, arrow_schema, compression="zstd"))
        else:
            sink: IO[bytes] | gzip.GzipFile = stack.enter_context(open(partial, "wb"))
            if fmt == "csv.gz":
                # Python's gzip, not Arrow's: Arrow fixes level 9 (~6 min for 13M rows, vs ~1 min
                # at level 3); mtime=0 and no file name keep the bytes identical for a seed.
                sink = stack.enter_context(
                    gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=sink, mtime=0)
                )
            writer = stack.enter_context(pacsv.CSVWriter(sink, arrow_schema))
        yield writer


def _write_synthetic_provenance(
    target: Path, rows: int, seed: int, options: Mapping[str, object], variant_name: str
) -> None:
    """Sidecar so training labels any model built on this file as synthetic."""
    extra = {k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items() if v is not None}
    write_provenance(
        target,
        {
            "synthetic": True,
            "generator": "model.synthetic.synth",
            "rows": rows,
            "seed": seed,
            **extra,
            "schema_variant": variant_name,
        },
    )


def calibration_markdown() -> str:
    """The per-age calibration table as Markdown (docs/data_card.md embeds it verbatim)."""
    first, later = _shares(AGE_COUNTS_FIRST_WAVE), _shares(AGE_COUNTS_LATER)
    lines = [
        "| age group | share of cases, first wave | share of cases, later | death share (known outcomes), "
        "first wave | hospitalised | ICU among hospitalised | pre-existing condition |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in _AGES:
        lines.append(
            f"| {a} | {first[a]:.1%} | {later[a]:.1%} | {FIRST_WAVE_DEATH_SHARE_BY_AGE[a]:.2%} "
            f"| {HOSP_SHARE_BY_AGE[a]:.1%} | {ICU_SHARE_OF_HOSP_BY_AGE[a]:.0%} | {MEDCOND_SHARE_BY_AGE[a]:.0%} |"
        )
    return "\n".join(lines)


def periods_markdown() -> str:
    """The period table as Markdown (docs/data_card.md embeds it verbatim)."""
    lines = [
        "| period | case months | age mix | odds of death against the first wave (same cell) |",
        "|---|---|---|---|",
    ]
    for p in PERIODS:
        mix = "first release (§2C)" if p.age_counts is AGE_COUNTS_FIRST_WAVE else "Mar 2021 release (§2D)"
        lines.append(f"| {p.name} | {p.first_month} to {p.last_month} | {mix} | {p.death_odds_ratio:g} |")
    return "\n".join(lines)


def expected_first_wave_death_share(age_shift: dict[str, float] | None = None) -> float:
    """Death share among known outcomes of a first-wave file implied by the tables (no death multiplier)."""
    cum = _params(age_shift, 1.0).age_cum[0]
    weights = np.diff(np.concatenate([[0.0], cum]))
    kd, ks = outcome_known_probabilities()
    latent = np.array([latent_first_wave_death_share(a) for a in _AGES])
    known = weights * (kd * latent + ks * (1 - latent))  # rows with a known outcome, per age
    return float(np.dot(known / known.sum(), list(FIRST_WAVE_DEATH_SHARE_BY_AGE.values())))


_check_tables()


# --- CLI ----------------------------------------------------------------------------


def _parse_age_shift(items: list[str], parser: argparse.ArgumentParser) -> dict[str, float] | None:
    if not items:
        return None
    shift: dict[str, float] = {}
    for item in items:
        group, sep, factor = item.rpartition("=")
        try:
            shift[group.strip()] = float(factor)
        except ValueError:
            sep = ""
        if not sep:
            parser.error(f"--age-shift {item!r}: expected GROUP=FACTOR, e.g. --age-shift '80+ Years=2'")
    return shift


def _parse_months(text: str | None, parser: argparse.ArgumentParser) -> tuple[str, str] | None:
    if text is None:
        return None
    first, sep, last = text.partition(":")
    if not sep:
        parser.error(f"--months {text!r}: expected FIRST:LAST as YYYY-MM:YYYY-MM, e.g. --months 2020-03:2020-05")
    return first.strip(), last.strip()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m model.synth",
        description="Write synthetic CDC case-surveillance data. See docs/data_card.md.",
    )
    parser.add_argument("--rows", type=int, required=True, help="number of rows (> 0)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (>= 0); same seed and rows, same file")
    parser.add_argument("--out", required=True, help="output file: .csv, .csv.gz or .parquet")
    parser.add_argument(
        "--schema",
        choices=list(VARIANTS),
        default=DEFAULT_VARIANT,
        help="schema variant: current (12 columns, YYYY/MM/DD), legacy-2020 ('Race and ethnicity "
        "(combined)', DD/MM/YYYY) or first-wave (current race name, no cdc_case_earliest_dt, "
        "M/D/YYYY)",
    )
    parser.add_argument(
        "--months",
        metavar="FIRST:LAST",
        help=f"case months, e.g. 2020-03:2020-05 for the first wave (default {_MONTHS[0]}:{_MONTHS[-1]})",
    )
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, help="rows per write (memory bound)")
    parser.add_argument(
        "--age-shift",
        action="append",
        default=[],
        metavar="GROUP=FACTOR",
        help="drift: multiply an age group's weight, e.g. '80+ Years=2' (repeatable)",
    )
    parser.add_argument(
        "--death-rate-multiplier",
        type=float,
        default=1.0,
        help="drift: multiply every row's probability of death (default 1)",
    )
    return parser


def _checked_options(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> tuple[dict[str, float] | None, tuple[str, str] | None]:
    """(age_shift, months) once every argument is valid; a usage error before any file is opened otherwise."""
    if args.rows <= 0:
        parser.error(f"--rows must be a positive integer, got {args.rows}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if args.chunk_rows <= 0:
        parser.error(f"--chunk-rows must be a positive integer, got {args.chunk_rows}")
    try:
        output_format(args.out)
    except ValueError as exc:
        parser.error(f"--out: {exc}")
    age_shift = _parse_age_shift(args.age_shift, parser)
    months = _parse_months(args.months, parser)
    try:
        _params(age_shift, args.death_rate_multiplier, months, args.schema)
    except ValueError as exc:
        parser.error(str(exc))
    return age_shift, months


def _print_progress(done: int, total: int, elapsed: float) -> None:
    left = elapsed / done * (total - done)
    print(
        f"synth: {done:,}/{total:,} rows ({done / total:.0%}) written, {elapsed:.1f} s elapsed, ~{left:.0f} s left",
        file=sys.stderr,
        flush=True,
    )


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    age_shift, months = _checked_options(args, parser)
    try:
        summary = write(
            args.out,
            args.rows,
            args.seed,
            chunk_rows=args.chunk_rows,
            progress=_print_progress,
            age_shift=age_shift,
            death_rate_multiplier=args.death_rate_multiplier,
            months=months,
            variant=args.schema,
        )
    except OSError as exc:
        print(f"synth: error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return BAD_INPUT
    print(
        f"synth: wrote {summary['rows']:,} rows ({args.schema} schema) to {summary['path']} in {summary['seconds']} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
