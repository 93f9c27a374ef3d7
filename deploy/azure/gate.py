"""The release gate: may a newly trained model replace the one the endpoint serves?

Read from the two model cards (model_card.json), each on its own test split:

* calibration: observed/expected deaths within [1/1.1, 1.1] and calibration slope within
  [0.8, 1.25] (the limits `model.monitoring.monitor` uses to call for recalibration or retraining);
* ranking: ROC-AUC not more than 0.05 below the serving model's, and not significantly below it
  (the candidate's 95% interval must reach the serving model's figure);
* subgroups: no subgroup of a model input materially miscalibrated (O/E interval excludes 1 and
  the estimate is outside [1/1.1, 1.1]); a subgroup the model does not see (race and ethnicity)
  only when significantly worse than under the serving model (else a warning, see
  `subgroup_problems`). The first-wave model is off for several race/ethnicity groups (O/E 0.50 to
  2.06 on its test split), which is why that rule compares with the serving model.

Without a serving model (the first release) only the absolute criteria apply. The two test splits
differ when the training data differ, so the AUC comparison is between two estimates, not a paired
test; the interval rule keeps chance differences from blocking a release.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from model.monitoring.monitor import OE_MATERIAL, ROC_AUC_MAX_DROP, SLOPE_NEAR


class GateError(ValueError):
    """A card lacks a figure the gate needs; the message says which and how to get it."""


def _test_metrics(card: dict[str, Any], which: str) -> dict[str, Any]:
    test = (card.get("metrics") or {}).get("test")
    if not isinstance(test, dict) or "roc_auc" not in test:
        raise GateError(f"the {which} model card has no test metrics; retrain it with `python -m model.train`")
    return test


def load_card(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / "model_card.json"
    if not path.is_file():
        raise GateError(f"{path} not found: pass the model artifact folder (python -m model.train --out DIR)")
    return json.loads(path.read_text(encoding="utf-8"))


def calibration_problems(test: dict[str, Any]) -> list[str]:
    """The candidate's O/E and calibration slope against the monitor's limits."""
    problems = []
    oe = float(test["observed_expected"]["oe"])
    if not 1 / OE_MATERIAL <= oe <= OE_MATERIAL:
        problems.append(f"observed/expected deaths {oe:.2f} is outside [{1 / OE_MATERIAL:.2f}, {OE_MATERIAL:.2f}]")
    slope = float(test["calibration_line"]["slope"])
    if not SLOPE_NEAR[0] <= slope <= SLOPE_NEAR[1]:
        problems.append(f"calibration slope {slope:.2f} is outside [{SLOPE_NEAR[0]}, {SLOPE_NEAR[1]}]")
    return problems


def ranking_problems(test: dict[str, Any], serving: dict[str, Any] | None) -> list[str]:
    """The candidate's ROC-AUC against the serving model's (none without a serving model)."""
    if serving is None:
        return []
    new, old = float(test["roc_auc"]), float(serving["roc_auc"])
    high = float((test.get("intervals_95") or {}).get("roc_auc", [new, new])[1])
    problems = []
    if new < old - ROC_AUC_MAX_DROP:
        problems.append(f"ROC-AUC {new:.3f} is more than {ROC_AUC_MAX_DROP} below the serving model's {old:.3f}")
    elif high < old:
        problems.append(f"ROC-AUC {new:.3f} (95% CI up to {high:.3f}) is significantly below the serving {old:.3f}")
    return problems


def _material(group: dict[str, Any]) -> bool:
    """Miscalibrated beyond chance (95% CI excludes 1) and by a material amount (outside [1/1.1, 1.1])."""
    oe = group.get("oe")
    return bool(group.get("miscalibrated")) and oe is not None and not 1 / OE_MATERIAL <= float(oe) <= OE_MATERIAL


def _describe(group: dict[str, Any]) -> str:
    return (
        f"subgroup {group['column']}={group['value']}: observed/expected {group['oe']:.2f} "
        f"(95% CI {group['oe_low']:.2f}-{group['oe_high']:.2f}, {group['observed']:.0f} deaths)"
    )


def _worse_than(group: dict[str, Any], before: dict[str, Any] | None) -> bool:
    """Significantly further from 1 than the serving model's figure for the same subgroup."""
    if before is None or before.get("oe") is None:
        return True
    old = float(before["oe"])
    farther = abs(math.log(float(group["oe"]))) > abs(math.log(old))
    return farther and not float(group["oe_low"]) <= old <= float(group["oe_high"])


def subgroup_problems(candidate: dict[str, Any], serving: dict[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """(problems, warnings) from the subgroups' observed/expected deaths.

    A subgroup of a model input (age group, sex, ...) materially miscalibrated fails. A subgroup the
    model does not see (race and ethnicity: `subgroup_columns` outside `features`) fails only when it
    is significantly worse than under the serving model; otherwise it is a warning, so a known
    limitation of every model so far (docs/model_card) neither blocks nor hides.
    """
    # The card lists the model's inputs (dicts with "name"; a race-aware model would list race here too).
    inputs = {f["name"] if isinstance(f, dict) else str(f) for f in candidate.get("features") or []}
    before = {(g["column"], g["value"]): g for g in (serving or {}).get("subgroups") or []}
    problems, warnings = [], []
    for group in candidate.get("subgroups") or []:
        if not _material(group):
            continue
        if group["column"] in inputs:
            problems.append(_describe(group))
        elif serving is not None and _worse_than(group, before.get((group["column"], group["value"]))):
            problems.append(_describe(group) + " (significantly worse than the serving model)")
        else:
            warnings.append(_describe(group) + " (not a model input; not worse than the serving model)")
    return problems, warnings


def gate(candidate: dict[str, Any], serving: dict[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """(problems, warnings): every reason the candidate may not be released ([] = it passes), and what to know."""
    test = _test_metrics(candidate, "candidate")
    old = _test_metrics(serving, "serving") if serving is not None else None
    groups, warnings = subgroup_problems(candidate, serving)
    return calibration_problems(test) + ranking_problems(test, old) + groups, warnings


def summary(candidate: dict[str, Any], serving: dict[str, Any] | None) -> str:
    """One line with the figures the gate read."""
    test = candidate["metrics"]["test"]
    text = (
        f"candidate {candidate.get('model_version')}: O/E {test['observed_expected']['oe']:.3f}, "
        f"slope {test['calibration_line']['slope']:.3f}, ROC-AUC {test['roc_auc']:.3f}"
    )
    if serving is not None:
        text += f"; serving {serving.get('model_version')}: ROC-AUC {serving['metrics']['test']['roc_auc']:.3f}"
    return text
