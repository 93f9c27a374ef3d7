"""Stop what bills: the monitoring schedule, the online endpoint (with its deployments), the batch endpoint.

The schedule goes first: it starts a serverless Spark job every day whether or not the endpoint
still exists. Each step tolerates "not found" (a partial earlier teardown), so it can be re-run.
Resources outside the workspace's endpoints (AKS cluster, compute cluster, Container App,
container registry, the workspace itself) are listed in docs/azure.md "Stop everything".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deploy.azure.config import DeploySettings

Log = Callable[[str], None]


@dataclass(frozen=True)
class TeardownStep:
    kind: str  # "deployment" | "schedule" | "online_endpoint" | "batch_endpoint"
    name: str
    endpoint: str | None = None

    @property
    def description(self) -> str:
        return {
            "deployment": (
                f"delete deployment '{self.name}' of online endpoint '{self.endpoint}' (not while it has traffic)"
            ),
            "schedule": f"disable and delete monitoring schedule '{self.name}' (a Spark job a day)",
            "online_endpoint": f"delete online endpoint '{self.name}' and all its deployments",
            "batch_endpoint": f"delete batch endpoint '{self.name}' and its deployments",
        }[self.kind]


def teardown_plan(settings: DeploySettings, deployment: str | None = None) -> list[TeardownStep]:
    """One deployment, or everything this project creates in the workspace, schedule first."""
    if deployment:
        return [TeardownStep("deployment", deployment, settings.endpoint_name)]
    return [
        TeardownStep("schedule", settings.monitor_name),
        TeardownStep("online_endpoint", settings.endpoint_name),
        TeardownStep("batch_endpoint", settings.batch_endpoint_name),
    ]


class TeardownRefused(RuntimeError):
    """A step would cut live traffic; the message says what to do first."""


def run_teardown(ml_client: Any, steps: list[TeardownStep], log: Log = print) -> list[str]:
    """Run the steps in order; returns what happened to each ("deleted ..." / "... was already gone")."""
    from azure.core.exceptions import ResourceNotFoundError

    done = []
    for step in steps:
        try:
            _run(ml_client, step)
            message = f"done: {step.description}"
        except ResourceNotFoundError:
            message = f"already gone: {step.kind} '{step.name}'"
        log(message)
        done.append(message)
    return done


def _run(ml_client: Any, step: TeardownStep) -> None:
    if step.kind == "deployment":
        traffic = ml_client.online_endpoints.get(step.endpoint).traffic or {}
        share = int(traffic.get(step.name, 0) or 0)
        if share > 0:
            raise TeardownRefused(
                f"deployment '{step.name}' still serves {share}% of '{step.endpoint}': move its traffic first "
                f"(python -m deploy.azure rollback --deployment {step.name}, or promote the other deployment)"
            )
        ml_client.online_deployments.begin_delete(name=step.name, endpoint_name=step.endpoint).result()
    elif step.kind == "schedule":
        ml_client.schedules.get(step.name)  # not found -> already gone
        ml_client.schedules.begin_disable(name=step.name).result()
        ml_client.schedules.begin_delete(name=step.name).result()
    elif step.kind == "online_endpoint":
        ml_client.online_endpoints.begin_delete(name=step.name).result()
    elif step.kind == "batch_endpoint":
        ml_client.batch_endpoints.begin_delete(name=step.name).result()
    else:  # pragma: no cover - teardown_plan only makes the kinds above
        raise ValueError(f"unknown teardown step {step.kind!r}")
