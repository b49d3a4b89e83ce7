"""CLI v2 YAML files and ``--set`` overrides."""

from __future__ import annotations

import pytest

from backends.yaml_specs import apply_sets, load_yaml_file
from emulator.errors import ValidationError


def test_malformed_yaml_names_the_line(tmp_path):
    path = tmp_path / "job.yml"
    path.write_text("command: python train.py\nenvironment: azureml:env@latest\ndisplay_name: : bad\ncode: src\n")
    with pytest.raises(ValidationError) as info:
        load_yaml_file(str(path))
    assert "line 3" in str(info.value)
    assert str(path) in str(info.value)


def test_yaml_list_rejected(tmp_path):
    path = tmp_path / "job.yml"
    path.write_text("- command: python train.py\n")
    with pytest.raises(ValidationError, match="mapping.*list"):
        load_yaml_file(str(path))


def test_missing_file_rejected(tmp_path):
    with pytest.raises(ValidationError, match="not found"):
        load_yaml_file(str(tmp_path / "nope.yml"))


def test_mapping_and_base_path(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "job.yml"
    path.write_text("command: echo hi\n")
    assert load_yaml_file(str(path)) == ({"command": "echo hi"}, tmp_path / "sub")


def test_set_scalar_parsed_as_yaml():
    data = apply_sets({"inputs": {"C": 1.0}}, ["inputs.C=0.8", "inputs.n=3", "inputs.flag=true"])
    assert data["inputs"] == {"C": 0.8, "n": 3, "flag": True}
    assert isinstance(data["inputs"]["C"], float)


def test_set_creates_nested_dicts():
    assert apply_sets({}, ["inputs.data.path=./x.csv"]) == {"inputs": {"data": {"path": "./x.csv"}}}


def test_set_path_turns_literal_input_into_data_input():
    data = apply_sets(
        {"inputs": {"data": {"type": "uri_file", "path": "https://x/y.csv"}}}, ["inputs.data.path=./x.csv"]
    )
    assert data["inputs"]["data"] == {"type": "uri_file", "path": "./x.csv"}


def test_set_tag():
    assert apply_sets({"tags": {"old": "1"}}, ["tags.a=b"])["tags"] == {"old": "1", "a": "b"}


def test_set_value_may_contain_equals():
    assert apply_sets({}, ["command=python t.py --lr=0.1"])["command"] == "python t.py --lr=0.1"


def test_set_without_equals_rejected():
    with pytest.raises(ValidationError, match="inputs.C"):
        apply_sets({}, ["inputs.C"])


@pytest.mark.parametrize("value", ["run #2", "echo a: b"])
def test_set_text_value_kept_verbatim(value):
    assert apply_sets({}, [f"display_name={value}"])["display_name"] == value
