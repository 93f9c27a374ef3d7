"""Workspace and deployment settings, with errors that say what is missing and where to put it.

Both are pydantic-settings models. Workspace: `--workspace-config FILE` (Azure's downloaded
config.json), else the environment variables AZURE_SUBSCRIPTION_ID / AZURE_RESOURCE_GROUP /
AZUREML_WORKSPACE_NAME, else ./config.json. Deployment settings: defaults below, overridden by a
TOML settings file (see deploy/azure/settings.example.toml), overridden by CLI flags; no
environment variable changes them. A bad value is a ConfigError naming the setting, the value
and what is allowed.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from deploy.azure.batch_sizing import batch_problems
from deploy.azure.resources import check_pod_resources
from model.core.settings import SettingsError, problems, read

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
_FILE_HINT = (
    'Download it from the Azure portal (workspace overview > "Download config.json") or write '
    '{"subscription_id": "...", "resource_group": "...", "workspace_name": "..."}.'
)


class ConfigError(ValueError):
    """Missing or invalid configuration; the message says what and how to fix it."""


def _workspace_field(name: str) -> Any:
    """A workspace field: the config.json key, or (case-sensitive) its environment variable."""
    return Field(validation_alias=AliasChoices(name, ENV_VARS[name]), min_length=1)


class WorkspaceConfig(BaseSettings):
    """The Azure ML workspace: from the environment variables (ENV_VARS) or a config.json's keys."""

    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", case_sensitive=True, env_ignore_empty=True, str_strip_whitespace=True
    )

    subscription_id: str = _workspace_field("subscription_id")
    resource_group: str = _workspace_field("resource_group")
    workspace_name: str = _workspace_field("workspace_name")
    source: str = ""  # where the values came from, for messages


def load_workspace_config(
    path: Path | None = None, environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> WorkspaceConfig:
    """Resolve the workspace: explicit file, else environment variables (if any is set), else ./config.json."""
    environ = os.environ if environ is None else environ
    if path is None and any(environ.get(name, "").strip() for name in ENV_VARS.values()):
        names = ", ".join(ENV_VARS.values())
        hint = f"Set all of {names} (or unset them and use config.json)."
        return _workspace({"source": "environment variables"}, environ, "environment variables", hint)
    if path is None:
        path = (cwd or Path.cwd()) / "config.json"
        if not path.exists():
            raise ConfigError(
                "no Azure ML workspace configured: pass --workspace-config FILE, or put config.json in "
                f"{path.parent}, or set {', '.join(ENV_VARS.values())}. {_FILE_HINT}"
            )
    return _workspace({**_workspace_file(path), "source": str(path)}, None, str(path), _FILE_HINT)


def _workspace_file(path: Path) -> dict[str, Any]:
    """The JSON object in a workspace config file, or ConfigError saying what is wrong with the file."""
    if not path.is_file():
        raise ConfigError(f"workspace config file {path} does not exist. {_FILE_HINT}")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"workspace config file {path} is not valid JSON ({exc}). {_FILE_HINT}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"workspace config file {path} must hold a JSON object. {_FILE_HINT}")
    return values


def _workspace(table: dict[str, Any], environ: Mapping[str, str] | None, source: str, hint: str) -> WorkspaceConfig:
    names = ENV_VARS if environ is not None else None
    try:
        return read(WorkspaceConfig, table, environ=environ, names=names)
    except SettingsError as exc:
        raise ConfigError(f"workspace config from {source}: {exc}. {hint}") from None


class DeploySettings(BaseSettings):
    """Everything that shapes the Azure ML entities. Defaults produce the committed YAML specs.

    Built from keyword arguments only (`load_settings` layers a settings file and CLI flags): no
    environment variable changes a deployment. Validated on construction (ConfigError), immutable.
    """

    model_config = SettingsConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

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
    monitor_emails: tuple[str, ...] = ()

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError("invalid deployment settings: " + "; ".join(problems(exc, DeploySettings))) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # keyword arguments only: see the class docstring

    @field_validator("traffic_steps", "monitor_emails", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """A CLI flag gives a list as `10,50,100`."""
        return [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> DeploySettings:
        found = validate_settings(self)
        if found:
            raise ValueError("; ".join(found))
        return self

    def replace(self, **changes: Any) -> DeploySettings:
        """A copy with `changes`, validated like new settings."""
        return DeploySettings(**{**self.model_dump(), **changes})


def validate_settings(s: DeploySettings) -> list[str]:
    """Every problem with the settings, each saying what was wrong and what is allowed."""
    return [
        *_choice_problems(s),
        *_name_problems(s),
        *_scale_problems(s),
        *_auth_problems(s),
        *_resource_problems(s),
        *_canary_problems(s),
        *batch_problems(
            s.batch_output_mode,
            s.batch_max_rows_per_file,
            s.batch_mini_batch_size,
            s.batch_max_concurrency_per_instance,
            s.batch_node_memory_gib,
        ),
    ]


def _choice_problems(s: DeploySettings) -> list[str]:
    found = []
    if s.target not in TARGETS:
        found.append(f"target {s.target!r} is not one of {', '.join(TARGETS)}")
    if s.auth_mode not in AUTH_MODES:
        found.append(f"auth_mode {s.auth_mode!r} is not one of {', '.join(AUTH_MODES)}")
    return found


def _name_problems(s: DeploySettings) -> list[str]:
    checks = {
        "endpoint_name": _ENDPOINT_NAME,
        "batch_endpoint_name": _ENDPOINT_NAME,
        "deployment_name": _DEPLOYMENT_NAME,
        "batch_deployment_name": _DEPLOYMENT_NAME,
    }
    return [
        f"{name} {getattr(s, name)!r} must be 3-32 letters, digits or hyphens, starting with a letter"
        for name, pattern in checks.items()
        if not pattern.match(getattr(s, name))
    ]


def _scale_problems(s: DeploySettings) -> list[str]:
    found = []
    if not 1 <= s.min_instances <= s.max_instances:
        found.append(f"need 1 <= min_instances ({s.min_instances}) <= max_instances ({s.max_instances})")
    if not 1 <= s.target_utilization_percentage <= 100:
        found.append("target_utilization_percentage must be 1..100")
    steps = list(s.traffic_steps)
    if not steps or steps[-1] != 100 or any(not 0 <= a < b <= 100 for a, b in zip([0, *steps], steps, strict=False)):
        found.append(f"traffic_steps {steps} must increase strictly within 1..100 and end with 100")
    for name in ("instance_count", "request_timeout_ms", "max_concurrent_requests_per_instance", "canary_requests"):
        if getattr(s, name) < 1:
            found.append(f"{name} must be at least 1")
    return found


def _resource_problems(s: DeploySettings) -> list[str]:
    if s.target != "kubernetes":
        return []
    return check_pod_resources(
        s.instance_type,
        s.cpu_request,
        s.memory_request,
        s.cpu_limit,
        s.memory_limit,
        workers=s.max_concurrent_requests_per_instance,
    )


def _canary_problems(s: DeploySettings) -> list[str]:
    if s.canary_wait_s < 0 or not 0 <= s.canary_max_error_rate_increase < 1 or s.canary_max_latency_ratio < 1:
        return [
            "canary settings: canary_wait_s >= 0, 0 <= canary_max_error_rate_increase < 1, "
            "canary_max_latency_ratio >= 1"
        ]
    return []


def _auth_problems(s: DeploySettings) -> list[str]:
    # Azure ML: Kubernetes online endpoints support key and aml_token; aad_token is for managed ones only.
    if s.target == "kubernetes" and s.auth_mode == "aad_token":
        return [
            "auth_mode 'aad_token' works only with managed online endpoints; a Kubernetes (AKS) endpoint "
            "accepts 'key' or 'aml_token'. Set auth_mode = \"key\" (the dashboard reads the key from "
            'Key Vault, see docs/azure.md) or target = "managed"'
        ]
    return []


def load_settings(path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> DeploySettings:
    """Defaults, then the TOML file's [deploy] table (if a path is given), then overrides (CLI flags; None = unset)."""
    table = _settings_table(path) if path is not None else {}
    try:
        return read(DeploySettings, dict(overrides or {}), table)
    except ConfigError as exc:
        where = f"settings file {path} and command-line flags" if path is not None else "command-line flags"
        raise ConfigError(f"{where}: {exc}") from None


def _settings_table(path: Path) -> dict[str, Any]:
    """The file's [deploy] table, or its top-level keys but [dashboard] (read by deploy.azure.containerapp)."""
    if not path.is_file():
        raise ConfigError(f"settings file {path} does not exist; copy deploy/azure/settings.example.toml and edit it")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from None
    table = data["deploy"] if "deploy" in data else {k: v for k, v in data.items() if k != "dashboard"}
    if not isinstance(table, dict):
        raise ConfigError(f"settings file {path}: [deploy] must be a table")
    return table
