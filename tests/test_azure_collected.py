"""The Monitoring page's Azure source: collected data read from Blob Storage, against Azurite on loopback.

Real: Azurite (Microsoft's Azure Storage emulator, npm package `azurite`, installed by `make tools`)
runs as a process on a free loopback port; blobs are written and read with azure-storage-blob, the
same client the dashboard uses in Azure; the folder written is read by the project's own monitor and
by the real Streamlit Monitoring page (AppTest). Stand-in: the blobs' content is what Microsoft
documents Azure ML's data collector writes (layout and event fields); no real deployment wrote them.
The emulator is stopped by its fixture, also when a test fails.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from deploy.local_endpoint import free_port
from model.core import schema
from model.monitoring import monitor
from model.monitoring.collected import (
    CONNECTION_ENV,
    CONTAINER_ENV,
    ENDPOINT_ENV,
    CollectedDataError,
    fetch_collected,
)

REPO = Path(__file__).resolve().parent.parent
AZURITE = Path(os.environ.get("AZURITE_BIN") or REPO / ".tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob")
# Azurite's documented development account (public, the same in every installation).
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER = "azureml-blobstore-test"
ENDPOINT = "covid19-death-risk"
NOW = dt.datetime(2026, 11, 30, 12, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A connection string to a running Azurite blob service on loopback (stopped afterwards)."""
    if not AZURITE.is_file():
        if os.environ.get("REQUIRE_STATIC_TOOLS") == "1":
            pytest.fail(f"{AZURITE} is missing: `make tools` installs Azurite (npm) into .tools/azurite")
        pytest.skip(f"Azurite not installed at {AZURITE} (`make tools`); CI runs this (REQUIRE_STATIC_TOOLS=1)")
    port = free_port()
    folder = tmp_path_factory.mktemp("azurite")
    proc = subprocess.Popen(
        [
            str(AZURITE),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
        ],
        # Blobs live in memory; azure-storage-blob 12.31.1 sends API version 2026-10-06, which Azurite 3.37.0
        # does not list yet, hence --skipApiVersionCheck (the calls used here are years older).
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/devstoreaccount1"
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(url, timeout=1)
                break
            except requests.RequestException:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"Azurite did not start: {proc.stderr.read() if proc.stderr else ''}"
                    ) from None
                time.sleep(0.3)
        yield f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};BlobEndpoint={url};"
    finally:
        # Azurite 3.37 does not exit on SIGTERM or SIGINT (it waited out a 10 s grace in every run), and its
        # blobs live in memory, so there is nothing to shut down cleanly: kill it.
        proc.kill()
        proc.wait(timeout=10)


def _event(records: list[dict[str, str]], when: dt.datetime, collection: str = "model_inputs") -> str:
    """One line as Azure ML's data collector writes it (Microsoft's documented event fields)."""
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"id-{when:%H%M}",
            "source": f"/subscriptions/s/resourceGroups/rg/workspaces/w/onlineEndpoints/{ENDPOINT}",
            "type": f"azureml.inference.{collection}",
            "datacontenttype": "application/json",
            "time": when.isoformat().replace("+00:00", "Z"),
            "data": records,
            "correlationid": f"req-{when:%d%H%M}",
            "agent": "azureml-ai-monitoring/1.0.0",
        }
    )


def _patient(age: str) -> dict[str, str]:
    return {**schema.default_record(), "age_group": age, "hosp_yn": "Unknown", "icu_yn": "Unknown"}


@pytest.fixture(scope="module")
def collected(azurite: str) -> object:
    """The workspace blob store as two deployments' collectors left it around NOW."""
    from azure.storage.blob import ContainerClient

    client = ContainerClient.from_connection_string(azurite, CONTAINER)
    client.create_container()
    ages = schema.AGE_GROUPS

    def put(deployment: str, when: dt.datetime, lines: list[str], collection: str = "model_inputs") -> None:
        name = f"modelDataCollector/{ENDPOINT}/{deployment}/{collection}/{when:%Y/%m/%d/%H}/{deployment}-0.jsonl"
        client.upload_blob(name, "\n".join(lines) + "\n", overwrite=True)

    before = NOW - dt.timedelta(days=3)
    put("blue", before, [_event([_patient(ages[-1]), _patient(ages[-2])], before), "not json at all"])
    put("green", NOW, [_event([_patient(a) for a in ages[:3]], NOW)])
    put("green", NOW, [_event([{"probability": 0.1, "risk_band": "high"}], NOW, "model_outputs")], "model_outputs")
    old = NOW - dt.timedelta(days=30)
    put("blue", old, [_event([_patient(ages[0])] * 50, old)])  # outside a 7-day window
    return client


def test_every_deployments_inputs_of_the_window_are_fetched(collected: object, tmp_path: Path) -> None:
    fetched = fetch_collected(collected, ENDPOINT, tmp_path / "c", days=7, now=NOW)
    assert (fetched.blobs, fetched.records, fetched.by_deployment) == (2, 5, {"blue": 2, "green": 3})
    assert fetched.skipped == {"lines that are not collected events": 1}
    rows = [json.loads(line) for line in (tmp_path / "c" / "scored-azure-green.jsonl").read_text().splitlines()]
    assert [r["age_group"] for r in rows] == list(schema.AGE_GROUPS[:3])
    assert {r["request_id"] for r in rows} == {f"req-{NOW:%d%H%M}"} and [r["record_index"] for r in rows] == [0, 1, 2]
    assert set(rows[0]) == {"request_id", "scored_utc", "record_index", *schema.MODEL_INPUTS}
    longer = fetch_collected(collected, ENDPOINT, tmp_path / "c", days=31, now=NOW)
    assert longer.records == 55 and longer.by_deployment["blue"] == 52  # the folder is replaced, not appended to


def test_the_monitor_reads_the_fetched_folder(collected: object, model_dir: Path, tmp_path: Path) -> None:
    fetch_collected(collected, ENDPOINT, tmp_path / "c", days=7, now=NOW)
    risk = monitor.load_model(model_dir)
    agg = monitor.aggregate_collected(tmp_path / "c", risk)
    assert (agg.rows_read, agg.rows_used, agg.files) == (5, 5, 2)
    assert dict(agg.traffic) == {monitor.UNMARKED: 5}  # Azure keeps no traffic kind: counted as live


def test_unreadable_storage_says_what_to_check(tmp_path: Path) -> None:
    from azure.storage.blob import ContainerClient

    url = f"http://127.0.0.1:{free_port()}/devstoreaccount1"
    dead = ContainerClient.from_connection_string(
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};BlobEndpoint={url};",
        CONTAINER,
        retry_total=0,
    )
    with pytest.raises(CollectedDataError, match="Storage Blob Data Reader") as caught:
        fetch_collected(dead, ENDPOINT, tmp_path / "c", now=NOW)
    assert DEV_KEY not in str(caught.value)


def test_monitoring_page_checks_azure_collected_data(
    collected: object, azurite: str, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real page: with the Azure settings it offers the deployments' collected data and reports on it."""
    from tests.app_pages import open_page

    monkeypatch.setenv(CONNECTION_ENV, azurite)
    monkeypatch.setenv(CONTAINER_ENV, CONTAINER)
    monkeypatch.setenv(ENDPOINT_ENV, ENDPOINT)
    monkeypatch.setenv("RISK_COLLECTED_DAYS", "3650")  # the blobs are dated around NOW, in the past
    monkeypatch.setenv("RISK_MODEL_DIR", str(model_dir))
    at = open_page("monitoring.py")
    from dashboard.ui import azure_collected

    at.radio(key="monitor.source").set_value(azure_collected.SOURCE_LABEL).run()
    at.button(key="monitor.run_azure").click().run(timeout=120)
    assert not at.exception, at.exception
    caption = " ".join(c.value for c in at.caption)
    assert "55 of 55 rows used" in caption and "blue: 52, green: 3" in caption
    assert not list(Path(tempfile.gettempdir()).glob("risk-collected-*")), "the temporary folder is deleted"
