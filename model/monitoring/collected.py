"""Read what the Azure ML deployments collected (Blob Storage) into the folder format `model.monitoring.monitor` reads.

In Azure the scoring script's `model_inputs` collection (model/serving/datacollect.py, AzureMonitoringSink)
goes through Azure ML's data collector into the workspace's default blob store, not into local
JSON Lines files, so the Monitoring page and `python -m model.monitor` see nothing there by
themselves. This module lists the blobs Microsoft documents for collected data
("Collect production data from models deployed for real-time inferencing"):

    modelDataCollector/<endpoint>/<deployment>/<collection>/<YYYY>/<MM>/<DD>/<HH>/<file>.jsonl

each line one event `{"specversion", "id", "type", "time", "data": [records...], "correlationid", ...}`,
and writes the records of the last `days` days, of *every* deployment of the endpoint (so a
blue/green rollout changes nothing here), as `scored-azure-<deployment>.jsonl` rows with the model
inputs, the request id (correlation id) and the UTC time. Only inputs are read: the monitor
recomputes each row's probability from the model, and Azure keeps no traffic kind, so the rows
count as live patients (probes are never collected; batch files sent through the online endpoint
would be counted too).

Access: the dashboard's managed identity with Storage Blob Data Reader on the account (the Bicep
template assigns it); `container_client` takes an explicit client for the Azure Storage emulator.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.core import schema

ROOT = "modelDataCollector"
COLLECTION = "model_inputs"
ACCOUNT_URL_ENV = "RISK_COLLECTED_ACCOUNT_URL"  # https://<account>.blob.core.windows.net
CONTAINER_ENV = "RISK_COLLECTED_CONTAINER"  # the workspaceblobstore container (azureml-blobstore-<id>)
ENDPOINT_ENV = "RISK_COLLECTED_ENDPOINT"  # the online endpoint's name
CONNECTION_ENV = "RISK_COLLECTED_CONNECTION_STRING"  # only for the Azure Storage emulator / local runs
DEFAULT_DAYS = 7
MAX_RECORDS = 5_000_000
_DEPLOYMENT = re.compile(
    r"^[A-Za-z][A-Za-z0-9-]{1,31}$"
)  # a page must not fill the replica's memory: stop reading beyond this


class CollectedDataError(RuntimeError):
    """Collected data could not be read; the message says what to check (never a credential)."""


@dataclass
class Fetched:
    """What `fetch_collected` wrote and skipped."""

    folder: Path
    blobs: int = 0
    records: int = 0
    by_deployment: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    truncated: bool = False


def configured(environ: Mapping[str, str] | None = None) -> bool:
    """True when the dashboard is told where the deployments' collected data is."""
    env = os.environ if environ is None else environ
    where = bool(env.get(ACCOUNT_URL_ENV) or env.get(CONNECTION_ENV))
    return where and bool(env.get(CONTAINER_ENV)) and bool(env.get(ENDPOINT_ENV))


def container_client(environ: Mapping[str, str] | None = None) -> Any:
    """A ContainerClient for the workspace's blob store: the managed identity (AZURE_CLIENT_ID) in Azure."""
    from azure.storage.blob import ContainerClient

    env = os.environ if environ is None else environ
    if not configured(env):
        raise CollectedDataError(
            f"set {ACCOUNT_URL_ENV}, {CONTAINER_ENV} and {ENDPOINT_ENV} (docs/azure.md, Monitoring in Azure)"
        )
    if env.get(CONNECTION_ENV):
        return ContainerClient.from_connection_string(env[CONNECTION_ENV], env[CONTAINER_ENV])
    from azure.identity import DefaultAzureCredential

    # The Container App's managed identity (AZURE_CLIENT_ID), or `az login` / GitHub's OIDC login in CI.
    credential = DefaultAzureCredential(managed_identity_client_id=env.get("AZURE_CLIENT_ID") or None)
    return ContainerClient(env[ACCOUNT_URL_ENV], env[CONTAINER_ENV], credential=credential)


def _hour_of(name: str, prefix: str) -> tuple[str, dt.datetime] | None:
    """(deployment, hour) of a collected blob's name, or None if it is not one."""
    parts = name[len(prefix) :].split("/")
    if len(parts) != 7 or parts[1] != COLLECTION or not parts[6].endswith(".jsonl"):
        return None
    if not _DEPLOYMENT.match(parts[0]):  # Azure's naming rule; anything else is not a deployment's (and is shown)
        return None
    try:
        hour = dt.datetime(int(parts[2]), int(parts[3]), int(parts[4]), int(parts[5]), tzinfo=dt.UTC)
    except ValueError:
        return None
    return parts[0], hour


def collected_blobs(client: Any, endpoint: str, since: dt.datetime) -> list[tuple[str, str]]:
    """(deployment, blob name) of every model_inputs blob of `endpoint` from the hour of `since` on."""
    prefix = f"{ROOT}/{endpoint}/"
    start = since.replace(minute=0, second=0, microsecond=0)
    found = []
    for blob in client.list_blobs(name_starts_with=prefix):
        parsed = _hour_of(blob.name, prefix)
        if parsed is not None and parsed[1] >= start:
            found.append((parsed[0], blob.name))
    return sorted(found, key=lambda item: item[1])


def _records(text: str, skipped: dict[str, int]) -> Iterable[dict[str, Any]]:
    """Rows of one blob: every record of every event, with the event's correlation id and time."""
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            data = event["data"]
        except (json.JSONDecodeError, KeyError, TypeError):
            skipped["lines that are not collected events"] = skipped.get("lines that are not collected events", 0) + 1
            continue
        request = event.get("correlationid") or event.get("id") or ""
        for index, record in enumerate(data if isinstance(data, list) else [data]):
            if isinstance(record, dict):
                inputs = {k: record.get(k) for k in schema.MODEL_INPUTS if k in record}
                yield {"request_id": request, "scored_utc": event.get("time"), "record_index": index, **inputs}


def fetch_collected(
    client: Any, endpoint: str, dest: Path, days: int = DEFAULT_DAYS, now: dt.datetime | None = None
) -> Fetched:
    """Write the endpoint's collected inputs of the last `days` days into `dest` (replaced)."""
    if days < 1:
        raise CollectedDataError(f"days must be at least 1, not {days}")
    now = now or dt.datetime.now(dt.UTC)
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("scored-azure-*.jsonl"):
        old.unlink()
    fetched = Fetched(dest)
    try:
        blobs = collected_blobs(client, endpoint, now - dt.timedelta(days=days))
        for deployment, name in blobs:
            if fetched.records >= MAX_RECORDS:
                fetched.truncated = True
                break
            text = client.download_blob(name).readall().decode("utf-8", errors="replace")
            rows = list(_records(text, fetched.skipped))
            with (dest / f"scored-azure-{deployment}.jsonl").open("a", encoding="utf-8") as handle:
                handle.writelines(json.dumps(row) + "\n" for row in rows)
            fetched.blobs += 1
            fetched.records += len(rows)
            fetched.by_deployment[deployment] = fetched.by_deployment.get(deployment, 0) + len(rows)
    except Exception as exc:  # azure-core errors: class and message only (they hold no credential)
        if isinstance(exc, CollectedDataError):
            raise
        raise CollectedDataError(
            f"could not read collected data of {endpoint} ({type(exc).__name__}: {str(exc)[:300]}). Check that "
            "the dashboard's identity has Storage Blob Data Reader on the workspace storage account"
        ) from None
    return fetched
