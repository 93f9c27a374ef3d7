"""Session fixture: the real scoring endpoint (azmlinfsrv + model/serving/score.py) on a free loopback port.

Registered in tests/conftest.py with `pytest_plugins = ["tests.endpoint_fixtures"]`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local_endpoint import LocalEndpoint, serve


@pytest.fixture(scope="session")
def collected_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's endpoint writes its collected-data JSONL files."""
    return tmp_path_factory.mktemp("collected")


@pytest.fixture(scope="session")
def local_endpoint(model_dir: Path, collected_dir: Path) -> Iterator[LocalEndpoint]:
    """The real endpoint serving the session's trained model, data collection into `collected_dir`."""
    with serve(model_dir, env={"RISK_DATA_COLLECTION_DIR": str(collected_dir)}) as endpoint:
        yield endpoint


@pytest.fixture
def dashboard_env(monkeypatch: pytest.MonkeyPatch, model_dir: Path, local_endpoint: LocalEndpoint) -> str:
    """Point the Streamlit app at the real endpoint and model; no stray key or auth from the developer's shell."""
    for name in ("RISK_ENDPOINT_KEY", "RISK_ENDPOINT_AUTH", "RISK_ENDPOINT_DEPLOYMENT", "RISK_ENDPOINT_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RISK_ENDPOINT_URL", local_endpoint.scoring_url)
    monkeypatch.setenv("RISK_MODEL_DIR", str(model_dir))
    return local_endpoint.scoring_url
