"""The patient form in a real browser (issue 21): `streamlit run dashboard/app.py` driven by headless Chromium.

What AppTest cannot see: the keyboard's path through the form (Tab order equals reading order, no Help
button before every field, Score unreachable until an age is chosen), the out-of-date result's actual
styling, the range as plotly.js drew it, and axe-core's WCAG 2.1 A/AA verdict on the empty form, a scored
patient and an out-of-date result.

axe-core is the vendored `tests/assets/axe.min.js`, run by `tests.test_browser.check_accessibility`
(nothing is fetched at test time).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dashboard.ui import patient_form, patient_result
from model.core import schema
from model.serving.client import EndpointClient, EndpointConfig
from tests.browser_fixtures import idle
from tests.test_browser import SCREENSHOTS, check_accessibility, open_page

pytestmark = pytest.mark.browser

TYPED = {"age_group": "80+ Years", "sex": "Male"}
READING_ORDER = [
    *(schema.FEATURES_BY_NAME[n].label for n in patient_form.intake_questions()),
    patient_form.IN_HOSPITAL_LABEL,
    "What the questions mean",
]


@pytest.fixture(scope="module")
def page(chromium_path: Path) -> object:
    with open_page(chromium_path, 1440, 1500) as opened:
        yield opened


def _choose(page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=re.compile(re.escape(label))).click()
    page.get_by_role("option", name=option, exact=True).click()
    idle(page)


def _focused(page) -> str:
    """The accessible name of what has keyboard focus (label, aria-label or text)."""
    return page.evaluate(
        """() => { const e = document.activeElement;
        const label = e.labels && e.labels.length ? e.labels[0].innerText : null;
        return (e.getAttribute('aria-label') || label || e.innerText || e.tagName).trim(); }"""
    )


def _tab_stops_in_form(page, count: int) -> list[str]:
    """The next `count` Tab stops after the page's main region (headings' anchor links left out)."""
    page.locator("[data-testid='stMain']").focus()
    stops: list[str] = []
    for _ in range(count + 5):
        page.keyboard.press("Tab")
        name = _focused(page)
        if name != "Link to heading":
            stops.append(re.sub(r"^keyboard_arrow_\w+\s*", "", name))
        if len(stops) == count:
            break
    return stops


def _drawn_range(page) -> list[float]:
    """The x of the risk scale's range bar as plotly.js holds it (the 12-px line)."""
    return page.evaluate(
        """() => { const plot = document.querySelector('[data-testid=stPlotlyChart] .js-plotly-plot');
        const bar = plot.data.find(t => t.line && t.line.width === 12); return bar ? Array.from(bar.x) : []; }"""
    )


def test_the_form_by_keyboard_the_range_and_a_stale_result(page, app_url: str, local_endpoint) -> None:
    page.goto(f"{app_url}/Patient_risk")
    score = page.get_by_role("button", name="Score patient")
    score.wait_for()
    idle(page)

    # Empty form: Score is disabled until an age group is chosen, and says why.
    assert score.is_disabled()
    page.get_by_text("To score, answer: Age group").wait_for()
    # Keyboard: the fields in reading order, no Help button before any of them, the help after Score.
    assert _tab_stops_in_form(page, len(READING_ORDER)) == READING_ORDER
    assert page.get_by_role("button", name=re.compile("^Help for")).count() == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "form_0_empty.png")
    check_accessibility(page, "form_0_empty")

    for name, value in TYPED.items():
        _choose(page, schema.FEATURES_BY_NAME[name].label, value)
    assert score.is_enabled()
    score.click()
    page.locator(".risk-number").first.wait_for()
    idle(page)
    page.locator("[data-testid='stPlotlyChart'] svg.main-svg").first.wait_for()

    # The risk scale draws the range the endpoint returned: [if unrecorded survived, among recorded outcomes].
    client = EndpointClient(EndpointConfig.from_sources(environ={"RISK_ENDPOINT_URL": local_endpoint.scoring_url}))
    answer = client.score([TYPED]).results[0]
    p, low = float(answer["probability"]), float(answer["probability_if_unrecorded_survived"])
    assert _drawn_range(page) == pytest.approx([low, p], abs=1e-12)
    page.screenshot(path=SCREENSHOTS / "form_1_scored.png")
    check_accessibility(page, "form_1_scored")

    # One answer changes: everything derived from the old answers is dimmed and labelled.
    _choose(page, schema.FEATURES_BY_NAME["age_group"].label, "20 - 29 Years")
    page.get_by_text("Out of date.").wait_for()
    stale = page.locator(f".st-key-{patient_result.STALE_KEY}")
    assert "grayscale" in stale.evaluate("e => getComputedStyle(e).filter")
    opacities = stale.locator("[data-testid='stPlotlyChart']").evaluate_all(
        "charts => charts.map(c => Number(getComputedStyle(c).opacity))"
    )
    assert len(opacities) == 2 and all(o < 0.5 for o in opacities), opacities
    assert patient_result.STALE_LABEL in stale.locator(".risk-badge").inner_text()
    assert stale.locator(".risk-number").evaluate("e => getComputedStyle(e).textDecorationLine") == "line-through"
    page.screenshot(path=SCREENSHOTS / "form_2_out_of_date.png", full_page=True)
    check_accessibility(page, "form_2_out_of_date")  # dimmed, still readable: text contrast holds

    # In hospital: both questions appear unanswered, and Score waits for both.
    page.get_by_text(patient_form.IN_HOSPITAL_LABEL).click()
    idle(page)
    for name in schema.HOSPITAL_FIELDS:
        box = page.get_by_role("combobox", name=re.compile(re.escape(schema.FEATURES_BY_NAME[name].label)))
        assert box.input_value() == "", f"{name} was answered for the clerk"
    assert score.is_disabled()
    page.get_by_text("To score, answer: Hospitalised and Admitted to ICU").wait_for()
