"""Shared fixtures: real generated data and a real trained model artifact.

Nothing here is mocked: the fixtures run the project's own CLIs in a subprocess,
exactly as a user would, and hand the resulting files to the tests.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["tests.endpoint_fixtures"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
LEGACY_CDC_FILE = SHARED_DATA / "cdc_case_surveillance_extract_11549.csv"

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
def model_dir(tmp_path_factory: pytest.TempPathFactory, synthetic_csv: Path) -> Path:
    """A model artifact trained by `python -m model.train` on the generated file."""
    out = tmp_path_factory.mktemp("model") / "model"
    run_module("model.train", "--data", str(synthetic_csv), "--out", str(out))
    return out


@pytest.fixture(scope="session")
def legacy_cdc_file() -> Path:
    """The real 2020-schema CDC extract from ../shared/data (read-only)."""
    if not LEGACY_CDC_FILE.exists():
        pytest.fail(f"{LEGACY_CDC_FILE} is missing: the shared data folder must sit beside the repo")
    return LEGACY_CDC_FILE
