"""End to end in a real browser: `streamlit run dashboard/app.py` driven by headless Chromium.

Uses Debian's /usr/bin/chromium (Playwright's own browser download is not available here).
Without it the test skips, unless REQUIRE_BROWSER=1 (CI), where it fails.
Screenshots land in test-output/screenshots/ for people to look at.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests

import dashboard
from dashboard.client import EndpointClient, EndpointConfig
from deploy.local_endpoint import free_port
from model import schema

REPO_ROOT = Path(dashboard.__file__).resolve().parent.parent
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
TYPED = {"age_group": "70 - 79 Years", "sex": "Male", "medcond_yn": "Yes"}

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
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
        time.sleep(0.3)


@pytest.fixture(scope="module")
def app_url(model_dir: Path, local_endpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app in a `streamlit run` subprocess on a free loopback port."""
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
def open_page(chromium_path: Path, width: int, height: int) -> Iterator[object]:
    """A page in a fresh headless Debian Chromium (no cookies); the browser is closed however the test ends."""
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


@pytest.fixture(scope="module")
def page(chromium_path: Path) -> Iterator[object]:
    with open_page(chromium_path, 1440, 1500) as opened:
        yield opened


def _choose(page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=re.compile(re.escape(label))).click()
    page.get_by_role("option", name=option, exact=True).click()


def _idle(page) -> None:
    """Wait until Streamlit has finished the current rerun."""
    page.wait_for_timeout(300)
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden", timeout=60_000)


def _open(page, label: str) -> None:
    """Switch page through the sidebar navigation: same browser session, so shared state carries over."""
    page.locator("[data-testid='stSidebarNav']").get_by_role("link", name=label, exact=True).click()
    page.get_by_role("heading", name=label, level=1).wait_for()
    _idle(page)


def _shoot(page, name: str) -> None:
    """Screenshot once every chart on the page has been drawn (plotly.js loads lazily)."""
    charts = page.locator("[data-testid='stPlotlyChart']")
    for i in range(charts.count()):
        if charts.nth(i).is_visible():  # a chart in a tab that is not open is drawn only when the tab opens
            charts.nth(i).locator("svg.main-svg").first.wait_for()
    page.wait_for_timeout(500)
    page.screenshot(path=SCREENSHOTS / name)


def test_clerk_scores_a_patient_and_analyst_moves_the_threshold(
    page, app_url: str, local_endpoint, model_dir: Path
) -> None:
    page.goto(app_url)
    page.get_by_text("How to read a risk").wait_for()
    _idle(page)
    _shoot(page, "0_home.png")

    # --- Patient risk: fill the form, read the risk --------------------------------------------
    _open(page, "Patient risk")
    page.get_by_role("button", name="Score patient").wait_for()
    for name, value in TYPED.items():
        _choose(page, schema.FEATURES_BY_NAME[name].label, value)
    page.get_by_role("button", name="Score patient").click()
    shown = page.locator(".risk-number").first
    shown.wait_for()
    _idle(page)
    record = {n: TYPED.get(n, schema.FEATURES_BY_NAME[n].default) for n in schema.MODEL_FEATURES["intake"]}
    client = EndpointClient(EndpointConfig.from_sources(environ={"RISK_ENDPOINT_URL": local_endpoint.scoring_url}))
    answer = client.score([record]).results[0]
    p = float(answer["probability"])
    # Issue 19: the risk is shown as the range [unrecorded outcomes as survivals, among recorded outcomes].
    low_end = float(answer["probability_if_unrecorded_survived"])
    assert low_end < p and shown.inner_text().strip() == f"{low_end:.1%} to {p:.1%}"
    low, high = answer["interval"]
    assert page.locator(".risk-caption", has_text=f"95% CI {low:.1%} to {high:.1%}").first.is_visible()
    low_low, low_high = answer["interval_if_unrecorded_survived"]
    assert page.locator(".risk-caption", has_text=f"95% CI {low_low:.1%} to {low_high:.1%}").first.is_visible()
    assert page.get_by_text("Why a range").first.is_visible()
    assert page.get_by_text(schema.risk_band(p), exact=True).first.is_visible()
    # Editing an answer without scoring marks the shown result out of date.
    _choose(page, schema.FEATURES_BY_NAME["age_group"].label, "20 - 29 Years")
    page.get_by_text("Out of date.").wait_for()
    _choose(page, schema.FEATURES_BY_NAME["age_group"].label, TYPED["age_group"])
    page.get_by_text("Out of date.").wait_for(state="detached")
    # At intake the hospital questions are not asked; they appear once the patient is in hospital.
    assert page.get_by_role("combobox", name=re.compile("Hospitalised")).count() == 0
    page.get_by_text("The patient is already in hospital").click()
    page.get_by_role("combobox", name=re.compile("Hospitalised")).wait_for()
    _shoot(page, "1_patient_risk.png")

    # --- Threshold explorer: move the slider with the keyboard -------------------------------
    _open(page, "Threshold explorer")
    slider = page.get_by_role("slider").first
    slider.wait_for()
    _idle(page)
    recall = page.locator("[data-testid='stMetric']").filter(has_text="Recall").locator("[data-testid='stMetricValue']")
    before = recall.inner_text()
    start_value = slider.input_value()
    slider.focus()
    for _ in range(600):  # steps of 0.0001
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "(v) => document.querySelector('[data-testid=stSlider] input[type=range]').value !== v",
        arg=start_value,
    )
    page.wait_for_timeout(600)
    _idle(page)
    t = float(slider.input_value())
    table = pd.read_csv(model_dir / "evaluation" / "thresholds.csv")
    row = table[table["threshold"] >= t - 1e-9].sort_values("threshold").iloc[0]
    page.wait_for_function(
        "(want) => [...document.querySelectorAll('[data-testid=stMetric]')].some("
        "m => m.innerText.startsWith('Recall') && m.innerText.includes(want))",
        arg=f"{row['recall']:.3f}",
    )
    assert recall.inner_text() != before or t == 0
    _shoot(page, "2_threshold_explorer.png")

    # --- The other pages render from the stored tables -------------------------------------
    _open(page, "ICU saturation")
    page.get_by_text("Assumptions behind these numbers").wait_for()
    page.get_by_text(f"At operating threshold {t:.3f}").wait_for()
    _idle(page)
    _shoot(page, "3_icu_saturation.png")
    _open(page, "Model card")
    page.get_by_text("Observed / expected per subgroup").wait_for()
    _idle(page)
    _shoot(page, "4_model_card.png")
    for label, shown in (("Batch scoring", "Upload a file and press"), ("Monitoring", "Check drift")):
        _open(page, label)
        page.get_by_text(shown).first.wait_for()
        _idle(page)
        assert page.locator("[data-testid='stException']").count() == 0, f"{label} raised in the browser"
        _shoot(page, f"5_{label.lower().replace(' ', '_')}.png")
