"""The dashboard in Azure Container Apps, checked offline.

What is real: the Container App document is built by deploy.azure.containerapp and checked
field by field against Microsoft's own Container Apps SDK models (azure-mgmt-appcontainers, the
ARM schema `az containerapp create --yaml` submits), so a misspelt or misplaced key fails here;
the start command and the model fetch run the project's real code. What is faked: only Azure's
control plane, in `FakeModels.download` below (it lays a real model folder out the way
azure-ai-ml's `models.download` does), because no workspace can be reached from here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboard.model_fetch import WORKSPACE_ENV, ModelFetchError, fetch_if_configured, parse_reference
from deploy.azure.config import ENV_VARS, ConfigError
from deploy.azure.containerapp import (
    HEALTH_PATH,
    TARGET_PORT,
    DashboardSettings,
    build_containerapp,
    environment_variables,
    load_dashboard_settings,
)
from model.core import artifact, exit_codes

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "deploy" / "azure" / "specs" / "dashboard-containerapp.yml"


def _unwrap(hint: Any) -> tuple[str, Any]:
    """("model", cls) / ("list", cls) / ("dict", cls) for SDK model types inside a type hint, else ("", None)."""
    from azure.mgmt.appcontainers._utils.model_base import Model

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        found = [_unwrap(a) for a in args if a is not type(None)]
        return next((f for f in found if f[1] is not None), ("", None))
    if origin is list and args and isinstance(args[0], type) and issubclass(args[0], Model):
        return "list", args[0]
    if origin is dict and len(args) == 2 and isinstance(args[1], type) and issubclass(args[1], Model):
        return "dict", args[1]
    if isinstance(hint, type) and issubclass(hint, Model):
        return "model", hint
    return "", None


def unknown_fields(model_cls: type, doc: dict[str, Any], path: str = "") -> list[str]:
    """Keys of `doc` that the Container Apps SDK model (and its nested models) does not define."""
    from azure.mgmt.appcontainers import models
    from azure.mgmt.appcontainers.models import _models

    model_cls()  # the SDK computes its field table on first construction
    fields = {rf._rest_name: attr for attr, rf in model_cls._attr_to_rest_field.items()}
    hints = typing.get_type_hints(model_cls, globalns={**vars(_models), "_models": models})
    problems = []
    for key, value in doc.items():
        if key not in fields:
            problems.append(f"{path}{key}")
            continue
        kind, inner = _unwrap(hints[fields[key]])
        if kind == "model" and isinstance(value, dict):
            problems += unknown_fields(inner, value, f"{path}{key}.")
        elif kind == "list" and isinstance(value, list):
            for i, item in enumerate(value):
                problems += unknown_fields(inner, item, f"{path}{key}[{i}].")
        elif kind == "dict" and isinstance(value, dict):
            for k, item in value.items():
                problems += unknown_fields(inner, item, f"{path}{key}[{k}].")
    return problems


def test_every_field_is_known_to_the_container_apps_sdk() -> None:
    from azure.mgmt.appcontainers.models import ContainerApp

    doc = yaml.safe_load(SPEC.read_text())
    assert doc == build_containerapp(DashboardSettings())
    assert unknown_fields(ContainerApp, doc) == []
    assert ContainerApp(doc).as_dict() == doc  # round-trips through the SDK's model unchanged


def test_the_checker_catches_a_misspelt_key() -> None:
    from azure.mgmt.appcontainers.models import ContainerApp

    doc = build_containerapp(DashboardSettings())
    doc["properties"]["configuration"]["ingress"]["stickySession"] = {"affinity": "sticky"}
    doc["properties"]["template"]["containers"][0]["probes"][0]["httpget"] = {}
    assert unknown_fields(ContainerApp, doc) == [
        "properties.configuration.ingress.stickySession",
        "properties.template.containers[0].probes[0].httpget",
    ]


def test_app_serves_streamlit_on_8501_with_websockets_and_health_probes() -> None:
    doc = build_containerapp(DashboardSettings())
    ingress = doc["properties"]["configuration"]["ingress"]
    assert (ingress["targetPort"], ingress["transport"], ingress["allowInsecure"]) == (TARGET_PORT, "auto", False)
    (container,) = doc["properties"]["template"]["containers"]
    probes = {p["type"]: p for p in container["probes"]}
    assert set(probes) == {"Startup", "Liveness", "Readiness"}
    for probe in probes.values():
        assert probe["httpGet"] == {"path": HEALTH_PATH, "port": TARGET_PORT, "scheme": "HTTP"}
    assert HEALTH_PATH == "/_stcore/health"


def test_sticky_sessions_whenever_more_than_one_replica() -> None:
    many = build_containerapp(DashboardSettings(max_replicas=3))["properties"]["configuration"]
    assert many["ingress"]["stickySessions"] == {"affinity": "sticky"}
    assert many["activeRevisionsMode"] == "Single"  # affinity needs single revision mode
    one = build_containerapp(DashboardSettings(max_replicas=1))["properties"]["configuration"]
    assert "stickySessions" not in one["ingress"]
    with pytest.raises(ConfigError, match="min_replicas"):
        DashboardSettings(min_replicas=0)


def _env(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {e["name"]: e for e in doc["properties"]["template"]["containers"][0]["env"]}


def test_aks_key_comes_from_key_vault_never_from_the_spec() -> None:
    s = DashboardSettings(endpoint_auth="key", key_vault_uri="https://kv-risk.vault.azure.net/")
    doc = build_containerapp(s)
    env = _env(doc)
    assert env["RISK_ENDPOINT_KEY"] == {"name": "RISK_ENDPOINT_KEY", "secretRef": "endpoint-key"}
    secrets = {x["name"]: x for x in doc["properties"]["configuration"]["secrets"]}
    assert secrets["endpoint-key"] == {
        "name": "endpoint-key",
        "keyVaultUrl": "https://kv-risk.vault.azure.net/secrets/covid19-endpoint-key",
        "identity": s.identity_id,
    }
    assert all("value" not in x for x in secrets.values()), "no secret value in the document"
    assert env["RISK_ENDPOINT_AUTH"]["value"] == "key"


def test_managed_endpoint_uses_the_managed_identity_and_no_key() -> None:
    doc = build_containerapp(DashboardSettings(endpoint_auth="aad"))
    env = _env(doc)
    assert env["RISK_ENDPOINT_AUTH"]["value"] == "aad" and "RISK_ENDPOINT_KEY" not in env
    assert env["AZURE_CLIENT_ID"]["value"] == DashboardSettings().identity_client_id
    assert [x["name"] for x in doc["properties"]["configuration"]["secrets"]] == [
        "streamlit-secrets",
        "microsoft-provider-authentication-secret",
    ]
    assert list(doc["identity"]["userAssignedIdentities"]) == [DashboardSettings().identity_id]


def test_sign_in_secrets_file_is_mounted_where_streamlit_reads_it() -> None:
    doc = build_containerapp(DashboardSettings())
    (container,) = doc["properties"]["template"]["containers"]
    (mount,) = container["volumeMounts"]
    (volume,) = doc["properties"]["template"]["volumes"]
    assert volume["name"] == mount["volumeName"] and volume["storageType"] == "Secret"
    (item,) = volume["secrets"]
    assert _env(doc)["STREAMLIT_SECRETS_FILES"]["value"] == f"{mount['mountPath']}/{item['path']}"
    assert item["secretRef"] in {x["name"] for x in doc["properties"]["configuration"]["secrets"]}


def test_dashboard_settings_from_toml(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('[deploy]\ntarget = "managed"\n[dashboard]\nendpoint_auth = "aad"\ncpu = 0.5\nmax_replicas = 1\n')
    s = load_dashboard_settings(f)
    assert (s.endpoint_auth, s.cpu, s.max_replicas) == ("aad", 0.5, 1)
    assert build_containerapp(s)["properties"]["template"]["containers"][0]["resources"] == {
        "cpu": 0.5,
        "memory": "1Gi",
    }
    f.write_text('[dashboard]\nendpoint_auth = "password"\n')
    with pytest.raises(ConfigError, match="endpoint_auth 'password'"):
        load_dashboard_settings(f)
    f.write_text("[dashboard]\nreplicas = 2\n")
    with pytest.raises(ConfigError, match="unknown \\[dashboard\\] setting"):
        load_dashboard_settings(f)


def test_cli_renders_the_app_yaml(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('[dashboard]\nresource_group = "rg-risk"\nmax_replicas = 3\n')
    proc = subprocess.run(
        [sys.executable, "-m", "deploy.azure", "dashboard", "--settings", str(f), "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "az containerapp update --name covid19-risk-dashboard --resource-group rg-risk --yaml" in proc.stdout
    doc = yaml.safe_load((tmp_path / "dashboard-containerapp.yml").read_text())
    assert doc["properties"]["template"]["scale"]["maxReplicas"] == 3


# --- the model tables at container start ---------------------------------------------------


class FakeModels:
    """FAKE of Azure ML's model registry (the control plane): `download` lays out a real model folder
    as azure-ai-ml's ModelOperations.download does: <download_path>/<name>/<registered folder name>/."""

    def __init__(self, source: Path, fail: Exception | None = None) -> None:
        self.source, self.fail, self.calls = source, fail, []

    def download(self, name: str, version: str, download_path: str) -> None:
        self.calls.append((name, version))
        if self.fail:
            raise self.fail
        shutil.copytree(self.source, Path(download_path) / name / "model")


def fake_client(source: Path, fail: Exception | None = None) -> Any:
    return type("FakeMLClient", (), {"models": FakeModels(source, fail)})()


def test_fetch_puts_the_registered_version_where_the_dashboard_reads(model_dir: Path, tmp_path: Path) -> None:
    dest = tmp_path / "risk-model"
    client = fake_client(model_dir)
    env = {"RISK_AZUREML_MODEL": "azureml:covid19-death-risk:7", "RISK_MODEL_DIR": str(dest)}
    assert fetch_if_configured(env, client) == dest
    assert client.models.calls == [("covid19-death-risk", "7")]
    assert artifact.load_card(dest) == artifact.load_card(model_dir)
    assert artifact.load_table(dest, "thresholds").equals(artifact.load_table(model_dir, "thresholds"))
    assert [p.name for p in tmp_path.iterdir()] == ["risk-model"], "no staging folder left behind"
    # The dashboard's own reader takes it as it takes a local folder.
    from dashboard.ui.artifacts import load_artifact

    assert load_artifact(dest).version == artifact.load_card(model_dir)["model_version"]


def test_fetch_does_nothing_unless_configured(tmp_path: Path) -> None:
    client = fake_client(tmp_path)
    assert fetch_if_configured({"RISK_MODEL_DIR": str(tmp_path)}, client) is None
    assert client.models.calls == []


@pytest.mark.parametrize("reference", ["covid19-death-risk", "covid19-death-risk@latest", "a:b:c", ""])
def test_fetch_needs_an_explicit_version(reference: str) -> None:
    if not reference:
        assert fetch_if_configured({"RISK_AZUREML_MODEL": ""}) is None
        return
    with pytest.raises(ModelFetchError, match="name:version"):
        parse_reference(reference)


def test_fetch_failure_says_what_to_check(tmp_path: Path) -> None:
    client = fake_client(tmp_path, fail=PermissionError("AuthorizationFailed"))
    env = {"RISK_AZUREML_MODEL": "covid19-death-risk:7", "RISK_MODEL_DIR": str(tmp_path / "m")}
    with pytest.raises(ModelFetchError, match="Storage Blob Data Reader on its storage account"):
        fetch_if_configured(env, client)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelFetchError, match="not a model artifact folder"):
        fetch_if_configured(env, fake_client(empty))
    with pytest.raises(ModelFetchError, match="RISK_MODEL_DIR"):
        fetch_if_configured({"RISK_AZUREML_MODEL": "covid19-death-risk:7"}, client)


def test_the_fetch_reads_the_workspace_the_container_app_sets() -> None:
    """The image has no deploy/, so dashboard.model_fetch names the variables itself: held equal here."""
    assert tuple(ENV_VARS[key] for key in ("subscription_id", "resource_group", "workspace_name")) == WORKSPACE_ENV
    assert set(WORKSPACE_ENV) <= {e["name"] for e in environment_variables(DashboardSettings())}


def test_start_command_stops_with_one_line_when_the_model_cannot_be_fetched(tmp_path: Path) -> None:
    """The real start command, without a workspace: it must not start Streamlit, and say why."""
    env = {"PATH": "/usr/bin:/bin", "RISK_AZUREML_MODEL": "covid19-death-risk:7", "RISK_MODEL_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "dashboard.start"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == exit_codes.BAD_INPUT
    assert "workspace is not" in proc.stderr and "AZURE_SUBSCRIPTION_ID" in proc.stderr
    assert "Traceback" not in proc.stderr
