"""ICU capacity maths (model/capacity.py) against textbook values, brute force and exact distributions,
and its CLI run as a subprocess on a model trained by `python -m model.train`.

The maths is tested on pure inputs (need tables written out here); only the CLI tests read a model directory.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from model import capacity

REPO_ROOT = Path(__file__).resolve().parent.parent

# flag = risk >= threshold: lower thresholds flag more patients, catch more deaths and fill more beds.
ICU_TABLE = pd.DataFrame(
    {
        "threshold": [0.0, 0.01, 0.05, 0.10, 0.30, 1.0],
        "flagged_share": [1.0, 0.40, 0.10, 0.05, 0.02, 0.0],
        "recall": [1.0, 0.95, 0.80, 0.60, 0.35, 0.0],
        "icu_rate_flagged": [0.04, 0.08, 0.20, 0.30, 0.45, 0.0],
        "icu_rate_unflagged": [0.0, 0.0133, 0.0222, 0.0263, 0.0316, 0.04],
        "death_rate_flagged": [0.03, 0.07125, 0.24, 0.36, 0.525, 0.0],
        "death_rate_unflagged": [0.0, 0.0025, 0.0066667, 0.0126316, 0.0198980, 0.03],
    }
)
NEED = capacity.need_from_icu_table(ICU_TABLE)


def _scenario(**changes: object) -> capacity.Scenario:
    base: dict[str, object] = {"cases_per_day": 200.0, "beds": 40.0, "los_days": 9.0, "days": 90}
    return capacity.Scenario(**{**base, **changes})  # type: ignore[arg-type]


# --- Little's law and the census ------------------------------------------------------------------------


# Shapes below 1 spread stays more than an exponential does (a long tail): they converge later than 5 stays.
@pytest.mark.parametrize("shape", [1.0, 2.0, 4.0])
@pytest.mark.parametrize("census_today", [0, 30])
def test_flat_growth_converges_to_littles_law_by_five_stays(shape: float, census_today: int) -> None:
    los = 9.0
    s = _scenario(los_days=los, los_shape=shape, census=census_today, days=int(5 * los))
    need = capacity.need_at(NEED, 0.05)
    census = capacity.expected_census(capacity.admissions(s, need.icu_per_case_flagged), s.census, los, shape)
    arrivals_per_day = 200.0 * need.icu_per_case_flagged
    assert census[int(5 * los)] == pytest.approx(arrivals_per_day * los, rel=0.02)


def test_kernel_and_residual_match_numerical_integration() -> None:
    for mean, shape in [(9.0, 1.0), (6.0, 0.5), (12.0, 3.0)]:
        dist = stats.gamma(shape, scale=mean / shape)
        kernel = capacity.census_kernel(40, mean, shape)
        for j in range(40):
            assert kernel[j] == pytest.approx(integrate.quad(dist.sf, j, j + 1)[0], abs=1e-9)
        assert kernel.sum() == pytest.approx(integrate.quad(dist.sf, 0, 40)[0], abs=1e-7)
        for t in (0.0, 1.0, 7.5, 30.0):
            tail = integrate.quad(dist.sf, t, np.inf)[0] / mean
            assert capacity.residual_share(t, mean, shape) == pytest.approx(tail, abs=1e-9)


def test_census_is_the_brute_force_sum_over_patients() -> None:
    mean, shape, today = 7.0, 2.0, 12
    arrivals = np.array([3.0, 0.0, 5.5, 2.0, 8.0, 1.0, 0.0, 4.0])
    dist = stats.gamma(shape, scale=mean / shape)
    got = capacity.expected_census(arrivals, today, mean, shape)
    for t in range(len(arrivals)):
        # Arrivals of day d spread over [d, d+1); present at the end of day t if the stay outlasts t + 1.
        new = sum(
            arrivals[d] * integrate.quad(lambda u, d=d, t=t: dist.sf(t + 1 - d - u), 0, 1)[0] for d in range(t + 1)
        )
        kept = today * integrate.quad(dist.sf, t + 1, np.inf)[0] / mean
        assert got[t] == pytest.approx(new + kept, abs=1e-8)


def test_cases_grow_by_the_doubling_time_and_shift_with_the_delay() -> None:
    s = _scenario(doubling_days=7.0, days=14)
    assert s.cases()[[0, 7, 14]] == pytest.approx([200, 400, 800])
    assert _scenario(doubling_days=-7.0, days=14).cases()[14] == pytest.approx(50)
    assert _scenario(days=14).cases() == pytest.approx(np.full(15, 200.0))
    assert s.cases(shift=7.0)[7] == pytest.approx(200)
    assert capacity.admissions(_scenario(doubling_days=7.0, delay_days=7.0), 0.1)[0] == pytest.approx(10)


# --- saturation -------------------------------------------------------------------------------------------------


def test_saturation_day_is_the_first_day_over_the_beds() -> None:
    assert capacity.saturation_day(np.array([10, 39.9, 40, 40.5, 30]), 40) == 3
    assert capacity.saturation_day(np.array([10, 20, 40]), 40) is None
    assert capacity.saturation_day(np.array([50, 20]), 40) == 0
    assert capacity.saturation_day(np.array([0.0, 0.0]), 0) is None
    assert capacity.saturation_day(np.array([0.0, 0.2]), 0) == 1


def test_doubling_saturates_earlier_than_flat_and_later_for_a_higher_threshold() -> None:
    need = capacity.need_at(NEED, 0.05)
    flat = capacity.project(_scenario(beds=30, days=120), need, band=False)
    doubling = capacity.project(_scenario(beds=30, days=120, doubling_days=14.0), need, band=False)
    halving = capacity.project(_scenario(beds=30, days=120, doubling_days=-30.0), need, band=False)
    assert flat.saturation_day is not None and doubling.saturation_day is not None
    assert doubling.saturation_day < flat.saturation_day
    assert halving.saturation_day is None or halving.saturation_day > flat.saturation_day

    days = {}
    for t in (0.01, 0.05, 0.10):
        p = capacity.project(_scenario(beds=30, days=120, doubling_days=14.0), capacity.need_at(NEED, t), band=False)
        assert p.saturation_day is not None
        days[t] = p.saturation_day
    assert days[0.01] < days[0.05] < days[0.10]


def test_threshold_that_just_fits_is_the_highest_recall_within_the_beds() -> None:
    s = _scenario(beds=60, days=45, doubling_days=60.0, census=5)
    fit = capacity.threshold_that_fits(s, NEED)
    assert fit.status == "fits" and fit.need is not None and fit.need.threshold == 0.05
    assert capacity.project(s, fit.need, band=False).saturation_day is None
    lower = NEED[NEED["threshold"] < fit.need.threshold]
    assert not lower.empty
    for t in lower["threshold"]:  # every threshold that catches more deaths overflows
        assert capacity.project(s, capacity.need_at(NEED, t), band=False).saturation_day is not None

    assert capacity.threshold_that_fits(_scenario(beds=100_000), NEED).status == "fits_all"
    blocked = capacity.threshold_that_fits(_scenario(beds=10, census=25), NEED)
    assert blocked.status == "none" and blocked.need is None and blocked.blocked_by_today


# --- Erlang-B -----------------------------------------------------------------------------------------------------


def _erlang_b_exact(load: int, servers: int) -> Fraction:
    """The textbook formula in exact rational arithmetic: (A^N / N!) / Σ_{i ≤ N} A^i / i!."""
    terms = [Fraction(load**i, math.factorial(i)) for i in range(servers + 1)]
    return terms[-1] / sum(terms)


def test_erlang_b_textbook_value() -> None:
    assert capacity.erlang_b(10.0, 10) == pytest.approx(0.2146, abs=5e-5)


@pytest.mark.parametrize(("load", "servers"), [(1, 1), (2, 5), (10, 10), (15, 20), (40, 30), (7, 60)])
def test_erlang_b_equals_exact_formula(load: int, servers: int) -> None:
    assert capacity.erlang_b(float(load), servers) == pytest.approx(float(_erlang_b_exact(load, servers)), rel=1e-12)


@pytest.mark.parametrize(("load", "servers"), [(25.1, 40), (950.0, 1000), (9_500.5, 10_000), (3.3, 0)])
def test_erlang_b_is_stable_where_the_textbook_ratio_overflows(load: float, servers: int) -> None:
    # B = P(N) / P(≤ N) of a Poisson(A): an independent formula, computed by scipy in log space.
    expected = stats.poisson.pmf(servers, load) / stats.poisson.cdf(servers, load)
    assert capacity.erlang_b(load, servers) == pytest.approx(expected, rel=1e-9)


def test_erlang_b_edges_and_bad_input() -> None:
    assert capacity.erlang_b(0.0, 5) == 0.0
    assert capacity.erlang_b(5.0, 0) == 1.0
    assert capacity.erlang_b(5.0, 100_000) == 0.0  # underflows to exactly 0, and stops early
    with pytest.raises(capacity.CapacityInputError, match="whole number of beds"):
        capacity.erlang_b(5.0, -1)


def test_beds_for_blocking_is_the_fewest_that_meet_the_target() -> None:
    for load in (0.5, 10.0, 25.1, 300.0):
        n = capacity.beds_for_blocking(load, 0.01)
        assert capacity.erlang_b(load, n) <= 0.01 < capacity.erlang_b(load, n - 1) if n else True


# --- the stochastic band ------------------------------------------------------------------------------------------


def _exact_quantiles(new_mean: float, today: int, stay: float, q: tuple[float, float]) -> tuple[int, int]:
    """Quantiles of Poisson(new_mean) + Binomial(today, stay), the census's exact law, by convolving pmfs."""
    top = int(new_mean + today + 20 * math.sqrt(new_mean + today + 1) + 20)
    k = np.arange(top + 1)
    pmf = np.convolve(stats.poisson.pmf(k, new_mean), stats.binom.pmf(k, today, stay))[: top + 1]
    cdf = np.cumsum(pmf)
    return int(np.searchsorted(cdf, q[0])), int(np.searchsorted(cdf, q[1]))


def test_band_contains_the_expected_census_and_is_reproducible_per_seed() -> None:
    s = _scenario(census=10, doubling_days=21.0, delay_days=2.0, days=60, los_shape=2.0)
    need = capacity.need_at(NEED, 0.05)
    p = capacity.project(s, need, seed=11)
    assert p.band is not None and p.band.method == "patients"
    days = p.days
    assert (days["census_p05"] <= days["census"]).all() and (days["census"] <= days["census_p95"]).all()
    assert (days["census_p95"] > days["census_p05"]).all()
    again = capacity.project(s, need, seed=11)
    pd.testing.assert_frame_equal(days, again.days)
    other = capacity.project(s, need, seed=12)
    assert not np.array_equal(days["census_p95"], other.days["census_p95"])


def test_simulated_census_follows_its_exact_distribution() -> None:
    # Poisson arrivals into unlimited beds (M/G/∞): the census is Poisson, plus today's patients thinned binomially.
    s = _scenario(census=20, doubling_days=30.0, days=40, los_shape=3.0, cases_per_day=200)
    need = capacity.need_at(NEED, 0.10)
    arriving = capacity.admissions(s, need.icu_per_case_flagged)
    samples, method = capacity.simulate_census(arriving, 20, s.los_days, s.los_shape, runs=4000, seed=5)
    assert method == "patients"
    expected = capacity.expected_census(arriving, 20, s.los_days, s.los_shape)
    new = capacity.expected_census(arriving, 0, s.los_days, s.los_shape)
    stay = capacity.residual_share(np.arange(1, s.days + 2), s.los_days, s.los_shape)
    sd = np.sqrt(new + 20 * stay * (1 - stay))
    assert np.abs(samples.mean(axis=0) - expected).max() < 5 * (sd / math.sqrt(4000)).max()
    low, high = np.quantile(samples, capacity.BAND, axis=0)
    for t in (0, 5, 20, 40):
        lo, hi = _exact_quantiles(new[t], 20, stay[t], capacity.BAND)
        assert abs(low[t] - lo) <= 1 and abs(high[t] - hi) <= 1, t


def test_band_for_very_many_patients_samples_the_exact_law() -> None:
    s = _scenario(cases_per_day=100_000, days=365, census=300, beds=5000)
    need = capacity.need_at(NEED, 0.05)
    p = capacity.project(s, need, seed=3)
    assert p.band is not None and p.band.method == "census distribution" and p.band.saturation_days is None
    assert (p.days["census_p05"] <= p.days["census"]).all() and (p.days["census"] <= p.days["census_p95"]).all()
    pd.testing.assert_frame_equal(p.days, capacity.project(s, need, seed=3).days)


def test_runs_saturating_share_counts_paths_over_the_beds() -> None:
    s = _scenario(beds=25, days=90, census=5)
    need = capacity.need_at(NEED, 0.05)  # 200 × 0.02 × 9 = 36 patients at steady state: nearly every run overflows
    p = capacity.project(s, need)
    assert p.band is not None and p.band.saturation_days is not None
    assert (p.band.saturation_days >= 0).mean() > 0.95
    never = capacity.project(_scenario(beds=200, days=90), need)
    assert never.band is not None and never.band.saturation_days is not None
    assert (never.band.saturation_days == -1).all()


# --- deaths missed, need tables -------------------------------------------------------------------------------------


def test_deaths_missed_per_day_and_cumulated() -> None:
    s = _scenario(doubling_days=10.0, days=30)
    need = capacity.need_at(NEED, 0.05)
    assert need.missed_deaths_per_case == pytest.approx(0.90 * 0.0066667)
    p = capacity.project(s, need, band=False)
    assert p.days["deaths_missed"].to_numpy() == pytest.approx(need.missed_deaths_per_case * s.cases())
    assert p.days["deaths_missed_cumulative"].to_numpy() == pytest.approx(np.cumsum(p.days["deaths_missed"]))


def test_missed_deaths_agree_between_icu_table_and_constant_share() -> None:
    # In a consistent table, deaths among unflagged per case = prevalence × (1 − recall).
    prevalence = 0.03
    constant = capacity.need_from_constant_share(ICU_TABLE, prevalence, 0.25)
    assert constant["missed_deaths_per_case"].to_numpy() == pytest.approx(prevalence * (1 - ICU_TABLE["recall"]))
    assert NEED["missed_deaths_per_case"].to_numpy() == pytest.approx(
        constant["missed_deaths_per_case"].to_numpy(), abs=1e-6
    )
    assert constant["icu_per_case_flagged"].to_numpy() == pytest.approx(0.25 * ICU_TABLE["flagged_share"])
    assert constant["icu_per_case_unflagged"].isna().all()


def test_need_at_follows_flag_equals_risk_at_least_threshold() -> None:
    for t in (0.0, 0.004, 0.01, 0.0100001, 0.2, 0.9999, 1.0):
        expected = ICU_TABLE[ICU_TABLE["threshold"] >= t].sort_values("threshold").iloc[0]
        got = capacity.need_at(NEED, t)
        assert got.threshold == t
        assert got.flagged_share == expected["flagged_share"] and got.recall == expected["recall"]
        assert got.icu_per_case_flagged == pytest.approx(expected["flagged_share"] * expected["icu_rate_flagged"])
    above = capacity.need_at(NEED[NEED["threshold"] < 0.5], 0.7)  # above every stored score: nobody flagged
    assert above.flagged_share == 0 and above.icu_per_case_flagged == 0
    assert above.icu_per_case_unflagged == pytest.approx(0.02 * 0.45 + 0.98 * 0.0316)
    assert above.missed_deaths_per_case == pytest.approx(0.02 * 0.525 + 0.98 * 0.0198980)


def test_icu_table_problems_are_explained() -> None:
    with pytest.raises(capacity.CapacityInputError, match=r"lacks columns icu_rate_flagged.*python -m model.train"):
        capacity.need_from_icu_table(ICU_TABLE.drop(columns=["icu_rate_flagged"]))
    broken = ICU_TABLE.copy()
    broken.loc[2, "icu_rate_unflagged"] = -0.1
    with pytest.raises(capacity.CapacityInputError, match=r"negative .* icu_rate_unflagged"):
        capacity.need_from_icu_table(broken)
    with pytest.raises(capacity.CapacityInputError, match="between 0 and 1"):
        capacity.need_from_constant_share(ICU_TABLE, 0.03, 1.5)


def test_death_rate_note_states_the_rate_and_its_basis() -> None:
    card = {"prevalence": {"test": 0.03}, "data": {"rows_read": 1000, "rows_dropped": {"death_yn=Missing": 600}}}
    assert capacity.card_prevalence(card) == 0.03 and capacity.card_prevalence({"prevalence": 0.02}) == 0.02
    assert math.isnan(capacity.card_prevalence({}))
    share = capacity.known_outcome_share(card)
    assert share == pytest.approx(0.4)
    assert capacity.known_outcome_share({"data": {}}) is None
    note = capacity.death_rate_note(capacity.need_at(NEED, 0.05), share)
    assert "0.600%" in note and "known" in note and "40%" in note and "0.240%" in note


# --- steady state and inputs ---------------------------------------------------------------------------------------


def test_steady_state_curve_and_saturation() -> None:
    # beds by threshold row: 200 × flagged × icu rate × 8 days = 64, 51.2, 32, 24, 14.4, 0
    curve = capacity.steady_state_curve(NEED, 200, 8, beds=30)
    assert list(curve["recall"]) == sorted(curve["recall"])
    assert dict(zip(curve["threshold"], curve["beds_needed"], strict=True))[0.05] == pytest.approx(32.0)
    sat = capacity.steady_state_saturation(curve)
    assert sat.status == "saturates" and sat.threshold == 0.10 and sat.beds_needed == pytest.approx(24.0)
    assert sat.deaths_missed_per_day == pytest.approx(200 * 0.95 * 0.0126316)
    assert capacity.steady_state_saturation(capacity.steady_state_curve(NEED, 200, 8, 64)).status == "never_saturates"
    strict = capacity.steady_state_curve(NEED[NEED["threshold"] < 1.0], 200, 8, beds=10)
    assert capacity.steady_state_saturation(strict).status == "saturated_always"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cases_per_day", -1.0, "new cases per day must be a number from 0"),
        ("beds", 4.5, "staffed ICU beds must be a whole number"),
        ("los_days", 0.0, "mean ICU length of stay"),
        ("los_shape", float("nan"), "stay shape"),
        ("census", -3.0, "ICU census today"),
        ("delay_days", 100.0, "days from case report to ICU admission"),
        ("days", 0, "horizon"),
        ("doubling_days", 0.0, "leave it empty for flat growth"),
    ],
)
def test_bad_inputs_are_explained(field: str, value: object, message: str) -> None:
    with pytest.raises(capacity.CapacityInputError, match=message):
        _scenario(**{field: value})


def test_runaway_growth_says_which_horizon_works() -> None:
    with pytest.raises(capacity.CapacityInputError, match=r"by day 156: shorten the horizon to at most 155 days"):
        _scenario(doubling_days=7.0, days=365)
    _scenario(doubling_days=7.0, days=155)


# --- the CLI, as a subprocess on a trained model ---------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "model.capacity", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


def test_cli_json_matches_the_functions(model_dir: Path) -> None:
    args = ["--model-dir", str(model_dir), "--cases-per-day", "400", "--doubling-days", "14", "--beds", "30"]
    args += ["--los-days", "8", "--los-shape", "2", "--census", "6", "--delay-days", "3", "--days", "60"]
    proc = _cli(*args, "--threshold", "0.05", "--json", "--seed", "9")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {"days", "saturation_day", "steady_state_census", "erlang_b"} <= out.keys()
    assert len(out["days"]) == 61
    assert {"day", "admissions", "census", "census_p05", "census_p95"} <= out["days"][0].keys()

    icu_csv = model_dir / "evaluation" / capacity.ICU_TABLE
    thresholds = pd.read_csv(model_dir / "evaluation" / "thresholds.csv")
    row = thresholds[thresholds["threshold"] >= 0.05].sort_values("threshold").iloc[0]
    if icu_csv.exists():  # the model's ICU table is used whenever training wrote one
        icu = pd.read_csv(icu_csv)
        icu_row = icu[icu["threshold"] >= 0.05].sort_values("threshold").iloc[0]
        assert out["icu_source"] == "model"
        assert out["icu_per_case_flagged"] == pytest.approx(icu_row["flagged_share"] * icu_row["icu_rate_flagged"])
        assert out["recall"] == pytest.approx(icu_row["recall"])
    else:
        assert out["icu_source"] == "constant share" and "no evaluation/icu_by_threshold.csv" in proc.stderr
        assert out["icu_per_case_flagged"] == pytest.approx(row["flagged_share"] * capacity.DEFAULT_ICU_SHARE)
        assert out["recall"] == pytest.approx(row["recall"])

    s = capacity.Scenario(400, 30, 8, 2, 14, 6, 3, 60)
    need = capacity.Need(0.05, out["flagged_share"], out["recall"], out["icu_per_case_flagged"], math.nan, 0.0, 0.0)
    census = capacity.expected_census(capacity.admissions(s, need.icu_per_case_flagged), 6, 8, 2)
    assert [d["census"] for d in out["days"]] == pytest.approx(census)
    assert out["saturation_day"] == capacity.saturation_day(census, 30)
    load = 400 * out["icu_per_case_flagged"] * 8
    assert out["steady_state_census"] == pytest.approx(load)
    assert out["erlang_b"] == pytest.approx(capacity.erlang_b(load, 30))
    assert all(d["census_p05"] <= d["census"] <= d["census_p95"] for d in out["days"][1:])
    assert _cli(*args, "--threshold", "0.05", "--json", "--seed", "9").stdout == proc.stdout  # seeded

    text = _cli(*args[:2], "--cases-per-day", "200", "--beds", "40", "--los-days", "9")
    assert text.returncode == 0, text.stderr
    assert "First day over capacity" in text.stdout and "Erlang-B" in text.stdout and "outcome is known" in text.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cases-per-day", "-5", "--beds", "40", "--los-days", "9"], "new cases per day must be"),
        (["--cases-per-day", "200", "--beds", "40.5", "--los-days", "9"], "whole number"),
        (
            ["--cases-per-day", "200", "--beds", "40", "--los-days", "9", "--doubling-days", "3", "--days", "365"],
            "shorten the horizon",
        ),
        (["--cases-per-day", "200", "--beds", "40", "--los-days", "9", "--threshold", "2"], "between 0 and 1"),
        (["--cases-per-day", "many", "--beds", "40", "--los-days", "9"], "invalid float value"),
        (["--beds", "40", "--los-days", "9"], "required: --cases-per-day"),
    ],
)
def test_cli_bad_input_is_one_clear_line_and_exit_2(model_dir: Path, args: list[str], message: str) -> None:
    proc = _cli("--model-dir", str(model_dir), *args)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not proc.stdout


def test_cli_missing_model_says_how_to_train(tmp_path: Path) -> None:
    proc = _cli("--model-dir", str(tmp_path / "none"), "--cases-per-day", "5", "--beds", "4", "--los-days", "9")
    assert proc.returncode == 2 and "python -m model.train" in proc.stderr and "Traceback" not in proc.stderr
