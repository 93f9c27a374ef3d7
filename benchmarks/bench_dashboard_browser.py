"""The dashboard's speed as a user sees it: `streamlit run dashboard/app.py` driven by headless Chromium.

Every time is taken inside the page with `performance.now()`: a first load from the navigation's start, an
interaction from the key press or click itself (a capture-phase listener), until the page shows what the user
waits for (polled every animation frame). Playwright's own round trips are therefore not counted.

Used by `python -m benchmarks.bench_dashboard` (its `browser` section); no pytest, nothing mocked.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from dashboard.ui import navigation
from dashboard.ui.theme import format_risk
from deploy.local_endpoint import free_port
from model.core import schema
from model.serving.client import EndpointClient, EndpointConfig
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, REPO_ROOT, streamlit_command

BROWSER_TARGETS_MS = {"first_load": 1500.0, "slider_to_metrics": 150.0}
# What shows that each page is complete (its last block), by page title.
READY_TEXT = {
    "Home": "not a diagnosis",
    "Patient risk": "Score patient",
    "Threshold explorer": "How to read these charts",
    "ICU saturation": "Assumptions behind these numbers",
    "Model card": "Observed / expected per subgroup",
    "Batch scoring": "Upload a file and press",
    "Monitoring": "Check drift",
}
# True (as performance.now()) once the page shows `want` (text), every visible chart is drawn and no run is going.
_READY_JS = """(want) => {
  const text = document.body.innerText;
  if (!text.includes(want) || !document.querySelector('h1')) return false;
  const busy = document.querySelector('[data-testid=stStatusWidget]');
  if (busy && busy.offsetParent !== null) return false;
  for (const chart of document.querySelectorAll('[data-testid=stPlotlyChart]')) {
    if (chart.offsetParent !== null && !chart.querySelector('svg.main-svg')) return false;
  }
  return performance.now() - (window.__t0 || 0);
}"""
_MARK_JS = """() => {
  window.__t0 = undefined;
  for (const kind of ['keydown', 'mousedown']) {
    document.addEventListener(kind, () => { window.__t0 ??= performance.now(); }, {capture: true, once: true});
  }
}"""


@contextmanager
def _dashboard(model_dir: Path, scoring_url: str) -> Iterator[str]:
    """`streamlit run` on a free loopback port, pointed at the endpoint; stopped however the block ends."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISK_ENDPOINT_")}
    env |= {"RISK_ENDPOINT_URL": scoring_url, "RISK_MODEL_DIR": str(model_dir)}
    proc = subprocess.Popen(
        streamlit_command(port), cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/_stcore/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"streamlit did not start on port {port}")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _ready(page, title: str) -> float:
    """Milliseconds from the mark (or the navigation's start) until `title`'s page is complete."""
    return float(page.wait_for_function(_READY_JS, arg=READY_TEXT[title], polling="raf").json_value())


def first_loads(browser, base: str, repeats: int) -> dict[str, list[float]]:
    """Each page opened by its address in a new browser session (no cookies): navigation start to complete."""
    out: dict[str, list[float]] = {spec.title: [] for spec in navigation.PAGES}
    for _ in range(repeats):
        for spec in navigation.PAGES:
            context = browser.new_context(viewport={"width": 1440, "height": 1000})
            try:
                page = context.new_page()
                page.set_default_timeout(60_000)
                page.goto(f"{base}/{spec.url_path}")
                out[spec.title].append(_ready(page, spec.title))
            finally:
                context.close()
    return out


def slider_moves(page, base: str, moves: int) -> list[float]:
    """ArrowRight on the threshold slider until the caption under the metrics shows the new threshold."""
    page.goto(f"{base}/Threshold_explorer")
    _ready(page, "Threshold explorer")
    slider = page.get_by_role("slider").first
    slider.focus()
    times = []
    for _ in range(moves):
        want = f"flagging at risk ≥ {float(slider.input_value()) + 0.001:.3f}"
        page.evaluate(_MARK_JS)
        page.keyboard.press("ArrowRight")
        handle = page.wait_for_function(
            "(want) => document.body.innerText.includes(want) && performance.now() - window.__t0",
            arg=want,
            polling="raf",
        )
        times.append(float(handle.json_value()))
        _ready(page, "Threshold explorer")
    return times


def page_switches(page, base: str, rounds: int) -> list[float]:
    """A click in the menu until the new page is complete (every page in menu order, `rounds` times)."""
    page.goto(base)
    _ready(page, "Home")
    times = []
    for _ in range(rounds):
        for spec in (*navigation.PAGES[1:], navigation.HOME):
            page.evaluate(_MARK_JS)
            page.locator("[data-testid='stSidebarNav']").get_by_role("link", name=spec.title, exact=True).click()
            times.append(_ready(page, spec.title))
    return times


def submits(page, base: str, scoring_url: str, repeats: int) -> list[float]:
    """Press "Score patient" until the risk is shown, alternating two age groups so each answer is new."""
    ages = ("30 - 39 Years", "80+ Years")
    client = EndpointClient(EndpointConfig.from_sources(environ={"RISK_ENDPOINT_URL": scoring_url}))
    page.goto(f"{base}/Patient_risk")
    _ready(page, "Patient risk")
    label = schema.FEATURES_BY_NAME["age_group"].label
    times = []
    for i in range(repeats):
        age = ages[i % 2]
        record = {"age_group": age}  # what the form sends: the other answers are left as "Not known"
        want = format_risk(float(client.score([record]).results[0]["probability"]))
        page.get_by_role("combobox", name=label).click()
        page.get_by_role("option", name=age, exact=True).click()
        _ready(page, "Patient risk")
        page.evaluate(_MARK_JS)
        page.get_by_role("button", name="Score patient").click()
        handle = page.wait_for_function(
            "(want) => { const r = document.querySelector('[data-testid=risk-probability]');"
            " return r && r.innerText.trim() === want && !document.body.innerText.includes('(out of date)')"
            " && performance.now() - window.__t0; }",
            arg=want,
            polling="raf",
        )
        times.append(float(handle.json_value()))
    return times


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def browser_timings(model_dir: Path, scoring_url: str, repeats: int = 3) -> dict:
    """All browser figures (medians in ms, and every run) and whether they meet BROWSER_TARGETS_MS."""
    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()[0]
    with _dashboard(model_dir, scoring_url) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            warm = browser.new_page()  # the server's one-time imports, paid once per process, not per user
            for spec in navigation.PAGES:
                warm.goto(f"{base}/{spec.url_path}")
                _ready(warm, spec.title)
            warm.close()
            loads = first_loads(browser, base, repeats)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(60_000)
            slider = slider_moves(page, base, 10 * repeats)
            submit = submits(page, base, scoring_url, 4 * repeats)
            switches = page_switches(page, base, repeats)
        finally:
            browser.close()
    load_medians = {title: _median(values) for title, values in loads.items()}
    report = {
        "what": "headless Chromium (Playwright) against streamlit run; in-page performance.now(); warm server",
        "first_load_median_ms": load_medians,
        "first_load_runs_ms": {title: [round(v, 1) for v in values] for title, values in loads.items()},
        "slider_to_metrics_median_ms": _median(slider),
        "slider_to_metrics_max_ms": round(max(slider), 1),
        "submit_to_risk_median_ms": _median(submit),
        "page_switch_median_ms": _median(switches),
        "page_switch_max_ms": round(max(switches), 1),
        "runs": {"first_load_per_page": repeats, "slider": len(slider), "submit": len(submit), "switch": len(switches)},
        # Browser timings move with the machine's load (CPU-bound page boot): say how busy it was.
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "cpus": os.cpu_count(),
    }
    report["meets_targets"] = (
        max(load_medians.values()) < BROWSER_TARGETS_MS["first_load"]
        and report["slider_to_metrics_median_ms"] < BROWSER_TARGETS_MS["slider_to_metrics"]
    )
    return report


if __name__ == "__main__":  # quick look without the AppTest part: python -m benchmarks.bench_dashboard_browser DIR
    import json
    import sys

    from deploy.local_endpoint import serve

    with serve(Path(sys.argv[1]).resolve()) as endpoint:
        print(json.dumps(browser_timings(Path(sys.argv[1]).resolve(), endpoint.scoring_url, 1), indent=2))
