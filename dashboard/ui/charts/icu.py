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
    text = f"capacity {capacity:,.0f} beds" if capacity > 0 else "no ICU beds"
    return style.hline(capacity, theme.CAPACITY, "dash"), style.label(
        0, capacity, text, theme.CAPACITY, xref="paper", yref="y", yanchor="bottom"
    )


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
        notes.append(
            style.label(
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
            style.label(
                0.01,
                0.98,
                f"↑ off scale: up to {peak:,.0f} beds at recall {at['recall']:.2f}",
                theme.MUTED,
                xref="paper",
                xanchor="left",
                yanchor="top",
            )
        )
    return style.figure(
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
                "fillcolor": style.rgba(theme.PRIMARY, 0.18),
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
                "fillcolor": style.rgba(theme.CAPACITY, 0.22),
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
        shapes.append(style.vline(saturation_day, theme.CAPACITY, "dot", 1.5))
        notes.append(style.label(saturation_day, 1, f" full on day {saturation_day}", theme.CAPACITY, yanchor="top"))
    highest = float(np.nanmax([census.max(), now["census_p95"].max() if band else 0.0]))
    top, clipped = _scale_top(highest, capacity)
    if clipped:
        text = f"↑ off scale: census peaks at {census.max():,.0f} on day {int(day[census.argmax()])}"
        notes.append(style.label(1, 0.98, text, theme.MUTED, xref="paper", xanchor="right", yanchor="top"))
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
