"""Patient risk: the lab intake form, scored live by the endpoint.

The form decides nothing for the clerk (issue 21): it opens with no age group and Score stays disabled
until one is chosen; other answers start as "Not known"; switched to "in hospital", the two hospital
questions appear unanswered and must both be answered. Questions are drawn row by row so Tab visits
them in reading order, and their help is one expander after the Score button instead of a Help button
(a Tab stop) before every field. Everything derived from scored answers sits in one container that is
dimmed and labelled as soon as an answer changes, until the patient is scored again.
"""

import math
from datetime import UTC, datetime
from functools import partial

import pandas as pd
import streamlit as st

from dashboard.ui import charts, endpoint, page, patient_form, patient_result, state, text
from dashboard.ui.artifacts import ModelArtifact
from model.core import schema
from model.serving.client import EndpointConfig, EndpointError

FIELD_KEY = "intake.{}"  # widget keys (dropped by Streamlit when another page is shown)
SAVED_INPUT_KEY = "patient.saved_input"  # non-widget copy, so the form survives page switches
RESULT_KEY = "patient.last_result"
IN_HOSPITAL_KEY = "intake.in_hospital"
SCORE_ERROR_KEY = "patient.score_error"  # set by the button's callback, shown once by the page
RESULT_CONTAINER = "patient-result"  # the current result's container (the stale one: patient_result.STALE_KEY)


def render() -> None:
    """The page: the form, then the result of the last scored answers (dimmed when out of date), then the
    session's table of scored patients."""
    ctx = page.context()
    saved: dict = st.session_state.setdefault(SAVED_INPUT_KEY, {})
    state.seed_widget(IN_HOSPITAL_KEY, saved.get(IN_HOSPITAL_KEY) == "yes")
    in_hospital = _form(saved, ctx.endpoint, ctx.endpoint_error)
    current = current_answers(in_hospital)
    saved.update({k: v for k, v in current.items() if v is not None})  # the form survives a page switch, scored or not
    saved[IN_HOSPITAL_KEY] = "yes" if in_hospital else "no"
    _show_score_error(ctx.endpoint)
    last = st.session_state.get(RESULT_KEY)
    if last:
        _result(last, current != last.get("answers"), ctx.model)
    _session_table()


def what_if_records(answers: dict[str, str], in_hospital: bool) -> list[tuple[str, str, dict[str, str]]]:
    """(field, other choice, request record) for every other choice the form offers for each field."""
    variants = []
    for name, value, other in patient_form.what_if_answers(answers, in_hospital):
        record: dict[str, str | None] = {**other}
        variants.append((name, value, patient_form.request_record(record)))
    return variants


def current_answers(in_hospital: bool) -> dict[str, str | None]:
    """The form's answers as the widgets hold them (None: a required question not answered yet)."""
    return {name: st.session_state.get(FIELD_KEY.format(name)) for name in patient_form.questions(in_hospital)}


def _score(config: EndpointConfig | None, config_error: str | None, in_hospital: bool) -> None:
    """The button's callback: scores before the page reruns, so the sidebar drawn first already shows this call."""
    answers = current_answers(in_hospital)
    if patient_form.unanswered(answers, in_hospital):  # the button is disabled then; a stray click scores nothing
        return
    record = patient_form.request_record(answers)  # "Not known" / "Not given" are left out
    given = {name: value for name, value in answers.items() if value is not None}  # all, since none is unanswered
    st.session_state[RESULT_KEY] = None
    if config is None:
        st.session_state[SCORE_ERROR_KEY] = config_error or "no endpoint is configured"
        return
    try:
        scored = endpoint.score(config, [record], explain=True)
        variants = what_if_records(given, in_hospital)
        what_if = endpoint.score(config, [v for _, _, v in variants], traffic=schema.PROBE)
    except EndpointError as exc:
        st.session_state[SCORE_ERROR_KEY] = exc
        return
    result = scored.results[0]
    shown = {
        "answers": answers,
        "record": record,
        "probability": endpoint.probability_of(result),
        "risk_band": endpoint.risk_band_of(result),
        "interval": result.get("interval"),
        # The low end of the outcome-recording range (absent from an older endpoint: then no range).
        "low": result.get("probability_if_unrecorded_survived"),
        "low_interval": result.get("interval_if_unrecorded_survived"),
        "inputs_used": result.get("inputs_used") or list(record),
        "model": result.get("model", schema.INTAKE_MODEL),
        "extrapolated": bool(result.get("extrapolated", False)),
        "data_period": scored.data_period,
        "model_version": scored.model_version,
        "latency_ms": scored.latency_ms,
        "baseline": result.get("baseline"),
        "contributions": result.get("contributions"),
        "what_if": [(n, v, endpoint.probability_of(r)) for (n, v, _), r in zip(variants, what_if.results, strict=True)],
    }
    st.session_state[RESULT_KEY] = shown
    state.add_scored_patient(_session_row(shown))


def _session_row(shown: dict) -> dict:
    """One row of the session's table of scored patients (downloadable), flagged at today's threshold."""
    threshold = state.get_threshold()
    low, high = shown["interval"] or (None, None)
    return {
        "scored_at_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        **shown["answers"],
        "probability": shown["probability"],
        "ci_low": low,
        "ci_high": high,
        "probability_if_unrecorded_survived": shown["low"],
        "inputs_used": ", ".join(shown["inputs_used"]),
        "risk_band": shown["risk_band"],
        "model": shown["model"],
        "threshold": threshold,
        "flagged": shown["probability"] >= threshold,
        "model_version": shown["model_version"],
    }


def _hospital_switched() -> None:
    """The switch's callback: the hospital questions (re)appear unanswered, whatever was chosen before."""
    saved = st.session_state.setdefault(SAVED_INPUT_KEY, {})
    for name in schema.HOSPITAL_FIELDS:
        st.session_state[FIELD_KEY.format(name)] = None
        saved.pop(name, None)


def _question(name: str, in_hospital: bool, saved: dict) -> None:
    """One question, seeded from the saved copy (page switches drop widget keys), unanswered if required."""
    options = patient_form.options(name, in_hospital)
    key = FIELD_KEY.format(name)
    start = saved.get(name, patient_form.default(name, in_hospital))
    state.seed_widget(key, start if start in options else patient_form.default(name, in_hospital))
    value = st.session_state[key]
    if value not in options and not (value is None and patient_form.required(name, in_hospital)):
        st.session_state[key] = patient_form.default(name, in_hospital)  # e.g. "Not known" kept from intake
    st.selectbox(
        schema.FEATURES_BY_NAME[name].label,
        options,
        key=key,
        placeholder=patient_form.placeholder(name),
        format_func=partial(patient_form.label_of, name),
    )


def _question_rows(names: tuple[str, ...], in_hospital: bool, saved: dict) -> None:
    """Questions in rows of three, drawn row by row so the keyboard visits them in reading order."""
    for row in patient_form.rows(names):
        for column, name in zip(st.columns(patient_form.PER_ROW), row, strict=False):
            with column:
                _question(name, in_hospital, saved)


def _form(saved: dict, config: EndpointConfig | None, config_error: str | None) -> bool:
    """The questions, the hospital switch, Score and the questions' help; returns whether in hospital."""
    st.header("Patient", anchor=False)
    with st.container(border=True):
        st.markdown(
            "Choose the **age group** (required). Leave any other answer as *Not known* when nobody knows it: the "
            "risk is then that of all patients like this one, whatever their answer."
        )
        in_hospital = bool(st.session_state.get(IN_HOSPITAL_KEY))
        _question_rows(patient_form.intake_questions(), in_hospital, saved)
        in_hospital = st.toggle(patient_form.IN_HOSPITAL_LABEL, key=IN_HOSPITAL_KEY, on_change=_hospital_switched)
        if in_hospital:
            st.markdown("**In hospital:** answer both questions (the in-hospital model needs Yes or No for each).")
            _question_rows(schema.HOSPITAL_FIELDS, in_hospital, saved)
        missing = patient_form.unanswered(current_answers(in_hospital), in_hospital)
        st.button(
            "Score patient",
            type="primary",
            icon=":material/monitor_heart:",
            key="intake.score",
            on_click=_score,
            args=(config, config_error, in_hospital),
            disabled=bool(missing),
        )
        if missing:
            st.caption(patient_form.missing_text(missing))
        with st.expander("What the questions mean"):
            st.markdown("\n".join(f"- **{label}**: {words}" for label, words in patient_form.help_lines(in_hospital)))
    return in_hospital


def _show_score_error(config: EndpointConfig | None) -> None:
    """The error the button's callback stored, shown once, on the run the click caused."""
    problem = st.session_state.pop(SCORE_ERROR_KEY, None)
    if isinstance(problem, EndpointError):
        assert config is not None  # an endpoint error needs an endpoint
        endpoint.show_error(problem, config)
    elif problem:
        st.error(
            f"**Cannot score: the endpoint settings are invalid.** {text.md(problem)}", icon=":material/settings_alert:"
        )


def age_group_reference(model: ModelArtifact | None, age_group: str) -> tuple[float, float] | None:
    """(mean predicted, observed prevalence) of the test patients in this age group, if any."""
    if model is None:
        return None
    subgroups = model.table("subgroups")
    row = subgroups[(subgroups["column"] == "age_group") & (subgroups["value"] == age_group)]
    if row.empty:
        return None
    return float(row["mean_predicted"].iloc[0]), float(row["prevalence"].iloc[0])


def _references(last: dict, model: ModelArtifact | None) -> patient_result.References:
    """Base rate, the age group's mean risk and the operating threshold the result is compared with."""
    base_rate = model.prevalence if model is not None else math.nan
    age = last["record"]["age_group"]
    age_ref = age_group_reference(model, age)
    return patient_result.References(
        base_rate=base_rate if math.isfinite(base_rate) and base_rate > 0 else None,
        age_group_rate=age_ref[0] if age_ref else None,
        age_group_label=schema.FEATURES_BY_NAME["age_group"].label_of(age),
        threshold=state.get_threshold(),
    )


def _title(text: str, stale: bool) -> str:
    """A chart's title; out of date it says so (short: the why-chart's column is narrow)."""
    return f"{text} — previous answers" if stale else text


def _risk_section(last: dict, stale: bool, refs: patient_result.References) -> None:
    """The risk range with its intervals and band, and the risk scale with its text alternative."""
    left, right = st.columns([1, 2], vertical_alignment="center")
    with left:
        st.html(patient_result.risk_html(last, stale))
        if last.get("low") is not None:
            st.caption(patient_result.RANGE_WHY)
        st.caption(
            f"Scored by the **{schema.MODEL_LABELS.get(last['model'], last['model'])}** using "
            f"{patient_result.inputs_text(last)} · model {text.md_code(last['model_version'])} · "
            f"{last['latency_ms']:.0f} ms"
        )
    with right:
        figure = charts.risk_scale(
            last["probability"],
            base_rate=refs.base_rate,
            age_group_rate=refs.age_group_rate,
            age_group_label=refs.age_group_label,
            threshold=refs.threshold,
            interval=tuple(last["interval"]) if last.get("interval") else None,
            low=last.get("low"),
            low_interval=tuple(last["low_interval"]) if last.get("low_interval") else None,
            title=_title("Risk scale", stale) if stale else None,
        )
        charts.show(
            figure,
            patient_result.scale_summary(last, refs),
            table=patient_result.scale_table(last, refs),
            what="the risk scale",
        )


def _why_section(last: dict, stale: bool) -> None:
    """Why this risk (waterfall with its words and numbers) and the what-if table."""
    if not last.get("contributions"):
        return
    left, right = st.columns([3, 2])
    with left:
        title = _title("Why this risk", stale) if stale else "Why this risk (exact Shapley values)"
        figure = charts.risk_waterfall(
            last["baseline"], patient_result.contributions(last), last["probability"], title=title
        )
        # Its summary in words is the text beside it (the right column).
        charts.show(figure, table=patient_result.why_table(last), what="why this risk", caption=False)
    with right:
        st.markdown("**Why this risk.** " + patient_result.why_summary(last))
        what_if = patient_result.what_if_frame(last)
        if not what_if.empty:
            st.markdown("**What if** one answer were different" + (f" ({patient_result.STALE_LABEL})" if stale else ""))
            st.dataframe(
                what_if,
                hide_index=True,
                column_config={
                    "risk": st.column_config.NumberColumn("risk", format="percent"),
                    "change (points)": st.column_config.NumberColumn(format="%+.1f"),
                },
            )


def _comparisons(last: dict, stale: bool, refs: patient_result.References, model: ModelArtifact | None) -> None:
    """The risk against the base rate, the age group's mean, and the operating threshold (the flag card)."""
    probability, suffix = last["probability"], f" ({patient_result.STALE_LABEL})" if stale else ""
    m1, m2, m3 = st.columns(3)
    if refs.base_rate is not None:
        m1.metric(
            "× the base rate (all cases)" + suffix,
            f"{probability / refs.base_rate:.2g}×",
            help=f"Death rate among test cases with a known outcome: {refs.base_rate:.2%}.",
        )
        m1.caption(f"Base rate {refs.base_rate:.2%}")
    else:
        m1.metric("× the base rate (all cases)", "—", help="No model card: base rate unknown.")
    age_ref = age_group_reference(model, last["record"]["age_group"])
    if age_ref and age_ref[0] > 0:
        m2.metric(
            f"× the mean risk at age {refs.age_group_label}" + suffix,
            f"{probability / age_ref[0]:.2g}×",
            help="Mean predicted risk of test cases in the same age group (observed rate below).",
        )
        m2.caption(f"Age group: mean predicted {age_ref[0]:.2%}, observed {age_ref[1]:.2%}")
    else:
        m2.metric(f"× the mean risk at age {refs.age_group_label}", "—", help="No test cases in this age group.")
    m3.metric(
        f"At the operating threshold ({refs.threshold:.1%})" + suffix,
        "FLAGGED" if probability >= refs.threshold else "not flagged",
        help="Threshold set on the Threshold explorer page (flag = risk ≥ threshold).",
    )
    m3.caption("Flag = risk ≥ threshold, set on the Threshold explorer.")


def _notes(last: dict, model: ModelArtifact | None) -> None:
    """Extrapolation, a model-version mismatch, and how to read the risk for the period it describes."""
    if last.get("extrapolated"):
        st.warning(
            "**Extrapolated.** Fewer than 20 patients with exactly these answers were in the training data, so "
            "this risk comes from the model's structure rather than from patients like this one; its interval "
            "is wide accordingly.",
            icon=":material/explore:",
        )
    if model is not None and last["model_version"] != model.version:
        st.warning(
            f"The endpoint serves model {text.md_code(last['model_version'])} but this dashboard's tables describe "
            f"{text.md_code(model.version)}: comparisons and threshold statistics may not match this score. "
            "Point `RISK_MODEL_DIR` at the deployed model's directory.",
            icon=":material/warning:",
        )
    period = last.get("data_period") or (model.card.get("data_period") if model is not None else None) or ""
    st.info(patient_result.how_to_read(last, period), icon=":material/info:")


def _result(last: dict, stale: bool, model: ModelArtifact | None) -> None:
    """Everything derived from the scored answers, in one container: dimmed and labelled when out of date."""
    st.header("Result for the previous answers (out of date)" if stale else "Result", anchor=False)
    if stale:
        st.warning(
            "**Out of date.** The answers above changed after this result was scored: everything below is for the "
            "previous answers. Press **Score patient** to score these.",
            icon=":material/history:",
        )
        st.html(patient_result.STALE_CSS)
    with st.container(key=patient_result.STALE_KEY if stale else RESULT_CONTAINER):
        refs = _references(last, model)
        _risk_section(last, stale, refs)
        _why_section(last, stale)
        _comparisons(last, stale, refs, model)
        _notes(last, model)


def _session_table() -> None:
    """Patients scored in this browser session, downloadable as CSV."""
    patients = state.scored_patients()
    st.header("Patients scored this session", anchor=False)
    if not patients:
        st.caption("No patient scored yet in this browser session.")
        return
    frame = pd.DataFrame(patients)
    st.dataframe(
        frame,
        hide_index=True,
        column_config={
            "probability": st.column_config.NumberColumn("probability", format="percent"),
            "threshold": st.column_config.NumberColumn("threshold", format="percent"),
        },
    )
    st.download_button(
        "Download as CSV",
        frame.to_csv(index=False).encode("utf-8"),
        file_name="scored_patients.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
    )
