"""Datastores: the workspace's default three (list, get) and the SAS of a blob datastore (``listSecrets``).

A blob datastore's credentials are a SAS (``credentialsType: Sas``), as Azure's are for a
SAS-registered datastore: azure-ai-ml's uploads (``get_datastore_info``) then ask ``listSecrets``
for it and hand it to azure-storage-blob, which reaches ``https://<account>.blob.<suffix>``
through the front door's proxy (:mod:`.blobs` checks the SAS). ``workspacefilestore`` is a file
share, which the front door does not serve: its credentials are ``None`` and it has no secrets.
Registering or removing a datastore is refused as the engine refuses it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, request

from emulator.data import datastores
from emulator.errors import ValidationError
from emulator.frontdoor import blobstore, resources, settings

blueprint = Blueprint("datastores", __name__)
blueprint.url_value_preprocessor(resources.take_scope)

DATASTORES = resources.WORKSPACE + "/datastores"
#: how long a listed SAS lasts when the request does not say (``expireAfterHours``), and the longest it may
DEFAULT_HOURS, MAX_HOURS = 1.0, 24.0 * 7


def view(entity: Any) -> Any:
    """The datastore as ARM answers it: the SDK's REST model of the backend's entity, with what the service fills in."""
    from azure.ai.ml.entities import SasTokenConfiguration  # on first use: the SDK costs ~1.4 s at start

    is_blob = bool(getattr(entity, "container_name", None))
    if is_blob:
        entity.credentials = SasTokenConfiguration(sas_token=None)  # the kind only: secrets come from listSecrets
    entity.endpoint = settings.STORAGE_SUFFIX
    rest = entity._to_rest_object()
    store = resources.backend().store
    created = datastores.folder(store, entity.name).stat().st_ctime
    resources.envelope(rest, g.workspace, f"datastores/{entity.name}", created)
    rest["properties"]["isDefault"] = entity.name == datastores.DEFAULT
    if is_blob:
        rest["properties"]["credentials"] = {"credentialsType": "Sas"}  # as Azure's GET: never the secret itself
    return rest


@blueprint.get(DATASTORES)
def list_datastores():
    found = resources.backend().datastores.list()
    if "isDefault" in request.args:
        wanted = request.args["isDefault"].lower() == "true"
        found = [d for d in found if (d.name == datastores.DEFAULT) == wanted]
    names = {n for n in request.args.get("names", "").split(",") if n}
    if names:
        found = [d for d in found if d.name in names]
    return resources.answer(resources.page([view(d) for d in found]))


@blueprint.get(DATASTORES + "/<name>")
def get(name: str):
    return resources.answer(view(resources.backend().datastores.get(name)))


@blueprint.put(DATASTORES + "/<name>")
def create_or_update(name: str):
    raise datastores.not_emulated(f"creating or updating datastore '{name}' (PUT .../datastores/{name})")


@blueprint.delete(DATASTORES + "/<name>")
def delete(name: str):
    raise datastores.not_emulated(f"deleting datastore '{name}' (DELETE .../datastores/{name})")


def _hours(body: dict[str, Any]) -> float:
    hours = body.get("expireAfterHours", DEFAULT_HOURS)
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= MAX_HOURS:
        raise ValidationError(f"expireAfterHours must be a number of hours above 0 and at most {MAX_HOURS:g}.")
    return float(hours)


@blueprint.post(DATASTORES + "/<name>/listSecrets")
def list_secrets(name: str):
    """A SAS for the datastore's container (read, add, create, write, delete, list), as ``SasDatastoreSecrets``."""
    from azure.ai.ml._restclient.arm_ml_service.models import SasDatastoreSecrets  # on first use (SDK import)

    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    entity = resources.backend().datastores.get(name)
    container = getattr(entity, "container_name", None)
    if not container:
        raise ValidationError(
            f"Datastore '{name}' is a file share ({getattr(entity, 'file_share_name', '')}), which amlemu's front door "
            f"does not serve, so it has no secrets. Use a blob datastore ({datastores.DEFAULT})."
        )
    return resources.answer(SasDatastoreSecrets(sas_token=blobstore.issue_sas(container, "racwdl", _hours(body))))
