"""The local backend: azure-ai-ml entities in, the emulator engine underneath.

``LocalBackend`` itself is light: building one opens the workspace store and imports no
azure-ai-ml. Its operation groups (:mod:`backends.local_operations`, which speak the SDK's
entities and exception types) load on first use, and its ``verbs`` (:mod:`backends.local_verbs`,
what the ``amlemu`` CLI calls) reach the engine directly, so ``amlemu job create`` on a plain
command job never pays for the SDK's import (about 1.5 s).
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import Any

from backends import base
from emulator import config, errors
from emulator.store import open_store
from emulator.tracking.filestore import TRACKING_ENV

#: MLClient's operation groups that the local backend does not emulate (yet): each exists, and every call on it
#: raises NotEmulated naming the operation, never an AttributeError
NOT_EMULATED_GROUPS = (
    "azure_openai_deployments",
    "batch_deployments",
    "batch_endpoints",
    "capability_hosts",
    "connections",
    "deployment_templates",
    "evaluators",
    "feature_sets",
    "feature_store_entities",
    "feature_stores",
    "indexes",
    "marketplace_subscriptions",
    "registries",
    "schedules",
    "serverless_endpoints",
    "workspace_outbound_rules",
)


#: ``MLClient.create_or_update`` and ``begin_create_or_update``: the operation group of each entity class (by the
#: class's name or a base class's, so that no azure-ai-ml import is needed to tell them apart)
_CREATE_GROUPS = {
    "Job": "jobs",
    "Model": "models",
    "Environment": "environments",
    "Datastore": "datastores",
    "Component": "components",
    "Index": "indexes",
}
_BEGIN_GROUPS = {
    "Compute": "compute",
    "OnlineEndpoint": "online_endpoints",
    "OnlineDeployment": "online_deployments",
    "BatchEndpoint": "batch_endpoints",
    "BatchDeployment": "batch_deployments",
    "Schedule": "schedules",
    "Registry": "registries",
}


def _group_for(entity: Any, groups: dict[str, str], method: str) -> str:
    for cls in type(entity).__mro__:
        if cls.__name__ in groups:
            return groups[cls.__name__]
    raise errors.ValidationError(
        f"ml_client.{method} takes {', '.join(groups)} entities, not {type(entity).__name__}. "
        "Call the operation group for it (ml_client.data.create_or_update for a Data asset, ...)."
    )


class NotEmulatedOperations:
    """An operation group of ``MLClient`` that amlemu does not emulate: any method raises ``NotEmulated``."""

    def __init__(self, group: str):
        self._group = group

    def __getattr__(self, method: str) -> Any:
        if method.startswith("__"):
            raise AttributeError(method)

        def not_emulated(*args: Any, **kwargs: Any) -> Any:
            raise errors.NotEmulated(f"ml_client.{self._group}.{method}")

        return not_emulated

    def __repr__(self) -> str:
        return f"<not emulated: ml_client.{self._group}>"


def _group(class_name: str, module: str = "backends.local_operations") -> functools.cached_property:
    """An operation group built on first access (its module imports azure-ai-ml: not at start-up)."""

    def build(self: LocalBackend) -> Any:
        # on first use: the module's azure-ai-ml costs ~1.4 s at start
        return getattr(importlib.import_module(module), class_name)(self)

    prop = functools.cached_property(build)
    prop.__doc__ = f"``{class_name}``, built on first use."
    return prop


class LocalBackend(base.Backend):
    """The local emulator behind an ``MLClient``-shaped object."""

    name = "local"

    def __init__(self, workspace: str | None = None, *, workspace_name: str | None = None, **kwargs: Any):
        self.workspace_name = workspace or workspace_name or config.workspace_name()
        self.subscription_id = config.SUBSCRIPTION_ID
        self.resource_group_name = config.RESOURCE_GROUP
        self.store = open_store(self.workspace_name)
        os.environ.update(TRACKING_ENV)  # so mlflow in this process can read the workspace's runs
        for group in NOT_EMULATED_GROUPS:
            setattr(self, group, NotEmulatedOperations(group))

    jobs = _group("LocalJobOperations")
    models = _group("LocalModelOperations")
    environments = _group("LocalEnvironmentOperations")
    compute = _group("LocalComputeOperations")
    online_endpoints = _group("LocalOnlineEndpointOperations")
    online_deployments = _group("LocalOnlineDeploymentOperations")
    workspaces = _group("LocalWorkspaceOperations")
    data = _group("LocalDataOperations", "backends.data_operations")
    datastores = _group("LocalDatastoreOperations", "backends.data_operations")
    components = _group("LocalComponentOperations", "backends.component_operations")

    @functools.cached_property
    def verbs(self) -> base.Verbs:
        """The ``az ml`` verbs on the engine directly (the CLI's fast path): see :mod:`backends.local_verbs`."""
        from backends.local_verbs import LocalVerbs  # only the CLI needs the verbs (~70 ms at start)

        return LocalVerbs(self)

    def create_or_update(self, entity: Any, **kwargs: Any) -> Any:
        """``MLClient.create_or_update``: a job, model, environment, datastore or component, handed to its operation
        group."""
        return getattr(self, _group_for(entity, _CREATE_GROUPS, "create_or_update")).create_or_update(entity, **kwargs)

    def begin_create_or_update(self, entity: Any, **kwargs: Any) -> Any:
        """``MLClient.begin_create_or_update``: a compute, endpoint or deployment, handed to its operation group."""
        group = _group_for(entity, _BEGIN_GROUPS, "begin_create_or_update")
        return getattr(self, group).begin_create_or_update(entity, **kwargs)

    @property
    def tracking_uri(self) -> str:
        """The workspace's MLflow tracking URI (``mlflow.set_tracking_uri(ml_client.tracking_uri)``)."""
        return self.store.tracking_uri

    def __repr__(self) -> str:
        return f"LocalBackend(workspace={self.workspace_name!r}, root={str(self.store.root)!r})"
