"""The patient form's rules and the result's words, numbers and risk scale, without a server.

The page tests (tests/test_dashboard_pages.py) and the browser test (tests/test_browser_form.py) check the same
rules on the running page; these pin the pure functions they use, including the cases a page run rarely meets
(an endpoint without the recording range, a hostile band text, a low risk's label).
"""

from __future__ import annotations

import math

import pytest

from dashboard.ui import charts, patient_form, patient_result
from model.core import schema

INTAKE = patient_form.intake_questions()


def test_the_form_opens_unanswered_where_an_answer_is_required() -> None:
    assert patient_form.default("age_group", in_hospital=False) is None
    for name in INTAKE[1:]:
        assert patient_form.default(name, in_hospital=False) in patient_form.LEFT_OUT
    for name in schema.HOSPITAL_FIELDS:
        assert patient_form.default(name, in_hospital=True) is None, "never Yes/Yes for the clerk"
        assert patient_form.options(name, in_hospital=True) == ("Yes", "No")
    assert "Not known" not in patient_form.options("age_group", in_hospital=False)


def test_score_waits_for_every_required_answer() -> None:
    empty = {name: patient_form.default(name, False) for name in INTAKE}
    assert patient_form.unanswered(empty, in_hospital=False) == ["age_group"]
    assert patient_form.missing_text(["age_group"]) == "To score, answer: Age group"
    aged = {**empty, "age_group": "80+ Years"}
    assert patient_form.unanswered(aged, in_hospital=False) == []
    assert patient_form.unanswered({**aged, "hosp_yn": "Yes", "icu_yn": None}, in_hospital=True) == ["icu_yn"]
    assert patient_form.missing_text(["hosp_yn", "icu_yn"]) == "To score, answer: Hospitalised and Admitted to ICU"


def test_the_request_leaves_out_what_nobody_answered() -> None:
    answers = {"age_group": "80+ Years", "sex": "Not known", "race_ethnicity_combined": "Not given", "icu_yn": None}
    assert patient_form.request_record(answers) == {"age_group": "80+ Years"}


def test_rows_follow_reading_order() -> None:
    """Drawn row by row, the keyboard visits Age, Sex, Case status, Conditions, Race (not column by column)."""
    rows = patient_form.rows(INTAKE)
    assert [name for row in rows for name in row] == list(INTAKE)
    assert all(len(row) <= patient_form.PER_ROW for row in rows)


def test_help_covers_every_question_once() -> None:
    labels = [label for label, _ in patient_form.help_lines(in_hospital=True)]
    assert labels == [
        *(schema.FEATURES_BY_NAME[n].label for n in INTAKE),
        "Already in hospital",
        *(schema.FEATURES_BY_NAME[n].label for n in schema.HOSPITAL_FIELDS),
    ]


LAST = {
    "answers": {"age_group": "80+ Years", "sex": "Male", "current_status": "Not known"},
    "record": {"age_group": "80+ Years", "sex": "Male"},
    "probability": 0.651,
    "interval": [0.465, 0.802],
    "low": 0.479,
    "low_interval": [0.341, 0.589],
    "risk_band": "very high",
    "inputs_used": ["age_group", "sex"],
    "baseline": 0.136,
    "contributions": {"age_group": 0.482, "sex": 0.033},
    "what_if": [("sex", "Not known", 0.62), ("age_group", "70 - 79 Years", 0.4)],
}
REFS = patient_result.References(base_rate=0.137, age_group_rate=0.603, age_group_label="80+ Years", threshold=0.05)


def _trace(fig, width: int) -> dict:
    return next(t for t in fig.to_plotly_json()["data"] if t.get("line", {}).get("width") == width)


def test_the_risk_scale_draws_the_range_and_both_intervals() -> None:
    fig = charts.risk_scale(
        LAST["probability"], interval=(0.465, 0.802), low=LAST["low"], low_interval=(0.341, 0.589), threshold=0.05
    )
    assert list(_trace(fig, 12)["x"]) == pytest.approx([0.479, 0.651]), "the bar spans the range"
    assert list(_trace(fig, 6)["x"]) == pytest.approx([0.341, 0.802]), "the thin line spans both intervals"
    note = next(a for a in fig.layout.annotations if a.text == "47.9% to 65.1%")
    assert note.xanchor == "right" and note.x == pytest.approx(math.log10(0.651)), "written leftwards, inside"
    low_fig = charts.risk_scale(0.004, low=0.002, interval=(0.003, 0.005))
    low_note = next(a for a in low_fig.layout.annotations if a.text == "0.2% to 0.4%")
    assert low_note.xanchor == "left" and low_note.x == pytest.approx(math.log10(0.002))


def test_an_endpoint_without_the_range_still_gets_one_risk() -> None:
    fig = charts.risk_scale(0.2, interval=(0.18, 0.22))
    assert not any(t.get("line", {}).get("width") == 12 for t in fig.to_plotly_json()["data"])
    html = patient_result.risk_html({**LAST, "low": None})
    assert "risk-range" not in html and "65.1%" in html


def test_the_risk_html_escapes_the_band_and_says_when_it_is_stale() -> None:
    hostile = patient_result.risk_html({**LAST, "risk_band": "<img src=x onerror=alert(1)>"})
    assert "<img" not in hostile and "&lt;img" in hostile
    stale = patient_result.risk_html(LAST, stale=True)
    assert "risk-badge-stale" in stale and stale.count(patient_result.STALE_LABEL) == 2  # caption and badge
    assert "risk-badge-stale" not in patient_result.risk_html(LAST)


def test_the_text_alternatives_hold_the_charts_numbers() -> None:
    summary = patient_result.scale_summary(LAST, REFS)
    assert "this patient 47.9% to 65.1%, in the very high band" in summary
    assert "base rate 13.7%" in summary and "at or above the threshold" in summary
    table = patient_result.scale_table(LAST, REFS)
    assert list(table["risk"]) == ["47.9%", "65.1%", "13.7%", "60.3%", "5.0%"]
    why = patient_result.why_table(LAST)
    running = LAST["baseline"] + sum(LAST["contributions"].values())  # the bars add up to the patient's risk
    assert why["risk after"].iloc[-2] == f"{running:.1%}" == why["risk after"].iloc[-1]
    assert list(why["step"][1:3]) == ["Age group: 80+ Years", "Sex: Male"], "largest share first"
    what_if = patient_result.what_if_frame(LAST)
    assert list(what_if["change (points)"]) == pytest.approx([(0.62 - 0.651) * 100, (0.4 - 0.651) * 100])


def test_the_endpoints_period_is_shown_as_text() -> None:
    """The data period comes from the endpoint: a link or an image in it must stay literal text."""
    shown = patient_result.how_to_read(LAST, "[click](http://evil.example) ![x](http://evil.example/x.png)")
    assert "[click](" not in shown and "![x](" not in shown and "\\[click\\]" in shown
