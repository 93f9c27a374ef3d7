"""`python -m model.recalibrate` on real periods: a March 2020 model updated with April-on cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from model.core import artifact, schema
from model.data.loader import load_counts
from model.stats import evaluate
from model.training import updating
from model.training.fitting import PROBABILITY_CEILING, PROBABILITY_FLOOR, grid, safe_logit, table_rows
from model.training.recalibrate import RecentRows, choose_update, update_model
from model.training.splits import Split, known_intake_outcomes, split_counts
from tests.conftest import RealPeriods
from tests.inprocess import run_main, run_ok


def intake_oe(model_dir: Path, data: Path) -> float:
    """Observed/expected deaths of the intake model on a file's intake patients with known outcomes."""
    (part,) = split_counts(known_intake_outcomes(load_counts(data)[0]), seed=0, shares=(1.0,))
    table = artifact.load_risk_table(model_dir, schema.INTAKE_MODEL)
    p = table["probability"].to_numpy()[table_rows(table, part.frame, schema.MODEL_FEATURES[schema.INTAKE_MODEL])]
    return evaluate.observed_expected(part.y, p, part.w)["oe"]


@pytest.fixture(scope="module")
def early_model(real_periods: RealPeriods, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("early") / "model"
    run_ok("model.train", "--data", str(real_periods.early), "--out", str(out), "--quiet")
    return out


def test_recalibration_moves_later_observed_expected_toward_one(
    early_model: Path, real_periods: RealPeriods, tmp_path: Path
):
    before = intake_oe(early_model, real_periods.late_b)
    out = tmp_path / "recalibrated"
    proc = run_ok(
        "model.recalibrate", "--model", str(early_model), "--data", str(real_periods.late_a), "--out", str(out)
    )
    after = intake_oe(out, real_periods.late_b)  # judged on cases the update never saw
    assert abs(after - 1) < abs(before - 1) / 2, (before, after)
    assert abs(after - 1) < 0.05
    card = artifact.load_card(out)
    update = card["updates"][-1]
    assert update["previous_version"] == artifact.load_card(early_model)["model_version"]
    intake = update["models"]["intake"]
    # April's patients differ from March's in more than the level of risk: the closed test revises.
    assert intake["choice"] == "model revision" and [s["rejected"] for s in intake["steps"]] == [True] * 3
    assert "model revision vs recalibration in the large: LR" in proc.stdout and "choice: model revision" in proc.stdout
    assert abs(intake["observed_expected_after"]["ratio"] - 1) < 0.05  # out of sample (cross-validated)
    assert "cross-validation" in intake["after_is"]
    assert "O/E" in proc.stdout and card["model_version"].endswith("-recal")
    assert "recalibrated from a model of real CDC cases, case dates Mar 2020" in card["data_period"]
    assert "Updated" in (out / artifact.CARD_MD).read_text()
    # A revision changes the ranking, so its threshold table is carried unchanged and the card says so.
    old_t, new_t = artifact.load_table(early_model, "thresholds"), artifact.load_table(out, "thresholds")
    assert np.array_equal(old_t["threshold"], new_t["threshold"]) and "revised" in update["evaluation_tables"]
    for model in artifact.trained_models(out):
        new = artifact.load_risk_table(out, model)
        assert_monotone_in_age(new, schema.MODEL_FEATURES[model])
        assert new["probability"].between(PROBABILITY_FLOOR, PROBABILITY_CEILING).all()
        assert (new["ci_low"] <= new["probability"]).all() and (new["probability"] <= new["ci_high"]).all()


def assert_monotone_in_age(table: pd.DataFrame, inputs: tuple[str, ...]) -> None:
    """Risk never falls from one age group to the next (10-19 up) with the other inputs fixed."""
    others = [c for c in inputs if c != "age_group"]
    rows = table[table["age_group"].isin(schema.MONOTONE_AGE_GROUPS)].copy()
    rows["rank"] = rows["age_group"].map({g: i for i, g in enumerate(schema.MONOTONE_AGE_GROUPS)})
    for _, stratum in rows.sort_values("rank").groupby(others):
        assert (np.diff(stratum["probability"].to_numpy()) >= -1e-12).all(), stratum


def test_recalibration_refuses_what_it_cannot_do(early_model: Path, legacy_cdc_file: Path, tmp_path: Path):
    for args, says in (
        (["--data", str(legacy_cdc_file)], "too few to estimate an update"),
        (["--data", str(tmp_path / "nope.csv")], "no such file"),
        (["--data", str(legacy_cdc_file), "--since", "March"], "YYYY-MM"),
    ):
        proc = run_main("model.recalibrate", "--model", str(early_model), "--out", str(tmp_path / "m"), *args)
        assert proc.returncode == 2, proc.stderr
        assert says in proc.stderr and "Traceback" not in proc.stderr
        # Only a real month-parse failure is called one (every ValueError used to be "--since is not a month").
        assert ("is not a month" in proc.stderr) == (args[-1] == "March"), proc.stderr
    assert not (tmp_path / "m").exists()


def test_recalibration_on_generated_data_whose_fatality_falls(tmp_path: Path) -> None:
    """A first-wave model of generated data, updated with a few thousand 2021 cases, predicts late 2021 better."""
    files = {name: tmp_path / f"{name}.csv" for name in ("first_wave", "recent", "later")}
    run_ok(
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
    run_ok(
        "model.synth",
        "--rows",
        "40000",
        "--seed",
        "32",
        "--months",
        "2021-01:2021-06",
        "--out",
        str(files["recent"]),
    )
    run_ok(
        "model.synth",
        "--rows",
        "200000",
        "--seed",
        "33",
        "--months",
        "2021-07:2021-12",
        "--out",
        str(files["later"]),
    )
    model = tmp_path / "model"
    run_ok("model.train", "--data", str(files["first_wave"]), "--out", str(model), "--quiet")
    before = intake_oe(model, files["later"])
    assert before < 0.6, "the generator's fatality must fall after the first wave"
    updated = tmp_path / "updated"
    run_ok("model.recalibrate", "--model", str(model), "--data", str(files["recent"]), "--out", str(updated))
    after = intake_oe(updated, files["later"])
    assert abs(after - 1) < abs(before - 1) / 2, (before, after)
    assert artifact.load_card(updated)["data"]["synthetic"] is True


# --- known truth: which update does the closed test choose? ----------------------------------------------

INTAKE = schema.INTAKE_MODEL
INPUTS = schema.MODEL_FEATURES[INTAKE]
COMMON = {  # the values real patients mostly have; the rare codes stay in the table, unseen
    "age_group": schema.AGE_GROUPS,
    "sex": ("Female", "Male"),
    "current_status": ("Laboratory-confirmed case", "Probable Case"),
    "medcond_yn": ("Yes", "No", "Missing", "Unknown"),
}


def old_table() -> pd.DataFrame:
    """An intake table whose logit is additive in the inputs (the 'old model'), interval ±0.1 on the logit."""
    table = grid(INTAKE, INPUTS)
    age = table["age_group"].map({g: i for i, g in enumerate(schema.AGE_GROUPS)}).fillna(4).to_numpy(float)
    lp = -7.0 + 0.65 * age + 0.4 * (table["sex"] == "Male") + 0.5 * (table["medcond_yn"] == "Yes")
    table["probability"] = expit(lp)
    table["ci_low"], table["ci_high"] = expit(lp - 0.1), expit(lp + 0.1)
    table["train_patients"], table["extrapolated"] = 1_000.0, False
    return table


def recent(truth, patients: int = 60_000, seed: int = 0) -> Split:
    """`patients` drawn over the common combinations; deaths from truth(old logit, frame)."""
    rng = np.random.default_rng(seed)
    table = old_table()
    common = np.logical_and.reduce([table[c].isin(v).to_numpy() for c, v in COMMON.items()])
    frame = table.loc[common, list(INPUTS)].reset_index(drop=True)
    n = rng.multinomial(patients, np.full(len(frame), 1 / len(frame)))
    deaths = rng.binomial(n, expit(truth(safe_logit(table.loc[common, "probability"].to_numpy()), frame)))
    both = pd.concat([frame.assign(y=1, w=deaths), frame.assign(y=0, w=n - deaths)], ignore_index=True)
    both = both[both["w"] > 0]
    return Split(both[list(INPUTS)].reset_index(drop=True), both["y"].to_numpy(), both["w"].to_numpy(float))


@pytest.mark.parametrize(
    ("truth", "expected"),
    [
        (lambda lp, x: lp + 0.5, updating.IN_THE_LARGE),  # fatality rose, same relative risks
        (lambda lp, x: -0.4 + 0.75 * lp, updating.LOGISTIC),  # risks less spread out
        (lambda lp, x: lp + 0.8 * (x["sex"] == "Male").to_numpy(), updating.REVISION),  # one coefficient moved
        (lambda lp, x: lp, updating.NO_UPDATE),  # nothing changed
    ],
    ids=["intercept shift", "slope change", "one coefficient", "no change"],
)
def test_closed_test_finds_the_true_change(truth, expected: str) -> None:
    table, part = old_table(), recent(truth)
    updated, record = update_model(table, INTAKE, part)
    assert record["choice"] == expected, record["steps"]
    if expected == updating.NO_UPDATE:
        assert updated is table and not record["updated"]
        return
    after = record["observed_expected_after"]
    assert after["ci_low"] < 1 < after["ci_high"], after  # out of sample, the update fits
    assert_monotone_in_age(updated, INPUTS)
    assert updated["probability"].between(PROBABILITY_FLOOR, PROBABILITY_CEILING).all()
    # Every interval is at least as wide as the old one mapped through the slope: the update's own
    # uncertainty is added, never dropped.
    old_sd = (safe_logit(table["ci_high"]) - safe_logit(table["ci_low"])) / 2
    new_sd = (safe_logit(updated["ci_high"]) - safe_logit(updated["ci_low"])) / 2
    inner = updated["probability"].between(0.01, 0.9).to_numpy()
    assert (new_sd[inner] >= record["slope"] * old_sd[inner] - 1e-9).all()
    assert (new_sd[inner] > record["slope"] * old_sd[inner] + 1e-4).mean() > 0.9


def test_few_deaths_give_no_update_and_fewer_than_200_only_the_intercept() -> None:
    few = recent(lambda lp, x: lp + 0.5, patients=500)
    _, record = update_model(old_table(), INTAKE, few)
    assert not record["updated"] and "too few" in record["reason"] and record["deaths"] < updating.MIN_EVENTS
    some = recent(lambda lp, x: lp + 0.8 * (x["sex"] == "Male").to_numpy(), patients=1_800, seed=3)
    _, record = update_model(old_table(), INTAKE, some)
    assert updating.MIN_EVENTS <= record["deaths"] < updating.MIN_EVENTS_FULL, record["deaths"]
    assert record["allowed"] == [updating.NO_UPDATE, updating.IN_THE_LARGE]
    assert record["choice"] in (updating.NO_UPDATE, updating.IN_THE_LARGE)


def test_glm_fits_match_a_newton_fit_and_the_aic_variant_agrees_on_a_clear_case() -> None:
    part = recent(lambda lp, x: -0.4 + 0.75 * lp)
    rows = RecentRows.of(old_table(), INTAKE, part)
    fits = updating.candidate_fits(rows.lp, rows.matrix, rows.y, rows.w)
    z = np.column_stack([np.ones_like(rows.lp), rows.lp])
    beta, cov = updating.ridge_newton(z, np.zeros_like(rows.lp), rows.y, rows.w, np.zeros(2))
    assert beta == pytest.approx(fits[updating.LOGISTIC].params, abs=1e-6)
    assert cov == pytest.approx(fits[updating.LOGISTIC].cov, rel=1e-4)
    assert choose_update(rows, criterion="aic")["choice"] == updating.LOGISTIC


def test_the_cards_updating_plan_describes_the_closed_test() -> None:
    """Issue 19/20 follow-up: the plan described the old intercept/slope update; it must name what
    `model.training.recalibrate` does: four updates chosen by a closed test, with updating.py's event minimums."""
    from model.training import model_card

    plan = model_card.UPDATING_PLAN
    assert "recalibrate the intercept" not in plan
    for method in updating.METHODS:
        assert method in plan, method
    assert "closed test" in plan and "ridge" in plan and f"alpha {updating.ALPHA}" in plan
    assert f"fewer than {updating.MIN_EVENTS} deaths or survivors" in plan
    assert f"fewer than {updating.MIN_EVENTS_FULL}, only no update and recalibration in the large" in plan
    assert "python -m model.recalibrate --model DIR --data RECENT_FILE --out DIR" in plan
