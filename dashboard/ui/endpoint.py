"""The dashboard's use of `dashboard.client`: one cached client, a cached health check,
and error messages that say what happened and what to do (never the key).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import streamlit as st

from dashboard.client import (
    EndpointAuthError,
    EndpointClient,
    EndpointConfig,
    EndpointError,
    EndpointRejected,
    EndpointServerError,
    EndpointUnavailable,
)
from dashboard.ui import state, text
from model import schema

HEALTH_TTL_S = 20.0  # health is re-checked at most this often per endpoint, so reruns stay instant


def config_fingerprint(config: EndpointConfig) -> str:
    """Identifies a configuration for caching without ever holding the key in clear."""
    key_hash = hashlib.sha256((config.key or "").encode()).hexdigest()[:16]
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
            "**The risk service is not reachable right now.** Your inputs are kept; press the button again in a "
            "moment. The threshold, ICU and model-card pages keep working.",
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
