"""Drift and live-performance monitoring of the deployed model (thresholds: docs/monitoring.md).

    python -m model.monitor --reference MODEL_DIR --current FILE_OR_LOG_DIR [--outcomes FILE] [--out report.json]

`--current` is a CDC data file (CSV / CSV.gz / Parquet, any schema version the
loader reads) or a folder of records collected by the scoring endpoint
(`scored-*.jsonl*`, see model/datacollect.py). Everything is first aggregated
into counts per model-input combination (the input space is small), so a
13M-row file costs one streaming pass and the statistics are exact.

Compared with the reference model directory:
* per model input: PSI and Jensen-Shannon distance of the category shares
  against `training_distribution.json`;
* predicted risk: PSI on the model's risk-histogram bins, mean predicted risk now vs at training;
* when outcomes are known (`death_yn` in the current file, or `--outcomes FILE`):
  ROC-AUC, PR-AUC, Brier and calibration next to the model card's test figures.

The verdict is "ok", "retrain recommended" (with reasons) or "insufficient data"
(too few rows to tell drift from noise). Exit code 0 for ok, 1 for retrain
recommended, 3 for insufficient data, 2 for a usage/data error.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pa_json

from model import artifact, drift, evaluate, lookup, schema
from model.loader import DataError, iter_canonical_batches

# --- thresholds (documented in docs/monitoring.md; change both together) -------------------
MIN_ROWS = 1_000  # fewer scored rows: shares are too noisy to call drift
MIN_OUTCOME_CLASS = 30  # fewer deaths (or survivors) with known outcome: no performance verdict
ROC_AUC_MAX_DROP = 0.05  # absolute
PR_AUC_MAX_DROP = 0.20  # relative to the model card's test PR-AUC
BRIER_MAX_RISE = 0.25  # relative to the Brier expected if the model were calibrated on this mix
CALIBRATION_MAX_GAP = 0.20  # |observed / predicted deaths - 1|
CALIBRATION_MIN_Z = 3.0  # ... and the gap must be this many standard errors (not noise)

THRESHOLDS = {
    "min_rows": MIN_ROWS, "psi_moderate": drift.PSI_MODERATE, "psi_major": drift.PSI_MAJOR,
    "min_outcome_class": MIN_OUTCOME_CLASS, "roc_auc_max_drop": ROC_AUC_MAX_DROP,
    "pr_auc_max_relative_drop": PR_AUC_MAX_DROP, "brier_max_relative_rise": BRIER_MAX_RISE,
    "calibration_max_gap": CALIBRATION_MAX_GAP, "calibration_min_z": CALIBRATION_MIN_Z,
}  # fmt: skip
REFERENCE_METRICS = ("roc_auc", "pr_auc", "brier", "prevalence", "mean_predicted")

VERDICT_OK = "ok"
VERDICT_RETRAIN = "retrain recommended"
VERDICT_INSUFFICIENT = "insufficient data"
EXIT_CODES = {VERDICT_OK: 0, VERDICT_RETRAIN: 1, VERDICT_INSUFFICIENT: 3}

LOG_PATTERN = "scored-*.jsonl*"
N_COMBINATIONS = schema.combination_count()


@dataclass
class Aggregate:
    """Rows of one source, counted per model-input combination (lookup index)."""

    source: str
    kind: str  # "file" | "collected"
    counts: np.ndarray = field(default_factory=lambda: np.zeros(N_COMBINATIONS))
    deaths: np.ndarray | None = None  # None: the source has no outcome column
    survivors: np.ndarray | None = None
    rows_read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    model_versions: Counter[str] = field(default_factory=Counter)
    files: int = 0

    @property
    def rows_used(self) -> int:
        return int(self.counts.sum())

    def drift_counts(self) -> tuple[np.ndarray, str]:
        """Counts to compare with the training reference, and which rows they are.

        The reference (training_distribution.json) describes training rows, i.e. patients
        with a known outcome; rows whose outcome is still unknown differ in mix (hospital
        fields are filled in later), so when the source says which rows have an outcome
        we compare like with like.
        """
        if self.deaths is not None and self.survivors is not None:
            known = self.deaths + self.survivors
            if known.sum() >= MIN_ROWS:
                return known, "rows with a known outcome (like the training reference)"
        return self.counts, "all usable rows"

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "kind": self.kind,
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "rows_skipped": dict(self.skipped.most_common()),
        }
        if self.kind == "collected":
            out["files"] = self.files
            out["model_versions"] = dict(self.model_versions)
        if self.deaths is not None and self.survivors is not None:
            out["rows_with_outcome"] = int(self.deaths.sum() + self.survivors.sum())
        return out


def _bincount(index: np.ndarray) -> np.ndarray:
    return np.bincount(index, minlength=N_COMBINATIONS).astype(np.float64)


def aggregate_file(path: str | Path, risk: lookup.RiskLookup) -> Aggregate:
    """Count a CDC data file per combination (and per outcome when it has death_yn).

    Rows with a value outside the schema are skipped and counted by reason, never guessed.
    """
    agg = Aggregate(source=str(path), kind="file")
    for batch in iter_canonical_batches(path, on_unknown="mark"):
        frame, problems = batch.frame, batch.problems
        agg.rows_read += len(frame)
        good = (problems == "").to_numpy() if problems is not None else np.ones(len(frame), dtype=bool)
        if not good.all():
            agg.skipped.update(problems[~good].tolist())
            frame = frame[good]
        index = risk.indices(frame[list(schema.MODEL_INPUTS)])
        agg.counts += _bincount(index)
        if schema.TARGET in frame.columns:
            outcome = frame[schema.TARGET].to_numpy(dtype=object)
            if agg.deaths is None:
                agg.deaths, agg.survivors = np.zeros(N_COMBINATIONS), np.zeros(N_COMBINATIONS)
            agg.deaths += _bincount(index[outcome == schema.TARGET_POSITIVE])
            agg.survivors += _bincount(index[outcome == schema.TARGET_NEGATIVE])
    return agg


def _read_jsonl(path: Path, agg: Aggregate) -> pd.DataFrame:
    """One collected file as a frame; a torn or foreign line is skipped and counted, not fatal."""
    try:
        return pa_json.read_json(path).to_pandas()
    except (pa.ArrowException, OSError):
        pass  # e.g. a line cut short by a crash: fall back to line by line
    rows = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                agg.skipped[f"{path.name}: line {number} is not JSON"] += 1
                continue
            if isinstance(item, dict):
                rows.append(item)
            else:
                agg.skipped[f"{path.name}: line {number} is not a record"] += 1
    return pd.DataFrame(rows)


def aggregate_collected(directory: str | Path, risk: lookup.RiskLookup) -> Aggregate:
    """Count the records the endpoint collected (`scored-*.jsonl` and their rotations)."""
    directory = Path(directory)
    files = sorted(p for p in directory.glob(LOG_PATTERN) if p.is_file())
    if not files:
        raise DataError(
            f"{directory}: no collected records ({LOG_PATTERN}). Point --current at the folder the endpoint "
            "writes to (its RISK_DATA_COLLECTION_DIR, default artifacts/collected/) or at a data file."
        )
    agg = Aggregate(source=str(directory), kind="collected", files=len(files))
    for path in files:
        frame = _read_jsonl(path, agg)
        agg.rows_read += len(frame)
        if frame.empty:
            continue
        missing = [c for c in schema.MODEL_INPUTS if c not in frame.columns]
        if missing:
            agg.skipped[f"{path.name}: records lack {', '.join(missing)}"] += len(frame)
            continue
        if "model_version" in frame.columns:
            agg.model_versions.update(frame["model_version"].astype(str).tolist())
        inputs = frame[list(schema.MODEL_INPUTS)]
        try:
            index = risk.indices(inputs)
        except lookup.PayloadError:
            # Rare (records are validated before scoring): keep the valid rows, count the rest.
            ok = np.ones(len(inputs), dtype=bool)
            for column in schema.MODEL_INPUTS:
                values = inputs[column].map(lambda v, c=column: schema.canonical_value(c, v)
                                            if isinstance(v, str) else None)  # fmt: skip
                ok &= values.notna().to_numpy()
                inputs = inputs.assign(**{column: values})
            agg.skipped[f"{path.name}: values outside the schema"] += int((~ok).sum())
            index = risk.indices(inputs[ok])
        agg.counts += _bincount(index)
    return agg


def aggregate(source: str | Path, risk: lookup.RiskLookup) -> Aggregate:
    source = Path(source)
    return aggregate_collected(source, risk) if source.is_dir() else aggregate_file(source, risk)


# --------------------------------------------------------------------------- statistics


def _combinations() -> pd.DataFrame:
    return lookup.index_to_frame(np.arange(N_COMBINATIONS))


def feature_shares(counts: np.ndarray, combos: pd.DataFrame | None = None) -> dict[str, dict[str, float]]:
    """Share of each category of each model input, from per-combination counts."""
    combos = _combinations() if combos is None else combos
    total = counts.sum()
    out = {}
    for column in schema.MODEL_INPUTS:
        sums = pd.Series(counts).groupby(combos[column].to_numpy()).sum()
        out[column] = {v: float(sums.get(v, 0.0) / total) if total else 0.0
                       for v in schema.FEATURES_BY_NAME[column].values}  # fmt: skip
    return out


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def performance(agg: Aggregate, risk: lookup.RiskLookup, card: dict[str, Any]) -> dict[str, Any]:
    """Live metrics on rows with a known outcome, next to the card's test metrics, and their checks."""
    deaths, survivors = agg.deaths, agg.survivors
    assert deaths is not None and survivors is not None
    reference = card.get("metrics", {}).get("test", {})
    out: dict[str, Any] = {
        "source": agg.source,
        "patients": float(deaths.sum() + survivors.sum()),
        "deaths": float(deaths.sum()),
        "reference": {k: _finite(reference.get(k)) for k in REFERENCE_METRICS},
        "assessed": False,
        "reasons": [],
        "warnings": [],
    }
    if deaths.sum() < MIN_OUTCOME_CLASS or survivors.sum() < MIN_OUTCOME_CLASS:
        out["warnings"].append(
            f"performance not assessed: {deaths.sum():,.0f} deaths and {survivors.sum():,.0f} survivors with a "
            f"known outcome; at least {MIN_OUTCOME_CLASS} of each are needed"
        )
        return out
    pos, neg = np.flatnonzero(deaths), np.flatnonzero(survivors)
    y = np.concatenate([np.ones(pos.size), np.zeros(neg.size)]).astype(int)
    score = risk.table[np.concatenate([pos, neg])]
    weight = np.concatenate([deaths[pos], survivors[neg]])
    live = evaluate.summary_metrics(y, score, weight)
    calibration = evaluate.calibration_table(y, score, weight)
    observed = float(deaths.sum())
    expected = float(np.sum(score * weight))
    variance = float(np.sum(score * (1 - score) * weight))
    z = (observed - expected) / math.sqrt(variance) if variance > 0 else math.inf
    expected_brier = variance / float(weight.sum())  # Brier if outcomes followed the model's own probabilities
    out.update(
        assessed=True,
        live=live,
        expected_brier=expected_brier,
        calibration=calibration.replace({np.nan: None}).to_dict(orient="records"),
        calibration_in_the_large={
            "observed_deaths": observed,
            "predicted_deaths": expected,
            "observed_to_predicted": observed / expected if expected else None,
            "z": z,
        },
    )
    ref = out["reference"]
    roc_drop = (ref["roc_auc"] - live["roc_auc"]) if live["roc_auc"] is not None and ref["roc_auc"] else 0.0
    if roc_drop > ROC_AUC_MAX_DROP:
        out["reasons"].append(
            f"ROC-AUC fell from {ref['roc_auc']:.3f} (model card, test) to {live['roc_auc']:.3f} "
            f"(more than {ROC_AUC_MAX_DROP} lower)"
        )
    if live["pr_auc"] is not None and ref["pr_auc"] and live["pr_auc"] < ref["pr_auc"] * (1 - PR_AUC_MAX_DROP):
        out["reasons"].append(
            f"PR-AUC fell from {ref['pr_auc']:.3f} (model card, test) to {live['pr_auc']:.3f} "
            f"(more than {PR_AUC_MAX_DROP:.0%} lower)"
        )
    if live["brier"] is not None and expected_brier > 0 and live["brier"] > expected_brier * (1 + BRIER_MAX_RISE):
        out["reasons"].append(
            f"Brier score {live['brier']:.5f} is more than {BRIER_MAX_RISE:.0%} above the {expected_brier:.5f} "
            "a calibrated model would reach on this case mix"
        )
    ratio = observed / expected if expected else math.inf
    if abs(ratio - 1) > CALIBRATION_MAX_GAP and abs(z) > CALIBRATION_MIN_Z:
        out["reasons"].append(
            f"calibration-in-the-large: {observed:,.0f} deaths observed vs {expected:,.1f} predicted "
            f"(ratio {ratio:.2f}, z = {z:.1f}); the model's probabilities no longer match the death rate"
        )
    return out


def build_report(reference_dir: str | Path, current: Aggregate, risk: lookup.RiskLookup,
                 outcomes: Aggregate | None = None) -> dict[str, Any]:  # fmt: skip
    """The monitoring report (JSON-ready): drift per feature, predicted-risk shift, performance, verdict."""
    card = artifact.load_card(reference_dir)
    reference = artifact.load_training_distribution(reference_dir)
    reasons: list[str] = []
    warnings: list[str] = []
    counts, population = current.drift_counts()
    enough = counts.sum() >= MIN_ROWS
    if not enough:
        warnings.append(
            f"only {counts.sum():,.0f} usable rows (at least {MIN_ROWS:,} are needed): shares this small differ "
            "from training by chance, so no drift verdict is given"
        )
    if current.model_versions and set(current.model_versions) != {risk.model_version}:
        warnings.append(
            f"collected records come from model version(s) {', '.join(sorted(current.model_versions))}; the "
            f"reference is {risk.model_version}"
        )
    if current.skipped:
        warnings.append(f"{sum(current.skipped.values()):,} rows skipped (values outside the schema); see rows_skipped")

    features: dict[str, Any] = {}
    if counts.sum():
        shares = feature_shares(counts)
        for column in schema.MODEL_INPUTS:
            values = schema.FEATURES_BY_NAME[column].values
            result = drift.compare(values, reference["features"][column], shares[column])
            features[column] = result
            if not enough:
                continue
            if result["status"] == "major":
                reasons.append(f"{column}: major shift in its mix of values (PSI {result['psi']:.3f} > "
                               f"{drift.PSI_MAJOR})")  # fmt: skip
            elif result["status"] == "moderate":
                warnings.append(f"{column}: moderate shift (PSI {result['psi']:.3f})")

    predicted: dict[str, Any] = {}
    ref_hist = reference.get("predicted_risk") or {}
    if counts.sum() and ref_hist:
        hist = evaluate.risk_histogram(risk.table, counts)
        if list(hist["bins"]) != [float(b) for b in ref_hist["bins"]]:
            raise ValueError("the reference's risk histogram has other bins than model.evaluate's; retrain the model")
        value = drift.psi(ref_hist["shares"], hist["shares"])
        predicted = {
            "bins": hist["bins"],
            "reference_shares": [float(s) for s in ref_hist["shares"]],
            "current_shares": hist["shares"],
            "psi": value,
            "js_distance": drift.js_distance(ref_hist["shares"], hist["shares"]),
            "status": drift.psi_status(value),
            "mean_current": float(np.average(risk.table, weights=counts)),
            "mean_reference": _finite(card.get("metrics", {}).get("test", {}).get("mean_predicted")),
        }
        if enough and predicted["status"] == "major":
            reasons.append(f"predicted risk: major shift in its distribution (PSI {value:.3f} > {drift.PSI_MAJOR}); "
                           f"mean {predicted['mean_current']:.4f} now")  # fmt: skip
        elif enough and predicted["status"] == "moderate":
            warnings.append(f"predicted risk: moderate shift (PSI {value:.3f})")

    labelled = outcomes if outcomes is not None else (current if current.deaths is not None else None)
    perf = None
    if labelled is not None and labelled.deaths is not None:
        perf = performance(labelled, risk, card)
        reasons += perf["reasons"]
        warnings += perf["warnings"]

    verdict = VERDICT_RETRAIN if reasons else (VERDICT_OK if enough or (perf and perf["assessed"]) else
                                               VERDICT_INSUFFICIENT)  # fmt: skip
    return {
        "verdict": verdict,
        "reasons": reasons,
        "warnings": warnings,
        "model_version": risk.model_version,
        "reference": {"model_dir": str(reference_dir), "patients": reference.get("patients")},
        "current": {**current.summary(), "drift_population": population},
        "outcomes": outcomes.summary() if outcomes is not None else None,
        "thresholds": THRESHOLDS,
        "features": features,
        "predicted_risk": predicted,
        "performance": perf,
    }


def monitor(reference_dir: str | Path, current: str | Path, outcomes: str | Path | None = None) -> dict[str, Any]:
    """Aggregate the sources and build the report (the CLI and the dashboard page call this)."""
    risk = lookup.RiskLookup.from_model_dir(reference_dir)
    cur = aggregate(current, risk)
    out = aggregate_file(outcomes, risk) if outcomes is not None else None
    if out is not None and out.deaths is None:
        raise DataError(f"{outcomes}: has no {schema.TARGET} column, so it cannot give outcomes. "
                        f"Give a file with {schema.TARGET} (Yes/No).")  # fmt: skip
    return build_report(reference_dir, cur, risk, out)


def format_report(report: dict[str, Any]) -> str:
    """The report for people: verdict first, then what it rests on."""
    cur = report["current"]
    lines = [
        f"VERDICT: {report['verdict'].upper()}",
        *(f"  reason: {r}" for r in report["reasons"]),
        *(f"  warning: {w}" for w in report["warnings"]),
        "",
        f"model {report['model_version']}; current data {cur['source']} ({cur['kind']}): "
        f"{cur['rows_used']:,} rows used of {cur['rows_read']:,}",
        "",
        f"{'feature':<16}{'PSI':>8}{'JS dist':>9}  status",
    ]
    for name, f in report["features"].items():
        lines.append(f"{name:<16}{f['psi']:>8.4f}{f['js_distance']:>9.4f}  {f['status']}")
    p = report["predicted_risk"]
    if p:
        mean_ref = f"{p['mean_reference']:.4f}" if p["mean_reference"] is not None else "n/a"
        lines.append(f"{'predicted risk':<16}{p['psi']:>8.4f}{p['js_distance']:>9.4f}  {p['status']} "
                     f"(mean {p['mean_current']:.4f} now, {mean_ref} at training)")  # fmt: skip
    perf = report["performance"]
    if perf and perf["assessed"]:
        live, ref = perf["live"], perf["reference"]
        lines += ["", f"live performance on {perf['patients']:,.0f} patients with known outcome "
                  f"({perf['deaths']:,.0f} deaths)", f"{'metric':<16}{'live':>10}{'model card':>12}"]  # fmt: skip
        for key in ("roc_auc", "pr_auc", "brier", "prevalence", "mean_predicted"):
            a, b = live.get(key), ref.get(key)
            lines.append(f"{key:<16}{a if a is None else f'{a:.4f}':>10}{b if b is None else f'{b:.4f}':>12}")
        cil = perf["calibration_in_the_large"]
        lines.append(f"deaths observed {cil['observed_deaths']:,.0f} vs predicted {cil['predicted_deaths']:,.1f} "
                     f"(z = {cil['z']:.1f})")  # fmt: skip
    return "\n".join(lines)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.monitor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, type=Path, help="model directory (its training distribution)")
    parser.add_argument("--current", required=True, type=Path,
                        help="data file, or the endpoint's collected-data folder")  # fmt: skip
    parser.add_argument("--outcomes", type=Path, help="data file with death_yn for live performance")
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    args = parser.parse_args(argv)
    try:
        report = monitor(args.reference, args.current, args.outcomes)
    except (DataError, artifact.ArtifactError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=_json_default), encoding="utf-8")
        print(f"\nwrote {args.out}")
    return EXIT_CODES[report["verdict"]]


if __name__ == "__main__":
    sys.exit(main())
