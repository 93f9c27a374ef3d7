"""The Monitoring page's third source in Azure: what the deployments collected, read from Blob Storage.

In Azure the endpoint's records never reach a local folder (model/monitoring/collected.py says why and
where they are); with RISK_COLLECTED_ACCOUNT_URL, RISK_COLLECTED_CONTAINER and RISK_COLLECTED_ENDPOINT
set (the Container App has them, deploy/azure/containerapp.py) the page offers them here, reads the
last RISK_COLLECTED_DAYS days (default 7) of every deployment with the app's managed identity into a
temporary folder, runs the same report as for a local folder, and deletes the folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from model.data.loader import DataError
from model.monitoring import collected

SOURCE_LABEL = "Collected in Azure (Blob Storage)"
DAYS_ENV = "RISK_COLLECTED_DAYS"


def available() -> bool:
    """True when the dashboard runs with the Azure collected-data settings."""
    return collected.configured()


def _days() -> int:
    raw = (os.environ.get(DAYS_ENV) or str(collected.DEFAULT_DAYS)).strip()
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{DAYS_ENV}={raw!r} is not a whole number of days >= 1; unset it for 7")
    return int(raw)


def _label(endpoint: str, days: int, fetched: collected.Fetched) -> str:
    parts = ", ".join(f"{name}: {n:,}" for name, n in sorted(fetched.by_deployment.items())) or "none"
    more = "; stopped at the record limit" if fetched.truncated else ""
    return f"inputs collected by {endpoint} in the last {days} days (records per deployment: {parts}{more})"


def render(run: Callable[[Path, str], dict[str, Any]], report_key: str) -> None:
    """The button and the read; `run(folder, label)` is the page's report builder (stored under report_key)."""
    endpoint = os.environ[collected.ENDPOINT_ENV]
    st.caption(
        f"Azure ML stores what the deployments of {endpoint} collect in the workspace's blob storage; all "
        "deployments are read, so a blue/green switch changes nothing here. Azure keeps no traffic kind: every "
        "record counts as a patient."
    )
    if not st.button("Check drift", type="primary", key="monitor.run_azure"):
        return
    st.session_state.pop(report_key, None)
    folder = Path(tempfile.mkdtemp(prefix="risk-collected-"))
    try:
        days = _days()
        with st.spinner("Reading the collected records from Azure Blob Storage…"):
            fetched = collected.fetch_collected(collected.container_client(), endpoint, folder, days)
        st.session_state[report_key] = run(folder, _label(endpoint, days, fetched))
    except (collected.CollectedDataError, DataError, OSError, ValueError) as exc:
        st.error(f"**Cannot read the collected records:** {exc}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
