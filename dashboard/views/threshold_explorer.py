"""Threshold explorer: what flagging at a given risk does, from the stored test-split tables."""

import math

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.ui import charts, page, sidebar, state, thresholds
from dashboard.ui.artifacts import ModelArtifact

SLIDER_KEY = "threshold_explorer.slider"
NUMBER_KEY = "threshold_explorer.typed"
# Risks that matter for flagging lie well below 0.5 (the "high" band starts at 5%), so the slider spans 0 to 0.5
# in steps of 0.001 (arrow keys: 0.1 percentage point; Page Up/Down: 0.05; Home/End: the ends) and the box
# beside it takes any threshold from 0 to 1 to four decimals. A threshold above 0.5 (typed, linked, or the ICU
# page's "threshold that fits" when beds are scarce) widens the slider to 0 to 1 while it lasts.
SLIDER_MAX = 0.5
SLIDER_STEP = 0.001


def slider_max(threshold: float) -> float:
    return SLIDER_MAX if threshold <= SLIDER_MAX else 1.0


def render() -> None:
    """The page: the operating point (a fragment: inputs, metrics, figures) and how to read the charts."""
    ctx = page.context()
    assert ctx.model is not None  # run_app stopped the page otherwise
    operating_point_view(ctx.model, ctx.threshold_table())
    _how_to_read()


def _show(value: float) -> None:
    """Both inputs show the shared threshold."""
    st.session_state[SLIDER_KEY] = value
    st.session_state[NUMBER_KEY] = value


def _use(value: float) -> None:
    # state.set_threshold floors to the 0.0001 grid: flags at least as many patients, so a preset holds.
    state.set_threshold(value)
    _show(state.get_threshold())


def _slid() -> None:
    """The slider's callback: the shared threshold changes before the rerun, so the sidebar shows it at once."""
    state.set_threshold(st.session_state[SLIDER_KEY])
    st.session_state[NUMBER_KEY] = state.get_threshold()


def _typed() -> None:
    _use(st.session_state[NUMBER_KEY])


def _inputs(table: pd.DataFrame) -> None:
    """Preset buttons, the slider and the typed box, all bound to the shared threshold."""
    state.seed_widget(SLIDER_KEY, state.get_threshold())
    state.seed_widget(NUMBER_KEY, state.get_threshold())
    st.caption(
        "Thresholds apply to the high end of each patient's risk range: the risk among cases whose outcome was "
        "recorded (the test split's patients with a recorded outcome, as in every figure on this page)."
    )
    st.markdown("**Presets**")
    presets = thresholds.presets(table)
    for column, (label, value) in zip(st.columns(len(presets)), presets.items(), strict=True):
        column.button(
            label, on_click=_use, args=(value,), key=f"preset.{label}", width="stretch", help=f"threshold {value:.4f}"
        )
    slide, typed = st.columns([4, 1], vertical_alignment="bottom")
    slide.slider(
        "Operating threshold (flag when predicted risk ≥ threshold)",
        min_value=0.0,
        max_value=slider_max(state.get_threshold()),
        step=SLIDER_STEP,
        format="%.4f",
        key=SLIDER_KEY,
        on_change=_slid,
    )
    typed.number_input(
        "Threshold, typed (0 to 1)",
        min_value=0.0,
        max_value=1.0,
        step=SLIDER_STEP,
        format="%.4f",
        key=NUMBER_KEY,
        on_change=_typed,
    )


def _metrics(point: thresholds.OperatingPoint, prevalence: float) -> None:
    """The operating point in six numbers and one sentence per 1,000 cases."""
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
    c[5].metric("Deaths missed /1k", f"{point.deaths_missed_per_1000:,.2f}", help="Deaths among unflagged per 1,000.")
    st.caption(
        f"Of 1,000 cases like the test set (death rate {prevalence:.2%}), flagging at risk ≥ {point.threshold:.3f} "
        f"flags {point.flagged_per_1000:,.0f}, catches {1000 * point.tp / point.patients:,.1f} of "
        f"{1000 * (point.tp + point.fn) / point.patients:,.1f} deaths and misses {point.deaths_missed_per_1000:,.1f}."
    )


def _figures(point: thresholds.OperatingPoint, model: ModelArtifact, table: pd.DataFrame) -> None:
    """ROC, PR, confusion matrix and decision curve, each with its text alternative."""
    t, prevalence = point.threshold, model.prevalence
    precision_text = "undefined (nobody flagged)" if math.isnan(point.precision) else f"{point.precision:.3f}"
    nb_all = float(thresholds.treat_all_net_benefit(prevalence, np.array([t]))[0])
    left, right = st.columns(2)
    with left:
        charts.show(
            charts.roc_curve(model.table("roc"), point),
            f"ROC curve, test split: at threshold {t:.4f} the flag catches {point.recall:.1%} of deaths (recall) "
            f"and flags {1 - point.specificity:.1%} of survivors (false positive rate).",
        )
    with right:
        charts.show(
            charts.pr_curve(model.table("pr"), point, prevalence),
            f"Precision–recall curve, test split: at threshold {t:.4f} precision is {precision_text} at recall "
            f"{point.recall:.3f}; a random ranking's precision would be the death rate, {prevalence:.2%}.",
        )
    left, right = st.columns([2, 3])
    with left:
        charts.show(
            charts.confusion_matrix(point),
            f"Of {point.patients:,.0f} test patients at threshold {t:.4f}: {point.tp:,.0f} died and were flagged, "
            f"{point.fn:,.0f} died unflagged, {point.fp:,.0f} survived flagged, {point.tn:,.0f} survived unflagged.",
        )
    with right:
        charts.show(
            charts.decision_curve(table, point, prevalence, max_threshold=min(1.0, max(0.3, 1.5 * t))),
            f"Decision curve, test split: net benefit at threshold {t:.4f} is {point.net_benefit:.4f} per "
            f"patient, against {nb_all:.4f} for flagging everybody and 0 for flagging nobody.",
        )


@st.fragment
def operating_point_view(model: ModelArtifact, table: pd.DataFrame) -> None:
    """Inputs, metrics and figures. A slider move reruns only this fragment, not the sidebar, header and
    banners, so the browser redraws far less; the sidebar's threshold line is rewritten here instead.
    (A fragment's rerun gets the arguments of the page's last full run.)"""
    _inputs(table)
    point = thresholds.operating_point(table, state.get_threshold())
    _metrics(point, model.prevalence)
    _figures(point, model, table)
    sidebar.refresh_threshold()


def _how_to_read() -> None:
    """What the markers and curves mean, and where the figures come from."""
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
