"""Environment references, curated names, and what a job's environment resolves to."""

from __future__ import annotations

import pytest
import yaml

from emulator.environments import registry
from emulator.environments.curated import EnvironmentRef
from emulator.errors import ResourceNotFound, ValidationError


@pytest.mark.parametrize(
    "text, name, version, label, registry_name, curated",
    [
        ("AzureML-sklearn-1.5@latest", "AzureML-sklearn-1.5", None, "latest", None, "sklearn-1.5"),
        ("azureml:AzureML-sklearn-1.5:3", "AzureML-sklearn-1.5", "3", None, None, "sklearn-1.5"),
        (
            "azureml://registries/azureml/environments/sklearn-1.5/labels/latest",
            "sklearn-1.5",
            None,
            "latest",
            "azureml",
            "sklearn-1.5",
        ),
        (
            "azureml://registries/azureml/environments/sklearn-1.5/versions/7",
            "sklearn-1.5",
            "7",
            None,
            "azureml",
            "sklearn-1.5",
        ),
        ("my-env:2", "my-env", "2", None, None, None),
        ("azureml:my-env@latest", "my-env", None, "latest", None, None),
        ("AzureML-not-a-curated-one@latest", "AzureML-not-a-curated-one", None, "latest", None, None),
    ],
)
def test_parse(text, name, version, label, registry_name, curated):
    ref = EnvironmentRef.parse(text)
    assert (ref.name, ref.version, ref.label, ref.registry) == (name, version, label, registry_name)
    assert ref.curated_key == curated


def test_str_round_trips_registry_uri():
    text = "azureml://registries/azureml/environments/sklearn-1.5/versions/7"
    assert str(EnvironmentRef.parse(text)) == text


# -- resolve / create ----------------------------------------------------------------------------
def write_conda(folder, deps):
    path = folder / "conda.yml"
    path.write_text(yaml.safe_dump({"name": "env", "dependencies": deps}))
    return path


def test_curated_name_resolves_to_own_interpreter(store, tmp_path):
    record = registry.resolve(store, "azureml:AzureML-sklearn-1.5@latest", tmp_path)
    assert record["curated"] is True
    assert record["requirements"] is None


def test_curated_registry_uri_resolves(store, tmp_path):
    record = registry.resolve(store, "azureml://registries/azureml/environments/lightgbm-3.3/labels/latest", tmp_path)
    assert record["requirements"] == ["lightgbm", "scikit-learn", "mlflow-skinny", "pandas"]


def test_unknown_name_suggests_environment_create(store, tmp_path):
    with pytest.raises(ResourceNotFound) as info:
        registry.resolve(store, "azureml:no-such-env@latest", tmp_path)
    assert "amlemu environment create" in str(info.value)
    assert "no-such-env" in str(info.value)


def test_registered_image_with_conda_file(store, tmp_path):
    write_conda(tmp_path, ["python=3.11", "pip", "numpy=1.26", {"pip": ["pandas", "azureml-mlflow"]}])
    created = registry.create(
        store,
        {"name": "my-env", "image": "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04", "conda_file": "conda.yml"},
        tmp_path,
    )
    assert created["version"] == "1"
    record = registry.resolve(store, "azureml:my-env:1", tmp_path / "elsewhere")
    assert record["reference"] == "azureml:my-env:1"
    assert record["curated"] is False
    assert record["requirements"] == ["mlflow-skinny", "numpy==1.26.*", "pandas"]
    assert "cannot be pulled" in record["note"]
    assert "openmpi4.1.0-ubuntu22.04" in record["note"]


def test_versions_auto_increment_and_latest_picks_newest(store, tmp_path):
    write_conda(tmp_path, [{"pip": ["pandas"]}])
    first = registry.create(store, {"name": "my-env", "image": "python:3.11", "conda_file": "conda.yml"}, tmp_path)
    write_conda(tmp_path, [{"pip": ["polars"]}])
    second = registry.create(store, {"name": "my-env", "image": "python:3.11", "conda_file": "conda.yml"}, tmp_path)
    assert (first["version"], second["version"]) == ("1", "2")
    latest = registry.resolve(store, "azureml:my-env@latest", tmp_path)
    assert latest["reference"] == "azureml:my-env:2"
    assert latest["requirements"] == ["polars"]
    assert registry.resolve(store, "my-env:1", tmp_path)["requirements"] == ["pandas"]


def test_neither_image_nor_build_rejected(store, tmp_path):
    write_conda(tmp_path, [{"pip": ["pandas"]}])
    with pytest.raises(ValidationError, match="'image'"):
        registry.create(store, {"name": "my-env", "conda_file": "conda.yml"}, tmp_path)
    assert store.list_assets(registry.KIND) == []


def test_build_context_without_dockerfile_rejected(store, tmp_path):
    (tmp_path / "ctx").mkdir()
    with pytest.raises(ValidationError, match="Dockerfile"):
        registry.create(store, {"name": "my-env", "build": {"path": "ctx"}}, tmp_path)
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM python:3.11\n")
    created = registry.create(store, {"name": "my-env", "build": {"path": "ctx"}}, tmp_path)
    assert created["build"] == {"path": str(tmp_path / "ctx"), "dockerfile_path": "Dockerfile"}


def test_conda_only_package_rejected_at_create(store, tmp_path):
    write_conda(tmp_path, ["python=3.11", "cudatoolkit=11.8", {"pip": ["torch"]}])
    with pytest.raises(ValidationError, match="cudatoolkit"):
        registry.create(store, {"name": "gpu-env", "image": "python:3.11", "conda_file": "conda.yml"}, tmp_path)
    assert store.list_assets(registry.KIND) == []
