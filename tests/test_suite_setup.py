"""The test suite's own machinery (issue 23): builds shared by xdist workers, grouping, the browser marker.

`make test` runs the suite in several processes (pytest-xdist); tests/conftest.py builds the trained models
and generated files once per run for all of them, keeps tests that share a module fixture on one worker,
and `make test-fast` leaves out every test that drives Chromium.
"""

from __future__ import annotations

import multiprocessing
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, build_once

WORKERS = 3


def _build_slowly(root: str, log: str) -> str:
    """What a worker does: ask for the shared folder; a build takes long enough for the others to arrive."""

    def build(folder: Path) -> None:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write("built\n")
        time.sleep(0.5)
        (folder / "model.json").write_text("{}", encoding="utf-8")

    return str(build_once(Path(root), "model", build))


def test_concurrent_workers_build_once_and_share_the_folder(tmp_path: Path) -> None:
    log = tmp_path / "builds.log"
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        folders = pool.starmap(_build_slowly, [(str(tmp_path), str(log))] * WORKERS)
    assert log.read_text(encoding="utf-8") == "built\n", "built more than once"
    assert set(folders) == {str(tmp_path / "model")}
    assert (tmp_path / "model" / "model.json").read_text(encoding="utf-8") == "{}"


def test_a_failed_build_is_redone_from_scratch_by_the_next_caller(tmp_path: Path) -> None:
    def broken(folder: Path) -> None:
        (folder / "half-written.csv").write_text("age_group\n", encoding="utf-8")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        build_once(tmp_path, "data", broken)
    assert not (tmp_path / "data.done").exists()
    folder = build_once(tmp_path, "data", lambda f: (f / "cases.csv").write_text("age_group\n", encoding="utf-8"))
    assert [p.name for p in folder.iterdir()] == ["cases.csv"]  # nothing of the failed build is left
    build_once(tmp_path, "data", lambda f: pytest.fail("a finished build was built again"))


@pytest.fixture(scope="module")
def module_resource() -> str:
    return "built once per worker that runs a test of this module"


def test_a_test_using_a_module_fixture(module_resource: str) -> None:
    assert module_resource


def test_tests_sharing_a_module_fixture_run_on_one_worker(request: pytest.FixtureRequest) -> None:
    here = {item.name: item for item in request.session.items if item.path == Path(__file__)}

    def groups(name: str) -> list[str]:
        return [str(mark.args[0]) for mark in here[name].iter_markers("xdist_group")]

    assert groups("test_a_test_using_a_module_fixture") == ["tests/test_suite_setup.py"]
    assert groups("test_tests_sharing_a_module_fixture_run_on_one_worker") == []  # free to go anywhere


def test_make_test_fast_leaves_out_every_chromium_test_and_only_those() -> None:
    """Collected with `-m "not browser"` (as `make test-fast` does), the browser test files keep only AppTest."""
    files = sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "tests").glob("test_browser*.py"))
    collect = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", "not browser"]
    proc = subprocess.run(
        [*collect, *files, "tests/test_signin.py"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    kept = [line for line in proc.stdout.splitlines() if "::" in line]
    assert kept == ["tests/test_signin.py::test_misconfigured_auth_shows_a_clear_error_and_nothing_else"], proc.stdout


def _recipe(makefile: str, target: str) -> str:
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert match, f"no `{target}` target in the Makefile"
    return match.group(1)


def test_make_test_runs_everything_and_ci_requires_the_browser() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert "-m pytest $(PYTEST_ARGS)\n" in _recipe(makefile, "test")
    assert '-m pytest $(PYTEST_ARGS) -m "not browser"' in _recipe(makefile, "test-fast")
    assert "--dist loadgroup" in makefile  # the xdist_group marks of tests/conftest.py only count under loadgroup
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "export REQUIRE_BROWSER=1" in ci and ci.rstrip().endswith("make test")
