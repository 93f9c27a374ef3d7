"""Patient risk: the lab intake form, scored live by the endpoint."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])  # `streamlit run` puts only the script's folder on sys.path
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import math  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from dashboard.client import EndpointError  # noqa: E402
from dashboard.ui import charts, endpoint, page, state, theme  # noqa: E402
from model import schema  # noqa: E402

FIELD_KEY = "intake.{}"  # widget keys (dropped by Streamlit when another page is shown)
SAVED_INPUT_KEY = "patient.saved_input"  # non-widget copy, so the form survives page switches
RESULT_KEY = "patient.last_result"

ctx = page.setup_page(
    "Patient risk",
    "Enter what the intake form holds; the model on the scoring endpoint returns the calibrated risk of death.",
    icon=":material/person_search:",
    needs_model=False,
)

saved: dict[str, str] = st.session_state.setdefault(SAVED_INPUT_KEY, {})
with st.form("intake_form", border=True):
    st.markdown("**Patient at intake** — choose *Unknown* where the form does not say.")
    columns = st.columns(3)
    for i, name in enumerate(schema.MODEL_INPUTS):
        feature = schema.FEATURES_BY_NAME[name]
        key = FIELD_KEY.format(name)
        state.seed_widget(key, saved.get(name, feature.default))
        with columns[i % 3]:
            st.selectbox(feature.label, feature.values, key=key, help=feature.help, format_func=feature.label_of)
    submitted = st.form_submit_button("Score patient", type="primary", icon=":material/monitor_heart:")

if submitted:
    record = {name: st.session_state[FIELD_KEY.format(name)] for name in schema.MODEL_INPUTS}
    saved.update(record)
    if ctx.endpoint is None:
        st.error(
            f"**Cannot score: the endpoint settings are invalid.** {ctx.endpoint_error}",
            icon=":material/settings_alert:",
        )
        st.session_state[RESULT_KEY] = None
    else:
        try:
            scored = endpoint.score(ctx.endpoint, [record])
        except EndpointError as exc:
            st.error(endpoint.explain_error(exc, ctx.endpoint), icon=":material/cloud_off:")
            st.session_state[RESULT_KEY] = None
        else:
            result = scored.results[0]
            probability = endpoint.probability_of(result)
            threshold = state.get_threshold()
            st.session_state[RESULT_KEY] = {
                "record": record,
                "probability": probability,
                "risk_band": endpoint.risk_band_of(result),
                "model_version": scored.model_version,
                "latency_ms": scored.latency_ms,
            }
            state.add_scored_patient(
                {
                    "scored_at_utc": datetime.now(UTC).isoformat(timespec="seconds"),
                    **record,
                    "probability": probability,
                    "risk_band": endpoint.risk_band_of(result),
                    "threshold": threshold,
                    "flagged": probability >= threshold,
                    "model_version": scored.model_version,
                }
            )
    ctx.refresh_sidebar()  # new latency / endpoint state


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
if last:
    probability = last["probability"]
    band = last["risk_band"]
    threshold = state.get_threshold()
    base_rate = ctx.model.prevalence if ctx.model is not None else math.nan
    age_label = schema.FEATURES_BY_NAME["age_group"].label_of(last["record"]["age_group"])
    age_ref = age_group_reference(last["record"]["age_group"])

    st.subheader("Result")
    left, right = st.columns([1, 2], vertical_alignment="center")
    with left:
        st.html(
            f"<div class='risk-caption'>Probability of death</div>"
            f"<div class='risk-number' data-testid='risk-probability'>{probability:.1%}</div>"
            f"<div>{theme.band_badge(band)} <span class='risk-caption'>risk band</span></div>"
        )
        st.caption(f"Model `{last['model_version']}` · scored in {last['latency_ms']:.0f} ms")
    with right:
        st.plotly_chart(
            charts.risk_scale(
                probability,
                base_rate=base_rate,
                age_group_rate=age_ref[0] if age_ref else None,
                age_group_label=age_label,
                threshold=threshold,
            ),
            config={"displayModeBar": False},
        )

    m1, m2, m3 = st.columns(3)
    if math.isfinite(base_rate) and base_rate > 0:
        m1.metric(
            "× the base rate (all cases)",
            f"{probability / base_rate:.1f}×",
            help=f"Death rate among test cases with a known outcome: {base_rate:.2%}.",
        )
        m1.caption(f"Base rate {base_rate:.2%}")
    else:
        m1.metric("× the base rate (all cases)", "—", help="No model card: base rate unknown.")
    if age_ref and age_ref[0] > 0:
        m2.metric(
            f"× the mean risk at age {age_label}",
            f"{probability / age_ref[0]:.1f}×",
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
            f"The endpoint serves model `{last['model_version']}` but this dashboard's tables describe "
            f"`{ctx.model.version}`: comparisons and threshold statistics may not match this score. "
            "Point `RISK_MODEL_DIR` at the deployed model's directory.",
            icon=":material/warning:",
        )
    st.info(
        "**How to read this risk.** Of 100 reported cases like this one, about "
        f"{probability * 100:.0f} ended in death in the training data. It ranks patients for triage and "
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
