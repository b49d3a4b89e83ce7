"""Conda files turned into pip requirements for a virtualenv."""

from __future__ import annotations

import pytest

from emulator.environments.conda import pip_requirements
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


def test_azureml_mlflow_becomes_mlflow_skinny():
    assert reqs({"pip": ["azureml-mlflow==1.57.0"]}) == ["mlflow-skinny"]


def test_azureml_defaults_dropped():
    assert reqs({"pip": ["azureml-defaults", "AzureML-Core"]}) == []


def test_conda_only_package_named():
    with pytest.raises(ValidationError, match="'cudatoolkit'"):
        reqs("python=3.11", "cudatoolkit=11.8", {"pip": ["torch"]})


def test_pip_options_rejected():
    with pytest.raises(ValidationError, match="--index-url"):
        reqs({"pip": ["--index-url https://example.com/simple", "torch"]})


def test_sorted_and_deduplicated():
    assert reqs("scipy", {"pip": ["mlflow-skinny", "azureml-mlflow", "pandas"]}, "scipy", "numpy=1.26") == [
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
