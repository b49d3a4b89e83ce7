"""azure-ai-ml PipelineJob entities (CLI v2 YAML through load_job, and the @pipeline DSL) to engine specs, and back."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from emulator.errors import NotEmulated
from emulator.pipelines.spec import normalize_pipeline_job
from tests.conftest import SAMPLES

logging.getLogger("azure.ai.ml").setLevel(logging.ERROR)

ENV = "azureml:AzureML-sklearn-1.5@latest"


def to_spec(job):
    from backends.job_entities import job_to_spec

    return job_to_spec(job)


def test_sample_pipeline_yaml_converts_to_a_spec_the_engine_accepts():
    from azure.ai.ml import load_job

    data = to_spec(load_job(SAMPLES / "iris" / "pipeline.yml"))
    assert data["type"] == "pipeline" and list(data["jobs"]) == ["prep", "profile", "train", "score"]
    assert data["inputs"]["iris_csv"] == {"type": "uri_file", "path": str(SAMPLES / "iris" / "data" / "iris.csv")}
    assert data["inputs"]["C"] == 0.5
    train = data["jobs"]["train"]
    assert train["code"] == str(SAMPLES / "iris" / "pipeline")
    assert train["inputs"] == {
        "prepared": "${{parent.jobs.prep.outputs.prepared}}",
        "C": "${{parent.inputs.C}}",
        "max_iter": "${{parent.inputs.max_iter}}",
    }
    assert train["outputs"] == {"model": "${{parent.outputs.trained_model}}"}
    spec = normalize_pipeline_job(data, Path.cwd())
    assert spec["outputs"]["evaluation"]["step"] == "score"
    assert spec["jobs"]["score"]["needs"] == ["train", "prep"]


def write_pipeline(tmp_path, step):
    (tmp_path / "comps" / "src").mkdir(parents=True)
    (tmp_path / "comps" / "stats.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json\n"
        "name: stats\nversion: 1\ntype: command\ncode: ./src\n"
        f"environment: {ENV}\n"
        "inputs:\n  data: {type: uri_folder}\n  n: {type: integer, default: 3}\n"
        "outputs:\n  report: {type: uri_folder}\n"
        "command: python stats.py ${{inputs.data}} ${{inputs.n}} ${{outputs.report}}\n"
    )
    (tmp_path / "pipeline.yml").write_text(
        "type: pipeline\ninputs:\n  folder: {type: uri_folder, path: ./comps}\njobs:\n  stats:\n" + step
    )
    from azure.ai.ml import load_job

    return load_job(tmp_path / "pipeline.yml")


def test_file_component_steps_are_inlined_with_their_defaults(tmp_path):
    job = write_pipeline(
        tmp_path,
        "    type: command\n    component: file:./comps/stats.yml\n    inputs: {data: '${{parent.inputs.folder}}'}\n",
    )
    step = to_spec(job)["jobs"]["stats"]
    assert step["code"] == str(tmp_path / "comps" / "src")  # relative to the component's own file
    assert step["inputs"] == {"data": "${{parent.inputs.folder}}", "n": 3}
    assert step["outputs"] == {"report": {"type": "uri_folder"}}
    assert "${{inputs.n}}" in step["command"]


def test_registered_component_steps_name_their_component_for_the_engine(tmp_path):
    job = write_pipeline(
        tmp_path, "    type: command\n    component: azureml:stats:1\n    inputs: {data: '${{parent.inputs.folder}}'}\n"
    )
    step = to_spec(job)["jobs"]["stats"]  # the engine resolves the reference (emulator.pipelines.components)
    assert step["component"] == "azureml:stats:1" and "command" not in step
    assert step["inputs"] == {"data": "${{parent.inputs.folder}}"}


def test_dsl_pipeline_with_command_and_loaded_components(tmp_path):
    from azure.ai.ml import Input, Output, command, load_component
    from azure.ai.ml.dsl import pipeline

    write_pipeline(tmp_path, "    command: echo\n    environment: " + ENV + "\n")
    stats = load_component(tmp_path / "comps" / "stats.yml")
    prep = command(
        command="cp -r ${{inputs.raw}}/. ${{outputs.out}}",
        environment=ENV,
        inputs={"raw": Input(type="uri_folder")},
        outputs={"out": Output(type="uri_folder")},
    )

    @pipeline(experiment_name="dsl", default_compute="local")
    def two_steps(folder, n=5):
        p = prep(raw=folder)
        s = stats(data=p.outputs.out, n=n)
        return {"final": s.outputs.report}

    job = two_steps(folder=Input(type="uri_folder", path=str(tmp_path / "comps")))
    job.settings.continue_on_step_failure = True
    data = to_spec(job)
    assert data["settings"] == {"default_compute": "local", "continue_on_step_failure": True}
    assert data["inputs"] == {"folder": {"type": "uri_folder", "path": str(tmp_path / "comps")}, "n": 5}
    assert data["jobs"]["s"]["inputs"] == {"data": "${{parent.jobs.p.outputs.out}}", "n": "${{parent.inputs.n}}"}
    assert data["jobs"]["s"]["outputs"] == {"report": "${{parent.outputs.final}}"}
    spec = normalize_pipeline_job(data, tmp_path)
    assert spec["outputs"]["final"]["step"] == "s" and spec["jobs"]["s"]["job"]["compute"] == "local"


def test_dsl_nested_pipeline_is_not_emulated():
    from azure.ai.ml import command
    from azure.ai.ml.dsl import pipeline

    hello = command(command="echo hello", environment=ENV)

    @pipeline()
    def inner():
        hello()

    @pipeline()
    def outer():
        inner()

    with pytest.raises(NotEmulated) as info:
        to_spec(outer())
    assert "pipeline steps in pipeline jobs" in info.value.message


def test_record_to_pipeline_job_has_status_steps_and_outputs(store, tmp_path):
    from azure.ai.ml import load_job
    from azure.ai.ml.entities import PipelineJob

    from backends.job_entities import record_to_job

    spec = normalize_pipeline_job(to_spec(load_job(SAMPLES / "iris" / "pipeline.yml")), Path.cwd())
    spec.update(name="pl-1", experiment_name="iris-pipeline", display_name="iris-pipeline")
    store.insert_job(
        {
            "name": "pl-1",
            "type": "pipeline",
            "experiment_name": "iris-pipeline",
            "status": "NotStarted",
            "spec": spec,
            "created_at": time.time(),
        }
    )
    job = record_to_job(store, store.get_job("pl-1"))
    assert isinstance(job, PipelineJob)
    assert job.name == "pl-1" and job.status == "NotStarted" and job.id.endswith("/jobs/pl-1")
    assert list(job.jobs) == ["prep", "profile", "train", "score"]
    assert job.properties["amlemu.steps.train.status"] == "NotStarted"
    assert job.settings.continue_on_step_failure is False
    assert job.outputs["trained_model"].path.endswith("/jobs/pl-1/outputs/trained_model")
    dumped = job._to_dict()  # what printing or dumping the entity does
    assert dumped["jobs"]["train"]["outputs"]["model"]["path"] == "${{parent.outputs.trained_model}}"
    assert dumped["jobs"]["train"]["inputs"]["prepared"] == {"path": "${{parent.jobs.prep.outputs.prepared}}"}
