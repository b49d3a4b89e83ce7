"""Models and environments: their containers (``models/{name}``) and versions (``models/{name}/versions/{v}``).

A version is registered through the local backend, the operation group ``connect()`` users call,
with the SDK's own entity parsed from the request (``Model._from_rest_object``,
``Environment._from_rest_object``); an answer is the engine's ARM view of the record
(:func:`~emulator.models.views.model_resource`, :func:`~emulator.environments.views.environment_resource`),
so a concept renders itself. A model's ``modelUri`` is a datastore path, which is what
``ml_client.models.download`` reads through the datastore and the blob service: its upload's, or,
for a model from a job output, Azure's place for that output, which the blob service serves from the
job's folder. A body's paths are storage URIs only (a plain path would name a file of this machine).

The SDK asks for containers to number a new version (``nextVersion``) and for a version list
(``$orderBy=createdtime desc&$top=1``) to resolve ``label="latest"``; a curated environment
(``AzureML-sklearn-1.5``) answers there as in an Azure workspace. Not emulated, as the local
backend keeps every version and has no archive: deleting or archiving a model or environment.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Blueprint, g, request

from emulator import arm, errors
from emulator.data import datastores
from emulator.data import paths as datastore_paths
from emulator.data.paths import DatastorePath
from emulator.environments import registry as environment_registry
from emulator.environments.curated import EnvironmentRef
from emulator.environments.views import environment_resource
from emulator.frontdoor import blobstore, jobstorage, resources
from emulator.models import registry as model_registry
from emulator.models.views import model_resource

blueprint = Blueprint("assets", __name__)
blueprint.url_value_preprocessor(resources.take_scope)

MODELS = f"{resources.WORKSPACE}/models"
ENVIRONMENTS = f"{resources.WORKSPACE}/environments"


@dataclasses.dataclass(frozen=True)
class AssetKind:
    """What the container and version routes of one asset kind need (models, environments, and the command
    components of :mod:`.components`)."""

    kind: str  # the store's kind
    plural: str  # the URL's segment
    render: Callable[[Any, dict], dict]  # (store, record) -> the ARM resource of a version


# --- models ---------------------------------------------------------------------------------------------------


def long_uri(ref: DatastorePath, folder: bool = False) -> str:
    """A datastore path in the long form Azure answers with (the request's subscription and resource group);
    ``folder``: with the trailing ``/`` Azure gives a folder."""
    tail = "/" if folder and ref.path else ""
    return (
        f"azureml://subscriptions/{g.subscription}/resourcegroups/{g.resource_group}/workspaces/{g.workspace}"
        f"/datastores/{ref.datastore}/paths/{ref.path}{tail}"
    )


def in_datastore(store, local: Path) -> DatastorePath | None:
    """The datastore path of a local file or folder in one of the workspace's datastores, else None."""
    local = Path(local).resolve()
    for name in datastores.NAMES:
        root = datastores.folder(store, name).resolve()
        if local.is_relative_to(root):
            inner = local.relative_to(root).as_posix()
            return DatastorePath(name, "" if inner == "." else inner)
    return None


def _job_output_place(store, job: str, output: str, inner: str) -> DatastorePath:
    """Where Azure keeps a file or folder of a job's output (the blob service serves it from the job's folder)."""
    place = jobstorage.output_place(store, store.get_job(job), output)
    return DatastorePath(place.datastore, "/".join(p for p in (place.path, inner.strip("/")) if p))


def model_uri(store, record: dict) -> str:
    """Where a model version's files are, as the datastore path Azure answers with and the blob service serves:
    its upload's; or, from a job output, Azure's place for it (served from the job's folder, :mod:`.jobstorage`);
    a model registered from a plain local path (``amlemu model create``, ``connect()``) answers with its files'
    path here, which no datastore serves."""
    path = str(record["path"])
    files = model_registry.files(store, record)
    if datastore_paths.is_datastore_uri(path):
        return long_uri(datastore_paths.parse(store, path), folder=files.is_dir())
    source = model_registry.job_output(path)
    if source is None:
        return str(files)
    return long_uri(_job_output_place(store, *source), folder=files.is_dir())


def _render_model(store, record: dict) -> dict:
    resource = model_resource(store, record)
    resource["properties"].update(modelUri=model_uri(store, record), provisioningState="Succeeded")
    return resource


MODEL = AssetKind(model_registry.KIND, "models", _render_model)


# --- environments ---------------------------------------------------------------------------------------------


def _render_environment(store, record: dict) -> dict:
    resource = environment_resource(store, record)
    resource["properties"]["provisioningState"] = "Succeeded"
    build = resource["properties"].get("build")
    found = in_datastore(store, Path(build["contextUri"])) if build else None
    if found is not None:
        build["contextUri"] = _context_uri(store, found)
    return resource


def _context_uri(store, ref: DatastorePath) -> str:
    """A build context in a datastore as Azure echoes it: the blob URL the SDK uploaded it to (a blob
    datastore's), else its datastore path."""
    datastore = datastores.get(store, ref.datastore)
    if not datastore.container_name:
        return long_uri(ref, folder=True)
    inner = f"{ref.path}/" if ref.path else ""
    return f"https://{datastore.account_name}{blobstore.BLOB_HOST_SUFFIX}/{datastore.container_name}/{inner}"


ENVIRONMENT = AssetKind(environment_registry.KIND, "environments", _render_environment)


def _curated(name: str, version: str | None) -> dict | None:
    """A curated environment as an Azure workspace shows it (``AzureML-<name>``), or None for another name."""
    if EnvironmentRef(name).curated_key is None:
        return None
    env = resources.backend().environments.get(name, version=version, label=None if version else "latest")
    return {
        "id": f"{resources.workspace_path()}/environments/{name}/versions/{env.version}",
        "name": env.version,
        "type": f"{resources.PROVIDER}/workspaces/environments/versions",
        "properties": {
            "description": env.description,
            "tags": env.tags or {},
            "properties": {},
            "isAnonymous": False,
            "isArchived": False,
            "environmentType": "Curated",
            "osType": "Linux",
            "provisioningState": "Succeeded",
        },
    }


# --- shared: containers and versions ----------------------------------------------------------------------------


def _records(kind: AssetKind, name: str | None = None) -> list[dict]:
    """Every version of ``name`` (of every name if None), newest version first, as the store lists them."""
    return resources.backend().store.list_assets(kind.kind, name)


def _wanted_view() -> str:
    return (request.args.get("listViewType") or "ActiveOnly").lower()


def _container(kind: AssetKind, name: str, records: list[dict]) -> dict:
    """An asset as a whole (Azure's container): its latest and next versions."""
    store = resources.backend().store
    with store.transaction() as db:
        next_version = store.next_version(db, kind.kind, name)
    first = min(records, key=lambda r: r["created_at"])
    return {
        "id": f"{resources.workspace_path()}/{kind.plural}/{name}",
        "name": name,
        "type": f"{resources.PROVIDER}/workspaces/{kind.plural}",
        "properties": {
            "tags": {},
            "properties": {},
            "isArchived": False,
            "latestVersion": records[0]["version"],
            "nextVersion": next_version,
            "provisioningState": "Succeeded",
        },
        "systemData": arm.system_data(first["created_at"], None, max(r["updated_at"] for r in records)),
    }


def list_containers(kind: AssetKind):
    """The containers of ``kind`` (one per name, its latest version named), in one page: the SDK's ``list()``."""
    if _wanted_view() == "archivedonly":  # nothing is archived here: the local backend keeps no archive
        return resources.answer(resources.page([]))
    by_name: dict[str, list[dict]] = {}
    for record in _records(kind):
        by_name.setdefault(record["name"], []).append(record)
    return resources.answer(resources.page([_container(kind, n, rs) for n, rs in by_name.items()]))


def get_container(kind: AssetKind, name: str):
    """The container ``name`` of ``kind`` (a curated environment by its workspace name too); 404 naming the fix."""
    records = _records(kind, name)
    if records:
        return resources.answer(_container(kind, name, records))
    if kind is ENVIRONMENT and (curated := _curated(name, None)) is not None:
        version = curated["name"]
        return resources.answer(
            {
                "id": f"{resources.workspace_path()}/environments/{name}",
                "name": name,
                "type": f"{resources.PROVIDER}/workspaces/environments",
                "properties": {"isArchived": False, "latestVersion": version, "provisioningState": "Succeeded"},
            }
        )
    raise errors.ResourceNotFound(
        f"{kind.kind.capitalize()} '{name}' not found in workspace '{g.workspace}'. "
        f"List what exists with ml_client.{kind.plural}.list()."
    )


def _matches(wanted: str | None, have: dict) -> bool:
    """Azure's ``tags``/``properties`` filter: ``k1,k2=v2`` (a key alone: present with any value)."""
    for item in filter(None, (wanted or "").split(",")):
        key, _, value = item.partition("=")
        if key.strip() not in have or ("=" in item and str(have[key.strip()]) != value.strip()):
            return False
    return True


def list_versions(kind: AssetKind, name: str):
    """The versions of ``name``, filtered and ordered as the query asks (``$orderBy``, ``$top``, ``version``,
    ``tags``, ``properties``, ``listViewType``), in one page."""
    store = resources.backend().store
    args = request.args
    records = [] if _wanted_view() == "archivedonly" else _records(kind, name)
    if args.get("version"):
        records = [r for r in records if r["version"] == args["version"]]
    records = [r for r in records if _matches(args.get("tags"), r.get("tags") or {})]
    records = [r for r in records if _matches(args.get("properties"), r.get("properties") or {})]
    order = (args.get("$orderBy") or "").lower()
    if order.startswith("createdtime"):
        records.sort(key=lambda r: r["created_at"], reverse=order.endswith("desc"))
    items = [kind.render(store, r) for r in records]
    if not records and kind is ENVIRONMENT and _wanted_view() != "archivedonly":
        curated = _curated(name, args.get("version"))
        items = [curated] if curated is not None else []
    top = args.get("$top")
    if top:
        if not top.isdigit():
            raise errors.ValidationError(f"$top must be a whole number, not '{top}'.")
        items = items[: int(top)]
    return resources.answer(resources.page(items))


def _existing(kind: AssetKind, name: str, version: str) -> dict | None:
    try:
        return resources.backend().store.get_asset(kind.kind, name, version)
    except errors.ResourceNotFound:
        return None


def _get_version(kind: AssetKind, name: str, version: str):
    record = _existing(kind, name, version)
    if record is not None:
        return resources.answer(kind.render(resources.backend().store, record))
    if kind is ENVIRONMENT and (curated := _curated(name, version)) is not None:
        return resources.answer(curated)
    raise errors.ResourceNotFound(
        f"{kind.kind.capitalize()} '{name}' version '{version}' not found in workspace '{g.workspace}'. "
        f"List its versions with ml_client.{kind.plural}.list(name='{name}')."
    )


def _parsed(rest_class: Any, kind: AssetKind, name: str, version: str) -> Any:
    """The request's body as the SDK's REST model, with the id ``_from_rest_object`` reads name and version from."""
    rest = rest_class(resources.body())
    if rest.properties is None:
        raise errors.ValidationError(f"The body of PUT {request.path} has no 'properties'.")
    rest["id"] = f"{resources.workspace_path()}/{kind.plural}/{name}/versions/{version}"
    if rest.properties.is_archived:
        raise errors.NotEmulated(
            f"archiving {kind.kind} versions (ml_client.{kind.plural}.archive)",
            "amlemu keeps every version active: leave it, or register a new version.",
        )
    return rest


def _not_emulated(kind: AssetKind, what: str):
    raise errors.NotEmulated(
        f"{what} ({request.method} {kind.plural})",
        "amlemu keeps every version of a workspace's models and environments, active; register a new version "
        "instead, or run this against Azure ML itself.",
    )


# --- model routes -----------------------------------------------------------------------------------------------


def _model_source(store, path: str) -> str:
    """A model path as the engine keeps it: a datastore path in its short form (the workspace's own), else as sent."""
    if datastore_paths.is_datastore_uri(path):
        return datastore_paths.parse(store, path).uri
    return path


def _same_model(store, record: dict, model: Any) -> bool:
    """Whether a PUT on an existing version asks for what it holds (Azure answers that with the version itself)."""
    sent = _model_source(store, str(model.path))
    return (
        sent in (record["path"], _model_source(store, model_uri(store, record)))
        and (model.type or "custom_model") == record["type"]
        and (model.description or None) == (record.get("description") or None)
        and dict(model.tags or {}) == (record.get("tags") or {})
        and dict(model.properties or {}) == (record.get("properties") or {})
    )


# the reads are alike for models and environments: containers, a container, its versions, a version
for _asset, _prefix in ((MODEL, MODELS), (ENVIRONMENT, ENVIRONMENTS)):
    for _suffix, _endpoint, _view in (
        ("", "list", list_containers),
        ("/<name>", "get", get_container),
        ("/<name>/versions", "list_versions", list_versions),
        ("/<name>/versions/<version>", "get_version", _get_version),
    ):
        blueprint.add_url_rule(_prefix + _suffix, f"{_asset.plural}_{_endpoint}", functools.partial(_view, _asset))


@blueprint.put(f"{MODELS}/<name>/versions/<version>")
def put_model_version(name: str, version: str):
    # azure-ai-ml on first use: importing it costs amlemu serve ~1.4 s at start
    from azure.ai.ml._restclient.arm_ml_service.models import ModelVersion
    from azure.ai.ml.entities import Model

    rest = _parsed(ModelVersion, MODEL, name, version)
    if rest.properties.flavors is None:  # _from_rest_object reads flavors as a mapping
        rest.properties.flavors = {}
    model = Model._from_rest_object(rest)
    if not model.path:
        raise errors.ValidationError(f"The model version of PUT {request.path} has no 'modelUri'.")
    store = resources.backend().store
    model.path = _model_source(store, str(model.path))
    if not (datastore_paths.is_datastore_uri(model.path) or model_registry.job_output(model.path)):
        # a plain path would name a file of this machine: Azure takes URIs only, and the SDK uploads local files
        raise errors.ValidationError(
            f"Model '{name}' version '{version}': modelUri '{model.path}' is neither a datastore path "
            "(azureml://datastores/<ds>/paths/<p>) nor a job output (azureml://jobs/<job>/outputs/..., "
            "runs:/<job>/<path>). Give the SDK a local path and it uploads it to the default datastore first."
        )
    existing = _existing(MODEL, name, version)
    if existing is not None:
        if _same_model(store, existing, model):
            return resources.answer(_render_model(store, existing))
        raise errors.ResourceExists(
            f"Model '{name}' version '{version}' already exists with other contents; versions are immutable "
            "here (amlemu does not update a version's path, type, description, tags or properties). Leave the "
            "version out to register the next one, or pick an unused one."
        )
    created = resources.backend().models.create_or_update(model)
    return resources.answer(_render_model(store, store.get_asset(MODEL.kind, created.name, created.version)), 201)


@blueprint.put(f"{MODELS}/<name>")
def put_model(name: str):
    _not_emulated(MODEL, f"creating, updating or archiving model '{name}' as a whole")


@blueprint.delete(f"{MODELS}/<name>")
def delete_model(name: str):
    _not_emulated(MODEL, f"deleting model '{name}'")


@blueprint.delete(f"{MODELS}/<name>/versions/<version>")
def delete_model_version(name: str, version: str):
    _not_emulated(MODEL, f"deleting model '{name}' version '{version}'")


# --- environment routes -----------------------------------------------------------------------------------------


def _build_context(path: str) -> str:
    """A build context's ``contextUri`` (where the SDK uploaded it: a blob URL of the default datastore, or a
    datastore path) as the local folder the engine builds from; a plain path of this machine is refused, as
    Azure takes URIs only."""
    return str(blobstore.local_path(resources.backend().store, path))


def _same_environment(record: dict, env: Any) -> bool:
    """Whether a PUT on an existing version asks for what it holds (Azure answers that with the version itself)."""
    sent = (str(Path(env.build.path).resolve()), env.build.dockerfile_path or "Dockerfile") if env.build else None
    kept = (record["build"]["path"], record["build"]["dockerfile_path"]) if record.get("build") else None
    return (
        env.image == record.get("image")
        and (env.conda_file or None) == (record.get("conda_file") or None)
        and sent == kept
        and (env.description or None) == (record.get("description") or None)
        and dict(env.tags or {}) == (record.get("tags") or {})
    )


@blueprint.put(f"{ENVIRONMENTS}/<name>/versions/<version>")
def put_environment_version(name: str, version: str):
    # azure-ai-ml on first use: importing it costs amlemu serve ~1.4 s at start
    from azure.ai.ml._restclient.arm_ml_service.models import EnvironmentVersion
    from azure.ai.ml.entities import Environment

    env = Environment._from_rest_object(_parsed(EnvironmentVersion, ENVIRONMENT, name, version))
    if env.build is not None and env.build.path:
        env.build.path = _build_context(str(env.build.path))
    store = resources.backend().store
    existing = _existing(ENVIRONMENT, name, version)
    if existing is not None:
        if _same_environment(existing, env):
            return resources.answer(_render_environment(store, existing))
        # the SDK, given no version, puts the latest one first and the next one on this conflict (as with Azure)
        raise errors.ResourceExists(
            f"Environment '{name}' version '{version}' already exists with another definition; versions are "
            "immutable. Leave the version out to register the next one, or pick an unused one."
        )
    created = resources.backend().environments.create_or_update(env)
    record = store.get_asset(ENVIRONMENT.kind, created.name, created.version)
    return resources.answer(_render_environment(store, record), 201)


@blueprint.put(f"{ENVIRONMENTS}/<name>")
def put_environment(name: str):
    _not_emulated(ENVIRONMENT, f"creating, updating or archiving environment '{name}' as a whole")


@blueprint.delete(f"{ENVIRONMENTS}/<name>")
def delete_environment(name: str):
    _not_emulated(ENVIRONMENT, f"deleting environment '{name}'")


@blueprint.delete(f"{ENVIRONMENTS}/<name>/versions/<version>")
def delete_environment_version(name: str, version: str):
    _not_emulated(ENVIRONMENT, f"deleting environment '{name}' version '{version}'")


# --- registries -------------------------------------------------------------------------------------------------


@blueprint.route("/registrymanagement/v1.0/registries/<registry>/discovery", methods=["GET"])
def registry_discovery(registry: str):
    """``MLClient(registry_name=...)`` first asks where a registry is (``amlemu env`` points that here)."""
    raise errors.NotEmulated(
        f"registry '{registry}' (MLClient(registry_name='{registry}'))",
        "amlemu has no registries. A curated environment is in every workspace under its workspace name: "
        "ml_client.environments.get('AzureML-sklearn-1.5', label='latest'), or azureml:AzureML-sklearn-1.5@latest "
        "in a job.",
    )
