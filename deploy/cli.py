"""`covid-risk`: the project's one command line (docs/cli.md).

    covid-risk <command> [its options]      e.g. covid-risk train --data cdc.csv --out artifacts/model

Each command forwards its arguments unchanged to one tool's own `main(argv)`, where argparse,
the help text and the exit codes (model/core/exit_codes.py) live, so `covid-risk train --help`
is `python -m model.train --help` and both forms behave the same. A tool is imported only when
its command runs: `covid-risk --help` imports click and nothing of the model.

`deploy` is the top layer (pyproject.toml, import-linter), the one part allowed to reach every tool.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass

import click

from model.core import exit_codes

PROG = "covid-risk"


@dataclass(frozen=True)
class Tool:
    """One command: the module whose `main(argv) -> int` runs it, its old `python -m` path and a one-line summary."""

    module: str
    old_path: str
    summary: str


# The commands, in the order `covid-risk --help` lists them (docs/cli.md lists the same, a test holds them equal).
TOOLS: dict[str, Tool] = {
    "train": Tool(
        "model.training.train", "model.train", "Train the risk models on a CDC file and write a model directory."
    ),
    "recalibrate": Tool(
        "model.training.recalibrate", "model.recalibrate", "Update a model to recent cases (closed test chooses how)."
    ),
    "batch-score": Tool(
        "model.serving.batch_score", "model.batch_score", "Score a whole CDC file with a model directory."
    ),
    "monitor": Tool(
        "model.monitoring.monitor",
        "model.monitor",
        "Judge the model on recent cases: ok, recalibrate, retrain, drift (exit code = verdict).",
    ),
    "capacity": Tool(
        "model.planning.capacity", "model.capacity", "Project ICU census, saturation and surveillance load."
    ),
    "synth": Tool("model.synthetic.synth", "model.synth", "Write a synthetic CDC-like case file of any size."),
    "endpoint": Tool(
        "deploy.local_endpoint", "deploy.local_endpoint", "Serve the scoring endpoint (azmlinfsrv) on loopback."
    ),
    "run": Tool(
        "deploy.run_local", "deploy.run_local", "Run the local endpoint and the dashboard (what make run starts)."
    ),
    "azure": Tool("deploy.azure.__main__", "deploy.azure", "Azure ML: dry-run, deploy, gate, monitor, teardown, ..."),
}


class _Tools(click.Group):
    """A group whose commands are made from TOOLS on demand, so listing them imports no tool."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(TOOLS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        tool = TOOLS.get(cmd_name)
        return None if tool is None else _forwarding_command(cmd_name, tool)


def _forwarding_command(name: str, tool: Tool) -> click.Command:
    """A click command that hands every argument, --help included, to the tool's own argparse."""

    @click.pass_context
    def forward(ctx: click.Context, args: tuple[str, ...]) -> None:
        ctx.exit(run_tool(tool, list(args)))

    return click.Command(
        name,
        callback=forward,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        help=f"{tool.summary} Same as `python -m {tool.old_path}`; `covid-risk {name} --help` shows its options.",
        short_help=tool.summary,
        add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


def run_tool(tool: Tool, argv: list[str]) -> int:
    """Import the tool now (not at start-up) and run its `main(argv)`; its exit code, or INTERRUPTED on Ctrl-C."""
    try:
        module = importlib.import_module(tool.module)
        return int(module.main(argv))
    except KeyboardInterrupt:  # while importing; `guarded` handles it inside main
        print(f"{PROG}: interrupted", file=sys.stderr)
        return exit_codes.INTERRUPTED


cli = _Tools(
    name=PROG,
    help="The COVID-19 death-risk model, its endpoint, dashboard and Azure ML deployment: one command line. "
    "Every command also runs as `python -m <module>` (docs/cli.md).",
    epilog="Exit codes: 0 ok, 2 bad input, 3-6 monitor verdicts, 7 gate refused, 8 rollout failed, 69 Azure failed, "
    "70 internal error, 130 interrupted (docs/cli.md).",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)


def _code(value: object) -> int:
    """A SystemExit's code as an int: None is success; a text (never expected) is printed and is an internal error."""
    if value is None:
        return exit_codes.OK
    if isinstance(value, int):
        return value
    print(f"{PROG}: {exit_codes.one_line(value)}", file=sys.stderr)
    return exit_codes.INTERNAL_ERROR


def main(argv: list[str] | None = None) -> int:
    """The console script `covid-risk`: the exit code of the command run (click's usage errors are 2)."""
    try:
        result = cli.main(args=argv, prog_name=PROG, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:  # an unknown command, no command: usage errors
        exc.show()
        return exit_codes.BAD_INPUT
    except click.exceptions.Abort:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return exit_codes.INTERRUPTED
    except SystemExit as exc:  # argparse inside a tool: --help (0) and usage errors (2)
        return _code(exc.code)
    return _code(result)


if __name__ == "__main__":
    sys.exit(main())
