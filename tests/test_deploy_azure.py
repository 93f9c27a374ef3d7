"""Azure ML deployment path (deploy/azure), exercised offline.

Azure's control plane cannot be reached from this machine, so no MLClient operation is
exercised here. What is real: every entity is built with the real azure-ai-ml SDK and
serialised by its own schemas; every committed YAML spec is loaded by the SDK's own loaders
(the ones `az ml ... create -f` uses) and compared with the entity the Python code builds;
the dry-run CLI runs end to end (in-process; as a process in tests/test_cli.py) without any credential. The only fake is
`InMemoryControlPlane` below: a dict standing in for Azure's endpoint/deployment state, used
to test the blue/green sequencing and rollback; the traffic plans themselves are pure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from azure.ai.ml.entities._load_functions import (
    load_batch_endpoint,
    load_data,
    load_environment,
    load_job,
    load_model,
    load_model_batch_deployment,
    load_online_deployment,
    load_online_endpoint,
    load_schedule,
)

from deploy.azure import batch_sizing, resources
from deploy.azure import entities as ent
from deploy.azure.config import ConfigError, DeploySettings, load_settings, load_workspace_config
from deploy.azure.environment import (
    BATCH_CONDA_FILE,
    CONDA_FILE,
    SCORING_PACKAGES,
    read_pins,
    render_batch_conda_yaml,
    render_conda_yaml,
)
from deploy.azure.reference_data import (
    MLTABLE_FILE,
    TABLE_FILE,
    prediction_frame,
    reference_frame,
    write_prediction_reference,
    write_reference,
)
from deploy.azure.rollout import (
    AfterPromotion,
    CanaryPolicy,
    Prober,
    ProbeStats,
    RolloutFailed,
    compare_canary,
    execute_rollout,
    probe_deployment,
    smoke_records,
)
from deploy.azure.specs import build_specs
from deploy.azure.staging import (
    SCORING_PARTS,
    TRAINING_PARTS,
    stage_package,
    stage_scoring_code,
    stage_training_code,
)
from deploy.azure.teardown import TeardownRefused, run_teardown, teardown_plan
from deploy.azure.traffic import TrafficPlanError, next_deployment_name, plan_rollout
from model.core import schema
from model.serving.client import EndpointClient, EndpointConfig
from model.serving.lookup import RiskLookup
from tests.conftest import REAL_CDC_FILE
from tests.import_closure import import_closure, module_name, run_isolated
from tests.inprocess import Ran, run_main

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "deploy" / "azure" / "specs"
LOADERS = {
    "kubernetes-endpoint.yml": load_online_endpoint,
    "kubernetes-deployment.yml": load_online_deployment,
    "managed-endpoint.yml": load_online_endpoint,
    "managed-deployment.yml": load_online_deployment,
    "batch-endpoint.yml": load_batch_endpoint,
    # `type: model` batch deployments are loaded by the ModelBatchDeployment loader (the
    # generic load_batch_deployment only knows the legacy top-level settings layout).
    "batch-deployment.yml": load_model_batch_deployment,
    "monitor-schedule.yml": load_schedule,
}


def plain(value: object) -> object:
    return json.loads(json.dumps(value, default=str))


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Path:
    """The committed specs in a copy of the repo layout, with the code folder staged, so that
    the loaders can resolve every relative path without writing into the repository."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(SPECS, root / "deploy" / "azure" / "specs")
    shutil.copytree(CONDA_FILE.parent, root / "deploy" / "azure" / "environment")
    stage_scoring_code(root / "artifacts" / "azure" / "code", REPO)
    stage_training_code(root / "artifacts" / "azure" / "train-code", REPO)
    (root / "artifacts" / "model").mkdir(parents=True)
    write_reference(model_dir, root / "artifacts" / "azure" / "reference")
    write_prediction_reference(model_dir, root / "artifacts" / "azure" / ent.PREDICTION_REFERENCE_FOLDER)
    return root / "deploy" / "azure" / "specs"


# --- environment pins -------------------------------------------------------------------


def test_conda_pins_equal_requirements() -> None:
    pins = read_pins(REPO / "requirements.txt")
    conda = yaml.safe_load(CONDA_FILE.read_text())
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert [p.split("==")[0] for p in pip] == list(SCORING_PACKAGES)
    for line in pip:
        name, version = line.split("==")
        assert pins[name.lower()] == version, f"{name}: conda {version} != requirements.txt {pins[name.lower()]}"


def test_committed_conda_file_is_generated() -> None:
    assert CONDA_FILE.read_text() == render_conda_yaml(), "regenerate: python -m deploy.azure dry-run --write-specs"
    assert BATCH_CONDA_FILE.read_text() == render_batch_conda_yaml(), "regenerate the batch conda file too"


def test_unpinned_scoring_package_is_reported(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("numpy>=2\npandas==3.1.1\n")
    with pytest.raises(ValueError, match="numpy"):
        render_conda_yaml(req)


# --- specs == code ----------------------------------------------------------------------


def test_committed_specs_are_what_the_code_renders() -> None:
    specs = build_specs(DeploySettings(), ent.SpecPaths.relative_to(SPECS))
    assert {s.filename for s in specs} == {p.name for p in SPECS.glob("*.yml")}
    for spec in specs:
        assert (SPECS / spec.filename).read_text() == spec.text(), f"{spec.filename} is stale: regenerate it"


@pytest.mark.parametrize("filename", sorted(LOADERS))
def test_spec_loads_and_equals_built_entity(mirror: Path, filename: str) -> None:
    loaded = LOADERS[filename](mirror / filename)
    settings = DeploySettings()
    paths = ent.SpecPaths.relative_to(SPECS)
    k8s, managed = settings.replace(target="kubernetes"), settings.replace(target="managed")
    built = {
        "kubernetes-endpoint.yml": lambda: ent.build_online_endpoint(k8s),
        "kubernetes-deployment.yml": lambda: ent.build_online_deployment(k8s, paths),
        "managed-endpoint.yml": lambda: ent.build_online_endpoint(managed),
        "managed-deployment.yml": lambda: ent.build_online_deployment(managed, paths),
        "batch-endpoint.yml": lambda: ent.build_batch_endpoint(settings),
        "batch-deployment.yml": lambda: ent.build_batch_deployment(settings, paths),
        "monitor-schedule.yml": lambda: ent.build_monitor_schedule(settings),
    }[filename]()
    assert type(loaded) is type(built)
    assert plain(loaded._to_dict()) == plain(built._to_dict())


def test_kubernetes_deployment_spec_content(mirror: Path) -> None:
    d = load_online_deployment(mirror / "kubernetes-deployment.yml")
    assert d.type.lower() == "kubernetes" and d.instance_type == "defaultinstancetype"
    assert d.code_configuration.scoring_script == "model/serving/score.py"
    assert (Path(d.base_path) / d.code_configuration.code / "model" / "serving" / "score.py").parent.is_dir()
    assert d.resources.requests.cpu == "500m" and d.resources.limits.memory == "1536Mi"
    assert d.scale_settings.type == "target_utilization"
    assert d.liveness_probe.period == 10 and d.readiness_probe.failure_threshold == 3
    assert d.request_settings.max_concurrent_requests_per_instance == 4
    assert set(d.data_collector.collections) == {"model_inputs", "model_outputs"}
    pip = next(x["pip"] for x in d.environment.conda_file["dependencies"] if isinstance(x, dict))
    assert "scikit-learn==" + read_pins(REPO / "requirements.txt")["scikit-learn"] in pip


def test_model_environment_and_job_specs_load(mirror: Path) -> None:
    settings, paths = DeploySettings(), ent.SpecPaths.relative_to(SPECS)
    model = load_model(mirror / "model.yml")
    assert (model.name, model.type) == (settings.model_name, "custom_model")
    env = load_environment(mirror / "environment.yml")
    built_env = ent.build_environment(paths, named=True)
    assert (env.image, env.conda_file) == (built_env.image, built_env.conda_file)
    batch_env = load_environment(mirror / "batch-environment.yml")
    built_batch = ent.build_batch_environment(paths, named=True)
    assert (batch_env.name, batch_env.conda_file) == (built_batch.name, built_batch.conda_file)
    job = load_job(mirror / "train-job.yml")
    built = ent.build_training_job(settings, paths)
    assert job.command == built.command == ent.TRAIN_COMMAND
    assert job.compute == built.compute == settings.cluster
    assert job.inputs["data"].path.removeprefix("azureml:") == built.inputs["data"].path.removeprefix("azureml:")
    assert job.outputs["model"].type == built.outputs["model"].type == "uri_folder"
    assert job.environment.conda_file == built.environment.conda_file
    assert "--data ${{inputs.data}} --out ${{outputs.model}}" in job.command


def test_managed_and_kubernetes_differ_where_they_must() -> None:
    s, paths = DeploySettings(), ent.SpecPaths.absolute()
    assert type(ent.build_online_endpoint(s)).__name__ == "KubernetesOnlineEndpoint"
    assert ent.build_online_endpoint(s)._to_dict()["compute"] == "azureml:aks-inference"
    managed = ent.build_online_deployment(s.replace(target="managed"), paths)
    assert managed.instance_type == "Standard_DS3_v2" and not hasattr(managed, "resources")


def test_monitor_reads_collected_data_of_the_deployment() -> None:
    sched = ent.build_monitor_schedule(DeploySettings(deployment_name="green"))
    signals = sched.create_monitor.monitoring_signals
    assert signals["input_drift"].production_data.data_context == "model_inputs"
    assert signals["prediction_drift"].production_data.data_context == "model_outputs"
    assert signals["input_drift"].features == list(schema.MODEL_INPUTS)
    assert sched.create_monitor.monitoring_target.endpoint_deployment_id.endswith(":green")
    assert "green-model_inputs" in signals["input_drift"].production_data.input_data.path


# --- model registration -----------------------------------------------------------------


def test_model_tags_come_from_the_card(model_dir: Path) -> None:
    card = json.loads((model_dir / "model_card.json").read_text())
    model = ent.build_model(DeploySettings(), ent.SpecPaths.absolute(model_dir=model_dir), ent.card_tags(model_dir))
    assert model.tags["model_version"] == card["model_version"]
    assert model.tags["schema_version"] == schema.SCHEMA_VERSION
    assert model.tags["data_sha256"] == card["data"]["sha256"]
    assert float(model.tags["test_roc_auc"]) == pytest.approx(card["metrics"]["test"]["roc_auc"], rel=1e-5)
    assert {"test_pr_auc", "test_brier"} <= set(model.tags)
    assert model._to_dict()["type"] == "custom_model"


def test_card_tags_on_a_folder_without_card(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"model_card\.json not found.*model\.train"):
        ent.card_tags(tmp_path)


# --- staged code folders: what ships is what it needs -----------------------------------

# What Azure runs in each folder: the deployments' scripts (by path) and the job's `python -m` modules.
ENTRY_POINTS = {
    "scoring": [module_name(REPO, REPO / ent.SCORING_SCRIPT), module_name(REPO, REPO / ent.BATCH_DRIVER)],
    "training": re.findall(r"python -m (\S+)", ent.TRAIN_COMMAND),
}
STAGERS = {"scoring": (stage_scoring_code, SCORING_PARTS), "training": (stage_training_code, TRAINING_PARTS)}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("staged")
    return {kind: stager(root / kind, REPO) for kind, (stager, _) in STAGERS.items()}


def test_training_command_runs_modules_not_shims() -> None:
    assert ENTRY_POINTS["training"] == ["model.training.train", "model.training.mlflow_log"]
    assert ent.SCORING_SCRIPT == "model/serving/score.py" and ent.BATCH_DRIVER == "model/serving/batch_driver.py"


# The scoring folder: the schema and artifact readers, the file readers, the serving code. The training
# folder: those without serving (training imports none of it) plus statistics and training.
STAGED_ENTRIES = {
    "scoring": {"__init__.py", "core", "data", "serving"},
    "training": {"__init__.py", "core", "data", "stats", "training"},
}


@pytest.mark.parametrize("kind", sorted(STAGERS))
def test_staged_folder_holds_exactly_its_parts(staged: dict[str, Path], kind: str) -> None:
    """File for file the repository's model/<part> of each part, and nothing else (no caches, no other part)."""
    assert {p.name for p in (staged[kind] / "model").iterdir()} == STAGED_ENTRIES[kind]
    assert [p.name for p in staged[kind].iterdir()] == ["model"]
    expected: dict[str, bytes] = {}
    for part in STAGERS[kind][1]:
        source = REPO / "model" / part
        if source.is_file():
            expected[f"model/{part}"] = source.read_bytes()
            continue
        expected.update(
            {
                f"model/{part}/{path}": content
                for path, content in _files(source).items()
                if "__pycache__" not in path and not path.endswith(".pyc")
            }
        )
    assert _files(staged[kind]) == expected


@pytest.mark.parametrize("kind", sorted(STAGERS))
def test_staged_folder_holds_what_its_entry_points_import_and_no_more(staged: dict[str, Path], kind: str) -> None:
    """The imports of Azure's entry points, followed through the staged files (lazy ones too), find every
    module there, and every part staged is reached: a part they do not import would ship for nothing."""
    closure = import_closure(staged[kind], ENTRY_POINTS[kind], reference=REPO)
    assert not closure.missing, f"imported but not staged (add the part in deploy/azure/staging.py): {closure.missing}"
    assert closure.entries("model") == set(STAGERS[kind][1])
    assert not closure.entries("dashboard") and not closure.entries("deploy")


# Libraries a scoring container must not need (the import-linter contract on score.py and batch_driver.py).
NOT_IN_SCORING = ("sklearn", "statsmodels", "plotly", "streamlit", "mlflow")


def test_scoring_folder_scores_on_its_own(staged: dict[str, Path], model_dir: Path, tmp_path: Path) -> None:
    """score.py and batch_driver.py loaded by path, as Azure loads them, in a clean interpreter that sees
    only the staged folder and the installed libraries; init() and run() answer as the repository's code does."""
    records = [{"age_group": "80+ Years"}, {"age_group": "60 - 69 Years", "sex": "Male", "medcond_yn": "Yes"}]
    cases = tmp_path / "cases.csv"
    pd.read_csv(REAL_CDC_FILE, dtype=str, keep_default_na=False, nrows=200).to_csv(cases, index=False)
    code = f"""
import importlib.util, json, sys
from pathlib import Path
folder = Path(sys.path[0])

def load(path, name):  # azmlinfsrv and Azure's batch runner import the entry script from its file
    spec = importlib.util.spec_from_file_location(name, folder / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

score = load({ent.SCORING_SCRIPT!r}, "entry_module")
driver = load({ent.BATCH_DRIVER!r}, "batch_driver")
from flask import Request
from werkzeug.test import EnvironBuilder

def post(body):
    environ = EnvironBuilder(method="POST", data=json.dumps(body), content_type="application/json").get_environ()
    response = score.run(Request(environ))
    return response.status_code, json.loads(response.get_data(as_text=True))

score.init()
ok = post({{"data": {records!r}}})
bad = post({{"data": [{{"sex": "Female"}}]}})
driver.init()
rows = driver.run([{str(cases)!r}])
print(json.dumps({{
    "ok": ok, "bad": bad, "rows": len(rows), "scored": int(rows["probability"].notna().sum()),
    "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("model", "dashboard", "deploy")),
    "files": sorted({{str(Path(m.__file__).resolve()) for n, m in list(sys.modules.items())
                     if n.split(".")[0] == "model" and getattr(m, "__file__", None)}}),
    "heavy": sorted({{m.split(".")[0] for m in sys.modules}} & {set(NOT_IN_SCORING)!r}),
}}))
"""
    env = {"AZUREML_MODEL_DIR": str(model_dir), "RISK_DATA_COLLECTION_DIR": str(tmp_path / "collected")}
    proc = run_isolated(code, staged["scoring"], env={**env, "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    status, body = found["ok"]
    expected = RiskLookup.from_model_dir(model_dir).score_records(records)
    assert status == 200 and body["results"] == json.loads(json.dumps(expected))
    assert found["bad"][0] == 400 and "age_group" in found["bad"][1]["error"]
    assert found["rows"] == 200 and found["scored"] > 150
    folder = staged["scoring"].resolve()
    assert all(Path(f).is_relative_to(folder) for f in found["files"]), found["files"]
    assert {m.split(".")[1] for m in found["modules"] if m.count(".")} <= {"core", "data", "serving"}
    assert found["heavy"] == []


def test_training_folder_imports_and_runs_its_commands_on_its_own(staged: dict[str, Path]) -> None:
    """The job's modules import from the staged training folder alone, and its command line parses there."""
    code = f"""
import importlib, io, json, runpy, sys
from contextlib import redirect_stdout
from pathlib import Path
for name in {ENTRY_POINTS["training"]!r}:
    importlib.import_module(name)
sys.argv = ["train", "--help"]
out = io.StringIO()
try:
    with redirect_stdout(out):
        runpy.run_module({ENTRY_POINTS["training"][0]!r}, run_name="__main__")
except SystemExit as exc:
    code = exc.code
folder = Path(sys.path[0]).resolve()
print(json.dumps({{"exit": code, "help": "--data" in out.getvalue() and "--out" in out.getvalue(),
    "outside": sorted(n for n, m in list(sys.modules.items()) if n.split(".")[0] == "model"
                      and getattr(m, "__file__", None) and not Path(m.__file__).resolve().is_relative_to(folder))}}))
"""
    proc = run_isolated(code, staged["training"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"exit": 0, "help": True, "outside": []}


def test_staging_names_a_missing_part(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"model/planning2 not found.*deploy/azure/staging\.py"):
        stage_package(tmp_path / "code", ("__init__.py", "planning2"), REPO)
    assert not (tmp_path / "code").exists()


# --- traffic plans (pure) ---------------------------------------------------------------


def test_plan_on_empty_endpoint() -> None:
    plan = plan_rollout({}, "blue", (10, 50, 100))
    assert plan.states == [{"blue": 0}, {"blue": 100}]
    assert plan.rollback == {"blue": 0}


def test_plan_blue_to_green_in_steps() -> None:
    plan = plan_rollout({"blue": 100}, "green", (10, 50, 100))
    assert plan.states == [
        {"blue": 100, "green": 0},
        {"blue": 90, "green": 10},
        {"blue": 50, "green": 50},
        {"blue": 0, "green": 100},
    ]
    assert plan.rollback == {"blue": 100, "green": 0}
    assert plan_rollout({"blue": 100}, "green").states == [{"blue": 100, "green": 0}, {"blue": 0, "green": 100}]


def test_plan_resumes_mid_rollout() -> None:
    plan = plan_rollout({"blue": 90, "green": 10}, "green", (10, 50, 100), resume=True)
    assert plan.states == [{"blue": 50, "green": 50}, {"blue": 0, "green": 100}]
    assert plan.rollback == {"blue": 100, "green": 0}


def test_plan_name_collision_is_refused() -> None:
    with pytest.raises(TrafficPlanError, match=r"already exists.*promote"):
        plan_rollout({"blue": 90, "green": 10}, "green", (10, 50, 100))
    with pytest.raises(TrafficPlanError, match="already exists"):
        plan_rollout({"blue": 100}, "blue")


def test_plan_keeps_sums_at_100_with_several_deployments() -> None:
    plan = plan_rollout({"a": 33, "b": 33, "c": 34}, "d", (10, 25, 100))
    assert all(sum(s.values()) == 100 for s in plan.states[1:])
    assert [s["d"] for s in plan.states] == [0, 10, 25, 100]
    assert plan.rollback == {"a": 33, "b": 33, "c": 34, "d": 0}


@pytest.mark.parametrize(
    ("current", "steps"),
    [({"blue": 80}, (100,)), ({"blue": 100}, (50, 10, 100)), ({"blue": 100}, (10, 50)), ({"blue": -5}, (100,))],
)
def test_plan_rejects_bad_input(current: dict[str, int], steps: tuple[int, ...]) -> None:
    with pytest.raises(TrafficPlanError):
        plan_rollout(current, "green", steps)


def test_next_deployment_name() -> None:
    assert next_deployment_name({}) == "blue"
    assert next_deployment_name({"blue": 100}) == "green"
    with pytest.raises(TrafficPlanError, match="delete it first"):
        next_deployment_name({"blue": 100, "green": 0})


# --- rollout sequencing against an in-memory stand-in for Azure's control plane ---------


class InMemoryControlPlane:
    """FAKE of Azure's control plane only: endpoint traffic, deployments, registry and schedule as dicts.

    It behaves like azure-ai-ml where that matters: `traffic()` omits 0% deployments (the SDK
    strips them before sending), so which deployments exist is known only from `deployments()`
    (online_deployments.list); traffic to a missing deployment and deleting a live one fail.
    The model registry holds real artifact folders (`models`: version -> folder) and `download_model`
    copies one out as azure-ai-ml's download does; `register_data` numbers versions per name and
    keeps a copy of the uploaded folder, as the service does.
    """

    def __init__(
        self,
        traffic: dict[str, int],
        existing: tuple[str, ...] = (),
        monitor: bool = True,
        models: dict[str, Path] | None = None,
        served: dict[str, str] | None = None,
    ) -> None:
        self.traffic_now = {k: v for k, v in traffic.items() if v}
        self.existing = set(traffic) | set(existing)
        self.history: list[dict[str, int]] = []
        self.deleted: list[str] = []
        self.models = models or {}
        self.served = dict(served or {})  # deployment -> model id, as online_deployments.get(...).model
        self.data: dict[str, list[tuple[object, Path]]] = {}
        self.uploads = Path(tempfile.mkdtemp(prefix="fake-datastore-"))
        # The schedule as Azure holds it: made for blue, with reference data version 3 registered earlier.
        blue = DeploySettings(monitor_reference_version="3")
        self.schedule = ent.build_monitor_schedule(blue) if monitor else None

    def endpoint_exists(self, endpoint: str) -> bool:
        return True

    def traffic(self, endpoint: str) -> dict[str, int]:
        return dict(self.traffic_now)

    def deployments(self, endpoint: str) -> list[str]:
        return sorted(self.existing)

    def create_deployment(self, deployment: object) -> None:
        self.existing.add(deployment.name)  # type: ignore[attr-defined]
        self.served[deployment.name] = deployment.model  # type: ignore[attr-defined]

    def set_traffic(self, endpoint: str, traffic: dict[str, int]) -> None:
        assert set(traffic) <= self.existing, "traffic to a deployment that does not exist"
        assert sum(traffic.values()) in (0, 100)
        self.traffic_now = {k: v for k, v in traffic.items() if v}
        self.history.append(dict(traffic))

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        assert not self.traffic_now.get(deployment), "Azure refuses to delete a deployment with traffic"
        self.existing.discard(deployment)
        self.deleted.append(deployment)

    def retarget_monitor(self, name: str, retarget: Callable[[object], object]) -> bool:
        if self.schedule is None:
            return False
        self.schedule = retarget(self.schedule)
        return True

    def create_schedule(self, schedule: object) -> None:
        self.schedule = schedule

    def deployment_model(self, endpoint: str, deployment: str) -> str:
        from azure.core.exceptions import ResourceNotFoundError

        if deployment not in self.existing:
            raise ResourceNotFoundError(f"deployment {deployment} not found")
        return self.served[deployment]

    def latest_model_version(self, name: str) -> str:
        return max(self.models, key=int)

    def download_model(self, name: str, version: str, dest: Path) -> Path:
        shutil.copytree(self.models[version], dest)
        return dest

    def register_data(self, data: object) -> str:
        versions = self.data.setdefault(data.name, [])  # type: ignore[attr-defined]
        version = str(len(versions) + 4)  # versions 1-3 were registered before this test
        kept = self.uploads / data.name / version  # type: ignore[attr-defined]
        shutil.copytree(data.path, kept)  # type: ignore[attr-defined]
        versions.append((data, kept))
        return version

    @property
    def monitor_target(self) -> str | None:
        return None if self.schedule is None else self.schedule.create_monitor.monitoring_target.endpoint_deployment_id


FAST = CanaryPolicy(wait_s=120, requests=3, max_error_rate_increase=0.01, max_latency_ratio=50.0)


def routed_prober(route: Callable[[str], str], calls: list[str]) -> Prober:
    """A real prober (EndpointClient, pinned header, no retries) whose routing by deployment name stands
    in for Azure's front end: `route(deployment)` gives the URL that deployment's pods answer on."""

    def probe(deployment: str, n: int) -> ProbeStats:
        calls.append(deployment)
        config = EndpointConfig(scoring_url=route(deployment), deployment=deployment, timeout_s=5, retries=0)
        return probe_deployment(EndpointClient(config), deployment, n)

    return probe


@pytest.fixture
def dead_url() -> str:
    """A loopback URL nothing listens on: a deployment whose pods are down."""
    from deploy.local_endpoint import free_port

    return f"http://127.0.0.1:{free_port()}/score"


def _green() -> object:
    return ent.build_online_deployment(DeploySettings(), ent.SpecPaths.absolute(), name="green")


def _after(keep: bool = False) -> AfterPromotion:
    green = DeploySettings(deployment_name="green")
    return AfterPromotion("covid19-death-risk-monitor", lambda old: ent.retarget_schedule(old, green), keep)


def test_plan_knows_deployments_missing_from_the_traffic_map() -> None:
    # green exists at 0%: the SDK's traffic map says only {"blue": 100}.
    traffic, existing = {"blue": 100}, ["blue", "green"]
    with pytest.raises(TrafficPlanError, match="'green' has 0% traffic: delete it first"):
        next_deployment_name(traffic, existing)
    with pytest.raises(TrafficPlanError, match="'green' already exists"):
        plan_rollout(traffic, "green", (10, 100), existing=existing)
    promote = plan_rollout(traffic, "green", (10, 50, 100), resume=True, existing=existing)
    assert promote.states == [{"blue": 90, "green": 10}, {"blue": 50, "green": 50}, {"blue": 0, "green": 100}]
    assert (promote.baseline, promote.retire, promote.rollback) == ("blue", ("blue",), {"blue": 100, "green": 0})
    with pytest.raises(TrafficPlanError, match="cannot resume"):  # what the traffic map alone would have said
        plan_rollout(traffic, "green", (10, 100), resume=True)


def test_rollout_success_checks_each_step_then_retargets_monitor_and_retires_blue(local_endpoint) -> None:
    plane = InMemoryControlPlane({"blue": 100})
    plan = plan_rollout(plane.traffic("ep"), "green", (10, 50, 100), existing=plane.deployments("ep"))
    calls: list[str] = []
    slept: list[float] = []
    probe = routed_prober(lambda d: local_endpoint.scoring_url, calls)
    final = execute_rollout(plane, "ep", plan, probe, FAST, _green(), _after(), log=lambda m: None, sleep=slept.append)
    assert final == {"blue": 0, "green": 100} == {**{"blue": 0}, **plane.traffic_now}
    assert plane.history == plan.states
    assert calls == ["green", "blue"] * 4  # before any traffic, then after 10, 50 and 100%: new and baseline
    assert slept == [FAST.wait_s] * 3  # a wait before every check that follows a traffic step
    assert plane.monitor_target == "azureml:covid19-death-risk:green"
    signals = plane.schedule.create_monitor.monitoring_signals
    assert "green-model_inputs" in signals["input_drift"].production_data.input_data.path
    assert "green-model_outputs" in signals["prediction_drift"].production_data.input_data.path
    assert signals["input_drift"].reference_data.input_data.path == "azureml:covid19-training-reference:3"
    assert signals["prediction_drift"].reference_data.input_data.path == "azureml:covid19-prediction-reference:3"
    assert plane.deleted == ["blue"] and plane.deployments("ep") == ["green"]


def _new_model(model_dir: Path, folder: Path) -> Path:
    """A second registered model version: the fixture's artifact with its own version and training shares."""
    shutil.copytree(model_dir, folder)
    card = json.loads((folder / "model_card.json").read_text())
    card["model_version"] = "v8-after-retraining"
    (folder / "model_card.json").write_text(json.dumps(card))
    distribution = json.loads((folder / "training_distribution.json").read_text())
    distribution["predicted_risk"]["shares"] = distribution["predicted_risk"]["shares"][::-1]
    ages = distribution["features"]["age_group"]
    distribution["features"]["age_group"] = dict(zip(ages, list(ages.values())[::-1], strict=True))
    (folder / "training_distribution.json").write_text(json.dumps(distribution))
    return folder


class RolloutPlane(InMemoryControlPlane):
    """The in-memory control plane plus what the CLI's rollout asks of it (URI and key of the endpoint)."""

    def __init__(self, scoring_url: str, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.scoring_url = scoring_url

    def scoring_uri(self, endpoint: str) -> str:
        return self.scoring_url

    def auth_secret(self, endpoint: str) -> str:
        return "not-a-real-key"


@pytest.mark.parametrize("keep_previous", [False, True])
def test_schedule_follows_a_rollout_to_the_new_deployment_and_the_new_model(
    local_endpoint, model_dir: Path, tmp_path: Path, keep_previous: bool
) -> None:
    """Issue 24 finding 3/4: after blue (model 7) -> green (model 8) the schedule watches green with model 8's
    references, registered at deploy time from the downloaded version; `monitor` then also picks green."""
    from deploy.azure.__main__ import _rollout
    from deploy.azure.monitoring import schedule_for_endpoint

    new = _new_model(model_dir, tmp_path / "v8")
    plane = RolloutPlane(
        local_endpoint.scoring_url,
        traffic={"blue": 100},
        models={"7": model_dir, "8": new},
        served={"blue": "azureml:covid19-death-risk:7"},
    )
    settings = DeploySettings(
        canary_wait_s=0,
        canary_requests=2,
        canary_max_latency_ratio=100.0,
        traffic_steps=(10, 100),
        keep_previous_deployment=keep_previous,
    )
    plan = plan_rollout(plane.traffic("ep"), "green", settings.traffic_steps, existing=plane.deployments("ep"))
    deployment = ent.build_online_deployment(
        settings, ent.SpecPaths.absolute(), "azureml:covid19-death-risk:8", "green"
    )
    _rollout(plane, settings, plan, deployment, ("covid19-death-risk", "8"))

    assert plane.monitor_target == "azureml:covid19-death-risk:green"
    signals = plane.schedule.create_monitor.monitoring_signals
    assert signals["input_drift"].reference_data.input_data.path == "azureml:covid19-training-reference:4"
    assert signals["prediction_drift"].reference_data.input_data.path == "azureml:covid19-prediction-reference:4"
    assert signals["prediction_drift"].production_data.input_data.path.endswith("green-model_outputs:1")
    distribution = json.loads((new / "training_distribution.json").read_text())
    ((inputs, inputs_folder),) = plane.data["covid19-training-reference"]
    ((outputs, outputs_folder),) = plane.data["covid19-prediction-reference"]
    assert inputs.tags == outputs.tags == {"model_version": "v8-after-retraining"}
    saved = pd.read_csv(inputs_folder / TABLE_FILE, dtype=str, keep_default_na=False)
    assert saved.equals(reference_frame(distribution).astype(str))
    predictions = pd.read_csv(outputs_folder / TABLE_FILE)
    assert list(predictions.columns) == ["probability", "risk_band"]
    assert np.allclose(predictions["probability"], prediction_frame(distribution)["probability"])
    assert (plane.deployments("ep") == ["blue", "green"]) is keep_previous

    # `monitor` run afterwards picks the deployment serving 100%, whether blue was deleted or kept at 0%.
    schedule, references = schedule_for_endpoint(plane, settings, log=lambda m: None)
    assert schedule.create_monitor.monitoring_target.endpoint_deployment_id == "azureml:covid19-death-risk:green"
    assert references.model_version == "v8-after-retraining"


def test_monitor_refuses_an_endpoint_that_serves_nothing() -> None:
    from deploy.azure.monitoring import parse_model_id, serving_deployment

    assert serving_deployment("ep", {"blue": 0, "green": 100}) == "green"
    assert serving_deployment("ep", {"blue": 90, "green": 10}) == "blue"
    with pytest.raises(ConfigError, match="no deployment of endpoint 'ep' serves traffic"):
        serving_deployment("ep", {"blue": 0})
    arm = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w"
    arm += "/models/m/versions/8"
    assert parse_model_id(arm) == parse_model_id("azureml:m:8") == ("m", "8")
    with pytest.raises(ConfigError, match="cannot tell the model version"):
        parse_model_id("azureml:m@latest")


def test_collected_outputs_are_only_what_the_prediction_reference_holds(model_dir: Path) -> None:
    """model_version and traffic change at every rollout: collected as outputs, a rollout itself was drift."""
    from model.serving.datacollect import AZURE_OUTPUT_COLUMNS

    distribution = json.loads((model_dir / "training_distribution.json").read_text())
    assert AZURE_OUTPUT_COLUMNS == tuple(prediction_frame(distribution).columns) == ("probability", "risk_band")


def test_prediction_reference_follows_the_training_histogram(model_dir: Path) -> None:
    distribution = json.loads((model_dir / "training_distribution.json").read_text())
    frame = prediction_frame(distribution, rows=10_000)
    bins, shares = distribution["predicted_risk"]["bins"], distribution["predicted_risk"]["shares"]
    counts, _ = np.histogram(frame["probability"], bins=bins)
    assert np.all(np.abs(counts - np.array(shares) / sum(shares) * 10_000) <= 1)
    assert (frame["risk_band"] == frame["probability"].map(schema.risk_band)).all()


def test_rollout_keeps_previous_slot_when_asked(local_endpoint) -> None:
    plane = InMemoryControlPlane({"blue": 100})
    plan = plan_rollout(plane.traffic("ep"), "green", (100,), existing=plane.deployments("ep"))
    probe = routed_prober(lambda d: local_endpoint.scoring_url, [])
    execute_rollout(
        plane, "ep", plan, probe, FAST, _green(), _after(keep=True), log=lambda m: None, sleep=lambda s: None
    )
    assert plane.deleted == [] and plane.deployments("ep") == ["blue", "green"]
    assert plane.traffic("ep") == {"green": 100}  # blue kept, at 0%, absent from the traffic map


def test_promote_a_deployment_created_at_zero_percent(local_endpoint) -> None:
    plane = InMemoryControlPlane({"blue": 100}, existing=("green",))
    plan = plan_rollout(plane.traffic("ep"), "green", (50, 100), resume=True, existing=plane.deployments("ep"))
    probe = routed_prober(lambda d: local_endpoint.scoring_url, [])
    execute_rollout(plane, "ep", plan, probe, FAST, None, _after(), log=lambda m: None, sleep=lambda s: None)
    assert plane.traffic("ep") == {"green": 100} and plane.deleted == ["blue"]


def test_rollout_broken_new_deployment_never_gets_traffic(local_endpoint, dead_url: str) -> None:
    plane = InMemoryControlPlane({"blue": 100})
    plan = plan_rollout(plane.traffic("ep"), "green", (10, 50, 100), existing=plane.deployments("ep"))
    probe = routed_prober(lambda d: dead_url if d == "green" else local_endpoint.scoring_url, [])
    with pytest.raises(RolloutFailed, match=r"failed 3/3 requests \(100.0%\).*EndpointUnavailable"):
        execute_rollout(plane, "ep", plan, probe, FAST, _green(), _after(), log=lambda m: None, sleep=lambda s: None)
    assert plane.traffic("ep") == {"blue": 100}
    assert all(state.get("green", 0) == 0 for state in plane.history)
    assert "green" in plane.deployments("ep"), "the failed deployment stays for its logs"
    assert plane.deleted == [] and plane.monitor_target == "azureml:covid19-death-risk:blue"


def test_rollout_rolls_back_when_the_canary_fails_mid_way(local_endpoint, dead_url: str) -> None:
    """green's pods stop answering once it takes half the traffic: back to blue 100%."""
    plane = InMemoryControlPlane({"blue": 100})
    plan = plan_rollout(plane.traffic("ep"), "green", (10, 50, 100), existing=plane.deployments("ep"))

    def route(deployment: str) -> str:
        overloaded = deployment == "green" and plane.traffic_now.get("green", 0) >= 50
        return dead_url if overloaded else local_endpoint.scoring_url

    with pytest.raises(RolloutFailed, match="rolled back to"):
        execute_rollout(
            plane,
            "ep",
            plan,
            routed_prober(route, []),
            FAST,
            _green(),
            _after(),
            log=lambda m: None,
            sleep=lambda s: None,
        )
    assert plane.history[-2:] == [{"blue": 50, "green": 50}, {"blue": 100, "green": 0}]
    assert plane.traffic("ep") == {"blue": 100} and plane.deleted == []


def test_probe_deployment_against_the_real_endpoint(local_endpoint, dead_url: str) -> None:
    ok = probe_deployment(EndpointClient(EndpointConfig(scoring_url=local_endpoint.scoring_url, retries=0)), "blue", 4)
    assert (ok.errors, len(ok.latencies_ms), ok.error_rate) == (0, 4, 0.0) and ok.p95_ms is not None
    config = EndpointConfig(scoring_url=dead_url, auth="key", key="sekret-key-123", retries=0, timeout_s=2)
    down = probe_deployment(EndpointClient(config), "green", 2)
    assert (down.errors, down.latencies_ms, down.p95_ms) == (2, (), None)
    assert down.first_error and "sekret-key-123" not in down.first_error


def test_compare_canary() -> None:
    policy = CanaryPolicy(max_error_rate_increase=0.05, max_latency_ratio=1.5)
    base = ProbeStats("blue", 40, 1, tuple([10.0] * 39))
    assert compare_canary(ProbeStats("green", 40, 2, tuple([14.0] * 38)), base, policy) == []
    worse = compare_canary(ProbeStats("green", 40, 4, tuple([10.0] * 36)), base, policy)
    assert len(worse) == 1 and "failed 4/40 requests (10.0%) vs 2.5%" in worse[0]
    slow = compare_canary(ProbeStats("green", 40, 0, tuple([16.0] * 40)), base, policy)
    assert len(slow) == 1 and "p95 latency 16 ms is over 1.5x 'blue''s 10 ms" in slow[0]
    # No baseline (first deployment on an empty endpoint): only the absolute error allowance applies.
    assert compare_canary(ProbeStats("blue", 40, 0, (500.0,) * 40), None, policy) == []
    assert compare_canary(ProbeStats("blue", 40, 3, (5.0,) * 37), None, policy)


def test_p95_is_the_95th_percentile_of_successes() -> None:
    stats = ProbeStats("g", 20, 0, tuple(float(i) for i in range(1, 21)))
    assert stats.p95_ms == 19.0
    assert ProbeStats("g", 1, 0, (7.0,)).p95_ms == 7.0


def test_smoke_records_are_valid_schema_values() -> None:
    for record in smoke_records():
        assert list(record) == list(schema.MODEL_FEATURES[schema.INTAKE_MODEL])  # an intake patient, as at a lab
        for name, value in record.items():
            assert value in schema.FEATURES_BY_NAME[name].values


# --- teardown against a fake control plane -------------------------------------------------


class FakeOps:
    """FAKE of one azure-ai-ml operations group (Azure's control plane): records calls, may say "not found"."""

    def __init__(self, log: list[str], group: str, missing: set[str], traffic: dict[str, int] | None = None) -> None:
        self.log, self.group, self.missing, self._traffic = log, group, missing, traffic or {}

    def _call(self, verb: str, name: str) -> object:
        from azure.core.exceptions import ResourceNotFoundError

        if name in self.missing:
            raise ResourceNotFoundError(f"{name} not found")
        self.log.append(f"{self.group}.{verb}({name})")
        return type("Poller", (), {"result": lambda self: None})()

    def get(self, name: str) -> object:
        from azure.core.exceptions import ResourceNotFoundError

        if name in self.missing:
            raise ResourceNotFoundError(f"{name} not found")
        return type("Entity", (), {"traffic": self._traffic})()

    def begin_delete(self, name: str, **kw: str) -> object:
        return self._call("delete", name)

    def begin_disable(self, name: str) -> object:
        return self._call("disable", name)


def fake_ml_client(missing: set[str] = frozenset(), traffic: dict[str, int] | None = None) -> tuple[object, list[str]]:
    log: list[str] = []
    groups = ("schedules", "online_endpoints", "batch_endpoints", "online_deployments")
    client = type("FakeMLClient", (), {g: FakeOps(log, g, set(missing), traffic) for g in groups})()
    return client, log


def test_teardown_stops_the_schedule_and_both_endpoints() -> None:
    client, log = fake_ml_client()
    run_teardown(client, teardown_plan(DeploySettings()), log=lambda m: None)
    assert log == [
        "schedules.disable(covid19-death-risk-monitor)",
        "schedules.delete(covid19-death-risk-monitor)",
        "online_endpoints.delete(covid19-death-risk)",
        "batch_endpoints.delete(covid19-death-risk-batch)",
    ]


def test_teardown_reruns_after_a_partial_one() -> None:
    client, log = fake_ml_client(missing={"covid19-death-risk-monitor", "covid19-death-risk"})
    done = run_teardown(client, teardown_plan(DeploySettings()), log=lambda m: None)
    assert log == ["batch_endpoints.delete(covid19-death-risk-batch)"]
    assert done[0] == "already gone: schedule 'covid19-death-risk-monitor'"


def test_teardown_refuses_to_delete_a_live_deployment() -> None:
    client, log = fake_ml_client(traffic={"blue": 100})
    with pytest.raises(TeardownRefused, match=r"still serves 100%.*rollback --deployment blue"):
        run_teardown(client, teardown_plan(DeploySettings(), "blue"), log=lambda m: None)
    client, log = fake_ml_client(traffic={"blue": 100})
    run_teardown(client, teardown_plan(DeploySettings(), "green"), log=lambda m: None)
    assert log == ["online_deployments.delete(green)"]


# --- config -----------------------------------------------------------------------------


def test_workspace_config_sources(tmp_path: Path) -> None:
    env = {"AZURE_SUBSCRIPTION_ID": "s", "AZURE_RESOURCE_GROUP": "rg", "AZUREML_WORKSPACE_NAME": "ws"}
    assert load_workspace_config(environ=env, cwd=tmp_path).workspace_name == "ws"
    with pytest.raises(ConfigError, match="AZUREML_WORKSPACE_NAME"):
        load_workspace_config(environ={"AZURE_SUBSCRIPTION_ID": "s", "AZURE_RESOURCE_GROUP": "rg"}, cwd=tmp_path)
    with pytest.raises(ConfigError, match=r"config\.json"):
        load_workspace_config(environ={}, cwd=tmp_path)
    (tmp_path / "config.json").write_text('{"subscription_id": "s", "resource_group": "rg"}')
    with pytest.raises(ConfigError, match="missing workspace_name"):
        load_workspace_config(environ={}, cwd=tmp_path)


def test_settings_file_and_overrides(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('[deploy]\nendpoint_name = "risk-prod"\ntraffic_steps = [25, 100]\n')
    s = load_settings(f, {"auth_mode": "aml_token", "compute": None})
    assert (s.endpoint_name, s.traffic_steps, s.auth_mode, s.compute) == (
        "risk-prod",
        (25, 100),
        "aml_token",
        "aks-inference",
    )
    assert load_settings(REPO / "deploy" / "azure" / "settings.example.toml") == DeploySettings()
    f.write_text('[deploy]\nauth_mode = "password"\nmax_instances = "many"\n')
    with pytest.raises(ConfigError, match="max_instances"):
        load_settings(f)
    f.write_text('[deploy]\nauth_mode = "password"\n')
    with pytest.raises(ConfigError, match="auth_mode 'password' is not one of key, aml_token, aad_token"):
        load_settings(f)


def test_settings_are_typed_by_pydantic_and_no_environment_variable_changes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARGET", "managed")
    monkeypatch.setenv("CLUSTER", "elsewhere")
    assert DeploySettings() == load_settings() and DeploySettings().target == "kubernetes"
    f = tmp_path / "s.toml"
    f.write_text('[deploy]\ncpu_limit = 1\nkeep_previous_deployment = "yes"\nmax_instances = 4\n')
    s = load_settings(f, {"traffic_steps": "25, 100", "canary_wait_s": "30"})  # CLI flags arrive as text
    assert (s.cpu_limit, s.keep_previous_deployment, s.traffic_steps, s.canary_wait_s) == ("1", True, (25, 100), 30)
    assert s.replace(max_instances=5).max_instances == 5 and s.max_instances == 4
    f.write_text('[deploy]\ncanary_wait_s = 2.5\nendpint_name = "x"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(f)
    assert str(f) in str(err.value) and "canary_wait_s=2.5 is not a whole number" in str(err.value)
    assert "endpint_name is not a setting; allowed: target, endpoint_name," in str(err.value)
    env = {"AZURE_SUBSCRIPTION_ID": " s ", "AZURE_RESOURCE_GROUP": "rg", "AZUREML_WORKSPACE_NAME": "ws"}
    workspace = load_workspace_config(environ=env, cwd=tmp_path)
    assert (workspace.subscription_id, workspace.source) == ("s", "environment variables")


# --- the CLI, in-process (its process: tests/test_cli.py's `python -m deploy.azure` smoke) ---------------------


def run_cli(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> Ran:
    """`python -m deploy.azure args...` run in this process from `cwd`, with no AZURE* variable but `env`'s."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [k for k in os.environ if k.startswith(("AZURE", "AZUREML"))]:
            patch.delenv(name)
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        patch.chdir(cwd)
        return run_main("deploy.azure", *args)


def test_cli_dry_run_writes_specs_that_load(tmp_path: Path) -> None:
    out = tmp_path / "specs"
    proc = run_cli("dry-run", "--out", str(out), "--endpoint-name", "risk-test", "--target", "managed")
    assert proc.returncode == 0, proc.stderr
    files = sorted(p.name for p in out.glob("*.yml"))
    assert files == sorted(p.name for p in SPECS.glob("*.yml"))
    assert load_online_endpoint(out / "managed-endpoint.yml").name == "risk-test"
    assert load_online_deployment(out / "kubernetes-deployment.yml").endpoint_name == "risk-test"
    assert load_schedule(out / "monitor-schedule.yml").create_monitor.monitoring_target.endpoint_deployment_id == (
        "azureml:risk-test:blue"
    )
    assert load_batch_endpoint(out / "batch-endpoint.yml").name == "covid19-death-risk-batch"


def test_cli_network_commands_dry_run_without_credentials(tmp_path: Path) -> None:
    proc = run_cli("deploy", "--dry-run", "--current", "blue=100", "--steps", "10,100", cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "KubernetesOnlineDeployment" in proc.stdout and '"green": 10' in proc.stdout
    for command in ("train-job", "batch"):
        proc = run_cli(command, "--dry-run")
        assert proc.returncode == 0, f"{command}: {proc.stderr}"
    proc = run_cli("plan", "--current", "blue=90,green=10", "--deployment", "green", "--resume")
    assert json.loads(proc.stdout)["states"][-1] == {"blue": 0, "green": 100}


def test_cli_plan_and_teardown_dry_runs() -> None:
    proc = run_cli("plan", "--current", "blue=100", "--existing", "blue,green", "--deployment", "green", "--resume")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["states"][-1] == {"blue": 0, "green": 100}
    assert plan["previous_deployments"] == {"blue": "deleted after promotion"}
    proc = run_cli("plan", "--current", "blue=100", "--existing", "blue,green", "--keep-previous")
    assert proc.returncode == 2 and "'green' has 0% traffic: delete it first" in proc.stderr
    proc = run_cli("teardown", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "monitoring schedule 'covid19-death-risk-monitor'" in proc.stdout
    assert "batch endpoint 'covid19-death-risk-batch'" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("deploy",), "no Azure ML workspace configured"),
        (("deploy", "--workspace-config", "/nonexistent/config.json"), "does not exist"),
        (("deploy", "--endpoint-name", "1bad"), "endpoint_name '1bad' must be"),
        (("deploy", "--auth-mode", "aad_token"), "works only with managed online endpoints"),
        (("deploy", "--steps", "50,10"), "traffic_steps"),
        (("plan", "--current", "blue=90,green=10", "--deployment", "green"), "already exists"),
        (("plan", "--current", "blue=ninety"), "name=percent"),
        (("teardown",), "--yes"),
        (("register", "--dry-run", "--model-dir", "/nonexistent"), "model_card.json not found"),
    ],
)
def test_cli_bad_config_gives_clear_error(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_invalid_workspace_json(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text('{"subscription_id": "s",')
    proc = run_cli("deploy", cwd=tmp_path)
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr and "Traceback" not in proc.stderr


# --- defects found reviewing against a real subscription (issue 13) --------------------


def _pip(environment: object) -> list[str]:
    conda = environment.conda_file  # type: ignore[attr-defined]
    return next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))


def test_batch_deployment_has_its_own_environment_with_azureml_core(mirror: Path) -> None:
    """Azure ML's batch driver imports azureml-core; the online environment does not ship it."""
    batch = load_model_batch_deployment(mirror / "batch-deployment.yml")
    online = load_online_deployment(mirror / "kubernetes-deployment.yml")
    batch_pip, online_pip = _pip(batch.environment), _pip(online.environment)
    core = [p for p in batch_pip if p.startswith("azureml-core==")]
    assert core and core[0].split("==")[1], "batch environment must pin azureml-core"
    assert not any(p.startswith("azureml-core") for p in online_pip)
    pins = read_pins(REPO / "requirements.txt")
    for name in ("scikit-learn", "pandas", "pyarrow", "numpy"):  # same model code, same pins as local
        assert f"{name}=={pins[name]}" in batch_pip
    assert batch.environment.conda_file != online.environment.conda_file


def test_kubernetes_endpoint_refuses_aad_token() -> None:
    with pytest.raises(ConfigError, match=r"aad_token' works only with managed online endpoints.*auth_mode = \"key\""):
        DeploySettings(target="kubernetes", auth_mode="aad_token")
    assert DeploySettings(target="managed", auth_mode="aad_token").auth_mode == "aad_token"
    assert DeploySettings(target="kubernetes", auth_mode="aml_token").auth_mode == "aml_token"


def test_kubernetes_memory_limit_is_below_the_instance_type_limit(mirror: Path) -> None:
    d = load_online_deployment(mirror / "kubernetes-deployment.yml")
    limit = resources.instance_type_limits(d.instance_type)
    assert limit is not None
    assert resources.parse_quantity(d.resources.limits.memory) < resources.parse_quantity(limit["memory"])
    assert resources.parse_quantity(d.resources.limits.cpu) < resources.parse_quantity(limit["cpu"])
    with pytest.raises(ConfigError, match=r"memory_limit 2Gi must be below instance type 'defaultinstancetype'"):
        DeploySettings(memory_limit="2Gi")
    # The shipped custom InstanceType allows more, and is read from its CRD file.
    custom = DeploySettings(instance_type="riskscoring", memory_limit="2Gi")
    assert resources.instance_type_limits("riskscoring") == {"cpu": "2", "memory": "3Gi"}
    assert custom.memory_limit == "2Gi"
    with pytest.raises(ConfigError, match="not a Kubernetes quantity"):
        DeploySettings(memory_limit="lots")


def test_memory_limit_must_hold_the_workers() -> None:
    with pytest.raises(ConfigError, match=r"cannot hold 8 scoring worker\(s\)"):
        DeploySettings(max_concurrent_requests_per_instance=8)
    assert DeploySettings(max_concurrent_requests_per_instance=8, instance_type="riskscoring", memory_limit="2560Mi")


@pytest.mark.parametrize("concurrency", [1, 2, 4])
@pytest.mark.parametrize("target", ["kubernetes", "managed"])
def test_worker_count_matches_concurrency(target: str, concurrency: int) -> None:
    s = DeploySettings(target=target, max_concurrent_requests_per_instance=concurrency)
    d = ent.build_online_deployment(s, ent.SpecPaths.absolute())
    assert d.environment_variables["WORKER_COUNT"] == str(d.request_settings.max_concurrent_requests_per_instance)


def test_committed_online_specs_run_one_worker_per_concurrent_request(mirror: Path) -> None:
    for name in ("kubernetes-deployment.yml", "managed-deployment.yml"):
        d = load_online_deployment(mirror / name)
        assert int(d.environment_variables["WORKER_COUNT"]) == d.request_settings.max_concurrent_requests_per_instance


def test_batch_defaults_to_file_output_with_a_timeout_from_measured_throughput(mirror: Path) -> None:
    d = load_model_batch_deployment(mirror / "batch-deployment.yml")
    s = DeploySettings()
    assert d.settings.environment_variables == {"RISK_BATCH_OUTPUT": "files"}
    assert d.settings.output_action == "summary_only" and d.settings.mini_batch_size == 1
    # A full CDC release (~106M rows) in one mini batch, at the measured files-mode rate, fits the timeout
    # with the safety factor; the old 300 s would not.
    seconds_at_measured_rate = s.batch_max_rows_per_file / batch_sizing.ROWS_PER_S["files"]
    assert s.batch_max_rows_per_file >= 105_869_141
    assert d.settings.retry_settings.timeout >= batch_sizing.SAFETY * seconds_at_measured_rate > 300


def test_rows_mode_is_refused_for_inputs_that_do_not_fit() -> None:
    with pytest.raises(ConfigError, match=r'batch rows mode needs about .* GiB.*batch_output_mode = "files"'):
        DeploySettings(batch_output_mode="rows")
    small = DeploySettings(batch_output_mode="rows", batch_max_rows_per_file=1_000_000)
    d = ent.build_batch_deployment(small, ent.SpecPaths.absolute())
    assert (d.settings.output_action, d.settings.output_file_name) == ("append_row", "predictions.csv")
    assert d.settings.environment_variables == {"RISK_BATCH_OUTPUT": "rows"}
    with pytest.raises(ConfigError, match="batch_output_mode 'csv' is not one of files, rows"):
        DeploySettings(batch_output_mode="csv")


# --- monitoring reference data (MLTable from the training distribution) -------------------


def test_reference_table_follows_the_training_shares(model_dir: Path) -> None:
    distribution = json.loads((model_dir / "training_distribution.json").read_text())
    frame = reference_frame(distribution, rows=10_000)
    assert list(frame.columns) == list(distribution["features"])
    for name, shares in distribution["features"].items():
        counts = frame[name].value_counts()
        assert set(counts.index) <= set(schema.FEATURES_BY_NAME[name].values)
        for value, share in shares.items():
            assert abs(counts.get(value, 0) - share * 10_000) <= 1, (name, value)
    assert frame.equals(reference_frame(distribution, rows=10_000)), "fixed seed: the same table every time"


def test_reference_spec_loads_and_its_mltable_points_at_the_table(mirror: Path) -> None:
    from azure.ai.ml.entities._data.mltable_metadata import MLTableMetadata

    data = load_data(mirror / "data-reference.yml")
    settings = DeploySettings()
    assert (data.name, data.version, data.type) == (settings.monitor_reference_name, "1", "mltable")
    folder = (Path(data.base_path) / data.path).resolve() if not Path(data.path).is_absolute() else Path(data.path)
    meta = MLTableMetadata.load(folder / MLTABLE_FILE)
    assert [p.value for p in meta.paths] == [f"./{TABLE_FILE}"]
    assert (folder / TABLE_FILE).is_file()
    # The schedule's reference input is exactly this asset.
    schedule = load_schedule(mirror / "monitor-schedule.yml")
    ref = schedule.create_monitor.monitoring_signals["input_drift"].reference_data.input_data
    assert (ref.type, ref.path.removeprefix("azureml:")) == ("mltable", f"{data.name}:{data.version}")


def test_monitor_dry_run_builds_the_reference_before_the_schedule(model_dir: Path, tmp_path: Path) -> None:
    proc = run_cli("monitor", "--dry-run", "--model-dir", str(model_dir), "--reference-dir", str(tmp_path / "ref"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.index("--- Data") < proc.stdout.index("--- MonitorSchedule")
    assert (tmp_path / "ref" / TABLE_FILE).is_file() and (tmp_path / "ref" / MLTABLE_FILE).is_file()
    proc = run_cli("monitor", "--dry-run", "--model-dir", str(tmp_path / "nothing"))
    assert proc.returncode == 2 and "No model found" in proc.stderr and "Traceback" not in proc.stderr


def test_retarget_keeps_the_registered_reference() -> None:
    existing = ent.build_monitor_schedule(DeploySettings(monitor_reference_version="7"))
    moved = ent.retarget_schedule(existing, DeploySettings(deployment_name="green"))
    assert moved.create_monitor.monitoring_target.endpoint_deployment_id == "azureml:covid19-death-risk:green"
    ref = moved.create_monitor.monitoring_signals["input_drift"].reference_data.input_data.path
    assert ref == "azureml:covid19-training-reference:7"


# --- the AKS cluster steps (docs/azure.md and deploy/azure/k8s/create-cluster.sh) ---------

AKS_SCRIPT = REPO / "deploy" / "azure" / "k8s" / "create-cluster.sh"


def _shell_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined (markdown and shell alike)."""
    lines, buffer = [], ""
    for raw in text.splitlines():
        if raw.rstrip().endswith("\\"):
            buffer += raw.rstrip()[:-1] + " "
            continue
        lines.append(buffer + raw)
        buffer = ""
    return lines


def _settings_after(tokens: list[str], flag: str) -> dict[str, str]:
    """key=value tokens following `flag` up to the next --option."""
    found: dict[str, str] = {}
    if flag not in tokens:
        return found
    for token in tokens[tokens.index(flag) + 1 :]:
        if token.startswith("--"):
            break
        key, _, value = token.partition("=")
        found[key] = value
    return found


def aks_problems(text: str, default_nodes: int | None = None) -> list[str]:
    """Azure ML extension commands that Azure would reject or that would not schedule."""
    import shlex

    problems, nodes = [], None
    lines = _shell_lines(text)
    for i, line in enumerate(lines):
        if "az aks create" in line:
            tokens = shlex.split(line, comments=True)
            count = tokens[tokens.index("--node-count") + 1] if "--node-count" in tokens else "3"
            nodes = default_nodes if count.startswith("$") else int(count)
        if "az k8s-extension create" not in line:
            continue
        tokens = shlex.split(line, comments=True)
        config, protected = _settings_after(tokens, "--config"), _settings_after(tokens, "--config-protected")
        insecure = config.get("allowInsecureConnections", "False").lower() == "true"
        context = " ".join(lines[max(0, i - 4) : i]).upper()
        if insecure and "DEV/TEST" not in context:
            problems.append(f"line {i + 1}: allowInsecureConnections=True without a dev/test label")
        tls = "sslSecret" in config or {"sslCertPemFile", "sslKeyPemFile"} <= set(protected)
        if not insecure and not ("sslCname" in config and tls):
            problems.append(f"line {i + 1}: HTTPS (the default) needs sslCname and the certificate and key")
        ha = config.get("inferenceRouterHA", "True").lower() != "false"
        if ha and (nodes is None or nodes < 3):
            problems.append(f"line {i + 1}: inferenceRouterHA needs 3 nodes, the cluster has {nodes}")
    return problems


def test_the_aks_checker_catches_the_old_guide() -> None:
    old = """az aks create -g <rg> -n risk-aks --node-count 2 --node-vm-size Standard_D4s_v3 --generate-ssh-keys
az k8s-extension create --name azureml --extension-type Microsoft.AzureML.Kubernetes \\
  --cluster-type managedClusters --cluster-name risk-aks -g <rg> --scope cluster \\
  --config enableInference=True inferenceRouterServiceType=LoadBalancer allowInsecureConnections=False
"""
    assert aks_problems(old) == [
        "line 2: HTTPS (the default) needs sslCname and the certificate and key",
        "line 2: inferenceRouterHA needs 3 nodes, the cluster has 2",
    ]


def test_aks_steps_in_the_guide_and_the_script_would_install() -> None:
    docs = (REPO / "docs" / "azure.md").read_text()
    # The guide installs the extension with the template (tests/test_azure_infra.py) and points at the script.
    assert "deploy/azure/k8s/create-cluster.sh" in docs
    assert aks_problems(docs) == []
    script = AKS_SCRIPT.read_text()
    default_nodes = int(re.search(r'NODES="\$\{NODES:-(\d+)\}"', script).group(1))
    assert default_nodes >= 3
    assert aks_problems(script, default_nodes) == []
    assert "NODES < 3" in script  # the HTTPS branch refuses fewer nodes than the HA router needs


def test_aks_script_is_valid_bash() -> None:
    proc = subprocess.run(["bash", "-n", str(AKS_SCRIPT)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


def test_prediction_reference_spec_loads_and_the_schedule_uses_it(mirror: Path) -> None:
    from azure.ai.ml.entities._data.mltable_metadata import MLTableMetadata

    data = load_data(mirror / "data-prediction-reference.yml")
    assert (data.name, data.type) == (DeploySettings().monitor_prediction_reference_name, "mltable")
    folder = (Path(data.base_path) / data.path).resolve()
    assert [p.value for p in MLTableMetadata.load(folder / MLTABLE_FILE).paths] == [f"./{TABLE_FILE}"]
    assert list(pd.read_csv(folder / TABLE_FILE).columns) == ["probability", "risk_band"]
    schedule = load_schedule(mirror / "monitor-schedule.yml")
    ref = schedule.create_monitor.monitoring_signals["prediction_drift"].reference_data
    assert (ref.input_data.type, ref.input_data.path.removeprefix("azureml:")) == (
        "mltable",
        f"{data.name}:{data.version}",
    )
    assert "model_outputs" not in ref.input_data.path  # never the deployment's own earlier outputs
