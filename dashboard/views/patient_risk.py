"""Patient risk: the lab intake form, scored live by the endpoint."""

import math
from datetime import UTC, datetime
from functools import partial

import pandas as pd
import streamlit as st

from dashboard.client import EndpointConfig, EndpointError
from dashboard.ui import charts, endpoint, page, patient_form, state, text, theme
from model import schema

FIELD_KEY = "intake.{}"  # widget keys (dropped by Streamlit when another page is shown)
SAVED_INPUT_KEY = "patient.saved_input"  # non-widget copy, so the form survives page switches
RESULT_KEY = "patient.last_result"
IN_HOSPITAL_KEY = "intake.in_hospital"
SCORE_ERROR_KEY = "patient.score_error"  # set by the button's callback, shown once by the page

ctx = page.context()


def what_if_records(answers: dict[str, str], in_hospital: bool) -> list[tuple[str, str, dict[str, str]]]:
    """(field, other choice, request record) for every other choice the form offers for each field."""
    return [
        (name, value, patient_form.request_record(other))
        for name, value, other in patient_form.what_if_answers(answers, in_hospital)
    ]


def _score(
    config: EndpointConfig | None, config_error: str | None, questions: tuple[str, ...], in_hospital: bool
) -> None:
    """The button's callback: scores before the page reruns, so the sidebar drawn first already shows this call."""
    answers = {name: st.session_state[FIELD_KEY.format(name)] for name in questions}
    record = patient_form.request_record(answers)  # "Not known" / "Not given" are left out
    saved = st.session_state.setdefault(SAVED_INPUT_KEY, {})
    saved.update(answers)
    saved[IN_HOSPITAL_KEY] = "yes" if in_hospital else "no"
    st.session_state[RESULT_KEY] = None
    if config is None:
        st.session_state[SCORE_ERROR_KEY] = config_error or "no endpoint is configured"
        return
    try:
        scored = endpoint.score(config, [record], explain=True)
        variants = what_if_records(answers, in_hospital)
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


saved: dict[str, str] = st.session_state.setdefault(SAVED_INPUT_KEY, {})
state.seed_widget(IN_HOSPITAL_KEY, saved.get(IN_HOSPITAL_KEY) == "yes")
# Outside the form, so that switching it shows the hospital questions at once.
in_hospital = st.toggle(
    "The patient is already in hospital (hospital and ICU admission are known)",
    key=IN_HOSPITAL_KEY,
    help="At intake leave this off: the intake model then scores age, sex, case status, conditions and, if "
    "given, race/ethnicity. Hospitalisation that is not yet known is simply not asked: in CDC data 'Unknown' "
    "hospitalisation marks sicker patients and would about double the risk.",
)
questions = patient_form.questions(in_hospital)
# Not an st.form: each answer reruns the page, so a result shown under edited answers is marked out of date.
with st.container(border=True):
    st.markdown(
        "**Patient in hospital**"
        if in_hospital
        else "**Patient at intake** — choose *Not known* for any answer you do not know (only age is needed): "
        "the risk is then that of all patients like this one, whatever their answer."
    )
    columns = st.columns(3)
    for i, name in enumerate(questions):
        feature = schema.FEATURES_BY_NAME[name]
        options = patient_form.options(name, in_hospital)
        key = FIELD_KEY.format(name)
        default = saved.get(name, patient_form.default(name, in_hospital))
        state.seed_widget(key, default if default in options else patient_form.default(name, in_hospital))
        if st.session_state[key] not in options:  # e.g. "Not known" kept from the intake form
            st.session_state[key] = patient_form.default(name, in_hospital)
        with columns[i % 3]:
            st.selectbox(
                feature.label, options, key=key, help=feature.help, format_func=partial(patient_form.label_of, name)
            )
    st.button(
        "Score patient",
        type="primary",
        icon=":material/monitor_heart:",
        key="intake.score",
        on_click=_score,
        args=(ctx.endpoint, ctx.endpoint_error, tuple(questions), in_hospital),
    )

problem = st.session_state.pop(SCORE_ERROR_KEY, None)  # shown once, on the run the click caused
if isinstance(problem, EndpointError):
    assert ctx.endpoint is not None  # an endpoint error needs an endpoint
    endpoint.show_error(problem, ctx.endpoint)
elif problem:
    st.error(
        f"**Cannot score: the endpoint settings are invalid.** {text.md(problem)}", icon=":material/settings_alert:"
    )


RANGE_WHY = (
    "Why a range: many reported cases never had their outcome recorded; the higher number is the risk among "
    "recorded outcomes, the lower one counts every unrecorded case as a survival, and the true risk per "
    "reported case lies between them."
)


def risk_html(last: dict) -> str:
    """The risk as the range [if unrecorded survived, among recorded outcomes], each end with its 95% interval.

    Every value is a number the page formats itself (nothing the endpoint sends is rendered as text)."""
    p, interval = last["probability"], last.get("interval")
    band = f"<div>{theme.band_badge(last['risk_band'])} <span class='risk-caption'>risk band</span></div>"
    if last.get("low") is None:  # an endpoint without the recording range: one number, as before
        ci = f"<div class='risk-caption' data-testid='risk-interval'>{theme.format_interval(interval)}</div>"
        number = f"<div class='risk-number' data-testid='risk-probability'>{theme.format_risk(p)}</div>"
        return "<div class='risk-caption'>Probability of death</div>" + number + (ci if interval else "") + band
    low, low_interval = last["low"], last.get("low_interval")
    return (
        "<div class='risk-caption'>Probability of death</div>"
        f"<div class='risk-number' data-testid='risk-range' style='font-size:2.2rem'>{theme.format_risk(low)} to "
        f"<span data-testid='risk-probability'>{theme.format_risk(p)}</span></div>"
        f"<div class='risk-caption' data-testid='risk-interval-low'>{theme.format_risk(low)} if every unrecorded "
        f"outcome was a survival{f' ({theme.format_interval(low_interval)})' if low_interval else ''}</div>"
        f"<div class='risk-caption' data-testid='risk-interval'>{theme.format_risk(p)} among recorded outcomes"
        f"{f' ({theme.format_interval(interval)})' if interval else ''}</div>" + band
    )


def inputs_text(last: dict) -> str:
    """Which answers the risk used, in words (answers left out as "Not known" are not among them)."""
    used = [
        schema.FEATURES_BY_NAME[n].label.lower() for n in last.get("inputs_used") or [] if n in schema.FEATURES_BY_NAME
    ]
    left_out = [
        schema.FEATURES_BY_NAME[n].label.lower()
        for n in last.get("answers", {})
        if n not in (last.get("inputs_used") or [])
    ]
    words = ", ".join(used) or "the answers given"
    return words + (f" (not used: {', '.join(left_out)})" if left_out else "")


def age_group_reference(age_group: str) -> tuple[float, float] | None:
    """(mean predicted, observed prevalence) of the test patients in this age group, if any."""
    if ctx.model is None:
        return None
    subgroups = ctx.model.table("subgroups")
    row = subgroups[(subgroups["column"] == "age_group") & (subgroups["value"] == age_group)]
    if row.empty:
        return None
    return float(row["mean_predicted"].iloc[0]), float(row["prevalence"].iloc[0])


last = st.session_state.get(RESULT_KEY)
current = {name: st.session_state[FIELD_KEY.format(name)] for name in questions}
stale = bool(last) and current != last.get("answers", last["record"])
if stale:
    st.warning(
        "**Out of date.** The answers above changed after this result was scored: the risk below is for the "
        "previous answers. Press **Score patient** to score these.",
        icon=":material/history:",
    )
if last:
    probability = last["probability"]
    band = last["risk_band"]
    threshold = state.get_threshold()
    base_rate = ctx.model.prevalence if ctx.model is not None else math.nan
    age_label = schema.FEATURES_BY_NAME["age_group"].label_of(last["record"]["age_group"])
    age_ref = age_group_reference(last["record"]["age_group"])

    st.subheader("Result (previous answers)" if stale else "Result")
    if stale:  # dimmed, so nobody reads it as the current patient's
        st.html("<style>.risk-number{opacity:.35;text-decoration:line-through}</style>")
    left, right = st.columns([1, 2], vertical_alignment="center")
    with left:
        interval = last.get("interval")
        st.html(risk_html(last))
        if last.get("low") is not None:
            st.caption(RANGE_WHY)
        st.caption(
            f"Scored by the **{schema.MODEL_LABELS.get(last['model'], last['model'])}** using "
            f"{inputs_text(last)} · model {text.md_code(last['model_version'])} · {last['latency_ms']:.0f} ms"
        )
    with right:
        st.plotly_chart(
            charts.risk_scale(
                probability,
                base_rate=base_rate,
                age_group_rate=age_ref[0] if age_ref else None,
                age_group_label=age_label,
                threshold=threshold,
                interval=tuple(last["interval"]) if last.get("interval") else None,
            ),
            config={"displayModeBar": False},
        )

    if last.get("contributions"):
        shares = sorted(last["contributions"].items(), key=lambda kv: -abs(kv[1]))
        labelled = [
            (f"{schema.FEATURES_BY_NAME[n].label}: {patient_form.label_of(n, last['record'].get(n, ''))}", v)
            for n, v in shares
        ]
        left, right = st.columns([3, 2])
        with left:
            st.plotly_chart(
                charts.risk_waterfall(last["baseline"], labelled, probability), config={"displayModeBar": False}
            )
        with right:
            st.markdown(
                "**Why this risk.** "
                + "; ".join(f"{label}: {value * 100:+.1f} points" for label, value in labelled)
                + f". They add up from the mean risk of the training patients ({last['baseline']:.1%}) to this "
                "patient's risk among recorded outcomes (exact Shapley values of the inputs used; answers left "
                "out as not known have no share)."
            )
            what_if = pd.DataFrame(last.get("what_if") or [], columns=["field", "if it were", "risk"])
            if not what_if.empty:
                what_if["field"] = what_if["field"].map(lambda n: schema.FEATURES_BY_NAME[n].label)
                what_if["change (points)"] = (what_if["risk"] - probability) * 100
                st.markdown("**What if** one answer were different:")
                st.dataframe(
                    what_if,
                    hide_index=True,
                    column_config={
                        "risk": st.column_config.NumberColumn("risk", format="percent"),
                        "change (points)": st.column_config.NumberColumn(format="%+.1f"),
                    },
                )
    if last.get("extrapolated"):
        st.warning(
            "**Extrapolated.** Fewer than 20 patients with exactly these answers were in the training data, so "
            "this risk comes from the model's structure rather than from patients like this one; its interval "
            "is wide accordingly.",
            icon=":material/explore:",
        )
    m1, m2, m3 = st.columns(3)
    if math.isfinite(base_rate) and base_rate > 0:
        m1.metric(
            "× the base rate (all cases)",
            f"{probability / base_rate:.2g}×",
            help=f"Death rate among test cases with a known outcome: {base_rate:.2%}.",
        )
        m1.caption(f"Base rate {base_rate:.2%}")
    else:
        m1.metric("× the base rate (all cases)", "—", help="No model card: base rate unknown.")
    if age_ref and age_ref[0] > 0:
        m2.metric(
            f"× the mean risk at age {age_label}",
            f"{probability / age_ref[0]:.2g}×",
            help="Mean predicted risk of test cases in the same age group (observed rate below).",
        )
        m2.caption(f"Age group: mean predicted {age_ref[0]:.2%}, observed {age_ref[1]:.2%}")
    else:
        m2.metric(f"× the mean risk at age {age_label}", "—", help="No test cases in this age group to compare with.")
    flagged = probability >= threshold
    m3.metric(
        f"At the operating threshold ({threshold:.1%})",
        "FLAGGED" if flagged else "not flagged",
        help="Threshold set on the Threshold explorer page (flag = risk ≥ threshold).",
    )
    m3.caption("Flag = risk ≥ threshold, set on the Threshold explorer.")
    if ctx.model is not None and last["model_version"] != ctx.model.version:
        st.warning(
            f"The endpoint serves model {text.md_code(last['model_version'])} but this dashboard's tables describe "
            f"{text.md_code(ctx.model.version)}: comparisons and threshold statistics may not match this score. "
            "Point `RISK_MODEL_DIR` at the deployed model's directory.",
            icon=":material/warning:",
        )
    period = last.get("data_period") or (ctx.model.card.get("data_period") if ctx.model is not None else "")
    per_1000 = probability * 1000
    st.info(
        f"**How to read this risk.** Of 1,000 reported cases like this one whose outcome was recorded, about "
        f"{per_1000:,.0f} ({theme.format_interval(interval) if interval else 'interval not given'}) ended in death "
        f"among {text.md(period, 500) if period else 'the training data'}"
        + (
            f"; counting every case whose outcome was never recorded as a survival, about {last['low'] * 1000:,.0f}"
            if last.get("low") is not None
            else ""
        )
        + ". Case fatality fell several-fold after the first wave: for a "
        "later period, check the model card's date and the Monitoring page. It ranks patients for triage and "
        "sizes groups for planning; it is not a diagnosis and does not replace clinical judgement.",
        icon=":material/info:",
    )

patients = state.scored_patients()
st.subheader("Patients scored this session")
if patients:
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
else:
    st.caption("No patient scored yet in this browser session.")
