"""ICU saturation: when the ICU fills with everyone who needs a bed, how sure that is, and what the threshold costs."""

from dataclasses import dataclass
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard.ui import charts, icu, page, state
from dashboard.ui.artifacts import ModelArtifact
from model.planning import capacity

KEYS = {  # widget keys; the values themselves persist in state.get_icu_assumptions()
    "cases_per_day": "icu.cases_per_day",
    "growth": "icu.growth",
    "growth_days": "icu.growth_days",
    "population": "icu.population",
    "reported_share": "icu.reported_share",
    "icu_beds": "icu.icu_beds",
    "census": "icu.census",
    "los_days": "icu.los_days",
    "los_shape": "icu.los_shape",
    "delay_days": "icu.delay_days",
    "horizon_days": "icu.horizon_days",
    "icu_end": "icu.icu_end",
    "icu_per_case": "icu.icu_per_case",
    "icu_in_band": "icu.icu_in_band",
    "los_spread": "icu.los_spread",
    "growth_spread": "icu.growth_spread",
    "follow_days": "icu.follow_days",
    "surveillance_capacity": "icu.surveillance_capacity",
}

# Which end of each patient's risk range (issue 19) the threshold is applied to, as on the Threshold explorer.
THRESHOLD_END = (
    "The threshold applies to the high end of each patient's risk range: the risk among cases whose outcome was "
    "recorded (as on the Threshold explorer); flagged shares and recall come from the test split."
)


@dataclass(frozen=True)
class Plan:
    """One run's projection and what it was computed from: the inputs, the ICU need and the threshold."""

    scenario: capacity.Scenario
    team: capacity.Surveillance
    source: icu.NeedSource
    threshold: float
    now: capacity.Need
    uncertainty: capacity.Uncertainty
    projection: capacity.Projection

    @property
    def last(self) -> int:
        """The last day the inputs support (the horizon unless the census runs away)."""
        return self.projection.supported_until


def render() -> None:
    """The page: the planner's inputs on the left; the census over time and the threshold's cost on the right."""
    ctx = page.context()
    assert ctx.model is not None  # run_app stopped the page otherwise
    ctx.threshold_table()  # stops the page with the house message when thresholds.csv is unusable
    _seed_inputs()
    inputs, results = st.columns([1, 2], gap="large")
    with inputs:
        need_note = _inputs_column(icu.has_icu_table(ctx.model.directory))
    plan = _plan(ctx.model, results)
    with need_note.container():
        st.caption(plan.source.description)
    with results:
        st.caption(
            f"At operating threshold {plan.threshold:.3f} (flag = risk ≥ threshold; set on the Threshold explorer): "
            f"{plan.now.case_flagged_share:.1%} of reported cases flagged, recall {plan.now.recall:.3f}. The ICU "
            "census counts everyone who needs a bed, flagged or not: the threshold does not change it."
        )
        st.caption(THRESHOLD_END)
        timeline, trade_off = st.tabs(["ICU census over time", "Threshold: surveillance vs deaths missed"])
    with timeline:
        _timeline(plan)
    with trade_off:
        _trade_off(plan, ctx.model.card)
    _assumptions_note(plan, ctx.model.prevalence)


def _seed_inputs() -> None:
    """Give every input widget the shared scenario's value (Streamlit drops widget keys on other pages)."""
    current = state.get_icu_assumptions()
    for field, key in KEYS.items():
        state.seed_widget(key, getattr(current, field))


def _note(text: str) -> None:
    """The assumption an input stands for, stated under it."""
    st.caption(text)


def _number(label: str, key: str, low: float, high: float, step: float, fmt: str = "%.0f") -> None:
    """A number input bound to one field of the scenario (`key`: the field's name in KEYS)."""
    st.number_input(label, min_value=low, max_value=high, step=step, format=fmt, key=KEYS[key])


def _growth_inputs() -> None:
    """Growth mode, and only the inputs that mode uses (a doubling time unless flat; population for SIR)."""
    mode = st.selectbox(
        "Case growth", icu.GROWTH_MODES, format_func=lambda m: icu.GROWTH_LABELS.get(m, m), key=KEYS["growth"]
    )
    if mode != "flat":
        _number("Doubling or halving time (days)", "growth_days", 0.5, 365.0, 1.0, "%.1f")
    if mode == "sir":
        p1, p2 = st.columns(2)
        with p1:
            _number("Population that can be infected", "population", 1.0, capacity.MAX_POPULATION, 10_000.0)
        with p2:
            _number("Share of infections reported", "reported_share", 0.001, 1.0, 0.01, "%.3f")
        _note(
            "SIR as in Penn Medicine's CHIME: infections grow at the doubling time today and slow as susceptibles "
            f"run out; a person is infectious {capacity.DEFAULT_INFECTIOUS_DAYS:g} days. US serosurveys of spring "
            "2020 found several infections per reported case, hence a reported share well below 1."
        )
    else:
        _note(
            "Cases change by the same factor every day (exponential growth), and did so before today; no "
            "immunity, interventions or seasonality. For long horizons choose the SIR curve."
        )


def _bed_inputs() -> None:
    b1, b2 = st.columns(2)
    with b1:
        _number("ICU beds available for COVID-19", "icu_beds", 0.0, float(capacity.MAX_BEDS), 1.0)
    with b2:
        _number("COVID-19 patients in the ICU today", "census", 0.0, float(10 * capacity.MAX_BEDS), 1.0)
    _note("Staffed beds. The census counts today's patients and everyone admitted from today on, flagged or not.")
    s1, s2 = st.columns(2)
    with s1:
        _number("Average ICU stay (days)", "los_days", 0.5, 365.0, 0.5, "%.1f")
    with s2:
        _number("Stay shape k", "los_shape", 0.5, 20.0, 0.5, "%.1f")
    _note(
        "Stays follow a gamma distribution with this mean and shape: k = 1 is exponential (many short stays and "
        "a long tail), larger k keeps stays closer to the average."
    )
    d1, d2 = st.columns(2)
    with d1:
        _number("Days from case report to ICU", "delay_days", 0.0, 60.0, 1.0)
    with d2:
        st.number_input("Horizon (days)", min_value=1, max_value=capacity.MAX_DAYS, step=1, key=KEYS["horizon_days"])
    _note(
        "A case is admitted this many days after it is reported; admissions arrive evenly over the day and the "
        "census is counted at the end of each day. Day 0 is today."
    )


def _icu_inputs(has_table: bool) -> None:
    """Which end of ICU admissions per reported case (or, without the model's table, a share to enter)."""
    if has_table:
        st.radio(
            "ICU admissions per reported case",
            icu.ICU_ENDS,
            format_func=lambda end: f"{end} end: {capacity.ICU_ENDS[end]}",
            key=KEYS["icu_end"],
        )
        st.toggle("Band: draw ICU admissions per case between the two ends", key=KEYS["icu_in_band"])
    else:
        _number("ICU admissions per reported case", "icu_per_case", 0.0, 1.0, 0.005, "%.3f")
    u1, u2 = st.columns(2)
    with u1:
        st.slider("Band: average stay ± share", 0.0, 0.9, step=0.05, format="%.2f", key=KEYS["los_spread"])
    with u2:
        st.slider("Band: growth rate ± % per day", 0.0, 5.0, step=0.1, format="%.1f", key=KEYS["growth_spread"])
    _note("Each run of the band draws these uniformly and independently, then Poisson admissions and gamma stays.")


def _surveillance_inputs() -> None:
    f1, f2 = st.columns(2)
    with f1:
        st.number_input("Days a flagged case is followed", min_value=1, max_value=365, step=1, key=KEYS["follow_days"])
    with f2:
        _number("Patients the team can follow at once", "surveillance_capacity", 0.0, 1e9, 10.0)
    _note("Flagged cases are followed from their report; this is the work the threshold creates.")


def _inputs_column(has_table: bool) -> DeltaGenerator:
    """Every planning input with its stated assumption; returns the placeholder for where the ICU need comes from."""
    st.markdown("**Planning assumptions** (each one is stated under its input)")
    _number("New COVID-19 cases per day, today", "cases_per_day", 0.0, capacity.MAX_CASES_PER_DAY, 10.0)
    _note(
        "Reported cases reaching this hospital's catchment. Their mix of ages, sexes and conditions is assumed "
        "to match the model's test split."
    )
    _growth_inputs()
    _bed_inputs()
    _icu_inputs(has_table)
    need_note = st.empty()
    _surveillance_inputs()
    return need_note


def _plan(model: ModelArtifact, results: DeltaGenerator) -> Plan:
    """The inputs as a valid scenario, its ICU need and its projection; stops with a message in `results` if the
    inputs or the model's tables cannot be used."""
    try:
        assumptions = icu.IcuAssumptions(**{field: st.session_state[key] for field, key in KEYS.items()})
        scenario, team = assumptions.scenario(), assumptions.surveillance()
    except (ValueError, TypeError) as exc:
        with results:
            st.error(f"**Check the assumptions:** {exc}.", icon=":material/error:")
        st.stop()
    state.set_icu_assumptions(assumptions)
    try:
        source = icu.need_source(model.directory, model.card, assumptions)
    except (ValueError, OSError) as exc:  # a stored table is unusable (CapacityInputError says which and how to fix)
        with results:
            st.error(f"**The model's tables cannot be used:** {exc}.", icon=":material/error:")
        st.stop()
    threshold = state.get_threshold()
    now = capacity.need_at(source.table, threshold)
    uncertainty = assumptions.uncertainty(source.need.ends)
    projection = capacity.project(scenario, now, surveillance=team, uncertainty=uncertainty)
    return Plan(scenario, team, source, threshold, now, uncertainty, projection)


def _timeline(plan: Plan) -> None:
    """The census tab: four figures, the verdict on capacity, the census chart and the days table."""
    projection = plan.projection
    if projection.unsupported_reason:
        st.warning(f"**Beyond what the inputs support:** {projection.unsupported_reason}.")
    _timeline_metrics(plan)
    _capacity_verdict(plan)
    st.plotly_chart(
        charts.icu_census_timeline(
            projection.shown,
            plan.scenario.beds,
            label=f"everyone ({plan.source.need.end or 'constant'} ICU rate, {plan.now.icu_per_case:.2%} of cases)",
            saturation_day=projection.saturation_day,
        ),
        config={"displayModeBar": False},
    )
    if projection.band is not None:
        st.caption(f"Band: 5th to 95th percentile of the census per day. {projection.band.description}")
    st.dataframe(icu.days_table(projection), hide_index=True, height=280)
    st.download_button(
        "Download the projection as CSV",
        lambda: icu.projection_csv(projection),  # built on click, not on every rerun
        file_name=f"icu_projection_threshold_{plan.threshold:.3f}.csv",
        mime="text/csv",
        key="icu.download",
        on_click="ignore",
    )


def _timeline_metrics(plan: Plan) -> None:
    """First day over capacity, peak occupancy, P(no free bed) and today's ICU admissions."""
    projection, beds, horizon = plan.projection, plan.scenario.beds, plan.scenario.days
    peak, last = projection.peak_census, plan.last
    a, b = st.columns(2)
    c, d = st.columns(2)
    a.metric(
        f"First day over capacity in {last} days" if last < horizon else f"First day over capacity in {horizon} days",
        icu.day_text(projection.saturation_day),
        help="First day the expected census exceeds the beds (day 0 is today).",
    )
    value, delta = icu.occupancy(peak, beds)
    b.metric(
        "Peak occupancy",
        value,
        delta,
        delta_color="inverse" if delta else "off",
        help=f"Highest expected census within the days shown: {peak:,.1f} patients.",
    )
    c.metric(
        "P(no free bed) at today's case rate",
        icu.share_text(projection.erlang_b),
        help=f"Erlang loss formula (Erlang-B): offered load λ·W = {projection.steady_state_census:,.1f} patients "
        f"(today's ICU admissions per day × average stay) on {beds:,.0f} beds. "
        f"Beds needed for at most 1%: {capacity.beds_text(projection.beds_for_1pct)}.",
    )
    today = projection.shown.iloc[0]
    d.metric(
        "ICU admissions today",
        f"{today['admissions'] + today['admissions_unflagged']:,.1f}",
        help=f"{plan.now.icu_per_case:.2%} of reported cases; {today['admissions']:,.1f} of them among flagged "
        "patients.",
    )


def _capacity_verdict(plan: Plan) -> None:
    """No beds entered, the day the ICU fills, or that it does not fill within the days shown."""
    projection, beds, horizon = plan.projection, plan.scenario.beds, plan.scenario.days
    peak = projection.peak_census
    if beds <= 0:
        st.error(
            "**No ICU beds entered:** every patient admitted to the ICU overflows. Enter the staffed ICU beds "
            "available for COVID-19 to see when they fill."
        )
    elif projection.saturation_day is not None:
        st.warning(
            f"**The ICU is full on day {projection.saturation_day}:** the expected census passes {beds:,.0f} beds "
            f"and peaks at {peak:,.0f} (overflow {max(peak - beds, 0):,.0f} patients without a bed). "
            + icu.band_days(projection.band, horizon)
        )
    else:
        st.success(
            f"**The expected census stays within {beds:,.0f} beds for {plan.last} days** (peak {peak:,.1f}). "
            + icu.band_days(projection.band, horizon)
        )


def _trade_off(plan: Plan, card: dict[str, Any]) -> None:
    """The threshold tab: surveillance load against deaths missed, and the threshold that fits the team."""
    shown, total_missed = plan.projection.shown, float(plan.projection.shown["deaths_missed"].sum())
    _trade_off_metrics(plan, total_missed)
    _fitting_threshold(plan)
    _surveillance_chart(plan)
    st.markdown(
        f"**Deaths missed:** {icu.deaths_text(total_missed, float(shown['deaths_missed'].iloc[0]), plan.last)}, "
        "among patients the threshold does not flag."
    )
    st.caption(capacity.death_rate_note(plan.now, capacity.known_outcome_share(card)))


def _trade_off_metrics(plan: Plan, total_missed: float) -> None:
    """Recall, flagged patients followed at the peak, the team's occupancy and deaths missed."""
    now, team, projection = plan.now, plan.team, plan.projection
    a, b = st.columns(2)
    c, d = st.columns(2)
    a.metric("Recall", f"{now.recall:.3f}", help="Share of deaths among the flagged patients (test split).")
    b.metric(
        "Flagged patients followed, peak",
        f"{projection.peak_surveillance:,.0f}",
        help=f"{now.case_flagged_share:.1%} of reported cases × the cases of the last {team.follow_days} days.",
    )
    value, delta = icu.occupancy(projection.peak_surveillance, team.capacity)
    c.metric("Surveillance team", value.replace("beds", "places"), delta and delta.replace("bed", "place"))
    d.metric(f"Deaths missed in {plan.last} days", f"{total_missed:,.1f}")


def _fitting_threshold(plan: Plan) -> None:
    """Whether the team can follow everyone flagged, and a button for the threshold that fits it."""
    fit = capacity.surveillance_fit(plan.scenario, plan.team, plan.source.table)
    kind, message, offer = icu.fit_message(fit, plan.now, plan.team, plan.scenario.days)
    getattr(st, kind)(message)
    if offer and fit.need is not None:
        st.button(
            f"Use the threshold that fits the team ({fit.need.threshold:.4f}) as operating threshold",
            on_click=state.set_threshold,
            args=(fit.need.threshold,),
            kwargs={"round_up": True},  # on the slider's grid, flagging no one more: it still fits
            key="icu.use_fitting",
        )


def _surveillance_chart(plan: Plan) -> None:
    """Patients followed at every threshold in the steady state, against the team's capacity."""
    per_day, team, now = plan.scenario.cases_per_day, plan.team, plan.now
    curve = capacity.steady_state_curve(plan.source.table, per_day, team)
    sat = capacity.steady_state_saturation(curve)
    load_now = per_day * now.case_flagged_share * team.follow_days
    st.plotly_chart(
        charts.surveillance_curve(
            curve, team.capacity, now.recall, load_now, sat.recall if sat.status == "saturates" else None
        ),
        config={"displayModeBar": False},
    )
    st.caption(
        f"If today's {per_day:,.0f} cases a day held for good: patients followed at every threshold (Little's law: "
        f"flagged per day × {team.follow_days} days). ICU demand is the same at every threshold: "
        f"{plan.projection.steady_state_census:,.1f} beds in steady state."
    )


def _assumptions_note(plan: Plan, prevalence: float) -> None:
    """Every assumption behind the numbers, in one expander."""
    scenario = plan.scenario
    with st.expander("Assumptions behind these numbers", expanded=False):
        st.markdown(
            f"""
- **Who is counted:** the census holds today's ICU patients and every reported case admitted to the ICU,
  flagged or not; the flagged part is drawn dashed. A threshold changes who is followed, not who needs a bed.
- **ICU need:** {plan.source.description}
- **Flagged share and recall** come from the held-out test split stored with the model (death rate
  {prevalence:.2%} among known outcomes); the cases arriving here are assumed to look like it.
- **Census over time:** admissions (cases × ICU admissions per case, {scenario.delay_days:g} days after report)
  convolved with the survival function of a gamma stay (mean {scenario.los_days:g} days, shape
  {scenario.los_shape:g}). With flat cases it converges to admissions/day × average stay (Little's law).
- **Band:** 5th–95th percentile of simulated census paths. {plan.uncertainty.describe(scenario.los_days)}; then
  Poisson admissions and sampled stays. A seed keeps it the same on every rerun.
- **P(no free bed):** Erlang loss formula at today's case rate held constant; it depends on the stay only
  through its mean.
- **Beyond what the inputs support:** a census above {capacity.SUPPORTED_BEDS_MULTIPLE} times the beds (or the
  population) is not shown.
- **Deaths missed:** cases reported per day × deaths among unflagged patients per case (known-outcome rate).
- **Operating threshold** {plan.threshold:.3f} is shared with the Threshold explorer and Patient risk pages.
"""
        )
