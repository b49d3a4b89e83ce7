"""The engine's registered components (emulator.pipelines.components): versions, references and the command job a
step naming one runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.errors import NotEmulated, ResourceExists, ResourceNotFound, ValidationError
from emulator.pipelines import components
from emulator.pipelines.spec import normalize_pipeline_job

ENV = "azureml:AzureML-sklearn-1.5@latest"


def spec(**fields) -> dict:
    return {
        "name": "train",
        "type": "command",
        "command": "python train.py --lr ${{inputs.lr}} --data ${{inputs.data}} --out ${{outputs.model}}",
        "environment": ENV,
        "inputs": {"lr": {"type": "number", "default": 0.1}, "data": {"type": "uri_folder"}},
        "outputs": {"model": {"type": "uri_folder"}},
        **fields,
    }


@pytest.fixture
def code(tmp_path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("print('v1')\n")
    return tmp_path


def test_versions_are_numbered_when_none_is_given(store, code):
    assert components.create_or_update(store, spec(code="./src"), code)["version"] == "1"
    assert components.create_or_update(store, spec(code="./src"), code)["version"] == "2"
    assert components.create_or_update(store, spec(version="7"), code)["version"] == "7"
    assert components.create_or_update(store, spec(), code)["version"] == "8"
    assert [r["version"] for r in components.versions(store, "train")] == ["8", "7", "2", "1"]
    assert components.get(store, "train")["version"] == "8"  # latest, with no version or label
    assert components.get(store, "train", label="latest")["version"] == "8"
    assert components.resolve(store, "azureml:train@latest")["version"] == "8"
    assert components.resolve(store, "azureml:train:2")["version"] == "2"


def test_a_version_is_immutable_but_takes_the_same_spec_again(store, code):
    first = components.create_or_update(store, spec(version="1", code="./src", description="a", tags={"k": "v"}), code)
    again = components.create_or_update(store, spec(version="1", code="./src", description="b", tags={"t": 1}), code)
    assert (again["description"], again["tags"]) == ("b", {"t": "1"}) and again["created_at"] == first["created_at"]
    with pytest.raises(ResourceExists, match="already exists with another spec") as info:
        components.create_or_update(store, spec(version="1", code="./src", command="echo other"), code)
    assert "leave the version out" in info.value.message
    (code / "src" / "train.py").write_text("print('v2')\n")  # other code is another spec too
    with pytest.raises(ResourceExists, match="another spec"):
        components.create_or_update(store, spec(version="1", code="./src"), code)


def test_the_code_is_copied_in_at_registration(store, code):
    record = components.create_or_update(store, spec(code="./src"), code)
    kept = Path(record["component_spec"]["code"])
    assert kept.is_relative_to(store.root) and (kept / "train.py").read_text() == "print('v1')\n"
    (code / "src" / "train.py").unlink()
    assert (kept / "train.py").is_file()
    assert not [p for p in kept.parent.parent.iterdir() if p.name.startswith(".")]  # no staging left behind


@pytest.mark.parametrize("name", ["Train", "train-model", "1train", "", "a/b", "tr ain", "x" * 256])
def test_bad_names_are_refused_with_the_rule(store, code, name):
    with pytest.raises(ValidationError, match="lower-case letters, digits and '_'"):
        components.create_or_update(store, spec(name=name), code)


def test_bad_specs_are_refused(store, code):
    with pytest.raises(NotEmulated, match="parallel components"):
        components.create_or_update(store, spec(type="parallel"), code)
    with pytest.raises(ValidationError, match="has no command"):
        components.create_or_update(store, spec(command=None), code)
    with pytest.raises(ValidationError, match="has no environment"):
        components.create_or_update(store, spec(environment=None), code)
    with pytest.raises(ValidationError, match="Unknown command component field"):
        components.create_or_update(store, spec(trial="x"), code)
    with pytest.raises(ValidationError, match="does not exist"):
        components.create_or_update(store, spec(code="./nope"), code)
    with pytest.raises(NotEmulated, match="remote code"):
        components.create_or_update(store, spec(code="azureml:code:1"), code)
    with pytest.raises(ValidationError, match="Version"):
        components.create_or_update(store, spec(version="../1"), code)
    assert store.list_assets(components.KIND) == []


def test_references_and_labels(store, code):
    components.create_or_update(store, spec(), code)
    for bad in ("train:1", "azureml:train", "azureml:train:1:2", "azureml:/train/1"):
        with pytest.raises(ValidationError, match="azureml:<name>:<version>"):
            components.resolve(store, bad)
    with pytest.raises(NotEmulated, match="labels other than 'latest'"):
        components.resolve(store, "azureml:train@stable")
    with pytest.raises(ResourceNotFound, match="Component 'train' version '9' not found"):
        components.resolve(store, "azureml:train:9")
    with pytest.raises(ResourceNotFound, match="Register it first"):
        components.get(store, "other")
    with pytest.raises(ValidationError, match="not both"):
        components.get(store, "train", "1", "latest")


def test_a_step_naming_a_component_runs_as_its_command_job(store, code, tmp_path):
    components.create_or_update(store, spec(code="./src", version="1"), code)
    (tmp_path / "data").mkdir()
    pipeline = {
        "type": "pipeline",
        "inputs": {"data": {"type": "uri_folder", "path": "./data"}},
        "outputs": {"model": {"type": "uri_folder"}},
        "jobs": {
            "train": {
                "type": "command",
                "component": "azureml:train:1",
                "inputs": {"data": "${{parent.inputs.data}}"},
                "outputs": {"model": "${{parent.outputs.model}}"},
                "environment_variables": {"A": "1"},
            }
        },
    }
    job = normalize_pipeline_job(pipeline, tmp_path, store)["jobs"]["train"]["job"]
    assert job["command"].startswith("python train.py") and Path(job["code"]).is_relative_to(store.root)
    assert job["inputs"] == {"lr": 0.1, "data": "${{parent.inputs.data}}"}  # the declared default filled in
    assert job["environment"] == ENV and job["environment_variables"] == {"A": "1"}


@pytest.mark.parametrize(
    "step, message",
    [
        ({"inputs": {}}, "input 'data' of component azureml:train:1 has no value and no default"),
        ({"inputs": {"data": "x", "epochs": 3}}, "has no input(s) epochs (its inputs: lr, data)"),
        ({"inputs": {"data": "x"}, "outputs": {"weights": {}}}, "has no output(s) weights"),
        ({"inputs": {"data": "x"}, "command": "echo"}, "remove command (the component defines them)"),
    ],
)
def test_a_step_that_does_not_fit_its_component_is_refused(store, code, step, message):
    record = components.create_or_update(store, spec(version="1"), code)
    with pytest.raises(ValidationError) as info:
        components.step_job(record, step, "Pipeline step 'train'")
    assert message in info.value.message


def test_a_pipeline_naming_a_missing_component_names_the_step(store, tmp_path):
    pipeline = {"type": "pipeline", "jobs": {"train": {"type": "command", "component": "azureml:train:1"}}}
    with pytest.raises(ResourceNotFound, match="Pipeline step 'train': .*Component 'train' version '1' not found"):
        normalize_pipeline_job(pipeline, tmp_path, store)


def test_a_component_spec_as_the_sdk_sends_it(store):
    """The front door's path: a componentSpec with ARM ids, no local code; defaults kept as text."""
    sent = {
        **spec(),
        "code": "azureml:/subscriptions/s/resourceGroups/r/providers/x/codes/c/versions/1",
        "_source": "x",
    }
    record, created = components.register(store, "train", "3", sent, description="d")
    assert created and "_source" not in record["component_spec"] and record["code_hash"] is None
    assert record["component_spec"]["inputs"]["lr"]["default"] == "0.1"
    assert components.register(store, "train", "3", sent, description="e")[0]["description"] == "e"
    with pytest.raises(NotEmulated, match="ARM id"):  # its code is a code asset the engine cannot open
        components.step_job(record, {"inputs": {"data": "x"}}, "Pipeline step 'train'")
