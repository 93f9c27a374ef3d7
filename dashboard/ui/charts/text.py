"""Text alternatives for the figures (WCAG 2.1 1.1.1): a short summary in words and the numbers as a table.

A plotly chart is a picture to a screen reader. `show(fig, summary)` draws the chart, then the summary as a
caption and, folded away, an HTML table (`st.table`, which screen readers read cell by cell) of what each
series plots: at most `TABLE_ROWS` rows per series, first and last kept. The summary says what the chart
shows in the page's words when the page gives one; otherwise it is built from the figure (title, axes, each
series' span), so no chart is left without. Everything is read from the plain dicts `style.figure` keeps
(plotly's own property access would add tens of milliseconds to every slider move).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

TABLE_ROWS = 21  # per series: enough to read a curve's shape, few enough to read aloud
CONFIG = {"displayModeBar": False}
_TAGS = re.compile(r"<[^>]+>")


def show(
    fig: go.Figure,
    summary: str | None = None,
    *,
    key: str | None = None,
    table: pd.DataFrame | None = None,
    what: str | None = None,
    caption: bool = True,
) -> None:
    """The chart, its summary in words and its numbers in an expander (what every page draws a figure with).

    A page with better words or numbers than the figure's own passes them: `table` (with `what` it is of, for
    the expander's label) replaces `figure_table`; `caption=False` where the page says the summary beside it.
    """
    st.plotly_chart(fig, config=CONFIG, key=key)
    if caption:
        st.caption(summary or describe(fig))
    with st.expander(f"Numbers behind {what}" if what else f"Numbers behind “{title_of(fig)}”"):
        st.table(figure_table(fig) if table is None else table, hide_index=True)


def _plain(fig: go.Figure) -> dict[str, Any]:
    kept = getattr(fig, "_plain", None)
    if kept is not None:
        return kept
    return {"data": [t.to_plotly_json() for t in fig.data], "layout": fig.layout.to_plotly_json()}


def title_of(fig: go.Figure) -> str:
    layout = _plain(fig)["layout"]
    text = (layout.get("title") or {}).get("text")
    if text:
        return _text(text)
    axes = [a for a in (_axis_title(layout, "yaxis"), _axis_title(layout, "xaxis")) if a]
    return " against ".join(axes) or "chart"


def describe(fig: go.Figure) -> str:
    """One or two sentences from the figure: what is plotted against what, and each series' span."""
    plain = _plain(fig)
    x_title, y_title = _axis_title(plain["layout"], "xaxis"), _axis_title(plain["layout"], "yaxis")
    parts = [f"{title_of(fig)}: {y_title} against {x_title}." if x_title and y_title else f"{title_of(fig)}."]
    parts += [_describe_trace(trace) for trace in plain["data"]]
    return " ".join(p for p in parts if p)


def figure_table(fig: go.Figure) -> pd.DataFrame:
    """What each series plots, as rows people can read: series, then x and y under the axes' titles."""
    plain = _plain(fig)
    layout = plain["layout"]
    rows: list[dict[str, Any]] = []
    for trace in plain["data"]:
        if trace.get("type") == "heatmap":
            columns, rows_title = _axis_title(layout, "xaxis") or "column", _axis_title(layout, "yaxis") or "row"
            rows += _heatmap_rows(trace, columns, rows_title)
            continue
        x, y = trace.get("x"), trace.get("y")
        if x is None or y is None or len(x) == 0:
            continue
        x_title = _axis_title(layout, "xaxis") or "x"
        y_title = _axis_title(layout, "yaxis2" if trace.get("yaxis") == "y2" else "yaxis") or "y"  # its own unit
        keep = np.unique(np.linspace(0, len(x) - 1, min(len(x), TABLE_ROWS)).round().astype(int))
        rows += [{"series": _name(trace), x_title: _cell(x[i]), y_title: _cell(y[i])} for i in keep]
    table = pd.DataFrame(rows)
    for column in table.columns:  # one type per column: numbers stay numbers where all of them are
        if table[column].map(lambda v: v is None or isinstance(v, int | float)).all():
            table[column] = table[column].astype(float)
        else:
            table[column] = table[column].map(lambda v: "" if v is None else str(v))
    return table


def _describe_trace(trace: dict[str, Any]) -> str:
    if trace.get("type") == "heatmap":
        cells = [_text(str(t)) for row in (trace.get("text") or []) for t in row]
        return ("Cells: " + "; ".join(cells) + ".") if cells else ""
    x, y = trace.get("x"), trace.get("y")
    if x is None or y is None or len(x) == 0:
        return ""
    name = _name(trace)
    if len(x) == 1:
        return f"{name} at {_cell(x[0])}, {_cell(y[0])}."
    numbers = [v for v in (_cell(v) for v in y) if isinstance(v, int | float)]
    y_span = f"from {min(numbers)} to {max(numbers)}" if numbers else f"{_cell(y[0])} to {_cell(y[-1])}"
    return f"{name}: {len(x)} points, x {_cell(x[0])} to {_cell(x[-1])}, y {y_span}."


def _heatmap_rows(trace: dict[str, Any], x_title: str, y_title: str) -> list[dict[str, Any]]:
    values = trace.get("text") or trace.get("z")
    if values is None:
        raise ValueError(f"heatmap {_name(trace)!r} has neither text nor z: give the figure its cell values")
    return [
        {"series": _name(trace), x_title: col, y_title: row, "value": _text(str(values[r][c]))}
        for r, row in enumerate(trace.get("y") or [])
        for c, col in enumerate(trace.get("x") or [])
    ]


def _name(trace: dict[str, Any]) -> str:
    return _text(trace["name"]) if trace.get("name") else "series"


def _axis_title(layout: dict[str, Any], axis: str) -> str | None:
    title = (layout.get(axis) or {}).get("title")
    text = title.get("text") if isinstance(title, dict) else title
    return _text(text) if text else None


def _cell(value: Any) -> Any:
    """A number to 4 significant digits (what a reader needs), anything else as it is."""
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(f"{float(value):.4g}") if math.isfinite(value) else None
    return value


def _text(text: str) -> str:
    return _TAGS.sub(" ", str(text)).replace("  ", " ").strip()
