"""Build every Azure ML entity from `DeploySettings`, with the real SDK v2 classes.

No network: constructing and serialising these needs no MLClient and no credential.
Paths are passed in (`SpecPaths`) because the same entity is built twice: with absolute
paths for an actual deployment, and with paths relative to deploy/azure/specs/ when the
YAML specs are rendered (which is what `az ml ... create -f` resolves them against).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.ai.ml import Input, Output, command
from azure.ai.ml.constants import AssetTypes, MonitorDatasetContext
from azure.ai.ml.entities import (
    AlertNotification,
    BaselineDataRange,
    BatchEndpoint,
    BatchRetrySettings,
    CategoricalDriftMetrics,
    CodeConfiguration,
    Command,
    DataCollector,
    DataDriftMetricThreshold,
    DataDriftSignal,
    DefaultScaleSettings,
    DeploymentCollection,
    Environment,
    KubernetesOnlineDeployment,
    KubernetesOnlineEndpoint,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    Model,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
    MonitorDefinition,
    MonitoringTarget,
    MonitorSchedule,
    NumericalDriftMetrics,
    OnlineRequestSettings,
    PredictionDriftMetricThreshold,
    PredictionDriftSignal,
    ProbeSettings,
    ProductionData,
    RecurrencePattern,
    RecurrenceTrigger,
    ReferenceData,
    ResourceConfiguration,
    ResourceRequirementsSettings,
    ResourceSettings,
    ServerlessSparkCompute,
    TargetUtilizationScaleSettings,
)

from deploy.azure import batch_sizing
from deploy.azure.config import REPO_ROOT, DeploySettings
from deploy.azure.environment import (
    BASE_IMAGE,
    BATCH_CONDA_FILE,
    BATCH_ENVIRONMENT_NAME,
    CONDA_FILE,
    ENVIRONMENT_NAME,
    TRAIN_CONDA_FILE,
)
from deploy.server_settings import SCORING_SERVER_ENV
from model.core import schema

SPECS_DIR = Path(__file__).resolve().parent / "specs"
DEFAULT_MODEL_DIR = REPO_ROOT / "artifacts" / "model"
# Staged code folders (deploy.azure.staging says why and what each holds): the scoring code of the
# online and batch deployments, and the training job's code.
DEFAULT_CODE_DIR = REPO_ROOT / "artifacts" / "azure" / "code"
DEFAULT_TRAIN_CODE_DIR = REPO_ROOT / "artifacts" / "azure" / "train-code"
# Folder holding the monitoring reference MLTable (deploy.azure.reference_data.write_reference).
DEFAULT_REFERENCE_DIR = REPO_ROOT / "artifacts" / "azure" / "reference"
# Beside it: the prediction-drift reference (reference_data.write_prediction_reference).
PREDICTION_REFERENCE_FOLDER = "prediction-reference"
DEFAULT_PREDICTION_REFERENCE_DIR = DEFAULT_REFERENCE_DIR.parent / PREDICTION_REFERENCE_FOLDER
SCORING_SCRIPT = "model/serving/score.py"
BATCH_DRIVER = "model/serving/batch_driver.py"
# Train, then report the card's figures to the job's MLflow run (Azure ML's tracking; model/training/mlflow_log.py).
# The modules themselves, not the `python -m model.train` shim: the staged training code holds no shims.
TRAIN_COMMAND = (
    "python -m model.training.train --data ${{inputs.data}} --out ${{outputs.model}} && "
    "python -m model.training.mlflow_log ${{outputs.model}}"
)


@dataclass(frozen=True)
class SpecPaths:
    """Where the model artifact, the staged code folders and the conda files are, as the entities see them."""

    model_dir: str
    code_dir: str  # scoring code: online and batch deployments
    conda_file: Path  # always a real file: the SDK reads it when the Environment is built
    conda_ref: str  # the same file as the YAML refers to it
    train_code_dir: str = str(DEFAULT_TRAIN_CODE_DIR)  # the training job's code
    batch_conda_file: Path = BATCH_CONDA_FILE
    batch_conda_ref: str = str(BATCH_CONDA_FILE)
    train_conda_file: Path = TRAIN_CONDA_FILE
    train_conda_ref: str = str(TRAIN_CONDA_FILE)
    reference_dir: str = str(DEFAULT_REFERENCE_DIR)
    prediction_reference_dir: str = str(DEFAULT_PREDICTION_REFERENCE_DIR)

    @classmethod
    def absolute(
        cls,
        model_dir: Path = DEFAULT_MODEL_DIR,
        code_dir: Path = DEFAULT_CODE_DIR,
        train_code_dir: Path = DEFAULT_TRAIN_CODE_DIR,
    ) -> SpecPaths:
        return cls(
            model_dir=str(model_dir.resolve()),
            code_dir=str(code_dir.resolve()),
            conda_file=CONDA_FILE,
            conda_ref=str(CONDA_FILE),
            train_code_dir=str(train_code_dir.resolve()),
        )

    @classmethod
    def relative_to(
        cls,
        spec_dir: Path,
        model_dir: Path = DEFAULT_MODEL_DIR,
        code_dir: Path = DEFAULT_CODE_DIR,
        train_code_dir: Path = DEFAULT_TRAIN_CODE_DIR,
    ) -> SpecPaths:
        def rel(p: Path) -> str:
            return Path(os.path.relpath(p.resolve(), spec_dir.resolve())).as_posix()

        return cls(
            model_dir=rel(model_dir),
            code_dir=rel(code_dir),
            conda_file=CONDA_FILE,
            conda_ref=rel(CONDA_FILE),
            train_code_dir=rel(train_code_dir),
            batch_conda_file=BATCH_CONDA_FILE,
            batch_conda_ref=rel(BATCH_CONDA_FILE),
            train_conda_file=TRAIN_CONDA_FILE,
            train_conda_ref=rel(TRAIN_CONDA_FILE),
            reference_dir=rel(DEFAULT_REFERENCE_DIR),
            prediction_reference_dir=rel(DEFAULT_PREDICTION_REFERENCE_DIR),
        )


# --- model ------------------------------------------------------------------------------


def card_tags(model_dir: Path) -> dict[str, str]:
    """Registry tags from model_card.json (read as JSON: no training code is imported)."""
    card_path = model_dir / "model_card.json"
    if not card_path.is_file():
        raise FileNotFoundError(
            f"{card_path} not found: {model_dir} is not a model artifact; train one with "
            "`python -m model.train --out artifacts/model` or pass --model-dir"
        )
    card = json.loads(card_path.read_text(encoding="utf-8"))
    test = (card.get("metrics") or {}).get("test") or {}
    data = card.get("data") or {}
    tags = {
        "model_version": card.get("model_version"),
        "schema_version": card.get("schema_version"),
        "created_utc": card.get("created_utc"),
        "data_sha256": data.get("sha256"),
        "data_synthetic": data.get("synthetic"),
        **{f"test_{m}": test.get(m) for m in ("roc_auc", "pr_auc", "brier")},
    }
    return {k: (f"{v:.6g}" if isinstance(v, float) else str(v)) for k, v in tags.items() if v is not None}


def build_model(settings: DeploySettings, paths: SpecPaths, tags: dict[str, str] | None = None) -> Model:
    """The artifact directory as a custom_model asset (the whole folder: estimator, card, tables)."""
    return Model(
        name=settings.model_name,
        path=paths.model_dir,
        type=AssetTypes.CUSTOM_MODEL,
        description="Calibrated P(death | COVID-19 case attributes); artifact folder of model.training.train.",
        tags=tags or {},
    )


def model_reference(settings: DeploySettings, version: str | None = None) -> str:
    """`azureml:name:version` for a registered model; `@latest` when no version is given."""
    return f"azureml:{settings.model_name}:{version}" if version else f"azureml:{settings.model_name}@latest"


# --- environment ------------------------------------------------------------------------


def build_environment(paths: SpecPaths, named: bool = False) -> Environment:
    """Curated base image + the generated conda file. Anonymous (content-hashed) unless named."""
    kwargs: dict[str, Any] = {"image": BASE_IMAGE, "conda_file": str(paths.conda_file)}
    if named:
        kwargs.update(
            name=ENVIRONMENT_NAME,
            description="Scoring/training pins generated from requirements.txt.",
        )
    return Environment(**kwargs)


def build_batch_environment(paths: SpecPaths, named: bool = False) -> Environment:
    """The batch deployment's own environment: the model's pins + azureml-core (Azure's batch driver needs it)."""
    kwargs: dict[str, Any] = {"image": BASE_IMAGE, "conda_file": str(paths.batch_conda_file)}
    if named:
        kwargs.update(
            name=BATCH_ENVIRONMENT_NAME,
            description="Batch scoring: model pins from requirements.txt + azureml-core for Azure ML's batch driver.",
        )
    return Environment(**kwargs)


def build_training_environment(paths: SpecPaths) -> Environment:
    """The training job's environment: the model's pins + MLflow (only here: the product stays light)."""
    return Environment(image=BASE_IMAGE, conda_file=str(paths.train_conda_file))


# --- online endpoint --------------------------------------------------------------------


def _probe(settings: DeploySettings) -> ProbeSettings:
    return ProbeSettings(
        initial_delay=settings.probe_initial_delay_s,
        period=settings.probe_period_s,
        timeout=settings.probe_timeout_s,
        failure_threshold=settings.probe_failure_threshold,
        success_threshold=1,
    )


def _data_collector(settings: DeploySettings) -> DataCollector | None:
    # model_inputs / model_outputs are what the monitoring schedule reads.
    if not settings.collect_data:
        return None
    return DataCollector(
        collections={
            "model_inputs": DeploymentCollection(enabled="true"),
            "model_outputs": DeploymentCollection(enabled="true"),
        }
    )


def deployment_environment_variables(settings: DeploySettings) -> dict[str, str]:
    """The online deployment's environment variables (the one place they are built).

    WORKER_COUNT: azmlinfsrv starts one synchronous worker by default, so a deployment that
    admits `max_concurrent_requests_per_instance` requests at once must run as many workers,
    or the extra requests queue inside the pod and time out.
    """
    return {
        # The same server configuration as the local endpoint (gthread workers, timeouts) ...
        **SCORING_SERVER_ENV,
        # ... with one worker per request Azure admits at once.
        "WORKER_COUNT": str(settings.max_concurrent_requests_per_instance),
    }


def build_online_endpoint(settings: DeploySettings) -> KubernetesOnlineEndpoint | ManagedOnlineEndpoint:
    common: dict[str, Any] = {
        "name": settings.endpoint_name,
        "auth_mode": settings.auth_mode,
        "description": "COVID-19 death-risk scoring (calibrated probability + risk band).",
        "tags": {"schema_version": schema.SCHEMA_VERSION},
    }
    if settings.target == "kubernetes":
        return KubernetesOnlineEndpoint(compute=settings.compute, **common)
    return ManagedOnlineEndpoint(**common)


def build_online_deployment(
    settings: DeploySettings, paths: SpecPaths, model: str | None = None, name: str | None = None
) -> KubernetesOnlineDeployment | ManagedOnlineDeployment:
    """One deployment (blue/green slot) of the scoring script `model/serving/score.py`."""
    common: dict[str, Any] = {
        "name": name or settings.deployment_name,
        "endpoint_name": settings.endpoint_name,
        "model": model or model_reference(settings),
        "code_configuration": CodeConfiguration(code=paths.code_dir, scoring_script=SCORING_SCRIPT),
        "environment": build_environment(paths),
        "request_settings": OnlineRequestSettings(
            request_timeout_ms=settings.request_timeout_ms,
            max_concurrent_requests_per_instance=settings.max_concurrent_requests_per_instance,
            max_queue_wait_ms=settings.max_queue_wait_ms,
        ),
        "liveness_probe": _probe(settings),
        "readiness_probe": _probe(settings),
        "instance_count": settings.instance_count,
        "data_collector": _data_collector(settings),
        "environment_variables": deployment_environment_variables(settings),
    }
    if settings.target == "kubernetes":
        return KubernetesOnlineDeployment(
            instance_type=settings.instance_type,
            resources=ResourceRequirementsSettings(
                requests=ResourceSettings(cpu=settings.cpu_request, memory=settings.memory_request),
                limits=ResourceSettings(cpu=settings.cpu_limit, memory=settings.memory_limit),
            ),
            scale_settings=TargetUtilizationScaleSettings(
                min_instances=settings.min_instances,
                max_instances=settings.max_instances,
                target_utilization_percentage=settings.target_utilization_percentage,
                polling_interval=10,
            ),
            **common,
        )
    return ManagedOnlineDeployment(
        instance_type=settings.managed_instance_type, scale_settings=DefaultScaleSettings(), **common
    )


# --- training job -----------------------------------------------------------------------


def build_training_job(settings: DeploySettings, paths: SpecPaths) -> Command:
    """`python -m model.training.train` on the full data, on a compute cluster, output = the artifact folder.

    Its code is the staged training folder (deploy.azure.staging.stage_training_code), not the scoring one.
    """
    data_type = AssetTypes.URI_FOLDER if settings.training_data.endswith("/") else AssetTypes.URI_FILE
    return command(
        name=None,
        display_name="train covid19 death-risk model",
        experiment_name=settings.experiment_name,
        description="Train, calibrate and evaluate on the full CDC case-surveillance file.",
        code=paths.train_code_dir,
        command=TRAIN_COMMAND,
        inputs={"data": Input(type=data_type, path=settings.training_data)},
        outputs={"model": Output(type=AssetTypes.URI_FOLDER)},
        environment=build_training_environment(paths),
        compute=settings.cluster,
    )


# --- batch ------------------------------------------------------------------------------


def build_batch_endpoint(settings: DeploySettings) -> BatchEndpoint:
    return BatchEndpoint(
        name=settings.batch_endpoint_name,
        description="Batch scoring of case files with the COVID-19 death-risk model.",
        tags={"schema_version": schema.SCHEMA_VERSION},
    )


def build_batch_deployment(
    settings: DeploySettings, paths: SpecPaths, model: str | None = None
) -> ModelBatchDeployment:
    """model/serving/batch_driver.py on the compute cluster, sized by deploy.azure.batch_sizing.

    files mode (default): each input file becomes <name>.scored.parquet in the job's output
    folder and Azure keeps only a summary (output_action summary_only); rows mode appends every
    row to predictions.csv and is only allowed for inputs that fit in memory.
    """
    mode = settings.batch_output_mode
    files = mode == "files"
    return ModelBatchDeployment(
        name=settings.batch_deployment_name,
        endpoint_name=settings.batch_endpoint_name,
        description=f"model/serving/batch_driver.py over CSV/Parquet files, {mode} output mode.",
        model=model or model_reference(settings),
        code_configuration=CodeConfiguration(code=paths.code_dir, scoring_script=BATCH_DRIVER),
        environment=build_batch_environment(paths),
        compute=settings.cluster,
        resources=ResourceConfiguration(instance_count=1),
        settings=ModelBatchDeploymentSettings(
            mini_batch_size=settings.batch_mini_batch_size,
            max_concurrency_per_instance=settings.batch_max_concurrency_per_instance,
            output_action="summary_only" if files else "append_row",
            output_file_name=None if files else "predictions.csv",
            retry_settings=BatchRetrySettings(
                max_retries=3,
                timeout=batch_sizing.mini_batch_timeout_s(
                    mode, settings.batch_max_rows_per_file, settings.batch_mini_batch_size
                ),
            ),
            environment_variables={"RISK_BATCH_OUTPUT": mode},
            error_threshold=-1,
            logging_level="info",
        ),
    )


# --- monitoring -------------------------------------------------------------------------


def collected_data_asset(settings: DeploySettings, collection: str) -> str:
    """The data asset Azure ML registers for a deployment's collected data."""
    return f"azureml:{settings.endpoint_name}-{settings.deployment_name}-{collection}:1"


def _collected(settings: DeploySettings, collection: str, lookback: str, offset: str) -> dict[str, Any]:
    """Production data arguments for a window of the deployment's collected data."""
    return {
        "input_data": Input(type=AssetTypes.URI_FOLDER, path=collected_data_asset(settings, collection)),
        "data_context": collection,
        "data_window": BaselineDataRange(lookback_window_size=lookback, lookback_window_offset=offset),
    }


def reference_data_reference(settings: DeploySettings) -> str:
    """`azureml:name:version` of the MLTable the data-drift signal compares against (deploy.azure.reference_data)."""
    return f"azureml:{settings.monitor_reference_name}:{settings.monitor_reference_version}"


def prediction_reference(settings: DeploySettings) -> str:
    """`azureml:name:version` of the fixed MLTable of model outputs the prediction-drift signal compares against."""
    return f"azureml:{settings.monitor_prediction_reference_name}:{settings.monitor_reference_version}"


@dataclass(frozen=True)
class MonitorReferences:
    """The two reference assets of one model version, as registered (`azureml:name:version`)."""

    inputs: str
    outputs: str
    model_version: str | None = None

    @classmethod
    def from_settings(cls, settings: DeploySettings) -> MonitorReferences:
        return cls(reference_data_reference(settings), prediction_reference(settings))


def build_monitor_schedule(settings: DeploySettings, references: MonitorReferences | None = None) -> MonitorSchedule:
    """Daily data drift (inputs vs training) and prediction drift (outputs vs the model's training predictions).

    Watches `settings.deployment_name` (the deployment serving 100%, see deploy.azure.monitoring);
    `references` are the served model's registered reference assets (default: the settings' names and version).
    """
    references = references or MonitorReferences.from_settings(settings)
    data_drift = DataDriftSignal(
        production_data=ProductionData(**_collected(settings, "model_inputs", "P7D", "P0D")),
        reference_data=ReferenceData(
            input_data=Input(type=AssetTypes.MLTABLE, path=references.inputs),
            data_context=MonitorDatasetContext.TRAINING,
        ),
        features=list(schema.MODEL_INPUTS),
        metric_thresholds=DataDriftMetricThreshold(
            categorical=CategoricalDriftMetrics(jensen_shannon_distance=0.1, pearsons_chi_squared_test=0.05),
        ),
        alert_enabled=bool(settings.monitor_emails),
    )
    # A fixed reference: the served model's predictions over its training patients (data context
    # "validation" as in azureml-examples' cli/monitoring/model-monitoring-with-collected-data.yaml).
    prediction_drift = PredictionDriftSignal(
        production_data=ProductionData(**_collected(settings, "model_outputs", "P7D", "P0D")),
        reference_data=ReferenceData(
            input_data=Input(type=AssetTypes.MLTABLE, path=references.outputs),
            data_context=MonitorDatasetContext.VALIDATION,
        ),
        metric_thresholds=PredictionDriftMetricThreshold(
            numerical=NumericalDriftMetrics(jensen_shannon_distance=0.1),
            categorical=CategoricalDriftMetrics(jensen_shannon_distance=0.1),
        ),
        alert_enabled=bool(settings.monitor_emails),
    )
    return MonitorSchedule(
        name=settings.monitor_name,
        display_name="COVID-19 death-risk drift",
        description="Data drift of model inputs vs training; prediction drift vs the model's training predictions.",
        trigger=RecurrenceTrigger(frequency="day", interval=1, schedule=RecurrencePattern(hours=3, minutes=15)),
        create_monitor=MonitorDefinition(
            compute=ServerlessSparkCompute(instance_type=settings.monitor_spark_instance_type, runtime_version="3.4"),
            monitoring_target=MonitoringTarget(
                ml_task="classification",
                endpoint_deployment_id=f"azureml:{settings.endpoint_name}:{settings.deployment_name}",
            ),
            monitoring_signals={"input_drift": data_drift, "prediction_drift": prediction_drift},
            alert_notification=(
                AlertNotification(emails=list(settings.monitor_emails)) if settings.monitor_emails else None
            ),
        ),
    )


def schedule_references(schedule: MonitorSchedule) -> MonitorReferences:
    """The reference assets an existing schedule uses."""
    signals = schedule.create_monitor.monitoring_signals
    return MonitorReferences(
        inputs=_reference_path(signals["input_drift"]), outputs=_reference_path(signals["prediction_drift"])
    )


def _reference_path(signal: Any) -> str:
    """The reference asset of a drift signal (the signals this module builds always have one)."""
    if not isinstance(signal, DataDriftSignal | PredictionDriftSignal) or signal.reference_data is None:
        raise ValueError(
            f"monitoring signal {signal!r} has no reference data: recreate the schedule (deploy.azure monitor)"
        )
    return str(signal.reference_data.input_data.path)


def retarget_schedule(
    existing: MonitorSchedule, settings: DeploySettings, references: MonitorReferences | None = None
) -> MonitorSchedule:
    """The schedule rebuilt for `settings.deployment_name` and the model that deployment serves.

    After a blue/green switch both the collected data and the model change: the target and the
    production windows move to the new deployment, and the references become the new model's
    (registered at deploy time, deploy.azure.monitoring). Without `references` (a promote whose
    model could not be resolved) the existing schedule's references are kept, and the log says so.
    """
    return build_monitor_schedule(settings, references or schedule_references(existing))
