"""The Monitoring page's figures (dashboard/ui/charts/monitoring.py): data in the report's shape, figure out.

The page itself (AppTest, real report from `model.monitoring.monitor`) is covered in test_dashboard_batch_monitor.py;
here each figure is checked against what it must show.
"""

from __future__ import annotations

from dashboard.ui import charts, theme
from dashboard.ui.charts import style
from model.stats import drift

FEATURES = {
    "age_group": {"psi": 0.31, "status": "major", "reference": {"0 - 9 Years": 0.3, "80+ Years": 0.7}},
    "sex": {"psi": 0.12, "status": "moderate"},
    "current_status": {"psi": 0.001, "status": "ok"},
}
PREDICTED = {
    "bins": [0.0, 0.001, 0.05, 1.0],
    "reference_shares": [0.5, 0.4, 0.1],
    "current_shares": [0.3, 0.5, 0.2],
    "psi": 0.0823,
    "mean_current": 0.031,
    "mean_reference": 0.022,
}


def test_psi_bars_colour_each_input_by_status_and_draw_both_psi_limits() -> None:
    fig = charts.psi_bars(FEATURES)
    (bars,) = fig.data
    assert list(bars.x) == list(FEATURES) and list(bars.y) == [0.31, 0.12, 0.001]
    assert list(bars.marker.color) == [theme.CAPACITY, "#E07B39", theme.PRIMARY]
    assert [s.y0 for s in fig.layout.shapes] == [drift.PSI_MODERATE, drift.PSI_MAJOR]
    assert [(a.y, a.text) for a in fig.layout.annotations] == [
        (drift.PSI_MODERATE, "moderate"),
        (drift.PSI_MAJOR, "major"),
    ]
    assert fig.layout.title.text == "Drift per model input (population stability index)"
    assert fig.layout.font.family == style.FONT["family"]  # the house style, like every other figure


def test_share_bars_keep_the_report_category_order() -> None:
    shares = {"reference": {"b": 0.6, "a": 0.4}, "current": {"b": 0.2, "a": 0.7, "c": 0.1}}
    fig = charts.share_bars(shares)
    assert [(t.name, list(t.x), list(t.y)) for t in fig.data] == [
        ("training", ["b", "a"], [0.6, 0.4]),
        ("current", ["b", "a", "c"], [0.2, 0.7, 0.1]),
    ]
    assert fig.layout.barmode == "group" and fig.layout.yaxis.tickformat == ".0%"


def test_predicted_risk_bars_label_bins_and_say_the_means() -> None:
    fig = charts.predicted_risk_bars(PREDICTED)
    assert [t.name for t in fig.data] == ["at training", "now"]
    assert list(fig.data[0].x) == ["0.0%–0.1%", "0.1%–5.0%", "5.0%–100.0%"]
    assert list(fig.data[1].y) == PREDICTED["current_shares"]
    assert fig.layout.title.text == "Predicted risk now vs at training (PSI 0.082; mean 3.10% now, 2.20% at training)"
    without_card_mean = charts.predicted_risk_bars({**PREDICTED, "mean_reference": None})
    assert without_card_mean.layout.title.text == "Predicted risk now vs at training (PSI 0.082; mean 3.10% now)"
