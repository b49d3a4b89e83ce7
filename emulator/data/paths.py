"""Datastore URIs: ``azureml://datastores/<datastore>/paths/<path>`` and the folder each names here.

Azure writes a datastore path two ways: short, ``azureml://datastores/<ds>/paths/<p>`` (what the
SDK writes after an upload), and long, with the workspace:
``azureml://subscriptions/<sub>/resourcegroups/<rg>/workspaces/<ws>/datastores/<ds>/paths/<p>``.
Both name ``<p>`` inside the datastore's folder (:mod:`emulator.data.datastores`); the join is
confined to that folder, so no ``..`` or symlink leads out of it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from emulator import naming
from emulator.data import datastores
from emulator.errors import ValidationError
from emulator.store import WorkspaceStore

#: URI schemes of storage this machine cannot reach (Azure takes them as data paths)
REMOTE_SCHEMES = ("http://", "https://", "wasbs://", "wasb://", "abfss://", "abfs://", "adl://", "s3://", "gs://")
_SHORT = re.compile(r"^azureml://datastores/(?P<datastore>[^/]*)/paths(?:/(?P<path>.*))?$")
_LONG = re.compile(
    r"^azureml://subscriptions/[^/]+/resourcegroups/[^/]+/workspaces/(?P<workspace>[^/]+)"
    r"/datastores/(?P<datastore>[^/]*)/paths(?:/(?P<path>.*))?$",
    re.IGNORECASE,
)


class DatastorePath(NamedTuple):
    datastore: str
    path: str  # inside the datastore, without leading or trailing '/' ('' is its root)

    @property
    def uri(self) -> str:
        """The short form, as the SDK writes it."""
        return f"azureml://datastores/{self.datastore}/paths/{self.path}"


def is_datastore_uri(text: str) -> bool:
    return bool(_SHORT.match(text) or _LONG.match(text))


def parse(store: WorkspaceStore, uri: str) -> DatastorePath:
    """``uri`` as a datastore and a path inside it; ValidationError if it is not a datastore URI, or names
    another workspace or a datastore name Azure would refuse."""
    match = _SHORT.match(uri) or _LONG.match(uri)
    if not match:
        raise ValidationError(
            f"'{uri}' is not a datastore path. Write azureml://datastores/<datastore>/paths/<path>, "
            f"e.g. azureml://datastores/{datastores.DEFAULT}/paths/data/train.csv."
        )
    workspace = match.groupdict().get("workspace")
    if workspace and workspace != store.name:
        raise ValidationError(
            f"'{uri}' is in workspace '{workspace}', but this is workspace '{store.name}'. Use "
            f"azureml://datastores/<datastore>/paths/<path> (this workspace), or -w {workspace}."
        )
    name = naming.check("datastore", match["datastore"], f"in '{uri}'")
    return DatastorePath(name, (match["path"] or "").strip("/"))


def local(store: WorkspaceStore, ref: DatastorePath) -> Path:
    """The local file or folder a datastore path names (whether or not it exists yet)."""
    root = datastores.folder(store, ref.datastore)
    return naming.confined_join(root, ref.path) if ref.path else root
