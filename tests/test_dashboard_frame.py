"""The dashboard frame's own pieces, checked directly: text alternatives of every chart, the URL registry that
keeps the view in the address, and the launcher's restart status in words (issue 21).

Figures are built by the project's chart functions from a model trained by `python -m model.train`; the URL
registry runs inside the real app (AppTest), with a binding registered the way another page would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.ui import charts, endpoint, thresholds
from dashboard.ui.artifacts import load_artifact
from dashboard.ui.icu import IcuAssumptions
from tests.app_pages import app_test, open_page, switch_to


@pytest.fixture(scope="module")
def figures(model_dir: Path) -> dict[str, object]:
    model = load_artifact(model_dir)
    table = thresholds.prepare_table(model.table("thresholds"))
    point = thresholds.operating_point(table, 0.05)
    return {
        "roc": (charts.roc_curve(model.table("roc"), point), model.table("roc")),
        "confusion": (charts.confusion_matrix(point), point),
        "months": (charts.deaths_by_month(model.table("deaths_by_month")), model.table("deaths_by_month")),
        "calibration": (charts.calibration(model.table("calibration"), model.table("calibration_smooth")), None),
        "decision": (charts.decision_curve(table, point, model.prevalence, 0.3), None),
        "waterfall": (charts.risk_waterfall(0.14, [("Age group: 20 - 29 Years", -0.047)], 0.093), None),
        "scale": (charts.risk_scale(0.3, base_rate=0.14, age_group_rate=0.6, threshold=0.05), None),
    }


@pytest.mark.parametrize("name", ["roc", "confusion", "months", "calibration", "decision", "waterfall", "scale"])
def test_every_chart_has_a_summary_and_a_table(figures, name: str) -> None:
    fig, _ = figures[name]
    summary, table = charts.describe(fig), charts.figure_table(fig)
    assert len(summary) > 20 and "<" not in summary  # words, no HTML from the figure's labels
    assert not table.empty and "series" in table.columns
    assert len(table) <= charts.text.TABLE_ROWS * len(fig.data)  # short enough to read


def test_the_table_holds_the_curves_own_ends(figures) -> None:
    fig, roc = figures["roc"]
    model_rows = charts.figure_table(fig).query("series == 'model'")
    shown = charts.style.thin(roc)
    assert model_rows.iloc[0, 1:].tolist() == pytest.approx([shown["fpr"].iloc[0], shown["tpr"].iloc[0]], abs=1e-4)
    assert model_rows.iloc[-1, 1:].tolist() == pytest.approx([shown["fpr"].iloc[-1], shown["tpr"].iloc[-1]], abs=1e-4)


def test_confusion_matrix_text_names_every_count(figures) -> None:
    fig, point = figures["confusion"]
    summary = charts.describe(fig)
    for count in (point.tp, point.fn, point.fp, point.tn):
        assert f"{count:,.0f}" in summary


def test_a_second_axis_keeps_its_own_column(figures) -> None:
    fig, months = figures["months"]
    table = charts.figure_table(fig)
    fatality = table[table["series"] == "case fatality"]["deaths / known outcomes"]
    dated = months[months["month"] != "unknown"]
    assert fatality.max() == pytest.approx(dated["case_fatality"].max(), abs=1e-4)
    assert table[table["series"] == "case fatality"]["patients"].isna().all()


def test_launcher_status_in_words() -> None:
    assert endpoint.launcher_text({"restarts": 0}, 100.0).endswith("never gives up.")
    text = endpoint.launcher_text({"restarts": 3, "next_attempt_unix": 108.2}, 100.0)
    assert "(3 restarts so far; next attempt in 8 s)" in text
    assert "next attempt" not in endpoint.launcher_text({"restarts": 1, "next_attempt_unix": 90.0}, 100.0)


def test_every_bound_value_is_in_the_url_on_every_page(dashboard_env: str) -> None:
    """The registry writes each bound session value on every run, whatever page is open, and drops stale params."""
    at = app_test()
    at.query_params["threshold"] = "0.1594"  # the presenter's link
    at = open_page("model_card.py", at)
    for script in ("icu_saturation.py", "batch_scoring.py", "monitoring.py", "home.py"):
        at.query_params.clear()  # what the menu's page switch does to the address in the browser
        switch_to(at, script)
        assert at.query_params["threshold"] == "0.1594", script
    at.session_state["shared.icu_assumptions"] = IcuAssumptions(icu_beds=60.0)
    at.query_params["icu.los_days"] = "12.0"  # a value the session no longer has: removed
    switch_to(at, "threshold_explorer.py")
    assert at.query_params["icu.icu_beds"] == "60.0" and "icu.los_days" not in at.query_params


def test_a_bad_value_in_session_leaves_the_address_alone(dashboard_env: str) -> None:
    at = open_page("home.py")
    at.session_state["shared.icu_assumptions"] = "not a scenario"  # e.g. left by an older version of a page
    at.run()
    assert not at.exception
    assert not [k for k in at.query_params if k.startswith("icu.")]


def test_vendored_axe_core_is_the_one_its_readme_names() -> None:
    """tests/assets/README.md states version and checksum; the browser test checks axe.version at run time."""
    import hashlib

    from tests.test_browser import AXE_SCRIPT, AXE_VERSION

    readme = (AXE_SCRIPT.parent / "README.md").read_text(encoding="utf-8")
    assert f"axe-core {AXE_VERSION}" in readme and "MPL-2.0" in readme
    assert hashlib.sha256(AXE_SCRIPT.read_bytes()).hexdigest() in readme
    assert (AXE_SCRIPT.parent / "axe-core.LICENSE").is_file()
