"""The Monitoring page's drift charts: PSI per model input, category shares, predicted risk then and now.

Each takes the part of `model.monitoring.monitor.build_report`'s report it draws, unchanged.
"""

from __future__ import annotations

import itertools
from typing import Any

import plotly.graph_objects as go

from dashboard.ui import theme
from dashboard.ui.charts import style
from model.stats import drift

_MODERATE = "#E07B39"  # the orange of the "high" risk band: between the house teal and the capacity red


def psi_bars(features: dict[str, dict[str, Any]]) -> go.Figure:
    """PSI of each model input (the report's `features`), coloured by status, with the moderate and major lines."""
    names = list(features)
    colours = {"major": theme.CAPACITY, "moderate": _MODERATE}
    bars = {
        "type": "bar",
        "x": names,
        "y": [features[n]["psi"] for n in names],
        "marker": {"color": [colours.get(features[n]["status"], theme.PRIMARY) for n in names]},
        "hovertemplate": "%{x}: PSI %{y:.4f}<extra></extra>",
    }
    levels = ((drift.PSI_MODERATE, "moderate"), (drift.PSI_MAJOR, "major"))
    return style.figure(
        [bars],
        xaxis={},
        yaxis={},
        height=340,
        title="Drift per model input (population stability index)",
        shapes=[style.hline(level, theme.MUTED, "dot") for level, _ in levels],
        annotations=[
            style.label(1, level, name, theme.MUTED, xref="paper", yref="y", xanchor="right", yanchor="bottom")
            for level, name in levels
        ],
    )


def share_bars(shares: dict[str, Any]) -> go.Figure:
    """One input's category shares at training and now (`features[name]`'s `reference` and `current`)."""
    return style.figure(
        [
            _bars("training", list(shares["reference"]), list(shares["reference"].values()), theme.MUTED),
            _bars("current", list(shares["current"]), list(shares["current"].values()), theme.PRIMARY),
        ],
        xaxis={},
        yaxis={"tickformat": ".0%"},
        height=320,
        barmode="group",
    )


def predicted_risk_bars(predicted: dict[str, Any]) -> go.Figure:
    """Shares of patients per predicted-risk bin now and at training (the report's `predicted_risk`).

    The title carries the PSI and the mean predicted risk now and, when the model card has it, at training.
    """
    labels = [f"{lo:.1%}–{hi:.1%}" for lo, hi in itertools.pairwise(predicted["bins"])]
    mean_ref = predicted["mean_reference"]
    title = (
        f"Predicted risk now vs at training (PSI {predicted['psi']:.3f}; mean {predicted['mean_current']:.2%} now"
        + (f", {mean_ref:.2%} at training)" if mean_ref is not None else ")")
    )
    return style.figure(
        [
            _bars("at training", labels, predicted["reference_shares"], theme.MUTED),
            _bars("now", labels, predicted["current_shares"], theme.PRIMARY),
        ],
        xaxis={},
        yaxis={"tickformat": ".0%"},
        height=340,
        title=title,
        barmode="group",
    )


def _bars(name: str, categories: list[str], shares: list[float], colour: str) -> dict[str, Any]:
    """One series of share bars, one bar per category."""
    return {"type": "bar", "name": name, "x": categories, "y": shares, "marker": {"color": colour}}
