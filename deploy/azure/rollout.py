"""Blue/green rollout against the Azure ML control plane: create at 0%, smoke-test, shift, roll back.

The control plane is reached through the small `ControlPlane` protocol; `AzureControlPlane`
implements it with a real `MLClient`. The rollout logic itself only sequences the pure plan
from deploy.azure.traffic and calls a smoke-test function between steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from deploy.azure.traffic import RolloutPlan
from model import schema

Log = Callable[[str], None]


class ControlPlane(Protocol):
    def traffic(self, endpoint: str) -> dict[str, int]: ...
    def create_deployment(self, deployment: Any) -> None: ...
    def set_traffic(self, endpoint: str, traffic: dict[str, int]) -> None: ...
    def scoring_uri(self, endpoint: str) -> str: ...
    def auth_secret(self, endpoint: str) -> str: ...
    def delete_deployment(self, endpoint: str, deployment: str) -> None: ...
    def delete_endpoint(self, endpoint: str) -> None: ...


class RolloutFailed(RuntimeError):
    """A smoke test failed; traffic was restored to the rollback state."""


@dataclass(frozen=True)
class AzureControlPlane:
    """ControlPlane over a real azure.ai.ml.MLClient (long-running operations awaited)."""

    ml_client: Any
    auth_mode: str = "key"

    def traffic(self, endpoint: str) -> dict[str, int]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return dict(self.ml_client.online_endpoints.get(endpoint).traffic or {})
        except ResourceNotFoundError:
            return {}

    def create_deployment(self, deployment: Any) -> None:
        self.ml_client.online_deployments.begin_create_or_update(deployment).result()

    def set_traffic(self, endpoint: str, traffic: dict[str, int]) -> None:
        entity = self.ml_client.online_endpoints.get(endpoint)
        entity.traffic = traffic
        self.ml_client.online_endpoints.begin_create_or_update(entity).result()

    def scoring_uri(self, endpoint: str) -> str:
        return str(self.ml_client.online_endpoints.get(endpoint).scoring_uri)

    def auth_secret(self, endpoint: str) -> str:
        """A key (key auth) or a token (aml_token / aad_token); never logged."""
        if self.auth_mode == "aad_token":
            return str(self.ml_client._credential.get_token("https://ml.azure.com/.default").token)
        creds = self.ml_client.online_endpoints.get_keys(endpoint)
        return str(getattr(creds, "primary_key", None) or getattr(creds, "access_token", ""))

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        self.ml_client.online_deployments.begin_delete(name=deployment, endpoint_name=endpoint).result()

    def delete_endpoint(self, endpoint: str) -> None:
        self.ml_client.online_endpoints.begin_delete(name=endpoint).result()


def smoke_records() -> list[dict[str, str]]:
    """Two valid requests built from the schema: the form defaults and the oldest age group."""
    default = {f.name: f.default for f in schema.FEATURES if f.model_input}
    return [default, {**default, "age_group": schema.AGE_GROUPS[-1]}]


def endpoint_smoke_test(
    scoring_uri: str, secret: str, deployment: str | None, timeout_s: float = 30.0
) -> str:
    """Score smoke_records() through the project's EndpointClient; returns the served model_version.

    deployment=None sends no `azureml-model-deployment` header (the request follows the
    endpoint's traffic split). Imported lazily: only a live rollout needs the client.
    """
    from dashboard.client import EndpointClient, EndpointConfig

    config = EndpointConfig(
        scoring_url=scoring_uri, name="azure", auth="key", key=secret, deployment=deployment, timeout_s=timeout_s
    )
    records = smoke_records()
    result = EndpointClient(config).score(records)
    if len(result.results) != len(records):
        raise RolloutFailed(f"smoke test: sent {len(records)} records, got {len(result.results)} results")
    for item in result.results:
        p = item["probability"] if isinstance(item, dict) else item.probability
        if not 0.0 <= float(p) <= 1.0:
            raise RolloutFailed(f"smoke test: probability {p} outside [0, 1]")
    return str(result.model_version)


SmokeTest = Callable[[str | None], None]


def execute_rollout(
    plane: ControlPlane,
    endpoint: str,
    plan: RolloutPlan,
    smoke: SmokeTest,
    deployment_entity: Any | None = None,
    log: Log = print,
) -> dict[str, int]:
    """Apply the plan; smoke-test the new deployment directly before any traffic and the endpoint
    after each step. On any failure restore plan.rollback and raise RolloutFailed."""
    new = plan.new_deployment
    if deployment_entity is not None:
        log(f"creating deployment '{new}' on '{endpoint}' (0% traffic) ...")
        plane.create_deployment(deployment_entity)
    try:
        log(f"smoke test of '{new}' through the azureml-model-deployment header")
        smoke(new)
        for state in plan.states:
            log(f"traffic -> {state}")
            plane.set_traffic(endpoint, state)
            if state.get(new, 0) > 0:
                smoke(None)
    except Exception as exc:
        log(f"rollout failed ({type(exc).__name__}: {exc}); restoring traffic {plan.rollback}")
        plane.set_traffic(endpoint, plan.rollback)
        raise RolloutFailed(f"rollout of '{new}' failed and was rolled back to {plan.rollback}: {exc}") from None
    return plan.states[-1] if plan.states else plane.traffic(endpoint)
