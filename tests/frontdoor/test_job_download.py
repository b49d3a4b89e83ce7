"""``ml_client.jobs.download`` through the front door: run history's ``rundata``, the dataset data plane, and the
blob service serving a job's artifacts and outputs where Azure keeps them, from the job's own folder."""

from __future__ import annotations

import http.client
import ssl
from pathlib import Path

import pytest
import requests

CURATED = "AzureML-sklearn-1.5@latest"
SUFFIX = "amlemu.localhost"
WRITES = (
    "mkdir -p outputs && echo artifact > outputs/x.txt && mkdir -p ${{outputs.out}}/sub && "
    "echo named > ${{outputs.out}}/sub/y.txt && echo weights > ${{outputs.model}}/m.bin"
)


def _finished_job(sdk) -> str:
    """A completed job with a file in ./outputs, a uri_folder output ``out`` and a custom_model output ``model``."""
    from azure.ai.ml import Output, command

    job = sdk.jobs.create_or_update(
        command(
            command=WRITES,
            outputs={"out": Output(type="uri_folder"), "model": Output(type="custom_model")},
            environment=CURATED,
        )
    )
    sdk.jobs.stream(job.name)
    assert sdk.jobs.get(job.name).status == "Completed"
    return job.name


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_download_artifacts_a_named_output_and_all(sdk, tmp_path):
    name = _finished_job(sdk)
    # no outputs.default (see jobstorage.py: jobs.stream would sign log SASs with an account key); download's
    # fallback for it is the artifact store's ExperimentRun/dcid.<job>/, which the blob service serves
    assert "default" not in sdk.jobs.get(name).outputs

    sdk.jobs.download(name, download_path=str(tmp_path / "default"))
    assert (tmp_path / "default" / "artifacts" / "outputs" / "x.txt").read_text() == "artifact\n"
    assert "user_logs/std_log.txt" in _files(tmp_path / "default" / "artifacts")
    assert not (tmp_path / "default" / "named-outputs").exists()

    sdk.jobs.download(name, download_path=str(tmp_path / "named"), output_name="out")
    assert _files(tmp_path / "named") == {"named-outputs/out/sub/y.txt"}
    assert (tmp_path / "named" / "named-outputs" / "out" / "sub" / "y.txt").read_text() == "named\n"

    # a model output is not in rundata (see history.py): the SDK finds it at Azure's place in the default datastore
    sdk.jobs.download(name, download_path=str(tmp_path / "model"), output_name="model")
    assert _files(tmp_path / "model") == {"named-outputs/model/m.bin"}

    sdk.jobs.download(name, download_path=str(tmp_path / "all"), all=True)
    found = _files(tmp_path / "all")
    assert {"artifacts/outputs/x.txt", "named-outputs/out/sub/y.txt"} <= found
    assert "artifacts/user_logs/std_log.txt" in found


def _container(sdk, datastore_name: str):
    from azure.storage.blob import ContainerClient

    datastore = sdk.datastores.get(datastore_name)
    sas = sdk.datastores._list_secrets(datastore.name).sas_token
    account_url = f"https://{datastore.account_name}.blob.{SUFFIX}"
    return (
        ContainerClient(account_url, datastore.container_name, credential=sas),
        sas,
        account_url.removeprefix("https://"),
    )


def test_the_blob_service_serves_a_jobs_files_read_only_without_copies(sdk, front_door, workspace_name):
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    name = _finished_job(sdk)
    artifacts, sas, host = _container(sdk, "workspaceartifactstore")
    listed = [b.name for b in artifacts.list_blobs(name_starts_with=f"ExperimentRun/dcid.{name}/")]
    assert f"ExperimentRun/dcid.{name}/outputs/x.txt" in listed
    assert f"ExperimentRun/dcid.{name}/user_logs/std_log.txt" in listed
    assert artifacts.download_blob(f"ExperimentRun/dcid.{name}/outputs/x.txt").readall() == b"artifact\n"
    walked = artifacts.walk_blobs(name_starts_with="ExperimentRun/")  # the delimiter's listing reaches it too
    assert f"ExperimentRun/dcid.{name}/" in [p.name for p in walked]

    blobstore, _, _ = _container(sdk, "workspaceblobstore")
    assert [b.name for b in blobstore.list_blobs(name_starts_with=f"azureml/{name}/")] == [
        f"azureml/{name}/model/m.bin",
        f"azureml/{name}/out/sub/y.txt",
    ]
    assert blobstore.download_blob(f"azureml/{name}/out/sub/y.txt").readall() == b"named\n"

    # a job that does not exist: nothing listed, nothing found
    assert list(artifacts.list_blobs(name_starts_with="ExperimentRun/dcid.no-such-job/")) == []
    with pytest.raises(ResourceNotFoundError):
        artifacts.download_blob("ExperimentRun/dcid.no-such-job/outputs/x.txt").readall()
    assert list(blobstore.list_blobs(name_starts_with=f"azureml/{name}/no-such-output/")) == []

    # read-only, and served where the job wrote them: the datastores' folders hold no copy
    with pytest.raises(HttpResponseError) as refused:
        artifacts.upload_blob(f"ExperimentRun/dcid.{name}/outputs/x.txt", b"changed", overwrite=True)
    assert refused.value.status_code == 501 and "read-only" in str(refused.value)
    with pytest.raises(HttpResponseError) as refused:
        blobstore.delete_blob(f"azureml/{name}/out/sub/y.txt")
    assert refused.value.status_code == 501
    workspace = front_door.home / "workspaces" / workspace_name
    assert (workspace / "jobs" / name / "artifacts" / "outputs" / "x.txt").read_text() == "artifact\n"
    assert not (workspace / "datastores" / "workspaceartifactstore" / "ExperimentRun").exists()
    assert not (workspace / "datastores" / "workspaceblobstore" / "azureml").exists()

    # a name that climbs out of the job's folder is refused, as any other container's
    context = ssl.create_default_context(cafile=front_door.variables["REQUESTS_CA_BUNDLE"])
    conn = http.client.HTTPSConnection("127.0.0.1", front_door.port + 1, context=context, timeout=30)
    try:
        # host-style: "azureml" is every workspace's artifact container, told apart by the account
        conn.request("GET", f"/azureml/ExperimentRun/dcid.{name}/../../../store.db?{sas}", headers={"Host": host})
        response = conn.getresponse()
        assert (response.status, response.getheader("x-ms-error-code")) == (400, "InvalidResourceName")
    finally:
        conn.close()


def test_a_model_from_a_job_output_downloads_from_the_jobs_folder(sdk, front_door, workspace_name, tmp_path):
    from azure.ai.ml.entities import Model

    name = _finished_job(sdk)
    model = sdk.models.create_or_update(
        Model(name="from-output", path=f"azureml://jobs/{name}/outputs/model", type="custom_model")
    )
    assert model.path.endswith(f"/datastores/workspaceblobstore/paths/azureml/{name}/model/")
    sdk.models.download("from-output", model.version, download_path=str(tmp_path))
    assert (tmp_path / "from-output" / "model" / "m.bin").read_text() == "weights\n"  # the folder kept, as Azure does
    assert not (
        front_door.home / "workspaces" / workspace_name / "datastores" / "workspaceblobstore" / "azureml"
    ).exists()


def test_rundata_and_the_data_plane_over_raw_rest(sdk, front_door, workspace_name):
    from azure.identity import DefaultAzureCredential

    name = _finished_job(sdk)
    base = f"https://127.0.0.1:{front_door.port + 1}"
    headers = {"Authorization": f"Bearer {DefaultAzureCredential().get_token(f'{base}/.default').token}"}
    scope = (
        "subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/my-rg/providers/"
        f"Microsoft.MachineLearningServices/workspaces/{workspace_name}"
    )
    rundata = f"{base}/history/v1.0/{scope}/rundata"
    resolve = f"{base}/data/v1.0/{scope}/dataversion/batchGetResolvedUris"

    run = requests.post(rundata, json={"runId": name}, headers=headers, timeout=30)
    assert run.status_code == 200, run.text
    outputs = run.json()["runMetadata"]["outputs"]
    assert list(outputs) == ["out"] and outputs["out"]["type"] == "uri_folder"  # the model output is left out
    asset_id = outputs["out"]["assetId"]

    found = requests.post(resolve, json={"values": [asset_id]}, headers=headers, timeout=30)
    assert found.status_code == 200, found.text
    uri = found.json()["values"][asset_id]["uri"]
    assert uri == (
        "azureml://subscriptions/00000000-1111-2222-3333-444444444444/resourcegroups/my-rg/workspaces/"
        f"{workspace_name}/datastores/workspaceblobstore/paths/azureml/{name}/out/"
    )

    other = {"values": [asset_id.replace(name, "no-such-job")]}
    missing = requests.post(resolve, json=other, headers=headers, timeout=30)
    assert missing.status_code == 404 and "rundata" in missing.json()["error"]["message"]
    assert requests.post(rundata, json={"runId": "no-such-job"}, headers=headers, timeout=30).status_code == 404
    assert requests.post(rundata, json={}, headers=headers, timeout=30).status_code == 400
    assert requests.post(resolve, json={"values": "x"}, headers=headers, timeout=30).status_code == 400
    assert requests.post(resolve, json={"values": [asset_id]}, timeout=30).status_code == 401  # no token
