"""The blob service: what azure-storage-blob 12.x sends, answered from the workspace's own folders.

Why by hand, and not Azurite: Azurite keeps blobs in its own extent store, so every file the
engine writes (job outputs, models) would have to be copied in, and every upload copied out
before a job could read it. Here a container *is* a folder of the workspace, so there is one
copy: ``workspaceblobstore``'s container is ``<workspace>/datastores/workspaceblobstore/``
(:mod:`emulator.data.datastores`), and a pending upload's container (a code snapshot, see
:mod:`.codes`) is ``<workspace>/uploads/<id>/``. The subset is what azure-ai-ml and
azure-storage-blob use for assets: Put Blob, Put Block + Put Block List, Get Blob (ranges),
Get Blob Properties, Get/Set Blob Metadata, Delete Blob, List Blobs (prefix, delimiter,
marker, ``include=metadata``), Get Container Properties. Anything else answers 501 NotEmulated.

Two URL styles reach it on the TLS listener: path-style on the loopback address,
``https://127.0.0.1:<tls port>/<STORAGE_ACCOUNT>/<container>/<blob>``, and host-style through
the CONNECT proxy, ``https://<account>.blob.<STORAGE_SUFFIX>/<container>/<blob>`` (the Host header
decides, before any ARM route). One storage account serves every workspace, so container names
are unique per workspace: the engine names them after the workspace's guid
(``azureml-blobstore-<guid>``); ``workspaceartifactstore``'s ``azureml`` container is found by the
workspace's own account name.

What the service keeps besides the blobs (content type, MD5, ``x-ms-meta-*`` metadata, which
azure-ai-ml reads to know an upload completed, and uncommitted blocks) lives in
``<workspace>/.blob-service/<container>/``, outside the container's folder: never listed, never
seen by a job that reads the folder. A record names the file's size and mtime it describes, so a
file the engine rewrites loses stale metadata, as an overwritten blob does.

Auth: a SAS this front door issued (:func:`issue_sas`; HMAC-SHA256 under a key derived from the
token secret; fields ``sv sp st se sr sdd sig``; scoped to a container, one blob or a directory)
or an ``Authorization: Bearer`` token for storage (``https://storage.azure.com/``). Anything else
answers as Azure's blob service does, in its XML error shape.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree

from flask import Blueprint, Response, request
from werkzeug.http import http_date

from emulator import config, naming
from emulator.data import datastores, paths
from emulator.errors import EmulatorError, ValidationError
from emulator.frontdoor import resources, settings, tokens
from emulator.store import WorkspaceStore, open_store

blueprint = Blueprint("blobs", __name__)
log = logging.getLogger("amlemu.frontdoor.blobs")

SERVICE_VERSION = "2025-01-05"
SAS_VERSION = "2021-08-06"
STORAGE_AUDIENCE = "https://storage.azure.com"
#: the service's own records, in the workspace folder (beside ``datastores/``, never inside a container)
STATE_DIR = ".blob-service"
UPLOADS_DIR = "uploads"
#: the host suffix of host-style URLs (``<account>.blob.<suffix>``), reached through the proxy
BLOB_HOST_SUFFIX = f".blob.{settings.STORAGE_SUFFIX}"
CHUNK = 1 << 20
MAX_BLOCK_LIST = 8 << 20
_UPLOAD = re.compile(r"^upload-(?P<guid>[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})-(?P<id>[0-9a-f]{12})$")
_METADATA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,255}$", re.ASCII)
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class BlobError(Exception):
    """An answer in the blob service's error shape (XML body, ``x-ms-error-code`` header)."""

    def __init__(self, status: int, code: str, message: str, detail: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail

    def response(self) -> Response:
        root = ElementTree.Element("Error")
        ElementTree.SubElement(root, "Code").text = self.code
        ElementTree.SubElement(root, "Message").text = f"{self.message}\nRequestId:{uuid.uuid4()}"
        if self.detail:
            ElementTree.SubElement(root, "AuthenticationErrorDetail").text = self.detail
        body = b"" if request.method == "HEAD" or self.status == 304 else _xml(root)
        headers = _headers({"x-ms-error-code": self.code, "Content-Type": "application/xml"})
        return Response(body, status=self.status, headers=headers)


def _not_found(what: str, name: str) -> BlobError:
    code = "ContainerNotFound" if what == "container" else "BlobNotFound"
    return BlobError(404, code, f"The specified {what} does not exist: '{name}'.")


# -- containers --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Container:
    """A container and where it lives: its blobs in ``folder``, the service's records of them in ``state``."""

    name: str
    workspace: str
    folder: Path
    state: Path

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


def _container(name: str, workspace: str, folder: Path) -> Container:
    store = open_store(workspace)
    return Container(name, workspace, config.private_dir(folder), store.root / STATE_DIR / name)


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
        if not found and attempt == 0:
            _rebuild_index()  # a workspace made since the last look
            continue
        mine = [f for f in found if f[0] == account] or (found if len(found) == 1 else [])
        if len(mine) == 1:
            _, workspace, datastore = mine[0]
            return _container(name, workspace, datastores.folder(open_store(workspace), datastore))
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
        if workspace is not None:
            return _container(name, workspace, open_store(workspace).root / UPLOADS_DIR / upload["id"])
    else:
        found = _datastore_container(name, account)
        if found is not None:
            return found
    raise _not_found("container", name)


def new_upload(store: WorkspaceStore) -> Container:
    """A new, empty container for one pending upload (Azure's temporary blob reference), in ``store``'s workspace."""
    upload_id = secrets.token_hex(6)
    name = f"upload-{datastores.workspace_guid(store)}-{upload_id}"
    return _container(name, store.name, store.root / UPLOADS_DIR / upload_id)


# -- URLs and local paths ------------------------------------------------------------------------------------------
def container_url(name: str) -> str:
    """The path-style URL of container ``name`` on the loopback address (no proxy needed)."""
    return f"{resources.front().https_url}/{settings.STORAGE_ACCOUNT}/{name}"


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
    127.0.0.1). ValidationError for anything else, or another workspace's storage."""
    if paths.is_datastore_uri(uri):
        return paths.local(store, paths.parse(store, uri))
    split = _split_url(uri)
    if split is None:
        raise ValidationError(
            f"'{uri}' is not storage amlemu serves: use azureml://datastores/<datastore>/paths/<path> or a blob URL "
            f"of this front door (https://<account>{BLOB_HOST_SUFFIX}/<container>/<path>)."
        )
    account, name, blob = split
    try:
        found = container(name, account)
        target = found.blob_path(blob) if blob else found.folder
    except BlobError as exc:
        raise ValidationError(f"'{uri}': {exc.message}") from None
    if found.workspace != store.name:
        raise ValidationError(f"'{uri}' is storage of workspace '{found.workspace}', not of '{store.name}'.")
    return target


# -- shared access signatures ------------------------------------------------------------------------------------
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


def _sas_resource(fields: dict[str, str], name: str, blob: str, listing: bool) -> str:
    sr = fields.get("sr")
    if sr == "c":
        return f"/blob/{name}"
    if sr == "b" and blob:
        return f"/blob/{name}/{blob}"
    if sr == "d" and fields.get("sdd", "").isdigit() and int(fields["sdd"]) > 0:
        depth = int(fields["sdd"])
        inside = request.args.get("prefix", "") if listing else blob
        segments = inside.split("/")
        if len(segments) > depth:  # the request is for something inside the directory, not the directory itself
            return f"/blob/{name}/{'/'.join(segments[:depth])}"
    detail = "The SAS does not cover this resource."
    raise BlobError(403, "AuthenticationFailed", "Server failed to authenticate the request.", detail)


def _check_sas(name: str, blob: str, listing: bool) -> str:
    """The permissions of the request's SAS, or 403 AuthenticationFailed (tampered, expired, another resource)."""
    fields = {k: request.args.get(k, "") for k in ("sv", "sp", "st", "se", "sr", "sdd", "spr", "sig")}
    failed = "Server failed to authenticate the request. Make sure the SAS is the one amlemu issued, whole."
    given = fields.pop("sig")
    if not hmac.compare_digest(given.encode(), _sign(fields, _sas_resource(fields, name, blob, listing)).encode()):
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


def _authorize(name: str, blob: str, permission: str, listing: bool) -> None:
    authorization = request.headers.get("Authorization")
    if authorization:
        if not authorization.lower().startswith("bearer "):
            raise BlobError(
                403,
                "AuthenticationFailed",
                "amlemu's storage has no account keys (SharedKey): use the SAS that the datastore's listSecrets "
                "answers, or a bearer token for https://storage.azure.com/.",
            )
        try:
            claims = tokens.verify(authorization, resources.front())
        except tokens.TokenRefused as exc:
            raise BlobError(401, "InvalidAuthenticationInfo", str(exc)) from None
        if str(claims.get("aud", "")).rstrip("/") != STORAGE_AUDIENCE:
            raise BlobError(
                401,
                "InvalidAuthenticationInfo",
                f"The token's audience is '{claims.get('aud')}', not storage: ask for {STORAGE_AUDIENCE}/.default.",
            )
        return
    if "sig" not in request.args:
        raise BlobError(
            401,
            "NoAuthenticationInformation",
            "The request carries no SAS and no Authorization header. Use the SAS that the datastore's listSecrets "
            "answers (ml_client.datastores.get(name, include_secrets=True)), or a bearer token for storage.",
        )
    if permission not in _check_sas(name, blob, listing):
        raise BlobError(
            403,
            "AuthorizationPermissionMismatch",
            f"This request is not authorized to perform this operation using this permission (needs '{permission}').",
        )


# -- blob records ------------------------------------------------------------------------------------------------
def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "x-ms-request-id": str(uuid.uuid4()),
        "x-ms-version": request.headers.get("x-ms-version", SERVICE_VERSION),
        **(extra or {}),
    }


def _xml(root: ElementTree.Element) -> bytes:
    return b'<?xml version="1.0" encoding="utf-8"?>' + ElementTree.tostring(root, encoding="utf-8")


def _record(c: Container, blob: str, stat: os.stat_result) -> dict:
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


def _write_record(c: Container, blob: str, target: Path, **fields) -> dict:
    stat = target.stat()
    record = {"blob": blob, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "modified": time.time(), **fields}
    path = c.record_path(blob)
    config.private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)
    return record


def _etag(stat: os.stat_result, record: dict) -> str:
    seed = f"{stat.st_mtime_ns}:{stat.st_size}:{json.dumps(record['metadata'], sort_keys=True)}"
    return f'"0x{hashlib.sha256(seed.encode()).hexdigest()[:15].upper()}"'


def _properties(c: Container, blob: str) -> tuple[Path, os.stat_result, dict] | None:
    path = c.blob_path(blob)
    try:
        stat = path.stat()
    except OSError:
        return None
    if not path.is_file():
        return None
    return path, stat, _record(c, blob, stat)


def _blob_headers(stat: os.stat_result, record: dict) -> dict[str, str]:
    headers = {
        "ETag": _etag(stat, record),
        "Last-Modified": http_date(record["modified"]),
        "x-ms-creation-time": http_date(record["created"]),
        "x-ms-blob-type": "BlockBlob",
        "x-ms-lease-status": "unlocked",
        "x-ms-lease-state": "available",
        "x-ms-server-encrypted": "true",
        "Accept-Ranges": "bytes",
    }
    headers.update({f"x-ms-meta-{k}": v for k, v in record["metadata"].items()})
    return headers


def _request_metadata() -> dict[str, str]:
    """The request's ``x-ms-meta-*`` headers, names as sent (werkzeug's environ drops names with '_', which Azure
    metadata names carry: the server keeps the raw headers for this)."""
    raw = request.environ.get("amlemu.raw_headers")
    items = list(raw) if raw is not None else list(request.headers.items())
    metadata = {}
    for key, value in items:
        if key.lower().startswith("x-ms-meta-"):
            name = key[len("x-ms-meta-") :]
            if not _METADATA_NAME.match(name):
                raise BlobError(400, "InvalidMetadata", f"Metadata name '{name}' is not a C# identifier.")
            metadata[name] = value
    return metadata


def _preconditions(etag: str | None) -> None:
    """If-Match / If-None-Match against the blob's current ETag (None: it does not exist)."""
    if request.headers.get("If-Modified-Since") or request.headers.get("If-Unmodified-Since"):
        raise BlobError(501, "NotEmulated", "amlemu's blob service checks If-Match and If-None-Match, not dates.")
    if_match, if_none = request.headers.get("If-Match"), request.headers.get("If-None-Match")
    if if_match and (etag is None or (if_match.strip() != "*" and etag not in if_match)):
        raise BlobError(412, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is not met.")
    if if_none and etag is not None and (if_none.strip() == "*" or etag in if_none):
        if request.method in ("GET", "HEAD"):
            raise BlobError(304, "ConditionNotMet", "Not modified.")
        code = "BlobAlreadyExists" if if_none.strip() == "*" else "ConditionNotMet"
        raise BlobError(409 if code == "BlobAlreadyExists" else 412, code, "The specified blob already exists.")


def _receive(c: Container) -> tuple[Path, bytes]:
    """The request body, streamed to a scratch file; its MD5 checked against Content-MD5 when given."""
    tmp = c.scratch()
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            while chunk := request.stream.read(CHUNK):
                digest.update(chunk)
                f.write(chunk)
        given = request.headers.get("Content-MD5")
        if given and base64.b64decode(given) != digest.digest():
            raise BlobError(400, "Md5Mismatch", "The MD5 value specified in the request did not match the body's.")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, digest.digest()


def _commit(c: Container, blob: str, tmp: Path, fields: dict) -> tuple[os.stat_result, dict]:
    """Move an upload into place (refused when If-None-Match: * and a twin got there first) and record it."""
    target = c.blob_path(blob)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        c.blob_path(blob)  # again: the folders just made are real folders inside the container
        if target.is_dir():
            raise IsADirectoryError(str(target))
        if request.headers.get("If-None-Match", "").strip() == "*":
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
    record = _write_record(c, blob, target, created=time.time(), **fields)
    return target.stat(), record


def _written(status: int, stat: os.stat_result, record: dict, md5: bytes | None = None) -> Response:
    headers = {
        "ETag": _etag(stat, record),
        "Last-Modified": http_date(record["modified"]),
        "x-ms-request-server-encrypted": "true",
        "Content-Length": "0",
    }
    if md5:
        headers["Content-MD5"] = base64.b64encode(md5).decode()
    return Response(b"", status=status, headers=_headers(headers))


# -- operations --------------------------------------------------------------------------------------------------
def _upload_fields(md5: bytes | None, metadata: dict[str, str]) -> dict:
    content_md5 = request.headers.get("x-ms-blob-content-md5") or (base64.b64encode(md5).decode() if md5 else None)
    return {
        "content_type": request.headers.get("x-ms-blob-content-type") or "application/octet-stream",
        "content_md5": content_md5,
        "metadata": metadata,
    }


def put_blob(c: Container, blob: str) -> Response:
    if request.headers.get("x-ms-copy-source"):
        raise BlobError(501, "NotEmulated", "Copy Blob is not emulated: download the source and upload it.")
    if request.headers.get("x-ms-blob-type", "BlockBlob") != "BlockBlob":
        raise BlobError(501, "NotEmulated", "Only block blobs are emulated (x-ms-blob-type: BlockBlob).")
    metadata = _request_metadata()
    current = _properties(c, blob)
    _preconditions(_etag(current[1], current[2]) if current else None)
    tmp, md5 = _receive(c)
    stat, record = _commit(c, blob, tmp, _upload_fields(md5, metadata))
    return _written(201, stat, record, md5)


def _block_file(c: Container, blob: str) -> Path:
    block_id = request.args.get("blockid", "")
    try:
        raw = base64.b64decode(block_id, validate=True)
    except ValueError:
        raw = b""
    if not raw or len(raw) > 64:
        raise BlobError(400, "InvalidQueryParameterValue", "blockid must be Base64 of at most 64 bytes.")
    return c.blocks_dir(blob) / hashlib.sha256(block_id.encode()).hexdigest()


def put_block(c: Container, blob: str) -> Response:
    c.blob_path(blob)
    destination = _block_file(c, blob)
    tmp, md5 = _receive(c)
    config.private_dir(destination.parent)
    os.replace(tmp, destination)
    headers = {"Content-MD5": base64.b64encode(md5).decode(), "x-ms-request-server-encrypted": "true"}
    return Response(b"", status=201, headers=_headers({**headers, "Content-Length": "0"}))


def _block_ids() -> list[str]:
    body = request.stream.read(MAX_BLOCK_LIST + 1)
    if len(body) > MAX_BLOCK_LIST or b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise BlobError(400, "InvalidXmlDocument", "The block list is too large or declares a DTD.")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise BlobError(400, "InvalidXmlDocument", f"The block list is not XML: {exc}.") from None
    ids = []
    for entry in root:
        if entry.tag == "Committed":
            raise BlobError(
                400, "InvalidBlockList", "amlemu keeps no committed block lists: commit uncommitted (Latest) blocks."
            )
        if entry.tag not in ("Latest", "Uncommitted"):
            raise BlobError(400, "InvalidXmlNodeValue", f"Unknown block list entry <{entry.tag}>.")
        ids.append(entry.text or "")
    return ids


def put_block_list(c: Container, blob: str) -> Response:
    metadata = _request_metadata()
    current = _properties(c, blob)
    _preconditions(_etag(current[1], current[2]) if current else None)
    blocks = c.blocks_dir(blob)
    tmp = c.scratch()
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            for block_id in _block_ids():
                part = blocks / hashlib.sha256(block_id.encode()).hexdigest()
                if not part.is_file():
                    raise BlobError(400, "InvalidBlockList", f"Block '{block_id}' was not uploaded (Put Block).")
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, CHUNK)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    stat, record = _commit(c, blob, tmp, _upload_fields(None, metadata))
    shutil.rmtree(blocks, ignore_errors=True)
    return _written(201, stat, record)


def _existing(c: Container, blob: str) -> tuple[Path, os.stat_result, dict]:
    found = _properties(c, blob)
    if found is None:
        raise _not_found("blob", blob)
    return found


def set_metadata(c: Container, blob: str) -> Response:
    metadata = _request_metadata()
    path, stat, record = _existing(c, blob)
    _preconditions(_etag(stat, record))
    fields = {k: record[k] for k in ("content_type", "content_md5", "created")}
    record = _write_record(c, blob, path, **fields, metadata=metadata)
    return _written(200, path.stat(), record)


def get_metadata(c: Container, blob: str) -> Response:
    _, stat, record = _existing(c, blob)
    headers = _blob_headers(stat, record)
    keep = {k: v for k, v in headers.items() if k.startswith("x-ms-meta-") or k in ("ETag", "Last-Modified")}
    return Response(b"", status=200, headers=_headers({**keep, "Content-Length": "0"}))


def _range(size: int) -> tuple[int, int] | None:
    """The request's byte range (inclusive), or None for the whole blob; 416 InvalidRange beyond its end."""
    text = request.headers.get("x-ms-range") or request.headers.get("Range")
    if not text:
        return None
    match = _RANGE.match(text.strip())
    if not match:
        raise BlobError(400, "InvalidHeaderValue", f"Range '{text}' is not 'bytes=<start>-[<end>]'.")
    start = int(match[1])
    end = min(int(match[2]) if match[2] else size - 1, size - 1)
    if start >= size or end < start:
        raise BlobError(416, "InvalidRange", "The range specified is invalid for the current size of the resource.")
    return start, end


def _stream(path: Path, start: int, length: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(start)
        while length > 0 and (chunk := f.read(min(CHUNK, length))):
            length -= len(chunk)
            yield chunk


def get_blob(c: Container, blob: str) -> Response:
    path, stat, record = _existing(c, blob)
    _preconditions(_etag(stat, record))
    headers = _blob_headers(stat, record)
    headers["Content-Type"] = record["content_type"]
    try:
        wanted = _range(stat.st_size)
    except BlobError as exc:
        if exc.status == 416:
            exc_response = exc.response()
            exc_response.headers["Content-Range"] = f"bytes */{stat.st_size}"
            return exc_response
        raise
    status, start, length = 200, 0, stat.st_size
    if wanted is not None:
        status, start, length = 206, wanted[0], wanted[1] - wanted[0] + 1
        headers["Content-Range"] = f"bytes {wanted[0]}-{wanted[1]}/{stat.st_size}"
        if record["content_md5"]:
            headers["x-ms-blob-content-md5"] = record["content_md5"]
        if request.headers.get("x-ms-range-get-content-md5", "").lower() == "true":
            digest = hashlib.md5(b"".join(_stream(path, start, length)), usedforsecurity=False).digest()
            headers["Content-MD5"] = base64.b64encode(digest).decode()
    elif record["content_md5"]:
        headers["Content-MD5"] = record["content_md5"]
    headers["Content-Length"] = str(length)
    body = [] if request.method == "HEAD" else _stream(path, start, length)
    return Response(body, status=status, headers=_headers(headers), direct_passthrough=True)


def delete_blob(c: Container, blob: str) -> Response:
    path, stat, record = _existing(c, blob)
    _preconditions(_etag(stat, record))
    path.unlink()
    c.record_path(blob).unlink(missing_ok=True)
    return Response(b"", status=202, headers=_headers({"x-ms-delete-type-permanent": "true", "Content-Length": "0"}))


def container_properties(c: Container, blob: str) -> Response:
    stat = c.folder.stat()
    headers = {
        "ETag": f'"0x{stat.st_mtime_ns:X}"',
        "Last-Modified": http_date(stat.st_mtime),
        "x-ms-lease-status": "unlocked",
        "x-ms-lease-state": "available",
        "x-ms-has-immutability-policy": "false",
        "x-ms-has-legal-hold": "false",
        "x-ms-default-encryption-scope": "$account-encryption-key",
        "x-ms-deny-encryption-scope-override": "false",
        "Content-Length": "0",
    }
    return Response(b"", status=200, headers=_headers(headers))


def create_container(c: Container, blob: str) -> Response:
    raise BlobError(409, "ContainerAlreadyExists", f"The specified container already exists: '{c.name}'.")


def _names(c: Container, prefix: str) -> list[str]:
    """Every blob name in the container under ``prefix``'s folder (files only, symlinks only when they stay inside)."""
    base = prefix.rpartition("/")[0]
    try:
        start = naming.confined_join(c.folder, base) if base else c.folder
    except ValidationError:
        return []
    if not start.is_dir():
        return []
    names = []
    for folder, dirs, files in os.walk(start):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
        for file in files:
            full = os.path.join(folder, file)
            rel = os.path.relpath(full, c.folder).replace(os.sep, "/")
            if os.path.islink(full):
                try:
                    naming.confined_join(c.folder, rel)
                except ValidationError:
                    continue
            if os.path.isfile(full) and rel.startswith(prefix):
                names.append(rel)
    return sorted(names)


def list_blobs(c: Container, blob: str) -> Response:
    args = request.args
    prefix, delimiter, marker = args.get("prefix", ""), args.get("delimiter", ""), args.get("marker", "")
    try:
        max_results = min(max(int(args.get("maxresults", "5000")), 1), 5000)
    except ValueError:
        raise BlobError(400, "InvalidQueryParameterValue", "maxresults must be a number.") from None
    with_metadata = "metadata" in args.get("include", "").split(",")
    entries: list[tuple[str, bool]] = []
    next_marker = ""
    for name in _names(c, prefix):
        if marker and (name <= marker or (delimiter and marker.endswith(delimiter) and name.startswith(marker))):
            continue
        entry = (name, False)
        if delimiter and delimiter in name[len(prefix) :]:
            rest = name[len(prefix) :]
            entry = (prefix + rest[: rest.index(delimiter) + len(delimiter)], True)
            if entries and entries[-1] == entry:
                continue
        if len(entries) == max_results:
            next_marker = entries[-1][0]
            break
        entries.append(entry)
    root = ElementTree.Element("EnumerationResults", ServiceEndpoint=f"{request.host_url}", ContainerName=c.name)
    shown = {"Prefix": prefix, "Marker": marker, "MaxResults": str(max_results), "Delimiter": delimiter}
    for tag, value in shown.items():
        if value:
            ElementTree.SubElement(root, tag).text = value
    blobs = ElementTree.SubElement(root, "Blobs")
    for name, is_prefix in entries:
        if is_prefix:
            ElementTree.SubElement(ElementTree.SubElement(blobs, "BlobPrefix"), "Name").text = name
            continue
        found = _properties(c, name)
        if found is None:  # gone since the walk
            continue
        _, stat, record = found
        item = ElementTree.SubElement(blobs, "Blob")
        ElementTree.SubElement(item, "Name").text = name
        props = ElementTree.SubElement(item, "Properties")
        for tag, value in (
            ("Creation-Time", http_date(record["created"])),
            ("Last-Modified", http_date(record["modified"])),
            ("Etag", _etag(stat, record)),
            ("Content-Length", str(stat.st_size)),
            ("Content-Type", record["content_type"]),
            ("Content-MD5", record["content_md5"] or ""),
            ("BlobType", "BlockBlob"),
            ("AccessTier", "Hot"),
            ("AccessTierInferred", "true"),
            ("LeaseStatus", "unlocked"),
            ("LeaseState", "available"),
            ("ServerEncrypted", "true"),
        ):
            ElementTree.SubElement(props, tag).text = value
        if with_metadata:
            meta = ElementTree.SubElement(item, "Metadata")
            for key, value in record["metadata"].items():
                ElementTree.SubElement(meta, key).text = value
    ElementTree.SubElement(root, "NextMarker").text = next_marker
    return Response(_xml(root), status=200, headers=_headers({"Content-Type": "application/xml"}))


Handler = Callable[[Container, str], Response]
#: (method, restype, comp, on a blob?) -> (handler, the SAS permission it needs)
OPERATIONS: dict[tuple[str, str, str, bool], tuple[Handler, str]] = {
    ("GET", "container", "", False): (container_properties, "r"),
    ("HEAD", "container", "", False): (container_properties, "r"),
    ("PUT", "container", "", False): (create_container, "c"),
    ("GET", "container", "list", False): (list_blobs, "l"),
    ("PUT", "", "", True): (put_blob, "w"),
    ("PUT", "", "block", True): (put_block, "w"),
    ("PUT", "", "blocklist", True): (put_block_list, "w"),
    ("PUT", "", "metadata", True): (set_metadata, "w"),
    ("GET", "", "metadata", True): (get_metadata, "r"),
    ("HEAD", "", "metadata", True): (get_metadata, "r"),
    ("GET", "", "", True): (get_blob, "r"),
    ("HEAD", "", "", True): (get_blob, "r"),
    ("DELETE", "", "", True): (delete_blob, "d"),
}


def _serve(account: str, path: str) -> Response:
    name, _, blob = path.lstrip("/").partition("/")
    try:
        if request.scheme != "https":
            raise BlobError(400, "AccountRequiresHttps", "The blob service answers over HTTPS only (the TLS port).")
        key = (request.method, request.args.get("restype", ""), request.args.get("comp", ""), bool(blob))
        if not name or key not in OPERATIONS:
            query = [f"{k}={request.args[k]}" for k in ("restype", "comp") if k in request.args]
            what = " ".join([request.method, *query])
            raise BlobError(
                501, "NotEmulated", f"'{what}' on '{path}' is not emulated by amlemu's blob service: {_SUBSET}."
            )
        handler, permission = OPERATIONS[key]
        _authorize(name, blob, permission, listing=handler is list_blobs)
        return handler(container(name, account), blob)
    except BlobError as exc:
        return exc.response()
    except EmulatorError as exc:
        return BlobError(exc.status if exc.status >= 400 else 400, exc.code, exc.message).response()
    except Exception as exc:  # answered in the blob service's shape: azure-storage-blob reads no ARM error
        log.exception("blob service: %s %s failed", request.method, request.path)
        return BlobError(500, "InternalError", f"amlemu's blob service failed: {type(exc).__name__}: {exc}").response()


_SUBSET = (
    "it answers Put Blob, Put Block, Put Block List, Get Blob, Get Blob Properties, Get/Set Blob Metadata, "
    "Delete Blob, List Blobs and Get Container Properties"
)


@blueprint.before_app_request
def dispatch() -> Response | None:
    """Blob requests, told apart by Host (``<account>.blob.<suffix>``, through the proxy) or by a path that starts
    with the storage account (path-style on 127.0.0.1), before any ARM route sees them."""
    host = (urlsplit(f"//{request.host}").hostname or "").lower()
    if host.endswith(BLOB_HOST_SUFFIX):
        return _serve(host.removesuffix(BLOB_HOST_SUFFIX), request.path)
    first, _, rest = request.path.lstrip("/").partition("/")
    if first == settings.STORAGE_ACCOUNT:
        return _serve(first, rest)
    return None
