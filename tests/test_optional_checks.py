"""The checks that replaced unchecked Optionals and asserts when mypy was made clean (issue 23).

Each refuses the None it guards with a message that says what is missing (an assert would vanish under
`python -O` and leave an AttributeError), and the one that hid a crash, a result without an interval,
now renders. The rewritten expressions keep their results: the date table and a heatmap with values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard.ui import icu, patient_result
from dashboard.ui.charts import text
from model.data import case_dates
from model.monitoring import monitor
from model.planning import capacity
from model.serving import batch_driver


def test_a_result_without_an_interval_shows_the_risk_alone() -> None:
    # The interval was formatted before it was known to exist: no "interval" key raised TypeError.
    html = patient_result.risk_html({"probability": 0.2, "risk_band": "high", "low": None})
    assert "20.0%" in html and "risk-interval" not in html and "95% CI" not in html
    with_interval = patient_result.risk_html({"probability": 0.2, "interval": [0.18, 0.22], "risk_band": "high"})
    assert "95% CI 18.0% to 22.0%" in with_interval


def test_the_date_table_keeps_only_readable_cells_and_counts_the_rest() -> None:
    reading, table = case_dates.exact_table({"cdc_case_earliest_dt": {None: 3, "": 2, "2020-03-05": 4, "soon": 1}})
    assert table == {"2020-03-05": case_dates.month_code(2020, 3) + case_dates.KIND_BASE * case_dates.KIND_ISO}
    assert reading.unreadable == {"cdc_case_earliest_dt": 1}, "empty and missing cells are not unreadable"


def test_a_heatmap_is_tabulated_from_its_values_and_refused_without_them() -> None:
    table = text.figure_table(go.Figure(go.Heatmap(x=["a", "b"], y=["r"], z=[[1.5, 2.5]])))
    assert table["value"].tolist() == ["1.5", "2.5"]
    with pytest.raises(ValueError, match="neither text nor z"):
        text.figure_table(go.Figure(go.Heatmap(x=["a"], y=["r"], name="empty")))


def test_the_planner_refuses_an_icu_end_it_does_not_know() -> None:
    assert [icu._icu_end(end) for end in icu.ICU_ENDS] == ["lower", "upper"]
    with pytest.raises(capacity.CapacityInputError, match=r"one of lower, upper \(got 'middle'\)"):
        icu._icu_end("middle")


def test_capacity_names_what_a_scenario_or_a_need_lacks() -> None:
    flat = capacity.Scenario(cases_per_day=100, beds=10, los_days=9)
    with pytest.raises(ValueError, match="needs the population"):
        capacity.sir_cases(flat, np.array([0.05]), 10)
    need = capacity.IcuNeed(pd.DataFrame(), "model", None, (0.01, 0.02), {})
    with pytest.raises(ValueError, match="names its end"):
        capacity.icu_source_text(need)


def test_performance_needs_outcomes() -> None:
    unlabelled = monitor.Aggregate(source="cases.csv", kind="file", counts=np.zeros(3))
    with pytest.raises(ValueError, match=r"cases.csv: no outcome column \(death_yn\)"):
        monitor.performance_report(unlabelled, [])


def test_the_batch_driver_refuses_to_run_before_init(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_driver, "_SCORER", None)
    monkeypatch.setattr(batch_driver, "_RISK", None)
    with pytest.raises(RuntimeError, match=r"run\(\) called before init\(\)"):
        batch_driver.run([])
