"""Row-weighted evaluation of a risk model on aggregated data.

The data are aggregated (one row per distinct combination, with a weight that
counts patients), so every metric here takes `weight` and is computed as if the
patients were listed one by one. scikit-learn's metrics accept `sample_weight`,
which is exactly that.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from model.stats.logistic import Recalibration, intercept_with_offset, safe_logit

# Probability bins for the reliability diagram and the risk histogram. Deaths are
# rare, so the low end is finely split; equal-width bins would put nearly every
# patient in the first bin.
PROBABILITY_BIN_EDGES: tuple[float, ...] = (
    0.0,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.35,
    0.5,
    0.75,
    1.0,
)


def both_classes(y: np.ndarray, weight: np.ndarray) -> bool:
    """True when positives and negatives both carry weight (AUCs are defined)."""
    return bool(weight[y == 1].sum() > 0 and weight[y == 0].sum() > 0)


def summary_metrics(y: np.ndarray, score: np.ndarray, weight: np.ndarray) -> dict[str, float | None]:
    """ROC-AUC, PR-AUC (average precision), Brier, log loss, prevalence, mean prediction."""
    total = float(weight.sum())
    out: dict[str, float | None] = {
        "patients": total,
        "deaths": float(weight[y == 1].sum()),
        "prevalence": float(weight[y == 1].sum() / total) if total else None,
        "mean_predicted": float(np.average(score, weights=weight)) if total else None,
        "roc_auc": None,
        "pr_auc": None,
        "brier": float(brier_score_loss(y, score, sample_weight=weight)) if total else None,
        "log_loss": None,
    }
    if both_classes(y, weight):
        out["roc_auc"] = float(roc_auc_score(y, score, sample_weight=weight))
        out["pr_auc"] = float(average_precision_score(y, score, sample_weight=weight))
        out["log_loss"] = float(log_loss(y, np.clip(score, 1e-15, 1 - 1e-15), sample_weight=weight))
    return out


def roc_table(y: np.ndarray, score: np.ndarray, weight: np.ndarray) -> pd.DataFrame:
    fpr, tpr, thr = roc_curve(y, score, sample_weight=weight)
    # roc_curve's first threshold is +inf ("flag nobody"); store it as 1.0+ so CSV stays numeric.
    thr = np.where(np.isinf(thr), 1.0, thr)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thr})


def pr_table(y: np.ndarray, score: np.ndarray, weight: np.ndarray) -> pd.DataFrame:
    precision, recall, thr = precision_recall_curve(y, score, sample_weight=weight)
    # The last (precision=1, recall=0) point has no threshold: it is "flag nobody".
    thr = np.append(thr, 1.0)
    return pd.DataFrame({"recall": recall, "precision": precision, "threshold": thr})


def threshold_table(y: np.ndarray, score: np.ndarray, weight: np.ndarray) -> pd.DataFrame:
    """Confusion counts and rates at every distinct score (flag = score >= threshold).

    Rows are sorted by ascending threshold and span the whole [0, 1] slider: a
    row at 0 (flag everybody) and at 1 (flag nobody, unless a score is exactly 1)
    are added when no score sits there.
    """
    frame = pd.DataFrame({"score": score, "pos": weight * (y == 1), "neg": weight * (y == 0)})
    grouped = frame.groupby("score", sort=True)[["pos", "neg"]].sum()
    # Descending scores: cumulative sums give what is flagged at each threshold.
    desc = grouped.iloc[::-1]
    tp = desc["pos"].cumsum().to_numpy()
    fp = desc["neg"].cumsum().to_numpy()
    thresholds = desc.index.to_numpy(dtype=float)
    total_pos, total_neg = float(grouped["pos"].sum()), float(grouped["neg"].sum())
    if thresholds[-1] > 0.0:  # lowest score above 0: add "flag everybody"
        thresholds = np.append(thresholds, 0.0)
        tp, fp = np.append(tp, total_pos), np.append(fp, total_neg)
    if thresholds[0] < 1.0:  # highest score below 1: add "flag nobody"
        thresholds = np.insert(thresholds, 0, 1.0)
        tp, fp = np.insert(tp, 0, 0.0), np.insert(fp, 0, 0.0)
    fn = total_pos - tp
    tn = total_neg - fp
    n = total_pos + total_neg
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
        recall = np.where(total_pos > 0, tp / total_pos, 0.0)
        specificity = np.where(total_neg > 0, tn / total_neg, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        # Net benefit (Vickers & Elkin 2006): TP/n - FP/n * t/(1-t); undefined at t = 1.
        odds = np.where(thresholds < 1.0, thresholds / (1.0 - np.minimum(thresholds, 1 - 1e-12)), np.nan)
        net_benefit = tp / n - fp / n * odds
    table = pd.DataFrame(
        {
            "threshold": thresholds,
            "tp": tp,
            "fp": fp,
            "tn": tn,
            "fn": fn,
            "precision": precision,
            "recall": recall,
            "specificity": specificity,
            "f1": f1,
            "flagged_share": (tp + fp) / n,
            "net_benefit": net_benefit,
        }
    )
    return table.iloc[::-1].reset_index(drop=True)


def calibration_table(y: np.ndarray, score: np.ndarray, weight: np.ndarray) -> pd.DataFrame:
    """Reliability diagram data: mean predicted vs observed death rate per probability bin."""
    edges = np.asarray(PROBABILITY_BIN_EDGES)
    bins = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, len(edges) - 2)
    rows = []
    for b in range(len(edges) - 1):
        mask = bins == b
        w = weight[mask]
        total = float(w.sum())
        rows.append(
            {
                "bin": b,
                "lower": edges[b],
                "upper": edges[b + 1],
                "mean_predicted": float(np.average(score[mask], weights=w)) if total else np.nan,
                "observed_rate": float(w[y[mask] == 1].sum() / total) if total else np.nan,
                "count": total,
            }
        )
    return pd.DataFrame(rows)


def expected_calibration_error(calibration: pd.DataFrame) -> float:
    """Patient-weighted mean |predicted - observed| over the calibration bins."""
    used = calibration[calibration["count"] > 0]
    gap = (used["mean_predicted"] - used["observed_rate"]).abs()
    return float(np.average(gap, weights=used["count"]))


def subgroup_table(
    groups: pd.DataFrame, y: np.ndarray, score: np.ndarray, weight: np.ndarray, columns: tuple[str, ...]
) -> pd.DataFrame:
    """Metrics per value of each subgroup column (age group, sex, race/ethnicity)."""
    rows = []
    for column in columns:
        for value, index in groups.groupby(column, sort=False, observed=True).indices.items():
            m = summary_metrics(y[index], score[index], weight[index])
            oe = observed_expected(y[index], score[index], weight[index])
            rows.append(
                {
                    "column": column,
                    "value": value,
                    "observed": oe["observed"],
                    "expected": oe["expected"],
                    "oe": oe["oe"],
                    "oe_low": oe["oe_low"],
                    "oe_high": oe["oe_high"],
                    "miscalibrated": _excludes_one(oe),
                    "count": m["patients"],
                    "deaths": m["deaths"],
                    "prevalence": m["prevalence"],
                    "mean_predicted": m["mean_predicted"],
                    "roc_auc": m["roc_auc"],
                    "pr_auc": m["pr_auc"],
                    "brier": m["brier"],
                }
            )
    return pd.DataFrame(rows)


def risk_histogram(score: np.ndarray, weight: np.ndarray) -> dict[str, list[float]]:
    """Share of patients per probability bin (reference for drift monitoring)."""
    edges = np.asarray(PROBABILITY_BIN_EDGES)
    counts, _ = np.histogram(np.clip(score, 0.0, 1.0), bins=edges, weights=weight)
    total = counts.sum()
    shares = counts / total if total else counts
    return {"bins": [float(e) for e in edges], "shares": [float(s) for s in shares]}


# --------------------------------------------------------------------------- TRIPOD-style reporting

BOOTSTRAP_METRIC_REPLICATES = 200


def bootstrap_intervals(
    y: np.ndarray, score: np.ndarray, weight: np.ndarray, *, seed: int, replicates: int = BOOTSTRAP_METRIC_REPLICATES
) -> dict[str, list[float] | None]:
    """95% percentile intervals of ROC-AUC, PR-AUC and Brier over a Poisson bootstrap of patients.

    Each replicate redraws every aggregated row's patients as Poisson(weight); a replicate without both
    outcomes is skipped. All replicates are scored at once (`weighted_curve_metrics`), the same figures
    scikit-learn's roc_auc_score, average_precision_score and brier_score_loss give replicate by replicate.
    """
    draws = np.random.default_rng(seed).poisson(weight, size=(replicates, len(weight))).astype(float)
    metrics = weighted_curve_metrics(np.asarray(y), np.asarray(score, dtype=float), draws)
    return {
        k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if v.size else None for k, v in metrics.items()
    }


def weighted_curve_metrics(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """ROC-AUC, average precision and Brier score for each row of `weights` (replicates x aggregated rows).

    Why not scikit-learn in a loop: each call re-validates and re-sorts the same scores; here they are
    sorted once and every replicate's curve is a cumulative sum over the distinct scores (ties as one
    threshold, as scikit-learn treats them). Rows of `weights` lacking a positive or a negative are dropped.
    """
    order = np.argsort(-score, kind="stable")
    ordered = score[order]
    last = np.append(np.flatnonzero(np.diff(ordered) != 0), ordered.size - 1)  # last row of each distinct score
    positive = (y[order] == 1).astype(float)
    w = weights[:, order]
    tp = np.cumsum(w * positive, axis=1)[:, last]
    fp = np.cumsum(w * (1.0 - positive), axis=1)[:, last]
    total_pos, total_neg = tp[:, -1], fp[:, -1]
    keep = (total_pos > 0) & (total_neg > 0)
    tp, fp, total_pos, total_neg = tp[keep], fp[keep], total_pos[keep, None], total_neg[keep, None]
    zero = np.zeros((tp.shape[0], 1))
    tpr, fpr = np.hstack([zero, tp / total_pos]), np.hstack([zero, fp / total_neg])
    roc_auc = np.sum(np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2, axis=1)
    flagged = tp + fp
    precision = np.divide(tp, flagged, out=np.zeros_like(tp), where=flagged > 0)
    pr_auc = np.sum(np.diff(tpr, axis=1) * precision, axis=1)
    squared = (score - y) ** 2
    brier = (weights[keep] @ squared) / weights[keep].sum(axis=1)
    return {"roc_auc": roc_auc, "pr_auc": pr_auc, "brier": brier}


def calibration_line(y: np.ndarray, score: np.ndarray, weight: np.ndarray) -> dict[str, float | None]:
    """Calibration intercept (in the large, slope fixed at 1) and calibration slope, on the logit scale.

    Perfect calibration is intercept 0 and slope 1; a slope below 1 means predictions are too
    extreme (over-fitting), above 1 too timid.
    """

    if not both_classes(y, weight):
        return {"intercept": None, "slope": None}
    return {
        "intercept": intercept_with_offset(safe_logit(score), y, weight),
        "slope": Recalibration.fit(score, y, weight, with_slope=True).slope,
    }


def smoothed_calibration(y: np.ndarray, score: np.ndarray, weight: np.ndarray, points: int = 60) -> pd.DataFrame:
    """Observed risk as a smooth function of predicted risk (logistic regression on a spline of logit p).

    Evaluated on `points` predicted values spread over the 0.5-99.5th weighted percentiles,
    where there are patients to speak for the curve.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import SplineTransformer

    lp = safe_logit(score).reshape(-1, 1)
    order = np.argsort(lp[:, 0])
    cumulative = np.cumsum(weight[order]) / weight.sum()
    low, high = lp[order][np.searchsorted(cumulative, [0.005, 0.995]).clip(0, len(order) - 1), 0]
    curve = make_pipeline(
        SplineTransformer(n_knots=4, degree=3, extrapolation="linear"), LogisticRegression(C=100.0, max_iter=2000)
    ).fit(lp, y, logisticregression__sample_weight=weight)
    at = np.linspace(low, high, points).reshape(-1, 1)
    return pd.DataFrame({"predicted": 1 / (1 + np.exp(-at[:, 0])), "observed": curve.predict_proba(at)[:, 1]})


def _excludes_one(oe: dict[str, float | None]) -> bool:
    """The O/E interval excludes 1: the model's risk is off for this group beyond chance (False: no interval)."""
    low, high = oe["oe_low"], oe["oe_high"]
    return low is not None and high is not None and not (low <= 1.0 <= high)


def observed_expected(y: np.ndarray, score: np.ndarray, weight: np.ndarray) -> dict[str, float | None]:
    """Observed and expected events and their ratio, with an exact Poisson 95% interval on the observed count.

    The statistics are `model.stats.performance`'s (the monitor's); the keys are the card's.
    """
    from model.stats.performance import observed_expected as exact

    observed, expected = float(weight[y == 1].sum()), float(np.sum(score * weight))
    if expected <= 0:
        return {"observed": observed, "expected": expected, "oe": None, "oe_low": None, "oe_high": None}
    found = exact(y, score, weight)
    return {
        "observed": observed,
        "expected": expected,
        "oe": found["ratio"],
        "oe_low": found["ci_low"],
        "oe_high": found["ci_high"],
    }
