"""The local backend: azure-ai-ml entities in, the emulator engine underneath.

Errors come out as the SDK's own exception types too (a missing job is an
``azure.core.exceptions.ResourceNotFoundError`` as well as amlemu's
``ResourceNotFound``), so ``except`` clauses written for Azure keep working.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any, Iterable

from azure.ai.ml.exceptions import JobException, ValidationException
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.core.polling import LROPoller, NoPolling

from backends import base, entities
from emulator import config, errors
from emulator.environments import registry as environment_registry
from emulator.jobs import service
from emulator.jobs.stream import stream as stream_job
from emulator.models import registry as model_registry
from emulator.store import open_store
from emulator.tracking.filestore import TRACKING_ENV


class LocalResourceNotFound(errors.ResourceNotFound, ResourceNotFoundError):
    """A missing resource: both amlemu's and azure-core's not-found error."""

    def __init__(self, message: str):
        ResourceNotFoundError.__init__(self, message=message)
        errors.ResourceNotFound.__init__(self, message)
        self.status_code = 404


class LocalResourceExists(errors.ResourceExists, ResourceExistsError):
    """A name or version already taken."""

    def __init__(self, message: str):
        ResourceExistsError.__init__(self, message=message)
        errors.ResourceExists.__init__(self, message)
        self.status_code = 409


class LocalValidationError(errors.ValidationError, ValidationException):
    def __init__(self, message: str):
        ValidationException.__init__(self, message, message)
        errors.ValidationError.__init__(self, message)

    def __str__(self) -> str:
        return self.message


class LocalJobFailed(errors.JobFailed, JobException):
    def __init__(self, message: str):
        JobException.__init__(self, message, message)
        errors.JobFailed.__init__(self, message)

    def __str__(self) -> str:
        return self.message


_TRANSLATE = [(errors.ResourceNotFound, LocalResourceNotFound), (errors.ResourceExists, LocalResourceExists),
              (errors.JobFailed, LocalJobFailed), (errors.ValidationError, LocalValidationError)]


def sdk_errors(method):
    """Re-raise engine errors as classes that are also the SDK's exception types."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except errors.EmulatorError as exc:
            for ours, theirs in _TRANSLATE:
                if isinstance(exc, ours) and not isinstance(exc, theirs):
                    raise theirs(exc.message) from None
            raise
    return wrapper


def done(result: Any) -> LROPoller:
    """An ``LROPoller`` whose operation has already finished with ``result``."""
    return LROPoller(None, result, lambda response: response, NoPolling())


class _Operations:
    def __init__(self, backend: "LocalBackend"):
        self._backend = backend

    @property
    def _store(self):
        return self._backend.store


class LocalJobOperations(_Operations, base.JobOperations):
    @sdk_errors
    def create_or_update(self, job, *, description=None, compute=None, tags=None, experiment_name=None,
                         skip_validation=False, **kwargs):
        spec = entities.job_to_spec(job)
        for key, value in (("description", description), ("compute", compute), ("tags", tags),
                           ("experiment_name", experiment_name)):
            if value is not None:
                spec[key] = value
        record = service.submit(self._store, spec, Path.cwd())
        return entities.record_to_job(self._store, record)

    @sdk_errors
    def get(self, name: str):
        return entities.record_to_job(self._store, service.get(self._store, name))

    @sdk_errors
    def list(self, *, parent_job_name: str | None = None, max_results: int | None = None, **kwargs):
        return [entities.record_to_job(self._store, r)
                for r in service.list_jobs(self._store, parent_job_name, max_results)]

    @sdk_errors
    def stream(self, name: str) -> None:
        stream_job(self._store, name, sys.stdout)

    @sdk_errors
    def begin_cancel(self, name: str, **kwargs) -> LROPoller:
        service.cancel(self._store, name)
        return done(None)

    @sdk_errors
    def download(self, name: str, *, download_path: str = ".", output_name: str | None = None,
                 all: bool = False) -> None:
        service.download(self._store, name, Path(download_path), output_name, all)

    def wait(self, name: str, timeout: float | None = None):
        """amlemu extra: block until the job ends and return it (the SDK polls ``get``)."""
        return entities.record_to_job(self._store, service.wait(self._store, name, timeout))


class LocalModelOperations(_Operations, base.ModelOperations):
    @sdk_errors
    def create_or_update(self, model):
        spec = entities.model_to_spec(model)
        return entities.record_to_model(self._store, model_registry.create_or_update(self._store, spec, Path.cwd()))

    @sdk_errors
    def get(self, name: str, version: str | None = None, label: str | None = None):
        return entities.record_to_model(self._store, self._store.get_asset(model_registry.KIND, name, version))

    @sdk_errors
    def list(self, name: str | None = None, **kwargs):
        return [entities.record_to_model(self._store, r) for r in self._store.list_assets(model_registry.KIND, name)]

    @sdk_errors
    def download(self, name: str, version: str, download_path: str = ".") -> None:
        model_registry.download(self._store, name, version, Path(download_path))


class LocalEnvironmentOperations(_Operations, base.EnvironmentOperations):
    @sdk_errors
    def create_or_update(self, environment):
        spec = entities.environment_to_spec(environment)
        return entities.record_to_environment(self._store, environment_registry.create(self._store, spec, Path.cwd()))

    @sdk_errors
    def get(self, name: str, version: str | None = None, label: str | None = None):
        record = self._store.get_asset(environment_registry.KIND, name, version)
        return entities.record_to_environment(self._store, record)

    @sdk_errors
    def list(self, name: str | None = None, **kwargs):
        return [entities.record_to_environment(self._store, r)
                for r in self._store.list_assets(environment_registry.KIND, name)]


def _not_emulated(group: str, methods: Iterable[str], abc: type) -> type:
    """An operation group whose every method raises a clear "not emulated yet" error."""
    def make(method: str):
        def raiser(self, *args, **kwargs):
            raise errors.NotEmulated(f"ml_client.{group}.{method}")
        raiser.__name__ = method
        return raiser

    return type(f"Local{abc.__name__}", (abc,), {m: make(m) for m in methods})


LocalComputeOperations = _not_emulated(
    "compute", ["get", "list", "begin_create_or_update", "begin_delete", "begin_start", "begin_stop",
                "begin_restart", "list_nodes"], base.ComputeOperations)
LocalOnlineEndpointOperations = _not_emulated(
    "online_endpoints", ["begin_create_or_update", "get", "list", "begin_delete", "invoke", "get_keys",
                         "begin_regenerate_keys"], base.OnlineEndpointOperations)
LocalOnlineDeploymentOperations = _not_emulated(
    "online_deployments", ["begin_create_or_update", "get", "list", "begin_delete", "get_logs"],
    base.OnlineDeploymentOperations)


class LocalWorkspaceOperations(_Operations):
    def get(self, name: str | None = None, **kwargs):
        from azure.ai.ml.entities import Workspace

        return Workspace(name=self._store.name, mlflow_tracking_uri=self._store.tracking_uri,
                         description="amlemu local workspace", location="local")


class LocalBackend(base.Backend):
    """The local emulator behind an ``MLClient``-shaped object."""

    name = "local"

    def __init__(self, workspace: str | None = None, **kwargs: Any):
        self.workspace_name = workspace or config.workspace_name()
        self.subscription_id = config.SUBSCRIPTION_ID
        self.resource_group_name = config.RESOURCE_GROUP
        self.store = open_store(self.workspace_name)
        os.environ.update(TRACKING_ENV)  # so mlflow in this process can read the workspace's runs
        self._jobs = LocalJobOperations(self)
        self._models = LocalModelOperations(self)
        self._environments = LocalEnvironmentOperations(self)
        self._compute = LocalComputeOperations()
        self._online_endpoints = LocalOnlineEndpointOperations()
        self._online_deployments = LocalOnlineDeploymentOperations()
        self.workspaces = LocalWorkspaceOperations(self)

    jobs = property(lambda self: self._jobs)
    models = property(lambda self: self._models)
    environments = property(lambda self: self._environments)
    compute = property(lambda self: self._compute)
    online_endpoints = property(lambda self: self._online_endpoints)
    online_deployments = property(lambda self: self._online_deployments)

    @property
    def tracking_uri(self) -> str:
        """The workspace's MLflow tracking URI (``mlflow.set_tracking_uri(ml_client.tracking_uri)``)."""
        return self.store.tracking_uri

    def __repr__(self) -> str:
        return f"LocalBackend(workspace={self.workspace_name!r}, root={str(self.store.root)!r})"
