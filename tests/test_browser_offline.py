"""Hostile query parameters render as text and fetch nothing (issue 22, finding 10).

The real app (`streamlit run`, from tests/browser_fixtures.py) in headless Debian Chromium. That nothing
leaves the machine on any page (finding 6) is checked along tests/test_browser.py's journey, which opens them all.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from tests.browser_fixtures import idle, open_page

pytestmark = pytest.mark.browser

PHISH = "[click to re-authenticate](http://127.0.0.1:5101/phish)"
TRACKER = "![](//127.1:5101/t1)"


def test_hostile_query_parameters_show_as_text_and_fetch_nothing(chromium_path: Path, app_url: str) -> None:
    requested: list[str] = []
    with open_page(chromium_path, 1280, 900) as page:
        page.on("request", lambda request: requested.append(request.url))
        page.goto(f"{app_url}/?icu.{quote(PHISH)}=1&threshold={quote(TRACKER)}")
        alerts = page.locator("[data-testid='stAlert']")
        alerts.filter(has_text="not an ICU input").wait_for()
        idle(page)
        page.wait_for_timeout(500)
        links = alerts.locator("a").evaluate_all("links => links.map(a => a.href)")
        images = alerts.locator("img").evaluate_all("images => images.map(i => i.src)")
        texts = alerts.all_inner_texts()
    assert not links and not images, (links, images)
    assert any("click to re-authenticate" in t and "127.0.0.1:5101" in t for t in texts), texts
    assert not [url for url in requested if ":5101" in url], requested
