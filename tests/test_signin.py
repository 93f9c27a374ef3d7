"""Sign-in end to end: the real app behind Streamlit's OpenID Connect, against a real provider.

Nothing is faked. `oidc-provider-mock` is a real OpenID Connect provider (discovery, authorize,
token, JWKS, end-session) run as its own process on a free loopback port with one predefined
user; `streamlit run dashboard/app.py` runs on another free port with an `[auth]` secrets file
pointing at it (passed through STREAMLIT_SECRETS_FILES, so the repository's .streamlit/ is not
touched). Headless Debian Chromium then walks: signed out -> only the sign-in screen, on every
page; sign in at the provider -> pages, the user's name; sign out -> the sign-in screen again.
Both processes run in their own sessions and are stopped by the fixtures, also on failure.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local_endpoint import free_port
from tests.browser_fixtures import idle
from tests.test_browser import SCREENSHOTS, open_page, streamlit_command, wait_until_answering

REPO_ROOT = Path(__file__).resolve().parent.parent
USER = {"sub": "ada.clinician", "name": "Dr Ada Okafor", "email": "ada.okafor@hospital.example"}
SIGN_IN = "Sign in"


def _start(cmd: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group (its own session: this process and its children only), then SIGKILL."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OpenID Connect provider on loopback with one predefined user; yields its issuer URL."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("oidc") / "provider.log"
    cmd = [
        sys.executable,
        "-m",
        "oidc_provider_mock",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--user-claims",
        json.dumps(USER),
    ]
    proc = _start(cmd, dict(os.environ), log_path)
    issuer = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{issuer}/.well-known/openid-configuration", proc, log_path, "the OpenID provider")
        yield issuer
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def signed_app(
    provider: str, model_dir: Path, local_endpoint, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The dashboard with `[auth]` configured against `provider`; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    tmp = tmp_path_factory.mktemp("signed-app")
    secrets_file = tmp / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        f'redirect_uri = "{base}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "covid-risk-dashboard"\n'
        f'client_secret = "{secrets.token_hex(16)}"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n',
        encoding="utf-8",
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RISK_ENDPOINT_", "STREAMLIT_"))},
        "STREAMLIT_SECRETS_FILES": str(secrets_file),
        "RISK_ENDPOINT_URL": local_endpoint.scoring_url,
        "RISK_MODEL_DIR": str(model_dir),
    }
    cmd = streamlit_command(port)
    log_path = tmp / "streamlit.log"
    proc = _start(cmd, env, log_path)
    try:
        wait_until_answering(f"{base}/_stcore/health", proc, log_path, "streamlit")
        yield base
    finally:
        _stop(proc)
        log = log_path.read_text(errors="replace")
        assert "client_secret" not in log and "cookie_secret" not in log  # secrets never in the log


@pytest.fixture
def page(chromium_path: Path) -> Iterator[object]:
    """A fresh browser (no cookies) per test."""
    with open_page(chromium_path, 1280, 900) as opened:
        yield opened


def _assert_signed_out(page) -> None:
    """Only the sign-in card: no page content, no sidebar, no endpoint or model details."""
    page.get_by_role("button", name=SIGN_IN).wait_for()
    idle(page)
    main_text = page.locator("[data-testid='stMain']").inner_text()
    for leak in ("How to read a risk", "Scoring endpoint", "Operating threshold", "model version", "Recall"):
        assert leak not in page.content(), f"{leak!r} is visible before sign-in"
    assert "Sign in with your work account" in main_text
    assert not page.locator("[data-testid='stSidebar']").is_visible()
    assert not page.locator("[data-testid='stSidebarNav']").is_visible()


@pytest.mark.browser
def test_signed_out_sees_only_the_sign_in_screen_on_every_page(page, signed_app: str) -> None:
    for path in ("", "/Patient_risk", "/Threshold_explorer", "/Model_card"):
        page.goto(signed_app + path)
        _assert_signed_out(page)
    page.screenshot(path=SCREENSHOTS / "signin_0_signed_out.png")


@pytest.mark.browser
def test_sign_in_shows_pages_and_name_then_sign_out(page, signed_app: str, provider: str) -> None:
    page.goto(signed_app)
    _assert_signed_out(page)
    page.get_by_role("button", name=SIGN_IN).click()

    # The provider's own authorization page (a different origin): choose the predefined user.
    page.wait_for_url(re.compile(re.escape(provider) + r"/oauth2/authorize"))
    page.screenshot(path=SCREENSHOTS / "signin_1_provider.png")
    page.get_by_role("button", name=USER["sub"], exact=True).click()

    # Back in the app, signed in: the home page, the user's name and a sign-out button in the sidebar.
    page.wait_for_url(re.compile(re.escape(signed_app) + r"/?$"))
    page.get_by_text("How to read a risk").wait_for()
    idle(page)
    sidebar = page.locator("[data-testid='stSidebar']")
    assert USER["name"] in sidebar.inner_text()
    assert sidebar.get_by_role("button", name="Sign out").is_visible()
    assert not page.get_by_role("button", name=SIGN_IN).is_visible()
    page.screenshot(path=SCREENSHOTS / "signin_2_signed_in.png")

    # Other pages open in the same signed-in browser.
    page.locator("[data-testid='stSidebarNav']").get_by_role("link", name="Threshold explorer", exact=True).click()
    page.get_by_role("heading", name="Threshold explorer", level=1).wait_for()
    idle(page)
    assert USER["name"] in page.locator("[data-testid='stSidebar']").inner_text()

    # Sign out: Streamlit clears its cookie and sends the browser to the provider's end-session page,
    # which returns to the app; the sign-in screen is back.
    page.locator("[data-testid='stSidebar']").get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(re.escape(provider) + r"/oauth2/end_session"))
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(re.compile(re.escape(signed_app)))
    _assert_signed_out(page)
    page.goto(signed_app + "/Threshold_explorer")
    _assert_signed_out(page)
    page.screenshot(path=SCREENSHOTS / "signin_3_signed_out_again.png")


def test_misconfigured_auth_shows_a_clear_error_and_nothing_else(model_dir: Path, monkeypatch) -> None:
    """`[auth]` without provider settings: the page says which keys are missing and shows no content."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("RISK_MODEL_DIR", str(model_dir))
    app = AppTest.from_file(str(REPO_ROOT / "dashboard" / "app.py"), default_timeout=60)
    app.secrets["auth"] = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "x" * 32}
    app.run()
    assert not app.exception
    errors = [e.value for e in app.error]
    assert any("Sign-in is misconfigured" in e and "server_metadata_url" in e for e in errors), errors
    assert not [m for m in app.subheader if "How to read a risk" in m.value]
    assert not [m for m in app.markdown if "calibrated probability" in m.value]
    assert not app.sidebar.button  # no endpoint box, no "Check again"
