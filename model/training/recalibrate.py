"""Update a model to a new period on recent cases with known outcomes, choosing *how* by a closed test.

    python -m model.recalibrate --model DIR --data RECENT_FILE --out DIR [--since YYYY-MM]
        [--criterion lr|aic] [--intercept-only]

For each risk table the artifact holds, four updates are fitted on the recent patients
that table scores (`model.training.updating`): no update, recalibration in the large, logistic
recalibration and model revision (every input's coefficient re-estimated, ridge-shrunk
toward the old model). A closed test of likelihood-ratio statistics (Vergouwe et al.,
Stat Med 2017) chooses among them, and every step is printed. Below 100 deaths (or
survivors) a table is not updated; below 200 only recalibration in the large is
considered (Riley et al., Stat Med 2021).

The new interval of each combination carries the update's own uncertainty: on the logit
scale, SD^2 = slope^2 * SD_old^2 + Var(update), the second by the delta method over the
update's covariance. Revision re-applies the monotone-in-age rule and the
[0.02%, 98%] bounds. "O/E after" is judged out of sample: 5-fold cross-validation on the
recent patients (the chosen method refitted without each fold, that fold predicted).

Exit codes: 0 written, 2 bad input or the data cannot support an update, 70 a bug (docs/cli.md).
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from model.core import artifact, exit_codes, schema
from model.core.provenance import is_synthetic
from model.data.loader import CASE_MONTH, DataError, load_counts
from model.stats import performance
from model.training import reporting, updating
from model.training.fitting import (
    PROBABILITY_CEILING,
    PROBABILITY_FLOOR,
    Z95,
    Recalibration,
    monotone_in_age,
    safe_logit,
    table_rows,
)
from model.training.model_card import card_markdown
from model.training.splits import Split, known_intake_outcomes, split_counts


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


@dataclass
class RecentRows:
    """One model's recent patients: weighted rows, their old logit and the revision's design."""

    x: pd.DataFrame
    y: np.ndarray
    w: np.ndarray
    lp: np.ndarray
    matrix: np.ndarray
    columns: list[str]

    @classmethod
    def of(cls, table: pd.DataFrame, model: str, recent: Split) -> RecentRows:
        data = recent.weighted(model)
        lp = safe_logit(table["probability"].to_numpy()[table_rows(table, data.x, schema.MODEL_FEATURES[model])])
        full, names = updating.design(data.x, model)
        columns = updating.informative_columns(full, names, data.y, data.w)
        matrix, _ = updating.design(data.x, model, columns)
        return cls(data.x, data.y, data.w, lp, matrix, columns)

    @property
    def deaths(self) -> float:
        return float(self.w[self.y == 1].sum())

    @property
    def survivors(self) -> float:
        return float(self.w[self.y == 0].sum())


def choose_update(rows: RecentRows, *, criterion: str = "lr", intercept_only: bool = False) -> dict[str, Any]:
    """Fit the four updates and choose one: {"allowed", "fits" (loglik, df), "steps", "choice", "why"}."""
    events = min(rows.deaths, rows.survivors)
    if events < updating.MIN_EVENTS:
        return {
            "choice": updating.NO_UPDATE,
            "why": f"{events:,.0f} deaths or survivors (fewer than "
            f"{updating.MIN_EVENTS}): too few to estimate an update",
            "steps": [],
            "allowed": [],
        }
    allowed: tuple[str, ...] = updating.METHODS
    why = "closed test" if criterion == "lr" else "smallest AIC"
    if events < updating.MIN_EVENTS_FULL or intercept_only:
        allowed = updating.METHODS[:2]
        why += (
            " between no update and recalibration in the large ("
            + ("--intercept-only" if intercept_only else f"fewer than {updating.MIN_EVENTS_FULL} events")
            + ")"
        )
    fits = updating.candidate_fits(rows.lp, rows.matrix, rows.y, rows.w)
    chooser = updating.closed_test if criterion == "lr" else updating.aic_choice
    choice, steps = chooser(fits, allowed)
    return {
        "choice": choice,
        "why": why,
        "steps": steps,
        "allowed": list(allowed),
        "fits": {m: {"loglik": fits[m].loglik, "df": fits[m].df} for m in allowed},
        "revision_columns": len(rows.columns),
    }


def updated_table(table: pd.DataFrame, model: str, rows: RecentRows, fit: updating.Fit) -> pd.DataFrame:
    """The table after `fit`: new risks, intervals that add the update's own uncertainty, age monotone, bounded."""
    inputs = schema.MODEL_FEATURES[model]
    old_p = table["probability"].to_numpy(dtype=float)
    lp = safe_logit(old_p)
    matrix, _ = updating.design(table, model, rows.columns)
    eta, update_sd = updating.update_logit(fit, lp, matrix)
    old_sd = (safe_logit(table["ci_high"].to_numpy()) - safe_logit(table["ci_low"].to_numpy())) / (2 * Z95)
    spread = np.sqrt((fit.slope * old_sd) ** 2 + update_sd**2)
    out = table.copy()
    out["probability"] = expit(eta)
    if fit.method == updating.REVISION:  # a monotone map keeps age order; a revision may not
        support = table["train_patients"].to_numpy(dtype=float)
        out["probability"] = monotone_in_age(out, inputs, "probability", support)
    p = np.clip(out["probability"].to_numpy(), PROBABILITY_FLOOR, PROBABILITY_CEILING)
    out["probability"] = p
    out["ci_low"] = np.clip(expit(safe_logit(p) - Z95 * spread), PROBABILITY_FLOOR, p)
    out["ci_high"] = np.clip(expit(safe_logit(p) + Z95 * spread), p, PROBABILITY_CEILING)
    return out


def out_of_sample(rows: RecentRows, method: str) -> dict[str, Any]:
    """O/E and calibration slope before (the old model) and after (cross-validated) on the recent patients."""
    before = performance.observed_expected(rows.y, expit(rows.lp), rows.w)
    logits, parts = updating.cross_validated_logit(method, rows.lp, rows.matrix, rows.y, rows.w)
    k = parts.shape[1]
    y, p, w = np.tile(rows.y, k), expit(logits.T.ravel()), parts.T.ravel()
    keep = w > 0
    after = performance.observed_expected(y[keep], p[keep], w[keep])
    slope = performance.calibration_slope(y[keep], p[keep], w[keep])
    return {
        "observed_expected_before": before,
        "observed_expected_after": after,
        "calibration_slope_after": {k2: slope[k2] for k2 in ("slope", "ci_low", "ci_high")},
        "after_is": f"out of sample: {updating.CV_FOLDS}-fold cross-validation on the recent patients",
    }


def update_model(
    table: pd.DataFrame, model: str, recent: Split, *, criterion: str = "lr", intercept_only: bool = False
) -> tuple[pd.DataFrame, dict]:
    """Choose and apply one model's update on the recent patients it would score; return the table and the record."""
    rows = RecentRows.of(table, model, recent)
    decision = choose_update(rows, criterion=criterion, intercept_only=intercept_only)
    record: dict[str, Any] = {"patients": float(rows.w.sum()), "deaths": rows.deaths, **decision}
    if decision["choice"] == updating.NO_UPDATE:
        return table, {
            **record,
            "updated": False,
            "reason": decision.get("why") if not decision["steps"] else "the closed test kept the model",
        }
    fit = updating.refit(decision["choice"], rows.lp, rows.matrix, rows.y, rows.w)
    if fit.slope <= 0:
        raise RecalibrationError(
            f"the {model} model's calibration slope on the recent cases is {fit.slope:.2f}: it no longer ranks "
            "recent patients, so updating cannot fix it. Retrain: python -m model.train --data RECENT_FILE."
        )
    record.update(
        updated=True,
        method=fit.method,
        intercept=fit.intercept,
        slope=fit.slope,
        ridge=fit.ridge,
        **out_of_sample(rows, fit.method),
    )
    return updated_table(table, model, rows, fit), record


def describe(model: str, record: dict[str, Any]) -> list[str]:
    """The closed test's steps and the choice, for people (printed by the CLI)."""
    lines = [f"{model}: {record['patients']:,.0f} recent patients, {record['deaths']:,.0f} deaths"]
    for step in record.get("steps", []):
        if "lr" in step:
            lines.append(
                f"  {step['compare']}: LR {step['lr']:.1f} on {step['df']} df, p = {step['p_value']:.2g} "
                f"({'rejected' if step['rejected'] else 'not rejected'})"
            )
        else:
            lines.append(f"  {step['method']}: AIC {step['aic']:.1f} ({step['df']} parameters)")
    lines.append(f"  choice: {record['choice']} ({record['why']})")
    if record.get("updated"):
        before, after = record["observed_expected_before"], record["observed_expected_after"]
        lines.append(
            f"  O/E before {before['ratio']:.2f} (95% CI {before['ci_low']:.2f}-{before['ci_high']:.2f}); after "
            f"{after['ratio']:.2f} (95% CI {after['ci_low']:.2f}-{after['ci_high']:.2f}, {record['after_is']})"
        )
    return lines


def recalibrate(
    model_dir: Path,
    data: Path,
    out: Path,
    *,
    since: str | None = None,
    criterion: str = "lr",
    intercept_only: bool = False,
) -> dict[str, Any]:
    """Write an updated copy of the model in `model_dir` to `out`; return its card (its last update says how)."""
    artifact.check_out_dir(out)  # before the work: --out must be new, empty or an earlier model
    card = copy.deepcopy(artifact.load_card(model_dir))
    recent, report, counts = recent_patients(data, since)
    tables, changes = {}, {}
    for model in artifact.trained_models(model_dir):
        tables[model], changes[model] = update_model(
            artifact.load_risk_table(model_dir, model),
            model,
            recent,
            criterion=criterion,
            intercept_only=intercept_only,
        )
    if not any(c["updated"] for c in changes.values()):
        reasons = "; ".join(f"{m}: {c['reason']}" for m, c in changes.items())
        raise RecalibrationError(
            f"{data}: no model was updated ({reasons}). With too few deaths use a larger recent extract; when "
            "the closed test keeps the model, the model still fits these patients."
        )
    created = datetime.now(UTC)
    card["updates"] = [*card.get("updates", []), _update_entry(card, created, report, since, changes)]
    card["model_version"] = f"{created:%Y%m%d.%H%M%S}-{str(report['sha256'])[:8]}-recal"
    card["created_utc"] = created.isoformat(timespec="seconds")
    period = reporting.period_summary(counts, synthetic=is_synthetic(data))
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


def _summary(model: str, change: dict[str, Any]) -> str:
    if not change["updated"]:
        return f"{model}: kept ({change['reason']})"
    before, after = change["observed_expected_before"], change["observed_expected_after"]
    return (
        f"{model}: {change['method']} (closed test), O/E {before['ratio']:.2f} -> {after['ratio']:.2f} out of "
        f"sample (intercept {change['intercept']:+.3f}, slope {change['slope']:.3f})"
    )


def _update_entry(
    card: dict[str, Any], created: datetime, report: dict[str, Any], since: str | None, changes: dict[str, Any]
) -> dict[str, Any]:
    """The card's record of this update: what data, which method per model and why, what it changed."""
    revised = [m for m, c in changes.items() if c.get("method") == updating.REVISION]
    return {
        "created_utc": created.isoformat(timespec="seconds"),
        "kind": ", ".join(sorted({c.get("method", "kept") for c in changes.values()})),
        "previous_version": card["model_version"],
        "previous_data_period": card.get("data_period"),
        "data": {k: report[k] for k in ("source", "sha256", "rows_read", "rows_used")},
        "since": since,
        "models": changes,
        "summary": "; ".join(_summary(m, c) for m, c in changes.items()),
        "evaluation_tables": "thresholds mapped through monotone updates"
        + (
            f"; {', '.join(revised)} revised (ranking changed): its tables describe the previous version"
            if revised
            else ""
        )
        + "; calibration and subgroup tables still describe the original test split",
    }


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
        monotone = change.get("method") in (updating.IN_THE_LARGE, updating.LOGISTIC)
        if "threshold" in table.columns and change.get("updated") and monotone:
            recal = Recalibration(change["intercept"], change["slope"])
            inner = (table["threshold"] > 0) & (table["threshold"] < 1)  # 0 and 1: flag everybody / nobody
            table.loc[inner, "threshold"] = recal.apply(table.loc[inner, "threshold"].to_numpy())
        out[name] = table
    return out


def month(text: str) -> str:
    """`--since`'s type: a 'YYYY-MM' month, else argparse's usage error (exit 2) saying how to write it."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a month; write it as YYYY-MM, e.g. 2021-01")
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m model.recalibrate",
        description=__doc__.split("\n\n")[0],
        epilog="Exit codes: 0 written, 2 bad input or the data cannot support an update, 70 internal error "
        "(docs/cli.md).",
    )
    parser.add_argument("--model", type=Path, required=True, help="model directory to update")
    parser.add_argument("--data", type=Path, required=True, help="recent CDC file with known outcomes")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="directory for the new model version: a new or empty folder, or an earlier model (replaced once "
        "the new one is complete); a folder holding anything else is refused",
    )
    parser.add_argument("--since", type=month, help="use only cases from this month on (YYYY-MM)")
    parser.add_argument(
        "--criterion",
        choices=("lr", "aic"),
        default="lr",
        help="choose the update by the closed likelihood-ratio test (default) or by the smallest AIC",
    )
    parser.add_argument(
        "--intercept-only", action="store_true", help="consider only recalibration in the large (or no update)"
    )
    return parser


@exit_codes.guarded
def main(argv: list[str] | None = None) -> int:
    """Write the updated model and print each table's steps; 2 for bad input, 70 for a bug (`guarded`)."""
    args = _parser().parse_args(argv)
    try:
        card = recalibrate(
            args.model,
            args.data,
            args.out,
            since=args.since,
            criterion=args.criterion,
            intercept_only=args.intercept_only,
        )
    except (DataError, RecalibrationError, artifact.ArtifactError, artifact.OutDirError, OSError) as exc:
        return exit_codes.bad_input(exc)
    for model, change in card["updates"][-1]["models"].items():
        print("\n".join(describe(model, change)))
    print(f"wrote {card['model_version']} to {args.out}: {card['updates'][-1]['summary']}")
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
