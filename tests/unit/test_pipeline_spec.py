"""Pipeline job specs: each kind of bad input is refused, named, before anything is recorded."""

from __future__ import annotations

import copy

import pytest

from emulator.errors import NotEmulated, ResourceNotFound, ValidationError
from emulator.pipelines.spec import normalize_pipeline_job

ENV = "azureml:AzureML-sklearn-1.5@latest"


def pipeline(**fields):
    """prep -> train -> score, train's model bound to the pipeline output 'final'."""
    data = {
        "type": "pipeline",
        "inputs": {"C": 0.5, "data": {"type": "uri_folder", "path": "."}},
        "outputs": {"final": {"type": "uri_folder"}},
        "jobs": {
            "prep": {
                "command": "cp -r ${{inputs.raw}} ${{outputs.prepared}}",
                "environment": ENV,
                "inputs": {"raw": "${{parent.inputs.data}}"},
                "outputs": {"prepared": None},
            },
            "train": {
                "command": "echo ${{inputs.C}} ${{inputs.prepared}} > ${{outputs.model}}/m",
                "environment": ENV,
                "inputs": {"C": "${{parent.inputs.C}}", "prepared": "${{parent.jobs.prep.outputs.prepared}}"},
                "outputs": {"model": "${{parent.outputs.final}}"},
            },
            "score": {
                "command": "cat ${{inputs.model}}/m",
                "environment": ENV,
                "inputs": {"model": {"path": "${{parent.jobs.train.outputs.model}}"}},
            },
        },
    }
    data.update(fields)
    return data


def with_step(step, **fields):
    data = pipeline()
    data["jobs"][step].update(fields)
    return data


def refused(data, tmp_path, error=ValidationError) -> str:
    with pytest.raises(error) as info:
        normalize_pipeline_job(data, tmp_path)
    return info.value.message


def test_a_valid_pipeline_normalizes(tmp_path):
    spec = normalize_pipeline_job(pipeline(settings={"default_compute": "local"}), tmp_path)
    assert spec["inputs"] == {
        "C": {"type": "literal", "value": 0.5},
        "data": {"type": "uri_folder", "path": str(tmp_path), "mode": "ro_mount"},
    }
    assert spec["outputs"] == {"final": {"type": "uri_folder", "mode": "rw_mount", "step": "train", "output": "model"}}
    assert {s: n["needs"] for s, n in spec["jobs"].items()} == {"prep": [], "train": ["prep"], "score": ["train"]}
    train = spec["jobs"]["train"]["job"]
    assert train["inputs"] == {"C": "${{parent.inputs.C}}", "prepared": "${{parent.jobs.prep.outputs.prepared}}"}
    assert train["outputs"] == {"model": {"type": "uri_folder", "mode": "rw_mount"}}
    assert train["compute"] == "local"  # settings.default_compute fills steps without their own
    assert spec["settings"]["continue_on_step_failure"] is False


def test_pipeline_level_output_binding_is_accepted(tmp_path):
    data = pipeline(outputs={"final": "${{parent.jobs.train.outputs.model}}"})
    data["jobs"]["train"]["outputs"]["model"] = {"type": "uri_folder"}
    assert normalize_pipeline_job(data, tmp_path)["outputs"]["final"]["step"] == "train"


def test_cycle_is_named(tmp_path):
    data = with_step("prep", inputs={"raw": "${{parent.jobs.score.outputs.report}}"})
    data["jobs"]["score"]["outputs"] = {"report": None}
    message = refused(data, tmp_path)
    assert "cycle" in message and "prep -> train -> score -> prep" in message


def test_binding_to_a_missing_step_is_named(tmp_path):
    message = refused(with_step("score", inputs={"model": "${{parent.jobs.trian.outputs.model}}"}), tmp_path)
    assert "no step 'trian'" in message and "prep, train, score" in message and "'score'" in message


def test_binding_to_a_missing_output_is_named(tmp_path):
    message = refused(with_step("score", inputs={"model": "${{parent.jobs.train.outputs.weights}}"}), tmp_path)
    assert "step 'train' has no output 'weights'" in message and "its outputs: model" in message


def test_unknown_parent_input_is_named(tmp_path):
    message = refused(
        with_step(
            "train",
            inputs={"C": "${{parent.inputs.learning_rate}}", "prepared": "${{parent.jobs.prep.outputs.prepared}}"},
        ),
        tmp_path,
    )
    assert "no input 'learning_rate'" in message and "inputs: C, data" in message and "'train'" in message


def test_step_without_a_command_is_named(tmp_path):
    data = pipeline()
    del data["jobs"]["score"]["command"]
    message = refused(data, tmp_path)
    assert "step 'score' has no 'command'" in message


def test_step_command_referring_to_an_undeclared_input_is_named(tmp_path):
    message = refused(with_step("score", command="cat ${{inputs.modle}}"), tmp_path)
    assert message.startswith("Pipeline step 'score':") and "${{inputs.modle}}" in message


def test_pipeline_output_bound_to_no_step(tmp_path):
    message = refused(pipeline(outputs={"final": {}, "extra": {}}), tmp_path)
    assert "extra" in message and "not bound" in message


def test_pipeline_output_bound_twice(tmp_path):
    data = with_step("prep", outputs={"prepared": "${{parent.outputs.final}}"})
    assert "bound twice" in refused(data, tmp_path)


def test_step_output_bound_to_an_undeclared_pipeline_output(tmp_path):
    message = refused(with_step("train", outputs={"model": "${{parent.outputs.best}}"}), tmp_path)
    assert "no output 'best'" in message


def test_step_input_bound_to_a_pipeline_output_is_refused(tmp_path):
    assert "a pipeline output" in refused(with_step("score", inputs={"model": "${{parent.outputs.final}}"}), tmp_path)


def test_missing_jobs_and_unknown_fields(tmp_path):
    assert "no 'jobs'" in refused(pipeline(jobs={}), tmp_path)
    assert "stages" in refused(pipeline(stages=[]), tmp_path)
    assert "compute_target" in refused(pipeline(settings={"compute_target": "x"}), tmp_path)
    assert "true or false" in refused(pipeline(settings={"continue_on_step_failure": "yes"}), tmp_path)


@pytest.mark.parametrize(
    "step, operation",
    [
        ({"type": "sweep", "trial": "./trial.yml"}, "sweep steps"),
        ({"type": "command", "component": "./train.yml"}, "'component:' './train.yml'"),
    ],
)
def test_step_shapes_not_emulated_are_named(tmp_path, step, operation):
    data = pipeline()
    data["jobs"]["extra"] = step
    message = refused(data, tmp_path, NotEmulated)
    assert operation in message and "'extra'" in message


def test_missing_pipeline_input_path(tmp_path):
    assert "does not exist" in refused(
        pipeline(inputs={"C": 1, "data": {"type": "uri_folder", "path": "./nope"}}), tmp_path
    )


# -- submit: nothing recorded on bad input ------------------------------------------------------------
def test_bad_pipelines_record_nothing(store, tmp_path):
    from emulator import kinds

    bad = [
        with_step("score", inputs={"model": "${{parent.jobs.nope.outputs.model}}"}),
        with_step("score", compute="azureml:no-such-cluster"),
        with_step("score", environment="azureml:no-such-env:1"),
    ]
    for data in bad:
        with pytest.raises((ValidationError, ResourceNotFound)) as info:
            kinds.submit(store, copy.deepcopy(data), tmp_path)
        assert "'score'" in info.value.message
    assert store.list_jobs() == []
    assert not (store.root / "jobs").exists() or not any((store.root / "jobs").iterdir())


def test_check_steps_reads_the_yaml_as_written():
    from emulator.pipelines.spec import check_steps

    check_steps(
        {"jobs": {"a": {"command": "echo"}, "b": {"type": "command", "component": "./b.yml"}, "c": {"type": "sweep"}}}
    )  # components and other step types are judged later
    for jobs, text in [
        ({"a": {"type": "command", "environment": ENV}}, "step 'a' has no 'command'"),
        ({"a b": {"command": "echo"}}, "step names"),
        ({"a": "echo"}, "must be a mapping"),
        (None, "no 'jobs'"),
    ]:
        with pytest.raises(ValidationError) as info:
            check_steps({"jobs": jobs})
        assert text in info.value.message
