"""Command job specs with data asset and datastore inputs and datastore outputs (resolved with the workspace)."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.data import assets, paths
from emulator.errors import ResourceNotFound, ValidationError
from emulator.jobs.spec import fill_output_paths, normalize_command_job, output_path


def job(**fields):
    return {"command": "echo hi", "environment": "azureml:AzureML-sklearn-1.5@latest", **fields}


@pytest.fixture
def registered(store, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train.csv").write_text("a\n1\n")
    assets.create_or_update(store, {"name": "train", "path": "d/train.csv", "type": "uri_file"}, tmp_path)
    assets.create_or_update(store, {"name": "train", "path": "d", "type": "uri_folder"}, tmp_path)
    return tmp_path


def test_data_asset_inputs_resolve_to_their_uploaded_files(store, registered):
    spec = normalize_command_job(
        job(
            inputs={
                "pinned": {"type": "uri_file", "path": "azureml:train:1"},
                "latest": {"path": "azureml:train@latest"},  # no type: the asset's (uri_folder)
            }
        ),
        registered,
        store,
    )
    pinned, latest = spec["inputs"]["pinned"], spec["inputs"]["latest"]
    assert pinned["reference"] == "azureml:train:1" and Path(pinned["path"]).read_text() == "a\n1\n"
    assert latest["reference"] == "azureml:train:2" and latest["type"] == "uri_folder"
    assert (Path(latest["path"]) / "train.csv").is_file()
    assert latest["mode"] == "ro_mount"


def test_datastore_path_inputs(store, tmp_path):
    uri = "azureml://datastores/workspaceblobstore/paths/shared/set"
    with pytest.raises(ValidationError, match="holds nothing yet"):
        normalize_command_job(job(inputs={"x": {"type": "uri_folder", "path": uri}}), tmp_path, store)
    folder = paths.local(store, paths.parse(store, uri))
    folder.mkdir(parents=True)
    spec = normalize_command_job(job(inputs={"x": {"type": "uri_folder", "path": uri}}), tmp_path, store)
    assert spec["inputs"]["x"] == {"type": "uri_folder", "path": str(folder), "mode": "ro_mount", "reference": uri}


@pytest.mark.parametrize(
    "path, error, needle",
    [
        ("azureml:ghost@latest", ResourceNotFound, "amlemu data create --name ghost"),
        ("azureml:train:9", ResourceNotFound, "version '9'"),
        ("azureml://datastores/nostore/paths/x", ResourceNotFound, "workspaceblobstore"),
    ],
)
def test_bad_data_inputs(store, registered, path, error, needle):
    with pytest.raises(error, match=needle):
        normalize_command_job(job(inputs={"x": {"type": "uri_folder", "path": path}}), registered, store)


def test_asset_type_must_match_the_input_type(store, registered):
    with pytest.raises(ValidationError, match="use type: uri_file"):
        normalize_command_job(job(inputs={"x": {"type": "uri_folder", "path": "azureml:train:1"}}), registered, store)


def test_remote_asset_input_says_it_cannot_be_fetched(store, tmp_path):
    assets.create_or_update(store, {"name": "web", "path": "https://example.com/a.csv", "type": "uri_file"}, tmp_path)
    with pytest.raises(ValidationError, match="Input 'x'.*cannot fetch"):
        normalize_command_job(job(inputs={"x": {"type": "uri_file", "path": "azureml:web:1"}}), tmp_path, store)


def test_outputs_with_datastore_paths(store, tmp_path):
    spec = normalize_command_job(
        job(
            outputs={
                "model": {"path": "azureml://datastores/${{default_datastore}}/paths/runs/${{name}}/${{output_name}}/"},
                "plain": {"type": "uri_folder"},
            }
        ),
        tmp_path,
        store,
    )
    spec["name"] = "job_1"
    fill_output_paths(spec)
    model = spec["outputs"]["model"]
    assert model["path"] == "azureml://datastores/workspaceblobstore/paths/runs/job_1/model/"
    job_dir = store.job_dir("job_1")
    assert output_path(store, job_dir, "model", model) == store.root / "datastores/workspaceblobstore/runs/job_1/model"
    assert output_path(store, job_dir, "plain", spec["outputs"]["plain"]) == job_dir / "outputs" / "plain"


@pytest.mark.parametrize(
    "path, error, needle",
    [
        ("./local/out", ValidationError, "not a datastore path"),
        ("https://example.com/out", ValidationError, "not a datastore path"),
        ("azureml://datastores/elsewhere/paths/out", ResourceNotFound, "elsewhere"),
        ("azureml://datastores/workspaceblobstore/paths/../escape", ValidationError, "leaves"),
    ],
)
def test_bad_output_paths(store, tmp_path, path, error, needle):
    with pytest.raises(error, match=needle):
        normalize_command_job(job(outputs={"o": {"type": "uri_folder", "path": path}}), tmp_path, store)


def test_named_outputs_default_to_azures_path_and_refuse_a_taken_version(store, registered):
    spec = normalize_command_job(job(outputs={"o": {"name": "features", "version": "3"}}), registered, store)
    spec["name"] = "j1"
    fill_output_paths(spec)
    assert spec["outputs"]["o"] == {
        "type": "uri_folder",
        "mode": "rw_mount",
        "name": "features",
        "version": "3",
        "path": "azureml://datastores/workspaceblobstore/paths/azureml/j1/o/",
    }
    with pytest.raises(ValidationError, match="'train' version '1', which exists"):
        normalize_command_job(job(outputs={"o": {"name": "train", "version": 1}}), registered, store)
    with pytest.raises(ValidationError, match="version but no name"):
        normalize_command_job(job(outputs={"o": {"version": 1}}), registered, store)


def test_an_assets_arm_id_as_the_sdk_gives_it_is_a_data_input(store, registered):
    arm = (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/amlemu/providers/"
        f"Microsoft.MachineLearningServices/workspaces/{store.name}/data/train/versions/1"
    )
    spec = normalize_command_job(job(inputs={"x": {"type": "uri_file", "path": arm}}), registered, store)
    assert spec["inputs"]["x"]["reference"] == "azureml:train:1"


def test_automl_training_data_as_an_mltable_data_asset(store, tmp_path):
    from emulator.automl.spec import normalize_automl_job
    from tests.conftest import SAMPLES

    record = assets.create_or_update(
        store, {"name": "iris-table", "path": str(SAMPLES / "iris" / "iris-mltable"), "type": "mltable"}, tmp_path
    )
    spec = normalize_automl_job(
        {
            "type": "automl",
            "task": "classification",
            "compute": "azureml:cpu-cluster",
            "target_column_name": "species",
            "training_data": {"type": "mltable", "path": "azureml:iris-table@latest"},
        },
        tmp_path,
        store,
    )
    assert spec["inputs"]["training_data"]["path"] == str(assets.local_path(store, record))
