"""Storage through the front door: datastores and their SAS, the blob service, data and code assets.

The real azure-ai-ml uploads through azure-storage-blob: data host-style through the proxy
(``https://<account>.blob.<suffix>``), code path-style on 127.0.0.1; what lands is read back
both through the blob service and as the workspace's own files.
"""

from __future__ import annotations

import http.client
import ssl
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

SUFFIX = "amlemu.localhost"


def _workspace_dir(front_door, workspace_name: str) -> Path:
    return front_door.home / "workspaces" / workspace_name


def _local_of(front_door, workspace_name: str, datastore_uri: str) -> Path:
    prefix = "azureml://datastores/workspaceblobstore/paths/"
    assert datastore_uri.startswith(prefix), datastore_uri
    folder = _workspace_dir(front_door, workspace_name) / "datastores" / "workspaceblobstore"
    return folder / datastore_uri.removeprefix(prefix).rstrip("/")


def _blob_container(sdk, **options):
    """The default datastore's container, through the blob service with its listSecrets SAS, host-style."""
    from azure.storage.blob import ContainerClient

    datastore = sdk.datastores.get_default()
    sas = sdk.datastores._list_secrets(datastore.name).sas_token
    account_url = f"https://{datastore.account_name}.blob.{SUFFIX}"
    return ContainerClient(account_url, datastore.container_name, credential=sas, **options)


def test_data_file_and_folder_upload_then_get(sdk, front_door, workspace_name, tmp_path):
    from azure.ai.ml.entities import Data

    file = tmp_path / "iris.csv"
    file.write_text("sepal,petal\n1,2\n")
    created = sdk.data.create_or_update(Data(name="iris", version="1", path=str(file), type="uri_file"))
    assert created.path.endswith("/iris.csv") and "LocalUpload/" in created.path
    got = sdk.data.get("iris", version="1")
    assert (got.name, got.version, got.type, got.path) == ("iris", "1", "uri_file", created.path)
    assert _local_of(front_door, workspace_name, got.path).read_text() == "sepal,petal\n1,2\n"

    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("bb")
    sdk.data.create_or_update(Data(name="images", version="3", path=str(folder), type="uri_folder"))
    got = sdk.data.get("images", version="3")
    local = _local_of(front_door, workspace_name, got.path)
    assert sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file()) == ["a.txt", "sub/b.txt"]
    assert (local / "sub" / "b.txt").read_text() == "bb"

    # the same content again: the SDK finds the confirmed upload (blob metadata) and uploads nothing new
    again = sdk.data.create_or_update(Data(name="images", version="4", path=str(folder), type="uri_folder"))
    assert again.path == got.path
    assert [d.version for d in sdk.data.list(name="images")] == ["4", "3"]
    assert sdk.data.get("images", label="latest").version == "4"
    assert {(d.name, d.latest_version) for d in sdk.data.list()} == {("iris", "1"), ("images", "4")}
    sdk.data.archive("images", version="4")
    assert [d.version for d in sdk.data.list(name="images")] == ["3"]
    assert sdk.data.get("images", label="latest").version == "3"
    sdk.data.restore("images", version="4")
    assert [d.version for d in sdk.data.list(name="images")] == ["4", "3"]


def test_blob_download_list_blocks_and_ranges_with_the_datastore_sas(sdk, tmp_path):
    from azure.ai.ml.entities import Data

    file = tmp_path / "train.csv"
    file.write_text("x,y\n" * 100)
    data = sdk.data.create_or_update(Data(name="train", version="1", path=str(file), type="uri_file"))
    blob_name = data.path.split("/paths/", 1)[1]

    container = _blob_container(sdk, max_single_put_size=256 << 10, max_block_size=256 << 10)
    assert container.download_blob(blob_name).readall() == file.read_bytes()
    listed = {b.name: b for b in container.list_blobs(name_starts_with="LocalUpload/", include=["metadata"])}
    assert blob_name in listed and listed[blob_name].size == file.stat().st_size
    assert listed[blob_name].metadata.get("upload_status") == "completed"  # what azure-ai-ml wrote, as written
    top = [p.name for p in container.walk_blobs(name_starts_with="LocalUpload/", delimiter="/")]
    assert top == [blob_name.rsplit("/", 1)[0] + "/"]

    # a blob large enough to go in blocks (Put Block + Put Block List), then a ranged read
    payload = bytes(range(256)) * 4096  # 1 MiB
    big = container.get_blob_client("uploads/big.bin")
    sent = []
    big.upload_blob(
        payload, max_concurrency=2, metadata={"kind": "test"}, raw_request_hook=lambda r: sent.append(r.http_request)
    )
    assert sum("comp=block&" in r.url for r in sent) == 4 and sum("comp=blocklist" in r.url for r in sent) == 1
    assert big.get_blob_properties().metadata == {"kind": "test"}
    assert big.download_blob(offset=1000, length=500).readall() == payload[1000:1500]
    assert big.download_blob().readall() == payload

    from azure.core.exceptions import ResourceExistsError

    with pytest.raises(ResourceExistsError):
        big.upload_blob(b"other", overwrite=False)


def test_blob_service_takes_a_storage_bearer_token(sdk, front_env):
    from azure.identity import DefaultAzureCredential
    from azure.storage.blob import ContainerClient

    datastore = sdk.datastores.get("workspaceblobstore")
    assert datastore.credentials.__class__.__name__ == "SasTokenConfiguration"
    client = ContainerClient(
        f"https://{datastore.account_name}.blob.{SUFFIX}", datastore.container_name, credential=DefaultAzureCredential()
    )
    client.upload_blob("notes/hello.txt", b"hello")
    assert client.download_blob("notes/hello.txt").readall() == b"hello"


def _raw_get(front_door, path: str) -> tuple[int, str, bytes]:
    """A GET of ``path`` exactly as written (no client normalizes ``..``), path-style on the loopback address."""
    context = ssl.create_default_context(cafile=front_door.variables["REQUESTS_CA_BUNDLE"])
    conn = http.client.HTTPSConnection("127.0.0.1", front_door.port + 1, context=context, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("x-ms-error-code") or "", response.read()
    finally:
        conn.close()


def test_tampered_expired_and_escaping_requests_are_refused(sdk, front_door, monkeypatch):
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import ContainerClient

    datastore = sdk.datastores.get_default()
    account_url = f"https://{datastore.account_name}.blob.{SUFFIX}"
    sas = sdk.datastores._list_secrets(datastore.name).sas_token
    ContainerClient(account_url, datastore.container_name, credential=sas).upload_blob("ok.txt", b"ok")

    tampered = sas.replace("sp=racwdl", "sp=racwdl").replace("sig=", "sig=A")
    with pytest.raises(HttpResponseError) as refused:
        ContainerClient(account_url, datastore.container_name, credential=tampered).download_blob("ok.txt").readall()
    assert refused.value.status_code == 403 and refused.value.error_code == "AuthenticationFailed"

    widened = sas.replace("sp=racwdl", "sp=racwdl").replace("sr=c", "sr=b")  # same signature, another scope
    with pytest.raises(HttpResponseError) as refused:
        ContainerClient(account_url, datastore.container_name, credential=widened).download_blob("ok.txt").readall()
    assert refused.value.status_code == 403

    # a SAS the front door signed, but expired: made with its own key, as the server would
    monkeypatch.setenv("AMLEMU_HOME", str(front_door.home))
    from emulator.frontdoor import blobstore

    expired = blobstore.issue_sas(datastore.container_name, "racwdl", hours=-1)
    with pytest.raises(HttpResponseError) as refused:
        ContainerClient(account_url, datastore.container_name, credential=expired).download_blob("ok.txt").readall()
    assert refused.value.status_code == 403 and refused.value.error_code == "AuthenticationFailed"
    assert "time frame" in str(refused.value)

    base = f"/amlemustore/{datastore.container_name}"
    status, code, _ = _raw_get(front_door, f"{base}/ok.txt?{sas}")
    assert (status, code) == (200, "")
    status, code, body = _raw_get(front_door, f"{base}/a/../../../../store.db?{sas}")
    assert (status, code) == (400, "InvalidResourceName"), body
    status, code, _ = _raw_get(front_door, f"{base}/{quote('..')}/x?{sas}")
    assert (status, code) == (400, "InvalidResourceName")
    status, code, _ = _raw_get(front_door, f"{base}/ok.txt")
    assert (status, code) == (401, "NoAuthenticationInformation")


def test_code_upload_lands_in_a_local_folder(sdk, front_door, workspace_name, tmp_path, monkeypatch):
    from azure.ai.ml.entities._assets import Code

    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "train.py").write_text("print('train')\n")
    (src / "pkg" / "util.py").write_text("X = 1\n")
    code = sdk._code.create_or_update(Code(path=str(src)))
    assert code.path.startswith(f"https://127.0.0.1:{front_door.port + 1}/amlemustore/upload-")
    got = sdk._code.get(code.name, code.version)
    assert got.path == code.path and got.id.endswith(f"/codes/{code.name}/versions/{code.version}")

    # the same content again is found by its hash: same version, no new upload
    again = sdk._code.create_or_update(Code(path=str(src)))
    assert (again.name, again.version) == (code.name, code.version)

    monkeypatch.setenv("AMLEMU_HOME", str(front_door.home))
    from emulator.frontdoor import codes
    from emulator.store import open_store

    folder = codes.code_folder_of(open_store(workspace_name), code.id)
    assert folder.is_relative_to(_workspace_dir(front_door, workspace_name) / "uploads")
    assert (folder / "train.py").read_text() == "print('train')\n"
    assert (folder / "pkg" / "util.py").read_text() == "X = 1\n"


def test_datastores_list_get_and_refusals(sdk, front_door):
    from azure.ai.ml.entities import AzureBlobDatastore
    from azure.core.exceptions import HttpResponseError

    names = {d.name for d in sdk.datastores.list()}
    assert names == {"workspaceblobstore", "workspaceartifactstore", "workspacefilestore"}
    assert sdk.datastores.get_default().name == "workspaceblobstore"
    with pytest.raises(HttpResponseError) as refused:
        sdk.datastores.create_or_update(AzureBlobDatastore(name="mine", account_name="acct", container_name="c"))
    assert refused.value.status_code == 501

    url = (
        f"https://127.0.0.1:{front_door.port + 1}/subscriptions/s/resourceGroups/r/providers/"
        "Microsoft.MachineLearningServices/workspaces/ws-secrets/datastores/workspaceblobstore/listSecrets"
    )
    r = requests.post(url, json={}, timeout=30, verify=front_door.variables["REQUESTS_CA_BUNDLE"])
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"
