"""Training end to end through `python -m model.train` (its main, in-process), on the bundled real CDC file,
hand-made and generated files."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.core import artifact, schema
from model.serving.lookup import RiskLookup
from model.training import fitting
from model.training.splits import SPLIT_SHARES, split_counts
from tests.inprocess import run_main


def profile(**overrides: str) -> dict[str, str]:
    """An intake patient with every intake input at its schema default, plus overrides."""
    base = {name: schema.FEATURES_BY_NAME[name].default for name in schema.MODEL_INPUTS}
    return {**base, **overrides}


def risks(model_dir: Path, rows: list[dict[str, str]]) -> np.ndarray:
    return np.array([r["probability"] for r in RiskLookup.from_model_dir(model_dir).score_records(rows)])


def test_default_model_is_real_data_with_its_period(model_dir: Path):
    card = artifact.load_card(model_dir)
    assert card["data"]["synthetic"] is False
    assert card["data"]["source"].endswith("cdc_first_wave_500k.csv.gz")
    assert card["data_period"].startswith("real CDC cases, case dates Mar 2020 to Apr 2020")
    assert set(card["models"]) == {schema.INTAKE_MODEL, schema.IN_HOSPITAL_MODEL, schema.INTAKE_RACE_MODEL}
    assert card["models"][schema.INTAKE_RACE_MODEL]["inputs"] == [*schema.MODEL_FEATURES["intake"], schema.RACE]
    intake = card["models"][schema.INTAKE_MODEL]
    assert intake["inputs"] == ["age_group", "sex", "current_status", "medcond_yn"]
    assert card["models"][schema.IN_HOSPITAL_MODEL]["inputs"] == list(schema.MODEL_INPUTS)
    assert intake["selection"]["metric"] == "log_loss" and "one standard error" in intake["selection"]["rule"]
    chosen = intake["selection"]["candidates"][intake["candidate"]]
    assert chosen["within_one_se"] and chosen["excess_log_loss"] <= chosen["excess_se"]
    simpler = list(intake["selection"]["candidates"])[
        : list(intake["selection"]["candidates"]).index(intake["candidate"])
    ]
    assert not any(intake["selection"]["candidates"][n]["within_one_se"] for n in simpler)
    test = intake["metrics"]["test"]
    assert test["roc_auc"] >= 0.87
    assert 0.95 <= test["observed_expected"]["oe"] <= 1.05
    assert 0.9 <= test["calibration_line"]["slope"] <= 1.1
    low, high = test["intervals_95"]["roc_auc"]
    assert low < test["roc_auc"] < high and high - low < 0.02


def test_death_certificate_cases_are_not_intake_patients(model_dir: Path):
    """First-wave probable cases with no onset and no specimen date died at ~92%: never intake patients."""
    card = artifact.load_card(model_dir)
    assert card["data"]["known_outcome_outside_intake"] == 2028  # 1,861 deaths and 167 survivors
    assert "death certificate" in (model_dir / artifact.CARD_MD).read_text().replace("-", " ")
    assert card["data"]["rows_read"] == 500_000
    assert card["data"]["rows_used"] == 276_780
    # A living probable case at intake is not told the death-certificate risk.
    probable, confirmed = risks(
        model_dir,
        [
            profile(age_group="80+ Years", current_status=s, medcond_yn="Missing")
            for s in ("Probable Case", "Laboratory-confirmed case")
        ],
    )
    assert probable < 0.6 and probable < 1.5 * confirmed


def test_intake_model_ignores_hospital_fields(model_dir: Path):
    """Unknown hospitalisation marks sicker CDC records; at intake it must not raise the risk."""
    base = profile(age_group="60 - 69 Years", medcond_yn="Yes")
    answers = RiskLookup.from_model_dir(model_dir).score_records(
        [
            base,
            {**base, "hosp_yn": "Unknown", "icu_yn": "Unknown"},
            {**base, "hosp_yn": "Missing", "icu_yn": "No"},
            {**base, "hosp_yn": "Yes", "icu_yn": "No"},
        ]
    )
    assert [a["model"] for a in answers] == ["intake", "intake", "intake", "in_hospital"]
    assert answers[0]["probability"] == answers[1]["probability"] == answers[2]["probability"]


@pytest.mark.parametrize("model", [schema.INTAKE_MODEL, schema.IN_HOSPITAL_MODEL, schema.INTAKE_RACE_MODEL])
def test_risk_never_falls_with_age_from_10_19(model_dir: Path, model: str):
    table = artifact.load_risk_table(model_dir, model)
    others = [c for c in schema.MODEL_FEATURES[model] if c != "age_group"]
    ordered = table[table["age_group"].isin(schema.MONOTONE_AGE_GROUPS)].copy()
    ordered["rank"] = ordered["age_group"].map({a: i for i, a in enumerate(schema.MONOTONE_AGE_GROUPS)})
    checked = 0
    for _, stratum in ordered.sort_values("rank").groupby(others):
        assert len(stratum) == len(schema.MONOTONE_AGE_GROUPS)
        assert np.all(np.diff(stratum["probability"].to_numpy()) >= 0), stratum
        checked += 1
    assert checked == np.prod([len(schema.model_values(model, c)) for c in others])


@pytest.mark.parametrize("model", [schema.INTAKE_MODEL, schema.IN_HOSPITAL_MODEL, schema.INTAKE_RACE_MODEL])
def test_no_false_certainty_and_honest_intervals(model_dir: Path, model: str):
    table = artifact.load_risk_table(model_dir, model)
    assert len(table) == np.prod([len(schema.model_values(model, c)) for c in schema.MODEL_FEATURES[model]])
    p = table["probability"]
    assert (p > 0.0001).all() and (p < 0.99).all()
    assert (table["ci_low"] <= p).all() and (p <= table["ci_high"]).all()
    assert table["extrapolated"].equals(table["train_patients"] < fitting.EXTRAPOLATED_BELOW_PATIENTS)
    width = np.log(table["ci_high"] / table["ci_low"])
    # A combination nobody like was seen is less certain than the best-supported ones.
    assert width[table["extrapolated"]].median() > 2 * width[table["train_patients"] > 1000].median()
    assert p.nunique() > 0.8 * len(table[~table["extrapolated"]])  # smooth, not ~250 steps


def test_artifact_is_complete_and_consistent(model_dir: Path):
    card = artifact.load_card(model_dir)
    data = card["data"]
    assert data["rows_read"] == data["rows_used"] + sum(data["rows_dropped"].values())
    assert len(data["sha256"]) == 64
    for name in artifact.TABLES:
        assert not artifact.load_table(model_dir, name).empty, name
    thresholds = artifact.load_table(model_dir, "thresholds")
    total = thresholds[["tp", "fp", "tn", "fn"]].sum(axis=1)
    assert np.allclose(total, card["splits"]["test"]["patients"])
    assert thresholds["tp"].iloc[0] == pytest.approx(card["splits"]["test"]["deaths"])
    subgroups = artifact.load_table(model_dir, "subgroups")
    assert set(subgroups["column"]) == set(schema.SUBGROUP_COLUMNS)
    assert subgroups["value"].map(type).eq(str).all() and not subgroups["value"].isin(["nan", "None"]).any()
    assert {"oe", "oe_low", "oe_high", "miscalibrated"} <= set(subgroups.columns)
    smooth = artifact.load_table(model_dir, "calibration_smooth")
    assert smooth["predicted"].is_monotonic_increasing and smooth["observed"].between(0, 1).all()
    months = artifact.load_table(model_dir, "deaths_by_month")
    assert months["month"].str.match(r"^\d{4}-\d{2}$|^unknown$").all()
    assert months.loc[months["month"] == "2020-03", "deaths"].iloc[0] > 20_000
    dist = artifact.load_training_distribution(model_dir)
    for name in schema.MODEL_INPUTS:
        assert sum(dist["features"][name].values()) == pytest.approx(1.0)
    assert sum(dist["predicted_risk"]["shares"]) == pytest.approx(1.0)
    md = (model_dir / artifact.CARD_MD).read_text()
    assert "SYNTHETIC" not in md and card["model_version"] in md and "Temporal validation" in md
    json.dumps(card, allow_nan=False)  # strict JSON: no NaN sneaks into the card
    assert card["temporal_validation"]["performed"] is True


def test_icu_need_per_threshold(model_dir: Path):
    table = artifact.load_table(model_dir, "icu_by_threshold")
    thresholds = artifact.load_table(model_dir, "thresholds")
    assert np.allclose(table["threshold"], thresholds["threshold"])
    assert np.allclose(table["flagged_share"], thresholds["flagged_share"])
    assert np.allclose(table["recall"], thresholds["recall"])
    assert table["flagged_share"].is_monotonic_decreasing
    mid = table[(table["flagged_share"] > 0.05) & (table["flagged_share"] < 0.95)]
    assert (mid["icu_rate_flagged"] > mid["icu_rate_unflagged"]).all()
    assert artifact.load_card(model_dir)["icu"]["known_icu_patients"] > 10_000


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(schema.CURRENT_SCHEMA_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)


def test_target_is_death_not_missing(tmp_path: Path):
    """Catches the seed notebook's label bug (alphabetical codes 0/1 = "Missing"/"No").

    In this file deaths happen only to the old, while *missing* outcomes are
    concentrated in the young. A model of death ranks the old above the young;
    a model of "Missing vs No" would rank the young above the old.
    """
    rng = np.random.default_rng(11)
    rows = []
    for _ in range(30_000):
        old = rng.random() < 0.5
        age = "80+ Years" if old else "10 - 19 Years"
        if old:
            outcome = "Yes" if rng.random() < 0.2 else ("Missing" if rng.random() < 0.05 else "No")
        else:
            outcome = "Missing" if rng.random() < 0.6 else ("Yes" if rng.random() < 0.002 else "No")
        row = {c: "" for c in schema.CURRENT_SCHEMA_COLUMNS}
        row.update(profile(age_group=age))
        row.update(race_ethnicity_combined="Unknown", death_yn=outcome, cdc_case_earliest_dt="2021/01/05")
        rows.append(row)
    data = tmp_path / "label_trap.csv"
    write_rows(data, rows)
    out = tmp_path / "model"
    proc = run_main("model.train", "--data", str(data), "--out", str(out), "--candidates", "logistic_main_effects")
    assert proc.returncode == 0, proc.stderr
    young, old = risks(out, [profile(age_group="10 - 19 Years"), profile(age_group="80+ Years")])
    assert old > 0.1 and young < 0.01, (young, old)
    card = artifact.load_card(out)
    deaths = sum(r["death_yn"] == "Yes" for r in rows)
    survivors = sum(r["death_yn"] == "No" for r in rows)
    missing = sum(r["death_yn"] == "Missing" for r in rows)
    assert card["data"]["rows_used"] == deaths + survivors
    assert card["data"]["rows_dropped"] == {"death_yn=Missing": missing}
    assert sum(s["deaths"] for s in card["splits"].values()) == deaths
    assert card["data"]["synthetic"] is False
    assert card["data_period"].startswith("real CDC cases, case dates Jan 2021")


def test_real_legacy_file_stops_with_clear_message(legacy_cdc_file: Path, tmp_path: Path):
    """The real 2020 extract loads, but 5 intake deaths cannot support a model: a clear stop, no traceback."""
    out = tmp_path / "model"
    proc = run_main("model.train", "--data", str(legacy_cdc_file), "--out", str(out))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "5 deaths and 5,308 survivors among intake-population rows" in proc.stderr
    assert "11,549 rows" in proc.stderr  # progress shows what was read
    assert not out.exists()


def test_missing_data_file_is_a_clear_error(tmp_path: Path):
    proc = run_main("model.train", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "m"))
    assert proc.returncode == 2
    assert "no such file" in proc.stderr and "Traceback" not in proc.stderr


def test_split_is_row_level_stratified_and_deterministic():
    counts = pd.DataFrame({c: [schema.FEATURES_BY_NAME[c].values[0]] * 3 for c in schema.ALL_COLUMNS}).assign(
        case_month="2020-04", deaths=[1000, 0, 7], survivors=[50_000, 20, 0]
    )
    a = split_counts(counts, seed=5)
    b = split_counts(counts, seed=5)
    assert [s.patients for s in a] == [s.patients for s in b]
    assert sum(s.deaths for s in a) == 1007
    assert sum(s.patients for s in a) == 51_027
    # one combination's patients are spread over the splits, in the stated shares
    for split, share in zip(a, SPLIT_SHARES, strict=True):
        assert split.deaths == pytest.approx(1007 * share, rel=0.15)
        assert split.patients == pytest.approx(51_027 * share, rel=0.05)


def test_monotone_projection_against_brute_force():
    """The age projection equals weighted pool-adjacent-violators done by hand on one stratum."""
    ages = schema.MONOTONE_AGE_GROUPS
    raw = np.array([0.01, 0.03, 0.02, 0.05, 0.04, 0.2, 0.3, 0.25])
    weights = np.array([10, 10, 30, 5, 15, 1, 1, 1], dtype=float)
    table = pd.DataFrame({"age_group": ages, "sex": "Female", "probability": raw})
    got = fitting.monotone_in_age(table, ("age_group", "sex"), "probability", weights)
    # Brute force: among all non-decreasing step functions on a fine grid, the weighted least-squares one.
    w = weights + 1.0
    want = raw.copy()
    for a, b in ((1, 2), (3, 4), (6, 7)):
        want[a : b + 1] = np.average(raw[a : b + 1], weights=w[a : b + 1])
    assert np.allclose(got, want)
    assert all(y >= x for x, y in itertools.pairwise(got))


def test_synthetic_model_is_labelled(synthetic_model_dir: Path):
    card = artifact.load_card(synthetic_model_dir)
    assert card["data"]["synthetic"] is True
    assert card["data_period"].startswith("synthetic CDC-like cases")
    assert "SYNTHETIC" in (synthetic_model_dir / artifact.CARD_MD).read_text()


@pytest.mark.parametrize("model", [schema.INTAKE_MODEL, schema.IN_HOSPITAL_MODEL, schema.INTAKE_RACE_MODEL])
def test_recorded_share_is_learned_on_every_training_case(model_dir: Path, model: str):
    """Issue 19: each table carries the share of cases like these whose outcome was recorded, learned on the
    training cases INCLUDING those never recorded (train_cases >= train_patients), calibrated in the large."""
    table = artifact.load_risk_table(model_dir, model)
    share, cases, known = table["recorded_share"], table["train_cases"], table["train_patients"]
    assert ((share > 0) & (share < 1)).all()
    assert (cases >= known).all() and cases.sum() > known.sum()
    if model != schema.IN_HOSPITAL_MODEL:  # ~45% of intake cases were never recorded (~14% with hospital answers)
        assert cases.sum() > 1.3 * known.sum()
    # A logistic model with an intercept reproduces the training cases' recorded share overall.
    assert np.sum(share * cases) == pytest.approx(known.sum(), rel=0.01)


def test_card_reports_race_groups_recording_and_methods(model_dir: Path):
    card = json.loads((model_dir / "model_card.json").read_text())
    rows = {r["value"]: r for r in card["race_ethnicity_calibration"]}
    assert {"race_blind_oe", "race_aware_oe", "race_aware_oe_low", "race_aware_oe_high"} <= set(rows["Unknown"])
    assert rows["Black, Non-Hispanic"]["race_blind_oe"] > 1.2 > rows["Black, Non-Hispanic"]["race_aware_oe"]
    recording = card["outcome_recording"]
    assert 0.5 < recording["recorded_share"] < 0.6
    assert recording["death_rate_unrecorded_as_survived"] < recording["death_rate_recorded"]
    text = (model_dir / "model_card.md").read_text()
    assert "not biology" in text and "interventional" in text and "one standard error" in text
    assert "O/E race-blind" in text and "O/E race-aware" in text
