"""Update a model to a new period cheaply: logistic recalibration on recent cases with known outcomes.

    python -m model.recalibrate --model DIR --data RECENT_FILE --out DIR [--since YYYY-MM] [--intercept-only]

Case fatality changed several-fold over the pandemic while *who* is at higher
risk changed much less, so the usual update is to keep each model's ranking and
refit its calibration: a new intercept (calibration-in-the-large) and, when the
recent file holds at least `fitting.MIN_EVENTS_FOR_SLOPE` deaths, a new slope
(van Houwelingen 2000; Steyerberg, Clinical Prediction Models, ch. 20). Each
risk, and both ends of its interval, move through the same monotone map, so the
order of patients and the age monotonicity are kept.

The new version's card records the update, the data, and observed/expected
before and after (after is in-sample, on the same recent cases). When the
calibration slope comes out at or below zero, the model no longer ranks recent
patients and recalibration is refused: retrain (python -m model.train).
Exit codes: 0 written, 2 bad input or the data cannot support an update.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model import artifact, evaluate, reporting, schema
from model.fitting import MIN_EVENTS_FOR_SLOPE, PROBABILITY_CEILING, PROBABILITY_FLOOR, Recalibration, table_rows
from model.loader import CASE_MONTH, DataError, load_counts
from model.model_card import card_markdown
from model.provenance import is_synthetic
from model.splits import Split, known_intake_outcomes, split_counts

MIN_EVENTS_FOR_INTERCEPT = 20


class RecalibrationError(RuntimeError):
    """The recent data cannot support an update; the message says why and what to do."""


def recent_patients(data: Path, since: str | None) -> tuple[Split, dict[str, Any], pd.DataFrame]:
    """Known-outcome intake patients of the recent file (from `since`, a 'YYYY-MM' month, if given)."""
    counts, report = load_counts(data)
    known = known_intake_outcomes(counts)
    if since is not None:
        known = known[(known[CASE_MONTH] != reporting.UNKNOWN_MONTH) & (known[CASE_MONTH] >= since)]
    if known.empty:
        raise RecalibrationError(
            f"{data}: no intake patient with a known outcome{f' from {since}' if since else ''}. "
            "Give recent cases whose death_yn is Yes or No."
        )
    (split,) = split_counts(known.reset_index(drop=True), seed=0, shares=(1.0,))
    return split, report.to_dict(), counts


def update_model(table: pd.DataFrame, model: str, recent: Split, *, intercept_only: bool) -> tuple[pd.DataFrame, dict]:
    """Recalibrate one model's table on the recent patients it would score; return the table and what changed."""
    part = recent.for_model(model)
    inputs = schema.MODEL_FEATURES[model]
    events = part.deaths
    if events < MIN_EVENTS_FOR_INTERCEPT:
        return table, {"updated": False, "reason": f"{events:.0f} deaths (fewer than {MIN_EVENTS_FOR_INTERCEPT})"}
    p = table["probability"].to_numpy()[table_rows(table, part.frame, inputs)]
    with_slope = not intercept_only and events >= MIN_EVENTS_FOR_SLOPE
    recal = Recalibration.fit(p, part.y, part.w, with_slope=with_slope)
    if recal.slope <= 0:
        raise RecalibrationError(
            f"the {model} model's calibration slope on the recent cases is {recal.slope:.2f}: it no longer ranks "
            "recent patients, so recalibration cannot fix it. Retrain: python -m model.train --data RECENT_FILE."
        )
    updated = table.copy()
    for column in ("probability", "ci_low", "ci_high"):
        updated[column] = np.clip(recal.apply(table[column].to_numpy()), PROBABILITY_FLOOR, PROBABILITY_CEILING)
    after = updated["probability"].to_numpy()[table_rows(updated, part.frame, inputs)]
    return updated, {
        "updated": True,
        "patients": part.patients,
        "deaths": events,
        "intercept": recal.intercept,
        "slope": recal.slope,
        "slope_fitted": with_slope,
        "observed_expected_before": evaluate.observed_expected(part.y, p, part.w),
        "observed_expected_after": evaluate.observed_expected(part.y, after, part.w),
    }


def recalibrate(
    model_dir: Path, data: Path, out: Path, *, since: str | None = None, intercept_only: bool = False
) -> dict[str, Any]:
    """Write a recalibrated copy of the model in `model_dir` to `out`; return its card."""
    artifact.check_out_dir(out)  # before the work: --out must be new, empty or an earlier model
    card = copy.deepcopy(artifact.load_card(model_dir))
    recent, report, counts = recent_patients(data, since)
    tables, changes = {}, {}
    for model in artifact.trained_models(model_dir):
        tables[model], changes[model] = update_model(
            artifact.load_risk_table(model_dir, model), model, recent, intercept_only=intercept_only
        )
    if not any(c["updated"] for c in changes.values()):
        raise RecalibrationError(
            f"{data}: too few deaths to recalibrate either model ({changes}). Use a larger recent extract."
        )
    created = datetime.now(UTC)
    period = reporting.period_summary(counts, synthetic=is_synthetic(data))
    summary = "; ".join(
        f"{m}: O/E {c['observed_expected_before']['oe']:.2f} -> {c['observed_expected_after']['oe']:.2f} "
        f"(intercept {c['intercept']:+.3f}, slope {c['slope']:.3f})"
        if c["updated"]
        else f"{m}: kept ({c['reason']})"
        for m, c in changes.items()
    )
    card["updates"] = [
        *card.get("updates", []),
        {
            "created_utc": created.isoformat(timespec="seconds"),
            "kind": "logistic recalibration",
            "previous_version": card["model_version"],
            "previous_data_period": card.get("data_period"),
            "data": {k: report[k] for k in ("source", "sha256", "rows_read", "rows_used")},
            "since": since,
            "models": changes,
            "summary": summary,
            "evaluation_tables": "thresholds mapped through the update; calibration and subgroup tables still "
            "describe the original test split",
        },
    ]
    card["model_version"] = f"{created:%Y%m%d.%H%M%S}-{str(report['sha256'])[:8]}-recal"
    card["created_utc"] = created.isoformat(timespec="seconds")
    card["data_period"] = (
        f"{period['description']}; recalibrated from a model of {card['updates'][-1]['previous_data_period']}"
    )
    artifact.write_artifact(
        out,
        risk_tables=tables,
        card=card,
        card_markdown=card_markdown(card),
        tables=carried_tables(model_dir, changes),
        training_distribution=artifact.load_training_distribution(model_dir),
    )
    return card


def carried_tables(model_dir: Path, changes: dict[str, dict[str, Any]]) -> dict[str, pd.DataFrame]:
    """The old version's evaluation tables, thresholds moved through each model's update.

    The update is monotone, so flagging `risk >= t` before is flagging `risk >= map(t)` after:
    the same patients, the same counts; only the threshold values move. Calibration tables
    still describe the original test split (the card's update entry says so).
    """
    out = {}
    directory = artifact.find_model_dir(model_dir)
    for name in artifact.TABLES:
        if not (directory / artifact.EVALUATION_DIR / f"{name}.csv").is_file():
            continue
        table = artifact.load_table(model_dir, name)
        model = schema.IN_HOSPITAL_MODEL if name.startswith("in_hospital_") else schema.INTAKE_MODEL
        change = changes.get(model, {})
        if "threshold" in table.columns and change.get("updated"):
            recal = Recalibration(change["intercept"], change["slope"])
            inner = (table["threshold"] > 0) & (table["threshold"] < 1)  # 0 and 1: flag everybody / nobody
            table.loc[inner, "threshold"] = recal.apply(table.loc[inner, "threshold"].to_numpy())
        out[name] = table
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.recalibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="model directory to update")
    parser.add_argument("--data", type=Path, required=True, help="recent CDC file with known outcomes")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="directory for the new model version: a new or empty folder, or an earlier model (replaced once "
        "the new one is complete); a folder holding anything else is refused",
    )
    parser.add_argument("--since", help="use only cases from this month on (YYYY-MM)")
    parser.add_argument("--intercept-only", action="store_true", help="update the intercept only, never the slope")
    args = parser.parse_args(argv)
    try:
        if args.since is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", args.since):
            raise ValueError("not a month")
        card = recalibrate(args.model, args.data, args.out, since=args.since, intercept_only=args.intercept_only)
    except (DataError, RecalibrationError, artifact.ArtifactError, artifact.OutDirError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: --since {args.since!r} is not a month; write it as YYYY-MM ({exc})", file=sys.stderr)
        return 2
    print(f"wrote {card['model_version']} to {args.out}: {card['updates'][-1]['summary']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
