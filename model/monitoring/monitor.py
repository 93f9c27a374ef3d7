"""Drift and live-performance monitoring of the deployed model (limits and exit codes: docs/monitoring.md).

    python -m model.monitor --reference MODEL_DIR --current FILE_OR_LOG_DIR [--outcomes FILE] [--out report.json]

`--current` is a CDC data file (CSV / CSV.gz / Parquet, any schema version the
loader reads) or a folder of records collected by the scoring endpoint
(`scored-*.jsonl*`, see model/serving/datacollect.py). Everything is first aggregated
into counts per model-input combination (the input space is small), so a
13M-row file costs one streaming pass and the statistics are exact.

What it answers, in this order:
* With enough known outcomes (`death_yn` in the current file, or `--outcomes FILE`):
  is the model still calibrated (observed/expected deaths with a 95% CI, calibration
  slope) and does it still rank (ROC-AUC against the model card's test figure)?
  Verdict "ok", "recalibrate" (deaths off, ranking and slope fine: update the
  intercept with `python -m model.recalibrate`) or "retrain" (ranking lost or slope far off).
* Otherwise: has the case mix moved, beyond chance (G-test per input and for the
  predicted-risk histogram, Holm-corrected) and by enough to matter (PSI, largest
  share ratio)? Verdict "ok" or "drift" (collect outcomes to choose).
* Too few rows for either: "insufficient data".
Rows with a known outcome are compared with the training reference, which describes
rows with a known outcome too (like with like).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from model.core import artifact, exit_codes, schema
from model.core.json_safe import json_default
from model.core.risk_table import table_rows
from model.data import case_dates
from model.data.loader import DataError, arrow_batches, describe_source, iter_canonical_batches
from model.serving import lookup
from model.stats import drift, evaluate, performance

# --- limits (documented in docs/monitoring.md; change both together) -----------------------
ALPHA = 0.01  # family-wise false-alarm rate of one report's tests (Holm within the drift or the performance family)
MIN_DRIFT_ROWS = 500  # fewer compared rows: no drift verdict (the statistics are still shown)
MIN_EVENTS = 100  # deaths and survivors needed for a performance verdict (Collins et al., Stat Med 2016;35:214)
OE_MATERIAL = 1.1  # observed/expected outside [1/1.1, 1.1] (and significant): recalibrate
SLOPE_NEAR = (0.8, 1.25)  # calibration slope outside this (and significantly != 1), ranking intact: recalibrate
# A calibration slope whose whole interval is below this: the ranking carries too little risk to recalibrate.
SLOPE_RANKING_LOST = 0.5
# Share of the judged patients in extrapolated combinations (< 20 training patients) above the training share
# by more than this: the case mix left the training support, retrain.
SUPPORT_MAX_SHARE = 0.05
ROC_AUC_MAX_DROP = 0.05  # ROC-AUC lower than the card's test figure by more than this (and significant): retrain
# Inputs whose reported value depends on the outcome's follow-up (Unknown/Missing far commoner where the
# outcome is unknown): rows without outcomes cannot be compared with a known-outcome reference on them.
OUTCOME_DEPENDENT_INPUTS = ("hosp_yn", "icu_yn", "medcond_yn")
INTAKE_DATE_COLUMNS = ("onset_dt", "pos_spec_dt")
DEFAULT_CASE_MIX = Path(__file__).resolve().parents[2] / "data" / "cdc_first_wave_500k.csv.gz"  # power table

THRESHOLDS = {
    "alpha_family_wise": ALPHA,
    "correction": "Holm",
    "test": "G-test (likelihood-ratio chi-square)",
    "min_expected_per_category": drift.MIN_EXPECTED,
    "min_drift_rows": MIN_DRIFT_ROWS,
    "psi_moderate": drift.PSI_MODERATE,
    "psi_major": drift.PSI_MAJOR,
    "share_ratio_moderate": drift.RATIO_MODERATE,
    "share_ratio_major": drift.RATIO_MAJOR,
    "share_ratio_min_share": drift.RATIO_MIN_SHARE,
    "min_events": MIN_EVENTS,
    "observed_expected_material": OE_MATERIAL,
    "calibration_slope_near": list(SLOPE_NEAR),
    "roc_auc_max_drop": ROC_AUC_MAX_DROP,
    "outside_support_max_share": SUPPORT_MAX_SHARE,
    "calibration_slope_ranking_lost_below": SLOPE_RANKING_LOST,
    "roc_auc_expected": "model-based concordance under the recalibrated risks (van Klaveren et al. 2016)",
    "roc_auc_se": "DeLong (exact on tied, aggregated scores)",
    "observed_expected_variance": "binomial (sum of p(1-p))",
    "confidence_intervals": performance.CONFIDENCE,
}
REFERENCE_METRICS = ("roc_auc", "pr_auc", "brier", "prevalence", "mean_predicted")

VERDICT_OK = "ok"
VERDICT_RECALIBRATE = "recalibrate"
VERDICT_RETRAIN = "retrain"
VERDICT_DRIFT = "drift"
VERDICT_INSUFFICIENT = "insufficient data"
# Each verdict's exit code (model/core/exit_codes.py, the one table of every tool): a usage or data error (2) or a
# crash (70, `guarded`) can never be read as a verdict.
EXIT_CODES = {
    VERDICT_OK: exit_codes.OK,
    VERDICT_INSUFFICIENT: exit_codes.INSUFFICIENT_DATA,
    VERDICT_DRIFT: exit_codes.DRIFT,
    VERDICT_RECALIBRATE: exit_codes.RECALIBRATE,
    VERDICT_RETRAIN: exit_codes.RETRAIN,
}
ACTIONS = {
    VERDICT_OK: "No action: the model still fits these patients.",
    VERDICT_RECALIBRATE: "Recalibrate on recent cases with known outcomes: python -m model.recalibrate --model "
    "MODEL_DIR --data RECENT_FILE --out NEW_MODEL_DIR (see docs/monitoring.md).",
    VERDICT_RETRAIN: "Retrain on recent data: python -m model.train --data RECENT_FILE --out NEW_MODEL_DIR.",
    VERDICT_DRIFT: "The case mix changed. Collect outcomes for recent cases and run again with them (--outcomes, "
    "or a file with death_yn) to choose between recalibrating and retraining.",
    VERDICT_INSUFFICIENT: "Gather more rows (and outcomes) before judging the model.",
}

LOG_PATTERN = "scored-*.jsonl*"
UNMARKED = "unmarked"
ALL_TRAFFIC = "all"
# --traffic: which collected rows are judged. Rows from before kinds were recorded count as live patients.
TRAFFIC_CHOICES: dict[str, tuple[str, ...]] = {
    ALL_TRAFFIC: (schema.LIVE, schema.BATCH, UNMARKED),
    schema.LIVE: (schema.LIVE, UNMARKED),
    schema.BATCH: (schema.BATCH,),
}


# --- Model access: the one place that knows how the artifact scores (lookup internals) ----------


def load_model(model_dir: str | Path) -> lookup.RiskLookup:
    """The model's probability for every input combination (scores through model.serving.lookup's public API)."""
    return lookup.RiskLookup.from_model_dir(model_dir)


def model_inputs(risk: lookup.RiskLookup) -> tuple[str, ...]:
    return schema.MODEL_INPUTS


def combination_index(risk: lookup.RiskLookup, frame: pd.DataFrame) -> np.ndarray:
    """Index of each row's input combination (raises lookup.PayloadError for values outside the schema)."""
    return risk.indices(frame[list(model_inputs(risk))])


def combination_probabilities(risk: lookup.RiskLookup) -> np.ndarray:
    return np.asarray(risk.table, dtype=np.float64)


def combination_values(risk: lookup.RiskLookup) -> pd.DataFrame:
    """The input values of every combination, row i = index i."""
    return lookup.index_to_frame(np.arange(len(risk.table)))


# --- aggregation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Space:
    """The combinations an aggregate's counts are indexed by, when not the lookup's full records.

    Collected records may leave inputs out (a request's "not known": `null` in the record). They are counted
    per *request* combination, each with the endpoint's own answer for it: the probability
    `RiskLookup.request_probability` gives (a sub-model's where inputs were left out; race/ethnicity is never
    collected, so race-blind), the model that answered and whether the answer was extrapolated.
    """

    values: pd.DataFrame  # the six core inputs per combination, missing (None/NaN) where left out
    probability: np.ndarray
    model: np.ndarray  # name of the model that answered each combination
    extrapolated: np.ndarray
    averaged: np.ndarray  # True where an input of that model was left out: a sub-model's averaged answer


@dataclass
class Aggregate:
    """Rows of one source, counted per model-input combination (of `space`, or the lookup's full records)."""

    source: str
    kind: str  # "file" | "collected"
    counts: np.ndarray
    deaths: np.ndarray | None = None  # None: the source has no outcome column
    survivors: np.ndarray | None = None
    rows_read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    model_versions: Counter[str] = field(default_factory=Counter)
    traffic: Counter[str] = field(default_factory=Counter)  # collected rows read, by kind: live, batch, unmarked
    traffic_judged: str = ALL_TRAFFIC  # which kinds were counted (TRAFFIC_CHOICES)
    files: int = 0
    excluded: int = 0  # rows outside the intake population (schema.INTAKE_EXCLUSION), left out
    population_rule: bool = True  # False: the source has no dates to apply the intake-population rule
    space: Space | None = None  # None: counts are over the lookup's full records (`combination_values`)

    @property
    def rows_used(self) -> int:
        return int(self.counts.sum())

    def left_out(self) -> dict[str, int]:
        """Rows that left each input out (collected requests' "not known"); empty for full records."""
        if self.space is None:
            return {}
        return {c: int(self.counts[self.space.values[c].isna().to_numpy()].sum()) for c in schema.MODEL_INPUTS}

    def drift_counts(self) -> tuple[np.ndarray, str]:
        """Counts to compare with the training reference, and which rows they are.

        The reference (training_distribution.json) describes training rows, i.e. patients
        with a known outcome. Rows whose outcome is still unknown differ in mix (hospital
        fields are filled in with the outcome, and severe cases are followed up more), so a
        source with an outcome column is compared on its known-outcome rows only, however few.
        """
        if self.deaths is not None and self.survivors is not None:
            return self.deaths + self.survivors, "rows with a known outcome (like the training reference)"
        return self.counts, "all rows (this source has no outcomes)"

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "kind": self.kind,
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "rows_skipped": dict(self.skipped.most_common()),
        }
        if self.kind == "file":
            out["excluded_outside_intake_population"] = self.excluded
            out["intake_population_rule"] = (
                schema.INTAKE_EXCLUSION if self.population_rule else "not applied: the file has no onset/specimen dates"
            )
        if self.kind == "collected":
            out["files"] = self.files
            out["model_versions"] = dict(self.model_versions)
            out["traffic"] = dict(self.traffic)
            out["traffic_judged"] = self.traffic_judged
            out["left_out"] = self.left_out()
        if self.deaths is not None and self.survivors is not None:
            out["rows_with_outcome"] = int(self.deaths.sum() + self.survivors.sum())
        return out


def _bincount(index: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(index, minlength=size).astype(np.float64)


def _intake_flags(path: str | Path) -> Iterator[np.ndarray | None]:
    """Per chunk of `iter_canonical_batches(path)`: True for rows of the intake population (None: no dates).

    The same rule as training (`schema.INTAKE_EXCLUSION`, `model.data.loader`): a probable case with
    neither an onset nor a positive-specimen date was found through a death certificate, not at
    an intake. A file without both date columns (or without current_status) cannot tell: every
    row counts, and the report says so. Chunks line up with the canonical reader's (same reader,
    same file); a mismatch is an internal error, never a silent misalignment.
    """
    info = describe_source(path)
    columns = ("current_status", *INTAKE_DATE_COLUMNS)
    if not all(c in info.mapped for c in columns):
        while True:
            yield None
    for batch in arrow_batches(info, columns):
        status = pc.dictionary_encode(batch.column(0).cast(pa.string()), null_encoding="encode")
        is_probable = [
            schema.canonical_value("current_status", v) == "Probable Case" for v in status.dictionary.to_pylist()
        ]
        probable = np.array(is_probable, dtype=bool)[status.indices.to_numpy(zero_copy_only=False)]
        dateless = ~_has_date(batch.column(1)) & ~_has_date(batch.column(2))
        yield ~(probable & dateless)


def _has_date(cells: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """True where a date cell holds a usable date (`case_dates.parse`, either day/month order; Parquet dates as is).

    Only whether a date exists matters here (the intake-population rule), so the file's slash order is not needed:
    a cell that reads as a date in either order is a date, as the loader would count it under the file's order.
    """
    if pa.types.is_date(cells.type) or pa.types.is_timestamp(cells.type):
        return ~np.asarray(pc.is_null(cells).to_numpy(zero_copy_only=False), dtype=bool)
    encoded = pc.dictionary_encode(cells.cast(pa.string()), null_encoding="encode")
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    usable = [
        any(
            case_dates.parse(v, order)[0] != case_dates.NO_DATE
            for order in (case_dates.FORMAT_MDY, case_dates.FORMAT_DMY)
        )
        for v in encoded.dictionary.to_pylist()
    ]
    return np.array(usable, dtype=bool)[encoded.indices.to_numpy(zero_copy_only=False)]


def aggregate_file(path: str | Path, risk: lookup.RiskLookup) -> Aggregate:
    """Count a CDC data file per combination (and per outcome when it has death_yn), intake population only.

    Rows with a value outside the schema are skipped and counted by reason, never guessed. Rows
    outside the intake population (`schema.INTAKE_EXCLUSION`) are counted in `excluded` and left
    out, as training leaves them out: the model and its reference figures describe intake patients.
    """
    size = len(combination_probabilities(risk))
    agg = Aggregate(source=str(path), kind="file", counts=np.zeros(size))
    flags = _intake_flags(path)
    for batch in iter_canonical_batches(path, on_unknown="mark"):
        frame, problems, intake = batch.frame, batch.problems, next(flags)
        agg.rows_read += len(frame)
        keep = (problems == "").to_numpy(copy=True) if problems is not None else np.ones(len(frame), dtype=bool)
        if problems is not None and not keep.all():  # without problems every row is kept
            agg.skipped.update(problems[~keep].tolist())
        if intake is None:
            agg.population_rule = False
        elif len(intake) != len(frame):
            raise RuntimeError(f"{path}: date and input chunks differ ({len(intake)} vs {len(frame)} rows)")
        else:
            agg.excluded += int(np.sum(keep & ~intake))
            keep &= intake
        _count(agg, frame[keep], risk, size)
    return agg


def _count(agg: Aggregate, frame: pd.DataFrame, risk: lookup.RiskLookup, size: int) -> None:
    """Add a chunk's rows to the per-combination counts (and outcome counts when it has death_yn)."""
    index = combination_index(risk, frame)
    agg.counts += _bincount(index, size)
    if schema.TARGET in frame.columns:
        outcome = frame[schema.TARGET].to_numpy(dtype=object)
        if agg.deaths is None:
            agg.deaths, agg.survivors = np.zeros(size), np.zeros(size)
        agg.deaths += _bincount(index[outcome == schema.TARGET_POSITIVE], size)
        agg.survivors += _bincount(index[outcome == schema.TARGET_NEGATIVE], size)


def _read_jsonl(path: Path, agg: Aggregate) -> pd.DataFrame:
    """One collected file as a frame; a torn or foreign line is skipped and counted, not fatal."""
    try:
        return pa_json.read_json(path).to_pandas()
    except (pa.ArrowException, OSError):
        pass  # e.g. a line cut short by a crash, or mixed types: fall back to line by line
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


NOT_STRINGS = "values outside the schema (or not strings)"


def _request_indices(inputs: pd.DataFrame, name: str, agg: Aggregate) -> np.ndarray:
    """Request index of each collected row, as the endpoint computed it (-1: skipped and counted).

    A null input was left out of the request (`model/serving/datacollect.py`): the record is rebuilt without it and
    validated by the endpoint's own `lookup.validate_indices`, once per distinct combination. A value that
    is neither a string nor null, or outside the schema, skips the row (records are validated before scoring,
    so this means a foreign or damaged file).
    """
    raw = inputs.astype(object)
    given = raw.notna().to_numpy()
    strings = raw.map(lambda v: isinstance(v, str)).to_numpy()
    usable = np.all(strings | ~given, axis=1)
    keys = raw.where(given & strings, None).where(given, "")  # "" marks a left-out input (never a valid value)
    codes, combos = pd.factorize(pd.MultiIndex.from_frame(keys))
    index_of = np.full(len(combos), -1, dtype=np.int64)
    for i, combo in enumerate(combos):
        record = {c: v for c, v in zip(inputs.columns, combo, strict=True) if v != ""}
        with contextlib.suppress(lookup.PayloadError, TypeError):  # stays -1: skipped and counted
            index_of[i] = lookup.validate_indices([record])[0]
    index = np.where(usable, index_of[codes], -1)
    if (index < 0).any():
        agg.skipped[f"{name}: {NOT_STRINGS}"] += int((index < 0).sum())
    return index


def _request_space(risk: lookup.RiskLookup, index: np.ndarray) -> Space:
    """The endpoint's answers for request indices: inputs (missing where left out), probability, model, extrapolated."""
    values = lookup.request_frame(index)
    records = [{c: v for c, v in row.items() if isinstance(v, str)} for row in values.to_dict("records")]
    answers = risk.score_records(records, max_records=max(len(records), 1)) if records else []
    return Space(
        values=values,
        probability=risk.request_probability[index],
        model=np.array([a["model"] for a in answers], dtype=object),
        extrapolated=np.array([bool(a["extrapolated"]) for a in answers], dtype=bool),
        # An intake answer without the hospital fields is the intake model's own: it never uses them.
        averaged=np.array(
            [bool(set(schema.MODEL_FEATURES[a["model"]]) - {schema.RACE} - set(a["inputs_used"])) for a in answers],
            dtype=bool,
        ),
    )


def _outcome_counts(frame: pd.DataFrame, keep: np.ndarray, index: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    """Deaths and survivors per request index, for collected rows that carry a linked `death_yn`."""
    outcome = frame[schema.TARGET].map(lambda v: schema.canonical_value(schema.TARGET, v) if isinstance(v, str) else v)
    outcome = outcome.to_numpy(dtype=object)[keep]
    return (
        _bincount(index[outcome == schema.TARGET_POSITIVE], size),
        _bincount(index[outcome == schema.TARGET_NEGATIVE], size),
    )


def _collected_file(path: Path, risk: lookup.RiskLookup, agg: Aggregate, totals: dict[str, np.ndarray]) -> None:
    """Add one collected file's rows of the chosen traffic to the per-request-index totals."""
    frame = _read_jsonl(path, agg)
    agg.rows_read += len(frame)
    if frame.empty:
        return
    inputs_needed = list(model_inputs(risk))
    missing = [c for c in inputs_needed if c not in frame.columns]
    if missing:
        agg.skipped[f"{path.name}: records lack {', '.join(missing)}"] += len(frame)
        return
    if "model_version" in frame.columns:
        agg.model_versions.update(frame["model_version"].astype(str).tolist())
    # Rows collected before the endpoint marked traffic kinds count as "unmarked".
    kinds = frame["traffic"].fillna(UNMARKED) if "traffic" in frame.columns else pd.Series(UNMARKED, frame.index)
    agg.traffic.update(kinds.astype(str).tolist())
    chosen = kinds.isin(TRAFFIC_CHOICES[agg.traffic_judged]).to_numpy()
    index = _request_indices(frame.loc[chosen, inputs_needed], path.name, agg)
    keep = index >= 0
    size = len(totals["counts"])
    totals["counts"] += _bincount(index[keep], size)
    if schema.TARGET in frame.columns:  # outcomes linked to the collected records afterwards (by request id)
        deaths, survivors = _outcome_counts(frame.loc[chosen], keep, index[keep], size)
        totals["deaths"] = totals.get("deaths", np.zeros(size)) + deaths
        totals["survivors"] = totals.get("survivors", np.zeros(size)) + survivors


def aggregate_collected(directory: str | Path, risk: lookup.RiskLookup, traffic: str = ALL_TRAFFIC) -> Aggregate:
    """Count the records the endpoint collected (`scored-*.jsonl` and their rotations) of the chosen traffic.

    Counted per request combination (inputs left out included), each with the answer the endpoint gave it
    (`Space`); collected rows that carry a linked `death_yn` also count as deaths or survivors.
    """
    if traffic not in TRAFFIC_CHOICES:
        raise ValueError(f"traffic must be one of {', '.join(TRAFFIC_CHOICES)}, not {traffic!r}")
    directory = Path(directory)
    files = sorted(p for p in directory.glob(LOG_PATTERN) if p.is_file())
    if not files:
        raise DataError(
            f"{directory}: no collected records ({LOG_PATTERN}). Point --current at the folder the endpoint "
            "writes to (its RISK_DATA_COLLECTION_DIR, default artifacts/collected/) or at a data file."
        )
    agg = Aggregate(source=str(directory), kind="collected", counts=np.zeros(0), files=len(files))
    agg.traffic_judged = traffic
    totals = {"counts": np.zeros(len(risk.request_probability))}
    for path in files:
        _collected_file(path, risk, agg, totals)
    seen = np.flatnonzero(totals["counts"])
    agg.space = _request_space(risk, seen)
    agg.counts = totals["counts"][seen]
    if "deaths" in totals:
        agg.deaths, agg.survivors = totals["deaths"][seen], totals["survivors"][seen]
    return agg


def traffic_text(current: dict[str, Any]) -> str:
    """Collected rows by kind and which were judged ("traffic: 3,000 batch, 120 live; all judged"); "" for a file."""
    kinds = current.get("traffic") or {}
    if not kinds:
        return ""
    judged = current.get("traffic_judged", ALL_TRAFFIC)
    which = "all judged" if judged == ALL_TRAFFIC else f"{' and '.join(TRAFFIC_CHOICES[judged])} judged"
    return "traffic: " + ", ".join(f"{n:,} {kind}" for kind, n in sorted(kinds.items())) + f"; {which}"


def aggregate(source: str | Path, risk: lookup.RiskLookup, traffic: str = ALL_TRAFFIC) -> Aggregate:
    """A data file, or the collected-data folder (of which only the chosen traffic is counted)."""
    source = Path(source)
    return aggregate_collected(source, risk, traffic) if source.is_dir() else aggregate_file(source, risk)


# --- drift -------------------------------------------------------------------------------------


def feature_counts(counts: np.ndarray, combos: pd.DataFrame, columns: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Rows per category of each input, from per-combination counts (rows that left the input out: in none)."""
    out = {}
    for column in columns:
        sums = pd.Series(counts).groupby(combos[column].to_numpy()).sum()
        out[column] = {v: float(sums.get(v, 0.0)) for v in schema.FEATURES_BY_NAME[column].values}
    return out


def feature_shares(counts: np.ndarray, combos: pd.DataFrame, columns: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Share of each category of each input, from per-combination counts."""
    total = counts.sum()
    return {
        c: {v: (n / total if total else 0.0) for v, n in values.items()}
        for c, values in feature_counts(counts, combos, columns).items()
    }


def _reference_population(reference: dict[str, Any], has_outcomes: bool) -> tuple[dict[str, Any], str, set[str]]:
    """The reference block to compare with, its description, and the checks it cannot support."""
    if has_outcomes:
        return reference, "training rows with a known outcome", set()
    if isinstance(reference.get("all_rows"), dict):
        return reference["all_rows"], "all training rows, known outcome or not", set()
    # Only a known-outcome reference: the inputs filled in with the outcome (and the risk they drive) differ
    # between the two populations whatever happens, so they are shown but not judged.
    return reference, "training rows with a known outcome", {*OUTCOME_DEPENDENT_INPUTS, "predicted_risk"}


def _with_status(result: dict[str, Any], adjusted_p: float | None, enough: bool) -> dict[str, Any]:
    if adjusted_p is None:
        result.update(p_adjusted=None, significant=False, status="not compared")
        return result
    significant = enough and adjusted_p < ALPHA
    result.update(
        p_adjusted=adjusted_p,
        significant=significant,
        status=drift.status(significant, result["psi"], result["largest_change"]),
    )
    return result


def drift_report(
    counts: np.ndarray,
    risk: lookup.RiskLookup,
    reference: dict[str, Any],
    not_comparable: set[str],
    enough: bool,
    space: Space | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-input and predicted-risk comparisons with G-tests, Holm-adjusted over the compared ones.

    Each input is compared on the rows that gave it; rows whose request left it out are counted beside it
    (`left_out`), and an input every row left out is not compared at all. The predicted risk is the answer
    each row got, sub-model answers included (`space`; the lookup's full-record table without one)."""
    features: dict[str, Any] = {}
    if not counts.sum():
        return features, {}
    combos = space.values if space is not None else combination_values(risk)
    inputs = tuple(c for c in model_inputs(risk) if c in reference.get("features", {}))
    by_category = feature_counts(counts, combos, inputs)
    total = counts.sum()
    for column in inputs:
        values = schema.FEATURES_BY_NAME[column].values
        cats = by_category[column]
        given = sum(cats.values())
        if not given:
            continue
        features[column] = drift.compare(
            values,
            reference["features"][column],
            {v: n / given for v, n in cats.items()},
            counts=[cats[v] for v in values],
            reference_n=reference.get("patients"),
            left_out=total - given,
        )
    predicted: dict[str, Any] = {}
    ref_hist = reference.get("predicted_risk") or {}
    probabilities = space.probability if space is not None else combination_probabilities(risk)
    if ref_hist:
        hist = evaluate.risk_histogram(probabilities, counts)
        if list(hist["bins"]) != [float(b) for b in ref_hist["bins"]]:
            raise ValueError(
                "the reference's risk histogram has other bins than model.stats.evaluate's; retrain the model"
            )
        labels = [f"{lo:g}-{hi:g}" for lo, hi in zip(hist["bins"][:-1], hist["bins"][1:], strict=True)]
        result = drift.compare(
            labels,
            dict(zip(labels, ref_hist["shares"], strict=True)),
            dict(zip(labels, hist["shares"], strict=True)),
            counts=np.asarray(hist["shares"]) * total,
            reference_n=reference.get("patients"),
        )
        predicted = {
            **result,
            "bins": hist["bins"],
            "reference_shares": [float(s) for s in ref_hist["shares"]],
            "current_shares": hist["shares"],
            "mean_current": float(np.average(probabilities, weights=counts)),
        }
    p_values = {c: r["test"]["p_value"] for c, r in features.items() if c not in not_comparable}
    if predicted and "predicted_risk" not in not_comparable:
        p_values["predicted_risk"] = predicted["test"]["p_value"]
    adjusted = drift.holm(p_values)
    for column, result in features.items():
        _with_status(result, adjusted.get(column), enough)
    if predicted:
        _with_status(predicted, adjusted.get("predicted_risk"), enough)
    return features, predicted


def _describe_change(name: str, result: dict[str, Any]) -> str:
    change = result.get("largest_change")
    biggest = (
        (
            f"; largest change {change['value']} {change['reference']:.1%} -> {change['current']:.1%} "
            f"(x{change['ratio']:.2f})"
        )
        if change
        else ""
    )
    return (
        f"{name}: {result['status']} shift (PSI {result['psi']:.3f}{biggest}; G-test p = "
        f"{result['p_adjusted']:.2g} after Holm)"
    )


# --- performance ------------------------------------------------------------------------------


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


@dataclass(frozen=True)
class ModelView:
    """One trained model over the lookup's combinations: the rows it is judged on and its risk for them.

    Each model is judged on its own rows with its own table, as on the card's test split: the
    intake model on every intake patient, the in-hospital model on those with both hospital answers
    Yes/No. Judging the routed risk against the intake model's card figure would mix two models
    (routed ROC-AUC 0.907 vs intake 0.887 on the first-wave test split) and mask a loss of 0.02.
    """

    name: str
    rows: np.ndarray  # combination indices (lookup order) this model is judged on
    probability: np.ndarray  # its risk for each of those combinations
    extrapolated: np.ndarray  # True where the combination had fewer than 20 training patients
    reference: dict[str, float | None]  # its card's test metrics (REFERENCE_METRICS)
    reference_outside_support: float  # share of its training patients in those combinations


def judged_rows(model: str, combos: pd.DataFrame) -> np.ndarray:
    """Mask of the combinations `model` is judged on (`Split.for_model`'s rule, over combinations)."""
    if model == schema.IN_HOSPITAL_MODEL:
        return np.logical_and.reduce(
            [combos[c].isin(schema.HOSPITAL_KNOWN_VALUES).to_numpy() for c in schema.HOSPITAL_FIELDS]
        )
    return np.ones(len(combos), dtype=bool)


def model_views(
    reference_dir: str | Path, risk: lookup.RiskLookup, card: dict[str, Any], space: Space | None = None
) -> list[ModelView]:
    """A view per trained model whose inputs the lookup covers (the card's per-model test metrics as reference).

    Full records: each model on its own rows with its own table (as on the card's test split). Combinations
    that left inputs out (collected requests, `space`) were answered by a sub-model of the model that scored
    them: each is judged with that model, at the probability the endpoint returned."""
    combos = space.values if space is not None else combination_values(risk)
    full = combos[list(schema.MODEL_INPUTS)].notna().all(axis=1).to_numpy()
    views = []
    for model in artifact.trained_models(reference_dir):
        inputs = schema.MODEL_FEATURES.get(model, ())
        if not inputs or not set(inputs) <= set(combos.columns):
            continue
        table = artifact.load_risk_table(reference_dir, model)
        mask = full & judged_rows(model, combos)
        at = table_rows(table, combos.loc[mask], inputs)
        test = ((card.get("models") or {}).get(model) or {}).get("metrics", {}).get("test", {})
        extrapolated = table["extrapolated"].astype(str).str.lower().eq("true").to_numpy()
        support = table["train_patients"].to_numpy(dtype=float)
        probability, flagged = np.zeros(len(combos)), np.zeros(len(combos), dtype=bool)
        probability[mask], flagged[mask] = table["probability"].to_numpy(dtype=float)[at], extrapolated[at]
        if space is not None:  # sub-model answers belong to the model that gave them
            scored = ~full & (space.model == model)
            probability[scored], flagged[scored] = space.probability[scored], space.extrapolated[scored]
            mask |= scored
        views.append(
            ModelView(
                name=model,
                rows=np.flatnonzero(mask),
                probability=probability[mask],
                extrapolated=flagged[mask],
                reference={k: _finite(test.get(k)) for k in REFERENCE_METRICS},
                reference_outside_support=float(support[extrapolated].sum() / max(support.sum(), 1.0)),
            )
        )
    return views


def _weighted_rows(view: ModelView, deaths: np.ndarray, survivors: np.ndarray) -> tuple[np.ndarray, ...]:
    """(y, score, weight, extrapolated) over the view's combinations holding deaths or survivors."""
    d, s = deaths[view.rows], survivors[view.rows]
    pos, neg = np.flatnonzero(d), np.flatnonzero(s)
    y = np.concatenate([np.ones(pos.size), np.zeros(neg.size)]).astype(int)
    at = np.concatenate([pos, neg])
    return y, view.probability[at], np.concatenate([d[pos], s[neg]]), view.extrapolated[at]


def model_performance(view: ModelView, deaths: np.ndarray, survivors: np.ndarray) -> dict[str, Any]:
    """One model's live calibration and discrimination on its own rows (not assessed below MIN_EVENTS)."""
    y, score, weight, extrapolated = _weighted_rows(view, deaths, survivors)
    n_deaths, n_survivors = float(weight[y == 1].sum()), float(weight[y == 0].sum())
    out: dict[str, Any] = {
        "label": schema.MODEL_LABELS.get(view.name, view.name),
        "patients": n_deaths + n_survivors,
        "deaths": n_deaths,
        "reference": view.reference,
        "assessed": False,
    }
    if n_deaths < MIN_EVENTS or n_survivors < MIN_EVENTS:
        out["warning"] = (
            f"{view.name} model: performance not assessed: {n_deaths:,.0f} deaths and {n_survivors:,.0f} survivors "
            f"with a known outcome among its patients; at least {MIN_EVENTS} of each are needed"
        )
        return out
    out.update(
        assessed=True,
        live=evaluate.summary_metrics(y, score, weight),
        observed_expected=performance.observed_expected(y, score, weight),
        calibration_slope=performance.calibration_slope(y, score, weight),
        roc_auc=performance.roc_auc(y, score, weight, view.reference["roc_auc"]),
        roc_auc_expected=None,
        outside_support=float(weight[extrapolated].sum() / weight.sum()),
        reference_outside_support=view.reference_outside_support,
        calibration=evaluate.calibration_table(y, score, weight).replace({np.nan: None}).to_dict(orient="records"),
    )
    line = out["calibration_slope"]
    out["roc_auc_expected"] = performance.expected_auc(score, weight, line["intercept"], line["slope"])
    return out


TESTS = ("observed_expected", "calibration_slope", "roc_auc")


def performance_report(agg: Aggregate, views: list[ModelView]) -> dict[str, Any]:
    """Live performance of every model on its own rows; tests Holm-adjusted together; the verdict they give.

    The top-level figures are the intake model's (the operating one); `models` holds each model's.
    """
    deaths, survivors = agg.deaths, agg.survivors
    if deaths is None or survivors is None:
        raise ValueError(f"{agg.source}: no outcome column (death_yn), so there is no performance to report")
    models = {view.name: model_performance(view, deaths, survivors) for view in views}
    p_values = {
        f"{name}:{test}": m[test]["p_value"]
        for name, m in models.items()
        if m["assessed"]
        for test in TESTS
        if m[test]["p_value"] is not None
    }
    adjusted = drift.holm(p_values)
    for name, m in models.items():
        for test in TESTS if m["assessed"] else ():
            m[test]["p_adjusted"] = adjusted.get(f"{name}:{test}")
    first = models.get(schema.INTAKE_MODEL) or next(iter(models.values()), {"assessed": False, "reference": {}})
    out: dict[str, Any] = {
        "source": agg.source,
        "patients": float(deaths.sum() + survivors.sum()),
        "deaths": float(deaths.sum()),
        **{k: v for k, v in first.items() if k not in ("label", "patients", "deaths", "warning")},
        "assessed": any(m["assessed"] for m in models.values()),
        "models": models,
        "verdict": None,
        "reasons": [],
        "warnings": [m["warning"] for m in models.values() if "warning" in m],
    }
    if out["assessed"]:
        verdicts = [_performance_verdict(m, out["reasons"], name) for name, m in models.items() if m["assessed"]]
        out["verdict"] = max(verdicts, key=VERDICT_SEVERITY.index)
    return out


VERDICT_SEVERITY = (VERDICT_OK, VERDICT_RECALIBRATE, VERDICT_RETRAIN)


def _significant(result: dict[str, Any]) -> bool:
    return result["p_adjusted"] is not None and result["p_adjusted"] < ALPHA


def _performance_verdict(perf: dict[str, Any], reasons: list[str], name: str) -> str:
    """retrain if ranking fell or the case mix left the training support; recalibrate if the level or the
    spread of risk is off while ranking holds (both are what `model.training.recalibrate` fits); else ok."""
    oe, slope, auc = perf["observed_expected"], perf["calibration_slope"], perf["roc_auc"]
    before = len(reasons)
    expected = perf["roc_auc_expected"]
    if _significant(auc) and auc["drop"] > ROC_AUC_MAX_DROP and auc["roc_auc"] < expected - ROC_AUC_MAX_DROP:
        reasons.append(
            f"{name} model: discrimination fell: ROC-AUC {auc['roc_auc']:.3f} (95% CI {auc['ci_low']:.3f}-"
            f"{auc['ci_high']:.3f}) against {auc['reference']:.3f} on the model card's test split and "
            f"{expected:.3f} expected from this case mix and slope (more than {ROC_AUC_MAX_DROP} lower than both)"
        )
    if slope["ci_high"] < SLOPE_RANKING_LOST:
        reasons.append(
            f"{name} model: calibration slope {slope['slope']:.2f} (95% CI {slope['ci_low']:.2f}-"
            f"{slope['ci_high']:.2f}) below {SLOPE_RANKING_LOST}: the model's ranking carries little of the risk"
        )
    if perf["outside_support"] > perf["reference_outside_support"] + SUPPORT_MAX_SHARE:
        reasons.append(
            f"{name} model: {perf['outside_support']:.1%} of these patients fall in combinations the model saw "
            f"fewer than 20 training patients of, against {perf['reference_outside_support']:.1%} in training "
            f"(more than {SUPPORT_MAX_SHARE:.0%} points more): the case mix left the training support"
        )
    if len(reasons) > before:
        return VERDICT_RETRAIN
    low, high = SLOPE_NEAR
    if _significant(slope) and not low <= slope["slope"] <= high:
        reasons.append(
            f"{name} model: calibration slope {slope['slope']:.2f} (95% CI {slope['ci_low']:.2f}-"
            f"{slope['ci_high']:.2f}) is off 1 (outside {low}-{high}) while ranking holds: logistic recalibration "
            "refits the slope"
        )
    if _significant(oe) and not 1 / OE_MATERIAL <= oe["ratio"] <= OE_MATERIAL:
        reasons.append(
            f"{name} model: calibration-in-the-large: {oe['observed']:,.0f} deaths observed vs "
            f"{oe['expected']:,.1f} expected, observed/expected {oe['ratio']:.2f} (95% CI {oe['ci_low']:.2f}-"
            f"{oe['ci_high']:.2f}); ranking holds, so updating the model is enough"
        )
    return VERDICT_RECALIBRATE if len(reasons) > before else VERDICT_OK


# --- report -----------------------------------------------------------------------------------


def _data_warnings(
    current: Aggregate, risk: lookup.RiskLookup, rows: float, population: str, not_comparable: set[str], enough: bool
) -> list[str]:
    """What limits the report before any test is read: too few rows, inputs not judged, other versions, skipped rows."""
    warnings: list[str] = []
    if not enough:
        warnings.append(
            f"only {rows:,.0f} {population.split(' (')[0]} (at least {MIN_DRIFT_ROWS:,} are needed): no drift "
            "verdict is given"
        )
    if not_comparable:
        warnings.append(
            f"{', '.join(sorted(not_comparable))}: not judged, because this source has no outcomes and the model's "
            "reference describes rows with a known outcome only, whose hospital and condition fields are filled in "
            "far more often"
        )
    if current.model_versions and set(current.model_versions) != {risk.model_version}:
        warnings.append(
            f"collected records come from model version(s) {', '.join(sorted(current.model_versions))}; the "
            f"reference is {risk.model_version}"
        )
    if current.skipped:
        warnings.append(f"{sum(current.skipped.values()):,} rows skipped (values outside the schema); see rows_skipped")
    return warnings


def _left_out_warnings(
    features: dict[str, Any], reference: dict[str, Any], risk: lookup.RiskLookup, averaged_rows: float
) -> list[str]:
    """Inputs every compared row left out ("not known"), and what sub-model answers do to the risk histogram."""
    warnings = []
    absent = [c for c in model_inputs(risk) if c in reference.get("features", {}) and c not in features]
    if absent:
        warnings.append(f"{', '.join(absent)}: not compared, because every compared row left it out (not known)")
    if averaged_rows:
        warnings.append(
            f"{averaged_rows:,.0f} compared rows left out inputs of the model that scored them and were answered by "
            "sub-models: their risk is the "
            "average over the inputs left out, so the predicted-risk histogram is narrower than the full-record "
            "reference even when the case mix has not changed (fewer patients reach the top bins)"
        )
    return warnings


def _choose_verdict(
    perf: dict[str, Any] | None, enough: bool, drift_findings: dict[str, dict[str, Any]]
) -> tuple[str, list[str], list[str]]:
    """Verdict, reasons and extra warnings: assessed performance outranks case mix, which then is only context."""
    major = [_describe_change(n, r) for n, r in drift_findings.items() if r["status"] == "major"]
    moderate = [_describe_change(n, r) for n, r in drift_findings.items() if r["status"] == "moderate"]
    if perf is not None and perf["assessed"]:
        return perf["verdict"], list(perf["reasons"]), [f"case mix: {m}" for m in major + moderate]
    if enough:
        return (VERDICT_DRIFT if major else VERDICT_OK), major, moderate
    return VERDICT_INSUFFICIENT, [], []


def build_report(
    reference_dir: str | Path, current: Aggregate, risk: lookup.RiskLookup, outcomes: Aggregate | None = None
) -> dict[str, Any]:
    """The monitoring report (JSON-ready): drift per input, predicted-risk shift, performance, verdict."""
    card = artifact.load_card(reference_dir)
    training = artifact.load_training_distribution(reference_dir)
    counts, population = current.drift_counts()
    reference, reference_population, not_comparable = _reference_population(training, current.deaths is not None)
    enough = counts.sum() >= MIN_DRIFT_ROWS
    warnings = _data_warnings(current, risk, counts.sum(), population, not_comparable, enough)

    features, predicted = drift_report(counts, risk, reference, not_comparable, enough, current.space)
    averaged = float(counts[current.space.averaged].sum()) if current.space is not None else 0.0
    warnings += _left_out_warnings(features, reference, risk, averaged)
    if predicted:
        predicted["mean_reference"] = _finite(card.get("metrics", {}).get("test", {}).get("mean_predicted"))
    drift_findings = {**features, **({"predicted risk": predicted} if predicted else {})}

    labelled = outcomes if outcomes is not None else (current if current.deaths is not None else None)
    perf = None
    if labelled is not None and labelled.deaths is not None:
        perf = performance_report(labelled, model_views(reference_dir, risk, card, labelled.space))
    if perf is not None:
        warnings += perf["warnings"]
    verdict, reasons, verdict_warnings = _choose_verdict(perf, enough, drift_findings)
    warnings += verdict_warnings
    return {
        "verdict": verdict,
        "action": ACTIONS[verdict],
        "reasons": reasons,
        "warnings": warnings,
        "model_version": risk.model_version,
        "reference": {
            "model_dir": str(reference_dir),
            "patients": reference.get("patients"),
            "population": reference_population,
        },
        "current": {**current.summary(), "drift_population": population, "drift_rows": float(counts.sum())},
        "outcomes": outcomes.summary() if outcomes is not None else None,
        "thresholds": THRESHOLDS,
        "features": features,
        "predicted_risk": predicted,
        "performance": perf,
    }


def monitor(
    reference_dir: str | Path, current: str | Path, outcomes: str | Path | None = None, traffic: str = ALL_TRAFFIC
) -> dict[str, Any]:
    """Aggregate the sources and build the report (the CLI calls this)."""
    risk = load_model(reference_dir)
    cur = aggregate(current, risk, traffic)
    out = aggregate_file(outcomes, risk) if outcomes is not None else None
    if out is not None and out.deaths is None:
        raise DataError(
            f"{outcomes}: has no {schema.TARGET} column, so it cannot give outcomes. "
            f"Give a file with {schema.TARGET} (Yes/No)."
        )
    return build_report(reference_dir, cur, risk, out)


def _ci(result: dict[str, Any], key: str, digits: int = 3) -> str:
    return f"{result[key]:.{digits}f} (95% CI {result['ci_low']:.{digits}f}-{result['ci_high']:.{digits}f})"


def format_report(report: dict[str, Any]) -> str:
    """The report for people: verdict and action first, then what they rest on."""
    cur = report["current"]
    lines = [
        f"VERDICT: {report['verdict'].upper()}",
        f"  action: {report['action']}",
        *(f"  reason: {r}" for r in report["reasons"]),
        *(f"  warning: {w}" for w in report["warnings"]),
        "",
        f"model {report['model_version']}; current data {cur['source']} ({cur['kind']}): "
        f"{cur['rows_used']:,} rows used of {cur['rows_read']:,}; compared: {cur['drift_rows']:,.0f} "
        f"{cur['drift_population']} against {report['reference']['population']}",
        *filter(None, [traffic_text(cur), _left_out_text(cur), _population_text(cur)]),
        f"tests: G-test per input, Holm-corrected, family-wise alpha {ALPHA}; limits PSI {drift.PSI_MODERATE}/"
        f"{drift.PSI_MAJOR}, share ratio x{drift.RATIO_MODERATE}/x{drift.RATIO_MAJOR} (docs/monitoring.md)",
        "",
        f"{'input':<16}{'PSI':>8}{'p (Holm)':>10}  status",
    ]
    rows = {**report["features"], **({"predicted risk": report["predicted_risk"]} if report["predicted_risk"] else {})}
    for name, f in rows.items():
        p = "n/a" if f.get("p_adjusted") is None else f"{f['p_adjusted']:.3g}"
        lines.append(f"{name:<16}{f['psi']:>8.4f}{p:>10}  {f['status']}")
    perf = report["performance"]
    if perf and perf["assessed"]:
        lines += ["", f"live performance, each model on its own patients (tests Holm-adjusted together, alpha {ALPHA})"]
        for name, m in perf["models"].items():
            lines += _model_lines(name, m)
    return "\n".join(lines)


def _left_out_text(current: dict[str, Any]) -> str:
    """Rows whose requests left inputs out, per input ("" when none did): counted apart, never as a category."""
    left = {c: n for c, n in (current.get("left_out") or {}).items() if n}
    if not left:
        return ""
    return "rows that left inputs out (not known): " + ", ".join(f"{c} {n:,}" for c, n in left.items())


def _population_text(current: dict[str, Any]) -> str:
    """How many rows the intake-population rule left out of a data file ("" for collected records)."""
    if current.get("kind") != "file":
        return ""
    rule = current.get("intake_population_rule", "")
    if rule.startswith("not applied"):
        return f"intake-population rule {rule}"
    excluded = current.get("excluded_outside_intake_population", 0)
    return f"left out: {excluded:,} rows outside the intake population ({rule})"


def _model_lines(name: str, m: dict[str, Any]) -> list[str]:
    """A model's live figures for people (or why it was not assessed)."""
    if not m["assessed"]:
        return [f"{name}: {m.get('warning', 'not assessed')}"]
    oe, slope, auc = m["observed_expected"], m["calibration_slope"], m["roc_auc"]
    reference_auc = "n/a" if auc["reference"] is None else f"{auc['reference']:.3f}"
    return [
        f"{name}: {m['patients']:,.0f} patients with known outcome ({m['deaths']:,.0f} deaths)",
        f"  observed/expected deaths {_ci(oe, 'ratio', 2)}: {oe['observed']:,.0f} vs {oe['expected']:,.1f}",
        f"  calibration slope        {_ci(slope, 'slope', 2)}",
        f"  ROC-AUC                  {_ci(auc, 'roc_auc')} (DeLong); model card (test) {reference_auc}; "
        f"expected from this case mix {m['roc_auc_expected']:.3f}",
        f"  outside training support {m['outside_support']:.1%} of patients (training "
        f"{m['reference_outside_support']:.1%})",
    ]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m model.monitor",
        description=__doc__.split("\n\n")[0],
        epilog="Exit codes: 0 ok, 3 insufficient data, 4 drift, 5 recalibrate, 6 retrain; 2 usage or data error, "
        "70 internal error (docs/cli.md).",
    )
    parser.add_argument("--reference", required=True, type=Path, help="model directory (its training distribution)")
    parser.add_argument(
        "--current", required=True, type=Path, help="data file, or the endpoint's collected-data folder"
    )
    parser.add_argument("--outcomes", type=Path, help="data file with death_yn for live performance")
    parser.add_argument(
        "--traffic",
        choices=list(TRAFFIC_CHOICES),
        default=ALL_TRAFFIC,
        help="which collected records to judge: live patients, batch-scored files, or all (default)",
    )
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    return parser


# What a wrong file, folder or value raises while the sources are read: the input, not a bug (exit 2).
INPUT_ERRORS = (
    DataError,
    artifact.ArtifactError,
    lookup.PayloadError,
    ValueError,
    KeyError,
    OSError,
    pa.ArrowException,
)


@exit_codes.guarded
def main(argv: list[str] | None = None) -> int:
    """Run the monitor; the exit code is the verdict's (EXIT_CODES), 2 for bad input, 70 for a bug (`guarded`)."""
    args = _parser().parse_args(argv)
    try:
        report = monitor(args.reference, args.current, args.outcomes, args.traffic)
        text = format_report(report)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2, default=json_default), encoding="utf-8")
    except INPUT_ERRORS as exc:
        return exit_codes.bad_input(exc, prog="monitor")
    print(text)
    if args.out is not None:
        print(f"\nwrote {args.out}")
    return EXIT_CODES[report["verdict"]]


if __name__ == "__main__":
    sys.exit(main())
