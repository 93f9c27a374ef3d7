"""ICU census day by day (everyone who needs a bed, the flagged part shaded) and the threshold's surveillance load
against recall (steady state)."""

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


def _capacity_line(capacity: float, unit: str = "beds") -> tuple[dict[str, Any], dict[str, Any]]:
    """The dashed capacity line and its label at the left end ("no ICU beds" when there are none)."""
    text = f"capacity {capacity:,.0f} {unit}" if capacity > 0 else ("no ICU beds" if unit == "beds" else f"no {unit}")
    return style.hline(capacity, theme.CAPACITY, "dash"), style.label(
        0, capacity, text, theme.CAPACITY, xref="paper", yref="y", yanchor="bottom"
    )


def _off_scale_note(x: float, text: str, xanchor: str) -> dict[str, Any]:
    """The grey note at the top of a clipped axis saying how high the curve goes."""
    return style.label(x, 0.98, text, theme.MUTED, xref="paper", xanchor=xanchor, yanchor="top")


def surveillance_curve(
    curve: pd.DataFrame, capacity: float, current_recall: float, current_load: float, saturation_recall: float | None
) -> go.Figure:
    """Steady-state flagged patients under surveillance against recall, with the team's capacity line.

    Flagging nearly everybody means following far more patients than any team can: the axis stops at
    3 × capacity and says so with the value the curve reaches, rather than cutting the top off silently.
    """
    curve = style.thin(curve, 800)
    line, line_label = _capacity_line(capacity, "patients followed")
    shapes, notes = [line], [line_label]
    if saturation_recall is not None:
        shapes.append(style.vline(saturation_recall, theme.CAPACITY, "dot", 1))
        text = f"team full above recall {saturation_recall:.2f}"
        notes.append(style.label(saturation_recall, 1, text, theme.CAPACITY, xanchor="right", yanchor="top"))
    peak = float(curve["under_surveillance"].max()) if not curve.empty else 0.0
    top, clipped = _scale_top(max(peak, current_load), max(capacity, current_load / 2.5))
    if clipped:
        at = curve.loc[curve["under_surveillance"].idxmax()]
        text = f"↑ off scale: up to {peak:,.0f} patients at recall {at['recall']:.2f}"
        notes.append(_off_scale_note(0.01, text, "left"))
    return style.figure(
        _load_traces(curve, current_recall, current_load),
        xaxis={"title": {"text": "recall (share of deaths flagged)"}, "range": [0, 1.01]},
        yaxis={"title": {"text": "flagged patients followed (steady state)"}, "range": [0, top]},
        height=420,
        title="Surveillance load vs recall (steady state)",
        shapes=shapes,
        annotations=notes,
        legend_below=True,
    )


def _load_traces(curve: pd.DataFrame, current_recall: float, current_load: float) -> list[dict[str, Any]]:
    """Patients followed along the recall curve (a step line), and the current threshold's point on it."""
    return [
        style.line(
            curve["recall"].to_numpy(),
            curve["under_surveillance"].to_numpy(),
            "flagged patients followed",
            {"color": theme.PRIMARY, "width": 3, "shape": "hv"},
            customdata=curve["threshold"].to_numpy(),
            hovertemplate="recall %{x:.3f}<br>%{y:,.0f} followed<br>threshold %{customdata:.4f}<extra></extra>",
        ),
        {
            "type": "scatter",
            "x": [current_recall],
            "y": [current_load],
            "mode": "markers",
            "name": "current threshold",
            "marker": {"size": 14, "color": theme.ACCENT, "line": {"color": "#FFFFFF", "width": 2}},
        },
    ]


def icu_census_timeline(
    days: pd.DataFrame, capacity: float, *, label: str, saturation_day: int | None = None
) -> go.Figure:
    """ICU census by day for everyone who needs a bed (with its 90% band and overflow), the flagged part below.

    `days` carries the `model.planning.capacity.Projection.days` columns (day, census, census_flagged, census_p05,
    census_p95) for the days shown. Census beyond the beds is shaded as overflow: patients without a bed.
    """
    day = days["day"].to_numpy()
    census = days["census"].to_numpy(dtype=float)
    line, line_label = _capacity_line(capacity)
    shapes, notes = [line], [line_label]
    band = days["census_p95"].notna().any()
    data = [
        *(_census_band(days) if band else []),
        *_overflow(day, census, capacity),
        *_census_lines(days, label),
    ]
    if saturation_day is not None:
        shapes.append(style.vline(saturation_day, theme.CAPACITY, "dot", 1.5))
        notes.append(style.label(saturation_day, 1, f" full on day {saturation_day}", theme.CAPACITY, yanchor="top"))
    highest = float(np.nanmax([census.max(), days["census_p95"].max() if band else 0.0]))
    top, clipped = _scale_top(highest, capacity)
    if clipped:
        text = f"↑ off scale: census peaks at {census.max():,.0f} on day {int(day[census.argmax()])}"
        notes.append(_off_scale_note(1, text, "right"))
    return style.figure(
        data,
        xaxis={"title": {"text": "days from today"}, "range": [0, max(int(day[-1]), 1)]},
        yaxis={"title": {"text": "COVID-19 patients in the ICU (end of day)"}, "range": [0, top]},
        height=460,
        title="ICU census over time: everyone who needs a bed",
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


def _census_lines(days: pd.DataFrame, label: str) -> list[dict[str, Any]]:
    """The census of everyone (solid) and its flagged part (dashed): the same ICU, the threshold's share of it."""
    hover = "day %{x}<br>%{y:,.1f} patients expected<extra></extra>"
    x = days["day"].to_numpy()
    return [
        style.line(
            x,
            days["census_flagged"].to_numpy(dtype=float),
            "of which flagged by the model",
            {"color": theme.ACCENT, "width": 2.5, "dash": "dash"},
            hovertemplate=hover,
        ),
        style.line(
            x, days["census"].to_numpy(dtype=float), label, {"color": theme.PRIMARY, "width": 3}, hovertemplate=hover
        ),
    ]
