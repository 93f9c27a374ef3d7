"""Static checks of the dashboard Dockerfile.

Docker has no engine on this machine, so the image cannot be built or run here; these
tests parse the Dockerfile (plain line parsing: continuations joined, comments dropped)
and check what a reviewer would: pinned base, requirements installed, every COPY source
present in the repo, non-root USER before CMD, HEALTHCHECK on Streamlit's health endpoint,
the streamlit CMD, and no secrets baked into ENV.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs in order; backslash continuations joined, comments skipped."""
    instructions: list[tuple[str, str]] = []
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1].rstrip() + " "
            continue
        full = (buffer + line).strip()
        buffer = ""
        keyword, _, rest = full.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def env_pairs(args: str) -> dict[str, str]:
    pairs = dict(tok.split("=", 1) for tok in shlex.split(args) if "=" in tok)
    return pairs or dict([args.split(None, 1)])


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def _all(instructions: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for kw, args in instructions if kw == keyword]


def test_parser_handles_continuations_and_comments() -> None:
    parsed = parse_dockerfile('# c\nFROM a:1\nRUN x \\\n  && y\n# d\nCMD ["z"]\n')
    assert parsed == [("FROM", "a:1"), ("RUN", "x && y"), ("CMD", '["z"]')]


def test_base_image_is_pinned_python_311_slim(instructions: list[tuple[str, str]]) -> None:
    (base,) = _all(instructions, "FROM")
    image, _, tag = base.partition(":")
    assert image == "python" and re.match(r"3\.11\.\d+-slim", tag), base
    assert "latest" not in tag


def test_requirements_installed(instructions: list[tuple[str, str]]) -> None:
    assert any(a.split()[0] == "requirements.txt" for a in _all(instructions, "COPY"))
    assert any("pip install" in r and "-r requirements.txt" in r for r in _all(instructions, "RUN"))


def test_every_copy_source_exists(instructions: list[tuple[str, str]]) -> None:
    copies = _all(instructions, "COPY")
    assert copies
    for args in copies:
        *sources, _dest = [a for a in args.split() if not a.startswith("--")]
        for src in sources:
            assert (REPO / src).exists(), f"COPY {src}: not in the repository"
    ignored = {line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()}
    for args in copies:
        src = args.split()[0].rstrip("/")
        assert src not in ignored, f"COPY {src}: excluded from the build context by .dockerignore"
    copied = {a.split()[0].rstrip("/") for a in copies}
    assert {"model", "dashboard", "assets", "deploy", ".streamlit/config.toml"} <= copied


def test_secrets_file_not_copied(instructions: list[tuple[str, str]]) -> None:
    for args in _all(instructions, "COPY"):
        assert "secrets.toml" not in args and "config.json" not in args
    ignore = (REPO / ".dockerignore").read_text().split()
    assert ".streamlit/secrets.toml" in ignore and ".venv" in ignore


def test_non_root_user_before_cmd(instructions: list[tuple[str, str]]) -> None:
    keywords = [kw for kw, _ in instructions]
    users = [i for i, kw in enumerate(keywords) if kw == "USER"]
    assert users and users[-1] < keywords.index("CMD")
    assert instructions[users[-1]][1] not in ("root", "0")


def test_healthcheck_hits_streamlit_health(instructions: list[tuple[str, str]]) -> None:
    (health,) = _all(instructions, "HEALTHCHECK")
    assert "CMD" in health and "/_stcore/health" in health and "8501" in health
    assert _all(instructions, "EXPOSE") == ["8501"]


def test_cmd_runs_streamlit_home(instructions: list[tuple[str, str]]) -> None:
    from deploy.azure.dashboard_start import STREAMLIT_ARGS

    (cmd,) = _all(instructions, "CMD")
    argv = json.loads(cmd)  # exec form; the start module then execs streamlit, so signals reach it
    assert argv == ["python", "-m", "deploy.azure.dashboard_start"]
    assert (REPO / "deploy" / "azure" / "dashboard_start.py").is_file()
    assert STREAMLIT_ARGS[:3] == ["streamlit", "run", "dashboard/app.py"]
    assert "--server.address=0.0.0.0" in STREAMLIT_ARGS and "--server.headless=true" in STREAMLIT_ARGS
    assert "--server.port=8501" in STREAMLIT_ARGS
    assert (REPO / "dashboard" / "app.py").is_file()


def test_sign_in_dependencies_are_installed(instructions: list[tuple[str, str]]) -> None:
    """st.login needs Authlib (and httpx); the image installs requirements.txt, so they must be pinned there."""
    pins = (REPO / "requirements.txt").read_text().lower()
    assert re.search(r"^authlib==\d", pins, re.MULTILINE) and re.search(r"^httpx==\d", pins, re.MULTILINE)


def test_no_workspace_config_or_secrets_reach_the_image() -> None:
    ignore = (REPO / ".dockerignore").read_text().split()
    assert "config.json" in ignore or "**/config.json" in ignore
    assert "artifacts" in ignore or "artifacts/" in ignore


def test_no_secrets_in_env(instructions: list[tuple[str, str]]) -> None:
    env: dict[str, str] = {}
    for args in _all(instructions, "ENV") + _all(instructions, "ARG"):
        env.update(env_pairs(args) if "=" in args else {args.split()[0]: ""})
    assert "RISK_ENDPOINT_URL" in env
    for name, value in env.items():
        if re.search(r"KEY|TOKEN|SECRET|PASSWORD", name, re.IGNORECASE):
            pytest.fail(f"ENV {name}={value!r} bakes a secret into the image; pass it at run time")
