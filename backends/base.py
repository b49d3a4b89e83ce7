"""The abstract backend: shaped like ``azure.ai.ml.MLClient``.

Every backend exposes the same operation groups with the SDK's method names
and signatures, takes and returns azure-ai-ml's own entity classes, and
returns an ``azure.core.polling.LROPoller`` from every ``begin_*`` method.
The real ``MLClient`` honours this contract by construction; the local
backend honours it by emulation and raises ``NotEmulated`` where it can't.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from argparse import Namespace
from collections.abc import Iterable
from typing import Any

from emulator.errors import EmulatorError


class JobOperations(ABC):
    @abstractmethod
    def create_or_update(
        self,
        job: Any,
        *,
        description: str | None = None,
        compute: str | None = None,
        tags: dict | None = None,
        experiment_name: str | None = None,
        skip_validation: bool = False,
        **kwargs,
    ) -> Any:
        """Submit ``job`` (a ``command(...)`` node or a ``Job`` from ``load_job``); return at once
        with the recorded job. The job keeps running after the caller returns."""

    @abstractmethod
    def get(self, name: str) -> Any:
        """The job named ``name``; ``ResourceNotFoundError`` when there is none."""

    @abstractmethod
    def list(self, *, parent_job_name: str | None = None, **kwargs) -> Iterable[Any]:
        """Jobs, newest first (the children of ``parent_job_name`` when given)."""

    @abstractmethod
    def stream(self, name: str) -> None:
        """Print the job's log until it ends; raise if it did not complete."""

    @abstractmethod
    def begin_cancel(self, name: str, **kwargs) -> Any:
        """Cancel the job (stopping every process it started); an LROPoller."""

    @abstractmethod
    def download(
        self, name: str, *, download_path: str = ".", output_name: str | None = None, all: bool = False
    ) -> None:
        """Copy the job's outputs to ``download_path`` (``artifacts/``, ``named-outputs/<name>/``)."""


class ModelOperations(ABC):
    @abstractmethod
    def create_or_update(self, model: Any) -> Any:
        """Register a model version (the next one when ``model.version`` is None)."""

    @abstractmethod
    def get(self, name: str, version: str | None = None, label: str | None = None) -> Any:
        """One model version (``label='latest'`` for the newest)."""

    @abstractmethod
    def list(self, name: str | None = None, **kwargs) -> Iterable[Any]:
        """Models, or every version of ``name``."""

    @abstractmethod
    def download(self, name: str, version: str, download_path: str = ".") -> None:
        """Copy a model version's files to ``download_path/<name>/``."""


class EnvironmentOperations(ABC):
    @abstractmethod
    def create_or_update(self, environment: Any) -> Any:
        """Register an environment version."""

    @abstractmethod
    def get(self, name: str, version: str | None = None, label: str | None = None) -> Any:
        """One environment version."""

    @abstractmethod
    def list(self, name: str | None = None, **kwargs) -> Iterable[Any]:
        """Environments, or every version of ``name``."""


class ComponentOperations(ABC):
    @abstractmethod
    def create_or_update(self, component: Any, **kwargs) -> Any:
        """Register a command component version (the next number without one); the same spec again updates its
        description and tags, another spec for an existing version raises a conflict."""

    @abstractmethod
    def get(self, name: str, version: str | None = None, label: str | None = None) -> Any:
        """One version, by number or by ``label`` (``latest`` when neither is given)."""

    @abstractmethod
    def list(self, name: str | None = None, **kwargs) -> Iterable[Any]:
        """With ``name``, its versions; without, every component (each as a container: its latest version)."""


class ComputeOperations(ABC):
    @abstractmethod
    def get(self, name: str) -> Any: ...
    @abstractmethod
    def list(self, **kwargs) -> Iterable[Any]: ...
    @abstractmethod
    def begin_create_or_update(self, compute: Any) -> Any: ...
    @abstractmethod
    def begin_delete(self, name: str, **kwargs) -> Any: ...
    @abstractmethod
    def begin_start(self, name: str) -> Any: ...
    @abstractmethod
    def begin_stop(self, name: str) -> Any: ...
    @abstractmethod
    def begin_restart(self, name: str) -> Any: ...
    @abstractmethod
    def list_nodes(self, name: str) -> Iterable[Any]: ...


class OnlineEndpointOperations(ABC):
    @abstractmethod
    def begin_create_or_update(self, endpoint: Any, *, local: bool = False) -> Any: ...
    @abstractmethod
    def get(self, name: str, *, local: bool = False) -> Any: ...
    @abstractmethod
    def list(self, *, local: bool = False) -> Iterable[Any]: ...
    @abstractmethod
    def begin_delete(self, name: str | None = None, *, local: bool = False) -> Any: ...
    @abstractmethod
    def invoke(
        self,
        endpoint_name: str,
        *,
        request_file: str | None = None,
        deployment_name: str | None = None,
        local: bool = False,
        **kwargs,
    ) -> str: ...
    @abstractmethod
    def get_keys(self, name: str) -> Any: ...
    @abstractmethod
    def begin_regenerate_keys(self, name: str, *, key_type: str = "primary") -> Any: ...


class OnlineDeploymentOperations(ABC):
    @abstractmethod
    def begin_create_or_update(self, deployment: Any, *, local: bool = False, **kwargs) -> Any: ...
    @abstractmethod
    def get(self, name: str, endpoint_name: str, *, local: bool = False) -> Any: ...
    @abstractmethod
    def list(self, endpoint_name: str, *, local: bool = False) -> Iterable[Any]: ...
    @abstractmethod
    def begin_delete(self, name: str, endpoint_name: str, *, local: bool = False) -> Any: ...
    @abstractmethod
    def get_logs(
        self, name: str, endpoint_name: str, lines: int, *, container_type: str | None = None, local: bool = False
    ) -> str: ...


class DataOperations(ABC):
    @abstractmethod
    def create_or_update(self, data: Any) -> Any:
        """Register a data version (the next one when ``data.version`` is None); a local path is uploaded to
        the default datastore first and the version's path becomes that datastore path."""

    @abstractmethod
    def get(self, name: str, version: str | None = None, label: str | None = None) -> Any:
        """One data version (``label='latest'``: the newest that is not archived); version or label, not both."""

    @abstractmethod
    def list(self, name: str | None = None, *, list_view_type: Any = None) -> Iterable[Any]:
        """Data assets (each with its ``latest_version``), or every version of ``name``; archived ones only as
        ``list_view_type`` (``ListViewType``) asks."""

    @abstractmethod
    def archive(self, name: str, version: str | None = None, label: str | None = None, **kwargs) -> None:
        """Hide a version, or the whole data asset, from listings (it still resolves by version)."""

    @abstractmethod
    def restore(self, name: str, version: str | None = None, label: str | None = None, **kwargs) -> None:
        """Undo ``archive``."""


class DatastoreOperations(ABC):
    @abstractmethod
    def get(self, name: str, *, include_secrets: bool = False) -> Any:
        """One datastore (an ``AzureBlobDatastore``, ``AzureFileDatastore``, ...)."""

    @abstractmethod
    def list(self, *, include_secrets: bool = False) -> Iterable[Any]:
        """The workspace's datastores."""

    @abstractmethod
    def get_default(self, *, include_secrets: bool = False) -> Any:
        """The workspace's default datastore (``workspaceblobstore`` unless changed)."""


class MachineOnlyVerb(EmulatorError):
    """An ``amlemu`` verb that acts on this machine's amlemu state, asked of a backend that is elsewhere."""

    code = "NotSupportedByBackend"
    status = 400

    def __init__(self, command: str, backend: str, reason: str = "acts on this machine's amlemu state"):
        super().__init__(
            f"`amlemu {command}` {reason}; the backend is '{backend}' "
            "(from AMLEMU_BACKEND, `backend:` in ./.amlemu.yml or $AMLEMU_HOME/config.yml). Nothing was done. "
            "Unset AMLEMU_BACKEND (or set it to 'local') to use it."
        )


class Verbs(ABC):
    """The ``az ml`` verbs over one backend: what the ``amlemu`` CLI calls.

    One method per ``amlemu <group> <verb>``, named ``<group>_<verb>`` with dashes as
    underscores (``job_create``, ``online_endpoint_get_credentials``); each takes the parsed
    CLI arguments (an ``argparse.Namespace`` carrying that verb's flags) and returns what
    ``az ml`` prints as JSON (dicts and lists; an SDK entity as its ``_to_dict()``), or None
    when it prints nothing. Streams (a job's log, a deployment's log) go to stdout, progress
    to stderr. Errors are ``EmulatorError`` (amlemu's message and code) or the backend's own
    (azure-core's, on Azure); the CLI prints either as one ``ERROR:`` line.

    The verbs that act on this machine's amlemu state (``system ...``, ``environment build``)
    exist on the local backend only: elsewhere they raise :class:`MachineOnlyVerb`.
    """

    backend_name = "local"

    def _machine_only(self, command: str, *reason: str) -> Any:
        raise MachineOnlyVerb(command, self.backend_name, *reason)

    # -- job ------------------------------------------------------------------------------------------------------
    @abstractmethod
    def job_create(self, args: Namespace) -> Any:
        """Submit ``args.file`` (``--set``, ``--name`` applied); follow its log with ``--stream``."""

    @abstractmethod
    def job_show(self, args: Namespace) -> Any: ...
    @abstractmethod
    def job_list(self, args: Namespace) -> Any: ...
    @abstractmethod
    def job_stream(self, args: Namespace) -> Any: ...
    @abstractmethod
    def job_cancel(self, args: Namespace) -> Any: ...
    @abstractmethod
    def job_download(self, args: Namespace) -> Any: ...

    # -- model, environment ---------------------------------------------------------------------------------------
    @abstractmethod
    def model_create(self, args: Namespace) -> Any: ...
    @abstractmethod
    def model_show(self, args: Namespace) -> Any: ...
    @abstractmethod
    def model_list(self, args: Namespace) -> Any: ...
    @abstractmethod
    def model_download(self, args: Namespace) -> Any: ...
    @abstractmethod
    def environment_create(self, args: Namespace) -> Any: ...
    @abstractmethod
    def environment_show(self, args: Namespace) -> Any: ...
    @abstractmethod
    def environment_list(self, args: Namespace) -> Any: ...

    @abstractmethod
    def component_create(self, args: Namespace) -> Any:
        """Register the command component of ``args.file`` (``--name``, ``--version``, ``--set`` applied)."""

    @abstractmethod
    def component_show(self, args: Namespace) -> Any: ...
    @abstractmethod
    def component_list(self, args: Namespace) -> Any: ...

    def environment_build(self, args: Namespace) -> Any:
        """Build an environment's image or virtualenv on this machine now."""
        return self._machine_only("environment build")

    # -- compute --------------------------------------------------------------------------------------------------
    @abstractmethod
    def compute_create(self, args: Namespace) -> Any: ...
    @abstractmethod
    def compute_attach(self, args: Namespace) -> Any: ...
    @abstractmethod
    def compute_update(self, args: Namespace) -> Any: ...
    @abstractmethod
    def compute_show(self, args: Namespace) -> Any: ...
    @abstractmethod
    def compute_list(self, args: Namespace) -> Any: ...
    @abstractmethod
    def compute_delete(self, args: Namespace) -> Any: ...
    @abstractmethod
    def compute_detach(self, args: Namespace) -> Any: ...
    @abstractmethod
    def compute_start(self, args: Namespace) -> Any: ...
    @abstractmethod
    def compute_stop(self, args: Namespace) -> Any: ...
    @abstractmethod
    def compute_restart(self, args: Namespace) -> Any: ...
    @abstractmethod
    def compute_list_nodes(self, args: Namespace) -> Any: ...
    @abstractmethod
    def compute_list_sizes(self, args: Namespace) -> Any: ...
    @abstractmethod
    def compute_list_usage(self, args: Namespace) -> Any: ...

    # -- online endpoints and deployments -------------------------------------------------------------------------
    @abstractmethod
    def online_endpoint_create(self, args: Namespace) -> Any: ...
    @abstractmethod
    def online_endpoint_update(self, args: Namespace) -> Any: ...
    @abstractmethod
    def online_endpoint_show(self, args: Namespace) -> Any: ...
    @abstractmethod
    def online_endpoint_list(self, args: Namespace) -> Any: ...
    @abstractmethod
    def online_endpoint_delete(self, args: Namespace) -> Any: ...
    @abstractmethod
    def online_endpoint_invoke(self, args: Namespace) -> Any: ...
    @abstractmethod
    def online_endpoint_get_credentials(self, args: Namespace) -> Any: ...
    @abstractmethod
    def online_endpoint_regenerate_keys(self, args: Namespace) -> Any: ...
    @abstractmethod
    def online_endpoint_export_postman(self, args: Namespace) -> Any: ...
    @abstractmethod
    def online_deployment_create(self, args: Namespace) -> Any: ...
    @abstractmethod
    def online_deployment_update(self, args: Namespace) -> Any: ...
    @abstractmethod
    def online_deployment_show(self, args: Namespace) -> Any: ...
    @abstractmethod
    def online_deployment_list(self, args: Namespace) -> Any: ...
    @abstractmethod
    def online_deployment_delete(self, args: Namespace) -> Any: ...
    @abstractmethod
    def online_deployment_get_logs(self, args: Namespace) -> Any: ...

    # -- system: this machine's amlemu processes and caches -------------------------------------------------------
    def system_status(self, args: Namespace) -> Any:
        return self._machine_only("system status")

    def system_stop(self, args: Namespace) -> Any:
        return self._machine_only("system stop")

    def system_start(self, args: Namespace) -> Any:
        return self._machine_only("system start")

    def system_prune(self, args: Namespace) -> Any:
        return self._machine_only("system prune")

    # -- data assets and datastores -------------------------------------------------------------------------------
    @abstractmethod
    def data_create(self, args: Namespace) -> Any:
        """Register ``args.file`` or the flags' data version (``--set`` applied); a local path is uploaded."""

    @abstractmethod
    def data_show(self, args: Namespace) -> Any: ...
    @abstractmethod
    def data_list(self, args: Namespace) -> Any: ...
    @abstractmethod
    def data_archive(self, args: Namespace) -> Any: ...
    @abstractmethod
    def data_restore(self, args: Namespace) -> Any: ...
    @abstractmethod
    def data_update(self, args: Namespace) -> Any:
        """Change a version's description, tags or properties with ``--set`` (its data cannot change)."""

    @abstractmethod
    def datastore_show(self, args: Namespace) -> Any: ...
    @abstractmethod
    def datastore_list(self, args: Namespace) -> Any: ...
    @abstractmethod
    def datastore_create(self, args: Namespace) -> Any: ...
    @abstractmethod
    def datastore_delete(self, args: Namespace) -> Any: ...


class Backend(ABC):
    """An ``MLClient``-shaped client: the operation groups below, nothing else required."""

    name: str

    @property
    def verbs(self) -> Verbs:
        """The ``az ml`` verbs over this backend (what the ``amlemu`` CLI calls). By default they go
        through the operation groups below (:class:`backends.sdk_verbs.SdkVerbs`), as ``az ml`` goes
        through ``MLClient``; the local backend overrides this with its fast path."""
        from backends.sdk_verbs import SdkVerbs  # imports azure-ai-ml's loaders when a verb needs them

        return SdkVerbs(self, self.name)

    @property
    @abstractmethod
    def jobs(self) -> JobOperations: ...

    @property
    @abstractmethod
    def models(self) -> ModelOperations: ...

    @property
    @abstractmethod
    def environments(self) -> EnvironmentOperations: ...

    @property
    @abstractmethod
    def compute(self) -> ComputeOperations: ...

    @property
    @abstractmethod
    def online_endpoints(self) -> OnlineEndpointOperations: ...

    @property
    @abstractmethod
    def online_deployments(self) -> OnlineDeploymentOperations: ...

    @property
    @abstractmethod
    def data(self) -> DataOperations: ...

    @property
    @abstractmethod
    def datastores(self) -> DatastoreOperations: ...
