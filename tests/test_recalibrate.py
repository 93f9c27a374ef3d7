"""`python -m model.recalibrate` on real periods: a March 2020 model updated with April-on cases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model import artifact, evaluate, schema
from model.fitting import table_rows
from model.loader import load_counts
from model.splits import known_intake_outcomes, split_counts
from tests.conftest import REPO_ROOT, RealPeriods, run_module


def intake_oe(model_dir: Path, data: Path) -> float:
    """Observed/expected deaths of the intake model on a file's intake patients with known outcomes."""
    (part,) = split_counts(known_intake_outcomes(load_counts(data)[0]), seed=0, shares=(1.0,))
    table = artifact.load_risk_table(model_dir, schema.INTAKE_MODEL)
    p = table["probability"].to_numpy()[table_rows(table, part.frame, schema.MODEL_FEATURES[schema.INTAKE_MODEL])]
    return evaluate.observed_expected(part.y, p, part.w)["oe"]


@pytest.fixture(scope="module")
def early_model(real_periods: RealPeriods, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("early") / "model"
    run_module("model.train", "--data", str(real_periods.early), "--out", str(out), "--quiet")
    return out


def test_recalibration_moves_later_observed_expected_toward_one(
    early_model: Path, real_periods: RealPeriods, tmp_path: Path
):
    before = intake_oe(early_model, real_periods.late_b)
    out = tmp_path / "recalibrated"
    proc = run_module(
        "model.recalibrate", "--model", str(early_model), "--data", str(real_periods.late_a), "--out", str(out)
    )
    after = intake_oe(out, real_periods.late_b)  # judged on cases the update never saw
    assert abs(after - 1) < abs(before - 1) / 2, (before, after)
    assert abs(after - 1) < 0.05
    card = artifact.load_card(out)
    update = card["updates"][-1]
    assert update["previous_version"] == artifact.load_card(early_model)["model_version"]
    assert update["models"]["intake"]["slope_fitted"] is True
    assert "O/E" in proc.stdout and card["model_version"].endswith("-recal")
    assert "recalibrated from a model of real CDC cases, case dates Mar 2020" in card["data_period"]
    assert "Updated" in (out / artifact.CARD_MD).read_text()
    # Thresholds move through the same map: the same patients are flagged, so counts are unchanged.
    old_t, new_t = artifact.load_table(early_model, "thresholds"), artifact.load_table(out, "thresholds")
    assert np.array_equal(old_t["tp"], new_t["tp"]) and np.array_equal(old_t["fp"], new_t["fp"])
    inner = (old_t["threshold"] > 0) & (old_t["threshold"] < 1)
    assert (new_t.loc[inner, "threshold"] > old_t.loc[inner, "threshold"]).all()  # fatality rose in April
    # The update keeps each model's ordering and its age monotonicity.
    for model in artifact.MODELS:
        old, new = artifact.load_risk_table(early_model, model), artifact.load_risk_table(out, model)
        assert np.array_equal(
            np.argsort(old["probability"], kind="stable"), np.argsort(new["probability"], kind="stable")
        )
        assert (new["ci_low"] <= new["probability"]).all() and (new["probability"] <= new["ci_high"]).all()


def test_recalibration_refuses_what_it_cannot_do(early_model: Path, legacy_cdc_file: Path, tmp_path: Path):
    for args, says in (
        (["--data", str(legacy_cdc_file)], "too few deaths"),
        (["--data", str(tmp_path / "nope.csv")], "no such file"),
        (["--data", str(legacy_cdc_file), "--since", "March"], "YYYY-MM"),
    ):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "model.recalibrate",
                "--model",
                str(early_model),
                "--out",
                str(tmp_path / "m"),
                *args,
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2, proc.stderr
        assert says in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "m").exists()


def test_recalibration_on_generated_data_whose_fatality_falls(tmp_path: Path) -> None:
    """A first-wave model of generated data, updated with a few thousand 2021 cases, predicts late 2021 better."""
    files = {name: tmp_path / f"{name}.csv" for name in ("first_wave", "recent", "later")}
    run_module(
        "model.synth",
        "--rows",
        "300000",
        "--seed",
        "31",
        "--months",
        "2020-03:2020-05",
        "--out",
        str(files["first_wave"]),
    )
    run_module(
        "model.synth", "--rows", "40000", "--seed", "32", "--months", "2021-01:2021-06", "--out", str(files["recent"])
    )
    run_module(
        "model.synth", "--rows", "200000", "--seed", "33", "--months", "2021-07:2021-12", "--out", str(files["later"])
    )
    model = tmp_path / "model"
    run_module("model.train", "--data", str(files["first_wave"]), "--out", str(model), "--quiet")
    before = intake_oe(model, files["later"])
    assert before < 0.6, "the generator's fatality must fall after the first wave"
    updated = tmp_path / "updated"
    run_module("model.recalibrate", "--model", str(model), "--data", str(files["recent"]), "--out", str(updated))
    after = intake_oe(updated, files["later"])
    assert abs(after - 1) < abs(before - 1) / 2, (before, after)
    assert artifact.load_card(updated)["data"]["synthetic"] is True
