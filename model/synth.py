"""Synthetic CDC-like case-surveillance data in the current public-use schema.

Why synthetic: the real public file is 10+ GB and only a tiny, outcome-poor
extract is available offline. This generator produces files with the *shape*
of the real data (columns, spellings, date format, blanks, the large share of
Missing/Unknown outcomes) and a joint distribution calibrated to published CDC
aggregates, so the loader, training, evaluation, scoring and monitoring can be
exercised end to end at realistic scale. See docs/data_card.md.

Generative story per row (latent truth first, then what gets reported):

1. latent age group, sex, pre-existing condition (by age);
2. hospitalisation, then ICU among the hospitalised, logistic in age, sex, condition;
3. death, logistic in age, sex, condition, hospitalisation and ICU; the per-age
   intercepts are solved so the death share in each age group equals
   ``DEATH_SHARE_BY_AGE`` exactly (in expectation);
4. reporting: each outcome column is hidden as Missing/Unknown independently of
   the patient's features and outcome, but correlated across columns through a
   per-row "poor reporting jurisdiction" flag (as in the real file, where rows
   missing one outcome tend to miss the others);
5. dates from an epidemic curve (``MONTHLY_CASES_MILLIONS``) with specimen and
   report delays and realistic blanks.

Determinism: every block of ``BLOCK_ROWS`` rows draws its random numbers from
its own stream seeded by ``(seed, block index)``, and every block draws a full
block even when fewer rows are needed. So output depends only on ``seed`` and
``rows`` (not on ``chunk_rows``), and N rows are a prefix of M > N rows. All
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

from model import schema
from model.exit_codes import BAD_INPUT, guarded
from model.provenance import write_provenance

# --- Calibration tables (quoted by docs/data_card.md; checked by tests) -------
# Approximations from memory of published CDC aggregates, 2020-2022; sources in
# docs/data_card.md. Keys are schema spellings.

# Share of cases by age group (latent age; a small share is then reported as Missing/NA).
AGE_MIX: dict[str, float] = {
    "0 - 9 Years": 0.080,
    "10 - 19 Years": 0.130,
    "20 - 29 Years": 0.180,
    "30 - 39 Years": 0.170,
    "40 - 49 Years": 0.150,
    "50 - 59 Years": 0.130,
    "60 - 69 Years": 0.090,
    "70 - 79 Years": 0.045,
    "80+ Years": 0.025,
}
# Share of rows whose age group is reported as Missing / NA instead of the latent value.
AGE_REPORTED_MISSING: dict[str, float] = {schema.MISSING: 0.008, schema.NA: 0.001}

# Deaths / (deaths + survivors) among rows with a known outcome, by age group.
DEATH_SHARE_BY_AGE: dict[str, float] = {
    "0 - 9 Years": 0.0001,
    "10 - 19 Years": 0.0002,
    "20 - 29 Years": 0.0006,
    "30 - 39 Years": 0.0018,
    "40 - 49 Years": 0.0050,
    "50 - 59 Years": 0.0140,
    "60 - 69 Years": 0.0400,
    "70 - 79 Years": 0.1000,
    "80+ Years": 0.1800,
}
# Share of cases hospitalised, by age group (true status, before reporting gaps).
HOSP_SHARE_BY_AGE: dict[str, float] = {
    "0 - 9 Years": 0.020,
    "10 - 19 Years": 0.012,
    "20 - 29 Years": 0.020,
    "30 - 39 Years": 0.035,
    "40 - 49 Years": 0.055,
    "50 - 59 Years": 0.090,
    "60 - 69 Years": 0.160,
    "70 - 79 Years": 0.270,
    "80+ Years": 0.370,
}
# Share of hospitalised cases admitted to ICU, by age group.
ICU_SHARE_OF_HOSP_BY_AGE: dict[str, float] = {
    "0 - 9 Years": 0.12,
    "10 - 19 Years": 0.12,
    "20 - 29 Years": 0.10,
    "30 - 39 Years": 0.12,
    "40 - 49 Years": 0.15,
    "50 - 59 Years": 0.19,
    "60 - 69 Years": 0.22,
    "70 - 79 Years": 0.22,
    "80+ Years": 0.15,
}
# Share of cases with at least one pre-existing condition, by age group (true status).
MEDCOND_SHARE_BY_AGE: dict[str, float] = {
    "0 - 9 Years": 0.08,
    "10 - 19 Years": 0.12,
    "20 - 29 Years": 0.18,
    "30 - 39 Years": 0.25,
    "40 - 49 Years": 0.33,
    "50 - 59 Years": 0.45,
    "60 - 69 Years": 0.60,
    "70 - 79 Years": 0.72,
    "80+ Years": 0.80,
}
# Adjusted odds ratios (within an age group) of the logistic models.
DEATH_ODDS_RATIOS: dict[str, float] = {"male": 1.5, "medcond": 2.5, "hosp": 12.0, "icu": 4.0}
HOSP_ODDS_RATIOS: dict[str, float] = {"male": 1.25, "medcond": 3.0}
ICU_ODDS_RATIOS: dict[str, float] = {"male": 1.3, "medcond": 1.5}

MALE_SHARE = 0.475  # latent sex; the rest is female
# Share of rows whose sex is reported as one of these instead of the latent Female/Male.
SEX_REPORTED_OTHER: dict[str, float] = {
    "Other": 0.0002,
    schema.UNKNOWN: 0.005,
    schema.MISSING: 0.003,
    schema.NA: 0.0005,
}

# Share of all rows by reported race/ethnicity (independent of everything else).
RACE_MIX: dict[str, float] = {
    "American Indian/Alaska Native, Non-Hispanic": 0.007,
    "Asian, Non-Hispanic": 0.026,
    "Black, Non-Hispanic": 0.078,
    "Hispanic/Latino": 0.156,
    "Multiple/Other, Non-Hispanic": 0.039,
    "Native Hawaiian/Other Pacific Islander, Non-Hispanic": 0.002,
    "White, Non-Hispanic": 0.342,
    schema.UNKNOWN: 0.150,
    schema.MISSING: 0.198,
    schema.NA: 0.002,
}
CURRENT_STATUS_MIX: dict[str, float] = {"Laboratory-confirmed case": 0.87, "Probable Case": 0.13}

# Share of all rows reported as Missing / Unknown, per outcome-like column.
REPORTING_GAPS: dict[str, dict[str, float]] = {
    "death_yn": {schema.MISSING: 0.42, schema.UNKNOWN: 0.12},
    "hosp_yn": {schema.MISSING: 0.38, schema.UNKNOWN: 0.17},
    "icu_yn": {schema.MISSING: 0.66, schema.UNKNOWN: 0.17},
    "medcond_yn": {schema.MISSING: 0.67, schema.UNKNOWN: 0.13},
}
# Rows from "poor reporting" sources hide each column with probability
# gap + (1 - gap) * POOR_REPORTING_LIFT; other rows less, so the marginal gap is unchanged.
POOR_REPORTING_SHARE = 0.35
POOR_REPORTING_LIFT = 0.8

# Share of rows with a blank date (cdc_case_earliest_dt and cdc_report_dt are never blank).
DATE_BLANK_SHARE: dict[str, float] = {"pos_spec_dt": 0.30, "onset_dt": 0.48}
SPECIMEN_DELAY_MEAN_DAYS = 2.0  # onset -> specimen, Poisson
REPORT_DELAY_MEAN_DAYS = 3.0  # specimen -> report, Poisson
MAX_DELAY_DAYS = 30

# Approximate US cases per month (millions), the epidemic curve the case dates follow.
MONTHLY_CASES_MILLIONS: dict[str, float] = {
    "2020-03": 0.19, "2020-04": 0.89, "2020-05": 0.72, "2020-06": 0.84, "2020-07": 1.92, "2020-08": 1.47,
    "2020-09": 1.22, "2020-10": 1.94, "2020-11": 4.49, "2020-12": 6.41,
    "2021-01": 6.21, "2021-02": 2.40, "2021-03": 1.82, "2021-04": 1.86, "2021-05": 0.94, "2021-06": 0.40,
    "2021-07": 1.31, "2021-08": 4.29, "2021-09": 4.16, "2021-10": 2.44, "2021-11": 2.53, "2021-12": 6.02,
    "2022-01": 20.30, "2022-02": 4.13, "2022-03": 1.05, "2022-04": 1.13, "2022-05": 2.93, "2022-06": 3.24,
    "2022-07": 3.93, "2022-08": 3.10, "2022-09": 1.91, "2022-10": 1.21, "2022-11": 1.32, "2022-12": 2.04,
}  # fmt: skip

# --- Generation constants -------------------------------------------------------
BLOCK_ROWS = 50_000  # random-stream granularity; changing it changes every file
DEFAULT_CHUNK_ROWS = 1_000_000
DATE_FORMAT = "%Y/%m/%d"
GZIP_LEVEL = 3  # ~4x faster than 6 for a ~25% larger file
FORMATS = {".csv.gz": "csv.gz", ".csv": "csv", ".parquet": "parquet"}
OUTPUT_SCHEMA = pa.schema([(name, pa.string()) for name in schema.CURRENT_SCHEMA_COLUMNS])

_AGES = schema.AGE_GROUPS
_EPOCH = dt.date(2020, 1, 1)


def _values(column: str) -> tuple[str, ...]:
    return schema.TARGET_VALUES if column == schema.TARGET else schema.FEATURES_BY_NAME[column].values


def _check_tables() -> None:
    """Fail at import if the tables and the schema disagree (WHY: a silent mismatch would skew data)."""
    for name, table in {
        "AGE_MIX": AGE_MIX,
        "DEATH_SHARE_BY_AGE": DEATH_SHARE_BY_AGE,
        "HOSP_SHARE_BY_AGE": HOSP_SHARE_BY_AGE,
        "ICU_SHARE_OF_HOSP_BY_AGE": ICU_SHARE_OF_HOSP_BY_AGE,
        "MEDCOND_SHARE_BY_AGE": MEDCOND_SHARE_BY_AGE,
    }.items():
        if tuple(table) != _AGES:
            raise RuntimeError(f"model.synth.{name} keys must be schema.AGE_GROUPS in order")
    for column, table in {
        "age_group": AGE_REPORTED_MISSING,
        "sex": SEX_REPORTED_OTHER,
        "race_ethnicity_combined": RACE_MIX,
        "current_status": CURRENT_STATUS_MIX,
        **REPORTING_GAPS,
    }.items():
        unknown = set(table) - set(_values(column))
        if unknown:
            raise RuntimeError(f"model.synth table for {column} has values not in the schema: {sorted(unknown)}")
    for name, total in {"AGE_MIX": sum(AGE_MIX.values()), "RACE_MIX": sum(RACE_MIX.values()),
                        "CURRENT_STATUS_MIX": sum(CURRENT_STATUS_MIX.values())}.items():  # fmt: skip
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise RuntimeError(f"model.synth.{name} must sum to 1, sums to {total}")
    for column in REPORTING_GAPS:
        good, poor = _mask_probabilities(column)
        if not 0.0 <= good <= poor <= 1.0:
            raise RuntimeError(f"reporting gap of {column} is too large for POOR_REPORTING_SHARE")


def _mask_probabilities(column: str) -> tuple[float, float]:
    """P(hidden) for good and poor reporting rows, keeping the configured marginal gap."""
    gap = sum(REPORTING_GAPS[column].values())
    poor = gap + (1.0 - gap) * POOR_REPORTING_LIFT
    good = (gap - POOR_REPORTING_SHARE * poor) / (1.0 - POOR_REPORTING_SHARE)
    return good, poor


# --- Solving the per-age intercepts ------------------------------------------------


@dataclass(frozen=True)
class Intercepts:
    """Per-age logistic intercepts (log-odds) that reproduce the calibration tables."""

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


def _age_intercepts(age: str) -> tuple[float, float, float]:
    """(hosp, icu, death) intercepts of one age group, solved on the exact latent mixture."""
    lor_h, lor_i, lor_d = (_log_odds_ratios(t) for t in (HOSP_ODDS_RATIOS, ICU_ODDS_RATIOS, DEATH_ODDS_RATIOS))
    strata = _latent_strata(age)

    def p_hosp(a: float, male: int, med: int) -> float:
        return float(expit(a + lor_h["male"] * male + lor_h["medcond"] * med))

    def p_icu(a: float, male: int, med: int) -> float:
        return float(expit(a + lor_i["male"] * male + lor_i["medcond"] * med))

    a_h = _solve(lambda a: sum(w * p_hosp(a, x, m) for w, x, m in strata), HOSP_SHARE_BY_AGE[age])
    hosp_w = [(w * p_hosp(a_h, x, m), x, m) for w, x, m in strata]
    hosp_total = sum(w for w, _, _ in hosp_w)
    a_i = _solve(lambda a: sum(w * p_icu(a, x, m) for w, x, m in hosp_w) / hosp_total,
                 ICU_SHARE_OF_HOSP_BY_AGE[age])  # fmt: skip
    # (weight, male, medcond, hosp, icu) cells of the full latent distribution.
    cells = []
    for w, x, m in strata:
        ph, pi = p_hosp(a_h, x, m), p_icu(a_i, x, m)
        cells += [(w * (1 - ph), x, m, 0, 0), (w * ph * (1 - pi), x, m, 1, 0), (w * ph * pi, x, m, 1, 1)]

    def death_share(a: float) -> float:
        return sum(
            w * float(expit(a + lor_d["male"] * x + lor_d["medcond"] * m + lor_d["hosp"] * h + lor_d["icu"] * i))
            for w, x, m, h, i in cells
        )

    return a_h, a_i, _solve(death_share, DEATH_SHARE_BY_AGE[age])


@cache
def intercepts() -> Intercepts:
    """Per-age intercepts so the expected shares match the calibration tables exactly."""
    hosp, icu, death = zip(*(_age_intercepts(age) for age in _AGES), strict=True)
    return Intercepts(np.array(hosp), np.array(icu), np.array(death))


# --- Block generation ----------------------------------------------------------------


@dataclass(frozen=True)
class _Params:
    age_cum: np.ndarray
    death_multiplier: float  # on every row's probability of death, capped at 1


def _params(age_shift: Mapping[str, float] | None, death_rate_multiplier: float) -> _Params:
    if not (isinstance(death_rate_multiplier, int | float) and math.isfinite(death_rate_multiplier)
            and death_rate_multiplier > 0):  # fmt: skip
        raise ValueError(f"death_rate_multiplier must be a finite number > 0, got {death_rate_multiplier!r}")
    weights = np.array([AGE_MIX[a] for a in _AGES])
    for age, factor in (age_shift or {}).items():
        if age not in AGE_MIX:
            raise ValueError(f"age_shift key {age!r} is not an age group; use one of {list(_AGES)}")
        if not (isinstance(factor, int | float) and math.isfinite(factor) and factor >= 0):
            raise ValueError(f"age_shift[{age!r}] must be a finite number >= 0 (a weight factor), got {factor!r}")
        weights[_AGES.index(age)] *= factor
    if weights.sum() <= 0:
        raise ValueError("age_shift sets every age group's weight to 0; keep at least one factor > 0")
    cum = np.cumsum(weights / weights.sum())
    cum[-1] = 1.0
    return _Params(age_cum=cum, death_multiplier=float(death_rate_multiplier))


@cache
def _dates() -> tuple[np.ndarray, np.ndarray, np.ndarray, pa.Array]:
    """Month start offsets, month lengths, cumulative month weights and the date-string table."""
    starts, lengths = [], []
    for key in MONTHLY_CASES_MILLIONS:
        first = dt.date(int(key[:4]), int(key[5:]), 1)
        nxt = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
        starts.append((first - _EPOCH).days)
        lengths.append((nxt - first).days)
    w = np.array(list(MONTHLY_CASES_MILLIONS.values()))
    cum = np.cumsum(w / w.sum())
    cum[-1] = 1.0
    last = starts[-1] + lengths[-1] + 2 * MAX_DELAY_DAYS + 1
    strings = pa.array([(_EPOCH + dt.timedelta(days=d)).strftime(DATE_FORMAT) for d in range(last)])
    return np.array(starts), np.array(lengths), cum, strings


def _cum(table: Mapping[str, float], column: str) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative thresholds and schema codes of a categorical table."""
    values = _values(column)
    cum = np.cumsum(list(table.values()))
    if math.isclose(cum[-1], 1.0, abs_tol=1e-9):
        cum[-1] = 1.0  # a full mix: every u in [0, 1) must land in a slice, despite rounding
    codes = np.array([values.index(v) for v in table], dtype=np.int8)
    return cum, codes


def _poisson_delay(u: np.ndarray, mean: float) -> np.ndarray:
    cdf = poisson.cdf(np.arange(MAX_DELAY_DAYS), mean)
    return np.searchsorted(cdf, u, side="right").astype(np.int32)


def _pick(u: np.ndarray, cum: np.ndarray, codes: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Replace `fallback` by codes[k] where u falls in the k-th slice of [0, cum[-1])."""
    idx = np.searchsorted(cum, u, side="right")
    hit = idx < len(codes)
    return np.where(hit, codes[np.minimum(idx, len(codes) - 1)], fallback).astype(np.int8)


_N_UNIFORMS = 21


def _block(seed: int, index: int, p: _Params) -> dict[str, np.ndarray]:
    """Codes (indices into schema values; dates as day offsets, -1 blank) of one full block."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, index])))
    u = rng.random((_N_UNIFORMS, BLOCK_ROWS))
    ic = intercepts()
    lor_h, lor_i, lor_d = (_log_odds_ratios(t) for t in (HOSP_ODDS_RATIOS, ICU_ODDS_RATIOS, DEATH_ODDS_RATIOS))

    age = np.minimum(np.searchsorted(p.age_cum, u[0], side="right"), len(_AGES) - 1)
    male = u[1] < MALE_SHARE
    med = u[2] < np.array(list(MEDCOND_SHARE_BY_AGE.values()))[age]
    hosp = u[3] < expit(ic.hosp[age] + lor_h["male"] * male + lor_h["medcond"] * med)
    icu = hosp & (u[4] < expit(ic.icu[age] + lor_i["male"] * male + lor_i["medcond"] * med))
    logit_d = (ic.death[age] + lor_d["male"] * male + lor_d["medcond"] * med + lor_d["hosp"] * hosp
               + lor_d["icu"] * icu)  # fmt: skip
    death = u[5] < np.minimum(1.0, p.death_multiplier * expit(logit_d))

    out: dict[str, np.ndarray] = {}
    age_values = _values("age_group")
    latent_age = np.array([age_values.index(a) for a in _AGES], dtype=np.int8)[age]
    out["age_group"] = _pick(u[6], *_cum(AGE_REPORTED_MISSING, "age_group"), latent_age)
    sex_values = _values("sex")
    latent_sex = np.where(male, sex_values.index("Male"), sex_values.index("Female")).astype(np.int8)
    out["sex"] = _pick(u[7], *_cum(SEX_REPORTED_OTHER, "sex"), latent_sex)
    out["race_ethnicity_combined"] = _pick(u[8], *_cum(RACE_MIX, "race_ethnicity_combined"), np.int8(0))
    out["current_status"] = _pick(u[9], *_cum(CURRENT_STATUS_MIX, "current_status"), np.int8(0))

    poor = u[10] < POOR_REPORTING_SHARE
    for k, (column, truth) in enumerate((("death_yn", death), ("hosp_yn", hosp), ("icu_yn", icu), ("medcond_yn", med))):
        values = _values(column)
        good_p, poor_p = _mask_probabilities(column)
        hidden = np.where(poor, poor_p, good_p)
        gaps = REPORTING_GAPS[column]
        missing_frac = gaps[schema.MISSING] / sum(gaps.values())
        uk = u[11 + k]
        code = np.where(truth, values.index("Yes"), values.index("No"))
        code = np.where(uk < hidden, values.index(schema.UNKNOWN), code)
        code = np.where(uk < hidden * missing_frac, values.index(schema.MISSING), code)
        out[column] = code.astype(np.int8)

    starts, lengths, month_cum, _ = _dates()
    month = np.minimum(np.searchsorted(month_cum, u[15], side="right"), len(starts) - 1)
    onset = (starts[month] + np.floor(u[16] * lengths[month])).astype(np.int32)
    specimen = onset + _poisson_delay(u[17], SPECIMEN_DELAY_MEAN_DAYS)
    report = specimen + _poisson_delay(u[18], REPORT_DELAY_MEAN_DAYS)
    onset_blank = u[19] < DATE_BLANK_SHARE["onset_dt"]
    specimen_blank = u[20] < DATE_BLANK_SHARE["pos_spec_dt"]
    # Earliest of the dates that are present (onset <= specimen <= report by construction).
    out["cdc_case_earliest_dt"] = np.where(~onset_blank, onset, np.where(~specimen_blank, specimen, report))
    out["cdc_report_dt"] = report
    out["pos_spec_dt"] = np.where(specimen_blank, -1, specimen).astype(np.int32)
    out["onset_dt"] = np.where(onset_blank, -1, onset).astype(np.int32)
    return out


def _to_batch(codes: dict[str, np.ndarray]) -> pa.RecordBatch:
    date_strings = _dates()[3]
    arrays = []
    for name in schema.CURRENT_SCHEMA_COLUMNS:
        c = codes[name]
        if name in schema.DATE_COLUMNS:
            arrays.append(pc.take(date_strings, pa.array(c, mask=c < 0)))
        else:
            arrays.append(pc.take(pa.array(_values(name)), pa.array(c)))
    return pa.RecordBatch.from_arrays(arrays, schema=OUTPUT_SCHEMA)


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
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[pa.RecordBatch]:
    """Yield `rows` rows in the current CDC schema (all string columns) as batches of `chunk_rows`.

    age_shift: age group -> factor on its weight in ``AGE_MIX`` (renormalised), e.g.
    ``{"80+ Years": 2.0}`` doubles the relative share of 80+. death_rate_multiplier
    multiplies every row's probability of death (capped at 1, so the realised factor is a
    little smaller than m > 1 where risks are already high).
    Output depends on seed, rows and the shifts only; memory is bounded by chunk_rows.
    """
    rows = _check_count("rows", rows, 1)
    seed = _check_count("seed", seed, 0)
    chunk_rows = _check_count("chunk_rows", chunk_rows, 1)
    p = _params(age_shift, death_rate_multiplier)
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
        yield _to_batch({k: np.concatenate([part[k] for part in parts]) for k in parts[0]})
        start = end


def output_format(path: str | os.PathLike[str]) -> str:
    """'csv', 'csv.gz' or 'parquet' from the file name; ValueError naming the allowed endings otherwise."""
    name = Path(path).name.lower()
    for ending, fmt in FORMATS.items():
        if name.endswith(ending) and len(name) > len(ending):
            return fmt
    raise ValueError(f"cannot tell the output format of {str(path)!r}: the file name must end in "
                     f"{', '.join(FORMATS)}")  # fmt: skip


Progress = Callable[[int, int, float], None]


def write(
    path: str | os.PathLike[str],
    rows: int,
    seed: int,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Progress | None = None,
    **shift: object,
) -> dict[str, object]:
    """Write a generated file (format from the extension); returns a small summary.

    shift: ``age_shift`` / ``death_rate_multiplier`` as in `generate_batches`.
    The file appears atomically: it is written beside the target and renamed at
    the end, so an interrupted run never leaves a truncated file under the final name.
    progress(rows_written, rows_total, elapsed_s) is called after every chunk.
    """
    unknown = set(shift) - {"age_shift", "death_rate_multiplier"}
    if unknown:
        raise TypeError(f"unknown shift parameters {sorted(unknown)}; use age_shift, death_rate_multiplier")
    fmt = output_format(path)
    target = Path(path)
    batches = generate_batches(rows, seed, chunk_rows=chunk_rows, **shift)  # type: ignore[arg-type]
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    began = time.perf_counter()
    written = 0
    try:
        with contextlib.ExitStack() as stack:
            writer: pq.ParquetWriter | pacsv.CSVWriter
            if fmt == "parquet":
                writer = stack.enter_context(pq.ParquetWriter(partial, OUTPUT_SCHEMA, compression="zstd"))
            else:
                sink: IO[bytes] = stack.enter_context(open(partial, "wb"))
                if fmt == "csv.gz":
                    # Python's gzip, not Arrow's: Arrow fixes level 9 (~6 min for 13M rows, vs ~1 min
                    # at level 3); mtime=0 and no file name keep the bytes identical for a seed.
                    sink = stack.enter_context(
                        gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=sink, mtime=0)
                    )
                writer = stack.enter_context(pacsv.CSVWriter(sink, OUTPUT_SCHEMA))
            for batch in batches:
                writer.write_batch(batch)
                written += batch.num_rows
                if progress:
                    progress(written, rows, time.perf_counter() - began)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    summary = {"path": str(target), "format": fmt, "rows": written, "seed": seed,
               "seconds": round(time.perf_counter() - began, 3)}  # fmt: skip
    # Sidecar so training labels any model built on this file as synthetic.
    write_provenance(target, {"synthetic": True, "generator": "model.synth", "rows": written, "seed": seed,
                              **{k: v for k, v in shift.items() if v is not None}})  # fmt: skip
    return summary


def calibration_markdown() -> str:
    """The per-age calibration table as Markdown (docs/data_card.md embeds it verbatim)."""
    lines = [
        "| age group | share of cases | death share (known outcomes) | hospitalised | ICU among hospitalised "
        "| pre-existing condition |",
        "|---|---|---|---|---|---|",
    ]
    for a in _AGES:
        lines.append(
            f"| {a} | {AGE_MIX[a]:.1%} | {DEATH_SHARE_BY_AGE[a]:.2%} | {HOSP_SHARE_BY_AGE[a]:.1%} "
            f"| {ICU_SHARE_OF_HOSP_BY_AGE[a]:.0%} | {MEDCOND_SHARE_BY_AGE[a]:.0%} |"
        )
    return "\n".join(lines)


def expected_death_share(age_shift: dict[str, float] | None = None) -> float:
    """Overall death share among known outcomes implied by the tables (no death multiplier)."""
    cum = _params(age_shift, 1.0).age_cum
    weights = np.diff(np.concatenate([[0.0], cum]))
    return float(np.dot(weights, list(DEATH_SHARE_BY_AGE.values())))


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


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model.synth",
        description="Write synthetic CDC case-surveillance data (current schema). See docs/data_card.md.",
    )
    parser.add_argument("--rows", type=int, required=True, help="number of rows (> 0)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (>= 0); same seed and rows, same file")
    parser.add_argument("--out", required=True, help="output file: .csv, .csv.gz or .parquet")
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, help="rows per write (memory bound)")
    parser.add_argument("--age-shift", action="append", default=[], metavar="GROUP=FACTOR",
                        help="drift: multiply an age group's weight, e.g. '80+ Years=2' (repeatable)")  # fmt: skip
    parser.add_argument("--death-rate-multiplier", type=float, default=1.0,
                        help="drift: multiply every row's probability of death (default 1)")  # fmt: skip
    args = parser.parse_args(argv)
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
    try:
        _params(age_shift, args.death_rate_multiplier)
    except ValueError as exc:
        parser.error(str(exc))

    def report(done: int, total: int, elapsed: float) -> None:
        left = elapsed / done * (total - done)
        print(f"synth: {done:,}/{total:,} rows ({done / total:.0%}) written, {elapsed:.1f} s elapsed, "
              f"~{left:.0f} s left", file=sys.stderr, flush=True)  # fmt: skip

    try:
        summary = write(args.out, args.rows, args.seed, chunk_rows=args.chunk_rows, progress=report,
                        age_shift=age_shift, death_rate_multiplier=args.death_rate_multiplier)  # fmt: skip
    except OSError as exc:
        print(f"synth: error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return BAD_INPUT
    print(f"synth: wrote {summary['rows']:,} rows to {summary['path']} in {summary['seconds']} s",
          file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
