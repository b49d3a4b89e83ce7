"""The model paths that name a job's output (emulator.models.registry.job_output), in every form Azure ML's docs use."""

from __future__ import annotations

import pytest

from emulator.models.registry import job_output


@pytest.mark.parametrize(
    "path, expected",
    [
        (
            "azureml://jobs/j1/outputs/artifacts/paths/outputs/mlflow-model/",
            ("j1", "artifacts", "outputs/mlflow-model/"),
        ),
        # AutoML's docs register the best trial's model without paths/
        ("azureml://jobs/j1/outputs/artifacts/outputs/mlflow-model/", ("j1", "artifacts", "outputs/mlflow-model/")),
        ("azureml://jobs/j1/outputs/artifacts", ("j1", "artifacts", "")),
        ("azureml://jobs/j1/outputs/model_out", ("j1", "model_out", "")),
        ("azureml://jobs/j1/outputs/model_out/paths/a/b.pkl", ("j1", "model_out", "a/b.pkl")),
        ("runs:/j1/outputs/model.pkl", ("j1", "artifacts", "outputs/model.pkl")),
    ],
)
def test_job_output_forms(path, expected):
    assert job_output(path) == expected


@pytest.mark.parametrize(
    "path",
    ["azureml://jobs/j1/outputs/model_out/extra", "azureml://datastores/ds/paths/a", "./model", "azureml:iris:1"],
)
def test_paths_that_name_no_job_output(path):
    assert job_output(path) is None
