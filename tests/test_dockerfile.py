"""Checks of the dashboard Dockerfile, and of what its image holds.

Docker has no engine on this machine, so the image cannot be built or run here; these
tests parse the Dockerfile (plain line parsing: continuations joined, comments dropped)
and check what a reviewer would: pinned base, requirements installed, every COPY source
present in the repo, non-root USER before CMD, HEALTHCHECK on Streamlit's health endpoint,
the start command, and no secrets baked into ENV. What the image holds is checked for real:
the COPY instructions are replayed into a temporary /app, and every module the dashboard
imports (at start, on any page, inside functions too) is imported from there by a clean
interpreter that sees only that folder and the installed libraries (tests/import_closure.py).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

from tests.import_closure import import_closure, module_name, run_isolated

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
# What the image needs, exactly: the pins, the package metadata, the package, the dashboard, its
# images and stylesheet, Streamlit's settings. deploy/ is not among them (dashboard/start.py).
IMAGE_SOURCES = {"requirements.txt", "pyproject.toml", "model", "dashboard", "assets", ".streamlit/config.toml"}
# Files Streamlit runs as scripts (st.navigation pages, the entry file): read for their imports, not imported.
SCRIPTS = ("dashboard/app.py", "dashboard/views/")


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
    assert copied == IMAGE_SOURCES, f"the image copies {sorted(copied)}; it needs exactly {sorted(IMAGE_SOURCES)}"


def test_the_package_is_installed_where_it_was_copied(instructions: list[tuple[str, str]]) -> None:
    """Editable, as `make` installs it: `streamlit run` puts only dashboard/ on sys.path, so `import dashboard`
    must find /app/dashboard, whose files read ../assets and views/ beside them. A regular install would
    import a site-packages copy without assets/ and without the page scripts (views/ is not a package)."""
    keywords = [kw for kw, _ in instructions]
    runs = _all(instructions, "RUN")
    (install,) = [r for r in runs if "pip install" in r and "-r requirements.txt" not in r]
    assert install.split() == ["pip", "install", "--no-deps", "-e", "."], install
    install_at = next(i for i, (kw, args) in enumerate(instructions) if kw == "RUN" and args == install)
    copied_before = {args.split()[0].rstrip("/") for kw, args in instructions[:install_at] if kw == "COPY"}
    assert {"pyproject.toml", "model", "dashboard"} <= copied_before, "copy the package before installing it"
    assert install_at < keywords.index("USER")


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
    from dashboard.start import STREAMLIT_ARGS

    (cmd,) = _all(instructions, "CMD")
    argv = json.loads(cmd)  # exec form; the start module then execs streamlit, so signals reach it
    assert argv == ["python", "-m", "dashboard.start"]
    assert (REPO / "dashboard" / "start.py").is_file()
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


# --- what the image holds ---------------------------------------------------------------


@pytest.fixture(scope="module")
def image_app(tmp_path_factory: pytest.TempPathFactory, instructions: list[tuple[str, str]]) -> Path:
    """/app as the Dockerfile lays it out: every COPY source at its destination under WORKDIR."""
    (workdir,) = _all(instructions, "WORKDIR")
    assert workdir == "/app"
    app = tmp_path_factory.mktemp("image") / "app"
    app.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")  # .dockerignore keeps them out
    for args in _all(instructions, "COPY"):
        *sources, dest = [a for a in args.split() if not a.startswith("--")]
        for src in sources:  # Docker's rules: a folder's contents go into dest; a file into dest/ or to dest
            source, target = REPO / src, app / dest
            if source.is_dir():
                shutil.copytree(source, target, ignore=ignore, dirs_exist_ok=True)
                continue
            target = target / source.name if dest.endswith("/") else target
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return app


def _dashboard_modules(app: Path) -> list[str]:
    return sorted(module_name(app, p) for p in (app / "dashboard").rglob("*.py"))


def test_the_image_holds_every_module_the_dashboard_imports(image_app: Path) -> None:
    closure = import_closure(image_app, _dashboard_modules(image_app), reference=REPO)
    assert not closure.missing, f"imported by the dashboard but not copied into the image: {closure.missing}"
    assert not closure.entries("deploy") and not (image_app / "deploy").exists()
    assert {"dashboard.start", "dashboard.model_fetch", "dashboard.ui.page"} <= closure.modules
    # The walk sees lazy imports too: the model fetch's SDK and the Monitoring page's monitor.
    assert {"azure.ai.ml", "azure.identity"} <= closure.libraries
    assert "model.monitoring.monitor" in closure.modules


def test_the_dashboard_imports_from_the_image_alone(image_app: Path) -> None:
    """Every module the dashboard imports, and every library module it imports, from the copied /app
    in a clean interpreter; the files it reads beside the code (assets, page scripts) are there."""
    closure = import_closure(image_app, _dashboard_modules(image_app), reference=REPO)
    scripts = {module_name(image_app, image_app / s) for s in SCRIPTS if s.endswith(".py")}
    importable = sorted(m for m in closure.modules if m not in scripts and not m.startswith("dashboard.views"))
    code = f"""
import importlib, importlib.util, json, sys
from pathlib import Path
app = Path(sys.path[0])
for name in {importable!r} + {sorted(closure.libraries)!r}:
    importlib.import_module(name)
from dashboard.ui import navigation, settings, theme
outside = sorted(name for name, module in list(sys.modules.items())
                 if name.split(".")[0] in ("model", "dashboard", "deploy")
                 and app not in Path(getattr(module, "__file__", None) or app / "namespace").resolve().parents)
print(json.dumps({{
    "outside": outside,
    "deploy": importlib.util.find_spec("deploy") is not None,
    "assets": [str(p) for p in (theme.FAVICON, theme.ASSETS / "style.css", theme.ASSETS / "logo.svg")
               if not p.is_file()],
    "pages": [spec.script for spec in navigation.PAGES
              if app not in Path(importlib.import_module(spec.module).__file__).resolve().parents],
    "root": str(settings.REPO_ROOT) == str(app),
}}))
"""
    proc = run_isolated(code, image_app, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found == {"outside": [], "deploy": False, "assets": [], "pages": [], "root": True}, found
