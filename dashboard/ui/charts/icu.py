"""ICU beds the flagged patients need: against recall (steady state) and day by day (census)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.ui import theme
from dashboard.ui.charts import style


def _scale_top(peak: float, capacity: float, factor: float = 3.0) -> tuple[float, bool]:
    """Top of a y axis that keeps the capacity line readable: at most `factor` × capacity, and whether it clips."""
    if capacity <= 0 or peak <= factor * capacity:
        return 1.08 * max(peak, capacity, 1.0), False
    return factor * capacity, True


def _capacity_line(capacity: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """The dashed capacity line and its label at the left end ("no ICU beds" when there are none)."""
    text = f"capacity {capacity:,.0f} beds" if capacity > 0 else "no ICU beds"
    return style.hline(capacity, theme.CAPACITY, "dash"), style.label(
        0, capacity, text, theme.CAPACITY, xref="paper", yref="y", yanchor="bottom"
    )


def _off_scale_note(x: float, text: str, xanchor: str) -> dict[str, Any]:
    """The grey note at the top of a clipped axis saying how high the curve goes."""
    return style.label(x, 0.98, text, theme.MUTED, xref="paper", xanchor=xanchor, yanchor="top")


def icu_capacity(
    curve: pd.DataFrame, capacity: float, current_recall: float, current_beds: float, saturation_recall: float | None
) -> go.Figure:
    """Steady-state ICU beds the flagged patients occupy against recall, with the capacity line.

    Flagging nearly everybody needs far more beds than any ICU has: the axis stops at 3 × capacity and
    says so with the value the curve reaches, rather than cutting the top off silently.
    """
    curve = style.thin(curve, 800)
    line, line_label = _capacity_line(capacity)
    shapes, notes = [line], [line_label]
    if saturation_recall is not None:
        shapes.append(style.vline(saturation_recall, theme.CAPACITY, "dot", 1))
        text = f"saturates above recall {saturation_recall:.2f}"
        notes.append(style.label(saturation_recall, 1, text, theme.CAPACITY, xanchor="right", yanchor="top"))
    peak = float(curve["beds_needed"].max()) if not curve.empty else 0.0
    top, clipped = _scale_top(max(peak, current_beds), max(capacity, current_beds / 2.5))
    if clipped:
        at = curve.loc[curve["beds_needed"].idxmax()]
        notes.append(_off_scale_note(0.01, f"↑ off scale: up to {peak:,.0f} beds at recall {at['recall']:.2f}", "left"))
    return style.figure(
        _beds_traces(curve, current_recall, current_beds),
        xaxis={"title": {"text": "recall (share of deaths flagged)"}, "range": [0, 1.01]},
        yaxis={"title": {"text": "ICU beds occupied (steady state)"}, "range": [0, top]},
        height=420,
        title="ICU beds needed vs recall (steady state)",
        shapes=shapes,
        annotations=notes,
        legend_below=True,
    )


def _beds_traces(curve: pd.DataFrame, current_recall: float, current_beds: float) -> list[dict[str, Any]]:
    """Beds needed along the recall curve (a step line), and the current threshold's point on it."""
    return [
        style.line(
            curve["recall"].to_numpy(),
            curve["beds_needed"].to_numpy(),
            "ICU beds needed",
            {"color": theme.PRIMARY, "width": 3, "shape": "hv"},
            customdata=curve["threshold"].to_numpy(),
            hovertemplate="recall %{x:.3f}<br>%{y:,.1f} beds<br>threshold %{customdata:.4f}<extra></extra>",
        ),
        {
            "type": "scatter",
            "x": [current_recall],
            "y": [current_beds],
            "mode": "markers",
            "name": "current threshold",
            "marker": {"size": 14, "color": theme.ACCENT, "line": {"color": "#FFFFFF", "width": 2}},
        },
    ]


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
    band = now["census_p95"].notna().any()
    data = [
        *(_census_band(now) if band else []),
        *_overflow(day, census, capacity),
        *_census_lines(now, now_label, fit, fit_label),
    ]
    if saturation_day is not None:
        shapes.append(style.vline(saturation_day, theme.CAPACITY, "dot", 1.5))
        notes.append(style.label(saturation_day, 1, f" full on day {saturation_day}", theme.CAPACITY, yanchor="top"))
    highest = float(np.nanmax([census.max(), now["census_p95"].max() if band else 0.0]))
    top, clipped = _scale_top(highest, capacity)
    if clipped:
        text = f"↑ off scale: census peaks at {census.max():,.0f} on day {int(day[census.argmax()])}"
        notes.append(_off_scale_note(1, text, "right"))
    return style.figure(
        data,
        xaxis={"title": {"text": "days from today"}, "range": [0, max(int(day[-1]), 1)]},
        yaxis={"title": {"text": "COVID-19 patients in the ICU (end of day)"}, "range": [0, top]},
        height=460,
        title="ICU census over time",
        shapes=shapes,
        annotations=notes,
        legend_below=True,
    )


def _shaded(
    x: np.ndarray, low: np.ndarray, high: np.ndarray, *, fill: str, name: str, base: str
) -> list[dict[str, Any]]:
    """An area between `low` and `high`: an invisible base line, then a line filled down to it ("tonexty")."""
    return [
        style.line(x, low, base, {"width": 0}, showlegend=False, hoverinfo="skip"),
        style.line(x, high, name, {"width": 0}, fill="tonexty", fillcolor=fill, hoverinfo="skip"),
    ]


def _census_band(now: pd.DataFrame) -> list[dict[str, Any]]:
    """The simulated census's 90% band (5th to 95th percentile), shaded in the census colour."""
    return _shaded(
        now["day"].to_numpy(),
        now["census_p05"].to_numpy(),
        now["census_p95"].to_numpy(),
        fill=style.rgba(theme.PRIMARY, 0.18),
        name="90% band (simulated)",
        base="90% band, 5th percentile",
    )


def _overflow(day: np.ndarray, census: np.ndarray, capacity: float) -> list[dict[str, Any]]:
    """Census above the beds shaded in the capacity colour; nothing when the census stays within them."""
    if not (census > capacity).any():
        return []
    return _shaded(
        day,
        np.full(day.shape, capacity),
        np.maximum(census, capacity),
        fill=style.rgba(theme.CAPACITY, 0.22),
        name="overflow: patients without a bed",
        base="capacity (overflow base)",
    )


def _census_lines(now: pd.DataFrame, now_label: str, fit: pd.DataFrame | None, fit_label: str) -> list[dict[str, Any]]:
    """The census at the threshold that fits (dashed, when given) under the census at the current threshold."""
    hover = "day %{x}<br>%{y:,.1f} patients expected<extra></extra>"
    lines = []
    if fit is not None:
        lines.append(
            style.line(
                fit["day"].to_numpy(),
                fit["census"].to_numpy(),
                fit_label,
                {"color": theme.ACCENT, "width": 2.5, "dash": "dash"},
                hovertemplate=hover,
            )
        )
    lines.append(
        style.line(
            now["day"].to_numpy(),
            now["census"].to_numpy(dtype=float),
            now_label,
            {"color": theme.PRIMARY, "width": 3},
            hovertemplate=hover,
        )
    )
    return lines
