"""``ml_client.components`` on the local backend: command components registered in the workspace.

A ``CommandComponent`` (``load_component("train.yml")``, or the component of a ``command(...)`` node) goes to the
engine in its YAML shape (:mod:`emulator.pipelines.components`: its code copied in, versions immutable, the next
number without a version); what comes back is the SDK's own ``Component``, read from the engine's ARM view of the
version as the SDK reads it from Azure, so ``ml_client.components.get(...)`` is a step a ``@pipeline`` can call.
Not emulated (NotEmulated naming the call): archive, restore, validate, ``prepare_for_sign``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from azure.ai.ml._restclient.arm_ml_service.models import ComponentContainer, ComponentVersion
from azure.ai.ml.entities import Component

from backends import base
from backends.local_operations import _Operations, sdk_errors
from emulator import arm, errors
from emulator.pipelines import components
from emulator.store import WorkspaceStore


def component_to_spec(component: Any) -> dict[str, Any]:
    """A component (or a ``command(...)`` node's component) as the command component YAML the engine registers,
    its code an absolute path."""
    component = getattr(component, "component", component)  # a Command node carries its component
    if not isinstance(component, Component):
        raise errors.ValidationError(
            f"ml_client.components.create_or_update takes a component (load_component('x.yml'), or a command(...) "
            f"node's component), not {type(component).__name__}."
        )
    kind = getattr(component, "type", None) or "command"
    if kind != "command":
        raise errors.NotEmulated(
            f"{kind} components (component '{component.name}')",
            "amlemu runs pipeline steps as command jobs: register a command component (type: command).",
        )
    spec = component._to_dict()
    spec.pop("$schema", None)
    return spec


def record_to_component(store: WorkspaceStore, record: dict[str, Any]) -> Component:
    """The SDK's ``Component`` of a version, read from the ARM shape the service answers with."""
    return Component._from_rest_object(ComponentVersion(components.component_resource(store, record)))


def container_to_component(store: WorkspaceStore, name: str, records: list[dict[str, Any]]) -> Component:
    """A component as a whole, as ``ml_client.components.list()`` gives it: its name and latest version."""
    first = min(records, key=lambda r: r["created_at"])
    rest = {
        "id": arm.resource_id(store.name, f"components/{name}"),
        "name": name,
        "type": "Microsoft.MachineLearningServices/workspaces/components",
        "properties": {"latestVersion": records[0]["version"], "isArchived": False, "tags": {}, "properties": {}},
        "systemData": arm.system_data(first["created_at"], None, max(r["updated_at"] for r in records)),
    }
    return Component._from_container_rest_object(ComponentContainer(rest))


class LocalComponentOperations(_Operations, base.ComponentOperations):
    """``ml_client.components``: command components (the engine's :mod:`emulator.pipelines.components`)."""

    @sdk_errors
    def create_or_update(self, component, version: str | None = None, **kwargs):
        spec = component_to_spec(component)
        if version is not None:
            spec["version"] = str(version)
        base_path = getattr(getattr(component, "component", component), "base_path", None)
        record = components.create_or_update(self._store, spec, Path(base_path or Path.cwd()))
        return record_to_component(self._store, record)

    @sdk_errors
    def get(self, name: str, version: str | None = None, label: str | None = None):
        return record_to_component(self._store, components.get(self._store, name, version, label))

    @sdk_errors
    def list(self, name: str | None = None, **kwargs):
        if name:
            return [record_to_component(self._store, r) for r in components.versions(self._store, name)]
        return [container_to_component(self._store, n, rs) for n, rs in components.containers(self._store).items()]
