"""Where Azure keeps a job's files in the workspace's datastores, served from the job's own folders (no copy).

Azure writes a job's default artifacts (``outputs/``, ``logs/``, ``user_logs/``...) to the artifact store
under ``ExperimentRun/dcid.<job>/`` and a named output that has no path to the default datastore under
``azureml/<job>/<output>/``; clients read them there (``ml_client.jobs.download``, ``models.download`` of a
model from a job output), as blobs listed by prefix. amlemu's engine keeps both in the job's folder
(:func:`emulator.jobs.spec.job_output_folder`), so the blob service maps those two prefixes onto it:
:func:`resolve` for one blob, :func:`areas` for a listing. An output given a datastore path is written to
that path's folder, where the blob service finds it as it is. A name under these prefixes that names no job
(or no path-less output of it) is an ordinary blob name, of the datastore's own folder.

The job's ARM view carries no ``outputs.default`` (Azure's shows ``azureml://datastores/workspaceartifactstore/
ExperimentRun/dcid.<job>``): given one, ``jobs.stream`` lists the logs in that datastore and signs a blob SAS
for each with the datastore's account key, which amlemu's SAS-only datastores do not have. Without it the SDK's
``jobs.download`` takes ``azureml://datastores/workspaceartifactstore/paths/ExperimentRun/dcid.<job>/``, the
same place.

Run history names a job's data outputs by asset ids (:func:`output_asset_id`) that the dataset data plane
resolves back to the output (:func:`output_of_asset_id`), in Azure's form:
``azureml://locations/<location>/workspaces/<workspace guid>/data/azureml_<job>_output_data_<output>/versions/1``.
"""

from __future__ import annotations

import re
from pathlib import Path

from emulator import naming
from emulator.data import datastores
from emulator.data import paths as datastore_paths
from emulator.data.paths import DatastorePath
from emulator.errors import ResourceNotFound
from emulator.jobs.spec import job_output_folder
from emulator.store import WorkspaceStore
from emulator.store.records import JobRecord

ARTIFACT_STORE = "workspaceartifactstore"
RUN_FOLDER = "ExperimentRun/dcid."
OUTPUTS_FOLDER = "azureml/"
#: the output types that are data (the dataset data plane's); the others are models
DATA_TYPES = ("uri_file", "uri_folder", "mltable")
LOCATION = "local"
_ASSET_ID = re.compile(
    r"^azureml://locations/[^/]+/workspaces/(?P<guid>[^/]+)/data/azureml_(?P<name>[^/]+)/versions/1$"
)


def _job(store: WorkspaceStore, name: str) -> JobRecord | None:
    if not naming.is_valid("job", name):
        return None
    try:
        return store.get_job(name)
    except ResourceNotFound:
        return None


def _pathless(record: JobRecord) -> list[str]:
    """The job's named outputs that have no datastore path: those the engine keeps in the job's folder."""
    return [name for name, output in (record["spec"].get("outputs") or {}).items() if not output.get("path")]


def output_place(store: WorkspaceStore, record: JobRecord, output: str) -> DatastorePath:
    """Where Azure keeps a job's output: the run's folder of the artifact store (``artifacts``, ``default``), the
    datastore path it was given, else its folder in the default datastore."""
    job = record["name"]
    if output in ("artifacts", "default"):
        return DatastorePath(ARTIFACT_STORE, f"{RUN_FOLDER}{job}")
    path = ((record["spec"].get("outputs") or {}).get(output) or {}).get("path")
    if path:
        return datastore_paths.parse(store, path)
    return DatastorePath(datastores.DEFAULT, f"{OUTPUTS_FOLDER}{job}/{output}")


def _claim(store: WorkspaceStore, datastore: str | None, blob: str) -> tuple[str, Path] | None:
    """The job area ``blob`` lies in, as (the area's blob-name prefix, its local folder), or None."""
    if datastore == ARTIFACT_STORE and blob.startswith(RUN_FOLDER):
        job = blob[len(RUN_FOLDER) :].partition("/")[0]
        record = _job(store, job)
        if record is not None:
            return f"{RUN_FOLDER}{job}/", job_output_folder(store, record, "artifacts")
    elif datastore == datastores.DEFAULT and blob.startswith(OUTPUTS_FOLDER):
        job, _, rest = blob[len(OUTPUTS_FOLDER) :].partition("/")
        output = rest.partition("/")[0]
        record = _job(store, job)
        if record is not None and output in _pathless(record):
            return f"{OUTPUTS_FOLDER}{job}/{output}/", job_output_folder(store, record, output)
    return None


def resolve(store: WorkspaceStore, datastore: str | None, blob: str) -> Path | None:
    """The local file or folder of ``blob`` (a name in ``datastore``) if it lies in a job's area, else None.
    ValidationError for a name that would leave the job's folder."""
    claim = _claim(store, datastore, blob)
    if claim is None:
        return None
    prefix, root = claim
    inner = blob[len(prefix) :].strip("/")
    return naming.confined_join(root, inner) if inner else root


def _jobs_named(store: WorkspaceStore, start: str) -> list[str]:
    """The names of the workspace's jobs (children included) that begin with ``start``."""
    rows = store.query("SELECT name FROM jobs WHERE substr(name, 1, ?) = ? ORDER BY name", (len(start), start))
    return [row[0] for row in rows]


def areas(store: WorkspaceStore, datastore: str | None, prefix: str) -> list[tuple[str, Path]]:
    """The job areas a listing of ``datastore`` with ``prefix`` reaches, as (blob-name prefix, local folder)."""
    head = {ARTIFACT_STORE: RUN_FOLDER, datastores.DEFAULT: OUTPUTS_FOLDER}.get(datastore or "")
    if head is None or not (prefix.startswith(head) or head.startswith(prefix)):
        return []
    job_part, slash, tail = prefix[len(head) :].partition("/")
    found = []
    for job in [job_part] if slash else _jobs_named(store, job_part):
        record = _job(store, job)
        if record is None:
            continue
        if head == RUN_FOLDER:
            found.append((f"{head}{job}/", job_output_folder(store, record, "artifacts")))
            continue
        wanted, exact, _ = tail.partition("/")
        for output in _pathless(record):
            if output == wanted or (not exact and output.startswith(wanted)):
                found.append((f"{head}{job}/{output}/", job_output_folder(store, record, output)))
    return found


# -- run history's asset ids of a job's data outputs -------------------------------------------------------------
def data_outputs(record: JobRecord) -> dict[str, str]:
    """A job's data outputs (those the dataset data plane resolves), by name: their type."""
    kinds = {name: o.get("type", "uri_folder") for name, o in (record["spec"].get("outputs") or {}).items()}
    return {name: kind for name, kind in kinds.items() if kind in DATA_TYPES}


def output_asset_id(store: WorkspaceStore, job: str, output: str) -> str:
    guid = datastores.workspace_guid(store)
    return f"azureml://locations/{LOCATION}/workspaces/{guid}/data/azureml_{job}_output_data_{output}/versions/1"


def output_of_asset_id(store: WorkspaceStore, asset_id: str) -> tuple[JobRecord, str] | None:
    """The job and data output an asset id of :func:`output_asset_id` names, or None (another workspace's, no such
    job or output). Job and output names may hold ``_output_data_``: each split is tried."""
    match = _ASSET_ID.match(asset_id)
    if match is None or match["guid"] != datastores.workspace_guid(store):
        return None
    text = match["name"]
    for found in re.finditer("_output_data_", text):
        job, output = text[: found.start()], text[found.end() :]
        record = _job(store, job)
        if record is not None and output in data_outputs(record):
            return record, output
    return None
