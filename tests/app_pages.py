"""Open a dashboard page the way a browser does: the entry file runs, `st.navigation` picks the page."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from dashboard.ui import navigation

APP = navigation.VIEWS.parent / "app.py"
TIMEOUT = 90  # first runs import plotly and pandas; a down endpoint is retried before giving up


def app_test(timeout: float = TIMEOUT) -> AppTest:
    """The entry file, not yet run (set secrets, query parameters or environment first)."""
    return AppTest.from_file(str(APP), default_timeout=timeout)


def open_page(script: str, at: AppTest | None = None, *, timeout: float = TIMEOUT, check: bool = True) -> AppTest:
    """Run the app once (Home, or the page the query parameters name), switch to `script` and run it.

    `script` is a file name in dashboard/views/ ("patient_risk.py"); `check` fails on an uncaught exception.
    """
    at = at if at is not None else app_test(timeout)
    at.run()  # st.navigation registers the pages (with their url paths) on the first run
    if script != navigation.HOME.script:
        switch_to(at, script)
    if check:
        assert not at.exception, [e.value for e in at.exception]
    return at


def switch_to(at: AppTest, script: str) -> AppTest:
    """Open another page of a running app, as a click in the menu does (`script`: a file in dashboard/views/).

    The pages are callables (`navigation.PageSpec.render`), and `AppTest.switch_page` finds only pages given
    as script files; a click in the menu sends the page id `st.navigation` registered for the page's URL path,
    so that id is looked up in the pages the last run registered and requested for the next run.
    """
    spec = next((spec for spec in navigation.PAGES if spec.script == script), None)
    if spec is None:
        raise ValueError(f"{script!r} is not in navigation.PAGES")
    registered = at._registered_pages  # AppTest has no public lookup for callable pages (Streamlit 1.67)
    page_id = next((h for h, info in registered.items() if info.get("url_pathname") == spec.url_path), None)
    if page_id is None:
        raise ValueError(f"{script!r} (url path {spec.url_path!r}) was not registered by the last run")
    at._page_hash = page_id
    return at.run()
