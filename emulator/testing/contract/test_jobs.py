"""Jobs: submit a command job (SDK or CLI v2 YAML), stream, get, list, download its outputs, cancel; SDK errors."""

from __future__ import annotations

import time

import pytest
from azure.ai.ml import Input, Output, command, load_job
from azure.ai.ml.exceptions import JobException
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.core.polling import LROPoller

from backends.base import Backend
from emulator.testing.contract import CURATED, IRIS


def test_client_shape(ml_client):
    assert isinstance(ml_client, Backend)
    for group in ("jobs", "models", "environments", "compute", "online_endpoints", "online_deployments"):
        assert getattr(ml_client, group) is not None


def test_load_job_yaml_and_outputs(ml_client, tmp_path):
    job = load_job(IRIS / "job.yml")
    created = ml_client.jobs.create_or_update(job, experiment_name="iris-yaml")
    ml_client.jobs.stream(created.name)
    assert ml_client.jobs.get(created.name).inputs["iris_csv"].path.endswith("iris.csv")
    ml_client.jobs.download(created.name, download_path=str(tmp_path))
    assert (tmp_path / "artifacts" / "outputs" / "model.onnx").exists()
    assert created.name in [j.name for j in ml_client.jobs.list()]


def test_named_output_and_literal_inputs(ml_client, tmp_path):
    data = tmp_path / "in.txt"
    data.write_text("abc")
    job = ml_client.jobs.create_or_update(
        command(
            command="cp ${{inputs.src}} ${{outputs.out}}/copy.txt && echo ${{inputs.flag}} > ${{outputs.out}}/flag.txt",
            inputs={"src": Input(type="uri_file", path=str(data)), "flag": True},
            outputs={"out": Output(type="uri_folder")},
            environment=f"azureml:{CURATED}",
        )
    )
    ml_client.jobs.stream(job.name)
    ml_client.jobs.download(job.name, download_path=str(tmp_path / "dl"), output_name="out")
    assert (tmp_path / "dl" / "named-outputs" / "out" / "copy.txt").read_text() == "abc"
    assert (tmp_path / "dl" / "named-outputs" / "out" / "flag.txt").read_text().strip() == "True"


def test_sdk_exception_types(ml_client, unique_name):
    with pytest.raises(ResourceNotFoundError):
        ml_client.jobs.get("no-such-job-xyz")
    failing = ml_client.jobs.create_or_update(command(command="exit 7", environment=CURATED))
    with pytest.raises(JobException):
        ml_client.jobs.stream(failing.name)
    assert ml_client.jobs.get(failing.name).status == "Failed"
    name = unique_name("job", "only-once-job")
    ml_client.jobs.create_or_update(command(command="echo once", environment=CURATED, name=name))
    with pytest.raises(ResourceExistsError):
        ml_client.jobs.create_or_update(command(command="echo twice", environment=CURATED, name=name))
    ml_client.jobs.stream(name)  # the first one is unharmed and runs to its end


def test_cancel_returns_a_poller(ml_client):
    job = ml_client.jobs.create_or_update(command(command="sleep 60", environment=CURATED))
    poller = ml_client.jobs.begin_cancel(job.name)
    assert isinstance(poller, LROPoller)
    poller.result()
    deadline = time.monotonic() + 30  # a hang guard: Azure may take a moment to end a canceled job
    while ml_client.jobs.get(job.name).status not in ("Canceled", "Failed", "Completed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert ml_client.jobs.get(job.name).status == "Canceled"
