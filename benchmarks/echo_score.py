"""Baseline scoring script for benchmarks: same server, same parsing, no model.

It parses the JSON body and answers a response of the real shape and size with a
constant result, so `bench_endpoint.py` can separate azmlinfsrv/HTTP/JSON overhead
from the cost of validation, lookup and data collection in model/serving/score.py.
"""

from __future__ import annotations

import json
from typing import Any

from azureml_inference_server_http.api.aml_request import rawhttp
from azureml_inference_server_http.api.aml_response import AMLResponse

_RESULT = {"probability": 0.0123, "risk_band": "moderate"}


def init() -> None:
    pass


@rawhttp
def run(data: Any) -> AMLResponse:
    try:
        payload = json.loads(data.get_data(cache=False))
        records = payload["data"]
        return AMLResponse({"model_version": "echo", "results": [_RESULT] * len(records)}, 200, json_str=True)
    except Exception as exc:
        return AMLResponse({"error": str(exc)}, 400, json_str=True)
