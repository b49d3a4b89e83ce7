"""The local backend's operation groups: azure-ai-ml entities in, the emulator engine underneath.

Imported by :class:`backends.local.LocalBackend` on first use of a group (this module imports
azure-ai-ml and azure-core; the CLI's local fast path never needs it). Errors come out as the
SDK's own exception types too (a missing job is an ``azure.core.exceptions.ResourceNotFoundError``
as well as amlemu's ``ResourceNotFound``), so ``except`` clauses written for Azure keep working.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azure.ai.ml.entities import EndpointAuthKeys, EndpointAuthToken, Environment, Workspace
from azure.ai.ml.exceptions import (
    DeploymentException,
    JobException,
    LocalEndpointInFailedStateError,
    LocalEndpointNotFoundError,
    ValidationException,
)
from azure.core.exceptions import HttpResponseError, ODataV4Format, ResourceExistsError, ResourceNotFoundError
from azure.core.polling import LROPoller, NoPolling

from backends import base, compute_entities, endpoint_entities, entities, job_entities
from emulator import errors, kinds
from emulator.compute import faults as compute_faults
from emulator.compute import service as computes
from emulator.endpoints import local_mode
from emulator.endpoints import service as endpoints
from emulator.environments import registry as environment_registry
from emulator.environments.curated import EnvironmentRef
from emulator.environments.views import curated_view
from emulator.jobs import lifecycle
from emulator.jobs import outputs as job_outputs
from emulator.jobs.stream import stream as stream_job
from emulator.models import registry as model_registry

if TYPE_CHECKING:
    from backends.local import LocalBackend


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


class LocalDeploymentFailed(endpoints.DeploymentFailed, DeploymentException):
    def __init__(self, message: str):
        DeploymentException.__init__(self, message, message)
        endpoints.DeploymentFailed.__init__(self, message)

    def __str__(self) -> str:
        return self.message


class LocalEndpointMissing(local_mode.LocalEndpointNotFound, LocalEndpointNotFoundError):
    """A missing local endpoint or deployment (``local=True``): azure-ai-ml's error, and amlemu's not-found."""

    @classmethod
    def from_engine(cls, exc: local_mode.LocalEndpointNotFound) -> LocalEndpointMissing:
        error = cls.__new__(cls)
        LocalEndpointNotFoundError.__init__(error, exc.endpoint_name, exc.deployment_name)
        local_mode.LocalEndpointNotFound.__init__(error, exc.endpoint_name, exc.deployment_name)
        return error

    def __str__(self) -> str:
        return self.message


class LocalEndpointFailed(local_mode.LocalDeploymentFailed, LocalEndpointInFailedStateError):
    """A local deployment that did not come up (``local=True``): azure-ai-ml's error, with amlemu's reason."""

    @classmethod
    def from_engine(cls, exc: local_mode.LocalDeploymentFailed) -> LocalEndpointFailed:
        error = cls.__new__(cls)
        LocalEndpointInFailedStateError.__init__(error, exc.endpoint_name, exc.deployment_name)
        endpoints.DeploymentFailed.__init__(error, exc.message)
        error.endpoint_name, error.deployment_name = exc.endpoint_name, exc.deployment_name
        return error

    def __str__(self) -> str:
        return self.message


class LocalQuotaExceeded(compute_faults.QuotaExceeded, HttpResponseError):
    """A compute refused for quota: azure-core's error as the SDK raises Azure's 400 (``.error.code``, message)."""

    @classmethod
    def from_engine(cls, exc: compute_faults.QuotaExceeded) -> LocalQuotaExceeded:
        error = cls.__new__(cls)
        compute_faults.QuotaExceeded.__init__(error, exc.message)
        odata = ODataV4Format({"code": exc.code, "message": exc.message})
        HttpResponseError.__init__(error, message=str(odata))
        error.error, error.status_code, error.reason = odata, exc.status, "Bad Request"
        return error


_TRANSLATE: list[tuple[type, Any]] = [
    (compute_faults.QuotaExceeded, LocalQuotaExceeded),
    (local_mode.LocalEndpointNotFound, LocalEndpointMissing),
    (local_mode.LocalDeploymentFailed, LocalEndpointFailed),
    (endpoints.DeploymentFailed, LocalDeploymentFailed),
    (errors.ResourceNotFound, LocalResourceNotFound),
    (errors.ResourceExists, LocalResourceExists),
    (errors.JobFailed, LocalJobFailed),
    (errors.ValidationError, LocalValidationError),
]


def sdk_errors(method):
    """Re-raise engine errors as classes that are also the SDK's exception types."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except errors.EmulatorError as exc:
            for ours, theirs in _TRANSLATE:
                if isinstance(exc, ours) and not isinstance(exc, theirs):
                    raise (theirs.from_engine(exc) if hasattr(theirs, "from_engine") else theirs(exc.message)) from None
            raise

    return wrapper


def done(result: Any) -> LROPoller:
    """An ``LROPoller`` whose operation has already finished with ``result``."""
    return LROPoller(None, result, lambda response: response, NoPolling())


def local_result(entity: Any) -> Any:
    """What a ``local=True`` create returns: azure-ai-ml returns the entity itself, yet documents a poller and
    Azure's own notebooks call ``.result()`` on it; the entity answers ``.result()`` with itself, so both run."""
    entity.result = lambda timeout=None: entity
    return entity


def _request_body(request_file: str | None, input_data: Any) -> bytes:
    if request_file is None and input_data is None:
        raise errors.ValidationError("invoke needs request_file (a JSON file) or input_data.")
    if request_file is not None:
        path = Path(request_file)
        if not path.is_file():
            raise errors.ValidationError(f"request_file '{request_file}' does not exist.")
        return path.read_bytes()
    return input_data.encode() if isinstance(input_data, str) else json.dumps(input_data).encode()


class _Operations:
    def __init__(self, backend: LocalBackend):
        self._backend = backend

    def __getattr__(self, method: str) -> Any:
        """A method the SDK's operation group has and this one does not (``models.archive``, ``models.share``,
        ...) raises NotEmulated naming it, as a whole group that is not emulated does; anything else is an
        AttributeError, as on the SDK's class."""
        import azure.ai.ml.operations as sdk_operations

        sdk_class = getattr(sdk_operations, type(self).__name__.removeprefix("Local"), None)
        if method.startswith("_") or sdk_class is None or not callable(getattr(sdk_class, method, None)):
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{method}'")
        # the group's name on the client (models, online_endpoints, ...): the backend's cached attribute holding self
        group = next((k for k, v in vars(self._backend).items() if v is self), sdk_class.__name__)

        def not_emulated(*args: Any, **kwargs: Any) -> Any:
            raise errors.NotEmulated(f"ml_client.{group}.{method}")

        return not_emulated

    @property
    def _store(self):
        return self._backend.store


class LocalJobOperations(_Operations, base.JobOperations):
    @sdk_errors
    def create_or_update(
        self, job, *, description=None, compute=None, tags=None, experiment_name=None, skip_validation=False, **kwargs
    ):
        spec = job_entities.job_to_spec(job)
        for key, value in (
            ("description", description),
            ("compute", compute),
            ("tags", tags),
            ("experiment_name", experiment_name),
        ):
            if value is not None:
                spec[key] = value
        record = kinds.submit(self._store, spec, Path.cwd())
        return job_entities.record_to_job(self._store, record)

    @sdk_errors
    def get(self, name: str):
        return job_entities.record_to_job(self._store, lifecycle.get(self._store, name))

    @sdk_errors
    def list(self, *, parent_job_name: str | None = None, max_results: int | None = None, **kwargs):
        return [
            job_entities.record_to_job(self._store, r)
            for r in lifecycle.list_jobs(self._store, parent_job_name, max_results)
        ]

    @sdk_errors
    def stream(self, name: str) -> None:
        stream_job(self._store, name, sys.stdout)

    @sdk_errors
    def begin_cancel(self, name: str, **kwargs) -> LROPoller:
        lifecycle.cancel(self._store, name)
        return done(None)

    @sdk_errors
    def download(
        self, name: str, *, download_path: str = ".", output_name: str | None = None, all: bool = False
    ) -> None:
        job_outputs.download(self._store, name, Path(download_path), output_name, all)

    def wait(self, name: str, timeout: float | None = None):
        """amlemu extra: block until the job ends and return it (the SDK polls ``get``)."""
        return job_entities.record_to_job(self._store, lifecycle.wait(self._store, name, timeout))


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
        """A registered environment, or a curated one by its workspace name (``AzureML-sklearn-1.5``)."""
        try:
            record = self._store.get_asset(environment_registry.KIND, name, version)
        except errors.ResourceNotFound:
            if not EnvironmentRef(name).curated_key:
                raise
            view = curated_view(name, version, label)
            return Environment(
                name=view["name"], version=view["version"], description=view["description"], tags=view["tags"]
            )
        return entities.record_to_environment(self._store, record)

    @sdk_errors
    def list(self, name: str | None = None, **kwargs):
        return [
            entities.record_to_environment(self._store, r)
            for r in self._store.list_assets(environment_registry.KIND, name)
        ]


class LocalComputeOperations(_Operations, base.ComputeOperations):
    """``ml_client.compute``: compute clusters, compute instances and attached Kubernetes clusters."""

    @sdk_errors
    def begin_create_or_update(self, compute, **kwargs) -> LROPoller:
        record = computes.create_or_update(self._store, compute_entities.compute_to_spec(compute))
        return done(compute_entities.record_to_compute(self._store, record))

    @sdk_errors
    def begin_update(self, compute, **kwargs) -> LROPoller:
        computes.get(self._store, compute.name)  # update needs an existing compute
        return self.begin_create_or_update(compute)

    @sdk_errors
    def get(self, name: str, **kwargs):
        return compute_entities.record_to_compute(self._store, computes.get(self._store, name))

    @sdk_errors
    def list(self, *, compute_type: str | None = None, **kwargs):
        return [
            compute_entities.record_to_compute(self._store, r)
            for r in computes.list_computes(self._store)
            if compute_type is None or r["type"] == compute_type.lower()
        ]

    @sdk_errors
    def begin_delete(self, name: str, *, action: str = "Delete", **kwargs) -> LROPoller:
        computes.delete(self._store, name)
        return done(None)

    @sdk_errors
    def begin_start(self, name: str, **kwargs) -> LROPoller:
        computes.start(self._store, name)
        return done(None)

    @sdk_errors
    def begin_stop(self, name: str, **kwargs) -> LROPoller:
        computes.stop(self._store, name)
        return done(None)

    @sdk_errors
    def begin_restart(self, name: str, **kwargs) -> LROPoller:
        computes.restart(self._store, name)
        return done(None)

    @sdk_errors
    def list_nodes(self, name: str, **kwargs):
        return [compute_entities.node_info(n) for n in computes.list_nodes(self._store, name)]

    @sdk_errors
    def list_sizes(self, *, location: str | None = None, compute_type: str | None = None, **kwargs):
        """The VM sizes amlemu knows (the same in every ``location``); ``compute_type`` as Azure filters it."""
        return [compute_entities.vm_size(v) for v in computes.list_sizes(compute_type)]

    @sdk_errors
    def list_usage(self, *, location: str | None = None, **kwargs):
        """Quota usage per VM family and in total, from the nodes that exist now; see ``computes.list_usage``."""
        return [compute_entities.usage(u) for u in computes.list_usage(self._store, location)]


class LocalOnlineEndpointOperations(_Operations, base.OnlineEndpointOperations):
    """``ml_client.online_endpoints``; ``local=True`` has azure-ai-ml's local semantics (see
    :mod:`emulator.endpoints.local_mode`): one deployment serving every request, no keys, no traffic rules."""

    @sdk_errors
    def begin_create_or_update(self, endpoint, *, local: bool = False, **kwargs) -> LROPoller:
        spec = endpoint_entities.endpoint_to_spec(endpoint)
        if local:
            return local_result(
                endpoint_entities.record_to_endpoint(local_mode.create_or_update_endpoint(self._store, spec))
            )
        record = endpoints.create_or_update_endpoint(self._store, spec)
        return done(endpoint_entities.record_to_endpoint(record))

    @sdk_errors
    def get(self, name: str, *, local: bool = False, **kwargs):
        if local:
            return endpoint_entities.record_to_endpoint(local_mode.get_endpoint(self._store, name))
        local_mode.workspace_endpoint(self._store, name)
        return endpoint_entities.record_to_endpoint(endpoints.get_endpoint(self._store, name))

    @sdk_errors
    def list(self, *, local: bool = False, **kwargs):
        if local:
            return [endpoint_entities.record_to_endpoint(r) for r in local_mode.list_endpoints(self._store)]
        return [
            endpoint_entities.record_to_endpoint(r) for r in endpoints.list_endpoints(self._store) if not r.get("local")
        ]

    @sdk_errors
    def begin_delete(self, name: str | None = None, *, local: bool = False, **kwargs) -> LROPoller:
        if local:  # azure-ai-ml returns None here; a finished poller (result None) serves both styles
            local_mode.delete_endpoint(self._store, str(name))
            return done(None)
        local_mode.workspace_endpoint(self._store, str(name))
        endpoints.delete_endpoint(self._store, name)
        return done(None)

    @sdk_errors
    def get_keys(self, name: str, **kwargs):
        local_mode.workspace_endpoint(self._store, name)
        creds = endpoints.get_keys(self._store, name)
        if creds["auth_mode"] == "key":
            return EndpointAuthKeys(primary_key=creds["primary_key"], secondary_key=creds["secondary_key"])
        return EndpointAuthToken(
            access_token=creds["access_token"],
            expiry_time_utc=creds["expiry_time_utc"],
            refresh_after_time_utc=creds["refresh_after_time_utc"],
            token_type=creds["token_type"],
        )

    @sdk_errors
    def begin_regenerate_keys(self, name: str, *, key_type: str = "primary", **kwargs) -> LROPoller:
        local_mode.workspace_endpoint(self._store, name)
        endpoints.regenerate_keys(self._store, name, key_type)
        return done(None)

    @sdk_errors
    def invoke(
        self,
        endpoint_name: str,
        *,
        request_file: str | None = None,
        deployment_name: str | None = None,
        input_data: Any = None,
        params_override: Any = None,
        local: bool = False,
        **kwargs,
    ) -> str:
        body = _request_body(request_file, input_data)
        if local:  # azure-ai-ml returns a local endpoint's answer as it comes, whatever its status
            return local_mode.invoke(self._store, endpoint_name, body, deployment_name)[2].decode(errors="replace")
        local_mode.workspace_endpoint(self._store, endpoint_name)
        status, headers, text = endpoints.invoke(self._store, endpoint_name, body, deployment_name)
        if status >= 400:
            raise HttpResponseError(
                message=f"Endpoint '{endpoint_name}' answered {status}: {text.decode(errors='replace')[:2000]}"
            )
        return text.decode(errors="replace")


class LocalOnlineDeploymentOperations(_Operations, base.OnlineDeploymentOperations):
    """``ml_client.online_deployments``: replicas on the configured runtime behind the endpoint's gateway;
    ``local=True`` as azure-ai-ml deploys locally (one deployment per endpoint, which it replaces)."""

    @sdk_errors
    def begin_create_or_update(
        self,
        deployment,
        *,
        local: bool = False,
        vscode_debug: bool = False,
        skip_script_validation: bool = False,
        local_enable_gpu: bool = False,
        **kwargs,
    ) -> LROPoller:
        if vscode_debug or local_enable_gpu:
            raise errors.NotEmulated("online_deployments.begin_create_or_update(vscode_debug/local_enable_gpu)")
        spec, base_path = endpoint_entities.deployment_to_spec(deployment)
        if local:
            record = local_mode.create_or_update_deployment(self._store, spec, base_path)
            return local_result(endpoint_entities.record_to_deployment(record))
        if spec.get("endpoint_name"):
            local_mode.workspace_endpoint(self._store, spec["endpoint_name"])
        record = endpoints.create_or_update_deployment(self._store, spec, base_path)
        return done(endpoint_entities.record_to_deployment(record))

    @sdk_errors
    def get(self, name: str, endpoint_name: str, *, local: bool = False, **kwargs):
        if local:
            record = local_mode.get_deployment(self._store, endpoint_name, name)
            return endpoint_entities.record_to_deployment(record)
        local_mode.workspace_endpoint(self._store, endpoint_name)
        return endpoint_entities.record_to_deployment(endpoints.get_deployment(self._store, endpoint_name, name))

    @sdk_errors
    def list(self, endpoint_name: str, *, local: bool = False, **kwargs):
        if local:  # every local deployment, whatever endpoint_name says, as azure-ai-ml lists them
            return [endpoint_entities.record_to_deployment(r) for r in local_mode.list_deployments(self._store)]
        local_mode.workspace_endpoint(self._store, endpoint_name)
        return [
            endpoint_entities.record_to_deployment(r) for r in endpoints.list_deployments(self._store, endpoint_name)
        ]

    @sdk_errors
    def begin_delete(self, name: str, endpoint_name: str, *, local: bool = False, **kwargs) -> LROPoller:
        if local:
            local_mode.delete_deployment(self._store, endpoint_name, name)
            return done(None)
        local_mode.workspace_endpoint(self._store, endpoint_name)
        endpoints.delete_deployment(self._store, endpoint_name, name)
        return done(None)

    @sdk_errors
    def get_logs(
        self,
        name: str,
        endpoint_name: str,
        lines: int,
        *,
        container_type: str | None = None,
        local: bool = False,
        **kwargs,
    ) -> str:
        if local:  # the deployment's container log, as azure-ai-ml reads it (no container_type locally)
            return local_mode.get_logs(self._store, endpoint_name, name, lines)
        local_mode.workspace_endpoint(self._store, endpoint_name)
        return endpoints.get_logs(self._store, endpoint_name, name, lines, container_type)


class LocalWorkspaceOperations(_Operations):
    def get(self, name: str | None = None, **kwargs):
        return Workspace(
            name=self._store.name,
            mlflow_tracking_uri=self._store.tracking_uri,
            description="amlemu local workspace",
            location="local",
        )
