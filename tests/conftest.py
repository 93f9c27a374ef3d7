"""Shared fixtures: the bundled real CDC file, generated data, and real trained model artifacts.

Nothing here is mocked: the fixtures run the project's own CLIs in a subprocess,
exactly as a user would, and hand the resulting files to the tests.

Under pytest-xdist (`make test` runs `-n 2 --dist loadgroup`) every worker is its own process with its
own session fixtures. What is only read (the trained models, the generated file) is built once per run
and shared through a file lock (`build_once`); what runs (the endpoint, the Streamlit app) stays per worker.
Tests that share a module-scoped fixture are kept on one worker (`pytest_collection_modifyitems`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from filelock import FileLock

pytest_plugins = ["tests.endpoint_fixtures", "tests.browser_fixtures"]

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


def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of this test run that every xdist worker sees (without xdist: the session's basetemp).

    xdist gives each worker the basetemp `<run>/popen-gwN`; their parent is the run's own numbered folder,
    so nothing in it is left over from an earlier run.
    """
    basetemp = tmp_path_factory.getbasetemp()
    return basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp


def build_once(root: Path, name: str, build: Callable[[Path], None]) -> Path:
    """`build(root / name)` once, however many processes ask at the same time; all of them get that folder.

    The first process to take the lock builds; the others wait for it, then reuse the result. Only a build
    that finished leaves its `.done` marker, so after a failed build the next process starts afresh (and fails
    with its own message). What is built here is read by the tests, never changed.
    """
    folder, done = root / name, root / f"{name}.done"
    with FileLock(root / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated file in the current CDC schema (FIXTURE_ROWS rows, fixed seed)."""

    def generate(folder: Path) -> None:
        out = folder / "synthetic.csv"
        run_module("model.synth", "--rows", str(FIXTURE_ROWS), "--seed", str(FIXTURE_SEED), "--out", str(out))

    return build_once(run_root(tmp_path_factory), "data", generate) / "synthetic.csv"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model: `python -m model.train` with no --data trains on the bundled real CDC file."""

    def train(folder: Path) -> None:
        run_module("model.train", "--out", str(folder / "model"), "--quiet")

    return build_once(run_root(tmp_path_factory), "model", train) / "model"


@pytest.fixture(scope="session")
def synthetic_model_dir(tmp_path_factory: pytest.TempPathFactory, synthetic_csv: Path) -> Path:
    """A model artifact trained by `python -m model.train` on the generated file."""

    def train(folder: Path) -> None:
        run_module("model.train", "--data", str(synthetic_csv), "--out", str(folder / "model"), "--quiet")

    return build_once(run_root(tmp_path_factory), "synthetic-model", train) / "model"


@dataclass(frozen=True)
class RealPeriods:
    """The bundled real file cut by case date: March 2020 and earlier, and two random halves of April on."""

    early: Path
    late_a: Path
    late_b: Path


def _periods_in(folder: Path) -> RealPeriods:
    return RealPeriods(folder / "early.csv", folder / "late_a.csv", folder / "late_b.csv")


def _cut_by_case_date(folder: Path) -> None:
    frame = pd.read_csv(REAL_CDC_FILE, dtype=str, keep_default_na=False)
    dates = [
        pd.to_datetime(frame[c], format="%m/%d/%Y", errors="coerce")
        for c in ("cdc_report_dt", "pos_spec_dt", "onset_dt")
    ]
    case_date = pd.concat(dates, axis=1).min(axis=1)
    late = frame[case_date >= "2020-04-01"]
    half = np.random.default_rng(0).random(len(late)) < 0.5
    paths = _periods_in(folder)
    frame[case_date < "2020-04-01"].to_csv(paths.early, index=False)
    late[half].to_csv(paths.late_a, index=False)
    late[~half].to_csv(paths.late_b, index=False)


@pytest.fixture(scope="session")
def real_periods(tmp_path_factory: pytest.TempPathFactory) -> RealPeriods:
    return _periods_in(build_once(run_root(tmp_path_factory), "periods", _cut_by_case_date))


@pytest.fixture(scope="session")
def legacy_cdc_file() -> Path:
    """The real 2020-schema CDC extract from ../shared/data (read-only)."""
    if not LEGACY_CDC_FILE.exists():
        pytest.fail(f"{LEGACY_CDC_FILE} is missing: the shared data folder must sit beside the repo")
    return LEGACY_CDC_FILE


# --- pytest-xdist: which tests must run on the same worker ------------------------------------------------------
SHARED_ON_ONE_WORKER = {"app_url": "streamlit-app"}  # session fixture -> xdist group of the tests that use it


def xdist_group_of(item: pytest.Item) -> str | None:
    """The group `item` must run in: the one its shared app names, else its module if it uses a module fixture.

    A module- or class-scoped fixture is built once per worker that runs one of its tests, so splitting its
    module over workers builds it twice (a trained model, a server) and can race on what it writes.
    """
    fixture_names = set(item.fixturenames)
    for fixture, group in SHARED_ON_ONE_WORKER.items():
        if fixture in fixture_names:
            return group
    definitions = getattr(item, "_fixtureinfo", None)
    if definitions is None:
        return None
    for name in fixture_names:
        defs = definitions.name2fixturedefs.get(name, ())
        if defs and defs[-1].scope in ("module", "class"):
            return item.nodeid.split("::", 1)[0]
    return None


# The slowest files (pytest --durations, 2026-12-02), started first so no worker is left with a long test
# at the end while the other idles. Order within a file is kept (module fixtures stay together).
HEAVY_FIRST = (
    "test_browser.py",
    "test_browser_launcher.py",
    "test_run_local.py",
    "test_monitor.py",
    "test_hardening.py",
    "test_deploy_azure.py",
    "test_hardening_issue22.py",
    "test_signin.py",
    "test_dashboard_pages.py",
    "test_dashboard_batch_monitor.py",
    "test_recalibrate.py",
)


def _start_rank(item: pytest.Item) -> int:
    name = item.path.name
    return HEAVY_FIRST.index(name) if name in HEAVY_FIRST else len(HEAVY_FIRST)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects and before xdist reads the xdist_group marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_start_rank)  # stable: the order inside each file is unchanged
    for item in items:
        if "chromium_path" in item.fixturenames and item.get_closest_marker("browser") is None:
            item.add_marker(pytest.mark.browser)  # every Chromium test is skipped by `make test-fast`
        group = xdist_group_of(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
