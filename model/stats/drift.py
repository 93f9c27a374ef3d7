"""Pure drift statistics between two categorical distributions (no I/O, no model).

Both sides take the *same* ordered categories (shares or counts; normalised here),
so callers align them with `schema` first. Three views of one comparison:

* **Is it more than chance?** A G-test (likelihood-ratio chi-square) of the current
  *counts* against the reference *shares*: sample-size aware, so a few thousand rows
  that differ by noise are not called drift. Categories expected to hold fewer than
  `MIN_EXPECTED` rows are pooled first (the chi-square approximation needs it).
  Several tests in one report are corrected with Holm's method (`holm`).
* **Is it big enough to matter?** The population stability index (PSI),
  sum((cur - ref) * ln(cur / ref)), with its usual limits 0.1 / 0.2, and the largest
  relative change of one category (`largest_change`): PSI dilutes a tripled small
  category (80+ at 3 % -> 9 % is PSI ≈ 0.07), the ratio does not.
* Jensen-Shannon distance (scipy, base 2, in [0, 1]): bounded and symmetric, reported only.

`status()` combines them: "stable" (not significant), "small" (significant but under
every limit), "moderate", "major". Limits are module constants, quoted in docs/monitoring.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import power_divergence

EPSILON = 1e-4  # floor for an empty category (1 patient in 10,000)

PSI_MODERATE = 0.1
PSI_MAJOR = 0.2
RATIO_MODERATE = 1.5  # a category's share grew or shrank by this factor
RATIO_MAJOR = 2.0
RATIO_MIN_SHARE = 0.01  # ratios are judged only for categories holding >= 1 % on either side
MIN_EXPECTED = 5.0  # rows expected per category for the chi-square approximation; smaller ones are pooled

STATUSES = ("stable", "small", "moderate", "major")


def normalise(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Shares summing to 1; ValueError for negative, non-finite or all-zero input."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError("a distribution needs a 1-D, non-empty list of shares or counts")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"shares/counts must be finite and >= 0, got {array.tolist()}")
    total = array.sum()
    if total <= 0:
        raise ValueError("the distribution is empty (all shares/counts are 0)")
    return array / total


def _aligned(reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray) -> tuple[np.ndarray, ...]:
    ref, cur = normalise(reference), normalise(current)
    if ref.shape != cur.shape:
        raise ValueError(f"reference has {ref.size} categories, current has {cur.size}; align them first")
    return ref, cur


def _smoothed(shares: np.ndarray, epsilon: float) -> np.ndarray:
    floored = np.maximum(shares, epsilon)
    return floored / floored.sum()


def psi(
    reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray, epsilon: float = EPSILON
) -> float:
    """Population stability index of `current` against `reference` (same category order)."""
    ref, cur = _aligned(reference, current)
    ref, cur = _smoothed(ref, epsilon), _smoothed(cur, epsilon)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def js_distance(reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon distance in [0, 1] (base 2)."""
    ref, cur = _aligned(reference, current)
    return float(jensenshannon(ref, cur, base=2.0))


def g_test(
    reference: Sequence[float] | np.ndarray, counts: Sequence[float] | np.ndarray, reference_n: float | None = None
) -> dict[str, float]:
    """G-test of observed `counts` against the `reference` shares: {"g", "dof", "p_value", "n"}.

    Categories expected to hold fewer than MIN_EXPECTED rows are pooled into one (and that
    pool into the smallest other category while it is still too small), so rare categories
    cannot make noise look significant. The reference is taken as known (it comes from a
    training set far larger than a monitoring batch); categories empty on both sides are left out, and
    a reference-empty category that now holds rows is floored at 0.5 / `reference_n` (the reference's
    patients; EPSILON when not given).
    Example: 3,000 rows drawn from the reference give p < 0.01 about 1 time in 100.
    """
    raw = normalise(reference)
    observed = np.asarray(counts, dtype=np.float64)
    if observed.shape != raw.shape or np.any(observed < 0) or not np.all(np.isfinite(observed)):
        raise ValueError("counts must be finite, >= 0 and aligned with the reference categories")
    # A category empty on both sides says nothing; flooring it at EPSILON would expect rows there
    # (27 of 275,000) and call their absence drift (p < 1e-12 on the model's own training file).
    present = (raw > 0) | (observed > 0)
    # A reference of N patients with none in a category puts its share near 0.5 / N, not at EPSILON:
    # one "Other" patient among 275,000 is not 27 missing ones.
    floor = min(EPSILON, 0.5 / reference_n) if reference_n else EPSILON
    ref, observed = _smoothed(raw[present] / raw[present].sum(), floor), observed[present]
    n = float(observed.sum())
    if n <= 0:
        return {"g": 0.0, "dof": 0, "p_value": 1.0, "n": 0.0}
    expected = ref * n
    order = np.argsort(expected)
    small = order[expected[order] < MIN_EXPECTED]
    keep = [i for i in order if i not in set(small)]
    groups = [[i] for i in keep]
    if small.size:
        pooled = list(small)
        while groups and expected[pooled].sum() < MIN_EXPECTED:
            pooled += groups.pop(0)  # the smallest remaining category
        groups.append(pooled)
    if len(groups) < 2:
        return {"g": 0.0, "dof": 0, "p_value": 1.0, "n": n}
    obs = np.array([observed[g].sum() for g in groups])
    exp = np.array([expected[g].sum() for g in groups])
    g, p = power_divergence(obs, exp, lambda_="log-likelihood")
    return {"g": float(g), "dof": len(groups) - 1, "p_value": float(p), "n": n}


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm-adjusted p-values (family-wise error control over all tests in one report), by name.

    The same numbers as statsmodels' `multipletests(method="holm")` (tests/test_monitor.py holds them
    equal), written out because that function runs a full `gc.collect()` on every call: 0.1-0.4 s in a
    process holding a dashboard or a test suite, paid on every monitoring report. With no test there is
    nothing to adjust.
    """
    if not p_values:
        return {}
    names = list(p_values)
    p = np.asarray([p_values[name] for name in names], dtype=float)
    order = np.argsort(p, kind="stable")
    # The k-th smallest (k from 0) is multiplied by m - k; a larger p-value never gets a smaller adjustment.
    stepped = np.maximum.accumulate(np.minimum(1.0, p[order] * np.arange(len(p), 0, -1)))
    adjusted = np.empty_like(p)
    adjusted[order] = stepped
    return {name: float(value) for name, value in zip(names, adjusted, strict=True)}


def largest_change(
    categories: Sequence[str], reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray
) -> dict[str, object] | None:
    """The category whose share changed by the largest factor (up or down), among categories holding at
    least RATIO_MIN_SHARE on either side: {"value", "reference", "current", "ratio"} (ratio = current / reference).
    """
    ref, cur = _aligned(reference, current)
    best: dict[str, object] | None = None
    best_factor = 1.0
    for name, r, c in zip(categories, ref, cur, strict=True):
        if max(r, c) < RATIO_MIN_SHARE:
            continue
        ratio = max(c, EPSILON) / max(r, EPSILON)
        factor = max(ratio, 1.0 / ratio)
        if best is None or factor > best_factor:
            best_factor = factor
            best = {"value": name, "reference": float(r), "current": float(c), "ratio": float(ratio)}
    return best


def _factor(change: Mapping[str, object] | None) -> float:
    if not change:
        return 1.0
    ratio = float(change["ratio"])  # type: ignore[arg-type]
    return max(ratio, 1.0 / ratio)


def status(significant: bool, psi_value: float, change: Mapping[str, object] | None) -> str:
    """ "stable" if not significant; else "major" / "moderate" by PSI or the largest share ratio; else "small"."""
    if not significant:
        return "stable"
    factor = _factor(change)
    if psi_value > PSI_MAJOR or factor >= RATIO_MAJOR:
        return "major"
    if psi_value > PSI_MODERATE or factor >= RATIO_MODERATE:
        return "moderate"
    return "small"


def psi_status(value: float) -> str:
    """PSI alone: 'major' (> PSI_MAJOR), 'moderate' (> PSI_MODERATE) or 'stable' (chart colours)."""
    if value > PSI_MAJOR:
        return "major"
    if value > PSI_MODERATE:
        return "moderate"
    return "stable"


def compare(
    categories: Sequence[str],
    reference: Mapping[str, float],
    current: Mapping[str, float],
    counts: Sequence[float] | np.ndarray | None = None,
    reference_n: float | None = None,
    left_out: float = 0.0,
) -> dict:
    """PSI, JS distance, the largest share change, a G-test (when `counts` are given) and both share vectors.

    Categories missing from a mapping count as 0; keys outside `categories` are an error
    (they would silently vanish otherwise). "status" here is PSI's alone (`psi_status`); a
    caller judging several features at once decides significance over all of them (`holm`)
    and replaces it with `status(...)`.

    `left_out`: rows whose request left this input out ("not known", scored by a sub-model without it).
    They are not a category (a clerk's blank says nothing about the case mix, and the training reference
    has no such rows), so `current` and `counts` cover the rows that gave the input; the number is
    reported beside them as "left_out".
    """
    for name, side in (("reference", reference), ("current", current)):
        extra = set(side) - set(categories)
        if extra:
            raise ValueError(f"{name} has categories not in the schema: {sorted(extra)}")
    ref = normalise([reference.get(c, 0.0) for c in categories])
    cur = normalise([current.get(c, 0.0) for c in categories])
    value = psi(ref, cur)
    change = largest_change(categories, ref, cur)
    out = {
        "psi": value,
        "js_distance": js_distance(ref, cur),
        "largest_change": change,
        "status": psi_status(value),
        "reference": dict(zip(categories, ref.tolist(), strict=True)),
        "current": dict(zip(categories, cur.tolist(), strict=True)),
        "left_out": float(left_out),
    }
    if counts is not None:
        out["test"] = g_test(ref, counts, reference_n)
    return out
