"""Plotly figures in the house style. Pure functions: data in, figure out.

Figures are built in one `go.Figure(data=[dicts], layout=dict)` call: plotly's
incremental `update_*` / `add_vline` calls re-validate the whole figure each time
and made a slider move cost ~100 ms; one constructor call validates once.

Modules:
    style        the shared layout (`figure`) and the marks drawn on it (lines, labels, threshold marker)
    patient      one patient's risk on the risk scale, and why (Shapley waterfall)
    performance  ROC, precision-recall, confusion matrix, decision curve, calibration
    counts       patients per risk band and per case month
    icu          ICU beds needed against recall, and the ICU census day by day
    monitoring   drift: PSI per model input, category shares, predicted risk now and at training
    periods      leave-one-month-out forest plot (Model card)
    text         every figure's text alternative: a summary in words and its numbers in a table (`show`)

Pages call the figures through this package (`charts.risk_scale(...)`) and draw them with
`charts.show(fig, summary)`, which adds the text alternative.
"""

from dashboard.ui.charts.counts import band_counts, deaths_by_month
from dashboard.ui.charts.icu import icu_census_timeline, surveillance_curve
from dashboard.ui.charts.monitoring import predicted_risk_bars, psi_bars, share_bars
from dashboard.ui.charts.patient import SCALE_MAX, SCALE_MIN, risk_scale, risk_waterfall
from dashboard.ui.charts.performance import calibration, confusion_matrix, decision_curve, pr_curve, roc_curve
from dashboard.ui.charts.periods import forest
from dashboard.ui.charts.text import describe, figure_table, show

__all__ = [
    "SCALE_MAX",
    "SCALE_MIN",
    "band_counts",
    "calibration",
    "confusion_matrix",
    "deaths_by_month",
    "decision_curve",
    "describe",
    "figure_table",
    "forest",
    "icu_census_timeline",
    "pr_curve",
    "predicted_risk_bars",
    "psi_bars",
    "risk_scale",
    "risk_waterfall",
    "roc_curve",
    "share_bars",
    "show",
    "surveillance_curve",
]
