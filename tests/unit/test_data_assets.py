"""Data assets in the engine: uploads, versions, archive and restore, @latest, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.data import assets, datastores, paths
from emulator.errors import NotEmulated, ResourceExists, ResourceNotFound, ValidationError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    write(tmp_path / "src" / "train.csv", "a,b\n1,2\n")
    write(tmp_path / "src" / "sub" / "more.csv", "a,b\n3,4\n")
    (tmp_path / "src" / "empty").mkdir()
    return tmp_path / "src"


def test_local_file_is_uploaded_to_the_default_datastore_under_the_sdks_content_hash(store, folder):
    from azure.ai.ml._utils._asset_utils import get_object_hash

    record = assets.create_or_update(store, {"name": "iris", "path": "train.csv", "type": "uri_file"}, folder)
    digest = get_object_hash(folder / "train.csv")  # the SDK's own hash names Azure's upload folder
    assert record["path"] == f"azureml://datastores/workspaceblobstore/paths/LocalUpload/{digest}/train.csv"
    assert record["version"] == "1" and record["type"] == "uri_file"
    local = assets.local_path(store, record)
    assert local == store.root / "datastores" / "workspaceblobstore" / "LocalUpload" / digest / "train.csv"
    (folder / "train.csv").write_text("changed after registration\n")
    assert local.read_text() == "a,b\n1,2\n"  # a copy, as an upload is


def test_folder_upload_keeps_its_tree_and_the_same_content_is_stored_once(store, folder, tmp_path):
    from azure.ai.ml._utils._asset_utils import get_object_hash

    first = assets.create_or_update(store, {"name": "tree", "path": str(folder)}, tmp_path)
    assert first["type"] == "uri_folder" and first["path"].endswith(f"/LocalUpload/{get_object_hash(folder)}/src/")
    assert (assets.local_path(store, first) / "sub" / "more.csv").read_text() == "a,b\n3,4\n"
    second = assets.create_or_update(store, {"name": "tree", "path": str(folder), "version": "7"}, tmp_path)
    assert second["path"] == first["path"] and second["version"] == "7"
    assert len(list((store.root / "datastores" / "workspaceblobstore" / "LocalUpload").iterdir())) == 1
    assert not list((store.root / "datas").glob("*/.staging-*"))  # no staging folder left behind


def test_datastore_path_stays_a_reference(store, tmp_path):
    target = paths.local(store, paths.DatastorePath("workspaceblobstore", "raw/2024"))
    write(target / "x.csv", "x\n")
    record = assets.create_or_update(
        store,
        {"name": "raw", "path": "azureml://datastores/workspaceblobstore/paths/raw/2024", "type": "uri_folder"},
        tmp_path,
    )
    assert record["path"] == "azureml://datastores/workspaceblobstore/paths/raw/2024/"
    assert assets.local_path(store, record) == target
    assert not (store.root / "datastores" / "workspaceblobstore" / "LocalUpload").exists()


def test_versions_latest_archive_and_restore(store, folder):
    for _ in range(3):
        assets.create_or_update(store, {"name": "d", "path": "train.csv", "type": "uri_file"}, folder)
    assert [r["version"] for r in assets.list_versions(store, "d")] == ["3", "2", "1"]
    assert assets.get(store, "d", label="latest")["version"] == "3"
    assets.set_archived(store, "d", True, version="3")
    assert assets.get(store, "d", label="latest")["version"] == "2"  # latest skips the archived version
    assert assets.get(store, "d", version="3")["version"] == "3"  # still there by number
    assert [r["version"] for r in assets.list_versions(store, "d")] == ["2", "1"]
    assert [r["version"] for r in assets.list_versions(store, "d", "ArchivedOnly")] == ["3"]
    assets.set_archived(store, "d", True)  # the whole asset
    assert assets.list_assets(store) == [] and [e["name"] for e in assets.list_assets(store, "All")] == ["d"]
    with pytest.raises(ResourceNotFound, match="Every version of data asset 'd' is archived"):
        assets.get(store, "d", label="latest")
    with pytest.raises(ValidationError, match="archived as a whole"):
        assets.set_archived(store, "d", False, version="3")
    assets.set_archived(store, "d", False)
    assets.set_archived(store, "d", False, version="3")
    assert [e["latest_version"] for e in assets.list_assets(store)] == ["3"]


def test_same_version_updates_description_and_tags_but_never_the_data(store, folder):
    assets.create_or_update(store, {"name": "d", "version": "1", "path": "train.csv", "type": "uri_file"}, folder)
    updated = assets.create_or_update(
        store,
        {"name": "d", "version": "1", "path": "train.csv", "type": "uri_file", "description": "x", "tags": {"a": 1}},
        folder,
    )
    assert updated["description"] == "x" and updated["tags"] == {"a": "1"}
    with pytest.raises(ResourceExists, match="cannot change"):
        assets.create_or_update(
            store, {"name": "d", "version": "1", "path": "sub/more.csv", "type": "uri_file"}, folder
        )
    assert assets.get(store, "d", "1")["path"].endswith("/train.csv")


def test_mltable_needs_an_mltable_file(store, folder):
    with pytest.raises(ValidationError, match="no MLTable file"):
        assets.create_or_update(store, {"name": "t", "path": ".", "type": "mltable"}, folder)
    write(folder / "MLTable", "type: mltable\n")
    with pytest.raises(ValidationError, match="no 'paths' list"):
        assets.create_or_update(store, {"name": "t", "path": ".", "type": "mltable"}, folder)
    write(folder / "MLTable", "paths:\n  - file: ./train.csv\ntransformations:\n  - read_delimited: {}\n")
    assert assets.create_or_update(store, {"name": "t", "path": ".", "type": "mltable"}, folder)["type"] == "mltable"
    assert assets.list_versions(store, "t")[0]["version"] == "1"


@pytest.mark.parametrize(
    "spec, error, needles",
    [
        ({"name": "d", "type": "uri_file"}, ValidationError, ("needs a 'path'", "--path")),
        ({"name": "d", "path": "train.csv", "type": "table"}, ValidationError, ("'table' is unknown", "uri_file")),
        ({"name": "d", "path": "sub", "type": "uri_file"}, ValidationError, ("is a folder", "uri_folder")),
        ({"name": "d", "path": "train.csv", "type": "uri_folder"}, ValidationError, ("is a file", "uri_file")),
        ({"name": "d", "path": "missing.csv", "type": "uri_file"}, ValidationError, ("does not exist",)),
        ({"path": "train.csv"}, ValidationError, ("name is missing",)),
        ({"name": "../up", "path": "train.csv"}, ValidationError, ("invalid",)),
        (
            {"name": "d", "path": "azureml://datastores/mystore/paths/x"},
            ResourceNotFound,
            ("mystore", "workspaceblobstore"),
        ),
        ({"name": "d", "path": "train.csv", "datastore": "other"}, ResourceNotFound, ("other",)),
        ({"name": "d", "path": "azureml:other:1"}, NotEmulated, ("datastores",)),
        ({"name": "d", "path": "empty"}, ValidationError, ("empty folder",)),
    ],
)
def test_bad_input_names_the_problem_and_records_nothing(store, folder, spec, error, needles):
    with pytest.raises(error) as info:
        assets.create_or_update(store, spec, folder)
    for needle in needles:
        assert needle in info.value.message
    assert store.list_assets(assets.KIND) == []
    assert not (store.root / "datastores" / "workspaceblobstore" / "LocalUpload").exists()


def test_latest_of_nothing_and_unknown_versions_say_what_to_do(store):
    with pytest.raises(ResourceNotFound, match="amlemu data create --name ghost"):
        assets.get(store, "ghost", label="latest")
    with pytest.raises(ValidationError, match="'latest'"):
        assets.get(store, "ghost", label="prod")
    with pytest.raises(ValidationError, match="both version and label"):
        assets.get(store, "ghost", "1", "latest")


def test_references_resolve_by_version_label_and_arm_id(store, folder):
    assets.create_or_update(store, {"name": "d", "path": "train.csv", "type": "uri_file"}, folder)
    assets.create_or_update(store, {"name": "d", "path": "sub", "type": "uri_folder"}, folder)
    assert assets.reference(store, "azureml:d:1")["type"] == "uri_file"
    assert assets.reference(store, "azureml:d@latest")["version"] == "2"
    arm = (
        "azureml:/subscriptions/x/resourceGroups/g/providers/Microsoft.MachineLearningServices"
        f"/workspaces/{store.name}/data/d/versions/1"
    )
    assert assets.reference(store, arm)["version"] == "1"
    with pytest.raises(ValidationError, match="names no version"):
        assets.reference(store, "azureml:d")


def test_remote_data_is_recorded_but_has_no_local_path(store, tmp_path):
    record = assets.create_or_update(
        store, {"name": "web", "path": "https://example.com/x.csv", "type": "uri_file"}, tmp_path
    )
    assert record["path"] == "https://example.com/x.csv"
    with pytest.raises(ValidationError, match="cannot fetch"):
        assets.local_path(store, record)


def test_datastore_paths_are_confined_to_their_folder(store):
    assert paths.parse(store, "azureml://datastores/workspaceblobstore/paths/a/b/").path == "a/b"
    long = f"azureml://subscriptions/s/resourcegroups/g/workspaces/{store.name}/datastores/workspacefilestore/paths/x"
    assert paths.parse(store, long) == ("workspacefilestore", "x")
    with pytest.raises(ValidationError, match="workspace 'other'"):
        paths.parse(store, "azureml://subscriptions/s/resourcegroups/g/workspaces/other/datastores/d/paths/x")
    for bad in ("a/../../escape", "../x"):
        with pytest.raises(ValidationError):
            paths.local(store, paths.parse(store, f"azureml://datastores/workspaceblobstore/paths/{bad}"))
    outside = store.root.parent / "outside"
    outside.mkdir()
    (datastores.folder(store, "workspaceblobstore") / "link").symlink_to(outside)
    with pytest.raises(ValidationError, match="symlink"):
        paths.local(store, paths.parse(store, "azureml://datastores/workspaceblobstore/paths/link/x"))


def test_the_three_default_datastores(store):
    found = {d.name: d for d in datastores.list_datastores(store)}
    assert list(found) == ["workspaceblobstore", "workspaceartifactstore", "workspacefilestore"]
    assert datastores.default(store).name == "workspaceblobstore" and found["workspaceblobstore"].is_default
    assert found["workspacefilestore"].type == "azure_file" and found["workspacefilestore"].file_share_name
    assert found["workspaceartifactstore"].container_name == "azureml"
    assert all(d.folder.is_dir() and d.folder.parent == store.root / "datastores" for d in found.values())
