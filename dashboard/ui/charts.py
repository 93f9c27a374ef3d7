"""Plotly figures in the house style. Pure functions: data in, figure out.

Figures are built in one `go.Figure(data=[dicts], layout=dict)` call: plotly's
incremental `update_*` / `add_vline` calls re-validate the whole figure each time
and made a slider move cost ~100 ms; one constructor call validates once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.ui import theme
from dashboard.ui.thresholds import OperatingPoint, treat_all_net_benefit
from model import schema

_FONT = {"family": "Inter, Segoe UI, Helvetica, Arial, sans-serif", "color": theme.INK}
# Risk scale bounds on a log axis: deaths are rare, so most patients sit below 5 %.
SCALE_MIN = 0.0001  # below the models' 0.02% floor: no risk is pinned to the edge
SCALE_MAX = 1.0
_TICKS = (0.0001, 0.001, 0.01, 0.05, 0.2, 0.5, 1.0)
_AXIS = {"gridcolor": theme.GRID, "zeroline": False}


def _figure(
    data: list[dict[str, Any]],
    *,
    xaxis: dict[str, Any],
    yaxis: dict[str, Any],
    height: int = 360,
    title: str | None = None,
    shapes: list[dict[str, Any]] | None = None,
    annotations: list[dict[str, Any]] | None = None,
    yaxis2: dict[str, Any] | None = None,
    legend_below: bool = False,
) -> go.Figure:
    layout: dict[str, Any] = {
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 78 if title else 30, "b": 10},
        "font": _FONT,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#FFFFFF",
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0.0},
        "xaxis": {**_AXIS, **xaxis},
        "yaxis": {**_AXIS, **yaxis},
        "shapes": shapes or [],
        "annotations": annotations or [],
    }
    if yaxis2:
        layout["yaxis2"] = {**_AXIS, "showgrid": False, **yaxis2}
    if legend_below:  # long or many series names: under the plot, where they cannot cover the title
        layout["legend"] = {"orientation": "h", "yanchor": "top", "y": -0.16, "x": 0.0}
        layout["margin"] = {**layout["margin"], "t": 48 if title else 20}
    if title:
        layout["title"] = {"text": title, "x": 0.0, "xref": "paper", "y": 0.985, "yanchor": "top", "font": {"size": 15}}
    return go.Figure(data=data, layout=layout)


def _vline(x: float, colour: str, dash: str = "solid", width: float = 2) -> dict[str, Any]:
    return {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "line": {"color": colour, "dash": dash, "width": width},
    }


def _hline(y: float, colour: str, dash: str = "solid", width: float = 2) -> dict[str, Any]:
    return {
        "type": "line",
        "xref": "paper",
        "yref": "y",
        "x0": 0,
        "x1": 1,
        "y0": y,
        "y1": y,
        "line": {"color": colour, "dash": dash, "width": width},
    }


def _label(
    x: float,
    y: float,
    text: str,
    colour: str,
    *,
    xref: str = "x",
    yref: str = "paper",
    xanchor: str = "left",
    yanchor: str = "middle",
    size: int = 11,
) -> dict[str, Any]:
    return {
        "x": x,
        "y": y,
        "xref": xref,
        "yref": yref,
        "text": text,
        "showarrow": False,
        "xanchor": xanchor,
        "yanchor": yanchor,
        "font": {"size": size, "color": colour},
    }


def _marker(x: float, y: float, threshold: float) -> dict[str, Any]:
    return {
        "type": "scatter",
        "x": [x],
        "y": [y],
        "mode": "markers",
        "name": f"threshold {threshold:.3f}",
        "marker": {"size": 15, "color": theme.CAPACITY, "line": {"color": "#FFFFFF", "width": 2}},
        "hovertemplate": f"threshold {threshold:.4f}<extra></extra>",
    }


def _clip(p: float) -> float:
    return min(max(p, SCALE_MIN), SCALE_MAX)


def risk_scale(
    probability: float,
    *,
    base_rate: float | None = None,
    age_group_rate: float | None = None,
    age_group_label: str = "age group",
    threshold: float | None = None,
    interval: tuple[float, float] | None = None,
) -> go.Figure:
    """A horizontal band strip (log scale) with the patient's risk, its 95% interval and references on it."""
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
        notes.append(_label(math.log10(math.sqrt(lower * top)), 0.93, name, theme.MUTED, xanchor="center", size=12))
        lower = top
    # Labels at staggered heights: base rate and age-group mean are often close together.
    refs = [
        ("Base rate", base_rate, theme.MUTED, "dot", 0.06),
        (age_group_label, age_group_rate, theme.ACCENT, "dash", 0.24),
    ]
    for label, value, colour, dash, height in refs:
        if value is not None and math.isfinite(value):
            shapes.append(_vline(_clip(value), colour, dash))
            notes.append(_label(math.log10(_clip(value)), height, f"{label} {value:.1%}", colour))
    if threshold is not None:
        shapes.append(_vline(_clip(threshold), theme.INK, "longdash", 1))
        notes.append(_label(math.log10(_clip(threshold)), 0.72, f"threshold {threshold:.1%}", theme.INK))
    band = schema.risk_band(probability)
    traces = []
    if interval is not None:
        traces.append(
            {
                "type": "scatter",
                "x": [_clip(interval[0]), _clip(interval[1])],
                "y": [0.5, 0.5],
                "mode": "lines",
                "line": {"color": theme.INK, "width": 6},
                "opacity": 0.45,
                "hovertemplate": f"95% interval {theme.format_risk(interval[0])} to "
                f"{theme.format_risk(interval[1])}<extra></extra>",
                "showlegend": False,
            }
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
            "color": theme.band_colour(band),
            "line": {"color": theme.INK, "width": 2},
            "symbol": "diamond",
        },
        "hovertemplate": "This patient: %{x:.2%}<extra></extra>",
        "showlegend": False,
    }
    return _figure(
        [*traces, patient],
        xaxis={
            "type": "log",
            "range": [math.log10(SCALE_MIN) - 0.05, math.log10(SCALE_MAX) + 0.08],  # room for the end markers
            "tickvals": list(_TICKS),
            "ticktext": [theme.format_risk(t).replace(".0%", "%") for t in _TICKS],
            "title": {"text": "probability of death (log scale)"},
        },
        yaxis={"visible": False, "range": [0, 1]},
        height=190,
        shapes=shapes,
        annotations=notes,
    )


def risk_waterfall(baseline: float, contributions: list[tuple[str, float]], probability: float) -> go.Figure:
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
    }
    running = baseline * 100 + np.cumsum([0.0, *(v * 100 for _, v in contributions)])
    low, high = min(0.0, float(running.min())), max(float(running.max()), probability * 100, 1.0)
    return _figure(
        [trace],
        xaxis={
            "title": {"text": "probability of death (percentage points)"},
            "range": [low - 0.05 * (high - low), high + 0.25 * (high - low)],
        },
        yaxis={"autorange": "reversed"},
        height=120 + 42 * len(labels),
        title="Why this risk (exact Shapley values)",
    )


def _thin(frame: pd.DataFrame, max_points: int = 600) -> pd.DataFrame:
    """At most `max_points` rows, first and last kept: a curve looks the same and ships much less JSON."""
    if len(frame) <= max_points:
        return frame
    keep = np.unique(np.linspace(0, len(frame) - 1, max_points).round().astype(int))
    return frame.iloc[keep]


def roc_curve(roc: pd.DataFrame, point: OperatingPoint) -> go.Figure:
    roc = _thin(roc)
    data = [
        {
            "type": "scatter",
            "x": [0, 1],
            "y": [0, 1],
            "mode": "lines",
            "name": "chance",
            "line": {"color": theme.GRID, "dash": "dot"},
            "hoverinfo": "skip",
        },
        {
            "type": "scatter",
            "x": roc["fpr"].to_numpy(),
            "y": roc["tpr"].to_numpy(),
            "mode": "lines",
            "name": "model",
            "line": {"color": theme.PRIMARY, "width": 3},
            "customdata": roc["threshold"].to_numpy(),
            "hovertemplate": "FPR %{x:.3f}<br>recall %{y:.3f}<br>threshold %{customdata:.4f}<extra></extra>",
        },
        _marker(1.0 - point.specificity, point.recall, point.threshold),
    ]
    return _figure(
        data,
        xaxis={"title": {"text": "false positive rate (1 − specificity)"}, "range": [0, 1]},
        yaxis={"title": {"text": "recall (deaths flagged)"}, "range": [0, 1.02]},
        title="ROC curve",
    )


def pr_curve(pr: pd.DataFrame, point: OperatingPoint, prevalence: float) -> go.Figure:
    pr = _thin(pr)
    shapes, notes = [], []
    if math.isfinite(prevalence):
        shapes.append(_hline(prevalence, theme.MUTED, "dot", 1.5))
        notes.append(
            _label(
                1,
                prevalence,
                f"random ranking = prevalence {prevalence:.1%}",
                theme.MUTED,
                xref="paper",
                yref="y",
                xanchor="right",
                yanchor="bottom",
            )
        )
    precision = point.precision if math.isfinite(point.precision) else 1.0
    data = [
        {
            "type": "scatter",
            "x": pr["recall"].to_numpy(),
            "y": pr["precision"].to_numpy(),
            "mode": "lines",
            "name": "model",
            "line": {"color": theme.ACCENT, "width": 3},
            "customdata": pr["threshold"].to_numpy(),
            "hovertemplate": "recall %{x:.3f}<br>precision %{y:.3f}<br>threshold %{customdata:.4f}<extra></extra>",
        },
        _marker(point.recall, precision, point.threshold),
    ]
    return _figure(
        data,
        xaxis={"title": {"text": "recall (deaths flagged)"}, "range": [0, 1]},
        yaxis={"title": {"text": "precision (flagged who die)"}, "range": [0, 1.02]},
        title="Precision–recall curve",
        shapes=shapes,
        annotations=notes,
    )


def confusion_matrix(point: OperatingPoint) -> go.Figure:
    counts = [[point.tp, point.fn], [point.fp, point.tn]]
    labels = [["true positives", "false negatives"], ["false positives", "true negatives"]]
    text = [[f"{v:,.0f}<br>{lbl}" for v, lbl in zip(r, lr, strict=True)] for r, lr in zip(counts, labels, strict=True)]
    heat = {
        "type": "heatmap",
        "z": [[1, 0.6], [0.3, 0.1]],
        "x": ["flagged", "not flagged"],
        "y": ["died", "survived"],
        "text": text,
        "texttemplate": "%{text}",
        "colorscale": [[0, "#F2F7F8"], [1, "#9CC9CF"]],
        "showscale": False,
        "hoverinfo": "skip",
        "textfont": {"size": 14},
    }
    return _figure(
        [heat], xaxis={}, yaxis={"autorange": "reversed"}, height=260, title="Confusion matrix (test split, patients)"
    )


def decision_curve(table: pd.DataFrame, point: OperatingPoint, prevalence: float, max_threshold: float) -> go.Figure:
    shown = _thin(table[(table["threshold"] <= max_threshold) & table["net_benefit"].notna()], 800)
    grid = np.linspace(0.0, max_threshold, 200)
    data = [
        {
            "type": "scatter",
            "x": shown["threshold"].to_numpy(),
            "y": shown["net_benefit"].to_numpy(),
            "mode": "lines",
            "name": "model",
            "line": {"color": theme.PRIMARY, "width": 3, "shape": "hv"},
        },
        {
            "type": "scatter",
            "x": grid,
            "y": treat_all_net_benefit(prevalence, grid),
            "mode": "lines",
            "name": "flag everybody",
            "line": {"color": theme.MUTED, "dash": "dash"},
        },
        {
            "type": "scatter",
            "x": [0, max_threshold],
            "y": [0, 0],
            "mode": "lines",
            "name": "flag nobody",
            "line": {"color": theme.INK, "dash": "dot", "width": 1},
        },
    ]
    if math.isfinite(point.net_benefit):
        data.append(_marker(point.threshold, point.net_benefit, point.threshold))
    top = max(prevalence, float(shown["net_benefit"].max()) if not shown.empty else prevalence)
    return _figure(
        data,
        xaxis={"title": {"text": "threshold probability"}, "range": [0, max_threshold], "tickformat": ".0%"},
        yaxis={
            "title": {"text": "net benefit per patient"},
            "range": [-0.25 * top, 1.1 * top],
        },
        title="Decision curve",
    )


def calibration(
    cal: pd.DataFrame,
    smooth: pd.DataFrame | None = None,
    title: str = "Calibration on the held-out test split (marker size = patients)",
) -> go.Figure:
    """Binned reliability diagram with, when given, the smoothed calibration curve over it."""
    used = cal[cal["count"] > 0]
    top = float(max(used["mean_predicted"].max(), used["observed_rate"].max(), 0.05)) if not used.empty else 1.0
    sizes = np.clip(np.sqrt(used["count"] / used["count"].max()) * 24, 6, 24) if not used.empty else []
    data = [
        {
            "type": "scatter",
            "x": [0, top],
            "y": [0, top],
            "mode": "lines",
            "name": "perfect calibration",
            "line": {"color": theme.MUTED, "dash": "dot"},
        },
        {
            "type": "scatter",
            "x": used["mean_predicted"].to_numpy(),
            "y": used["observed_rate"].to_numpy(),
            "mode": "lines+markers",
            "name": "model",
            "line": {"color": theme.PRIMARY, "width": 3},
            "marker": {"size": np.asarray(sizes), "color": theme.PRIMARY},
            "customdata": used["count"].to_numpy(),
            "hovertemplate": "predicted %{x:.3%}<br>observed %{y:.3%}<br>%{customdata:,.0f} patients<extra></extra>",
        },
    ]
    if smooth is not None and not smooth.empty:
        data.append(
            {
                "type": "scatter",
                "x": smooth["predicted"].to_numpy(),
                "y": smooth["observed"].to_numpy(),
                "mode": "lines",
                "name": "smoothed (spline on logit)",
                "line": {"color": theme.ACCENT, "width": 2},
                "hovertemplate": "predicted %{x:.2%}<br>observed %{y:.2%}<extra>smoothed</extra>",
            }
        )
    return _figure(
        data,
        xaxis={"title": {"text": "mean predicted probability"}, "tickformat": ".0%", "range": [0, top * 1.05]},
        yaxis={"title": {"text": "observed death rate"}, "tickformat": ".0%", "range": [0, top * 1.05]},
        height=380,
        title=title,
    )


def band_counts(bands: pd.Series) -> go.Figure:
    """Patients per risk band, bands in order of severity (low to very high), each in its colour."""
    names = [name for _, name in schema.RISK_BANDS]
    counts = bands.value_counts().reindex(names, fill_value=0)
    colours = [theme.band_colour(n) for n in names]
    data = [
        {
            "type": "bar",
            "x": names,
            "y": counts.to_numpy(),
            "marker": {"color": colours},
            "hovertemplate": "%{x}: %{y:,} patients<extra></extra>",
        }
    ]
    return _figure(
        data,
        xaxis={"title": {"text": "risk band"}, "type": "category", "categoryorder": "array", "categoryarray": names},
        yaxis={"title": {"text": "patients"}},
        height=300,
    )


def deaths_by_month(months: pd.DataFrame) -> go.Figure:
    """Patients with a known outcome per case month, and the case fatality among them."""
    dated = months[months["month"] != "unknown"]
    data = [
        {
            "type": "bar",
            "x": dated["month"].to_numpy(),
            "y": (dated["deaths"] + dated["survivors"]).to_numpy(),
            "name": "patients with a known outcome",
            "marker": {"color": theme.GRID},
        },
        {
            "type": "scatter",
            "x": dated["month"].to_numpy(),
            "y": dated["case_fatality"].to_numpy(),
            "yaxis": "y2",
            "mode": "lines+markers",
            "name": "case fatality",
            "line": {"color": theme.CAPACITY, "width": 2},
        },
    ]
    return _figure(
        data,
        xaxis={"title": {"text": "case month"}, "type": "category"},
        yaxis={"title": {"text": "patients"}, "type": "log"},
        yaxis2={
            "title": {"text": "deaths / known outcomes"},
            "overlaying": "y",
            "side": "right",
            "tickformat": ".0%",
            "rangemode": "tozero",
        },
        height=340,
        title="Cases by month in the training file",
    )


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _scale_top(peak: float, capacity: float, factor: float = 3.0) -> tuple[float, bool]:
    """Top of a y axis that keeps the capacity line readable: at most `factor` × capacity, and whether it clips."""
    if capacity <= 0 or peak <= factor * capacity:
        return 1.08 * max(peak, capacity, 1.0), False
    return factor * capacity, True


def _capacity_line(capacity: float) -> tuple[dict[str, Any], dict[str, Any]]:
    text = f"capacity {capacity:,.0f} beds" if capacity > 0 else "no ICU beds"
    return _hline(capacity, theme.CAPACITY, "dash"), _label(
        0, capacity, text, theme.CAPACITY, xref="paper", yref="y", yanchor="bottom"
    )


def icu_capacity(
    curve: pd.DataFrame, capacity: float, current_recall: float, current_beds: float, saturation_recall: float | None
) -> go.Figure:
    """Steady-state ICU beds the flagged patients occupy against recall, with the capacity line.

    Flagging nearly everybody needs far more beds than any ICU has: the axis stops at 3 × capacity and
    says so with the value the curve reaches, rather than cutting the top off silently.
    """
    curve = _thin(curve, 800)
    line, line_label = _capacity_line(capacity)
    shapes, notes = [line], [line_label]
    if saturation_recall is not None:
        shapes.append(_vline(saturation_recall, theme.CAPACITY, "dot", 1))
        notes.append(
            _label(
                saturation_recall,
                1,
                f"saturates above recall {saturation_recall:.2f}",
                theme.CAPACITY,
                xanchor="right",
                yanchor="top",
            )
        )
    data = [
        {
            "type": "scatter",
            "x": curve["recall"].to_numpy(),
            "y": curve["beds_needed"].to_numpy(),
            "mode": "lines",
            "name": "ICU beds needed",
            "line": {"color": theme.PRIMARY, "width": 3, "shape": "hv"},
            "customdata": curve["threshold"].to_numpy(),
            "hovertemplate": "recall %{x:.3f}<br>%{y:,.1f} beds<br>threshold %{customdata:.4f}<extra></extra>",
        },
        {
            "type": "scatter",
            "x": [current_recall],
            "y": [current_beds],
            "mode": "markers",
            "name": "current threshold",
            "marker": {"size": 14, "color": theme.ACCENT, "line": {"color": "#FFFFFF", "width": 2}},
        },
    ]
    peak = float(curve["beds_needed"].max()) if not curve.empty else 0.0
    top, clipped = _scale_top(max(peak, current_beds), max(capacity, current_beds / 2.5))
    if clipped:
        at = curve.loc[curve["beds_needed"].idxmax()]
        notes.append(
            _label(
                0.01,
                0.98,
                f"↑ off scale: up to {peak:,.0f} beds at recall {at['recall']:.2f}",
                theme.MUTED,
                xref="paper",
                xanchor="left",
                yanchor="top",
            )
        )
    return _figure(
        data,
        xaxis={"title": {"text": "recall (share of deaths flagged)"}, "range": [0, 1.01]},
        yaxis={"title": {"text": "ICU beds occupied (steady state)"}, "range": [0, top]},
        height=420,
        title="ICU beds needed vs recall (steady state)",
        shapes=shapes,
        annotations=notes,
        legend_below=True,
    )


def icu_census_timeline(
    now: pd.DataFrame,
    capacity: float,
    *,
    now_label: str,
    fit: pd.DataFrame | None = None,
    fit_label: str = "",
    saturation_day: int | None = None,
) -> go.Figure:
    """ICU census by day for the current threshold (with its 90% band and overflow) and the threshold that fits.

    `now` / `fit` carry the `model.capacity.Projection.days` columns (day, census, census_p05, census_p95).
    Census beyond the beds is shaded as overflow: patients without a bed, not a higher occupancy.
    """
    day = now["day"].to_numpy()
    census = now["census"].to_numpy(dtype=float)
    line, line_label = _capacity_line(capacity)
    shapes, notes = [line], [line_label]
    data: list[dict[str, Any]] = []
    band = now["census_p95"].notna().any()
    if band:
        data += [
            {
                "type": "scatter",
                "x": day,
                "y": now["census_p05"].to_numpy(),
                "mode": "lines",
                "line": {"width": 0},
                "name": "90% band, 5th percentile",
                "showlegend": False,
                "hoverinfo": "skip",
            },
            {
                "type": "scatter",
                "x": day,
                "y": now["census_p95"].to_numpy(),
                "mode": "lines",
                "line": {"width": 0},
                "fill": "tonexty",
                "fillcolor": _rgba(theme.PRIMARY, 0.18),
                "name": "90% band (simulated)",
                "hoverinfo": "skip",
            },
        ]
    if (census > capacity).any():
        data += [
            {
                "type": "scatter",
                "x": day,
                "y": np.full(day.shape, capacity),
                "mode": "lines",
                "line": {"width": 0},
                "name": "capacity (overflow base)",
                "showlegend": False,
                "hoverinfo": "skip",
            },
            {
                "type": "scatter",
                "x": day,
                "y": np.maximum(census, capacity),
                "mode": "lines",
                "line": {"width": 0},
                "fill": "tonexty",
                "fillcolor": _rgba(theme.CAPACITY, 0.22),
                "name": "overflow: patients without a bed",
                "hoverinfo": "skip",
            },
        ]
    hover = "day %{x}<br>%{y:,.1f} patients expected<extra></extra>"
    if fit is not None:
        data.append(
            {
                "type": "scatter",
                "x": fit["day"].to_numpy(),
                "y": fit["census"].to_numpy(),
                "mode": "lines",
                "name": fit_label,
                "line": {"color": theme.ACCENT, "width": 2.5, "dash": "dash"},
                "hovertemplate": hover,
            }
        )
    data.append(
        {
            "type": "scatter",
            "x": day,
            "y": census,
            "mode": "lines",
            "name": now_label,
            "line": {"color": theme.PRIMARY, "width": 3},
            "hovertemplate": hover,
        }
    )
    if saturation_day is not None:
        shapes.append(_vline(saturation_day, theme.CAPACITY, "dot", 1.5))
        notes.append(_label(saturation_day, 1, f" full on day {saturation_day}", theme.CAPACITY, yanchor="top"))
    highest = float(np.nanmax([census.max(), now["census_p95"].max() if band else 0.0]))
    top, clipped = _scale_top(highest, capacity)
    if clipped:
        text = f"↑ off scale: census peaks at {census.max():,.0f} on day {int(day[census.argmax()])}"
        notes.append(_label(1, 0.98, text, theme.MUTED, xref="paper", xanchor="right", yanchor="top"))
    return _figure(
        data,
        xaxis={"title": {"text": "days from today"}, "range": [0, max(int(day[-1]), 1)]},
        yaxis={"title": {"text": "COVID-19 patients in the ICU (end of day)"}, "range": [0, top]},
        height=460,
        title="ICU census over time",
        shapes=shapes,
        annotations=notes,
        legend_below=True,
    )
