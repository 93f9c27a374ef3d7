"""ICU saturation: when the ICU fills with the patients we flag, how sure that is, and what the threshold changes."""

import streamlit as st

from dashboard.ui import charts, icu, page, state
from model import capacity

KEYS = {  # widget keys; the values themselves persist in state.get_icu_assumptions()
    "cases_per_day": "icu.cases_per_day",
    "growth": "icu.growth",
    "growth_days": "icu.growth_days",
    "icu_beds": "icu.icu_beds",
    "census": "icu.census",
    "los_days": "icu.los_days",
    "los_shape": "icu.los_shape",
    "delay_days": "icu.delay_days",
    "horizon_days": "icu.horizon_days",
    "use_constant_share": "icu.use_constant_share",
    "icu_share": "icu.icu_share",
}

ctx = page.context()
assert ctx.model is not None  # run_app stopped the page otherwise
ctx.threshold_table()  # stops the page with the house message when thresholds.csv is unusable
prevalence = ctx.model.prevalence

icu_table = icu.model_icu_table(ctx.model.directory)
current = state.get_icu_assumptions()
for field, key in KEYS.items():
    state.seed_widget(key, getattr(current, field))


def _note(text: str) -> None:
    st.caption(text)


inputs, results = st.columns([1, 2], gap="large")
with inputs:
    st.markdown("**Planning assumptions** (each one is stated under its input)")
    st.number_input(
        "New COVID-19 cases per day, today",
        min_value=0.0,
        max_value=capacity.MAX_CASES_PER_DAY,
        step=10.0,
        format="%.0f",
        key=KEYS["cases_per_day"],
    )
    _note(
        "Reported cases reaching this hospital's catchment. Their mix of ages, sexes and conditions is assumed "
        "to match the model's test split."
    )
    g1, g2 = st.columns(2)
    g1.selectbox("Case growth", icu.GROWTH_MODES, key=KEYS["growth"])
    g2.number_input(
        "Doubling or halving time (days)",
        min_value=0.5,
        max_value=365.0,
        step=1.0,
        format="%.1f",
        key=KEYS["growth_days"],
        disabled=st.session_state[KEYS["growth"]] == "flat",
    )
    _note(
        "Cases change by the same factor every day (exponential growth), and did so before today; no immunity, "
        "interventions or seasonality are modelled. Keep long horizons for flat or slow growth."
    )
    b1, b2 = st.columns(2)
    b1.number_input(
        "ICU beds available for COVID-19",
        min_value=0.0,
        max_value=float(capacity.MAX_BEDS),
        step=1.0,
        format="%.0f",
        key=KEYS["icu_beds"],
    )
    b2.number_input(
        "COVID-19 patients in the ICU today",
        min_value=0.0,
        max_value=float(10 * capacity.MAX_BEDS),
        step=1.0,
        format="%.0f",
        key=KEYS["census"],
    )
    _note(
        "Staffed beds. The census counts today's patients and the flagged patients admitted from today on; "
        "today's patients leave at the pace the stay distribution implies for someone already in the ICU."
    )
    s1, s2 = st.columns(2)
    s1.number_input(
        "Average ICU stay (days)", min_value=0.5, max_value=365.0, step=0.5, format="%.1f", key=KEYS["los_days"]
    )
    s2.number_input("Stay shape k", min_value=0.5, max_value=20.0, step=0.5, format="%.1f", key=KEYS["los_shape"])
    _note(
        "Stays follow a gamma distribution with this mean and shape: k = 1 is exponential (many short stays and "
        "a long tail), larger k keeps stays closer to the average."
    )
    d1, d2 = st.columns(2)
    d1.number_input(
        "Days from case report to ICU", min_value=0.0, max_value=60.0, step=1.0, format="%.0f", key=KEYS["delay_days"]
    )
    d2.number_input("Horizon (days)", min_value=1, max_value=capacity.MAX_DAYS, step=1, key=KEYS["horizon_days"])
    _note(
        "A flagged case is admitted this many days after it is reported; admissions arrive evenly over the day "
        "and the census is counted at the end of each day. Day 0 is today."
    )
    if icu_table is not None:  # without the model's table the constant share is all there is
        st.toggle("Use a constant ICU share instead of the model's ICU rates", key=KEYS["use_constant_share"])
    st.slider(
        "Share of flagged patients who need an ICU bed",
        min_value=0.0,
        max_value=1.0,
        step=0.01,
        format="%.2f",
        key=KEYS["icu_share"],
        help="Used when the constant share is switched on, or when the model has no ICU table.",
    )
    need_note = st.empty()

try:
    assumptions = icu.IcuAssumptions(**{field: st.session_state[key] for field, key in KEYS.items()})
    scenario = assumptions.scenario()
except (ValueError, TypeError) as exc:
    with results:
        st.error(f"**Check the assumptions:** {exc}.", icon=":material/error:")
    st.stop()
state.set_icu_assumptions(assumptions)

try:
    need = icu.need_source(ctx.model.directory, ctx.model.card, assumptions)
except (ValueError, OSError) as exc:  # a stored table is unusable (CapacityInputError says which and how to fix)
    with results:
        st.error(f"**The model's tables cannot be used:** {exc}.", icon=":material/error:")
    st.stop()
with need_note.container():
    st.caption(need.description)
threshold = state.get_threshold()
now = capacity.need_at(need.table, threshold)
projection = capacity.project(scenario, now)
fit = capacity.threshold_that_fits(scenario, need.table)
beds, horizon = scenario.beds, scenario.days

with results:
    st.caption(
        f"At operating threshold {threshold:.3f} (flag = risk ≥ threshold; set on the Threshold explorer): "
        f"{now.flagged_share:.1%} of cases flagged, recall {now.recall:.3f}."
    )
    timeline, steady = st.tabs(["Census over time", "Steady state: beds vs recall"])

with timeline:
    peak = projection.peak_census
    a, b = st.columns(2)
    c, d = st.columns(2)
    a.metric(
        f"First day over capacity in {horizon} days",
        icu.day_text(projection.saturation_day),
        help="First day the expected census exceeds the beds (day 0 is today).",
    )
    value, delta = icu.occupancy(peak, beds)
    b.metric(
        "Peak occupancy",
        value,
        delta,
        delta_color="inverse" if delta else "off",
        help=f"Highest expected census within {horizon} days: {peak:,.1f} patients.",
    )
    c.metric(
        "P(no free bed) at today's case rate",
        icu.share_text(projection.erlang_b),
        help=f"Erlang loss formula (Erlang-B): offered load λ·W = {projection.steady_state_census:,.1f} patients "
        f"(today's flagged ICU admissions per day × average stay) on {beds:,.0f} beds. "
        f"Beds needed for at most 1%: {capacity.beds_for_blocking(projection.steady_state_census, 0.01):,}.",
    )
    total_missed = float(projection.days["deaths_missed"].sum())
    missed_today = float(projection.days["deaths_missed"].iloc[0])
    d.metric(
        f"Deaths missed in {horizon} days",
        f"{total_missed:,.1f}",
        help=f"Deaths among cases the threshold does not flag: {missed_today:,.2f} per day today, cumulated over "
        "the horizon with the case growth.",
    )

    if beds <= 0:
        st.error(
            "**No ICU beds entered:** every flagged patient admitted to the ICU overflows. Enter the staffed "
            "ICU beds available for COVID-19 to see when they fill."
        )
    elif projection.saturation_day is not None:
        st.warning(
            f"**The ICU is full on day {projection.saturation_day}:** the expected census of flagged patients passes "
            f"{beds:,.0f} beds and peaks at {peak:,.0f} (overflow {max(peak - beds, 0):,.0f} patients without a bed). "
            + icu.band_days(projection.band, horizon)
        )
    else:
        st.success(
            f"**The expected census stays within {beds:,.0f} beds for {horizon} days** (peak {peak:,.1f}). "
            + icu.band_days(projection.band, horizon)
        )

    fit_days, fit_label = None, ""
    if beds > 0 and fit.need is not None and not icu.is_same_row(fit.need, now):
        fit_projection = capacity.project(scenario, fit.need, band=False)
        fit_days = fit_projection.days
        fit_label = (
            f"lowest stored threshold, still fits ({fit.need.threshold:.4f}, recall {fit.need.recall:.2f})"
            if fit.status == "fits_all"
            else f"threshold that just fits ({fit.need.threshold:.4f}, recall {fit.need.recall:.2f})"
        )
    st.plotly_chart(
        charts.icu_census_timeline(
            projection.days,
            beds,
            now_label=f"current threshold ({threshold:.3f}, recall {now.recall:.2f})",
            fit=fit_days,
            fit_label=fit_label,
            saturation_day=projection.saturation_day,
        ),
        config={"displayModeBar": False},
    )
    if projection.band is not None:
        st.caption(f"Band: 5th to 95th percentile of the census per day over {projection.band.description}.")
    if beds > 0:
        kind, text, offer = icu.fit_message(fit, now, beds, horizon)
        getattr(st, kind)(text)
        if offer and fit.need is not None:
            st.button(
                f"Use the threshold that just fits ({fit.need.threshold:.4f}) as operating threshold",
                on_click=state.set_threshold,
                args=(fit.need.threshold,),
                kwargs={"round_up": True},  # on the slider's grid, flagging no one more: it still fits
                key="icu.use_fitting",
            )
    st.markdown(
        f"**Deaths missed:** {icu.deaths_text(total_missed, missed_today, horizon)}, among patients the "
        "threshold does not flag."
    )
    st.caption(capacity.death_rate_note(now, capacity.known_outcome_share(ctx.model.card)))
    st.dataframe(icu.days_table(projection), hide_index=True, height=280)
    st.download_button(
        "Download the projection as CSV",
        lambda: icu.projection_csv(projection),  # built on click, not on every rerun
        file_name=f"icu_projection_threshold_{threshold:.3f}.csv",
        mime="text/csv",
        key="icu.download",
        on_click="ignore",
    )

with steady:
    per_day = scenario.cases_per_day
    curve = capacity.steady_state_curve(need.table, per_day, scenario.los_days, beds)
    sat = capacity.steady_state_saturation(curve)
    beds_now = per_day * now.icu_per_case_flagged * scenario.los_days
    st.caption(
        f"If today's {per_day:,.0f} cases a day held for good (no growth): beds occupied by flagged patients at "
        "every threshold, by Little's law (admissions per day × average stay)."
    )
    a, b = st.columns(2)
    c, d = st.columns(2)
    a.metric(
        "Beds needed",
        f"{beds_now:,.1f}",
        help="Steady state (Little's law) at today's case rate: cases/day × ICU admissions among flagged "
        "patients per case × average stay.",
    )
    value, delta = icu.occupancy(beds_now, beds)
    b.metric("Occupancy", value, delta, delta_color="inverse" if delta else "off")
    c.metric("Recall", f"{now.recall:.3f}")
    d.metric("Missed deaths/day", f"{per_day * now.missed_deaths_per_case:,.2f}")
    saturation_recall = None
    if beds <= 0:
        st.error("**No ICU beds entered:** any flagged ICU admission overflows. Enter the staffed ICU beds.")
    elif sat.status == "never_saturates":
        st.success(
            f"**In steady state the ICU never saturates:** flagging even at the highest recall "
            f"({sat.recall:.3f}) needs {sat.beds_needed:,.1f} of {beds:,.0f} beds."
        )
    elif sat.status == "saturated_always":
        st.error(
            f"**Saturated even at the lowest recall:** flagging only the riskiest patients (recall "
            f"{sat.recall:.3f}) already needs {sat.beds_needed:,.1f} beds, more than the {beds:,.0f} "
            "available. More beds, shorter stays or fewer ICU admissions are needed."
        )
    else:
        st.warning(
            f"**The ICU saturates above recall {sat.recall:.3f}** (threshold {sat.threshold:.4f}): there "
            f"the flagged patients fill {sat.beds_needed:,.1f} of {beds:,.0f} beds, and about "
            f"**{sat.deaths_missed_per_day:,.2f} deaths per day** are among the patients not flagged."
        )
        saturation_recall = sat.recall
    st.plotly_chart(
        charts.icu_capacity(curve, beds, now.recall, beds_now, saturation_recall), config={"displayModeBar": False}
    )
    if beds > 0 and sat.status != "saturated_always" and abs(sat.threshold - threshold) > 1e-12:
        st.button(
            f"Use the saturation threshold ({sat.threshold:.4f}) as operating threshold",
            on_click=state.set_threshold,
            args=(sat.threshold,),
            kwargs={"round_up": True},
            key="icu.use_saturation",
        )

with st.expander("Assumptions behind these numbers", expanded=False):
    st.markdown(
        f"""
- **Who is counted:** the census holds today's ICU patients and the ICU admissions among *flagged* patients,
  the patients this plan reserves beds for. ICU admissions among unflagged patients are listed in the table,
  not added to the census.
- **ICU need:** {need.description}
- **Flagged share and recall** come from the held-out test split stored with the model (death rate
  {prevalence:.2%} among known outcomes); the cases arriving here are assumed to look like it.
- **Census over time:** admissions (cases × ICU admissions per case, {scenario.delay_days:g} days after report)
  convolved with the survival function of a gamma stay (mean {scenario.los_days:g} days, shape
  {scenario.los_shape:g}). With flat cases it converges to admissions/day × average stay (Little's law).
- **Band:** 5th–95th percentile of simulated census paths with Poisson admissions and sampled stays; a seed keeps
  it the same on every rerun. It shows chance, not uncertainty in the inputs.
- **P(no free bed):** Erlang loss formula at today's case rate held constant; it depends on the stay only
  through its mean.
- **Deaths missed:** cases reported per day × deaths among unflagged patients per case (known-outcome rate).
- **Operating threshold** {threshold:.3f} is shared with the Threshold explorer and Patient risk pages.
"""
    )
