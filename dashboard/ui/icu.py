"""Helpers of the ICU saturation page: the planner's inputs, where the ICU need comes from, and the words
that go with the numbers. The maths itself is `model.capacity` (pure, shared with the CLI).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import streamlit as st

from model import capacity

Growth = Literal["flat", "doubling", "halving"]
GROWTH_MODES: tuple[Growth, ...] = ("flat", "doubling", "halving")


@dataclass(frozen=True)
class IcuAssumptions:
    """Planner's inputs, kept across pages; validated so that nonsense never reaches a chart.

    Raises `model.capacity.CapacityInputError` (a ValueError) whose message says what to change.
    """

    cases_per_day: float = 200.0
    icu_beds: float = 40.0
    los_days: float = 9.0  # CHIME's default ICU stay
    icu_share: float = 0.25  # override: share of flagged patients needing an ICU bed
    growth: Growth = "flat"
    growth_days: float = 14.0  # doubling or halving time
    census: float = 0.0
    los_shape: float = 1.0
    delay_days: float = 0.0
    horizon_days: int = 90
    use_constant_share: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 <= self.icu_share <= 1.0:
            problems.append(f"share of flagged patients needing ICU must be between 0 and 1 (got {self.icu_share})")
        if self.growth not in GROWTH_MODES:
            problems.append(f"growth must be one of {', '.join(GROWTH_MODES)} (got {self.growth!r})")
        if problems:
            raise capacity.CapacityInputError("; ".join(problems))
        self.scenario()  # validates the rest

    def scenario(self) -> capacity.Scenario:
        doubling = None if self.growth == "flat" else self.growth_days * (1 if self.growth == "doubling" else -1)
        return capacity.Scenario(
            cases_per_day=self.cases_per_day,
            beds=self.icu_beds,
            los_days=self.los_days,
            los_shape=self.los_shape,
            doubling_days=doubling,
            census=self.census,
            delay_days=self.delay_days,
            days=self.horizon_days,
        )


# --- where the ICU need comes from ---------------------------------------------------------------------


@st.cache_resource(show_spinner=False, max_entries=8)
def _icu_table(model_dir: str, stamp: int) -> pd.DataFrame | None:
    # cache_resource hands out the same frame without copying: callers must not mutate it.
    return capacity.read_icu_table(model_dir)


def _stamp(model_dir: Path) -> int:
    path = model_dir / "evaluation" / capacity.ICU_TABLE
    return path.stat().st_mtime_ns if path.is_file() else 0


def _card_stamp(model_dir: Path) -> int:
    # Training swaps in the whole directory at once: a new card means new tables.
    return (model_dir / "model_card.json").stat().st_mtime_ns


@st.cache_resource(show_spinner=False, max_entries=32)
def _need(model_dir: str, icu_stamp: int, card_stamp: int, share: float | None) -> pd.DataFrame:
    """Need table per model version and share (validating a table costs more than a rerun should). Do not mutate."""
    return capacity.load_need(model_dir, share)[0]


@dataclass(frozen=True)
class NeedSource:
    """The need table the page uses and, in words, where its ICU rates come from."""

    table: pd.DataFrame
    source: capacity.IcuSource
    model_has_icu_table: bool
    description: str


def model_icu_table(model_dir: Path) -> pd.DataFrame | None:
    """The model's `evaluation/icu_by_threshold.csv` (cached per file version), or None if training wrote none."""
    return _icu_table(str(model_dir), _stamp(model_dir))


def need_source(model_dir: Path, card: dict[str, Any], a: IcuAssumptions) -> NeedSource:
    """The model's ICU table unless the planner overrides it with a constant share, or the model has none.

    Raises `model.capacity.CapacityInputError` when a stored table is unusable.
    """
    has_table = model_icu_table(model_dir) is not None
    share = None if has_table and not a.use_constant_share else a.icu_share
    table = _need(str(model_dir), _stamp(model_dir), _card_stamp(model_dir), share)
    if share is None:
        return NeedSource(table, "model", True, _model_description(card))
    if not has_table:
        text = (
            f"This model directory has no ICU-admission table (`evaluation/{capacity.ICU_TABLE}`), so a constant "
            f"**{a.icu_share:.0%} of flagged patients** is assumed to need an ICU bed at every threshold. Retrain "
            "with `python -m model.train` to get ICU rates per threshold from the data."
        )
    else:
        text = (
            f"Override: a constant **{a.icu_share:.0%} of flagged patients** needs an ICU bed at every threshold, "
            "instead of the model's ICU rates. ICU admissions among unflagged patients are then not estimated."
        )
    return NeedSource(table, "constant share", has_table, text)


def _model_description(card: dict[str, Any]) -> str:
    icu = card.get("icu") if isinstance(card.get("icu"), dict) else {}
    parts = ["ICU admissions among flagged and among unflagged patients at each threshold are the predictions of "]
    parts.append(
        f"the model's ICU-admission model (`{icu['model']}`"
        if icu.get("model")
        else "the model's ICU-admission model ("
    )
    known, rate = icu.get("known_icu_patients"), icu.get("icu_rate")
    if isinstance(known, int) and isinstance(rate, int | float):
        parts.append(f", fitted on {known:,} patients whose ICU status is known; {rate:.1%} of them were admitted")
    parts.append("), summed over the held-out test split.")
    period = card.get("data_period")
    if isinstance(period, str) and period:
        parts.append(f" Data: {period}.")
    return "".join(parts)


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
    fit: capacity.Fit, now: capacity.Need, beds: float, horizon: int
) -> tuple[Literal["error", "warning", "info", "success"], str, bool]:
    """What the threshold that just fits means for the planner: message kind, text, and whether to offer it."""
    within = f"the expected census within {beds:,.0f} beds for {horizon} days"
    if fit.status == "none" or fit.need is None:
        cause = (
            "today's patients alone exceed the beds"
            if fit.blocked_by_today
            else "even the strictest stored threshold sends too many flagged patients"
        )
        return "error", f"**No threshold keeps {within}:** {cause}. More beds or shorter stays are needed.", False
    t, recall, share = fit.need.threshold, fit.need.recall, fit.need.flagged_share
    if fit.status == "fits_all":
        return (
            "success",
            (
                f"**Even the lowest stored threshold ({t:.4f}, recall {recall:.3f}) keeps {within}:** the beds do not "
                "limit the threshold here."
            ),
            False,
        )
    if is_same_row(fit.need, now):
        return (
            "info",
            f"**The operating threshold is the one that just fits:** flagging more patients would break {within}.",
            False,
        )
    if recall >= now.recall:
        return (
            "info",
            (
                f"**Threshold that just fits: {t:.4f}** flags {share:.2%} of cases and catches more deaths (recall "
                f"{recall:.3f} instead of {now.recall:.3f}) while keeping {within}."
            ),
            True,
        )
    return (
        "warning",
        (
            f"**To keep {within}, raise the threshold to {t:.4f}:** the highest recall that fits is {recall:.3f} "
            f"(now {now.recall:.3f}), flagging {share:.2%} of cases."
        ),
        True,
    )


def deaths_text(total: float, per_day: float, horizon: int) -> str:
    return f"{total:,.1f} over {horizon} days ({per_day:,.2f} per day today)"


def projection_csv(p: capacity.Projection) -> bytes:
    """The day table as a CSV download, with the threshold and the inputs it was made with."""
    table = days_table(p)
    table.insert(0, "threshold", p.need.threshold)
    return table.to_csv(index=False).encode("utf-8")


def days_table(p: capacity.Projection) -> pd.DataFrame:
    """The projection as people read it: one row per day, units in the headers."""
    d = p.days
    return pd.DataFrame(
        {
            "day": d["day"],
            "cases reported": d["cases"].round(1),
            "ICU admissions, flagged (in census)": d["admissions"].round(2),
            "ICU admissions, unflagged (not in census)": d["admissions_unflagged"].round(2),
            "ICU census, expected": d["census"].round(1),
            "census 5th percentile": d["census_p05"].round(1),
            "census 95th percentile": d["census_p95"].round(1),
            "beds free": d["beds_free"].round(1),
            "overflow (patients without a bed)": d["overflow"].round(1),
            "deaths missed": d["deaths_missed"].round(2),
            "deaths missed, cumulative": d["deaths_missed_cumulative"].round(1),
        }
    )


def is_same_row(a: capacity.Need, b: capacity.Need) -> bool:
    """Two thresholds that flag the same patients."""
    return math.isclose(a.flagged_share, b.flagged_share) and math.isclose(a.recall, b.recall)


__all__ = [
    "GROWTH_MODES",
    "IcuAssumptions",
    "NeedSource",
    "band_days",
    "day_text",
    "days_table",
    "deaths_text",
    "fit_message",
    "is_same_row",
    "model_icu_table",
    "need_source",
    "occupancy",
    "projection_csv",
    "share_text",
]
