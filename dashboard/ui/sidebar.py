"""The shared sidebar: which endpoint, is it healthy, which model, how fast, which threshold.

Drawn once per run, before the page. Pages change shared facts (the threshold, a fresh scoring
result) in widget callbacks, which run before the script, so the sidebar is never behind the page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from dashboard.ui import endpoint, state, text

if TYPE_CHECKING:
    from dashboard.ui.artifacts import ModelArtifact
    from model.serving.client import EndpointConfig


def draw_sidebar(config: EndpointConfig | None, model: ModelArtifact | None, config_error: str | None) -> None:
    """Endpoint box, operating threshold and model, from the shared state as it is at the start of the run."""
    with st.sidebar:
        st.subheader("Scoring endpoint")
        if config is None:
            st.error(f"Endpoint settings are invalid: {text.md(config_error)}")
        else:
            _endpoint_box(config)
            st.button(
                "Check again",
                key="sidebar_recheck",
                help="Re-run the endpoint health check now",
                icon=":material/refresh:",
                on_click=_recheck,
            )
        st.subheader("Operating threshold")
        st.session_state[THRESHOLD_SLOT_KEY] = st.empty()
        refresh_threshold()
        st.subheader("Model")
        if model is None:
            st.caption("No model directory found.")
        else:
            kind = "synthetic data" if model.synthetic else "real data"
            st.markdown(
                f"{text.md_code(model.version)}  \n<span class='risk-caption'>trained on {kind}</span>",
                unsafe_allow_html=True,
            )


THRESHOLD_SLOT_KEY = "sidebar.threshold_slot"  # this run's place for the threshold line


def refresh_threshold() -> None:
    """(Re)write the sidebar's threshold line; a page that reruns alone (a fragment) calls it after a change."""
    slot = st.session_state.get(THRESHOLD_SLOT_KEY)
    if slot is not None:
        slot.markdown(
            f"Flag when risk ≥ **{state.get_threshold():.4g}** ({state.get_threshold():.2%})  \n"
            "<span class='risk-caption'>Set it on the Threshold explorer; every page uses it.</span>",
            unsafe_allow_html=True,
        )


def _recheck() -> None:
    endpoint.forget_health()
    state.record_endpoint_status(ok=None)


def _endpoint_box(config: EndpointConfig) -> None:
    health = endpoint.health(config)
    last = state.endpoint_status()
    # A scoring call newer than the cached health check wins, failed or successful: it is the fresher news.
    fresher = last.get("ok") is not None and last.get("checked_at", 0) > health.checked_at
    ok = bool(last["ok"]) if fresher else health.ok
    down_since_check = fresher and not ok
    status = "<span class='endpoint-ok'>● healthy</span>" if ok else "<span class='endpoint-down'>● unavailable</span>"
    where = "Azure ML" if config.name == "azure" else "local (azmlinfsrv)"
    version = last.get("model_version") or health.model_version or "unknown"
    latency = last.get("latency_ms")
    lines = [
        f"<b>{where}</b> {status}",
        f"<span class='risk-caption'>{text.html_text(config.scoring_url)}</span>",
        f"model version: <code>{text.html_text(version, 120)}</code>",  # the endpoint's words: never markup
        f"health check: {health.latency_ms:.0f} ms" if health.latency_ms is not None else "health check: —",
        f"last scoring latency: {latency:.0f} ms" if isinstance(latency, int | float) else "last scoring latency: —",
    ]
    st.html("<div class='endpoint-box'>" + "<br>".join(lines) + "</div>")
    if not ok:
        st.caption(f"Detail: {text.md(last.get('detail') if down_since_check else health.detail, 2000)}")
