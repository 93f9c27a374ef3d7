"""Nothing leaves the machine at run time, and hostile query parameters render as text (issue 22, findings 6, 10).

The real app (`streamlit run`, from tests/browser_fixtures.py) in headless Debian Chromium.
Every request the browser makes is recorded; one to a host that is not loopback fails the test
(and is refused, so the test never reaches the internet either).
"""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from dashboard.ui import navigation
from tests.test_browser import _idle, open_page

pytestmark = pytest.mark.browser

PHISH = "[click to re-authenticate](http://127.0.0.1:5101/phish)"
TRACKER = "![](//127.1:5101/t1)"


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _visit_every_page(page, base: str) -> None:
    for spec in navigation.PAGES:
        page.goto(f"{base}/{spec.url_path}")
        page.locator("h1").first.wait_for()
        _idle(page)
        page.wait_for_timeout(500)  # the tab icon is set after the first messages


def test_no_request_leaves_the_machine_on_any_page(chromium_path: Path, app_url: str) -> None:
    outside: list[str] = []
    with open_page(chromium_path, 1280, 900) as page:

        def guard(route) -> None:
            if _loopback(route.request.url) or route.request.url.startswith(("data:", "blob:")):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.context.route("**/*", guard)
        _visit_every_page(page, app_url)
        icon = page.evaluate("document.querySelector(\"link[rel='shortcut icon']\").href")
    assert not outside, f"requests to hosts that are not loopback: {outside}"
    assert _loopback(icon) or icon.startswith("data:"), icon


def test_hostile_query_parameters_show_as_text_and_fetch_nothing(chromium_path: Path, app_url: str) -> None:
    requested: list[str] = []
    with open_page(chromium_path, 1280, 900) as page:
        page.on("request", lambda request: requested.append(request.url))
        page.goto(f"{app_url}/?icu.{quote(PHISH)}=1&threshold={quote(TRACKER)}")
        alerts = page.locator("[data-testid='stAlert']")
        alerts.filter(has_text="not an ICU input").wait_for()
        _idle(page)
        page.wait_for_timeout(500)
        links = alerts.locator("a").evaluate_all("links => links.map(a => a.href)")
        images = alerts.locator("img").evaluate_all("images => images.map(i => i.src)")
        texts = alerts.all_inner_texts()
    assert not links and not images, (links, images)
    assert any("click to re-authenticate" in t and "127.0.0.1:5101" in t for t in texts), texts
    assert not [url for url in requested if ":5101" in url], requested
