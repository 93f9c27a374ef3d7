"""The Bicep templates under deploy/azure/infra, checked offline (issue 24: infrastructure as code).

Real: every template is parsed by pycep-parser (a Bicep grammar); the assertions read the parsed
documents, so a renamed property or a dropped role assignment fails here; checkov (Prisma Cloud's
static analysis, in its own virtual environment because its pins conflict with this project's, see
the Makefile) runs over the whole folder, and every `//checkov:skip` in the templates must name a
check that checkov really reports and say why. Not checked: that Azure Resource Manager accepts them
(no `az bicep build` or what-if here: both need the Bicep CLI or a subscription).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

from deploy.azure.config import DeploySettings
from deploy.azure.containerapp import DashboardSettings

REPO = Path(__file__).resolve().parent.parent
INFRA = REPO / "deploy" / "azure" / "infra"
TEMPLATES = sorted(INFRA.rglob("*.bicep"))
CHECKOV = Path(os.environ.get("CHECKOV_BIN") or REPO / ".tools" / "checkov" / "bin" / "checkov")
# Built-in role definition IDs (the same in every tenant).
KEY_VAULT_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
AZUREML_DATA_SCIENTIST = "f6c7c914-8db3-469d-8ca1-694a8f32e121"


def parse(name: str) -> dict[str, Any]:
    return BicepParser().parse(text=(INFRA / name).read_text(encoding="utf-8"))


def _config(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's body; a conditional resource (`= if (...) {...}`) nests it one level down."""
    config = resource["config"]
    return config["config"] if "condition" in config else config


def _role_of(assignment: dict[str, Any], variables: dict[str, Any]) -> str:
    """The role definition an assignment grants: a built-in GUID (through its variable) or a resource name."""
    definition = _config(assignment)["properties"]["roleDefinitionId"]
    if isinstance(definition, dict) and "function" in definition:
        variable = definition["function"]["parameters"]["resource_name_1"]
        return variables[variable]["value"]
    if isinstance(definition, dict) and "operator" in definition:  # <resource>.id of a custom role
        operands = definition["operator"]["operands"]
        return f"{operands['operand_1']}.{operands['operand_2']}"
    return str(definition)


def assignments(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(principal parameter, role, scope resource) of every role assignment in a template."""
    variables = doc.get("variables", {})
    found = []
    for resource in doc["resources"].values():
        if resource["type"] == "Microsoft.Authorization/roleAssignments":
            config = _config(resource)
            found.append((config["properties"]["principalId"], _role_of(resource, variables), config["scope"]))
    return found


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(INFRA)))
def test_every_template_parses(template: Path) -> None:
    doc = BicepParser().parse(text=template.read_text(encoding="utf-8"))
    assert doc["resources"] or doc.get("modules")


def test_the_parser_rejects_a_broken_template() -> None:
    broken = (INFRA / "modules" / "appenv.bicep").read_text().replace("properties: {", "properties: {{", 1)
    with pytest.raises(Exception, match="Unexpected"):
        BicepParser().parse(text=broken)


def test_main_wires_every_module_and_names_what_the_python_side_uses() -> None:
    main = parse("main.bicep")
    assert {m["detail"]["path"] for m in main["modules"].values()} == {
        f"modules/{p.name}" for p in (INFRA / "modules").glob("*.bicep")
    }
    secrets = main["variables"]["secretNames"]["value"]
    dashboard = DashboardSettings()
    assert secrets == {
        "endpointKey": dashboard.endpoint_key_secret,
        "streamlitSecrets": dashboard.streamlit_secrets_secret,
        "authClientSecret": dashboard.auth_client_secret_secret,
    }
    assert main["variables"]["dashboardAppName"]["value"] == dashboard.app_name
    secure = {n for n, p in main["parameters"].items() if any(d["type"] == "secure" for d in p["decorators"])}
    assert secure == {"scoringTlsCertPem", "scoringTlsKeyPem", "dashboardClientSecret", "streamlitCookieSecret"}


def test_workspace_storage_and_vault_settings() -> None:
    doc = parse("modules/workspace.bicep")
    storage = doc["resources"]["storage"]["config"]["properties"]
    assert storage["allowSharedKeyAccess"] is False and storage["allowBlobPublicAccess"] is False
    vault = doc["resources"]["vault"]["config"]["properties"]
    assert vault["enableRbacAuthorization"] is True and vault["enablePurgeProtection"] is True
    workspace = doc["resources"]["workspace"]["config"]["properties"]
    assert workspace["systemDatastoresAuthMode"] == "identity"  # matches storage without shared keys
    cluster = doc["resources"]["cluster"]["config"]
    assert cluster["name"] == DeploySettings().cluster  # the batch deployment and training job use it
    assert cluster["properties"]["properties"]["scaleSettings"]["minNodeCount"] == 0


def test_aks_extension_has_the_settings_the_service_requires() -> None:
    doc = parse("modules/aks.bicep")
    assert {"type": "min_value", "argument": 3} in doc["parameters"]["nodeCount"]["decorators"]
    assert {"type": "min_value", "argument": 3} in parse("main.bicep")["parameters"]["aksNodeCount"]["decorators"]
    assert parse("main.bicep")["parameters"]["aksNodeCount"]["default"] == 3
    extension = doc["resources"]["extension"]["config"]["properties"]
    settings = extension["configurationSettings"]
    assert settings["inferenceRouterHA"] == "True" and settings["allowInsecureConnections"] == "False"
    assert settings["sslCname"] == "scoringHostName" and settings["enableInference"] == "True"
    protected = extension["configurationProtectedSettings"]
    assert {k.strip("'") for k in protected} == {"scoringFe.sslCert", "scoringFe.sslKey"}
    attached = doc["resources"]["attached"]["config"]
    assert attached["name"] == DeploySettings().compute
    assert attached["properties"]["computeType"] == "Kubernetes"
    assert doc["resources"]["cluster"]["config"]["properties"]["addonProfiles"]["kubeDashboard"]["enabled"] is False


def test_dashboard_identity_has_least_privilege() -> None:
    """Issue 24 finding 7: no AzureML Data Scientist; model read + score + blob read + its own secrets."""
    doc = parse("modules/roles.bicep")
    dashboard = [(role, scope) for principal, role, scope in assignments(doc) if principal == "dashboardPrincipalId"]
    assert sorted(dashboard) == sorted(
        [
            ("dashboardRole.id", "workspace"),
            (STORAGE_BLOB_DATA_READER, "storage"),
            (KEY_VAULT_SECRETS_USER, "endpointKey"),
            (KEY_VAULT_SECRETS_USER, "streamlitSecrets"),
            (KEY_VAULT_SECRETS_USER, "authClientSecret"),
            (ACR_PULL, "registry"),
        ]
    )
    (permissions,) = doc["resources"]["dashboardRole"]["config"]["properties"]["permissions"]
    assert permissions["dataActions"] == ["Microsoft.MachineLearningServices/workspaces/onlineEndpoints/score/action"]
    for action in permissions["actions"]:
        assert action.endswith("/read"), f"{action}: the dashboard's role must only read"
    assert all(role != AZUREML_DATA_SCIENTIST for principal, role, _ in assignments(doc) if "dashboard" in principal)
    assert ("ciPrincipalId", "azureMlDataScientist", "workspace") not in assignments(doc)  # resolved to the GUID
    assert ("ciPrincipalId", AZUREML_DATA_SCIENTIST, "workspace") in assignments(doc)  # CI deploys; it is not public


def test_operator_can_write_the_endpoint_key() -> None:
    """Issue 24 finding 1: Owner/Contributor have no Key Vault data actions on an RBAC vault."""
    doc = parse("modules/roles.bicep")
    assert ("operatorPrincipalId", KEY_VAULT_SECRETS_OFFICER, "vault") in assignments(doc)


def test_dashboard_is_behind_easy_auth_and_reads_secrets_from_key_vault() -> None:
    doc = parse("modules/dashboard.bicep")
    auth = doc["resources"]["auth"]["config"]
    assert auth["name"] == "current" and auth["properties"]["platform"]["enabled"] is True
    assert auth["properties"]["globalValidation"]["unauthenticatedClientAction"] == "RedirectToLoginPage"
    assert "excludedPaths" not in auth["properties"]["globalValidation"]  # /_stcore and /media stay guarded
    provider = auth["properties"]["identityProviders"]["azureActiveDirectory"]["registration"]
    app = doc["resources"]["app"]["config"]["properties"]["configuration"]
    secret_names = {s["name"] for s in app["secrets"]}
    assert provider["clientSecretSettingName"] == "authSecret"
    assert doc["variables"]["authSecret"]["value"] in {"microsoft-provider-authentication-secret"}
    assert all("keyVaultUrl" in s and "value" not in s for s in app["secrets"])
    assert {"endpoint-key", "streamlit-secrets", "authSecret"} == secret_names
    assert app["ingress"]["allowInsecure"] is False and app["ingress"]["targetPort"] == 8501


# --- checkov ------------------------------------------------------------------------------------


def _checkov() -> dict[str, Any]:
    if not CHECKOV.is_file():
        if os.environ.get("REQUIRE_STATIC_TOOLS") == "1":
            pytest.fail(f"{CHECKOV} is missing: `make tools` installs checkov into .tools/checkov")
        pytest.skip(f"checkov not installed at {CHECKOV} (`make tools`); CI runs it (REQUIRE_STATIC_TOOLS=1)")
    proc = subprocess.run(
        [str(CHECKOV), "-d", str(INFRA), "--framework", "bicep", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    report = json.loads(proc.stdout)
    return report[0] if isinstance(report, list) else report


def test_checkov_passes_and_every_skip_is_justified_and_used() -> None:
    report = _checkov()
    results = report["results"]
    assert results.get("parsing_errors") == [], "checkov could not parse these templates"
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in results["failed_checks"]]
    assert failed == []
    fired = {(Path(c["file_path"]).name, c["check_id"]) for c in results["skipped_checks"]}
    written = set()
    for template in TEMPLATES:
        for line in template.read_text(encoding="utf-8").splitlines():
            match = re.search(r"//checkov:skip=([A-Z0-9_]+):(.*)$", line)
            if match:
                assert len(match.group(2).strip()) > 20, f"{template.name} {match.group(1)}: say why it is skipped"
                written.add((template.name, match.group(1)))
    assert written == fired, f"stale skips (nothing to skip): {sorted(written - fired)}"
