"""CLI: `python -m deploy.azure <command>`; every command accepts --dry-run (no network, no credential)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deploy.azure.config import AUTH_MODES, REPO_ROOT, TARGETS, ConfigError, DeploySettings, load_settings
from model.core import exit_codes

DEFAULT_DRY_RUN_DIR = REPO_ROOT / "artifacts" / "azure" / "dry-run"
_SETTING_FLAGS = {
    "target": "target",
    "endpoint_name": "endpoint-name",
    "deployment_name": "deployment",
    "compute": "compute",
    "instance_type": "instance-type",
    "managed_instance_type": "managed-instance-type",
    "auth_mode": "auth-mode",
    "traffic_steps": "steps",
    "cluster": "cluster",
    "training_data": "data",
    "canary_wait_s": "canary-wait",
    "keep_previous_deployment": "keep-previous",
}


class CliError(Exception):
    """Printed as `error: ...` with exit code 2."""


def _parse_traffic(text: str) -> dict[str, int]:
    """`blue=90,green=10` → {"blue": 90, "green": 10}; '' → {}."""
    traffic: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not value.strip().isdigit():
            raise CliError(f"--current {text!r}: write it as name=percent pairs, e.g. blue=90,green=10")
        traffic[name.strip()] = int(value)
    return traffic


def _parse_names(text: str) -> list[str]:
    """`blue,green` -> ["blue", "green"]."""
    return [n.strip() for n in text.split(",") if n.strip()]


def _settings(args: argparse.Namespace) -> DeploySettings:
    overrides = {field: getattr(args, field, None) for field in _SETTING_FLAGS}
    return load_settings(args.settings, overrides)


def _workspace_client(args: argparse.Namespace, settings: DeploySettings) -> Any:
    from deploy.azure.config import load_workspace_config
    from deploy.azure.workspace import ml_client

    workspace = load_workspace_config(args.workspace_config)
    print(f"workspace {workspace.workspace_name} (resource group {workspace.resource_group}, from {workspace.source})")
    return ml_client(workspace)


def _print_entities(entities: list[Any]) -> None:
    import yaml

    for entity in entities:
        print(f"--- {type(entity).__name__}")
        print(yaml.safe_dump(json.loads(json.dumps(entity._to_dict(), default=str)), sort_keys=False), end="")


def _paths(args: argparse.Namespace) -> Any:
    from deploy.azure.entities import SpecPaths

    return SpecPaths.absolute(model_dir=args.model_dir)


# --- commands ---------------------------------------------------------------------------


def cmd_dry_run(args: argparse.Namespace, settings: DeploySettings) -> int:
    from deploy.azure import entities as ent
    from deploy.azure.environment import write_conda_yaml
    from deploy.azure.specs import write_specs

    if args.write_specs:
        write_conda_yaml()
        written = write_specs(ent.SPECS_DIR, settings)
    else:
        written = write_specs(args.out, settings)
    for path in written:
        print(f"wrote {path}")
    print(
        f"code folders staged by `deploy`/`batch` into {ent.DEFAULT_CODE_DIR} (scoring) and by `train-job` "
        f"into {ent.DEFAULT_TRAIN_CODE_DIR} (training); `stage` writes both (no network used)"
    )
    return 0


def cmd_plan(args: argparse.Namespace, settings: DeploySettings) -> int:
    from deploy.azure.traffic import next_deployment_name, plan_rollout

    current, existing = _parse_traffic(args.current), _parse_names(args.existing)
    new = args.deployment or next_deployment_name(current, existing)
    plan = plan_rollout(current, new, settings.traffic_steps, resume=args.resume, existing=existing)
    print(json.dumps(_plan_json(plan, settings), indent=2))
    return 0


def _plan_json(plan: Any, settings: DeploySettings) -> dict[str, Any]:
    retire = "kept at 0%" if settings.keep_previous_deployment else "deleted after promotion"
    return {
        "new_deployment": plan.new_deployment,
        "states": plan.states,
        "rollback": plan.rollback,
        "canary_baseline": plan.baseline,
        "canary": f"wait {settings.canary_wait_s} s, then {settings.canary_requests} pinned requests each",
        "previous_deployments": {name: retire for name in plan.retire},
    }


def cmd_stage(args: argparse.Namespace, settings: DeploySettings) -> int:
    """Write both code folders the specs point at (the `az ml ... create -f` route uploads them)."""
    from deploy.azure.staging import stage_scoring_code, stage_training_code

    print(f"staged {stage_scoring_code()} (scoring: online and batch deployments)")
    print(f"staged {stage_training_code()} (training job)")
    return 0


def cmd_register(args: argparse.Namespace, settings: DeploySettings) -> int:
    from deploy.azure import entities as ent

    model = ent.build_model(settings, _paths(args), tags=ent.card_tags(args.model_dir))
    if args.dry_run:
        _print_entities([model])
        return 0
    registered = _workspace_client(args, settings).models.create_or_update(model)
    print(f"registered model {registered.name}:{registered.version} tags={registered.tags}")
    return 0


def _print_access(settings: DeploySettings, uri: str | None) -> None:
    print(f"scoring URI: {uri or '(az ml online-endpoint show -n ' + settings.endpoint_name + ' --query scoring_uri)'}")
    print(
        "keys/tokens: az ml online-endpoint get-credentials -n "
        f"{settings.endpoint_name}   (auth_mode={settings.auth_mode}; never commit them)"
    )
    if settings.auth_mode == "aad_token":
        print("dashboard: RISK_ENDPOINT_URL=<scoring URI> RISK_ENDPOINT_AUTH=aad (its managed identity gets tokens)")
    else:
        print("dashboard: RISK_ENDPOINT_URL=<scoring URI> RISK_ENDPOINT_AUTH=key, key from Key Vault (docs/azure.md)")


def _rollout(plane: Any, settings: DeploySettings, plan: Any, deployment: Any | None, model: tuple[str, str]) -> None:
    """Run a planned rollout with canary checks; afterwards retarget the monitor and retire old slots.

    The monitoring references of the model being rolled out are registered first (deploy time), so
    the schedule moves to the new deployment *and* the new model's references together.
    """
    from deploy.azure import entities as ent
    from deploy.azure.monitoring import register_model_references
    from deploy.azure.rollout import AfterPromotion, CanaryPolicy, endpoint_prober, execute_rollout

    references = register_model_references(plane, settings, *model)
    uri = plane.scoring_uri(settings.endpoint_name)
    prober = endpoint_prober(uri, plane.auth_secret(settings.endpoint_name))
    new_settings = settings.replace(deployment_name=plan.new_deployment)
    after = AfterPromotion(
        monitor_name=settings.monitor_name,
        retarget=lambda existing: ent.retarget_schedule(existing, new_settings, references),
        keep_previous=settings.keep_previous_deployment,
    )
    execute_rollout(
        plane, settings.endpoint_name, plan, prober, CanaryPolicy.from_settings(settings), deployment, after
    )
    _print_access(settings, uri)


def cmd_deploy(args: argparse.Namespace, settings: DeploySettings) -> int:
    from deploy.azure import entities as ent
    from deploy.azure.rollout import AzureControlPlane
    from deploy.azure.staging import stage_scoring_code
    from deploy.azure.traffic import next_deployment_name, plan_rollout

    endpoint = ent.build_online_endpoint(settings)
    if args.dry_run:
        model_ref = ent.model_reference(settings, args.model_version)
        current, existing = _parse_traffic(args.current), _parse_names(args.existing)
        name = args.deployment or next_deployment_name(current, existing)
        plan = plan_rollout(current, name, settings.traffic_steps, existing=existing)
        _print_entities([endpoint, ent.build_online_deployment(settings, _paths(args), model_ref, name)])
        print(json.dumps({"traffic_plan": _plan_json(plan, settings)}, indent=2))
        return 0
    client = _workspace_client(args, settings)
    plane = AzureControlPlane(client, settings.auth_mode)
    # A pinned version, never @latest: the monitor's references and the dashboard must name what is served.
    version = args.model_version or plane.latest_model_version(settings.model_name)
    if not plane.endpoint_exists(settings.endpoint_name):
        print(f"creating endpoint {settings.endpoint_name} ({settings.target}) ...")
        client.online_endpoints.begin_create_or_update(endpoint).result()
    current, existing = plane.traffic(settings.endpoint_name), plane.deployments(settings.endpoint_name)
    name = args.deployment or next_deployment_name(current, existing)
    plan = plan_rollout(current, name, settings.traffic_steps, existing=existing)
    stage_scoring_code()
    model_ref = ent.model_reference(settings, version)
    deployment = ent.build_online_deployment(settings, _paths(args), model_ref, name)
    _rollout(plane, settings, plan, deployment, (settings.model_name, version))
    # One parseable line for scripts (deploy/azure/ci/rollout.sh): the new slot, the previous ones.
    print(f"deployed {name} (model {settings.model_name}:{version}); previous: {','.join(plan.retire) or '-'}")
    print(f'dashboard: set model = "{settings.model_name}:{version}" in [dashboard] (docs/azure.md, after a rollout)')
    return 0


def cmd_promote(args: argparse.Namespace, settings: DeploySettings) -> int:
    from deploy.azure.monitoring import parse_model_id
    from deploy.azure.rollout import AzureControlPlane
    from deploy.azure.traffic import plan_rollout

    if not args.deployment:
        raise CliError("promote needs --deployment NAME (the deployment to move to 100%)")
    if args.dry_run:
        current, existing = _parse_traffic(args.current), _parse_names(args.existing)
        plan = plan_rollout(current, args.deployment, settings.traffic_steps, resume=True, existing=existing)
        print(json.dumps({"traffic_plan": _plan_json(plan, settings)}, indent=2))
        return 0
    plane = AzureControlPlane(_workspace_client(args, settings), settings.auth_mode)
    current, existing = plane.traffic(settings.endpoint_name), plane.deployments(settings.endpoint_name)
    plan = plan_rollout(current, args.deployment, settings.traffic_steps, True, existing)
    model = parse_model_id(plane.deployment_model(settings.endpoint_name, args.deployment))
    _rollout(plane, settings, plan, None, model)
    return 0


def cmd_rollback(args: argparse.Namespace, settings: DeploySettings) -> int:
    from deploy.azure.rollout import AzureControlPlane
    from deploy.azure.traffic import plan_rollout

    if not args.deployment:
        raise CliError("rollback needs --deployment NAME (the deployment to take out of traffic)")
    plane = None if args.dry_run else AzureControlPlane(_workspace_client(args, settings), settings.auth_mode)
    if plane is None:
        current, existing = _parse_traffic(args.current), _parse_names(args.existing)
    else:
        current, existing = plane.traffic(settings.endpoint_name), plane.deployments(settings.endpoint_name)
    rollback = plan_rollout(current, args.deployment, (100,), resume=True, existing=existing).rollback
    if not sum(rollback.values()):
        raise CliError(
            f"no other deployment on {settings.endpoint_name} served traffic before ({current}); "
            "shift traffic by hand with `az ml online-endpoint update --traffic`"
        )
    print(f"traffic -> {rollback}")
    if plane is not None:
        plane.set_traffic(settings.endpoint_name, rollback)
    return 0


def cmd_teardown(args: argparse.Namespace, settings: DeploySettings) -> int:
    from deploy.azure.teardown import teardown_plan

    steps = teardown_plan(settings, args.deployment)
    if args.dry_run or not args.yes:
        listing = "\n".join(f"  - {step.description}" for step in steps)
        if args.dry_run:
            print(f"teardown would:\n{listing}")
            return 0
        raise CliError(f"teardown would:\n{listing}\nre-run with --yes to confirm")
    from deploy.azure.teardown import run_teardown

    run_teardown(_workspace_client(args, settings), steps)
    print(
        "The AKS cluster, the compute cluster's quota, the dashboard's Container App and the workspace are not "
        "deleted here: see docs/azure.md 'Stop everything' (az aks stop / az group delete)."
    )
    return 0


def cmd_train_job(args: argparse.Namespace, settings: DeploySettings) -> int:
    from deploy.azure import entities as ent
    from deploy.azure.staging import stage_training_code

    job = ent.build_training_job(settings, _paths(args))
    if args.dry_run:
        _print_entities([job])
        return 0
    stage_training_code()
    submitted = _workspace_client(args, settings).jobs.create_or_update(job)
    print(f"submitted job {submitted.name}: {submitted.studio_url}")
    print(
        f"register its output: az ml model create -n {settings.model_name} -t custom_model "
        f"-p azureml://jobs/{submitted.name}/outputs/model"
    )
    return 0


def cmd_batch(args: argparse.Namespace, settings: DeploySettings) -> int:
    from deploy.azure import entities as ent
    from deploy.azure.staging import stage_scoring_code

    endpoint = ent.build_batch_endpoint(settings)
    deployment = ent.build_batch_deployment(settings, _paths(args), ent.model_reference(settings, args.model_version))
    if args.dry_run:
        _print_entities([endpoint, deployment])
        return 0
    stage_scoring_code()
    client = _workspace_client(args, settings)
    client.batch_endpoints.begin_create_or_update(endpoint).result()
    client.batch_deployments.begin_create_or_update(deployment).result()
    endpoint = client.batch_endpoints.get(settings.batch_endpoint_name)
    endpoint.defaults.deployment_name = deployment.name
    client.batch_endpoints.begin_create_or_update(endpoint).result()
    print(f"batch endpoint {endpoint.name}: {endpoint.scoring_uri}")
    print(f"invoke: az ml batch-endpoint invoke -n {endpoint.name} --input <folder or file> --input-type uri_folder")
    return 0


def _reference_data(args: argparse.Namespace, settings: DeploySettings) -> list[Any]:
    """Write both reference MLTables of --model-dir and build their data assets (Azure numbers the versions)."""
    from deploy.azure import entities as ent
    from deploy.azure.reference_data import (
        OUTPUTS_DESCRIPTION,
        build_reference_data,
        write_prediction_reference,
        write_reference,
    )

    inputs = write_reference(args.model_dir, args.reference_dir)
    outputs = write_prediction_reference(args.model_dir, args.reference_dir.parent / ent.PREDICTION_REFERENCE_FOLDER)
    version = ent.card_tags(args.model_dir).get("model_version")
    print(f"wrote {inputs} and {outputs} (reference.csv + MLTable) from {args.model_dir}")
    return [
        build_reference_data(settings.monitor_reference_name, str(inputs), None, version),
        build_reference_data(
            settings.monitor_prediction_reference_name, str(outputs), None, version, OUTPUTS_DESCRIPTION
        ),
    ]


def cmd_reference(args: argparse.Namespace, settings: DeploySettings) -> int:
    """Write the two reference MLTables (inputs, predictions) from --model-dir and register them."""
    from deploy.azure.rollout import AzureControlPlane

    assets = _reference_data(args, settings)
    if args.dry_run:
        _print_entities(assets)
        return 0
    plane = AzureControlPlane(_workspace_client(args, settings), settings.auth_mode)
    for data in assets:
        print(f"registered data asset {data.name}:{plane.register_data(data)}")
    return 0


def cmd_monitor(args: argparse.Namespace, settings: DeploySettings) -> int:
    """Create the schedule for the deployment serving the endpoint, with its model's references registered first."""
    from deploy.azure import entities as ent
    from deploy.azure.monitoring import schedule_for_endpoint, serving_deployment
    from deploy.azure.rollout import AzureControlPlane

    if args.dry_run:
        deployment = settings.deployment_name
        if args.current:
            deployment = serving_deployment(settings.endpoint_name, _parse_traffic(args.current))
        assets = _reference_data(args, settings)
        _print_entities([*assets, ent.build_monitor_schedule(settings.replace(deployment_name=deployment))])
        return 0
    plane = AzureControlPlane(_workspace_client(args, settings), settings.auth_mode)
    schedule, _ = schedule_for_endpoint(plane, settings)
    plane.create_schedule(schedule)
    print(f"monitoring schedule {schedule.name}: {schedule.create_monitor.monitoring_target.endpoint_deployment_id}")
    return 0


def cmd_dashboard(args: argparse.Namespace, settings: DeploySettings) -> int:
    """Render the dashboard's Container App YAML from the [dashboard] settings; print how to apply it."""
    import yaml

    from deploy.azure.containerapp import az_create_command, build_containerapp, load_dashboard_settings

    dashboard = load_dashboard_settings(args.settings)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "dashboard-containerapp.yml"
    target.write_text(yaml.safe_dump(build_containerapp(dashboard), sort_keys=False, width=110), encoding="utf-8")
    print(f"wrote {target}")
    print(f"apply: {az_create_command(dashboard, str(target))}")
    if "<" in target.read_text(encoding="utf-8"):
        print("note: it still holds <placeholders>; set them in the [dashboard] table of --settings")
    return 0


def _serving_card(args: argparse.Namespace, settings: DeploySettings) -> dict[str, Any] | None:
    """The serving model's card: from --serving-dir, else downloaded from the endpoint's serving deployment."""
    import tempfile

    from deploy.azure.gate import load_card
    from deploy.azure.monitoring import parse_model_id, serving_deployment
    from deploy.azure.rollout import AzureControlPlane

    if args.serving_dir is not None:
        return load_card(args.serving_dir)
    if args.dry_run:
        return None
    plane = AzureControlPlane(_workspace_client(args, settings), settings.auth_mode)
    traffic = plane.traffic(settings.endpoint_name)
    if not any(traffic.values()):
        print(f"no model serves {settings.endpoint_name} yet: only the absolute criteria apply")
        return None
    deployment = serving_deployment(settings.endpoint_name, traffic)
    name, version = parse_model_id(plane.deployment_model(settings.endpoint_name, deployment))
    with tempfile.TemporaryDirectory() as tmp:
        return load_card(plane.download_model(name, version, Path(tmp) / "model"))


def cmd_gate(args: argparse.Namespace, settings: DeploySettings) -> int:
    """Exit 0 if the model in --model-dir may replace the serving one (docs/azure.md, CI/CD), 7 with reasons if not."""
    from deploy.azure.gate import gate, load_card, summary

    candidate = load_card(args.model_dir)
    serving = _serving_card(args, settings)
    print(summary(candidate, serving))
    problems, warnings = gate(candidate, serving)
    for warning in warnings:
        print(f"gate warning: {warning}")
    for problem in problems:
        print(f"gate: {problem}", file=sys.stderr)
    print("gate: passed" if not problems else f"gate: failed ({len(problems)} reason(s)); not released")
    return exit_codes.OK if not problems else exit_codes.GATE_REFUSED


def cmd_smoke(args: argparse.Namespace, settings: DeploySettings) -> int:
    """Score the smoke records through the traffic split; every answer must carry --expect-model-version."""
    from deploy.azure.rollout import AzureControlPlane, smoke_records
    from model.core import schema
    from model.serving.client import EndpointClient, EndpointConfig, EndpointError

    if not args.expect_model_version:
        raise CliError("smoke needs --expect-model-version (model_version in the new model's model_card.json)")
    plane = AzureControlPlane(_workspace_client(args, settings), settings.auth_mode)
    uri = plane.scoring_uri(settings.endpoint_name)
    config = EndpointConfig(scoring_url=uri, name="azure", auth="key", key=plane.auth_secret(settings.endpoint_name))
    client, seen, errors = EndpointClient(config), set(), 0
    for _ in range(settings.canary_requests):
        try:
            seen.add(client.score(smoke_records(), traffic=schema.PROBE).model_version)  # never collected
        except EndpointError as exc:
            errors += 1
            print(f"smoke: {type(exc).__name__}: {exc}", file=sys.stderr)
    print(f"smoke: {settings.canary_requests} requests, {errors} errors, model versions {sorted(seen)}")
    return exit_codes.OK if errors == 0 and seen == {args.expect_model_version} else exit_codes.ROLLOUT_FAILED


def cmd_serving_model(args: argparse.Namespace, settings: DeploySettings) -> int:
    """Download the model the endpoint serves into --out (the monitor's reference in CI); prints name:version."""
    from deploy.azure.monitoring import parse_model_id, serving_deployment
    from deploy.azure.rollout import AzureControlPlane

    plane = AzureControlPlane(_workspace_client(args, settings), settings.auth_mode)
    deployment = serving_deployment(settings.endpoint_name, plane.traffic(settings.endpoint_name))
    name, version = parse_model_id(plane.deployment_model(settings.endpoint_name, deployment))
    plane.download_model(name, version, args.out)
    print(f"{name}:{version}")
    return 0


def cmd_collected(args: argparse.Namespace, settings: DeploySettings) -> int:
    """Copy the deployments' collected inputs of the last --days days from Blob Storage into --out."""
    from model.monitoring.collected import container_client, fetch_collected

    fetched = fetch_collected(container_client(), settings.endpoint_name, args.out, args.days)
    print(f"{fetched.records:,} records from {fetched.blobs} blobs {fetched.by_deployment} into {args.out}")
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace, DeploySettings], int], str]] = {
    "dry-run": (cmd_dry_run, "build every entity and write the YAML specs (no network)"),
    "plan": (cmd_plan, "print the blue/green traffic plan for --current traffic (no network)"),
    "stage": (cmd_stage, "write the code folders uploaded to Azure ML: scoring (deployments) and training (job)"),
    "register": (cmd_register, "register the model artifact folder with tags from model_card.json"),
    "deploy": (cmd_deploy, "create/update the online endpoint and roll out a new deployment"),
    "promote": (cmd_promote, "continue a rollout: shift traffic to --deployment through the steps"),
    "rollback": (cmd_rollback, "take --deployment out of traffic, back to the other deployment(s)"),
    "teardown": (
        cmd_teardown,
        "delete a deployment (--deployment), or the monitor schedule, online and batch endpoints; needs --yes",
    ),
    "train-job": (cmd_train_job, "submit `python -m model.training.train` as a command job on a compute cluster"),
    "batch": (cmd_batch, "create the batch endpoint and model batch deployment"),
    "reference": (cmd_reference, "write and register the monitoring reference MLTables (inputs, predictions)"),
    "dashboard": (cmd_dashboard, "write the dashboard's Container App YAML (az containerapp update --yaml)"),
    "gate": (cmd_gate, "release gate: may --model-dir replace the serving model? (card figures; exit 7 if not)"),
    "smoke": (cmd_smoke, "after a rollout: score through the endpoint, expect --expect-model-version everywhere"),
    "serving-model": (cmd_serving_model, "download the model the endpoint serves into --out"),
    "collected": (
        cmd_collected,
        "copy the deployments' collected inputs (Blob Storage) into --out for model.monitoring.monitor",
    ),
    "monitor": (
        cmd_monitor,
        "schedule drift monitoring of the deployment serving the endpoint (its model's references registered first)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.azure",
        description=__doc__,
        epilog="Exit codes: 0 done, 2 bad settings or arguments, 7 gate refused, 8 rollout or smoke test failed "
        "(traffic restored), 69 Azure or the network failed, 70 internal error (docs/cli.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--settings", type=Path, help="TOML settings file (see deploy/azure/settings.example.toml)")
        p.add_argument("--workspace-config", type=Path, help="Azure ML config.json (default: env vars, ./config.json)")
        p.add_argument("--dry-run", action="store_true", help="build and print entities; no network, no credential")
        p.add_argument("--model-dir", type=Path, default=REPO_ROOT / "artifacts" / "model", help="model artifact dir")
        p.add_argument("--model-version", help="registered model version (default: latest)")
        p.add_argument("--current", default="", help="dry-run/plan/monitor: current traffic, e.g. blue=90,green=10")
        p.add_argument("--existing", default="", help="dry-run/plan: every deployment on the endpoint, e.g. blue,green")
        p.add_argument("--resume", action="store_true", help="plan: continue a rollout of --deployment")
        p.add_argument("--yes", action="store_true", help="teardown: confirm deletion")
        p.add_argument(
            "--reference-dir",
            type=Path,
            default=REPO_ROOT / "artifacts" / "azure" / "reference",
            help="reference/monitor: folder for the reference MLTable",
        )
        p.add_argument("--out", type=Path, default=DEFAULT_DRY_RUN_DIR, help="dry-run: folder for the YAML specs")
        p.add_argument("--serving-dir", type=Path, help="gate: the serving model's folder (default: download it)")
        p.add_argument("--expect-model-version", help="smoke: the model_version every answer must carry")
        p.add_argument("--days", type=int, default=7, help="collected: how many days back")
        p.add_argument("--write-specs", action="store_true", help="dry-run: regenerate deploy/azure/specs/")
        p.add_argument("--target", choices=TARGETS, help="kubernetes (attached AKS) or managed")
        p.add_argument("--auth-mode", dest="auth_mode", choices=AUTH_MODES)
        for field in ("endpoint_name", "compute", "instance_type", "managed_instance_type", "cluster"):
            p.add_argument(f"--{_SETTING_FLAGS[field]}", dest=field)
        p.add_argument("--deployment", dest="deployment_name", help="deployment (slot) name, e.g. blue / green")
        p.add_argument("--steps", dest="traffic_steps", help="traffic steps for the new deployment, e.g. 10,50,100")
        p.add_argument("--data", dest="training_data", help="train-job: data asset or URI of the CDC file")
        p.add_argument("--canary-wait", dest="canary_wait_s", help="deploy/promote: seconds to wait before each check")
        p.add_argument(
            "--keep-previous",
            dest="keep_previous_deployment",
            action="store_const",
            const=True,
            help="deploy/promote: keep the old deployment at 0%% instead of deleting it after promotion",
        )
    return parser


def _azure_errors() -> tuple[type[BaseException], ...]:
    """What Azure, its SDK or the network raise when the cloud side fails or refuses (exit AZURE_ERROR).

    Imported here, late, so `--help` and the offline commands stay fast.
    """
    import requests
    from azure.core.exceptions import AzureError

    from model.monitoring.collected import CollectedDataError
    from model.serving.client import EndpointError

    return AzureError, requests.RequestException, EndpointError, CollectedDataError


@exit_codes.guarded
def main(argv: list[str] | None = None) -> int:
    """Run one command; its code, 2 for bad settings, 8 for a failed rollout, 69 when Azure fails, 70 for a bug."""
    from deploy.azure.rollout import RolloutFailed
    from deploy.azure.teardown import TeardownRefused

    args = build_parser().parse_args(argv)
    args.deployment = args.deployment_name
    handler = COMMANDS[args.command][0]
    try:
        settings = _settings(args)
        return handler(args, settings)
    except (ConfigError, CliError, ValueError, FileNotFoundError, TeardownRefused) as exc:
        return exit_codes.bad_input(exc)
    except RolloutFailed as exc:
        print(f"error: rollout failed: {exit_codes.one_line(exc)}", file=sys.stderr)
        return exit_codes.ROLLOUT_FAILED
    except _azure_errors() as exc:  # one line, no traceback (messages hold no secrets); a bug still gets 70
        print(f"error: {type(exc).__name__}: {exit_codes.one_line(exc)}", file=sys.stderr)
        return exit_codes.AZURE_ERROR


if __name__ == "__main__":
    sys.exit(main())
