"""Standing check: fuzz `/score` from the server's own OpenAPI document (schemathesis), bounded.

Cases are generated from the real azmlinfsrv's `/swagger.json` (Swagger 2 and OpenAPI 3):
valid payloads (every field from its enum) and schema-violating ones (wrong types, missing and
extra fields, values outside the enums, odd headers). Every answer must be below 500, every 4xx
must say what was wrong, every 200 must follow the contract, and no worker may restart.
"""

from __future__ import annotations

from typing import Any

import psutil
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from deploy.local_endpoint import LocalEndpoint
from model.serving.client import contract_problem

EXAMPLES_PER_MODE = 120  # x 2 modes x 2 document versions: ~500 requests, a few seconds


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_MODE,
    deadline=None,
    database=None,  # nothing written to .hypothesis/
    derandomize=True,  # the same cases every run: a failure reproduces
    suppress_health_check=list(HealthCheck),
)


def _workers(endpoint: LocalEndpoint) -> set[int]:
    return {p.pid for p in psutil.Process(endpoint.process.pid).children(recursive=True)}


def _check(response: Any, records: object) -> None:
    status = response.status_code
    assert status < 500, f"HTTP {status}: {response.text[:500]}"
    if status >= 400:
        body = response.json()
        message = body.get("error") or body.get("message")  # ours, or azmlinfsrv's own (e.g. 431)
        assert isinstance(message, str) and len(message) > 10, body
        return
    expected = len(records) if isinstance(records, list) else -1
    assert contract_problem(response.json(), expected) is None, response.text[:500]


@pytest.mark.parametrize("version", ["2", "3"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_score_fuzzed_from_its_own_openapi_document(
    local_endpoint: LocalEndpoint, version: str, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{local_endpoint.swagger_url}?version={version}", timeout=10)
    operation = schema["/score"]["POST"]
    workers = _workers(local_endpoint)
    seen: dict[int, int] = {}

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: schemathesis.Case) -> None:
        with requests.Session() as session:
            response = case.call(base_url=local_endpoint.base_url, session=session, timeout=30)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        body = case.body if isinstance(case.body, dict) else {}
        _check(response, body.get("data"))

    fuzz()
    assert sum(seen.values()) >= EXAMPLES_PER_MODE // 2, seen
    if mode is GenerationMode.POSITIVE:
        assert seen.get(200, 0) > 0, seen  # the document's valid payloads are scored
    else:
        assert seen.get(400, 0) > 0, seen
    assert _workers(local_endpoint) == workers, "a worker restarted while fuzzing"
    assert local_endpoint.process.poll() is None
