"""Patient risk: the lab intake form, scored live by the endpoint."""

import math
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from dashboard.client import EndpointConfig, EndpointError
from dashboard.ui import charts, endpoint, page, state, text, theme
from model import schema

FIELD_KEY = "intake.{}"  # widget keys (dropped by Streamlit when another page is shown)
SAVED_INPUT_KEY = "patient.saved_input"  # non-widget copy, so the form survives page switches
RESULT_KEY = "patient.last_result"
IN_HOSPITAL_KEY = "intake.in_hospital"
SCORE_ERROR_KEY = "patient.score_error"  # set by the button's callback, shown once by the page

ctx = page.context()


def what_if_records(record: dict[str, str], in_hospital: bool) -> list[tuple[str, str, dict[str, str]]]:
    """(field, other value, record) for every other value each answered field can take."""
    variants = []
    for name in record:
        options = (
            schema.model_values(schema.IN_HOSPITAL_MODEL, name)
            if in_hospital
            else (schema.FEATURES_BY_NAME[name].values)
        )
        variants += [(name, value, {**record, name: value}) for value in options if value != record[name]]
    return variants


def _score(
    config: EndpointConfig | None, config_error: str | None, questions: tuple[str, ...], in_hospital: bool
) -> None:
    """The button's callback: scores before the page reruns, so the sidebar drawn first already shows this call."""
    record = {name: st.session_state[FIELD_KEY.format(name)] for name in questions}
    saved = st.session_state.setdefault(SAVED_INPUT_KEY, {})
    saved.update(record)
    saved[IN_HOSPITAL_KEY] = "yes" if in_hospital else "no"
    st.session_state[RESULT_KEY] = None
    if config is None:
        st.session_state[SCORE_ERROR_KEY] = config_error or "no endpoint is configured"
        return
    try:
        scored = endpoint.score(config, [record], explain=True)
        variants = what_if_records(record, in_hospital)
        what_if = endpoint.score(config, [v for _, _, v in variants], traffic=schema.PROBE)
    except EndpointError as exc:
        st.session_state[SCORE_ERROR_KEY] = exc
        return
    result = scored.results[0]
    shown = {
        "record": record,
        "probability": endpoint.probability_of(result),
        "risk_band": endpoint.risk_band_of(result),
        "interval": result.get("interval"),
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
        **shown["record"],
        "probability": shown["probability"],
        "ci_low": low,
        "ci_high": high,
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
    help="At intake leave this off: the intake model then scores age, sex, case status and conditions only. "
    "Hospitalisation that is not yet known must not be entered as 'Unknown': in CDC data 'Unknown' marks "
    "sicker patients and would about double the risk.",
)
questions = schema.MODEL_INPUTS if in_hospital else schema.MODEL_FEATURES[schema.INTAKE_MODEL]
# Not an st.form: each answer reruns the page, so a result shown under edited answers is marked out of date.
with st.container(border=True):
    st.markdown(
        "**Patient in hospital**"
        if in_hospital
        else "**Patient at intake** — choose *Missing* where nothing is recorded."
    )
    columns = st.columns(3)
    for i, name in enumerate(questions):
        feature = schema.FEATURES_BY_NAME[name]
        options = schema.model_values(schema.IN_HOSPITAL_MODEL, name) if in_hospital else feature.values
        key = FIELD_KEY.format(name)
        default = saved.get(name, feature.default)
        state.seed_widget(key, default if default in options else options[0])
        if st.session_state[key] not in options:  # e.g. "Missing" kept from the intake form
            st.session_state[key] = options[0]
        with columns[i % 3]:
            st.selectbox(feature.label, options, key=key, help=feature.help, format_func=feature.label_of)
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
stale = bool(last) and current != last["record"]
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
        st.html(
            f"<div class='risk-caption'>Probability of death</div>"
            f"<div class='risk-number' data-testid='risk-probability'>{theme.format_risk(probability)}</div>"
            + (
                f"<div class='risk-caption' data-testid='risk-interval'>{theme.format_interval(interval)}</div>"
                if interval
                else ""
            )
            + f"<div>{theme.band_badge(band)} <span class='risk-caption'>risk band</span></div>"
        )
        st.caption(
            f"Scored by the **{schema.MODEL_LABELS.get(last['model'], last['model'])}** · model "
            f"{text.md_code(last['model_version'])} · {last['latency_ms']:.0f} ms"
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
            (f"{schema.FEATURES_BY_NAME[n].label}: {schema.FEATURES_BY_NAME[n].label_of(last['record'].get(n, ''))}", v)
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
                "patient's risk (exact Shapley values of the model's inputs; race/ethnicity is not an input)."
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
        f"**How to read this risk.** Of 1,000 reported cases like this one, about {per_1000:,.0f} "
        f"({theme.format_interval(interval) if interval else 'interval not given'}) ended in death among "
        f"{text.md(period, 500) if period else 'the training data'}. Case fatality fell several-fold after the "
        "first wave: for a later period, check the model card's date and the Monitoring page. It ranks patients "
        "for triage and sizes groups for planning; it is not a diagnosis and does not replace clinical judgement.",
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
