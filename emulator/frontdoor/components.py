"""Components: their containers (``components/{name}``) and versions (``components/{name}/versions/{v}``).

azure-ai-ml registers every step of a pipeline job before it submits the job: a step built with ``command()``
or ``load_component`` becomes an anonymous component (``PUT components/azureml_anonymous/versions/<hash of its
spec>``, ``isAnonymous: true``), and the job's nodes name it by the ARM id in the answer (``componentId``).
``ml_client.components.create_or_update`` registers a named one, numbering it from the container's
``nextVersion`` when it has no version. The answer to a PUT is read back as the SDK's ``Component``.

A version keeps the ``componentSpec`` as sent: the component's YAML shape (``type``, ``command``, ``inputs``,
``outputs``, with ``code`` and ``environment`` the ARM ids the SDK resolved). A pipeline job's node names its
component by id; :mod:`.jobs` puts the SDK's ``Component`` of that version in its place, and the local backend
runs the step as the command job it is, as it runs a ``command()`` step given to ``connect()``. Versions are
immutable, as on Azure: writing one again with the same spec updates its description and tags (the SDK
re-registers an anonymous component at every submission), another spec is 409. Only command components are
emulated, as a pipeline's steps run as command jobs: another type answers 501 ``NotEmulated`` naming it. Not
emulated either: archiving or deleting a component, labels other than ``latest``, registries' components.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint

from emulator import errors, naming
from emulator.frontdoor import assets, resources

blueprint = Blueprint("components", __name__)
blueprint.url_value_preprocessor(resources.take_scope)

COMPONENTS = f"{resources.WORKSPACE}/components"
KIND = "component"
#: the component types whose steps the engine runs
EMULATED_TYPES = ("command",)
#: the name of every anonymous component (azure-ai-ml's ``ANONYMOUS_COMPONENT_NAME``), its version a hash of its spec
ANONYMOUS = "azureml_anonymous"
#: spec fields the SDK adds for itself, not part of what a version holds
_CLIENT_FIELDS = ("_source",)


def _checked(name: str, version: str | None = None) -> None:
    if not naming.is_valid("data", name):
        raise errors.ValidationError(
            f"Component name {naming.shown(name)} is invalid: Azure ML takes {naming.RULES['data'].text}."
        )
    if version is not None and not naming.is_valid("version", version):
        raise errors.ValidationError(
            f"Component version {naming.shown(version)} is invalid: Azure ML takes {naming.RULES['version'].text}."
        )


def view(store: Any, record: dict[str, Any]) -> dict[str, Any]:
    """A component version as ARM answers it (the SDK's ``ComponentVersion``)."""
    rest = {
        "properties": {
            "componentSpec": {**record["component_spec"], "name": record["name"], "version": record["version"]},
            "description": record.get("description"),
            "tags": record.get("tags") or {},
            "properties": record.get("properties") or {},
            "isAnonymous": record.get("is_anonymous", False),
            "isArchived": False,
            "provisioningState": "Succeeded",
        }
    }
    tail = f"components/{record['name']}/versions/{record['version']}"
    return resources.envelope(rest, store.name, tail, record["created_at"], record["updated_at"])


COMPONENT = assets._Kind(KIND, "components", view)


def get_version(store: Any, name: str, version: str) -> dict[str, Any]:
    """The record of component ``name`` version ``version``, or a 404 saying how components are made."""
    _checked(name, version)
    try:
        return store.get_asset(KIND, name, version)
    except errors.ResourceNotFound:
        raise errors.ResourceNotFound(
            f"Component '{name}' version '{version}' not found in workspace '{store.name}'. Register it first "
            "(ml_client.components.create_or_update; ml_client.jobs.create_or_update registers a pipeline's "
            "steps itself), and name it by the id the registration answers."
        ) from None


def find(store: Any, reference: str, field: str) -> dict[str, Any]:
    """The record of the component version ``reference`` names (its ARM id, as a pipeline node's ``componentId``
    names it, ``azureml:<name>:<version>`` or ``azureml:<name>@latest``) in ``store``'s workspace, or a 404."""
    found = resources.parse_reference(reference, ("components",), workspace=store.name, field=field)
    if found.version is not None:
        return get_version(store, found.name, found.version)
    if found.label not in (None, "latest"):
        raise errors.NotEmulated(
            f"component labels other than 'latest' ({field}: {reference})",
            f"Name a version: azureml:{found.name}:<version>.",
        )
    _checked(found.name)
    try:
        return store.get_asset(KIND, found.name)
    except errors.ResourceNotFound:
        raise errors.ResourceNotFound(
            f"{field}: component '{found.name}' not found in workspace '{store.name}'. Register it first "
            "(ml_client.components.create_or_update)."
        ) from None


def entity_of(store: Any, record: dict[str, Any]) -> Any:
    """The SDK's ``Component`` of a record, as the SDK reads the version from this front door."""
    from azure.ai.ml._restclient.arm_ml_service.models import ComponentVersion  # SDK: on first use
    from azure.ai.ml.entities import Component

    return Component._from_rest_object(ComponentVersion(view(store, record)))


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
    record = {
        "component_spec": {k: v for k, v in rest.component_spec.items() if k not in _CLIENT_FIELDS},
        "is_anonymous": True,
        "description": rest.description,
        "tags": rest.tags or {},
        "properties": rest.properties or {},
    }
    try:
        with store.transaction() as db:
            store.insert_asset(db, KIND, name, version, record)
    except errors.ResourceExists:  # the same spec: its hash is the version
        pass
    return component_id(name, version)


def _spec_of(name: str, version: str) -> dict[str, Any]:
    """The ``componentSpec`` of the PUT body, checked to be a component the engine runs."""
    properties = resources.body().get("properties")
    if not isinstance(properties, dict) or not isinstance(properties.get("componentSpec"), dict):
        raise errors.ValidationError(
            f"The body of PUT components/{name}/versions/{version} has no properties.componentSpec: send a "
            "ComponentVersion (as ml_client.components.create_or_update does)."
        )
    spec = {k: v for k, v in properties["componentSpec"].items() if k not in _CLIENT_FIELDS}
    kind = spec.get("type") or "command"
    if kind not in EMULATED_TYPES:
        raise errors.NotEmulated(
            f"{kind} components (component '{spec.get('name') or name}')",
            "amlemu runs pipeline steps as command jobs: use command() or a command component.",
        )
    if not spec.get("command"):
        raise errors.ValidationError(
            f"Component '{spec.get('name') or name}' has no command: a command component needs the command line "
            "it runs."
        )
    return spec


@blueprint.put(f"{COMPONENTS}/<name>/versions/<version>")
def create_or_update(name: str, version: str):
    store = resources.backend().store
    _checked(name, version)
    spec = _spec_of(name, version)
    properties = resources.body()["properties"]
    record = {
        "component_spec": spec,
        "is_anonymous": bool(properties.get("isAnonymous")),
        "description": properties.get("description"),
        "tags": {str(k): str(v) for k, v in (properties.get("tags") or {}).items()},
        "properties": {str(k): str(v) for k, v in (properties.get("properties") or {}).items()},
    }
    if properties.get("isArchived"):
        raise errors.NotEmulated(
            "archiving component versions (ml_client.components.archive)",
            "amlemu keeps every version active: leave it, or register a new version.",
        )
    try:
        with store.transaction() as db:
            store.insert_asset(db, KIND, name, version, record)
        status = 201
    except errors.ResourceExists:
        current = store.get_asset(KIND, name, version)
        if _comparable(current["component_spec"]) != _comparable(spec):
            raise errors.ResourceExists(
                f"Component '{name}' version '{version}' already exists with another spec; a version cannot "
                "change. Register another version (or leave the version out for the next one)."
            ) from None
        kept = {k: v for k, v in current.items() if k not in ("name", "version", "created_at", "updated_at")}
        store.put_asset(KIND, name, version, {**kept, "description": record["description"], "tags": record["tags"]})
        status = 200
    return resources.answer(view(store, store.get_asset(KIND, name, version)), status=status)


def _comparable(spec: dict[str, Any]) -> str:
    """A spec as compared for a re-registration: its name and version are the URL's."""
    return json.dumps({k: v for k, v in spec.items() if k not in ("name", "version")}, sort_keys=True)


@blueprint.get(f"{COMPONENTS}/<name>/versions/<version>")
def get(name: str, version: str):
    store = resources.backend().store
    return resources.answer(view(store, get_version(store, name, version)))


@blueprint.get(f"{COMPONENTS}/<name>/versions")
def list_versions(name: str):
    _checked(name)
    return assets._list_versions(COMPONENT, name)


@blueprint.get(f"{COMPONENTS}/<name>")
def get_container(name: str):
    _checked(name)
    return assets._get_container(COMPONENT, name)


@blueprint.get(COMPONENTS)
def list_containers():
    return assets._containers(COMPONENT)
