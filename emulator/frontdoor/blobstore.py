"""The blob service's state and rules, apart from HTTP: containers as folders, what it keeps of each blob, SASs.

A container *is* a folder of a workspace: a blob datastore's container is the datastore's
folder (:mod:`emulator.data.datastores`, ``<workspace>/datastores/<name>/``), and a pending
upload's container (a code snapshot, see :mod:`.codes`) is ``<workspace>/uploads/<id>/``. One
storage account serves every workspace, so container names are unique per workspace: the engine
names them after the workspace's guid (``azureml-blobstore-<guid>``, ``upload-<guid>-<id>``);
``workspaceartifactstore``'s ``azureml`` container is found by the workspace's own account name.

What the service keeps besides the bytes (content type, MD5, ``x-ms-meta-*`` metadata, which
azure-ai-ml reads to know an upload completed; uncommitted blocks) lives in
``<workspace>/.blob-service/<container>/``, outside the container's folder: never listed, never
seen by a job that reads the folder. A record names the size and mtime of the file it describes,
so a file the engine rewrites loses stale metadata, as an overwritten blob does.

A SAS is issued and verified here (:func:`issue_sas`, :func:`verify_sas`): HMAC-SHA256 under a
key derived from the front door's token secret, Azure's fields (``sv sp st se sr sdd spr sig``),
scoped to a container, one blob or a directory.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from emulator import config, naming
from emulator.data import datastores, paths
from emulator.errors import ValidationError
from emulator.frontdoor import jobstorage, settings, tokens
from emulator.store import WorkspaceStore, open_store

SAS_VERSION = "2021-08-06"
#: the service's own records, in the workspace folder (beside ``datastores/``, never inside a container)
STATE_DIR = ".blob-service"
UPLOADS_DIR = "uploads"
#: the host suffix of host-style URLs (``<account>.blob.<suffix>``), reached through the proxy
BLOB_HOST_SUFFIX = f".blob.{settings.STORAGE_SUFFIX}"
_UPLOAD = re.compile(r"^upload-(?P<guid>[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})-(?P<id>[0-9a-f]{12})$")


class BlobError(Exception):
    """A refusal as the blob service answers it: HTTP status, Azure's error code (``x-ms-error-code``), message."""

    def __init__(self, status: int, code: str, message: str, detail: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail


def not_found(what: str, name: str) -> BlobError:
    code = "ContainerNotFound" if what == "container" else "BlobNotFound"
    return BlobError(404, code, f"The specified {what} does not exist: '{name}'.")


# -- containers --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Container:
    """A container and where it lives: its blobs in ``folder``, the service's records of them in ``state``; a
    datastore's container names the ``datastore`` (whose job areas it also serves: :mod:`.jobstorage`)."""

    name: str
    workspace: str
    folder: Path
    state: Path
    datastore: str | None = None

    def blob_path(self, blob: str) -> Path:
        """The file of ``blob``, refused (400 InvalidResourceName) when the name would leave the folder."""
        if not blob or blob.endswith("/"):
            raise BlobError(400, "InvalidResourceName", f"'{blob}' is not a blob name (empty, or ends with '/').")
        try:
            return naming.confined_join(self.folder, blob)
        except ValidationError as exc:
            raise BlobError(400, "InvalidResourceName", f"The blob name is refused: {exc.message}") from None

    def record_path(self, blob: str) -> Path:
        return self.state / "meta" / f"{hashlib.sha256(blob.encode()).hexdigest()}.json"

    def blocks_dir(self, blob: str) -> Path:
        return self.state / "blocks" / hashlib.sha256(blob.encode()).hexdigest()

    def scratch(self) -> Path:
        """A new temporary file on the container's file system (an upload lands there, then is moved in)."""
        folder = config.private_dir(self.state / "tmp")
        return folder / uuid.uuid4().hex


def _container(name: str, workspace: str, folder: Path, datastore: str | None = None) -> Container:
    store = open_store(workspace)
    return Container(name, workspace, config.private_dir(folder), store.root / STATE_DIR / name, datastore)


_index: dict[str, list[tuple[str, str, str]]] = {}  # container -> [(account, workspace, datastore)]
_index_lock = threading.Lock()


def _workspace_names() -> list[str]:
    root = config.home() / "workspaces"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and naming.is_valid("workspace", p.name))


def _rebuild_index() -> None:
    index: dict[str, list[tuple[str, str, str]]] = {}
    for workspace in _workspace_names():
        for ds in datastores.list_datastores(open_store(workspace)):
            if ds.container_name:
                index.setdefault(ds.container_name, []).append((ds.account_name, workspace, ds.name))
    with _index_lock:
        _index.clear()
        _index.update(index)


def _datastore_container(name: str, account: str | None) -> Container | None:
    for attempt in range(2):
        with _index_lock:
            found = list(_index.get(name, ()))
        if attempt == 0 and (not found or (account and all(f[0] != account for f in found))):
            _rebuild_index()  # a workspace made since the last look (the name alone may be another workspace's)
            continue
        mine = [f for f in found if f[0] == account] or (found if len(found) == 1 else [])
        if len(mine) == 1:
            _, workspace, datastore = mine[0]
            return _container(name, workspace, datastores.folder(open_store(workspace), datastore), datastore)
        if len(found) > 1:
            raise BlobError(
                404,
                "ContainerNotFound",
                f"Container '{name}' exists in several workspaces ({', '.join(sorted(f[1] for f in found))}); "
                "reach it through its workspace's own account (the datastore's account_name: "
                f"https://<account_name>{BLOB_HOST_SUFFIX}/{name}).",
            )
        return None
    return None


def _workspace_of_guid(guid: str) -> str | None:
    for workspace in _workspace_names():
        if datastores.workspace_guid(open_store(workspace)) == guid:
            return workspace
    return None


def container(name: str, account: str | None = None) -> Container:
    """The container ``name`` (of storage account ``account``, which picks among workspaces when the name alone
    does not): a datastore's container or a pending upload's. 404 ContainerNotFound otherwise."""
    upload = _UPLOAD.match(name)
    if upload:
        workspace = _workspace_of_guid(upload["guid"])
        folder = open_store(workspace).root / UPLOADS_DIR / upload["id"] if workspace else None
        if folder is not None and folder.is_dir():  # made by new_upload only
            return _container(name, workspace, folder)
    else:
        found = _datastore_container(name, account)
        if found is not None:
            return found
    raise not_found("container", name)


def new_upload(store: WorkspaceStore) -> Container:
    """A new, empty container for one pending upload (Azure's temporary blob reference), in ``store``'s workspace."""
    upload_id = secrets.token_hex(6)
    name = f"upload-{datastores.workspace_guid(store)}-{upload_id}"
    return _container(name, store.name, store.root / UPLOADS_DIR / upload_id)


def _split_url(url: str) -> tuple[str, str, str] | None:
    """(account, container, blob) of a URL this blob service answers, or None."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    path = parts.path.lstrip("/")
    if host.endswith(BLOB_HOST_SUFFIX):
        account = host.removesuffix(BLOB_HOST_SUFFIX)
    elif host in ("127.0.0.1", "localhost", "::1") and path.startswith(f"{settings.STORAGE_ACCOUNT}/"):
        account, path = settings.STORAGE_ACCOUNT, path.removeprefix(f"{settings.STORAGE_ACCOUNT}/")
    else:
        return None
    name, _, blob = path.partition("/")
    return account, name, blob.strip("/")


def local_path(store: WorkspaceStore, uri: str) -> Path:
    """The local file or folder a storage URI of ``store``'s workspace names (whether or not it exists yet).

    Takes ``azureml://datastores/<d>/paths/<p>`` and its long form (``azureml://subscriptions/.../workspaces/<w>/
    datastores/<d>/paths/<p>``: :func:`emulator.data.paths.parse` and :func:`emulator.data.paths.local`), and the
    blob URLs this service answers (``https://<account>.blob.<suffix>/<container>/<path>``, path-style on
    127.0.0.1). A name in a job's area is the job's own file (:mod:`.jobstorage`). ValidationError for anything
    else, or another workspace's storage."""
    if paths.is_datastore_uri(uri):
        ref = paths.parse(store, uri)
        return jobstorage.resolve(store, ref.datastore, ref.path) or paths.local(store, ref)
    split = _split_url(uri)
    if split is None:
        raise ValidationError(
            f"'{uri}' is not storage amlemu serves: use azureml://datastores/<datastore>/paths/<path> or a blob URL "
            f"of this front door (https://<account>{BLOB_HOST_SUFFIX}/<container>/<path>)."
        )
    account, name, blob = split
    try:
        found = container(name, account)
        target = read_path(found, blob) if blob else found.folder
    except BlobError as exc:
        raise ValidationError(f"'{uri}': {exc.message}") from None
    if found.workspace != store.name:
        raise ValidationError(f"'{uri}' is storage of workspace '{found.workspace}', not of '{store.name}'.")
    return target


# -- shared access signatures ------------------------------------------------------------------------------------
SAS_FIELDS = ("sv", "sp", "st", "se", "sr", "sdd", "spr", "sig")


def _sas_key() -> bytes:
    # derived from the token secret (0600 in settings.folder()), bound to this use: a SAS is never a token's signature
    return hmac.new(tokens.signing_key().encode(), b"amlemu blob service SAS", hashlib.sha256).digest()


def _sign(fields: dict[str, str], resource: str) -> str:
    text = "\n".join(
        [fields.get("sp", ""), fields.get("st", ""), fields.get("se", ""), resource, fields.get("sr", "")]
        + [fields.get("sdd", ""), fields.get("sv", ""), fields.get("spr", "")]
    )
    return base64.b64encode(hmac.new(_sas_key(), text.encode(), hashlib.sha256).digest()).decode()


def _stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def issue_sas(container_name: str, permissions: str = "racwdl", hours: float = 1.0, directory: str = "") -> str:
    """A SAS query string (no ``?``) for container ``container_name``, or only for blobs under ``directory`` inside it,
    valid ``hours`` from now. Permissions are Azure's letters: r(ead) a(dd) c(reate) w(rite) d(elete) l(ist)."""
    now = dt.datetime.now(dt.UTC)
    fields = {
        "sv": SAS_VERSION,
        "sp": "".join(p for p in "racwdl" if p in permissions),
        "st": _stamp(now - dt.timedelta(minutes=5)),
        "se": _stamp(now + dt.timedelta(hours=hours)),
        "spr": "https",
    }
    if directory and directory.strip("/"):
        directory = directory.strip("/")
        fields.update(sr="d", sdd=str(len(directory.split("/"))))
        resource = f"/blob/{container_name}/{directory}"
    else:
        fields["sr"] = "c"
        resource = f"/blob/{container_name}"
    fields["sig"] = _sign(fields, resource)
    return urlencode(fields)


def sas_resource(fields: dict[str, str], name: str, inside: str) -> str:
    """What a SAS with ``fields`` must have been signed for to cover ``inside`` (a blob's name, or a listing's
    prefix) of container ``name``: the container, the blob, or the directory ``sdd`` segments deep."""
    sr = fields.get("sr")
    if sr == "c":
        return f"/blob/{name}"
    if sr == "b" and inside:
        return f"/blob/{name}/{inside}"
    if sr == "d" and fields.get("sdd", "").isdigit() and int(fields["sdd"]) > 0:
        depth = int(fields["sdd"])
        segments = inside.split("/")
        if len(segments) > depth:  # the request is for something inside the directory, not the directory itself
            return f"/blob/{name}/{'/'.join(segments[:depth])}"
    detail = "The SAS does not cover this resource."
    raise BlobError(403, "AuthenticationFailed", "Server failed to authenticate the request.", detail)


def verify_sas(fields: dict[str, str], name: str, inside: str) -> str:
    """The permissions of a SAS (its query ``fields``) used on ``inside`` of container ``name``, or 403
    AuthenticationFailed: tampered, expired, or signed for another resource."""
    fields = {k: fields.get(k, "") for k in SAS_FIELDS}
    failed = "Server failed to authenticate the request. Make sure the SAS is the one amlemu issued, whole."
    given = fields.pop("sig")
    if not hmac.compare_digest(given.encode(), _sign(fields, sas_resource(fields, name, inside)).encode()):
        raise BlobError(403, "AuthenticationFailed", failed, "Signature did not match.")
    try:
        start = dt.datetime.fromisoformat(fields["st"]) if fields["st"] else None
        expiry = dt.datetime.fromisoformat(fields["se"])
    except ValueError:
        raise BlobError(403, "AuthenticationFailed", failed, "The SAS start or expiry time is not ISO 8601.") from None
    now = dt.datetime.now(dt.UTC)
    if now > expiry or (start is not None and now < start):
        raise BlobError(
            403,
            "AuthenticationFailed",
            failed + " Ask for a new SAS (listSecrets on the datastore, or startPendingUpload).",
            f"Signature not valid in the specified time frame: Start [{fields['st']}] - Expiry [{fields['se']}] - "
            f"Current [{_stamp(now)}]",
        )
    return fields["sp"]


# -- what the service keeps of a blob ---------------------------------------------------------------------------
def read_record(c: Container, blob: str, stat: os.stat_result) -> dict:
    """What the service knows of a blob beyond its bytes; defaults when none is kept or the file changed since."""
    try:
        record = json.loads(c.record_path(blob).read_text())
    except (OSError, ValueError):
        record = {}
    if record.get("size") != stat.st_size or record.get("mtime_ns") != stat.st_mtime_ns:
        record = {}
    return {
        "content_type": record.get("content_type") or "application/octet-stream",
        "content_md5": record.get("content_md5"),
        "metadata": record.get("metadata") or {},
        "created": record.get("created") or stat.st_mtime,
        "modified": max(stat.st_mtime, record.get("modified") or 0),
    }


def write_record(c: Container, blob: str, target: Path, **fields) -> dict:
    stat = target.stat()
    record = {"blob": blob, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "modified": time.time(), **fields}
    path = c.record_path(blob)
    config.private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)
    return record


def etag(stat: os.stat_result, record: dict) -> str:
    seed = f"{stat.st_mtime_ns}:{stat.st_size}:{json.dumps(record['metadata'], sort_keys=True)}"
    return f'"0x{hashlib.sha256(seed.encode()).hexdigest()[:15].upper()}"'


# -- where a blob is ---------------------------------------------------------------------------------------------
def _job_file(c: Container, blob: str) -> Path | None:
    """The job's own file ``blob`` names when it lies in a job's area of the container's datastore, else None."""
    if c.datastore is None:
        return None
    try:
        return jobstorage.resolve(open_store(c.workspace), c.datastore, blob)
    except ValidationError as exc:
        raise BlobError(400, "InvalidResourceName", f"The blob name is refused: {exc.message}") from None


def read_path(c: Container, blob: str) -> Path:
    """The file ``blob`` is read from: a job's own file in a job's area, else the container's."""
    return _job_file(c, blob) or c.blob_path(blob)


def write_path(c: Container, blob: str) -> Path:
    """The file a write of ``blob`` goes to; a job's own files are read-only here (the job writes them)."""
    if _job_file(c, blob) is not None:
        raise BlobError(
            501,
            "NotEmulated",
            f"'{blob}' is a file of a job's outputs, which amlemu serves read-only from the job's folder: writing or "
            "deleting it through the blob service is not emulated. Write the job's outputs from the job itself.",
        )
    return c.blob_path(blob)


def properties(c: Container, blob: str) -> tuple[Path, os.stat_result, dict] | None:
    if blob.endswith("/"):  # a folder's name, no file's: Azure answers 404 (azure-ai-ml's exists("<dir>/") asks)
        return None
    path = read_path(c, blob)
    try:
        stat = path.stat()
    except OSError:
        return None
    if not path.is_file():
        return None
    return path, stat, read_record(c, blob, stat)


def commit(c: Container, blob: str, tmp: Path, fields: dict, exclusive: bool) -> tuple[os.stat_result, dict]:
    """Move an upload (the file ``tmp``) into place as ``blob`` and record ``fields`` of it; ``exclusive``: refused
    (409 BlobAlreadyExists) if the blob exists, even one a twin upload put there a moment ago."""
    target = write_path(c, blob)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        c.blob_path(blob)  # again: the folders just made are real folders inside the container
        if target.is_dir():
            raise IsADirectoryError(str(target))
        if exclusive:
            os.link(tmp, target)  # fails if the blob exists: no overwrite between the check and here
            tmp.unlink()
        else:
            os.replace(tmp, target)
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise BlobError(409, "BlobAlreadyExists", "The specified blob already exists.") from None
    except (IsADirectoryError, NotADirectoryError):
        tmp.unlink(missing_ok=True)
        raise BlobError(
            409,
            "PathConflict",
            f"'{blob}' cannot be a blob here: it, or a folder above it, is the other kind (a folder of blobs and a "
            "blob cannot share a name in amlemu, whose containers are folders).",
        ) from None
    record = write_record(c, blob, target, created=time.time(), **fields)
    return target.stat(), record


def _files(root: Path, prefix: str, area: str = "") -> list[str]:
    """The names (``area`` + their path under ``root``) of the files under ``root`` that begin with ``prefix``; the
    walk starts at the deepest folder the prefix names, and keeps symlinks only when they stay inside ``root``."""
    inner = prefix[len(area) :] if len(prefix) > len(area) else ""
    base = inner.rpartition("/")[0]
    try:
        start = naming.confined_join(root, base) if base else root
    except ValidationError:
        return []
    if not start.is_dir():
        return []
    names = []
    for folder, dirs, files in os.walk(start):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
        for file in files:
            full = os.path.join(folder, file)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if os.path.islink(full):
                try:
                    naming.confined_join(root, rel)
                except ValidationError:
                    continue
            name = area + rel
            if os.path.isfile(full) and name.startswith(prefix):
                names.append(name)
    return names


def blob_names(c: Container, prefix: str) -> list[str]:
    """Every blob name in the container under ``prefix``: its folder's files, and those of the job areas the prefix
    reaches (:func:`.jobstorage.areas`; a name in both is the job's file, as :func:`read_path` reads it)."""
    names = set(_files(c.folder, prefix))
    if c.datastore is not None:
        for area, root in jobstorage.areas(open_store(c.workspace), c.datastore, prefix):
            names.update(_files(root, prefix, area))
    return sorted(names)
