"""The Model card's forest plot: each month left out in turn, and the pooled value with its prediction interval.

Takes one model's entry of the card's `period_validation` (`model.training.period_validation.validate`), unchanged.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from dashboard.ui import theme
from dashboard.ui.charts import style

MEASURES = {  # card key per month, per-month interval keys, pooled key, axis title
    "oe": ("oe", "oe_low", "oe_high", "observed_expected", "Observed / expected deaths (log scale)"),
    "roc_auc": ("roc_auc", "roc_auc_low", "roc_auc_high", "roc_auc", "ROC-AUC"),
}


def forest(result: dict[str, Any], measure: str = "oe") -> go.Figure:
    """Per-month estimate with its 95% CI (points), pooled mean with CI (diamond) and 95% prediction interval (bar)."""
    key, low, high, pooled_key, axis = MEASURES[measure]
    months = result.get("months") or []
    labels = [m["month"] for m in months]
    points = {
        "type": "scatter",
        "mode": "markers",
        "name": "month left out (95% CI)",
        "x": [m[key] for m in months],
        "y": labels,
        "marker": {"color": theme.PRIMARY, "size": 9},
        "error_x": {
            "type": "data",
            "symmetric": False,
            "array": [m[high] - m[key] for m in months],
            "arrayminus": [m[key] - m[low] for m in months],
            "color": theme.PRIMARY,
        },
        "hovertemplate": "%{y}: %{x:.3f}<extra></extra>",
    }
    data = [points]
    pooled = (result.get("pooled") or {}).get(pooled_key)
    if pooled and pooled.get("pi_low") is not None:
        data.append(_pooled(pooled))
    reference = 1.0 if measure == "oe" else None
    return style.figure(
        data,
        xaxis={"title": axis, **({"type": "log"} if measure == "oe" else {})},
        yaxis={"autorange": "reversed", "type": "category"},
        height=120 + 34 * (len(labels) + 1),
        shapes=[style.vline(reference, theme.MUTED, "dot", 1)] if reference else [],
        legend_below=True,
    )


def _pooled(pooled: dict[str, Any]) -> dict[str, Any]:
    """The pooled mean with its 95% prediction interval for a new month as the error bar."""
    return {
        "type": "scatter",
        "mode": "markers",
        "name": "pooled (random effects), 95% prediction interval for a new month",
        "x": [pooled["mu"]],
        "y": ["pooled"],
        "marker": {"color": theme.CAPACITY, "size": 14, "symbol": "diamond"},
        "error_x": {
            "type": "data",
            "symmetric": False,
            "array": [pooled["pi_high"] - pooled["mu"]],
            "arrayminus": [pooled["mu"] - pooled["pi_low"]],
            "color": theme.CAPACITY,
        },
        "hovertemplate": "pooled: %{x:.3f}<extra></extra>",
    }
