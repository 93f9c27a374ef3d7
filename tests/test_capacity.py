"""ICU capacity maths (model/planning/capacity.py) against textbook values, brute force and exact distributions,
and its CLI (its main, in-process) on a model trained by `python -m model.train`.

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

from model.planning import capacity
from tests.inprocess import Ran, run_main

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
# Every row adds up to 0.04 ICU admissions per reported case (lower end) and 0.12 (upper end): total demand does not
# depend on the threshold. Here the reported cases are the known-outcome ones, so both flagged shares agree.
_rest = (1 - ICU_TABLE["flagged_share"]).where(ICU_TABLE["flagged_share"] < 1, 1.0)
ICU_TABLE["icu_rate_unflagged"] = (0.04 - ICU_TABLE["flagged_share"] * ICU_TABLE["icu_rate_flagged"]) / _rest
ICU_TABLE["case_flagged_share"] = ICU_TABLE["flagged_share"]
ICU_TABLE["icu_rate_flagged_upper"] = 3 * ICU_TABLE["icu_rate_flagged"]
ICU_TABLE["icu_rate_unflagged_upper"] = 3 * ICU_TABLE["icu_rate_unflagged"]
NEED = capacity.need_from_icu_table(ICU_TABLE)
NEED_UPPER = capacity.need_from_icu_table(ICU_TABLE, "upper")
CHANCE_ONLY = capacity.Uncertainty(None, 0.0, 0.0)


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


def test_total_demand_is_the_same_at_every_threshold_and_the_flagged_part_below_it() -> None:
    s = _scenario(beds=30, days=120, doubling_days=30.0, census=4, delay_days=2.0)
    totals = []
    for t in (0.0, 0.01, 0.05, 0.10, 0.30, 0.7):
        need = capacity.need_at(NEED, t)
        assert need.icu_per_case == pytest.approx(0.04)
        p = capacity.project(s, need, band=False)
        d = p.days
        assert (d["admissions"] + d["admissions_unflagged"]).to_numpy() == pytest.approx(0.04 * s.cases(s.delay_days))
        if t > 0:
            assert (d["census_flagged"] < d["census"]).all() and (d["admissions"] < 0.04 * s.cases(2.0)).all()
        totals.append((p.days["census"].to_numpy(), p.saturation_day, p.erlang_b))
    for census, day, blocked in totals[1:]:
        assert census == pytest.approx(totals[0][0]) and day == totals[0][1] and blocked == pytest.approx(totals[0][2])
    upper = capacity.project(s, capacity.need_at(NEED_UPPER, 0.05), band=False)
    assert upper.days["census"].iloc[-1] > 2 * totals[0][0][-1]


def test_doubling_saturates_earlier_than_flat_and_halving_later() -> None:
    need = capacity.need_at(NEED, 0.05)
    flat = capacity.project(_scenario(beds=60, days=120), need, band=False)
    doubling = capacity.project(_scenario(beds=60, days=120, doubling_days=14.0), need, band=False)
    halving = capacity.project(_scenario(beds=60, days=120, doubling_days=-30.0), need, band=False)
    assert flat.saturation_day is not None and doubling.saturation_day is not None
    assert doubling.saturation_day < flat.saturation_day
    assert halving.saturation_day is None or halving.saturation_day > flat.saturation_day


def test_threshold_that_fits_the_surveillance_team_is_the_highest_recall_within_it() -> None:
    s = _scenario(days=45, doubling_days=60.0)
    team = capacity.Surveillance(follow_days=10, capacity=350)
    fit = capacity.surveillance_fit(s, team, NEED)
    # Peak cases followed: the last 10 days' cases on day 45, ≈ 3,190; 350 fit a flagged share up to 0.11.
    assert fit.status == "fits" and fit.need is not None and fit.need.threshold == 0.05
    assert capacity.project(s, fit.need, surveillance=team, band=False).peak_surveillance <= 350
    for t in NEED[NEED["threshold"] < 0.05]["threshold"]:  # every threshold that catches more deaths overflows
        load = capacity.project(s, capacity.need_at(NEED, t), surveillance=team, band=False).peak_surveillance
        assert load > 350
    roomy = capacity.surveillance_fit(s, capacity.Surveillance(10, 10**6), NEED)
    assert roomy.status == "fits_all" and roomy.need is not None and roomy.need.threshold == 0.0
    # Flagging nobody (recall 0) is never offered as the threshold that fits.
    tiny = capacity.surveillance_fit(s, capacity.Surveillance(10, 5), NEED)
    assert tiny.status == "none" and tiny.need is None


def test_surveillance_load_is_flagged_cases_of_the_last_follow_days() -> None:
    s = _scenario(days=20, doubling_days=10.0)
    need = capacity.need_at(NEED, 0.05)
    p = capacity.project(s, need, surveillance=capacity.Surveillance(7, 100), band=False)
    for day in (0, 6, 20):
        window = [200 * 2 ** ((day - j) / 10) for j in range(7)]  # before today too: the same growth held
        assert p.days["under_surveillance"].iloc[day] == pytest.approx(0.10 * sum(window))
    flat = capacity.project(_scenario(), need, surveillance=capacity.Surveillance(14, 100), band=False)
    assert flat.days["under_surveillance"].to_numpy() == pytest.approx(200 * 0.10 * 14)  # Little's law


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


def _erlang_b_recursion(load: float, servers: int) -> float:
    blocked = 1.0
    for n in range(1, servers + 1):
        blocked = load * blocked / (n + load * blocked)
    return blocked


@pytest.mark.parametrize(
    ("load", "servers"),
    [(4000.3, 4999), (6000.0, 5001), (5500.0, 6000), (1e5, 5001), (20_000.5, 20_000), (3.0, 12), (50.0, 40)],
)
def test_erlang_b_in_log_space_equals_its_recursion(load: float, servers: int) -> None:
    # Above RECURSION_SERVERS beds erlang_b sums the unrolled recursion in log space, over a window only.
    assert capacity._erlang_b_log(load, servers) == pytest.approx(_erlang_b_recursion(load, servers), rel=1e-8)
    assert capacity.erlang_b(load, servers) == pytest.approx(_erlang_b_recursion(load, servers), rel=1e-8)


def test_beds_for_blocking_is_the_fewest_that_meet_the_target() -> None:
    for load in (0.0, 0.5, 10.0, 25.1, 300.0, 7_000.0, 250_000.0):
        n = capacity.beds_for_blocking(load, 0.01)
        assert n is not None
        assert capacity.erlang_b(load, n) <= 0.01 < capacity.erlang_b(load, n - 1)
    assert capacity.beds_for_blocking(2_000_000.0, 0.01) is None  # more than MAX_BEDS: said, not searched for
    assert capacity.beds_text(None) == "more than 1,000,000" and capacity.beds_text(59) == "59"


def _python(code: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter that is killed after `timeout` s (subprocess.run kills it on expiry)."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_beds_search_is_bounded_for_any_load_the_inputs_allow() -> None:
    """Regression (issue 22 #1): a load of 5.9e10 looped for hours; now the answer is "more than 1,000,000"."""
    code = (
        "import time; from model.planning import capacity as c; t = time.perf_counter(); "
        "print(c.beds_for_blocking(5.9e10, 0.01), c.beds_for_blocking(1e9 * 0.12 * 365, 0.01), "
        "round(c.erlang_b(5.9e10, 1_000_000), 6), time.perf_counter() - t)"
    )
    proc = _python(code, timeout=30)
    none_1, none_2, blocked, seconds = proc.stdout.split()
    assert (none_1, none_2, blocked) == ("None", "None", "0.999983"), proc.stderr
    assert float(seconds) < 1.0


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
    p = capacity.project(s, need, uncertainty=CHANCE_ONLY, seed=11)
    assert p.band is not None and p.band.method == "patients"
    days = p.days
    assert (days["census_p05"] <= days["census"]).all() and (days["census"] <= days["census_p95"]).all()
    assert (days["census_p95"] > days["census_p05"]).all()
    again = capacity.project(s, need, uncertainty=CHANCE_ONLY, seed=11)
    pd.testing.assert_frame_equal(days, again.days)
    other = capacity.project(s, need, uncertainty=CHANCE_ONLY, seed=12)
    assert not np.array_equal(days["census_p95"], other.days["census_p95"])


def test_band_draws_the_icu_share_stay_and_growth_within_their_ranges() -> None:
    s = _scenario(doubling_days=30.0, days=60, census=10)
    need = capacity.need_at(NEED, 0.05)
    u = capacity.Uncertainty((0.04, 0.12), los_spread=0.3, growth_spread=0.01)
    draws = capacity.draw_parameters(s, need.icu_per_case, u, 4000, seed=1)
    assert draws.icu_per_case.min() >= 0.04 and draws.icu_per_case.max() <= 0.12
    assert draws.los_days.min() >= 9 * 0.7 and draws.los_days.max() <= 9 * 1.3
    rate = math.log(2) / 30
    assert draws.growth_rate.min() >= rate - 0.01 and draws.growth_rate.max() <= rate + 0.01
    assert np.corrcoef([draws.icu_per_case, draws.los_days, draws.growth_rate]) == pytest.approx(np.eye(3), abs=0.06)
    wide = capacity.project(s, need, uncertainty=u).days
    chance = capacity.project(s, need, uncertainty=CHANCE_ONLY).days
    assert ((wide["census_p95"] - wide["census_p05"]) > (chance["census_p95"] - chance["census_p05"]))[5:].all()
    # Between the two ends: the band reaches from about the lower end's census to the upper end's.
    upper = capacity.project(s, capacity.need_at(NEED_UPPER, 0.05), band=False).days["census"]
    between = capacity.project(s, need, uncertainty=capacity.Uncertainty((0.04, 0.12), 0, 0)).days
    assert (between["census_p05"] < 1.3 * between["census"])[10:].all() and (between["census_p95"] > 0.8 * upper)[
        10:
    ].all()
    assert "4.00% to 12.00%" in u.describe(9) and "6.3 to 11.7 days" in u.describe(9)


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
    p = capacity.project(s, need, uncertainty=CHANCE_ONLY, seed=3)
    assert p.band is not None and p.band.method == "census distribution" and p.band.saturation_days is None
    assert (p.days["census_p05"] <= p.days["census"]).all() and (p.days["census"] <= p.days["census_p95"]).all()
    pd.testing.assert_frame_equal(p.days, capacity.project(s, need, uncertainty=CHANCE_ONLY, seed=3).days)


def test_runs_saturating_share_counts_paths_over_the_beds() -> None:
    s = _scenario(beds=25, days=90, census=5)
    need = capacity.need_at(NEED, 0.05)  # 200 × 0.04 × 9 = 72 patients at steady state: nearly every run overflows
    p = capacity.project(s, need)
    assert p.band is not None and p.band.saturation_days is not None
    assert (p.band.saturation_days >= 0).mean() > 0.95
    never = capacity.project(_scenario(beds=250, days=90), need)
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
    constant = capacity.need_from_constant(ICU_TABLE, prevalence, 0.25)
    assert constant["missed_deaths_per_case"].to_numpy() == pytest.approx(prevalence * (1 - ICU_TABLE["recall"]))
    assert NEED["missed_deaths_per_case"].to_numpy() == pytest.approx(
        constant["missed_deaths_per_case"].to_numpy(), abs=1e-6
    )
    assert constant["icu_per_case_flagged"].to_numpy() == pytest.approx(0.25 * ICU_TABLE["flagged_share"])
    assert constant["icu_per_case_unflagged"].to_numpy() == pytest.approx(0.25 * (1 - ICU_TABLE["flagged_share"]))


def test_need_at_follows_flag_equals_risk_at_least_threshold() -> None:
    for t in (0.0, 0.004, 0.01, 0.0100001, 0.2, 0.9999, 1.0):
        expected = ICU_TABLE[ICU_TABLE["threshold"] >= t].sort_values("threshold").iloc[0]
        got = capacity.need_at(NEED, t)
        assert got.threshold == t
        assert got.flagged_share == expected["flagged_share"] and got.recall == expected["recall"]
        assert got.icu_per_case_flagged == pytest.approx(expected["flagged_share"] * expected["icu_rate_flagged"])
    above = capacity.need_at(NEED[NEED["threshold"] < 0.5], 0.7)  # above every stored score: nobody flagged
    assert above.flagged_share == 0 and above.case_flagged_share == 0 and above.icu_per_case_flagged == 0
    assert above.icu_per_case_unflagged == pytest.approx(0.04)
    assert above.missed_deaths_per_case == pytest.approx(0.02 * 0.525 + 0.98 * 0.0198980)


def test_icu_table_problems_are_explained() -> None:
    with pytest.raises(capacity.CapacityInputError, match=r"lacks columns icu_rate_flagged.*python -m model.train"):
        capacity.need_from_icu_table(ICU_TABLE.drop(columns=["icu_rate_flagged"]))
    broken = ICU_TABLE.copy()
    broken.loc[2, "icu_rate_unflagged"] = -0.1
    with pytest.raises(capacity.CapacityInputError, match=r"negative .* icu_rate_unflagged"):
        capacity.need_from_icu_table(broken)
    with pytest.raises(capacity.CapacityInputError, match="between 0 and 1"):
        capacity.need_from_constant(ICU_TABLE, 0.03, 1.5)
    with pytest.raises(capacity.CapacityInputError, match="lacks columns case_flagged_share"):
        capacity.need_from_icu_table(ICU_TABLE.drop(columns=["case_flagged_share"]))  # a model trained before the ends
    with pytest.raises(capacity.CapacityInputError, match="lower, upper"):
        capacity.need_from_icu_table(ICU_TABLE, "middle")  # type: ignore[arg-type]


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
    # followed by threshold row: 200 × flagged share × 8 days = 1600, 640, 160, 80, 32, 0
    team = capacity.Surveillance(follow_days=8, capacity=100)
    curve = capacity.steady_state_curve(NEED, 200, team)
    assert list(curve["recall"]) == sorted(curve["recall"])
    assert dict(zip(curve["threshold"], curve["under_surveillance"], strict=True))[0.05] == pytest.approx(160.0)
    sat = capacity.steady_state_saturation(curve)
    assert sat.status == "saturates" and sat.threshold == 0.10 and sat.under_surveillance == pytest.approx(80.0)
    assert sat.deaths_missed_per_day == pytest.approx(200 * 0.95 * 0.0126316)
    roomy = capacity.steady_state_curve(NEED, 200, capacity.Surveillance(8, 1600))
    assert capacity.steady_state_saturation(roomy).status == "never_saturates"
    strict = capacity.steady_state_curve(NEED[NEED["threshold"] < 1.0], 200, capacity.Surveillance(8, 10))
    assert capacity.steady_state_saturation(strict).status == "saturated_always"


# --- growth: SIR and what the inputs support ------------------------------------------------------------------------


def _sir_by_hand(cases: float, doubling: float, population: float, reported: float, infectious: float, days: int):
    """The SIR recursion written out once more, scalar by scalar (CHIME's step), for comparison."""
    g, gamma = 2 ** (1 / doubling) - 1, 1 / infectious
    today = cases / reported
    s_, i_ = population - today / g, today / (g + gamma)
    beta = (g + gamma) / s_
    out = []
    for _ in range(days + 1):
        new = beta * s_ * i_
        out.append(reported * new)
        s_, i_ = s_ - new, i_ + new - gamma * i_
    return np.array(out)


def test_sir_starts_at_todays_growth_and_runs_out_of_susceptibles() -> None:
    s = _scenario(doubling_days=7.0, days=365, population=1e6, reported_share=0.1)
    cases = s.cases()
    assert cases == pytest.approx(_sir_by_hand(200, 7, 1e6, 0.1, 14, 365), rel=1e-9)
    exponential = _scenario(doubling_days=7.0, days=10).cases()
    assert cases[:4] == pytest.approx(exponential[:4], rel=0.01)  # the same growth today
    peak = int(cases.argmax())
    assert 10 < peak < 120 and cases[-1] < 0.01 * cases[peak]  # it peaks and dies out
    assert cases.sum() < 0.1 * 1e6  # never more reported cases than reported share × population
    assert capacity.Scenario(200, 40, 9, doubling_days=7.0, days=30, population=1e6).cases(shift=3.0)[0] == (
        pytest.approx(200 * 2 ** (-3 / 7))
    )  # before today: the same doubling time


def test_sir_keeps_long_horizons_bounded_where_exponential_growth_is_not_supported() -> None:
    need = capacity.need_at(NEED, 0.05)
    runaway = capacity.project(_scenario(doubling_days=7.0, days=90), need, band=False)
    assert runaway.unsupported_reason is not None and runaway.supported_until < 90
    assert "100 times the beds" in runaway.unsupported_reason and "susceptible depletion" in runaway.unsupported_reason
    assert runaway.shown["census"].max() <= 100 * 40 and runaway.peak_census <= 100 * 40
    assert not runaway.days["supported"].iloc[-1] and runaway.days["supported"].iloc[runaway.supported_until]
    sir = capacity.project(_scenario(doubling_days=7.0, days=365, population=1e5, reported_share=0.1), need)
    assert sir.unsupported_reason is None and sir.supported_until == 365
    assert capacity.project(_scenario(), need, band=False).unsupported_reason is None


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
        ("population", 0.0, "population must be a number from 1"),
        ("population", 1_000.0, "population too small"),
    ],
)
def test_bad_inputs_are_explained(field: str, value: object, message: str) -> None:
    growth = {"doubling_days": 7.0} if field == "population" else {}
    with pytest.raises(capacity.CapacityInputError, match=message):
        _scenario(**{**growth, field: value})
    with pytest.raises(capacity.CapacityInputError, match="needs a growing epidemic"):
        _scenario(population=1e6)
    with pytest.raises(capacity.CapacityInputError, match="spread of the mean stay"):
        capacity.Uncertainty(None, 1.5)


def test_runaway_growth_says_which_horizon_works() -> None:
    with pytest.raises(capacity.CapacityInputError, match=r"by day 156: shorten the horizon to at most 155 days"):
        _scenario(doubling_days=7.0, days=365)
    _scenario(doubling_days=7.0, days=155)


# --- the CLI (its main, in-process) on a trained model ------------------------------------------------------------


def _cli(*args: str) -> Ran:
    """`python -m model.capacity args...`, its main in-process."""
    return run_main("model.capacity", *args)


def _cli_process(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """The CLI as a subprocess, for a hang regression: killed when `timeout` s pass (subprocess.run does that)."""
    return subprocess.run(
        [sys.executable, "-m", "model.capacity", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_cli_json_matches_the_functions(model_dir: Path) -> None:
    args = ["--model-dir", str(model_dir), "--cases-per-day", "400", "--doubling-days", "14", "--beds", "30"]
    args += ["--los-days", "8", "--los-shape", "2", "--census", "6", "--delay-days", "3", "--days", "60"]
    proc = _cli(*args, "--threshold", "0.05", "--json", "--seed", "9")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {"days", "saturation_day", "steady_state_census", "erlang_b", "surveillance", "icu_end"} <= out.keys()
    assert len(out["days"]) == 61 and out["icu_source"] == "model" and out["icu_end"] == "lower"
    assert {"day", "admissions", "admissions_unflagged", "census", "census_p05", "census_p95"} <= out["days"][0].keys()

    icu = pd.read_csv(model_dir / "evaluation" / capacity.ICU_TABLE)
    row = icu[icu["threshold"] >= 0.05].sort_values("threshold").iloc[0]
    share = row["case_flagged_share"]
    assert out["icu_per_case_flagged"] == pytest.approx(share * row["icu_rate_flagged"])
    assert out["icu_per_case_unflagged"] == pytest.approx((1 - share) * row["icu_rate_unflagged"])
    assert out["recall"] == pytest.approx(row["recall"])
    total = out["icu_per_case"]
    assert total == pytest.approx(out["icu_per_case_ends"]["lower"]) and total < out["icu_per_case_ends"]["upper"]

    s = capacity.Scenario(400, 30, 8, 2, 14, 6, 3, 60)
    census = capacity.expected_census(capacity.admissions(s, total), 6, 8, 2)
    assert [d["census"] for d in out["days"]] == pytest.approx(census)
    assert [d["admissions"] + d["admissions_unflagged"] for d in out["days"]] == pytest.approx(total * s.cases(3.0))
    assert out["saturation_day"] == capacity.saturation_day(census, 30)
    load = 400 * total * 8
    assert out["steady_state_census"] == pytest.approx(load)
    assert out["erlang_b"] == pytest.approx(capacity.erlang_b(load, 30))
    assert out["beds_for_1pct_blocking"] == capacity.beds_for_blocking(load, 0.01)
    assert _cli(*args, "--threshold", "0.05", "--json", "--seed", "9").stdout == proc.stdout  # seeded

    upper = json.loads(_cli(*args, "--icu-end", "upper", "--json").stdout)
    assert upper["icu_end"] == "upper" and upper["icu_per_case"] == pytest.approx(out["icu_per_case_ends"]["upper"])
    text = _cli(*args[:2], "--cases-per-day", "200", "--beds", "40", "--los-days", "9")
    assert text.returncode == 0, text.stderr
    assert "First day over capacity" in text.stdout and "Erlang-B" in text.stdout and "outcome is known" in text.stdout
    assert "lower end" in text.stdout and "Surveillance" in text.stdout


def test_icu_need_from_the_real_file_is_near_cdcs_published_two_percent(model_dir: Path) -> None:
    """Issue 19: the model trained on the bundled real file gave 229 ICU admissions a day for 1,000 cases (22.9%,
    learnt from the 11.5% of cases with a recorded ICU answer). CDC: 2% of 1,320,488 cases (MMWR 2020;69(24))."""
    proc = _cli("--model-dir", str(model_dir), "--cases-per-day", "1000", "--beds", "100", "--los-days", "9")
    ends = []
    for threshold in ("0", "0.02", "0.05", "0.3", "0.99"):
        out = json.loads(_cli("--model-dir", str(model_dir), "--cases-per-day", "1000", "--beds", "100",
                              "--los-days", "9", "--threshold", threshold, "--json").stdout)  # fmt: skip
        day0 = out["days"][0]
        assert 20 <= day0["admissions"] + day0["admissions_unflagged"] <= 30, out["icu_per_case"]
        assert 0.01 <= out["icu_per_case"] <= 0.05
        if float(threshold) > 0:
            assert out["icu_per_case_flagged"] < out["icu_per_case"]  # the flagged part is below total demand
        ends.append((out["icu_per_case"], out["steady_state_census"], out["saturation_day"]))
    assert all(e == pytest.approx(ends[0]) for e in ends)  # total demand: the same at every threshold
    assert proc.returncode == 0 and "day 0" not in proc.stdout.split("First day over capacity:")[1].split("\n")[0]
    card = json.loads((model_dir / "model_card.json").read_text())["icu"]
    assert card["ends"]["lower"]["icu_per_case_test"] < 0.05 < card["ends"]["upper"]["icu_per_case_test"] < 0.25


def test_cli_answers_the_largest_inputs(model_dir: Path) -> None:
    """Regression (issue 22 #1): this command hung for hours in beds_for_blocking (offered load 5.9e10).

    A time limit, as a hang regression: the process is killed and the test fails if it does not answer.
    """
    args = ["--cases-per-day", "1e9", "--beds", "1000000", "--los-days", "365", "--json"]
    proc = _cli_process("--model-dir", str(model_dir), *args, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["beds_for_1pct_blocking"] is None and out["beds_for_1pct_blocking_text"] == "more than 1,000,000"
    assert out["unsupported_reason"] is None or "100 times the beds" in out["unsupported_reason"]


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
