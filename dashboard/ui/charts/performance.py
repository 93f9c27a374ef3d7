"""How well the model separates and is calibrated: ROC, precision-recall, confusion, decision and calibration.

The threshold charts mark the operating threshold with the same marker (`style.threshold_marker`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.ui import theme
from dashboard.ui.charts import style
from dashboard.ui.thresholds import OperatingPoint, treat_all_net_benefit


def roc_curve(roc: pd.DataFrame, point: OperatingPoint) -> go.Figure:
    """Recall against false positive rate over every threshold (test split), the operating threshold marked."""
    roc = style.thin(roc)
    data = [
        style.line([0, 1], [0, 1], "chance", {"color": theme.GRID, "dash": "dot"}, hoverinfo="skip"),
        style.line(
            roc["fpr"].to_numpy(),
            roc["tpr"].to_numpy(),
            "model",
            {"color": theme.PRIMARY, "width": 3},
            customdata=roc["threshold"].to_numpy(),
            hovertemplate="FPR %{x:.3f}<br>recall %{y:.3f}<br>threshold %{customdata:.4f}<extra></extra>",
        ),
        style.threshold_marker(1.0 - point.specificity, point.recall, point.threshold),
    ]
    return style.figure(
        data,
        xaxis={"title": {"text": "false positive rate (1 − specificity)"}, "range": [0, 1]},
        yaxis={"title": {"text": "recall (deaths flagged)"}, "range": [0, 1.02]},
        title="ROC curve",
    )


def pr_curve(pr: pd.DataFrame, point: OperatingPoint, prevalence: float) -> go.Figure:
    """Precision against recall, with the prevalence line a random ranking would give; the threshold marked."""
    pr = style.thin(pr)
    shapes, notes = [], []
    if math.isfinite(prevalence):
        shapes.append(style.hline(prevalence, theme.MUTED, "dot", 1.5))
        notes.append(
            style.label(
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
        style.line(
            pr["recall"].to_numpy(),
            pr["precision"].to_numpy(),
            "model",
            {"color": theme.ACCENT, "width": 3},
            customdata=pr["threshold"].to_numpy(),
            hovertemplate="recall %{x:.3f}<br>precision %{y:.3f}<br>threshold %{customdata:.4f}<extra></extra>",
        ),
        style.threshold_marker(point.recall, precision, point.threshold),
    ]
    return style.figure(
        data,
        xaxis={"title": {"text": "recall (deaths flagged)"}, "range": [0, 1]},
        yaxis={"title": {"text": "precision (flagged who die)"}, "range": [0, 1.02]},
        title="Precision–recall curve",
        shapes=shapes,
        annotations=notes,
    )


def confusion_matrix(point: OperatingPoint) -> go.Figure:
    """Patients at the operating threshold: died or survived, flagged or not (test split)."""
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
    return style.figure(
        [heat], xaxis={}, yaxis={"autorange": "reversed"}, height=260, title="Confusion matrix (test split, patients)"
    )


def decision_curve(table: pd.DataFrame, point: OperatingPoint, prevalence: float, max_threshold: float) -> go.Figure:
    """Net benefit per patient against threshold probability, next to flagging everybody and nobody."""
    shown = style.thin(table[(table["threshold"] <= max_threshold) & table["net_benefit"].notna()], 800)
    grid = np.linspace(0.0, max_threshold, 200)
    data = [
        style.line(
            shown["threshold"].to_numpy(),
            shown["net_benefit"].to_numpy(),
            "model",
            {"color": theme.PRIMARY, "width": 3, "shape": "hv"},
        ),
        style.line(
            grid, treat_all_net_benefit(prevalence, grid), "flag everybody", {"color": theme.MUTED, "dash": "dash"}
        ),
        style.line([0, max_threshold], [0, 0], "flag nobody", {"color": theme.INK, "dash": "dot", "width": 1}),
    ]
    if math.isfinite(point.net_benefit):
        data.append(style.threshold_marker(point.threshold, point.net_benefit, point.threshold))
    top = max(prevalence, float(shown["net_benefit"].max()) if not shown.empty else prevalence)
    return style.figure(
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
        style.line([0, top], [0, top], "perfect calibration", {"color": theme.MUTED, "dash": "dot"}),
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
            style.line(
                smooth["predicted"].to_numpy(),
                smooth["observed"].to_numpy(),
                "smoothed (spline on logit)",
                {"color": theme.ACCENT, "width": 2},
                hovertemplate="predicted %{x:.2%}<br>observed %{y:.2%}<extra>smoothed</extra>",
            )
        )
    return style.figure(
        data,
        xaxis={"title": {"text": "mean predicted probability"}, "tickformat": ".0%", "range": [0, top * 1.05]},
        yaxis={"title": {"text": "observed death rate"}, "tickformat": ".0%", "range": [0, top * 1.05]},
        height=380,
        title=title,
    )
