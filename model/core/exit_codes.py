"""The exit codes of every command-line tool of the project: one table, here (documented in docs/cli.md).

Why: a scheduled job must tell "the input is wrong", "the tool has a bug", "Azure failed" and a
verdict apart by the exit code alone. Python's own code for an uncaught exception is 1 and a
`sys.exit("text")` exits 1 too, so no tool exits 1 for anything: every `main` is wrapped by
`guarded`, which turns an unexpected exception into one line on stderr and INTERNAL_ERROR.
`tests/test_cli.py` holds this table and the one in docs/cli.md equal.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from enum import IntEnum


class ExitCode(IntEnum):
    """Every code a tool of this project ends with; the numbers are a contract with schedulers and CI."""

    OK = 0  # success; the monitor's verdict "ok"
    BAD_INPUT = 2  # bad data, arguments or settings (argparse uses 2 for usage errors too)
    INSUFFICIENT_DATA = 3  # monitor verdict: too few rows (or outcomes) to judge
    DRIFT = 4  # monitor verdict: the case mix moved; collect outcomes to choose an update
    RECALIBRATE = 5  # monitor verdict: deaths off, ranking intact: `recalibrate`
    RETRAIN = 6  # monitor verdict: ranking lost or case mix outside the training support: `train`
    GATE_REFUSED = 7  # azure gate: the candidate model may not replace the serving one (nothing changed)
    ROLLOUT_FAILED = 8  # azure deploy/promote/smoke: a canary or smoke check failed (traffic restored)
    AZURE_ERROR = 69  # Azure or the network refused or failed: sign-in, permission, quota, service (EX_UNAVAILABLE)
    INTERNAL_ERROR = 70  # a bug, not the input; also a server process that dies on its own (EX_SOFTWARE)
    INTERRUPTED = 130  # Ctrl-C / SIGINT (128 + 2, as shells report it)


# Module-level names, as the tools import them (`from model.core.exit_codes import BAD_INPUT`).
OK = ExitCode.OK
BAD_INPUT = ExitCode.BAD_INPUT
INSUFFICIENT_DATA = ExitCode.INSUFFICIENT_DATA
DRIFT = ExitCode.DRIFT
RECALIBRATE = ExitCode.RECALIBRATE
RETRAIN = ExitCode.RETRAIN
GATE_REFUSED = ExitCode.GATE_REFUSED
ROLLOUT_FAILED = ExitCode.ROLLOUT_FAILED
AZURE_ERROR = ExitCode.AZURE_ERROR
INTERNAL_ERROR = ExitCode.INTERNAL_ERROR
INTERRUPTED = ExitCode.INTERRUPTED

TRACEBACK_ENV = "RISK_TRACEBACK"  # set to 1 to print the traceback of an internal error as well


def one_line(message: object) -> str:
    """`message` on one line (exception texts can hold line breaks), never empty."""
    return " ".join(str(message).split()) or "unknown error"


def bad_input(message: object, prog: str = "") -> ExitCode:
    """Print `[prog: ]error: message` as one stderr line and return BAD_INPUT (the message says how to fix it)."""
    print(f"{prog + ': ' if prog else ''}error: {one_line(message)}", file=sys.stderr)
    return BAD_INPUT


def guarded(main: Callable[..., int]) -> Callable[..., int]:
    """Wrap a CLI `main`: an unexpected exception becomes one stderr line and INTERNAL_ERROR.

    Ctrl-C becomes INTERRUPTED. SystemExit (argparse's usage errors and --help) passes through
    unchanged; a `SystemExit("text")`, which Python would turn into exit 1, is printed and becomes
    INTERNAL_ERROR, so 1 never leaves a tool.
    """

    @functools.wraps(main)
    def wrapper(*args: object, **kwargs: object) -> int:
        prog = (main.__module__ or "cli").removesuffix(".__main__")
        try:
            return main(*args, **kwargs)
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            return INTERRUPTED
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                raise
            print(f"{prog}: {one_line(exc.code)}", file=sys.stderr)
            return INTERNAL_ERROR
        except Exception as exc:
            if os.environ.get(TRACEBACK_ENV, "").strip() in ("1", "true", "yes"):
                traceback.print_exc()
            print(
                f"{prog}: internal error: {type(exc).__name__}: {one_line(exc)[:500]} (a bug, not your input: please "
                f"report it; {TRACEBACK_ENV}=1 prints the traceback)",
                file=sys.stderr,
            )
            return INTERNAL_ERROR

    return wrapper
