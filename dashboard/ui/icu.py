"""Helpers of the ICU saturation page: the planner's inputs, where the ICU need comes from, and the words
that go with the numbers. The maths itself is `model.planning.capacity` (pure, shared with the CLI).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import streamlit as st

from model.planning import capacity

Growth = Literal["flat", "doubling", "halving", "sir"]
GROWTH_MODES: tuple[Growth, ...] = ("flat", "doubling", "halving", "sir")
GROWTH_LABELS: dict[str, str] = {
    "flat": "flat",
    "doubling": "doubling (exponential)",
    "halving": "halving (exponential)",
    "sir": "doubling, slowing as susceptibles run out (SIR)",
}
ICU_ENDS: tuple[capacity.IcuEnd, ...] = ("lower", "upper")
THRESHOLD_GRID = 0.0001  # the operating threshold's grid (dashboard.ui.state.THRESHOLD_STEP, which imports this module)


@dataclass(frozen=True)
class IcuAssumptions:
    """Planner's inputs, kept across pages (and in the URL); validated so that nonsense never reaches a chart.

    Raises `model.planning.capacity.CapacityInputError` (a ValueError) whose message says what to change.
    The Batch scoring page reads `icu_end` too, so both pages count ICU need at the same end.
    """

    cases_per_day: float = 200.0
    icu_beds: float = 40.0
    los_days: float = 9.0  # CHIME's default ICU stay
    growth: Growth = "flat"
    growth_days: float = 14.0  # doubling or halving time
    census: float = 0.0
    los_shape: float = 1.0
    delay_days: float = 0.0
    horizon_days: int = 90
    icu_end: str = "lower"  # which end of ICU admissions per reported case the expected line uses
    icu_per_case: float = capacity.DEFAULT_ICU_PER_CASE  # only for a model without an ICU table
    icu_in_band: bool = True  # the band draws ICU admissions per case between the two ends
    los_spread: float = 0.3  # the band draws the mean stay within ± this share
    growth_spread: float = 0.5  # the band draws the growth rate within ± this many % per day
    population: float = 1_000_000.0  # SIR only
    reported_share: float = 0.1  # SIR only: infections reported as cases
    follow_days: int = capacity.DEFAULT_FOLLOW_DAYS
    surveillance_capacity: float = capacity.DEFAULT_SURVEILLANCE_CAPACITY

    def __post_init__(self) -> None:
        problems = []
        if self.growth not in GROWTH_MODES:
            problems.append(f"growth must be one of {', '.join(GROWTH_MODES)} (got {self.growth!r})")
        if self.icu_end not in ICU_ENDS:
            problems.append(f"the ICU end must be one of {', '.join(ICU_ENDS)} (got {self.icu_end!r})")
        if not 0.0 <= self.icu_per_case <= 1.0:
            problems.append(f"ICU admissions per reported case must be between 0 and 1 (got {self.icu_per_case})")
        if problems:
            raise capacity.CapacityInputError("; ".join(problems))
        self.scenario()  # validates the rest
        self.uncertainty((0.0, 0.0))
        self.surveillance()

    def scenario(self) -> capacity.Scenario:
        doubling = None if self.growth == "flat" else self.growth_days * (-1 if self.growth == "halving" else 1)
        sir = self.growth == "sir"
        return capacity.Scenario(
            cases_per_day=self.cases_per_day,
            beds=self.icu_beds,
            los_days=self.los_days,
            los_shape=self.los_shape,
            doubling_days=doubling,
            census=self.census,
            delay_days=self.delay_days,
            days=self.horizon_days,
            population=self.population if sir else None,
            reported_share=self.reported_share,
        )

    def uncertainty(self, ends: tuple[float, float]) -> capacity.Uncertainty:
        """The band's ranges; `ends` are ICU admissions per reported case at the lower and upper end."""
        return capacity.Uncertainty(ends if self.icu_in_band else None, self.los_spread, self.growth_spread / 100)

    def surveillance(self) -> capacity.Surveillance:
        return capacity.Surveillance(self.follow_days, self.surveillance_capacity)


# --- where the ICU need comes from ---------------------------------------------------------------------


def _stamp(model_dir: Path) -> int:
    path = model_dir / "evaluation" / capacity.ICU_TABLE
    return path.stat().st_mtime_ns if path.is_file() else 0


def _card_stamp(model_dir: Path) -> int:
    # Training swaps in the whole directory at once: a new card means new tables.
    return (model_dir / "model_card.json").stat().st_mtime_ns


@st.cache_resource(show_spinner=False, max_entries=32)
def _need(
    model_dir: str, icu_stamp: int, card_stamp: int, end: capacity.IcuEnd, per_case: float | None
) -> capacity.IcuNeed:
    """Need per model version, end and constant (validating a table costs more than a rerun should). Do not mutate."""
    return capacity.load_need(model_dir, end, per_case)


def _icu_end(end: str) -> capacity.IcuEnd:
    """`end` as one of ICU_ENDS (IcuAssumptions checks it when it is made; a changed one is refused here)."""
    for known in ICU_ENDS:
        if end == known:
            return known
    raise capacity.CapacityInputError(f"the ICU end must be one of {', '.join(ICU_ENDS)} (got {end!r})")


def has_icu_table(model_dir: Path) -> bool:
    """Whether training wrote the model's ICU table (then the planner chooses an end, else enters a share)."""
    return _stamp(model_dir) != 0


@dataclass(frozen=True)
class NeedSource:
    """The ICU need the page uses and, in words, where it comes from."""

    need: capacity.IcuNeed
    description: str

    @property
    def table(self) -> pd.DataFrame:
        return self.need.table


def need_source(model_dir: Path, card: dict[str, Any], a: IcuAssumptions) -> NeedSource:
    """The model's ICU table at the chosen end; a constant share when the model has none.

    Raises `model.planning.capacity.CapacityInputError` when a stored table is unusable.
    """
    per_case = None if has_icu_table(model_dir) else a.icu_per_case
    need = _need(str(model_dir), _stamp(model_dir), _card_stamp(model_dir), _icu_end(a.icu_end), per_case)
    if need.source == "constant":
        text = (
            f"This model directory has no ICU-admission table (`evaluation/{capacity.ICU_TABLE}`), so "
            f"**{a.icu_per_case:.1%} of reported cases** are assumed to need an ICU bed, flagged or not (CDC: 2% "
            "of 1,320,488 cases, MMWR 2020;69(24)). Retrain with `python -m model.train` for rates from the data."
        )
        return NeedSource(need, text)
    return NeedSource(need, _model_description(card, need))


def icu_rates(need: capacity.IcuNeed, threshold: float) -> tuple[float, float]:
    """ICU admissions per flagged and per unflagged reported case at `threshold`, at the need's end.

    Why per patient: the Batch scoring page applies them to a file's own flagged and unflagged patients
    (the ICU page applies them per reported case). Where no stored case is flagged (or none unflagged)
    that side's rate is unknown: every case's rate (`icu_per_case`) stands in for it.
    """
    row = capacity.need_at(need.table, threshold)
    share = row.case_flagged_share
    flagged = row.icu_per_case_flagged / share if share > 0 else row.icu_per_case
    unflagged = row.icu_per_case_unflagged / (1.0 - share) if share < 1 else row.icu_per_case
    return flagged, unflagged


def _model_description(card: dict[str, Any], need: capacity.IcuNeed) -> str:
    stored = card.get("icu")
    icu = stored if isinstance(stored, dict) else {}
    low, high = need.ends
    if need.end is None:
        raise ValueError("an ICU need from the model's table names its end ('lower' or 'upper'); this one has none")
    text = (
        f"**{need.end.capitalize()} end in use:** {capacity.ICU_ENDS[need.end]}. ICU admissions per reported case: "
        f"**{low:.2%}** at the lower end, **{high:.2%}** at the upper end, from ICU models on intake answers fitted "
        "on the training split's reported cases"
    )
    train, rate = icu.get("train_cases"), icu.get("icu_rate")
    if isinstance(train, int) and isinstance(rate, int | float):
        text += f" ({train:,} cases; among the few with a recorded ICU answer {rate:.1%} said Yes)"
    text += ", averaged over the test split's reported cases."
    period = card.get("data_period")
    if isinstance(period, str) and period:
        text += f" Data: {period}."
    return text


# --- words ------------------------------------------------------------------------------------------------


def occupancy(census: float, beds: float) -> tuple[str, str | None]:
    """Metric value and delta: a share while it fits, overflow in patients once it does not."""
    if beds <= 0:
        return "no beds", f"{census:,.0f} patients without a bed" if census >= 0.5 else None
    if census <= beds:
        return f"{census / beds:.0%} of {beds:,.0f} beds", None
    return "FULL", f"+{census - beds:,.0f} patients without a bed"


def day_text(day: int | None) -> str:
    return f"day {day}" if day is not None else "none"


def share_text(p: float) -> str:
    """A probability as a percentage that never reads "0.0%" for something that can happen."""
    return "< 0.1%" if 0 < p < 0.0005 else f"{p:.1%}"


def band_days(band: capacity.Band | None, horizon: int) -> str:
    """How often and how early the simulated runs overflow (patient-level runs only)."""
    if band is None or band.saturation_days is None:
        return ""
    days = band.saturation_days
    share = float((days >= 0).mean())
    if share == 0:
        return f"In none of {band.runs} simulated runs does the census exceed the beds within {horizon} days."
    text = (
        f"In {share:.0%} of {band.runs} simulated runs the census exceeds the beds at least once within {horizon} days"
    )
    if share >= 0.05:
        early = int(np.quantile(np.where(days >= 0, days, np.iinfo(np.int64).max), 0.05, method="lower"))
        text += f"; in 5% of runs it does so by day {early}"
    return text + "."


def fit_message(
    fit: capacity.Fit, now: capacity.Need, team: capacity.Surveillance, horizon: int
) -> tuple[Literal["error", "warning", "info", "success"], str, bool]:
    """What the threshold that fits the surveillance team means: message kind, text, and whether to offer it."""
    within = f"the flagged patients followed within {team.capacity:,.0f} at once for {horizon} days"
    if fit.status == "none" or fit.need is None:
        return (
            "error",
            f"**No threshold that flags anybody keeps {within}:** even the strictest stored one flags too many. "
            "A larger team or a shorter follow-up is needed.",
            False,
        )
    t, recall, share = fit.need.threshold, fit.need.recall, fit.need.case_flagged_share
    if fit.status == "fits_all":
        text = f"**Even the lowest stored threshold ({t:.4f}, recall {recall:.3f}) keeps {within}.**"
        return "success", text, False
    if is_same_row(fit.need, now) or 0 <= now.threshold - t < THRESHOLD_GRID:  # the fit, rounded up to the grid
        return "info", f"**The operating threshold is the one that fits:** flagging more would break {within}.", False
    if recall >= now.recall:
        text = (
            f"**Threshold that fits: {t:.4f}** flags {share:.1%} of cases and catches more deaths (recall "
            f"{recall:.3f} instead of {now.recall:.3f}) while keeping {within}."
        )
        return "info", text, True
    text = (
        f"**To keep {within}, raise the threshold to {t:.4f}:** the highest recall that fits is {recall:.3f} "
        f"(now {now.recall:.3f}), flagging {share:.1%} of cases."
    )
    return "warning", text, True


def deaths_text(total: float, per_day: float, horizon: int) -> str:
    return f"{total:,.1f} over {horizon} days ({per_day:,.2f} per day today)"


def projection_csv(p: capacity.Projection) -> bytes:
    """The day table as a CSV download, with the threshold it was made with."""
    table = days_table(p)
    table.insert(0, "threshold", p.need.threshold)
    return table.to_csv(index=False).encode("utf-8")


def days_table(p: capacity.Projection) -> pd.DataFrame:
    """The supported days of the projection as people read them: one row per day, units in the headers."""
    d = p.shown
    return pd.DataFrame(
        {
            "day": d["day"],
            "cases reported": d["cases"].round(1),
            "ICU admissions, all": (d["admissions"] + d["admissions_unflagged"]).round(2),
            "of which flagged": d["admissions"].round(2),
            "ICU census, expected": d["census"].round(1),
            "census 5th percentile": d["census_p05"].round(1),
            "census 95th percentile": d["census_p95"].round(1),
            "beds free": d["beds_free"].round(1),
            "overflow (patients without a bed)": d["overflow"].round(1),
            "flagged patients followed": d["under_surveillance"].round(0),
            "deaths missed": d["deaths_missed"].round(2),
            "deaths missed, cumulative": d["deaths_missed_cumulative"].round(1),
        }
    )


def is_same_row(a: capacity.Need, b: capacity.Need) -> bool:
    """Two thresholds that flag the same patients."""
    return math.isclose(a.case_flagged_share, b.case_flagged_share) and math.isclose(a.recall, b.recall)


__all__ = [
    "GROWTH_LABELS",
    "GROWTH_MODES",
    "IcuAssumptions",
    "NeedSource",
    "band_days",
    "day_text",
    "days_table",
    "deaths_text",
    "fit_message",
    "has_icu_table",
    "icu_rates",
    "is_same_row",
    "need_source",
    "occupancy",
    "projection_csv",
    "share_text",
]
