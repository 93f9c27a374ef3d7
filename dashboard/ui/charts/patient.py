"""One patient's risk: where it sits on the risk scale, and why (contributions of each input)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go

from dashboard.ui import theme
from dashboard.ui.charts import style
from model.core import schema

# Risk scale bounds on a log axis: deaths are rare, so most patients sit below 5 %.
SCALE_MIN = 0.0001  # below the models' 0.02% floor: no risk is pinned to the edge
SCALE_MAX = 1.0
_TICKS = (0.0001, 0.001, 0.01, 0.05, 0.2, 0.5, 1.0)
_LABEL_FLIP = 0.03  # a reference label right of this risk is written to the left of its line, so it stays inside


def _side(value: float) -> str:
    """Which side of its line a label goes: left-anchored (text to the right) low on the scale, else the reverse."""
    return "left" if _clip(value) < _LABEL_FLIP else "right"


def _clip(p: float) -> float:
    """`p` moved onto the drawn scale, so a risk of 0 or above 1 still shows at the edge."""
    return min(max(p, SCALE_MIN), SCALE_MAX)


def risk_scale(
    probability: float,
    *,
    base_rate: float | None = None,
    age_group_rate: float | None = None,
    age_group_label: str = "age group",
    threshold: float | None = None,
    interval: tuple[float, float] | None = None,
    low: float | None = None,
    low_interval: tuple[float, float] | None = None,
    title: str | None = None,
) -> go.Figure:
    """A horizontal band strip (log scale) with the patient's risk, its 95% interval and references on it.

    With `low` (the endpoint's `probability_if_unrecorded_survived`) the patient is the range [low,
    probability]: a bar between the two ends, a circle at the low end, the diamond at the high end, and the
    thin line spans both ends' 95% intervals (`low_interval`, `interval`). The true risk per reported case
    lies in the range, so drawing only the high end overstated it for patients whose outcomes often went
    unrecorded."""
    band_shapes, band_notes = _band_strip()
    ref_shapes, ref_notes = _reference_marks(base_rate, age_group_rate, age_group_label, threshold)
    traces, range_notes = _patient_traces(probability, interval), []
    if low is not None:
        traces = _range_traces(low, probability, _span(low_interval, interval))
        range_notes = [_range_note(low, probability)]
    return style.figure(
        traces,
        xaxis=_scale_axis(),
        yaxis={"visible": False, "range": [0, 1]},
        height=(190 if low is None else 220) + (40 if title else 0),
        title=title,
        shapes=[*band_shapes, *ref_shapes],
        annotations=[*band_notes, *ref_notes, *range_notes],
    )


def _span(low_interval: tuple[float, float] | None, interval: tuple[float, float] | None) -> tuple[float, float] | None:
    """From the low end's interval's lower bound to the high end's upper bound (what either interval allows)."""
    bounds = [b for b in (low_interval[0] if low_interval else None, interval[1] if interval else None) if b]
    return (min(bounds), max(bounds)) if len(bounds) == 2 else None


def _range_traces(low: float, probability: float, span: tuple[float, float] | None) -> list[dict[str, Any]]:
    """The range [low, probability]: both intervals' span (thin), the range (thick), a circle and the diamond."""
    traces = _patient_traces(probability, span)
    traces[-1] = {**traces[-1], "mode": "markers", "hovertemplate": "Among recorded outcomes: %{x:.2%}<extra></extra>"}
    bar = style.line(
        [_clip(low), _clip(probability)],
        [0.5, 0.5],
        "risk range",
        {"color": theme.INK, "width": 12},
        opacity=0.75,
        hoverinfo="skip",
        showlegend=False,
    )
    low_mark = {
        "type": "scatter",
        "x": [_clip(low)],
        "y": [0.5],
        "mode": "markers",
        "marker": {"size": 15, "color": "#FFFFFF", "line": {"color": theme.INK, "width": 2}, "symbol": "circle"},
        "hovertemplate": "If every unrecorded outcome was a survival: %{x:.2%}<extra></extra>",
        "showlegend": False,
    }
    return [*traces[:-1], bar, low_mark, traces[-1]]


def _range_note(low: float, probability: float) -> dict[str, Any]:
    """The range in words just above the bar, written from its high end towards the middle of the scale
    (right of it low on the scale, left of it high up), so it never runs off the plot."""
    text = f"{theme.format_risk(low)} to {theme.format_risk(probability)}"
    side = _side(probability)
    x = math.log10(_clip(low) if side == "left" else _clip(probability))
    return style.label(x, 0.6, text, theme.INK, xanchor=side, yanchor="bottom", size=14)


def _band_strip() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The risk bands as coloured rectangles under the plot, each named at the top of its stretch."""
    shapes, notes = [], []
    lower = SCALE_MIN
    for upper, name in schema.RISK_BANDS:
        top = min(upper, SCALE_MAX)
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": lower,
                "x1": top,
                "y0": 0,
                "y1": 1,
                "fillcolor": theme.band_colour(name),
                "opacity": 0.28,
                "line": {"width": 0},
                "layer": "below",
            }
        )
        notes.append(
            style.label(math.log10(math.sqrt(lower * top)), 0.93, name, theme.MUTED, xanchor="center", size=12)
        )
        lower = top
    return shapes, notes


def _reference_marks(
    base_rate: float | None, age_group_rate: float | None, age_group_label: str, threshold: float | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Lines and labels for the base rate, the age group's mean and the threshold; missing or NaN ones left out."""
    shapes, notes = [], []
    # Labels at staggered heights: base rate and age-group mean are often close together.
    refs = [
        ("Base rate", base_rate, theme.MUTED, "dot", 0.06),
        (age_group_label, age_group_rate, theme.ACCENT, "dash", 0.24),
    ]
    for label, value, colour, dash, height in refs:
        if value is not None and math.isfinite(value):
            shapes.append(style.vline(_clip(value), colour, dash))
            text = f"{label} {value:.1%}"
            notes.append(style.label(math.log10(_clip(value)), height, text, colour, xanchor=_side(value)))
    if threshold is not None:
        shapes.append(style.vline(_clip(threshold), theme.INK, "longdash", 1))
        text = f"threshold {threshold:.1%}"
        notes.append(style.label(math.log10(_clip(threshold)), 0.72, text, theme.INK, xanchor=_side(threshold)))
    return shapes, notes


def _patient_traces(probability: float, interval: tuple[float, float] | None) -> list[dict[str, Any]]:
    """The patient's diamond (in its band's colour, risk written above) over its 95% interval, if given."""
    traces = []
    if interval is not None:
        traces.append(
            style.line(
                [_clip(interval[0]), _clip(interval[1])],
                [0.5, 0.5],
                "95% interval",
                {"color": theme.INK, "width": 6},
                opacity=0.45,
                hovertemplate=f"95% interval {theme.format_risk(interval[0])} to "
                f"{theme.format_risk(interval[1])}<extra></extra>",
                showlegend=False,
            )
        )
    patient = {
        "type": "scatter",
        "x": [_clip(probability)],
        "y": [0.5],
        "mode": "markers+text",
        "text": [theme.format_risk(probability)],
        "textposition": "top center",
        "textfont": {"size": 16, "color": theme.INK},
        "marker": {
            "size": 22,
            "color": theme.band_colour(schema.risk_band(probability)),
            "line": {"color": theme.INK, "width": 2},
            "symbol": "diamond",
        },
        "hovertemplate": "This patient: %{x:.2%}<extra></extra>",
        "showlegend": False,
        "cliponaxis": False,  # the risk written above the diamond stays whole at the scale's ends
    }
    return [*traces, patient]


def _scale_axis() -> dict[str, Any]:
    """The log risk axis from SCALE_MIN to SCALE_MAX, ticks written as percentages."""
    return {
        "type": "log",
        "range": [math.log10(SCALE_MIN) - 0.05, math.log10(SCALE_MAX) + 0.08],  # room for the end markers
        "tickvals": list(_TICKS),
        "ticktext": [theme.format_risk(t).replace(".0%", "%") for t in _TICKS],
        "title": {"text": "probability of death (log scale)"},
    }


def risk_waterfall(
    baseline: float,
    contributions: list[tuple[str, float]],
    probability: float,
    title: str = "Why this risk (exact Shapley values)",
) -> go.Figure:
    """From the training population's mean risk to this patient's, one bar per input (probability points)."""
    labels = ["mean risk (training patients)", *(label for label, _ in contributions), "this patient"]
    values = [baseline * 100, *(value * 100 for _, value in contributions), probability * 100]
    trace = {
        "type": "waterfall",
        "orientation": "h",
        "y": labels,
        "x": values,
        "measure": ["absolute", *(["relative"] * len(contributions)), "total"],
        "text": [f"{baseline:.1%}", *(f"{v * 100:+.1f} pts" for _, v in contributions), f"{probability:.1%}"],
        "textposition": "outside",
        "connector": {"line": {"color": theme.GRID}},
        "increasing": {"marker": {"color": theme.CAPACITY}},
        "decreasing": {"marker": {"color": theme.PRIMARY}},
        "totals": {"marker": {"color": theme.INK}},
        "hovertemplate": "%{y}: %{text}<extra></extra>",
        "cliponaxis": False,
    }
    running = baseline * 100 + np.cumsum([0.0, *(v * 100 for _, v in contributions)])
    low, high = min(0.0, float(running.min())), max(float(running.max()), probability * 100, 1.0)
    # Room for the labels written outside the bars: right of rising bars and, when any input lowers the risk,
    # left of falling ones (a "-4.7 pts" that ends near zero used to be cut to "7 pts").
    left_room = 0.25 if any(value < 0 for _, value in contributions) else 0.05
    return style.figure(
        [trace],
        xaxis={
            "title": {"text": "probability of death (percentage points)"},
            "range": [low - left_room * (high - low), high + 0.25 * (high - low)],
        },
        yaxis={"autorange": "reversed"},
        height=120 + 42 * len(labels),
        title=title,
    )
