"""Weighted evaluation on aggregated rows equals evaluation on the patients listed one by one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, confusion_matrix, roc_auc_score

from model.stats import evaluate


@pytest.fixture(scope="module")
def aggregated() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A few hundred aggregated rows with repeated scores, like a calibrated model produces."""
    rng = np.random.default_rng(3)
    score = rng.choice(np.round(rng.beta(0.5, 8, 60), 4), size=400)
    y = (rng.random(400) < score * 3).astype(int)
    weight = rng.integers(1, 40, size=400).astype(float)
    return y, score, weight


def expand(y: np.ndarray, score: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    reps = weight.astype(int)
    return np.repeat(y, reps), np.repeat(score, reps)


def test_summary_metrics_match_expanded_patients(aggregated):
    y, score, weight = aggregated
    ey, es = expand(y, score, weight)
    m = evaluate.summary_metrics(y, score, weight)
    assert m["patients"] == len(ey)
    assert m["prevalence"] == pytest.approx(ey.mean())
    assert m["roc_auc"] == pytest.approx(roc_auc_score(ey, es))
    assert m["pr_auc"] == pytest.approx(average_precision_score(ey, es))
    assert m["brier"] == pytest.approx(brier_score_loss(ey, es))


def test_threshold_table_matches_confusion_matrix_at_every_row(aggregated):
    y, score, weight = aggregated
    ey, es = expand(y, score, weight)
    table = evaluate.threshold_table(y, score, weight)
    assert table["threshold"].is_monotonic_increasing
    assert table["threshold"].iloc[0] == 0.0 and table["threshold"].iloc[-1] == 1.0
    # every distinct score is a row
    assert set(np.unique(score)) <= set(table["threshold"])
    for _, row in table.sample(25, random_state=1).iterrows():
        tn, fp, fn, tp = confusion_matrix(ey, es >= row["threshold"], labels=[0, 1]).ravel()
        assert (row["tp"], row["fp"], row["tn"], row["fn"]) == (tp, fp, tn, fn)
        n = len(ey)
        assert row["flagged_share"] == pytest.approx((tp + fp) / n)
        if row["threshold"] < 1:
            t = row["threshold"]
            assert row["net_benefit"] == pytest.approx(tp / n - fp / n * t / (1 - t))
    # recall falls as the threshold rises
    assert table["recall"].is_monotonic_decreasing


def test_calibration_table_counts_every_patient(aggregated):
    y, score, weight = aggregated
    cal = evaluate.calibration_table(y, score, weight)
    assert cal["count"].sum() == pytest.approx(weight.sum())
    used = cal[cal["count"] > 0]
    assert ((used["mean_predicted"] >= used["lower"]) & (used["mean_predicted"] <= used["upper"])).all()
    deaths = (used["observed_rate"] * used["count"]).sum()
    assert deaths == pytest.approx(weight[y == 1].sum())


def test_subgroup_metrics_undefined_when_one_class(aggregated):
    y, score, weight = aggregated
    groups = pd.DataFrame({"g": np.where(np.arange(len(y)) % 2 == 0, "a", "b")})
    y2 = y.copy()
    y2[groups["g"] == "b"] = 0  # group b has no deaths: AUCs are undefined, not a crash
    table = evaluate.subgroup_table(groups, y2, score, weight, ("g",))
    b = table.set_index("value").loc["b"]
    assert b["deaths"] == 0 and pd.isna(b["roc_auc"]) and pd.isna(b["pr_auc"])
    a = table.set_index("value").loc["a"]
    assert 0.0 < a["roc_auc"] <= 1.0
    assert table["count"].sum() == pytest.approx(weight.sum())


def test_bootstrap_curve_metrics_equal_scikit_learn_replicate_by_replicate(aggregated):
    """All replicates scored at once give scikit-learn's figures, ties and zero-weight rows included."""
    y, score, weight = aggregated
    draws = np.random.default_rng(7).poisson(weight / 8, size=(40, len(weight))).astype(float)  # many zeros
    draws[0, y == 1] = 0.0  # a replicate without a death is dropped, as the loop skipped it
    got = evaluate.weighted_curve_metrics(y, score, draws)
    kept = [w for w in draws if evaluate.both_classes(y, w)]
    assert len(kept) == 39 == got["roc_auc"].size
    for k, w in enumerate(kept):
        assert got["roc_auc"][k] == pytest.approx(roc_auc_score(y, score, sample_weight=w), abs=1e-12)
        assert got["pr_auc"][k] == pytest.approx(average_precision_score(y, score, sample_weight=w), abs=1e-12)
        assert got["brier"][k] == pytest.approx(brier_score_loss(y, score, sample_weight=w), abs=1e-12)


def test_calibration_line_and_slope_are_the_per_patient_maximum_likelihood(aggregated):
    """Aggregated rows give the intercept, slope and standard error of one row per patient, found here by
    maximising the per-patient likelihood directly (scipy) and inverting its information matrix."""
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    from model.stats import performance

    y, score, weight = aggregated
    ey, es = expand(y, score, weight)
    clipped = np.clip(es, 1e-9, 1 - 1e-9)  # a score of 0 is a logit of -20.7, as in the model code
    lp = np.log(clipped / (1 - clipped))

    def negative_loglik(beta: np.ndarray, slope_fixed: bool) -> float:
        eta = beta[0] + (lp if slope_fixed else beta[1] * lp)
        return -float(np.sum(ey * log_expit(eta) + (1 - ey) * log_expit(-eta)))

    in_the_large = minimize(negative_loglik, [0.0], args=(True,), method="BFGS", options={"gtol": 1e-10}).x
    line = minimize(negative_loglik, [0.0, 1.0], args=(False,), method="BFGS", options={"gtol": 1e-10}).x
    design = np.column_stack([np.ones_like(lp), lp])
    p = expit(design @ line)
    se_slope = np.sqrt(np.linalg.inv(design.T @ (design * (p * (1 - p))[:, None]))[1, 1])

    result = evaluate.calibration_line(y, score, weight)
    assert result["intercept"] == pytest.approx(in_the_large[0], abs=1e-5)
    assert result["slope"] == pytest.approx(line[1], abs=1e-5)
    slope = performance.calibration_slope(y, score, weight)
    assert (slope["intercept"], slope["slope"]) == pytest.approx(tuple(line), abs=1e-5)
    assert slope["se"] == pytest.approx(se_slope, rel=1e-4)
    assert slope["p_value"] == pytest.approx(2 * norm_sf(abs(line[1] - 1) / se_slope), rel=1e-3)


def norm_sf(z: float) -> float:
    from scipy.stats import norm

    return float(norm.sf(z))
