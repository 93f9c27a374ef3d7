"""Threshold explorer: what flagging at a given risk does, from the stored test-split tables."""

import math

import streamlit as st

from dashboard.ui import charts, page, state, thresholds

SLIDER_KEY = "threshold_explorer.slider"
STEP = state.THRESHOLD_STEP

ctx = page.context()
assert ctx.model is not None  # run_app stopped the page otherwise
table = ctx.threshold_table()
prevalence = ctx.model.prevalence


def _use(value: float) -> None:
    # state.set_threshold floors to the slider's step: flags at least as many patients, so a preset holds.
    state.set_threshold(value)
    st.session_state[SLIDER_KEY] = state.get_threshold()


def _slid() -> None:
    """The slider's callback: the shared threshold changes before the rerun, so the sidebar shows it at once."""
    state.set_threshold(st.session_state[SLIDER_KEY])


state.seed_widget(SLIDER_KEY, state.get_threshold())
st.caption(
    "Thresholds apply to the high end of each patient's risk range: the risk among cases whose outcome was "
    "recorded (the test split's patients with a recorded outcome, as in every figure on this page)."
)
st.markdown("**Presets**")
preset_columns = st.columns(len(thresholds.presets(table)))
for column, (label, value) in zip(preset_columns, thresholds.presets(table).items(), strict=True):
    column.button(
        label, on_click=_use, args=(value,), key=f"preset.{label}", width="stretch", help=f"threshold {value:.4f}"
    )
chosen = st.slider(
    "Operating threshold (flag when predicted risk ≥ threshold)",
    min_value=0.0,
    max_value=1.0,
    step=STEP,
    format="%.4f",
    key=SLIDER_KEY,
    on_change=_slid,
)
point = thresholds.operating_point(table, chosen)

c = st.columns(6)
c[0].metric("Recall", f"{point.recall:.3f}", help="Share of deaths the flag catches (sensitivity).")
c[1].metric(
    "Precision",
    "—" if math.isnan(point.precision) else f"{point.precision:.3f}",
    help="Share of flagged patients who died (positive predictive value).",
)
c[2].metric("Specificity", f"{point.specificity:.3f}", help="Share of survivors not flagged.")
c[3].metric("F1", f"{point.f1:.3f}", help="Harmonic mean of precision and recall.")
c[4].metric("Flagged /1k", f"{point.flagged_per_1000:,.1f}", help="Patients flagged per 1,000 cases.")
c[5].metric(
    "Deaths missed /1k", f"{point.deaths_missed_per_1000:,.2f}", help="Deaths among unflagged patients per 1,000 cases."
)
st.caption(
    f"Of 1,000 cases like the test set (death rate {prevalence:.2%}), flagging at risk ≥ {chosen:.3f} flags "
    f"{point.flagged_per_1000:,.0f}, catches {1000 * point.tp / point.patients:,.1f} of "
    f"{1000 * (point.tp + point.fn) / point.patients:,.1f} deaths and misses {point.deaths_missed_per_1000:,.1f}."
)

left, right = st.columns(2)
with left:
    st.plotly_chart(charts.roc_curve(ctx.model.table("roc"), point), config={"displayModeBar": False})
with right:
    st.plotly_chart(charts.pr_curve(ctx.model.table("pr"), point, prevalence), config={"displayModeBar": False})
left, right = st.columns([2, 3])
with left:
    st.plotly_chart(charts.confusion_matrix(point), config={"displayModeBar": False})
with right:
    st.plotly_chart(
        charts.decision_curve(table, point, prevalence, max_threshold=min(1.0, max(0.3, 1.5 * chosen))),
        config={"displayModeBar": False},
    )
with st.expander("How to read these charts"):
    st.markdown(
        "- **ROC / PR**: the red marker is the chosen threshold. PR matters more here: deaths are rare, so "
        "a random ranking's precision equals the death rate.\n"
        "- **Decision curve**: net benefit counts deaths caught per patient minus false alarms weighted by "
        "the odds of the threshold; a threshold is worth using where the model's curve lies above both "
        "*flag everybody* and *flag nobody*.\n"
        "- All figures come from the held-out test split stored with the model; the threshold you set "
        "here is used by the Patient risk and ICU pages."
    )
