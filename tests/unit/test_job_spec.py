"""Command job specs: command rendering and validation before anything is recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.errors import NotEmulated, ValidationError
from emulator.jobs.spec import normalize_command_job, render_command


def job(**fields):
    return {"command": "python train.py", "environment": "azureml:AzureML-sklearn-1.5@latest", **fields}


# -- render_command ------------------------------------------------------------------------------
def test_render_substitutes_inputs_and_outputs():
    text = render_command(
        "python train.py --data ${{inputs.data}} --C ${{ inputs.C }} --out ${{outputs.model}}",
        {"data": "/d/x.csv", "C": "0.8"},
        {"model": "/o/model"},
    )
    assert text == "python train.py --data /d/x.csv --C 0.8 --out /o/model"


def test_render_keeps_optional_block_when_input_given():
    text = render_command("python t.py [--x ${{inputs.x}}] --y 1", {"x": "5"}, {})
    assert text == "python t.py --x 5 --y 1"


def test_render_drops_optional_block_when_input_absent():
    text = render_command("python t.py [--x ${{inputs.x}}] --y 1", {}, {})
    assert text == "python t.py  --y 1"
    assert "inputs.x" not in text


def test_render_keeps_brackets_without_references():
    assert render_command("python -c 'print([1, 2])'", {}, {}) == "python -c 'print([1, 2])'"


def test_render_unknown_input_names_it_and_lists_defined():
    with pytest.raises(ValidationError) as info:
        render_command("python t.py ${{inputs.nope}}", {"alpha": "1", "beta": "2"}, {})
    message = str(info.value)
    assert "'nope'" in message
    assert "alpha, beta" in message


# -- normalize_command_job -----------------------------------------------------------------------
def test_unknown_field_is_named(tmp_path):
    with pytest.raises(ValidationError, match="comand"):
        normalize_command_job(job(comand="oops"), tmp_path)


def test_missing_command_rejected(tmp_path):
    data = job()
    del data["command"]
    with pytest.raises(ValidationError, match="no 'command'"):
        normalize_command_job(data, tmp_path)


@pytest.mark.parametrize("name", ["-starts-with-dash", "has space", "dots.not.allowed", "x" * 256])
def test_invalid_job_name_rejected(tmp_path, name):
    with pytest.raises(ValidationError, match="is invalid"):
        normalize_command_job(job(name=name), tmp_path)


def test_job_name_with_trailing_newline_rejected(tmp_path):
    with pytest.raises(ValidationError):
        normalize_command_job(job(name="job\n"), tmp_path)


def test_valid_name_kept(tmp_path):
    assert normalize_command_job(job(name="my_job-1"), tmp_path)["name"] == "my_job-1"


def test_missing_code_folder_says_where_it_looked(tmp_path):
    with pytest.raises(ValidationError) as info:
        normalize_command_job(job(code="./src"), tmp_path)
    assert str(tmp_path / "src") in str(info.value)


def test_code_resolved_from_base_path(tmp_path):
    (tmp_path / "src").mkdir()
    assert normalize_command_job(job(code="src"), tmp_path)["code"] == str(tmp_path / "src")


def test_literal_inputs(tmp_path):
    spec = normalize_command_job(
        job(inputs={"C": 0.8, "n": 3, "flag": True, "s": "text", "typed": {"type": "integer", "default": 7}}), tmp_path
    )
    assert spec["inputs"] == {
        "C": {"type": "literal", "value": 0.8},
        "n": {"type": "literal", "value": 3},
        "flag": {"type": "literal", "value": True},
        "s": {"type": "literal", "value": "text"},
        "typed": {"type": "literal", "value": 7},
    }


def test_uri_file_input_resolved_from_base_path(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text("a,b\n")
    monkeypatch.chdir(tmp_path.parent)  # relative paths must not depend on the cwd
    spec = normalize_command_job(
        job(command="python t.py ${{inputs.data}}", inputs={"data": {"type": "uri_file", "path": "./data/x.csv"}}),
        tmp_path,
    )
    data = spec["inputs"]["data"]
    assert data["path"] == str(tmp_path / "data" / "x.csv")
    assert Path(data["path"]).is_absolute()
    assert data["type"] == "uri_file"
    assert data["mode"] == "ro_mount"


def test_uri_file_pointing_at_folder_rejected(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(ValidationError, match="uri_folder"):
        normalize_command_job(job(inputs={"data": {"type": "uri_file", "path": "data"}}), tmp_path)


def test_input_path_that_does_not_exist(tmp_path):
    with pytest.raises(ValidationError) as info:
        normalize_command_job(job(inputs={"data": {"type": "uri_folder", "path": "./missing"}}), tmp_path)
    assert "does not exist" in str(info.value)
    assert str(tmp_path / "missing") in str(info.value)


@pytest.mark.parametrize(
    "path",
    [
        "https://example.com/data.csv",
        "wasbs://container@account.blob.core.windows.net/x.csv",
    ],
)
def test_remote_inputs_rejected_with_set_hint(tmp_path, path):
    with pytest.raises(ValidationError) as info:
        normalize_command_job(job(inputs={"train": {"type": "uri_file", "path": path}}), tmp_path)
    assert "--set inputs.train.path=" in str(info.value)
    assert not isinstance(info.value, NotEmulated)


def test_data_asset_input_needs_the_workspace(tmp_path):
    """Without the workspace (a job type that does not resolve them), a data asset is refused by name;
    command jobs resolve them (tests/unit/test_data_jobs.py)."""
    with pytest.raises(NotEmulated, match="azureml:mydata:1"):
        normalize_command_job(job(inputs={"data": {"type": "uri_folder", "path": "azureml:mydata:1"}}), tmp_path)


def test_multi_node_spec_normalized(tmp_path):
    spec = normalize_command_job(job(resources={"instance_count": 2}, distribution={"type": "PyTorch"}), tmp_path)
    assert spec["resources"]["instance_count"] == 2
    assert spec["distribution"] == {"type": "pytorch", "process_count_per_instance": 1}
    with pytest.raises(ValidationError, match="instance_count must be"):
        normalize_command_job(job(resources={"instance_count": 0}), tmp_path)


def test_bad_reference_in_command_rejected_at_validation(tmp_path):
    with pytest.raises(ValidationError, match="'lr'"):
        normalize_command_job(job(command="python t.py --lr ${{inputs.lr}}", inputs={"C": 1}), tmp_path)
