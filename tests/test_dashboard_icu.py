"""The ICU saturation page run by Streamlit's AppTest against the real local endpoint and a model trained by
`python -m model.train`.

Expected curves are rebuilt here from the stored CSV tables, looked up with plain pandas, and from
`model.planning.capacity` (tested on its own in tests/test_capacity.py), so the page's wiring is what is under test.
The model's ICU table (`evaluation/icu_by_threshold.csv`) is used (training on the bundled real file writes one);
a copy of the model without it checks the constant-share fallback.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from model.planning import capacity
from tests.app_pages import app_test, open_page

KEYS = {
    "cases": "icu.cases_per_day",
    "beds": "icu.icu_beds",
    "census": "icu.census",
    "los": "icu.los_days",
    "shape": "icu.los_shape",
    "delay": "icu.delay_days",
    "horizon": "icu.horizon_days",
    "growth_days": "icu.growth_days",
    "follow": "icu.follow_days",
    "team": "icu.surveillance_capacity",
    "population": "icu.population",
}


def _run() -> AppTest:
    return open_page("icu_saturation.py")


def _set(at: AppTest, growth: str | None = None, **values: float) -> AppTest:
    if growth is not None:  # the doubling-time input is enabled only once growth is not flat
        at.selectbox(key="icu.growth").select(growth).run()
    for name, value in values.items():
        at.number_input(key=KEYS[name]).set_value(value)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _array(values: Any) -> np.ndarray:
    """A plotly JSON array: a list, or a typed array {"dtype", "bdata"} (base64) as plotly ≥ 6 writes it."""
    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).astype(float)
    return np.asarray(values, dtype=float)


def _traces(at: AppTest, chart: int = 0) -> dict[str, dict[str, Any]]:
    spec = json.loads(at.get("plotly_chart")[chart].proto.spec)
    return {t.get("name") or f"#{i}": t for i, t in enumerate(spec["data"])}


def _trace(at: AppTest, prefix: str) -> np.ndarray:
    found = [t for name, t in _traces(at).items() if name.startswith(prefix)]
    assert found, f"no trace named {prefix!r}: {list(_traces(at))}"
    return _array(found[0]["y"])


def _metric(at: AppTest, label_start: str) -> Any:
    found = [m for m in at.metric if m.proto.label.startswith(label_start)]
    assert found, f"no metric labelled {label_start!r}: {[m.proto.label for m in at.metric]}"
    return found[0]


def _per_case(model_dir: Path, t: float, end: str = "lower") -> tuple[float, float, float]:
    """(all ICU admissions per reported case, the flagged part, recall) for flag = risk >= t, from the CSV."""
    icu = pd.read_csv(model_dir / "evaluation" / capacity.ICU_TABLE)
    row = icu[icu["threshold"] >= t].sort_values("threshold").iloc[0]
    suffix = "" if end == "lower" else "_upper"
    share = row["case_flagged_share"]
    flagged = share * row[f"icu_rate_flagged{suffix}"]
    return float(flagged + (1 - share) * row[f"icu_rate_unflagged{suffix}"]), float(flagged), float(row["recall"])


def _expected_census(per_case: float, cases: float, doubling: float | None, beds: float, **kw: float) -> np.ndarray:
    s = capacity.Scenario(cases_per_day=cases, beds=beds, doubling_days=doubling, **kw)  # type: ignore[arg-type]
    return capacity.expected_census(capacity.admissions(s, per_case), s.census, s.los_days, s.los_shape)


def _texts(at: AppTest) -> str:
    shown = [at.markdown, at.error, at.warning, at.success, at.info, at.caption]
    return " ".join(element.value for elements in shown for element in elements)


def test_defaults_count_everyone_near_cdcs_two_percent(dashboard_env: str, model_dir: Path) -> None:
    """Issue 19: at its defaults (200 cases a day, 40 beds) the page said "The ICU is full on day 1", peak 293."""
    at = _run()
    assert [t.label for t in at.tabs] == ["ICU census over time", "Threshold: surveillance vs deaths missed"]
    total, flagged, recall = _per_case(model_dir, at.session_state["shared.threshold"])
    assert 0.01 <= total <= 0.05 and flagged < total
    expected = _expected_census(total, 200.0, None, 40.0, los_days=9.0, days=90)
    assert _trace(at, "everyone") == pytest.approx(expected, rel=1e-9)
    assert (_trace(at, "of which flagged") < expected).all()
    assert not any("full on day 1:" in w.value or "full on day 0:" in w.value for w in at.warning)
    assert float(_metric(at, "ICU admissions today").value) == pytest.approx(200 * total, abs=0.05)
    text = _texts(at)
    assert "Lower end in use" in text and f"{total:.2%}" in text and "upper end" in text
    assert any(f"recall {recall:.3f}" in c.value for c in at.caption)
    low, high = _trace(at, "90% band, 5th"), _trace(at, "90% band (simulated)")
    assert (low <= high).all() and (high[10:] > expected[10:]).all()  # the band reaches towards the upper end
    assert "ICU admissions per reported case" in text and "mean stay 6.3 to 11.7 days" in text


def test_inputs_change_the_curves(dashboard_env: str, model_dir: Path) -> None:
    at = _run()
    total, _, _ = _per_case(model_dir, at.session_state["shared.threshold"])
    inputs = {"census": 5.0, "los": 8.0, "shape": 2.0, "delay": 2.0, "horizon": 60}
    _set(at, growth="doubling", cases=300.0, beds=30.0, growth_days=20.0, **inputs)
    kw = {"census": 5.0, "los_days": 8.0, "los_shape": 2.0, "delay_days": 2.0, "days": 60}
    expected = _expected_census(total, 300.0, 20.0, 30.0, **kw)
    shown = _trace(at, "everyone")
    assert shown == pytest.approx(expected, rel=1e-9)
    day = capacity.saturation_day(expected, 30.0)
    assert _metric(at, "First day over capacity").value == (f"day {day}" if day is not None else "none")
    assert len(at.dataframe[0].value) == 61
    assert at.get("download_button")[0].proto.label == "Download the projection as CSV"

    _set(at, cases=600.0)  # more cases: the curve follows, and the band is redrawn for them
    doubled = _trace(at, "everyone")
    assert doubled == pytest.approx(_expected_census(total, 600.0, 20.0, 30.0, **kw), rel=1e-9)

    _set(at, growth="halving")
    halving = _trace(at, "everyone")
    assert halving == pytest.approx(_expected_census(total, 600.0, -20.0, 30.0, **kw), rel=1e-9)
    assert halving[-1] < doubled[-1]

    before = _trace(at, "90% band (simulated)")
    at.run()  # a rerun with the same inputs draws the same band: the simulation is seeded
    assert _trace(at, "90% band (simulated)") == pytest.approx(before)
    at.toggle(key="icu.icu_in_band").set_value(False).run()
    at.slider(key="icu.los_spread").set_value(0.0).run()
    at.slider(key="icu.growth_spread").set_value(0.0).run()
    narrow = _trace(at, "90% band (simulated)") - _trace(at, "90% band, 5th")
    assert (narrow[10:] < (before - _trace(at, "90% band, 5th"))[10:]).all()  # chance alone: a narrower band


def test_the_upper_end_can_be_chosen_and_the_threshold_does_not_change_demand(
    dashboard_env: str, model_dir: Path
) -> None:
    at = _run()
    at.radio(key="icu.icu_end").set_value("upper").run()
    upper, _, _ = _per_case(model_dir, at.session_state["shared.threshold"], "upper")
    assert _trace(at, "everyone") == pytest.approx(_expected_census(upper, 200.0, None, 40.0, los_days=9.0, days=90))
    assert "Upper end in use" in _texts(at) and at.query_params["icu.icu_end"] == "upper"
    census = {}
    for t in (0.0, 0.05, 0.3):
        at.session_state["shared.threshold"] = t
        at.run()
        census[t] = (_trace(at, "everyone"), _trace(at, "of which flagged"))
    assert census[0.3][0] == pytest.approx(census[0.0][0]) and census[0.05][0] == pytest.approx(census[0.0][0])
    assert (census[0.3][1] < census[0.05][1]).all() and census[0.0][1] == pytest.approx(census[0.0][0])


def test_overflow_is_shown_as_overflow_and_the_threshold_that_fits_the_team_can_be_used(
    dashboard_env: str, model_dir: Path
) -> None:
    at = _run()
    at.session_state["shared.threshold"] = 0.0  # flag everybody: far more patients than the team can follow
    _set(at, cases=2000.0, beds=20.0, horizon=60, team=2000.0, follow=14)
    occupancy = _metric(at, "Peak occupancy")
    assert occupancy.value == "FULL" and "patients without a bed" in occupancy.proto.delta
    assert "overflow: patients without a bed" in _traces(at)
    assert any("The ICU is full on day" in w.value for w in at.warning)
    assert _metric(at, "Surveillance team").value == "FULL"

    button = [b for b in at.button if b.key == "icu.use_fitting"]
    assert button, [i.value for i in at.info] + [w.value for w in at.warning] + [e.value for e in at.error]
    button[0].click().run()
    fitted = at.session_state["shared.threshold"]
    assert fitted > 0.0
    assert float(_metric(at, "Flagged patients followed, peak").value.replace(",", "")) <= 2000
    assert any("the one that fits" in i.value for i in at.info), [m.value for m in [*at.info, *at.warning, *at.success]]
    assert _metric(at, "First day over capacity").value.startswith("day ")  # the ICU is just as full: same demand


def test_absurd_growth_is_capped_and_said(dashboard_env: str) -> None:
    """Issue 21: doubling every 7 days for 90 days showed a census of 1,205,564 for one hospital as a fact."""
    at = _set(_run(), growth="doubling", growth_days=7.0, horizon=90)
    warning = next(w.value for w in at.warning if "Beyond what the inputs support" in w.value)
    assert "100 times the beds" in warning and "susceptible depletion" in warning
    day = _array(next(t for name, t in _traces(at).items() if name.startswith("everyone"))["x"])
    assert day.max() < 90 and _trace(at, "everyone").max() <= 4000
    assert "1,205,564" not in _texts(at)
    assert len(at.dataframe[0].value) == int(day.max()) + 1
    # Susceptible depletion keeps the same inputs bounded, and shows its own inputs only in that mode.
    assert not [n for n in at.number_input if n.key == KEYS["population"]]
    at.selectbox(key="icu.growth").select("sir").run()
    _set(at, population=500_000.0, horizon=365)
    assert not [w for w in at.warning if "Beyond what the inputs support" in w.value]
    assert len(_trace(at, "everyone")) == 366
    at.selectbox(key="icu.growth").select("flat").run()
    assert not [n for n in at.number_input if n.key in (KEYS["growth_days"], KEYS["population"])]


def test_the_largest_inputs_answer_and_say_more_than(dashboard_env: str) -> None:
    """Issue 22 #1: this link hung the page for about two hours per view (beds_for_blocking at load 5.9e10)."""
    at = app_test()
    at.query_params["icu.cases_per_day"] = "1000000000.0"
    at.query_params["icu.los_days"] = "365.0"
    at.query_params["icu.icu_beds"] = "1000000.0"
    at = open_page("icu_saturation.py", at)
    blocked = _metric(at, "P(no free bed)")
    assert "more than 1,000,000" in blocked.proto.help


def test_invalid_inputs_get_a_clear_message(dashboard_env: str) -> None:
    at = _set(_run(), growth="doubling", growth_days=2.0, horizon=365)
    errors = [e.value for e in at.error]
    assert any("Check the assumptions" in e and "shorten the horizon to at most" in e for e in errors), errors
    assert not at.get("plotly_chart") and not at.metric  # nothing drawn from nonsense
    assert at.number_input(key="icu.horizon_days").value == 365  # the input is kept for the planner to fix
    _set(at, horizon=30)
    assert not [e.value for e in at.error if "Check the assumptions" in e.value]
    assert at.get("plotly_chart")


def test_zero_beds_read_sensibly(dashboard_env: str) -> None:
    at = _set(_run(), beds=0.0)
    assert _metric(at, "Peak occupancy").value == "no beds"
    assert any("No ICU beds entered" in e.value for e in at.error)
    text = _texts(at) + " ".join(m.value for m in at.metric)
    assert "beds for 0" not in text and "of 0 beds" not in text and "0.0 beds" not in text


def test_assumptions_are_stated_next_to_the_inputs(dashboard_env: str) -> None:
    at = _run()
    captions = " ".join(c.value for c in at.caption)
    for phrase in ("exponential", "gamma distribution", "Day 0 is today", "test split", "end of each day"):
        assert phrase in captions, phrase
    assert any("Deaths missed = cases reported that day" in c.value and "known" in c.value for c in at.caption)


def test_without_the_models_icu_table_a_constant_share_is_used_and_said(
    dashboard_env: str, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = tmp_path / "model"
    shutil.copytree(model_dir, bare)
    (bare / "evaluation" / capacity.ICU_TABLE).unlink()
    monkeypatch.setenv("RISK_MODEL_DIR", str(bare))
    at = _run()
    assert not [r for r in at.radio if r.key == "icu.icu_end"] and not [
        t for t in at.toggle if t.key == "icu.icu_in_band"
    ]
    assert "no ICU-admission table" in _texts(at)
    at.number_input(key="icu.icu_per_case").set_value(0.03).run()
    assert _trace(at, "everyone") == pytest.approx(_expected_census(0.03, 200.0, None, 40.0, los_days=9.0, days=90))


def test_unusable_icu_table_is_explained(
    dashboard_env: str, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A copy of the trained model whose ICU table is broken on purpose (a column missing): the error path only.
    broken = tmp_path / "model"
    shutil.copytree(model_dir, broken)
    thresholds = pd.read_csv(broken / "evaluation" / "thresholds.csv")
    thresholds[["threshold", "flagged_share", "recall"]].to_csv(broken / "evaluation" / capacity.ICU_TABLE, index=False)
    monkeypatch.setenv("RISK_MODEL_DIR", str(broken))
    at = _run()
    errors = [e.value for e in at.error]
    explained = [
        "cannot be used" in e and "lacks columns death_rate_flagged" in e and "model.train" in e for e in errors
    ]
    assert any(explained), errors
    assert not at.get("plotly_chart")


def test_the_icu_scenario_lives_in_the_url(dashboard_env: str) -> None:
    """A planner's link opens the same scenario; a changed input changes the link; a bad link says so."""
    at = app_test()
    at.query_params["icu.icu_beds"] = "60.0"  # a shared link
    at.query_params["icu.growth"] = "doubling"
    at = open_page("icu_saturation.py", at)
    assert at.number_input(key=KEYS["beds"]).value == 60.0
    assert at.selectbox(key="icu.growth").value == "doubling"
    _set(at, los=12.0)
    assert at.query_params["icu.los_days"] == "12.0" and at.query_params["icu.icu_beds"] == "60.0"
    _set(at, beds=40.0)  # back to the default: no longer in the link
    assert "icu.icu_beds" not in at.query_params

    bad = app_test()
    bad.query_params["icu.icu_beds"] = "-5"
    bad.query_params["icu.nurses"] = "3"
    bad.run()
    warning = next(w.value for w in bad.warning if "ICU scenario cannot be used" in w.value)
    assert "icu.nurses is not an ICU input" in warning
    open_page("icu_saturation.py", bad)
    assert bad.number_input(key=KEYS["beds"]).value == 40.0  # the defaults, not a half-read link
