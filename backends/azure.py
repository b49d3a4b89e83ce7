"""The Azure backend: the real ``azure.ai.ml.MLClient``, built the usual way.

``MLClient.from_config`` reads the workspace ``config.json`` (searched from the
current folder upwards, or ``path=``) and authenticates with
``DefaultAzureCredential`` unless a ``credential`` is given. A workspace named in
full (``subscription_id``, ``resource_group_name``, ``workspace_name``: the CLI's
``--subscription``, ``-g``, ``-w``) needs no ``config.json``, as with ``az ml``; a
part of it given alone overrides that part of ``config.json``. Every operation
group is the SDK's own, so behaviour is Azure's by construction.
"""

from __future__ import annotations

from typing import Any

from azure.ai.ml import MLClient
from azure.ai.ml.exceptions import ValidationException

from backends import base
from emulator.errors import EmulatorError


class AzureNotConfigured(EmulatorError):
    """``AMLEMU_BACKEND=azure`` with no workspace to act on: what is missing and how to set it."""

    code = "AzureNotConfigured"
    status = 400

    def __init__(self, reason: str):
        super().__init__(
            f"The backend is 'azure' (AMLEMU_BACKEND or `backend:` in a config file) but no Azure ML workspace is "
            f"configured: {reason} To use Azure: download the workspace's config.json from Azure ML studio "
            "(the workspace name at the top right > 'Download config file') into this folder or a parent "
            "(or pass path= to connect()), or name the workspace in full with --subscription, -g/--resource-group "
            "and -w/--workspace-name; and sign in for DefaultAzureCredential with `az login` (or set "
            "AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET). Nothing was run, locally or on Azure; "
            "to use the local emulator instead, unset AMLEMU_BACKEND (or set it to 'local')."
        )


class AzureBackend(base.Backend):
    name = "azure"

    def __init__(
        self,
        credential: Any = None,
        path: str | None = None,
        client: Any = None,
        *,
        subscription_id: str | None = None,
        resource_group_name: str | None = None,
        workspace_name: str | None = None,
        **kwargs: Any,
    ):
        if client is None:
            client = _client(credential, path, subscription_id, resource_group_name, workspace_name, kwargs)
        self.client = client

    jobs = property(lambda self: self.client.jobs)
    models = property(lambda self: self.client.models)
    environments = property(lambda self: self.client.environments)
    compute = property(lambda self: self.client.compute)
    online_endpoints = property(lambda self: self.client.online_endpoints)
    online_deployments = property(lambda self: self.client.online_deployments)
    data = property(lambda self: self.client.data)
    datastores = property(lambda self: self.client.datastores)

    def __getattr__(self, item: str) -> Any:  # workspaces, data, components, ... straight from MLClient
        return getattr(self.__dict__["client"], item)


def _client(
    credential: Any,
    path: str | None,
    subscription_id: str | None,
    resource_group_name: str | None,
    workspace_name: str | None,
    kwargs: dict[str, Any],
) -> Any:
    if credential is None:
        # only a call without a credential needs azure-identity (~50 ms at start)
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()  # asks for a token on first use, not here
    scope = (subscription_id, resource_group_name, workspace_name)
    if all(scope):
        return MLClient(credential, *scope, **kwargs)
    try:
        client = MLClient.from_config(credential=credential, path=path, **kwargs)
    except ValidationException as exc:  # no config.json found, or one without the workspace's fields
        raise AzureNotConfigured(" ".join(str(exc).split()).rstrip(".") + ".") from None
    if any(scope):
        return MLClient(
            credential,
            subscription_id or client.subscription_id,
            resource_group_name or client.resource_group_name,
            workspace_name or client.workspace_name,
            **kwargs,
        )
    return client
