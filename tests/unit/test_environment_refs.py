"""Environment references, curated names, and what a job's environment resolves to."""

from __future__ import annotations

import re

import pytest
import yaml

from emulator.environments import curated, registry
from emulator.environments.curated import CuratedEnvironment, EnvironmentRef
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
        (
            "azureml://registries/someone-else/environments/sklearn-1.5/labels/latest",
            "sklearn-1.5",
            None,
            "latest",
            "someone-else",
            None,
        ),
        (
            "azureml:AzureML-minimal-py312-inference@latest",
            "AzureML-minimal-py312-inference",
            None,
            "latest",
            None,
            "minimal-py312-inference",
        ),
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


# -- curated environments: Azure's lists, fast and exact mode -------------------------------------
def test_every_curated_environment_has_azures_list_and_where_it_was_read():
    data = curated.catalogue()
    assert data["repository"] == "https://github.com/Azure/azureml-assets"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["read_on"])
    for name, entry in data["environments"].items():
        assert entry.get("same_as") in (None, *data["environments"]), name
        env = curated.get(name)
        if env.emulated_by_amlemu:
            assert env.notes, name  # says what it runs instead
            continue
        assert re.fullmatch(r"3\.\d+", env.python), name
        assert env.packages and set(env.here) <= set(env.packages), name
        assert env.source.startswith("assets/") and env.source.endswith(("conda_dependencies.yaml", "requirements.txt"))
        assert re.fullmatch(r"[0-9a-f]{40}", env.commit), name
        assert env.source_url().startswith("https://github.com/Azure/azureml-assets/blob/")
        if env.gpu_only or "same_as" in entry:
            assert env.notes, name  # a GPU-only or borrowed list is said to be one


def test_the_environments_the_issue_names_are_known():
    for name in (
        "sklearn-1.5",
        "minimal-ubuntu22.04-py39-cpu-inference",
        "minimal-py312-inference",
        "mlflow-py312-inference",
        "lightgbm-3.3",
        "ACPT-pytorch-2.2-cuda12.1",
        "tensorflow-2.16-cuda12",
    ):
        assert curated.get(name) is not None, name
    sklearn = curated.get("sklearn-1.5")
    assert sklearn.python == "3.10"
    assert sklearn.packages["scikit-learn"] == "~=1.5.0"
    assert sklearn.packages["azureml-mlflow"] == "latest"
    assert "scikit-learn~=1.5.0" in sklearn.requirements() and "azureml-mlflow" in sklearn.requirements()
    torch_env = curated.get("ACPT-pytorch-2.2-cuda12.1")
    assert "torch==2.13.0+cpu" in torch_env.requirements()  # the CPU build this machine has, never a CUDA one
    assert "torch" in torch_env.distributions()
    assert curated.get("pytorch-2.2-cuda12.1").packages == torch_env.packages


def test_fast_mode_uses_the_host_interpreter_only_when_it_holds_the_whole_list():
    held = CuratedEnvironment("held", "3.11", packages={"scikit-learn": "~=1.0.0", "numpy": ""})
    how = curated.describe(held, "fast")  # any version counts: the host's scikit-learn is not 1.0
    assert how.requirements is None and how.python is None
    assert "amlemu's own interpreter" in how.summary
    lacking = CuratedEnvironment("lacking", "3.10", packages={"scikit-learn": "", "no-such-dist-amlemu": "==1.0"})
    how = curated.describe(lacking, "fast")
    # Azure's list, then amlemu's job tooling (ONNX, MLflow) that the list does not name, resolved together
    assert how.requirements == ["scikit-learn", "no-such-dist-amlemu==1.0", *curated.TOOLING]
    assert how.python is None  # the host's Python; the builder substitutes pins it cannot have
    assert how.missing_on_host == ("no-such-dist-amlemu",)
    assert "no-such-dist-amlemu" in how.summary


def test_a_name_that_takes_another_list_resolves_to_the_same_build(store, tmp_path, monkeypatch):
    """Fast mode builds on the host Python: the same requirements make the same cached virtualenv."""
    monkeypatch.delenv("AMLEMU_CURATED", raising=False)
    for name, entry in curated.catalogue()["environments"].items():
        if "same_as" in entry:
            alias = registry.resolve(store, f"azureml:AzureML-{name}@latest", tmp_path)
            base = registry.resolve(store, f"azureml:AzureML-{entry['same_as']}@latest", tmp_path)
            assert (alias["requirements"], alias["python"]) == (base["requirements"], base["python"]), name


def test_installed_versions_reads_dist_info_folders(tmp_path):
    (tmp_path / "scikit_learn-1.5.2.dist-info").mkdir()
    (tmp_path / "Py_CpuInfo-5.0.0.dist-info").mkdir()
    (tmp_path / "not_a_dist").mkdir()
    assert curated.installed_versions([tmp_path, tmp_path / "missing"]) == {
        "scikit-learn": "1.5.2",
        "py-cpuinfo": "5.0.0",
    }


def test_curated_name_resolves_to_azures_list(store, tmp_path, monkeypatch):
    monkeypatch.delenv("AMLEMU_CURATED", raising=False)
    record = registry.resolve(store, "azureml:AzureML-sklearn-1.5@latest", tmp_path)
    assert record["curated"] is True
    azure = curated.get(
        "sklearn-1.5"
    ).requirements()  # the host lacks azureml-core: Azure's list, then amlemu's tooling
    assert record["requirements"] == [*azure, *(t for t in curated.TOOLING if t not in azure)]
    assert record["python"] is None
    assert record["note"].startswith("fast mode: a cached virtualenv")
    assert "azureml-core" in record["note"]


def test_exact_mode_asks_for_azures_python(store, tmp_path, monkeypatch):
    monkeypatch.setenv("AMLEMU_CURATED", "exact")
    record = registry.resolve(store, "azureml://registries/azureml/environments/lightgbm-3.3/labels/latest", tmp_path)
    assert record["python"] == "3.10"
    assert "lightgbm>=4.6.0" in record["requirements"] and "numpy~=1.22.0" in record["requirements"]
    assert record["note"].startswith("exact mode")
    torch_record = registry.resolve(store, "azureml:AzureML-ACPT-pytorch-2.2-cuda12.1@latest", tmp_path)
    assert torch_record["python"] == "3.11"  # the only CPU torch here is a Python 3.11 wheel
    assert "GPUs only" in torch_record["note"]


def test_exact_mode_from_the_config_file(store, tmp_path, monkeypatch):
    monkeypatch.delenv("AMLEMU_CURATED", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".amlemu.yml").write_text("curated: exact\n")
    assert curated.mode() == "exact"


def test_unknown_mode_is_refused(store, tmp_path, monkeypatch):
    monkeypatch.setenv("AMLEMU_CURATED", "fastest")
    with pytest.raises(ValidationError, match="AMLEMU_CURATED"):
        registry.resolve(store, "azureml:AzureML-sklearn-1.5@latest", tmp_path)


def test_automl_environment_runs_amlemus_own_code(store, tmp_path, monkeypatch):
    for how in ("fast", "exact"):
        monkeypatch.setenv("AMLEMU_CURATED", how)
        record = registry.resolve(store, "azureml:AzureML-ai-ml-automl@latest", tmp_path)
        assert record["requirements"] is None and record["python"] is None
        assert "not emulated" in record["note"]


def test_another_registrys_environment_is_not_curated(store, tmp_path):
    with pytest.raises(ResourceNotFound) as info:
        registry.resolve(store, "azureml://registries/someone-else/environments/sklearn-1.5/labels/latest", tmp_path)
    assert "registry 'someone-else'" in str(info.value) and "sklearn-1.5" in str(info.value)


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
    assert record["requirements"] == ["azureml-mlflow", "numpy==1.26.*", "pandas"]  # Azure's packages as listed
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
