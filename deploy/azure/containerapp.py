"""The dashboard in Azure Container Apps: the app's YAML for `az containerapp update --yaml`.

Why Container Apps (docs/azure.md has the comparison with App Service): HTTP ingress that
carries WebSockets (Streamlit's only transport) with no switch to forget, cookie-based session
affinity for more than one replica, Key Vault references resolved with a managed identity,
health probes on any path, per-second billing and scale rules, from the same image.

Shape of the app:
* ingress on target port 8501, transport auto (HTTP/1.1 upgrade to WebSocket), HTTPS only;
  sticky sessions whenever max_replicas > 1 (a Streamlit session lives in one replica's memory;
  affinity needs single revision mode);
* liveness/readiness/startup probes on /_stcore/health (startup allows for the model download);
* a user-assigned managed identity that pulls the image from the registry, reads Key Vault
  secrets, downloads the registered model version (RISK_AZUREML_MODEL, dashboard.model_fetch)
  and, for a managed online endpoint, gets Entra ID tokens to call it (RISK_ENDPOINT_AUTH=aad);
* for an AKS endpoint (key auth) the key is a Key Vault secret exposed as a Container Apps
  secret and the RISK_ENDPOINT_KEY variable (secretRef) - never in the image or the YAML;
* the Streamlit secrets file holding `[auth]` (Entra ID sign-in) is a Key Vault secret mounted
  as a file and named by STREAMLIT_SECRETS_FILES;
* the app itself, its identity, roles and Easy Auth in front of it are created by the Bicep
  template (deploy/azure/infra); this YAML sets image, model and endpoint on that app and keeps
  Easy Auth's client-secret reference.

The committed spec (deploy/azure/specs/dashboard-containerapp.yml) is rendered from the
defaults below with <placeholders>; `python -m deploy.azure dashboard --settings FILE` renders
one with real values from the file's [dashboard] table.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.azure.config import ConfigError
from model.monitoring import collected

TARGET_PORT = 8501
HEALTH_PATH = "/_stcore/health"
SECRETS_MOUNT = "/mnt/streamlit-secrets"
ENDPOINT_KEY_SECRET = "endpoint-key"  # Container Apps secret names: lower case letters, digits, '-'
STREAMLIT_SECRETS_SECRET = "streamlit-secrets"
# Container Apps' built-in authentication (Easy Auth, set up by deploy/azure/infra/modules/dashboard.bicep)
# reads the Entra client secret from this app secret; the app YAML keeps it so an update does not drop it.
EASY_AUTH_SECRET = "microsoft-provider-authentication-secret"
# Container Apps consumption profile: allowed cpu/memory pairs are 0.25 vCPU steps with 2 GiB per vCPU.
_CPU_MEMORY = {0.5: "1Gi", 0.75: "1.5Gi", 1.0: "2Gi", 1.25: "2.5Gi", 1.5: "3Gi", 1.75: "3.5Gi", 2.0: "4Gi"}


@dataclass(frozen=True)
class DashboardSettings:
    """Everything that shapes the dashboard's Container App; defaults render the committed spec."""

    app_name: str = "covid19-risk-dashboard"
    location: str = "<region, e.g. westeurope>"
    environment_id: str = "<resource ID of the Container Apps environment>"
    image: str = "<registry>.azurecr.io/covid-risk-dashboard:<tag>"
    registry_server: str = "<registry>.azurecr.io"
    identity_id: str = "<resource ID of the user-assigned managed identity>"
    identity_client_id: str = "<client ID of that identity>"
    key_vault_uri: str = "https://<key vault name>.vault.azure.net"
    subscription_id: str = "<subscription ID>"
    resource_group: str = "<resource group>"
    workspace_name: str = "<Azure ML workspace>"
    model: str = "covid19-death-risk:<version the endpoint serves>"
    endpoint_url: str = "https://<AKS endpoint host>/api/v1/endpoint/covid19-death-risk/score"
    endpoint_auth: str = "key"  # "key" (AKS endpoint, key from Key Vault) or "aad" (managed endpoint)
    endpoint_key_secret: str = "covid19-endpoint-key"  # Key Vault secret name (key auth only)
    streamlit_secrets_secret: str = "covid19-dashboard-streamlit-secrets"  # Key Vault secret: secrets.toml
    auth_client_secret_secret: str = "covid19-dashboard-auth-client-secret"  # Key Vault secret: Easy Auth's
    # Where the deployments' collected data is (Monitoring page, model.monitoring.collected): the workspace's
    # storage account and its workspaceblobstore container (az ml datastore show -n workspaceblobstore).
    collected_account_url: str = "https://<workspace storage account>.blob.core.windows.net"
    collected_container: str = "<workspaceblobstore container, azureml-blobstore-...>"
    endpoint_name: str = "covid19-death-risk"
    cpu: float = 1.0
    min_replicas: int = 1
    max_replicas: int = 2

    def __post_init__(self) -> None:
        problems = []
        if self.endpoint_auth not in ("key", "aad"):
            problems.append(f"endpoint_auth {self.endpoint_auth!r} must be 'key' (AKS) or 'aad' (managed endpoint)")
        if self.cpu not in _CPU_MEMORY:
            problems.append(f"cpu {self.cpu} is not a Container Apps size; use one of {sorted(_CPU_MEMORY)}")
        if not 1 <= self.min_replicas <= self.max_replicas:
            # min 0 would scale to zero and drop every open Streamlit session when idle.
            problems.append(f"need 1 <= min_replicas ({self.min_replicas}) <= max_replicas ({self.max_replicas})")
        if problems:
            raise ConfigError("invalid dashboard settings: " + "; ".join(problems))


def load_dashboard_settings(path: Path | None) -> DashboardSettings:
    """Defaults, overridden by the [dashboard] table of the TOML settings file (unknown keys rejected)."""
    if path is None:
        return DashboardSettings()
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("dashboard", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"settings file {path}: {exc}") from None
    known = {f.name: f.type for f in dataclasses.fields(DashboardSettings)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"settings file {path}: unknown [dashboard] setting(s) {', '.join(unknown)}")
    # TOML values are untyped until DashboardSettings checks them (an int cpu such as 1 becomes 1.0).
    values: dict[str, Any] = {k: float(v) if known[k] == "float" else v for k, v in table.items()}
    return DashboardSettings(**values)


def _probe(kind: str, **timing: int) -> dict[str, Any]:
    return {"type": kind, "httpGet": {"path": HEALTH_PATH, "port": TARGET_PORT, "scheme": "HTTP"}, **timing}


def _kv_secret(s: DashboardSettings, name: str, vault_secret: str) -> dict[str, str]:
    # A versionless Key Vault URL always names the latest version, but a running replica keeps the value
    # it started with: after rotating a secret, restart the revision (`az containerapp revision restart`,
    # docs/azure.md "Rotate the endpoint key") so the replicas read the new one.
    return {
        "name": name,
        "keyVaultUrl": f"{s.key_vault_uri.rstrip('/')}/secrets/{vault_secret}",
        "identity": s.identity_id,
    }


def environment_variables(s: DashboardSettings) -> list[dict[str, str]]:
    """The container's environment: endpoint, model, workspace, identity; secrets only by reference."""
    env = [
        {"name": "RISK_ENDPOINT_URL", "value": s.endpoint_url},
        {"name": "RISK_ENDPOINT_AUTH", "value": s.endpoint_auth},
        {"name": "RISK_ENDPOINT_TIMEOUT", "value": "10"},
        {"name": "RISK_AZUREML_MODEL", "value": s.model},
        {"name": "RISK_MODEL_DIR", "value": "/tmp/risk-model"},
        {"name": "AZURE_SUBSCRIPTION_ID", "value": s.subscription_id},
        {"name": "AZURE_RESOURCE_GROUP", "value": s.resource_group},
        {"name": "AZUREML_WORKSPACE_NAME", "value": s.workspace_name},
        {"name": "AZURE_CLIENT_ID", "value": s.identity_client_id},  # which managed identity to use
        {"name": "STREAMLIT_SECRETS_FILES", "value": f"{SECRETS_MOUNT}/secrets.toml"},
        {"name": collected.ACCOUNT_URL_ENV, "value": s.collected_account_url},
        {"name": collected.CONTAINER_ENV, "value": s.collected_container},
        {"name": collected.ENDPOINT_ENV, "value": s.endpoint_name},
    ]
    if s.endpoint_auth == "key":
        env.insert(2, {"name": "RISK_ENDPOINT_KEY", "secretRef": ENDPOINT_KEY_SECRET})
    return env


def build_containerapp(s: DashboardSettings) -> dict[str, Any]:
    """The Container App resource as `az containerapp update --yaml` takes it (ARM property names)."""
    secrets = [
        _kv_secret(s, STREAMLIT_SECRETS_SECRET, s.streamlit_secrets_secret),
        _kv_secret(s, EASY_AUTH_SECRET, s.auth_client_secret_secret),
    ]
    if s.endpoint_auth == "key":
        secrets.insert(0, _kv_secret(s, ENDPOINT_KEY_SECRET, s.endpoint_key_secret))
    ingress: dict[str, Any] = {
        "external": True,
        "targetPort": TARGET_PORT,
        "transport": "auto",  # HTTP/1.1 with WebSocket upgrade (Streamlit's /_stcore/stream)
        "allowInsecure": False,
    }
    if s.max_replicas > 1:
        ingress["stickySessions"] = {"affinity": "sticky"}
    container = {
        "name": "dashboard",
        "image": s.image,
        "resources": {"cpu": s.cpu, "memory": _CPU_MEMORY[s.cpu]},
        "env": environment_variables(s),
        "probes": [
            # Startup allows up to 60 + 10 x 10 s for the model download before liveness applies.
            _probe("Startup", initialDelaySeconds=10, periodSeconds=10, timeoutSeconds=5, failureThreshold=10),
            _probe("Liveness", periodSeconds=30, timeoutSeconds=5, failureThreshold=3),
            _probe("Readiness", periodSeconds=10, timeoutSeconds=5, failureThreshold=3),
        ],
        "volumeMounts": [{"volumeName": "streamlit-secrets", "mountPath": SECRETS_MOUNT}],
    }
    return {
        "location": s.location,
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {s.identity_id: {}}},
        "properties": {
            "managedEnvironmentId": s.environment_id,
            "configuration": {
                "activeRevisionsMode": "Single",  # sticky sessions need it
                "ingress": ingress,
                "registries": [{"server": s.registry_server, "identity": s.identity_id}],
                "secrets": secrets,
            },
            "template": {
                "containers": [container],
                "scale": {
                    "minReplicas": s.min_replicas,
                    "maxReplicas": s.max_replicas,
                    "rules": [{"name": "http", "http": {"metadata": {"concurrentRequests": "50"}}}],
                },
                "volumes": [
                    {
                        "name": "streamlit-secrets",
                        "storageType": "Secret",
                        "secrets": [{"secretRef": STREAMLIT_SECRETS_SECRET, "path": "secrets.toml"}],
                    }
                ],
            },
        },
    }


def az_create_command(s: DashboardSettings, yaml_file: str) -> str:
    """The command that applies the YAML: an update, since the template (deploy/azure/infra) created the app."""
    return f"az containerapp update --name {s.app_name} --resource-group {s.resource_group} --yaml {yaml_file}"
