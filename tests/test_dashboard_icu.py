"""ICU capacity maths (dashboard/ui/icu.py) on hand-checked numbers."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard.ui import icu

# flag = score >= threshold: lower thresholds flag more and catch more deaths.
TABLE = pd.DataFrame(
    {
        "threshold": [1.0, 0.30, 0.10, 0.05, 0.0],
        "recall": [0.0, 0.40, 0.70, 0.90, 1.0],
        "flagged_share": [0.0, 0.02, 0.05, 0.10, 1.0],
    }
)


def test_littles_law() -> None:
    # 200 cases/day, 10 % flagged, 25 % of them to ICU, 8 days: 5 admissions/day × 8 days = 40 beds
    assert icu.beds_needed(200, 0.10, 0.25, 8) == pytest.approx(40.0)
    a = icu.IcuAssumptions(cases_per_day=200, icu_beds=30, los_days=8, icu_share=0.25)
    assert icu.beds_at(0.10, a) == pytest.approx(40.0)


def test_deaths_missed_per_day() -> None:
    assert icu.deaths_missed_per_day(1000, 0.03, 0.9) == pytest.approx(3.0)


def test_saturation_recall_is_highest_recall_that_fits() -> None:
    # beds by row: 0, 8, 20, 40, 400 -> with 30 beds the 0.05 row (40) overflows, the 0.10 row (20) fits
    a = icu.IcuAssumptions(cases_per_day=200, icu_beds=30, los_days=8, icu_share=0.25)
    sat = icu.saturation(TABLE, a, prevalence=0.03)
    assert sat.status == "saturates"
    assert (sat.recall, sat.threshold, sat.beds_needed) == pytest.approx((0.70, 0.10, 20.0))
    assert sat.deaths_missed_per_day == pytest.approx(200 * 0.03 * 0.30)


def test_capacity_exactly_met_still_fits() -> None:
    a = icu.IcuAssumptions(cases_per_day=200, icu_beds=40, los_days=8, icu_share=0.25)
    assert icu.saturation(TABLE, a, prevalence=0.03).recall == pytest.approx(0.90)


def test_never_saturates() -> None:
    a = icu.IcuAssumptions(cases_per_day=200, icu_beds=400, los_days=8, icu_share=0.25)
    sat = icu.saturation(TABLE, a, prevalence=0.03)
    assert sat.status == "never_saturates" and sat.recall == 1.0 and sat.deaths_missed_per_day == 0


def test_saturated_even_at_lowest_recall() -> None:
    table = TABLE[TABLE["threshold"] < 1.0]  # without the "flag nobody" row
    a = icu.IcuAssumptions(cases_per_day=200, icu_beds=5, los_days=8, icu_share=0.25)
    sat = icu.saturation(table, a, prevalence=0.03)
    assert sat.status == "saturated_always"
    assert (sat.recall, sat.beds_needed) == pytest.approx((0.40, 8.0))


def test_curve_is_sorted_by_recall_and_marks_fit() -> None:
    a = icu.IcuAssumptions(cases_per_day=200, icu_beds=30, los_days=8, icu_share=0.25)
    curve = icu.capacity_curve(TABLE, a, prevalence=0.03)
    assert list(curve["recall"]) == sorted(curve["recall"])
    assert list(curve["fits"]) == [True, True, True, False, False]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cases_per_day", -1, "new cases per day"),
        ("icu_beds", -2, "ICU beds"),
        ("los_days", 0, "ICU stay"),
        ("icu_share", 1.5, "between 0 and 1"),
    ],
)
def test_bad_assumptions_are_explained(field: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        icu.IcuAssumptions(**{field: value})
