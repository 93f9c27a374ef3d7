"""Shared fixtures: the bundled real CDC file, generated data, and real trained model artifacts.

Nothing here is mocked: the fixtures run the project's own CLIs in a subprocess,
exactly as a user would, and hand the resulting files to the tests.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest_plugins = ["tests.endpoint_fixtures"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
LEGACY_CDC_FILE = SHARED_DATA / "cdc_case_surveillance_extract_11549.csv"
REAL_CDC_FILE = REPO_ROOT / "data" / "cdc_first_wave_500k.csv.gz"  # bundled copy of the shared first-wave file

# Big enough for every age group to have deaths, small enough to train in seconds.
FIXTURE_ROWS = 400_000
FIXTURE_SEED = 7


def run_module(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `python -m <module> args...` from the repo root; fail the test with its output on error."""
    proc = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        pytest.fail(f"python -m {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated file in the current CDC schema (FIXTURE_ROWS rows, fixed seed)."""
    out = tmp_path_factory.mktemp("data") / "synthetic.csv"
    run_module("model.synth", "--rows", str(FIXTURE_ROWS), "--seed", str(FIXTURE_SEED), "--out", str(out))
    return out


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model: `python -m model.train` with no --data trains on the bundled real CDC file."""
    out = tmp_path_factory.mktemp("model") / "model"
    run_module("model.train", "--out", str(out), "--quiet")
    return out


@pytest.fixture(scope="session")
def synthetic_model_dir(tmp_path_factory: pytest.TempPathFactory, synthetic_csv: Path) -> Path:
    """A model artifact trained by `python -m model.train` on the generated file."""
    out = tmp_path_factory.mktemp("synthetic-model") / "model"
    run_module("model.train", "--data", str(synthetic_csv), "--out", str(out), "--quiet")
    return out


@dataclass(frozen=True)
class RealPeriods:
    """The bundled real file cut by case date: March 2020 and earlier, and two random halves of April on."""

    early: Path
    late_a: Path
    late_b: Path


@pytest.fixture(scope="session")
def real_periods(tmp_path_factory: pytest.TempPathFactory) -> RealPeriods:
    frame = pd.read_csv(REAL_CDC_FILE, dtype=str, keep_default_na=False)
    dates = [
        pd.to_datetime(frame[c], format="%m/%d/%Y", errors="coerce")
        for c in ("cdc_report_dt", "pos_spec_dt", "onset_dt")
    ]
    case_date = pd.concat(dates, axis=1).min(axis=1)
    late = frame[case_date >= "2020-04-01"]
    half = np.random.default_rng(0).random(len(late)) < 0.5
    folder = tmp_path_factory.mktemp("periods")
    paths = RealPeriods(folder / "early.csv", folder / "late_a.csv", folder / "late_b.csv")
    frame[case_date < "2020-04-01"].to_csv(paths.early, index=False)
    late[half].to_csv(paths.late_a, index=False)
    late[~half].to_csv(paths.late_b, index=False)
    return paths


@pytest.fixture(scope="session")
def legacy_cdc_file() -> Path:
    """The real 2020-schema CDC extract from ../shared/data (read-only)."""
    if not LEGACY_CDC_FILE.exists():
        pytest.fail(f"{LEGACY_CDC_FILE} is missing: the shared data folder must sit beside the repo")
    return LEGACY_CDC_FILE
