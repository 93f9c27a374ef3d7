"""ICU-capacity maths (pure, no Streamlit).

Steady state by Little's law: beds occupied = arrival rate × length of stay.
Patients reach the ICU here only if the model flags them, so the arrival rate
is cases/day × flagged_share(threshold) × share of flagged patients needing a bed.
Deaths the flagging misses: cases/day × prevalence × (1 − recall).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import pandas as pd


@dataclass(frozen=True)
class IcuAssumptions:
    """Planner's inputs; validated so that nonsense never reaches a chart."""

    cases_per_day: float = 200.0
    icu_beds: float = 40.0
    los_days: float = 9.0  # CHIME's default ICU stay
    icu_share: float = 0.25  # of flagged patients, how many need an ICU bed

    def __post_init__(self) -> None:
        problems = []
        if not self.cases_per_day >= 0:
            problems.append(f"new cases per day must be ≥ 0 (got {self.cases_per_day})")
        if not self.icu_beds >= 0:
            problems.append(f"ICU beds available must be ≥ 0 (got {self.icu_beds})")
        if not self.los_days > 0:
            problems.append(f"average ICU stay must be > 0 days (got {self.los_days})")
        if not 0.0 <= self.icu_share <= 1.0:
            problems.append(f"share of flagged patients needing ICU must be between 0 and 1 (got {self.icu_share})")
        if problems:
            raise ValueError("; ".join(problems))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def beds_needed(cases_per_day: float, flagged_share: float, icu_share: float, los_days: float) -> float:
    """Occupied beds in steady state (Little's law L = λW)."""
    return cases_per_day * flagged_share * icu_share * los_days


def deaths_missed_per_day(cases_per_day: float, prevalence: float, recall: float) -> float:
    return cases_per_day * prevalence * (1.0 - recall)


def capacity_curve(table: pd.DataFrame, assumptions: IcuAssumptions, prevalence: float) -> pd.DataFrame:
    """Beds needed and deaths missed at every stored threshold, sorted by recall."""
    a = assumptions
    flagged = table["flagged_share"].to_numpy(dtype=float)
    recall = table["recall"].to_numpy(dtype=float)
    curve = pd.DataFrame(
        {
            "threshold": table["threshold"].to_numpy(dtype=float),
            "recall": recall,
            "flagged_share": flagged,
            "beds_needed": beds_needed(a.cases_per_day, flagged, a.icu_share, a.los_days),
            "deaths_missed_per_day": deaths_missed_per_day(a.cases_per_day, prevalence, recall),
        }
    )
    curve["fits"] = curve["beds_needed"] <= a.icu_beds
    return curve.sort_values(["recall", "threshold"], ascending=[True, False], kind="stable").reset_index(drop=True)


SaturationStatus = Literal["never_saturates", "saturates", "saturated_always"]


@dataclass(frozen=True)
class Saturation:
    """The operating point where the ICU is as full as it may be.

    `never_saturates`: even flagging at the highest recall fits; the point is that recall.
    `saturates`: the point is the highest recall whose beds fit the capacity.
    `saturated_always`: even the lowest recall overflows; the point is that lowest recall.
    """

    status: SaturationStatus
    recall: float
    threshold: float
    beds_needed: float
    deaths_missed_per_day: float


def saturation(table: pd.DataFrame, assumptions: IcuAssumptions, prevalence: float) -> Saturation:
    curve = capacity_curve(table, assumptions, prevalence)
    fits = curve[curve["fits"]]
    if fits.empty:
        status: SaturationStatus = "saturated_always"
        row = curve.iloc[0]
    else:
        best = fits["recall"].max()
        # Among equal recalls take the highest threshold: same deaths caught, fewest beds.
        row = fits[fits["recall"] == best].sort_values("threshold").iloc[-1]
        status = "never_saturates" if bool(curve["fits"].all()) else "saturates"
    return Saturation(
        status=status,
        recall=float(row["recall"]),
        threshold=float(row["threshold"]),
        beds_needed=float(row["beds_needed"]),
        deaths_missed_per_day=float(row["deaths_missed_per_day"]),
    )


def beds_at(flagged_share: float, assumptions: IcuAssumptions) -> float:
    a = assumptions
    return float(beds_needed(a.cases_per_day, flagged_share, a.icu_share, a.los_days))


__all__ = [
    "IcuAssumptions",
    "Saturation",
    "beds_at",
    "beds_needed",
    "capacity_curve",
    "deaths_missed_per_day",
    "saturation",
]
