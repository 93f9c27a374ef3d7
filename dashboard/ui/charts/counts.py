"""Patients counted: per risk band (a scored file) and per case month (the training file)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.ui import theme
from dashboard.ui.charts import style
from model.core import schema


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
    return style.figure(
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
    return style.figure(
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
