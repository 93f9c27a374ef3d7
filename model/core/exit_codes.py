"""Exit codes shared by the project's command-line tools (documented in docs/cli_exit_codes.md).

Why: a scheduled job must tell "the input is wrong", "the tool has a bug" and a verdict
apart. Python's own exit code for an uncaught exception is 1, which `model.monitoring.monitor` uses
for "retrain recommended", so no CLI may let an exception escape: `guarded` turns it into
one line on stderr and INTERNAL_ERROR.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable

OK = 0
BAD_INPUT = 2  # bad data, arguments or settings; argparse uses 2 for usage errors too
INTERNAL_ERROR = 70  # a bug, not the input (sysexits.h EX_SOFTWARE)
INTERRUPTED = 130  # Ctrl-C / SIGINT (128 + 2, as shells report it)
TRACEBACK_ENV = "RISK_TRACEBACK"  # set to 1 to print the traceback of an internal error as well


def guarded(main: Callable[..., int]) -> Callable[..., int]:
    """Wrap a CLI `main`: an unexpected exception becomes one stderr line and INTERNAL_ERROR.

    SystemExit (argparse's usage errors, explicit exits) passes through unchanged.
    """

    @functools.wraps(main)
    def wrapper(*args: object, **kwargs: object) -> int:
        prog = (main.__module__ or "cli").removesuffix(".__main__")
        try:
            return main(*args, **kwargs)
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            return INTERRUPTED
        except Exception as exc:
            if os.environ.get(TRACEBACK_ENV, "").strip() in ("1", "true", "yes"):
                traceback.print_exc()
            detail = " ".join(str(exc).split())[:500]
            print(
                f"{prog}: internal error: {type(exc).__name__}: {detail} (a bug, not your input: please report it; "
                f"{TRACEBACK_ENV}=1 prints the traceback)",
                file=sys.stderr,
            )
            return INTERNAL_ERROR

    return wrapper
