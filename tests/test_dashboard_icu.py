"""The ICU saturation page run by Streamlit's AppTest against the real local endpoint and a model trained by
`python -m model.train`.

Expected curves are rebuilt here from the stored CSV tables, looked up with plain pandas, and from
`model.capacity` (tested on its own in tests/test_capacity.py), so the page's wiring is what is under test.
The model's ICU table (`evaluation/icu_by_threshold.csv`) is used when training wrote one; otherwise the page
falls back to the constant share and says so. Each test checks whichever of the two the model has.
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

from model import capacity
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


def _per_case(model_dir: Path, t: float, share: float | None = None) -> tuple[float, float]:
    """(ICU admissions among flagged per reported case, recall) for flag = risk >= t, straight from the CSVs."""
    icu_csv = model_dir / "evaluation" / capacity.ICU_TABLE
    if icu_csv.exists() and share is None:
        icu = pd.read_csv(icu_csv)
        row = icu[icu["threshold"] >= t].sort_values("threshold").iloc[0]
        return float(row["flagged_share"] * row["icu_rate_flagged"]), float(row["recall"])
    table = pd.read_csv(model_dir / "evaluation" / "thresholds.csv")
    row = table[table["threshold"] >= t].sort_values("threshold").iloc[0]
    return float(row["flagged_share"] * (capacity.DEFAULT_ICU_SHARE if share is None else share)), float(row["recall"])


def _expected_census(per_case: float, cases: float, doubling: float | None, beds: float, **kw: float) -> np.ndarray:
    s = capacity.Scenario(cases_per_day=cases, beds=beds, doubling_days=doubling, **kw)  # type: ignore[arg-type]
    return capacity.expected_census(capacity.admissions(s, per_case), s.census, s.los_days, s.los_shape)


def test_inputs_change_the_curves(dashboard_env: str, model_dir: Path) -> None:
    at = _run()
    assert [t.label for t in at.tabs] == ["Census over time", "Steady state: beds vs recall"]
    has_icu_table = (model_dir / "evaluation" / capacity.ICU_TABLE).exists()
    assert any(t.key == "icu.use_constant_share" for t in at.toggle) == has_icu_table
    source = " ".join(c.value for c in at.caption)
    assert ("ICU-admission model" in source) if has_icu_table else ("no ICU-admission table" in source)

    t = at.session_state["shared.threshold"]
    per_case, recall = _per_case(model_dir, t)
    inputs = {"census": 5.0, "los": 8.0, "shape": 2.0, "delay": 2.0, "horizon": 60}
    _set(at, growth="doubling", cases=300.0, beds=30.0, growth_days=20.0, **inputs)
    kw = {"census": 5.0, "los_days": 8.0, "los_shape": 2.0, "delay_days": 2.0, "days": 60}
    expected = _expected_census(per_case, 300.0, 20.0, 30.0, **kw)
    shown = _trace(at, "current threshold")
    assert shown == pytest.approx(expected, rel=1e-9)
    assert any(f"recall {recall:.3f}" in c.value for c in at.caption)
    day = capacity.saturation_day(expected, 30.0)
    assert _metric(at, "First day over capacity").value == (f"day {day}" if day is not None else "none")
    band_low, band_high = _trace(at, "90% band, 5th"), _trace(at, "90% band (simulated)")
    assert (band_low <= shown + 1e-9).all() and (shown <= band_high + 1e-9).all()
    assert len(at.dataframe[0].value) == 61
    assert at.get("download_button")[0].proto.label == "Download the projection as CSV"

    _set(at, cases=600.0)  # more cases: the curve follows, and the band is redrawn for them
    doubled = _trace(at, "current threshold")
    assert doubled == pytest.approx(_expected_census(per_case, 600.0, 20.0, 30.0, **kw), rel=1e-9)
    assert (doubled > shown).all()

    _set(at, growth="halving")
    halving = _trace(at, "current threshold")
    assert halving == pytest.approx(_expected_census(per_case, 600.0, -20.0, 30.0, **kw), rel=1e-9)
    assert halving[-1] < doubled[-1]

    before = _trace(at, "90% band (simulated)")
    at.run()  # a rerun with the same inputs draws the same band: the simulation is seeded
    assert _trace(at, "90% band (simulated)") == pytest.approx(before)


def test_constant_share_override(dashboard_env: str, model_dir: Path) -> None:
    at = _run()
    for toggle in at.toggle:  # present only when the model has an ICU table
        toggle.set_value(True)
    at.slider(key="icu.icu_share").set_value(0.5)
    _set(at, cases=250.0, beds=1000.0, horizon=30)
    per_case, _ = _per_case(model_dir, at.session_state["shared.threshold"], share=0.5)
    assert _trace(at, "current threshold") == pytest.approx(
        _expected_census(per_case, 250.0, None, 1000.0, los_days=9.0, days=30)
    )
    assert any("constant **50% of flagged patients**" in c.value for c in at.caption)


def test_overflow_is_shown_as_overflow_and_the_fitting_threshold_can_be_used(
    dashboard_env: str, model_dir: Path
) -> None:
    at = _run()
    at.session_state["shared.threshold"] = 0.0  # flag everybody: far more patients than beds
    _set(at, cases=2000.0, beds=20.0, horizon=60)
    occupancy = _metric(at, "Peak occupancy")
    assert occupancy.value == "FULL" and "patients without a bed" in occupancy.proto.delta
    assert _metric(at, "Occupancy").value == "FULL"  # the steady-state tab too: overflow, never "869%"
    assert "overflow: patients without a bed" in _traces(at)
    assert any("The ICU is full on day" in w.value for w in at.warning)

    button = [b for b in at.button if b.key == "icu.use_fitting"]
    assert button, [i.value for i in at.info] + [w.value for w in at.warning] + [e.value for e in at.error]
    button[0].click().run()
    fitted = at.session_state["shared.threshold"]
    assert fitted > 0.0
    assert _metric(at, "First day over capacity in 60 days").value == "none"
    assert any("the one that just fits" in i.value for i in at.info)
    # Catching more deaths than that overflows: the strictest threshold with a higher recall does not fit.
    icu_csv = model_dir / "evaluation" / capacity.ICU_TABLE
    grid = pd.read_csv(icu_csv if icu_csv.exists() else model_dir / "evaluation" / "thresholds.csv")
    fitted_recall = grid[grid["threshold"] >= fitted].sort_values("threshold").iloc[0]["recall"]
    more = grid[grid["recall"] > fitted_recall]["threshold"].max()
    at.session_state["shared.threshold"] = float(more)
    at.run()
    assert _metric(at, "First day over capacity").value.startswith("day ")


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
    assert _metric(at, "Occupancy").value == "no beds"
    assert any("No ICU beds entered" in e.value for e in at.error)
    shown = [at.markdown, at.error, at.warning, at.success, at.info, at.metric, at.caption]
    text = " ".join(element.value for elements in shown for element in elements)
    assert "beds for 0" not in text and "of 0 beds" not in text and "0.0 beds" not in text
    assert not [b for b in at.button if b.key in ("icu.use_fitting", "icu.use_saturation")]


def test_assumptions_are_stated_next_to_the_inputs(dashboard_env: str) -> None:
    at = _run()
    captions = " ".join(c.value for c in at.caption)
    for phrase in ("exponential", "gamma distribution", "Day 0 is today", "test split", "end of each day"):
        assert phrase in captions, phrase
    assert any("Deaths missed = cases reported that day" in c.value and "known" in c.value for c in at.caption)


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
    explained = ["cannot be used" in e and "lacks columns icu_rate_flagged" in e and "model.train" in e for e in errors]
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
