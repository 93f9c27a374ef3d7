"""Pure drift statistics between two categorical distributions (no I/O, no model).

Both statistics take the *same* ordered categories on both sides (shares or
counts; they are normalised here), so callers align them with `schema` first.

* Population stability index (PSI): sum((cur - ref) * ln(cur / ref)). The usual
  credit-scoring reading: < 0.1 stable, 0.1-0.2 moderate shift, > 0.2 major shift.
  An empty category on either side would make it infinite, so shares are
  floored at `EPSILON` and renormalised (the standard smoothing).
* Jensen-Shannon distance (scipy), base 2 so it lies in [0, 1]: bounded and
  symmetric, easier to compare across features than PSI, but with no agreed cut-offs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.spatial.distance import jensenshannon

EPSILON = 1e-4  # floor for an empty category (1 patient in 10,000)

PSI_MODERATE = 0.1
PSI_MAJOR = 0.2


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


def _smoothed(shares: np.ndarray, epsilon: float) -> np.ndarray:
    floored = np.maximum(shares, epsilon)
    return floored / floored.sum()


def psi(
    reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray, epsilon: float = EPSILON
) -> float:
    """Population stability index of `current` against `reference` (same category order)."""
    ref, cur = normalise(reference), normalise(current)
    if ref.shape != cur.shape:
        raise ValueError(f"reference has {ref.size} categories, current has {cur.size}; align them first")
    ref, cur = _smoothed(ref, epsilon), _smoothed(cur, epsilon)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def js_distance(reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon distance in [0, 1] (base 2)."""
    ref, cur = normalise(reference), normalise(current)
    if ref.shape != cur.shape:
        raise ValueError(f"reference has {ref.size} categories, current has {cur.size}; align them first")
    return float(jensenshannon(ref, cur, base=2.0))


def psi_status(value: float) -> str:
    """'major' (> PSI_MAJOR), 'moderate' (> PSI_MODERATE) or 'stable'."""
    if value > PSI_MAJOR:
        return "major"
    if value > PSI_MODERATE:
        return "moderate"
    return "stable"


def compare(categories: Sequence[str], reference: Mapping[str, float], current: Mapping[str, float]) -> dict:
    """PSI, JS distance, status and both share vectors for one categorical column.

    Categories missing from a mapping count as 0; keys outside `categories` are an error
    (they would silently vanish otherwise).
    """
    for name, side in (("reference", reference), ("current", current)):
        extra = set(side) - set(categories)
        if extra:
            raise ValueError(f"{name} has categories not in the schema: {sorted(extra)}")
    ref = normalise([reference.get(c, 0.0) for c in categories])
    cur = normalise([current.get(c, 0.0) for c in categories])
    value = psi(ref, cur)
    return {
        "psi": value,
        "js_distance": js_distance(ref, cur),
        "status": psi_status(value),
        "reference": dict(zip(categories, ref.tolist(), strict=True)),
        "current": dict(zip(categories, cur.tolist(), strict=True)),
    }
