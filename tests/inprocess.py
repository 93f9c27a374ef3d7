"""Run a tool's real `main(argv)` inside the test process, as its command line would, and capture what it prints.

Why: a subprocess costs 1.2-1.4 s of interpreter start and imports per call, and most CLI tests check what a tool
does with its arguments, not the process. `Ran` has the fields of `subprocess.CompletedProcess` that the tests read,
so a test reads the same whichever way the tool ran. Tests of the process itself (signals, the console script,
`python -m`) still start one: tests/test_cli.py.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Ran:
    """What a tool's main left: its exit code and everything it printed."""

    returncode: int
    stdout: str
    stderr: str


def run_main(capsys: pytest.CaptureFixture[str], module: str, *args: str) -> Ran:
    """`python -m module args...`, in-process: the module's `main(list(args))`; argparse's exits give their code."""
    main = importlib.import_module(module).main
    capsys.readouterr()  # what the test printed before is not the tool's
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse: --help and usage errors
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return Ran(int(code), out, err)
