"""Text alternatives for the figures (WCAG 2.1 1.1.1): a short summary in words and the numbers as a table.

A plotly chart is a picture to a screen reader. `show(fig, summary)` draws the chart, then the summary as a
caption and, folded away, a table of what each series plots (at most `TABLE_ROWS` rows per series, first and
last kept). The summary says what the chart shows in the page's own words when the page gives one; otherwise
it is built from the figure itself (title, axes, and each series' range), so no chart is ever left without.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

TABLE_ROWS = 21  # per series: enough to read a curve's shape, few enough to read aloud
CONFIG = {"displayModeBar": False}
_TAGS = re.compile(r"<[^>]+>")


def show(fig: go.Figure, summary: str | None = None, *, key: str | None = None) -> None:
    """The chart, its summary in words and its numbers in an expander (what every page draws a figure with)."""
    st.plotly_chart(fig, config=CONFIG, key=key)
    st.caption(summary or describe(fig))
    with st.expander(f"Numbers behind “{title_of(fig)}”"):
        st.dataframe(figure_table(fig), hide_index=True, width="stretch")


def title_of(fig: go.Figure) -> str:
    text = fig.layout.title.text if fig.layout.title else None
    if text:
        return _plain(text)
    axes = [_axis_title(fig, "xaxis"), _axis_title(fig, "yaxis")]
    return " against ".join(reversed([a for a in axes if a])) or "chart"


def describe(fig: go.Figure) -> str:
    """One or two sentences from the figure: what is plotted against what, and each series' span."""
    x_title, y_title = _axis_title(fig, "xaxis"), _axis_title(fig, "yaxis")
    parts = [f"{title_of(fig)}: {y_title} against {x_title}." if x_title and y_title else f"{title_of(fig)}."]
    for trace in fig.data:
        parts.append(_describe_trace(trace))
    return " ".join(p for p in parts if p)


def figure_table(fig: go.Figure) -> pd.DataFrame:
    """What each series plots, as rows people can read: series, x and y under the axes' titles."""
    x_title = _axis_title(fig, "xaxis") or "x"
    frames = []
    for trace in fig.data:
        if trace.type == "heatmap":
            columns, rows = _axis_title(fig, "xaxis") or "column", _axis_title(fig, "yaxis") or "row"
            frames.append(_heatmap_rows(trace, columns, rows))
            continue
        y_title = _axis_title(fig, "yaxis2" if trace.yaxis == "y2" else "yaxis") or "y"  # a second axis: its unit
        x, y = _values(trace, "x"), _values(trace, "y")
        if x is None or y is None or len(x) == 0:
            continue
        keep = np.unique(np.linspace(0, len(x) - 1, min(len(x), TABLE_ROWS)).round().astype(int))
        frames.append(
            pd.DataFrame(
                {"series": _name(trace), x_title: [_cell(x[i]) for i in keep], y_title: [_cell(y[i]) for i in keep]}
            )
        )
    if not frames:
        return pd.DataFrame({"series": []})
    table = pd.concat(frames, ignore_index=True)
    for column in table.columns:  # one type per column (Arrow needs it): numbers stay numbers where all are
        numbers = pd.to_numeric(table[column], errors="coerce")
        table[column] = numbers if numbers.notna().sum() == table[column].notna().sum() else table[column].astype(str)
    return table


def _describe_trace(trace: Any) -> str:
    if trace.type == "heatmap":
        cells = [_plain(str(t)) for row in (trace.text or []) for t in row]
        return ("Cells: " + "; ".join(cells) + ".") if cells else ""
    x, y = _values(trace, "x"), _values(trace, "y")
    if x is None or y is None or len(x) == 0:
        return ""
    name = _name(trace)
    if len(x) == 1:
        return f"{name} at {_cell(x[0])}, {_cell(y[0])}."
    y_num = pd.to_numeric(pd.Series(y), errors="coerce")
    y_span = f"{_cell(y[0])} to {_cell(y[-1])}"
    if y_num.notna().any():
        y_span = f"from {_cell(y_num.min())} to {_cell(y_num.max())}"
    return f"{name}: {len(x)} points, x {_cell(x[0])} to {_cell(x[-1])}, y {y_span}."


def _heatmap_rows(trace: Any, x_title: str, y_title: str) -> pd.DataFrame:
    rows = []
    for r, row_label in enumerate(trace.y or []):
        for c, col_label in enumerate(trace.x or []):
            text = trace.text[r][c] if trace.text is not None else trace.z[r][c]
            rows.append({"series": _name(trace), x_title: col_label, y_title: row_label, "value": _plain(str(text))})
    return pd.DataFrame(rows)


def _values(trace: Any, axis: str) -> list[Any] | None:
    values = getattr(trace, axis, None)
    return None if values is None else list(np.asarray(values, dtype=object))


def _name(trace: Any) -> str:
    return _plain(trace.name) if trace.name else "series"


def _axis_title(fig: go.Figure, axis: str) -> str | None:
    layout_axis = getattr(fig.layout, axis, None)
    text = layout_axis.title.text if layout_axis is not None and layout_axis.title else None
    return _plain(text) if text else None


def _cell(value: Any) -> Any:
    """A number to 4 significant digits (what a reader needs), anything else as it is."""
    if isinstance(value, float | np.floating):
        return float(f"{float(value):.4g}") if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _plain(text: str) -> str:
    return _TAGS.sub(" ", text).replace("  ", " ").strip()
