"""docs/azure.md checked against the code and against issue 24's findings, as a text a user follows in order.

Each finding that was a gap in the guide gets a check that failed on the old guide: the Key Vault role
before the first secret write, admin consent before sign-in, `stage` before every CLI route that uploads
code, no world-readable secrets file, the revision restart after a key rotation, cleanup outside the
resource group. Commands, specs and paths it names must exist, and the parameters file it writes must be
exactly the template's parameters.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pycep import BicepParser

from deploy.azure.__main__ import COMMANDS

REPO = Path(__file__).resolve().parent.parent
GUIDE = (REPO / "docs" / "azure.md").read_text(encoding="utf-8")
FLAT = " ".join(GUIDE.split())  # line breaks inside sentences and commands do not matter
OPENID, PROFILE, EMAIL = (
    "37f7f235-527c-4136-accd-4a02d197296e",
    "14dad69e-099b-42c9-810b-d002981feec1",
    "64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0",
)


def first(text: str) -> int:
    index = GUIDE.find(text)
    assert index >= 0, f"the guide never says {text!r}"
    return index


def section(heading: str) -> str:
    start = first(heading)
    following = GUIDE.find("\n### ", start + len(heading))
    return GUIDE[start : following if following > 0 else len(GUIDE)]


def test_finding_1_the_operator_gets_a_key_vault_data_role_before_writing_a_secret() -> None:
    assert "az keyvault create" not in GUIDE  # the template makes the vault and the role together
    assert first("az deployment group create") < first("az keyvault secret set")
    assert "Key Vault Secrets Officer" in section("### 4.") and "ForbiddenByRbac" in section("### 4.")


def test_finding_2_permissions_and_admin_consent_before_anyone_signs_in() -> None:
    add = first("az ad app permission add")
    assert all(GUIDE.index(p, add) < first("az ad app permission admin-consent") for p in (OPENID, PROFILE, EMAIL))
    assert first("az ad app permission admin-consent") < first("appRoleAssignmentRequired=true")
    assert first("appRoleAssignmentRequired=true") < first("appRoleAssignedTo")  # users assigned one by one
    assert "P1 or P2" in GUIDE or "P1/P2" in GUIDE


def test_finding_6_every_cli_route_that_uploads_code_stages_it_first() -> None:
    found = 0
    for spec in ("train-job.yml", "kubernetes-deployment.yml", "batch-deployment.yml"):
        for match in re.finditer(re.escape(f"-f deploy/azure/specs/{spec}"), FLAT):
            before = FLAT[max(0, match.start() - 600) : match.start()]
            assert "python -m deploy.azure stage" in before, f"{spec} at {match.start()}: stage first"
            found += 1
    assert found >= 4
    assert "batch-environment.yml" not in FLAT  # the batch deployment's environment is inline
    for gap in ("cpu-cluster", "Standard DSv3 Family", "Standard DSv2 Family", "User Access Administrator"):
        assert gap in FLAT, gap
    for gap in ("kubectl get service azureml-fe", "public CA", "A record", "Renewal", "up to 10"):
        assert gap in FLAT, gap
    assert "--set-env-vars RISK_AZUREML_MODEL=" in section("## After a rollout")


def test_finding_6_cleanup_outside_the_resource_group() -> None:
    costs = section("## Costs")
    assert "az ad app delete --id $APP_ID" in costs and "--permanently-delete" in costs
    assert costs.index("--permanently-delete") < costs.index("az group delete")  # the workspace goes first


def test_finding_8_a_rotated_key_reaches_running_replicas_by_a_revision_restart() -> None:
    assert "az containerapp revision restart" in section("### 8.")
    assert "revision restart" in section("## After a rollout")
    assert "30 minutes" not in (REPO / "deploy" / "azure" / "containerapp.py").read_text()


def test_finding_9_no_secret_file_others_can_read_and_the_client_secret_expiry_is_said() -> None:
    assert "/tmp/secrets.toml" not in GUIDE
    step = section("### 4.")
    assert step.index("umask 077") < step.index('cat > "$PARAMS"') < step.index('rm -f "$PARAMS"')
    assert "--end-date" in section("### 3.") and "Renew the sign-in client secret" in GUIDE
    assert "Collected in Azure (Blob Storage)" in section("## Monitoring")


def _parameters_in_guide() -> dict[str, object]:
    block = section("### 4.")
    body = block[block.index('cat > "$PARAMS" <<EOF') :].split("\n", 1)[1].split("\nEOF", 1)[0]
    names = re.findall(r'^\s*"(\w+)": \{"value"', body, flags=re.MULTILINE)
    return dict.fromkeys(names)


def test_the_parameters_file_matches_the_template() -> None:
    template = BicepParser().parse(text=(REPO / "deploy" / "azure" / "infra" / "main.bicep").read_text())
    parameters = template["parameters"]
    required = {name for name, p in parameters.items() if p.get("default") is None}
    written = set(_parameters_in_guide())
    assert written <= set(parameters), f"not template parameters: {sorted(written - set(parameters))}"
    assert required <= written, f"the template needs {sorted(required - written)}"


@pytest.mark.parametrize("command", sorted(set(re.findall(r"python -m deploy\.azure ([a-z-]+)", GUIDE))))
def test_every_deploy_command_in_the_guide_exists(command: str) -> None:
    assert command in COMMANDS


def test_every_file_the_guide_names_exists() -> None:
    paths = set(re.findall(r"(deploy/azure/[\w/.-]+\.(?:yml|bicep|sh|py|toml)|\.github/workflows/\w+\.yml)", GUIDE))
    assert paths
    missing = sorted(p for p in paths if not (REPO / p).is_file())
    assert missing == []


def test_the_outputs_the_guide_reads_are_the_templates() -> None:
    template = BicepParser().parse(text=(REPO / "deploy" / "azure" / "infra" / "main.bicep").read_text())
    used = set(re.findall(r"\$\(out (\w+)\)", GUIDE)) | {"dashboardEnvironmentId", "storageAccountName"}
    assert used <= set(template["outputs"]), sorted(used - set(template["outputs"]))
