"""Endpoint and deployment specs: every refusal names the problem, and nothing is written."""

from __future__ import annotations

import pytest

from emulator.endpoints import records
from emulator.errors import EmulatorError, NotEmulated
from emulator.models import registry as models
from tests.conftest import SAMPLES


@pytest.fixture
def endpoint(store):
    record, _ = records.create_or_update_endpoint(store, {"name": "iris-ep"})
    return record


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"name": "x"}, "is invalid: Azure ML takes 3-32 characters"),
        ({"name": "iris-ep", "auth_mode": "password"}, "auth_mode 'password' is unknown"),
        ({"name": "iris-ep", "public_network_access": "sometimes"}, "must be 'enabled' or 'disabled'"),
        ({"name": "iris-ep", "colour": "blue"}, "Unknown field(s) in the online endpoint: colour"),
        ({"name": "iris-ep", "traffic": {"blue": "lots"}}, "must be a whole percentage"),
        ({"name": "iris-ep", "compute": "azureml:nope"}, "Attach an inference cluster first"),
    ],
)
def test_bad_endpoint_specs_are_refused(store, spec, message):
    with pytest.raises(EmulatorError) as info:
        records.create_or_update_endpoint(store, spec)
    assert message in info.value.message
    assert records.list_endpoints(store) == []


def test_aad_token_is_not_emulated_and_auth_mode_cannot_change(store, endpoint):
    with pytest.raises(NotEmulated, match="aad_token"):
        records.create_or_update_endpoint(store, {"name": "other-ep", "auth_mode": "aad_token"})
    with pytest.raises(EmulatorError, match="cannot be changed"):
        records.create_or_update_endpoint(store, {"name": "iris-ep", "auth_mode": "aml_token"})
    assert records.get_endpoint(store, "iris-ep")["auth_mode"] == "key"


@pytest.mark.parametrize(
    "extra, message",
    [
        ({}, "neither a model nor a scoring script"),
        ({"model": "azureml:iris"}, "needs a version"),
        ({"model": "azureml:iris@production"}, "label 'production' is not supported"),
        ({"model": "azureml:iris:1", "instance_count": 99}, "above this machine's limit"),
        ({"model": "azureml:iris:1", "instance_count": "two"}, "'instance_count' must be a whole number"),
        ({"model": "azureml:iris:1", "request_settings": {"request_timeout_ms": 200000}}, "at most 180000"),
        ({"model": "azureml:iris:1", "request_settings": {"retries": 3}}, "Unknown setting(s) in 'request_settings'"),
        ({"model": "azureml:iris:1", "liveness_probe": {"period": 0}}, "liveness_probe.period' must be at least 1"),
        (
            {"model": "azureml:iris:1", "readiness_probe": {"failure_threshold": 0}},
            "readiness_probe.failure_threshold' must be at least 1",
        ),
        (
            {"model": "azureml:iris:1", "liveness_probe": {"initial_delay": -1}},
            "liveness_probe.initial_delay' must be at least 0",
        ),
        ({"model": "azureml:iris:1", "scale_settings": {"type": "target_utilization"}}, "apply to Kubernetes"),
        ({"model": "azureml:iris:1", "scale_settings": {"type": "sometimes"}}, "type 'sometimes' is unknown"),
        ({"model": "azureml:iris:1", "code_configuration": {"code": "score"}}, "needs both 'code'"),
        (
            {"model": "azureml:iris:1", "code_configuration": {"code": "nowhere", "scoring_script": "score.py"}},
            "is not a folder",
        ),
        (
            {"model": "azureml:iris:1", "code_configuration": {"code": "score", "scoring_script": "nope.py"}},
            "Scoring script 'nope.py' not found",
        ),
        (
            {"model": "azureml:iris:1", "code_configuration": {"code": "score", "scoring_script": "score.py"}},
            "needs an 'environment'",
        ),
    ],
)
def test_bad_deployment_specs_are_refused(store, endpoint, iris_model, extra, message):
    models.create_or_update(store, {"name": "iris", "path": str(iris_model)}, SAMPLES)
    spec = {"name": "blue", "endpoint_name": "iris-ep", **extra}
    with pytest.raises(EmulatorError) as info:
        records.create_or_update_deployment(store, spec, SAMPLES / "iris")
    assert message in info.value.message
    assert records.list_deployments(store, "iris-ep") == []
    assert not records.deployment_dir(store, "iris-ep", "blue").exists()


def test_names_that_differ_only_in_case_never_touch_each_other(store, endpoint, iris_model):
    models.create_or_update(store, {"name": "iris", "path": str(iris_model)}, SAMPLES)
    records.create_or_update_deployment(
        store, {"name": "blue", "endpoint_name": "iris-ep", "model": "azureml:iris:1"}, SAMPLES / "iris"
    )
    with pytest.raises(EmulatorError, match="differs only in case from the existing 'iris-ep'"):
        records.create_or_update_endpoint(store, {"name": "IRIS-EP"})
    with pytest.raises(EmulatorError, match="differs only in case from the existing 'blue'"):
        records.create_or_update_deployment(
            store, {"name": "BLUE", "endpoint_name": "iris-ep", "model": "azureml:iris:1"}, SAMPLES / "iris"
        )
    with pytest.raises(EmulatorError, match="not found"):
        records.get_endpoint(store, "IRIS-EP")  # lookups are exact
    # a twin written by an older amlemu: deleting it leaves the other endpoint's deployments alone
    store.put_asset(
        records.ENDPOINT,
        "IRIS-EP",
        "1",
        {k: v for k, v in endpoint.items() if k not in ("name", "version", "created_at", "updated_at")},
    )
    records.delete_endpoint_record(store, "IRIS-EP")
    assert [d["deployment_name"] for d in records.list_deployments(store, "iris-ep")] == ["blue"]
    assert records.get_endpoint(store, "iris-ep")["name"] == "iris-ep"
