"""Azure ML (SDK v2) deployment of the COVID-19 death-risk model.

`python -m deploy.azure --help` lists the commands. Every entity (model, environment,
endpoints, deployments, training job, batch deployment, monitoring schedule) is built
by `deploy.azure.entities` from one `DeploySettings`; the YAML specs in
`deploy/azure/specs/` are generated from the same builders (`python -m deploy.azure
dry-run --write-specs`) so `az ml ... create -f` and the Python path deploy the same thing.
"""
