"""Keep Azure ML's monitoring schedule right across rollouts: which deployment, which model's references.

Two facts change at every blue/green switch, and the schedule must follow both:

* the deployment whose collected data is read: the one serving 100% (`serving_deployment`), never
  a fixed "blue" (a rollout deletes blue, or leaves it idle at 0% with `keep_previous`);
* the references: the served model's training distribution (input drift) and its predictions over
  its training patients (prediction drift). They are registered from the deployed model version,
  downloaded from the registry at deploy time (`register_model_references`), so a schedule never
  compares a new model's traffic with an old model's training data.

The control plane is `deploy.azure.rollout.ControlPlane` (a real MLClient in Azure, an in-memory
stand-in in the tests).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from deploy.azure import entities as ent
from deploy.azure.config import ConfigError, DeploySettings
from deploy.azure.reference_data import (
    OUTPUTS_DESCRIPTION,
    build_reference_data,
    write_prediction_reference,
    write_reference,
)

Log = Callable[[str], None]
# A deployment's model as the service returns it: an ARM id (.../models/<name>/versions/<v>) or azureml:name:v.
_ARM_MODEL = re.compile(r"/models/([^/]+)/versions/([^/]+)$")
_SHORT_MODEL = re.compile(r"^(?:azureml:)?([A-Za-z0-9][A-Za-z0-9_.-]*):([A-Za-z0-9_.-]+)$")


def serving_deployment(endpoint: str, traffic: Mapping[str, int]) -> str:
    """The deployment that serves the endpoint's traffic (100% after a finished rollout; the most otherwise).

    Raises ConfigError when nothing serves traffic: a schedule on an idle slot would watch nothing.
    """
    serving = {name: int(share) for name, share in traffic.items() if int(share) > 0}
    if not serving:
        raise ConfigError(
            f"no deployment of endpoint '{endpoint}' serves traffic ({dict(traffic)}); deploy one first "
            "(python -m deploy.azure deploy) or give one traffic (az ml online-endpoint update --traffic)"
        )
    return max(sorted(serving), key=lambda name: serving[name])


def parse_model_id(model: str) -> tuple[str, str]:
    """(name, version) of a deployment's model: an ARM id, `azureml:name:version` or `name:version`."""
    text = str(model or "").strip()
    match = _ARM_MODEL.search(text) or _SHORT_MODEL.match(text)
    if not match:
        raise ConfigError(
            f"cannot tell the model version of {model!r}; deploy a registered version (azureml:name:version)"
        )
    return match.group(1), match.group(2)


def _card_version(model_dir: Path) -> str | None:
    return ent.card_tags(model_dir).get("model_version")


def register_references(plane: Any, settings: DeploySettings, model_dir: Path, work: Path) -> ent.MonitorReferences:
    """Write both reference MLTables of the model in `model_dir` under `work` and register them."""
    model_version = _card_version(model_dir)
    inputs = build_reference_data(
        settings.monitor_reference_name, str(write_reference(model_dir, work / "inputs")), None, model_version
    )
    outputs = build_reference_data(
        settings.monitor_prediction_reference_name,
        str(write_prediction_reference(model_dir, work / "outputs")),
        None,
        model_version,
        OUTPUTS_DESCRIPTION,
    )
    return ent.MonitorReferences(
        inputs=f"azureml:{inputs.name}:{plane.register_data(inputs)}",
        outputs=f"azureml:{outputs.name}:{plane.register_data(outputs)}",
        model_version=model_version,
    )


def register_model_references(
    plane: Any, settings: DeploySettings, name: str, version: str, log: Log = print
) -> ent.MonitorReferences:
    """Download registered model `name:version` and register its two references (at deploy time)."""
    with tempfile.TemporaryDirectory(prefix="risk-monitor-") as tmp:
        model_dir = plane.download_model(name, version, Path(tmp) / "model")
        references = register_references(plane, settings, model_dir, Path(tmp) / "references")
    log(f"monitoring references of model {name}:{version}: {references.inputs}, {references.outputs}")
    return references


def schedule_for_endpoint(plane: Any, settings: DeploySettings, log: Log = print) -> tuple[Any, ent.MonitorReferences]:
    """The schedule for the deployment serving the endpoint now, with its model's references registered."""
    deployment = serving_deployment(settings.endpoint_name, plane.traffic(settings.endpoint_name))
    name, version = parse_model_id(plane.deployment_model(settings.endpoint_name, deployment))
    log(f"monitoring '{deployment}' (serves the traffic of '{settings.endpoint_name}'), model {name}:{version}")
    references = register_model_references(plane, settings, name, version, log)
    target = settings.replace(deployment_name=deployment)
    return ent.build_monitor_schedule(target, references), references
