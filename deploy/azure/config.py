"""Workspace and deployment settings, with errors that say what is missing and where to put it.

Workspace: `--workspace-config FILE` (Azure's downloaded config.json), else the environment
variables AZURE_SUBSCRIPTION_ID / AZURE_RESOURCE_GROUP / AZUREML_WORKSPACE_NAME, else
./config.json. Deployment settings: defaults below, overridden by a TOML settings file
(see deploy/azure/settings.example.toml), overridden by CLI flags.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from deploy.azure.batch_sizing import batch_problems
from deploy.azure.resources import check_pod_resources

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_VARS = {
    "subscription_id": "AZURE_SUBSCRIPTION_ID",
    "resource_group": "AZURE_RESOURCE_GROUP",
    "workspace_name": "AZUREML_WORKSPACE_NAME",
}
AUTH_MODES = ("key", "aml_token", "aad_token")
TARGETS = ("kubernetes", "managed")
# Azure ML endpoint names: 3-32 chars, start with a letter, letters/digits/hyphens.
_ENDPOINT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")
# Deployment names: 3-32 chars, letters/digits/hyphens, start with a letter.
_DEPLOYMENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")


class ConfigError(ValueError):
    """Missing or invalid configuration; the message says what and how to fix it."""


@dataclass(frozen=True)
class WorkspaceConfig:
    subscription_id: str
    resource_group: str
    workspace_name: str
    source: str  # where the values came from, for messages


def _workspace_from_mapping(
    values: Mapping[str, Any], source: str, hint: str, names: Mapping[str, str] | None = None
) -> WorkspaceConfig:
    missing = [(names or {}).get(k, k) for k in ENV_VARS if not str(values.get(k) or "").strip()]
    if missing:
        raise ConfigError(f"workspace config from {source} is missing {', '.join(missing)}. {hint}")
    return WorkspaceConfig(
        subscription_id=str(values["subscription_id"]).strip(),
        resource_group=str(values["resource_group"]).strip(),
        workspace_name=str(values["workspace_name"]).strip(),
        source=source,
    )


def load_workspace_config(
    path: Path | None = None, environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> WorkspaceConfig:
    """Resolve the workspace: explicit file, else environment variables, else ./config.json."""
    environ = os.environ if environ is None else environ
    file_hint = (
        'Download it from the Azure portal (workspace overview > "Download config.json") or write '
        '{"subscription_id": "...", "resource_group": "...", "workspace_name": "..."}.'
    )
    if path is None:
        env_values = {k: environ.get(v, "") for k, v in ENV_VARS.items()}
        if any(env_values.values()):
            names = ", ".join(f"{v}" for v in ENV_VARS.values())
            return _workspace_from_mapping(
                env_values,
                "environment variables",
                f"Set all of {names} (or unset them and use config.json).",
                ENV_VARS,
            )
        path = (cwd or Path.cwd()) / "config.json"
        if not path.exists():
            raise ConfigError(
                "no Azure ML workspace configured: pass --workspace-config FILE, or put config.json in "
                f"{path.parent}, or set {', '.join(ENV_VARS.values())}. {file_hint}"
            )
    if not path.is_file():
        raise ConfigError(f"workspace config file {path} does not exist. {file_hint}")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"workspace config file {path} is not valid JSON ({exc}). {file_hint}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"workspace config file {path} must hold a JSON object. {file_hint}")
    return _workspace_from_mapping(values, str(path), file_hint)


@dataclass(frozen=True)
class DeploySettings:
    """Everything that shapes the Azure ML entities. Defaults produce the committed YAML specs."""

    target: str = "kubernetes"
    endpoint_name: str = "covid19-death-risk"
    deployment_name: str = "blue"
    model_name: str = "covid19-death-risk"
    auth_mode: str = "key"
    # Kubernetes (attached AKS with the Azure ML extension). The limits must stay below the
    # instance type's (defaultinstancetype: cpu 2, memory 2Gi); see deploy.azure.resources.
    compute: str = "aks-inference"
    instance_type: str = "defaultinstancetype"
    cpu_request: str = "500m"
    memory_request: str = "1Gi"
    cpu_limit: str = "1"
    memory_limit: str = "1536Mi"
    min_instances: int = 1
    max_instances: int = 3
    target_utilization_percentage: int = 70
    # Managed online endpoint alternative
    managed_instance_type: str = "Standard_DS3_v2"
    instance_count: int = 1
    # Serving behaviour (both targets). The deployment runs one azmlinfsrv worker per concurrent
    # request (WORKER_COUNT), see deploy.azure.entities.deployment_environment_variables.
    request_timeout_ms: int = 5000
    max_concurrent_requests_per_instance: int = 4
    max_queue_wait_ms: int = 1000
    probe_initial_delay_s: int = 20
    probe_period_s: int = 10
    probe_timeout_s: int = 5
    probe_failure_threshold: int = 3
    collect_data: bool = True
    # Blue/green rollout: traffic percentages for the new deployment, last must be 100.
    traffic_steps: tuple[int, ...] = (10, 50, 100)
    # Canary check between steps: wait, then probe new and old deployments (pinned by header).
    canary_wait_s: int = 300
    canary_requests: int = 40
    canary_max_error_rate_increase: float = 0.01
    canary_max_latency_ratio: float = 1.5
    # After promotion the previous deployment is deleted (as Microsoft's safe-rollout script does)
    # unless this is true; a kept slot at 0% still bills for its pods/instances.
    keep_previous_deployment: bool = False
    # Training job, batch endpoint and monitoring
    cluster: str = "cpu-cluster"
    experiment_name: str = "covid19-death-risk"
    training_data: str = "azureml:cdc-case-surveillance@latest"
    batch_endpoint_name: str = "covid19-death-risk-batch"
    batch_deployment_name: str = "lookup-v1"
    # files: one Parquet per input file (output_action summary_only); rows: every row returned to
    # Azure's predictions.csv (append_row), only for small inputs. See deploy.azure.batch_sizing.
    batch_output_mode: str = "files"
    batch_max_rows_per_file: int = 110_000_000
    batch_mini_batch_size: int = 1
    batch_max_concurrency_per_instance: int = 2
    batch_node_memory_gib: float = 14.0
    monitor_name: str = "covid19-death-risk-monitor"
    monitor_reference_name: str = "covid19-training-reference"
    monitor_prediction_reference_name: str = "covid19-prediction-reference"
    # Version of both reference assets in the committed spec; `monitor` and rollouts register new
    # versions from the model the deployment serves and use those (deploy.azure.monitoring).
    monitor_reference_version: str = "1"
    monitor_spark_instance_type: str = "standard_e4s_v3"
    monitor_emails: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        problems = validate_settings(self)
        if problems:
            raise ConfigError("invalid deployment settings: " + "; ".join(problems))

    def replace(self, **changes: Any) -> DeploySettings:
        return dataclasses.replace(self, **changes)


def validate_settings(s: DeploySettings) -> list[str]:
    """Every problem with the settings, each saying what was wrong and what is allowed."""
    problems: list[str] = []
    if s.target not in TARGETS:
        problems.append(f"target {s.target!r} is not one of {', '.join(TARGETS)}")
    if s.auth_mode not in AUTH_MODES:
        problems.append(f"auth_mode {s.auth_mode!r} is not one of {', '.join(AUTH_MODES)}")
    for name in ("endpoint_name", "batch_endpoint_name"):
        if not _ENDPOINT_NAME.match(getattr(s, name)):
            problems.append(
                f"{name} {getattr(s, name)!r} must be 3-32 letters, digits or hyphens, starting with a letter"
            )
    for name in ("deployment_name", "batch_deployment_name"):
        if not _DEPLOYMENT_NAME.match(getattr(s, name)):
            problems.append(
                f"{name} {getattr(s, name)!r} must be 3-32 letters, digits or hyphens, starting with a letter"
            )
    if not 1 <= s.min_instances <= s.max_instances:
        problems.append(f"need 1 <= min_instances ({s.min_instances}) <= max_instances ({s.max_instances})")
    if not 1 <= s.target_utilization_percentage <= 100:
        problems.append("target_utilization_percentage must be 1..100")
    steps = list(s.traffic_steps)
    if not steps or steps[-1] != 100 or any(not 0 <= a < b <= 100 for a, b in zip([0, *steps], steps, strict=False)):
        problems.append(f"traffic_steps {steps} must increase strictly within 1..100 and end with 100")
    for name in ("instance_count", "request_timeout_ms", "max_concurrent_requests_per_instance", "canary_requests"):
        if getattr(s, name) < 1:
            problems.append(f"{name} must be at least 1")
    problems += _auth_problems(s)
    if s.target == "kubernetes":
        problems += check_pod_resources(
            s.instance_type,
            s.cpu_request,
            s.memory_request,
            s.cpu_limit,
            s.memory_limit,
            workers=s.max_concurrent_requests_per_instance,
        )
    if s.canary_wait_s < 0 or not 0 <= s.canary_max_error_rate_increase < 1 or s.canary_max_latency_ratio < 1:
        problems.append(
            "canary settings: canary_wait_s >= 0, 0 <= canary_max_error_rate_increase < 1, "
            "canary_max_latency_ratio >= 1"
        )
    problems += batch_problems(
        s.batch_output_mode,
        s.batch_max_rows_per_file,
        s.batch_mini_batch_size,
        s.batch_max_concurrency_per_instance,
        s.batch_node_memory_gib,
    )
    return problems


def _auth_problems(s: DeploySettings) -> list[str]:
    # Azure ML: Kubernetes online endpoints support key and aml_token; aad_token is for managed ones only.
    if s.target == "kubernetes" and s.auth_mode == "aad_token":
        return [
            "auth_mode 'aad_token' works only with managed online endpoints; a Kubernetes (AKS) endpoint "
            "accepts 'key' or 'aml_token'. Set auth_mode = \"key\" (the dashboard reads the key from "
            'Key Vault, see docs/azure.md) or target = "managed"'
        ]
    return []


_FIELD_TYPES = {f.name: f.type for f in fields(DeploySettings)}


def _coerce(name: str, value: Any, source: str) -> Any:
    """Convert a TOML/CLI value to the field's type, or say what was expected."""
    kind = str(_FIELD_TYPES[name])
    try:
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "1", "yes"):
                return True
            if str(value).lower() in ("false", "0", "no"):
                return False
            raise ValueError
        if kind.startswith("tuple"):
            items = value.split(",") if isinstance(value, str) else list(value)
            items = [i.strip() if isinstance(i, str) else i for i in items if i != ""]
            return tuple(int(i) for i in items) if "int" in kind else tuple(str(i) for i in items)
        if isinstance(value, dict | list):
            raise ValueError
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {name} = {value!r} is not a valid {kind}") from None


def load_settings(path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> DeploySettings:
    """Defaults, then the TOML file's [deploy] table (if a path is given), then overrides (CLI flags)."""
    values: dict[str, Any] = {}
    if path is not None:
        if not path.is_file():
            raise ConfigError(
                f"settings file {path} does not exist; copy deploy/azure/settings.example.toml and edit it"
            )
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from None
        # [deploy] holds these settings; [dashboard] is read by deploy.azure.containerapp.
        table = data["deploy"] if "deploy" in data else {k: v for k, v in data.items() if k != "dashboard"}
        if not isinstance(table, dict):
            raise ConfigError(f"settings file {path}: [deploy] must be a table")
        unknown = sorted(set(table) - set(_FIELD_TYPES))
        if unknown:
            raise ConfigError(
                f"settings file {path}: unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(_FIELD_TYPES)}"
            )
        values.update({k: _coerce(k, v, str(path)) for k, v in table.items()})
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = _coerce(key, value, "command line")
    return DeploySettings(**values)
