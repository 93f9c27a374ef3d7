"""The dashboard's use of `model.serving.client`: one cached client, a cached health check,
and error messages that say what happened and what to do (never the key).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import streamlit as st

from dashboard.ui import settings, state, text
from model.core import schema
from model.serving.client import (
    EndpointAuthError,
    EndpointClient,
    EndpointConfig,
    EndpointError,
    EndpointRejected,
    EndpointServerError,
    EndpointUnavailable,
)

HEALTH_TTL_S = 20.0  # health is re-checked at most this often per endpoint, so reruns stay instant
RECHECK_S = 3.0  # while the endpoint is down, the page re-checks it this often in the background
RECHECK_TIMEOUT_S = 2.0  # one quick attempt per re-check: a background check must not hold the page for long
RECOVERED_KEY = "endpoint.recovered_at"  # set by the background check when the endpoint answers again


def config_fingerprint(config: EndpointConfig) -> str:
    """Identifies a configuration for caching without ever holding the key in clear."""
    key = config.key.get_secret_value() if config.key else ""
    key_hash = hashlib.sha256(key.encode()).hexdigest()[:16]
    return "|".join(
        (config.scoring_url, config.name, config.auth, config.deployment or "", str(config.timeout_s), key_hash)
    )


@st.cache_resource(show_spinner=False, max_entries=8)
def _client(fingerprint: str, _config: EndpointConfig) -> EndpointClient:
    return EndpointClient(_config)


def get_client(config: EndpointConfig) -> EndpointClient:
    return _client(config_fingerprint(config), config)


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str
    latency_ms: float | None
    model_version: str | None
    checked_at: float


@st.cache_data(show_spinner=False, ttl=HEALTH_TTL_S, max_entries=16)
def _health(fingerprint: str, _client: EndpointClient) -> Health:
    try:
        result = _client.health()
    except EndpointError as exc:  # the client promises health() reports, but never let the sidebar crash
        return Health(False, str(exc), None, None, time.time())
    return Health(
        ok=bool(result.ok),
        detail=str(result.detail),
        latency_ms=result.latency_ms,
        model_version=result.model_version,
        checked_at=time.time(),
    )


def health(config: EndpointConfig) -> Health:
    return _health(config_fingerprint(config), get_client(config))


def forget_health() -> None:
    """Drop cached health results (the sidebar's "Check again" button)."""
    _health.clear()


def probability_of(result: Any) -> float:
    """The probability in one scoring result (a dict per the scoring contract, or an object)."""
    value = result["probability"] if isinstance(result, dict) else result.probability
    return float(value)


def risk_band_of(result: Any) -> str:
    return str(result["risk_band"] if isinstance(result, dict) else result.risk_band)


@dataclass(frozen=True)
class ErrorText:
    """What a clinician reads (`message`) and what whoever runs the endpoint needs (`detail`)."""

    message: str
    detail: str


def explain_error(exc: EndpointError, config: EndpointConfig) -> ErrorText:
    """A banner in clinician wording, and the technical detail (commands, settings) for an expander."""
    # Everything quoted from the settings or the endpoint is literal text; only our own wording is Markdown.
    where = f"The {config.name} scoring endpoint ({text.md(config.scoring_url)})"
    said = text.md(exc, 2000)
    if isinstance(exc, EndpointAuthError):
        return ErrorText(
            "**The risk service refused this dashboard's access key.** Your inputs are kept; ask whoever runs "
            "the dashboard to renew the key, then press the button again.",
            f"{where} answered {said}. Check `RISK_ENDPOINT_KEY` or `key` in the `[endpoint]` section of "
            "`.streamlit/secrets.toml` (keys rotate: `az ml online-endpoint get-credentials`).",
        )
    if isinstance(exc, EndpointRejected):
        message = getattr(exc, "message", None) or str(exc)
        return ErrorText(
            f"**The risk service could not read this input:** {text.md(message, 2000)}. Correct the form and "
            "submit again.",
            f"{where}: {said}",
        )
    if isinstance(exc, EndpointServerError):
        return ErrorText(
            "**The risk service failed while scoring.** This is not a problem with your input: try again in a "
            "minute; if it persists, tell whoever runs the dashboard.",
            f"{where}: {said}. Check the endpoint's logs.",
        )
    if isinstance(exc, EndpointUnavailable):
        return ErrorText(
            "**The risk service is not reachable right now.** Your inputs are kept; this page checks the service "
            "in the background and says when it answers again. The threshold, ICU and model-card pages keep working.",
            f"{where}: {said}. Locally, start it with `python -m deploy.local_endpoint` (or `make run`); for Azure "
            "check `RISK_ENDPOINT_URL` and the deployment's state; a slow endpoint may need a larger "
            "`RISK_ENDPOINT_TIMEOUT`.",
        )
    return ErrorText(
        "**The risk service could not score this patient.** Your inputs are kept; try again.", f"{where}: {said}"
    )


def show_error(exc: EndpointError, config: EndpointConfig) -> None:
    """The banner, with the technical detail folded away."""
    text = explain_error(exc, config)
    st.error(text.message, icon=":material/cloud_off:")
    with st.expander("Technical detail (for whoever runs the dashboard)"):
        st.markdown(text.detail)


def score(
    config: EndpointConfig, records: list[dict[str, str]], *, explain: bool = False, traffic: str = schema.LIVE
) -> Any:
    """Score through the client and remember version and latency for the sidebar.

    Raises the client's EndpointError subclasses; callers show it with `show_error`.
    """
    try:
        result = get_client(config).score(records, explain=explain, traffic=traffic)
    except EndpointError as exc:
        state.record_endpoint_status(ok=False, detail=str(exc), checked_at=time.time())
        raise
    state.record_endpoint_status(
        ok=True,
        detail="scored",
        latency_ms=result.latency_ms,
        model_version=result.model_version,
        checked_at=time.time(),
    )
    return result


# --- recovery seen on the page -----------------------------------------------------------------------------


def is_down(config: EndpointConfig) -> bool:
    """What the sidebar shows: the latest news about the endpoint, a scoring call or the cached health check."""
    health_now = health(config)
    last = state.endpoint_status()
    fresher = last.get("ok") is not None and last.get("checked_at", 0) > health_now.checked_at
    return not (bool(last["ok"]) if fresher else health_now.ok)


@st.cache_resource(show_spinner=False, max_entries=8)
def _quick_client(fingerprint: str, _config: EndpointConfig) -> EndpointClient:
    """A client without retries and with a short deadline, kept like the main one (an Azure AD token is reused)."""
    return EndpointClient(_config.replace(retries=0, timeout_s=min(_config.timeout_s, RECHECK_TIMEOUT_S)))


def quick_health(config: EndpointConfig) -> Health:
    """One uncached attempt with a short deadline (the client's retries would hold the page for seconds)."""
    try:
        result = _quick_client(config_fingerprint(config), config).health()
    except EndpointError as exc:
        return Health(False, str(exc), None, None, time.time())
    return Health(bool(result.ok), str(result.detail), result.latency_ms, result.model_version, time.time())


def watch_while_down(config: EndpointConfig) -> None:
    """While the endpoint is down, say so and re-check it every RECHECK_S seconds in the background.

    When it answers, the whole app reruns: the sidebar turns healthy, the outage banner is gone, and the page
    says the service is back (the clerk's inputs are widget state, so they are kept). Nothing is drawn while
    the endpoint is up, so a healthy page has no timer.
    """
    recovered_at = st.session_state.pop(RECOVERED_KEY, None)
    if recovered_at is not None:
        st.success(
            f"**The risk service answers again** (checked {time.strftime('%H:%M:%S', time.localtime(recovered_at))}"
            "). Your inputs are kept; press the button again to score.",
            icon=":material/cloud_done:",
        )
    if is_down(config):
        st.fragment(_recheck_banner, run_every=RECHECK_S)(config)


def _recheck_banner(config: EndpointConfig) -> None:
    """The fragment: one quick check; a rerun of the app once the endpoint is healthy, else the waiting note."""
    checked = quick_health(config)
    if checked.ok:
        forget_health()  # every page and session sees the recovery on its next run, not after HEALTH_TTL_S
        state.record_endpoint_status(
            ok=True, detail=checked.detail, model_version=checked.model_version, checked_at=checked.checked_at
        )
        st.session_state[RECOVERED_KEY] = checked.checked_at
        st.rerun(scope="app")
    st.info(_waiting_text(checked.checked_at), icon=":material/hourglass_top:")


def _waiting_text(checked_at: float) -> str:
    """Waiting note: when it was checked, how often, and what the launcher of `make run` is doing about it."""
    when = time.strftime("%H:%M:%S", time.localtime(checked_at))
    text = (
        f"**Waiting for the risk service.** Last checked {when}; this page checks again every {RECHECK_S:.0f} s "
        "and clears this message as soon as it answers."
    )
    launcher = settings.launcher_status()
    if launcher is not None:
        text += " " + launcher_text(launcher, time.time())
    return text


def launcher_text(status: dict[str, object], now: float) -> str:
    """The launcher's status file (`deploy.run_local`) in words, e.g. "… restart 3, next attempt in 8 s"."""
    restarts = status.get("restarts")
    next_at = status.get("next_attempt_unix")
    text = "The local launcher (`make run`) restarts the endpoint by itself and never gives up"
    if isinstance(restarts, int) and restarts > 0:
        text += f" ({restarts} restart{'s' if restarts != 1 else ''} so far"
        if isinstance(next_at, int | float) and next_at > now:
            text += f"; next attempt in {next_at - now:.0f} s"
        text += ")"
    return text + "."
