"""Session fixtures for the browser tests: Debian's Chromium and the real app under `streamlit run`.

Registered in tests/conftest.py (`pytest_plugins`), so the app is started once per worker for every module
that uses `app_url` (tests/test_browser*.py), not once per module; conftest keeps those tests on one
xdist worker. Without /usr/bin/chromium the tests skip, unless REQUIRE_BROWSER=1 (CI), where they fail.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from deploy.local_endpoint import LocalEndpoint, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO_ROOT / "test-output" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not installed (apt-get install -y chromium chromium-driver)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def streamlit_command(port: int) -> list[str]:
    """`streamlit run` of the app on a loopback port, headless, no usage stats, no file watcher."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "dashboard/app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]


def wait_until_answering(
    url: str, proc: subprocess.Popen[bytes], log_path: Path, what: str, timeout_s: float = 60
) -> None:
    """Wait until `url` answers 200; fail with the log's tail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not answer {url}:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def app_url(model_dir: Path, local_endpoint: LocalEndpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app in a `streamlit run` subprocess on a free loopback port, stopped at the session's end."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RISK_ENDPOINT_")},
        "RISK_ENDPOINT_URL": local_endpoint.scoring_url,
        "RISK_MODEL_DIR": str(model_dir),
    }
    cmd = streamlit_command(port)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{base}/_stcore/health", proc, log_path, "streamlit")
        yield base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: streamlit and nothing else
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


@contextlib.contextmanager
def open_page(chromium_path: Path, width: int, height: int, origin: str | None = None) -> Iterator[object]:
    """A page in a fresh headless Debian Chromium (no cookies); the browser is closed however the test ends.

    With `origin`, the page may use the clipboard there (the "Copy link to this view" button).
    """
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": width, "height": height})
        if origin:
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def idle(page) -> None:
    """Wait until Streamlit has finished the current rerun (one helper for every browser test).

    The pause lets a rerun that an action just requested begin; then the status widget must be hidden and the
    app's script state `notRunning` (what Streamlit's own end-to-end tests wait for): under load the widget can
    still be hidden while a rerun has started, and an action taken then can be overwritten by that rerun.
    """
    page.wait_for_timeout(300)
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden", timeout=60_000)
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(timeout=60_000)
