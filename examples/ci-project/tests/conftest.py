"""The project's own test set-up: a trained model for the scoring tests, and the container tests' Docker check.

amlemu's fixtures (aml_client, aml_run_job, aml_deploy, ...) need nothing here: installing amlemu registers them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project_dir() -> Path:
    """The project's root folder: the paths in the tests (src, env/conda.yml) are relative to it."""
    return PROJECT


@pytest.fixture(scope="session")
def iris_model(tmp_path_factory) -> Path:
    """A model folder as train.py writes it (outputs/model/model.onnx), trained here without a job: a second."""
    import train  # src/ (pythonpath in pyproject.toml); scikit-learn loads only for the tests that need a model

    features, labels = train.load(PROJECT / "data" / "iris.csv")
    model, _ = train.train(features, labels, C=1.0)
    folder = tmp_path_factory.mktemp("outputs") / "model"
    train.export(model, folder)
    return folder


def docker_answers() -> bool:
    try:
        import docker  # installed with amlemu

        docker.from_env(timeout=5).ping()
        return True
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    """Without a Docker engine the container tests are skipped, saying why; CI sets REQUIRE_DOCKER=1 so that a
    missing engine fails them instead."""
    marked = [item for item in items if item.get_closest_marker("container")]
    if not marked or os.environ.get("REQUIRE_DOCKER") == "1" or docker_answers():
        return
    skip = pytest.mark.skip(reason="no Docker engine answers (start one, or set REQUIRE_DOCKER=1 to fail instead)")
    for item in marked:
        item.add_marker(skip)
