"""Pure maths on the stored threshold table (no Streamlit).

The table (`evaluation/thresholds.csv`) has one row per distinct test score:
flag = score >= threshold, counts are patient-weighted. Any slider value t maps
to the row with the smallest stored threshold >= t: flagging "score >= t" flags
exactly the same patients as flagging "score >= that stored score".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from model.core import artifact, schema

THRESHOLD_COLUMNS: tuple[str, ...] = (
    "threshold",
    "tp",
    "fp",
    "tn",
    "fn",
    "precision",
    "recall",
    "specificity",
    "f1",
    "flagged_share",
    "net_benefit",
)


class ThresholdTableError(ValueError):
    """The stored threshold table is unusable; the message says why and how to fix it."""


def prepare_table(table: pd.DataFrame) -> pd.DataFrame:
    """Validate the table and sort it by ascending threshold (what searchsorted needs)."""
    missing = [c for c in THRESHOLD_COLUMNS if c not in table.columns]
    if missing:
        raise ThresholdTableError(
            f"evaluation/thresholds.csv lacks columns {', '.join(missing)}; "
            "retrain with `python -m model.train` to rebuild the model directory."
        )
    if table.empty:
        raise ThresholdTableError("evaluation/thresholds.csv is empty; retrain with `python -m model.train`.")
    return table.sort_values("threshold", kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class OperatingPoint:
    """What flagging `score >= threshold` does to the test population."""

    threshold: float
    tp: float
    fp: float
    tn: float
    fn: float
    precision: float  # NaN when nobody is flagged
    recall: float
    specificity: float
    f1: float
    flagged_share: float

    @property
    def patients(self) -> float:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def flagged_per_1000(self) -> float:
        return 1000.0 * (self.tp + self.fp) / self.patients if self.patients else 0.0

    @property
    def deaths_missed_per_1000(self) -> float:
        return 1000.0 * self.fn / self.patients if self.patients else 0.0

    @property
    def net_benefit(self) -> float:
        return net_benefit(self.tp, self.fp, self.patients, self.threshold)


def operating_point(table: pd.DataFrame, threshold: float) -> OperatingPoint:
    """Operating point at `threshold` from a table sorted by `prepare_table`."""
    thresholds = table["threshold"].to_numpy()
    i = int(np.searchsorted(thresholds, threshold, side="left"))
    if i >= len(thresholds):  # above every score: nobody flagged
        last = table.iloc[-1]
        pos = float(last["tp"] + last["fn"])
        neg = float(last["fp"] + last["tn"])
        return OperatingPoint(float(threshold), 0.0, 0.0, neg, pos, math.nan, 0.0, 1.0 if neg else 0.0, 0.0, 0.0)
    row = table.iloc[i]
    flagged = float(row["tp"] + row["fp"])
    return OperatingPoint(
        threshold=float(threshold),
        tp=float(row["tp"]),
        fp=float(row["fp"]),
        tn=float(row["tn"]),
        fn=float(row["fn"]),
        # The writer stores precision 1.0 when nothing is flagged; "undefined" is the honest value.
        precision=float(row["precision"]) if flagged > 0 else math.nan,
        recall=float(row["recall"]),
        specificity=float(row["specificity"]),
        f1=float(row["f1"]),
        flagged_share=float(row["flagged_share"]),
    )


def net_benefit(tp: float, fp: float, patients: float, threshold: float) -> float:
    """Net benefit (Vickers & Elkin 2006): TP/n − FP/n · t/(1−t); NaN where undefined (t ≥ 1)."""
    if patients <= 0 or threshold >= 1.0:
        return math.nan
    return tp / patients - fp / patients * threshold / (1.0 - threshold)


def treat_all_net_benefit(prevalence: float, thresholds: np.ndarray) -> np.ndarray:
    """Net benefit of flagging everybody, the decision curve's reference line."""
    t = np.clip(np.asarray(thresholds, dtype=float), 0.0, 1.0 - 1e-9)
    return prevalence - (1.0 - prevalence) * t / (1.0 - t)


def threshold_for_recall(table: pd.DataFrame, min_recall: float) -> float:
    """The highest threshold whose recall is at least `min_recall` (fewest flags for that recall)."""
    ok = table[table["recall"] >= min_recall]
    return float(ok["threshold"].max()) if not ok.empty else float(table["threshold"].min())


def presets(table: pd.DataFrame) -> dict[str, float]:
    """Named operating thresholds an analyst can jump to."""
    high_band = schema.RISK_BANDS[2][1]
    return {
        "Recall ≥ 0.95": threshold_for_recall(table, 0.95),
        "Recall ≥ 0.80": threshold_for_recall(table, 0.80),
        "Best F1": artifact.max_f1_threshold(table),
        f"'{high_band}' band and above (≥ {schema.DEFAULT_THRESHOLD:.0%})": schema.DEFAULT_THRESHOLD,
    }
