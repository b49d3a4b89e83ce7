"""Data assets: named, versioned references to data, as Azure ML registers them.

A version's ``path`` is where its data is. Registering a local file or folder uploads it, as
azure-ai-ml does, to the default datastore under ``LocalUpload/<hash>/<name>``, the hash being
the SDK's content hash (the same content lands in the same place, once); the version's path is
then ``azureml://datastores/workspaceblobstore/paths/LocalUpload/<hash>/<name>``. A datastore
path (``azureml://datastores/...``) or a URL stays the reference it is (Azure does not look at
remote data either; a job cannot read a URL here, offline, and says so).

Archiving hides a version, or with no version the whole asset, from listings; an archived
version still resolves by its number, but ``@latest`` names the newest version that is not
archived. A version of a wholly archived asset cannot be restored alone (restore the asset).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import Any

from emulator import naming
from emulator.data import DATA_TYPES, datastores, paths
from emulator.errors import NotEmulated, ResourceExists, ResourceNotFound, ValidationError
from emulator.store import WorkspaceStore
from emulator.store import staging as stagings

KIND = "data"
#: the asset as a whole (Azure's data container): whether it is archived
CONTAINER_KIND = "data_container"
_CONTAINER_VERSION = "container"
VIEW_TYPES = ("ActiveOnly", "ArchivedOnly", "All")  # azure-ai-ml's ListViewType values
#: the SDK's content hash starts from this text (azure.ai.ml._utils._asset_utils.get_object_hash)
_HASH_SEED = b"Initialize for october 2021 AML CLI version"
_REFERENCE = re.compile(r"^azureml:(?P<name>[^:@/]+)(?::(?P<version>[^:@/]+)|@(?P<label>[^:@/]+))?$")
_ARM_REFERENCE = re.compile(
    r"^azureml:/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.MachineLearningServices"
    r"/workspaces/(?P<workspace>[^/]+)/data/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$",
    re.IGNORECASE,
)
_TYPE_HELP = "uri_file (one file), uri_folder (a folder) or mltable (a folder with an MLTable file)"


# -- uploads -----------------------------------------------------------------------------------------
def content_hash(path: Path) -> str:
    """The SDK's hash of a file or folder (SHA-256 over names and contents, children in case-blind order),
    which names its upload folder: the same content uploads to the same place."""
    digest = hashlib.sha256(_HASH_SEED)
    if path.is_dir():
        _hash_folder(path, digest, set())
    else:
        _hash_file(path, digest)
    return digest.hexdigest()


def _hash_file(path: Path, digest: Any) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)


def _hash_folder(folder: Path, digest: Any, seen: set[Path]) -> None:
    real = folder.resolve()
    if real in seen:  # a symlink back up the tree: its contents are hashed once
        return
    seen.add(real)
    for child in sorted(folder.iterdir(), key=lambda p: str(p).lower()):
        digest.update(child.name.encode())
        if child.is_file():
            _hash_file(child, digest)
        elif child.is_dir():
            _hash_folder(child, digest, seen)


def _check_local(local: Path, raw: str, data_type: str) -> None:
    """A local path matches its type: uri_file a file, uri_folder a folder, mltable a folder with an MLTable."""
    if not local.exists():
        raise ValidationError(
            f"Data path '{raw}' does not exist (looked at {local}). Fix the path; a relative path is resolved "
            "from the YAML file's folder (or the current directory)."
        )
    if data_type == "uri_file" and not local.is_file():
        raise ValidationError(f"Data path '{raw}' is a folder, but the type is uri_file. Use --type uri_folder.")
    if data_type != "uri_file" and not local.is_dir():
        raise ValidationError(
            f"Data path '{raw}' is a file, but the type is {data_type}. Use --type uri_file"
            + (", or point at the folder that holds the MLTable file." if data_type == "mltable" else ".")
        )
    if data_type == "mltable":
        check_mltable(local, raw)


def check_mltable(folder: Path, raw: str) -> None:
    """An mltable folder holds an ``MLTable`` file: YAML whose ``paths`` lists ``file``, ``folder`` or ``pattern``."""
    file = folder / "MLTable"
    if not file.is_file():
        raise ValidationError(
            f"Data path '{raw}' is an mltable, but {folder} has no MLTable file. Add one (YAML with a 'paths:' "
            "list, e.g. `paths: [{file: ./data.csv}]`), or register the folder as uri_folder."
        )
    import yaml  # only an mltable needs PyYAML (~20 ms at start, which a job's supervisor does not pay)

    try:
        spec = yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValidationError(f"The MLTable file in {folder} is not valid YAML ({exc}). Fix its syntax.") from None
    entries = spec.get("paths") if isinstance(spec, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValidationError(
            f"The MLTable file in {folder} has no 'paths' list. Add one, e.g. `paths: [{{file: ./data.csv}}]`."
        )
    for entry in entries:
        if not (isinstance(entry, dict) and len(entry) == 1 and set(entry) <= {"file", "folder", "pattern"}):
            raise ValidationError(
                f"The MLTable file in {folder} lists {entry!r} under 'paths'; each entry is one of "
                "{file: <path>}, {folder: <path>} or {pattern: <glob>}."
            )


def _source(store: WorkspaceStore, raw: str, data_type: str, base_path: Path) -> tuple[str | None, Path | None]:
    """(the reference kept as the version's path, or None) and (the local path to upload, or None)."""
    if paths.is_datastore_uri(raw):
        ref = paths.parse(store, raw)
        local = paths.local(store, ref)
        if local.exists():  # Azure does not look at a datastore path; here a wrong type shows at once
            _check_local(local, raw, data_type)
        return ref.uri + ("/" if data_type != "uri_file" and ref.path else ""), None
    if raw.startswith(paths.REMOTE_SCHEMES):
        return raw, None
    if raw.startswith("azureml:"):
        raise NotEmulated(
            f"data path '{raw}'",
            "A data asset's path is a local file or folder, azureml://datastores/<datastore>/paths/<path>, or a "
            "URL. For a job's output, give the output a datastore path (path: azureml://datastores/"
            f"{datastores.DEFAULT}/paths/<folder>/) and register that.",
        )
    local = (base_path / raw.removeprefix("file://").removeprefix("file:")).resolve()
    _check_local(local, raw, data_type)
    if local.is_dir() and not any(local.iterdir()):
        raise ValidationError(
            f"Data path '{raw}' is an empty folder ({local}); there is nothing to upload (azure-ai-ml refuses it "
            "too). Put the data in it first, or point at another folder."
        )
    return None, local


def _stage_upload(store: WorkspaceStore, local: Path, name: str, datastore: str) -> tuple[str, Path | None, Path]:
    """The upload's datastore URI, the staging folder holding its copy (None: already uploaded) and its place."""
    ref = paths.DatastorePath(datastore, f"LocalUpload/{content_hash(local)}/{local.name}")
    target = paths.local(store, ref)
    uri = ref.uri + ("/" if local.is_dir() else "")
    if target.exists():
        return uri, None, target
    staging = stagings.make(naming.confined_join(store.root, "datas", name))
    try:
        if local.is_dir():
            shutil.copytree(local, staging / local.name)
        else:
            shutil.copy2(local, staging / local.name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return uri, staging, target


def _publish(staging: Path | None, target: Path) -> None:
    """Move a staged upload into its datastore place (a twin upload that got there first wins)."""
    if staging is None:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staging / target.name, target)
    except OSError:
        if not target.exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.parent.rmdir()  # datas/<name>/ holds only staging folders
        except OSError:
            pass


# -- versions ----------------------------------------------------------------------------------------
def create_or_update(store: WorkspaceStore, spec: dict[str, Any], base_path: Path) -> dict[str, Any]:
    """Register a data version (the next number when ``version`` is not given); a local path is uploaded first.

    Writing a version that exists with the same path and type updates its description, tags and
    properties (``az ml data update``); any other change is refused: versions are immutable.
    """
    name = naming.check("data", spec.get("name"), "(give the data asset a name: --name or name:)")
    version = spec.get("version")
    if version is not None:
        version = naming.check("version", version, f"of data asset '{name}'")
    data_type = spec.get("type") or "uri_folder"
    if data_type not in DATA_TYPES:
        raise ValidationError(f"Data asset type '{data_type}' is unknown. Use {_TYPE_HELP}.")
    raw = spec.get("path")
    if not raw:
        raise ValidationError(
            f"Data asset '{name}' needs a 'path': a local file or folder (uploaded to the default datastore, "
            f"{datastores.DEFAULT}), azureml://datastores/<datastore>/paths/<path>, or a URL. Add --path or path:."
        )
    upload_to = str(spec.get("datastore") or datastores.DEFAULT).removeprefix("azureml:")
    datastores.folder(store, upload_to)
    uri, local = _source(store, str(raw), data_type, Path(base_path))
    staging, target = None, None
    if local is not None:
        uri, staging, target = _stage_upload(store, local, name, upload_to)
    body = {
        "type": data_type,
        "path": uri,
        "description": spec.get("description"),
        "tags": {str(k): str(v) for k, v in (spec.get("tags") or {}).items()},
        "properties": {str(k): str(v) for k, v in (spec.get("properties") or {}).items()},
        "is_archived": False,
    }
    try:
        with store.transaction() as db:
            version = version or store.next_version(db, KIND, name)
            store.insert_asset(db, KIND, name, version, body)
            if target is not None:
                _publish(staging, target)
                staging = None
    except ResourceExists:
        _update_existing(store, name, str(version), body)
        if target is not None:  # the same data: put back an upload that went missing
            _publish(staging, target)
            staging = None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return store.get_asset(KIND, name, version)


def _update_existing(store: WorkspaceStore, name: str, version: str, body: dict[str, Any]) -> None:
    current = store.get_asset(KIND, name, version)
    if (current["path"], current["type"]) != (body["path"], body["type"]):
        raise ResourceExists(
            f"Data asset '{name}' version '{version}' already exists with path {current['path']} "
            f"({current['type']}); a version's data cannot change. Leave the version out to create the next "
            "one, or pick an unused version."
        )
    store.put_asset(
        KIND, name, version, {**_body(current), **{k: body[k] for k in ("description", "tags", "properties")}}
    )


def _body(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("name", "version", "created_at", "updated_at")}


def _container_archived(store: WorkspaceStore, name: str) -> bool:
    rows = store.list_assets(CONTAINER_KIND, name)
    return bool(rows and rows[0].get("is_archived"))


def versions(store: WorkspaceStore, name: str) -> list[dict[str, Any]]:
    """Every version of ``name``, newest first (Azure's latest is the last created), each with ``is_archived``
    set when it, or the whole asset, is archived."""
    whole = _container_archived(store, name)
    found = sorted(store.list_assets(KIND, name), key=lambda r: r["created_at"], reverse=True)
    return [{**r, "is_archived": bool(r.get("is_archived")) or whole} for r in found]


def _view_filter(view_type: str | None) -> str:
    wanted = {v.lower(): v for v in VIEW_TYPES}.get(str(view_type or "ActiveOnly").lower())
    if wanted is None:
        raise ValidationError(f"list_view_type '{view_type}' is unknown; use one of {', '.join(VIEW_TYPES)}.")
    return wanted


def _shown(archived: bool, view_type: str) -> bool:
    return view_type == "All" or archived == (view_type == "ArchivedOnly")


def list_versions(store: WorkspaceStore, name: str, view_type: str | None = None) -> list[dict[str, Any]]:
    """The versions of ``name``, newest first; archived ones only as ``view_type`` asks (ActiveOnly by default)."""
    wanted = _view_filter(view_type)
    return [r for r in versions(store, name) if _shown(r["is_archived"], wanted)]


def list_assets(store: WorkspaceStore, view_type: str | None = None) -> list[dict[str, Any]]:
    """One entry per data asset (Azure's containers): ``name``, ``latest_version``, ``type``, times, ``is_archived``."""
    wanted = _view_filter(view_type)
    names = sorted({r["name"] for r in store.list_assets(KIND)})
    out = []
    for name in names:
        found = versions(store, name)
        archived = _container_archived(store, name)
        if not _shown(archived, wanted):
            continue
        active = [r for r in found if not r["is_archived"]]
        latest = (active or found)[0]
        out.append(
            {
                "name": name,
                "latest_version": latest["version"],
                "type": found[-1]["type"],
                "created_at": found[-1]["created_at"],
                "updated_at": max(r["updated_at"] for r in found),
                "is_archived": archived,
            }
        )
    return out


def latest(store: WorkspaceStore, name: str) -> dict[str, Any]:
    """The newest version of ``name`` that is not archived (what ``@latest`` names)."""
    found = versions(store, name)
    if not found:
        raise ResourceNotFound(
            f"Data asset '{name}' not found in workspace '{store.name}': it has no versions, so 'latest' names "
            f"none. Create it with `amlemu data create --name {name} --path <file or folder>` (or "
            "ml_client.data.create_or_update(Data(...))); `amlemu data list` shows the data assets."
        )
    for record in found:
        if not record["is_archived"]:
            return record
    raise ResourceNotFound(
        f"Every version of data asset '{name}' is archived, so 'latest' names none. Restore one (`amlemu data "
        f"restore --name {name}` for the whole asset, or --version <n>) or name a version (azureml:{name}:<n>)."
    )


def get(store: WorkspaceStore, name: str, version: str | None = None, label: str | None = None) -> dict[str, Any]:
    """One version, by number or by ``label`` (``latest``, the only label Azure manages)."""
    if version and label:
        raise ValidationError("Cannot specify both version and label. Give one: a version, or the label 'latest'.")
    if label and label != "latest":
        raise ValidationError(
            f"Data asset '{name}' has no version label '{label}': Azure ML manages only 'latest'. "
            "Use --label latest or --version <n>."
        )
    if not version:
        return latest(store, name)
    naming.check("data", name)
    for record in versions(store, name):
        if record["version"] == str(version):
            return record
    raise ResourceNotFound(
        f"Data asset '{name}' version '{version}' not found in workspace '{store.name}'. "
        f"`amlemu data list --name {name}` lists its versions."
    )


def set_archived(
    store: WorkspaceStore, name: str, archived: bool, version: str | None = None, label: str | None = None
) -> None:
    """Archive (or restore) one version, or with no version and label the whole data asset."""
    if version or label:
        record = get(store, name, version, label)
        if not archived and _container_archived(store, name):
            raise ValidationError(
                f"Data asset '{name}' is archived as a whole, so one version cannot be restored alone (as on "
                f"Azure). Restore the asset: `amlemu data restore --name {name}` (ml_client.data.restore(name))."
            )
        store.put_asset(KIND, name, record["version"], {**_body(record), "is_archived": archived})
        return
    if not versions(store, name):
        latest(store, name)  # raises: the asset does not exist
    store.put_asset(CONTAINER_KIND, name, _CONTAINER_VERSION, {"is_archived": archived})


# -- references --------------------------------------------------------------------------------------
def reference(store: WorkspaceStore, text: str) -> dict[str, Any]:
    """The version ``azureml:<name>:<version>``, ``azureml:<name>@latest`` or its ARM id names."""
    match = _REFERENCE.match(text) or _ARM_REFERENCE.match(text)
    if not match:
        raise ValidationError(
            f"'{text}' is not a data asset reference. Write azureml:<name>:<version> or azureml:<name>@latest."
        )
    found = match.groupdict()
    if found.get("workspace") and found["workspace"] != store.name:
        raise ValidationError(f"'{text}' is in workspace '{found['workspace']}', but this is '{store.name}'.")
    if not found.get("version") and not found.get("label"):
        raise ValidationError(
            f"'{text}' names no version. Write azureml:{found['name']}:<version> or azureml:{found['name']}@latest."
        )
    return get(store, found["name"], found.get("version"), found.get("label"))


def local_path(store: WorkspaceStore, record: dict[str, Any]) -> Path:
    """Where a data version's data is on this machine; ValidationError when it is remote (a URL)."""
    path = record["path"]
    if not paths.is_datastore_uri(path):
        raise ValidationError(
            f"Data asset '{record['name']}' version '{record['version']}' points to remote data '{path}', which "
            "the local emulator cannot fetch (it works offline). Register a local copy as a new version "
            f"(`amlemu data create --name {record['name']} --path ./local-copy`) and use that."
        )
    return paths.local(store, paths.parse(store, path))
