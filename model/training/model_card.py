"""The model card: one dict for machines (model_card.json), rendered as Markdown for people.

Written to be read by a clinical prediction model reviewer (TRIPOD): the moment of
prediction and the population, the period the data describe, how the model was
chosen and recalibrated, discrimination and calibration with 95% intervals,
observed/expected per subgroup, temporal validation and the updating plan.
"""

from __future__ import annotations

import platform
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from model.core import schema
from model.training import updating

MODEL_NAME = "covid19-death-risk"

INTENDED_USE = (
    "Decision support for triage and capacity planning: estimate, for a reported COVID-19 case, the "
    "probability that the case ends in death. At lab intake the intake model uses what intake knows (age "
    "group, sex, case status, pre-existing conditions); once a patient is in hospital with known hospital and "
    "ICU admission, the in-hospital model adds them. It ranks and sizes groups of patients; it does not replace "
    "clinical judgement about one patient."
)

RACE_STATEMENT = (
    "Race/ethnicity is an optional input. Given, the race-aware intake model scores the patient: the race-blind "
    "model under-predicted deaths of minority patients (observed/expected up to 2 on the test split), so it "
    "flagged them less. Race/ethnicity here stands for reporting, geography and access to care, not biology: "
    "CDC's 'Unknown' marks jurisdictions that recorded fewer deaths. Omitted, the race-blind model scores, "
    "calibrated overall but not within every group (the table below gives both)."
)
SHAPLEY_STATEMENT = (
    "Explanations are exact Shapley values over the inputs a result used, with the interventional value "
    "function: v(S) = the mean risk over the training patients with the inputs in S set to this patient's "
    "(the other inputs drawn from the training patients' joint distribution). They add up from the mean risk "
    "of the training patients to the patient's risk."
)
SELECTION_STATEMENT = (
    "Model selection: each candidate is fitted on the training split and scored by log loss on the validation "
    "split; the simplest candidate whose mean excess log loss over the best is at most one standard error of the "
    "per-patient loss difference (weighted, paired) is chosen."
)

LIMITATIONS = [
    "Trained on CDC case surveillance records: reporting is incomplete and uneven between jurisdictions, and "
    "most outcome fields are Missing or Unknown. Rows without a known outcome are excluded (the share per age "
    "group and month is in the card); if missingness depends on severity, the base rate is biased.",
    "Missing values are not missing at random: in the CDC file 'Unknown' hospitalisation marks sicker patients. "
    "The intake model therefore never sees hosp_yn or icu_yn; the in-hospital model is used only when both are "
    "known (Yes/No). For conditions, 'Missing' means not recorded; CDC's 'Unknown' (followed up, still unknown) "
    "carries the higher risk those records had.",
    "Probabilities describe the period of the training data (variants, vaccination and treatment changed "
    "case fatality several-fold after the first wave). Re-check calibration with the monitor before relying on "
    "absolute risks in a new period, and update with `python -m model.recalibrate` (see docs/monitoring.md).",
    RACE_STATEMENT,
    "Each risk is conditional on the outcome being recorded: many cases never had death_yn recorded. Each answer "
    "therefore also gives probability_if_unrecorded_survived (every unrecorded case counted as a survival); the "
    "true risk per reported case lies between the two (see 'Outcome recording').",
    "An input a clerk does not know is left out of the request and scored by the sub-model without it: the risk "
    "of all training patients like this one whatever their answer (the full table averaged over the omitted "
    "inputs, weighted by the training patients' distribution of them given the known ones).",
    "Risks are kept within [0.02%, 98%]: no cell of surveillance data supports certainty. Combinations with "
    "fewer than 20 training patients are marked extrapolated: their risk comes from the model's structure.",
    "Not validated for individual treatment decisions or outside the United States.",
]

# How this model is kept current: the monitor's verdict, then `model.training.recalibrate`'s closed test of four updates
# (`model.training.updating`: its event minimums and test level are quoted from there, so the card cannot drift).
UPDATING_PLAN = (
    "Monitor calibration and discrimination on recent cases with known outcomes (python -m model.monitor, "
    "verdict ok, recalibrate or retrain; docs/monitoring.md). On 'recalibrate', update the model on recent "
    "cases with python -m model.recalibrate --model DIR --data RECENT_FILE --out DIR. For each risk table it "
    "fits four updates on the recent patients that table scores: no update; recalibration in the large (the "
    "level of risk moves); logistic recalibration (level and spread, the ranking kept); and model revision "
    "(every input's coefficient may move, ridge-penalised toward the old model). A closed test of "
    f"likelihood ratios (Vergouwe et al., Stat Med 2017; each step at alpha {updating.ALPHA}) tests the "
    "largest update against each smaller one in turn and keeps the first it does not reject; --criterion aic "
    f"takes the smallest AIC instead. A table with fewer than {updating.MIN_EVENTS} deaths or survivors is not "
    f"updated; with fewer than {updating.MIN_EVENTS_FULL}, only no update and recalibration in the large are "
    "compared (Riley et al., Stat Med 2021). The new version's card lists each update, its test steps and its "
    "observed/expected before and after. On 'retrain' (ranking lost, calibration slope near 0, or patients "
    "outside the training support), refit on recent data: python -m model.train --data RECENT_FILE --out DIR."
)


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with None (JSON null) where a metric is undefined, never NaN."""
    return table.astype(object).where(table.notna(), None).to_dict(orient="records")


def library_versions() -> dict[str, str]:
    import pyarrow
    import scipy
    import sklearn

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pyarrow": pyarrow.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
    }


def build_card(
    *,
    created: datetime,
    report: dict[str, Any],
    synthetic: bool,
    period: dict[str, Any],
    splits: dict[str, Any],
    models: dict[str, dict[str, Any]],
    icu: dict[str, Any],
    temporal: dict[str, Any],
    tables: dict[str, pd.DataFrame],
    seed: int,
    recording: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The card. Top-level metrics/selection/calibration/subgroups describe the intake model (the operating one)."""
    sha = str(report.get("sha256") or "")
    intake = models[schema.INTAKE_MODEL]
    return {
        "model_name": MODEL_NAME,
        "model_version": f"{created:%Y%m%d.%H%M%S}-{sha[:8] or 'nodata'}",
        "created_utc": created.isoformat(timespec="seconds"),
        "schema_version": schema.SCHEMA_VERSION,
        "data_period": period["description"],
        "target": {
            "column": schema.TARGET,
            "positive": schema.TARGET_POSITIVE,
            "negative": schema.TARGET_NEGATIVE,
            "excluded": list(schema.TARGET_UNKNOWN_VALUES),
        },
        "population": {"intake_exclusion": schema.INTAKE_EXCLUSION},
        "features": [
            {"name": f.name, "label": f.label, "values": list(f.values)} for f in schema.FEATURES if f.model_input
        ],
        "subgroup_columns": list(schema.SUBGROUP_COLUMNS),
        "data": {**report, "synthetic": synthetic, "period": {k: v for k, v in period.items() if k != "table"}},
        "models": models,
        "splits": {name: split.summary() for name, split in splits.items()},
        "prevalence": {name: split.summary()["prevalence"] for name, split in splits.items()},
        "selection": intake["selection"],
        "calibration_method": "logistic recalibration (intercept and slope on the logit scale)",
        "metrics": intake["metrics"],
        "calibration": _records(tables["calibration"]),
        "subgroups": _records(tables["subgroups"]),
        "race_ethnicity_calibration": race_calibration(tables),
        "outcome_recording": recording or {},
        "explanations": SHAPLEY_STATEMENT,
        "selection_rule": SELECTION_STATEMENT,
        "icu": icu,
        "temporal_validation": temporal,
        "updates": [],
        "library_versions": library_versions(),
        "seed": seed,
        "intended_use": INTENDED_USE,
        "limitations": LIMITATIONS,
        "updating_plan": UPDATING_PLAN,
    }


def race_calibration(tables: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """O/E with its 95% CI per race/ethnicity group on the test split, for the race-blind and race-aware models."""
    columns = ["value", "count", "deaths", "expected", "oe", "oe_low", "oe_high"]
    blind = tables["subgroups"]
    blind = blind[blind["column"] == schema.RACE][columns]
    aware_table = tables.get(f"{schema.INTAKE_RACE_MODEL}_subgroups")
    if aware_table is None:
        return _records(blind.rename(columns={c: f"race_blind_{c}" for c in columns[3:]}))
    aware = aware_table[aware_table["column"] == schema.RACE][["value", *columns[3:]]]
    merged = blind.merge(aware, on="value", suffixes=("", "_aware"))
    merged = merged.rename(columns={c: f"race_blind_{c}" for c in columns[3:]})
    merged = merged.rename(columns={f"{c}_aware": f"race_aware_{c}" for c in columns[3:]})
    return _records(merged.sort_values("deaths", ascending=False))


def fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def interval(values: list[float] | None, digits: int = 3) -> str:
    return "n/a" if not values else f"{values[0]:.{digits}f}-{values[1]:.{digits}f}"


def _header(card: dict[str, Any]) -> list[str]:
    lines = [
        f"# Model card: {card['model_name']} {card['model_version']}",
        "",
        f"Created {card['created_utc']} (UTC). Schema {card['schema_version']}. **Data: {card['data_period']}.**",
        "",
    ]
    if card["data"].get("synthetic"):
        lines += [
            "> **Trained on SYNTHETIC data** generated by `model.synthetic.synth` to follow published CDC aggregates "
            "(docs/data_card.md). Its metrics describe the generator, not real patients.",
            "",
        ]
    for update in card.get("updates") or []:
        lines += [f"> Updated {update['created_utc']}: {update['summary']}", ""]
    return [*lines, "## Intended use and moment of prediction", "", card["intended_use"], ""]


def _data_section(card: dict[str, Any]) -> list[str]:
    data = card["data"]
    lines = [
        "## Data and population",
        "",
        f"- Source: `{data.get('source')}` ({data.get('format')}, schema variant {data.get('schema_variant')}); "
        f"SHA-256 `{data.get('sha256')}`",
        f"- Period: {card['data_period']}; months with cases {data['period'].get('first_month')} to "
        f"{data['period'].get('last_month')}",
        f"- Rows read: {data.get('rows_read', 0):,}; with a known outcome: {data.get('rows_used', 0):,}",
        f'- Target: `{schema.TARGET} == "Yes"` against `"No"`; '
        f"{', '.join(card['target']['excluded'])} outcomes are excluded.",
        f"- Intake population excludes: {card['population']['intake_exclusion']}: "
        f"{data.get('known_outcome_outside_intake', 0):,} rows with a known outcome.",
    ]
    lines += [f"- Dropped, {reason}: {count:,}" for reason, count in (data.get("rows_dropped") or {}).items()]
    return [*lines, ""]


def _model_section(name: str, model: dict[str, Any]) -> list[str]:
    if model.get("trained") is False:
        return [f"## {model['label']}", "", f"Not trained: {model['reason']}", ""]
    test = model["metrics"]["test"]
    ci, line, oe = test.get("intervals_95") or {}, test.get("calibration_line") or {}, test["observed_expected"]
    lines = [
        f"## {model['label']}",
        "",
        f"Inputs: {', '.join(model['inputs'])}. Chosen **{model['candidate']}** by validation log loss with the "
        "one-standard-error rule (the simplest candidate within one SE of the best), then logistic recalibration "
        f"on the validation split (intercept {model['recalibration']['intercept']:.3f}, slope "
        f"{model['recalibration']['slope']:.3f}). {model['combinations']:,} combinations, "
        f"{model['extrapolated_combinations']:,} extrapolated; risks from {model['probability_range'][0]:.4f} "
        f"to {model['probability_range'][1]:.4f}.",
        "",
        "| candidate | validation log loss | excess over best (± SE) |",
        "|---|---:|---:|",
    ]
    for cand, m in model["selection"]["candidates"].items():
        lines.append(f"| {cand} | {m['log_loss']:.5f} | {m['excess_log_loss']:+.5f} ± {m['excess_se']:.5f} |")
    lines += [
        "",
        f"Test split (held out, {test['patients']:,.0f} patients, {test['deaths']:,.0f} deaths, prevalence "
        f"{fmt(test['prevalence'])}):",
        "",
        f"- ROC-AUC {fmt(test['roc_auc'], 3)} (95% CI {interval(ci.get('roc_auc'))}); PR-AUC "
        f"{fmt(test['pr_auc'], 3)} ({interval(ci.get('pr_auc'))}); Brier {fmt(test['brier'], 4)} "
        f"({interval(ci.get('brier'), 4)})",
        f"- Observed/expected deaths {fmt(oe['oe'], 3)} (95% CI {fmt(oe['oe_low'], 3)}-{fmt(oe['oe_high'], 3)}); "
        f"calibration intercept {fmt(line.get('intercept'), 3)}, slope {fmt(line.get('slope'), 3)}",
        "",
    ]
    return lines


def _subgroup_section(card: dict[str, Any]) -> list[str]:
    lines = [
        "## Observed/expected per subgroup (intake model, test split)",
        "",
        "| column | value | patients | deaths | expected | O/E (95% CI) | ROC-AUC |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for row in card["subgroups"]:
        flag = " **⚠**" if row.get("miscalibrated") else ""
        lines.append(
            f"| {row['column']} | {row['value']} | {row['count']:,.0f} | {row['deaths']:,.0f} | "
            f"{row['expected']:,.1f} | {fmt(row['oe'], 2)} ({fmt(row['oe_low'], 2)}-{fmt(row['oe_high'], 2)}){flag} | "
            f"{fmt(row['roc_auc'], 3)} |"
        )
    return [*lines, "", "⚠: the 95% interval of O/E excludes 1.", ""]


def _race_section(card: dict[str, Any]) -> list[str]:
    rows = card.get("race_ethnicity_calibration") or []
    if not rows or "race_aware_oe" not in rows[0]:
        return []
    lines = [
        "## Race/ethnicity: observed/expected per group (test split)",
        "",
        RACE_STATEMENT,
        "",
        "| race/ethnicity | patients | deaths | O/E race-blind (95% CI) | O/E race-aware (95% CI) |",
        "|---|---:|---:|---|---|",
    ]
    for row in rows:
        blind = (
            f"{fmt(row['race_blind_oe'], 2)} ({fmt(row['race_blind_oe_low'], 2)}-{fmt(row['race_blind_oe_high'], 2)})"
        )
        aware = (
            f"{fmt(row['race_aware_oe'], 2)} ({fmt(row['race_aware_oe_low'], 2)}-{fmt(row['race_aware_oe_high'], 2)})"
        )
        lines.append(f"| {row['value']} | {row['count']:,.0f} | {row['deaths']:,.0f} | {blind} | {aware} |")
    return [*lines, ""]


def _recording_section(card: dict[str, Any]) -> list[str]:
    rec = card.get("outcome_recording") or {}
    if not rec.get("cases"):
        return []
    return [
        "## Outcome recording",
        "",
        f"Of {rec['cases']:,.0f} intake-population cases, {rec['recorded']:,.0f} "
        f"({fmt(rec['recorded_share'], 3)}) had their outcome recorded. Among recorded outcomes "
        f"{fmt(rec['death_rate_recorded'], 3)} died; counting every unrecorded outcome as a survival, "
        f"{fmt(rec['death_rate_unrecorded_as_survived'], 3)} (CDC's report on 1.3 M cases to 30 May 2020: 5% "
        "died). Each answer gives both ends: `probability` (conditional on a recorded outcome) and "
        "`probability_if_unrecorded_survived` (probability x the share of cases like this one with a recorded "
        "outcome, learned on the training cases), each with its 95% interval.",
        "",
    ]


def _methods_section(card: dict[str, Any]) -> list[str]:
    return [
        "## Methods",
        "",
        f"- {card.get('selection_rule', SELECTION_STATEMENT)}",
        f"- {card.get('explanations', SHAPLEY_STATEMENT)}",
        "",
    ]


def temporal_text(temporal: dict[str, Any]) -> str:
    """The temporal validation in one sentence (card, Model card page and training progress)."""
    if not temporal.get("performed"):
        return f"Not performed: {temporal.get('reason', 'no dates')}."
    oe = temporal["observed_expected"]
    return (
        f"Trained on cases of {temporal['train_months'][0]} to {temporal['train_months'][1]}, tested on "
        f"{temporal['test_months'][0]} to {temporal['test_months'][1]} ({temporal['test_patients']:,.0f} "
        f"patients): ROC-AUC {fmt(temporal['roc_auc'], 3)}, O/E {fmt(oe['oe'], 2)} "
        f"({fmt(oe['oe_low'], 2)}-{fmt(oe['oe_high'], 2)}), calibration slope "
        f"{fmt(temporal['calibration_line']['slope'], 2)}."
    )


def _time_section(card: dict[str, Any]) -> list[str]:
    lines = ["## Time", "", f"Temporal validation. {temporal_text(card['temporal_validation'])}"]
    return [*lines, "", "Updating plan: " + card["updating_plan"], ""]


def _icu_section(icu: dict[str, Any]) -> list[str]:
    """ICU admissions per reported case at both ends (or why there are none), for people."""
    lines = ["## ICU need", ""]
    ends = icu.get("ends") or {}
    if not ends:
        return [*lines, f"No ICU-need table: {icu.get('reason', 'not computed')}.", ""]
    lines.append(
        f"{icu.get('model')}; fitted on the training split's {icu.get('train_cases', 0):,} reported cases "
        f"(known outcome or not), of which {icu.get('known_icu_patients', 0):,} had a recorded ICU answer "
        f"({fmt(icu.get('icu_rate'), 4)} of those said Yes: not a rate per reported case). ICU admissions per "
        "reported case on the test split:"
    )
    lines.append("")
    for end, values in ends.items():
        lines.append(f"- {end} end: {fmt(values.get('icu_per_case_test'), 4)} ({values.get('assumption')})")
    return [*lines, "", "CDC's report on 1,320,488 cases (MMWR 2020;69(24)): 2% admitted to ICU.", ""]


def card_markdown(card: dict[str, Any]) -> str:
    lines = _header(card) + _data_section(card)
    for name, model in card["models"].items():
        lines += _model_section(name, model)
    lines += _subgroup_section(card) + _race_section(card) + _recording_section(card) + _methods_section(card)
    lines += _time_section(card)
    lines += _icu_section(card.get("icu") or {})
    lines += ["## Limitations", "", *[f"- {item}" for item in card["limitations"]], ""]
    lines += ["## Library versions", "", *[f"- {n} {v}" for n, v in card["library_versions"].items()]]
    return "\n".join(lines) + "\n"
