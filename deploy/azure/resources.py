"""Kubernetes resource quantities and the instance types a Kubernetes deployment may run on.

Azure ML's extension schedules a Kubernetes online deployment with an *instance type* (a CRD
holding requests/limits); the deployment's own `resources` must fit inside that type. The
default type that `az ml compute attach` creates is documented by Microsoft
(how-to-manage-kubernetes-instance-types) as requests cpu 100m / memory 2Gi, limits cpu 2 /
memory 2Gi. A limit equal to the type's 2Gi leaves no room, so settings are checked here.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import yaml

CUSTOM_INSTANCE_TYPE_FILE = Path(__file__).resolve().parent / "k8s" / "instance-type.yml"
# Microsoft's documented definition of the instance type every attached cluster gets.
DEFAULT_INSTANCE_TYPE = "defaultinstancetype"
DEFAULT_INSTANCE_LIMITS = {"cpu": "2", "memory": "2Gi"}
# RSS of one azmlinfsrv worker serving this project's model (`python -m benchmarks.bench_endpoint_memory`,
# 2026-11-25): 4 workers + the gunicorn master came to 1,018 and 1,005 MiB in two runs (master 34 MiB,
# workers 240-264 MiB); the larger worker figure, rounded up, is used. Re-measure when the model changes.
MEASURED_WORKER_MIB = 265
MEASURED_MASTER_MIB = 35

_SUFFIX: dict[str, int | Decimal] = {
    "": 1,
    "m": Decimal("0.001"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|k|M|G|T|Ki|Mi|Gi|Ti)?\s*$")


def parse_quantity(text: str | int | float) -> Decimal:
    """A Kubernetes quantity ("500m", "1", "1536Mi", "2Gi") as a number (cores or bytes)."""
    match = _QUANTITY.match(str(text))
    if not match:
        raise ValueError(
            f"{text!r} is not a Kubernetes quantity; write cpu as '500m' or '1' and memory as '1536Mi' or '2Gi'"
        )
    return Decimal(match.group(1)) * Decimal(_SUFFIX[match.group(2) or ""])


def instance_type_limits(name: str, custom_file: Path = CUSTOM_INSTANCE_TYPE_FILE) -> dict[str, str] | None:
    """Limits of a known instance type (the default one, or the one shipped in deploy/azure/k8s/); None if unknown."""
    if name.lower() == DEFAULT_INSTANCE_TYPE:
        return dict(DEFAULT_INSTANCE_LIMITS)
    if custom_file.is_file():
        doc = yaml.safe_load(custom_file.read_text(encoding="utf-8")) or {}
        if (doc.get("metadata") or {}).get("name") == name:
            return {k: str(v) for k, v in ((doc.get("spec") or {}).get("resources") or {}).get("limits", {}).items()}
    return None


def check_pod_resources(
    instance_type: str, cpu_request: str, memory_request: str, cpu_limit: str, memory_limit: str, workers: int
) -> list[str]:
    """Problems with a Kubernetes deployment's requests/limits, each saying what to change."""
    problems: list[str] = []
    try:
        cpu_req, mem_req = parse_quantity(cpu_request), parse_quantity(memory_request)
        cpu_lim, mem_lim = parse_quantity(cpu_limit), parse_quantity(memory_limit)
    except ValueError as exc:
        return [str(exc)]
    if cpu_req > cpu_lim or mem_req > mem_lim:
        problems.append(
            f"requests (cpu {cpu_request}, memory {memory_request}) exceed limits "
            f"(cpu {cpu_limit}, memory {memory_limit})"
        )
    limits = instance_type_limits(instance_type)
    if limits is not None:
        if mem_lim >= parse_quantity(limits["memory"]):
            problems.append(
                f"memory_limit {memory_limit} must be below instance type {instance_type!r}'s limit "
                f"{limits['memory']} (the pod is evicted at the type's limit); use e.g. 1536Mi, or apply "
                f'deploy/azure/k8s/instance-type.yml and set instance_type = "riskscoring"'
            )
        # Microsoft: a deployment's limits must be *below* the instance type's (equal is refused at scheduling).
        if cpu_lim >= parse_quantity(limits["cpu"]):
            problems.append(
                f"cpu_limit {cpu_limit} must be below instance type {instance_type!r}'s cpu limit {limits['cpu']}; "
                "use e.g. 1 (or a custom instance type with a higher limit)"
            )
    needed = (workers * MEASURED_WORKER_MIB + MEASURED_MASTER_MIB) * 2**20
    if mem_lim < needed:
        problems.append(
            f"memory_limit {memory_limit} cannot hold {workers} scoring worker(s) (measured about "
            f"{MEASURED_WORKER_MIB} MiB each + {MEASURED_MASTER_MIB} MiB): raise it to at least "
            f"{-(-needed // 2**20)}Mi or lower max_concurrent_requests_per_instance"
        )
    return problems
