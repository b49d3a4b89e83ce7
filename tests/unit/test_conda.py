"""Conda files turned into pip requirements for a virtualenv."""

from __future__ import annotations

import pytest

from emulator.environments.conda import notes, pip_requirements, python_version, requirement_files
from emulator.errors import ValidationError


def reqs(*deps):
    return pip_requirements({"name": "env", "channels": ["conda-forge"], "dependencies": list(deps)})


def test_pip_section_passed_through():
    assert reqs({"pip": ["pandas>=2.0", "requests==2.32.3"]}) == ["pandas>=2.0", "requests==2.32.3"]


@pytest.mark.parametrize(
    "dep, expected",
    [
        ("numpy=1.26", "numpy==1.26.*"),  # conda's single '=' is a prefix match
        ("numpy=1.26.4", "numpy==1.26.4"),
        ("numpy>=1.20", "numpy>=1.20"),
        ("numpy==1.26.4", "numpy==1.26.4"),
        ("numpy", "numpy"),
    ],
)
def test_conda_version_specs(dep, expected):
    assert reqs(dep) == [expected]


def test_python_and_pip_dropped():
    assert reqs("python=3.11", "pip", "setuptools", "scipy") == ["scipy"]


def test_pytorch_becomes_torch():
    assert reqs("pytorch=2.2") == ["torch==2.2.*"]


def test_azure_packages_installed_as_listed():
    """Azure installs what the pip list names; stand-ins come only at build time, for what cannot install."""
    assert reqs({"pip": ["azureml-mlflow==1.57.0", "azureml-defaults", "azureml-inference-server-http"]}) == [
        "azureml-defaults",
        "azureml-inference-server-http",
        "azureml-mlflow==1.57.0",
    ]


def test_conda_only_package_named_with_why_and_fix():
    with pytest.raises(ValidationError) as caught:
        reqs("python=3.11", "cudatoolkit=11.8", {"pip": ["torch"]})
    message = str(caught.value)
    assert "'cudatoolkit'" in message and "only on conda channels" in message and "Remove it" in message
    assert "Check the package names" not in message


def test_conda_system_libraries_left_to_the_system_and_said():
    conda = {"dependencies": ["python=3.10", "openssl=3.0", "libgcc-ng", "cpuonly", "numpy"]}
    assert pip_requirements(conda) == ["numpy"]
    assert "cpuonly, libgcc-ng, openssl" in notes(conda)[0]


@pytest.mark.parametrize(
    "dep, expected",
    [("python=3.9", "3.9"), ("python==3.10.12", "3.10"), ("python 3.12.*", "3.12"), ("python>=3.8", None)],
)
def test_python_version(dep, expected):
    assert python_version({"dependencies": [dep, "numpy"]}) == expected
    assert python_version({"dependencies": ["numpy"]}) is None


def test_requirement_file_read_relative_to_the_conda_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "requirements.txt").write_text("# pinned\npandas==2.2.3\n-r sub/more.txt\n\n")
    (tmp_path / "sub" / "more.txt").write_text("scikit-learn>=1.5  # trailing comment\n")
    conda = {"dependencies": ["python=3.11", {"pip": ["-r requirements.txt", "numpy"]}]}
    files = requirement_files(conda, tmp_path)
    assert files == {"requirements.txt": ["# pinned", "pandas==2.2.3", "-r sub/more.txt", ""],
                     "sub/more.txt": ["scikit-learn>=1.5  # trailing comment"]}  # fmt: skip
    assert pip_requirements(conda, files) == ["numpy", "pandas==2.2.3", "scikit-learn>=1.5"]
    assert requirement_files(conda, tmp_path / "elsewhere", known=files) == files  # kept: not read again


def test_missing_requirement_file_named_with_the_fix(tmp_path):
    conda = {"dependencies": [{"pip": ["--requirement=reqs/requirements.txt"]}]}
    with pytest.raises(ValidationError) as caught:
        requirement_files(conda, tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "reqs" / "requirements.txt") in message and "does not exist" in message
    assert "relative to the file that names it" in message
    with pytest.raises(ValidationError, match="was not read when the environment was registered"):
        pip_requirements(conda)


def test_pip_options_rejected():
    with pytest.raises(ValidationError, match="--index-url"):
        reqs({"pip": ["--index-url https://example.com/simple", "torch"]})


def test_sorted_and_deduplicated():
    assert reqs("scipy", {"pip": ["mlflow-skinny", "pandas", "mlflow-skinny"]}, "scipy", "numpy=1.26") == [
        "mlflow-skinny",
        "numpy==1.26.*",
        "pandas",
        "scipy",
    ]


def test_not_a_mapping_rejected():
    with pytest.raises(ValidationError, match="mapping"):
        pip_requirements(["numpy"])


def test_channel_prefix_stripped():
    assert reqs("conda-forge::numpy=1.26") == ["numpy==1.26.*"]


def test_space_separated_version_kept():
    assert reqs("numpy 1.26.*") == ["numpy==1.26.*"]
