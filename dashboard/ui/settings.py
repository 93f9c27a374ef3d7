"""Where the dashboard's settings come from: environment and `.streamlit/secrets.toml`.

- model directory: env `RISK_MODEL_DIR` (default `artifacts/model` under the repo root)
- endpoint: `model.serving.client.EndpointConfig.from_sources` reads the `[endpoint]`
  secrets section and the `RISK_ENDPOINT_*` environment; default is the local endpoint.
- launcher: env `RISK_LAUNCHER_STATUS` names the status file `python -m deploy.run_local` keeps
  (restarts so far, next attempt), so a page can say that the endpoint is being restarted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import streamlit as st

from model.core import artifact
from model.serving.client import EndpointConfig

REPO_ROOT = Path(__file__).resolve().parents[2]


def model_dir() -> Path:
    """The model artifact directory the dashboard reads (tables and card only)."""
    # A relative path is taken from the repo root (where `make run` starts the dashboard).
    return (REPO_ROOT / artifact.model_dir_from_env()).resolve()


def secrets_section(name: str) -> Mapping[str, Any] | None:
    """One section of `.streamlit/secrets.toml`, or None when there is no secrets file."""
    try:
        section = st.secrets.get(name)
    except Exception:  # no secrets.toml anywhere, or it does not parse: fall back to env
        return None
    return dict(section) if section is not None else None


def endpoint_config() -> EndpointConfig:
    """Endpoint settings; raises `model.serving.client.EndpointConfigError` when they are inconsistent."""
    return EndpointConfig.from_sources(secrets=secrets_section("endpoint"), environ=os.environ)


LAUNCHER_STATUS_ENV = "RISK_LAUNCHER_STATUS"  # set by deploy.run_local for the dashboard it starts


def launcher_status() -> dict[str, Any] | None:
    """The launcher's status (`deploy.run_local.write_status`), or None when no launcher started this dashboard."""
    path = os.environ.get(LAUNCHER_STATUS_ENV)
    if not path:
        return None
    try:
        status = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # between two writes, or the launcher is gone: say nothing rather than guess
        return None
    return status if isinstance(status, dict) else None
