"""Sweep job specs: validation, the SDK's entities in and out, the sample sweep.yml."""

from __future__ import annotations

import copy
import json

import pytest

from emulator.errors import ValidationError
from emulator.sweeps.orchestrator import trial_inputs
from emulator.sweeps.spec import normalize_sweep_job, render_search_space
from tests.conftest import SAMPLES

IRIS = SAMPLES / "iris"


def sweep(**overrides) -> dict:
    data = {
        "type": "sweep",
        "trial": {
            "code": "./src",
            "command": "python train.py --C ${{search_space.C}} --data ${{inputs.iris_csv}}",
            "environment": "azureml:AzureML-sklearn-1.5@latest",
        },
        "inputs": {"iris_csv": {"type": "uri_file", "path": "./data/iris.csv"}},
        "search_space": {"C": {"type": "uniform", "min_value": 0.1, "max_value": 1.0}},
        "objective": {"goal": "maximize", "primary_metric": "accuracy"},
        "sampling_algorithm": "random",
        "limits": {"max_total_trials": 4, "max_concurrent_trials": 2},
    }
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def refused(data: dict) -> str:
    with pytest.raises(ValidationError) as err:
        normalize_sweep_job(data, IRIS)
    return err.value.message


def test_a_good_sweep_normalizes_with_absolute_paths_and_defaults():
    spec = normalize_sweep_job(sweep(), IRIS)
    assert spec["trial"]["code"] == str(IRIS / "src")
    assert spec["inputs"]["iris_csv"]["path"] == str(IRIS / "data" / "iris.csv")
    assert spec["sampling_algorithm"] == {"type": "random", "rule": "random"}
    assert spec["limits"] == {
        "max_total_trials": 4,
        "max_concurrent_trials": 2,
        "timeout": 5184000,
        "trial_timeout": None,
    }
    assert spec["early_termination"] is None


def test_defaults_follow_azure():
    spec = normalize_sweep_job(sweep(limits=None, sampling_algorithm={"type": "Random", "seed": 42}), IRIS)
    assert spec["limits"]["max_total_trials"] == 1000 and spec["limits"]["max_concurrent_trials"] is None
    assert spec["sampling_algorithm"] == {"type": "random", "seed": 42, "rule": "random"}
    bandit = normalize_sweep_job(
        sweep(early_termination={"type": "bandit", "slack_factor": 0.1, "slack_amount": 0}), IRIS
    )["early_termination"]
    assert bandit == {"type": "bandit", "evaluation_interval": 0, "delay_evaluation": 0, "slack_factor": 0.1}


@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"sampling_algorithm": "grid"}, "Grid sampling takes only choice parameters; C (uniform)"),
        (
            {"sampling_algorithm": "bayesian", "early_termination": {"type": "bandit", "slack_factor": 0.1}},
            "Bayesian sampling does not support early termination",
        ),
        (
            {
                "sampling_algorithm": "bayesian",
                "search_space": {"C": {"type": "loguniform", "min_value": -2, "max_value": 1}},
            },
            "Bayesian sampling takes only choice, uniform and quniform parameters; C (loguniform)",
        ),
        ({"sampling_algorithm": {"type": "bayesian", "seed": 1}}, "bayesian sampling has no seed"),
        ({"sampling_algorithm": "sobol"}, "sampling_algorithm must be one of random, grid, bayesian"),
        ({"sampling_algorithm": None}, "needs a 'sampling_algorithm'"),
        ({"early_termination": {"type": "bandit", "slack_factor": 0.1, "slack_amount": 0.2}}, "exactly one of"),
        ({"early_termination": {"type": "bandit"}}, "exactly one of"),
        ({"early_termination": {"type": "truncation_selection", "truncation_percentage": 100}}, "between 1 and 99"),
        ({"early_termination": {"type": "median", "evaluation_interval": 1}}, "early_termination.type must be one of"),
        ({"objective": {"goal": "max", "primary_metric": "accuracy"}}, "objective.goal must be maximize or minimize"),
        ({"objective": None}, "needs an 'objective'"),
        ({"limits": {"max_total_trials": 0}}, "limits.max_total_trials must be between 1 and 1000"),
        ({"limits": {"max_concurrent_trials": 2.5}}, "must be an integer"),
        ({"search_space": {}}, "non-empty 'search_space'"),
        (
            {"search_space": {"C": {"type": "uniform", "min_value": 1, "max_value": 0.1}}},
            "search_space.C (uniform): min_value (1) must be less than max_value (0.1)",
        ),
        (
            {
                "trial": {
                    "command": "python train.py --lr ${{search_space.lr}}",
                    "code": "./src",
                    "environment": "azureml:AzureML-sklearn-1.5@latest",
                }
            },
            "search_space has no 'lr'",
        ),
        (
            {
                "trial": {
                    "command": "python train.py",
                    "code": "./nope",
                    "environment": "azureml:AzureML-sklearn-1.5@latest",
                }
            },
            "Code folder './nope' does not exist",
        ),
        (
            {
                "trial": {
                    "command": "python train.py ${{inputs.missing}}",
                    "code": "./src",
                    "environment": "azureml:AzureML-sklearn-1.5@latest",
                }
            },
            "no input named 'missing'",
        ),
        (
            {"trial": {"command": "python train.py", "inputs": {"a": 1}}},
            "Inputs and outputs go at the sweep's top level",
        ),
        ({"bogus": 1}, "Unknown field(s) bogus in the sweep job"),
    ],
)
def test_bad_sweeps_are_refused_with_a_clear_message(overrides, words):
    assert words in refused(sweep(**overrides))


def test_rendering_fills_search_space_references():
    assert (
        render_search_space("a ${{search_space.x}} b ${{ search_space.y }} ${{inputs.z}}", {"x": 1.5, "y": "rbf"})
        == "a 1.5 b rbf ${{inputs.z}}"
    )


def test_trial_inputs_carry_the_sampled_values_without_shadowing_inputs():
    spec = normalize_sweep_job(
        sweep(inputs={"iris_csv": {"type": "uri_file", "path": "./data/iris.csv"}, "C": 9}), IRIS
    )
    inputs = trial_inputs(spec, {"C": 0.5, "kernel": "rbf"})
    assert inputs == {
        "iris_csv": {"type": "uri_file", "path": str(IRIS / "data" / "iris.csv"), "mode": "ro_mount"},
        "C": 9,
        "kernel": "rbf",
    }


def test_the_sample_sweep_yml_loads_with_azure_ai_ml_and_converts():
    from azure.ai.ml import load_job

    from backends.job_entities import job_to_spec

    entity = load_job(IRIS / "sweep.yml")
    spec = normalize_sweep_job(job_to_spec(entity), IRIS)
    assert spec["search_space"]["C"] == {"type": "loguniform", "min_value": -4, "max_value": 2}
    assert spec["objective"] == {"goal": "maximize", "primary_metric": "accuracy"}
    assert spec["sampling_algorithm"] == {"type": "random", "seed": 42, "rule": "random"}
    assert spec["early_termination"]["type"] == "bandit" and spec["early_termination"]["slack_factor"] == 0.1
    assert spec["limits"]["max_concurrent_trials"] == 2 and spec["limits"]["trial_timeout"] == 300
    assert spec["trial"]["code"] == str(IRIS / "src")
    assert spec["inputs"]["iris_csv"]["path"] == str(IRIS / "data" / "iris.csv")


def test_the_sdk_sweep_builder_converts(tmp_path, monkeypatch):
    from azure.ai.ml import Input, command
    from azure.ai.ml.sweep import BanditPolicy, Choice, LogUniform, QUniform

    from backends.job_entities import job_to_spec

    monkeypatch.chdir(IRIS)
    job = command(
        code="./src",
        command="python train.py --C ${{inputs.C}} --max_iter ${{inputs.max_iter}} "
        "--data ${{inputs.iris_csv}} --k ${{inputs.k}}",
        inputs={"C": 1.0, "max_iter": 100, "k": 1, "iris_csv": Input(type="uri_file", path="./data/iris.csv")},
        environment="AzureML-sklearn-1.5@latest",
        experiment_name="iris-sdk",
    )
    node = job(
        C=LogUniform(min_value=-3, max_value=1), max_iter=Choice([50, 100]), k=QUniform(min_value=1, max_value=5, q=1)
    )
    swept = node.sweep(
        sampling_algorithm="random",
        primary_metric="accuracy",
        goal="Maximize",
        max_total_trials=3,
        max_concurrent_trials=2,
        early_termination_policy=BanditPolicy(slack_amount=0.2, evaluation_interval=1),
    )
    spec = normalize_sweep_job(job_to_spec(swept), IRIS)
    assert spec["trial"]["command"] == (
        "python train.py --C ${{search_space.C}} --max_iter ${{search_space.max_iter}} "
        "--data ${{inputs.iris_csv}} --k ${{search_space.k}}"
    )
    assert set(spec["search_space"]) == {"C", "max_iter", "k"} and set(spec["inputs"]) == {"iris_csv"}
    assert spec["search_space"]["k"] == {"type": "quniform", "min_value": 1, "max_value": 5, "q": 1}
    assert spec["early_termination"] == {
        "type": "bandit",
        "evaluation_interval": 1,
        "delay_evaluation": 0,
        "slack_amount": 0.2,
    }
    assert spec["objective"]["goal"] == "maximize"


def test_a_record_becomes_a_sweep_job_entity(store):
    from azure.ai.ml.sweep import BanditPolicy, SweepJob

    from backends.job_entities import record_to_job

    spec = normalize_sweep_job(sweep(early_termination={"type": "bandit", "slack_factor": 0.1}), IRIS)
    spec.update(name="s1", display_name="s1", experiment_name="e", created_by="me")
    spec["properties"]["best_child_run_id"] = "s1_2"
    record = {
        "name": "s1",
        "type": "sweep",
        "experiment_name": "e",
        "status": "Completed",
        "spec": spec,
        "created_at": 1.0e9,
        "error": None,
        "parent_job_name": None,
    }
    entity = record_to_job(store, copy.deepcopy(record))
    assert isinstance(entity, SweepJob)
    assert entity.status == "Completed" and entity.properties["best_child_run_id"] == "s1_2"
    assert isinstance(entity.early_termination, BanditPolicy) and entity.early_termination.slack_factor == 0.1
    assert entity.objective.primary_metric == "accuracy" and entity.limits.max_total_trials == 4
    assert entity.search_space["C"].min_value == 0.1
    assert entity.id.endswith("/jobs/s1")
    json.dumps(entity._to_dict(), default=str)  # the SDK can serialise it
