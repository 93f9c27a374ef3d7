"""Issue 25's faster training gives the figures the slower code gave: each shortcut against the method it replaced.

Real data throughout (the bundled first-wave file); the reference implementations are the replaced code,
kept here so a change that breaks the agreement fails.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from model.core import artifact, isotonic, schema
from model.data.loader import CASE_MONTH, load_counts
from model.stats import evaluate, performance
from model.training import fitting, period_validation
from model.training.fitting import Weighted, fit_model
from model.training.splits import known_intake_outcomes, split_counts
from model.training.train import DEFAULT_SEED, Background, Validations, _as_categories
from tests.conftest import REAL_CDC_FILE


@pytest.fixture(scope="module")
def known() -> pd.DataFrame:
    """The bundled file's intake patients with a known outcome, as training holds them."""
    counts, _ = load_counts(REAL_CDC_FILE)
    return known_intake_outcomes(_as_categories(counts))


def old_bootstrap_intervals(y: np.ndarray, score: np.ndarray, weight: np.ndarray, seed: int) -> dict:
    """The replaced loop: one scikit-learn call per metric and replicate."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {"roc_auc": [], "pr_auc": [], "brier": []}
    for _ in range(evaluate.BOOTSTRAP_METRIC_REPLICATES):
        w = rng.poisson(weight).astype(float)
        if not evaluate.both_classes(y, w):
            continue
        draws["roc_auc"].append(roc_auc_score(y, score, sample_weight=w))
        draws["pr_auc"].append(average_precision_score(y, score, sample_weight=w))
        draws["brier"].append(brier_score_loss(y, score, sample_weight=w))
    return {k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for k, v in draws.items()}


def test_test_metric_intervals_equal_the_replaced_loop_on_real_data(known: pd.DataFrame, model_dir: Path):
    """The default model's test split, collapsed as training evaluates it: the same 95% intervals to 1e-12."""
    test = split_counts(known, DEFAULT_SEED)[2]
    part = Weighted.collapse(test.frame, test.y, test.w, schema.MODEL_FEATURES[schema.INTAKE_MODEL])
    table = artifact.load_risk_table(model_dir, schema.INTAKE_MODEL)
    score = table["probability"].to_numpy()[fitting.table_rows(table, part.x, schema.MODEL_FEATURES["intake"])]
    got = evaluate.bootstrap_intervals(part.y, score, part.w, seed=DEFAULT_SEED)
    want = old_bootstrap_intervals(part.y, score, part.w, DEFAULT_SEED)
    for metric in want:
        assert got[metric] == pytest.approx(want[metric], abs=1e-12)


def old_leave_one_out(known: pd.DataFrame, model: str, candidate: str, month: str, seed: int) -> dict:
    """The replaced refit: the file's whole counts table split row by row, then the model's patients."""
    rest, held = known[known[CASE_MONTH] != month], known[known[CASE_MONTH] == month]
    fit_part, recal_part = split_counts(rest, seed, (0.75, 0.25))
    fitted = fit_model(
        model, fit_part.weighted(model), recal_part.weighted(model), seed=seed, names=[candidate], replicates=0
    )
    part = split_counts(held, seed, (1.0,))[0].for_model(model)
    p = fitted.predict(part.frame)
    auc, _ = performance.delong(part.y, p, part.w)
    return {
        "patients": part.patients,
        "deaths": part.deaths,
        "oe": performance.observed_expected(part.y, p, part.w),
    }, auc


@pytest.mark.parametrize("model", [schema.INTAKE_MODEL, schema.IN_HOSPITAL_MODEL])
def test_month_left_out_agrees_with_the_row_level_split(known: pd.DataFrame, model: str):
    """Refits on the model's counts per (inputs, month): the same months and patients, O/E and ROC-AUC within
    the noise of the 75/25 deal (which now deals the model's counts, not the file's rows)."""
    counts = period_validation.model_counts(known, model)
    months = period_validation.months_to_leave_out(counts)
    assert len(months) >= 3
    for month in months:
        new = period_validation.leave_one_out(counts, model, "logistic_pairwise", month, DEFAULT_SEED)
        old, old_auc = old_leave_one_out(known, model, "logistic_pairwise", month, DEFAULT_SEED)
        assert (new["patients"], new["deaths"]) == (old["patients"], old["deaths"])
        # The deal moves a month's O/E by about its own sampling SE (seen: up to 1.9 SE); 4 SE or 3% is a break.
        assert abs(np.log(new["oe"] / old["oe"]["ratio"])) <= max(4 * new["log_oe_se"], 0.03)
        assert new["roc_auc"] == pytest.approx(old_auc, abs=0.005)


def test_validation_jobs_give_the_same_results_in_a_worker_and_stop_it(known: pd.DataFrame):
    """Jobs run in the second process (some taken back by this one) equal the same jobs run here, and the
    worker is gone afterwards, even when training fails inside the block."""
    with Background(1) as here:
        alone = Validations(here, known, DEFAULT_SEED)
        alone.start(schema.INTAKE_MODEL, "logistic_main_effects")
        want = [job.result() for job in alone.periods[schema.INTAKE_MODEL][1]], alone.temporal.result()
    with pytest.raises(RuntimeError, match="stop here"), Background(2) as background:
        background.start()
        both = Validations(background, known, DEFAULT_SEED)
        both.start(schema.INTAKE_MODEL, "logistic_main_effects")
        got = [job.result() for job in both.periods[schema.INTAKE_MODEL][1]], both.temporal.result()
        workers = list(background.pool._processes.values())
        assert workers and all(w.is_alive() for w in workers)
        raise RuntimeError("stop here")
    assert got == want
    assert not any(w.is_alive() for w in workers)
    assert not multiprocessing.active_children()


def test_a_worker_killed_mid_training_leaves_its_jobs_to_this_process(
    known: pd.DataFrame, capfd: pytest.CaptureFixture[str]
) -> None:
    """Seen once under pytest-xdist: the second process died and training stopped with BrokenProcessPool. The
    jobs are pure, so this process runs the lost ones and gets what it would have got anyway."""
    with Background(1) as here:
        alone = Validations(here, known, DEFAULT_SEED)
        alone.start(schema.INTAKE_MODEL, "logistic_main_effects")
        want = [job.result() for job in alone.periods[schema.INTAKE_MODEL][1]]
    with Background(2) as background:
        background.start()
        both = Validations(background, known, DEFAULT_SEED)
        both.start(schema.INTAKE_MODEL, "logistic_main_effects")
        (worker,) = background.pool._processes.values()
        os.kill(worker.pid, signal.SIGKILL)  # as the kernel's out-of-memory killer would
        worker.join(timeout=30)
        got = [job.result() for job in both.periods[schema.INTAKE_MODEL][1]]
        late = background.submit(sum, [1, 2])  # a job handed over after the loss runs here too
        assert late.result() == 3
    assert got == want
    assert capfd.readouterr().err.count("the second process stopped unexpectedly") == 1  # said once per training
    assert not multiprocessing.active_children()


def test_table_rows_equal_a_dictionary_lookup_and_refuse_unknown_combinations():
    inputs = schema.MODEL_FEATURES[schema.INTAKE_RACE_MODEL]
    table = fitting.grid(schema.INTAKE_RACE_MODEL, inputs)
    frame = table.sample(2000, replace=True, random_state=3).reset_index(drop=True)
    frame = frame.assign(**{c: frame[c].astype("category") for c in inputs[:3]})  # both kinds of column
    position = {tuple(row): k for k, row in enumerate(table[list(inputs)].itertuples(index=False))}
    want = [position[tuple(row)] for row in frame[list(inputs)].astype(str).itertuples(index=False)]
    assert fitting.table_rows(table, frame, inputs).tolist() == want
    with pytest.raises(ValueError, match="not in the model's table"):
        fitting.table_rows(table, frame.head(3).assign(sex="Martian"), inputs)


def test_pool_adjacent_violators_equals_isotonic_regression():
    rng = np.random.default_rng(11)
    for _ in range(300):
        size = int(rng.integers(1, 9))
        values, weights = rng.random(size), rng.uniform(1, 50, size)
        want = IsotonicRegression(increasing=True).fit_transform(np.arange(size), values, sample_weight=weights)
        assert np.allclose(isotonic.pool_adjacent_violators(values, weights), want, atol=1e-12)


@pytest.mark.parametrize("model", list(schema.MODEL_FEATURES))
def test_fits_on_the_pre_encoded_grid_equal_fitting_the_whole_pipeline(known: pd.DataFrame, model: str):
    """Every candidate fitted on the grid's pre-encoded rows predicts what the same pipeline fitted on the
    patients' own rows predicts (the replaced code), for every combination of the model's inputs."""
    train = split_counts(known, DEFAULT_SEED)[0].weighted(model)
    inputs = schema.MODEL_FEATURES[model]
    combos = fitting.grid(model, inputs)
    for name in fitting.CANDIDATES:
        want = fitting.CANDIDATES[name](model, inputs, DEFAULT_SEED)
        keep = train.w > 0
        with fitting.one_thread():
            want.fit(train.x[keep], train.y[keep], model__sample_weight=train.w[keep])
            got = fitting._fit(name, model, inputs, train, DEFAULT_SEED)
        expected = want.predict_proba(combos)[:, 1]
        assert np.allclose(fitting.grid_probabilities(got, model, name, inputs), expected, rtol=0, atol=1e-12)
        assert np.allclose(got.predict_proba(combos)[:, 1], expected, rtol=0, atol=1e-12)


def test_month_deal_on_grid_rows_holds_the_same_patients_as_the_collapsed_rows(known: pd.DataFrame):
    """`on_grid_counts` (a bincount per grid row) and Weighted.collapse of the same counts: same patients per
    (combination, outcome); the fit parts dealt from one seed hold each month's patients exactly once."""
    model = schema.INTAKE_RACE_MODEL
    inputs = schema.MODEL_FEATURES[model]
    counts = period_validation.model_counts(known, model)
    combos = fitting.grid(model, inputs)
    frame = pd.concat([combos.iloc[counts[fitting.GRID_ROW]]] * 2, ignore_index=True)
    y = np.repeat(np.array([1, 0], dtype=np.int8), len(counts))
    w = np.concatenate([counts["deaths"], counts["survivors"]]).astype(float)
    want = Weighted.collapse(frame, y, w, inputs)
    got = period_validation.on_grid_counts(
        model, counts[fitting.GRID_ROW].to_numpy(), counts["deaths"].to_numpy(), counts["survivors"].to_numpy()
    )

    def per_cell(part: Weighted) -> dict:
        rows = fitting.table_rows(combos, part.x, inputs)
        return dict(zip(zip(rows.tolist(), part.y.tolist(), strict=True), part.w.tolist(), strict=True))

    assert per_cell(got) == per_cell(want)
    fit_part, recal_part = period_validation.dealt(counts, model, np.random.default_rng(DEFAULT_SEED), (0.75, 0.25))
    assert fit_part.w.sum() + recal_part.w.sum() == counts["deaths"].sum() + counts["survivors"].sum()
    assert fit_part.events + recal_part.events == counts["deaths"].sum()


def test_bootstrap_replicates_give_the_same_interval_in_a_worker_and_in_order(known: pd.DataFrame):
    """The tree bootstrap's replicates spread over two processes (some taken back by this one) give the SD the
    replicates give run here one after another: each replicate's weights are drawn before any refit."""
    model, name = schema.INTAKE_MODEL, "gradient_boosting_monotone"
    splits = split_counts(known, DEFAULT_SEED)
    train, validation = splits[0].weighted(model), splits[1].weighted(model)
    args = (model, name, fitting.on_grid(model, train), fitting.on_grid(model, validation), True, DEFAULT_SEED, 4)
    with fitting.one_thread():
        want = fitting.bootstrap_logit_sd(*args)
    with Background(2) as background:
        assert background.start() == 2
        got = fitting.bootstrap_logit_sd(*args, runner=background.map)
    assert np.array_equal(got, want)
    assert want.shape == (len(fitting.grid(model, schema.MODEL_FEATURES[model])),) and np.all(want >= 0)
    assert np.any(want > 0)


def test_idle_cores_is_measured_and_decides_the_second_process():
    from model.training import train

    idle = train.idle_cores(0.05)
    assert idle is not None and 0.0 <= idle <= (os.cpu_count() or 1) + 1e-9
    assert train.default_workers() in (1, 2)
    assert Background(1).start() == 1
