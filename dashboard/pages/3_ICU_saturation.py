"""ICU saturation: beds the flagged patients need, and the recall at which the ICU is full."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])  # `streamlit run` puts only the script's folder on sys.path
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from dashboard.ui import charts, icu, page, state, thresholds  # noqa: E402

KEYS = {  # widget keys; the values themselves persist in state.get_icu_assumptions()
    "cases_per_day": "icu.cases_per_day",
    "icu_beds": "icu.icu_beds",
    "los_days": "icu.los_days",
    "icu_share": "icu.icu_share",
}

ctx = page.setup_page(
    "ICU saturation",
    "How many ICU beds do the patients we flag occupy, and at what recall does the ICU fill up?",
    icon=":material/bed:",
)
assert ctx.model is not None  # setup_page stopped the page otherwise
table = ctx.threshold_table()
prevalence = ctx.model.prevalence

current = state.get_icu_assumptions()
for field, key in KEYS.items():
    state.seed_widget(key, float(getattr(current, field)))

inputs, results = st.columns([1, 2], gap="large")
with inputs:
    st.markdown("**Planning assumptions**")
    st.number_input(
        "New COVID-19 cases per day",
        min_value=0.0,
        step=10.0,
        format="%.0f",
        key=KEYS["cases_per_day"],
        help="Reported cases reaching this hospital's catchment per day.",
    )
    st.number_input("ICU beds available for COVID-19", min_value=0.0, step=1.0, format="%.0f", key=KEYS["icu_beds"])
    st.number_input("Average ICU length of stay (days)", min_value=0.5, step=0.5, format="%.1f", key=KEYS["los_days"])
    st.slider(
        "Share of flagged patients who need an ICU bed",
        min_value=0.0,
        max_value=1.0,
        step=0.01,
        key=KEYS["icu_share"],
        format="%.2f",
    )
try:
    assumptions = icu.IcuAssumptions(**{field: float(st.session_state[key]) for field, key in KEYS.items()})
except ValueError as exc:
    with results:
        st.error(f"**Check the assumptions:** {exc}.")
    st.stop()
state.set_icu_assumptions(assumptions)

threshold = state.get_threshold()
point = thresholds.operating_point(table, threshold)
beds_now = icu.beds_at(point.flagged_share, assumptions)
deaths_missed_now = icu.deaths_missed_per_day(assumptions.cases_per_day, prevalence, point.recall)
curve = icu.capacity_curve(table, assumptions, prevalence)
sat = icu.saturation(table, assumptions, prevalence)

with results:
    a, b, c, d = st.columns(4)
    a.metric(
        "Beds needed",
        f"{beds_now:,.1f}",
        help="Steady state (Little's law): cases/day × flagged share × ICU share × length of stay.",
    )
    occupancy = beds_now / assumptions.icu_beds if assumptions.icu_beds else float("inf")
    b.metric("Occupancy", f"{occupancy:.0%}" if assumptions.icu_beds else "no beds")
    c.metric("Recall", f"{point.recall:.3f}")
    d.metric("Missed deaths/day", f"{deaths_missed_now:,.2f}")
    st.caption(f"At operating threshold {threshold:.3f} (flag = risk ≥ threshold; set on the Threshold explorer).")
    if sat.status == "never_saturates":
        st.success(
            f"**The ICU never saturates:** flagging even at the highest recall ({sat.recall:.3f}) needs "
            f"{sat.beds_needed:,.1f} of {assumptions.icu_beds:,.0f} beds."
        )
        saturation_recall = None
    elif sat.status == "saturated_always":
        st.error(
            f"**Saturated even at the lowest recall:** flagging only the riskiest patients (recall "
            f"{sat.recall:.3f}) already needs {sat.beds_needed:,.1f} beds for {assumptions.icu_beds:,.0f}. "
            "More beds, shorter stays or a smaller ICU share are needed."
        )
        saturation_recall = None
    else:
        st.warning(
            f"**The ICU saturates above recall {sat.recall:.3f}** (threshold {sat.threshold:.4f}): there "
            f"the flagged patients fill {sat.beds_needed:,.1f} of {assumptions.icu_beds:,.0f} beds, and "
            f"about **{sat.deaths_missed_per_day:,.2f} deaths per day** are among the patients not flagged."
        )
        saturation_recall = sat.recall
    st.plotly_chart(
        charts.icu_capacity(curve, assumptions.icu_beds, point.recall, beds_now, saturation_recall),
        config={"displayModeBar": False},
    )
    if sat.status != "saturated_always" and abs(sat.threshold - threshold) > 1e-12:
        st.button(
            f"Use the saturation threshold ({sat.threshold:.4f}) as operating threshold",
            on_click=state.set_threshold,
            args=(sat.threshold,),
            key="icu.use_saturation",
        )

with st.expander("Assumptions behind these numbers", expanded=True):
    st.markdown(
        f"""
- **Steady state (Little's law):** occupied beds = admissions per day × average stay. Admissions per day =
  new cases per day × share of cases the model flags at the threshold × share of flagged patients needing ICU.
  Surges, discharges that differ from the average, and the time to reach steady state are not modelled.
- **Flagged share and recall** come from the held-out test split stored with the model (death rate
  {prevalence:.2%}): the case mix arriving at your hospital is assumed to look like it.
- **Only flagged patients go to the ICU**; unflagged patients who die are counted as *deaths missed*:
  cases per day × death rate × (1 − recall).
- **Operating threshold** {threshold:.3f} is shared with the Threshold explorer and Patient risk pages.
- Inputs now: {assumptions.cases_per_day:,.0f} cases/day, {assumptions.icu_beds:,.0f} beds,
  {assumptions.los_days:.1f} days average stay, {assumptions.icu_share:.0%} of flagged patients need ICU.
"""
    )
