"""GitHub Actions workflows (.github/workflows) and the rollout script they run, checked offline.

Real: check-jsonschema validates every workflow against the GitHub-workflow schema it vendors
(`--builtin-schema vendor.github-workflows`, the SchemaStore schema, no download); zizmor (offline)
audits them for template injection, unpinned actions, credential persistence and excessive
permissions; both are shown to catch a broken workflow. actionlint is not used: its PyPI wrapper
downloads the binary at build time, which this machine cannot. What the workflows do in Azure was not
run (no subscription here); the commands they call are checked to exist.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy.azure.__main__ import COMMANDS
from model.monitoring import monitor

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
ROLLOUT = REPO / "deploy" / "azure" / "ci" / "rollout.sh"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if not path.is_file():
        pytest.fail(f"{name} is not installed in {BIN}: pip install -r requirements-dev.txt")
    return str(path)


def check_schema(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def zizmor(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("zizmor"), "--offline", "--no-progress", str(folder)], capture_output=True, text=True, timeout=120
    )


def test_there_are_the_three_workflows() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "monitor.yml", "release.yml"]


def test_workflows_match_githubs_schema() -> None:
    proc = check_schema(*WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    doc = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    doc["jobs"]["test"]["runs_on"] = doc["jobs"]["test"].pop("runs-on")  # misspelt key
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(doc))
    proc = check_schema(bad)
    assert proc.returncode == 1 and "runs-on" in proc.stdout + proc.stderr


def test_zizmor_finds_nothing() -> None:
    proc = zizmor(REPO / ".github" / "workflows")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_catches_injection_and_unpinned_actions(tmp_path: Path) -> None:
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "bad.yml").write_text(
        "name: bad\non: [pull_request_target]\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: azure/login@v3\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    proc = zizmor(folder)
    assert proc.returncode != 0
    assert "template-injection" in proc.stdout and "unpinned-uses" in proc.stdout


def test_azure_sign_in_is_oidc_with_no_stored_secret() -> None:
    for path in WORKFLOWS:
        text = path.read_text()
        assert "secrets." not in text, f"{path.name} reads a stored secret"
        doc = yaml.safe_load(text)
        for job in doc["jobs"].values():
            logins = [s for s in job["steps"] if str(s.get("uses", "")).startswith("azure/login@")]
            if logins:
                assert job["permissions"]["id-token"] == "write", path.name
                assert set(logins[0]["with"]) == {"client-id", "tenant-id", "subscription-id"}, path.name


def test_every_action_is_pinned_to_a_commit() -> None:
    for path in WORKFLOWS:
        for ref in re.findall(r"uses: (\S+)", path.read_text()):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), f"{path.name}: {ref} is not pinned to a SHA"


def test_the_commands_the_workflows_call_exist() -> None:
    texts = [p.read_text() for p in [*WORKFLOWS, ROLLOUT]]
    used = {m for text in texts for m in re.findall(r"-m deploy\.azure ([a-z-]+)", text)}
    assert used and used <= set(COMMANDS), sorted(used - set(COMMANDS))
    for text in texts:
        for script in re.findall(r"bash (deploy/\S+\.sh)", text):
            assert (REPO / script).is_file(), script


def test_the_monitor_workflow_acts_on_the_monitors_exit_codes() -> None:
    """Exit 5 recalibrates, 6 fails the run, 0/3/4 change nothing: the numbers model.monitoring.monitor uses."""
    text = (REPO / ".github" / "workflows" / "monitor.yml").read_text()
    codes = monitor.EXIT_CODES
    assert f"0|{codes[monitor.VERDICT_INSUFFICIENT]}|{codes[monitor.VERDICT_DRIFT]})" in text
    assert f"{codes[monitor.VERDICT_RECALIBRATE]})\n" in text and "model.recalibrate" in text
    assert f"{codes[monitor.VERDICT_RETRAIN]}) echo" in text


def test_rollout_script_is_valid_bash() -> None:
    proc = subprocess.run(["bash", "-n", str(ROLLOUT)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    if shutil.which("shellcheck"):
        proc = subprocess.run(["shellcheck", str(ROLLOUT)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout
