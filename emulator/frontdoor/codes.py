"""Code assets, as azure-ai-ml uploads a job's code: find by content hash, pending upload, register, get.

The SDK first asks for a version with the same content hash (``GET .../codes/{name}/versions?hash=``;
it reuses whatever version, of whatever name, the answer names), else asks for a place to upload
(``startPendingUpload``: a new container, :func:`.blobstore.new_upload`, and a SAS for it), uploads
the folder there with azure-storage-blob, and registers the version with that ``codeUri``. The
container is a folder of the workspace (``<workspace>/uploads/<id>/``), so the code a job runs is
where the upload put it: :func:`code_folder` names it.

Versions are kept in the workspace store (kind ``code``) and are immutable, as on Azure: writing a
version again with the same ``codeUri`` updates its description and tags, another ``codeUri`` is 409.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, request

from emulator import naming
from emulator.errors import ResourceExists, ResourceNotFound, ValidationError
from emulator.frontdoor import blobs, blobstore, resources
from emulator.store import WorkspaceStore

blueprint = Blueprint("codes", __name__)
blueprint.url_value_preprocessor(resources.take_scope)

CODES = resources.WORKSPACE + "/codes"
KIND = "code"
#: how long the SAS of a pending upload lasts (a large snapshot over a slow disk still fits)
UPLOAD_HOURS = 8.0


def _checked(name: str, version: str) -> tuple[str, str]:
    for label, kind, value in (("Code name", "data", name), ("Code version", "version", version)):
        if not naming.is_valid(kind, value):
            raise ValidationError(f"{label} '{value}' is invalid: Azure ML takes {naming.RULES[kind].text}.")
    return name, version


def _record(store: WorkspaceStore, name: str, version: str) -> dict[str, Any]:
    _checked(name, version)
    try:
        return store.get_asset(KIND, name, version)
    except ResourceNotFound:
        raise ResourceNotFound(
            f"Code '{name}' version '{version}' not found in workspace '{store.name}'. Code versions are made by "
            "uploading a job's code (ml_client.jobs.create_or_update with code=<folder>)."
        ) from None


def code_folder(store: WorkspaceStore, name: str, version: str) -> Path:
    """The local folder (or file) of code version ``name``/``version`` of ``store``'s workspace: what a job runs."""
    record = _record(store, name, version)
    path = blobstore.local_path(store, record["code_uri"])
    if not path.exists():
        raise ResourceNotFound(
            f"Code '{name}' version '{version}' names {record['code_uri']}, which holds no files: its upload did "
            "not complete. Submit the job again (the SDK uploads the code anew)."
        )
    return path


def code_folder_of(store: WorkspaceStore, reference: str) -> Path:
    """:func:`code_folder` of a job's code reference: its ARM id (``[azureml:]/subscriptions/.../codes/<name>/
    versions/<v>``, as the SDK sends ``codeId``) or ``azureml:<name>:<version>``."""
    code = resources.parse_reference(reference, ("codes",), workspace=store.name, field="The code")
    if code.version is None:  # code assets have versions only
        raise ValidationError(f"The code '{reference}' names no version: write azureml:{code.name}:<version>.")
    return code_folder(store, code.name, code.version)


def view(store: WorkspaceStore, record: dict[str, Any]) -> Any:
    """A code version as ARM answers it (the SDK's ``CodeVersion``)."""
    from azure.ai.ml._restclient.arm_ml_service.models import CodeVersion, CodeVersionProperties  # SDK: on first use

    rest = CodeVersion(
        properties=CodeVersionProperties(
            code_uri=record["code_uri"],
            is_anonymous=record.get("is_anonymous", False),
            description=record.get("description"),
            tags=record.get("tags") or {},
            properties=record.get("properties") or {},
        )
    )
    tail = f"codes/{record['name']}/versions/{record['version']}"
    resources.envelope(rest, store.name, tail, record["created_at"], record["updated_at"])
    rest["properties"]["provisioningState"] = "Succeeded"
    return rest


def _uploaded(store: WorkspaceStore, record: dict[str, Any]) -> bool:
    try:
        return blobstore.local_path(store, record["code_uri"]).exists()
    except ValidationError:
        return False


@blueprint.get(CODES + "/<name>/versions")
def list_versions(name: str):
    """The versions of ``name``; with ``hash``, the versions of any name whose content has that hash (the SDK's
    look-up before an upload), only those whose files are here."""
    store = resources.backend().store
    content_hash, hash_version = request.args.get("hash"), request.args.get("hashVersion")
    if content_hash:
        found = [
            r
            for r in store.list_assets(KIND)
            if (r.get("properties") or {}).get("hash_sha256") == content_hash
            and (not hash_version or str((r.get("properties") or {}).get("hash_version")) == hash_version)
            and _uploaded(store, r)
        ]
        found.sort(key=lambda r: r["name"] != name)  # the asked-for name first
    else:
        found = store.list_assets(KIND, name)
        newest_first = "asc" not in request.args.get("$orderBy", "createdtime desc").lower()
        found.sort(key=lambda r: r["created_at"], reverse=newest_first)
    top = request.args.get("$top")
    if top and top.isdigit():
        found = found[: int(top)]
    return resources.answer(resources.page([view(store, r) for r in found]))


@blueprint.get(CODES + "/<name>/versions/<version>")
def get(name: str, version: str):
    store = resources.backend().store
    return resources.answer(view(store, _record(store, name, version)))


@blueprint.put(CODES + "/<name>/versions/<version>")
def create_or_update(name: str, version: str):
    """Register a code version whose ``codeUri`` is storage of this workspace (an upload, or a datastore path)."""
    store = resources.backend().store
    _checked(name, version)
    properties = resources.body().get("properties") or {}
    code_uri = properties.get("codeUri")
    if not code_uri:
        raise ValidationError(f"Code '{name}' version '{version}' needs properties.codeUri (where its files are).")
    if not blobstore.local_path(store, code_uri).exists():
        raise ValidationError(
            f"Code '{name}' version '{version}': nothing is at codeUri {code_uri}. Upload the files first "
            "(startPendingUpload, then the blob upload), as azure-ai-ml does."
        )
    body = {
        "code_uri": code_uri,
        "is_anonymous": bool(properties.get("isAnonymous")),
        "description": properties.get("description"),
        "tags": {str(k): str(v) for k, v in (properties.get("tags") or {}).items()},
        "properties": {str(k): str(v) for k, v in (properties.get("properties") or {}).items()},
    }
    try:
        with store.transaction() as db:
            store.insert_asset(db, KIND, name, version, body)
    except ResourceExists:
        current = store.get_asset(KIND, name, version)
        if current["code_uri"] != code_uri:
            raise ResourceExists(
                f"Code '{name}' version '{version}' already exists with codeUri {current['code_uri']}; a version's "
                "files cannot change. Register another version."
            ) from None
        kept = {k: v for k, v in current.items() if k not in ("name", "version", "created_at", "updated_at")}
        store.put_asset(KIND, name, version, {**kept, "description": body["description"], "tags": body["tags"]})
    return resources.answer(view(store, store.get_asset(KIND, name, version)))


@blueprint.post(CODES + "/<name>/versions/<version>/startPendingUpload")
def start_pending_upload(name: str, version: str):
    """A new container for the code's files and a SAS for it (read, add, create, write, list), path-style on the
    loopback address: azure-ai-ml uploads there, then registers the version with the folder's URL."""
    from azure.ai.ml._restclient.arm_ml_service import models  # on first use: the SDK costs ~1.4 s at start

    _checked(name, version)
    upload_type = resources.body().get("pendingUploadType") or "TemporaryBlobReference"
    if upload_type != "TemporaryBlobReference":
        raise ValidationError(f"pendingUploadType '{upload_type}' is not emulated: use TemporaryBlobReference.")
    store = resources.backend().store
    container = blobstore.new_upload(store)
    url = blobs.container_url(container.name)
    sas = blobstore.issue_sas(container.name, "racwl", UPLOAD_HOURS)
    answer = models.PendingUploadResponseDto(
        blob_reference_for_consumption=models.BlobReferenceForConsumptionDto(
            blob_uri=url, credential=models.SASCredentialDto(sas_uri=f"{url}?{sas}")
        ),
        pending_upload_id=container.name,
        pending_upload_type=upload_type,
    )
    return resources.answer(answer)
