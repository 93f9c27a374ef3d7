"""The one command line `covid-risk` (deploy/cli.py), the one exit-code table (model/core/exit_codes.py) and
docs/cli.md, held equal; every documented command checked against the real tools' --help.

Per tool: a crash becomes exit 70 with one stderr line (a third-party call made to raise: never a project
component), bad input exits 2 with a message, and a short real run through `covid-risk`, all in-process; and
one smoke run as a process through the old `python -m` path (the console script's own process: the endpoint).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars
import pyarrow.csv
import pyarrow.parquet
import pytest

from deploy.cli import TOOLS
from model.core import exit_codes
from model.core.exit_codes import ExitCode
from model.monitoring import monitor
from model.synthetic import synth
from tests.conftest import REPO_ROOT
from tests.inprocess import Ran, run_main

CLI_DOC = REPO_ROOT / "docs" / "cli.md"
DOC_FILES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
CONSOLE_SCRIPT = Path(sys.executable).parent / "covid-risk"
BOOM = "a third-party call failed in a way the tool cannot foresee"


def covid_risk(*args: str) -> Ran:
    """`covid-risk args...`, in-process (deploy.cli.main)."""
    return run_main("deploy.cli", *args)


def _section(text: str, heading: str) -> str:
    """The Markdown section under `heading` (up to the next heading of the same level)."""
    start = text.index(heading)
    following = text.find("\n## ", start + len(heading))
    return text[start : following if following != -1 else len(text)]


# --- covid-risk --help and docs/cli.md list the same commands -------------------------------------------------------


def help_commands(text: str) -> list[str]:
    """The command names click lists under "Commands:" (a wrapped summary continues on deeper-indented lines)."""
    listing = text.split("Commands:", 1)[1].split("\n\n", 1)[0]  # up to the epilog
    return re.findall(r"^  ([a-z][\w-]*)\s", listing, flags=re.M)


def documented_commands() -> dict[str, str]:
    """docs/cli.md's command table: covid-risk command -> the `python -m` module it is the same as."""
    table = _section(CLI_DOC.read_text(encoding="utf-8"), "## Commands")
    return dict(re.findall(r"^\| `covid-risk ([\w-]+)` \| `python -m ([\w.]+)` \|", table, flags=re.M))


def test_help_lists_every_command_with_its_summary_and_the_doc_lists_the_same() -> None:
    ran = covid_risk("--help")
    assert ran.returncode == 0, ran.stderr
    listed = help_commands(ran.stdout)
    assert listed == list(TOOLS)
    flat = " ".join(ran.stdout.split())
    for tool in TOOLS.values():
        assert tool.summary in flat  # one line each (click wraps it on a narrow terminal)
    assert documented_commands() == {name: tool.old_path for name, tool in TOOLS.items()}


@pytest.mark.parametrize("name", list(TOOLS))
def test_each_command_shows_its_tools_own_help(name: str) -> None:
    ran = covid_risk(name, "--help")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith(f"usage: python -m {TOOLS[name].old_path}"), ran.stdout[:300]
    assert ran.stdout == run_main(TOOLS[name].old_path, "--help").stdout  # the same tool either way


def test_an_unknown_command_is_a_usage_error() -> None:
    ran = covid_risk("retrian")
    assert ran.returncode == exit_codes.BAD_INPUT and "No such command 'retrian'" in ran.stderr


def test_help_imports_no_tool() -> None:
    """`covid-risk --help` answers without importing any tool (each is imported when its command runs)."""
    code = (
        "import sys, time; t = time.perf_counter(); from deploy.cli import main; code = main(['--help']); "
        "print('SECONDS', time.perf_counter() - t); "
        "print('LOADED', [m for m in ('numpy', 'pandas', 'model.training.train', 'deploy.local_endpoint', "
        "'deploy.azure.__main__') if m in sys.modules]); sys.exit(code)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout, proc.stdout
    seconds = float(proc.stdout.split("SECONDS ")[1].split()[0])
    assert seconds < 0.5, seconds  # ~0.03 s: click alone


# --- one exit-code table: the code and docs/cli.md ----------------------------------------------------------------


def test_every_exit_code_is_in_the_doc_with_its_number_and_the_doc_has_no_other() -> None:
    table = _section(CLI_DOC.read_text(encoding="utf-8"), "## Exit codes")
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*`(\w+)`\s*\|", table, flags=re.M)
    assert sorted((name, int(code)) for code, name in rows) == sorted((c.name, c.value) for c in ExitCode)
    assert len(rows) == len({code for code, _ in rows})  # no code twice
    assert 1 not in {c.value for c in ExitCode}  # Python's own code for a crash is nobody's meaning


def test_every_tool_main_is_guarded() -> None:
    """Every tool's main is wrapped by `guarded` (a crash: one line and 70, never Python's 1 and a traceback)."""
    modules = {tool.module for tool in TOOLS.values()} | {"model.training.mlflow_log", "dashboard.start"}
    for name in sorted(modules):
        main = importlib.import_module(name).main
        assert getattr(main, "__wrapped__", None) is not None, f"{name}.main is not @guarded"
        assert main.__code__.co_filename.endswith("exit_codes.py"), name  # guarded's wrapper, not another decorator


# --- every command the README and docs/*.md write names a real command and real options ----------------------------


@dataclass(frozen=True)
class Command:
    """A command written in a doc: `covid-risk ...` or `python -m module ...`, the rest of its line."""

    where: str
    module: str  # the module it runs ("" for an unknown covid-risk command)
    words: tuple[str, ...]  # what follows the command name or module

    @property
    def options(self) -> list[str]:
        return [w.split("=")[0] for w in self.words if re.fullmatch(r"\[?--[a-zA-Z][\w-]*(=.*)?\]?", w)]

    @property
    def positional(self) -> str:
        """The first word that is not an option: an azure command, a placeholder or an argument."""
        return next((w for w in self.words if not w.startswith(("-", "["))), "")


def code_texts(text: str) -> Iterator[str]:
    """Each fenced block's lines (backslash continuations joined) and each inline code span (spaces normalised)."""
    fences = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
    for block in fences.findall(text):
        yield from block.replace("\\\n", " ").splitlines()
    for span in re.findall(r"`([^`]+)`", fences.sub("", text)):
        yield " ".join(span.split())


def commands_in(path: Path) -> Iterator[Command]:
    """Commands written in `path`: a piece of code whose first word is covid-risk or python -m (any path before).

    `python -m <module>` and `covid-risk <command>` are placeholders in prose, not commands.
    """
    old_paths = {tool.old_path: tool.module for tool in TOOLS.values()}
    for code in code_texts(path.read_text(encoding="utf-8")):
        for piece in re.split(r"&&|\|\||[;|]|\$\(", code.split(" #")[0]):
            words = piece.replace("$ ", "", 1).split()
            if not words:
                continue
            program = words[0].rsplit("/", 1)[-1]
            if program == "covid-risk" and (len(words) == 1 or words[1][0] != "<"):
                tool = TOOLS.get(words[1]) if len(words) > 1 else None
                if tool is None and all(w.startswith("-") for w in words[1:]):  # `covid-risk --help`
                    yield Command(path.name, "deploy.cli", tuple(words[1:]))
                else:
                    yield Command(path.name, tool.module if tool else "", tuple(words[2:] if tool else words[1:]))
            elif program in ("python", "python3") and len(words) > 2 and words[1] == "-m" and words[2][0] != "<":
                yield Command(path.name, old_paths.get(words[2], words[2]), tuple(words[3:]))


def tool_help(module: str, azure_command: str) -> str:
    """What the option names of a documented command are checked against: the tool's --help, else its source."""
    names = {tool.module: name for name, tool in TOOLS.items()}
    if module == "deploy.cli":
        return covid_risk("--help").stdout
    if module in names:
        args = [names[module], *([azure_command] if azure_command else []), "--help"]
        ran = covid_risk(*args)
        assert ran.returncode == 0, (args, ran.stderr)
        return ran.stdout
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, f"no module {module}"
    return Path(spec.origin).read_text(encoding="utf-8")  # a benchmark or entry point: its argparse source


def test_every_documented_command_names_a_real_command_and_real_options() -> None:
    from deploy.azure.__main__ import COMMANDS as AZURE_COMMANDS

    found = [c for path in DOC_FILES for c in commands_in(path)]
    assert len(found) > 60 and {c.where for c in found} >= {"README.md", "cli.md", "azure.md", "monitoring.md"}
    assert any(c.words and c.module == "model.training.train" for c in found if c.where == "README.md")
    helps: dict[tuple[str, str], str] = {}
    for command in found:
        assert command.module, f"{command.where}: covid-risk {' '.join(command.words)}: no such command"
        assert importlib.util.find_spec(command.module) is not None, f"{command.where}: no module {command.module}"
        azure_command = ""
        if command.module == TOOLS["azure"].module and command.positional and not command.positional.startswith("<"):
            azure_command = command.positional
            assert azure_command in AZURE_COMMANDS, f"{command.where}: no azure command {azure_command!r}"
        key = (command.module, azure_command)
        helps[key] = helps.get(key) or tool_help(*key)
        for option in command.options:
            option = option.strip("[]")
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", helps[key]), (
                f"{command.where}: {command.module} {azure_command} has no option {option}"
            )


# --- per tool: a crash is 70 and one line, bad input is 2 with a message (in-process) -------------------------------


@pytest.fixture
def signal_handlers() -> Iterator[None]:
    """endpoint and run install SIGTERM/SIGHUP handlers in the calling process: put pytest's back afterwards."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    path = tmp_path / "small.csv"
    synth.write(path, rows=2_000, seed=5)
    return path


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError(BOOM)


def _crash_args(name: str, model_dir: Path, data: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Arguments that run `name` into a third-party call this patches to raise (none of the project's own code)."""
    model = ["--model-dir", str(model_dir)]
    if name in ("train", "recalibrate"):
        monkeypatch.setattr(polars, "scan_csv", _boom)  # the training reader's one streaming pass
        if name == "train":
            return ["--data", str(data), "--out", str(out), "--quiet"]
        return ["--model", str(model_dir), "--data", str(data), "--out", str(out)]
    if name == "batch-score":
        monkeypatch.setattr(pyarrow.parquet, "ParquetWriter", _boom)
        return ["--data", str(data), "--out", str(out.with_suffix(".parquet")), *model, "--quiet"]
    if name == "monitor":
        monkeypatch.setattr(np, "bincount", _boom)  # counting rows per input combination
        return ["--reference", str(model_dir), "--current", str(data)]
    if name == "capacity":
        monkeypatch.setattr(np.random, "default_rng", _boom)  # the band's simulation
        return [*model, "--cases-per-day", "100", "--beds", "20", "--los-days", "9"]
    if name == "synth":
        monkeypatch.setattr(pyarrow.csv, "CSVWriter", _boom)
        return ["--rows", "100", "--out", str(out.with_suffix(".csv"))]
    if name in ("endpoint", "run"):
        monkeypatch.setattr(subprocess, "Popen", _boom)  # starting the server process
        return ["--model-dir", str(model_dir)]
    assert name == "azure"
    monkeypatch.setattr(json, "dumps", _boom)  # printing the plan
    return ["plan", "--current", "blue=100", "--existing", "blue"]


@pytest.mark.parametrize("name", list(TOOLS))
def test_a_crash_is_exit_70_and_one_stderr_line(
    name: str, model_dir: Path, small_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signal_handlers: None
) -> None:
    args = _crash_args(name, model_dir, small_csv, tmp_path / "out", monkeypatch)
    ran = covid_risk(name, *args)
    assert ran.returncode == exit_codes.INTERNAL_ERROR, (ran.returncode, ran.stderr)
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1, ran.stderr
    assert f"{TOOLS[name].module.removesuffix('.__main__')}: internal error: RuntimeError: {BOOM}" in lines[0]
    assert "Traceback" not in ran.stderr


def _taken_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock, sock.getsockname()[1]


BAD_INPUT: dict[str, Callable[[Path, Path, Path], tuple[list[str], str]]] = {
    "train": lambda model, data, tmp: (["--data", str(tmp / "none.csv"), "--out", str(tmp / "m")], "no such file"),
    "recalibrate": lambda model, data, tmp: (
        ["--model", str(model), "--data", str(data), "--out", str(tmp / "m"), "--since", "2021-13"],
        "'2021-13' is not a month; write it as YYYY-MM",
    ),
    "batch-score": lambda model, data, tmp: (
        ["--data", str(data), "--out", str(tmp / "out.xlsx"), "--model-dir", str(model)],
        ".csv.gz, .csv, .parquet",
    ),
    "monitor": lambda model, data, tmp: (["--reference", str(tmp / "no-model"), "--current", str(data)], "No model"),
    "capacity": lambda model, data, tmp: (
        ["--model-dir", str(model), "--cases-per-day", "9", "--beds", "4", "--los-days", "9", "--threshold", "2"],
        "--threshold must be between 0 and 1",
    ),
    "synth": lambda model, data, tmp: (["--rows", "0", "--out", str(tmp / "x.csv")], "--rows must be a positive"),
    "run": lambda model, data, tmp: (["--max-restart-pause", "0"], "--max-restart-pause must be more than 0"),
    "azure": lambda model, data, tmp: (["plan", "--current", "blue=ninety"], "write it as name=percent pairs"),
}


@pytest.mark.parametrize("name", list(TOOLS))
def test_bad_input_is_exit_2_with_a_message(
    name: str, model_dir: Path, small_csv: Path, tmp_path: Path, signal_handlers: None
) -> None:
    if name == "endpoint":
        sock, port = _taken_port()
        with sock:
            ran = covid_risk(name, "--model-dir", str(model_dir), "--port", str(port))
        message = f"port {port} on 127.0.0.1 is already in use"
    else:
        args, message = BAD_INPUT[name](model_dir, small_csv, tmp_path)
        ran = covid_risk(name, *args)
    assert ran.returncode == exit_codes.BAD_INPUT, (ran.returncode, ran.stderr)
    assert "Traceback" not in ran.stderr and not ran.stdout, ran.stderr
    said = [line for line in ran.stderr.splitlines() if message in line]
    assert len(said) == 1 and "error" in said[0], ran.stderr  # one line says what is wrong (after argparse's usage)


# --- per tool: a short real run in-process through covid-risk, one as a process through the old python -m path ------


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def _program(name: str, form: str) -> list[str]:
    if form == "covid-risk":
        return [str(CONSOLE_SCRIPT), name]
    return [sys.executable, "-m", TOOLS[name].old_path]


def _smoke_endpoint(program: list[str], model_dir: Path) -> None:
    """Start the real server, wait until it is ready, SIGTERM it: exit 0 and nothing left listening."""
    sock, port = _taken_port()
    sock.close()
    proc = subprocess.Popen(
        [*program, "--model-dir", str(model_dir), "--port", str(port)],
        cwd=REPO_ROOT,
        env=_child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Scoring endpoint ready" in line or time.monotonic() > deadline:
                break
        assert "Scoring endpoint ready" in "".join(lines), "".join(lines)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == exit_codes.OK
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def _smoke_args(name: str, model_dir: Path, data: Path, out: Path) -> tuple[list[str], int, str]:
    """A real, short run of each tool: arguments, its exit code and what its output must hold."""
    model = ["--model-dir", str(model_dir)]
    return {
        # The real 2020 extract: read and checked, then refused for its 5 intake deaths.
        "train": (["--data", str(data), "--out", str(out), "--quiet"], 2, "5 deaths and 5,308 survivors"),
        "recalibrate": (
            ["--model", str(model_dir), "--data", str(data), "--out", str(out)],
            2,
            "too few to estimate an update",
        ),
        "batch-score": (["--data", str(data), "--out", f"{out}.parquet", *model, "--json", "--quiet"], 0, '"scored"'),
        "monitor": (["--reference", str(model_dir), "--current", str(data)], -1, "VERDICT:"),
        "capacity": ([*model, "--cases-per-day", "200", "--beds", "40", "--los-days", "9", "--json"], 0, '"erlang_b"'),
        "synth": (["--rows", "1000", "--seed", "1", "--out", f"{out}.csv"], 0, "wrote 1,000 rows"),
        "run": (["--max-restart-pause", "-1"], 2, "--max-restart-pause must be more than 0"),
        "azure": (["plan", "--current", "blue=100", "--existing", "blue"], 0, '"states"'),
    }[name]


def _check_smoke(name: str, ran: Ran | subprocess.CompletedProcess[str], code: int, says: str) -> None:
    if name == "monitor":  # the verdict is the exit code
        verdict = ran.stdout.split("VERDICT: ", 1)[1].splitlines()[0].lower()
        code = monitor.EXIT_CODES[verdict]
    assert ran.returncode == code, (ran.returncode, ran.stderr[-2000:])
    assert says in ran.stdout + ran.stderr, (ran.stdout[-2000:], ran.stderr[-2000:])
    assert "Traceback" not in ran.stderr


# The console script is one entry point (deploy.cli:main) for every tool: each tool's real short run goes through
# it in-process, and the script itself runs as a process once, for the endpoint (a server, so it must be one).
# Each old `python -m` path runs as a process; `python -m deploy.local_endpoint`'s is
# test_hardening.py::test_sigterm_on_the_cli_stops_the_whole_server.
IN_PROCESS = [name for name in TOOLS if name != "endpoint"]
PROCESSES = [(name, "python -m") for name in TOOLS if name != "endpoint"] + [("endpoint", "covid-risk")]


@pytest.mark.parametrize("name", IN_PROCESS)
def test_smoke_through_covid_risk_in_process(name: str, model_dir: Path, legacy_cdc_file: Path, tmp_path: Path) -> None:
    args, code, says = _smoke_args(name, model_dir, legacy_cdc_file, tmp_path / "out")
    _check_smoke(name, covid_risk(name, *args), code, says)


@pytest.mark.parametrize(("name", "form"), PROCESSES)
def test_smoke_through_the_old_path_and_the_console_script_as_processes(
    name: str, form: str, model_dir: Path, legacy_cdc_file: Path, tmp_path: Path
) -> None:
    program = _program(name, form)
    if name == "endpoint":
        _smoke_endpoint(program, model_dir)
        return
    args, code, says = _smoke_args(name, model_dir, legacy_cdc_file, tmp_path / "out")
    proc = subprocess.run(
        [*program, *args], cwd=REPO_ROOT, env=_child_env(), capture_output=True, text=True, timeout=300
    )
    _check_smoke(name, proc, code, says)
