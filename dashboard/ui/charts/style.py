"""The house style every figure shares: fonts, axes, margins, legend, and the marks drawn on top.

Figures are built in one `go.Figure(data=[dicts], layout=dict)` call (see the package docstring), so the
helpers here return plain dicts (shapes, annotations, traces) for that call rather than mutating a figure.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.ui import theme

FONT = {"family": "Inter, Segoe UI, Helvetica, Arial, sans-serif", "color": theme.INK}
# automargin: the margins grow to fit tick labels and axis titles, so none is cut off or drawn over another.
AXIS = {"gridcolor": theme.GRID, "zeroline": False, "automargin": True}


def figure(
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
    barmode: str | None = None,
) -> go.Figure:
    """One validated figure in the house layout: transparent paper, white plot, title top left, legend above."""
    layout: dict[str, Any] = {
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 78 if title else 30, "b": 10},
        "font": FONT,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#FFFFFF",
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0.0},
        "xaxis": {**AXIS, **xaxis},
        "yaxis": {**AXIS, **yaxis},
        "shapes": shapes or [],
        "annotations": annotations or [],
    }
    if yaxis2:
        layout["yaxis2"] = {**AXIS, "showgrid": False, **yaxis2}
    if legend_below:  # long or many series names: under the plot, where they cannot cover the title
        layout["legend"] = {"orientation": "h", "yanchor": "top", "y": -0.16, "x": 0.0}
        layout["margin"] = {**layout["margin"], "t": 48 if title else 20}
    if barmode:  # bar charts with several series: "group" sets them side by side
        layout["barmode"] = barmode
    if title:
        layout["title"] = {"text": title, "x": 0.0, "xref": "paper", "y": 0.985, "yanchor": "top", "font": {"size": 15}}
    fig = go.Figure(data=data, layout=layout)
    # The plain dicts too: the text alternative (charts.text) reads them without plotly's slow property access.
    fig._plain = {"data": data, "layout": layout}
    return fig


def vline(x: float, colour: str, dash: str = "solid", width: float = 2) -> dict[str, Any]:
    """A vertical line shape at data `x`, the full plot height."""
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


def hline(y: float, colour: str, dash: str = "solid", width: float = 2) -> dict[str, Any]:
    """A horizontal line shape at data `y`, the full plot width."""
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


def label(
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
    """A text annotation without an arrow; by default at data `x` and a height in plot fractions."""
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


def threshold_marker(x: float, y: float, threshold: float) -> dict[str, Any]:
    """The operating threshold's point on a curve, the same mark on every threshold chart."""
    return {
        "type": "scatter",
        "x": [x],
        "y": [y],
        "mode": "markers",
        "name": f"threshold {threshold:.3f}",
        "marker": {"size": 15, "color": theme.CAPACITY, "line": {"color": "#FFFFFF", "width": 2}},
        "hovertemplate": f"threshold {threshold:.4f}<extra></extra>",
    }


def line(x: Any, y: Any, name: str, line_style: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A line trace (a plotly scatter drawn as lines); `extra` adds hover text, customdata, fills."""
    return {"type": "scatter", "x": x, "y": y, "mode": "lines", "name": name, "line": line_style, **extra}


def thin(frame: pd.DataFrame, max_points: int = 600) -> pd.DataFrame:
    """At most `max_points` rows, first and last kept: a curve looks the same and ships much less JSON."""
    if len(frame) <= max_points:
        return frame
    keep = np.unique(np.linspace(0, len(frame) - 1, max_points).round().astype(int))
    return frame.iloc[keep]


def rgba(hex_colour: str, alpha: float) -> str:
    """`#RRGGBB` with an opacity, for fills that must let the lines under them show."""
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"
