"""Fetch the registered model version's folder at container start (Azure ML, managed identity).

In Azure Container Apps the dashboard has no mounted model folder. When RISK_AZUREML_MODEL names
a registered model version ("covid19-death-risk:7" or "azureml:covid19-death-risk:7"), the
container's start command (dashboard/start.py) calls `fetch_model` before Streamlit
starts: it downloads that version with azure-ai-ml into RISK_MODEL_DIR, using the Container
App's user-assigned managed identity (AZURE_CLIENT_ID), so no key or connection string is in the
image or the app's settings. The dashboard then reads the folder exactly as it reads a local
one (dashboard/ui/artifacts.py). Without RISK_AZUREML_MODEL nothing here runs.

The identity needs read access to registered models and datastores (the template's custom
"COVID-19 risk dashboard" role on the workspace) and, because the workspace storage has shared-key
access off, "Storage Blob Data Reader" on the storage account: the SDK then downloads with the
identity's own token (no datastore secret is listed). deploy/azure/infra/modules/roles.bicep assigns both.

It lives in the dashboard because it runs in the dashboard's image, which holds no deploy/ (the
Dockerfile); `python -m deploy.azure serving-model` and the rollout reuse `fetch_model` from here.
The workspace comes from the three variables the Container App sets (deploy/azure/containerapp.py),
the same names `deploy.azure.config.ENV_VARS` reads (tests/test_azure_dashboard.py holds them equal).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from model.core import artifact

MODEL_ENV = "RISK_AZUREML_MODEL"
# Workspace of the registered model: subscription, resource group, workspace name (in that order).
WORKSPACE_ENV = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME")
_REFERENCE = re.compile(r"^(?:azureml:)?([A-Za-z0-9][A-Za-z0-9_.-]{0,254}):([A-Za-z0-9_.-]+)$")


class ModelFetchError(RuntimeError):
    """The model could not be fetched; the message says what to check (never a credential)."""


def parse_reference(text: str) -> tuple[str, str]:
    """`name:version` or `azureml:name:version` -> (name, version). A version is required:
    the dashboard must show the tables of the model the endpoint serves, not whatever is latest."""
    match = _REFERENCE.match(text.strip())
    if not match:
        raise ModelFetchError(
            f"{MODEL_ENV}={text!r} is not a registered model version; write it as name:version, "
            "e.g. covid19-death-risk:7 (see `az ml model list -n covid19-death-risk`)"
        )
    return match.group(1), match.group(2)


def fetch_model(ml_client: Any, reference: str, dest: Path) -> Path:
    """Download `reference` into `dest` (replaced atomically) and return the model directory in it."""
    name, version = parse_reference(reference)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".model-fetch-", dir=dest.parent))
    try:
        try:
            ml_client.models.download(name=name, version=version, download_path=str(staging))
        except Exception as exc:  # SDK/HTTP errors; only the class and message (they hold no credential)
            raise ModelFetchError(
                f"could not download model {name}:{version} ({type(exc).__name__}: {exc}). Check that the "
                "version exists and that the app's managed identity has the dashboard role on the workspace and "
                "Storage Blob Data Reader on its storage account (deploy/azure/infra/modules/roles.bicep)."
            ) from None
        # models.download writes <download_path>/<name>/<folder name>/...; find_model_dir takes one level.
        try:
            found = artifact.find_model_dir(staging / name)
        except (artifact.ArtifactError, OSError) as exc:
            raise ModelFetchError(f"model {name}:{version} is not a model artifact folder: {exc}") from None
        if dest.exists():
            shutil.rmtree(dest)
        found.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def managed_identity_client(environ: Mapping[str, str]) -> Any:
    """MLClient for the workspace in AZURE_SUBSCRIPTION_ID / AZURE_RESOURCE_GROUP / AZUREML_WORKSPACE_NAME,
    authenticated as the managed identity AZURE_CLIENT_ID (system-assigned when unset)."""
    from azure.ai.ml import MLClient
    from azure.identity import ManagedIdentityCredential

    subscription_id, resource_group, workspace_name = workspace_from_environment(environ)
    client_id = environ.get("AZURE_CLIENT_ID") or None
    return MLClient(
        credential=ManagedIdentityCredential(client_id=client_id),
        subscription_id=subscription_id,
        resource_group_name=resource_group,
        workspace_name=workspace_name,
    )


def workspace_from_environment(environ: Mapping[str, str]) -> tuple[str, str, str]:
    """(subscription id, resource group, workspace name) from WORKSPACE_ENV; all three must be set."""
    values = tuple((environ.get(name) or "").strip() for name in WORKSPACE_ENV)
    missing = [name for name, value in zip(WORKSPACE_ENV, values, strict=True) if not value]
    if missing:
        raise ModelFetchError(
            f"{MODEL_ENV} is set but the workspace is not: {', '.join(missing)} missing. Set all of "
            f"{', '.join(WORKSPACE_ENV)} in the Container App (python -m deploy.azure dashboard writes them)."
        )
    return values[0], values[1], values[2]


def fetch_if_configured(environ: Mapping[str, str] | None = None, client: Any | None = None) -> Path | None:
    """Fetch RISK_AZUREML_MODEL into RISK_MODEL_DIR when it is set; None (nothing done) otherwise."""
    environ = os.environ if environ is None else environ
    reference = (environ.get(MODEL_ENV) or "").strip()
    if not reference:
        return None
    raw_dir = (environ.get("RISK_MODEL_DIR") or "").strip()
    if not raw_dir:
        raise ModelFetchError(f"{MODEL_ENV} is set but RISK_MODEL_DIR (where to put the model) is not")
    parse_reference(reference)  # a bad value fails before any network call
    return fetch_model(client or managed_identity_client(environ), reference, Path(raw_dir))
