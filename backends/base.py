"""The abstract backend: shaped like ``azure.ai.ml.MLClient``.

Every backend exposes the same operation groups with the SDK's method names
and signatures, takes and returns azure-ai-ml's own entity classes, and
returns an ``azure.core.polling.LROPoller`` from every ``begin_*`` method.
The real ``MLClient`` honours this contract by construction; the local
backend honours it by emulation and raises ``NotEmulated`` where it can't.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Iterable


class JobOperations(ABC):
    @abstractmethod
    def create_or_update(self, job: Any, *, description: str | None = None, compute: str | None = None,
                         tags: dict | None = None, experiment_name: str | None = None,
                         skip_validation: bool = False, **kwargs) -> Any:
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
    def download(self, name: str, *, download_path: str = ".", output_name: str | None = None,
                 all: bool = False) -> None:
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
    def invoke(self, endpoint_name: str, *, request_file: str | None = None,
               deployment_name: str | None = None, local: bool = False, **kwargs) -> str: ...
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
    def get_logs(self, name: str, endpoint_name: str, lines: int, *, container_type: str | None = None,
                 local: bool = False) -> str: ...


class Backend(ABC):
    """An ``MLClient``-shaped client: the operation groups below, nothing else required."""

    name: str

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
