"""The release gate (deploy/azure/gate.py) on real model cards: the default model trained on the real
first-wave CDC file, and copies of its card with one figure moved past a limit. The CLI runs
in-process with --serving-dir, so no Azure is needed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from deploy.azure.gate import GateError, gate, load_card
from model.core import exit_codes
from model.monitoring.monitor import OE_MATERIAL
from tests.inprocess import Ran, run_main


@pytest.fixture(scope="module")
def card(model_dir: Path) -> dict[str, Any]:
    return load_card(model_dir)


def _with(card: dict[str, Any], **test: Any) -> dict[str, Any]:
    changed = copy.deepcopy(card)
    for key, value in test.items():
        if key == "oe":
            changed["metrics"]["test"]["observed_expected"]["oe"] = value
        elif key == "slope":
            changed["metrics"]["test"]["calibration_line"]["slope"] = value
        else:
            changed["metrics"]["test"][key] = value
    return changed


def test_the_trained_model_passes_against_itself(card: dict[str, Any]) -> None:
    """The first-wave model is off for race/ethnicity groups (not an input): warned about, not blocking."""
    problems, warnings = gate(card)
    assert problems == []
    assert warnings and all(w.startswith("subgroup race_ethnicity_combined=") for w in warnings)
    assert gate(card, card)[0] == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"oe": 1.3}, f"observed/expected deaths 1.30 is outside [{1 / OE_MATERIAL:.2f}, {OE_MATERIAL:.2f}]"),
        ({"oe": 0.7}, "observed/expected deaths 0.70"),
        ({"slope": 0.7}, "calibration slope 0.70 is outside [0.8, 1.25]"),
        ({"slope": 1.4}, "calibration slope 1.40"),
    ],
)
def test_calibration_outside_the_monitor_limits_fails(card: dict[str, Any], change: dict, reason: str) -> None:
    (problem,) = gate(_with(card, **change))[0]
    assert problem.startswith(reason)


def test_worse_ranking_than_the_serving_model_fails(card: dict[str, Any]) -> None:
    auc = card["metrics"]["test"]["roc_auc"]
    much_worse = _with(card, roc_auc=auc - 0.06)
    assert "more than 0.05 below the serving model's" in gate(much_worse, card)[0][0]
    slightly = _with(card, roc_auc=auc - 0.01, intervals_95={"roc_auc": [auc - 0.015, auc - 0.005]})
    assert "significantly below the serving" in gate(slightly, card)[0][0]
    assert gate(slightly)[0] == []  # first release: no serving model to compare with


def _group(card: dict[str, Any], column: str) -> int:
    return next(i for i, g in enumerate(card["subgroups"]) if g["column"] == column)


def test_a_materially_miscalibrated_input_subgroup_fails(card: dict[str, Any]) -> None:
    bad = copy.deepcopy(card)
    group = bad["subgroups"][_group(bad, "age_group")]
    group.update(oe=1.5, oe_low=1.3, oe_high=1.7, miscalibrated=True)
    (problem,) = gate(bad)[0]
    assert problem.startswith(f"subgroup age_group={group['value']}: observed/expected 1.50 (95% CI 1.30-1.70")
    group.update(oe=1.1, oe_low=1.02, oe_high=1.18)  # significant, not material: passes
    assert gate(bad)[0] == []


def test_a_race_subgroup_fails_only_when_worse_than_the_serving_model(card: dict[str, Any]) -> None:
    worse = copy.deepcopy(card)
    i = next(i for i, g in enumerate(worse["subgroups"]) if g["column"] == "race_ethnicity_combined" and g["oe"] > 1.3)
    old = card["subgroups"][i]["oe"]
    worse["subgroups"][i].update(oe=old + 0.5, oe_low=old + 0.3, oe_high=old + 0.7, miscalibrated=True)
    (problem,) = gate(worse, card)[0]
    assert "significantly worse than the serving model" in problem
    assert gate(worse)[0] == []  # first release: a warning
    assert gate(card, worse)[0] == []  # better than the serving model: passes


def test_a_card_without_test_metrics_is_a_clear_error(card: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(GateError, match=r"no test metrics.*model\.train"):
        gate({"metrics": {}})
    with pytest.raises(GateError, match=r"model_card\.json not found"):
        load_card(tmp_path)


def test_cli_exit_codes(model_dir: Path, card: dict[str, Any], tmp_path: Path) -> None:
    def run(candidate: Path) -> Ran:
        return run_main("deploy.azure", "gate", "--model-dir", str(candidate), "--serving-dir", str(model_dir))

    passed = run(model_dir)
    assert passed.returncode == 0 and "gate: passed" in passed.stdout, passed.stderr
    worse = tmp_path / "worse"
    worse.mkdir()
    (worse / "model_card.json").write_text(json.dumps(_with(card, slope=0.5)))
    failed = run(worse)
    assert failed.returncode == exit_codes.GATE_REFUSED, failed.stderr
    assert "calibration slope 0.50" in failed.stderr and "not released" in failed.stdout
