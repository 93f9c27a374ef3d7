"""Run a tool's real `main(argv)` inside the test process, as its command line would, and capture what it prints.

Why: a subprocess costs 1.2-1.4 s of interpreter start and imports per call, and most CLI tests check what a tool
does with its arguments, not the process. `Ran` has the fields of `subprocess.CompletedProcess` that the tests read,
so a test reads the same whichever way the tool ran. Tests of the process itself (signals, the console script,
`python -m`) still start one: tests/test_cli.py.
"""

from __future__ import annotations

import contextlib
import importlib
import io
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Ran:
    """What a tool's main left: its exit code and everything it printed."""

    returncode: int
    stdout: str
    stderr: str


def run_main(module: str, *args: str) -> Ran:
    """`python -m module args...`, in-process: the module's `main(list(args))`; argparse's exits give their code.

    stdout and stderr are captured by swapping `sys.stdout` / `sys.stderr` for the call (the tools print there).
    """
    found = importlib.import_module(module)
    if not hasattr(found, "main"):  # a package: `python -m` runs its __main__
        found = importlib.import_module(f"{module}.__main__")
    main = found.main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse: --help and usage errors
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return Ran(int(code), out.getvalue(), err.getvalue())


def run_ok(module: str, *args: str) -> Ran:
    """`run_main`, failing the test with the tool's output unless it exits 0 (in-process `conftest.run_module`)."""
    ran = run_main(module, *args)
    if ran.returncode != 0:
        pytest.fail(f"python -m {module} {' '.join(args)} exited {ran.returncode}\n{ran.stdout}\n{ran.stderr}")
    return ran
