"""Blue/green rollout against the Azure ML control plane: create at 0%, check, shift, check, clean up.

The control plane is reached through the small `ControlPlane` protocol; `AzureControlPlane`
implements it with a real `MLClient`. The rollout itself sequences the pure plan from
deploy.azure.traffic, with a canary check before any traffic and after every step:

1. wait `canary.wait_s` (let the step's traffic and autoscaling settle),
2. send `canary.requests` scoring requests pinned to the NEW deployment and as many pinned to the
   baseline (the deployment that served most traffic before), with the `azureml-model-deployment`
   header, so the new slot is measured even at 10% traffic,
3. compare: the new error rate may exceed the baseline's by at most `max_error_rate_increase`,
   and its p95 latency may be at most `max_latency_ratio` times the baseline's.

Any failure restores the previous traffic and raises RolloutFailed. After promotion the
monitoring schedule is pointed at the new deployment, then the old slots are deleted (as
Microsoft's safe-rollout script does) unless they are to be kept.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from deploy.azure.traffic import RolloutPlan
from model.core import schema

Log = Callable[[str], None]


class ControlPlane(Protocol):
    def endpoint_exists(self, endpoint: str) -> bool: ...
    def traffic(self, endpoint: str) -> dict[str, int]: ...
    def deployments(self, endpoint: str) -> list[str]: ...
    def create_deployment(self, deployment: Any) -> None: ...
    def set_traffic(self, endpoint: str, traffic: dict[str, int]) -> None: ...
    def scoring_uri(self, endpoint: str) -> str: ...
    def auth_secret(self, endpoint: str) -> str: ...
    def delete_deployment(self, endpoint: str, deployment: str) -> None: ...
    def delete_endpoint(self, endpoint: str) -> None: ...
    def retarget_monitor(self, name: str, retarget: Callable[[Any], Any]) -> bool: ...
    def create_schedule(self, schedule: Any) -> None: ...
    def deployment_model(self, endpoint: str, deployment: str) -> str: ...
    def latest_model_version(self, name: str) -> str: ...
    def download_model(self, name: str, version: str, dest: Path) -> Path: ...
    def register_data(self, data: Any) -> str: ...


class RolloutFailed(RuntimeError):
    """A canary check failed; traffic was restored to the rollback state."""


def _not_found() -> type[Exception]:
    from azure.core.exceptions import ResourceNotFoundError

    return ResourceNotFoundError


@dataclass(frozen=True)
class AzureControlPlane:
    """ControlPlane over a real azure.ai.ml.MLClient (long-running operations awaited)."""

    ml_client: Any
    auth_mode: str = "key"

    def endpoint_exists(self, endpoint: str) -> bool:
        try:
            self.ml_client.online_endpoints.get(endpoint)
        except _not_found():
            return False
        return True

    def traffic(self, endpoint: str) -> dict[str, int]:
        try:
            return {k: int(v) for k, v in (self.ml_client.online_endpoints.get(endpoint).traffic or {}).items()}
        except _not_found():
            return {}

    def deployments(self, endpoint: str) -> list[str]:
        """Every deployment on the endpoint, whatever its traffic (the traffic map omits 0% ones)."""
        try:
            return sorted(d.name for d in self.ml_client.online_deployments.list(endpoint_name=endpoint))
        except _not_found():
            return []

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

    def retarget_monitor(self, name: str, retarget: Callable[[Any], Any]) -> bool:
        """Replace schedule `name` with `retarget(existing)`; False if there is no such schedule."""
        try:
            existing = self.ml_client.schedules.get(name)
        except _not_found():
            return False
        self.ml_client.schedules.begin_create_or_update(retarget(existing)).result()
        return True

    def create_schedule(self, schedule: Any) -> None:
        self.ml_client.schedules.begin_create_or_update(schedule).result()

    def deployment_model(self, endpoint: str, deployment: str) -> str:
        """The model a deployment serves, as the service returns it (an ARM id or azureml:name:version)."""
        return str(self.ml_client.online_deployments.get(name=deployment, endpoint_name=endpoint).model)

    def latest_model_version(self, name: str) -> str:
        return str(self.ml_client.models.get(name=name, label="latest").version)

    def download_model(self, name: str, version: str, dest: Path) -> Path:
        """The registered version's artifact folder at `dest` (dashboard.model_fetch, shared with the image)."""
        from dashboard.model_fetch import fetch_model

        return fetch_model(self.ml_client, f"{name}:{version}", dest)

    def register_data(self, data: Any) -> str:
        """Register a data asset (uploading its local folder); returns the version Azure gave it."""
        return str(self.ml_client.data.create_or_update(data).version)


def smoke_records() -> list[dict[str, str]]:
    """Two valid requests built from the schema: the form defaults and the oldest age group."""
    default = schema.default_record()
    return [default, {**default, "age_group": schema.AGE_GROUPS[-1]}]


# --- canary -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CanaryPolicy:
    wait_s: float = 300.0
    requests: int = 40
    max_error_rate_increase: float = 0.01
    max_latency_ratio: float = 1.5

    @classmethod
    def from_settings(cls, settings: Any) -> CanaryPolicy:
        return cls(
            wait_s=settings.canary_wait_s,
            requests=settings.canary_requests,
            max_error_rate_increase=settings.canary_max_error_rate_increase,
            max_latency_ratio=settings.canary_max_latency_ratio,
        )


@dataclass(frozen=True)
class ProbeStats:
    """What `requests` pinned scoring calls to one deployment returned."""

    deployment: str
    requests: int
    errors: int
    latencies_ms: tuple[float, ...]  # of the successful calls
    first_error: str | None = None  # one example, for the log (the client's messages hold no secrets)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 1.0

    @property
    def p95_ms(self) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def compare_canary(new: ProbeStats, baseline: ProbeStats | None, policy: CanaryPolicy) -> list[str]:
    """Why the new deployment is worse than the baseline (or, without one, than the allowed error rate)."""
    problems: list[str] = []
    base_rate = baseline.error_rate if baseline is not None else 0.0
    if new.error_rate > base_rate + policy.max_error_rate_increase:
        problems.append(
            f"'{new.deployment}' failed {new.errors}/{new.requests} requests ({new.error_rate:.1%}) vs "
            f"{base_rate:.1%} on the baseline (allowed +{policy.max_error_rate_increase:.1%})"
            + (f"; e.g. {new.first_error}" if new.first_error else "")
        )
    if (
        baseline is not None
        and new.p95_ms is not None
        and baseline.p95_ms is not None
        and new.p95_ms > baseline.p95_ms * policy.max_latency_ratio
    ):
        problems.append(
            f"'{new.deployment}' p95 latency {new.p95_ms:.0f} ms is over {policy.max_latency_ratio:g}x "
            f"'{baseline.deployment}''s {baseline.p95_ms:.0f} ms"
        )
    return problems


Prober = Callable[[str, int], ProbeStats]  # (deployment, requests) -> stats, pinned by header


def probe_deployment(
    client: Any, deployment: str, n: int, records: Sequence[dict[str, str]] | None = None
) -> ProbeStats:
    """Send `n` scoring requests through `client` (an EndpointClient pinned to `deployment`)."""
    from model.serving.client import EndpointError

    records = list(records or smoke_records())
    errors, latencies, first_error = 0, [], None
    for _ in range(n):
        try:
            result = client.score(records, traffic=schema.PROBE)  # a smoke test is not a patient
            if len(result.results) != len(records):
                raise EndpointError(f"sent {len(records)} records, got {len(result.results)} results")
            for item in result.results:
                p = float(item["probability"] if isinstance(item, dict) else item.probability)
                if not 0.0 <= p <= 1.0:
                    raise EndpointError(f"probability {p} outside [0, 1]")
        except EndpointError as exc:
            errors += 1
            first_error = first_error or f"{type(exc).__name__}: {exc}"
            continue
        latencies.append(float(result.latency_ms))
    return ProbeStats(deployment, n, errors, tuple(latencies), first_error)


def endpoint_prober(scoring_uri: str, secret: str, timeout_s: float = 10.0) -> Prober:
    """A Prober over the project's EndpointClient; no retries, so a failing slot shows as failing."""
    from model.serving.client import EndpointClient, EndpointConfig

    def probe(deployment: str, n: int) -> ProbeStats:
        config = EndpointConfig(
            scoring_url=scoring_uri,
            name="azure",
            auth="key",
            key=secret,
            deployment=deployment,
            timeout_s=timeout_s,
            retries=0,
        )
        return probe_deployment(EndpointClient(config), deployment, n)

    return probe


# --- the rollout --------------------------------------------------------------------------


@dataclass(frozen=True)
class AfterPromotion:
    """What to do once the new deployment serves 100% and passed its last check."""

    monitor_name: str | None = None  # the monitoring schedule to point at the new deployment
    retarget: Callable[[Any], Any] | None = None  # existing schedule -> schedule for the new deployment
    keep_previous: bool = False


def _canary(
    plan: RolloutPlan, probe: Prober, policy: CanaryPolicy, log: Log, sleep: Callable[[float], None], wait: bool
) -> None:
    if wait and policy.wait_s > 0:
        log(f"  waiting {policy.wait_s:g} s before the canary check")
        sleep(policy.wait_s)
    new = probe(plan.new_deployment, policy.requests)
    base = probe(plan.baseline, policy.requests) if plan.baseline else None
    shown = [s for s in (new, base) if s is not None]
    log(
        "  canary: "
        + "; ".join(f"{s.deployment} errors {s.errors}/{s.requests}, p95 {s.p95_ms or 0:.0f} ms" for s in shown)
    )
    problems = compare_canary(new, base, policy)
    if problems:
        raise RolloutFailed("; ".join(problems))


def execute_rollout(
    plane: ControlPlane,
    endpoint: str,
    plan: RolloutPlan,
    probe: Prober,
    policy: CanaryPolicy,
    deployment_entity: Any | None = None,
    after: AfterPromotion | None = None,
    log: Log = print,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, int]:
    """Apply the plan with a canary check before any traffic and after each step.

    On any failure restore plan.rollback and raise RolloutFailed (the new deployment stays, at 0%,
    for its logs). On success retarget the monitor and retire the old deployments (see AfterPromotion).
    """
    new = plan.new_deployment
    after = after or AfterPromotion()
    if deployment_entity is not None:
        log(f"creating deployment '{new}' on '{endpoint}' (0% traffic) ...")
        plane.create_deployment(deployment_entity)
    try:
        log(f"canary of '{new}' before any traffic (requests pinned with azureml-model-deployment)")
        _canary(plan, probe, policy, log, sleep, wait=False)
        for state in plan.states:
            log(f"traffic -> {state}")
            plane.set_traffic(endpoint, state)
            if state.get(new, 0) > 0:
                _canary(plan, probe, policy, log, sleep, wait=True)
    except Exception as exc:
        log(f"rollout failed ({type(exc).__name__}: {exc}); restoring traffic {plan.rollback}")
        plane.set_traffic(endpoint, plan.rollback)
        raise RolloutFailed(f"rollout of '{new}' failed and was rolled back to {plan.rollback}: {exc}") from None
    final = plan.states[-1] if plan.states else plane.traffic(endpoint)
    _after_promotion(plane, endpoint, plan, after, log)
    return final


def _after_promotion(plane: ControlPlane, endpoint: str, plan: RolloutPlan, after: AfterPromotion, log: Log) -> None:
    if after.monitor_name is not None and after.retarget is not None:
        if plane.retarget_monitor(after.monitor_name, after.retarget):
            log(f"monitoring schedule '{after.monitor_name}' now watches '{plan.new_deployment}'")
        else:
            log("no monitoring schedule yet: create it with `python -m deploy.azure monitor`")
    for old in plan.retire:
        if after.keep_previous:
            log(f"kept '{old}' at 0% (keep_previous_deployment); it still bills until deleted")
        else:
            log(f"deleting previous deployment '{old}' (now 0%)")
            plane.delete_deployment(endpoint, old)
