"""Training end to end through `python -m model.train`, on generated, hand-made and real files."""

from __future__ import annotations

import csv
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model import artifact, schema
from model.train import SPLIT_SHARES, split_counts
from tests.conftest import REPO_ROOT


def profile(**overrides: str) -> dict[str, str]:
    """A patient with every model input at its schema default, plus overrides."""
    base = {name: schema.FEATURES_BY_NAME[name].default for name in schema.MODEL_INPUTS}
    return {**base, **overrides}


def predict(model_dir: Path, rows: list[dict[str, str]]) -> np.ndarray:
    estimator = artifact.load_estimator(model_dir)
    return estimator.predict_proba(pd.DataFrame(rows, columns=list(schema.MODEL_INPUTS)))[:, 1]


def test_generated_data_model_recovers_age_gradient(model_dir: Path):
    ages = schema.AGE_GROUPS
    risks = predict(model_dir, [profile(age_group=a) for a in ages])
    # Death risk rises steeply with age: the oldest band is far above the youngest, and the
    # curve rises over the decades (isotonic calibration can tie neighbours, so allow ties).
    assert risks[-1] > 20 * risks[0]
    assert all(b >= a for a, b in itertools.pairwise(risks[3:]))
    card = artifact.load_card(model_dir)
    test = card["metrics"]["test"]
    assert test["roc_auc"] > 0.8
    # PR-AUC must beat a random ranking (which scores the prevalence) by a wide margin.
    assert test["pr_auc"] > 3 * test["prevalence"]
    assert 0.005 < test["prevalence"] < 0.08, "deaths are a few percent of known outcomes"
    assert card["data"]["synthetic"] is True
    assert card["selection"]["metric"] == "pr_auc"
    assert set(card["selection"]["candidates"]) == {
        "logistic_regression", "hist_gradient_boosting", "decision_tree", "random_forest"
    }


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
    dist = artifact.load_training_distribution(model_dir)
    for name in schema.MODEL_INPUTS:
        assert sum(dist["features"][name].values()) == pytest.approx(1.0)
    assert sum(dist["predicted_risk"]["shares"]) == pytest.approx(1.0)
    md = (model_dir / artifact.CARD_MD).read_text()
    assert "SYNTHETIC" in md and card["model_version"] in md
    json.dumps(card, allow_nan=False)  # strict JSON: no NaN sneaks into the card


def test_calibrated_probabilities_match_observed_rates(model_dir: Path):
    cal = artifact.load_table(model_dir, "calibration")
    used = cal[cal["count"] > 2000]
    assert (used["mean_predicted"] - used["observed_rate"]).abs().max() < 0.03
    card = artifact.load_card(model_dir)
    assert card["metrics"]["test"]["expected_calibration_error"] < 0.01


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
        age = "80+ Years" if old else "0 - 9 Years"
        if old:
            outcome = "Yes" if rng.random() < 0.2 else ("Missing" if rng.random() < 0.05 else "No")
        else:
            outcome = "Missing" if rng.random() < 0.6 else "No"
        row = {c: "" for c in schema.CURRENT_SCHEMA_COLUMNS}
        row.update(profile(age_group=age))
        row.update(race_ethnicity_combined="Unknown", death_yn=outcome, cdc_case_earliest_dt="2021/01/05")
        rows.append(row)
    data = tmp_path / "label_trap.csv"
    write_rows(data, rows)
    out = tmp_path / "model"
    proc = subprocess.run(
        [sys.executable, "-m", "model.train", "--data", str(data), "--out", str(out), "--candidates",
         "logistic_regression", "decision_tree"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    young, old = predict(out, [profile(age_group="0 - 9 Years"), profile(age_group="80+ Years")])
    assert old > 0.1 and young < 0.01, (young, old)
    card = artifact.load_card(out)
    deaths = sum(r["death_yn"] == "Yes" for r in rows)
    survivors = sum(r["death_yn"] == "No" for r in rows)
    missing = sum(r["death_yn"] == "Missing" for r in rows)
    assert card["data"]["rows_used"] == deaths + survivors
    assert card["data"]["rows_dropped"] == {"death_yn=Missing": missing}
    total = sum(s["deaths"] for s in card["splits"].values())
    assert total == deaths
    assert card["data"]["synthetic"] is False


def test_real_legacy_file_stops_with_clear_message(legacy_cdc_file: Path, tmp_path: Path):
    """The real 2020 extract loads, but 6 deaths cannot support a model: a clear stop, no traceback."""
    out = tmp_path / "model"
    proc = subprocess.run(
        [sys.executable, "-m", "model.train", "--data", str(legacy_cdc_file), "--out", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "6 deaths" in proc.stderr and "5,316 survivors" in proc.stderr
    assert "11,549 rows" in proc.stderr  # progress shows what was read
    assert not out.exists()


def test_missing_data_file_is_a_clear_error(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "model.train", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "m")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "no such file" in proc.stderr and "Traceback" not in proc.stderr


def test_split_is_row_level_stratified_and_deterministic():
    counts = pd.DataFrame(
        {c: [schema.FEATURES_BY_NAME[c].values[0]] * 3 for c in schema.ALL_COLUMNS}
    ).assign(deaths=[1000, 0, 7], survivors=[50_000, 20, 0])
    a = split_counts(counts, seed=5)
    b = split_counts(counts, seed=5)
    assert [s.patients for s in a] == [s.patients for s in b]
    assert sum(s.deaths for s in a) == 1007
    assert sum(s.patients for s in a) == 51_027
    # one combination's patients are spread over the splits, in the stated shares
    for split, share in zip(a, SPLIT_SHARES, strict=True):
        assert split.deaths == pytest.approx(1007 * share, rel=0.15)
        assert split.patients == pytest.approx(51_027 * share, rel=0.05)
