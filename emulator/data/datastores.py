"""The workspace's datastores: Azure's three default ones, each a folder in the workspace.

Every Azure ML workspace comes with ``workspaceblobstore`` (a blob container, the default: local
uploads and job outputs land there), ``workspaceartifactstore`` (the blob container of run
artifacts) and ``workspacefilestore`` (a file share). Here each is a folder,
``<workspace>/datastores/<name>/``, made on first use; ``azureml://datastores/<name>/paths/<p>``
is ``<p>`` inside it (:mod:`emulator.data.paths`).

Registering another datastore is not emulated: a datastore is a reference to an Azure storage
account, whose contents a machine without that account cannot hold. Data outside the workspace
is given to jobs as local paths, or registered as a data asset (which uploads it to
``workspaceblobstore``, as Azure does).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from emulator import config, naming
from emulator.errors import NotEmulated, ResourceNotFound
from emulator.store import WorkspaceStore

DEFAULT = "workspaceblobstore"
NAMES = (DEFAULT, "workspaceartifactstore", "workspacefilestore")


class Datastore(NamedTuple):
    """One of the workspace's datastores, as Azure describes it, and its folder here."""

    name: str
    type: str  # azure_blob or azure_file, as the SDK's YAML names the kinds
    account_name: str
    container_name: str | None  # azure_blob
    file_share_name: str | None  # azure_file
    is_default: bool
    folder: Path


def workspace_guid(store: WorkspaceStore) -> str:
    """The workspace's id as Azure names storage after it (stable: derived from the workspace name)."""
    import uuid  # only a datastore's description needs it (~9 ms at start, which a job's supervisor does not pay)

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"amlemu:workspace:{store.name}"))


def _account_name(store: WorkspaceStore) -> str:
    # an Azure storage account name: 3-24 lower-case letters and digits
    return ("amlemu" + re.sub(r"[^a-z0-9]", "", store.name.lower()))[:24]


def folder(store: WorkspaceStore, name: str) -> Path:
    """The folder of datastore ``name`` (made on first use); ResourceNotFound for a name the workspace lacks."""
    if name not in NAMES:
        raise ResourceNotFound(
            f"Datastore '{name}' not found in workspace '{store.name}'. Its datastores are "
            f"{', '.join(NAMES)} (the default: {DEFAULT}); amlemu emulates these as folders in the "
            f"workspace. Use one of them, e.g. azureml://datastores/{DEFAULT}/paths/<folder>/."
        )
    return config.private_dir(naming.confined_join(store.root, "datastores", name))


def get(store: WorkspaceStore, name: str) -> Datastore:
    """Datastore ``name``: one of Azure's default three (ResourceNotFound names them otherwise)."""
    path = folder(store, name)
    guid = workspace_guid(store)
    blob = {DEFAULT: f"azureml-blobstore-{guid}", "workspaceartifactstore": "azureml"}
    return Datastore(
        name=name,
        type="azure_file" if name == "workspacefilestore" else "azure_blob",
        account_name=_account_name(store),
        container_name=blob.get(name),
        file_share_name=f"code-{guid}" if name == "workspacefilestore" else None,
        is_default=name == DEFAULT,
        folder=path,
    )


def list_datastores(store: WorkspaceStore) -> list[Datastore]:
    return [get(store, name) for name in NAMES]


def default(store: WorkspaceStore) -> Datastore:
    return get(store, DEFAULT)


def not_emulated(operation: str) -> NotEmulated:
    """The error for registering or removing a datastore: only the default ones exist here."""
    return NotEmulated(
        operation,
        "A datastore references an Azure storage account, which this machine cannot reach; amlemu's workspace "
        f"has its default datastores ({', '.join(NAMES)}) as local folders. Write data to "
        f"azureml://datastores/{DEFAULT}/paths/<folder>/ (a job output) or register it with `amlemu data create "
        "--path <local path>` (uploaded there), or run against Azure ML with AMLEMU_BACKEND=azure.",
    )
