"""Each dashboard page run by Streamlit's AppTest against the real local endpoint
(azmlinfsrv serving model/serving/score.py) and a model trained by `python -m model.train`.

Expected numbers are recomputed here from the stored CSV tables with plain pandas,
not with the dashboard's own helpers, so a wrong lookup in the app fails the test.
"""

from __future__ import annotations

import base64
import http.server
import json
import math
import re
import socket
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.errors import AppTestError

from dashboard.ui import navigation, patient_form, patient_result
from deploy.local_endpoint import free_port, serve
from model.core import schema
from model.serving.client import EndpointClient, EndpointConfig
from tests.app_pages import app_test, open_page, switch_to

HOME, PATIENT, THRESHOLD = "home.py", "patient_risk.py", "threshold_explorer.py"
ICU, CARD = "icu_saturation.py", "model_card.py"

TYPED = {"age_group": "80+ Years", "sex": "Male", "medcond_yn": "Yes"}
INTAKE = schema.MODEL_FEATURES[schema.INTAKE_MODEL]


def _run(script: str) -> AppTest:
    return open_page(script)


def _metric(at: AppTest, label_start: str) -> str:
    found = [m.value for m in at.metric if m.proto.label.startswith(label_start)]
    assert found, f"no metric labelled {label_start!r}: {[m.proto.label for m in at.metric]}"
    return found[0]


def _row_at(model_dir: Path, t: float) -> pd.Series:
    """Independent lookup: flag = score >= t, so the row with the smallest stored threshold >= t."""
    table = pd.read_csv(model_dir / "evaluation" / "thresholds.csv")
    return table[table["threshold"] >= t].sort_values("threshold").iloc[0]


def _test_prevalence(model_dir: Path) -> float:
    card = json.loads((model_dir / "model_card.json").read_text())
    prevalence = card["prevalence"]
    return float(prevalence["test"] if isinstance(prevalence, dict) else prevalence)


def _fill(at: AppTest, values: dict[str, str]) -> None:
    """Answer the questions, then rerun: Score is enabled only once the page has seen an age group."""
    for name, value in values.items():
        at.selectbox(key=f"intake.{name}").select(value)
    at.run()


def test_form_fields_come_from_schema(dashboard_env: str) -> None:
    """Issue 19: "Not known" instead of the CDC's Missing/Unknown; race optional, "Not given" by default.
    Issue 21: the age group opens unanswered; no field has a Help button (a Tab stop) before it; the
    questions come in reading order."""
    at = _run(PATIENT)
    keys = [b.key.removeprefix("intake.") for b in at.selectbox]
    assert keys == [*INTAKE, schema.RACE], "at intake only the intake questions are asked, in reading order"
    for name in INTAKE:
        feature = schema.FEATURES_BY_NAME[name]
        box = at.selectbox(key=f"intake.{name}")
        assert box.label == feature.label and not box.help, "help lives in the expander, not before the field"
        real = [feature.label_of(v) for v in feature.values if v not in ("Unknown", "Missing", "NA")]
        assert list(box.options) == (real if name == "age_group" else ["Not known", *real])
        assert box.value == (None if name == "age_group" else "Not known"), "the form opens empty"
    race = at.selectbox(key=f"intake.{schema.RACE}")
    assert list(race.options) == ["Not given", *schema.RACE_ETHNICITY_GROUPS] and race.value == "Not given"
    help_text = next(x for x in at.expander if x.label == "What the questions mean").markdown[0].value
    assert all(schema.FEATURES_BY_NAME[n].help in help_text for n in (*INTAKE, schema.RACE))
    home = " ".join(m.value for m in _run(HOME).markdown)
    assert "*Not known*" in home and "Unknown" not in home and "Missing" not in home, "Home and form agree"
    at.toggle(key="intake.in_hospital").set_value(True).run()
    assert [b.key.removeprefix("intake.") for b in at.selectbox] == [*INTAKE, schema.RACE, *schema.HOSPITAL_FIELDS]
    for name in schema.HOSPITAL_FIELDS:
        box = at.selectbox(key=f"intake.{name}")
        assert list(box.options) == ["Yes", "No"] and box.value is None, "the hospital questions open unanswered"


def test_score_needs_an_age_group(dashboard_env: str) -> None:
    """Issue 21: the form opened as 40-49, Female, so a patient could be scored without anyone choosing an age."""
    at = _run(PATIENT)
    score = at.button(key="intake.score")
    assert score.disabled
    assert any(c.value == "To score, answer: Age group" for c in at.caption)
    with pytest.raises(AppTestError, match="disabled"):  # a browser user cannot press it either
        score.click()
    assert not any(h.value.startswith("Result") for h in at.header)
    at.selectbox(key="intake.age_group").select("40 - 49 Years").run()
    assert not at.button(key="intake.score").disabled
    assert not any(c.value.startswith("To score") for c in at.caption)
    at.button(key="intake.score").click().run()
    assert at.session_state["patient.last_result"]["record"] == {"age_group": "40 - 49 Years"}


def test_hospital_switch_asks_both_questions_unanswered(dashboard_env: str) -> None:
    """Issue 21: switching "already in hospital" on set Hospitalised = Yes and ICU = Yes, so scoring at once gave
    the in-hospital model's 65.0% instead of the intake model's 36.3% for the same man, without anyone choosing."""
    at = _run(PATIENT)
    _fill(at, TYPED)
    at.button(key="intake.score").click().run()
    intake = at.session_state["patient.last_result"]
    assert intake["model"] == "intake"
    at.toggle(key="intake.in_hospital").set_value(True).run()
    assert at.button(key="intake.score").disabled
    assert any(c.value == "To score, answer: Hospitalised and Admitted to ICU" for c in at.caption)
    assert at.session_state["patient.last_result"] == intake, "the intake result stays, marked out of date"
    assert any("Out of date" in w.value for w in at.warning)
    _fill(at, {"hosp_yn": "Yes"})
    assert at.button(key="intake.score").disabled, "one hospital answer is not enough"
    _fill(at, {"icu_yn": "No"})
    at.button(key="intake.score").click().run()
    shown = at.session_state["patient.last_result"]
    assert shown["model"] == "in_hospital" and shown["record"] == {**TYPED, "hosp_yn": "Yes", "icu_yn": "No"}
    at.toggle(key="intake.in_hospital").set_value(False).run()
    at.toggle(key="intake.in_hospital").set_value(True).run()
    assert [at.selectbox(key=f"intake.{n}").value for n in schema.HOSPITAL_FIELDS] == [None, None]


def test_submit_shows_the_endpoints_probability_and_interval(dashboard_env: str, model_dir: Path) -> None:
    at = _run(PATIENT)
    _fill(at, TYPED)
    at.button(key="intake.score").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]

    # Case status "Not known" and race "Not given" (the form's defaults) are left out of the request.
    record = dict(TYPED)
    direct = EndpointClient(EndpointConfig.from_sources(secrets=None, environ={"RISK_ENDPOINT_URL": dashboard_env}))
    expected = direct.score([record])
    p = float(expected.results[0]["probability"])
    low, high = expected.results[0]["interval"]

    shown = at.session_state["patient.last_result"]
    assert shown["record"] == record
    assert shown["probability"] == pytest.approx(p, abs=1e-12)
    assert shown["model_version"] == expected.model_version and shown["model"] == "intake"
    assert any(f"{p:.1%}" in h.value for h in at.html), "probability not on the page"
    assert any(f"95% CI {low:.1%} to {high:.1%}" in h.value for h in at.html), "interval not on the page"
    # The risk as a range: the low end counts unrecorded outcomes as survivals, with its own interval.
    low_end = float(expected.results[0]["probability_if_unrecorded_survived"])
    low_low, low_high = expected.results[0]["interval_if_unrecorded_survived"]
    assert low_end < p and shown["low"] == pytest.approx(low_end, abs=1e-12)
    assert any(f"{low_end:.1%} to " in h.value and "risk-range" in h.value for h in at.html), "no range shown"
    assert any(f"95% CI {low_low:.1%} to {low_high:.1%}" in h.value for h in at.html), "low end's interval"
    assert any("Why a range" in c.value for c in at.caption)
    assert shown["inputs_used"] == list(record)
    assert any(schema.risk_band(p) in h.value for h in at.html), "risk band not on the page"
    assert any("intake model" in c.value for c in at.caption)
    assert any("real CDC cases, case dates Mar 2020 to Apr 2020" in i.value for i in at.info)

    base = _test_prevalence(model_dir)
    assert _metric(at, "× the base rate") == f"{p / base:.2g}×"
    sub = pd.read_csv(model_dir / "evaluation" / "subgroups.csv")
    age = sub[(sub["column"] == "age_group") & (sub["value"] == TYPED["age_group"])].iloc[0]
    assert _metric(at, "× the mean risk at age") == f"{p / age['mean_predicted']:.2g}×"
    threshold = at.session_state["shared.threshold"]
    assert _metric(at, "At the operating threshold") == ("FLAGGED" if p >= threshold else "not flagged")

    # The risk scale draws the range [low end, probability] (issue 21), and says so in words and numbers.
    scale = json.loads(at.get("plotly_chart")[0].proto.spec)
    bar = next(t for t in scale["data"] if t.get("line", {}).get("width") == 12)
    assert bar["x"] == pytest.approx([low_end, p], abs=1e-12)
    assert any(f"this patient {low_end:.1%} to {p:.1%}" in c.value for c in at.caption), "no text alternative"
    numbers = next(x for x in at.expander if x.label == "Numbers behind the risk scale").table[0].value
    assert list(numbers["risk"][:2]) == [f"{low_end:.1%}", f"{p:.1%}"]

    # Why this risk: the endpoint's exact contributions, and what-if risks of every other answer.
    explained = direct.score([record], explain=True).results[0]
    assert shown["contributions"] == pytest.approx(explained["contributions"], abs=1e-12)
    assert any(m.value.startswith("**Why this risk.** Age group: 80+ Years: +") for m in at.markdown)
    why = next(x for x in at.expander if x.label == "Numbers behind why this risk").table[0].value
    assert why["step"].iloc[-1] == "this patient" and why["risk after"].iloc[-1] == f"{p:.1%}"
    assert why["risk after"].iloc[-2] == f"{p:.1%}", "the contributions add up to the patient's risk"
    what_if = at.dataframe[0].value
    assert len(what_if) == sum(len(patient_form.options(n, False)) - 1 for n in (*INTAKE, schema.RACE))
    younger = {**record, "age_group": "20 - 29 Years"}
    row = what_if[(what_if["field"] == "Age group") & (what_if["if it were"] == "20 - 29 Years")].iloc[0]
    assert row["risk"] == pytest.approx(direct.score([younger]).results[0]["probability"], abs=1e-12)

    # The session table grows and downloads as CSV.
    at.button(key="intake.score").click().run()
    assert len(at.session_state["shared.scored_patients"]) == 2
    assert len(at.dataframe[-1].value) == 2
    assert at.download_button[0].proto.label == "Download as CSV"


def _stale_marks(at: AppTest) -> dict[str, bool]:
    """Where the page says the shown result is out of date (each derived part separately)."""
    label = patient_result.STALE_LABEL
    charts = [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in at.get("plotly_chart")]
    return {
        "warning": any("Out of date" in w.value for w in at.warning),
        "heading": any(h.value == "Result for the previous answers (out of date)" for h in at.header),
        "dimmed": any(patient_result.STALE_KEY in h.value and "grayscale" in h.value for h in at.html),
        "badge": any("risk-badge-stale" in h.value and label in h.value for h in at.html),
        "risk scale": "previous answers" in charts[0],
        "why chart": "previous answers" in charts[1],
        "what-if": any(m.value.startswith("**What if**") and label in m.value for m in at.markdown),
        "flag card": any(
            m.proto.label.startswith("At the operating threshold") and label in m.proto.label for m in at.metric
        ),
        "comparisons": all(label in m.proto.label for m in at.metric),
    }


def test_edited_answers_mark_the_whole_result_out_of_date(dashboard_env: str) -> None:
    """Issue 21: after one answer changed only the number was struck through; the band badge, the FLAGGED card
    and the charts stayed at full strength. Now every part derived from the old answers says so."""
    at = _run(PATIENT)
    _fill(at, TYPED)
    at.button(key="intake.score").click().run()
    assert not any(_stale_marks(at).values()), _stale_marks(at)
    at.selectbox(key="intake.age_group").select("20 - 29 Years").run()  # edited, not submitted
    assert all(_stale_marks(at).values()), _stale_marks(at)
    at.button(key="intake.score").click().run()
    assert not any(_stale_marks(at).values()), _stale_marks(at)
    assert at.session_state["patient.last_result"]["record"]["age_group"] == "20 - 29 Years"


def test_hospitalised_patient_is_scored_by_the_in_hospital_model(dashboard_env: str) -> None:
    at = _run(PATIENT)
    at.toggle(key="intake.in_hospital").set_value(True).run()
    _fill(at, {**TYPED, "hosp_yn": "Yes", "icu_yn": "Yes"})
    at.button(key="intake.score").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    shown = at.session_state["patient.last_result"]
    assert shown["model"] == "in_hospital" and shown["record"]["icu_yn"] == "Yes"
    assert any("in-hospital model" in c.value for c in at.caption)


def test_small_risks_are_never_shown_as_zero(dashboard_env: str) -> None:
    at = _run(PATIENT)
    _fill(at, {"age_group": "10 - 19 Years", "sex": "Female", "medcond_yn": "No"})
    at.button(key="intake.score").click().run()
    p = at.session_state["patient.last_result"]["probability"]
    assert p < 0.01
    assert any(f"{p * 100:.2g}%" in h.value for h in at.html)
    assert not any(">0.0%<" in h.value for h in at.html)


def test_threshold_slider_moves_metrics_with_the_table(dashboard_env: str, model_dir: Path) -> None:
    at = _run(THRESHOLD)
    slider = at.slider(key="threshold_explorer.slider")
    seen = set()
    for t in (0.005, 0.02, 0.05, 0.15, 0.4):
        slider.set_value(t).run()
        assert not at.exception
        row = _row_at(model_dir, t)
        n = row["tp"] + row["fp"] + row["tn"] + row["fn"]
        assert _metric(at, "Recall") == f"{row['recall']:.3f}"
        assert any(f"**{t:.4g}**" in m.value for m in at.sidebar.markdown), "the sidebar lags the slider"
        assert _metric(at, "Specificity") == f"{row['specificity']:.3f}"
        assert _metric(at, "Flagged /1k") == f"{1000 * (row['tp'] + row['fp']) / n:,.1f}"
        assert _metric(at, "Deaths missed /1k") == f"{1000 * row['fn'] / n:,.2f}"
        assert at.session_state["shared.threshold"] == pytest.approx(t)
        seen.add(_metric(at, "Recall"))
    assert len(seen) >= 3, "the slider did not change the operating point"


def test_recall_preset_delivers_its_recall(dashboard_env: str, model_dir: Path) -> None:
    at = _run(THRESHOLD)
    at.button(key="preset.Recall ≥ 0.80").click().run()
    t = at.slider(key="threshold_explorer.slider").value
    assert _row_at(model_dir, t)["recall"] >= 0.80
    assert float(_metric(at, "Recall")) >= 0.80


def test_threshold_carries_over_to_other_pages(dashboard_env: str) -> None:
    at = open_page(THRESHOLD)
    at.slider(key="threshold_explorer.slider").set_value(0.123).run()
    switch_to(at, "icu_saturation.py")
    assert not at.exception
    assert any("operating threshold 0.123" in c.value for c in at.caption)
    switch_to(at, "threshold_explorer.py")  # the widget key was dropped; the value was not
    assert at.slider(key="threshold_explorer.slider").value == pytest.approx(0.123)


def _set_icu(at: AppTest, cases: float, team: float, follow: int) -> None:
    at.number_input(key="icu.cases_per_day").set_value(cases)
    at.number_input(key="icu.surveillance_capacity").set_value(team)
    at.number_input(key="icu.follow_days").set_value(follow)
    at.run()
    assert not at.exception


def test_icu_surveillance_load_and_the_recall_that_fits(dashboard_env: str, model_dir: Path) -> None:
    """The threshold's trade-off on the ICU page: patients followed (flagged cases × days followed) vs recall."""
    at = _run(ICU)
    _set_icu(at, cases=500, team=2000, follow=8)
    # Which end of the outcome-recording range the threshold applies to, as the Threshold explorer says.
    assert any(c.value.startswith("The threshold applies to the high end") for c in at.caption)
    assert any("high end of each patient's risk range" in c.value for c in _run(THRESHOLD).caption)
    icu = pd.read_csv(model_dir / "evaluation" / "icu_by_threshold.csv")
    row = icu[icu["threshold"] >= at.session_state["shared.threshold"]].sort_values("threshold").iloc[0]
    assert _metric(at, "Flagged patients followed, peak") == f"{500 * row['case_flagged_share'] * 8:,.0f}"

    icu["followed"] = 500 * icu["case_flagged_share"] * 8
    fits = icu[(icu["followed"] <= 2000) & (icu["case_flagged_share"] > 0)]
    recall = fits["recall"].max()
    assert 0 < recall < 1, "pick assumptions that saturate somewhere inside the curve"
    shown = [m.value for m in [*at.info, *at.warning] if "fits" in m.value]
    assert shown and f"{recall:.3f}" in shown[0]

    _set_icu(at, cases=500, team=10**8, follow=8)
    assert any("Even the lowest stored threshold" in s.value for s in at.success)


def test_endpoint_down_shows_banner_and_keeps_input(
    monkeypatch: pytest.MonkeyPatch, dashboard_env: str, model_dir: Path
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    monkeypatch.setenv("RISK_ENDPOINT_URL", f"http://127.0.0.1:{closed}/score")
    monkeypatch.setenv("RISK_ENDPOINT_TIMEOUT", "2")
    at = _run(PATIENT)
    _fill(at, TYPED)
    at.button(key="intake.score").click().run()
    assert not at.exception
    # Clinician wording in the banner; the address and the commands only in the technical detail.
    assert any("risk service is not reachable" in e.value for e in at.error), [e.value for e in at.error]
    assert not any("python -m" in e.value or str(closed) in e.value for e in at.error)
    detail = next(x for x in at.expander if x.label.startswith("Technical detail"))
    assert any(str(closed) in m.value and "deploy.local_endpoint" in m.value for m in detail.markdown)
    for name, value in TYPED.items():
        assert at.selectbox(key=f"intake.{name}").value == value
    assert "patient.last_result" in at.session_state and at.session_state["patient.last_result"] is None
    assert any("unavailable" in h.value for h in at.sidebar.get("html")) or any(
        "unavailable" in m.value for m in at.sidebar.markdown
    )
    # Pages that live on stored tables keep working.
    for page in (THRESHOLD, ICU, CARD):
        other = _run(page)
        assert other.metric, f"{page} showed no figures with the endpoint down"


def _endpoint_box(at: AppTest) -> str:
    return " ".join(h.value for h in at.sidebar.get("html") if "endpoint-box" in h.value)


def test_sidebar_follows_the_endpoint_back_up(
    monkeypatch: pytest.MonkeyPatch, dashboard_env: str, model_dir: Path
) -> None:
    """Regression (issue 14, item 3): the endpoint comes back and a patient scores; the sidebar says so."""
    port = free_port()
    monkeypatch.setenv("RISK_ENDPOINT_URL", f"http://127.0.0.1:{port}/score")
    monkeypatch.setenv("RISK_ENDPOINT_TIMEOUT", "2")
    at = _run(PATIENT)
    assert "unavailable" in _endpoint_box(at) and "healthy" not in _endpoint_box(at)
    _fill(at, TYPED)
    # The same address answers again; the cached health check still says down.
    with serve(model_dir, port=port, workers=1):
        at.button(key="intake.score").click().run()
        assert not at.exception and at.session_state["patient.last_result"] is not None
        box = _endpoint_box(at)
        assert "healthy" in box and "unavailable" not in box, box
        assert re.search(r"last scoring latency: \d+ ms", box), box


def test_missing_model_dir_says_how_to_train(
    monkeypatch: pytest.MonkeyPatch, dashboard_env: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("RISK_MODEL_DIR", str(tmp_path / "no-model-here"))
    for page in (THRESHOLD, ICU, CARD):
        at = _run(page)
        assert any("python -m model.train" in e.value for e in at.error), page
        assert not at.metric
    home = _run(HOME)
    assert any("python -m model.train" in e.value for e in home.error)
    assert len(home.get("page_link")) == len(navigation.PAGES) - 1  # every page but Home, from one list


def test_model_card_page(dashboard_env: str, model_dir: Path) -> None:
    card = json.loads((model_dir / "model_card.json").read_text())
    at = _run(CARD)
    assert _metric(at, "ROC-AUC") == f"{card['metrics']['test']['roc_auc']:.3f}"
    oe = card["models"]["intake"]["metrics"]["test"]["observed_expected"]
    assert _metric(at, "Observed / expected deaths") == f"{oe['oe']:.3f}"
    assert _metric(at, "Rows read") == f"{card['data']['rows_read']:,}"
    assert any("Temporal validation" in m.value for m in at.markdown)
    # Cases by month, calibration with its smoothed curve, and per model the leave-one-month-out forest plots
    # of O/E and ROC-AUC, whose pooled diamond is the card's random-effects mean.
    periods = card["period_validation"]["models"]
    charts = at.get("plotly_chart")
    assert len(charts) == 2 + 2 * len(periods)
    pooled = json.loads(charts[1].proto.spec)["data"][-1]  # the intake model's O/E forest
    x = pooled["x"]
    x = np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"]) if isinstance(x, dict) else x
    assert pooled["y"] == ["pooled"] and pooled["name"].startswith("pooled (random effects)")
    assert x[0] == pytest.approx(periods["intake"]["pooled"]["observed_expected"]["mu"])
    assert any("prediction interval for a new month" in c.value for c in at.caption)
    if card["data"].get("synthetic"):
        assert any("SYNTHETIC" in w.value for w in at.warning)
    sub = pd.read_csv(model_dir / "evaluation" / "subgroups.csv")
    assert len(at.dataframe[-2].value) == len(sub)
    # Issue 19: O/E per race/ethnicity group for both intake models, and what race/ethnicity stands for.
    race = at.dataframe[-1].value
    assert len(race) == len(card["race_ethnicity_calibration"])
    assert {"race_blind_oe", "race_aware_oe"} <= set(race.columns)
    assert any("not biology" in c.value for c in at.caption)
    assert any(card["limitations"][0][:40] in m.value for m in at.markdown)


@pytest.mark.parametrize("page", [HOME, PATIENT, THRESHOLD, ICU, CARD], ids=lambda p: p.removesuffix(".py"))
def test_every_page_says_which_data_and_period(dashboard_env: str, model_dir: Path, page: str) -> None:
    card = json.loads((model_dir / "model_card.json").read_text())
    at = _run(page)
    assert any("Synthetic-data model" in w.value for w in at.warning) == bool(card["data"].get("synthetic"))
    assert any(card["data_period"] in c.value for c in at.caption), "the data period is not on the page"
    assert not math.isnan(at.session_state["shared.threshold"])


class _RefusingEndpoint(http.server.BaseHTTPRequestHandler):
    """An endpoint that refuses every key with 401, as Azure ML does for a wrong or rotated key.

    Stands in for an Azure endpoint (the local one has no key auth, and Azure cannot be reached here).
    """

    def _refuse(self) -> None:
        body = b'{"message": "Unauthorized: invalid key"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _refuse

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass


def test_refused_key_shows_banner_without_the_key(monkeypatch: pytest.MonkeyPatch, dashboard_env: str) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RefusingEndpoint)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    secret = "sk-test-7f3a9c1e5b"
    try:
        monkeypatch.setenv("RISK_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}/score")
        monkeypatch.setenv("RISK_ENDPOINT_AUTH", "key")
        monkeypatch.setenv("RISK_ENDPOINT_KEY", secret)
        at = _run(PATIENT)
        _fill(at, TYPED)
        at.button(key="intake.score").click().run()
    finally:
        server.shutdown()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("refused this dashboard's access key" in e for e in errors), errors
    for name, value in TYPED.items():
        assert at.selectbox(key=f"intake.{name}").value == value
    shown = " ".join(
        [
            *errors,
            *(m.value for m in at.markdown),
            *(m.value for m in at.sidebar.markdown),
            *(m.value for x in at.expander for m in x.markdown),
            *(h.value for h in at.get("html")),
            *(h.value for h in at.sidebar.get("html")),
        ]
    )
    assert secret not in shown


def test_synthetic_model_is_flagged_on_every_page(
    dashboard_env: str, synthetic_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RISK_MODEL_DIR", str(synthetic_model_dir))
    for page in (HOME, CARD):
        at = _run(page)
        assert any("Synthetic-data model" in w.value for w in at.warning), page
        assert any("synthetic CDC-like cases" in c.value for c in at.caption), page


def test_one_threshold_one_value_on_every_page(dashboard_env: str) -> None:
    """A threshold chosen on the ICU page is the slider's value on the Threshold explorer, digit for digit."""
    at = open_page(ICU)
    at.session_state["shared.threshold"] = 0.0  # flag everybody: the ICU overflows, a fitting threshold is offered
    at.run()
    button = [b for b in at.button if b.key in ("icu.use_fitting", "icu.use_saturation")]
    assert button, "no threshold offered"
    button[0].click().run()
    chosen = at.session_state["shared.threshold"]
    assert chosen > 0 and round(chosen, 4) == chosen, "stored on the slider's grid"
    switch_to(at, "threshold_explorer.py")
    assert at.slider(key="threshold_explorer.slider").value == chosen
    assert at.session_state["shared.threshold"] == chosen
    assert any(f"{chosen:.4g}" in m.value for m in at.sidebar.markdown)


def test_the_threshold_lives_in_the_url(dashboard_env: str) -> None:
    at = app_test()
    at.query_params["threshold"] = "0.1234"  # a shared link
    open_page(THRESHOLD, at)
    assert at.slider(key="threshold_explorer.slider").value == pytest.approx(0.1234)
    at.slider(key="threshold_explorer.slider").set_value(0.2).run()
    assert at.query_params["threshold"] == "0.2000"  # the address to share now opens this view
    bad = app_test()
    bad.query_params["threshold"] = "lots"
    bad.run()  # the page the link opens (Home here) says what was wrong with it
    assert any("is not a number between 0 and 1" in w.value for w in bad.warning)
    open_page(THRESHOLD, bad)
    assert bad.slider(key="threshold_explorer.slider").value == pytest.approx(0.05)
