"""The blob service: what azure-storage-blob 12.x sends, answered from the workspace's own folders.

Why by hand, and not Azurite: Azurite keeps blobs in its own extent store, so every file the
engine writes (job outputs, models) would have to be copied in, and every upload copied out
before a job could read it. Here a container *is* a folder of the workspace (:mod:`.blobstore`),
so there is one copy; a job's artifacts and outputs, where Azure keeps them in the datastores, are the job's own
folder (:mod:`.jobstorage`), read-only. The subset is what azure-ai-ml and azure-storage-blob use for assets: Put
Blob, Put Block + Put Block List, Get Blob (ranges), Get Blob Properties, Get/Set Blob Metadata,
Delete Blob, List Blobs (prefix, delimiter, marker, ``include=metadata``), Get Container
Properties. Anything else answers 501 NotEmulated, in the service's XML error shape.

Two URL styles reach it on the TLS listener: path-style on the loopback address,
``https://127.0.0.1:<tls port>/<STORAGE_ACCOUNT>/<container>/<blob>``, and host-style through
the CONNECT proxy, ``https://<account>.blob.<STORAGE_SUFFIX>/<container>/<blob>``: the Host
header decides, before any ARM route (:func:`dispatch`).

Auth: a SAS this front door issued (:func:`.blobstore.issue_sas`) or an ``Authorization: Bearer``
token for storage (``https://storage.azure.com/``); anything else answers as Azure's blob
service does (401 NoAuthenticationInformation, 403 AuthenticationFailed).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

from flask import Blueprint, Response, request
from werkzeug.http import http_date

from emulator import config
from emulator.errors import EmulatorError
from emulator.frontdoor import blobstore, resources, settings, tokens
from emulator.frontdoor.blobstore import BlobError, Container

blueprint = Blueprint("blobs", __name__)
log = logging.getLogger("amlemu.frontdoor.blobs")

SERVICE_VERSION = "2025-01-05"
STORAGE_AUDIENCE = "https://storage.azure.com"
CHUNK = 1 << 20
MAX_BLOCK_LIST = 8 << 20
_METADATA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,255}$", re.ASCII)
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def error_response(exc: BlobError) -> Response:
    """``exc`` in the blob service's error shape (XML body, ``x-ms-error-code`` header): azure-storage-blob reads it."""
    root = ElementTree.Element("Error")
    ElementTree.SubElement(root, "Code").text = exc.code
    ElementTree.SubElement(root, "Message").text = f"{exc.message}\nRequestId:{uuid.uuid4()}"
    if exc.detail:
        ElementTree.SubElement(root, "AuthenticationErrorDetail").text = exc.detail
    body = b"" if request.method == "HEAD" or exc.status == 304 else _xml(root)
    headers = _headers({"x-ms-error-code": exc.code, "Content-Type": "application/xml"})
    return Response(body, status=exc.status, headers=headers)


def container_url(name: str) -> str:
    """The path-style URL of container ``name`` on the loopback address (no proxy needed)."""
    return f"{resources.front().https_url}/{settings.STORAGE_ACCOUNT}/{name}"


# -- URLs and local paths ------------------------------------------------------------------------------------------
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
    inside = request.args.get("prefix", "") if listing else blob
    if permission not in blobstore.verify_sas(request.args.to_dict(), name, inside):
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


def _blob_headers(stat: os.stat_result, record: dict) -> dict[str, str]:
    headers = {
        "ETag": blobstore.etag(stat, record),
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


def _written(status: int, stat: os.stat_result, record: dict, md5: bytes | None = None) -> Response:
    headers = {
        "ETag": blobstore.etag(stat, record),
        "Last-Modified": http_date(record["modified"]),
        "x-ms-request-server-encrypted": "true",
        "Content-Length": "0",
    }
    if md5:
        headers["Content-MD5"] = base64.b64encode(md5).decode()
    return Response(b"", status=status, headers=_headers(headers))


# -- operations --------------------------------------------------------------------------------------------------
def _exclusive() -> bool:
    return request.headers.get("If-None-Match", "").strip() == "*"


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
    blobstore.write_path(c, blob)  # refused before the body is read
    current = blobstore.properties(c, blob)
    _preconditions(blobstore.etag(current[1], current[2]) if current else None)
    tmp, md5 = _receive(c)
    stat, record = blobstore.commit(c, blob, tmp, _upload_fields(md5, metadata), _exclusive())
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
    blobstore.write_path(c, blob)
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
    blobstore.write_path(c, blob)
    current = blobstore.properties(c, blob)
    _preconditions(blobstore.etag(current[1], current[2]) if current else None)
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
    stat, record = blobstore.commit(c, blob, tmp, _upload_fields(None, metadata), _exclusive())
    shutil.rmtree(blocks, ignore_errors=True)
    return _written(201, stat, record)


def _existing(c: Container, blob: str) -> tuple[Path, os.stat_result, dict]:
    found = blobstore.properties(c, blob)
    if found is None:
        raise blobstore.not_found("blob", blob)
    return found


def set_metadata(c: Container, blob: str) -> Response:
    metadata = _request_metadata()
    path, stat, record = _existing(c, blob)
    _preconditions(blobstore.etag(stat, record))
    fields = {k: record[k] for k in ("content_type", "content_md5", "created")}
    record = blobstore.write_record(c, blob, path, **fields, metadata=metadata)
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
    _preconditions(blobstore.etag(stat, record))
    headers = _blob_headers(stat, record)
    headers["Content-Type"] = record["content_type"]
    try:
        wanted = _range(stat.st_size)
    except BlobError as exc:
        if exc.status == 416:
            exc_response = error_response(exc)
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
    blobstore.write_path(c, blob)
    path, stat, record = _existing(c, blob)
    _preconditions(blobstore.etag(stat, record))
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
    for name in blobstore.blob_names(c, prefix):
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
        found = blobstore.properties(c, name)
        if found is None:  # gone since the walk
            continue
        _, stat, record = found
        item = ElementTree.SubElement(blobs, "Blob")
        ElementTree.SubElement(item, "Name").text = name
        props = ElementTree.SubElement(item, "Properties")
        for tag, value in (
            ("Creation-Time", http_date(record["created"])),
            ("Last-Modified", http_date(record["modified"])),
            ("Etag", blobstore.etag(stat, record)),
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
        return handler(blobstore.container(name, account), blob)
    except BlobError as exc:
        return error_response(exc)
    except EmulatorError as exc:
        return error_response(BlobError(exc.status if exc.status >= 400 else 400, exc.code, exc.message))
    except Exception as exc:  # answered in the blob service's shape: azure-storage-blob reads no ARM error
        log.exception("blob service: %s %s failed", request.method, request.path)
        failed = f"amlemu's blob service failed: {type(exc).__name__}: {exc}. The server's log has the traceback."
        return error_response(BlobError(500, "InternalError", failed))


_SUBSET = (
    "it answers Put Blob, Put Block, Put Block List, Get Blob, Get Blob Properties, Get/Set Blob Metadata, "
    "Delete Blob, List Blobs and Get Container Properties"
)


@blueprint.before_app_request
def dispatch() -> Response | None:
    """Blob requests, told apart by Host (``<account>.blob.<suffix>``, through the proxy) or by a path that starts
    with the storage account (path-style on 127.0.0.1), before any ARM route sees them."""
    host = (urlsplit(f"//{request.host}").hostname or "").lower()
    if host.endswith(blobstore.BLOB_HOST_SUFFIX):
        return _serve(host.removesuffix(blobstore.BLOB_HOST_SUFFIX), request.path)
    first, _, rest = request.path.lstrip("/").partition("/")
    if first == settings.STORAGE_ACCOUNT:
        return _serve(first, rest)
    return None
