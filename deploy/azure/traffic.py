"""Blue/green traffic plans as pure functions (no Azure, no I/O), so they can be tested exhaustively.

A plan is the list of endpoint traffic states to apply in order. The first state always
gives the new deployment 0% (it is smoke-tested through the `azureml-model-deployment`
header before any user traffic reaches it); the last gives it 100%. The rollback state
returns all traffic to the deployments that served it before the rollout.

Which deployments exist is NOT the traffic map: azure-ai-ml strips 0% entries from
`endpoint.traffic` before sending it, so a deployment at 0% may be missing from it. Callers
pass `existing` (from `online_deployments.list`), and every function here treats a deployment
in `existing` but not in the traffic map as having 0%.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


class TrafficPlanError(ValueError):
    """The current traffic or the requested rollout is inconsistent; the message says how to fix it."""


@dataclass(frozen=True)
class RolloutPlan:
    new_deployment: str
    states: list[dict[str, int]]
    rollback: dict[str, int]
    # The deployment the canary compares the new one with (most traffic before the rollout), if any.
    baseline: str | None = None
    # Deployments left at 0% once the new one has 100%: deleted after promotion unless kept.
    retire: tuple[str, ...] = ()


def with_existing(current: Mapping[str, int], existing: Iterable[str] | None) -> dict[str, int]:
    """The traffic map completed with 0% for deployments that exist but that the map omits."""
    full = dict(current)
    for name in existing or ():
        full.setdefault(name, 0)
    return full


def _scale(shares: Mapping[str, int], total: int) -> dict[str, int]:
    """Integer shares proportional to `shares` summing exactly to `total` (largest remainder)."""
    weight = sum(shares.values())
    if weight == 0 or total == 0:
        return dict.fromkeys(shares, 0)
    exact = {k: v * total / weight for k, v in shares.items()}
    result = {k: int(x) for k, x in exact.items()}
    leftover = total - sum(result.values())
    # Ties broken by name so the plan is deterministic.
    for k in sorted(exact, key=lambda k: (-(exact[k] - result[k]), k))[:leftover]:
        result[k] += 1
    return result


def validate_traffic(current: Mapping[str, int]) -> None:
    bad = {k: v for k, v in current.items() if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 100}
    if bad:
        raise TrafficPlanError(f"traffic values must be whole percentages 0..100, got {bad}")
    total = sum(current.values())
    if total not in (0, 100):
        raise TrafficPlanError(
            f"current traffic {dict(current)} sums to {total}%, not 100%; fix it first with "
            '`az ml online-endpoint update --name <endpoint> --traffic "blue=100"`'
        )


def validate_steps(steps: Sequence[int]) -> list[int]:
    steps = list(steps)
    if not steps or steps[-1] != 100 or any(not 0 <= a < b <= 100 for a, b in zip([0, *steps], steps, strict=False)):
        raise TrafficPlanError(f"traffic steps {steps} must increase strictly within 1..100 and end with 100")
    return steps


def next_deployment_name(current: Mapping[str, int], existing: Iterable[str] | None = None) -> str:
    """blue/green alternation: the first of blue, green not on the endpoint, else the idle one."""
    current = with_existing(current, existing)
    for name in ("blue", "green"):
        if name not in current:
            return name
    idle = [name for name in ("blue", "green") if current.get(name, 0) == 0]
    if idle:
        raise TrafficPlanError(
            f"both blue and green exist; '{idle[0]}' has 0% traffic: delete it first "
            f"(`python -m deploy.azure teardown --deployment {idle[0]} --yes`) or pass --deployment NAME"
        )
    raise TrafficPlanError("both blue and green serve traffic (a rollout is in progress); finish it with promote")


def plan_rollout(
    current: Mapping[str, int],
    new: str,
    steps: Sequence[int] = (100,),
    resume: bool = False,
    existing: Iterable[str] | None = None,
) -> RolloutPlan:
    """Traffic states that move `new` from 0% to 100% through `steps`.

    current: the endpoint's traffic now ({} for a new endpoint); existing: the deployments on it
    (from online_deployments.list; those missing from `current` have 0%). If `new` already exists
    this is a name collision (a rollout would overwrite a live slot) unless resume=True, which
    continues a rollout half-way (blue 90 / green 10 -> green 50 -> green 100) or promotes a
    deployment created at 0% (blue 100, green exists at 0% -> green 10 -> ... -> green 100).
    """
    validate_traffic(current)
    current = with_existing(current, existing)
    steps = validate_steps(steps)
    if new in current and not resume:
        raise TrafficPlanError(
            f"deployment '{new}' already exists on the endpoint with {current[new]}% traffic; choose another "
            f"name (next free: {_free_name(current)}) or continue that rollout with `promote --deployment {new}`"
        )
    if resume and new not in current:
        raise TrafficPlanError(f"cannot resume: deployment '{new}' is not on the endpoint ({sorted(current)})")
    others = {k: v for k, v in current.items() if k != new}
    base = {**others, new: 0}
    rollback = _scale(others, 100) if sum(others.values()) else dict.fromkeys(others, 0)
    rollback[new] = 0
    states = [] if resume else [dict(base)]
    already = current.get(new, 0)
    if sum(others.values()) == 0:
        # Nothing else serves traffic: there is nobody to shift from, go straight to 100%.
        steps = [100]
    for step in steps:
        if step <= already:
            continue
        state = _scale(others, 100 - step)
        state[new] = step
        states.append(state)
    serving = {k: v for k, v in others.items() if v > 0}
    baseline = max(sorted(serving), key=lambda k: serving[k]) if serving else None
    return RolloutPlan(
        new_deployment=new, states=states, rollback=rollback, baseline=baseline, retire=tuple(sorted(others))
    )


def _free_name(current: Mapping[str, int]) -> str:
    for name in ("blue", "green"):
        if name not in current:
            return name
    n = 2
    while f"blue-{n}" in current:
        n += 1
    return f"blue-{n}"
