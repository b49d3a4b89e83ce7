"""The Azure backend: the real ``azure.ai.ml.MLClient``, built the usual way.

``MLClient.from_config`` reads the workspace ``config.json`` (searched from the
current folder upwards, or ``path=``) and authenticates with
``DefaultAzureCredential`` unless a ``credential`` is given. Every operation
group is the SDK's own, so behaviour is Azure's by construction.
"""

from __future__ import annotations

from typing import Any

from backends import base


class AzureBackend(base.Backend):
    name = "azure"

    def __init__(self, credential: Any = None, path: str | None = None, client: Any = None, **kwargs: Any):
        if client is None:
            from azure.ai.ml import MLClient

            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            client = MLClient.from_config(credential=credential, path=path, **kwargs)
        self.client = client

    jobs = property(lambda self: self.client.jobs)
    models = property(lambda self: self.client.models)
    environments = property(lambda self: self.client.environments)
    compute = property(lambda self: self.client.compute)
    online_endpoints = property(lambda self: self.client.online_endpoints)
    online_deployments = property(lambda self: self.client.online_deployments)

    def __getattr__(self, item: str) -> Any:  # workspaces, data, components, ... straight from MLClient
        return getattr(self.__dict__["client"], item)
