"""Components: their containers (``components/{name}``) and versions (``components/{name}/versions/{v}``).

azure-ai-ml registers every step of a pipeline job before it submits the job: a step built with ``command()``
or ``load_component`` becomes an anonymous component (``PUT components/azureml_anonymous/versions/<hash of its
spec>``, ``isAnonymous: true``), and the job's nodes name it by the ARM id in the answer (``componentId``).
``ml_client.components.create_or_update`` registers a named one, numbering it from the container's
``nextVersion`` when it has no version. The answer to a PUT is read back as the SDK's ``Component``.

A version keeps the ``componentSpec`` as sent: the component's YAML shape (``type``, ``command``, ``inputs``,
``outputs``, with ``code`` and ``environment`` the ARM ids the SDK resolved). A pipeline job's node names its
component by id; :mod:`.jobs` puts the SDK's ``Component`` of that version in its place, and the local backend
runs the step as the command job it is, as it runs a ``command()`` step given to ``connect()``.

The versions are the engine's (:mod:`emulator.pipelines.components`, which ``amlemu component create`` and the
local backend's ``ml_client.components`` write too): immutable, as on Azure (the same spec again updates its
description and tags: the SDK re-registers an anonymous component at every submission; another spec is 409),
command components only (another type answers 501 ``NotEmulated`` naming it). This module parses, delegates and
renders. Not emulated either: archiving or deleting a component, labels other than ``latest``, registries'
components.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from emulator import errors
from emulator.frontdoor import assets, resources
from emulator.pipelines import components as registry

blueprint = Blueprint("components", __name__)
blueprint.url_value_preprocessor(resources.take_scope)

COMPONENTS = f"{resources.WORKSPACE}/components"


def view(store: Any, record: dict[str, Any]) -> dict[str, Any]:
    """A component version as ARM answers it (the SDK's ``ComponentVersion``): the engine renders it."""
    return registry.component_resource(store, record)


COMPONENT = assets.AssetKind(registry.KIND, "components", view)


def find(store: Any, reference: str, field: str) -> dict[str, Any]:
    """The record of the component version ``reference`` names (its ARM id, as a pipeline node's ``componentId``
    names it, ``azureml:<name>:<version>`` or ``azureml:<name>@latest``) in ``store``'s workspace, or a 404."""
    found = resources.parse_reference(reference, ("components",), workspace=store.name, field=field)
    try:
        return registry.get(store, found.name, found.version, None if found.version else found.label or "latest")
    except errors.EmulatorError as exc:
        exc.message = f"{field}: {exc.message}"
        exc.args = (exc.message,)
        raise


def entity_of(store: Any, record: dict[str, Any]) -> Any:
    """The SDK's ``Component`` of a record, as the SDK reads the version from this front door."""
    from backends.component_operations import record_to_component  # imports the SDK: on first use

    return record_to_component(store, record)


def component_id(name: str, version: str) -> str:
    """The ARM id of component version ``name``/``version`` of the request's workspace."""
    return f"{resources.workspace_path()}/components/{name}/versions/{version}"


def anonymous_id(store: Any, component: Any) -> str:
    """The ARM id of ``component`` (an SDK ``Component``) as an anonymous component of ``store``'s workspace,
    registered now if it is not yet: as Azure registers every step of a pipeline, whatever the client, so that a
    pipeline the engine ran from a YAML file (``amlemu job create``) answers with a component id for each step."""
    component._is_anonymous = True
    name, version = component._get_anonymous_component_name_version()
    rest = component._to_rest_object().properties
    registry.register(
        store,
        name,
        version,
        dict(rest.component_spec),
        description=rest.description,
        tags=rest.tags,
        properties=rest.properties,
        is_anonymous=True,
    )
    return component_id(name, version)


@blueprint.put(f"{COMPONENTS}/<name>/versions/<version>")
def create_or_update(name: str, version: str):
    store = resources.backend().store
    properties = resources.body().get("properties")
    if not isinstance(properties, dict) or not isinstance(properties.get("componentSpec"), dict):
        raise errors.ValidationError(
            f"The body of PUT components/{name}/versions/{version} has no properties.componentSpec: send a "
            "ComponentVersion (as ml_client.components.create_or_update does)."
        )
    if properties.get("isArchived"):
        raise errors.NotEmulated(
            "archiving component versions (ml_client.components.archive)",
            "amlemu keeps every version active: leave it, or register a new version.",
        )
    record, created = registry.register(
        store,
        name,
        version,
        properties["componentSpec"],
        description=properties.get("description"),
        tags=properties.get("tags"),
        properties=properties.get("properties"),
        is_anonymous=bool(properties.get("isAnonymous")),
    )
    return resources.answer(view(store, record), status=201 if created else 200)


@blueprint.get(f"{COMPONENTS}/<name>/versions/<version>")
def get(name: str, version: str):
    store = resources.backend().store
    return resources.answer(view(store, registry.get(store, name, version)))


@blueprint.get(f"{COMPONENTS}/<name>/versions")
def list_versions(name: str):
    registry.check_name(name)
    return assets.list_versions(COMPONENT, name)


@blueprint.get(f"{COMPONENTS}/<name>")
def get_container(name: str):
    registry.check_name(name)
    return assets.get_container(COMPONENT, name)


@blueprint.get(COMPONENTS)
def list_containers():
    return assets.list_containers(COMPONENT)
