"""Azure ML (SDK v2) deployment of the COVID-19 death-risk model.

`python -m deploy.azure --help` lists the commands. Every entity (model, environment,
endpoints, deployments, training job, batch deployment, monitoring schedule) is built
by `deploy.azure.entities` from one `DeploySettings`; the YAML specs in
`deploy/azure/specs/` are generated from the same builders (`python -m deploy.azure
dry-run --write-specs`) so `az ml ... create -f` and the Python path deploy the same thing.

Around them: `rollout` (blue/green with canary checks), `traffic` (pure plans), `teardown`,
`reference_data` (the monitor's MLTable), `batch_sizing`, `resources` (Kubernetes limits),
`containerapp` (the dashboard in Azure Container Apps; its start command and model fetch are in dashboard/),
`k8s/` (AKS cluster script, custom instance type), `monitoring` (the schedule follows the deployment
serving 100% and its model's references), `gate` (release gate on the model cards), `collected`
(the deployments' collected data from Blob Storage), `infra/` (the Bicep template set for everything
else), `ci/rollout.sh` (the gated rollout of .github/workflows). docs/azure.md is the guide.
"""
