"""Threshold maths of the dashboard (dashboard/ui/thresholds.py) against brute force.

The table comes from the project's own `model.stats.evaluate.threshold_table`, so these
tests also pin the contract between the writer and the dashboard.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dashboard.ui import thresholds
from model.core import artifact
from model.stats import evaluate


@pytest.fixture(scope="module")
def scored() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    score = np.round(rng.beta(0.6, 12, 3000), 3)  # ties on purpose: aggregated data has many
    y = (rng.random(3000) < score * 2).astype(int)
    weight = rng.integers(1, 5, 3000).astype(float)
    return y, score, weight


@pytest.fixture(scope="module")
def table(scored: tuple[np.ndarray, np.ndarray, np.ndarray]) -> pd.DataFrame:
    y, score, weight = scored
    return thresholds.prepare_table(evaluate.threshold_table(y, score, weight))


@pytest.mark.parametrize("t", [0.0, 0.0005, 0.01, 0.0123, 0.05, 0.2, 0.5, 0.99, 1.0])
def test_operating_point_matches_brute_force(scored, table: pd.DataFrame, t: float) -> None:
    y, score, weight = scored
    flag = score >= t
    tp = weight[flag & (y == 1)].sum()
    fp = weight[flag & (y == 0)].sum()
    fn = weight[~flag & (y == 1)].sum()
    tn = weight[~flag & (y == 0)].sum()
    point = thresholds.operating_point(table, t)
    assert (point.tp, point.fp, point.fn, point.tn) == pytest.approx((tp, fp, fn, tn))
    assert point.recall == pytest.approx(tp / (tp + fn))
    assert point.specificity == pytest.approx(tn / (tn + fp))
    if tp + fp:
        assert point.precision == pytest.approx(tp / (tp + fp))
    else:
        assert math.isnan(point.precision)
    n = weight.sum()
    assert point.flagged_per_1000 == pytest.approx(1000 * (tp + fp) / n)
    assert point.deaths_missed_per_1000 == pytest.approx(1000 * fn / n)
    if t < 1:
        assert point.net_benefit == pytest.approx(tp / n - fp / n * t / (1 - t))


def test_threshold_above_every_score_flags_nobody(table: pd.DataFrame) -> None:
    small = table[table["threshold"] < 0.5]  # drop the "flag nobody" rows to exercise the fallback
    point = thresholds.operating_point(small, 0.9)
    assert point.tp == point.fp == 0
    assert point.recall == 0 and math.isnan(point.precision)
    assert point.fn == pytest.approx(float(table.iloc[0]["tp"]))


def test_recall_presets_keep_their_promise(table: pd.DataFrame) -> None:
    for target in (0.5, 0.8, 0.95):
        t = thresholds.threshold_for_recall(table, target)
        assert thresholds.operating_point(table, t).recall >= target
        # and it is the strictest such threshold: the next stored score up falls short
        higher = table[table["threshold"] > t]
        if not higher.empty:
            assert higher.iloc[0]["recall"] < target


def test_max_f1_preset_is_the_best_row(table: pd.DataFrame) -> None:
    """The best-F1 threshold (dashboard preset and batch scoring's max-f1) against F1 recomputed from the counts."""
    t = artifact.max_f1_threshold(table)
    assert thresholds.presets(table)["Best F1"] == t
    tp, fp, fn = (table[c].to_numpy(dtype=float) for c in ("tp", "fp", "fn"))
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=2 * tp + fp + fn > 0)
    best = table["threshold"].to_numpy()[f1 >= f1.max() - 1e-12]
    assert t == best.min() and thresholds.operating_point(table, t).f1 == pytest.approx(f1.max())


def test_default_threshold_is_a_band_edge() -> None:
    from model.core import schema

    assert schema.DEFAULT_THRESHOLD in [upper for upper, _ in schema.RISK_BANDS]
    assert schema.risk_band(schema.DEFAULT_THRESHOLD) != schema.risk_band(schema.DEFAULT_THRESHOLD - 1e-9)


def test_treat_all_reference() -> None:
    values = thresholds.treat_all_net_benefit(0.1, np.array([0.0, 0.1, 0.5]))
    assert values == pytest.approx([0.1, 0.0, -0.8])


def test_table_without_columns_is_explained() -> None:
    with pytest.raises(thresholds.ThresholdTableError, match=r"lacks columns .*recall.*python -m model.train"):
        thresholds.prepare_table(pd.DataFrame({"threshold": [0.1], "tp": [1]}))


# --- The explorer's threshold inputs (issue 21: the slider was linear 0-1 in steps of 0.0001) ---------------


def test_slider_spans_the_useful_range_and_the_box_types_any_threshold(dashboard_env: str) -> None:
    from tests.app_pages import open_page

    at = open_page("threshold_explorer.py")
    slider = at.slider(key="threshold_explorer.slider")
    typed = at.number_input(key="threshold_explorer.typed")
    assert (slider.min, slider.max, slider.step) == (0.0, 0.5, 0.001)  # arrows 0.001, Page Up/Down 0.05
    assert typed.value == slider.value == at.session_state["shared.threshold"]

    slider.set_value(0.123).run()
    assert at.number_input(key="threshold_explorer.typed").value == pytest.approx(0.123)
    assert at.query_params["threshold"] == "0.1230"

    at.number_input(key="threshold_explorer.typed").set_value(0.7123).run()  # above the slider's range
    assert at.session_state["shared.threshold"] == pytest.approx(0.7123)
    widened = at.slider(key="threshold_explorer.slider")
    assert widened.max == 1.0 and widened.value == pytest.approx(0.7123)  # the slider shows it, not its end
    assert at.query_params["threshold"] == "0.7123"
    assert any("0.712" in c.value for c in at.caption)  # the figures follow the typed value

    widened.set_value(0.3).run()  # back in the useful range: the slider narrows again
    assert at.slider(key="threshold_explorer.slider").max == 0.5
    assert at.number_input(key="threshold_explorer.typed").value == pytest.approx(0.3)
    assert not at.exception


def test_batch_scoring_thresholds_are_the_dashboards(model_dir) -> None:
    """`--threshold max-f1` and no threshold give the dashboard's "Best F1" preset and its default."""
    from model.core import schema
    from model.serving.batch_score import resolve_threshold

    stored = artifact.load_table(model_dir, "thresholds")
    assert resolve_threshold("max-f1", model_dir) == thresholds.presets(stored)["Best F1"]
    assert resolve_threshold(None, model_dir) == schema.DEFAULT_THRESHOLD
