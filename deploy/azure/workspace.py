"""The one place an MLClient (and therefore a credential) is created. Dry runs never import this."""

from __future__ import annotations

from typing import Any

from deploy.azure.config import WorkspaceConfig


def ml_client(workspace: WorkspaceConfig) -> Any:
    """MLClient with DefaultAzureCredential (az login, managed identity, env service principal...)."""
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    return MLClient(
        credential=DefaultAzureCredential(),
        subscription_id=workspace.subscription_id,
        resource_group_name=workspace.resource_group,
        workspace_name=workspace.workspace_name,
    )
