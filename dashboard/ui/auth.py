"""Sign-in gate: Streamlit's built-in OpenID Connect (`st.login`, `st.user`, `st.logout`).

Off unless `.streamlit/secrets.toml` (or a file named by STREAMLIT_SECRETS_FILES) has an `[auth]`
section, so a local run needs no identity provider. When it is configured, `require_sign_in()`
shows only the sign-in screen until the browser holds Streamlit's signed identity cookie, then
puts the user's name and a sign-out button in the sidebar. In Azure the provider is Microsoft
Entra ID (docs/azure.md); the test uses a real OpenID Connect provider on loopback.

`[auth]` takes either the provider's settings directly (client_id, client_secret,
server_metadata_url) or exactly one named provider table such as `[auth.microsoft]`.
Streamlit needs Authlib for this (pinned in requirements.txt).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from dashboard.ui import settings, theme

AUTH_SECTION = "auth"
_PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
# While signed out, the sidebar (page list, endpoint box) is hidden: only the sign-in card shows.
_SIGNED_OUT_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stSidebarNav"] {display: none;}
</style>"""


class SignInConfigError(ValueError):
    """`[auth]` is present but unusable; the message says which keys to add."""


def auth_settings() -> Mapping[str, Any] | None:
    """The `[auth]` secrets section, or None when sign-in is not configured."""
    return settings.secrets_section(AUTH_SECTION)


def provider_name(section: Mapping[str, Any]) -> str | None:
    """None for the unnamed provider in `[auth]` itself, else the one named `[auth.<name>]` table."""
    if all(section.get(k) for k in _PROVIDER_KEYS):
        return None
    named = [k for k, v in section.items() if isinstance(v, Mapping) and all(v.get(p) for p in _PROVIDER_KEYS)]
    if len(named) == 1:
        return named[0]
    raise SignInConfigError(
        "[auth] in secrets.toml needs redirect_uri and cookie_secret, plus client_id, client_secret and "
        "server_metadata_url either in [auth] itself or in exactly one [auth.<provider>] table "
        f"(found provider tables: {', '.join(named) or 'none'})"
    )


def sign_in_pending() -> bool:
    """True while sign-in is configured (or misconfigured) and the user has not signed in."""
    section = auth_settings()
    if not section:
        return False
    try:
        provider_name(section)
    except SignInConfigError:
        return True
    return not st.user.is_logged_in


def require_sign_in() -> None:
    """Return if sign-in is off or the user is signed in; otherwise show the sign-in screen and stop."""
    section = auth_settings()
    if not section:
        return
    try:
        provider = provider_name(section)
    except SignInConfigError as exc:
        st.error(f"**Sign-in is misconfigured.** {exc}", icon=":material/lock:")
        st.stop()
    if not st.user.is_logged_in:
        _sign_in_screen(provider)
        st.stop()
    with st.sidebar:
        name = st.user.get("name") or st.user.get("email") or "signed-in user"
        st.markdown(f":material/account_circle: Signed in as **{name}**")
        if st.button("Sign out", key="auth_sign_out", icon=":material/logout:"):
            st.logout()


def _sign_in_screen(provider: str | None) -> None:
    st.html(_SIGNED_OUT_CSS)
    st.title(theme.APP_NAME)
    with st.container(border=True):
        st.markdown(
            "This tool shows patients' risk of dying of COVID-19 to the clinical staff of this organisation. "
            "Sign in with your work account to continue."
        )
        if st.button("Sign in", key="auth_sign_in", type="primary", icon=":material/login:"):
            if provider is None:
                st.login()
            else:
                st.login(provider)
